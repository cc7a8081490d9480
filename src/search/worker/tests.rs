//! The worker against a real store and index in a temporary directory.

use super::*;
use crate::domain::erasure::Erased;
use crate::domain::{DeliveryStatus, ErasureId, Source, Timestamp};
use crate::search::{Opened, Position, parse_position};
use crate::storage::deliveries::{put_sample, sample};

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn settings() -> SearchSettings {
    SearchSettings {
        // New deliveries taken during a catch-up are committed after the next batch.
        commit_interval_ms: 0,
        commit_docs: 1_000_000,
        memory_mib: 16,
        catch_up_margin_seconds: 60,
        defer_batch: 0,
        defer_busy_percent: 0,
        defer_calm_ms: 2000,
        max_queued_kib: 1024,
    }
}

fn delivery(n: usize) -> Delivery {
    sample(T0.plus_millis(n as i64), Source::Shopify, DeliveryStatus::Stored)
}

fn put(store: &Store, deliveries: &[Delivery]) {
    let db = store.db().unwrap();
    let tx = db.begin_write().unwrap();
    for d in deliveries {
        put_sample(&tx, d);
    }
    tx.commit().unwrap();
}

/// A store in a temporary directory holding `n` deliveries, one a millisecond.
fn store_of(n: usize) -> (tempfile::TempDir, Arc<Store>, Vec<Delivery>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let all: Vec<Delivery> = (0..n).map(delivery).collect();
    put(&store, &all);
    (dir, store, all)
}

/// A worker over the store and index in `dir`, as a start would make it.
fn worker(dir: &std::path::Path, store: &Arc<Store>) -> (Arc<SearchIndex>, Worker) {
    let (index, opened) = SearchIndex::open(&dir.join("search")).unwrap();
    let position = match opened {
        Opened::Resume(p) => p.map(|p| p.newest),
        Opened::Rebuild => None,
    };
    let index = Arc::new(index);
    let writer = writer::open(&index, 1, 16 * 1024 * 1024).unwrap();
    let settings = settings();
    let pressure = Arc::new(Pressure::new(&settings));
    let stopping = Arc::new(AtomicBool::new(false));
    let w = Worker::new(Arc::clone(&index), Arc::clone(store), writer, settings, position, pressure, stopping);
    (index, w)
}

fn committed(index: &SearchIndex) -> Option<Position> {
    index.index.load_metas().unwrap().payload.as_deref().and_then(parse_position)
}

fn holds(index: &SearchIndex, id: DeliveryId) -> bool {
    index.held(id, id).unwrap().contains(&id)
}

/// Documents written, deleted ones included until a merge drops them.
fn written(index: &SearchIndex) -> u32 {
    index.reader.searcher().segment_readers().iter().map(|s| s.max_doc()).sum()
}

#[test]
fn new_deliveries_are_searchable_before_a_catch_up_ends_and_are_indexed_once() {
    let stored = 3 * SCAN_BATCH;
    let (dir, store, _) = store_of(stored);
    // One delivery that came while the catch-up ran: stored after the others, and in the scan's way too.
    let new = delivery(stored);
    put(&store, std::slice::from_ref(&new));
    let (index, mut w) = worker(dir.path(), &store);
    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(Msg::Stored(vec![(new.clone(), payload::encode(&[], b"{}", 1))], 0)).unwrap();

    let mut seen = Vec::new();
    let observer = Arc::clone(&index);
    let progress = &mut |done| seen.push((done, holds(&observer, new.id), committed(&observer)));
    let n = w.catch_up(None, Some(&rx), progress, false).unwrap();

    let (done, found, resume) = seen[0];
    assert_eq!(done, SCAN_BATCH);
    assert!(found, "the new delivery is searchable after the scan's first batch");
    let resume = resume.unwrap();
    assert_eq!(resume.newest, new.id);
    assert!(
        resume.resume < new.id && resume.resume > DeliveryId::first_at(T0),
        "a start after this commit resumes where the scan was: {resume:?}"
    );
    assert_eq!(n, stored + 1, "the scan reads it too");
    assert_eq!(index.num_docs(), (stored + 1) as u64, "but it has one document");
    assert_eq!(w.position, Some(new.id));
    let end = committed(&index).unwrap();
    assert_eq!((end.resume, end.newest), (new.id, new.id));
}

#[test]
fn a_catch_up_leaves_the_documents_it_finds_and_adds_the_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let mut all: Vec<Delivery> = (0..2 * SCAN_BATCH).map(delivery).collect();
    // Committed out of id order: after the index had moved past it.
    let late = all.remove(SCAN_BATCH);
    put(&store, &all);
    {
        let (index, mut w) = worker(dir.path(), &store);
        w.catch_up(None, None, &mut |_| {}, false).unwrap();
        assert_eq!(index.num_docs(), all.len() as u64);
    }
    put(&store, std::slice::from_ref(&late));
    // Erased since it was indexed, and the erasure's own deletion lost.
    let mut erased = all[3].clone();
    erased.erased = Some(Erased { at: T0, erasure: ErasureId::new(T0), size_bytes: 2 });
    put(&store, std::slice::from_ref(&erased));

    let (index, mut w) = worker(dir.path(), &store);
    let before = written(&index);
    let n = w.catch_up(Some(all[0].id), None, &mut |_| {}, false).unwrap();
    assert_eq!(n, all.len() + 1);
    assert!(holds(&index, late.id), "the missing delivery is added");
    assert!(!holds(&index, erased.id), "the erased one's document goes");
    assert_eq!(index.num_docs(), all.len() as u64);
    assert_eq!(written(&index), before + 1, "nothing else is written again");
}

#[test]
fn a_catch_up_steps_aside_while_ingest_is_saturated_and_records_where_it_was() {
    let (dir, store, all) = store_of(YIELDING_SCAN_BATCH * 3);
    let (index, mut w) = worker(dir.path(), &store);
    let mut saturated = settings();
    saturated.defer_batch = 1;
    saturated.defer_calm_ms = 3_600_000;
    w.pressure = Arc::new(Pressure::new(&saturated));
    for _ in 0..8 {
        w.pressure.committed(100);
    }
    assert!(w.pressure.busy());

    let n = w.catch_up(Some(all[0].id), None, &mut |_| {}, true).unwrap();
    assert_eq!(n, 0, "nothing indexed while ingest needs the cores");
    assert_eq!(w.deferred, Some(all[0].id));
    let left = committed(&index).unwrap();
    assert_eq!(left.resume, all[0].id, "a start after this resumes from where the catch-up was");
}

#[test]
fn a_server_catch_up_makes_the_newest_deliveries_searchable_first() {
    let (dir, store, all) = store_of(NEWEST_FIRST + 3 * YIELDING_SCAN_BATCH);
    let (index, mut w) = worker(dir.path(), &store);
    let (oldest, newest, last_early) = (all[0].id, all[all.len() - 1].id, all[all.len() - NEWEST_FIRST - 1].id);

    let mut seen = Vec::new();
    let observer = Arc::clone(&index);
    let progress =
        &mut |done| seen.push((done, holds(&observer, newest), holds(&observer, last_early), holds(&observer, oldest)));
    let n = w.catch_up(Some(oldest), None, progress, true).unwrap();

    assert_eq!(
        seen[0],
        (YIELDING_SCAN_BATCH, true, false, false),
        "after the scan's first batch the newest deliveries are searchable, the older ones not yet"
    );
    assert_eq!(n, all.len(), "the scan reads them all");
    assert_eq!(index.num_docs(), all.len() as u64, "and each has one document");
    assert!(holds(&index, last_early) && holds(&index, oldest));
    let end = committed(&index).unwrap();
    assert_eq!((end.resume, end.newest), (newest, newest));
}

#[test]
fn a_catch_up_stopped_after_the_newest_resumes_from_the_oldest_and_writes_nothing_twice() {
    let (dir, store, all) = store_of(NEWEST_FIRST + 3 * YIELDING_SCAN_BATCH);
    {
        let (_, mut w) = worker(dir.path(), &store);
        let mut saturable = settings();
        saturable.defer_batch = 1;
        saturable.defer_calm_ms = 3_600_000;
        let pressure = Arc::new(Pressure::new(&saturable));
        w.pressure = Arc::clone(&pressure);
        // A burst begins once the scan has read its first batch.
        let progress = &mut |_| (0..8).for_each(|_| pressure.committed(100));
        let n = w.catch_up(Some(all[0].id), None, progress, true).unwrap();
        assert_eq!(n, YIELDING_SCAN_BATCH);
    }
    let (index, mut w) = worker(dir.path(), &store);
    let left = committed(&index).unwrap();
    assert!(
        left.resume > all[YIELDING_SCAN_BATCH - 1].id && left.resume <= all[YIELDING_SCAN_BATCH].id,
        "the next start resumes where the scan was: {left:?}"
    );
    assert_eq!(left.newest, all[all.len() - 1].id);

    w.catch_up(Some(left.resume), None, &mut |_| {}, true).unwrap();
    assert_eq!(index.num_docs(), all.len() as u64);
    assert_eq!(written(&index), all.len() as u32, "no document was written twice");
}
