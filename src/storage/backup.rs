//! Backups: every table as one read transaction sees it, copied into a new redb file, and that file checked
//! and put in place of a stopped instance's store.
//!
//! The copy is made from a read transaction, so it is consistent (what one instant had committed) and holds
//! up no writer: redb readers see a snapshot while commits go on. It is written in chunks, each made
//! durable by its commit. A table this build does not know makes the backup fail rather than leave it
//! out; `a_backup_copies_every_table` holds the list below to the tables a store has.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redb::{
    Database, Key, MultimapTableHandle, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, Value,
};

use super::{DB_FILE, StoreError, migrations, tables};

/// Rows per write transaction of the copy: bounds the memory one transaction holds, and the writes one fsync
/// flushes.
const CHUNK: usize = 5_000;

/// What a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub schema: u64,
    pub tables: usize,
    pub rows: u64,
    pub deliveries: u64,
}

/// The copy's own cache: it writes each page once and never reads it back.
const OUT_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Copies every table of `db`, as one read transaction sees it, into a new database at `to` (which must not
/// exist), made durable before this returns. `after_chunk` is called with the time each chunk took, for the
/// caller to pace the copy; it answers whether to go on (`false` stops with `Cancelled`).
pub fn snapshot(
    db: &impl ReadableDatabase,
    to: &Path,
    after_chunk: &mut dyn FnMut(Duration) -> bool,
) -> Result<Snapshot, StoreError> {
    let rtx = db.begin_read()?;
    let out = redb::Builder::new()
        .set_cache_size(OUT_CACHE_BYTES)
        .create(to)
        .map_err(|e| StoreError::Unavailable(format!("cannot create the backup file {}: {e}", to.display())))?;
    let mut copy = Copy { rtx: &rtx, out: &out, copied: Vec::new(), rows: 0, after_chunk };
    copy_all(&mut copy)?;
    let unknown: Vec<String> = rtx
        .list_tables()?
        .map(|t| t.name().to_owned())
        .filter(|n| !copy.copied.contains(n))
        .chain(rtx.list_multimap_tables()?.map(|t| t.name().to_owned()))
        .collect();
    if !unknown.is_empty() {
        return Err(StoreError::Other(format!(
            "the store has tables this build cannot back up ({}); nothing was written",
            unknown.join(", ")
        )));
    }
    let deliveries = rtx.open_table(tables::DELIVERIES)?.len()?;
    let (tables, rows) = (copy.copied.len(), copy.rows);
    drop(out);
    let schema = rtx.open_table(tables::META)?.get("schema_version")?.map_or(0, |v| v.value());
    Ok(Snapshot { schema, tables, rows, deliveries })
}

struct Copy<'a> {
    rtx: &'a ReadTransaction,
    out: &'a Database,
    copied: Vec<String>,
    rows: u64,
    after_chunk: &'a mut dyn FnMut(Duration) -> bool,
}

impl Copy<'_> {
    fn table<K: Key + 'static, V: Value + 'static>(&mut self, def: TableDefinition<K, V>) -> Result<(), StoreError> {
        let src = match self.rtx.open_table(def) {
            Ok(t) => t,
            // A table that a later migration creates on first use, or one already retired.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut rows = src.iter()?;
        loop {
            let started = Instant::now();
            // Each chunk is flushed by its own commit: left to the kernel, a gigabyte of dirty pages is written
            // back in bursts that the ingest writer's fsync waits behind (p99.9 130 ms instead of 16 ms).
            let wtx = self.out.begin_write()?;
            let mut done = false;
            {
                let mut dst = wtx.open_table(def)?;
                for _ in 0..CHUNK {
                    let Some(row) = rows.next() else {
                        done = true;
                        break;
                    };
                    let (k, v) = row?;
                    dst.insert(k.value(), v.value())?;
                    self.rows += 1;
                }
            }
            wtx.commit()?;
            if !(self.after_chunk)(started.elapsed()) {
                return Err(StoreError::Other("the backup was cancelled".into()));
            }
            if done {
                break;
            }
        }
        self.copied.push(def.name().to_owned());
        Ok(())
    }
}

fn copy_all(c: &mut Copy<'_>) -> Result<(), StoreError> {
    use tables::*;
    c.table(META)?;
    c.table(SUBSCRIPTIONS.def())?;
    c.table(SUBSCRIPTION_KEYS)?;
    c.table(SECRETS.def())?;
    c.table(DELIVERIES)?;
    c.table(DELIVERIES_BY_SUBSCRIPTION)?;
    c.table(DELIVERIES_BY_STATUS)?;
    c.table(API_TOKENS.def())?;
    c.table(OPERATORS.def())?;
    c.table(SESSIONS.def())?;
    c.table(AUDIT_LOG.def())?;
    c.table(REJECTION_COUNTS)?;
    c.table(REJECTIONS.def())?;
    c.table(STATS.def())?;
    c.table(JOBS.def())?;
    c.table(JOBS_READY)?;
    c.table(JOBS_LEASED)?;
    c.table(JOBS_HELD)?;
    c.table(ATTEMPTS.def())?;
    c.table(REPLAYS.def())?;
    c.table(REPLAYS_BY_DELIVERY)?;
    c.table(REPLAYS_BY_OPERATOR)?;
    c.table(BULK_REPLAYS.def())?;
    c.table(INCIDENTS.def())?;
    c.table(INCIDENTS_OPEN)?;
    c.table(INCIDENTS_NOTIFY)?;
    c.table(HANDSHAKE_STATES.def())?;
    c.table(HANDSHAKE_RUNS.def())?;
    c.table(CREDENTIALS.def())?;
    c.table(DEDUPE_STUBS.def())?;
    c.table(ERASURES.def())?;
    c.table(VERSIONS_SEEN.def())?;
    c.table(DEPLOYS.def())?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0}")]
    Refused(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let context = context.into();
    move |source| RestoreError::Io { context, source }
}

/// What a restore put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub schema: u64,
    pub deliveries: u64,
    /// Where the store that was there before now is, when there was one.
    pub replaced: Option<PathBuf>,
}

/// Checks the backup at `from` and makes it the store of `data_dir`, whose instance must be stopped. An
/// existing store is moved aside (kept, never deleted) only when `replace` is set. The search index is
/// removed first: the next start rebuilds it from the restored deliveries. Until the backup is checked and
/// the index is gone, nothing in `data_dir` changes; a failure after that puts the old store back.
pub fn restore(from: &Path, data_dir: &Path, replace: bool, suffix: &str) -> Result<Restored, RestoreError> {
    let target = data_dir.join(DB_FILE);
    let aside = data_dir.join(format!("{DB_FILE}.before-restore-{suffix}"));
    if target.exists() {
        // redb's file locks are a process's own, so this tells another process's store: the one a restore
        // must not replace.
        if matches!(super::open_read_only(data_dir), Err(StoreError::Locked(_))) {
            return Err(RestoreError::Refused(format!(
                "{} is in use by a running Hookplane: stop it first",
                target.display()
            )));
        }
        if !replace {
            return Err(RestoreError::Refused(format!(
                "{} already holds a store; pass --replace to put the backup in its place (the store there now is kept beside it)",
                data_dir.display()
            )));
        }
        if aside.exists() {
            return Err(RestoreError::Refused(format!("{} exists already; try again", aside.display())));
        }
    }
    std::fs::create_dir_all(data_dir).map_err(io(format!("cannot create {}", data_dir.display())))?;
    let staging = data_dir.join(format!("{DB_FILE}.restoring"));
    let _ = std::fs::remove_file(&staging);
    let staged = stage(from, &staging, data_dir);
    let (schema, deliveries) = match staged {
        Ok(found) => found,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
    };
    let replaced = match swap(data_dir, &staging, &target, &aside) {
        Ok(replaced) => replaced,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
    };
    if let Ok(dir) = std::fs::File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok(Restored { schema, deliveries, replaced })
}

/// Copies the backup beside the store, checks it, flushes it, and gives it the data directory's owner (a
/// restore run as root must leave a store the service's own user can open).
fn stage(from: &Path, staging: &Path, data_dir: &Path) -> Result<(u64, u64), RestoreError> {
    std::fs::copy(from, staging).map_err(io(format!("cannot read the backup {}", from.display())))?;
    let found = check(staging, from)?;
    sync_file(staging)?;
    use std::os::unix::fs::MetadataExt as _;
    let owner = std::fs::metadata(data_dir).map_err(io(format!("cannot read {}", data_dir.display())))?;
    std::os::unix::fs::chown(staging, Some(owner.uid()), Some(owner.gid())).map_err(io(format!(
        "cannot give {} the owner of {}",
        staging.display(),
        data_dir.display()
    )))?;
    Ok(found)
}

/// Removes the index, moves the store aside and puts the staged backup in its place; puts the store back
/// when the last step fails.
fn swap(data_dir: &Path, staging: &Path, target: &Path, aside: &Path) -> Result<Option<PathBuf>, RestoreError> {
    let search = data_dir.join("search");
    if search.exists() {
        std::fs::remove_dir_all(&search).map_err(io(format!("cannot remove the old index {}", search.display())))?;
    }
    let replaced = if target.exists() {
        std::fs::rename(target, aside).map_err(io(format!("cannot move {} aside", target.display())))?;
        Some(aside.to_path_buf())
    } else {
        None
    };
    if let Err(e) = std::fs::rename(staging, target) {
        if replaced.is_some() {
            let _ = std::fs::rename(aside, target);
        }
        return Err(io(format!("cannot put the backup at {}", target.display()))(e));
    }
    Ok(replaced)
}

/// Checks a backup file as a restore would, without putting it anywhere: its schema and deliveries.
pub fn verify(path: &Path) -> Result<(u64, u64), RestoreError> {
    check(path, path)
}

/// Opens the copy, refusing one that needed repair (cut short or damaged), that fails redb's checksums, that
/// is not a Hookplane store, or whose schema is newer than this build's. Returns its schema and deliveries.
fn check(copy: &Path, from: &Path) -> Result<(u64, u64), RestoreError> {
    let repaired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&repaired);
    let mut builder = redb::Builder::new();
    builder.set_cache_size(OUT_CACHE_BYTES);
    builder.set_repair_callback(move |_| flag.store(true, std::sync::atomic::Ordering::SeqCst));
    let damaged = |why: String| RestoreError::Refused(format!("{} is not a whole backup: {why}", from.display()));
    let mut db = builder.open(copy).map_err(|e| damaged(e.to_string()))?;
    if repaired.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(damaged("it was not closed cleanly (cut short while written or copied?)".to_owned()));
    }
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => return Err(damaged("its pages fail their checksums".to_owned())),
        Err(e) => return Err(damaged(e.to_string())),
    }
    let schema = migrations::current(&db)?;
    if schema == 0 {
        return Err(RestoreError::Refused(format!("{} is not a Hookplane backup (no schema version)", from.display())));
    }
    if schema > migrations::latest() {
        return Err(RestoreError::Refused(format!(
            "{} was made by a newer Hookplane (storage schema {schema}; this build reads up to {}): restore it with that version or later",
            from.display(),
            migrations::latest()
        )));
    }
    let deliveries = count_deliveries(&db)?;
    Ok((schema, deliveries))
}

fn count_deliveries(db: &Database) -> Result<u64, StoreError> {
    Ok(db.begin_read()?.open_table(tables::DELIVERIES)?.len()?)
}

fn sync_file(path: &Path) -> Result<(), RestoreError> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(io(format!("cannot flush {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Store;

    fn filled(dir: &Path, rows: u64) -> Store {
        let store = Store::open(dir).unwrap();
        let db = store.db().unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(tables::REJECTION_COUNTS).unwrap();
            for i in 0..rows {
                t.insert(format!("cause-{i:06}").as_str(), i).unwrap();
            }
        }
        tx.commit().unwrap();
        store
    }

    fn counts(db: &Database) -> Vec<(String, u64)> {
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(tables::REJECTION_COUNTS).unwrap();
        t.iter().unwrap().map(|r| r.map(|(k, v)| (k.value().to_owned(), v.value())).unwrap()).collect()
    }

    #[test]
    fn a_backup_copies_every_table_and_restores_in_place() {
        let (src, out, dst) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // More rows than one chunk, so the copy commits several times.
        let store = filled(src.path(), CHUNK as u64 + 7);
        let file = out.path().join("backup.redb");
        let mut chunks = 0;
        let snap = snapshot(&*store.db().unwrap(), &file, &mut |_| {
            chunks += 1;
            true
        })
        .unwrap();
        assert!(chunks > 1, "{chunks}");
        let listed = store.db().unwrap().begin_read().unwrap().list_tables().unwrap().count();
        assert_eq!(snap.tables, listed, "every table of a store at the latest schema");
        assert_eq!(snap.schema, migrations::latest());
        assert!(snap.rows > CHUNK as u64);

        std::fs::create_dir_all(dst.path().join("search")).unwrap();
        let restored = restore(&file, dst.path(), false, "t").unwrap();
        assert_eq!(restored, Restored { schema: migrations::latest(), deliveries: 0, replaced: None });
        assert!(!dst.path().join("search").exists(), "the index is rebuilt at the next start");
        let back = Store::open(dst.path()).unwrap();
        assert_eq!(counts(&back.db().unwrap()), counts(&store.db().unwrap()));
        back.close();

        let err = restore(&file, dst.path(), false, "t").unwrap_err().to_string();
        assert!(err.contains("already holds a store; pass --replace"), "{err}");
        let again = restore(&file, dst.path(), true, "t2").unwrap();
        assert_eq!(again.replaced, Some(dst.path().join(format!("{DB_FILE}.before-restore-t2"))));
        assert!(dst.path().join(format!("{DB_FILE}.before-restore-t2")).exists());
    }

    #[test]
    fn a_restore_refuses_a_damaged_or_newer_backup_and_changes_nothing() {
        let (src, out, dst) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = filled(src.path(), 100);
        let file = out.path().join("backup.redb");
        snapshot(&*store.db().unwrap(), &file, &mut |_| true).unwrap();

        let stopped = out.path().join("stopped.redb");
        let err = snapshot(&*store.db().unwrap(), &stopped, &mut |_| false).unwrap_err().to_string();
        assert!(err.contains("cancelled"), "{err}");

        let bytes = std::fs::read(&file).unwrap();
        let cut = out.path().join("cut.redb");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = restore(&cut, dst.path(), false, "t").unwrap_err().to_string();
        assert!(err.contains("is not a whole backup"), "{err}");

        let newer = out.path().join("newer.redb");
        std::fs::copy(&file, &newer).unwrap();
        {
            let db = Database::open(&newer).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(tables::META).unwrap().insert("schema_version", migrations::latest() + 1).unwrap();
            tx.commit().unwrap();
        }
        let err = restore(&newer, dst.path(), false, "t").unwrap_err().to_string();
        assert!(err.contains("was made by a newer Hookplane"), "{err}");

        let other = out.path().join("other.redb");
        drop(Database::create(&other).unwrap());
        let err = restore(&other, dst.path(), false, "t").unwrap_err().to_string();
        assert!(err.contains("is not a Hookplane backup"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dst.path()).unwrap().collect();
        assert!(left.is_empty(), "a refused restore leaves nothing behind: {left:?}");
    }
}
