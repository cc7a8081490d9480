//! Backups of a running instance: a snapshot of the whole store into a file of its own, handed to the caller
//! as an open file that is already unlinked, so nothing is left behind however the download ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::domain::Clock;
use crate::domain::audit::{Actor, AuditAction};
use crate::storage::backup::{self, Snapshot};
use crate::storage::{Store, StoreError, audit};

/// Snapshot files being written start with this, in the data directory; a crash leaves at most one, which
/// the next backup removes.
const PREFIX: &str = ".backup-";

pub struct Backups {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    /// One backup at a time: two would double the disk and I/O for the same data. Set while a backup's
    /// thread runs, cleared by that thread when it ends, whoever stopped waiting for it.
    running: Arc<AtomicBool>,
}

/// Stops the copy at its next chunk when the request that asked for it goes away (the client hung up, the
/// server is stopping): the copy holds the database open, and nobody would read it.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A snapshot ready to be read.
pub struct Taken {
    pub file: std::fs::File,
    pub size: u64,
    pub snapshot: Snapshot,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("a backup is being taken already; try again when it is done")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Backups {
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock, running: Arc::new(AtomicBool::new(false)) }
    }

    /// Audits the backup (so the backup holds its own entry), then snapshots the store on a thread of its
    /// own at a lower priority, resting after each chunk as long as the chunk took: ingest keeps the CPU
    /// and the disk it needs (docs/benchmarks.md has the figures).
    pub async fn take(&self, by: Actor) -> Result<Taken, BackupError> {
        if self.running.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Err(BackupError::Busy);
        }
        let running = Arc::clone(&self.running);
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(Arc::clone(&cancelled));
        let now = self.clock.now();
        let db = match self.store.db() {
            Ok(db) => db,
            Err(e) => {
                running.store(false, Ordering::SeqCst);
                return Err(e.into());
            }
        };
        let dir = self.store.data_dir().to_path_buf();
        let path = dir.join(format!("{PREFIX}{}.redb", ulid::Ulid::new()));
        let (done, taken) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("backup".into())
            .spawn(move || {
                if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), BACKUP_NICE) {
                    tracing::debug!(error = %e, "cannot lower the backup thread's priority");
                }
                let taken = snapshot(&db, &dir, &path, by.entry(now, AuditAction::BackupTaken), &cancelled);
                drop(db);
                running.store(false, Ordering::SeqCst);
                let _ = done.send(taken);
            })
            .map_err(|e| {
                self.running.store(false, Ordering::SeqCst);
                StoreError::Other(format!("cannot start the backup thread: {e}"))
            })?;
        let taken = taken.await.map_err(|_| StoreError::Other("the backup thread stopped".into()))??;
        tracing::info!(
            deliveries = taken.snapshot.deliveries,
            bytes = taken.size,
            schema = taken.snapshot.schema,
            "backup taken"
        );
        Ok(taken)
    }
}

/// The backup's own thread runs at this nice value (ingest's threads run at 0).
const BACKUP_NICE: i32 = 10;

/// After each chunk of the copy, a rest this many times as long as the chunk took.
const PACE: f64 = 1.0;

fn snapshot(
    db: &redb::Database,
    dir: &std::path::Path,
    path: &std::path::Path,
    entry: crate::domain::audit::AuditEntry,
    cancelled: &AtomicBool,
) -> Result<Taken, BackupError> {
    remove_stale(dir);
    audit::record(db, &entry)?;
    // A wait that nothing interrupts: a channel whose sender is kept and never used.
    let (_keep, rest) = std::sync::mpsc::channel::<()>();
    let mut pause = |worked: std::time::Duration| {
        let _ = rest.recv_timeout(worked.mul_f64(PACE));
        !cancelled.load(Ordering::SeqCst)
    };
    let snapshot = backup::snapshot(db, path, &mut pause);
    let opened = snapshot.and_then(|s| {
        let file =
            std::fs::File::open(path).map_err(|e| StoreError::Other(format!("cannot read the backup back: {e}")))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Taken { file, size, snapshot: s })
    });
    // Unlinked at once: the open file stays readable until the download drops it.
    let _ = std::fs::remove_file(path);
    Ok(opened?)
}

fn remove_stale(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(PREFIX) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
