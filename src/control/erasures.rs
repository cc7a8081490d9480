//! Privacy erasures: the payloads of every delivery matching a filter replaced by a tombstone, in the
//! background, page by page, each page in one transaction with the erasure's progress, so a restart goes on
//! from where it was. An operator asks for one (`POST /api/v1/erasures`); with
//! `privacy.honor_shopify_redact`, each stored `customers/redact` or `shop/redact` webhook asks for one,
//! audited as `system`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::bulk::{self, BulkError, query_of};
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::erasure::{self, Erasure};
use crate::domain::filter::DeliveryFilter;
use crate::domain::replay::BulkStatus;
use crate::domain::{Clock, DeliveryId, ErasureId, Timestamp};
use crate::loader::LoadError;
use crate::search::SearchIndex;
use crate::search::indexer::IndexerHandle;
use crate::storage::{Store, StoreError, audit, erasures};

/// The `[privacy]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    /// Whether a stored `customers/redact` or `shop/redact` webhook erases the payloads about that customer
    /// or shop. Off unless asked for: the processing service may need those payloads to do its own part.
    pub honor_shopify_redact: bool,
    /// How long an erasure waits before it looks again at deliveries that were still being delivered.
    pub busy_retry_seconds: u32,
}

impl PrivacySettings {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.busy_retry_seconds) {
            return Err("privacy.busy_retry_seconds must be between 1 and 3600".to_owned());
        }
        Ok(())
    }
}

/// The most deliveries a dry run counts; an erasure itself has no limit.
pub const COUNT_MOST: u64 = 1_000_000;
/// How often the index is checked while an erasure waits for it to catch up.
const INDEX_POLL: Duration = Duration::from_millis(200);
/// Deliveries erased per transaction when going over busy ones again (a page of the list otherwise).
const PAGE: usize = 200;

pub struct Erasures {
    pub(super) store: Arc<Store>,
    search: Arc<SearchIndex>,
    indexer: IndexerHandle,
    pub(super) clock: Arc<dyn Clock>,
    settings: PrivacySettings,
    running: Mutex<HashMap<ErasureId, Arc<AtomicBool>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Poked when a redact webhook is stored.
    pub(super) redacted: tokio::sync::Notify,
    /// Taken by the erasure that runs; the others wait their turn.
    turn: tokio::sync::Semaphore,
}

impl Erasures {
    pub fn new(
        store: Arc<Store>,
        search: Arc<SearchIndex>,
        indexer: IndexerHandle,
        clock: Arc<dyn Clock>,
        settings: PrivacySettings,
    ) -> Self {
        Self {
            store,
            search,
            indexer,
            clock,
            settings,
            running: Mutex::default(),
            tasks: Mutex::default(),
            redacted: tokio::sync::Notify::new(),
            turn: tokio::sync::Semaphore::new(1),
        }
    }

    pub fn honors_redact(&self) -> bool {
        self.settings.honor_shopify_redact
    }

    /// How many deliveries `filter` matches, up to one past [`COUNT_MOST`].
    pub async fn count(&self, filter: &DeliveryFilter) -> Result<u64, BulkError> {
        bulk::count(&self.store, &self.search, query_of(filter)?, COUNT_MOST).await
    }

    /// Starts erasing what `filter` matches (at most `matched` when counted now). `to` is fixed at now when
    /// absent, so what arrives later is not erased.
    pub async fn start(
        self: &Arc<Self>,
        mut filter: DeliveryFilter,
        matched: u64,
        reason: Option<String>,
        by: Actor,
    ) -> Result<Erasure, BulkError> {
        let now = self.clock.now();
        query_of(&filter)?;
        // What arrives while it runs is not part of it, even when the filter names a later end.
        let end = now.plus_millis(1);
        let to = filter.to.as_deref().and_then(Timestamp::parse_rfc3339).map_or(end, |t| t.min(end));
        filter.to = Some(to.to_rfc3339());
        query_of(&filter)?;
        let e = fresh(ErasureId::new(now), now, filter, matched, reason, None, &by);
        self.record(e.clone(), &by).await?;
        self.spawn(e.clone(), by);
        Ok(e)
    }

    /// Records a new erasure with its audit entry; `false` when one of its id is recorded already.
    pub(super) async fn record(&self, e: Erasure, by: &Actor) -> Result<bool, StoreError> {
        let by = by.clone();
        self.store
            .read(move |db| {
                let tx = db.begin_write()?;
                if erasures::get_in(&tx, e.id)?.is_some() {
                    return Ok(false);
                }
                erasures::put(&tx, &e)?;
                audit::append(&tx, &started(&e, &by))?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    /// Goes on with every erasure that was running when Hookplane stopped.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        let found = self.store.read(erasures::running).await?;
        let n = found.len();
        for e in found {
            tracing::info!(erasure = %e.id, erased = e.erased, "going on with an erasure");
            let by = Actor { label: e.requested_by.clone(), client: None };
            self.spawn(e, by);
        }
        Ok(n)
    }

    /// Stops a running erasure; what it erased stays erased.
    pub async fn cancel(&self, id: ErasureId, by: Actor) -> Result<Erasure, BulkError> {
        let now = self.clock.now();
        let cancelled = self
            .store
            .read(move |db| {
                let tx = db.begin_write()?;
                let Some(mut e) = erasures::get_in(&tx, id)? else { return Ok(None) };
                if e.status != BulkStatus::Running {
                    return Ok(Some(Err(e)));
                }
                e.status = BulkStatus::Cancelled;
                e.finished_at = Some(now);
                erasures::put(&tx, &e)?;
                let entry = by
                    .entry(now, AuditAction::ErasureCancelled)
                    .target(id)
                    .change(Change::changed("status", "running", "cancelled"))
                    .change(Change::set("erased", e.erased.to_string()));
                audit::append(&tx, &entry)?;
                tx.commit()?;
                Ok::<_, StoreError>(Some(Ok(e)))
            })
            .await?;
        match cancelled {
            None => Err(BulkError::NotFound(format!("no erasure {id}"))),
            Some(Err(ended)) => Err(BulkError::Ended(format!(
                "erasure {id} has ended already ({}); there is nothing to cancel",
                ended.status.as_str()
            ))),
            Some(Ok(e)) => {
                if let Some(flag) = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id) {
                    flag.store(true, Ordering::SeqCst);
                }
                Ok(e)
            }
        }
    }

    /// Stops every erasure of this process; their progress is stored, and they go on at the next start.
    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..) {
            t.abort();
        }
    }

    pub(super) fn spawn(self: &Arc<Self>, e: Erasure, by: Actor) {
        let cancel = Arc::new(AtomicBool::new(false));
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(e.id, Arc::clone(&cancel));
        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            let id = e.id;
            let outcome = this.run(e, &cancel).await;
            let now = this.clock.now();
            let ended = this
                .store
                .read(move |db| {
                    let tx = db.begin_write()?;
                    let Some(mut e) = erasures::get_in(&tx, id)? else { return Ok(()) };
                    if e.status != BulkStatus::Running || cancel.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    match outcome {
                        Ok(()) => e.status = BulkStatus::Done,
                        Err(err) => {
                            tracing::error!(erasure = %id, error = %err, "an erasure failed");
                            e.status = BulkStatus::Failed;
                            e.error = Some(err.to_string());
                        }
                    }
                    e.finished_at = Some(now);
                    erasures::put(&tx, &e)?;
                    audit::append(&tx, &finished(&e, &by, now))?;
                    tx.commit()?;
                    Ok::<_, StoreError>(())
                })
                .await;
            if let Err(e) = ended {
                tracing::error!(erasure = %id, error = %e, "recording the end of an erasure failed; it goes on at the next start");
            }
            this.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
        });
        let mut tasks = self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    async fn run(&self, e: Erasure, cancel: &AtomicBool) -> Result<(), BulkError> {
        let mut query = query_of(&e.filter)?;
        let before = query.filter.to.map_or_else(|| DeliveryId::first_at(self.clock.now()), DeliveryId::first_at);
        // Everything stored before it must be in the index first: a search would miss the rest, and a
        // document added after the erasure deleted it would bring the payload back into the index.
        loop {
            let search = Arc::clone(&self.search);
            let ready = self.store.read(move |db| Ok::<_, StoreError>(search.indexed_before(db, before))).await?;
            match ready {
                Ok(true) => break,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(erasure = %e.id, error = %err, "cannot tell whether the search index has caught up; waiting")
                }
            }
            if cancel.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::time::sleep(INDEX_POLL).await;
        }
        // One erasure at a time: each holds the store's single writer page by page, and ingest comes first.
        let Ok(turn) = self.turn.acquire().await else { return Ok(()) };
        if e.cursor.is_none() {
            let matched = bulk::count(&self.store, &self.search, query.clone(), u64::MAX - 1).await?;
            let id = e.id;
            self.store.read(move |db| erasures::update(db, id, |e| e.matched = matched)).await?;
        }
        query.before = e.cursor;
        // What a pass before a restart left waiting is looked at again with what this pass leaves.
        let mut waiting = Waiting { ids: e.waiting.clone(), overflowed: e.waiting_overflowed };
        waiting.add(self.pass(&e, &mut query, true, cancel).await?);
        drop(turn);
        loop {
            self.record_waiting(e.id, &waiting).await?;
            if waiting.is_empty() || cancel.load(Ordering::SeqCst) {
                return Ok(());
            }
            // Deliveries still being delivered: their payloads go once their attempts settle. The turn is
            // given up meanwhile, so a paused destination holding them never holds up other erasures.
            tracing::info!(erasure = %e.id, busy = waiting.ids.len(), "an erasure waits for deliveries still being delivered");
            let deadline =
                tokio::time::Instant::now() + Duration::from_secs(u64::from(self.settings.busy_retry_seconds));
            while tokio::time::Instant::now() < deadline {
                if cancel.load(Ordering::SeqCst) {
                    return Ok(());
                }
                tokio::time::sleep(INDEX_POLL).await;
            }
            let Ok(_turn) = self.turn.acquire().await else { return Ok(()) };
            waiting = if waiting.overflowed {
                query.before = None;
                let mut again = Waiting::default();
                again.add(self.pass(&e, &mut query, false, cancel).await?);
                again
            } else {
                let mut again = Waiting::default();
                for chunk in waiting.ids.chunks(PAGE) {
                    again.add(self.erase(&e, chunk.to_vec(), false, cancel).await?);
                }
                again
            };
        }
    }

    async fn record_waiting(&self, id: ErasureId, waiting: &Waiting) -> Result<(), StoreError> {
        let (ids, overflowed) = (waiting.ids.clone(), waiting.overflowed);
        self.store
            .read(move |db| {
                erasures::update(db, id, |e| {
                    e.busy = ids.len() as u64;
                    e.waiting = ids;
                    e.waiting_overflowed = overflowed;
                })
            })
            .await
    }

    /// One pass over what the erasure matches, from `query.before` on; returns the busy ones.
    async fn pass(
        &self,
        e: &Erasure,
        query: &mut crate::loader::Query,
        first_pass: bool,
        cancel: &AtomicBool,
    ) -> Result<Vec<DeliveryId>, BulkError> {
        let mut busy = Vec::new();
        loop {
            if cancel.load(Ordering::SeqCst) {
                return Ok(busy);
            }
            let Some(page) = super::bulk::page_when_ready(&self.store, &self.search, query, cancel).await? else {
                return Ok(busy);
            };
            let ids: Vec<DeliveryId> = page.items.iter().map(|l| l.delivery.id).collect();
            busy.extend(self.erase(e, ids, first_pass, cancel).await?);
            match page.next_cursor {
                Some(c) => query.before = Some(c),
                None => return Ok(busy),
            }
            tokio::task::yield_now().await;
        }
    }

    /// Erases `ids` in one transaction, deletes their search documents and commits the index, and only then
    /// records the progress: a crash in between makes the next start erase and delete them again. On the
    /// first pass the cursor moves to the last of them, skipped ones count, and the busy ones are added to
    /// the erasure's waiting list in the same transaction. Returns the busy ones.
    async fn erase(
        &self,
        e: &Erasure,
        ids: Vec<DeliveryId>,
        first_pass: bool,
        cancel: &AtomicBool,
    ) -> Result<Vec<DeliveryId>, BulkError> {
        let (id, at, last) = (e.id, self.clock.now(), ids.last().copied());
        let done = self.store.read(move |db| erasures::erase_page(db, &ids, at, id)).await.map_err(LoadError::from)?;
        // Busy ones keep their documents: they keep their payloads, and a later pass must find them.
        let documents: Vec<DeliveryId> = done.erased.iter().chain(&done.settled).copied().collect();
        let mut tries = 0u32;
        while !self.indexer.delete_now(documents.clone()).await {
            // The indexer restarts itself in place; the erasure waits for it rather than move on.
            tries += 1;
            if tries % 30 == 1 {
                tracing::warn!(erasure = %id, "the search index could not commit an erasure's deletions; trying again");
            }
            if cancel.load(Ordering::SeqCst) {
                return Ok(Vec::new());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let (erased, skipped, busy) = (done.erased.len() as u64, done.skipped, done.busy.clone());
        self.store
            .read(move |db| {
                erasures::update(db, id, |e| {
                    e.erased += erased;
                    if first_pass {
                        e.skipped += skipped;
                        e.cursor = last.or(e.cursor);
                        let mut w = Waiting { ids: std::mem::take(&mut e.waiting), overflowed: e.waiting_overflowed };
                        w.add(busy);
                        e.busy = w.ids.len() as u64;
                        (e.waiting, e.waiting_overflowed) = (w.ids, w.overflowed);
                    }
                })
            })
            .await?;
        Ok(done.busy)
    }
}

/// The busy deliveries an erasure looks at again, remembered up to [`erasure::WAITING_KEPT`].
#[derive(Default)]
struct Waiting {
    ids: Vec<DeliveryId>,
    overflowed: bool,
}

impl Waiting {
    fn add(&mut self, busy: Vec<DeliveryId>) {
        self.ids.extend(busy);
        self.ids.sort_unstable();
        self.ids.dedup();
        if self.ids.len() > erasure::WAITING_KEPT {
            self.ids.truncate(erasure::WAITING_KEPT);
            self.overflowed = true;
        }
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty() && !self.overflowed
    }
}

pub(super) fn fresh(
    id: ErasureId,
    now: Timestamp,
    filter: DeliveryFilter,
    matched: u64,
    reason: Option<String>,
    redact: Option<DeliveryId>,
    by: &Actor,
) -> Erasure {
    Erasure {
        id,
        requested_by: by.label.clone(),
        requested_at: now,
        filter,
        reason,
        redact,
        matched,
        erased: 0,
        skipped: 0,
        busy: 0,
        waiting: Vec::new(),
        waiting_overflowed: false,
        status: BulkStatus::Running,
        cursor: None,
        finished_at: None,
        error: None,
    }
}

fn started(e: &Erasure, by: &Actor) -> crate::domain::audit::AuditEntry {
    let filter = serde_json::to_string(&e.filter).unwrap_or_default();
    let mut entry = by
        .entry(e.requested_at, AuditAction::ErasureStarted)
        .target(e.id)
        .change(Change::set("filter", filter))
        .change(Change::set("matched", e.matched.to_string()));
    if let Some(r) = &e.reason {
        entry = entry.change(Change::set("reason", r.clone()));
    }
    if let Some(d) = e.redact {
        entry = entry.change(Change::set("redact_delivery", d.to_string()));
    }
    if let Some(err) = &e.error {
        entry = entry.change(Change::set("error", err.clone()));
    }
    entry
}

fn finished(e: &Erasure, by: &Actor, now: Timestamp) -> crate::domain::audit::AuditEntry {
    by.entry(now, AuditAction::ErasureFinished)
        .target(e.id)
        .change(Change::changed("status", "running", e.status.as_str()))
        .change(Change::set("erased", e.erased.to_string()))
        .change(Change::set("skipped", e.skipped.to_string()))
        .change(Change::set("busy", e.busy.to_string()))
}
