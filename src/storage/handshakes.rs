//! Handshake runs and states, and the provider credentials they sign in with. Each run is written with
//! its subscription's new state and its audit entry in one transaction.

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use super::{StoreError, audit, tables};
use crate::domain::audit::AuditEntry;
use crate::domain::credential::{Provider, StoredCredential};
use crate::domain::handshake::{HandshakeRun, HandshakeState};
use crate::domain::{SubscriptionId, Timestamp};

/// Runs kept per subscription: its panel's timeline, and enough to see a pattern in.
pub const KEPT_RUNS: usize = 50;

/// Records `run`, the state it leaves and its audit entry; drops the subscription's runs beyond
/// [`KEPT_RUNS`].
pub fn record(db: &Database, run: &HandshakeRun, state: &HandshakeState, entry: &AuditEntry) -> Result<(), StoreError> {
    let sub = run.subscription_id.as_u128();
    let tx = db.begin_write()?;
    {
        let mut runs = tx.open_table(tables::HANDSHAKE_RUNS.def())?;
        runs.insert((sub, run.id.as_u128()), tables::HANDSHAKE_RUNS.encode(run)?.as_slice())?;
        let mut old = Vec::new();
        for row in runs.range((sub, 0)..=(sub, u128::MAX))?.rev().skip(KEPT_RUNS) {
            old.push(row?.0.value());
        }
        for key in old {
            runs.remove(key)?;
        }
        let mut states = tx.open_table(tables::HANDSHAKE_STATES.def())?;
        states.insert(sub, tables::HANDSHAKE_STATES.encode(state)?.as_slice())?;
    }
    audit::append(&tx, entry)?;
    tx.commit()?;
    Ok(())
}

/// Makes the handshakes of `ids` due at `at` (those that ran before; the others are due already).
fn due_in(tx: &WriteTransaction, ids: &[SubscriptionId], at: Timestamp) -> Result<(), StoreError> {
    let mut states = tx.open_table(tables::HANDSHAKE_STATES.def())?;
    for id in ids {
        let found = states.get(id.as_u128())?.map(|v| tables::HANDSHAKE_STATES.decode(v.value())).transpose()?;
        if let Some(mut state) = found.filter(|s| s.next_at > at) {
            state.next_at = at;
            states.insert(id.as_u128(), tables::HANDSHAKE_STATES.encode(&state)?.as_slice())?;
        }
    }
    Ok(())
}

/// Makes the handshakes of `ids` due at `at`.
pub fn make_due(db: &Database, ids: &[SubscriptionId], at: Timestamp) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    due_in(&tx, ids, at)?;
    tx.commit()?;
    Ok(())
}

pub fn state_in(tx: &ReadTransaction, id: SubscriptionId) -> Result<Option<HandshakeState>, StoreError> {
    let t = tx.open_table(tables::HANDSHAKE_STATES.def())?;
    let row = t.get(id.as_u128())?;
    row.map(|v| tables::HANDSHAKE_STATES.decode(v.value())).transpose()
}

pub fn state(db: &Database, id: SubscriptionId) -> Result<Option<HandshakeState>, StoreError> {
    state_in(&db.begin_read()?, id)
}

/// Every subscription's state.
pub fn states(db: &Database) -> Result<Vec<HandshakeState>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::HANDSHAKE_STATES.def())?;
    let mut out = Vec::new();
    for row in t.iter()? {
        out.push(tables::HANDSHAKE_STATES.decode(row?.1.value())?);
    }
    Ok(out)
}

/// A subscription's newest runs, newest first.
pub fn runs_in(tx: &ReadTransaction, id: SubscriptionId, limit: usize) -> Result<Vec<HandshakeRun>, StoreError> {
    let sub = id.as_u128();
    let t = tx.open_table(tables::HANDSHAKE_RUNS.def())?;
    let mut out = Vec::new();
    for row in t.range((sub, 0)..=(sub, u128::MAX))?.rev().take(limit) {
        out.push(tables::HANDSHAKE_RUNS.decode(row?.1.value())?);
    }
    Ok(out)
}

/// Stores `credential` in place of the one for its provider and account, with its audit entry (built from
/// the one it replaces, read in the same transaction), and makes the handshakes of the subscriptions `due`
/// (those of the account) due now; returns the one it replaced.
pub fn put_credential(
    db: &Database,
    credential: &StoredCredential,
    entry: impl FnOnce(Option<&StoredCredential>) -> AuditEntry,
    due: &[SubscriptionId],
) -> Result<Option<StoredCredential>, StoreError> {
    let key = StoredCredential::key(credential.provider, &credential.account);
    let tx = db.begin_write()?;
    let before = {
        let mut t = tx.open_table(tables::CREDENTIALS.def())?;
        let before = t.get(key.as_str())?.map(|v| tables::CREDENTIALS.decode(v.value())).transpose()?;
        t.insert(key.as_str(), tables::CREDENTIALS.encode(credential)?.as_slice())?;
        before
    };
    due_in(&tx, due, credential.set_at)?;
    audit::append(&tx, &entry(before.as_ref()))?;
    tx.commit()?;
    Ok(before)
}

pub fn credential(db: &Database, provider: Provider, account: &str) -> Result<Option<StoredCredential>, StoreError> {
    let key = StoredCredential::key(provider, account);
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::CREDENTIALS.def())?;
    let row = t.get(key.as_str())?;
    row.map(|v| tables::CREDENTIALS.decode(v.value())).transpose()
}

/// Every stored credential, by provider and account.
pub fn credentials(db: &impl ReadableDatabase) -> Result<Vec<StoredCredential>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::CREDENTIALS.def())?;
    let mut out = Vec::new();
    for row in t.iter()? {
        out.push(tables::CREDENTIALS.decode(row?.1.value())?);
    }
    Ok(out)
}

/// Removes a credential, with its audit entry (built from the removed one); `None` when there was none.
pub fn remove_credential(
    db: &Database,
    provider: Provider,
    account: &str,
    entry: impl FnOnce(&StoredCredential) -> AuditEntry,
) -> Result<Option<StoredCredential>, StoreError> {
    let key = StoredCredential::key(provider, account);
    let tx = db.begin_write()?;
    let removed = {
        let mut t = tx.open_table(tables::CREDENTIALS.def())?;
        t.remove(key.as_str())?.map(|v| tables::CREDENTIALS.decode(v.value())).transpose()?
    };
    match &removed {
        Some(r) => {
            audit::append(&tx, &entry(r))?;
            tx.commit()?;
        }
        None => tx.abort()?,
    }
    Ok(removed)
}
