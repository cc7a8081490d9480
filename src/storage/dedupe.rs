//! Dedupe: "has this provider delivery been stored already?", answered from memory.
//!
//! Provider ids are random (Shopify's are UUIDs), so a table keyed by them takes each insert to a different
//! B-tree leaf and rewrites a page per delivery: it halved ingest throughput. Instead each delivery's
//! fingerprint is stored with its entry in `DELIVERIES_BY_SUBSCRIPTION`, whose keys grow in time order per
//! subscription, and the writer keeps `fingerprint → delivery ids` in memory, rebuilt from that table at
//! start. A fingerprint match is confirmed against the stored delivery's own key (or, once retention deleted
//! it, the key kept in `DEDUPE_STUBS` while its provider may still send it), so a fingerprint collision can
//! never drop a delivery.

use std::collections::HashMap;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::{StoreError, tables};

/// The first 8 bytes of SHA-256 of the dedupe key: stable across versions and platforms.
pub fn fingerprint(key: &str) -> u64 {
    let d = crate::secrets::sha256(key.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Fingerprint → the deliveries stored under it. Owned by the writer thread.
///
/// A million deliveries make a million entries, so their size is the writer's memory: an id is kept as two
/// `u64` (a `u128` would align each entry to 16 bytes), and the rare fingerprints of more than one delivery
/// live apart, so an entry is 24 bytes instead of 48.
#[derive(Debug, Default)]
pub struct DedupeIndex {
    one: HashMap<u64, [u64; 2]>,
    /// Fingerprints shared by different keys: every id under them, the first one's included.
    many: HashMap<u64, Vec<u128>>,
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
        let capacity = usize::try_from(redb::ReadableTableMetadata::len(&entries)?).unwrap_or(0);
        let mut index = Self { one: HashMap::with_capacity(capacity), many: HashMap::new() };
        for row in entries.iter()? {
            let (key, fp) = row?;
            if let Some(fp) = fp.value() {
                index.insert(fp, key.value().1);
            }
        }
        // Deleted deliveries whose provider may still send them again.
        for row in tx.open_table(tables::DEDUPE_STUBS.def())?.iter()? {
            let (id, stub) = row?;
            index.insert(fingerprint(&tables::DEDUPE_STUBS.decode(stub.value())?.dedupe_key), id.value());
        }
        Ok(index)
    }

    /// The deliveries stored under `fp` (a fingerprint is in one map or the other, never both).
    pub fn candidates(&self, fp: u64) -> impl Iterator<Item = u128> + '_ {
        let shared = self.many.get(&fp).map_or(&[][..], Vec::as_slice).iter().copied();
        shared.chain(self.one.get(&fp).map(|id| join(*id)))
    }

    pub fn insert(&mut self, fp: u64, id: u128) {
        if let Some(ids) = self.many.get_mut(&fp) {
            ids.push(id);
        } else if let Some(first) = self.one.remove(&fp) {
            self.many.insert(fp, vec![join(first), id]);
        } else {
            self.one.insert(fp, split(id));
        }
    }
}

#[cfg(test)]
mod tests {
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
        let of = |fp| idx.candidates(fp).collect::<Vec<_>>();
        assert_eq!(of(7), [1, 2]);
        assert_eq!(of(8), [3]);
        assert_eq!(of(9), [big], "ids keep all 128 bits");
        assert!(of(10).is_empty());
    }
}
