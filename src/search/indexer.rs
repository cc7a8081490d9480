//! The indexer thread: the only owner of the `IndexWriter`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::SearchSettings;
use super::{Opened, SearchIndex, id_bytes};
use crate::domain::{Delivery, DeliveryId};
use crate::storage::{Store, deliveries, payload};

/// Deliveries read from redb per transaction while catching up or rebuilding.
const SCAN_BATCH: usize = 512;
/// The same after a deferral: small, so that a new burst finds the indexer between batches within a few
/// milliseconds of CPU.
const YIELDING_SCAN_BATCH: usize = 64;

enum Msg {
    /// New deliveries with their payloads as stored: the indexer decodes them itself rather than reading
    /// redb, whose read transactions would hold back the writer's page reuse.
    /// The payloads' total size rides along, so the queue's count is given back exactly.
    Stored(Vec<(Delivery, Vec<u8>)>, usize),
    /// New deliveries from this id on, left in redb because the indexer is too far behind to hold their
    /// payloads in memory: it catches up from storage instead.
    Behind(DeliveryId),
    Stop,
}

/// What the ingest writer holds: it reports each commit's new deliveries here.
#[derive(Clone)]
pub struct IndexerHandle {
    tx: Sender<Msg>,
    pressure: Arc<Pressure>,
}

impl IndexerHandle {
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

/// Whether ingest is saturated. Two signs together: group commits are large (batches form only when
/// requests wait for the previous fsync, so a run of large ones means they queue for the disk), and the
/// async workers that answer providers are busy. Large batches alone are a slow disk under a moderate load,
/// when indexing takes no CPU that acknowledging needs; only with both is every core needed to acknowledge.
struct Pressure {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last saturated commit, plus one (0: never).
    last_large: AtomicU64,
    /// Large commits in a row.
    streak: AtomicU64,
    large: usize,
    calm: Duration,
    workers: Option<WorkerLoad>,
    /// Payload bytes handed to the indexer and not yet taken, and the most it may hold: when indexing
    /// falls behind a load that is not a burst, memory stays bounded and the rest comes from storage.
    queued_bytes: AtomicUsize,
    max_queued_bytes: usize,
}

/// Large commits in a row that mean saturation.
const SATURATED_STREAK: u64 = 4;
/// How often the workers' busy share is sampled: often enough to see a burst begin within a few commits.
const LOAD_WINDOW: Duration = Duration::from_millis(100);

/// The share of time the runtime's workers spent running tasks, over the last sampling window.
struct WorkerLoad {
    runtime: tokio::runtime::Handle,
    /// From this share on (0.0 to 1.0), the workers count as busy.
    busy_share: f64,
    /// Start of the current window and the workers' total busy time then, and whether the last complete
    /// window was busy. Only the ingest writer samples, so the lock is never contended.
    window: std::sync::Mutex<(Instant, Duration, bool)>,
}

impl WorkerLoad {
    fn new(runtime: tokio::runtime::Handle, busy_percent: u8) -> Self {
        let window = std::sync::Mutex::new((Instant::now(), busy_time(&runtime), false));
        Self { runtime, busy_share: f64::from(busy_percent) / 100.0, window }
    }

    fn busy(&self) -> bool {
        let Ok(mut window) = self.window.lock() else { return true };
        let (started, at_start, busy) = *window;
        let elapsed = started.elapsed();
        if elapsed < LOAD_WINDOW {
            return busy;
        }
        let now = busy_time(&self.runtime);
        let workers = self.runtime.metrics().num_workers().max(1) as f64;
        let share = now.saturating_sub(at_start).as_secs_f64() / (elapsed.as_secs_f64() * workers);
        *window = (Instant::now(), now, share >= self.busy_share);
        window.2
    }
}

fn busy_time(runtime: &tokio::runtime::Handle) -> Duration {
    let m = runtime.metrics();
    (0..m.num_workers()).map(|w| m.worker_total_busy_duration(w)).sum()
}

impl Pressure {
    fn new(settings: &SearchSettings) -> Self {
        // Without a runtime to sample (a rebuild from the command line) or with no threshold, large commits
        // alone decide.
        let workers = tokio::runtime::Handle::try_current()
            .ok()
            .filter(|_| settings.defer_busy_percent > 0)
            .map(|runtime| WorkerLoad::new(runtime, settings.defer_busy_percent));
        Self {
            epoch: Instant::now(),
            last_large: AtomicU64::new(0),
            streak: AtomicU64::new(0),
            large: settings.defer_batch,
            calm: Duration::from_millis(settings.defer_calm_ms),
            workers,
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes: settings.max_queued_kib.saturating_mul(1024),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    /// Called by the writer only, so the streak needs no compare-and-swap.
    fn committed(&self, batch: usize) {
        let large = self.large > 0 && batch >= self.large;
        // Sampled only for large commits: a moderate load never pays for it.
        self.record(large && self.workers.as_ref().is_none_or(WorkerLoad::busy));
    }

    fn record(&self, saturated_commit: bool) {
        if !saturated_commit {
            self.streak.store(0, Ordering::Relaxed);
            return;
        }
        let streak = self.streak.load(Ordering::Relaxed) + 1;
        self.streak.store(streak, Ordering::Relaxed);
        if streak >= SATURATED_STREAK {
            self.last_large.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    fn busy(&self) -> bool {
        let last = self.last_large.load(Ordering::Relaxed);
        last > 0 && self.now_ms() < last.saturating_add(u64::try_from(self.calm.as_millis()).unwrap_or(u64::MAX))
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

/// What an index commit records (its payload, `"{resume} {newest}"`): where the next start catches up from,
/// and the newest delivery the index may hold. They differ while indexing is deferred: the index then holds
/// deliveries newer than the oldest it skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub resume: DeliveryId,
    pub newest: DeliveryId,
}

/// Reads a commit payload; a single id (the format before deferral) is both.
pub fn parse_position(payload: &str) -> Option<Position> {
    let mut ids = payload.split_whitespace().map(str::parse::<DeliveryId>);
    let resume = ids.next()?.ok()?;
    let newest = match ids.next() {
        Some(n) => n.ok()?,
        None => resume,
    };
    Some(Position { resume, newest: newest.max(resume) })
}

pub fn spawn(
    index: Arc<SearchIndex>,
    store: Arc<Store>,
    opened: Opened,
    settings: SearchSettings,
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
            // so tantivy's own indexing and merging threads inherit the lower priority.
            if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
                tracing::debug!(error = %e, "cannot lower the indexer's priority");
            }
            let writer = match index.index.writer_with_num_threads(1, settings.memory_mib as usize * 1024 * 1024) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, "cannot open the search index for writing; search will not see new deliveries");
                    return;
                }
            };
            let position = match opened {
                Opened::Resume(p) => p,
                Opened::Rebuild => None,
            };
            let mut w = Worker::new(index, store, writer, settings, position.map(|p| p.newest), pressure, stop_flag);
            let from = position.map(|p| {
                let margin = i64::from(w.settings.catch_up_margin_seconds) * 1000;
                DeliveryId::first_at(p.resume.timestamp().plus_millis(-margin))
            });
            if let Err(e) = w.catch_up(from, &mut |_| {}, false) {
                tracing::error!(error = %e, "catching up the search index failed; searches may miss deliveries until the next start");
            }
            w.run(&rx);
        })
        .map_err(|e| super::IndexError::Io { path: Default::default(), source: e })?;
    Ok(Indexer { handle, thread: Some(thread), stopping })
}

/// Deletes the index in `dir` and indexes every stored delivery again, in the calling thread and with
/// every core: `hookplane reindex`, run while the server is stopped. `progress` hears how many deliveries
/// are indexed so far after each batch. Returns how many were indexed.
pub fn rebuild(
    dir: &Path,
    store: Arc<Store>,
    settings: SearchSettings,
    progress: &mut dyn FnMut(usize),
) -> anyhow::Result<usize> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot delete the search index {}", dir.display()))?;
    }
    let (index, _) = SearchIndex::open(dir)?;
    let index = Arc::new(index);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    // tantivy wants at least 15 MB per indexing thread.
    let memory = (settings.memory_mib as usize).max(16 * threads) * 1024 * 1024;
    let writer = index.index.writer_with_num_threads(threads, memory)?;
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
        if let Err(e) = self.writer.add_document(self.index.document(d, body)) {
            tracing::error!(error = %e, delivery = %d.id, "indexing a delivery failed");
            return;
        }
        self.position = self.position.max(Some(d.id));
        self.pending += 1;
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
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.commit() {
                        tracing::error!(error = %e, "the last search index commit failed; the next start catches up");
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if let Some(from) = self.deferred
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(large: usize, busy_percent: u8) -> SearchSettings {
        SearchSettings {
            commit_interval_ms: 500,
            commit_docs: 5000,
            memory_mib: 50,
            catch_up_margin_seconds: 600,
            defer_batch: large,
            defer_busy_percent: busy_percent,
            defer_calm_ms: 60_000,
            max_queued_kib: 1024,
        }
    }

    fn pressure(large: usize) -> Pressure {
        Pressure::new(&settings(large, 0))
    }

    #[test]
    #[allow(clippy::disallowed_methods, reason = "the test thread is not a runtime worker; it lets a window pass")]
    fn large_commits_mean_saturation_only_while_the_workers_are_busy() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let _entered = rt.enter();
        // A slow disk under a moderate load: large commits, idle workers.
        let p = Pressure::new(&settings(16, 50));
        std::thread::sleep(LOAD_WINDOW * 2);
        for _ in 0..SATURATED_STREAK * 2 {
            p.committed(64);
        }
        assert!(!p.busy(), "large commits while the workers idle");

        // A burst: the workers spend a whole window running tasks.
        let p = Pressure::new(&settings(16, 50));
        rt.block_on(async {
            tokio::spawn(async {
                let until = Instant::now() + LOAD_WINDOW * 3;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            })
            .await
            .unwrap();
        });
        // A worker publishes its busy time when it parks, which may come a moment after the task's end.
        while busy_time(rt.handle()) < LOAD_WINDOW * 2 {
            std::thread::yield_now();
        }
        for _ in 0..SATURATED_STREAK {
            p.committed(64);
        }
        assert!(p.busy(), "large commits while the workers are busy");
    }

    #[test]
    fn positions_read_both_formats_and_refuse_garbage() {
        let a: DeliveryId = "dlv_01M8HQ9D018ZNZBC51X6AEG16D".parse().unwrap();
        let b: DeliveryId = "dlv_01M8HQCNS7F25TPT5F2N6T8PVB".parse().unwrap();
        assert_eq!(parse_position(&format!("{a}")), Some(Position { resume: a, newest: a }));
        assert_eq!(parse_position(&format!("{a} {b}")), Some(Position { resume: a, newest: b }));
        assert_eq!(parse_position(""), None);
        assert_eq!(parse_position(&format!("{a} nonsense")), None);
    }

    #[test]
    fn only_a_run_of_large_commits_means_saturation() {
        let p = pressure(16);
        // A slow fsync under a moderate load: one large batch between small ones.
        for batch in [3, 40, 2, 17, 16, 16, 5] {
            p.committed(batch);
        }
        assert!(!p.busy());
        for _ in 0..SATURATED_STREAK {
            p.committed(64);
        }
        assert!(p.busy(), "four large commits in a row");
        p.committed(1);
        assert!(p.busy(), "busy until a calm period has passed");

        let never = pressure(0);
        for _ in 0..10 {
            never.committed(1000);
        }
        assert!(!never.busy(), "0 never defers");
    }
}
