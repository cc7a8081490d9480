//! Who may sign in and with what: roles, operators, their sessions and API tokens, as stored. The rules
//! that make and check credentials are in `auth`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::ids::{OperatorId, TokenId};
use crate::secrets::SecretDigest;

/// What a principal may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything an operator sees: deliveries, payloads, health, subscriptions.
    Viewer,
    /// Also replays deliveries and retries handshakes.
    Operator,
    /// Also manages secrets, retention, subscriptions, operators, tokens and bulk actions.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role (expected viewer, operator or admin)")]
pub struct RoleParseError(String);

impl FromStr for Role {
    type Err = RoleParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| RoleParseError(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub id: OperatorId,
    /// Lowercase, unique; how the operator signs in and how the audit log names them.
    pub username: String,
    pub role: Role,
    pub password: SecretDigest,
    pub created_at: Timestamp,
    pub created_by: String,
    pub password_changed_at: Timestamp,
}

impl Operator {
    pub fn label(&self) -> String {
        operator_label(&self.username)
    }
}

/// How the audit log names an operator.
pub fn operator_label(username: &str) -> String {
    format!("operator:{username}")
}

/// `last_seen_at` is written at most this often, so that reading pages does not cost a write each.
pub const TOUCH_EVERY_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub operator: OperatorId,
    pub username: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The address that signed in, for the audit log and the operator's own list of sessions.
    pub client: Option<String>,
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

impl SessionPolicy {
    pub fn live(&self, s: &Session, now: Timestamp) -> bool {
        now.millis() - s.last_seen_at.millis() < self.idle_ms && now.millis() - s.created_at.millis() < self.absolute_ms
    }
}

/// API tokens are `hp_` and 32 random bytes in base64url, shown once; only their SHA-256 is stored, and a
/// token is looked up by it (256 bits of entropy need no per-token salt).
pub const TOKEN_PREFIX: &str = "hp_";

/// A token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: TokenId,
    /// Unique among tokens that are not revoked; says what the token is for.
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
    /// Who made it, as [`super::Principal::label`] names them.
    pub created_by: String,
    /// Kept after revocation, so the audit log's references to it still resolve.
    pub revoked_at: Option<Timestamp>,
}

/// Whether `presented` has the shape of an API token (so other bearer values skip the lookup).
pub fn looks_like_token(presented: &[u8]) -> bool {
    presented.len() == TOKEN_PREFIX.len() + 43
        && presented.starts_with(TOKEN_PREFIX.as_bytes())
        && presented[TOKEN_PREFIX.len()..].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("Admin".parse::<Role>().is_err() && "root".parse::<Role>().is_err());
    }

    #[test]
    fn tokens_are_prefixed_random_and_looked_up_by_digest() {
        let (a, da) = crate::secrets::random_credential(TOKEN_PREFIX);
        let (b, db) = crate::secrets::random_credential(TOKEN_PREFIX);
        assert!(looks_like_token(a.expose()), "{}", String::from_utf8_lossy(a.expose()));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(crate::secrets::sha256(a.expose()), da);
        assert_ne!(da, db);
        assert!(!looks_like_token(b"hp_short") && !looks_like_token(b"Bearer nonsense"));
    }
}
