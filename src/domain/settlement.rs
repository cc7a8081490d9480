//! What the answer to an attempt does to its job, its delivery, the replay it answers and its subscription
//! (the run of failures, a pause on 410). [`settle`] decides without I/O; storage writes the decision in
//! the answer's transaction (`storage::jobs::finish`, `storage::attempts::file`).

use std::time::Duration;

use super::attempt::{ErrorClass, FollowUp, RetrySchedule, Tried};
use super::job::{Job, JobState, Lease};
use super::replay::ReplayStatus;
use super::{DeliveryStatus, Timestamp};

/// What the delivery handler concluded from one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again: after the destination's `Retry-After` when it gave one, else on the schedule.
    Retry {
        after: Option<Duration>,
    },
    /// 410 Gone: pause the destination and hold the job.
    Gone,
    /// Never try again.
    GiveUp,
    /// The destination is paused: hold the job, count nothing.
    Hold,
}

/// How an attempt ended, as the handler answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `None` when nothing was sent.
    pub tried: Option<Tried>,
    pub next: Next,
}

/// What the worker asks of the store for one attempt, once the retry schedule has said when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Done: the job leaves the queue.
    Done,
    /// Try again at `at` (backoff, or the destination's `Retry-After`).
    Retry { at: Timestamp, error: String },
    /// Never try again (every attempt failed, or the delivery can no longer be sent).
    GiveUp { error: String },
    /// The destination is paused (or just answered 410 and is paused now): hold the job until resume.
    Hold,
}

/// An answer for one attempt: how it ended, what the attempt found (`None` when nothing was sent, as for a
/// job held because its destination was already paused), and whether the destination asked to be paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub finished: Finished,
    pub tried: Option<Tried>,
    pub pause: bool,
}

impl Report {
    /// The handler's outcome of attempt `made` (1 for the first), with `schedule` deciding when, and
    /// whether, a failed attempt is tried again. `unit` in `[0, 1)` places the wait within its jitter.
    pub fn new(schedule: &RetrySchedule, now: Timestamp, made: u32, outcome: Outcome, unit: f64) -> Self {
        let error =
            || outcome.tried.as_ref().and_then(|t| t.error.as_ref()).map_or_else(String::new, |(_, e)| e.clone());
        let (finished, pause) = match outcome.next {
            Next::Delivered => (Finished::Done, false),
            Next::Retry { after } => match schedule.after(made, unit) {
                Some(wait) => (Finished::Retry { at: later(now, after.unwrap_or(wait)), error: error() }, false),
                None => (Finished::GiveUp { error: error() }, false),
            },
            Next::Gone => (Finished::Hold, true),
            Next::GiveUp => (Finished::GiveUp { error: error() }, false),
            Next::Hold => (Finished::Hold, false),
        };
        Report { finished, tried: outcome.tried, pause }
    }
}

fn later(now: Timestamp, after: Duration) -> Timestamp {
    now.plus_millis(i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
}

/// What became of a job when its attempt was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Delivered: the job leaves the queue.
    Done,
    Retrying,
    /// Out of attempts, or never to be sent: kept for the operator to see and replay.
    Dead,
    /// Held until its destination is resumed.
    Held,
    /// Ready again without an attempt made.
    Requeued,
}

impl Settled {
    /// What the attempt's record says followed it.
    pub const fn follow_up(self) -> FollowUp {
        match self {
            Settled::Done => FollowUp::Delivered,
            Settled::Retrying | Settled::Requeued => FollowUp::Retry,
            Settled::Held => FollowUp::Paused,
            Settled::Dead => FollowUp::GaveUp,
        }
    }

    /// The status of the delivery whose attempt settled so.
    pub const fn delivery_status(self) -> DeliveryStatus {
        match self {
            Settled::Done => DeliveryStatus::Succeeded,
            Settled::Retrying => DeliveryStatus::Retrying,
            Settled::Dead => DeliveryStatus::Failed,
            Settled::Held | Settled::Requeued => DeliveryStatus::Queued,
        }
    }

    /// The status of the replay the job carries out.
    pub const fn replay_status(self) -> ReplayStatus {
        match self {
            Settled::Done => ReplayStatus::Succeeded,
            Settled::Retrying => ReplayStatus::Retrying,
            Settled::Dead => ReplayStatus::Failed,
            Settled::Held => ReplayStatus::Held,
            Settled::Requeued => ReplayStatus::Queued,
        }
    }
}

/// What a subscription's run of consecutive failures becomes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureRun {
    /// Hookplane could not make the attempt (a stop, a damaged body): that says nothing of the destination.
    Keep,
    Reset,
    Extend,
}

impl FailureRun {
    pub fn apply(self, run: u32) -> u32 {
        match self {
            FailureRun::Keep => run,
            FailureRun::Reset => 0,
            FailureRun::Extend => run.saturating_add(1),
        }
    }
}

/// What the store writes for one answered attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub settled: Settled,
    /// The job as it is to be stored; a `Done` job is removed instead.
    pub job: Job,
    /// Set when something was sent: the attempt is filed and its delivery moves on.
    pub filed: Option<Filed>,
    /// The destination answered 410: its subscription is paused.
    pub pause: bool,
}

/// An attempt to file, and what it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub tried: Tried,
    /// The destination answered 2xx.
    pub succeeded: bool,
    pub failures: FailureRun,
}

/// Decides what the answer `report` for attempt `attempt` of `job`, sent by lease holder `owner`, does.
/// `None` when the answer is stale: the job is gone, or held by another worker now (its lease ended and
/// it was claimed again), so a late answer cannot undo a newer attempt. `paused` says whether the job's
/// destination is paused now; it matters only for a hold (read it only then).
pub fn settle(job: &Job, owner: &str, attempt: u32, report: Report, paused: bool, now: Timestamp) -> Option<Decision> {
    let holds = job.state == JobState::Leased && job.lease.as_ref().is_some_and(|l| l.owner == owner);
    if !holds || attempt != job.attempts + 1 {
        return None;
    }
    let mut next = job.clone();
    if report.tried.is_some() {
        next.attempts = attempt;
    }
    let settled = match report.finished {
        Finished::Done => Settled::Done,
        Finished::Retry { at, error } => {
            next.last_error = Some(error);
            ready(&mut next, at);
            Settled::Retrying
        }
        Finished::GiveUp { error } => {
            kill(&mut next, error);
            Settled::Dead
        }
        // Held only while the destination is still paused: a resume that came while this attempt ran has
        // released the other held jobs already, and would never release this one.
        Finished::Hold if report.pause || paused => {
            next.state = JobState::Held;
            next.lease = None;
            Settled::Held
        }
        Finished::Hold => {
            ready(&mut next, now);
            Settled::Requeued
        }
    };
    Some(Decision { settled, job: next, filed: report.tried.map(Filed::new), pause: report.pause })
}

/// An attempt whose answer never came (its worker stopped answering, or Hookplane stopped): it may have
/// reached the destination, so it counts, and the job is ready again at `now`, or dead when that was its
/// last attempt.
pub fn interrupted(job: &Job, error: &str, max_attempts: u32, now: Timestamp) -> Decision {
    let mut next = job.clone();
    next.attempts += 1;
    let settled = if next.attempts >= max_attempts {
        kill(&mut next, error.to_owned());
        Settled::Dead
    } else {
        next.last_error = Some(error.to_owned());
        ready(&mut next, now);
        Settled::Retrying
    };
    let tried = Tried { started_at: now, error: Some((ErrorClass::Internal, error.to_owned())), ..Tried::default() };
    Decision { settled, job: next, filed: Some(Filed::new(tried)), pause: false }
}

impl Filed {
    pub fn new(tried: Tried) -> Self {
        let succeeded = tried.response_code.is_some_and(|c| (200..300).contains(&c));
        let ours = tried.error.as_ref().is_some_and(|(c, _)| *c == ErrorClass::Internal);
        let failures = match (ours, succeeded) {
            (true, _) => FailureRun::Keep,
            (false, true) => FailureRun::Reset,
            (false, false) => FailureRun::Extend,
        };
        Filed { tried, succeeded, failures }
    }
}

fn ready(job: &mut Job, at: Timestamp) {
    job.state = JobState::Ready;
    job.lease = None;
    job.run_at = at;
}

fn kill(job: &mut Job, error: String) {
    job.state = JobState::Dead;
    job.lease = None;
    job.last_error = Some(error);
}

/// Leases `job` to `owner` until `until`.
pub fn lease(job: &mut Job, owner: &str, until: Timestamp) {
    job.state = JobState::Leased;
    job.lease = Some(Lease { owner: owner.to_owned(), until });
}

/// A delivery whose job the worker takes is `processing`. One that ended already (a replay's) keeps its
/// outcome until the replay's attempt is filed: the replay has its own status, and the stats count an
/// outcome only when the status changes.
pub fn taken(status: DeliveryStatus) -> DeliveryStatus {
    match status {
        DeliveryStatus::Queued | DeliveryStatus::Retrying => DeliveryStatus::Processing,
        other => other,
    }
}

/// A delivery whose job waits again without an attempt made is `queued`, or `retrying` once an attempt was
/// made.
pub fn waiting(status: DeliveryStatus, attempts_made: u32) -> DeliveryStatus {
    match status {
        DeliveryStatus::Processing if attempts_made > 0 => DeliveryStatus::Retrying,
        DeliveryStatus::Processing => DeliveryStatus::Queued,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeliveryId, SubscriptionId};

    fn leased(attempts: u32) -> Job {
        let mut job = Job::deliver(DeliveryId::new(Timestamp(0)), SubscriptionId::new(Timestamp(0)), Timestamp(0));
        job.attempts = attempts;
        lease(&mut job, "i/deliver", Timestamp(60_000));
        job
    }

    fn tried(code: Option<u16>, class: Option<ErrorClass>) -> Tried {
        Tried { response_code: code, error: class.map(|c| (c, "e".to_owned())), ..Tried::default() }
    }

    fn report(finished: Finished, tried: Option<Tried>, pause: bool) -> Report {
        Report { finished, tried, pause }
    }

    #[test]
    fn an_answer_from_anyone_but_the_holder_of_this_attempt_is_stale() {
        let job = leased(1);
        let done = || report(Finished::Done, Some(tried(Some(200), None)), false);
        assert!(settle(&job, "other/deliver", 2, done(), false, Timestamp(1)).is_none(), "another owner");
        assert!(settle(&job, "i/deliver", 1, done(), false, Timestamp(1)).is_none(), "an earlier attempt");
        let mut ready = job.clone();
        ready.state = JobState::Ready;
        assert!(settle(&ready, "i/deliver", 2, done(), false, Timestamp(1)).is_none(), "no longer leased");
        assert!(settle(&job, "i/deliver", 2, done(), false, Timestamp(1)).is_some());
    }

    #[test]
    fn each_ending_moves_the_job_the_delivery_and_the_failure_run() {
        let job = leased(0);
        let d = settle(
            &job,
            "i/deliver",
            1,
            report(Finished::Done, Some(tried(Some(204), None)), false),
            false,
            Timestamp(5),
        )
        .unwrap();
        assert_eq!((d.settled, d.job.attempts), (Settled::Done, 1));
        assert_eq!(d.settled.delivery_status(), DeliveryStatus::Succeeded);
        assert_eq!(d.filed.as_ref().map(|f| (f.succeeded, f.failures)), Some((true, FailureRun::Reset)));

        let retry = Finished::Retry { at: Timestamp(9_000), error: "503".into() };
        let d = settle(
            &job,
            "i/deliver",
            1,
            report(retry, Some(tried(Some(503), Some(ErrorClass::Http))), false),
            false,
            Timestamp(5),
        )
        .unwrap();
        assert_eq!(
            (d.settled, d.job.state, d.job.run_at, d.job.lease.clone()),
            (Settled::Retrying, JobState::Ready, Timestamp(9_000), None)
        );
        assert_eq!((d.settled.follow_up(), d.filed.map(|f| f.failures)), (FollowUp::Retry, Some(FailureRun::Extend)));

        let d = settle(
            &job,
            "i/deliver",
            1,
            report(Finished::GiveUp { error: "gone".into() }, Some(tried(None, Some(ErrorClass::Internal))), false),
            false,
            Timestamp(5),
        )
        .unwrap();
        assert_eq!((d.settled, d.job.state, d.settled.follow_up()), (Settled::Dead, JobState::Dead, FollowUp::GaveUp));
        assert_eq!(d.filed.map(|f| f.failures), Some(FailureRun::Keep), "Hookplane's own failure");
    }

    #[test]
    fn a_hold_lasts_only_while_the_destination_is_paused_and_a_410_pauses_it() {
        let job = leased(2);
        let gone = report(Finished::Hold, Some(tried(Some(410), Some(ErrorClass::Http))), true);
        let d = settle(&job, "i/deliver", 3, gone, false, Timestamp(5)).unwrap();
        assert_eq!((d.settled, d.job.state, d.pause, d.job.attempts), (Settled::Held, JobState::Held, true, 3));
        assert_eq!(d.settled.delivery_status(), DeliveryStatus::Queued);

        let held = settle(&job, "i/deliver", 3, report(Finished::Hold, None, false), true, Timestamp(5)).unwrap();
        assert_eq!(
            (held.settled, held.job.attempts, held.filed),
            (Settled::Held, 2, None),
            "nothing sent, nothing counted"
        );
        let resumed = settle(&job, "i/deliver", 3, report(Finished::Hold, None, false), false, Timestamp(5)).unwrap();
        assert_eq!(
            (resumed.settled, resumed.job.state, resumed.job.run_at),
            (Settled::Requeued, JobState::Ready, Timestamp(5))
        );
        assert_eq!(resumed.settled.replay_status(), ReplayStatus::Queued);
    }

    #[test]
    fn an_interrupted_attempt_counts_and_the_last_one_kills_the_job() {
        let d = interrupted(&leased(1), "stopped", 8, Timestamp(7));
        assert_eq!(
            (d.settled, d.job.attempts, d.job.state, d.job.run_at),
            (Settled::Retrying, 2, JobState::Ready, Timestamp(7))
        );
        assert_eq!(d.filed.map(|f| f.failures), Some(FailureRun::Keep));
        let d = interrupted(&leased(7), "stopped", 8, Timestamp(7));
        assert_eq!((d.settled, d.job.state), (Settled::Dead, JobState::Dead));
    }

    #[test]
    fn the_schedule_turns_an_outcome_into_a_report() {
        let schedule = RetrySchedule { delays: vec![Duration::from_secs(60)], jitter_percent: 0 };
        let failed = |next| Outcome { tried: Some(tried(Some(500), Some(ErrorClass::Http))), next };
        let r = Report::new(&schedule, Timestamp(0), 1, failed(Next::Retry { after: None }), 0.5);
        assert_eq!(r.finished, Finished::Retry { at: Timestamp(60_000), error: "e".into() });
        let r =
            Report::new(&schedule, Timestamp(0), 1, failed(Next::Retry { after: Some(Duration::from_secs(7)) }), 0.5);
        assert_eq!(r.finished, Finished::Retry { at: Timestamp(7_000), error: "e".into() }, "Retry-After wins");
        let r = Report::new(&schedule, Timestamp(0), 2, failed(Next::Retry { after: None }), 0.5);
        assert_eq!(r.finished, Finished::GiveUp { error: "e".into() }, "out of attempts");
        let r = Report::new(&schedule, Timestamp(0), 1, failed(Next::Gone), 0.5);
        assert_eq!((r.finished, r.pause), (Finished::Hold, true));
    }

    #[test]
    fn a_taken_delivery_is_processing_and_waits_again_as_it_was() {
        assert_eq!(taken(DeliveryStatus::Queued), DeliveryStatus::Processing);
        assert_eq!(taken(DeliveryStatus::Succeeded), DeliveryStatus::Succeeded, "a replay keeps its outcome");
        assert_eq!(waiting(DeliveryStatus::Processing, 0), DeliveryStatus::Queued);
        assert_eq!(waiting(DeliveryStatus::Processing, 2), DeliveryStatus::Retrying);
        assert_eq!(waiting(DeliveryStatus::Failed, 2), DeliveryStatus::Failed);
    }
}
