//! The deliveries repository: writing a delivery with everything that belongs to it in one transaction,
//! reading one, listing with filters, and reading its exact body.

use std::collections::BinaryHeap;

use redb::{Database, ReadableDatabase, ReadableTable, Table, WriteTransaction};
use sha2::{Digest, Sha256};

use super::{StoreError, body, subscriptions, tables};
use crate::domain::{Delivery, DeliveryId, DeliveryStatus, Source, SubscriptionId};
use crate::jobs::Job;

/// A verified delivery on its way into storage.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery: Delivery,
    /// The body as `body::encode` stored it.
    pub stored_body: Vec<u8>,
    /// `None` for senders without a delivery id: every request is then a new delivery.
    pub dedupe_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// Already stored under this id: nothing was written.
    Duplicate(DeliveryId),
}

/// The tables a delivery touches, opened once per transaction.
pub struct DeliveryWriter<'tx> {
    deliveries: Table<'tx, u128, &'static [u8]>,
    bodies: Table<'tx, u128, &'static [u8]>,
    dedupe: Table<'tx, &'static str, u128>,
    by_subscription: Table<'tx, (u128, u128), ()>,
    jobs: Table<'tx, u128, &'static [u8]>,
    jobs_ready: Table<'tx, (i64, u128), ()>,
}

impl<'tx> DeliveryWriter<'tx> {
    pub fn open(tx: &'tx WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            deliveries: tx.open_table(tables::DELIVERIES.def())?,
            bodies: tx.open_table(tables::BODIES)?,
            dedupe: tx.open_table(tables::DEDUPE)?,
            by_subscription: tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?,
            jobs: tx.open_table(tables::JOBS.def())?,
            jobs_ready: tx.open_table(tables::JOBS_READY)?,
        })
    }

    /// The delivery already stored under `key`, if any.
    pub fn existing(&self, key: &str) -> Result<Option<DeliveryId>, StoreError> {
        Ok(self.dedupe.get(key)?.map(|v| DeliveryId::from_u128(v.value())))
    }

    /// Writes the delivery, its body, its dedupe key, its index entry and its job, unless the dedupe key
    /// is already taken.
    pub fn insert(&mut self, new: &NewDelivery, job: Option<&Job>) -> Result<Inserted, StoreError> {
        if let Some(key) = &new.dedupe_key {
            if let Some(existing) = self.existing(key)? {
                return Ok(Inserted::Duplicate(existing));
            }
            self.dedupe.insert(key.as_str(), new.delivery.id.as_u128())?;
        }
        let d = &new.delivery;
        let id = d.id.as_u128();
        self.deliveries.insert(id, tables::DELIVERIES.encode(d)?.as_slice())?;
        self.bodies.insert(id, new.stored_body.as_slice())?;
        self.by_subscription.insert((d.subscription_id.as_u128(), id), ())?;
        if let Some(job) = job {
            self.jobs.insert(job.id.as_u128(), tables::JOBS.encode(job)?.as_slice())?;
            self.jobs_ready.insert((job.run_at.millis(), job.id.as_u128()), ())?;
        }
        Ok(Inserted::New)
    }
}

pub fn get(db: &Database, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::DELIVERIES.def())?;
    t.get(id.as_u128())?.map(|v| tables::DELIVERIES.decode(v.value())).transpose()
}

/// The exact body of a delivery, checked against the digest taken at ingest.
pub fn body(db: &Database, id: DeliveryId) -> Result<Option<(Delivery, Vec<u8>)>, StoreError> {
    let tx = db.begin_read()?;
    let Some(delivery) = tx
        .open_table(tables::DELIVERIES.def())?
        .get(id.as_u128())?
        .map(|v| tables::DELIVERIES.decode(v.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    let bodies = tx.open_table(tables::BODIES)?;
    let stored = bodies
        .get(id.as_u128())?
        .ok_or_else(|| StoreError::Corrupt { table: "bodies_v1", detail: format!("the body of {id} is missing") })?;
    let bytes = body::decode(stored.value(), delivery.size_bytes)?;
    if sha256_hex(&bytes) != delivery.body_sha256 {
        return Err(StoreError::Corrupt {
            table: "bodies_v1",
            detail: format!("the body of {id} does not match the digest taken when it arrived"),
        });
    }
    Ok(Some((delivery, bytes)))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::hex::encode(&Sha256::digest(bytes))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub source: Option<Source>,
    pub topic: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub subscription: Option<SubscriptionId>,
    pub account: Option<String>,
}

impl Filter {
    /// Whether the filter narrows the subscriptions, so the per-subscription index can drive the scan.
    fn by_subscription(&self) -> bool {
        self.source.is_some() || self.topic.is_some() || self.subscription.is_some() || self.account.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Delivery>,
    /// Pass as `before` for the next page; `None` when there is nothing older.
    pub next_cursor: Option<DeliveryId>,
}

/// Most rows one page may examine. A filter that matches rarely returns a short page and a cursor to go
/// on from, so no request scans without bound.
pub const MAX_SCAN: usize = 10_000;

/// Deliveries matching `filter`, newest first, strictly older than `before`. The cursor is a delivery id,
/// so new arrivals never shift the pages already handed out.
pub fn list(db: &Database, filter: &Filter, before: Option<DeliveryId>, limit: usize) -> Result<Page, StoreError> {
    let upper = before.map_or(u128::MAX, DeliveryId::as_u128);
    let tx = db.begin_read()?;
    let deliveries = tx.open_table(tables::DELIVERIES.def())?;
    let mut items = Vec::with_capacity(limit.min(256));
    let mut examined = 0usize;
    let mut last_examined = None;
    let mut more = false;

    let mut consider = |id: u128, items: &mut Vec<Delivery>| -> Result<bool, StoreError> {
        examined += 1;
        last_examined = Some(DeliveryId::from_u128(id));
        if let Some(v) = deliveries.get(id)? {
            let d = tables::DELIVERIES.decode(v.value())?;
            if filter.status.is_none_or(|s| s == d.status) {
                items.push(d);
            }
        }
        Ok(items.len() < limit && examined < MAX_SCAN)
    };

    if filter.by_subscription() {
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
        let index = tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?;
        let mut streams = Vec::with_capacity(subs.len());
        for sub in subs {
            streams.push(index.range((sub, 0)..(sub, upper))?.rev());
        }
        // Merge the per-subscription streams, newest first.
        let mut heads = BinaryHeap::new();
        for (i, s) in streams.iter_mut().enumerate() {
            if let Some(row) = s.next() {
                heads.push((row?.0.value().1, i));
            }
        }
        while let Some((id, i)) = heads.pop() {
            if let Some(row) = streams[i].next() {
                heads.push((row?.0.value().1, i));
            }
            if !consider(id, &mut items)? {
                more = !heads.is_empty();
                break;
            }
        }
    } else {
        let mut rows = deliveries.range(..upper)?.rev();
        while let Some(row) = rows.next() {
            let id = row?.0.value();
            if !consider(id, &mut items)? {
                more = rows.next().is_some();
                break;
            }
        }
    }
    let next_cursor = if !more {
        None
    } else if items.len() >= limit {
        items.last().map(|d| d.id)
    } else {
        last_examined
    };
    Ok(Page { items, next_cursor })
}
