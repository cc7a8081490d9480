//! redb storage: the tables, their migrations, and one repository module per aggregate.
//!
//! Every function here is synchronous; async callers go through [`Store::read`] (a blocking-pool hop) or
//! the ingest writer thread, so the runtime never waits on disk.

pub mod attempts;
pub mod audit;
mod backend;
pub mod backup;
mod codec;
pub mod dedupe;
pub mod deliveries;
pub mod deploys;
pub mod erasures;
pub mod handshakes;
pub mod incidents;
pub mod jobs;
pub mod migrations;
pub mod operators;
pub mod payload;
pub mod records;
pub mod rejections;
pub mod replays;
pub mod retention;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod subscriptions;
pub mod tables;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redb::{Database, ReadableTable as _};

pub use codec::RecordTable;

/// The database file inside the data directory.
pub const DB_FILE: &str = "hookplane.redb";

/// redb's page cache for the command line's short uses; the server takes `storage.cache_mib`.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk refused a write (full, read-only, failing) or the database is being reopened after that.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data in `{table}` cannot be read: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error(
        "the data directory was written by a newer Hookplane (schema version {found}; this build knows up to {known}); \
         run the newer version or restore a backup"
    )]
    Downgrade { found: u64, known: u64 },
    #[error("another Hookplane process is using {0}")]
    Locked(PathBuf),
    /// The data file was changed outside Hookplane (truncated, overwritten, not a database): it is refused
    /// as it is rather than trusted, and never replaced by an empty store.
    #[error(
        "the data file {path} is damaged and was not opened: {detail}. Stop Hookplane and put the last backup \
         in its place with `hookplane restore --from FILE --replace` (the damaged file is kept beside it)"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error("{0}")]
    Conflict(String),
    /// A value the caller gave cannot be stored as it is; the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("storage error: {0}")]
    Other(String),
}

impl From<crate::task::TaskFailed> for StoreError {
    fn from(e: crate::task::TaskFailed) -> Self {
        StoreError::Other(e.to_string())
    }
}

impl StoreError {
    /// Errors after which the open database must be dropped and reopened before anything can commit.
    pub fn needs_reopen(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                classify(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TransactionError,
    redb::CommitError,
    redb::TableError,
    redb::SetDurabilityError
);

fn classify(e: redb::Error) -> StoreError {
    match e {
        redb::Error::Io(io) => StoreError::Unavailable(io.to_string()),
        redb::Error::PreviousIo => StoreError::Unavailable("an earlier write failed; reopening the database".into()),
        redb::Error::DatabaseClosed => StoreError::Unavailable("the database is closed".into()),
        redb::Error::Corrupted(detail) => StoreError::Corrupt { table: "(redb)", detail },
        other => StoreError::Other(other.to_string()),
    }
}

/// The free space a probe needs before the writer accepts again after its commits failed: room for a few
/// group commits of large deliveries.
pub const PROBE_ROOM: u64 = 4 * 1024 * 1024;

/// The open database, and the means to reopen it after an I/O failure (redb refuses every write after one
/// until the file is reopened, which also repairs it).
pub struct Store {
    path: PathBuf,
    cache_bytes: usize,
    db: RwLock<Option<Arc<Database>>>,
    /// Dedupe entries (fingerprint, delivery id) of deliveries retention deleted for good, for the ingest
    /// writer to drop from its in-memory index at its next commit.
    forgotten: std::sync::Mutex<Vec<(u64, u128)>>,
    /// Why the ingest writer's last commit failed, until one holds again: what `/readyz` reports.
    failing: std::sync::Mutex<Option<String>>,
    /// Set while commits fail (`failing` says why): zeroing ahead waits, so that space freed on a full disk
    /// stays free for the probe that finds it (zeroing would take it for the file's future pages).
    hold: Hold,
}

/// Whether the zeroing thread under the database waits.
type Hold = Arc<std::sync::atomic::AtomicBool>;

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and applies pending migrations.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(data_dir, CACHE_BYTES, false)
    }

    /// The same, with a page cache of `cache_bytes`; when `verify`, every page of the file is checked
    /// against its checksum first (the server's start), so a file damaged while stopped is refused.
    pub fn open_with_cache(data_dir: &Path, cache_bytes: usize, verify: bool) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create the data directory {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(DB_FILE);
        let hold = Hold::default();
        let db = open_database(&path, cache_bytes, verify, &hold)?;
        migrations::migrate(&db)?;
        Ok(Self {
            path,
            cache_bytes,
            db: RwLock::new(Some(Arc::new(db))),
            forgotten: Default::default(),
            failing: Default::default(),
            hold,
        })
    }

    /// The directory the data file is in.
    pub fn data_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The data file's size in bytes (0 when it cannot be read).
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// The database, or `Unavailable` while it is being reopened.
    pub fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db
            .read()
            .map_err(|_| StoreError::Other("storage lock poisoned".into()))?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the database is being reopened after a failed write".into()))
    }

    /// Whether the database is open now. Never waits: while a reopen holds the lock (it may wait seconds
    /// for readers), the answer is no.
    pub fn is_open(&self) -> bool {
        self.db.try_read().is_ok_and(|g| g.is_some())
    }

    /// Runs `f` on the blocking pool.
    pub async fn read<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Database) -> Result<T, E> + Send + 'static,
    {
        let store = Arc::clone(self);
        crate::task::blocking(move || store.db().map(|db| f(&db))).await?
    }

    /// Hands the writer the dedupe entries of deliveries deleted for good, once their deletion committed.
    pub fn forget_dedupe(&self, entries: Vec<(u64, u128)>) {
        if entries.is_empty() {
            return;
        }
        // A poisoned lock only means a panic while pushing: the entries are still a list.
        self.forgotten.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(entries);
    }

    /// The dedupe entries handed over since the last call.
    pub fn take_forgotten(&self) -> Vec<(u64, u128)> {
        std::mem::take(&mut *self.forgotten.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The ingest writer's commits fail, for this reason (a full disk, say), until [`Store::writes_hold`].
    pub fn writes_fail(&self, why: String) {
        self.hold.store(true, std::sync::atomic::Ordering::SeqCst);
        *self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why);
    }

    /// A commit of the ingest writer held.
    pub fn writes_hold(&self) {
        self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        self.hold.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the ingest writer's commits fail now: one atomic load, for the writer's every commit.
    pub fn writes_failing(&self) -> bool {
        self.hold.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Why the ingest writer's commits fail, while they do.
    pub fn failing_writes(&self) -> Option<String> {
        self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Whether writes hold now: the data directory's filesystem has [`PROBE_ROOM`] free, and one small row
    /// in `meta` commits with an fsync. The ingest writer tries it while its commits fail, so that it
    /// accepts again once the fault is gone without waiting for a provider's retry to find out. The free
    /// space counts because the small write alone can land in pages the file already has while a batch of
    /// deliveries could not.
    pub fn probe_write(&self) -> Result<(), StoreError> {
        const KEY: &str = "writer_probes";
        let room = rustix::fs::statvfs(self.data_dir())
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .map_err(|e| StoreError::Unavailable(format!("cannot read the free space of the data directory: {e}")))?;
        if room < PROBE_ROOM {
            return Err(StoreError::Unavailable(format!(
                "the data directory's disk has {} KiB free; Hookplane needs at least {} KiB",
                room / 1024,
                PROBE_ROOM / 1024
            )));
        }
        let db = self.db()?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(tables::META)?;
            let n = meta.get(KEY)?.map_or(0, |v| v.value());
            meta.insert(KEY, n.wrapping_add(1))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops the database and opens it again. Readers still holding it are waited for, briefly; if they do
    /// not let go the old handle stays and the caller tries again later.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self.db.write().map_err(|_| StoreError::Other("storage lock poisoned".into()))?;
        if let Some(current) = slot.take() {
            match wait_for_sole_owner(current) {
                Ok(db) => drop(db),
                Err(current) => {
                    *slot = Some(current);
                    return Err(StoreError::Unavailable("readers still hold the database".into()));
                }
            }
        }
        let db = open_database(&self.path, self.cache_bytes, false, &self.hold)?;
        *slot = Some(Arc::new(db));
        tracing::warn!(path = %self.path.display(), "database reopened after a storage failure");
        Ok(())
    }

    /// Gives the space deletions freed back to the filesystem (redb's compaction), for a store nobody else
    /// uses (`hookplane compact`, with the server stopped). Returns the file's size before and after.
    pub fn compact(&self) -> Result<(u64, u64), StoreError> {
        let size = || std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let mut slot = self.db.write().map_err(|_| StoreError::Other("storage lock poisoned".into()))?;
        let current = slot.take().ok_or_else(|| StoreError::Unavailable("the database is not open".into()))?;
        let mut db = match wait_for_sole_owner(current) {
            Ok(db) => db,
            Err(current) => {
                *slot = Some(current);
                return Err(StoreError::Other("the database is in use; compact it while Hookplane is stopped".into()));
            }
        };
        let before = size();
        let compacted = db.compact().map_err(|e| StoreError::Other(format!("compaction failed: {e}")));
        *slot = Some(Arc::new(db));
        compacted?;
        Ok((before, size()))
    }

    /// Closes the database cleanly, so the next start needs no repair.
    pub fn close(&self) {
        if let Ok(mut slot) = self.db.write()
            && let Some(db) = slot.take()
        {
            match wait_for_sole_owner(db) {
                Ok(db) => drop(db),
                Err(_) => tracing::warn!("database still in use at shutdown; it will be repaired on next start"),
            }
        }
    }
}

fn wait_for_sole_owner(mut db: Arc<Database>) -> Result<Database, Arc<Database>> {
    // Readers hold the handle for one request at most; 200 × 10 ms is far longer than any of them.
    for _ in 0..200 {
        match Arc::try_unwrap(db) {
            Ok(inner) => return Ok(inner),
            Err(shared) => db = shared,
        }
        #[allow(clippy::disallowed_methods)] // a blocking wait on the writer or shutdown thread, never the runtime
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(db)
}

/// The store in `data_dir` opened for reading only, as it is: no migration, no repair. `Locked` while a
/// running instance holds it.
pub fn open_read_only(data_dir: &Path) -> Result<redb::ReadOnlyDatabase, StoreError> {
    let path = data_dir.join(DB_FILE);
    match Database::builder().open_read_only(&path) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::Locked(path)),
        Err(e) => Err(StoreError::Other(format!("cannot open {}: {e}", path.display()))),
    }
}

fn open_database(path: &Path, cache_bytes: usize, verify: bool, hold: &Hold) -> Result<Database, StoreError> {
    let damaged = |detail: String| StoreError::Damaged { path: path.to_path_buf(), detail };
    // redb takes an empty file for a new database: one left empty by anything but a first start would
    // come back as an empty store.
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(damaged("the file is empty; if no Hookplane has used this directory yet, delete it".into()));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    let backend = match backend::ZeroingBackend::new(file, Arc::clone(hold)) {
        Ok(b) => b,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::Locked(path.to_path_buf())),
        Err(e) => return Err(StoreError::Other(format!("cannot open {}: {e}", path.display()))),
    };
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes).set_check_integrity_on_open(verify);
    match builder.create_with_backend(backend) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::Locked(path.to_path_buf())),
        Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail))) => Err(damaged(detail)),
        // What redb says of a file that is not one of its databases ("magic number mismatch").
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(damaged(e.to_string()))
        }
        Err(redb::DatabaseError::Storage(e)) => Err(StoreError::from(e)),
        Err(e) => Err(StoreError::Other(format!("cannot open {}: {e}", path.display()))),
    }
}
