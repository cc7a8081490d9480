//! API tokens: `hp_` and 32 random bytes in base64url, shown once. Only their SHA-256 is stored, and a
//! token is looked up by it: a token has 256 bits of entropy, so a fast digest is enough, and lookups need
//! no per-token salt.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Role;
use crate::domain::Timestamp;
use crate::domain::ids::TokenId;
use crate::secrets::SecretBytes;

pub const PREFIX: &str = "hp_";

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

/// A new random token and its digest.
pub fn generate() -> (SecretBytes, [u8; 32]) {
    super::random_credential(PREFIX)
}

pub fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Whether `presented` has the shape of an API token (so other bearer values skip the lookup).
pub fn looks_like_token(presented: &[u8]) -> bool {
    presented.len() == PREFIX.len() + 43
        && presented.starts_with(PREFIX.as_bytes())
        && presented[PREFIX.len()..].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_prefixed_random_and_looked_up_by_digest() {
        let (a, da) = super::generate();
        let (b, db) = super::generate();
        assert!(super::looks_like_token(a.expose()), "{}", String::from_utf8_lossy(a.expose()));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(super::digest(a.expose()), da);
        assert_ne!(da, db);
        assert!(!super::looks_like_token(b"hp_short") && !super::looks_like_token(b"Bearer nonsense"));
    }
}
