//! Whether ingest is saturated, so the indexer steps aside: a run of large group commits while the async
//! workers that answer providers are busy.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::SearchSettings;

/// Whether ingest is saturated. Two signs together: group commits are large (batches form only when
/// requests wait for the previous fsync, so a run of large ones means they queue for the disk), and the
/// async workers that answer providers are busy. Large batches alone are a slow disk under a moderate load,
/// when indexing takes no CPU that acknowledging needs; only with both is every core needed to acknowledge.
pub(super) struct Pressure {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last saturated commit, plus one (0: never).
    last_large: AtomicU64,
    /// Large commits in a row.
    streak: AtomicU64,
    large: usize,
    pub(super) calm: Duration,
    workers: Option<WorkerLoad>,
    /// Payload bytes handed to the indexer and not yet taken, and the most it may hold: when indexing
    /// falls behind a load that is not a burst, memory stays bounded and the rest comes from storage.
    pub(super) queued_bytes: AtomicUsize,
    pub(super) max_queued_bytes: usize,
}

/// Large commits in a row that mean saturation.
const SATURATED_STREAK: u64 = 4;
/// How often the workers' busy share is sampled: often enough to see a burst begin within a few commits.
const LOAD_WINDOW: Duration = Duration::from_millis(100);

/// The share of time the runtime's workers spent running tasks, over the last sampling window.
struct WorkerLoad {
    runtime: tokio::runtime::Handle,
    /// From this share on (0.0 to 1.0), the workers count as busy.
    busy_share: f64,
    /// Start of the current window and the workers' total busy time then, and whether the last complete
    /// window was busy. Only the ingest writer samples, so the lock is never contended.
    window: std::sync::Mutex<(Instant, Duration, bool)>,
}

impl WorkerLoad {
    fn new(runtime: tokio::runtime::Handle, busy_percent: u8) -> Self {
        let window = std::sync::Mutex::new((Instant::now(), busy_time(&runtime), false));
        Self { runtime, busy_share: f64::from(busy_percent) / 100.0, window }
    }

    fn busy(&self) -> bool {
        let Ok(mut window) = self.window.lock() else { return true };
        let (started, at_start, busy) = *window;
        let elapsed = started.elapsed();
        if elapsed < LOAD_WINDOW {
            return busy;
        }
        let now = busy_time(&self.runtime);
        let workers = self.runtime.metrics().num_workers().max(1) as f64;
        let share = now.saturating_sub(at_start).as_secs_f64() / (elapsed.as_secs_f64() * workers);
        *window = (Instant::now(), now, share >= self.busy_share);
        window.2
    }
}

fn busy_time(runtime: &tokio::runtime::Handle) -> Duration {
    let m = runtime.metrics();
    (0..m.num_workers()).map(|w| m.worker_total_busy_duration(w)).sum()
}

impl Pressure {
    pub(super) fn new(settings: &SearchSettings) -> Self {
        // Without a runtime to sample (a rebuild from the command line) or with no threshold, large commits
        // alone decide.
        let workers = tokio::runtime::Handle::try_current()
            .ok()
            .filter(|_| settings.defer_busy_percent > 0)
            .map(|runtime| WorkerLoad::new(runtime, settings.defer_busy_percent));
        Self {
            epoch: Instant::now(),
            last_large: AtomicU64::new(0),
            streak: AtomicU64::new(0),
            large: settings.defer_batch,
            calm: Duration::from_millis(settings.defer_calm_ms),
            workers,
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes: settings.max_queued_kib.saturating_mul(1024),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    /// Called by the writer only, so the streak needs no compare-and-swap.
    pub(super) fn committed(&self, batch: usize) {
        let large = self.large > 0 && batch >= self.large;
        // Sampled only for large commits: a moderate load never pays for it.
        self.record(large && self.workers.as_ref().is_none_or(WorkerLoad::busy));
    }

    fn record(&self, saturated_commit: bool) {
        if !saturated_commit {
            self.streak.store(0, Ordering::Relaxed);
            return;
        }
        let streak = self.streak.load(Ordering::Relaxed) + 1;
        self.streak.store(streak, Ordering::Relaxed);
        if streak >= SATURATED_STREAK {
            self.last_large.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    pub(super) fn busy(&self) -> bool {
        let last = self.last_large.load(Ordering::Relaxed);
        last > 0 && self.now_ms() < last.saturating_add(u64::try_from(self.calm.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(large: usize, busy_percent: u8) -> SearchSettings {
        SearchSettings {
            commit_interval_ms: 500,
            commit_docs: 5000,
            memory_mib: 50,
            catch_up_margin_seconds: 60,
            defer_batch: large,
            defer_busy_percent: busy_percent,
            defer_calm_ms: 60_000,
            max_queued_kib: 1024,
        }
    }

    fn pressure(large: usize) -> Pressure {
        Pressure::new(&settings(large, 0))
    }

    #[test]
    #[allow(clippy::disallowed_methods, reason = "the test thread is not a runtime worker; it lets a window pass")]
    fn large_commits_mean_saturation_only_while_the_workers_are_busy() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let _entered = rt.enter();
        // A slow disk under a moderate load: large commits, idle workers.
        let p = Pressure::new(&settings(16, 50));
        std::thread::sleep(LOAD_WINDOW * 2);
        for _ in 0..SATURATED_STREAK * 2 {
            p.committed(64);
        }
        assert!(!p.busy(), "large commits while the workers idle");

        // A burst: the workers spend a whole window running tasks.
        let p = Pressure::new(&settings(16, 50));
        rt.block_on(async {
            tokio::spawn(async {
                let until = Instant::now() + LOAD_WINDOW * 3;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            })
            .await
            .unwrap();
        });
        // A worker publishes its busy time when it parks, which may come a moment after the task's end.
        while busy_time(rt.handle()) < LOAD_WINDOW * 2 {
            std::thread::yield_now();
        }
        for _ in 0..SATURATED_STREAK {
            p.committed(64);
        }
        assert!(p.busy(), "large commits while the workers are busy");
    }

    #[test]
    fn only_a_run_of_large_commits_means_saturation() {
        let p = pressure(16);
        // A slow fsync under a moderate load: one large batch between small ones.
        for batch in [3, 40, 2, 17, 16, 16, 5] {
            p.committed(batch);
        }
        assert!(!p.busy());
        for _ in 0..SATURATED_STREAK {
            p.committed(64);
        }
        assert!(p.busy(), "four large commits in a row");
        p.committed(1);
        assert!(p.busy(), "busy until a calm period has passed");

        let never = pressure(0);
        for _ in 0..10 {
            never.committed(1000);
        }
        assert!(!never.busy(), "0 never defers");
    }
}
