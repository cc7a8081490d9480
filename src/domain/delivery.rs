//! The delivery: one verified inbound event, stored once.

use serde::{Deserialize, Serialize};

use super::{DeliveryId, DeliveryStatus, Source, SubscriptionId, Timestamp};

/// How many bytes of a body the API and the dashboard show before offering the whole body.
pub const PREVIEW_BYTES: usize = 4096;

/// Who started the work recorded on a delivery or attempt: the provider, or an operator by name.
pub const INITIATED_BY_PROVIDER: &str = "provider";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub source: Source,
    pub topic: String,
    /// The provider's per-delivery id, the dedupe key (`X-Shopify-Webhook-Id`, `webhook-id`, …).
    pub provider_delivery_id: Option<String>,
    /// `{scope}/{provider delivery id}`: what makes a repeat a repeat (see `storage::dedupe`).
    pub dedupe_key: Option<String>,
    /// The provider's event id where it has one, for correlation (`X-Shopify-Event-Id`).
    pub event_id: Option<String>,
    /// Shop domain, Zoho org or channel, or the sender's name.
    pub account: String,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub received_at: Timestamp,
    pub last_attempted_at: Option<Timestamp>,
    pub response_code: Option<u16>,
    pub latency_ms: Option<u32>,
    pub size_bytes: u64,
    pub content_type: Option<String>,
    /// Hex SHA-256 of the exact body, checked before a replay and when the body is served.
    pub body_sha256: String,
    pub error_message: Option<String>,
    pub initiated_by: String,
    /// Which secret verified the request: `current`, `previous`, `app`, `app_previous`.
    pub verified_with: String,
    /// The fingerprint of the secret that verified it (from its digest), so a replay can tell whether that
    /// secret is still held and check the provider's signature again. Absent on deliveries stored before.
    #[serde(default)]
    pub verified_fingerprint: Option<String>,
    /// Set once a privacy erasure replaced its body by a tombstone.
    #[serde(default)]
    pub erased: Option<super::erasure::Erased>,
}

/// Where a text search matched a delivery's body: a fragment of the body and the byte ranges of the matched
/// terms within the fragment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    pub fragment: String,
    pub highlights: Vec<(usize, usize)>,
}

/// What arrived with a delivery besides its metadata: the headers as received (minus credentials, see
/// `connectors::STORED_HEADER_DENYLIST`) and the exact body bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The first [`PREVIEW_BYTES`] of a body as text, cut on a character boundary, and whether that is less
/// than the whole body. `head` is the start of the body (at least `PREVIEW_BYTES` of it when it is longer);
/// `total` is the body's full size.
pub fn preview(head: &[u8], total: u64) -> (String, bool) {
    let head = &head[..head.len().min(PREVIEW_BYTES)];
    let text = match std::str::from_utf8(head) {
        Ok(s) => s.to_owned(),
        // A multi-byte character split by the cut: keep the valid prefix.
        Err(e) if e.error_len().is_none() => String::from_utf8_lossy(&head[..e.valid_up_to()]).into_owned(),
        Err(_) => String::from_utf8_lossy(head).into_owned(),
    };
    let mut text = text;
    if text.len() > PREVIEW_BYTES {
        let mut cut = PREVIEW_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let truncated = (text.len() as u64) < total;
    (text, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bodies_are_kept_whole() {
        assert_eq!(preview(b"{\"a\":1}", 7), ("{\"a\":1}".to_owned(), false));
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let mut body = "a".repeat(PREVIEW_BYTES - 1).into_bytes();
        body.extend_from_slice("é and more".as_bytes());
        let (text, truncated) = preview(&body, body.len() as u64);
        assert!(truncated);
        assert_eq!(text.len(), PREVIEW_BYTES - 1);
        assert!(text.bytes().all(|b| b == b'a'));
    }

    #[test]
    fn binary_bodies_never_exceed_the_limit() {
        let body = vec![0xffu8; PREVIEW_BYTES * 2];
        let (text, truncated) = preview(&body, body.len() as u64);
        assert!(truncated);
        assert!(text.len() <= PREVIEW_BYTES);
    }
}
