//! Per-subscription, per-minute counters, updated in the transaction of the events they count.

use std::collections::HashMap;

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::records::MinuteStats;
use super::{StoreError, tables};
use crate::domain::SubscriptionId;

/// Changes to apply, by (subscription, minute); a batch collects them so each row is written once.
pub type Deltas = HashMap<(u128, u64), MinuteStats>;

pub fn apply(tx: &WriteTransaction, deltas: &Deltas) -> Result<(), StoreError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let mut t = tx.open_table(tables::STATS_MINUTE.def())?;
    for (key, delta) in deltas {
        let mut row = match t.get(*key)? {
            Some(v) => tables::STATS_MINUTE.decode(v.value())?,
            None => MinuteStats::default(),
        };
        row.add(delta);
        t.insert(*key, tables::STATS_MINUTE.encode(&row)?.as_slice())?;
    }
    Ok(())
}

/// The sum of a subscription's minutes in `[from_minute, to_minute]`.
pub fn total(db: &Database, sub: SubscriptionId, from_minute: u64, to_minute: u64) -> Result<MinuteStats, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::STATS_MINUTE.def())?;
    let mut sum = MinuteStats::default();
    for row in t.range((sub.as_u128(), from_minute)..=(sub.as_u128(), to_minute))? {
        sum.add(&tables::STATS_MINUTE.decode(row?.1.value())?);
    }
    Ok(sum)
}
