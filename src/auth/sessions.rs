//! Dashboard sessions. The cookie carries 256 random bits; the store keeps only their SHA-256, so a copy
//! of the data directory cannot be used to sign in. A session ends when idle too long, when it reaches its
//! absolute age, or at sign-out; a new one is made at every sign-in, so an id planted before sign-in is
//! worth nothing after it.

use crate::secrets::{SecretBytes, random_credential};

/// The session cookie's name, and the one it takes when cookies are marked `Secure`: browsers only accept
/// a `__Host-` cookie from a secure origin, for the whole host, so no subdomain can plant one.
pub const COOKIE: &str = "hookplane_session";
pub const COOKIE_SECURE: &str = "__Host-hookplane_session";

/// A new session id for the cookie, and its digest for the store.
pub fn new_id() -> (SecretBytes, [u8; 32]) {
    random_credential("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::domain::access::{Session, SessionPolicy};
    use crate::domain::ids::OperatorId;

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
        assert_eq!(crate::secrets::sha256(a.expose()), da);
    }
}
