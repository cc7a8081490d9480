//! The indexer thread: the only owner of the `IndexWriter`.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::SearchSettings;
use super::pressure::Pressure;
use super::{Opened, Position, SearchIndex, id_bytes, parse_position, writer};
use crate::domain::{Delivery, DeliveryId, SubscriptionId, Timestamp};
use crate::storage::{Store, deliveries, payload};
use crate::task::AliveGuard;

/// Deliveries read from redb per transaction while catching up or rebuilding.
const SCAN_BATCH: usize = 512;
/// The same after a deferral: small, so a new burst finds the indexer between batches within milliseconds.
const YIELDING_SCAN_BATCH: usize = 64;

enum Msg {
    /// New deliveries with their payloads as stored: the indexer decodes them itself rather than reading
    /// redb, whose read transactions would hold back the writer's page reuse.
    /// The payloads' total size rides along, so the queue's count is given back exactly.
    Stored(Vec<(Delivery, Vec<u8>)>, usize),
    /// New deliveries from this id on, left in redb because the indexer is too far behind to hold their
    /// payloads in memory: it catches up from storage instead.
    Behind(DeliveryId),
    /// Deliveries retention deleted from redb: their documents go too.
    Deleted(Vec<DeliveryId>),
    /// After each sweep: per subscription, every document older than this goes, so a deletion lost to a
    /// restart of the indexer or of Hookplane is made at the next sweep.
    Expired(Vec<(SubscriptionId, Timestamp)>),
    /// Delete these deliveries' documents and commit at once, then answer whether the commit held. One
    /// message, so an indexer restarted in between cannot answer for deletions it never made.
    DeleteNow(Vec<DeliveryId>, tokio::sync::oneshot::Sender<bool>),
    Stop,
}

/// What the ingest writer holds: it reports each commit's new deliveries here.
#[derive(Clone)]
pub struct IndexerHandle {
    tx: Sender<Msg>,
    pressure: Arc<Pressure>,
}

impl IndexerHandle {
    /// Deliveries deleted from storage. Searches skip a document whose delivery is gone meanwhile.
    pub fn deleted(&self, ids: Vec<DeliveryId>) {
        if !ids.is_empty() {
            let _ = self.tx.send(Msg::Deleted(ids));
        }
    }

    /// Per subscription, the time before which storage keeps none of its deliveries: the documents from
    /// before it go, whichever deletions were missed.
    pub fn expired(&self, before: Vec<(SubscriptionId, Timestamp)>) {
        if !before.is_empty() {
            let _ = self.tx.send(Msg::Expired(before));
        }
    }

    /// Deletes the documents of `ids` and commits; the answer says whether that commit held (`false` also
    /// when the indexer is gone or restarted meanwhile). An erasure waits for it before it moves on, so a
    /// crash cannot lose its deletions.
    pub async fn delete_now(&self, ids: Vec<DeliveryId>) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::DeleteNow(ids, tx)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// The new deliveries of one group commit that held `batch` requests.
    pub fn stored(&self, deliveries: Vec<(Delivery, Vec<u8>)>, batch: usize) {
        self.pressure.committed(batch);
        let bytes = deliveries.iter().map(|(_, p)| p.len()).sum::<usize>();
        let queued = self.pressure.queued_bytes.load(Ordering::Relaxed);
        let msg = if queued.saturating_add(bytes) > self.pressure.max_queued_bytes {
            match deliveries.iter().map(|(d, _)| d.id).min() {
                Some(oldest) => Msg::Behind(oldest),
                None => return,
            }
        } else {
            self.pressure.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
            Msg::Stored(deliveries, bytes)
        };
        // A stopped indexer catches up from redb at the next start.
        let _ = self.tx.send(msg);
    }
}

pub struct Indexer {
    pub handle: IndexerHandle,
    thread: Option<JoinHandle<()>>,
    /// Read between catch-up batches, so that a long catch-up does not hold up a shutdown.
    stopping: Arc<AtomicBool>,
}

impl Indexer {
    /// Commits what is indexed and ends the thread; what is left is caught up at the next start.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.handle.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the indexer thread. It is restarted in place when it fails (the index is derived data: a restart
/// catches up from storage, from the index's last commit), and `guard` says it is gone meanwhile.
pub fn spawn(
    index: Arc<SearchIndex>,
    store: Arc<Store>,
    opened: Opened,
    settings: SearchSettings,
    guard: AliveGuard,
) -> Result<Indexer, super::IndexError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let pressure = Arc::new(Pressure::new(&settings));
    let handle = IndexerHandle { tx, pressure: Arc::clone(&pressure) };
    let stopping = Arc::new(AtomicBool::new(false));
    let stop_flag = Arc::clone(&stopping);
    let thread = std::thread::Builder::new()
        .name("hookplane-indexer".into())
        .spawn(move || {
            // Acknowledging deliveries comes first: under a burst that takes every core, indexing waits and
            // catches up after, rather than slowing the answers providers wait for. The writer is made here
            // so tantivy's own indexing threads inherit the lower priority.
            if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), writer::INDEXER_NICE) {
                tracing::debug!(error = %e, "cannot lower the indexer's priority");
            }
            let mut position = match opened {
                Opened::Resume(p) => p,
                Opened::Rebuild => None,
            };
            let mut backoff = RESTART_FIRST;
            loop {
                let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    index_until_stopped(&index, &store, &settings, position, &pressure, &stop_flag, &rx)
                }));
                let why = match run {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(panic) => crate::task::panic_message(&*panic),
                };
                guard.down();
                tracing::error!(reason = %why, restart_in_s = backoff.as_secs(), "the search indexer stopped; it restarts and catches up from storage");
                if !sleep_unless(&stop_flag, backoff) {
                    return;
                }
                backoff = (backoff * 2).min(RESTART_MAX);
                // From what the index last committed, which is all it holds.
                position = index.index.load_metas().ok().and_then(|m| m.payload.as_deref().and_then(parse_position));
                guard.revive();
            }
        })
        .map_err(|e| super::IndexError::Io { path: Default::default(), source: e })?;
    Ok(Indexer { handle, thread: Some(thread), stopping })
}

/// The first wait before the indexer restarts, and the longest, doubling in between.
const RESTART_FIRST: Duration = Duration::from_secs(1);
const RESTART_MAX: Duration = Duration::from_secs(60);

/// Waits `total`, unless `stop` is set meanwhile; true when the wait ran its course.
fn sleep_unless(stop: &AtomicBool, total: Duration) -> bool {
    let until = Instant::now() + total;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        #[allow(clippy::disallowed_methods)] // the indexer's own thread, never the runtime
        std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
    }
    !stop.load(Ordering::Relaxed)
}

/// One run of the indexer: catch up from `position`, then index what the writer hands over until told to
/// stop. An error is a failure to start; the run's own errors are logged and retried inside it.
fn index_until_stopped(
    index: &Arc<SearchIndex>,
    store: &Arc<Store>,
    settings: &SearchSettings,
    position: Option<Position>,
    pressure: &Arc<Pressure>,
    stopping: &Arc<AtomicBool>,
    rx: &Receiver<Msg>,
) -> anyhow::Result<()> {
    let writer = writer::open(index, 1, settings.memory_mib as usize * 1024 * 1024)
        .context("cannot open the search index for writing")?;
    let mut w = Worker::new(
        Arc::clone(index),
        Arc::clone(store),
        writer,
        settings.clone(),
        position.map(|p| p.newest),
        Arc::clone(pressure),
        Arc::clone(stopping),
    );
    w.merges = writer::MergeThreads::lowered();
    let from = position.map(|p| {
        let margin = i64::from(w.settings.catch_up_margin_seconds) * 1000;
        DeliveryId::first_at(p.resume.timestamp().plus_millis(-margin))
    });
    if let Err(e) = w.catch_up(from, &mut |_| {}, false) {
        tracing::error!(error = %e, "catching up the search index failed; searches may miss deliveries until the next start");
    }
    w.run(rx);
    Ok(())
}

/// Deletes the index in `dir` and indexes every stored delivery again with `threads` tantivy threads
/// (`hookplane reindex`, server stopped). `progress` hears the count after each batch; returns the total.
pub fn rebuild(
    dir: &Path,
    store: Arc<Store>,
    settings: SearchSettings,
    threads: usize,
    progress: &mut dyn FnMut(usize),
) -> anyhow::Result<usize> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot delete the search index {}", dir.display()))?;
    }
    let (index, _) = SearchIndex::open(dir)?;
    let index = Arc::new(index);
    // tantivy wants at least 15 MB per indexing thread.
    let memory = (settings.memory_mib as usize).max(16 * threads) * 1024 * 1024;
    let writer = writer::open(&index, threads, memory)?;
    let pressure = Arc::new(Pressure::new(&settings));
    let mut w = Worker::new(index, store, writer, settings, None, pressure, Arc::new(AtomicBool::new(false)));
    let n = w.catch_up(None, progress, false)?;
    let Worker { writer, .. } = w;
    writer.wait_merging_threads()?;
    Ok(n)
}

struct Worker {
    index: Arc<SearchIndex>,
    store: Arc<Store>,
    writer: IndexWriter<TantivyDocument>,
    settings: SearchSettings,
    pending: usize,
    first_pending: Option<Instant>,
    /// The newest delivery the index may hold. Only deliveries up to it need replacing; a newer one is added
    /// without a delete, which tantivy would otherwise look up in every segment at each commit.
    position: Option<DeliveryId>,
    pressure: Arc<Pressure>,
    stopping: Arc<AtomicBool>,
    /// Set while indexing is deferred: the oldest delivery left to a catch-up from storage.
    deferred: Option<DeliveryId>,
    merges: writer::MergeThreads,
}

impl Worker {
    fn new(
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
            position,
            pressure,
            stopping,
            deferred: None,
            merges: writer::MergeThreads::untouched(),
        }
    }

    /// Re-indexes every delivery from `from` on (everything when `None`), replacing what the index holds.
    /// Returns how many deliveries it indexed. When `yielding`, it stops as soon as ingest is saturated and
    /// leaves the rest deferred.
    fn catch_up(
        &mut self,
        from: Option<DeliveryId>,
        progress: &mut dyn FnMut(usize),
        yielding: bool,
    ) -> anyhow::Result<usize> {
        let started = Instant::now();
        // `scan` starts after its argument: step back one so `from` itself is included.
        let mut after = from.and_then(|f| f.as_u128().checked_sub(1)).map(DeliveryId::from_u128);
        let mut n = 0usize;
        loop {
            let db = self.store.db()?;
            let batch = deliveries::scan(&db, after, if yielding { YIELDING_SCAN_BATCH } else { SCAN_BATCH })?;
            drop(db);
            let Some((last, _)) = batch.last() else { break };
            let stop = self.stopping.load(Ordering::Relaxed);
            if stop || (yielding && self.pressure.busy()) {
                // Left for later, and recorded in the commit so that a stop loses nothing.
                self.deferred = batch.first().map(|(d, _)| d.id);
                tracing::debug!(deferred = ?self.deferred, stop, "search catch-up paused");
                self.commit()?;
                return Ok(n);
            }
            after = Some(last.id);
            n += batch.len();
            for (d, body) in &batch {
                self.add(d, body);
            }
            if self.pending >= self.settings.commit_docs {
                self.commit()?;
            }
            progress(n);
        }
        self.commit()?;
        tracing::info!(deliveries = n, from = ?from, elapsed_ms = started.elapsed().as_millis() as u64, "search index caught up");
        Ok(n)
    }

    fn add(&mut self, d: &Delivery, body: &[u8]) {
        // Replacing rather than adding makes indexing a delivery twice harmless: the catch-up overlaps
        // what was indexed before, deliveries committed during a catch-up arrive both from its scan and
        // from the writer, and ids are taken before their commit, so they arrive slightly out of order.
        if Some(d.id) <= self.position {
            self.writer.delete_term(Term::from_field_bytes(self.index.fields.id, &id_bytes(d.id)));
        }
        // An erased delivery has no document: its tombstone says nothing worth finding. It still moves the
        // position on, which is how an erasure knows the index has seen everything before it.
        if d.erased.is_none()
            && let Err(e) = self.writer.add_document(self.index.document(d, body))
        {
            tracing::error!(error = %e, delivery = %d.id, "indexing a delivery failed");
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
        // With deliveries deferred, even an empty commit records where the next start must resume.
        if self.pending == 0 && self.deferred.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let mut prepared = self.writer.prepare_commit()?;
        // Where the next start catches up from: deferred deliveries are not indexed yet.
        if let Some(newest) = self.position.or(self.deferred) {
            let resume = self.deferred.map_or(newest, |d| d.min(newest));
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
        Ok(())
    }

    fn run(&mut self, rx: &Receiver<Msg>) {
        let interval = Duration::from_millis(self.settings.commit_interval_ms);
        loop {
            let mut wait =
                self.first_pending.map_or(Duration::from_secs(3600), |t| interval.saturating_sub(t.elapsed()));
            if self.deferred.is_some() {
                wait = wait.min(self.pressure.calm);
            }
            match rx.recv_timeout(wait) {
                Ok(Msg::Stored(stored, bytes)) => {
                    self.pressure.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                    match stored.iter().map(|(d, _)| d.id).min() {
                        Some(oldest) if self.deferred.is_some() || self.pressure.busy() => {
                            self.defer(oldest, "ingest is saturated: search indexing waits")
                        }
                        _ => self.index_stored(stored),
                    }
                }
                Ok(Msg::Behind(oldest)) => self.defer(oldest, "search indexing is behind: it catches up from storage"),
                Ok(Msg::Deleted(ids)) => self.delete(ids),
                Ok(Msg::Expired(before)) => {
                    for (sub, at) in before {
                        if let Err(e) = self.writer.delete_query(self.index.older_than(sub, at)) {
                            tracing::error!(error = %e, subscription = %sub, "deleting expired search documents failed; the next sweep tries again");
                        }
                    }
                    self.pending += 1;
                    self.first_pending.get_or_insert_with(Instant::now);
                }
                Ok(Msg::DeleteNow(ids, done)) => {
                    self.delete(ids);
                    let held = match self.commit() {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::error!(error = %e, "committing the search index failed; will retry");
                            false
                        }
                    };
                    let _ = done.send(held);
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.commit() {
                        tracing::error!(error = %e, "the last search index commit failed; the next start catches up");
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Not while stopping: each message left would start a catch-up that pauses with a commit at once.
            if let Some(from) = self.deferred
                && !self.stopping.load(Ordering::Relaxed)
                && !self.pressure.busy()
            {
                self.deferred = None;
                if let Err(e) = self.catch_up(Some(from), &mut |_| {}, true) {
                    // Kept deferred: retried after the next calm period, and recorded for the next start.
                    self.deferred = Some(self.deferred.map_or(from, |d| d.min(from)));
                    tracing::error!(error = %e, "catching up deferred deliveries failed; will retry");
                }
            }
            let due = self.first_pending.is_some_and(|t| t.elapsed() >= interval);
            if (self.pending >= self.settings.commit_docs || due)
                && let Err(e) = self.commit()
            {
                tracing::error!(error = %e, "committing the search index failed; will retry");
            }
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
            match payload::decode(&payload) {
                Ok(p) => self.add(&d, &p.body),
                // Not lost: the next start re-indexes from redb.
                Err(e) => tracing::error!(error = %e, delivery = %d.id, "decoding a payload to index failed"),
            }
        }
    }
}
