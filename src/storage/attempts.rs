//! Attempts filed under their delivery, and what follows from each in the same transaction: the delivery's
//! status and last-attempt fields, the subscription's run of failures (and its pause on 410), the stats
//! rollups, and the replay row the attempt answers.

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::{StoreError, deliveries, stats, subscriptions, tables};
use crate::domain::attempt::Attempt;
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::delivery::INITIATED_BY_PROVIDER;
use crate::domain::health::{AttemptMark, Counters};
use crate::domain::settlement::Decision;
use crate::domain::{DeliveryId, DeliveryStatus, SubscriptionId, SubscriptionStatus, Timestamp};

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

/// Deliveries read, newest first, for a subscription's failure timeline: enough to find its last attempts
/// without reading every delivery of a subscription that keeps most of them.
const TIMELINE_DELIVERIES: usize = 200;

/// The last `limit` attempts of `subscription`'s deliveries, oldest first, from its newest deliveries.
pub fn recent_of_subscription(
    tx: &ReadTransaction,
    subscription: SubscriptionId,
    limit: usize,
) -> Result<Vec<AttemptMark>, StoreError> {
    let index = tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?;
    let attempts = tx.open_table(tables::ATTEMPTS.def())?;
    let sub = subscription.as_u128();
    let mut marks = Vec::new();
    for row in index.range((sub, 0)..=(sub, u128::MAX))?.rev().take(TIMELINE_DELIVERIES) {
        let id = row?.0.value().1;
        for a in attempts.range((id, 0)..=(id, u32::MAX))? {
            let a = tables::ATTEMPTS.decode(a?.1.value())?;
            marks.push(AttemptMark {
                started_at: a.started_at,
                response_code: a.response_code,
                succeeded: a.succeeded(),
            });
        }
        if marks.len() >= limit * 2 {
            break;
        }
    }
    // Retries of older deliveries can be newer than the first attempts of newer ones.
    marks.sort_by_key(|m| m.started_at);
    let skip = marks.len().saturating_sub(limit);
    Ok(marks.split_off(skip))
}

/// Writes what `decision` says follows an answered attempt, besides the job itself: the replay's status,
/// and when something was sent, the attempt under its delivery, the delivery's status and last-attempt
/// fields, the stats, the subscription's run of failures, and its pause on 410 (audited as `system`).
pub fn file(tx: &WriteTransaction, decision: &Decision, now: Timestamp) -> Result<(), StoreError> {
    let job = &decision.job;
    if let Some(replay) = job.replay_id {
        super::replays::set_status(tx, replay, decision.settled.replay_status())?;
    }
    let Some(filed) = &decision.filed else {
        // Nothing was sent (its destination is paused): it waits again, as it did before it was taken.
        return super::jobs::waiting(tx, job);
    };
    let tried = &filed.tried;
    let by = job.initiated_by.as_deref().unwrap_or(INITIATED_BY_PROVIDER);
    let mut attempt = None;
    let updated = deliveries::update(tx, job.delivery_id, |d| {
        d.attempt_count += 1;
        d.last_attempted_at = Some(tried.started_at);
        d.response_code = tried.response_code;
        d.latency_ms = Some(tried.latency_ms);
        d.error_message = tried.error.as_ref().map(|(_, e)| e.clone());
        d.status = decision.settled.delivery_status();
        attempt = Some(Attempt::new(d.id, d.attempt_count, tried.clone(), by, decision.settled.follow_up()));
    })?;
    // The delivery is gone (removed by retention while its job waited): nothing left to file under.
    let (Some((before, after)), Some(attempt)) = (updated, attempt) else { return Ok(()) };
    let key = (after.id.as_u128(), attempt.number);
    tx.open_table(tables::ATTEMPTS.def())?.insert(key, tables::ATTEMPTS.encode(&attempt)?.as_slice())?;
    if let Some(v) = &tried.version {
        super::deploys::seen(tx, job.subscription_id, v, tried.started_at)?;
    }

    let mut delta = Counters { attempts: 1, attempt_failures: u64::from(!filed.succeeded), ..Counters::default() };
    delta.record_latency(tried.latency_ms);
    delta.succeeded =
        u64::from(after.status == DeliveryStatus::Succeeded && before.status != DeliveryStatus::Succeeded);
    delta.failed = u64::from(after.status == DeliveryStatus::Failed && before.status != DeliveryStatus::Failed);
    let mut deltas = stats::Deltas::new();
    deltas.insert((job.subscription_id.as_u128(), now.minute()), delta);
    stats::apply(tx, &deltas)?;

    if let Some(sub) = subscriptions::get_in(tx, job.subscription_id)? {
        let mut changed = sub.clone();
        changed.consecutive_failures = filed.failures.apply(sub.consecutive_failures);
        if decision.pause && sub.status != SubscriptionStatus::Paused {
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
