//! Zoho CRM's notification API (`actions/watch`): read an organisation's channels, enable one, and update
//! or refresh one (`PATCH`, which changes only the fields sent). Access tokens come from Zoho's OAuth with
//! the organisation's refresh token; they are kept in memory only, until shortly before they expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use super::{Answer, ProviderSettings, http_client, send, unavailable};
use crate::domain::Timestamp;
use crate::domain::credential::ZohoSecret;
use crate::domain::handshake::HandshakeFailure;

/// Channels per page of `GET actions/watch`, and the pages read at most.
const PER_PAGE: u32 = 200;
const MAX_PAGES: u32 = 50;

/// An access token is renewed this long before Zoho says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(120);

/// A channel as Zoho has it.
#[derive(Clone, PartialEq, Eq)]
pub struct Channel {
    pub channel_id: String,
    pub events: Vec<String>,
    pub notify_url: Option<String>,
    pub expires_at: Option<Timestamp>,
    /// The token Zoho echoes in every notification; compared, never shown.
    pub token: Option<Zeroizing<String>>,
}

/// A channel as it should be.
pub struct ChannelSpec<'a> {
    pub channel_id: &'a str,
    pub events: Vec<String>,
    pub notify_url: &'a str,
    pub token: &'a str,
    pub expires_at: Timestamp,
}

/// Who a call is for: the organisation (the token cache's key), its data centre and its OAuth secret.
pub struct Org<'a> {
    pub org: &'a str,
    pub data_centre: &'a str,
    pub secret: &'a ZohoSecret,
}

pub struct ZohoCrm {
    client: reqwest::Client,
    accounts_url: String,
    api_url: String,
    version: String,
    tokens: Mutex<HashMap<String, (Zeroizing<String>, Instant)>>,
}

impl ZohoCrm {
    pub fn new(s: &ProviderSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: http_client(s.timeout)?,
            accounts_url: s.zoho_accounts_url.clone(),
            api_url: s.zoho_api_url.clone(),
            version: s.zoho_crm_version.clone(),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn watch_url(&self, dc: &str) -> String {
        format!("{}/crm/{}/actions/watch", self.api_url.replace("{dc}", dc).trim_end_matches('/'), self.version)
    }

    /// Forgets the organisation's access token: its credential changed.
    pub async fn forget(&self, org: &str) {
        self.tokens.lock().await.remove(org);
    }

    /// An access token for the organisation, from the cache or freshly minted.
    async fn access_token(&self, o: &Org<'_>) -> Result<Zeroizing<String>, HandshakeFailure> {
        if let Some((token, until)) = self.tokens.lock().await.get(o.org)
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let url = format!("{}/oauth/v2/token", self.accounts_url.replace("{dc}", o.data_centre).trim_end_matches('/'));
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", o.secret.client_id.as_str()),
            ("client_secret", o.secret.client_secret.as_str()),
            ("refresh_token", o.secret.refresh_token.as_str()),
        ];
        let answer = send(self.client.post(url).form(&form), "Zoho's accounts server").await?;
        if answer.status >= 500 {
            return Err(unavailable("Zoho's accounts server", &answer));
        }
        let v = answer.json().unwrap_or(Value::Null);
        // Zoho answers a refused grant with 200 and an `error`.
        if let Some(error) = v["error"].as_str() {
            let org = o.org;
            let message = match error {
                "invalid_code" => format!(
                    "Zoho refused the refresh token of {org} (invalid_code): it expired or was revoked. Generate a new \
                     one and set it with PUT /api/v1/credentials/zoho/{org}"
                ),
                "invalid_client" | "invalid_client_secret" => format!(
                    "Zoho refused the OAuth client of {org} ({error}): the client id or secret is wrong, or it belongs \
                     to another data centre than `{}`",
                    o.data_centre
                ),
                other => format!("Zoho refused to issue an access token for {org} ({other})"),
            };
            return Err(HandshakeFailure::refused("oauth_refused", message, Some(answer.excerpt())));
        }
        let Some(token) = v["access_token"].as_str().filter(|_| answer.status == 200) else {
            return Err(HandshakeFailure::refused(
                "oauth_refused",
                format!("Zoho's accounts server answered {} without an access token for {}", answer.status, o.org),
                Some(answer.excerpt()),
            ));
        };
        let token = Zeroizing::new(token.to_owned());
        let lifetime = Duration::from_secs(v["expires_in"].as_u64().unwrap_or(3600)).saturating_sub(TOKEN_MARGIN);
        self.tokens.lock().await.insert(o.org.to_owned(), (token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// One call with an access token; an access token Zoho no longer takes is minted again, once.
    async fn call(
        &self,
        o: &Org<'_>,
        method: reqwest::Method,
        page: Option<u32>,
        body: Option<Value>,
    ) -> Result<Answer, HandshakeFailure> {
        let answer = self.once(o, method.clone(), page, body.as_ref()).await?;
        if answer.status == 401 && answer.json().is_some_and(|v| v["code"] == "INVALID_TOKEN") {
            self.forget(o.org).await;
            return self.once(o, method, page, body.as_ref()).await;
        }
        Ok(answer)
    }

    async fn once(
        &self,
        o: &Org<'_>,
        method: reqwest::Method,
        page: Option<u32>,
        body: Option<&Value>,
    ) -> Result<Answer, HandshakeFailure> {
        let token = self.access_token(o).await?;
        let mut req = self
            .client
            .request(method, self.watch_url(o.data_centre))
            .header("authorization", format!("Zoho-oauthtoken {}", token.as_str()));
        if let Some(page) = page {
            req = req.query(&[("page", page), ("per_page", PER_PAGE)]);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        send(req, "Zoho CRM").await
    }

    /// The organisation's notification channels.
    pub async fn channels(&self, o: &Org<'_>) -> Result<Vec<Channel>, HandshakeFailure> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let answer = self.call(o, reqwest::Method::GET, Some(page), None).await?;
            if answer.status == 204 {
                return Ok(out);
            }
            let v = answered(o.org, &answer)?;
            // Read as "no channels", an answer of another shape would have every channel enabled again.
            let malformed = |what: &str| {
                HandshakeFailure::transient(
                    "malformed_answer",
                    format!("Zoho CRM's list of channels for {} did not hold {what} as documented", o.org),
                    Some(answer.excerpt()),
                )
            };
            let items = v["watch"].as_array().ok_or_else(|| malformed("a `watch` list"))?;
            for item in items {
                out.push(channel(item).ok_or_else(|| malformed("a channel id in every entry"))?);
            }
            if v["info"]["more_records"] != Value::Bool(true) {
                return Ok(out);
            }
        }
        // A partial list would make the channels on later pages look missing, and enable them again.
        Err(HandshakeFailure::transient(
            "malformed_answer",
            format!("Zoho CRM listed more than {MAX_PAGES} pages of channels for {}", o.org),
            None,
        ))
    }

    /// Enables the channel; returns the expiry Zoho granted.
    pub async fn enable(&self, o: &Org<'_>, spec: &ChannelSpec<'_>) -> Result<Option<Timestamp>, HandshakeFailure> {
        let answer = self.call(o, reqwest::Method::POST, None, Some(watch_body(spec))).await?;
        granted(o.org, &answer, "enable")
    }

    /// Updates the channel to `spec` (address, token, events, a new expiry); returns the expiry granted.
    pub async fn update(&self, o: &Org<'_>, spec: &ChannelSpec<'_>) -> Result<Option<Timestamp>, HandshakeFailure> {
        let answer = self.call(o, reqwest::Method::PATCH, None, Some(watch_body(spec))).await?;
        granted(o.org, &answer, "update")
    }
}

/// Zoho's expiry format: seconds and an offset.
fn zoho_time(t: Timestamp) -> String {
    format!("{}+00:00", &t.to_rfc3339()[..19])
}

fn watch_body(spec: &ChannelSpec<'_>) -> Value {
    // Zoho's channel id is a long; a subscription keeps it as text.
    let id = spec.channel_id.parse::<i64>().map_or_else(|_| json!(spec.channel_id), |n| json!(n));
    json!({ "watch": [{
        "channel_id": id,
        "events": spec.events,
        "notify_url": spec.notify_url,
        "token": spec.token,
        "channel_expiry": zoho_time(spec.expires_at),
    }] })
}

fn channel(v: &Value) -> Option<Channel> {
    let channel_id = match &v["channel_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(Channel {
        channel_id,
        events: v["events"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_owned)).collect(),
        notify_url: v["notify_url"].as_str().map(str::to_owned),
        expires_at: v["channel_expiry"].as_str().and_then(Timestamp::parse_rfc3339),
        token: v["token"].as_str().map(|t| Zeroizing::new(t.to_owned())),
    })
}

/// A 2xx answer's JSON, or the failure the answer is.
fn answered(org: &str, answer: &Answer) -> Result<Value, HandshakeFailure> {
    let v = answer.json().unwrap_or(Value::Null);
    match answer.status {
        200..=299 => Ok(v),
        500.. => Err(unavailable("Zoho CRM", answer)),
        s => {
            let code = v["code"].as_str().or_else(|| v["watch"][0]["code"].as_str()).unwrap_or("");
            let said = v["message"].as_str().or_else(|| v["watch"][0]["message"].as_str()).unwrap_or("");
            let message = match (s, code) {
                (401, "OAUTH_SCOPE_MISMATCH") => format!(
                    "Zoho CRM refused the call for {org}: the refresh token lacks the scope ZohoCRM.notifications.ALL"
                ),
                (401, _) => format!("Zoho CRM refused the access token for {org} ({code}: {said})"),
                (429, _) => {
                    return Err(HandshakeFailure::transient(
                        "throttled",
                        format!("Zoho CRM limited the API calls for {org}; the next run tries again"),
                        Some(answer.excerpt()),
                    ));
                }
                _ => format!("Zoho CRM refused the notification call for {org} ({s} {code}: {said})"),
            };
            Err(HandshakeFailure::refused("zoho_refused", message, Some(answer.excerpt())))
        }
    }
}

/// The expiry an enable or update granted, or Zoho's refusal of it.
fn granted(org: &str, answer: &Answer, what: &str) -> Result<Option<Timestamp>, HandshakeFailure> {
    let v = answered(org, answer)?;
    let item = &v["watch"][0];
    if item["code"] != "SUCCESS" {
        return Err(HandshakeFailure::refused(
            "zoho_refused",
            format!(
                "Zoho CRM refused to {what} the channel for {org}: {} {}",
                item["code"].as_str().unwrap_or("(no code)"),
                item["message"].as_str().unwrap_or("")
            ),
            Some(answer.excerpt()),
        ));
    }
    let events = item["details"]["events"].as_array().cloned().unwrap_or_default();
    Ok(events.iter().filter_map(|e| e["channel_expiry"].as_str().and_then(Timestamp::parse_rfc3339)).min())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_written_as_zoho_shows_them_and_read_back() {
        let t = Timestamp::parse_rfc3339("2026-12-13T10:00:00Z").unwrap();
        assert_eq!(zoho_time(t), "2026-12-13T10:00:00+00:00");
        assert_eq!(Timestamp::parse_rfc3339("2026-12-13T15:30:00+05:30"), Some(t));
    }

    #[test]
    fn channels_are_read_with_numeric_or_text_ids() {
        let c = channel(
            &json!({ "channel_id": 1000000068001_i64, "events": ["Leads.all"], "notify_url": "https://h/zoho/incoming",
            "channel_expiry": "2026-12-13T10:00:00+00:00", "token": "t" }),
        )
        .unwrap();
        assert_eq!((c.channel_id.as_str(), c.events.as_slice()), ("1000000068001", &["Leads.all".to_owned()][..]));
        assert!(channel(&json!({ "channel_id": "42" })).is_some());
        assert!(channel(&json!({ "events": [] })).is_none());
    }
}
