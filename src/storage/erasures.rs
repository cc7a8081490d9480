//! Privacy erasures: their records, and the erasure of one page of deliveries in one transaction: each
//! body replaced by its tombstone, the headers and the metadata kept.

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::{StoreError, deliveries, payload, tables};
use crate::domain::erasure::{self, Erasure};
use crate::domain::replay::BulkStatus;
use crate::domain::{DeliveryId, ErasureId, Timestamp};

/// The compression level of a tombstone's payload: it is a few dozen bytes.
const TOMBSTONE_LEVEL: i32 = 1;

pub fn put(tx: &WriteTransaction, e: &Erasure) -> Result<(), StoreError> {
    tx.open_table(tables::ERASURES.def())?.insert(e.id.as_u128(), tables::ERASURES.encode(e)?.as_slice())?;
    Ok(())
}

pub fn get_in(tx: &WriteTransaction, id: ErasureId) -> Result<Option<Erasure>, StoreError> {
    let t = tx.open_table(tables::ERASURES.def())?;
    t.get(id.as_u128())?.map(|v| tables::ERASURES.decode(v.value())).transpose()
}

pub fn get(db: &Database, id: ErasureId) -> Result<Option<Erasure>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::ERASURES.def())?;
    t.get(id.as_u128())?.map(|v| tables::ERASURES.decode(v.value())).transpose()
}

/// Changes a stored erasure in one transaction, so a cancel and the runner's progress never undo each other.
pub fn update(db: &Database, id: ErasureId, change: impl FnOnce(&mut Erasure)) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    if let Some(mut e) = get_in(&tx, id)? {
        change(&mut e);
        put(&tx, &e)?;
    }
    tx.commit()?;
    Ok(())
}

/// The newest `limit` erasures, newest first.
pub fn list(db: &Database, limit: usize) -> Result<Vec<Erasure>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::ERASURES.def())?;
    let mut out = Vec::new();
    for row in t.iter()?.rev().take(limit) {
        out.push(tables::ERASURES.decode(row?.1.value())?);
    }
    Ok(out)
}

/// Every erasure still running: at start, to go on with them.
pub fn running(db: &Database) -> Result<Vec<Erasure>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::ERASURES.def())?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let e = tables::ERASURES.decode(row?.1.value())?;
        if e.status == BulkStatus::Running {
            out.push(e);
        }
    }
    Ok(out)
}

/// What erasing one page did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub erased: Vec<DeliveryId>,
    /// Erased before (by this erasure before a restart, or another), or gone: their documents may go too.
    pub settled: Vec<DeliveryId>,
    /// Erased already, or deleted by retention meanwhile.
    pub skipped: u64,
    /// Their attempts are under way: left.
    pub busy: Vec<DeliveryId>,
}

/// Erases `ids` for `erasure` at `at` in one transaction.
pub fn erase_page(db: &Database, ids: &[DeliveryId], at: Timestamp, erasure: ErasureId) -> Result<Page, StoreError> {
    let tx = db.begin_write()?;
    let tombstone = erasure::tombstone(erasure, at);
    let mut page = Page::default();
    for &id in ids {
        let row = tx.open_table(tables::DELIVERIES)?.get(id.as_u128())?.map(|v| v.value().to_vec());
        let Some(row) = row else {
            page.settled.push(id);
            page.skipped += 1;
            continue;
        };
        let (record, stored) = deliveries::split(&row)?;
        let mut d = tables::DELIVERY_RECORD.decode(record)?;
        if d.erased.is_some() {
            page.settled.push(id);
            page.skipped += 1;
            continue;
        }
        if super::retention::replays_of(&tx, &d)?.1 {
            page.busy.push(id);
            continue;
        }
        let headers = payload::decode_prefix(stored, 0)?.headers;
        erasure::erase(&mut d, erasure, at, &tombstone);
        let stored = payload::encode(&headers, &tombstone, TOMBSTONE_LEVEL);
        let row = deliveries::join(&tables::DELIVERY_RECORD.encode(&d)?, &stored)?;
        tx.open_table(tables::DELIVERIES)?.insert(id.as_u128(), row.as_slice())?;
        clear_excerpts(&tx, id)?;
        page.erased.push(id);
    }
    tx.commit()?;
    Ok(page)
}

/// A destination's answer may echo the payload: the start of each answer kept with the delivery's attempts
/// goes with it.
fn clear_excerpts(tx: &WriteTransaction, id: DeliveryId) -> Result<(), StoreError> {
    let mut attempts = tx.open_table(tables::ATTEMPTS.def())?;
    let mut kept = Vec::new();
    for row in attempts.range((id.as_u128(), 0)..=(id.as_u128(), u32::MAX))? {
        let (k, v) = row?;
        let a = tables::ATTEMPTS.decode(v.value())?;
        if !a.excerpt.is_empty() {
            kept.push((k.value().1, a));
        }
    }
    for (n, mut a) in kept {
        a.excerpt.clear();
        attempts.insert((id.as_u128(), n), tables::ATTEMPTS.encode(&a)?.as_slice())?;
    }
    Ok(())
}

/// Shopify's redact webhooks stored after `after` (from the first when `None`) whose erasure is not
/// recorded yet, oldest first, at most `limit`, with their bodies: the subscriptions of the redact topics
/// are read through their own index, so this costs what those few deliveries cost.
pub fn unhandled_redacts(
    db: &Database,
    after: Option<DeliveryId>,
    limit: usize,
) -> Result<Vec<(crate::domain::Delivery, Vec<u8>)>, StoreError> {
    use crate::domain::Source;
    let tx = db.begin_read()?;
    let subs = tx.open_table(tables::SUBSCRIPTIONS.def())?;
    let by_sub = tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?;
    let rows = tx.open_table(tables::DELIVERIES)?;
    let erasures = tx.open_table(tables::ERASURES.def())?;
    let from = after.map_or(0, |a| a.as_u128().saturating_add(1));
    let mut found = Vec::new();
    for row in subs.iter()? {
        let (id, v) = row?;
        let s = tables::SUBSCRIPTIONS.decode(v.value())?;
        if s.source != Source::Shopify || !(s.topic == erasure::CUSTOMERS_REDACT || s.topic == erasure::SHOP_REDACT) {
            continue;
        }
        let sub = id.value();
        // Up to `limit` of each subscription, the oldest of all kept below: the caller goes on after the
        // newest it got, so no subscription's older webhooks may be left behind another's.
        let mut taken = 0;
        for entry in by_sub.range((sub, from)..=(sub, u128::MAX))? {
            let delivery = entry?.0.value().1;
            if taken >= limit {
                break;
            }
            if erasures.get(delivery)?.is_some() {
                continue;
            }
            let Some(row) = rows.get(delivery)? else { continue };
            let (record, stored) = deliveries::split(row.value())?;
            let d = tables::DELIVERY_RECORD.decode(record)?;
            found.push((d, payload::decode(stored)?.body));
            taken += 1;
        }
    }
    found.sort_by_key(|(d, _)| d.id);
    found.truncate(limit);
    Ok(found)
}
