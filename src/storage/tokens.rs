//! API tokens as stored: by the SHA-256 of the token, with name, role and revocation.

use redb::{Database, ReadableDatabase, ReadableTable};

use super::{StoreError, audit, tables};
use crate::domain::Timestamp;
use crate::domain::access::Role;
use crate::domain::access::{ApiToken, TOKEN_PREFIX, looks_like_token};
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::ids::TokenId;
use crate::secrets::SecretBytes;

/// Makes a token named `name` (unique among live tokens) and returns it with the token itself, which is
/// never stored and cannot be shown again.
pub fn create(
    db: &Database,
    name: &str,
    role: Role,
    by: &Actor,
    now: Timestamp,
) -> Result<(ApiToken, SecretBytes), StoreError> {
    let (sent, name) = (name, name.trim());
    if name.is_empty() || sent.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid("a token name must be 1 to 64 printable characters".to_owned()));
    }
    let tx = db.begin_write()?;
    let made = {
        let mut t = tx.open_table(tables::API_TOKENS.def())?;
        for row in t.iter()? {
            let existing = tables::API_TOKENS.decode(row?.1.value())?;
            if existing.revoked_at.is_none() && existing.name == name {
                return Err(StoreError::Conflict(format!(
                    "a token named `{name}` exists; revoke it or pick another name"
                )));
            }
        }
        let (secret, digest) = crate::secrets::random_credential(TOKEN_PREFIX);
        let token = ApiToken {
            id: TokenId::new(now),
            name: name.to_owned(),
            role,
            created_at: now,
            created_by: by.label.clone(),
            revoked_at: None,
        };
        t.insert(digest.as_slice(), tables::API_TOKENS.encode(&token)?.as_slice())?;
        (token, secret)
    };
    let entry = by
        .entry(now, AuditAction::TokenCreated)
        .target(made.0.id)
        .change(Change::set("name", made.0.name.clone()))
        .change(Change::set("role", made.0.role.as_str()));
    audit::append(&tx, &entry)?;
    tx.commit()?;
    Ok(made)
}

/// The live token a presented bearer value names, if any.
pub fn find(db: &Database, presented: &[u8]) -> Result<Option<ApiToken>, StoreError> {
    if !looks_like_token(presented) {
        return Ok(None);
    }
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::API_TOKENS.def())?;
    let found = t.get(crate::secrets::sha256(presented).as_slice())?;
    match found {
        Some(v) => Ok(Some(tables::API_TOKENS.decode(v.value())?).filter(|t: &ApiToken| t.revoked_at.is_none())),
        None => Ok(None),
    }
}

/// Which token to revoke: by name (the command line) or by id (the API and the dashboard, where a name
/// may have been reused since the page was shown).
#[derive(Debug, Clone, Copy)]
pub enum TokenRef<'a> {
    Name(&'a str),
    Id(TokenId),
}

impl TokenRef<'_> {
    fn names(&self, t: &ApiToken) -> bool {
        match self {
            TokenRef::Name(n) => t.name == n.trim(),
            TokenRef::Id(id) => t.id == *id,
        }
    }
}

/// Revokes the live token `which` names; `None` when there is none.
pub fn revoke(db: &Database, which: TokenRef<'_>, by: &Actor, now: Timestamp) -> Result<Option<ApiToken>, StoreError> {
    let tx = db.begin_write()?;
    let revoked = {
        let mut t = tx.open_table(tables::API_TOKENS.def())?;
        let mut hit = None;
        for row in t.iter()? {
            let (k, v) = row?;
            let token = tables::API_TOKENS.decode(v.value())?;
            if token.revoked_at.is_none() && which.names(&token) {
                hit = Some((k.value().to_vec(), token));
                break;
            }
        }
        match hit {
            Some((digest, mut token)) => {
                token.revoked_at = Some(now);
                t.insert(digest.as_slice(), tables::API_TOKENS.encode(&token)?.as_slice())?;
                let entry = by
                    .entry(now, AuditAction::TokenRevoked)
                    .target(token.id)
                    .change(Change::changed("state", "live", "revoked"));
                audit::append(&tx, &entry)?;
                Some(token)
            }
            None => None,
        }
    };
    tx.commit()?;
    Ok(revoked)
}

/// Every token, live and revoked, oldest first.
pub fn list(db: &Database) -> Result<Vec<ApiToken>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::API_TOKENS.def())?;
    let mut all = Vec::new();
    for row in t.iter()? {
        all.push(tables::API_TOKENS.decode(row?.1.value())?);
    }
    all.sort_by_key(|t| t.id);
    Ok(all)
}
