//! Deliveries, their attempts and the refusals, as the API answers them.

use poem_openapi::Object;

use super::{AttemptErrorClass, DeliveryStatus, RejectionCause, Source, time};
use crate::domain::delivery::Match;
use crate::storage::deliveries::{Listed, Page};
use crate::storage::records::RejectionSample;

#[derive(Object, Debug, Clone)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// One verified inbound event.
#[derive(Object, Debug, Clone)]
pub struct DeliveryOut {
    /// `dlv_…`; ids sort by arrival.
    pub id: String,
    pub subscription_id: String,
    pub source: Source,
    pub topic: String,
    /// The provider's per-delivery id, used to drop repeats (`X-Shopify-Webhook-Id`, `webhook-id`, …).
    #[oai(nullable)]
    pub provider_delivery_id: Option<String>,
    /// The provider's event id, shared by deliveries of one event (`X-Shopify-Event-Id`).
    #[oai(nullable)]
    pub event_id: Option<String>,
    /// Shop domain, Zoho org, or sender.
    pub account: String,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    /// RFC 3339.
    pub received_at: String,
    #[oai(nullable)]
    pub last_attempted_at: Option<String>,
    #[oai(nullable)]
    pub response_code: Option<u16>,
    #[oai(nullable)]
    pub latency_ms: Option<u32>,
    /// Size of the exact body in bytes.
    pub size_bytes: u64,
    #[oai(nullable)]
    pub content_type: Option<String>,
    /// Hex SHA-256 of the exact body.
    pub body_sha256: String,
    /// The first 4 KB of the body as text.
    pub preview: String,
    /// The preview is shorter than the body; fetch `/deliveries/{id}/body` for all of it.
    pub preview_truncated: bool,
    #[oai(nullable)]
    pub error_message: Option<String>,
    /// `provider`, or the operator who replayed it.
    pub initiated_by: String,
    /// Which secret verified it: `current`, `previous`, `app`, `app_previous`.
    pub verified_with: String,
    /// With a search: where the query matched the body.
    #[oai(rename = "match", skip_serializing_if_is_none)]
    pub matched: Option<MatchOut>,
    /// The request headers as received, without credentials. Only in the single-delivery answer.
    #[oai(skip_serializing_if_is_none)]
    pub headers: Option<Vec<Header>>,
    /// Present once a privacy erasure replaced its body by a tombstone (what `preview` then shows).
    #[oai(skip_serializing_if_is_none)]
    pub erased: Option<ErasedOut>,
}

/// What is known of an erased delivery's payload.
#[derive(Object, Debug, Clone)]
pub struct ErasedOut {
    pub erasure_id: String,
    /// RFC 3339.
    pub erased_at: String,
    /// The size of the body it had.
    pub size_bytes: u64,
}

impl DeliveryOut {
    /// Why the dashboard offers no replay of it, if it does not: its payload was erased, or what its
    /// status and its subscription's destination say (`DeliveryStatus::replay_refusal`).
    pub fn replay_refusal(&self, forwards: bool) -> Option<&'static str> {
        if self.erased.is_some() {
            return Some("Its payload was erased: there is nothing left to replay.");
        }
        crate::domain::DeliveryStatus::from(self.status).replay_refusal(forwards)
    }

    pub fn new(l: Listed, headers: Option<Vec<(String, String)>>) -> Self {
        let d = l.delivery;
        Self {
            id: d.id.to_string(),
            subscription_id: d.subscription_id.to_string(),
            source: d.source.into(),
            topic: d.topic,
            provider_delivery_id: d.provider_delivery_id,
            event_id: d.event_id,
            account: d.account,
            status: d.status.into(),
            attempt_count: d.attempt_count,
            received_at: time(d.received_at),
            last_attempted_at: d.last_attempted_at.map(time),
            response_code: d.response_code,
            latency_ms: d.latency_ms,
            size_bytes: d.size_bytes,
            content_type: d.content_type,
            body_sha256: d.body_sha256,
            preview: l.preview,
            preview_truncated: l.preview_truncated,
            error_message: d.error_message,
            initiated_by: d.initiated_by,
            verified_with: d.verified_with,
            erased: d.erased.map(|e| ErasedOut {
                erasure_id: e.erasure.to_string(),
                erased_at: time(e.at),
                size_bytes: e.size_bytes,
            }),
            matched: l.matched.map(MatchOut::from),
            headers: headers.map(|h| h.into_iter().map(|(name, value)| Header { name, value }).collect()),
        }
    }
}

/// Where a search matched a body: a fragment of it, and the matched terms as `[start, end)` byte offsets into
/// the fragment (escape the fragment before highlighting).
#[derive(Object, Debug, Clone)]
pub struct MatchOut {
    pub fragment: String,
    pub highlights: Vec<Vec<u64>>,
}

impl From<Match> for MatchOut {
    fn from(m: Match) -> Self {
        Self {
            fragment: m.fragment,
            highlights: m.highlights.into_iter().map(|(a, b)| vec![a as u64, b as u64]).collect(),
        }
    }
}

/// One page of deliveries, newest first.
#[derive(Object, Debug, Clone)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryOut>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page. A page can be shorter than
    /// `limit` and still have a cursor when a rare filter needed a long scan.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object, Debug, Clone)]
pub struct RejectionCount {
    pub cause: RejectionCause,
    pub count: u64,
}

/// Metadata of a refused request; bodies of refused requests are never kept.
#[derive(Object, Debug, Clone)]
pub struct RejectionOut {
    pub at: String,
    pub cause: RejectionCause,
    pub detail: String,
    pub path: String,
    #[oai(nullable)]
    pub subscription_id: Option<String>,
    #[oai(nullable)]
    pub topic: Option<String>,
    #[oai(nullable)]
    pub remote_addr: Option<String>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    #[oai(nullable)]
    pub content_length: Option<u64>,
}

impl From<RejectionSample> for RejectionOut {
    fn from(s: RejectionSample) -> Self {
        Self {
            at: time(s.at),
            cause: s.cause.into(),
            detail: s.detail,
            path: s.path,
            subscription_id: s.subscription_id.map(|id| id.to_string()),
            topic: s.topic,
            remote_addr: s.remote_addr,
            user_agent: s.user_agent,
            content_length: s.content_length,
        }
    }
}

#[derive(Object, Debug, Clone)]
pub struct RejectionsOut {
    /// Requests refused since the data directory was created, by cause.
    pub counts: Vec<RejectionCount>,
    /// The most recent refused requests, newest first.
    pub recent: Vec<RejectionOut>,
}

impl From<Page> for DeliveryPage {
    fn from(page: Page) -> Self {
        Self {
            items: page.items.into_iter().map(|l| DeliveryOut::new(l, None)).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }
    }
}

/// One try at handing a delivery to its destination.
#[derive(Object, Debug, Clone)]
pub struct AttemptOut {
    /// 1 for the first attempt, counting automatic retries and replays alike.
    pub number: u32,
    pub started_at: String,
    /// The destination's status code; absent when no answer came.
    #[oai(nullable)]
    pub response_code: Option<u16>,
    pub latency_ms: u32,
    #[oai(nullable)]
    pub error_class: Option<AttemptErrorClass>,
    #[oai(nullable)]
    pub error: Option<String>,
    /// The start of the destination's answer (at most 1 KiB), as text.
    pub excerpt: String,
    /// `provider` for the first run and its automatic retries; the operator's name for a replay.
    pub initiated_by: String,
    /// What followed: `delivered`, `retry`, `paused` (the destination answered 410, or is paused) or `gave_up`.
    pub next: String,
    /// The version the destination named in its answer (its subscription's version header).
    #[oai(skip_serializing_if_is_none)]
    pub version: Option<String>,
}

impl From<crate::domain::attempt::Attempt> for AttemptOut {
    fn from(a: crate::domain::attempt::Attempt) -> Self {
        AttemptOut {
            number: a.number,
            started_at: time(a.started_at),
            response_code: a.response_code,
            latency_ms: a.latency_ms,
            error_class: a.error_class.map(Into::into),
            error: a.error,
            excerpt: a.excerpt,
            initiated_by: a.initiated_by,
            next: a.next.as_str().to_owned(),
            version: a.version,
        }
    }
}
