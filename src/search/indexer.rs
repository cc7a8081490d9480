//! The indexer thread: the only owner of the `IndexWriter`.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tantivy::{IndexWriter, TantivyDocument, Term};

use super::{Opened, SearchIndex, id_bytes};
use crate::config::SearchSettings;
use crate::domain::{Delivery, DeliveryId};
use crate::storage::{Store, deliveries, payload};

/// Deliveries read from redb per transaction while catching up or rebuilding.
const SCAN_BATCH: usize = 512;

enum Msg {
    /// New deliveries with their payloads as stored: the indexer decodes them itself rather than reading
    /// redb, whose read transactions would hold back the writer's page reuse.
    Stored(Vec<(Delivery, Vec<u8>)>),
    Stop,
}

/// What the ingest writer holds: it reports each commit's new deliveries here.
#[derive(Clone)]
pub struct IndexerHandle {
    tx: Sender<Msg>,
}

impl IndexerHandle {
    pub fn stored(&self, deliveries: Vec<(Delivery, Vec<u8>)>) {
        // A stopped indexer catches up from redb at the next start.
        let _ = self.tx.send(Msg::Stored(deliveries));
    }
}

pub struct Indexer {
    pub handle: IndexerHandle,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    /// Indexes what is pending, commits, and ends the thread.
    pub fn stop(&mut self) {
        let _ = self.handle.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The payload of an index commit: the newest delivery id indexed so far.
pub fn parse_position(payload: &str) -> Option<DeliveryId> {
    payload.trim().parse().ok()
}

pub fn spawn(
    index: Arc<SearchIndex>,
    store: Arc<Store>,
    opened: Opened,
    settings: SearchSettings,
) -> Result<Indexer, super::IndexError> {
    let (tx, rx) = std::sync::mpsc::channel();
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
            let mut w = Worker {
                index,
                store,
                writer,
                settings,
                pending: 0,
                first_pending: None,
                position,
                maybe_indexed: position,
            };
            let from = match opened {
                Opened::Rebuild | Opened::Resume(None) => None,
                Opened::Resume(Some(p)) => {
                    let margin = i64::from(w.settings.catch_up_margin_seconds) * 1000;
                    Some(DeliveryId::first_at(p.timestamp().plus_millis(-margin)))
                }
            };
            if let Err(e) = w.catch_up(from) {
                tracing::error!(error = %e, "catching up the search index failed; searches may miss deliveries until the next start");
            }
            w.run(&rx);
        })
        .map_err(|e| super::IndexError::Io { path: Default::default(), source: e })?;
    Ok(Indexer { handle: IndexerHandle { tx }, thread: Some(thread) })
}

struct Worker {
    index: Arc<SearchIndex>,
    store: Arc<Store>,
    writer: IndexWriter<TantivyDocument>,
    settings: SearchSettings,
    pending: usize,
    first_pending: Option<Instant>,
    position: Option<DeliveryId>,
    /// The newest id the index may already hold (from before the last stop, or from the catch-up scan).
    /// Only those need replacing; a newer delivery is added without a delete, which tantivy would otherwise
    /// look up in every segment at each commit.
    maybe_indexed: Option<DeliveryId>,
}

impl Worker {
    /// Re-indexes every delivery from `from` on (everything when `None`), replacing what the index holds.
    fn catch_up(&mut self, from: Option<DeliveryId>) -> anyhow::Result<()> {
        let started = Instant::now();
        // `scan` starts after its argument: step back one so `from` itself is included.
        let mut after = from.and_then(|f| f.as_u128().checked_sub(1)).map(DeliveryId::from_u128);
        let mut n = 0usize;
        loop {
            let db = self.store.db()?;
            let batch = deliveries::scan(&db, after, SCAN_BATCH)?;
            drop(db);
            let Some((last, _)) = batch.last() else { break };
            after = Some(last.id);
            n += batch.len();
            for (d, body) in &batch {
                self.add(d, body);
            }
            // The scan runs in id order, so only later messages from the writer can repeat what it added.
            self.maybe_indexed = self.maybe_indexed.max(Some(last.id));
            if self.pending >= self.settings.commit_docs {
                self.commit()?;
            }
        }
        self.commit()?;
        tracing::info!(deliveries = n, from = ?from, elapsed_ms = started.elapsed().as_millis() as u64, "search index caught up");
        Ok(())
    }

    fn add(&mut self, d: &Delivery, body: &[u8]) {
        // Replacing rather than adding makes indexing a delivery twice harmless: the catch-up overlaps
        // what was indexed before the last stop, and deliveries committed during the catch-up arrive both
        // from its scan and from the writer.
        if Some(d.id) <= self.maybe_indexed {
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
        if self.pending == 0 {
            return Ok(());
        }
        let mut prepared = self.writer.prepare_commit()?;
        if let Some(p) = self.position {
            prepared.set_payload(&p.to_string());
        }
        prepared.commit()?;
        self.index.reload()?;
        self.pending = 0;
        self.first_pending = None;
        Ok(())
    }

    fn run(&mut self, rx: &Receiver<Msg>) {
        let interval = Duration::from_millis(self.settings.commit_interval_ms);
        loop {
            let wait = self.first_pending.map_or(Duration::from_secs(3600), |t| interval.saturating_sub(t.elapsed()));
            match rx.recv_timeout(wait) {
                Ok(Msg::Stored(stored)) => self.index_stored(stored),
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.commit() {
                        tracing::error!(error = %e, "the last search index commit failed; the next start catches up");
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let due = self.first_pending.is_some_and(|t| t.elapsed() >= interval);
            if (self.pending >= self.settings.commit_docs || due)
                && let Err(e) = self.commit()
            {
                tracing::error!(error = %e, "committing the search index failed; will retry");
            }
        }
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
