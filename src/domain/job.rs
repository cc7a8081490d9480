//! The processing queue's unit of work. Ingest writes a job in the same transaction as its delivery, so a
//! stored delivery with a destination always has its job.

use serde::{Deserialize, Serialize};

use super::{DeliveryId, JobId, ReplayId, SubscriptionId, Timestamp};

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
    /// Its subscription's destination is paused: in `jobs_held` until resumed.
    Held,
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
    /// The operator whose replay made this job; `None` for the provider's own delivery.
    #[serde(default)]
    pub initiated_by: Option<String>,
    #[serde(default)]
    pub replay_id: Option<ReplayId>,
}

impl Job {
    /// A first attempt of a delivery, due at `at`.
    pub fn deliver(delivery_id: DeliveryId, subscription_id: SubscriptionId, at: Timestamp) -> Self {
        Job {
            id: JobId::new(at),
            kind: JobKind::Deliver,
            state: JobState::Ready,
            delivery_id,
            subscription_id,
            run_at: at,
            attempts: 0,
            created_at: at,
            lease: None,
            last_error: None,
            initiated_by: None,
            replay_id: None,
        }
    }
}

/// Where a job waits, by its state: ready jobs by run-at time, leased ones by the end of their lease, held
/// ones by subscription (so a resume finds them). A dead job waits nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobIndex {
    Ready { at: i64, id: u128 },
    Leased { until: i64, id: u128 },
    Held { subscription: u128, id: u128 },
}

impl Job {
    pub fn index(&self) -> Option<JobIndex> {
        let id = self.id.as_u128();
        match (&self.state, &self.lease) {
            (JobState::Ready, _) => Some(JobIndex::Ready { at: self.run_at.millis(), id }),
            (JobState::Leased, Some(lease)) => Some(JobIndex::Leased { until: lease.until.millis(), id }),
            (JobState::Held, _) => Some(JobIndex::Held { subscription: self.subscription_id.as_u128(), id }),
            _ => None,
        }
    }
}

/// Bodies up to this size travel with a job handed straight to the worker; larger ones are read from the
/// store by its first attempt.
pub const PRELOAD_BODY_MAX: usize = 256 * 1024;

/// What a first attempt needs, as the ingest writer committed it: handed to the worker with the job.
#[derive(Debug)]
pub struct Preloaded {
    /// The subscription as stored when the delivery was committed.
    pub sub: super::Subscription,
    pub payload: super::Payload,
}
