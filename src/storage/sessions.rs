//! Dashboard sessions as stored, by the SHA-256 of their id.

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::{StoreError, audit, tables};
use crate::domain::Timestamp;
use crate::domain::access::Operator;
use crate::domain::access::{Session, SessionPolicy, TOUCH_EVERY_MS};
use crate::domain::audit::AuditEntry;
use crate::domain::ids::OperatorId;

/// Stores a new session under `digest` with its sign-in entry. The session the browser held before, if
/// any, ends (a new id at every sign-in defeats fixation), and so does every expired session.
pub fn start(
    db: &Database,
    digest: &[u8; 32],
    session: &Session,
    replaces: Option<[u8; 32]>,
    policy: SessionPolicy,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    {
        let mut t = tx.open_table(tables::SESSIONS.def())?;
        if let Some(old) = replaces {
            t.remove(old.as_slice())?;
        }
        let mut dead = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            if !policy.live(&tables::SESSIONS.decode(v.value())?, session.created_at) {
                dead.push(k.value().to_vec());
            }
        }
        for k in dead {
            t.remove(k.as_slice())?;
        }
        t.insert(digest.as_slice(), tables::SESSIONS.encode(session)?.as_slice())?;
    }
    audit::append(&tx, entry)?;
    tx.commit()?;
    Ok(())
}

/// The live session under `digest` and its operator, as they are now (a changed role applies at once).
/// Marks the session seen, at most once a minute.
pub fn resolve(
    db: &Database,
    digest: &[u8; 32],
    policy: SessionPolicy,
    now: Timestamp,
) -> Result<Option<(Session, Operator)>, StoreError> {
    let (session, operator) = {
        let tx = db.begin_read()?;
        let t = tx.open_table(tables::SESSIONS.def())?;
        let found = t.get(digest.as_slice())?;
        let Some(session) = found.map(|v| tables::SESSIONS.decode(v.value())).transpose()? else {
            return Ok(None);
        };
        let ops = tx.open_table(tables::OPERATORS.def())?;
        let op = ops.get(session.username.as_str())?.map(|v| tables::OPERATORS.decode(v.value())).transpose()?;
        (session, op)
    };
    let Some(operator) = operator.filter(|op| op.id == session.operator) else { return Ok(None) };
    if !policy.live(&session, now) {
        return Ok(None);
    }
    // Half the idle limit at most, so that a short limit cannot end a session that is in use.
    if now.millis() - session.last_seen_at.millis() >= TOUCH_EVERY_MS.min(policy.idle_ms / 2) {
        let tx = db.begin_write()?;
        {
            let mut t = tx.open_table(tables::SESSIONS.def())?;
            // Only if it still exists: a sign-out may have ended it since it was read.
            if t.get(digest.as_slice())?.is_some() {
                let seen = Session { last_seen_at: now, ..session.clone() };
                t.insert(digest.as_slice(), tables::SESSIONS.encode(&seen)?.as_slice())?;
            }
        }
        tx.commit()?;
    }
    Ok(Some((session, operator)))
}

/// Ends the session under `digest`, with the entry `entry` makes of it; `None` when there was none.
pub fn end(
    db: &Database,
    digest: &[u8; 32],
    entry: impl FnOnce(&Session) -> AuditEntry,
) -> Result<Option<Session>, StoreError> {
    let tx = db.begin_write()?;
    let ended = {
        let mut t = tx.open_table(tables::SESSIONS.def())?;
        t.remove(digest.as_slice())?.map(|v| tables::SESSIONS.decode(v.value())).transpose()?
    };
    if let Some(s) = &ended {
        audit::append(&tx, &entry(s))?;
    }
    tx.commit()?;
    Ok(ended)
}

/// Ends every session of one operator (after a password reset).
pub(super) fn end_all_of(tx: &WriteTransaction, operator: OperatorId) -> Result<(), StoreError> {
    let mut t = tx.open_table(tables::SESSIONS.def())?;
    let mut theirs = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        if tables::SESSIONS.decode(v.value())?.operator == operator {
            theirs.push(k.value().to_vec());
        }
    }
    for k in theirs {
        t.remove(k.as_slice())?;
    }
    Ok(())
}

/// How many sessions are stored, live or not yet swept.
pub fn count(db: &Database) -> Result<u64, StoreError> {
    use redb::ReadableTableMetadata;
    let tx = db.begin_read()?;
    Ok(tx.open_table(tables::SESSIONS.def())?.len()?)
}
