//! The processing queue's unit of work. Ingest writes a job in the same transaction as its delivery, so a
//! stored delivery with a destination always has its job; the workers that run jobs build on this record.

pub mod backend;
pub mod forward;

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
    /// Handed to a worker, in `jobs_leased` until its lease ends.
    Leased,
    /// Out of attempts: in no index, kept for the operator to see and replay.
    Dead,
}

/// Who holds a job, and until when. A lease that ends without an answer makes the job claimable again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// `{process instance}/{worker}`: the instance part tells a lease of this process from one a stopped
    /// process left behind.
    pub owner: String,
    pub until: Timestamp,
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
    #[serde(default)]
    pub lease: Option<Lease>,
    #[serde(default)]
    pub last_error: Option<String>,
}
