//! Retention's deletions: deliveries past their retention, whole (row and payload, status and subscription
//! index entries, attempts, replays), a bounded batch per transaction so the ingest writer never waits
//! long; the dedupe keys kept after them once their provider can no longer send them again; and the jobs
//! left dead behind deleted deliveries. Rollup counts stay: they are the history of what arrived.

use redb::{Database, ReadableTable, WriteTransaction};

use super::{StoreError, dedupe, tables};
use crate::domain::replay::ReplayStatus;
use crate::domain::retention::{self, RetryWindows};
use crate::domain::{Delivery, DeliveryId, JobState, SubscriptionId, Timestamp};

/// What one batch deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub deleted: Vec<DeliveryId>,
    /// Expired, but their attempts are under way: kept until those end.
    pub busy: usize,
    /// Dedupe keys kept after their delivery, and those dropped because their window ended.
    pub stubs_kept: usize,
    pub stubs_dropped: usize,
    pub jobs_dropped: usize,
    /// Expired, but their records cannot be read: left in place and logged.
    pub unreadable: usize,
    /// The dedupe entries (fingerprint, delivery id) of deliveries gone for good, key and all, for
    /// [`super::Store::forget_dedupe`] once this batch committed.
    pub forgotten: Vec<(u64, u128)>,
    /// Per subscription, the time before which it keeps nothing: its cutoff, or the arrival of the oldest
    /// delivery kept while busy. Search documents older than that can all go.
    pub expired_before: Vec<(SubscriptionId, Timestamp)>,
    /// The batch was full: more may be waiting.
    pub more: bool,
}

/// Where the scan for dead jobs left off, in `META` as the high and low halves of a job id: it goes on from
/// there, so jobs that must stay at the front never hold it back.
const JOBS_CURSOR: [&str; 2] = ["retention_jobs_cursor_hi", "retention_jobs_cursor_lo"];

/// Deletes at most `limit` deliveries that arrived before their subscription's retention (its own
/// `retention_days`, else `default_days`) ended by `now`, in one transaction; keeps the dedupe key of each
/// while its provider may still send it again.
pub fn sweep(
    db: &Database,
    now: Timestamp,
    default_days: u32,
    windows: &RetryWindows,
    limit: usize,
) -> Result<Swept, StoreError> {
    let tx = db.begin_write()?;
    let mut out = Swept::default();
    let subs: Vec<(u128, u32)> = {
        let t = tx.open_table(tables::SUBSCRIPTIONS.def())?;
        let mut found = Vec::new();
        for row in t.iter()? {
            let (id, v) = row?;
            // An unreadable subscription keeps the default rather than stopping every other one's sweep.
            let own = tables::SUBSCRIPTIONS.decode(v.value()).map(|s| s.retention_days).unwrap_or_default();
            found.push((id.value(), own.filter(|d| retention::check_days(*d).is_ok()).unwrap_or(default_days)));
        }
        found
    };
    let mut left_over = false;
    for (sub, days) in subs {
        if out.deleted.len() == limit {
            left_over = true;
            break;
        }
        let cutoff_at = retention::cutoff(now, days);
        let cutoff = DeliveryId::first_at(cutoff_at);
        let mut oldest_kept: Option<Timestamp> = None;
        // Its expired deliveries, oldest first. Busy ones are passed over, so more than a batch is looked
        // at; twice a batch bounds the work a subscription full of busy deliveries can cost.
        let looked = 2 * limit;
        let expired: Vec<u128> = {
            let t = tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?;
            let mut ids = Vec::new();
            for row in t.range((sub, 0)..(sub, cutoff.as_u128()))?.take(looked) {
                ids.push(row?.0.value().1);
            }
            ids
        };
        left_over |= expired.len() == looked;
        for id in expired {
            if out.deleted.len() == limit {
                left_over = true;
                break;
            }
            match purge(&tx, sub, id, now, windows)? {
                Purged::Deleted { stub, forget } => {
                    out.deleted.push(DeliveryId::from_u128(id));
                    out.stubs_kept += usize::from(stub);
                    out.forgotten.extend(forget.map(|fp| (fp, id)));
                }
                Purged::Busy(at) => {
                    out.busy += 1;
                    oldest_kept.get_or_insert(at);
                }
                Purged::Unreadable => out.unreadable += 1,
            }
        }
        let before = oldest_kept.map_or(cutoff_at, |at| at.min(cutoff_at));
        out.expired_before.push((SubscriptionId::from_u128(sub), before));
    }
    // Another batch only when this one got somewhere: busy deliveries alone never keep the sweep going.
    out.more = left_over && !out.deleted.is_empty();
    out.stubs_dropped = drop_stubs(&tx, now, limit, &mut out.forgotten)?;
    out.jobs_dropped = drop_dead_jobs(&tx, limit)?;
    tx.commit()?;
    Ok(out)
}

enum Purged {
    Deleted {
        stub: bool,
        /// Its key's fingerprint, when the key went with it.
        forget: Option<u64>,
    },
    /// Kept while attempts are under way; it arrived then.
    Busy(Timestamp),
    /// Its record cannot be read: left for an operator, and reported.
    Unreadable,
}

/// Deletes one delivery of subscription `sub` and everything recorded about it, unless its attempts are
/// under way.
fn purge(
    tx: &WriteTransaction,
    sub: u128,
    id: u128,
    now: Timestamp,
    windows: &RetryWindows,
) -> Result<Purged, StoreError> {
    let mut deliveries = tx.open_table(tables::DELIVERIES)?;
    let record = match deliveries.get(id)?.map(|v| super::deliveries::decode_record(v.value())).transpose() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(delivery = %DeliveryId::from_u128(id), error = %e, "retention skips a delivery it cannot read");
            return Ok(Purged::Unreadable);
        }
    };
    let Some(d) = record else {
        // An index entry whose delivery is gone already: only the entry is left to remove.
        let forget = tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?.remove((sub, id))?.and_then(|fp| fp.value());
        return Ok(Purged::Deleted { stub: false, forget });
    };
    let (replays, busy) = replays_of(tx, &d)?;
    if busy {
        return Ok(Purged::Busy(d.received_at));
    }
    let mut by_delivery = tx.open_table(tables::REPLAYS_BY_DELIVERY)?;
    let mut records = tx.open_table(tables::REPLAYS.def())?;
    deliveries.remove(id)?;
    tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?.remove((sub, id))?;
    if let Some(code) = tables::indexed_status(d.status) {
        tx.open_table(tables::DELIVERIES_BY_STATUS)?.remove((code, tables::source_code(d.source), id))?;
    }
    let mut attempts = tx.open_table(tables::ATTEMPTS.def())?;
    let numbers: Vec<u32> = {
        let mut n = Vec::new();
        for row in attempts.range((id, 0)..=(id, u32::MAX))? {
            n.push(row?.0.value().1);
        }
        n
    };
    for n in numbers {
        attempts.remove((id, n))?;
    }
    let mut by_operator = tx.open_table(tables::REPLAYS_BY_OPERATOR)?;
    for replay in replays {
        by_delivery.remove((id, replay))?;
        let removed = records.remove(replay)?.map(|v| tables::REPLAYS.decode(v.value())).transpose()?;
        if let Some(r) = removed {
            by_operator.remove((r.requested_by.as_str(), replay))?;
        }
    }
    let stub = retention::stub(&d, now, windows);
    if let Some(s) = &stub {
        tx.open_table(tables::DEDUPE_STUBS.def())?.insert(id, tables::DEDUPE_STUBS.encode(s)?.as_slice())?;
    }
    let forget = if stub.is_some() { None } else { d.dedupe_key.as_deref().map(dedupe::fingerprint) };
    Ok(Purged::Deleted { stub: stub.is_some(), forget })
}

/// The replays of `d`, and whether it is busy: its own attempts, or a replay's, are under way (or held by a
/// pause), and their answers need its payload.
pub(super) fn replays_of(tx: &WriteTransaction, d: &Delivery) -> Result<(Vec<u128>, bool), StoreError> {
    let id = d.id.as_u128();
    let by_delivery = tx.open_table(tables::REPLAYS_BY_DELIVERY)?;
    let mut replays = Vec::new();
    for row in by_delivery.range((id, 0)..=(id, u128::MAX))? {
        replays.push(row?.0.value().1);
    }
    let records = tx.open_table(tables::REPLAYS.def())?;
    let mut pending = false;
    for replay in &replays {
        let status = records.get(*replay)?.map(|v| tables::REPLAYS.decode(v.value())).transpose()?.map(|r| r.status);
        pending |=
            status.is_some_and(|s| matches!(s, ReplayStatus::Queued | ReplayStatus::Retrying | ReplayStatus::Held));
    }
    Ok((replays, d.status.attempts_under_way() || pending))
}

/// Where a scan goes on from, in `META` as the high and low halves of a key: scans that go on where the
/// last left off, so rows that must stay at the front never hold them back.
fn cursor(meta: &redb::Table<&str, u64>, keys: [&str; 2]) -> Result<u128, StoreError> {
    let half = |k: &str| -> Result<u128, StoreError> { Ok(u128::from(meta.get(k)?.map_or(0, |v| v.value()))) };
    Ok((half(keys[0])? << 64) | half(keys[1])?)
}

/// After looking at `looked` of at most `limit` rows, the last being `last`: on after it, or from the
/// start once the end was reached.
fn move_cursor(
    meta: &mut redb::Table<&str, u64>,
    keys: [&str; 2],
    looked: usize,
    limit: usize,
    last: Option<u128>,
) -> Result<(), StoreError> {
    let next = if looked == limit { last.map_or(0, |id| id.saturating_add(1)) } else { 0 };
    meta.insert(keys[0], u64::try_from(next >> 64).unwrap_or(0))?;
    meta.insert(keys[1], u64::try_from(next & u128::from(u64::MAX)).unwrap_or(0))?;
    Ok(())
}

const STUBS_CURSOR: [&str; 2] = ["retention_stubs_cursor_hi", "retention_stubs_cursor_lo"];

/// Looks at up to `limit` kept dedupe keys from where the last sweep left off and drops those whose
/// provider can no longer send their delivery again (windows differ by source, so arrival order is not
/// expiry order), and any that cannot be read. The dedupe entries of those it can read go to `forgotten`.
fn drop_stubs(
    tx: &WriteTransaction,
    now: Timestamp,
    limit: usize,
    forgotten: &mut Vec<(u64, u128)>,
) -> Result<usize, StoreError> {
    let mut meta = tx.open_table(tables::META)?;
    let from = cursor(&meta, STUBS_CURSOR)?;
    let mut stubs = tx.open_table(tables::DEDUPE_STUBS.def())?;
    let mut looked = Vec::new();
    for row in stubs.range(from..)?.take(limit) {
        let (id, v) = row?;
        let (id, stub) = (id.value(), tables::DEDUPE_STUBS.decode(v.value()));
        let ended = stub.as_ref().map_or(true, |s| s.keep_until <= now);
        if ended && let Ok(s) = stub {
            forgotten.push((dedupe::fingerprint(&s.dedupe_key), id));
        }
        looked.push((id, ended));
    }
    let mut dropped = 0;
    for (id, ended) in &looked {
        if *ended {
            stubs.remove(*id)?;
            dropped += 1;
        }
    }
    move_cursor(&mut meta, STUBS_CURSOR, looked.len(), limit, looked.last().map(|(id, _)| *id))?;
    Ok(dropped)
}

/// Looks at up to `limit` jobs from where the last sweep left off and drops the dead ones whose delivery is
/// gone: nothing reads a dead job but its delivery's history.
fn drop_dead_jobs(tx: &WriteTransaction, limit: usize) -> Result<usize, StoreError> {
    let mut meta = tx.open_table(tables::META)?;
    let from = cursor(&meta, JOBS_CURSOR)?;
    let mut jobs = tx.open_table(tables::JOBS.def())?;
    let deliveries = tx.open_table(tables::DELIVERIES)?;
    let mut looked = Vec::new();
    for row in jobs.range(from..)?.take(limit) {
        let (id, v) = row?;
        // A job that cannot be read is left to the queue, which reports it.
        looked.push((id.value(), tables::JOBS.decode(v.value()).ok()));
    }
    let mut dropped = 0;
    for (id, job) in &looked {
        if let Some(job) = job
            && job.state == JobState::Dead
            && deliveries.get(job.delivery_id.as_u128())?.is_none()
        {
            jobs.remove(*id)?;
            dropped += 1;
        }
    }
    move_cursor(&mut meta, JOBS_CURSOR, looked.len(), limit, looked.last().map(|(id, _)| *id))?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;
    use crate::domain::{DeliveryStatus, Job, Source, SubscriptionId};
    use crate::storage::deliveries::{put_sample, sample};

    const DAY: i64 = 86_400_000;
    const WINDOWS: RetryWindows = RetryWindows { shopify_hours: 4, zoho_hours: 24, standard_hours: 76 };

    fn database() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("r.redb")).unwrap();
        crate::storage::migrations::migrate(&db).unwrap();
        (dir, db)
    }

    /// Files `d` under its subscription, with `fp` as its dedupe fingerprint.
    fn file(tx: &WriteTransaction, d: &Delivery, fp: Option<u64>) {
        put_sample(tx, d);
        let mut by_sub = tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION).unwrap();
        by_sub.insert((d.subscription_id.as_u128(), d.id.as_u128()), fp).unwrap();
    }

    fn subscribe(tx: &WriteTransaction, sub: SubscriptionId) {
        let row = tables::SUBSCRIPTIONS.encode(&crate::storage::subscriptions::sample(sub)).unwrap();
        tx.open_table(tables::SUBSCRIPTIONS.def()).unwrap().insert(sub.as_u128(), row.as_slice()).unwrap();
    }

    #[test]
    fn busy_deliveries_wait_dead_jobs_go_and_batches_are_bounded() {
        let (_dir, db) = database();
        let t0 = Timestamp::from_millis(1_000 * DAY);
        let sub = SubscriptionId::new(t0);
        let tx = db.begin_write().unwrap();
        let mut made = Vec::new();
        for (n, status) in
            [DeliveryStatus::Failed, DeliveryStatus::Retrying, DeliveryStatus::Succeeded, DeliveryStatus::Stored]
                .into_iter()
                .enumerate()
        {
            let mut d = sample(t0.plus_millis(n as i64), Source::Shopify, status);
            d.subscription_id = sub;
            d.dedupe_key = Some(format!("shop/{n}"));
            file(&tx, &d, None);
            made.push(d);
        }
        let mut dead = Job::deliver(made[0].id, sub, t0);
        dead.state = JobState::Dead;
        tx.open_table(tables::JOBS.def())
            .unwrap()
            .insert(dead.id.as_u128(), tables::JOBS.encode(&dead).unwrap().as_slice())
            .unwrap();
        subscribe(&tx, sub);
        tx.commit().unwrap();

        let now = t0.plus_millis(8 * DAY);
        let first = sweep(&db, now, 7, &WINDOWS, 2).unwrap();
        assert_eq!(first.deleted, vec![made[0].id, made[2].id], "the retrying one waits; two per batch");
        assert_eq!((first.busy, first.more, first.stubs_kept), (1, true, 0), "Shopify's four hours are long past");
        assert_eq!(first.jobs_dropped, 1, "the failed delivery's dead job went with it");
        let fp = |n: usize| dedupe::fingerprint(&format!("shop/{n}"));
        assert_eq!(
            first.forgotten,
            vec![(fp(0), made[0].id.as_u128()), (fp(2), made[2].id.as_u128())],
            "their keys went with them, so the writer's index drops them"
        );
        assert_eq!(first.expired_before, vec![(sub, made[1].received_at)], "search keeps the busy one's document");
        let second = sweep(&db, now, 7, &WINDOWS, 2).unwrap();
        assert_eq!((second.deleted, second.busy, second.more), (vec![made[3].id], 1, false));
        let third = sweep(&db, now, 7, &WINDOWS, 1).unwrap();
        assert_eq!((third.deleted.len(), third.busy, third.more), (0, 1, false), "a busy one alone stops the sweep");
        let tx = db.begin_read().unwrap();
        assert!(tx.open_table(tables::DELIVERIES).unwrap().get(made[1].id.as_u128()).unwrap().is_some());
        let nothing = sweep(&db, t0.plus_millis(6 * DAY), 7, &WINDOWS, 10).unwrap();
        assert_eq!((nothing.deleted.len(), nothing.busy), (0, 0), "nothing expires early");
    }

    #[test]
    fn a_kept_key_is_forgotten_when_its_window_ends() {
        let (_dir, db) = database();
        let t0 = Timestamp::from_millis(1_000 * DAY);
        let sub = SubscriptionId::new(t0);
        let mut d = sample(t0, Source::Standard, DeliveryStatus::Stored);
        d.subscription_id = sub;
        d.dedupe_key = Some("std/msg_1".into());
        let fp = dedupe::fingerprint("std/msg_1");
        // An index entry whose delivery row is gone already: its fingerprint is read from the entry.
        let mut orphan = sample(t0.plus_millis(1), Source::Standard, DeliveryStatus::Stored);
        orphan.subscription_id = sub;
        let tx = db.begin_write().unwrap();
        file(&tx, &d, Some(fp));
        file(&tx, &orphan, Some(7));
        tx.open_table(tables::DELIVERIES).unwrap().remove(orphan.id.as_u128()).unwrap();
        subscribe(&tx, sub);
        tx.commit().unwrap();

        // Retention of one day, Standard Webhooks retried for 76 hours: the key outlives the delivery.
        let deleted = sweep(&db, t0.plus_millis(DAY + 10), 1, &WINDOWS, 10).unwrap();
        assert_eq!((deleted.deleted, deleted.stubs_kept), (vec![d.id, orphan.id], 1));
        assert_eq!(
            deleted.forgotten,
            vec![(7, orphan.id.as_u128())],
            "the kept key still makes a late retry a repeat; the orphan entry's goes"
        );
        let early = sweep(&db, t0.plus_millis(75 * DAY / 24), 1, &WINDOWS, 10).unwrap();
        assert!(early.forgotten.is_empty() && early.stubs_dropped == 0);
        let ended = sweep(&db, t0.plus_millis(76 * DAY / 24), 1, &WINDOWS, 10).unwrap();
        assert_eq!((ended.stubs_dropped, ended.forgotten), (1, vec![(fp, d.id.as_u128())]));
    }
}
