//! Replays, one delivery's or in bulk, as the API takes and answers them.

use poem_openapi::{Enum, Object};

use super::{DeliveryStatus, Source, time};

mirror_enum!(
    /// `queued` → `succeeded` | `retrying` → `failed`; `held` while the destination is paused.
    ReplayStatus <=> crate::domain::replay::ReplayStatus { Queued, Retrying, Succeeded, Failed, Held }
);

/// A replay: a new attempt of a delivery, asked for by an operator.
#[derive(Object, Debug, Clone)]
pub struct ReplayOut {
    pub id: String,
    pub delivery_id: String,
    pub requested_by: String,
    pub requested_at: String,
    pub status: ReplayStatus,
    /// Where the new attempt shows once made (`initiated_by` is the operator).
    pub attempts_url: String,
}

impl From<crate::domain::replay::Replay> for ReplayOut {
    fn from(r: crate::domain::replay::Replay) -> Self {
        ReplayOut {
            id: r.id.to_string(),
            delivery_id: r.delivery_id.to_string(),
            requested_by: r.requested_by,
            requested_at: time(r.requested_at),
            status: r.status.into(),
            attempts_url: format!("/api/v1/deliveries/{}/attempts", r.delivery_id),
        }
    }
}

/// The delivery filters a bulk operation takes, as `GET /api/v1/deliveries` takes them.
#[derive(Object, Debug, Clone, Default)]
pub struct FilterIn {
    #[oai(nullable)]
    pub q: Option<String>,
    #[oai(nullable)]
    pub source: Option<Source>,
    #[oai(nullable)]
    pub topic: Option<String>,
    #[oai(nullable)]
    pub status: Option<DeliveryStatus>,
    /// A subscription id.
    #[oai(nullable)]
    pub subscription: Option<String>,
    #[oai(nullable)]
    pub account: Option<String>,
    /// RFC 3339, inclusive.
    #[oai(nullable)]
    pub from: Option<String>,
    /// RFC 3339, exclusive; absent: everything received until now (not what arrives while it runs).
    #[oai(nullable)]
    pub to: Option<String>,
}

impl From<FilterIn> for crate::domain::filter::DeliveryFilter {
    fn from(f: FilterIn) -> Self {
        let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        Self {
            q: given(f.q),
            source: f.source.map(|s| crate::domain::Source::from(s).as_str().to_owned()),
            topic: given(f.topic),
            status: f.status.map(|s| crate::domain::DeliveryStatus::from(s).as_str().to_owned()),
            subscription: given(f.subscription),
            account: given(f.account),
            from: given(f.from),
            to: given(f.to),
        }
    }
}

impl From<crate::domain::filter::DeliveryFilter> for BulkFilterOut {
    fn from(f: crate::domain::filter::DeliveryFilter) -> Self {
        BulkFilterOut {
            q: f.q,
            source: f.source,
            topic: f.topic,
            status: f.status,
            subscription: f.subscription,
            account: f.account,
            from: f.from,
            to: f.to,
        }
    }
}

/// A bulk replay asked for: the delivery filters (at least one), and either a dry run that only counts, or
/// the rate to replay at.
#[derive(Object, Debug, Clone, Default)]
pub struct BulkReplayIn {
    #[oai(flatten)]
    pub filter: FilterIn,
    /// Only count what would be replayed.
    #[oai(default)]
    pub dry_run: bool,
    /// Replays per second, 1 to 200; 10 when absent, slow enough that live traffic flows.
    #[oai(nullable)]
    pub rate_per_second: Option<u32>,
}

/// What a bulk replay would cover.
#[derive(Object, Debug, Clone)]
pub struct BulkReplayPreview {
    pub matched: u64,
    /// The most one bulk replay may cover; a filter matching more must be narrowed.
    pub limit: u64,
}

mirror_enum!(
    /// `running` until every matching delivery was handled, then `done`; or `cancelled`, or `failed`.
    BulkStatus <=> crate::domain::replay::BulkStatus { Running, Done, Cancelled, Failed }
);

/// A bulk replay and its progress.
#[derive(Object, Debug, Clone)]
pub struct BulkReplayOut {
    pub id: String,
    pub requested_by: String,
    pub requested_at: String,
    pub status: BulkStatus,
    /// The filter as applied, with `to` fixed at the start when it was not given.
    pub filter: BulkFilterOut,
    pub rate_per_second: u32,
    pub matched: u64,
    pub replayed: u64,
    /// Replayed less than 5 minutes before, or not replayable.
    pub skipped: u64,
    /// Refused because the stored body failed its integrity check.
    pub failed: u64,
    #[oai(nullable)]
    pub finished_at: Option<String>,
    #[oai(nullable)]
    pub error: Option<String>,
}

#[derive(Object, Debug, Clone)]
pub struct BulkFilterOut {
    #[oai(nullable)]
    pub q: Option<String>,
    #[oai(nullable)]
    pub source: Option<String>,
    #[oai(nullable)]
    pub topic: Option<String>,
    #[oai(nullable)]
    pub status: Option<String>,
    #[oai(nullable)]
    pub subscription: Option<String>,
    #[oai(nullable)]
    pub account: Option<String>,
    #[oai(nullable)]
    pub from: Option<String>,
    #[oai(nullable)]
    pub to: Option<String>,
}

impl From<crate::domain::replay::BulkReplay> for BulkReplayOut {
    fn from(b: crate::domain::replay::BulkReplay) -> Self {
        let f = b.filter;
        BulkReplayOut {
            id: b.id.to_string(),
            requested_by: b.requested_by,
            requested_at: time(b.requested_at),
            status: b.status.into(),
            filter: f.into(),
            rate_per_second: b.rate_per_second,
            matched: b.matched,
            replayed: b.replayed,
            skipped: b.skipped,
            failed: b.failed,
            finished_at: b.finished_at.map(time),
            error: b.error,
        }
    }
}
