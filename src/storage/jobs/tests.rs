//! The queue's durable state, claim by claim and answer by answer, on a real redb file.

use super::*;
use crate::domain::attempt::Tried;
use crate::domain::settlement::Finished;
use crate::domain::{DeliveryId, DeliveryStatus};

const MAX: u32 = 3;
const LEASE: i64 = 60_000;

fn store() -> (tempfile::TempDir, redb::Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("q.redb")).unwrap();
    super::super::migrations::migrate(&db).unwrap();
    (dir, db)
}

fn enqueue(db: &redb::Database, at: i64) -> JobId {
    let t = Timestamp(at);
    let job = Job::deliver(DeliveryId::new(t), SubscriptionId::new(t), t);
    let tx = db.begin_write().unwrap();
    super::enqueue(&tx, &job).unwrap();
    tx.commit().unwrap();
    job.id
}

fn fin(db: &redb::Database, owner: &str, id: JobId, attempt: u32, finished: Finished) -> Option<Settled> {
    let tx = db.begin_write().unwrap();
    let report = Report { finished, tried: Some(Tried::default()), pause: false };
    let settled = finish(&tx, owner, id, attempt, report, Timestamp(0)).unwrap();
    tx.commit().unwrap();
    settled
}

fn ids(jobs: &[Job]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id).collect()
}

#[test]
fn a_job_is_held_by_one_worker_until_its_lease_ends() {
    let (_d, db) = store();
    let a = enqueue(&db, 1_000);
    let later = enqueue(&db, 200_000);
    assert!(claim(&db, "p1/w1", Timestamp(999), LEASE, 10, MAX).unwrap().is_empty(), "not due yet");
    assert_eq!(ids(&claim(&db, "p1/w1", Timestamp(1_000), LEASE, 10, MAX).unwrap()), vec![a]);
    assert!(claim(&db, "p1/w2", Timestamp(2_000), LEASE, 10, MAX).unwrap().is_empty(), "held");
    // A heartbeat keeps it; without one, the lease ends and another worker takes it, the attempt counted.
    assert_eq!(heartbeat(&db, "p1/w1", Timestamp(30_000), LEASE).unwrap(), 1);
    assert!(claim(&db, "p1/w2", Timestamp(61_000), LEASE, 1, MAX).unwrap().is_empty(), "extended to 90 s");
    let taken = claim(&db, "p1/w2", Timestamp(90_000), LEASE, 1, MAX).unwrap();
    assert_eq!((ids(&taken), taken[0].attempts), (vec![a], 1));
    assert_eq!(taken[0].run_at, Timestamp(1_000), "taken again, it keeps its own run-at time");
    // The first worker's late answer is ignored; the holder's counts.
    assert_eq!(fin(&db, "p1/w1", a, 1, Finished::Done), None);
    assert_eq!(fin(&db, "p1/w2", a, 2, Finished::Done), Some(Settled::Done));
    assert!(claim(&db, "p1/w2", Timestamp(199_999), LEASE, 10, MAX).unwrap().is_empty());
    assert_eq!(ids(&claim(&db, "p1/w2", Timestamp(200_000), LEASE, 10, MAX).unwrap()), vec![later]);
}

#[test]
fn retries_wait_for_their_time_and_attempts_run_out() {
    let (_d, db) = store();
    let a = enqueue(&db, 0);
    let mut now = 0;
    for attempt in 1..=MAX {
        let got = claim(&db, "p/w", Timestamp(now), LEASE, 1, MAX).unwrap();
        assert_eq!(ids(&got), vec![a], "attempt {attempt}");
        let retry = Finished::Retry { at: Timestamp(now + 10_000), error: format!("503 #{attempt}") };
        let last = Finished::GiveUp { error: "out of attempts".into() };
        let settled = fin(&db, "p/w", a, attempt, if attempt < MAX { retry } else { last });
        assert_eq!(settled, Some(if attempt < MAX { Settled::Retrying } else { Settled::Dead }));
        assert!(claim(&db, "p/w", Timestamp(now + 9_999), LEASE, 1, MAX).unwrap().is_empty(), "backoff");
        now += 10_000;
    }
    assert!(claim(&db, "p/w", Timestamp(now + 1_000_000), LEASE, 1, MAX).unwrap().is_empty(), "dead");
    let b = enqueue(&db, 0);
    claim(&db, "p/w", Timestamp(now), LEASE, 1, MAX).unwrap();
    let gone = Finished::GiveUp { error: "410 Gone".into() };
    assert_eq!(fin(&db, "p/w", b, 1, gone), Some(Settled::Dead));
}

#[test]
fn unstarted_jobs_go_back_and_a_stopped_process_leaves_nothing_held() {
    let (_d, db) = store();
    let a = enqueue(&db, 0);
    let b = enqueue(&db, 0);
    let got = claim(&db, "old/w", Timestamp(0), LEASE, 2, MAX).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(release(&db, "old/w", &[b]).unwrap(), 1);
    assert_eq!(release(&db, "someone/else", &[a]).unwrap(), 0, "only the holder hands back");
    assert_eq!(ids(&claim(&db, "old/w", Timestamp(0), LEASE, 2, MAX).unwrap()), vec![b]);
    // A new process finds both held by the old one and makes them ready at once, counting the attempt.
    assert_eq!(recover(&db, "new", Timestamp(5)).unwrap(), 2);
    let again = claim(&db, "new/w", Timestamp(5), LEASE, 2, MAX).unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|j| j.attempts == 1 && j.last_error.is_some()));
    assert_eq!(recover(&db, "new", Timestamp(6)).unwrap(), 0, "its own leases stay");
    // A later run of the worker in the same process recovers what an earlier run held, and only that.
    let c = enqueue(&db, 0);
    claim(&db, "p.10/w", Timestamp(10), LEASE, 1, MAX).unwrap();
    assert_eq!(recover(&db, "p.1", Timestamp(11)).unwrap(), 3, "p.10's lease, and new's two, are not p.1's");
    assert!(claim(&db, "p.1/w", Timestamp(11), LEASE, 3, MAX).unwrap().iter().any(|j| j.id == c));
}

#[test]
fn a_delivery_is_processing_while_its_job_is_held_and_waits_again_as_it_was() {
    use crate::domain::Source;
    use crate::storage::deliveries::{get, put_sample, sample};
    let (_d, db) = store();
    let status = |id| get(&db, id).unwrap().unwrap().0.delivery.status;
    let t = Timestamp(0);
    let (fresh, ended) =
        (sample(t, Source::Shopify, DeliveryStatus::Queued), sample(t, Source::Zoho, DeliveryStatus::Succeeded));
    let (job, replay) =
        (Job::deliver(fresh.id, fresh.subscription_id, t), Job::deliver(ended.id, ended.subscription_id, t));
    let tx = db.begin_write().unwrap();
    for (d, j) in [(&fresh, &job), (&ended, &replay)] {
        put_sample(&tx, d);
        super::enqueue(&tx, j).unwrap();
    }
    tx.commit().unwrap();

    assert_eq!(claim(&db, "p/w", t, LEASE, 2, MAX).unwrap().len(), 2);
    assert_eq!(status(fresh.id), DeliveryStatus::Processing);
    assert_eq!(status(ended.id), DeliveryStatus::Succeeded, "a replay leaves the outcome until it is filed");
    assert_eq!(release(&db, "p/w", &[job.id, replay.id]).unwrap(), 2);
    assert_eq!(status(fresh.id), DeliveryStatus::Queued, "handed back unstarted");
    claim(&db, "p/w", t, LEASE, 1, MAX).unwrap();
    let retry = Finished::Retry { at: t, error: "503".into() };
    assert_eq!(fin(&db, "p/w", job.id, 1, retry), Some(Settled::Retrying));
    assert_eq!(status(fresh.id), DeliveryStatus::Retrying);
    claim(&db, "p/w", t, LEASE, 1, MAX).unwrap();
    assert_eq!(status(fresh.id), DeliveryStatus::Processing);
    // Its destination was paused meanwhile: nothing sent, and it waits as `retrying` again.
    let tx = db.begin_write().unwrap();
    let hold = Report { finished: Finished::Hold, tried: None, pause: false };
    assert_eq!(finish(&tx, "p/w", job.id, 2, hold, t).unwrap(), Some(Settled::Requeued));
    tx.commit().unwrap();
    assert_eq!(status(fresh.id), DeliveryStatus::Retrying);
}

#[test]
fn a_hold_answered_after_a_resume_makes_the_job_ready_not_held() {
    use crate::domain::Subscription;
    use crate::domain::subscription::Destination;
    let (_d, db) = store();
    let t = Timestamp(0);
    let sub = Subscription {
        destination: Destination::Http {
            url: "http://127.0.0.1:9/".into(),
            timeout_seconds: None,
            concurrency: None,
            headers: Vec::new(),
        },
        ..super::super::subscriptions::sample(SubscriptionId::new(t))
    };
    let tx = db.begin_write().unwrap();
    super::super::subscriptions::insert(&tx, &sub).unwrap();
    let job = Job::deliver(DeliveryId::new(t), sub.id, t);
    super::enqueue(&tx, &job).unwrap();
    tx.commit().unwrap();
    claim(&db, "p/w", t, LEASE, 1, MAX).unwrap();
    // The handler saw the destination paused; it was resumed before the answer was filed.
    let tx = db.begin_write().unwrap();
    let report = Report { finished: Finished::Hold, tried: None, pause: false };
    assert_eq!(finish(&tx, "p/w", job.id, 1, report, Timestamp(5)).unwrap(), Some(Settled::Requeued));
    tx.commit().unwrap();
    assert_eq!(ids(&claim(&db, "p/w", Timestamp(5), LEASE, 1, MAX).unwrap()), vec![job.id]);
    assert_eq!(held_count(&db, sub.id).unwrap(), 0);
}
