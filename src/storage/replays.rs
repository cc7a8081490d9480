//! `webhook_replay_jobs`: who asked for a new attempt of which delivery, with the indexes the rate limits
//! read. Written in one transaction with the replay's job and its audit entry.

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::{StoreError, tables};
use crate::domain::replay::{PER_OPERATOR_WINDOW_MS, Replay, ReplayStatus};
use crate::domain::{DeliveryId, ReplayId, Timestamp};

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
    tx.open_table(tables::REPLAYS_BY_OPERATOR)?.insert((replay.requested_by.as_str(), id), ())?;
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
