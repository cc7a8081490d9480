//! Operations on the delivery queue that operators ask for: pausing and resuming a destination, and
//! replaying a delivery. Each is one transaction with its audit entry.

use crate::domain::audit::{Actor, AuditAction, AuditEntry, Change};
use crate::domain::replay::{self, Limited, Replay, ReplayStatus};
use crate::domain::subscription::Destination;
use crate::domain::{
    BulkReplayId, Delivery, DeliveryId, Payload, ReplayId, Subscription, SubscriptionId, SubscriptionStatus, Timestamp,
};
use crate::domain::{Job, JobState};
use crate::ingest::Recheck;
use crate::ingest::registry::Entry;
use crate::storage::{StoreError, audit, deliveries, jobs, replays, subscriptions};

use super::{Control, ControlError};

/// Why a replay was not made.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    NotFound(String),
    /// Nothing to replay to, or nothing that can be replayed.
    #[error("{0}")]
    Refused(String),
    /// The stored body no longer matches the digest taken when it arrived.
    #[error("{0}")]
    Integrity(String),
    /// The provider's signature no longer verifies under the secret that verified it at ingest.
    #[error("{0}")]
    SignatureFailed(String),
    /// A rate limit, as checked at the given time.
    #[error("replay limit reached")]
    Limited(Limited, Timestamp),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::task::TaskFailed> for ReplayError {
    fn from(e: crate::task::TaskFailed) -> Self {
        ReplayError::Store(e.into())
    }
}

/// What a replay's second look at the provider's signature found, as its audit entry says it; a signature
/// that no longer verifies refuses the replay.
pub fn recheck_note(found: Recheck) -> Result<String, ReplayError> {
    match found {
        Recheck::Verified => Ok("the provider's signature verified again".to_owned()),
        Recheck::Skipped(why) => Ok(format!("not checked: {why}")),
        Recheck::Failed(why) => Err(ReplayError::SignatureFailed(format!(
            "not replayed: the stored delivery no longer verifies under the secret that verified it ({why})"
        ))),
    }
}

/// A subscription after its destination was paused, resumed or changed, and how many held deliveries
/// that released.
pub struct DestinationState {
    pub subscription: Subscription,
    pub released: usize,
}

impl Control {
    fn forwarding(&self, tx: &redb::WriteTransaction, id: SubscriptionId) -> Result<Subscription, ControlError> {
        let sub =
            subscriptions::get_in(tx, id)?.ok_or_else(|| ControlError::NotFound(format!("no subscription {id}")))?;
        if matches!(sub.destination, Destination::Store) {
            return Err(ControlError::Conflict(format!(
                "subscription `{}` keeps its deliveries (destination `store`): there is nothing to pause or resume",
                sub.name
            )));
        }
        Ok(sub)
    }

    /// Commits a change to a destination with its audit entry, then brings the registry along (under
    /// `serial`, which the caller holds) and wakes the worker for the deliveries it released.
    pub(super) fn commit_destination(
        &self,
        tx: redb::WriteTransaction,
        entry: &AuditEntry,
        after: Subscription,
        released: usize,
    ) -> Result<DestinationState, ControlError> {
        audit::append(&tx, entry)?;
        tx.commit().map_err(StoreError::from)?;
        if let Some(e) = self.registry.snapshot().get(after.id) {
            self.registry.upsert(Entry { sub: after.clone(), secrets: e.secrets.clone() });
        }
        if released > 0 {
            self.wake.wake();
        }
        Ok(DestinationState { subscription: after, released })
    }

    /// Makes the deliveries held for `id` ready, in the order they arrived, with their replays queued again.
    /// Returns how many.
    pub(super) fn release_held_in(
        &self,
        tx: &redb::WriteTransaction,
        id: SubscriptionId,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let released = jobs::release_held(tx, id, now)?;
        for r in released.iter().filter_map(|job| job.replay_id) {
            replays::set_status(tx, r, ReplayStatus::Queued)?;
        }
        Ok(released.len())
    }

    /// Pauses (`pause`) or resumes a destination. Paused, deliveries keep being received and stored, and
    /// wait; a resume sends the ones held meanwhile in the order they arrived. Asking for the state it is in
    /// already changes nothing.
    pub fn set_paused_blocking(
        &self,
        id: SubscriptionId,
        pause: bool,
        by: &Actor,
    ) -> Result<DestinationState, ControlError> {
        let _serial = self.serial();
        let db = self.store.db()?;
        let tx = db.begin_write().map_err(StoreError::from)?;
        let before = self.forwarding(&tx, id)?;
        if (before.status == SubscriptionStatus::Paused) == pause {
            return Ok(DestinationState { subscription: before, released: 0 });
        }
        let now = self.clock.now();
        let status = if pause { SubscriptionStatus::Paused } else { SubscriptionStatus::Active };
        let after = Subscription { status, updated_at: now, ..before.clone() };
        subscriptions::update(&tx, &before, &after)?;
        let released = if pause { 0 } else { self.release_held_in(&tx, id, now)? };
        let action = if pause { AuditAction::DestinationPaused } else { AuditAction::DestinationResumed };
        let mut entry =
            by.entry(now, action).target(id).change(Change::changed("status", before.status.as_str(), status.as_str()));
        if !pause {
            entry = entry.change(Change::set("released", released.to_string()));
        }
        self.commit_destination(tx, &entry, after, released)
    }

    /// Replays a delivery: checks its stored body against its digest and the rate limits, then records the
    /// replay, queues its attempt and audits it, in one transaction. The limits are checked inside that
    /// transaction, so two replays at once cannot both pass.
    /// `recheck` looks at the provider's signature again and says what it found, or refuses. A replay made
    /// by a bulk replay (`bulk`) is paced by its own rate, not by the operator's hourly limit.
    pub fn replay_blocking(
        &self,
        id: DeliveryId,
        by: &Actor,
        bulk: Option<BulkReplayId>,
        recheck: impl FnOnce(&Delivery, &Payload) -> Result<String, ReplayError>,
    ) -> Result<Replay, ReplayError> {
        let db = self.store.db()?;
        let found = match deliveries::body(&db, id) {
            Ok(found) => found,
            Err(StoreError::Corrupt { detail, .. }) => {
                return Err(ReplayError::Integrity(format!("not replayed: {detail}")));
            }
            Err(e) => return Err(e.into()),
        };
        let (delivery, payload) = found.ok_or_else(|| ReplayError::NotFound(format!("no delivery {id}")))?;
        if let Some(e) = &delivery.erased {
            return Err(ReplayError::Refused(format!("{id}: {}", e.replay_refusal())));
        }
        if delivery.status.attempts_under_way() {
            // Its own job is still live: a replay now would send it twice, side by side.
            return Err(ReplayError::Refused(format!(
                "{id} is still {}: it will be sent on its own (or on resume, when its destination is paused); \
                 replay it once it has succeeded or failed",
                delivery.status.as_str()
            )));
        }
        let signature = recheck(&delivery, &payload)?;
        let tx = db.begin_write().map_err(StoreError::from)?;
        // Retention may have deleted it since it was read: a replay of nothing would leave a job behind.
        // …or an erasure may have erased it.
        match deliveries::record_in(&tx, id)? {
            None => return Err(ReplayError::NotFound(format!("no delivery {id}: its retention ended"))),
            Some(d) => {
                if let Some(e) = &d.erased {
                    return Err(ReplayError::Refused(format!("{id}: {}", e.replay_refusal())));
                }
            }
        }
        let sub = subscriptions::get_in(&tx, delivery.subscription_id)?
            .ok_or_else(|| ReplayError::NotFound(format!("the subscription of {id} no longer exists")))?;
        if matches!(sub.destination, Destination::Store) {
            return Err(ReplayError::Refused(format!(
                "subscription `{}` keeps its deliveries (destination `store`): there is no destination to replay to",
                sub.name
            )));
        }
        let now = self.clock.now();
        let last = replays::last_of_delivery(&tx, id)?;
        let recent = if bulk.is_some() { Vec::new() } else { replays::recent_by_operator(&tx, &by.label, now)? };
        replay::check(now, last, &recent).map_err(|l| ReplayError::Limited(l, now))?;
        let paused = sub.status == SubscriptionStatus::Paused;
        let record = Replay {
            id: ReplayId::new(now),
            delivery_id: id,
            requested_by: by.label.clone(),
            requested_at: now,
            status: if paused { ReplayStatus::Held } else { ReplayStatus::Queued },
            bulk_id: bulk,
        };
        replays::insert(&tx, &record)?;
        let mut job = Job::deliver(id, sub.id, now);
        job.initiated_by = Some(by.label.clone());
        job.replay_id = Some(record.id);
        if paused {
            job.state = JobState::Held;
        }
        jobs::enqueue(&tx, &job)?;
        let entry = by
            .entry(now, AuditAction::DeliveryReplayed)
            .target(id)
            .change(Change::set("replay_id", record.id.to_string()))
            .change(Change::set("destination", sub.destination.url().unwrap_or_default()))
            .change(Change::set("signature", signature));
        let entry = match bulk {
            Some(b) => entry.change(Change::set("bulk_replay_id", b.to_string())),
            None => entry,
        };
        audit::append(&tx, &entry)?;
        tx.commit().map_err(StoreError::from)?;
        self.wake.wake();
        Ok(record)
    }
}
