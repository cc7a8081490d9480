//! The processing queue's unit of work. Ingest writes a job in the same transaction as its delivery, so a
//! stored delivery with a destination always has its job; the workers that run jobs build on this record.

use serde::{Deserialize, Serialize};

use crate::domain::{DeliveryId, JobId, SubscriptionId, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Hand a delivery to its subscription's destination.
    Deliver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting in `jobs_ready` for its run-at time.
    Ready,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    pub state: JobState,
    pub delivery_id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub run_at: Timestamp,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at: Timestamp,
}
