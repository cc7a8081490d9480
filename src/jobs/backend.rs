//! The processing queue as an apalis 1.0 backend whose jobs live in redb (`storage::jobs`). apalis drives
//! registration, heartbeats, fetching and the drain at shutdown through [`Persisted`]; every store call
//! runs on the blocking pool, since a redb write waits for the ingest writer's commit.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use apalis_core::backend::codec::Codec;
use apalis_core::backend::finalize::Durable;
use apalis_core::backend::persistence::{Persisted, Persistence, TaskEvent, TaskPersistLayer};
use apalis_core::backend::{Backend, BackendConfig, WireFormatBackend};
use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::context::WorkerContext;

use super::handoff::{AnswerSink, Handoff, Taker};
use crate::domain::attempt::{ErrorClass, RetrySchedule, Tried};
use crate::domain::settlement::{Next, Outcome, Report};
use crate::domain::{Clock, Job, JobId};
use crate::storage::jobs::{self, Answers};
use crate::storage::{Store, StoreError};

/// How the queue runs. The lease must outlive an attempt (the destination's timeout) plus a heartbeat, so
/// that no job is handed to a second worker while the first may still be sending it.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub lease: Duration,
    pub heartbeat: Duration,
    pub batch: usize,
    pub schedule: RetrySchedule,
}

impl apalis_core::task::into_response::IntoResponse for Outcome {
    type Output = Outcome;

    fn into_response(self) -> Result<Outcome, apalis_core::error::BoxDynError> {
        Ok(self)
    }
}

/// Jobs travel as themselves: the store already holds them encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Same;

impl<T: Clone> Codec<T> for Same {
    type Error = Infallible;
    type Compact = T;

    fn encode(&self, val: &T) -> Result<T, Infallible> {
        Ok(val.clone())
    }

    fn decode(&self, val: &T) -> Result<T, Infallible> {
        Ok(val.clone())
    }
}

/// The store side of the queue, one per worker.
#[derive(Clone)]
pub struct RedbPersistence {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    /// This process's id, the first part of every lease owner it writes.
    instance: Arc<str>,
    /// Set when answers were committed without an fsync; the queue's flusher makes them durable.
    dirty: Arc<AtomicBool>,
    /// Bumped by every wake-up (`worker::Wake`).
    woken: Arc<AtomicU64>,
    /// Fresh jobs the writer leased to this worker, and where answers go to be committed.
    handoff: Arc<Handoff>,
    sink: Option<Arc<dyn AnswerSink>>,
}

/// How the worker meets the ingest writer (see `handoff`).
#[derive(Clone)]
pub struct Meeting {
    pub handoff: Arc<Handoff>,
    /// `None` commits answers in the worker's own transactions.
    pub sink: Option<Arc<dyn AnswerSink>>,
}

impl RedbPersistence {
    pub fn new(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        config: QueueConfig,
        instance: &str,
        dirty: Arc<AtomicBool>,
        woken: Arc<AtomicU64>,
        meeting: Meeting,
    ) -> Self {
        let Meeting { handoff, sink } = meeting;
        Self { store, clock, config, instance: instance.into(), dirty, woken, handoff, sink }
    }

    fn owner(&self, worker: &WorkerContext) -> String {
        format!("{}/{}", self.instance, worker.name())
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX)
    }
}

fn task_of(job: Job, owner: &str) -> Task<Job> {
    let id = TaskId::from_string(job.id.to_string());
    let attempts = job.attempts as usize;
    TaskBuilder::new(job).task_id(id).attempt(attempts).lock_by(Some(owner.to_owned())).build()
}

impl Persistence for RedbPersistence {
    type Compact = Job;
    type Response = Outcome;
    type Error = StoreError;

    async fn register(&mut self, worker: &WorkerContext) -> Result<(), StoreError> {
        let (instance, now) = (self.instance.clone(), self.clock.now());
        let recovered = self.store.read(move |db| jobs::recover(db, &instance, now)).await?;
        if recovered > 0 {
            tracing::warn!(recovered, "jobs a stopped process held are ready again");
        }
        self.handoff.open(Taker { owner: self.owner(worker), lease_ms: self.lease_ms() });
        Ok(())
    }

    async fn heartbeat(&mut self, worker: &WorkerContext) -> Result<(), StoreError> {
        let (owner, now, lease) = (self.owner(worker), self.clock.now(), self.lease_ms());
        self.store.read(move |db| jobs::heartbeat(db, &owner, now, lease)).await?;
        Ok(())
    }

    async fn fetch_next(&mut self, worker: &WorkerContext) -> Result<Vec<Task<Job>>, StoreError> {
        let (owner, lease) = (self.owner(worker), self.lease_ms());
        let (batch, max) = (self.config.batch, self.config.schedule.max_attempts());
        // A wake-up that arrives while a claim is reading is consumed without the claim seeing its jobs,
        // and nothing would wake the worker again until the next poll: claim once more when one came. The
        // time is read afresh each round: a delivery stamped just after the previous reading is due now.
        // Jobs handed over come first; the store is claimed from for the rest of the batch, so retries and
        // whatever did not fit the hand-over still come due.
        loop {
            let seen = self.woken.load(Ordering::SeqCst);
            let mut jobs = self.handoff.take(batch);
            let now = self.clock.now();
            let (o, room) = (owner.clone(), batch - jobs.len());
            if room > 0 {
                jobs.extend(self.store.read(move |db| jobs::claim(db, &o, now, lease, room, max)).await?);
            }
            if !jobs.is_empty() || self.woken.load(Ordering::SeqCst) == seen {
                return Ok(jobs.into_iter().map(|j| task_of(j, &owner)).collect());
            }
        }
    }

    async fn reenqueue_abandoned(&mut self, tasks: Vec<Task<Job>>, worker: &WorkerContext) -> Result<u64, StoreError> {
        let owner = self.owner(worker);
        let ids: Vec<JobId> = tasks.iter().map(|t| t.args.id).collect();
        self.handoff.forget(&ids);
        let released = self.store.read(move |db| jobs::release(db, &owner, &ids)).await?;
        Ok(released as u64)
    }

    async fn handle_events(
        &mut self,
        events: Vec<TaskEvent<Outcome>>,
        worker: &WorkerContext,
    ) -> Result<(), StoreError> {
        let owner = self.owner(worker);
        let now = self.clock.now();
        let mut answers = Vec::new();
        for event in events {
            if let TaskEvent::Complete(r) = event {
                let Ok(id) = r.task_id.to_string().parse::<JobId>() else { continue };
                let attempt = u32::try_from(r.attempt).unwrap_or(u32::MAX);
                let outcome = r.result.unwrap_or_else(|error| Outcome {
                    // The handler failed outright (a panic apalis caught): an attempt that sent nothing.
                    tried: Some(Tried {
                        started_at: now,
                        error: Some((ErrorClass::Internal, format!("the delivery worker failed: {error}"))),
                        ..Tried::default()
                    }),
                    next: Next::Retry { after: None },
                });
                answers.push((id, attempt, Report::new(&self.config.schedule, now, attempt, outcome, rand::random())));
            }
        }
        if answers.is_empty() {
            return Ok(());
        }
        // The writer commits them between its group commits; only when it cannot take them now does the
        // worker wait for the write lock itself.
        let answers = match &self.sink {
            Some(sink) => match sink.answer(Answers { owner, now, items: answers }) {
                Ok(()) => return Ok(()),
                Err(back) => back.items,
            },
            None => answers,
        };
        let owner = self.owner(worker);
        let dirty = Arc::clone(&self.dirty);
        self.store
            .read(move |db| {
                // Not fsynced here: an fsync per answer batch would hold the single write lock that every
                // acknowledgement waits for. The next durable commit (an ingest batch, or the flusher
                // within `FLUSH_EVERY`) carries it to disk.
                jobs::file_answers(db, vec![Answers { owner, now, items: answers }], false)?;
                dirty.store(true, Ordering::SeqCst);
                Ok::<_, StoreError>(())
            })
            .await
    }

    async fn push_tasks(&mut self, _tasks: Vec<Task<Job>>) -> Result<(), StoreError> {
        // Jobs are written by ingest in their delivery's own transaction, never through the sink.
        Err(StoreError::Invalid("jobs are enqueued with their delivery, not pushed".to_owned()))
    }
}

/// The backend a worker is built on.
pub struct RedbQueue {
    persisted: Persisted<RedbPersistence>,
    config: QueueConfig,
    codec: Same,
}

impl RedbQueue {
    pub fn new(persistence: RedbPersistence) -> Self {
        let config = persistence.config.clone();
        Self { persisted: Persisted::new(persistence), config, codec: Same }
    }
}

impl Backend for RedbQueue {
    type Task = Task<Job>;
    type Error = StoreError;

    fn poll_ready(&mut self, cx: &mut Context<'_>, worker: &WorkerContext) -> Poll<Result<(), StoreError>> {
        self.persisted.poll_ready(cx, worker, self.config.heartbeat)
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Task<Job>, StoreError>>> {
        self.persisted.poll_next(cx, worker)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>, worker: &WorkerContext) -> Poll<Result<(), StoreError>> {
        self.persisted.poll_close(cx, worker)
    }
}

impl BackendConfig for RedbQueue {
    type Args = Job;
    type Id = JobId;
    type Kind = Durable;
    type Config = QueueConfig;
    type Layer = TaskPersistLayer<Same, Outcome>;

    fn config(&self) -> &QueueConfig {
        &self.config
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> Self::Layer {
        self.persisted.layer(Same, self.config.batch).persist_results(true).lock_tasks(false)
    }
}

impl WireFormatBackend for RedbQueue {
    type Codec = Same;
    type Compact = Job;

    fn codec(&self) -> &Same {
        &self.codec
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use apalis_core::task::data::Data;
    use apalis_core::worker::builder::WorkerBuilder;

    use super::*;
    use crate::domain::{DeliveryId, SubscriptionId, SystemClock};

    async fn deliver(_job: Job, calls: Data<Arc<AtomicU32>>) -> Outcome {
        let tried = Some(Tried::default());
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Outcome { tried, next: Next::Retry { after: Some(Duration::ZERO) } },
            _ => Outcome { tried, next: Next::Delivered },
        }
    }

    /// Takes every answer batch, like the ingest writer, or refuses them all, like a writer whose queue is full.
    struct Sink {
        asked: AtomicU32,
        store: Arc<Store>,
        refuse: bool,
    }

    impl AnswerSink for Sink {
        fn answer(&self, answers: Answers) -> Result<(), Answers> {
            self.asked.fetch_add(u32::try_from(answers.items.len()).unwrap(), Ordering::SeqCst);
            if self.refuse {
                return Err(answers);
            }
            jobs::file_answers(&self.store.db().unwrap(), vec![answers], true).unwrap();
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_worker_retries_then_finishes_a_job_and_the_store_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        retries_then_finishes(Arc::new(Store::open(dir.path()).unwrap()), None).await;
    }

    #[tokio::test]
    async fn answers_go_to_the_sink_and_the_worker_commits_them_itself_when_the_sink_refuses() {
        for refuse in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(Store::open(dir.path()).unwrap());
            let sink = Arc::new(Sink { asked: AtomicU32::new(0), store: Arc::clone(&store), refuse });
            retries_then_finishes(store, Some(Arc::clone(&sink) as Arc<dyn AnswerSink>)).await;
            // Both attempts' answers were offered, and the job is gone either way: a refused answer was
            // committed by the worker, not dropped.
            assert_eq!(sink.asked.load(Ordering::SeqCst), 2, "refuse: {refuse}");
        }
    }

    /// Runs one job that fails once and is then delivered; its answers go to `sink`, or none.
    async fn retries_then_finishes(store: Arc<Store>, sink: Option<Arc<dyn AnswerSink>>) {
        let now = SystemClock.now();
        let job = Job::deliver(DeliveryId::new(now), SubscriptionId::new(now), now);
        let db = store.db().unwrap();
        let tx = db.begin_write().unwrap();
        jobs::enqueue(&tx, &job).unwrap();
        tx.commit().unwrap();

        let config = QueueConfig {
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_millis(20),
            batch: 4,
            schedule: RetrySchedule { delays: vec![Duration::ZERO; 4], jitter_percent: 0 },
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let dirty = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let woken = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let backend = RedbQueue::new(RedbPersistence::new(
            Arc::clone(&store),
            clock,
            config,
            "test",
            dirty,
            woken,
            Meeting { handoff: Arc::new(Handoff::new(0, 0)), sink },
        ));
        let calls = Arc::new(AtomicU32::new(0));
        let worker = WorkerBuilder::new("deliver-0").backend(backend).data(Arc::clone(&calls)).build(deliver);
        let watched = Arc::clone(&calls);
        let done = async move {
            while watched.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<(), std::io::Error>(())
        };
        tokio::time::timeout(Duration::from_secs(20), worker.run_until(done)).await.unwrap().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(jobs::get(&db, job.id).unwrap(), None, "delivered on the second attempt, then removed");
    }
}
