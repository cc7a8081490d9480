//! Records that only storage and its readers know: rejection samples.

use serde::{Deserialize, Serialize};

use crate::domain::ids::RejectionId;
use crate::domain::{RejectCause, SubscriptionId, Timestamp};

/// What is kept of a rejected request: metadata only, never the body, so a flood cannot fill the disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionSample {
    pub id: RejectionId,
    pub at: Timestamp,
    pub cause: RejectCause,
    pub detail: String,
    /// The ingest path that was called, e.g. `/shopify/webhook`.
    pub path: String,
    pub subscription_id: Option<SubscriptionId>,
    /// The provider's topic header, when one was sent.
    pub topic: Option<String>,
    pub remote_addr: Option<String>,
    pub user_agent: Option<String>,
    pub content_length: Option<u64>,
}
