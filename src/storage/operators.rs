//! Operators as stored, by username. Every change is written with its audit entry in one transaction.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::{StoreError, audit, tables};
use crate::domain::access::Operator;
use crate::domain::audit::AuditEntry;
use crate::secrets::SecretDigest;

/// Adds `op`; a `Conflict` when the username is taken.
pub fn create(db: &Database, op: &Operator, entry: &AuditEntry) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    {
        let mut t = tx.open_table(tables::OPERATORS.def())?;
        if t.get(op.username.as_str())?.is_some() {
            return Err(StoreError::Conflict(format!("an operator named `{}` exists", op.username)));
        }
        t.insert(op.username.as_str(), tables::OPERATORS.encode(op)?.as_slice())?;
    }
    audit::append(&tx, entry)?;
    tx.commit()?;
    Ok(())
}

pub fn find(db: &Database, username: &str) -> Result<Option<Operator>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::OPERATORS.def())?;
    let found = t.get(username)?;
    found.map(|v| tables::OPERATORS.decode(v.value())).transpose()
}

/// Replaces the password of `username` and ends every session of theirs, so that a reset locks out
/// whoever knew the old one. `None` when there is no such operator.
pub fn set_password(
    db: &Database,
    username: &str,
    password: SecretDigest,
    entry: impl FnOnce(&Operator) -> AuditEntry,
) -> Result<Option<Operator>, StoreError> {
    let tx = db.begin_write()?;
    let updated = {
        let mut t = tx.open_table(tables::OPERATORS.def())?;
        let found = t.get(username)?.map(|v| tables::OPERATORS.decode(v.value())).transpose()?;
        match found {
            Some(mut op) => {
                let entry = entry(&op);
                op.password = password;
                op.password_changed_at = entry.at;
                t.insert(username, tables::OPERATORS.encode(&op)?.as_slice())?;
                audit::append(&tx, &entry)?;
                Some(op)
            }
            None => None,
        }
    };
    if let Some(op) = &updated {
        super::sessions::end_all_of(&tx, op.id)?;
    }
    tx.commit()?;
    Ok(updated)
}

pub fn list(db: &Database) -> Result<Vec<Operator>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::OPERATORS.def())?;
    t.iter()?.map(|row| tables::OPERATORS.decode(row?.1.value())).collect()
}

/// Whether any operator exists (until one does, the dashboard may stay open to this machine).
pub fn any(db: &Database) -> Result<bool, StoreError> {
    let tx = db.begin_read()?;
    Ok(tx.open_table(tables::OPERATORS.def())?.len()? > 0)
}
