//! The delivery worker: an apalis worker on the redb queue whose handler sends one attempt of a delivery to
//! its subscription's destination. It is started with the core and drained at shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis_core::backend::ext::BackendExt as _;
use apalis_core::backend::ext::poll_strategy::Strategy;
use apalis_core::task::data::Data;
use apalis_core::worker::builder::WorkerBuilder;
use futures_channel::mpsc;
use tokio::sync::{Semaphore, watch};

use super::backend::{Meeting, QueueConfig, RedbPersistence, RedbQueue};
use super::forward::{self, Outgoing};
use super::handoff::{self, Handoff};
use crate::domain::Job;
use crate::domain::attempt::{ErrorClass, RetrySchedule, Tried};
use crate::domain::settlement::{Next, Outcome};
use crate::domain::subscription::{Destination, Subscription};
use crate::domain::{Clock, Payload, SubscriptionId, SubscriptionStatus};
use crate::storage::{Store, StoreError, deliveries, subscriptions};
use crate::task::AliveGuard;
use serde::Deserialize;

/// Wakes the queue's worker when the writer committed new jobs, so a delivery is sent as soon as it is
/// stored rather than at the next poll.
#[derive(Clone, Default)]
pub struct Wake {
    senders: Arc<Mutex<Vec<mpsc::Sender<()>>>>,
    /// Counts wake-ups, so a claim that raced a commit can tell it missed one (see `RedbPersistence`).
    generation: Arc<AtomicU64>,
}

impl Wake {
    pub fn subscribe(&self) -> mpsc::Receiver<()> {
        // One pending wake is enough: the worker claims everything due when it wakes.
        let (tx, rx) = mpsc::channel(0);
        if let Ok(mut senders) = self.senders.lock() {
            senders.push(tx);
        }
        rx
    }

    pub fn generation(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.generation)
    }

    pub fn wake(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut senders) = self.senders.lock() {
            senders.retain_mut(|s| match s.try_send(()) {
                Ok(()) => true,
                Err(e) => !e.is_disconnected(),
            });
        }
    }
}

/// The `[delivery]` section: timeouts, retries, concurrency and leases of the delivery queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    pub timeout_seconds: u64,
    pub retry_delays_seconds: Vec<u64>,
    pub retry_jitter_percent: u8,
    pub concurrency: usize,
    pub per_destination_concurrency: usize,
    pub lease_seconds: u64,
    pub heartbeat_seconds: u64,
    pub poll_interval_ms: u64,
}

/// What the handler needs: where deliveries are, how to send them, and how many may go to one destination
/// at once.
pub struct Deliverer {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    timeout: Duration,
    signing_root: [u8; 32],
    per_destination: usize,
    /// Each subscription's limit of attempts at once, with the limit it was made for.
    destinations: Mutex<HashMap<SubscriptionId, (usize, Arc<Semaphore>)>>,
    handoff: Arc<Handoff>,
}

impl Deliverer {
    fn slots(&self, sub: SubscriptionId, limit: usize) -> Arc<Semaphore> {
        let mut map = self.destinations.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(sub).or_insert_with(|| (limit, Arc::new(Semaphore::new(limit))));
        if entry.0 != limit {
            // The limit changed: attempts holding the old one finish under it.
            *entry = (limit, Arc::new(Semaphore::new(limit)));
        }
        Arc::clone(&entry.1)
    }

    fn internal(&self, error: String) -> Option<Tried> {
        Some(Tried { started_at: self.clock.now(), error: Some((ErrorClass::Internal, error)), ..Tried::default() })
    }

    /// The subscription, the attempt's number and the payload: as handed over with a fresh job, else read.
    async fn load(&self, job: &Job) -> Result<(Subscription, u32, Payload), Outcome> {
        if let Some(pre) = self.handoff.preloaded(job.id) {
            // A first attempt: the writer committed the delivery moments ago, with no attempt made.
            return Ok((pre.sub, 1, pre.payload));
        }
        let (sub_id, delivery_id) = (job.subscription_id, job.delivery_id);
        let loaded = self
            .store
            .read(move |db| {
                let sub = subscriptions::get(db, sub_id)?;
                let stored = deliveries::body(db, delivery_id)?;
                Ok::<_, StoreError>((sub, stored))
            })
            .await;
        let gave_up = |error: String| Outcome { tried: self.internal(error), next: Next::GiveUp };
        match loaded {
            Ok((Some(sub), Some((delivery, payload)))) => Ok((sub, delivery.attempt_count + 1, payload)),
            Ok(_) => Err(gave_up("the delivery or its subscription no longer exists".to_owned())),
            Err(e @ StoreError::Corrupt { .. }) => Err(gave_up(format!("not sent: {e}"))),
            Err(e) => Err(Outcome {
                tried: self.internal(format!("cannot read the delivery: {e}")),
                next: Next::Retry { after: None },
            }),
        }
    }

    async fn run(&self, job: Job) -> Outcome {
        let (sub, attempt, payload) = match self.load(&job).await {
            Ok(loaded) => loaded,
            Err(outcome) => return outcome,
        };
        if sub.status == SubscriptionStatus::Paused {
            return Outcome { tried: None, next: Next::Hold };
        }
        let Destination::Http { url, timeout_seconds, concurrency, headers: extra } = &sub.destination else {
            let error = "the subscription now keeps its deliveries (destination `store`): not sent".to_owned();
            return Outcome { tried: self.internal(error), next: Next::GiveUp };
        };
        let limit = concurrency.map_or(self.per_destination, |c| c as usize);
        // Waiting here holds one of the worker's slots; see "Limits" in docs/architecture.md.
        let slots = self.slots(sub.id, limit);
        let Ok(_slot) = slots.acquire().await else {
            return Outcome {
                tried: self.internal("the worker is stopping".into()),
                next: Next::Retry { after: None },
            };
        };
        let key = crate::secrets::destination_key(&self.signing_root, &sub.id.to_string());
        let id = job.delivery_id.to_string();
        let now = self.clock.now();
        let out = Outgoing {
            url,
            delivery_id: &id,
            attempt,
            headers: &payload.headers,
            extra,
            body: &payload.body,
            signing_key: Some(&key),
            timestamp: now.seconds(),
            version_header: sub.versions.header(),
        };
        let timeout = timeout_seconds.map_or(self.timeout, |t| Duration::from_secs(u64::from(t)));
        let attempted = forward::send(&self.client, &out, timeout, now).await;
        let next = match attempted.verdict() {
            // Hookplane could not even make the request (a URL reqwest refuses): retrying changes nothing.
            Next::Retry { .. } if attempted.tried.error.as_ref().is_some_and(|(c, _)| *c == ErrorClass::Internal) => {
                Next::GiveUp
            }
            next => next,
        };
        Outcome { tried: Some(attempted.tried), next }
    }
}

async fn deliver(job: Job, deliverer: Data<Arc<Deliverer>>) -> Outcome {
    let outcome = deliverer.run(job).await;
    if let Some(tried) = &outcome.tried {
        let label = tried.error.as_ref().map_or("delivered", |(class, _)| class.as_str());
        crate::metrics::get().attempted(label, Duration::from_millis(u64::from(tried.latency_ms)));
    }
    outcome
}

/// How long the queue's answers may wait for an fsync: a crash sends at most this much of them again.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Makes the queue's non-durable commits durable with an empty durable commit, when there are any.
async fn flush(store: &Arc<Store>, dirty: &Arc<AtomicBool>) {
    if !dirty.swap(false, Ordering::SeqCst) {
        return;
    }
    let flushed = store
        .read(|db| {
            let tx = db.begin_write()?;
            tx.commit()?;
            Ok::<_, StoreError>(())
        })
        .await;
    if let Err(e) = flushed {
        dirty.store(true, Ordering::SeqCst);
        tracing::warn!(error = %e, "cannot make the queue's progress durable; trying again");
    }
}

async fn flush_every(store: Arc<Store>, dirty: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tick.tick().await;
        flush(&store, &dirty).await;
    }
}

/// Ends a worker run's hand-over, and makes the jobs it never fetched ready again, with no attempt counted.
async fn hand_back(store: &Arc<Store>, handoff: &Handoff) {
    let Some((owner, waiting)) = handoff.close() else { return };
    if waiting.is_empty() {
        return;
    }
    if let Err(e) = store.read(move |db| handoff::return_to_store(db, &owner, &waiting)).await {
        tracing::warn!(error = %e, "cannot hand back jobs never started; the next start recovers them");
    }
}

/// The running queue.
pub struct Queue {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    flusher: tokio::task::JoinHandle<()>,
    store: Arc<Store>,
    dirty: Arc<AtomicBool>,
    handoff: Arc<Handoff>,
}

/// What starting the queue needs from the core.
pub struct QueueParts {
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: DeliverySettings,
    pub signing_root: [u8; 32],
    pub wake: Wake,
    pub meeting: Meeting,
    /// Marks the queue gone when its loop ends.
    pub guard: AliveGuard,
}

impl Queue {
    pub fn start(parts: QueueParts) -> anyhow::Result<Self> {
        let QueueParts { store, clock, settings, signing_root, wake, meeting, guard } = parts;
        let client = reqwest::Client::builder()
            .user_agent(concat!("Hookplane/", env!("CARGO_PKG_VERSION")))
            // A destination that redirects is misconfigured; following it could send the body elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let deliverer = Arc::new(Deliverer {
            store: Arc::clone(&store),
            clock: Arc::clone(&clock),
            client,
            timeout: Duration::from_secs(settings.timeout_seconds),
            signing_root,
            per_destination: settings.per_destination_concurrency,
            destinations: Mutex::new(HashMap::new()),
            handoff: Arc::clone(&meeting.handoff),
        });
        let config = QueueConfig {
            lease: Duration::from_secs(settings.lease_seconds),
            heartbeat: Duration::from_secs(settings.heartbeat_seconds),
            batch: settings.concurrency.min(64),
            schedule: RetrySchedule {
                delays: settings.retry_delays_seconds.iter().map(|s| Duration::from_secs(*s)).collect(),
                jitter_percent: settings.retry_jitter_percent,
            },
        };
        let instance = ulid::Ulid::new().to_string();
        let (stop, stopped) = watch::channel(false);
        let poll = Duration::from_millis(settings.poll_interval_ms);
        let dirty = Arc::new(AtomicBool::new(false));
        let flusher = tokio::spawn(flush_every(Arc::clone(&store), Arc::clone(&dirty)));
        let (queue_store, queue_dirty) = (Arc::clone(&store), Arc::clone(&dirty));
        let queue_handoff = Arc::clone(&meeting.handoff);
        let task = tokio::spawn(async move {
            let _alive = guard;
            // Each run of the worker has its own lease owner, so a run that starts after one failed
            // recovers what the failed run held.
            let mut run = 0u32;
            loop {
                run += 1;
                let persistence = RedbPersistence::new(
                    Arc::clone(&store),
                    Arc::clone(&clock),
                    config.clone(),
                    &format!("{instance}.{run}"),
                    Arc::clone(&dirty),
                    wake.generation(),
                    meeting.clone(),
                );
                let backend = RedbQueue::new(persistence)
                    .poll_with_strategy(Strategy::new().stream(wake.subscribe()).interval(poll));
                let worker = WorkerBuilder::new("deliver")
                    .backend(backend)
                    .layer(tower::limit::ConcurrencyLimitLayer::new(settings.concurrency))
                    .data(Arc::clone(&deliverer))
                    .build(deliver);
                let mut signal = stopped.clone();
                let until = async move {
                    let _ = signal.wait_for(|s| *s).await;
                    Ok::<(), std::io::Error>(())
                };
                let ended = worker.run_until(until).await;
                hand_back(&store, &meeting.handoff).await;
                match ended {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "the delivery worker stopped; starting it again in a second");
                        if *stopped.borrow() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Self { stop, task, flusher, store: queue_store, dirty: queue_dirty, handoff: queue_handoff })
    }

    /// Stops claiming, lets attempts in flight finish for up to `grace`, and hands back what was claimed
    /// but not started. Attempts still running after `grace` are dropped; their leases are recovered at the
    /// next start.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!("deliveries still in flight at shutdown; they are retried at the next start");
            task.abort();
            hand_back(&self.store, &self.handoff).await;
        }
        self.flusher.abort();
        flush(&self.store, &self.dirty).await;
    }
}
