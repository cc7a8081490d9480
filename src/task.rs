//! Threads and tasks: the flag a critical thread or task clears when it ends, however it ends, and running
//! blocking work off the async runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Clears its flag when dropped: held by a thread's or task's body, it clears it on return, on a panic
/// and on cancellation alike, so readiness reflects the thread.
pub struct AliveGuard(Arc<AtomicBool>);

impl AliveGuard {
    pub fn new(alive: Arc<AtomicBool>) -> Self {
        Self(alive)
    }
}

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
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
