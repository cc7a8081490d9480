//! Signing secrets at rest: sealed with XChaCha20-Poly1305 under the master key (which lives outside the
//! data directory), and identified by a salted argon2id digest that is safe to show, compare and audit.

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

mod hash;

pub use hash::{destination_key, hmac_sha256, random_credential, sha256, sha256_hex};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key must be 64 hexadecimal characters (32 bytes); got {0} characters")]
    MasterKeyFormat(usize),
    #[error("cannot read the master key file {path}: {source}")]
    MasterKeyFile { path: String, source: std::io::Error },
    #[error("a sealed secret could not be opened: it was sealed under another master key, or the data is damaged")]
    Unseal,
    #[error("argon2 rejected the digest parameters: {0}")]
    Digest(String),
}

/// Secret bytes held in memory: wiped on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The key that seals every stored secret.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let bytes =
            crate::hex::decode(text).filter(|b| b.len() == 32).ok_or(SecretError::MasterKeyFormat(text.len()))?;
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }

    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|source| SecretError::MasterKeyFile { path: path.display().to_string(), source })?,
        );
        Self::from_hex(&text)
    }

    /// A random key: for `--demo` and tests, whose data is thrown away.
    pub fn generate() -> Self {
        Self(Zeroizing::new(rand::random()))
    }

    /// A key for one other purpose (e.g. CSRF tokens), derived so that it is stable across restarts and
    /// reveals nothing of the master key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.0[..], &[b"hookplane key derivation v1/", purpose.as_bytes()])
    }

    /// A salt that is the same at every start for the secret known as `name`, and unguessable without this
    /// key: the digest of a secret that is not stored (it comes from the environment) keeps its fingerprint.
    pub fn stable_salt(&self, name: &str) -> [u8; 16] {
        let key = self.derive(&format!("secret digest salt/{name}"));
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&key[..16]);
        salt
    }

    /// A fingerprint of a credential that needs no salt of its own: a keyed digest, the same for the same
    /// credential under this key and telling nothing of it without the key.
    pub fn fingerprint(&self, credential: &[u8]) -> String {
        fingerprint_of(&hmac_sha256(&self.derive("credential fingerprint"), &[credential]))
    }

    /// The root every destination's signing key is derived from.
    pub fn destination_signing_root(&self) -> [u8; 32] {
        self.derive("destination-signing")
    }

    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0[..])
    }

    /// Seals `plaintext`; `context` (the owner's id) is authenticated, so a sealed value cannot be moved to
    /// another subscription.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Sealed {
        let nonce: [u8; 24] = rand::random();
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        let payload = Payload { msg: plaintext, aad: context.as_bytes() };
        // Encryption only fails for messages beyond 256 GiB, far above any secret's length.
        let ciphertext = cipher.encrypt(XNonce::from_slice(&nonce), payload).unwrap_or_default();
        Sealed { nonce: nonce.to_vec(), ciphertext }
    }

    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<SecretBytes, SecretError> {
        if sealed.nonce.len() != 24 {
            return Err(SecretError::Unseal);
        }
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        let payload = Payload { msg: &sealed.ciphertext, aad: context.as_bytes() };
        cipher
            .decrypt(XNonce::from_slice(&sealed.nonce), payload)
            .map(SecretBytes::new)
            .map_err(|_| SecretError::Unseal)
    }
}

/// Ciphertext of a secret and its nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    #[serde(with = "serde_bytes_vec")]
    pub nonce: Vec<u8>,
    #[serde(with = "serde_bytes_vec")]
    pub ciphertext: Vec<u8>,
}

/// argon2id cost for secret digests. Secrets are high-entropy, so the digest needs salt more than cost;
/// the defaults are still OWASP's minimum so a leaked digest of a weak Zoho token is slow to guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DigestParams {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for DigestParams {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2 }
    }
}

/// A salted argon2id digest of a secret: what the API, the dashboard and the audit log show instead of it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretDigest {
    #[serde(with = "serde_bytes_vec")]
    pub salt: Vec<u8>,
    #[serde(with = "serde_bytes_vec")]
    pub hash: Vec<u8>,
    pub params: DigestParams,
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretDigest({})", self.fingerprint())
    }
}

impl SecretDigest {
    pub fn compute(secret: &[u8], params: DigestParams) -> Result<Self, SecretError> {
        let salt: [u8; 16] = rand::random();
        Self::compute_with_salt(secret, &salt, params)
    }

    /// The digest under a given salt: for a secret that is not stored (it comes from the environment at each
    /// start), whose digest must still come out the same every time so its fingerprint stays the same.
    pub fn compute_with_salt(secret: &[u8], salt: &[u8], params: DigestParams) -> Result<Self, SecretError> {
        let hash = argon2id(secret, salt, params)?;
        Ok(Self { salt: salt.to_vec(), hash, params })
    }

    pub fn matches(&self, secret: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        argon2id(secret, &self.salt, self.params).is_ok_and(|h| bool::from(h.ct_eq(&self.hash)))
    }

    /// A short, stable label for display: the first 6 bytes of the digest in hex, grouped for reading.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.hash)
    }

    /// The full digest in PHC-like form, for the audit log.
    pub fn to_phc(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        format!(
            "$argon2id$v=19$m={},t={},p=1${}${}",
            self.params.memory_kib,
            self.params.iterations,
            b64.encode(&self.salt),
            b64.encode(&self.hash)
        )
    }
}

/// The first 6 bytes of a digest in hex, grouped for reading: `1a2b:3c4d:5e6f`.
fn fingerprint_of(digest: &[u8]) -> String {
    let hex = crate::hex::encode(&digest[..digest.len().min(6)]);
    format!("{}:{}:{}", &hex[0..4], &hex[4..8], &hex[8..])
}

fn argon2id(secret: &[u8], salt: &[u8], p: DigestParams) -> Result<Vec<u8>, SecretError> {
    let params =
        argon2::Params::new(p.memory_kib, p.iterations, 1, Some(32)).map_err(|e| SecretError::Digest(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = vec![0u8; 32];
    argon.hash_password_into(secret, salt, &mut out).map_err(|e| SecretError::Digest(e.to_string()))?;
    Ok(out)
}

/// Byte vectors as MessagePack binary rather than arrays of integers.
mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: DigestParams = DigestParams { memory_kib: 64, iterations: 1 };

    #[test]
    fn sealing_round_trips_and_binds_its_context() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"shpss_secret", "sub_1");
        assert!(!sealed.ciphertext.windows(12).any(|w| w == b"shpss_secret"));
        assert_eq!(key.open(&sealed, "sub_1").unwrap().expose(), b"shpss_secret");
        assert!(matches!(key.open(&sealed, "sub_2"), Err(SecretError::Unseal)));
        assert!(matches!(MasterKey::generate().open(&sealed, "sub_1"), Err(SecretError::Unseal)));
    }

    #[test]
    fn master_keys_parse_from_hex_only() {
        let key = MasterKey::generate();
        assert_eq!(MasterKey::from_hex(&key.to_hex()).unwrap().to_hex(), key.to_hex());
        assert!(matches!(MasterKey::from_hex("abc"), Err(SecretError::MasterKeyFormat(3))));
        assert!(MasterKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{key:?}"), "MasterKey(***)");
    }

    #[test]
    fn digests_are_salted_and_comparable() {
        let a = SecretDigest::compute(b"hush", CHEAP).unwrap();
        let b = SecretDigest::compute(b"hush", CHEAP).unwrap();
        assert_ne!(a.hash, b.hash, "salted");
        assert!(a.matches(b"hush") && !a.matches(b"hush!"));
        assert_eq!(a.fingerprint().len(), 14);
        assert!(a.to_phc().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(format!("{:?}", SecretBytes::new(b"x".to_vec())), "***");
    }

    #[test]
    fn a_stable_salt_gives_the_same_fingerprint_under_the_same_key_only() {
        let key = MasterKey::generate();
        let digest =
            |k: &MasterKey, name| SecretDigest::compute_with_salt(b"hush", &k.stable_salt(name), CHEAP).unwrap();
        assert_eq!(digest(&key, "app").fingerprint(), digest(&key, "app").fingerprint());
        assert_ne!(digest(&key, "app").fingerprint(), digest(&key, "app_previous").fingerprint());
        assert_ne!(digest(&key, "app").fingerprint(), digest(&MasterKey::generate(), "app").fingerprint());
        assert!(digest(&key, "app").matches(b"hush"));
    }
}
