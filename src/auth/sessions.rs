//! Dashboard sessions. The cookie carries 256 random bits; the store keeps only their SHA-256, so a copy
//! of the data directory cannot be used to sign in. A session ends when idle too long, when it reaches its
//! absolute age, or at sign-out; a new one is made at every sign-in, so an id planted before sign-in is
//! worth nothing after it.

use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;
use crate::domain::ids::OperatorId;
use crate::secrets::SecretBytes;

/// The session cookie's name, and the one it takes when cookies are marked `Secure`: browsers only accept
/// a `__Host-` cookie from a secure origin, for the whole host, so no subdomain can plant one.
pub const COOKIE: &str = "hookplane_session";
pub const COOKIE_SECURE: &str = "__Host-hookplane_session";

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

/// A new session id for the cookie, and its digest for the store.
pub fn new_id() -> (SecretBytes, [u8; 32]) {
    super::random_credential("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_or_old() {
        let policy = SessionPolicy { idle_ms: 1_000, absolute_ms: 10_000 };
        let s = |created, seen| Session {
            operator: OperatorId::new(Timestamp(0)),
            username: "a".into(),
            created_at: Timestamp(created),
            last_seen_at: Timestamp(seen),
            client: None,
        };
        assert!(policy.live(&s(0, 0), Timestamp(999)));
        assert!(!policy.live(&s(0, 0), Timestamp(1_000)), "idle");
        assert!(policy.live(&s(0, 9_500), Timestamp(9_999)));
        assert!(!policy.live(&s(0, 9_500), Timestamp(10_000)), "absolute");
        let (a, da) = new_id();
        let (b, _) = new_id();
        assert_ne!(a, b);
        assert_eq!(super::super::tokens::digest(a.expose()), da);
    }
}
