//! CSRF tokens for the dashboard's forms. A token is an HMAC, under a key derived from the master key, of
//! what the form's session is bound to: the session for a signed-in operator, a random pre-session cookie
//! before sign-in. Nothing is stored, tokens survive restarts, and a token from one session is useless in
//! another.

use base64::Engine as _;
use zeroize::Zeroizing;

/// The form field every unsafe dashboard request must carry.
pub const FIELD: &str = "csrf";
/// The cookie that binds forms shown before sign-in (the sign-in form itself).
pub const PRE_SESSION_COOKIE: &str = "hookplane_csrf";
/// Its name when cookies are `Secure` (see `sessions::COOKIE_SECURE`).
pub const PRE_SESSION_COOKIE_SECURE: &str = "__Host-hookplane_csrf";

#[derive(Clone)]
pub struct CsrfKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(***)")
    }
}

impl CsrfKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(Zeroizing::new(key))
    }

    /// The token for forms bound to `binding`.
    pub fn token(&self, binding: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.mac(binding))
    }

    pub fn verify(&self, binding: &[u8], presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(presented.trim())
            .is_ok_and(|p| bool::from(p.as_slice().ct_eq(&self.mac(binding))))
    }

    fn mac(&self, binding: &[u8]) -> [u8; 32] {
        crate::secrets::hmac_sha256(&self.0[..], &[binding])
    }
}

#[cfg(test)]
mod tests {
    use super::CsrfKey;

    #[test]
    fn tokens_are_bound_to_their_key_and_binding() {
        let key = CsrfKey::new([7; 32]);
        let t = key.token(b"session-a");
        assert!(key.verify(b"session-a", &t));
        assert!(!key.verify(b"session-b", &t));
        assert!(!CsrfKey::new([8; 32]).verify(b"session-a", &t));
        assert!(!key.verify(b"session-a", "") && !key.verify(b"session-a", "not base64!"));
    }
}
