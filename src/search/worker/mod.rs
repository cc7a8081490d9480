//! What the indexer thread does: index new deliveries, delete documents, commit, and catch up from storage,
//! with new deliveries taken ahead of a catch-up's scan.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use tantivy::{IndexWriter, TantivyDocument, Term};

use super::indexer::Msg;
use super::pressure::Pressure;
use super::{SearchIndex, SearchSettings, id_bytes, writer};
use crate::domain::{Delivery, DeliveryId};
use crate::storage::{Store, deliveries, payload};

/// Deliveries read from redb per transaction by a rebuild from the command line.
const SCAN_BATCH: usize = 512;
/// The same for the server's catch-ups: small, so a burst, and new deliveries, find the indexer between
/// batches within tens of milliseconds.
const YIELDING_SCAN_BATCH: usize = 256;
/// How many of the newest deliveries a server's catch-up indexes and commits before it reads from the
/// oldest: the last of a burst, deferred with it, are what operators look for while it catches up.
const NEWEST_FIRST: usize = 20 * YIELDING_SCAN_BATCH;

pub(super) struct Worker {
    index: Arc<SearchIndex>,
    store: Arc<Store>,
    pub(super) writer: IndexWriter<TantivyDocument>,
    settings: SearchSettings,
    pending: usize,
    first_pending: Option<Instant>,
    /// When the oldest new delivery indexed during a catch-up and not yet committed came: those are
    /// committed on the interval, the scan's own deliveries by the count.
    first_live: Option<Instant>,
    /// The newest delivery the index may hold. Only deliveries up to it need replacing; a newer one is added
    /// without a delete, which tantivy would otherwise look up in every segment at each commit.
    position: Option<DeliveryId>,
    pressure: Arc<Pressure>,
    stopping: Arc<AtomicBool>,
    /// The writer's handle is gone, or `Stop` was taken during a catch-up: the run ends at once.
    stop_taken: bool,
    /// Set while indexing is deferred: the oldest delivery left to a catch-up from storage.
    deferred: Option<DeliveryId>,
    /// Set while a catch-up scans storage.
    scan: Option<Scan>,
    /// Indexing or a commit failed while handling a message: the run ends with it.
    failed: Option<anyhow::Error>,
    /// This run rebuilds an index found missing or damaged: once a catch-up has reached the end with
    /// nothing deferred, searches answer again.
    pub(super) rebuilding: bool,
    pub(super) merges: writer::MergeThreads,
}

/// A catch-up in progress. New deliveries are indexed as they come, ahead of it; its scan skips them.
struct Scan {
    /// The oldest delivery the scan has not read: commits record it as where the next start resumes.
    next: DeliveryId,
    /// The position when the scan began: only deliveries up to it can have a document already. New
    /// deliveries move `position` past everything the scan has left.
    replace_upto: Option<DeliveryId>,
    /// New deliveries indexed during the scan and not yet passed by it.
    live: BTreeSet<DeliveryId>,
}

impl Worker {
    pub(super) fn new(
        index: Arc<SearchIndex>,
        store: Arc<Store>,
        writer: IndexWriter<TantivyDocument>,
        settings: SearchSettings,
        position: Option<DeliveryId>,
        pressure: Arc<Pressure>,
        stopping: Arc<AtomicBool>,
    ) -> Self {
        Self {
            index,
            store,
            writer,
            settings,
            pending: 0,
            first_pending: None,
            first_live: None,
            position,
            pressure,
            stopping,
            stop_taken: false,
            deferred: None,
            scan: None,
            failed: None,
            rebuilding: false,
            merges: writer::MergeThreads::untouched(),
        }
    }

    /// Indexes every delivery from `from` on (everything when `None`) that the index does not hold yet.
    /// Returns how many deliveries its scan read. Between batches it takes what `live` brings, so new
    /// deliveries are searchable within a commit interval however long the catch-up. When `yielding` (the
    /// server's catch-ups), it first indexes the newest [`NEWEST_FIRST`] deliveries, and stops as soon as
    /// ingest is saturated and leaves the rest deferred.
    pub(super) fn catch_up(
        &mut self,
        from: Option<DeliveryId>,
        live: Option<&Receiver<Msg>>,
        progress: &mut dyn FnMut(usize),
        yielding: bool,
    ) -> anyhow::Result<usize> {
        let started = Instant::now();
        // `scan` starts after its argument: step back one so `from` itself is included.
        let after = from.and_then(|f| f.as_u128().checked_sub(1)).map(DeliveryId::from_u128);
        // The scan asks the searchable index which deliveries it holds: what is pending must be in it.
        self.commit()?;
        self.scan = Some(Scan {
            next: from.unwrap_or(DeliveryId::from_u128(0)),
            replace_upto: self.position,
            live: BTreeSet::new(),
        });
        let mut n = 0usize;
        let result = match if yielding { self.newest_first(from, live) } else { Ok(true) } {
            Ok(true) => self.scan_from(after, live, progress, yielding, &mut n),
            other => other,
        };
        // What the scan did not read is left for later, and recorded in the commit so that a stop loses
        // nothing.
        if let Some(scan) = self.scan.take()
            && !matches!(result, Ok(true))
        {
            self.deferred = Some(self.deferred.map_or(scan.next, |d| d.min(scan.next)));
        }
        self.commit()?;
        if result? {
            tracing::info!(deliveries = n, from = ?from, elapsed_ms = started.elapsed().as_millis() as u64, "search index caught up");
            if self.rebuilding && self.deferred.is_none() {
                self.rebuilding = false;
                self.index.rebuilt();
            }
        }
        Ok(n)
    }

    /// The scan of a catch-up, from the oldest delivery after `after`: Ok(true) when it reached the end,
    /// Ok(false) when it stepped aside.
    fn scan_from(
        &mut self,
        mut after: Option<DeliveryId>,
        live: Option<&Receiver<Msg>>,
        progress: &mut dyn FnMut(usize),
        yielding: bool,
        n: &mut usize,
    ) -> anyhow::Result<bool> {
        let limit = if yielding { YIELDING_SCAN_BATCH } else { SCAN_BATCH };
        loop {
            // Before the read: a deletion taken here must come after the documents of what was read.
            if let Some(rx) = live {
                self.take_waiting(rx);
            }
            let db = self.store.db()?;
            let batch = deliveries::scan(&db, after, limit)?;
            let Some((last, _)) = batch.last() else { return Ok(true) };
            if self.steps_aside(yielding) {
                tracing::debug!(from = ?batch.first().map(|(d, _)| d.id), "search catch-up paused");
                return Ok(false);
            }
            after = Some(last.id);
            *n += batch.len();
            let Some(scan) = self.scan.as_mut() else { return Ok(false) };
            let mut skip = std::mem::take(&mut scan.live);
            let indexed = self.index_missing(&batch, &mut skip);
            if let Some(scan) = self.scan.as_mut() {
                // A batch that failed is left to the next catch-up, from its first delivery.
                if indexed.is_ok() {
                    scan.next = DeliveryId::from_u128(last.id.as_u128().saturating_add(1));
                }
                scan.live = skip.split_off(&scan.next);
            }
            indexed?;
            let live_due =
                self.first_live.is_some_and(|t| t.elapsed() >= Duration::from_millis(self.settings.commit_interval_ms));
            if self.pending >= self.settings.commit_docs || live_due {
                self.commit()?;
            }
            progress(*n);
        }
    }

    /// Indexes and commits the newest [`NEWEST_FIRST`] deliveries from `from` on that the index does not
    /// hold, ahead of the scan, which then passes over them. Ok(false) when it stepped aside.
    fn newest_first(&mut self, from: Option<DeliveryId>, live: Option<&Receiver<Msg>>) -> anyhow::Result<bool> {
        let mut before = None;
        let mut read = 0;
        while read < NEWEST_FIRST {
            if let Some(rx) = live {
                self.take_waiting(rx);
            }
            let db = self.store.db()?;
            let batch = deliveries::scan_back(&db, from, before, YIELDING_SCAN_BATCH)?;
            let Some((oldest, _)) = batch.last() else { break };
            if self.steps_aside(true) {
                return Ok(false);
            }
            before = Some(oldest.id);
            read += batch.len();
            // New deliveries taken meanwhile are indexed already. The scan passes over all of these: indexed
            // now, held already, or not indexable.
            let mut skip = self.scan.as_mut().map(|s| std::mem::take(&mut s.live)).unwrap_or_default();
            let indexed = self.index_missing(&batch, &mut skip);
            skip.extend(batch.iter().map(|(d, _)| d.id));
            if let Some(scan) = self.scan.as_mut() {
                scan.live = skip;
            }
            indexed?;
        }
        if self.pending > 0 {
            self.commit()?;
        }
        Ok(true)
    }

    fn steps_aside(&self, yielding: bool) -> bool {
        self.stopping.load(Ordering::Relaxed) || self.stop_taken || (yielding && self.pressure.busy())
    }

    /// Indexes the deliveries of `batch` (read by a catch-up) that the index does not hold, except those in
    /// `skip`, which it takes out.
    fn index_missing(&mut self, batch: &[(Delivery, Vec<u8>)], skip: &mut BTreeSet<DeliveryId>) -> anyhow::Result<()> {
        let ids = || batch.iter().map(|(d, _)| d.id);
        let (Some(first), Some(last)) = (ids().min(), ids().max()) else { return Ok(()) };
        // A delivery's document never changes, so one the index already holds stays as it is. Only
        // deliveries up to where the index was when the catch-up began can have one.
        let held = match self.scan.as_ref().and_then(|s| s.replace_upto) {
            Some(upto) if first <= upto => self.index.held(first, last.min(upto))?,
            _ => HashSet::new(),
        };
        for (d, stored) in batch {
            let holds = held.contains(&d.id);
            // An erased delivery's document goes, should the erasure's own deletion have been lost.
            if skip.remove(&d.id) || (holds && d.erased.is_none()) {
                continue;
            }
            self.add_stored(d, stored, holds);
        }
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Handles every message waiting, without blocking.
    fn take_waiting(&mut self, rx: &Receiver<Msg>) {
        while !self.stop_taken {
            match rx.try_recv() {
                Ok(msg) => self.handle(msg),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => self.stop_taken = true,
            }
        }
    }

    /// Adds `d`'s document, after deleting the one it may already have when `replace`.
    fn add(&mut self, d: &Delivery, body: &[u8], replace: bool) {
        if replace {
            self.writer.delete_term(Term::from_field_bytes(self.index.fields.id, &id_bytes(d.id)));
        }
        // An erased delivery has no document: its tombstone says nothing worth finding. It still moves the
        // position on, which is how an erasure knows the index has seen everything before it.
        if d.erased.is_none()
            && let Err(e) = self.writer.add_document(self.index.document(d, body))
        {
            // tantivy refuses documents only once its own thread has died (a segment it could not write):
            // every later one would fail the same way, so the run ends and the indexer restarts.
            if self.failed.is_none() {
                self.failed = Some(anyhow::Error::new(e).context(format!("indexing {} failed", d.id)));
            }
            return;
        }
        self.position = self.position.max(Some(d.id));
        self.pending += 1;
        self.first_pending.get_or_insert_with(Instant::now);
    }

    fn delete(&mut self, ids: Vec<DeliveryId>) {
        for id in ids {
            self.writer.delete_term(Term::from_field_bytes(self.index.fields.id, &id_bytes(id)));
            self.pending += 1;
        }
        self.first_pending.get_or_insert_with(Instant::now);
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        // With deliveries deferred or being caught up, even an empty commit records where the next start
        // must resume.
        let left = match (self.deferred, self.scan.as_ref().map(|s| s.next)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.pending == 0 && left.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let mut prepared = self.writer.prepare_commit()?;
        // Where the next start catches up from: what is left is not indexed yet.
        if let Some(newest) = self.position.or(left) {
            let resume = left.map_or(newest, |d| d.min(newest));
            prepared.set_payload(&format!("{resume} {newest}"));
        }
        prepared.commit()?;
        self.index.reload()?;
        self.merges.after_commit();
        tracing::debug!(
            docs = self.pending,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "search index committed"
        );
        self.pending = 0;
        self.first_pending = None;
        self.first_live = None;
        Ok(())
    }

    /// Indexes what the writer hands over until told to stop, and catches up what was deferred. A commit or
    /// a catch-up that fails ends the run with the error: what tantivy's writer holds is then uncertain, so
    /// the indexer restarts in place (waiting longer after each failure, as a full disk needs) and catches
    /// up from the last commit that held.
    pub(super) fn run(&mut self, rx: &Receiver<Msg>) -> anyhow::Result<()> {
        let interval = Duration::from_millis(self.settings.commit_interval_ms);
        while !self.stop_taken {
            let mut wait =
                self.first_pending.map_or(Duration::from_secs(3600), |t| interval.saturating_sub(t.elapsed()));
            if self.deferred.is_some() {
                wait = wait.min(self.pressure.calm);
            }
            match rx.recv_timeout(wait) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Disconnected) => self.stop_taken = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            if self.stop_taken {
                break;
            }
            // Not while stopping: each message left would start a catch-up that pauses with a commit at once.
            if let Some(from) = self.deferred
                && !self.stopping.load(Ordering::Relaxed)
                && !self.pressure.busy()
            {
                self.deferred = None;
                self.catch_up(Some(from), Some(rx), &mut |_| {}, true)
                    .context("catching up deferred deliveries failed")?;
            }
            let due = self.first_pending.is_some_and(|t| t.elapsed() >= interval);
            if self.pending >= self.settings.commit_docs || due {
                self.commit().context("committing the search index failed")?;
            }
        }
        if let Err(e) = self.commit() {
            tracing::error!(error = %e, "the last search index commit failed; the next start catches up");
        }
        Ok(())
    }

    /// One message from the writer, retention or an erasure; in the run loop or between a catch-up's batches.
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Stored(stored, bytes) => {
                self.pressure.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                match stored.iter().map(|(d, _)| d.id).min() {
                    Some(oldest) if self.deferred.is_some() || self.pressure.busy() => {
                        self.defer(oldest, "ingest is saturated: search indexing waits")
                    }
                    _ => self.index_stored(stored),
                }
            }
            Msg::Behind(oldest) => self.defer(oldest, "search indexing is behind: it catches up from storage"),
            Msg::Deleted(ids) => self.delete(ids),
            Msg::Expired(before) => {
                for (sub, at) in before {
                    if let Err(e) = self.writer.delete_query(self.index.older_than(sub, at)) {
                        tracing::error!(error = %e, subscription = %sub, "deleting expired search documents failed; the next sweep tries again");
                    }
                }
                self.pending += 1;
                self.first_pending.get_or_insert_with(Instant::now);
            }
            Msg::DeleteNow(ids, done) => {
                self.delete(ids);
                let held = match self.commit() {
                    Ok(()) => true,
                    Err(e) => {
                        // The erasure asks again once the indexer has restarted.
                        self.failed = Some(e.context("committing an erasure's deletions failed"));
                        false
                    }
                };
                let _ = done.send(held);
            }
            Msg::Damaged => {
                self.failed.get_or_insert_with(|| anyhow::anyhow!("a search found the index missing or damaged"));
            }
            Msg::Stop => self.stop_taken = true,
        }
    }

    /// Leaves deliveries from `oldest` on to a catch-up from storage (once ingest is calm): their payloads
    /// are not kept, so a long burst or a load indexing cannot follow costs no memory here.
    fn defer(&mut self, oldest: DeliveryId, why: &str) {
        if self.deferred.is_none() {
            tracing::debug!("{why}");
        }
        self.deferred = Some(self.deferred.map_or(oldest, |d| d.min(oldest)));
    }

    fn index_stored(&mut self, stored: Vec<(Delivery, Vec<u8>)>) {
        for (d, payload) in stored {
            // Replacing makes indexing a delivery twice harmless: a scan may have read a delivery before it
            // came here, and ids are taken before their commit, so they arrive slightly out of order.
            let replace = Some(d.id) <= self.position;
            if self.add_stored(&d, &payload, replace)
                && let Some(scan) = self.scan.as_mut()
                && d.id >= scan.next
            {
                scan.live.insert(d.id);
                self.first_live.get_or_insert_with(Instant::now);
            }
        }
    }

    /// Adds `d` with its payload as stored; false when the payload cannot be decoded (logged; the delivery
    /// stays in redb, unindexed).
    fn add_stored(&mut self, d: &Delivery, stored: &[u8], replace: bool) -> bool {
        match payload::decode(stored) {
            Ok(p) => {
                self.add(d, &p.body, replace);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, delivery = %d.id, "decoding a payload to index failed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests;
