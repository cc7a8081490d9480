//! Dedupe: "has this provider delivery been stored already?", answered from memory.
//!
//! Provider ids are random (Shopify's are UUIDs), so a table keyed by them takes each insert to a different
//! B-tree leaf and rewrites a page per delivery: it halved ingest throughput. Instead each delivery's
//! fingerprint is stored with its entry in `DELIVERIES_BY_SUBSCRIPTION`, whose keys grow in time order per
//! subscription, and the writer keeps `fingerprint → delivery ids` in memory, rebuilt from that table at
//! start. A fingerprint match is confirmed against the stored delivery's own key (or, once retention deleted
//! it, the key kept in `DEDUPE_STUBS` while its provider may still send it), so a fingerprint collision can
//! never drop a delivery. Retention tells the writer which entries it deleted for good
//! ([`super::Store::forget_dedupe`]), so the index holds what retention keeps and no more.

use std::collections::HashMap;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::{StoreError, tables};

/// The first 8 bytes of SHA-256 of the dedupe key: stable across versions and platforms.
pub fn fingerprint(key: &str) -> u64 {
    let d = crate::secrets::sha256(key.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// One delivery under its fingerprint. The id is kept as two `u64`, so an entry is 24 bytes (a `u128`
/// would align it to 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    fp: u64,
    id: [u64; 2],
}

/// Marks an entry of `sorted` that was forgotten; dropped at the next merge. No delivery has id 0.
const HOLE: [u64; 2] = [0, 0];

/// Entries below this many are never worth a merge of their own.
const MIN_MERGE: usize = 16 * 1024;

/// Fingerprint → the deliveries stored under it. Owned by the writer thread.
///
/// A million deliveries make a million entries, so their size is the writer's memory. Most live in one
/// array sorted by fingerprint, 24 bytes each and nothing more (a hash map of the same entries took 52 MB
/// at a million, twice that while it grew). New entries go to a small hash map first and are merged into
/// the array once they are an eighth of it, so a merge's cost is spread over many inserts.
#[derive(Debug, Default)]
pub struct DedupeIndex {
    sorted: Vec<Entry>,
    recent: HashMap<u64, [u64; 2]>,
    /// Entries of `sorted` forgotten since the last merge.
    holes: usize,
}

fn split(id: u128) -> [u64; 2] {
    [(id >> 64) as u64, id as u64]
}

fn join([high, low]: [u64; 2]) -> u128 {
    (u128::from(high) << 64) | u128::from(low)
}

impl DedupeIndex {
    pub fn load(db: &Database) -> Result<Self, StoreError> {
        let tx = db.begin_read()?;
        let entries = tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?;
        let stubs = tx.open_table(tables::DEDUPE_STUBS.def())?;
        let capacity = redb::ReadableTableMetadata::len(&entries)? + redb::ReadableTableMetadata::len(&stubs)?;
        let mut sorted = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        for row in entries.iter()? {
            let (key, fp) = row?;
            if let Some(fp) = fp.value() {
                sorted.push(Entry { fp, id: split(key.value().1) });
            }
        }
        // Deleted deliveries whose provider may still send them again.
        for row in stubs.iter()? {
            let (id, stub) = row?;
            let key = tables::DEDUPE_STUBS.decode(stub.value())?.dedupe_key;
            sorted.push(Entry { fp: fingerprint(&key), id: split(id.value()) });
        }
        sorted.sort_unstable_by_key(|e| e.fp);
        Ok(Self { sorted, recent: HashMap::new(), holes: 0 })
    }

    /// How many deliveries it holds.
    fn len(&self) -> usize {
        self.sorted.len() - self.holes + self.recent.len()
    }

    /// The deliveries stored under `fp`.
    pub fn candidates(&self, fp: u64) -> impl Iterator<Item = u128> + '_ {
        let old = self.equal_range(fp).iter().filter(|e| e.id != HOLE).map(|e| join(e.id));
        old.chain(self.recent.get(&fp).map(|id| join(*id)))
    }

    pub fn insert(&mut self, fp: u64, id: u128) {
        // Two keys with one fingerprint (or a key stored again after its delivery was deleted): the array
        // keeps any number under one fingerprint, the map one, so the map's goes to the array first.
        if self.recent.contains_key(&fp) {
            self.merge();
        }
        self.recent.insert(fp, split(id));
        if self.recent.len() >= MIN_MERGE.max(self.sorted.len() / 8) {
            self.merge();
        }
    }

    /// Drops the entries of deliveries that are gone for good. Entries it does not hold are passed over.
    pub fn forget(&mut self, entries: &[(u64, u128)]) {
        for &(fp, id) in entries {
            let id = split(id);
            if self.recent.get(&fp) == Some(&id) {
                self.recent.remove(&fp);
                continue;
            }
            let (start, end) = self.bounds(fp);
            if let Some(e) = self.sorted[start..end].iter_mut().find(|e| e.id == id) {
                e.id = HOLE;
                self.holes += 1;
            }
        }
        if self.holes >= MIN_MERGE.max(self.sorted.len() / 8) {
            self.merge();
        }
    }

    fn equal_range(&self, fp: u64) -> &[Entry] {
        let (start, end) = self.bounds(fp);
        &self.sorted[start..end]
    }

    /// Where the entries of `fp` are in `sorted`. Fingerprints are uniform, so `fp`'s place is about
    /// `fp / 2^64` of the way along: a window around that guess, widened until it brackets `fp`, is
    /// searched instead of the whole array (a few cache lines instead of twenty).
    fn bounds(&self, fp: u64) -> (usize, usize) {
        let s = &self.sorted;
        let n = s.len();
        if n == 0 {
            return (0, 0);
        }
        let guess = ((u128::from(fp) * n as u128) >> 64) as usize;
        let (mut lo, mut hi, mut step) = (guess, guess + 1, 16);
        while lo > 0 && s[lo].fp >= fp {
            lo = lo.saturating_sub(step);
            step *= 2;
        }
        step = 16;
        while hi < n && s[hi - 1].fp <= fp {
            hi = (hi + step).min(n);
            step *= 2;
        }
        let window = &s[lo..hi];
        (lo + window.partition_point(|e| e.fp < fp), lo + window.partition_point(|e| e.fp <= fp))
    }

    /// Moves the recent entries into the sorted array and drops its holes, into an array of exactly the
    /// size needed.
    fn merge(&mut self) {
        let mut merged = Vec::with_capacity(self.len());
        let mut fresh: Vec<Entry> = self.recent.drain().map(|(fp, id)| Entry { fp, id }).collect();
        fresh.sort_unstable_by_key(|e| e.fp);
        let mut old = self.sorted.iter().filter(|e| e.id != HOLE).peekable();
        let mut new = fresh.into_iter().peekable();
        loop {
            let next = match (old.peek(), new.peek()) {
                (Some(a), Some(b)) if a.fp <= b.fp => old.next().copied(),
                (_, Some(_)) => new.next(),
                (Some(_), None) => old.next().copied(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        self.sorted = merged;
        self.holes = 0;
        // The map's table stays at its largest size otherwise.
        if self.recent.capacity() > 2 * MIN_MERGE {
            self.recent = HashMap::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn fingerprints_are_stable() {
        assert_eq!(
            fingerprint("shopify/b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
            fingerprint("shopify/b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        );
        assert_ne!(fingerprint("a"), fingerprint("b"));
        // Pinned: the log on disk depends on this value never changing.
        assert_eq!(fingerprint("shopify/x"), 0x47f8_8900_6c3e_be23);
    }

    #[test]
    fn collisions_keep_every_id() {
        let mut idx = DedupeIndex::default();
        idx.insert(7, 1);
        idx.insert(7, 2);
        idx.insert(8, 3);
        let big = u128::MAX - 5;
        idx.insert(9, big);
        let of = |idx: &DedupeIndex, fp| idx.candidates(fp).collect::<BTreeSet<_>>();
        assert_eq!(of(&idx, 7), [1, 2].into());
        assert_eq!(of(&idx, 8), [3].into());
        assert_eq!(of(&idx, 9), [big].into(), "ids keep all 128 bits");
        assert!(of(&idx, 10).is_empty());
        idx.forget(&[(7, 1), (8, 4)]);
        assert_eq!(of(&idx, 7), [2].into(), "only the id forgotten goes");
        assert_eq!(of(&idx, 8), [3].into(), "an id it never held changes nothing");
        assert_eq!(idx.len(), 3);
    }

    /// Inserts, repeats, collisions and forgetting, across many merges, against a plain map of sets.
    #[test]
    fn it_answers_as_a_map_of_sets_would() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(20);
        let mut idx = DedupeIndex::default();
        let mut model: BTreeMap<u64, BTreeSet<u128>> = BTreeMap::new();
        let mut held: Vec<(u64, u128)> = Vec::new();
        for round in 0..200_000u128 {
            // Uniform fingerprints as SHA-256 gives, and now and then one already held.
            let fp = if round % 1000 == 7 && !held.is_empty() {
                held[rng.random_range(0..held.len())].0
            } else {
                rng.random()
            };
            let id = round + 1;
            idx.insert(fp, id);
            model.entry(fp).or_default().insert(id);
            held.push((fp, id));
            if round % 3 == 0 && held.len() > 10 {
                let gone: Vec<(u64, u128)> =
                    (0..2).map(|_| held.swap_remove(rng.random_range(0..held.len()))).collect();
                idx.forget(&gone);
                for (fp, id) in gone {
                    let ids = model.get_mut(&fp).unwrap();
                    ids.remove(&id);
                    if ids.is_empty() {
                        model.remove(&fp);
                    }
                }
            }
            if round % 997 == 0 {
                for _ in 0..50 {
                    let fp = if rng.random_bool(0.5) { held[rng.random_range(0..held.len())].0 } else { rng.random() };
                    let found: BTreeSet<u128> = idx.candidates(fp).collect();
                    assert_eq!(found, model.get(&fp).cloned().unwrap_or_default(), "fingerprint {fp:#x}");
                }
            }
        }
        assert_eq!(idx.len(), held.len());
        for (fp, ids) in &model {
            assert_eq!(&idx.candidates(*fp).collect::<BTreeSet<_>>(), ids);
        }
        for fp in [0, 1, u64::MAX, u64::MAX - 1] {
            assert_eq!(idx.candidates(fp).collect::<BTreeSet<_>>(), model.get(&fp).cloned().unwrap_or_default());
        }
    }
}
