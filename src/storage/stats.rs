//! Per-subscription counters by minute and by hour, updated in the transaction of the events they count.

use std::collections::HashMap;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::{StoreError, tables};
use crate::domain::health::{Counters, HOURS, Health, MINUTES};
use crate::domain::{DeliveryId, Subscription, SubscriptionId, Timestamp};

/// Changes to apply, by (subscription, minute); a batch collects them so each row is written once.
pub type Deltas = HashMap<(u128, u64), Counters>;

/// Adds `deltas` to their minute rows and to the hour rows those minutes fall in.
pub fn apply(tx: &WriteTransaction, deltas: &Deltas) -> Result<(), StoreError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let mut hours: HashMap<(u128, u64), Counters> = HashMap::new();
    for ((sub, minute), delta) in deltas {
        hours.entry((*sub, minute / 60)).or_default().add(delta);
    }
    let mut t = tx.open_table(tables::STATS.def())?;
    let minutes = deltas.iter().map(|((sub, m), d)| ((*sub, tables::STATS_MINUTE, *m), d));
    let hours = hours.iter().map(|((sub, h), d)| ((*sub, tables::STATS_HOUR, *h), d));
    for (key, delta) in minutes.chain(hours) {
        let mut row = match t.get(key)? {
            Some(v) => tables::STATS.decode(v.value())?,
            None => Counters::default(),
        };
        row.add(delta);
        t.insert(key, tables::STATS.encode(&row)?.as_slice())?;
    }
    Ok(())
}

fn rows(
    tx: &ReadTransaction,
    sub: SubscriptionId,
    kind: u8,
    last: u64,
    count: u64,
) -> Result<Vec<(u64, Counters)>, StoreError> {
    let t = tx.open_table(tables::STATS.def())?;
    let id = sub.as_u128();
    let mut out = Vec::new();
    for row in t.range((id, kind, last.saturating_sub(count - 1))..=(id, kind, last))? {
        let (k, v) = row?;
        out.push((k.value().2, tables::STATS.decode(v.value())?));
    }
    Ok(out)
}

/// The newest delivery's arrival time: delivery ids are ULIDs, so the last key of the subscription's index
/// says it without reading the delivery.
/// Once retention deleted them all, the end of the last hour that received one, from the rollups, which
/// stay: a quiet subscription keeps its "last delivery", and the silence rule its measure.
pub fn last_delivery_at(tx: &ReadTransaction, sub: SubscriptionId) -> Result<Option<Timestamp>, StoreError> {
    let index = tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?;
    let id = sub.as_u128();
    let last = index.range((id, 0)..=(id, u128::MAX))?.next_back().transpose()?;
    if let Some((k, _)) = last {
        return Ok(Some(DeliveryId::from_u128(k.value().1).timestamp()));
    }
    let t = tx.open_table(tables::STATS.def())?;
    for row in t.range((id, tables::STATS_HOUR, 0)..=(id, tables::STATS_HOUR, u64::MAX))?.rev() {
        let (k, v) = row?;
        if tables::STATS.decode(v.value())?.received > 0 {
            let hour_end = (i64::try_from(k.value().2).unwrap_or(i64::MAX / 3_600_000) + 1) * 3_600_000 - 1;
            return Ok(Some(Timestamp::from_millis(hour_end)));
        }
    }
    Ok(None)
}

/// Deliveries received per hour over the `hours` ending with `now`'s hour, oldest first.
pub fn hourly_received(
    tx: &ReadTransaction,
    sub: SubscriptionId,
    now: Timestamp,
    hours: u64,
) -> Result<Vec<u64>, StoreError> {
    let this_hour = now.minute() / 60;
    let first = this_hour.saturating_sub(hours - 1);
    let mut out = vec![0; (this_hour - first + 1) as usize];
    for (hour, c) in rows(tx, sub, tables::STATS_HOUR, this_hour, hours)? {
        if let Some(slot) = hour.checked_sub(first).and_then(|i| out.get_mut(i as usize)) {
            *slot += c.received;
        }
    }
    Ok(out)
}

/// A subscription's health as of `now`: 24 hour rows, 60 minute rows and one index read.
pub fn health(tx: &ReadTransaction, sub: &Subscription, now: Timestamp) -> Result<Health, StoreError> {
    let hours = rows(tx, sub.id, tables::STATS_HOUR, now.minute() / 60, HOURS)?;
    let minutes = rows(tx, sub.id, tables::STATS_MINUTE, now.minute(), MINUTES)?;
    let last = last_delivery_at(tx, sub.id)?;
    Ok(Health::from_rollups(now, &hours, &minutes, last, sub.consecutive_failures))
}
