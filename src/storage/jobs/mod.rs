//! The processing queue's durable state: claiming due jobs under a lease, extending leases, answering
//! for a finished attempt, handing back jobs never started, and recovering jobs a stopped process held.
//! Every operation is one write transaction, so a job is never held by two workers at once: a claim only
//! takes jobs that are ready and due, or whose lease has ended. What an answer does is decided by
//! `domain::settlement`; this module writes it.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use super::{StoreError, attempts, deliveries, tables};
use crate::domain::settlement::{self, Decision, Report, Settled};
use crate::domain::{Job, JobId, JobIndex, JobState, SubscriptionId, SubscriptionStatus, Timestamp};

/// The answers of finished attempts, for one lease owner.
#[derive(Debug)]
pub struct Answers {
    pub owner: String,
    pub now: Timestamp,
    pub items: Vec<(JobId, u32, Report)>,
}

/// Commits the worker's answers in one transaction, without an fsync when `durable` is false: the next
/// durable commit carries them, and a crash before it sends those attempts again, never loses a delivery.
pub fn file_answers(db: &Database, answers: Vec<Answers>, durable: bool) -> Result<(), StoreError> {
    let mut tx = db.begin_write()?;
    if !durable {
        tx.set_durability(redb::Durability::None)?;
    }
    for a in answers {
        for (id, attempt, report) in a.items {
            finish(&tx, &a.owner, id, attempt, report, a.now)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// How many jobs wait in each state, and since when the oldest due one has: what the metrics export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Levels {
    /// Ready and due: waiting for a worker.
    pub due: u64,
    /// Ready for later: retries waiting out their delay.
    pub scheduled: u64,
    pub leased: u64,
    /// Held while their destination is paused.
    pub held: u64,
    /// The run-at time of the oldest due job.
    pub oldest_due: Option<Timestamp>,
}

/// The queue's levels at `now`. Scheduled jobs are counted up to `cap`, past which the split between due and
/// scheduled is approximate (the total is exact).
pub fn levels(db: &Database, now: Timestamp, cap: u64) -> Result<Levels, StoreError> {
    let tx = db.begin_read()?;
    let ready = tx.open_table(tables::JOBS_READY)?;
    let mut scheduled = 0;
    for row in ready.range((now.millis().saturating_add(1), 0)..)? {
        row?;
        scheduled += 1;
        if scheduled >= cap {
            break;
        }
    }
    let oldest_due = match ready.first()? {
        Some((k, _)) if k.value().0 <= now.millis() => Some(Timestamp::from_millis(k.value().0)),
        _ => None,
    };
    Ok(Levels {
        due: ready.len()?.saturating_sub(scheduled),
        scheduled,
        leased: tx.open_table(tables::JOBS_LEASED)?.len()?,
        held: tx.open_table(tables::JOBS_HELD)?.len()?,
        oldest_due,
    })
}

/// The job tables, opened once per transaction.
pub(super) struct JobTables<'tx> {
    jobs: Table<'tx, u128, &'static [u8]>,
    ready: Table<'tx, (i64, u128), ()>,
    leased: Table<'tx, (i64, u128), ()>,
    held: Table<'tx, (u128, u128), ()>,
}

impl<'tx> JobTables<'tx> {
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            jobs: tx.open_table(tables::JOBS.def())?,
            ready: tx.open_table(tables::JOBS_READY)?,
            leased: tx.open_table(tables::JOBS_LEASED)?,
            held: tx.open_table(tables::JOBS_HELD)?,
        })
    }

    fn get(&self, id: u128) -> Result<Option<Job>, StoreError> {
        self.jobs.get(id)?.map(|v| tables::JOBS.decode(v.value())).transpose()
    }

    /// Writes a new job and the index entry its state puts it in.
    pub(super) fn insert(&mut self, job: &Job) -> Result<(), StoreError> {
        self.jobs.insert(job.id.as_u128(), tables::JOBS.encode(job)?.as_slice())?;
        match job.index() {
            Some(JobIndex::Ready { at, id }) => self.ready.insert((at, id), ())?,
            Some(JobIndex::Leased { until, id }) => self.leased.insert((until, id), ())?,
            Some(JobIndex::Held { subscription, id }) => self.held.insert((subscription, id), ())?,
            None => None,
        };
        Ok(())
    }

    fn unindex(&mut self, job: &Job) -> Result<(), StoreError> {
        match job.index() {
            Some(JobIndex::Ready { at, id }) => self.ready.remove((at, id))?,
            Some(JobIndex::Leased { until, id }) => self.leased.remove((until, id))?,
            Some(JobIndex::Held { subscription, id }) => self.held.remove((subscription, id))?,
            None => None,
        };
        Ok(())
    }

    /// Replaces `old` with `new`, moving it between indexes as its state says.
    fn replace(&mut self, old: &Job, new: &Job) -> Result<(), StoreError> {
        self.unindex(old)?;
        self.insert(new)
    }

    fn remove(&mut self, job: &Job) -> Result<(), StoreError> {
        self.unindex(job)?;
        self.jobs.remove(job.id.as_u128())?;
        Ok(())
    }

    fn lease(&mut self, job: &mut Job, owner: &str, until: Timestamp) -> Result<(), StoreError> {
        let old = job.clone();
        settlement::lease(job, owner, until);
        self.replace(&old, job)
    }

    fn make_ready(&mut self, job: &mut Job, at: Timestamp) -> Result<(), StoreError> {
        let old = job.clone();
        job.state = JobState::Ready;
        job.lease = None;
        job.run_at = at;
        self.replace(&old, job)
    }

    /// Writes what `decision` makes of `job`.
    fn apply(&mut self, job: &Job, decision: &Decision) -> Result<(), StoreError> {
        if decision.settled == Settled::Done { self.remove(job) } else { self.replace(job, &decision.job) }
    }
}

/// Adds a job inside the caller's transaction (a replay writes its job with its own record): ready, or held
/// when it was made held because its destination is paused.
pub fn enqueue(tx: &WriteTransaction, job: &Job) -> Result<(), StoreError> {
    let mut job = job.clone();
    if job.state != JobState::Held {
        job.state = JobState::Ready;
    }
    job.lease = None;
    JobTables::open(tx)?.insert(&job)
}

/// Makes every job held for `subscription` ready at `now`, in the order they were held (their ids are
/// ULIDs, so arrival order). Returns them, for their records to follow.
pub fn release_held(
    tx: &WriteTransaction,
    subscription: SubscriptionId,
    now: Timestamp,
) -> Result<Vec<Job>, StoreError> {
    let mut t = JobTables::open(tx)?;
    let sub = subscription.as_u128();
    let mut ids = Vec::new();
    for row in t.held.range((sub, 0)..=(sub, u128::MAX))? {
        ids.push(row?.0.value().1);
    }
    let mut released = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(mut job) = t.get(id)? else { continue };
        t.make_ready(&mut job, now)?;
        released.push(job);
    }
    Ok(released)
}
/// How many jobs are held for `subscription`.
pub fn held_count(db: &Database, subscription: SubscriptionId) -> Result<usize, StoreError> {
    use redb::ReadableDatabase;
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::JOBS_HELD)?;
    let sub = subscription.as_u128();
    Ok(t.range((sub, 0)..=(sub, u128::MAX))?.count())
}

/// A job by id, whatever its state.
pub fn get(db: &Database, id: JobId) -> Result<Option<Job>, StoreError> {
    use redb::ReadableDatabase;
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::JOBS.def())?;
    t.get(id.as_u128())?.map(|v| tables::JOBS.decode(v.value())).transpose()
}

/// The first `limit` keys at or before `now` in an index, soonest first.
fn due(index: &Table<'_, (i64, u128), ()>, now: Timestamp, limit: usize) -> Result<Vec<(i64, u128)>, StoreError> {
    let mut keys = Vec::new();
    for row in index.range(..=(now.millis(), u128::MAX))?.take(limit) {
        keys.push(row?.0.value());
    }
    Ok(keys)
}

/// Leases up to `batch` jobs to `owner` until `now + lease_ms`: first those whose lease ended (their
/// holder stopped answering; the attempt counts), then ready jobs that are due. A job whose attempts ran
/// out while leased is dead instead. Returns the jobs as leased.
pub fn claim(
    db: &Database,
    owner: &str,
    now: Timestamp,
    lease_ms: i64,
    batch: usize,
    max_attempts: u32,
) -> Result<Vec<Job>, StoreError> {
    if !anything_due(db, now)? {
        return Ok(Vec::new());
    }
    // Not durable on its own: a claim lost to a crash only loses a lease, which recovery would discard
    // anyway; the next durable commit (an answer, an ingest batch) carries it to disk.
    let mut tx = db.begin_write()?;
    tx.set_durability(redb::Durability::None)?;
    let mut claimed = Vec::new();
    {
        let mut t = JobTables::open(&tx)?;
        let until = now.plus_millis(lease_ms);
        for (at, id) in due(&t.leased, now, batch)? {
            let Some(job) = t.get(id)? else {
                // An index entry whose job is gone would be found first forever.
                t.leased.remove((at, id))?;
                continue;
            };
            let error = "the worker holding it stopped answering before its lease ended; it may or may not have reached the destination";
            let decision = settlement::interrupted(&job, error, max_attempts, now);
            attempts::file(&tx, &decision, now)?;
            if decision.settled == Settled::Retrying {
                // Taken again at once, keeping its own run-at time: handed back unstarted, it waits where it did.
                let mut again = Job { run_at: job.run_at, ..decision.job };
                settlement::lease(&mut again, owner, until);
                t.replace(&job, &again)?;
                taken(&tx, &again)?;
                claimed.push(again);
            } else {
                t.apply(&job, &decision)?;
            }
        }
        for (at, id) in due(&t.ready, now, batch.saturating_sub(claimed.len()))? {
            let Some(mut job) = t.get(id)? else {
                t.ready.remove((at, id))?;
                continue;
            };
            t.lease(&mut job, owner, until)?;
            taken(&tx, &job)?;
            claimed.push(job);
        }
    }
    tx.commit()?;
    Ok(claimed)
}

fn taken(tx: &WriteTransaction, job: &Job) -> Result<(), StoreError> {
    deliveries::update(tx, job.delivery_id, |d| d.status = settlement::taken(d.status))?;
    Ok(())
}

/// The delivery of a job that waits again without an attempt made.
pub(super) fn waiting(tx: &WriteTransaction, job: &Job) -> Result<(), StoreError> {
    deliveries::update(tx, job.delivery_id, |d| d.status = settlement::waiting(d.status, d.attempt_count))?;
    Ok(())
}

/// Whether a claim at `now` would find anything, read without taking the single write lock: most wake-ups
/// after a batch find nothing, and an empty write transaction still costs a commit.
fn anything_due(db: &Database, now: Timestamp) -> Result<bool, StoreError> {
    use redb::ReadableDatabase;
    let tx = db.begin_read()?;
    for index in [tables::JOBS_READY, tables::JOBS_LEASED] {
        let t = tx.open_table(index)?;
        if t.range(..=(now.millis(), u128::MAX))?.next().is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Extends every lease `owner` holds to `now + lease_ms`. Returns how many. Not durable on its own, like a
/// claim.
pub fn heartbeat(db: &Database, owner: &str, now: Timestamp, lease_ms: i64) -> Result<usize, StoreError> {
    let mut tx = db.begin_write()?;
    tx.set_durability(redb::Durability::None)?;
    let mut extended = 0;
    {
        let mut t = JobTables::open(&tx)?;
        let mut mine = Vec::new();
        for row in t.leased.iter()? {
            let id = row?.0.value().1;
            if let Some(job) = t.get(id)?
                && job.lease.as_ref().is_some_and(|l| l.owner == owner)
            {
                mine.push(job);
            }
        }
        for mut job in mine {
            t.lease(&mut job, owner, now.plus_millis(lease_ms))?;
            extended += 1;
        }
    }
    tx.commit()?;
    Ok(extended)
}

/// Records, inside the caller's transaction, how the attempt `owner` made of job `id` ended, and files the
/// attempt under its delivery (see `storage::attempts`). `attempt` is the job's attempt number (1 for the
/// first). `None` when the answer is stale (see `settlement::settle`) and changed nothing.
pub fn finish(
    tx: &WriteTransaction,
    owner: &str,
    id: JobId,
    attempt: u32,
    report: Report,
    now: Timestamp,
) -> Result<Option<Settled>, StoreError> {
    let decision = {
        let mut t = JobTables::open(tx)?;
        let Some(job) = t.get(id.as_u128())? else { return Ok(None) };
        // The subscription is read only for a hold that the destination did not ask for itself.
        let paused = report.finished == settlement::Finished::Hold && !report.pause && paused(tx, job.subscription_id)?;
        let Some(decision) = settlement::settle(&job, owner, attempt, report, paused, now) else { return Ok(None) };
        t.apply(&job, &decision)?;
        decision
    };
    attempts::file(tx, &decision, now)?;
    Ok(Some(decision.settled))
}

fn paused(tx: &WriteTransaction, sub: SubscriptionId) -> Result<bool, StoreError> {
    Ok(super::subscriptions::get_in(tx, sub)?.is_some_and(|s| s.status == SubscriptionStatus::Paused))
}

/// Hands back jobs `owner` claimed but never started (at shutdown): ready again at their own run-at time,
/// with no attempt counted. Returns how many.
pub fn release(db: &Database, owner: &str, ids: &[JobId]) -> Result<usize, StoreError> {
    let tx = db.begin_write()?;
    let mut released = 0;
    {
        let mut t = JobTables::open(&tx)?;
        for id in ids {
            let Some(mut job) = t.get(id.as_u128())? else { continue };
            if job.state == JobState::Leased && job.lease.as_ref().is_some_and(|l| l.owner == owner) {
                let at = job.run_at;
                t.make_ready(&mut job, at)?;
                waiting(&tx, &job)?;
                released += 1;
            }
        }
    }
    tx.commit()?;
    Ok(released)
}

/// At the start of a worker run: every lease not held by this run (`instance`, the part of its owners before
/// the `/`) was left by a process that stopped, since only one process can open the store, or by a run of
/// the worker that failed. Those jobs are ready again now, and the interrupted attempt counts (it may have
/// reached the destination). Returns how many.
pub fn recover(db: &Database, instance: &str, now: Timestamp) -> Result<usize, StoreError> {
    let tx = db.begin_write()?;
    let mut recovered = 0;
    {
        let mut t = JobTables::open(&tx)?;
        let mut left = Vec::new();
        for row in t.leased.iter()? {
            let id = row?.0.value().1;
            if let Some(job) = t.get(id)?
                && !job
                    .lease
                    .as_ref()
                    .is_some_and(|l| l.owner.strip_prefix(instance).is_some_and(|r| r.starts_with('/')))
            {
                left.push(job);
            }
        }
        for job in left {
            let error =
                "Hookplane stopped before this attempt finished; it may or may not have reached the destination";
            // Never dead here: the claim that takes it next decides once its lease has run out again.
            let decision = settlement::interrupted(&job, error, u32::MAX, now);
            t.apply(&job, &decision)?;
            attempts::file(&tx, &decision, now)?;
            recovered += 1;
        }
    }
    tx.commit()?;
    Ok(recovered)
}

#[cfg(test)]
mod tests;
