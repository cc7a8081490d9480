//! Bulk replay: every delivery matching a filter (all pages, not only the one shown), replayed in the
//! background at its own rate so live traffic keeps flowing. Progress is stored after every page; a bulk
//! replay that was running when Hookplane stopped goes on from its cursor at the next start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Control, ReplayError};
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::filter::DeliveryFilter;
use crate::domain::replay::{BULK_MAX, BulkReplay, BulkStatus};
use crate::domain::{BulkReplayId, Clock, DeliveryId};
use crate::ingest::Ingest;
use crate::loader::{self, LoadError, Query};
use crate::search::{SearchError, SearchIndex};
use crate::storage::{Store, StoreError, audit, replays};

/// Deliveries read per page while counting or replaying.
const PAGE: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The bulk replay has ended already.
    #[error("{0}")]
    Ended(String),
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl From<StoreError> for BulkError {
    fn from(e: StoreError) -> Self {
        BulkError::Load(LoadError::Store(e))
    }
}

/// The filter as the loader applies it. The same parsing serves the request and a resume after restart.
pub fn query_of(f: &DeliveryFilter) -> Result<Query, BulkError> {
    let (filter, text) = f.parse().map_err(BulkError::Invalid)?;
    Ok(Query { text, filter, before: None, limit: PAGE })
}

/// How long a bulk replay or an erasure waits before asking again for a page it could not have.
const PAGE_RETRY: Duration = Duration::from_secs(5);

/// The next page of what a bulk replay or an erasure goes through. While the search index is being rebuilt
/// (its results would be incomplete) or storage is unavailable (a full disk), it waits and asks again
/// instead of failing the run: both heal by themselves. `None` when cancelled meanwhile.
pub(super) async fn page_when_ready(
    store: &Arc<Store>,
    search: &Arc<SearchIndex>,
    query: &Query,
    cancel: &AtomicBool,
) -> Result<Option<crate::storage::deliveries::Page>, BulkError> {
    let mut waited = 0u32;
    loop {
        let (search, q) = (Arc::clone(search), query.clone());
        match store.read(move |db| loader::deliveries_page(db, &search, &q)).await {
            Ok(page) => return Ok(Some(page)),
            Err(
                e @ (LoadError::Search(SearchError::Unavailable(_)) | LoadError::Store(StoreError::Unavailable(_))),
            ) => {
                if waited.is_multiple_of(12) {
                    tracing::warn!(error = %e, "a bulk operation waits for its next page");
                }
                waited += 1;
            }
            Err(e) => return Err(e.into()),
        }
        for _ in 0..PAGE_RETRY.as_millis() / 100 {
            if cancel.load(Ordering::SeqCst) {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// How many deliveries match `query`, counting up to one past `most`.
pub async fn count(store: &Arc<Store>, search: &Arc<SearchIndex>, query: Query, most: u64) -> Result<u64, BulkError> {
    let search = Arc::clone(search);
    Ok(store
        .read(move |db| {
            let mut q = query;
            let mut n = 0u64;
            loop {
                let page = loader::deliveries_page(db, &search, &q)?;
                n += page.items.len() as u64;
                match page.next_cursor {
                    Some(c) if n <= most => q.before = Some(c),
                    _ => return Ok::<_, LoadError>(n),
                }
            }
        })
        .await?)
}

/// The running bulk replays, and what they need.
pub struct BulkReplays {
    store: Arc<Store>,
    search: Arc<SearchIndex>,
    control: Arc<Control>,
    ingest: Arc<Ingest>,
    clock: Arc<dyn Clock>,
    /// Cancel flags of the bulk replays running in this process.
    running: Mutex<HashMap<BulkReplayId, Arc<AtomicBool>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl BulkReplays {
    pub fn new(
        store: Arc<Store>,
        search: Arc<SearchIndex>,
        control: Arc<Control>,
        ingest: Arc<Ingest>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { store, search, control, ingest, clock, running: Mutex::default(), tasks: Mutex::default() }
    }

    /// How many deliveries match `query`, counting up to one past [`BULK_MAX`].
    pub async fn count(&self, query: Query) -> Result<u64, BulkError> {
        count(&self.store, &self.search, query, BULK_MAX).await
    }

    /// Starts a bulk replay of `matched` deliveries. The filter is fixed to what had arrived by now, so
    /// deliveries that arrive while it runs are not part of it.
    pub async fn start(
        self: &Arc<Self>,
        mut filter: DeliveryFilter,
        matched: u64,
        rate_per_second: u32,
        by: Actor,
    ) -> Result<BulkReplay, BulkError> {
        let now = self.clock.now();
        if filter.to.is_none() {
            filter.to = Some(now.plus_millis(1).to_rfc3339());
        }
        let bulk = BulkReplay {
            id: BulkReplayId::new(now),
            requested_by: by.label.clone(),
            requested_at: now,
            filter,
            rate_per_second,
            matched,
            replayed: 0,
            skipped: 0,
            failed: 0,
            status: BulkStatus::Running,
            cursor: None,
            finished_at: None,
            error: None,
        };
        let (record, actor) = (bulk.clone(), by.clone());
        self.store
            .read(move |db| {
                let tx = db.begin_write()?;
                replays::put_bulk(&tx, &record)?;
                let filter = serde_json::to_string(&record.filter).unwrap_or_default();
                let entry = actor
                    .entry(record.requested_at, AuditAction::BulkReplayStarted)
                    .target(record.id)
                    .change(Change::set("filter", filter))
                    .change(Change::set("matched", record.matched.to_string()))
                    .change(Change::set("rate_per_second", record.rate_per_second.to_string()));
                audit::append(&tx, &entry)?;
                tx.commit()?;
                Ok::<_, StoreError>(())
            })
            .await?;
        self.spawn(bulk.clone(), by);
        Ok(bulk)
    }

    /// Goes on with every bulk replay that was running when Hookplane stopped.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        let found = self.store.read(replays::running_bulk).await?;
        let n = found.len();
        for bulk in found {
            tracing::info!(bulk = %bulk.id, replayed = bulk.replayed, "going on with a bulk replay");
            let by = Actor { label: bulk.requested_by.clone(), client: None };
            self.spawn(bulk, by);
        }
        Ok(n)
    }

    /// Stops a running bulk replay; what it replayed stays replayed.
    pub async fn cancel(&self, id: BulkReplayId, by: Actor) -> Result<BulkReplay, BulkError> {
        let now = self.clock.now();
        let cancelled = self
            .store
            .read(move |db| {
                let tx = db.begin_write()?;
                let Some(mut bulk) = replays::get_bulk_in(&tx, id)? else {
                    return Ok(Err(format!("no bulk replay {id}")));
                };
                if bulk.status != BulkStatus::Running {
                    return Ok(Ok(Err(bulk)));
                }
                bulk.status = BulkStatus::Cancelled;
                bulk.finished_at = Some(now);
                replays::put_bulk(&tx, &bulk)?;
                let entry = by
                    .entry(now, AuditAction::BulkReplayCancelled)
                    .target(id)
                    .change(Change::changed("status", "running", "cancelled"))
                    .change(Change::set("replayed", bulk.replayed.to_string()));
                audit::append(&tx, &entry)?;
                tx.commit()?;
                Ok::<_, StoreError>(Ok(Ok(bulk)))
            })
            .await?;
        match cancelled {
            Err(missing) => Err(BulkError::NotFound(missing)),
            Ok(Err(ended)) => Err(BulkError::Ended(format!(
                "bulk replay {id} has ended already ({}); there is nothing to cancel",
                ended.status.as_str()
            ))),
            Ok(Ok(bulk)) => {
                if let Some(flag) = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id) {
                    flag.store(true, Ordering::SeqCst);
                }
                Ok(bulk)
            }
        }
    }

    /// Stops every bulk replay of this process; their progress is stored, and they go on at the next start.
    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..) {
            t.abort();
        }
    }

    fn spawn(self: &Arc<Self>, bulk: BulkReplay, by: Actor) {
        let cancel = Arc::new(AtomicBool::new(false));
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(bulk.id, Arc::clone(&cancel));
        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            let id = bulk.id;
            if let Err(e) = this.run(bulk, &by, &cancel).await {
                tracing::error!(bulk = %id, error = %e, "a bulk replay failed");
                let now = this.clock.now();
                let error = e.to_string();
                let _ = this
                    .store
                    .read(move |db| {
                        replays::update_bulk(db, id, true, |b| {
                            if b.status == BulkStatus::Running {
                                b.status = BulkStatus::Failed;
                                b.error = Some(error);
                                b.finished_at = Some(now);
                            }
                        })
                    })
                    .await;
            }
            this.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
        });
        let mut tasks = self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    async fn run(&self, mut bulk: BulkReplay, by: &Actor, cancel: &AtomicBool) -> Result<(), BulkError> {
        let mut query = query_of(&bulk.filter)?;
        query.before = bulk.cursor;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(bulk.rate_per_second.max(1))));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let Some(page) = page_when_ready(&self.store, &self.search, &query, cancel).await? else {
                return self.save(&bulk, false).await;
            };
            for item in &page.items {
                if cancel.load(Ordering::SeqCst) {
                    return self.save(&bulk, false).await;
                }
                tick.tick().await;
                match self.replay_one(item.delivery.id, by, bulk.id).await {
                    Ok(()) => bulk.replayed += 1,
                    Err(ReplayError::Limited(..) | ReplayError::Refused(_) | ReplayError::NotFound(_)) => {
                        bulk.skipped += 1;
                    }
                    Err(ReplayError::Integrity(why) | ReplayError::SignatureFailed(why)) => {
                        tracing::error!(delivery = %item.delivery.id, %why, "a bulk replay skipped a delivery");
                        bulk.failed += 1;
                    }
                    Err(ReplayError::Store(e)) => return Err(e.into()),
                }
                bulk.cursor = Some(item.delivery.id);
                self.save(&bulk, false).await?;
            }
            match page.next_cursor {
                Some(c) => {
                    query.before = Some(c);
                    bulk.cursor = Some(c);
                }
                None => return self.save(&bulk, !cancel.load(Ordering::SeqCst)).await,
            }
        }
    }

    async fn replay_one(&self, id: DeliveryId, by: &Actor, bulk: BulkReplayId) -> Result<(), ReplayError> {
        let (control, ingest, by) = (Arc::clone(&self.control), Arc::clone(&self.ingest), by.clone());
        crate::task::blocking(move || {
            control.replay_blocking(id, &by, Some(bulk), |d, p| super::queue::recheck_note(ingest.recheck(d, p)))
        })
        .await
        .map(|_| ())
    }

    /// Stores the progress after each delivery, so a restart goes on from the next one; `done` also marks
    /// it finished, unless it was cancelled meanwhile.
    async fn save(&self, progress: &BulkReplay, done: bool) -> Result<(), BulkError> {
        let p = progress.clone();
        let now = self.clock.now();
        self.store
            .read(move |db| {
                replays::update_bulk(db, p.id, done, |b| {
                    b.replayed = p.replayed;
                    b.skipped = p.skipped;
                    b.failed = p.failed;
                    b.cursor = p.cursor;
                    if done && b.status == BulkStatus::Running {
                        b.status = BulkStatus::Done;
                        b.finished_at = Some(now);
                    }
                })
            })
            .await?;
        Ok(())
    }
}
