//! The providers' admin APIs, through which Hookplane keeps its subscriptions registered: Shopify's GraphQL
//! Admin API (webhook subscriptions) and Zoho CRM's notification API (`actions/watch`, with Zoho's OAuth).
//! Each module builds its provider's exact requests and reads its answers, sorting every failure into
//! refused (someone must act) or transient (the next try may work), with the provider's own words.

pub mod shopify;
pub mod zoho;

use std::time::Duration;

use crate::domain::handshake::HandshakeFailure;

/// Where the admin APIs are and how long a call may take. The URLs are templates so that tests (and the
/// demo) can point them at a local server.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// With `{shop}` and `{version}`.
    pub shopify_admin_url: String,
    pub shopify_api_version: String,
    /// With `{dc}`, the organisation's data centre.
    pub zoho_accounts_url: String,
    pub zoho_api_url: String,
    pub zoho_crm_version: String,
    pub timeout: Duration,
    /// A throttled call is made again after the wait the provider names, up to this long; beyond it the
    /// run fails as throttled and the watchdog comes back later.
    pub max_throttle_wait: Duration,
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Hookplane/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The most of an answer Hookplane reads: a page of 100 webhook subscriptions is some 30 KB.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// A whole answer: its status, a header a caller may need, and its body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Vec<u8>,
}

impl Answer {
    /// The first 300 characters of the body, as the provider's own words.
    fn excerpt(&self) -> String {
        let text: String = String::from_utf8_lossy(&self.body).chars().take(300).collect();
        format!("{} {}", self.status, text.trim()).trim().to_owned()
    }

    fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Sends `req` and reads the whole answer; `who` names the provider in the failure.
async fn send(req: reqwest::RequestBuilder, who: &str) -> Result<Answer, HandshakeFailure> {
    let resp = req.send().await.map_err(|e| {
        HandshakeFailure::transient("network", format!("{who} did not answer: {}", crate::logging::chain(&e)), None)
    })?;
    let status = resp.status().as_u16();
    let retry_after =
        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let mut resp = resp;
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_ANSWER_BYTES => body.extend_from_slice(&chunk),
            Ok(Some(_)) => {
                return Err(HandshakeFailure::transient(
                    "malformed_answer",
                    format!("{who}'s answer was longer than {MAX_ANSWER_BYTES} bytes, far beyond any it documents"),
                    None,
                ));
            }
            Ok(None) => break,
            Err(e) => {
                return Err(HandshakeFailure::transient(
                    "network",
                    format!("{who}'s answer was cut off: {}", crate::logging::chain(&e)),
                    None,
                ));
            }
        }
    }
    Ok(Answer { status, retry_after, body })
}

/// A server error: worth another try.
fn unavailable(who: &str, answer: &Answer) -> HandshakeFailure {
    HandshakeFailure::transient(
        "provider_unavailable",
        format!("{who} answered {}: it is having trouble; the next run tries again", answer.status),
        Some(answer.excerpt()),
    )
}
