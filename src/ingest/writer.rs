//! Group commit: one thread owns every ingest write. It takes whatever is queued while the previous commit
//! ran, writes it as one redb transaction with full durability, and only then answers each request. No
//! timer: under light load a batch is one delivery; under heavy load many requests share one fsync.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use redb::Durability;
use tokio::sync::{mpsc, oneshot};

use super::batch::{Committed, write_batch};
use super::registry::{Entry, SharedRegistry};
use crate::domain::job::Preloaded;
use crate::domain::subscription::{Destination, Subscription};
use crate::domain::{Delivery, DeliveryId, DeliveryStatus, Payload, SubscriptionId, SubscriptionStatus};
use crate::domain::{Job, JobState};
use crate::storage::dedupe::DedupeIndex;
use crate::storage::deliveries::NewDelivery;
use crate::storage::jobs::Answers;
use crate::storage::records::RejectionSample;
use crate::storage::{Store, StoreError, jobs, rejections};
use crate::task::AliveGuard;

/// Which subscription a verified delivery belongs to.
#[derive(Debug, Clone)]
pub enum Target {
    Known(SubscriptionId),
    /// Verified Shopify traffic for a shop and topic nobody registered: found or created at commit.
    DiscoverShopify {
        account: String,
        topic: String,
    },
}

#[derive(Debug)]
pub struct Pending {
    pub target: Target,
    /// Bound to its subscription already when the target is `Known`.
    pub new: NewDelivery,
    pub job: Option<Job>,
    /// The headers and body as received, when the job may be handed to the worker with them.
    pub payload: Option<Payload>,
}

/// Files a delivery under its subscription: its status and, when the subscription forwards, its job.
pub fn bind(d: &mut Delivery, sub: &Subscription) -> Option<Job> {
    d.subscription_id = sub.id;
    match &sub.destination {
        Destination::Store => {
            d.status = DeliveryStatus::Stored;
            None
        }
        Destination::Http { .. } => {
            d.status = DeliveryStatus::Queued;
            let mut job = Job::deliver(d.id, sub.id, d.received_at);
            job.state = first_state(sub);
            Some(job)
        }
    }
}

/// A new job waits in the held index while its subscription's destination is paused.
pub(super) fn first_state(sub: &Subscription) -> JobState {
    if sub.status == SubscriptionStatus::Paused { JobState::Held } else { JobState::Ready }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub delivery_id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("subscription {0} no longer exists")]
    SubscriptionGone(SubscriptionId),
    #[error("the writer has stopped")]
    Stopped,
}

enum Op {
    Deliver(Box<Pending>, oneshot::Sender<Result<Stored, WriteError>>),
    Reject(Box<RejectionSample>),
    Answers(Answers),
    /// Commit everything queued before this, refuse everything after, and end the thread.
    Stop,
    /// While commits fail: try a small durable write, to find out whether they hold again.
    Probe,
}

/// What the writer does around its commits besides writing. `app.rs` wires it to the delivery worker and
/// the search indexer, so the writer knows neither.
pub trait Hooks: Send + Sync {
    /// Whom the next batch may lease new jobs to straight away, and how many.
    fn lease_room(&self) -> Option<LeaseRoom>;
    /// After a commit: the jobs it leased to `owner`, with what their first attempts need.
    fn hand_over(&self, owner: &str, jobs: Vec<(Job, Preloaded)>);
    /// After a commit that made jobs ready to claim, or handed some over.
    fn wake(&self);
    /// After a commit: the new deliveries with their stored payloads; `requests` is the batch's size.
    fn stored(&self, deliveries: Vec<(Delivery, Vec<u8>)>, requests: usize);
    /// After a commit of the delivery worker's answers: attempt outcomes changed.
    fn answered(&self);
}

/// A running worker that takes new jobs from the writer: its lease owner, its lease length, and how many
/// more jobs it takes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRoom {
    pub owner: String,
    pub lease_ms: i64,
    pub left: usize,
}

/// The handle request handlers hold. Dropping every handle stops the writer after it drained its queue.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Op>,
}

impl WriterHandle {
    /// Queues a delivery and waits for its commit. A full queue is refused at once, so the provider retries
    /// instead of every request waiting longer.
    pub async fn deliver(&self, pending: Pending) -> Result<Stored, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Op::Deliver(Box::new(pending), reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                WriteError::Store(StoreError::Unavailable("the write queue is full; retry shortly".into()))
            }
            mpsc::error::TrySendError::Closed(_) => WriteError::Stopped,
        })?;
        rx.await.map_err(|_| WriteError::Stopped)?
    }

    /// Stops the writer once everything queued so far is committed.
    pub async fn stop(&self) {
        let _ = self.tx.send(Op::Stop).await;
    }

    /// Queues the delivery worker's answers, to be committed before the next group commit and made durable
    /// by its fsync. `Err` gives them back when the queue is full or the writer has stopped.
    pub fn answer(&self, answers: Answers) -> Result<(), Answers> {
        match self.tx.try_send(Op::Answers(answers)) {
            Ok(()) => Ok(()),
            // try_send gives back what it was given.
            Err(e) => match e.into_inner() {
                Op::Answers(a) => Err(a),
                _ => Ok(()),
            },
        }
    }

    /// Records a rejection when there is room; under a flood, samples are dropped rather than queued.
    pub fn reject(&self, sample: RejectionSample) {
        let _ = self.tx.try_send(Op::Reject(Box::new(sample)));
    }
}

pub struct Writer {
    pub handle: WriterHandle,
    pub thread: JoinHandle<()>,
}

/// Starts the writer thread. `guard` marks it gone when it stops, for whatever reason.
pub fn spawn(
    store: Arc<Store>,
    registry: Arc<SharedRegistry>,
    hooks: Arc<dyn Hooks>,
    queue: usize,
    max_batch: usize,
    guard: AliveGuard,
) -> std::io::Result<Writer> {
    let (tx, rx) = mpsc::channel(queue);
    tokio::spawn(probe_while_failing(Arc::clone(&store), tx.downgrade()));
    let thread = std::thread::Builder::new().name("hookplane-writer".into()).spawn(move || {
        let _alive = guard;
        run(&store, &registry, &*hooks, rx, max_batch);
    })?;
    Ok(Writer { handle: WriterHandle { tx }, thread })
}

/// How often the writer tries a write while its commits fail.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// While the writer's commits fail, asks it every [`PROBE_EVERY`] to try a small write, so that it goes
/// back to accepting by itself once the fault is gone (space freed on a full disk), not only when a
/// provider's retry happens to arrive. Ends with the writer; holds no handle that would keep it running.
async fn probe_while_failing(store: Arc<Store>, writer: mpsc::WeakSender<Op>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(tx) = writer.upgrade() else { return };
        if tx.is_closed() {
            return;
        }
        if store.writes_failing() {
            let _ = tx.try_send(Op::Probe);
        }
    }
}

fn run(store: &Store, registry: &SharedRegistry, hooks: &dyn Hooks, mut rx: mpsc::Receiver<Op>, max_batch: usize) {
    // Loaded now so the first request does not pay for it; dropped whenever a commit fails, because the
    // database may then hold more or less than memory says.
    let mut index = load_index(store);
    let mut batch = Vec::with_capacity(max_batch);
    let mut stopping = false;
    while !stopping && let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut pendings = Vec::with_capacity(batch.len());
        let mut samples = Vec::new();
        let mut answers = Vec::new();
        let mut probe = false;
        for op in batch.drain(..) {
            match op {
                Op::Deliver(p, reply) if !stopping => {
                    pendings.push(*p);
                    replies.push(reply);
                }
                Op::Deliver(_, reply) => {
                    let _ = reply.send(Err(WriteError::Stopped));
                }
                Op::Reject(s) => samples.push(*s),
                // Answers are committed even while stopping: the worker stops first, and its last answers
                // should not be left to the next start's recovery.
                Op::Answers(a) => answers.push(a),
                Op::Stop => stopping = true,
                Op::Probe => probe = true,
            }
        }
        // Before the deliveries and without an fsync of their own: the group commit right after makes them
        // durable with its own.
        if answer(store, answers, pendings.is_empty()) {
            hooks.answered();
        }
        if pendings.is_empty() && samples.is_empty() {
            if probe && store.writes_failing() {
                try_writing(store);
            }
            continue;
        }
        let requests = pendings.len();
        match commit(store, &mut index, pendings, &samples, hooks.lease_room()) {
            Ok(Committed { results, created, stored, handed }) => {
                // Only a durable commit of deliveries says they hold again: rejection samples alone are
                // written without an fsync.
                if requests > 0 && store.writes_failing() {
                    tracing::info!("commits hold again: accepting webhooks");
                    store.writes_hold();
                }
                for sub in created {
                    registry.upsert(Entry { sub, secrets: Vec::new() });
                }
                if let Some((owner, handed)) = handed {
                    hooks.hand_over(&owner, handed);
                }
                // A new job is ready to claim (`queued`) or waits in the hand-over (`processing`).
                if stored.iter().any(|(d, _)| matches!(d.status, DeliveryStatus::Queued | DeliveryStatus::Processing)) {
                    hooks.wake();
                }
                if !stored.is_empty() {
                    hooks.stored(stored, requests);
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, deliveries = replies.len(), "group commit failed; answering 503");
                index = None;
                store.writes_fail(e.to_string());
                let reopen = e.needs_reopen();
                for reply in replies {
                    let _ = reply.send(Err(WriteError::Store(StoreError::Unavailable(e.to_string()))));
                }
                if reopen && let Err(e) = store.reopen() {
                    tracing::error!(error = %e, "reopening the database failed; will retry on the next write");
                }
            }
        }
    }
    rx.close();
    let mut answers = Vec::new();
    while let Ok(op) = rx.try_recv() {
        match op {
            Op::Deliver(_, reply) => {
                let _ = reply.send(Err(WriteError::Stopped));
            }
            Op::Answers(a) => answers.push(a),
            _ => {}
        }
    }
    let _ = answer(store, answers, true);
}

/// A probe while commits fail: a small durable write, after reopening the database if a failure closed it.
fn try_writing(store: &Store) {
    let held = match store.db() {
        Ok(_) => store.probe_write(),
        Err(_) => store.reopen().and_then(|()| store.probe_write()),
    };
    match held {
        Ok(()) => {
            tracing::info!("a probe write held: accepting webhooks again");
            store.writes_hold();
        }
        Err(e) => {
            if e.needs_reopen() {
                let _ = store.reopen();
            }
            store.writes_fail(e.to_string());
        }
    }
}

/// Commits the worker's answers; durably when no group commit follows. A failure leaves their jobs leased:
/// they are tried again when the lease ends, so a delivery may be sent twice but is never lost.
/// Returns whether any were committed.
fn answer(store: &Store, answers: Vec<Answers>, durable: bool) -> bool {
    if answers.is_empty() {
        return false;
    }
    match store.db().and_then(|db| jobs::file_answers(&db, answers, durable)) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "cannot record the delivery worker's answers; their jobs are tried again when their leases end");
            false
        }
    }
}

fn load_index(store: &Store) -> Option<DedupeIndex> {
    match store.db().and_then(|db| DedupeIndex::load(&db)) {
        Ok(index) => Some(index),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the dedupe index; will retry on the next write");
            None
        }
    }
}

fn commit(
    store: &Store,
    index: &mut Option<DedupeIndex>,
    pendings: Vec<Pending>,
    samples: &[RejectionSample],
    room: Option<LeaseRoom>,
) -> Result<Committed, StoreError> {
    let db = match store.db() {
        Ok(db) => db,
        Err(_) => {
            // A previous failure left the database closed: try to bring it back before giving up.
            store.reopen()?;
            store.db()?
        }
    };
    if index.is_none() {
        *index = Some(DedupeIndex::load(&db)?);
    }
    let index = index.as_mut().ok_or_else(|| StoreError::Other("dedupe index missing".into()))?;
    // Taken whether or not this commit holds: an entry deleted for good stays deleted.
    index.forget(&store.take_forgotten());
    let mut tx = db.begin_write()?;
    if pendings.is_empty() {
        // Rejection samples alone are not worth an fsync; the next durable commit carries them.
        tx.set_durability(Durability::None)?;
    }
    let deliveries = pendings.len();
    let committed = write_batch(&tx, pendings, index, room)?;
    rejections::record(&tx, samples)?;
    let started = std::time::Instant::now();
    tx.commit()?;
    if deliveries > 0 {
        crate::metrics::get().committed(deliveries, started.elapsed());
    }
    Ok(committed)
}
