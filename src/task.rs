//! Threads and tasks: the parts of the process that must keep running, watched, and running blocking work
//! off the async runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a part that restarts in place may be down before the process counts as unhealthy: longer
/// than its longest wait between restarts, so a restart under way does not get the process restarted.
pub const RESTART_GRACE: Duration = Duration::from_secs(120);

/// The parts of the process it is of no use without: the ingest writer, the delivery queue, the search
/// indexer, the secret sweep. Each runs holding an [`AliveGuard`] from here, which marks it gone however it
/// ends: returning, panicking or being cancelled. `/healthz` reports the parts gone; a part that cannot be
/// restarted in place (`fatal`) stops the process, so that its supervisor starts it again.
#[derive(Debug, Default)]
pub struct Vitals {
    parts: Mutex<Vec<Part>>,
    /// Set before an orderly stop: parts that end then are not lost.
    stopping: AtomicBool,
    changed: tokio::sync::Notify,
}

#[derive(Debug)]
struct Part {
    name: &'static str,
    fatal: bool,
    alive: Arc<Liveness>,
}

/// Whether a part runs, and since when it does not.
#[derive(Debug)]
struct Liveness {
    alive: AtomicBool,
    down_since: Mutex<Option<Instant>>,
}

impl Liveness {
    fn new(alive: bool) -> Self {
        Self { alive: AtomicBool::new(alive), down_since: Mutex::new((!alive).then(Instant::now)) }
    }

    fn set(&self, alive: bool) {
        let mut since = self.down_since.lock().unwrap_or_else(PoisonError::into_inner);
        if alive {
            *since = None;
        } else if since.is_none() {
            *since = Some(Instant::now());
        }
        self.alive.store(alive, Ordering::SeqCst);
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Down since before `cutoff`.
    fn down_before(&self, cutoff: Instant) -> bool {
        self.down_since.lock().unwrap_or_else(PoisonError::into_inner).is_some_and(|t| t <= cutoff)
    }
}

impl Vitals {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a part, alive from now on, and the guard its thread or task holds while it runs. A part
    /// registered again under the same name (a restart) replaces the earlier one.
    pub fn part(self: &Arc<Self>, name: &'static str, fatal: bool) -> AliveGuard {
        let alive = Arc::new(Liveness::new(true));
        let mut parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
        parts.retain(|p| p.name != name);
        parts.push(Part { name, fatal, alive: Arc::clone(&alive) });
        drop(parts);
        self.changed.notify_waiters();
        AliveGuard { alive, vitals: Some(Arc::clone(self)) }
    }

    /// The parts that are gone.
    pub fn gone(&self) -> Vec<&'static str> {
        let parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
        parts.iter().filter(|p| !p.alive.is_alive()).map(|p| p.name).collect()
    }

    /// What makes the process unhealthy at `now`: a fatal part gone, or a part that restarts in place gone
    /// for longer than [`RESTART_GRACE`].
    pub fn unhealthy(&self, now: Instant) -> Vec<&'static str> {
        let cutoff = now.checked_sub(RESTART_GRACE).unwrap_or(now);
        let parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
        parts
            .iter()
            .filter(|p| !p.alive.is_alive() && (p.fatal || p.alive.down_before(cutoff)))
            .map(|p| p.name)
            .collect()
    }

    /// The parts gone whose loss stops the process.
    pub fn gone_fatal(&self) -> Vec<&'static str> {
        let parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
        parts.iter().filter(|p| p.fatal && !p.alive.is_alive()).map(|p| p.name).collect()
    }

    /// An orderly stop begins: parts ending from now on are not lost.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Waits until a fatal part is gone without an orderly stop, and names it. Never returns once a stop
    /// has begun.
    pub async fn lost(&self) -> &'static str {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.stopping.load(Ordering::SeqCst) {
                let parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(p) = parts.iter().find(|p| p.fatal && !p.alive.is_alive()) {
                    return p.name;
                }
            }
            changed.await;
        }
    }
}

/// Marks its part gone when dropped: held by a thread's or task's body, it does so on return, on a panic and
/// on cancellation alike.
#[derive(Debug)]
pub struct AliveGuard {
    alive: Arc<Liveness>,
    vitals: Option<Arc<Vitals>>,
}

impl AliveGuard {
    /// Marks the part alive again, after it restarted in place.
    pub fn revive(&self) {
        self.set(true);
    }

    /// Marks the part gone while it restarts in place.
    pub fn down(&self) {
        self.set(false);
    }

    fn set(&self, alive: bool) {
        self.alive.set(alive);
        if let Some(v) = &self.vitals {
            v.changed.notify_waiters();
        }
    }
}

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// A blocking task that did not return: it panicked, or the runtime is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("a background task failed: {0}")]
pub struct TaskFailed(String);

/// Runs `f` on the runtime's blocking pool. A task that did not return becomes an error of `E`'s own kind.
pub async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<TaskFailed> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(TaskFailed(e.to_string()).into()))
}

/// What a caught panic says, for the log.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    #[tokio::test]
    async fn a_fatal_part_that_ends_unasked_is_lost_and_one_that_ends_in_a_stop_is_not() {
        let vitals = Vitals::new();
        let writer = vitals.part("writer", true);
        let indexer = vitals.part("indexer", false);
        assert!(vitals.gone().is_empty());
        indexer.down();
        assert_eq!(vitals.gone(), ["indexer"], "a part restarting in place is gone meanwhile");
        let now = Instant::now();
        assert!(vitals.unhealthy(now).is_empty(), "but not unhealthy while it may still come back");
        assert_eq!(vitals.unhealthy(now + RESTART_GRACE), ["indexer"], "unless it stays gone");
        indexer.revive();
        drop(indexer);
        assert!(vitals.lost().now_or_never().is_none(), "an indexer is restarted, not lost");
        let waiting = tokio::spawn({
            let v = Arc::clone(&vitals);
            async move { v.lost().await }
        });
        std::thread::spawn(move || drop(writer)).join().unwrap();
        assert_eq!(waiting.await.unwrap(), "writer", "woken by the writer's end");
        assert_eq!(vitals.gone(), ["writer", "indexer"]);
        assert_eq!(vitals.unhealthy(Instant::now()), ["writer"], "a fatal part at once");

        let calm = Vitals::new();
        let queue = calm.part("queue", true);
        calm.stopping();
        drop(queue);
        assert!(calm.lost().now_or_never().is_none(), "an orderly stop loses nothing");
    }
}
