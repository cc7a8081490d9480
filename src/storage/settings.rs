//! Settings changed in the dashboard rather than in the configuration, kept in `meta` with their audit
//! entries. Only those the configuration leaves at their default can be changed here.

use redb::{Database, ReadableDatabase, ReadableTable};

use super::{StoreError, audit, tables};
use crate::domain::audit::AuditEntry;

const RETENTION_DAYS: &str = "setting_retention_days";

/// The retention set in the dashboard, if one was.
pub fn retention_days(db: &Database) -> Result<Option<u32>, StoreError> {
    let tx = db.begin_read()?;
    let meta = tx.open_table(tables::META)?;
    let v = meta.get(RETENTION_DAYS)?.map(|v| v.value());
    // A value outside the bounds (a damaged row) is ignored rather than obeyed: 0 would delete everything.
    Ok(v.and_then(|d| u32::try_from(d).ok()).filter(|d| crate::domain::retention::check_days(*d).is_ok()))
}

/// Sets the retention, with its audit entry built from the value it replaces (read in the same
/// transaction); returns that value.
pub fn set_retention_days(
    db: &Database,
    days: u32,
    entry: impl FnOnce(Option<u32>) -> AuditEntry,
) -> Result<Option<u32>, StoreError> {
    let tx = db.begin_write()?;
    let before = {
        let mut meta = tx.open_table(tables::META)?;
        let before = meta.get(RETENTION_DAYS)?.map(|v| v.value()).and_then(|d| u32::try_from(d).ok());
        meta.insert(RETENTION_DAYS, u64::from(days))?;
        before
    };
    audit::append(&tx, &entry(before))?;
    tx.commit()?;
    Ok(before)
}
