//! The audit log: append, and read newest first with filters. There is no update and no delete.

use redb::{Database, ReadableDatabase, WriteTransaction};

use super::{StoreError, tables};
use crate::domain::Timestamp;
use crate::domain::audit::{AuditAction, AuditEntry};
use crate::domain::ids::AuditId;

/// Appends `entry` inside the caller's transaction, so an action and its entry commit together.
pub fn append(tx: &WriteTransaction, entry: &AuditEntry) -> Result<(), StoreError> {
    tx.open_table(tables::AUDIT_LOG.def())?.insert(entry.id.as_u128(), tables::AUDIT_LOG.encode(entry)?.as_slice())?;
    Ok(())
}

/// Appends `entry` on its own, for actions that change nothing else (a failed sign-in).
pub fn record(db: &Database, entry: &AuditEntry) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    append(&tx, entry)?;
    tx.commit()?;
    Ok(())
}

/// Which entries to list; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    pub performed_by: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl AuditFilter {
    fn matches(&self, e: &AuditEntry) -> bool {
        self.action.is_none_or(|a| a == e.action)
            && self.performed_by.as_deref().is_none_or(|p| p == e.performed_by)
            && self.target_id.as_deref().is_none_or(|t| e.target_id.as_deref() == Some(t))
    }
}

/// Up to `limit` entries matching `filter`, newest first, older than `before` when given; and the cursor
/// for the next page when there may be more.
pub fn list(
    db: &Database,
    filter: &AuditFilter,
    before: Option<AuditId>,
    limit: usize,
) -> Result<(Vec<AuditEntry>, Option<AuditId>), StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::AUDIT_LOG.def())?;
    let low = filter.from.map_or(0, |f| AuditId::first_at(f).as_u128());
    // `to` is exclusive: the first id of that millisecond is past the range.
    let mut high = filter.to.map_or(u128::MAX, |to| AuditId::first_at(to).as_u128());
    if let Some(b) = before {
        high = high.min(b.as_u128());
    }
    let mut out = Vec::new();
    if low >= high {
        return Ok((out, None));
    }
    for row in t.range(low..high)?.rev() {
        let entry = tables::AUDIT_LOG.decode(row?.1.value())?;
        if !filter.matches(&entry) {
            continue;
        }
        if out.len() == limit {
            let next = out.last().map(|e: &AuditEntry| e.id);
            return Ok((out, next));
        }
        out.push(entry);
    }
    Ok((out, None))
}
