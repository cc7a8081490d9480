//! Privacy erasures as the API takes and answers them.

use poem_openapi::Object;

use super::{BulkFilterOut, BulkStatus, FilterIn, time};

/// An erasure asked for: the delivery filters (at least one; as `GET /api/v1/deliveries` takes them), and
/// either a dry run that only counts, or `confirm`, since an erased payload cannot be brought back.
#[derive(Object, Debug, Clone, Default)]
pub struct ErasureIn {
    #[oai(flatten)]
    pub filter: FilterIn,
    /// Only count the deliveries whose payloads would be erased.
    #[oai(default)]
    pub dry_run: bool,
    /// Required to erase: erased payloads cannot be brought back.
    #[oai(default)]
    pub confirm: bool,
    /// Why, for the audit log: the data-subject request's reference, say. Up to 200 characters.
    #[oai(nullable)]
    pub reason: Option<String>,
}

/// What an erasure would cover.
#[derive(Object, Debug, Clone)]
pub struct ErasurePreview {
    pub matched: u64,
    /// Counting stops one past this; `matched` above it means "more than".
    pub counted_up_to: u64,
}

/// An erasure and its progress.
#[derive(Object, Debug, Clone)]
pub struct ErasureOut {
    pub id: String,
    /// An operator, or `system` for a redact webhook's.
    pub requested_by: String,
    pub requested_at: String,
    pub status: BulkStatus,
    /// The filter as applied, with `to` fixed at the start when it was not given.
    pub filter: BulkFilterOut,
    #[oai(nullable)]
    pub reason: Option<String>,
    /// The `customers/redact` or `shop/redact` delivery that asked for it.
    #[oai(nullable)]
    pub redact_delivery_id: Option<String>,
    /// How many deliveries matched once the search index had caught up (0 until then).
    pub matched: u64,
    pub erased: u64,
    /// Erased already, or deleted by retention meanwhile.
    pub skipped: u64,
    /// Being delivered, so left as they are: ask again once their attempts have settled.
    pub busy: u64,
    #[oai(nullable)]
    pub finished_at: Option<String>,
    #[oai(nullable)]
    pub error: Option<String>,
}

impl From<crate::domain::erasure::Erasure> for ErasureOut {
    fn from(e: crate::domain::erasure::Erasure) -> Self {
        ErasureOut {
            id: e.id.to_string(),
            requested_by: e.requested_by,
            requested_at: time(e.requested_at),
            status: e.status.into(),
            filter: e.filter.into(),
            reason: e.reason,
            redact_delivery_id: e.redact.map(|d| d.to_string()),
            matched: e.matched,
            erased: e.erased,
            skipped: e.skipped,
            busy: e.busy,
            finished_at: e.finished_at.map(time),
            error: e.error,
        }
    }
}
