//! Attempts filed under their delivery, and what follows from each in the same transaction: the delivery's
//! status and last-attempt fields, the subscription's run of failures (and its pause on 410), the stats
//! rollups, and the replay row the attempt answers.

use redb::{Database, ReadableDatabase, WriteTransaction};

use super::jobs::Settled;
use super::{StoreError, deliveries, stats, subscriptions, tables};
use crate::domain::attempt::{Attempt, ErrorClass, Tried};
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::delivery::INITIATED_BY_PROVIDER;
use crate::domain::health::Counters;
use crate::domain::replay::ReplayStatus;
use crate::domain::{DeliveryId, DeliveryStatus, SubscriptionStatus, Timestamp};
use crate::jobs::Job;

/// A delivery's attempts, first first.
pub fn list(db: &Database, delivery: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::ATTEMPTS.def())?;
    let id = delivery.as_u128();
    let mut out = Vec::new();
    for row in t.range((id, 0)..=(id, u32::MAX))? {
        out.push(tables::ATTEMPTS.decode(row?.1.value())?);
    }
    Ok(out)
}

/// Files the attempt `job` just made (`tried`; `None` when nothing was sent) as it `settled`, and moves
/// everything that follows from it. `pause` is the destination's 410: its subscription is paused.
pub fn file(
    tx: &WriteTransaction,
    job: &Job,
    tried: Option<Tried>,
    settled: Settled,
    pause: bool,
    now: Timestamp,
) -> Result<(), StoreError> {
    if let Some(replay) = job.replay_id {
        let status = match settled {
            Settled::Done => ReplayStatus::Succeeded,
            Settled::Retrying => ReplayStatus::Retrying,
            Settled::Dead => ReplayStatus::Failed,
            Settled::Held => ReplayStatus::Held,
            Settled::Requeued => ReplayStatus::Queued,
            Settled::Stale => return Ok(()),
        };
        super::replays::set_status(tx, replay, status)?;
    }
    let Some(tried) = tried else {
        // Nothing was sent (its destination is paused): it waits again, as it did before it was taken.
        return super::jobs::waiting(tx, job);
    };
    let succeeded = tried.response_code.is_some_and(|c| (200..300).contains(&c));
    let next = match settled {
        Settled::Done => "delivered",
        Settled::Retrying => "retry",
        Settled::Held => "paused",
        Settled::Requeued => "retry",
        Settled::Dead | Settled::Stale => "gave_up",
    };
    let by = job.initiated_by.as_deref().unwrap_or(INITIATED_BY_PROVIDER);
    let mut filed = None;
    let updated = deliveries::update(tx, job.delivery_id, |d| {
        d.attempt_count += 1;
        d.last_attempted_at = Some(tried.started_at);
        d.response_code = tried.response_code;
        d.latency_ms = Some(tried.latency_ms);
        d.error_message = tried.error.as_ref().map(|(_, e)| e.clone());
        d.status = match settled {
            Settled::Done => DeliveryStatus::Succeeded,
            Settled::Retrying => DeliveryStatus::Retrying,
            Settled::Dead => DeliveryStatus::Failed,
            Settled::Held | Settled::Requeued | Settled::Stale => DeliveryStatus::Queued,
        };
        filed = Some(Attempt::new(d.id, d.attempt_count, tried.clone(), by, next));
    })?;
    // The delivery is gone (removed by retention while its job waited): nothing left to file under.
    let (Some((before, after)), Some(attempt)) = (updated, filed) else { return Ok(()) };
    let key = (after.id.as_u128(), attempt.number);
    tx.open_table(tables::ATTEMPTS.def())?.insert(key, tables::ATTEMPTS.encode(&attempt)?.as_slice())?;

    let mut delta = Counters { attempts: 1, attempt_failures: u64::from(!succeeded), ..Counters::default() };
    delta.record_latency(tried.latency_ms);
    delta.succeeded =
        u64::from(after.status == DeliveryStatus::Succeeded && before.status != DeliveryStatus::Succeeded);
    delta.failed = u64::from(after.status == DeliveryStatus::Failed && before.status != DeliveryStatus::Failed);
    let mut deltas = stats::Deltas::new();
    deltas.insert((job.subscription_id.as_u128(), now.minute()), delta);
    stats::apply(tx, &deltas)?;

    // What Hookplane could not do (a stop, a damaged body) says nothing about the destination.
    let ours = tried.error.as_ref().is_some_and(|(c, _)| *c == ErrorClass::Internal);
    if let Some(sub) = subscriptions::get_in(tx, job.subscription_id)? {
        let mut changed = sub.clone();
        if !ours {
            changed.consecutive_failures = if succeeded { 0 } else { sub.consecutive_failures.saturating_add(1) };
        }
        if pause && sub.status != SubscriptionStatus::Paused {
            changed.status = SubscriptionStatus::Paused;
            changed.updated_at = now;
            let code = tried.response_code.map_or_else(String::new, |c| c.to_string());
            let entry = Actor::system()
                .entry(now, AuditAction::DestinationPaused)
                .target(sub.id)
                .change(Change::changed("status", sub.status.as_str(), "paused"))
                .change(Change::set("reason", format!("the destination answered {code} to {}", after.id)));
            super::audit::append(tx, &entry)?;
        }
        if changed != sub {
            subscriptions::update(tx, &sub, &changed)?;
        }
    }
    Ok(())
}
