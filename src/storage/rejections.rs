//! Rejected requests: a counter per cause and a bounded sample of recent ones (metadata only).

use std::collections::BTreeMap;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::records::RejectionSample;
use super::{StoreError, tables};
use crate::domain::RejectCause;

/// Counts the rejections and keeps them as samples, dropping the oldest samples beyond the bound.
pub fn record(tx: &WriteTransaction, samples: &[RejectionSample]) -> Result<(), StoreError> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut per_cause: BTreeMap<&str, u64> = BTreeMap::new();
    for s in samples {
        *per_cause.entry(s.cause.as_str()).or_default() += 1;
    }
    let mut counts = tx.open_table(tables::REJECTION_COUNTS)?;
    for (cause, n) in per_cause {
        let before = counts.get(cause)?.map_or(0, |v| v.value());
        counts.insert(cause, before + n)?;
    }
    let mut kept = tx.open_table(tables::REJECTIONS.def())?;
    for s in samples {
        kept.insert(s.id.as_u128(), tables::REJECTIONS.encode(s)?.as_slice())?;
    }
    let excess = kept.len()?.saturating_sub(tables::REJECTION_SAMPLES_KEPT);
    for _ in 0..excess {
        kept.pop_first()?;
    }
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Every cause, with zero for those never seen, in the order of `RejectCause::ALL`.
    pub counts: Vec<(RejectCause, u64)>,
    /// Newest first.
    pub recent: Vec<RejectionSample>,
}

pub fn summary(db: &Database, limit: usize) -> Result<Summary, StoreError> {
    let tx = db.begin_read()?;
    let counts_t = tx.open_table(tables::REJECTION_COUNTS)?;
    let mut counts = Vec::with_capacity(RejectCause::ALL.len());
    for cause in RejectCause::ALL {
        counts.push((cause, counts_t.get(cause.as_str())?.map_or(0, |v| v.value())));
    }
    let samples = tx.open_table(tables::REJECTIONS.def())?;
    let mut recent = Vec::new();
    for row in samples.iter()?.rev().take(limit) {
        recent.push(tables::REJECTIONS.decode(row?.1.value())?);
    }
    Ok(Summary { counts, recent })
}

/// The kept samples of rejections at or after `since`, oldest first.
pub fn since(db: &Database, since: crate::domain::Timestamp) -> Result<Vec<RejectionSample>, StoreError> {
    let tx = db.begin_read()?;
    let samples = tx.open_table(tables::REJECTIONS.def())?;
    let mut out = Vec::new();
    for row in samples.range(crate::domain::ids::RejectionId::first_at(since).as_u128()..)? {
        out.push(tables::REJECTIONS.decode(row?.1.value())?);
    }
    Ok(out)
}
