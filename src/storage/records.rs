//! Records that only storage and its readers know: counters and samples.

use serde::{Deserialize, Serialize};

use crate::domain::ids::RejectionId;
use crate::domain::{RejectCause, SubscriptionId, Timestamp};

/// Counters of one subscription for one minute. Fields are added as the features that count them land;
/// old rows read the new fields as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MinuteStats {
    /// Deliveries stored (duplicates excluded).
    pub received: u64,
    /// Repeats of an already stored delivery, answered 200 and not stored again.
    pub duplicates: u64,
    /// Sum of body sizes of the stored deliveries.
    pub bytes: u64,
}

impl MinuteStats {
    pub fn add(&mut self, other: &MinuteStats) {
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.bytes += other.bytes;
    }
}

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
