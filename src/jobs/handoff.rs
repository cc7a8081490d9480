//! The way a fresh delivery reaches the worker without a claim. The ingest writer leases a new job to the
//! running worker in its delivery's own transaction and hands it over here, in memory, with the payload and
//! subscription it has just written; the first attempt then needs no claim transaction, no read and no
//! decompression. The worker's answers go back to the writer (`AnswerSink`), which commits them between
//! its group commits instead of waiting for the single write lock that every fsync holds.
//!
//! Nothing here is the record: the job is leased in the store, so if this process stops before the attempt
//! is answered, the next start recovers it like any other lease. Retries, replays, and new jobs while the
//! worker already has `capacity` jobs waiting are claimed from the store as before; a job whose payload
//! would pass `max_bytes` is handed over without it, and its attempt reads it from the store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use redb::Database;

use crate::domain::job::Preloaded;
use crate::domain::{Job, JobId, Payload};
use crate::storage::jobs::Answers;
use crate::storage::{self, Store, StoreError};

/// Who takes handed-over jobs: the lease owner of the worker run now going, and how long its leases last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taker {
    pub owner: String,
    pub lease_ms: i64,
}

#[derive(Default)]
struct State {
    taker: Option<Taker>,
    waiting: VecDeque<Job>,
    preloaded: HashMap<JobId, Preloaded>,
    bytes: usize,
}

pub struct Handoff {
    state: Mutex<State>,
    capacity: usize,
    max_bytes: usize,
}

impl Handoff {
    /// At most `capacity` jobs wait to be fetched, and their payloads hold at most `max_bytes`.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self { state: Mutex::default(), capacity, max_bytes }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker run begins taking jobs.
    pub fn open(&self, taker: Taker) {
        self.lock().taker = Some(taker);
    }

    /// The worker run ends: nothing more is handed over. Returns the jobs it never fetched, with their
    /// owner, for the caller to hand back to the store.
    pub fn close(&self) -> Option<(String, Vec<Job>)> {
        let mut s = self.lock();
        let taker = s.taker.take();
        let waiting: Vec<Job> = s.waiting.drain(..).collect();
        s.preloaded.clear();
        s.bytes = 0;
        taker.map(|t| (t.owner, waiting))
    }

    /// Whom the writer may lease new jobs to, and how many.
    pub fn room(&self) -> Option<(Taker, usize)> {
        let s = self.lock();
        let taker = s.taker.clone()?;
        Some((taker, self.capacity.saturating_sub(s.waiting.len())))
    }

    /// The writer hands over jobs it committed leased to `owner`. When that run has ended since (the worker
    /// stopped or started again), nothing is taken and the jobs come back, for the writer to release.
    pub fn give(&self, owner: &str, jobs: Vec<(Job, Preloaded)>) -> Result<(), Vec<Job>> {
        let mut s = self.lock();
        if s.taker.as_ref().is_none_or(|t| t.owner != owner) {
            return Err(jobs.into_iter().map(|(j, _)| j).collect());
        }
        for (job, pre) in jobs {
            let size = size(&pre.payload);
            // Over the budget the job still goes, without its payload: its attempt reads it from the store.
            if s.bytes + size <= self.max_bytes {
                s.bytes += size;
                s.preloaded.insert(job.id, pre);
            }
            s.waiting.push_back(job);
        }
        Ok(())
    }

    /// Hands over jobs committed leased to `owner`; when that run has ended meanwhile, makes them ready again
    /// in the store for the next run to claim.
    pub fn give_or_return(&self, store: &Store, owner: &str, jobs: Vec<(Job, Preloaded)>) {
        if jobs.is_empty() {
            return;
        }
        if let Err(back) = self.give(owner, jobs)
            && let Err(e) = store.db().and_then(|db| return_to_store(&db, owner, &back))
        {
            tracing::error!(error = %e, jobs = back.len(), "cannot hand back jobs of a stopped worker; they are sent when their leases end");
        }
    }

    /// Up to `max` handed-over jobs, oldest first.
    pub fn take(&self, max: usize) -> Vec<Job> {
        let mut s = self.lock();
        let n = max.min(s.waiting.len());
        s.waiting.drain(..n).collect()
    }

    /// The payload handed over with job `id`, once: the attempt that takes it frees its room.
    pub fn preloaded(&self, id: JobId) -> Option<Preloaded> {
        let mut s = self.lock();
        let pre = s.preloaded.remove(&id)?;
        s.bytes = s.bytes.saturating_sub(size(&pre.payload));
        Some(pre)
    }

    /// Forgets the payloads of jobs handed back to the store without an attempt.
    pub fn forget(&self, ids: &[JobId]) {
        for id in ids {
            self.preloaded(*id);
        }
    }
}

/// Makes jobs leased to `owner` whose run ended before fetching them ready again, with no attempt counted.
/// Both the writer (jobs it gave to a run that had just ended) and the worker (at the end of a run) use it.
pub fn return_to_store(db: &Database, owner: &str, jobs: &[Job]) -> Result<usize, StoreError> {
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    storage::jobs::release(db, owner, &ids)
}

fn size(p: &Payload) -> usize {
    p.body.len() + p.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
}

/// Where the worker sends its answers to be committed: the ingest writer. `Err` gives them back when it
/// cannot take them now (its queue is full, or it has stopped), for the worker to commit itself.
pub trait AnswerSink: Send + Sync {
    fn answer(&self, answers: Answers) -> Result<(), Answers>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::JobState;
    use crate::domain::subscription::Subscription;
    use crate::domain::subscription::{Destination, Origin};
    use crate::domain::{Clock, DeliveryId, Source, SubscriptionId, SubscriptionStatus, SystemClock};
    use crate::storage::jobs;

    pub(crate) fn fresh(body: &[u8]) -> (Job, Preloaded) {
        let now = SystemClock.now();
        let id = SubscriptionId::new(now);
        let sub = Subscription {
            id,
            name: "orders".into(),
            source: Source::Shopify,
            topic: "orders/create".into(),
            account: "shop.myshopify.com".into(),
            status: SubscriptionStatus::Active,
            destination: Destination::Store,
            origin: Origin::Api,
            zoho: None,
            dedupe_header: None,
            created_at: now,
            updated_at: now,
            last_verified_at: None,
            consecutive_failures: 0,
            metadata: Default::default(),
            retention_days: None,
            versions: Default::default(),
        };
        let payload = Payload { headers: vec![("a".into(), "b".into())], body: body.to_vec() };
        (Job::deliver(DeliveryId::new(now), id, now), Preloaded { sub, payload })
    }

    fn taker(owner: &str) -> Taker {
        Taker { owner: owner.into(), lease_ms: 90_000 }
    }

    #[test]
    fn a_job_handed_over_is_fetched_once_and_its_payload_taken_once() {
        let h = Handoff::new(8, 1024);
        assert!(h.room().is_none(), "no worker run takes jobs yet");
        h.open(taker("i.1/deliver"));
        let (job, pre) = fresh(b"{}");
        h.give("i.1/deliver", vec![(job.clone(), pre)]).unwrap();
        assert_eq!(h.room().map(|(_, n)| n), Some(7));
        assert_eq!(h.take(10), vec![job.clone()]);
        assert!(h.take(10).is_empty());
        assert_eq!(h.preloaded(job.id).map(|p| p.payload.body), Some(b"{}".to_vec()));
        assert!(h.preloaded(job.id).is_none(), "a payload is taken once");
    }

    #[test]
    fn jobs_for_a_run_that_ended_come_back_and_a_closed_run_gives_back_what_it_never_fetched() {
        let h = Handoff::new(8, 1024);
        h.open(taker("i.2/deliver"));
        let (old, pre) = fresh(b"x");
        assert_eq!(h.give("i.1/deliver", vec![(old.clone(), pre)]), Err(vec![old]));
        let (job, pre) = fresh(b"y");
        h.give("i.2/deliver", vec![(job.clone(), pre)]).unwrap();
        assert_eq!(h.close(), Some(("i.2/deliver".to_owned(), vec![job.clone()])));
        assert!(h.room().is_none());
        assert!(h.preloaded(job.id).is_none(), "closing forgets the payloads");
        let (late, pre) = fresh(b"z");
        assert_eq!(h.give("i.2/deliver", vec![(late.clone(), pre)]), Err(vec![late]));
    }

    #[test]
    fn payloads_past_the_budget_are_left_to_the_store_and_taking_one_frees_its_room() {
        // Each payload is 2 bytes of headers and 10 of body.
        let h = Handoff::new(8, 20);
        h.open(taker("i/deliver"));
        let (a, pa) = fresh(&[b'a'; 10]);
        let (b, pb) = fresh(&[b'b'; 10]);
        h.give("i/deliver", vec![(a.clone(), pa), (b.clone(), pb)]).unwrap();
        assert_eq!(h.take(10), vec![a.clone(), b.clone()], "both go to the worker");
        assert!(h.preloaded(b.id).is_none(), "the second did not fit");
        assert!(h.preloaded(a.id).is_some());
        let (c, pc) = fresh(&[b'c'; 10]);
        h.give("i/deliver", vec![(c.clone(), pc)]).unwrap();
        assert!(h.preloaded(c.id).is_some(), "the first one's room was freed");
    }

    #[test]
    fn room_counts_the_jobs_waiting_to_be_fetched() {
        let h = Handoff::new(2, 1024);
        h.open(taker("i/deliver"));
        h.give("i/deliver", vec![fresh(b"1"), fresh(b"2")]).unwrap();
        assert_eq!(h.room().map(|(_, n)| n), Some(0));
        h.take(1);
        assert_eq!(h.room().map(|(_, n)| n), Some(1));
    }

    /// A job written leased to `owner`, as the ingest writer leaves it.
    fn leased(store: &Store, owner: &str) -> (Job, Preloaded) {
        let (job, pre) = fresh(b"{}");
        let db = store.db().unwrap();
        let tx = db.begin_write().unwrap();
        jobs::enqueue(&tx, &job).unwrap();
        tx.commit().unwrap();
        let claimed = jobs::claim(&db, owner, SystemClock.now(), 60_000, 1, 8).unwrap();
        assert_eq!(claimed.len(), 1);
        (claimed.into_iter().next().unwrap(), pre)
    }

    #[test]
    fn jobs_leased_to_a_run_that_ended_meanwhile_are_ready_again_and_the_running_one_gets_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let db = store.db().unwrap();
        let handoff = Handoff::new(8, 1 << 20);
        handoff.open(Taker { owner: "i/deliver-1".into(), lease_ms: 60_000 });

        let (mine, pre) = leased(&store, "i/deliver-1");
        handoff.give_or_return(&store, "i/deliver-1", vec![(mine.clone(), pre)]);
        assert_eq!(handoff.take(8), vec![mine.clone()]);
        assert_eq!(jobs::get(&db, mine.id).unwrap().map(|j| j.state), Some(JobState::Leased));

        // Committed for the run before, which ended between the commit and the hand-over.
        let (old, pre) = leased(&store, "i/deliver-0");
        handoff.give_or_return(&store, "i/deliver-0", vec![(old.clone(), pre)]);
        assert!(handoff.take(8).is_empty());
        let back = jobs::get(&db, old.id).unwrap().unwrap();
        assert_eq!((back.state, back.attempts, back.lease), (JobState::Ready, 0, None), "no attempt counted");
        let next = jobs::claim(&db, "i/deliver-1", SystemClock.now(), 60_000, 8, 8).unwrap();
        assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), vec![old.id], "the next claim finds it");
    }
}
