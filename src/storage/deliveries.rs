//! The deliveries repository: writing a delivery with everything that belongs to it in one transaction,
//! reading one, listing with filters, and reading its exact body.

use std::collections::BinaryHeap;

use redb::{Database, ReadableDatabase, ReadableTable, Table, WriteTransaction};

use super::dedupe::{self, DedupeIndex};
use super::jobs::JobTables;
use super::{StoreError, payload, subscriptions, tables};
use crate::domain::Job;
use crate::domain::delivery::{Match, PREVIEW_BYTES, preview};
use crate::domain::filter::Filter;
use crate::domain::{Delivery, DeliveryId, Payload, Source};

/// A verified delivery on its way into storage, encoded before it reaches the writer so the one thread
/// that commits spends its time on the tree, not on serialising.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery: Delivery,
    /// Headers and body as `payload::encode` stored them.
    payload: Vec<u8>,
    /// The row as stored: see `tables::DELIVERIES`.
    row: Vec<u8>,
}

impl NewDelivery {
    pub fn new(delivery: Delivery, payload: Vec<u8>) -> Result<Self, StoreError> {
        let row = join(&tables::DELIVERY_RECORD.encode(&delivery)?, &payload)?;
        Ok(Self { delivery, payload, row })
    }

    /// The row as stored.
    #[cfg(test)]
    pub(crate) fn row(&self) -> &[u8] {
        &self.row
    }

    /// The delivery and its stored payload (see `payload::decode`).
    pub fn into_parts(self) -> (Delivery, Vec<u8>) {
        (self.delivery, self.payload)
    }

    /// Applies a change to the delivery and encodes it again.
    pub fn update(&mut self, change: impl FnOnce(&mut Delivery)) -> Result<(), StoreError> {
        change(&mut self.delivery);
        self.row = join(&tables::DELIVERY_RECORD.encode(&self.delivery)?, &self.payload)?;
        Ok(())
    }
}

pub(super) fn join(record: &[u8], payload: &[u8]) -> Result<Vec<u8>, StoreError> {
    let len = u32::try_from(record.len())
        .map_err(|_| StoreError::Corrupt { table: "deliveries_v1", detail: "record over 4 GiB".into() })?;
    let mut row = Vec::with_capacity(4 + record.len() + payload.len());
    row.extend_from_slice(&len.to_le_bytes());
    row.extend_from_slice(record);
    row.extend_from_slice(payload);
    Ok(row)
}

/// The record and payload parts of a stored row.
pub(super) fn split(row: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let bad = || StoreError::Corrupt { table: "deliveries_v1", detail: "row shorter than its record length".into() };
    let len = row.get(..4).ok_or_else(bad)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let record = row.get(4..4 + len).ok_or_else(bad)?;
    Ok((record, &row[4 + len..]))
}

/// The delivery of a stored row.
pub fn decode_record(row: &[u8]) -> Result<Delivery, StoreError> {
    tables::DELIVERY_RECORD.decode(split(row)?.0)
}

/// A stored row with its record replaced, the payload untouched.
fn replace_record(row: &[u8], delivery: &Delivery) -> Result<Vec<u8>, StoreError> {
    join(&tables::DELIVERY_RECORD.encode(delivery)?, split(row)?.1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// Already stored under this id: nothing was written.
    Duplicate(DeliveryId),
}

/// A delivery of `source` received at `at` with `status`, for tests that need one stored.
#[cfg(test)]
pub(crate) fn sample(at: crate::domain::Timestamp, source: Source, status: crate::domain::DeliveryStatus) -> Delivery {
    use crate::domain::SubscriptionId;
    Delivery {
        id: DeliveryId::new(at),
        subscription_id: SubscriptionId::new(at),
        source,
        topic: "orders/create".into(),
        provider_delivery_id: None,
        dedupe_key: None,
        event_id: None,
        account: "a".into(),
        status,
        attempt_count: 0,
        received_at: at,
        last_attempted_at: None,
        response_code: None,
        latency_ms: None,
        size_bytes: 0,
        content_type: None,
        body_sha256: String::new(),
        error_message: None,
        initiated_by: "provider".into(),
        verified_with: "current".into(),
        verified_fingerprint: None,
        erased: None,
    }
}

/// Writes `d` with an empty JSON body straight into `DELIVERIES`, as a test's starting point.
#[cfg(test)]
pub(crate) fn put_sample(tx: &WriteTransaction, d: &Delivery) {
    let new = NewDelivery::new(d.clone(), payload::encode(&[], b"{}", 1)).unwrap();
    tx.open_table(tables::DELIVERIES).unwrap().insert(d.id.as_u128(), new.row()).unwrap();
}

/// The tables a delivery touches, opened once per transaction.
pub struct DeliveryWriter<'tx> {
    tx: &'tx WriteTransaction,
    deliveries: Table<'tx, u128, &'static [u8]>,
    by_subscription: Table<'tx, (u128, u128), Option<u64>>,
    jobs: JobTables<'tx>,
    by_status: Table<'tx, (u8, u8, u128), ()>,
}

impl<'tx> DeliveryWriter<'tx> {
    pub fn open(tx: &'tx WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            tx,
            deliveries: tx.open_table(tables::DELIVERIES)?,
            by_subscription: tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?,
            jobs: JobTables::open(tx)?,
            by_status: tx.open_table(tables::DELIVERIES_BY_STATUS)?,
        })
    }

    /// Writes the delivery with its payload, its index and dedupe entry, and its job, unless a delivery with
    /// the same dedupe key is stored already. `index` must be reloaded if the transaction does not commit.
    pub fn insert(
        &mut self,
        new: &NewDelivery,
        job: Option<&Job>,
        index: &mut DedupeIndex,
    ) -> Result<Inserted, StoreError> {
        let d = &new.delivery;
        let id = d.id.as_u128();
        let mut fingerprint = None;
        if let Some(key) = &d.dedupe_key {
            let fp = dedupe::fingerprint(key);
            for candidate in index.candidates(fp) {
                let stored = self.deliveries.get(candidate)?.map(|v| decode_record(v.value())).transpose()?;
                let stored_key = match stored {
                    Some(s) => s.dedupe_key,
                    // Deleted by retention: its key may be kept while the provider can still send it again.
                    // Read only then, so the table is not opened on the ingest path otherwise.
                    None => {
                        let stubs = self.tx.open_table(tables::DEDUPE_STUBS.def())?;
                        let stub = stubs.get(candidate)?.map(|v| tables::DEDUPE_STUBS.decode(v.value())).transpose()?;
                        // One whose window ended waits for the sweep to drop it, and no longer counts.
                        stub.filter(|s| s.keep_until > d.received_at).map(|s| s.dedupe_key)
                    }
                };
                if stored_key.as_deref() == Some(key.as_str()) {
                    return Ok(Inserted::Duplicate(DeliveryId::from_u128(candidate)));
                }
            }
            index.insert(fp, id);
            fingerprint = Some(fp);
        }
        self.deliveries.insert(id, new.row.as_slice())?;
        self.by_subscription.insert((d.subscription_id.as_u128(), id), fingerprint)?;
        if let Some(code) = tables::indexed_status(d.status) {
            self.by_status.insert((code, tables::source_code(d.source), id), ())?;
        }
        if let Some(job) = job {
            // Ready, held while its destination is paused, or leased straight to the running worker.
            self.jobs.insert(job)?;
        }
        Ok(Inserted::New)
    }
}

/// A delivery as operators see it: its metadata and the start of its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub delivery: Delivery,
    pub preview: String,
    /// The preview is less than the whole body.
    pub preview_truncated: bool,
    /// Where a text search matched, when the list came from one.
    pub matched: Option<Match>,
}

/// Headers as received, in order.
pub type HeaderList = Vec<(String, String)>;

fn listed(row: &[u8]) -> Result<(Listed, HeaderList), StoreError> {
    let (record, stored) = split(row)?;
    with_preview(tables::DELIVERY_RECORD.decode(record)?, stored)
}

fn with_preview(delivery: Delivery, stored: &[u8]) -> Result<(Listed, HeaderList), StoreError> {
    let p = payload::decode_prefix(stored, PREVIEW_BYTES)?;
    let (preview, preview_truncated) = preview(&p.body, delivery.size_bytes);
    Ok((Listed { delivery, preview, preview_truncated, matched: None }, p.headers))
}

/// One delivery with its preview and the headers it arrived with.
/// Whether the delivery is still stored, as `tx` sees it.
/// The record of a delivery, read in a write transaction.
pub fn record_in(tx: &WriteTransaction, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
    let table = tx.open_table(tables::DELIVERIES)?;
    let found = table.get(id.as_u128())?;
    found.map(|row| decode_record(row.value())).transpose()
}

pub fn get(db: &Database, id: DeliveryId) -> Result<Option<(Listed, HeaderList)>, StoreError> {
    let tx = db.begin_read()?;
    let found = tx.open_table(tables::DELIVERIES)?.get(id.as_u128())?;
    found.map(|row| listed(row.value())).transpose()
}

/// The exact body of a delivery, checked against the digest taken at ingest.
pub fn body(db: &Database, id: DeliveryId) -> Result<Option<(Delivery, Payload)>, StoreError> {
    let tx = db.begin_read()?;
    let Some(row) = tx.open_table(tables::DELIVERIES)?.get(id.as_u128())? else { return Ok(None) };
    let (record, stored) = split(row.value())?;
    let delivery = tables::DELIVERY_RECORD.decode(record)?;
    let p = payload::decode(stored)?;
    if crate::secrets::sha256_hex(&p.body) != delivery.body_sha256 {
        return Err(StoreError::Corrupt {
            table: "deliveries_v1",
            detail: format!("the body of {id} does not match the digest taken when it arrived"),
        });
    }
    Ok(Some((delivery, p)))
}

/// Rewrites a delivery's record with `change` applied, keeping `DELIVERIES_BY_STATUS` in step: how anything
/// that moves a delivery on (the processing worker, the demo's history) changes it. Returns the record as it
/// was and as it is now, or `None` when no such delivery is stored.
pub fn update(
    tx: &WriteTransaction,
    id: DeliveryId,
    change: impl FnOnce(&mut Delivery),
) -> Result<Option<(Delivery, Delivery)>, StoreError> {
    let mut table = tx.open_table(tables::DELIVERIES)?;
    let Some(row) = table.get(id.as_u128())?.map(|v| v.value().to_vec()) else { return Ok(None) };
    let before = decode_record(&row)?;
    let mut after = before.clone();
    change(&mut after);
    if after == before {
        // A claim of a replay's job, or a job that waits again without having been taken: nothing to write.
        return Ok(Some((before, after)));
    }
    table.insert(id.as_u128(), replace_record(&row, &after)?.as_slice())?;
    if (before.status, before.source) != (after.status, after.source) {
        let mut by_status = tx.open_table(tables::DELIVERIES_BY_STATUS)?;
        if let Some(code) = tables::indexed_status(before.status) {
            by_status.remove((code, tables::source_code(before.source), id.as_u128()))?;
        }
        if let Some(code) = tables::indexed_status(after.status) {
            by_status.insert((code, tables::source_code(after.source), id.as_u128()), ())?;
        }
    }
    Ok(Some((before, after)))
}

/// One delivery with its preview, its headers and its exact body checked against its digest: the payload
/// view.
pub fn get_full(db: &Database, id: DeliveryId) -> Result<Option<(Listed, Payload)>, StoreError> {
    let Some((delivery, payload)) = body(db, id)? else { return Ok(None) };
    let (preview, preview_truncated) = preview(&payload.body, delivery.size_bytes);
    Ok(Some((Listed { delivery, preview, preview_truncated, matched: None }, payload)))
}

/// How many deliveries are stored (redb keeps the count: no scan).
pub fn count(db: &Database) -> Result<u64, StoreError> {
    use redb::ReadableTableMetadata as _;
    Ok(db.begin_read()?.open_table(tables::DELIVERIES)?.len()?)
}

/// Delivery ids from one index, newest first.
type IdStream<'a> = Box<dyn Iterator<Item = Result<u128, StoreError>> + 'a>;

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Listed>,
    /// Pass as `before` for the next page; `None` when there is nothing older.
    pub next_cursor: Option<DeliveryId>,
}

/// Most rows one page may examine. A filter that matches rarely returns a short page and a cursor to go
/// on from, so no request scans without bound.
pub const MAX_SCAN: usize = 10_000;

/// Deliveries matching `filter`, newest first, strictly older than `before`. The cursor is a delivery id,
/// so new arrivals never shift the pages already handed out. Delivery ids begin with their arrival time,
/// so `from` and `to` narrow the key range rather than filter rows.
pub fn list(db: &Database, filter: &Filter, before: Option<DeliveryId>, limit: usize) -> Result<Page, StoreError> {
    let mut upper = before.map_or(u128::MAX, DeliveryId::as_u128);
    if let Some(to) = filter.to {
        upper = upper.min(DeliveryId::first_at(to).as_u128());
    }
    let lower = filter.from.map_or(0, |from| DeliveryId::first_at(from).as_u128());
    if lower >= upper {
        return Ok(Page { items: Vec::new(), next_cursor: None });
    }
    let tx = db.begin_read()?;
    let deliveries = tx.open_table(tables::DELIVERIES)?;
    let mut items = Vec::with_capacity(limit.min(256));
    let mut examined = 0usize;
    let mut last_examined = None;
    let mut more = false;

    let mut consider = |id: u128, items: &mut Vec<Listed>| -> Result<bool, StoreError> {
        examined += 1;
        last_examined = Some(DeliveryId::from_u128(id));
        if let Some(row) = deliveries.get(id)? {
            // Status is in the record: the payload is decompressed only for deliveries that match.
            let (record, stored) = split(row.value())?;
            let d = tables::DELIVERY_RECORD.decode(record)?;
            if filter.status.is_none_or(|s| s == d.status) {
                items.push(with_preview(d, stored)?.0);
            }
        }
        Ok(items.len() < limit && examined < MAX_SCAN)
    };

    // Rare statuses come from their own index; otherwise a subscription filter picks the per-subscription
    // streams; otherwise all deliveries, newest first. Every row is still checked against the filter.
    let indexed_status = filter
        .status
        .and_then(tables::indexed_status)
        .filter(|_| filter.subscription.is_none() && filter.topic.is_none() && filter.account.is_none());
    let by_status;
    let by_subscription;
    let mut streams: Vec<IdStream<'_>> = Vec::new();
    if let Some(code) = indexed_status {
        by_status = tx.open_table(tables::DELIVERIES_BY_STATUS)?;
        let sources = filter.source.map_or_else(|| Source::ALL.to_vec(), |s| vec![s]);
        for src in sources {
            let src = tables::source_code(src);
            let rows = by_status.range((code, src, lower)..(code, src, upper))?.rev();
            streams.push(Box::new(rows.map(|r| r.map(|(k, _)| k.value().2).map_err(StoreError::from))));
        }
    } else if filter.by_subscription() {
        let subs: Vec<u128> = subscriptions::list(db)?
            .into_iter()
            .filter(|s| {
                filter.subscription.is_none_or(|id| id == s.id)
                    && filter.source.is_none_or(|src| src == s.source)
                    && filter.topic.as_ref().is_none_or(|t| *t == s.topic)
                    && filter.account.as_ref().is_none_or(|a| *a == s.account)
            })
            .map(|s| s.id.as_u128())
            .collect();
        by_subscription = tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?;
        for sub in subs {
            let rows = by_subscription.range((sub, lower)..(sub, upper))?.rev();
            streams.push(Box::new(rows.map(|r| r.map(|(k, _)| k.value().1).map_err(StoreError::from))));
        }
    } else {
        let rows = deliveries.range(lower..upper)?.rev();
        streams.push(Box::new(rows.map(|r| r.map(|(k, _)| k.value()).map_err(StoreError::from))));
    }
    // Merge the streams, newest first.
    let mut heads = BinaryHeap::new();
    for (i, s) in streams.iter_mut().enumerate() {
        if let Some(id) = s.next() {
            heads.push((id?, i));
        }
    }
    while let Some((id, i)) = heads.pop() {
        if let Some(next) = streams[i].next() {
            heads.push((next?, i));
        }
        if !consider(id, &mut items)? {
            more = !heads.is_empty();
            break;
        }
    }
    let next_cursor = if !more {
        None
    } else if items.len() >= limit {
        items.last().map(|l| l.delivery.id)
    } else {
        last_examined
    };
    Ok(Page { items, next_cursor })
}

/// The id of the first delivery after `after` (from the first when `None`), reading keys only.
pub fn next_id(db: &Database, after: Option<DeliveryId>) -> Result<Option<DeliveryId>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::DELIVERIES)?;
    let from = after.map_or(0, |a| a.as_u128().saturating_add(1));
    let first = t.range(from..)?.next().transpose()?;
    Ok(first.map(|(k, _)| DeliveryId::from_u128(k.value())))
}

/// The id of the newest delivery, reading one key.
pub fn newest_id(db: &Database) -> Result<Option<DeliveryId>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::DELIVERIES)?;
    let last = t.last()?;
    Ok(last.map(|(k, _)| DeliveryId::from_u128(k.value())))
}

/// How many deliveries come after `after` (all of them when `None`), counted up to `cap`.
pub fn count_after(db: &Database, after: Option<DeliveryId>, cap: u64) -> Result<u64, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::DELIVERIES)?;
    let from = after.map_or(0, |a| a.as_u128().saturating_add(1));
    let mut n = 0;
    for row in t.range(from..)? {
        row?;
        n += 1;
        if n >= cap {
            break;
        }
    }
    Ok(n)
}

/// Up to `limit` deliveries with their payloads as stored (`payload::decode` gives the exact body), in id
/// order, starting after `after` (from the first when `None`): what the search indexer reads to catch up or
/// rebuild. It decodes only what it indexes, and outside the read transaction.
pub fn scan(db: &Database, after: Option<DeliveryId>, limit: usize) -> Result<Vec<(Delivery, Vec<u8>)>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::DELIVERIES)?;
    let mut out = Vec::with_capacity(limit.min(1024));
    let rows = match after {
        Some(a) => t.range((a.as_u128().saturating_add(1))..)?,
        None => t.range(0..)?,
    };
    for row in rows.take(limit) {
        out.push(scanned(row?.1.value())?);
    }
    Ok(out)
}

/// Like [`scan`], from the newest delivery down: up to `limit` of those from `from` on and before `before`
/// (from the newest when `None`), newest first.
pub fn scan_back(
    db: &Database,
    from: Option<DeliveryId>,
    before: Option<DeliveryId>,
    limit: usize,
) -> Result<Vec<(Delivery, Vec<u8>)>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::DELIVERIES)?;
    let low = from.map_or(0, DeliveryId::as_u128);
    let mut out = Vec::with_capacity(limit.min(1024));
    let rows = match before {
        Some(b) => t.range(low..b.as_u128())?,
        None => t.range(low..)?,
    };
    for row in rows.rev().take(limit) {
        out.push(scanned(row?.1.value())?);
    }
    Ok(out)
}

fn scanned(row: &[u8]) -> Result<(Delivery, Vec<u8>), StoreError> {
    let (record, stored) = split(row)?;
    Ok((tables::DELIVERY_RECORD.decode(record)?, stored.to_vec()))
}
