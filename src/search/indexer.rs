//! The indexer thread: the only owner of the `IndexWriter`.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::SearchSettings;
use super::pressure::Pressure;
use super::worker::Worker;
use super::{Opened, Position, SearchIndex, parse_position, writer};
use crate::domain::{Delivery, DeliveryId, SubscriptionId, Timestamp};
use crate::storage::Store;
use crate::task::AliveGuard;

pub(super) enum Msg {
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
    /// A search found the index missing or damaged: the run ends, and the restart rebuilds it.
    Damaged,
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
    let _ = index.alarm.set(tx.clone());
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
            let mut rebuilding = false;
            loop {
                let began = Instant::now();
                let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let run = Run { position, rebuilding };
                    index_until_stopped(&index, &store, &settings, run, &pressure, &stop_flag, &rx)
                }));
                let why = match run {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(panic) => crate::task::panic_message(&*panic),
                };
                guard.down();
                // A run that held for a while failed afresh: it waits the first wait again, not the last.
                if began.elapsed() > RESTART_MAX * 2 {
                    backoff = RESTART_FIRST;
                }
                tracing::error!(reason = %why, restart_in_s = backoff.as_secs(), "the search indexer stopped; it restarts and catches up from storage");
                // Waits, then finds where the next run starts. A search found the index missing or
                // damaged, or its files are not whole now: it is emptied and rebuilt from storage, the
                // newest deliveries first.
                loop {
                    if !sleep_unless(&stop_flag, backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(RESTART_MAX);
                    // Not while storage refuses writes (a full disk): the space freed goes to ingest first,
                    // and the index, derived data, follows once the writer's commits hold again.
                    while store.writes_failing() {
                        if !sleep_unless(&stop_flag, Duration::from_secs(1)) {
                            return;
                        }
                    }
                    if !index.is_damaged() && index.sound() {
                        // From what the index last committed, which is all it holds.
                        position =
                            index.index.load_metas().ok().and_then(|m| m.payload.as_deref().and_then(parse_position));
                        break;
                    }
                    // Marked without telling the indexer: this is the indexer, about to rebuild.
                    index.mark_damaged("found at the indexer's restart");
                    match index.recreate() {
                        Ok(()) => {
                            (position, rebuilding) = (None, true);
                            break;
                        }
                        Err(e) => tracing::error!(error = %e, "cannot empty the search index for its rebuild; trying again"),
                    }
                }
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

/// Where a run of the indexer starts: from the last commit's position, or rebuilding an emptied index.
#[derive(Debug, Clone, Copy)]
struct Run {
    position: Option<Position>,
    rebuilding: bool,
}

/// One run of the indexer: catch up from `position`, then index what the writer hands over until told to
/// stop. An error (the writer cannot be opened, a commit fails) ends the run for a restart.
fn index_until_stopped(
    index: &Arc<SearchIndex>,
    store: &Arc<Store>,
    settings: &SearchSettings,
    Run { position, rebuilding }: Run,
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
    w.rebuilding = rebuilding;
    let from = position.map(|p| {
        let margin = i64::from(settings.catch_up_margin_seconds) * 1000;
        DeliveryId::first_at(p.resume.timestamp().plus_millis(-margin))
    });
    // Yielding like any catch-up: a restart is often met by a burst (providers sending what they could not
    // while Hookplane was down), and acknowledging comes first.
    w.catch_up(from, Some(rx), &mut |_| {}, true).context("catching up the search index failed")?;
    w.run(rx)
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
    let n = w.catch_up(None, None, progress, false)?;
    let Worker { writer, .. } = w;
    writer.wait_merging_threads()?;
    Ok(n)
}
