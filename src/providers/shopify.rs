//! Shopify's GraphQL Admin API: list a shop's webhook subscriptions, create one, update one. REST's
//! webhook endpoints are legacy and there is no "migrate" call; moving a subscription is an update of its
//! address. From API version 2025-04 the address field is `uri` (it replaced `callbackUrl`).

use std::time::Duration;

use serde_json::{Value, json};

use super::{Answer, ProviderSettings, http_client, send, unavailable};
use crate::domain::handshake::HandshakeFailure;

/// Throttled calls made again, at most, before the run gives up as throttled.
const THROTTLE_RETRIES: usize = 3;
/// Pages of 100 subscriptions read at most: far more than any app registers per shop.
const MAX_PAGES: usize = 50;

/// A webhook subscription as the shop has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `gid://shopify/WebhookSubscription/…`
    pub id: String,
    /// The GraphQL topic, e.g. `ORDERS_CREATE`.
    pub topic: String,
    /// `JSON` or `XML`.
    pub format: String,
    /// Where it sends; none for a Pub/Sub or EventBridge endpoint.
    pub callback: Option<String>,
}

pub struct ShopifyAdmin {
    client: reqwest::Client,
    url: String,
    version: String,
    max_wait: Duration,
}

impl ShopifyAdmin {
    pub fn new(s: &ProviderSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: http_client(s.timeout)?,
            url: s.shopify_admin_url.clone(),
            version: s.shopify_api_version.clone(),
            max_wait: s.max_throttle_wait,
        })
    }

    pub fn endpoint(&self, shop: &str) -> String {
        self.url.replace("{shop}", shop).replace("{version}", &self.version)
    }

    /// Versions from 2025-04 name the address `uri`; earlier ones `callbackUrl`, inside `endpoint`.
    fn uses_uri(&self) -> bool {
        self.version.as_str() >= "2025-04"
    }

    fn fields(&self) -> &'static str {
        if self.uses_uri() {
            "id topic format uri"
        } else {
            "id topic format endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } }"
        }
    }

    fn input(&self, callback: &str) -> Value {
        if self.uses_uri() {
            json!({ "uri": callback, "format": "JSON" })
        } else {
            json!({ "callbackUrl": callback, "format": "JSON" })
        }
    }

    /// Every webhook subscription this app has in the shop.
    pub async fn list(&self, shop: &str, token: &str) -> Result<Vec<Remote>, HandshakeFailure> {
        let query = format!(
            "query HookplaneList($after: String) {{ webhookSubscriptions(first: 100, after: $after) {{ \
             edges {{ node {{ {} }} }} pageInfo {{ hasNextPage endCursor }} }} }}",
            self.fields()
        );
        let mut out = Vec::new();
        let mut after = Value::Null;
        for _ in 0..MAX_PAGES {
            let data = self.call(shop, token, &query, json!({ "after": after })).await?;
            let page = &data["webhookSubscriptions"];
            let edges = page["edges"].as_array().ok_or_else(|| malformed(shop, "webhookSubscriptions.edges"))?;
            for edge in edges {
                out.push(remote(&edge["node"]).ok_or_else(|| malformed(shop, "a webhook subscription"))?);
            }
            if page["pageInfo"]["hasNextPage"] != json!(true) {
                return Ok(out);
            }
            after = page["pageInfo"]["endCursor"].clone();
            if !after.is_string() {
                return Err(malformed(shop, "the next page's cursor"));
            }
        }
        // A partial list would make what is on later pages look missing, and create it twice.
        Err(malformed(shop, format!("its subscriptions within {MAX_PAGES} pages").as_str()))
    }

    /// Creates a subscription for `topic` (GraphQL form) sending JSON to `callback`.
    pub async fn create(
        &self,
        shop: &str,
        token: &str,
        topic: &str,
        callback: &str,
    ) -> Result<Remote, HandshakeFailure> {
        let query = format!(
            "mutation HookplaneCreate($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {{ \
             webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {{ \
             userErrors {{ field message }} webhookSubscription {{ {} }} }} }}",
            self.fields()
        );
        let data = self.call(shop, token, &query, json!({ "topic": topic, "sub": self.input(callback) })).await?;
        payload(shop, &data["webhookSubscriptionCreate"], "create")
    }

    /// Points the subscription `id` at `callback`, sending JSON.
    pub async fn update(&self, shop: &str, token: &str, id: &str, callback: &str) -> Result<Remote, HandshakeFailure> {
        let query = format!(
            "mutation HookplaneUpdate($id: ID!, $sub: WebhookSubscriptionInput!) {{ \
             webhookSubscriptionUpdate(id: $id, webhookSubscription: $sub) {{ \
             userErrors {{ field message }} webhookSubscription {{ {} }} }} }}",
            self.fields()
        );
        let data = self.call(shop, token, &query, json!({ "id": id, "sub": self.input(callback) })).await?;
        payload(shop, &data["webhookSubscriptionUpdate"], "update")
    }

    /// One GraphQL call: its `data`, after waiting out throttling as Shopify says.
    async fn call(&self, shop: &str, token: &str, query: &str, variables: Value) -> Result<Value, HandshakeFailure> {
        let body = json!({ "query": query, "variables": variables });
        let mut tries = 0;
        loop {
            let req = self
                .client
                .post(self.endpoint(shop))
                .header("x-shopify-access-token", token)
                .header("content-type", "application/json")
                .body(body.to_string());
            let answer = send(req, "Shopify").await?;
            let wait = match answer.status {
                200..=299 => {
                    let v = answer.json().ok_or_else(|| malformed(shop, "a JSON answer"))?;
                    match throttled(&v) {
                        Some(wait) => wait,
                        None => return graphql_data(shop, v, &answer),
                    }
                }
                429 => Duration::from_secs(answer.retry_after.unwrap_or(1)),
                _ => return Err(refusal(shop, &self.version, &answer)),
            };
            tries += 1;
            if tries > THROTTLE_RETRIES || wait > self.max_wait {
                return Err(HandshakeFailure::transient(
                    "throttled",
                    format!(
                        "Shopify throttled the Admin API calls for {shop} and asked for a wait of {} ms; the next run \
                         tries again",
                        wait.as_millis()
                    ),
                    Some(answer.excerpt()),
                ));
            }
            tracing::info!(
                shop,
                wait_ms = wait.as_millis() as u64,
                "Shopify throttled an Admin API call; waiting as told"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// The wait a `THROTTLED` answer asks for: the missing cost over the restore rate.
fn throttled(v: &Value) -> Option<Duration> {
    let errors = v["errors"].as_array()?;
    if !errors.iter().any(|e| e["extensions"]["code"] == "THROTTLED") {
        return None;
    }
    let cost = &v["extensions"]["cost"];
    let requested = cost["requestedQueryCost"].as_f64();
    let available = cost["throttleStatus"]["currentlyAvailable"].as_f64();
    let rate = cost["throttleStatus"]["restoreRate"].as_f64().filter(|r| *r > 0.0);
    let ms = match (requested, available, rate) {
        (Some(r), Some(a), Some(rate)) => ((r - a).max(0.0) / rate * 1000.0).ceil(),
        _ => 1000.0,
    };
    Some(Duration::from_millis(ms.clamp(1.0, 3_600_000.0) as u64))
}

fn graphql_data(shop: &str, v: Value, answer: &Answer) -> Result<Value, HandshakeFailure> {
    if let Some(errors) = v["errors"].as_array().filter(|e| !e.is_empty()) {
        let said: Vec<&str> = errors.iter().filter_map(|e| e["message"].as_str()).collect();
        let message = format!("Shopify refused the Admin API call for {shop}: {}", said.join("; "));
        // Shopify's own trouble, reported inside a 200: the next run may succeed.
        let transient = errors.iter().any(|e| {
            matches!(
                e["extensions"]["code"].as_str(),
                Some("INTERNAL_SERVER_ERROR" | "TIMEOUT" | "SERVICE_UNAVAILABLE")
            )
        });
        return Err(if transient {
            HandshakeFailure::transient("provider_unavailable", message, Some(answer.excerpt()))
        } else {
            HandshakeFailure::refused("graphql_errors", message, Some(answer.excerpt()))
        });
    }
    Ok(v["data"].clone())
}

/// A mutation's payload: the subscription, or its `userErrors` in Shopify's words.
fn payload(shop: &str, p: &Value, what: &str) -> Result<Remote, HandshakeFailure> {
    if let Some(errors) = p["userErrors"].as_array().filter(|e| !e.is_empty()) {
        let said: Vec<String> = errors
            .iter()
            .map(|e| {
                let field: Vec<&str> = e["field"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let message = e["message"].as_str().unwrap_or("(no message)");
                if field.is_empty() { message.to_owned() } else { format!("{}: {message}", field.join(".")) }
            })
            .collect();
        return Err(HandshakeFailure::refused(
            "user_errors",
            format!("Shopify refused to {what} the webhook subscription for {shop}: {}", said.join("; ")),
            Some(said.join("; ")),
        ));
    }
    remote(&p["webhookSubscription"]).ok_or_else(|| malformed(shop, "webhookSubscription"))
}

fn remote(node: &Value) -> Option<Remote> {
    let callback = node["uri"].as_str().or_else(|| node["endpoint"]["callbackUrl"].as_str()).map(str::to_owned);
    Some(Remote {
        id: node["id"].as_str()?.to_owned(),
        topic: node["topic"].as_str()?.to_owned(),
        format: node["format"].as_str().unwrap_or("JSON").to_owned(),
        callback,
    })
}

fn malformed(shop: &str, what: &str) -> HandshakeFailure {
    HandshakeFailure::transient(
        "malformed_answer",
        format!("Shopify's answer for {shop} did not hold {what} as the Admin API documents it"),
        None,
    )
}

/// A non-2xx answer other than throttling, in words an operator can act on.
fn refusal(shop: &str, version: &str, answer: &Answer) -> HandshakeFailure {
    let said = Some(answer.excerpt());
    match answer.status {
        401 => HandshakeFailure::refused(
            "unauthorized",
            format!(
                "Shopify refused the Admin API access token for {shop} (401): it is wrong, or the app was uninstalled. \
                 Set a new one with PUT /api/v1/credentials/shopify/{shop}"
            ),
            said,
        ),
        402 => HandshakeFailure::refused(
            "shop_frozen",
            format!(
                "The shop {shop} is frozen (402 Payment Required): Shopify serves no Admin API calls until its bill is paid"
            ),
            said,
        ),
        403 => HandshakeFailure::refused(
            "forbidden",
            format!(
                "Shopify refused the call for {shop} (403): the token lacks the access scope the webhook topics need"
            ),
            said,
        ),
        404 => HandshakeFailure::refused(
            "not_found",
            format!("Shopify knows no shop {shop}, or does not serve API version {version} (404)"),
            said,
        ),
        423 => HandshakeFailure::refused(
            "shop_locked",
            format!("The shop {shop} is locked (423 Locked): its owner or Shopify's support must unlock it"),
            said,
        ),
        500.. => unavailable("Shopify", answer),
        s => HandshakeFailure::refused(
            "provider_error",
            format!("Shopify answered {s} to the Admin API call for {shop}"),
            said,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_waits_for_the_missing_cost() {
        let v = json!({
            "errors": [{ "message": "Throttled", "extensions": { "code": "THROTTLED" } }],
            "extensions": { "cost": { "requestedQueryCost": 112, "throttleStatus": {
                "maximumAvailable": 1000.0, "currentlyAvailable": 12, "restoreRate": 50.0 } } }
        });
        assert_eq!(throttled(&v), Some(Duration::from_secs(2)));
        assert_eq!(throttled(&json!({ "data": {} })), None);
    }

    #[test]
    fn user_errors_carry_shopifys_words() {
        let p = json!({ "userErrors": [{ "field": ["webhookSubscription", "uri"], "message": "Address is invalid" }] });
        let e = payload("a.myshopify.com", &p, "create").unwrap_err();
        assert_eq!(e.code, "user_errors");
        assert_eq!(e.provider_said.as_deref(), Some("webhookSubscription.uri: Address is invalid"));
    }

    #[test]
    fn both_address_shapes_are_read() {
        let new = json!({ "id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_CREATE", "format": "JSON", "uri": "https://h/x" });
        let old = json!({ "id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_CREATE", "format": "JSON",
            "endpoint": { "__typename": "WebhookHttpEndpoint", "callbackUrl": "https://h/x" } });
        assert_eq!(remote(&new), remote(&old));
        assert_eq!(remote(&new).unwrap().callback.as_deref(), Some("https://h/x"));
    }
}
