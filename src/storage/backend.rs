//! The file backend under redb, with one addition: a background thread writes zeros over the file's unused
//! space a little ahead of redb's writes, so redb's pages land in blocks that were written before.
//!
//! Why: a commit's `fdatasync` costs twice as much when its pages land in blocks the filesystem has never
//! written (a sparse or `fallocate`d range), because each one turns into a metadata change the journal
//! must commit too. Measured on ext4 here: 55 page writes then `fdatasync`, 0.5 ms over written blocks
//! against 1.1–1.2 ms over sparse or fallocated ones. Ingest commits one transaction per batch, so this
//! is most of a commit's cost (docs/benchmarks.md).
//!
//! The file's length stays what redb set (redb derives its layout from it after a crash); only blocks
//! inside it are zeroed. A block redb wrote first is never zeroed afterwards: writes at or past the zeroed
//! mark are recorded, and the zeroing thread skips them under the same lock.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use redb::StorageBackend;
use redb::backends::FileBackend;

/// What the zeroing thread writes at a time: small enough that a redb write waiting for the lock waits
/// for one short `pwrite`.
const CHUNK: u64 = 256 * 1024;
/// How much it zeroes between its own `fdatasync`s, so a commit does not inherit a large flush.
const SYNC_EVERY: u64 = 1024 * 1024;
/// How far ahead of redb's highest write it zeroes. Not all of a newly grown file at once: redb doubles
/// the file, and zeroing hundreds of megabytes in one go competes with commits for the disk.
const AHEAD: u64 = 32 * 1024 * 1024;
const BLOCK: u64 = 4096;
/// How often zeroing looks again whether it may go on, while it is held.
const HOLD_CHECK: std::time::Duration = std::time::Duration::from_secs(1);
/// How long zeroing waits after a failed write before it tries again.
const PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Default)]
struct Zeroing {
    /// Every block below this has been written, by redb or with zeros.
    zeroed_upto: u64,
    /// The file's length: zeroing stops here.
    len: u64,
    /// The end of redb's highest write.
    high_water: u64,
    /// Blocks at or past `zeroed_upto` that redb wrote; the zeroing thread leaves them alone.
    written_ahead: BTreeSet<u64>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<Zeroing>,
    wake: Condvar,
}

impl Zeroing {
    /// Where zeroing stops for now. Always on a block boundary, like `zeroed_upto`: the bookkeeping is by
    /// whole blocks, and a mark inside a block would let zeros land on the part redb wrote.
    fn target(&self) -> u64 {
        self.len.min(self.high_water + AHEAD) / BLOCK * BLOCK
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Zeroing> {
        // A panic while holding this lock cannot leave the bookkeeping half-updated in a way that loses
        // data: at worst a block is zeroed before redb writes it, which redb then overwrites.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Debug)]
pub struct ZeroingBackend {
    inner: FileBackend,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ZeroingBackend {
    /// Zeroing waits while `hold` is set.
    pub fn new(file: File, hold: Arc<AtomicBool>) -> Result<Self, redb::DatabaseError> {
        let io_err = |e| redb::DatabaseError::Storage(redb::StorageError::Io(e));
        let handle = file.try_clone().map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let inner = FileBackend::new(file)?;
        // An existing file is taken as written: what earlier versions left sparse stays as it is.
        let shared = Arc::new(Shared {
            state: Mutex::new(Zeroing {
                zeroed_upto: len.next_multiple_of(BLOCK),
                len,
                high_water: len,
                ..Zeroing::default()
            }),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hookplane-zeroing".into())
            .spawn(move || zero_ahead(&worker, &handle, &hold))
            .map_err(io_err)?;
        Ok(Self { inner, shared, thread: Mutex::new(Some(thread)) })
    }

    fn stop(&self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = thread.join();
        }
    }
}

fn zero_ahead(shared: &Shared, file: &File, hold: &AtomicBool) {
    let zeros = vec![0u8; CHUNK as usize];
    let mut unsynced = 0u64;
    loop {
        let mut state = shared.lock();
        if state.stop {
            return;
        }
        if hold.load(Ordering::SeqCst) {
            drop(shared.wake.wait_timeout_while(state, HOLD_CHECK, |s| !s.stop));
            continue;
        }
        while !state.stop && state.zeroed_upto >= state.target() {
            if unsynced > 0 {
                drop(state);
                let _ = file.sync_data();
                unsynced = 0;
                state = shared.lock();
                continue;
            }
            state = shared.wake.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if state.stop {
            return;
        }
        let start = state.zeroed_upto;
        let end = (start + CHUNK).min(state.target());
        debug_assert!(
            start.is_multiple_of(BLOCK) && end.is_multiple_of(BLOCK),
            "zeroing by whole blocks: {start}..{end}"
        );
        let mut at = start;
        // Runs of blocks redb has not written, zeroed while the lock keeps redb from writing into them.
        let taken: Vec<u64> = state.written_ahead.range(start..end).copied().collect();
        for block in taken.iter().copied().chain(std::iter::once(end)) {
            if block > at
                && let Err(e) = file.write_all_at(&zeros[..(block - at) as usize], at)
            {
                // Nothing is lost: redb's own writes still allocate the blocks, only more slowly. A full
                // disk is the usual cause, so zeroing waits and tries the same range again; the lock is
                // held meanwhile only by the wait, which lets go of it.
                tracing::warn!(error = %e, pause_s = PAUSE.as_secs(), "zeroing the data file ahead of use failed; it pauses");
                break;
            }
            at = (block + BLOCK).min(end).max(at);
        }
        if at < end {
            drop(shared.wake.wait_timeout_while(state, PAUSE, |s| !s.stop));
            continue;
        }
        state.written_ahead = state.written_ahead.split_off(&end);
        state.zeroed_upto = end;
        drop(state);
        unsynced += end - start;
        if unsynced >= SYNC_EVERY {
            let _ = file.sync_data();
            unsynced = 0;
        }
    }
}

impl Drop for ZeroingBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

impl StorageBackend for ZeroingBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut state = self.shared.lock();
        self.inner.set_len(len)?;
        if len < state.len {
            // Rounded up: the block the new end falls in may hold what redb wrote before the cut.
            state.zeroed_upto = state.zeroed_upto.min(len.next_multiple_of(BLOCK));
            state.high_water = state.high_water.min(len);
            let _ = state.written_ahead.split_off(&len.next_multiple_of(BLOCK));
        }
        state.len = len;
        drop(state);
        self.shared.wake.notify_all();
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let end = offset + data.len() as u64;
        let mut state = self.shared.lock();
        if state.stop {
            // Zeroing has stopped: nothing will read the bookkeeping any more.
            drop(state);
            return self.inner.write(offset, data);
        }
        if end > state.zeroed_upto {
            let first = offset.max(state.zeroed_upto) / BLOCK * BLOCK;
            state.written_ahead.extend((first..end).step_by(BLOCK as usize));
        }
        let before = state.target();
        state.high_water = state.high_water.max(end);
        // Woken only when the margin has moved, not on every page write.
        let wake = state.target() > before && state.zeroed_upto + AHEAD / 2 < state.target();
        drop(state);
        if wake {
            self.shared.wake.notify_all();
        }
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.stop();
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(b: &ZeroingBackend) -> Vec<u8> {
        let mut out = vec![0u8; b.len().unwrap() as usize];
        b.read(0, &mut out).unwrap();
        out
    }

    #[test]
    fn zeroing_never_overwrites_what_redb_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).unwrap();
        let b = ZeroingBackend::new(file, Arc::default()).unwrap();
        let mut expected = Vec::new();
        let write = |expected: &mut Vec<u8>, b: &ZeroingBackend, offset: u64, data: Vec<u8>| {
            b.write(offset, &data).unwrap();
            let end = offset as usize + data.len();
            if expected.len() < end {
                expected.resize(end, 0);
            }
            expected[offset as usize..end].copy_from_slice(&data);
        };
        let mut len = 0;
        for round in 0..4u8 {
            // Each round grows the file, so its writes race the thread over fresh space; the first write is
            // a header-sized one that leaves redb's highest write inside a block.
            let grown = (u64::from(round) + 1) * 2 * CHUNK + 5 * BLOCK;
            b.set_len(grown).unwrap();
            expected.resize(grown as usize, 0);
            write(&mut expected, &b, 0, vec![round + 100; 320]);
            for i in 0..200u64 {
                let offset = len + (i * 7919 + u64::from(round) * 131) % (grown - len - 600);
                write(&mut expected, &b, offset, vec![round + 1; 300 + (i % 300) as usize]);
            }
            if round == 2 {
                // A shrink in the middle, then growth again: what was cut off reads as zeros afterwards.
                b.set_len(grown - 3 * BLOCK - 7).unwrap();
                expected.truncate((grown - 3 * BLOCK - 7) as usize);
                b.set_len(grown).unwrap();
                expected.resize(grown as usize, 0);
            }
            len = grown;
        }
        // Wait until the thread has passed everything, then compare.
        while b.shared.lock().zeroed_upto < len {
            assert!(!b.shared.lock().stop, "the zeroing thread stopped early");
            b.shared.wake.notify_all();
            std::thread::yield_now();
        }
        assert_eq!(read_all(&b), expected);
        assert!(b.shared.lock().written_ahead.is_empty());
        b.set_len(CHUNK).unwrap();
        assert_eq!(b.shared.lock().zeroed_upto, CHUNK);
        b.close().unwrap();
    }
}
