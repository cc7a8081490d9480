//! Threads and tasks: the parts of the process that must keep running, watched, and running blocking work
//! off the async runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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
    alive: Arc<AtomicBool>,
}

impl Vitals {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a part, alive from now on, and the guard its thread or task holds while it runs. A part
    /// registered again under the same name (a restart) replaces the earlier one.
    pub fn part(self: &Arc<Self>, name: &'static str, fatal: bool) -> AliveGuard {
        let alive = Arc::new(AtomicBool::new(true));
        let mut parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
        parts.retain(|p| p.name != name);
        parts.push(Part { name, fatal, alive: Arc::clone(&alive) });
        drop(parts);
        self.changed.notify_waiters();
        AliveGuard { alive, vitals: Some(Arc::clone(self)) }
    }

    /// Whether the part named `name` runs.
    pub fn alive(&self, name: &str) -> bool {
        self.parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|p| p.name == name && p.alive.load(Ordering::SeqCst))
    }

    /// The parts that are gone.
    pub fn gone(&self) -> Vec<&'static str> {
        let parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
        parts.iter().filter(|p| !p.alive.load(Ordering::SeqCst)).map(|p| p.name).collect()
    }

    /// The parts gone whose loss stops the process.
    pub fn gone_fatal(&self) -> Vec<&'static str> {
        let parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
        parts.iter().filter(|p| p.fatal && !p.alive.load(Ordering::SeqCst)).map(|p| p.name).collect()
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
                if let Some(p) = parts.iter().find(|p| p.fatal && !p.alive.load(Ordering::SeqCst)) {
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
    alive: Arc<AtomicBool>,
    vitals: Option<Arc<Vitals>>,
}

impl AliveGuard {
    /// A guard on a flag of its own, outside any [`Vitals`].
    pub fn new(alive: Arc<AtomicBool>) -> Self {
        Self { alive, vitals: None }
    }

    /// Marks the part alive again, after it restarted in place.
    pub fn revive(&self) {
        self.set(true);
    }

    /// Marks the part gone while it restarts in place.
    pub fn down(&self) {
        self.set(false);
    }

    fn set(&self, alive: bool) {
        self.alive.store(alive, Ordering::SeqCst);
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

        let calm = Vitals::new();
        let queue = calm.part("queue", true);
        calm.stopping();
        drop(queue);
        assert!(calm.lost().now_or_never().is_none(), "an orderly stop loses nothing");
    }
}
