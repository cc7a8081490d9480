//! `webhook_replay_jobs`: who asked for a new attempt of which delivery, with the indexes the rate limits
//! read. Written in one transaction with the replay's job and its audit entry.

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::{StoreError, tables};
use crate::domain::replay::{BulkReplay, BulkStatus, PER_OPERATOR_WINDOW_MS, Replay, ReplayStatus};
use crate::domain::{BulkReplayId, DeliveryId, ReplayId, Timestamp};

/// When `delivery` was last replayed, by anyone.
pub fn last_of_delivery(tx: &WriteTransaction, delivery: DeliveryId) -> Result<Option<Timestamp>, StoreError> {
    let t = tx.open_table(tables::REPLAYS_BY_DELIVERY)?;
    let id = delivery.as_u128();
    let last = t.range((id, 0)..=(id, u128::MAX))?.next_back().transpose()?;
    Ok(last.map(|(k, _)| ReplayId::from_u128(k.value().1).timestamp()))
}

/// When `operator` asked for the replays of the last hour before `now`.
pub fn recent_by_operator(tx: &WriteTransaction, operator: &str, now: Timestamp) -> Result<Vec<Timestamp>, StoreError> {
    let t = tx.open_table(tables::REPLAYS_BY_OPERATOR)?;
    let since = ReplayId::first_at(now.plus_millis(-PER_OPERATOR_WINDOW_MS)).as_u128();
    let mut out = Vec::new();
    for row in t.range((operator, since)..=(operator, u128::MAX))? {
        out.push(ReplayId::from_u128(row?.0.value().1).timestamp());
    }
    Ok(out)
}

pub fn insert(tx: &WriteTransaction, replay: &Replay) -> Result<(), StoreError> {
    let id = replay.id.as_u128();
    tx.open_table(tables::REPLAYS.def())?.insert(id, tables::REPLAYS.encode(replay)?.as_slice())?;
    tx.open_table(tables::REPLAYS_BY_DELIVERY)?.insert((replay.delivery_id.as_u128(), id), ())?;
    // A bulk replay is paced by its own rate; its replays do not use up its admin's hourly allowance.
    if replay.bulk_id.is_none() {
        tx.open_table(tables::REPLAYS_BY_OPERATOR)?.insert((replay.requested_by.as_str(), id), ())?;
    }
    Ok(())
}

pub fn set_status(tx: &WriteTransaction, id: ReplayId, status: ReplayStatus) -> Result<(), StoreError> {
    let mut t = tx.open_table(tables::REPLAYS.def())?;
    let found = t.get(id.as_u128())?.map(|v| tables::REPLAYS.decode(v.value())).transpose()?;
    if let Some(mut r) = found {
        r.status = status;
        t.insert(id.as_u128(), tables::REPLAYS.encode(&r)?.as_slice())?;
    }
    Ok(())
}

pub fn get(db: &Database, id: ReplayId) -> Result<Option<Replay>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::REPLAYS.def())?;
    t.get(id.as_u128())?.map(|v| tables::REPLAYS.decode(v.value())).transpose()
}

pub fn put_bulk(tx: &WriteTransaction, bulk: &BulkReplay) -> Result<(), StoreError> {
    tx.open_table(tables::BULK_REPLAYS.def())?
        .insert(bulk.id.as_u128(), tables::BULK_REPLAYS.encode(bulk)?.as_slice())?;
    Ok(())
}

pub fn get_bulk_in(tx: &WriteTransaction, id: BulkReplayId) -> Result<Option<BulkReplay>, StoreError> {
    let t = tx.open_table(tables::BULK_REPLAYS.def())?;
    t.get(id.as_u128())?.map(|v| tables::BULK_REPLAYS.decode(v.value())).transpose()
}

/// Changes a stored bulk replay in one transaction, so a cancel and the runner's progress never undo
/// each other. Progress between replays need not be durable on its own: the next replay's durable commit
/// carries it to disk.
pub fn update_bulk(
    db: &Database,
    id: BulkReplayId,
    durable: bool,
    change: impl FnOnce(&mut BulkReplay),
) -> Result<(), StoreError> {
    let mut tx = db.begin_write()?;
    if !durable {
        tx.set_durability(redb::Durability::None)?;
    }
    if let Some(mut b) = get_bulk_in(&tx, id)? {
        change(&mut b);
        put_bulk(&tx, &b)?;
    }
    tx.commit()?;
    Ok(())
}

pub fn get_bulk(db: &Database, id: BulkReplayId) -> Result<Option<BulkReplay>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::BULK_REPLAYS.def())?;
    t.get(id.as_u128())?.map(|v| tables::BULK_REPLAYS.decode(v.value())).transpose()
}

/// The newest `limit` bulk replays, newest first.
pub fn list_bulk(db: &Database, limit: usize) -> Result<Vec<BulkReplay>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::BULK_REPLAYS.def())?;
    let mut out = Vec::new();
    for row in t.iter()?.rev().take(limit) {
        out.push(tables::BULK_REPLAYS.decode(row?.1.value())?);
    }
    Ok(out)
}

/// Every bulk replay still running: at start, to go on with them.
pub fn running_bulk(db: &Database) -> Result<Vec<BulkReplay>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::BULK_REPLAYS.def())?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let b = tables::BULK_REPLAYS.decode(row?.1.value())?;
        if b.status == BulkStatus::Running {
            out.push(b);
        }
    }
    Ok(out)
}
