//! The digests and MACs everything else builds on: SHA-256 of bodies and credentials, HMAC-SHA256 for
//! provider signatures, CSRF tokens and key derivation, and random credentials stored only as a digest.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::SecretBytes;

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The lower-case hex SHA-256 a delivery's body is checked against.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::hex::encode(&sha256(bytes))
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The key Hookplane signs forwarded deliveries of one subscription with, derived from the master key's
/// destination-signing root so nothing more is stored. Receivers verify with it as a `whsec_` secret.
pub fn destination_key(root: &[u8; 32], subscription: &str) -> [u8; 32] {
    hmac_sha256(root, &[subscription.as_bytes()])
}

/// `prefix` and 32 random bytes in base64url, and the SHA-256 under which it is stored.
pub fn random_credential(prefix: &str) -> (SecretBytes, [u8; 32]) {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    let value = format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let digest = sha256(value.as_bytes());
    (SecretBytes::new(value.into_bytes()), digest)
}
