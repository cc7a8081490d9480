//! Operators: the people who sign in to the dashboard. Passwords are kept as salted argon2id digests
//! whose cost comes from configuration (cheap in tests, OWASP's minimum by default).

use crate::domain::access::Operator;
use crate::secrets::{DigestParams, SecretDigest, SecretError};

/// Shorter passwords are refused; longer ones are cut off by nobody (argon2 takes any length up to the cap).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// A cap so that a sign-in form cannot be used to make the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("a username must be 1 to 64 characters of a-z, 0-9, `.`, `_`, `-` or `@`; `{0}` is not")]
    Username(String),
    #[error("a password must be at least {MIN_PASSWORD_CHARS} characters long")]
    PasswordTooShort,
    #[error("a password must be at most {MAX_PASSWORD_BYTES} bytes long")]
    PasswordTooLong,
    #[error(transparent)]
    Digest(#[from] SecretError),
}

/// The canonical form of a username: trimmed and lowercased, so `Alice` and `alice` are one operator.
pub fn username(raw: &str) -> Result<String, CredentialError> {
    let name = raw.trim().to_lowercase();
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b));
    if ok { Ok(name) } else { Err(CredentialError::Username(raw.chars().take(80).collect())) }
}

/// A digest of a new password, after checking its length.
pub fn hash_password(password: &str, params: DigestParams) -> Result<SecretDigest, CredentialError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CredentialError::PasswordTooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CredentialError::PasswordTooShort);
    }
    Ok(SecretDigest::compute(password.as_bytes(), params)?)
}

/// Whether `password` is this operator's. For an unknown username, call it with `None`: the same argon2
/// work is done, so the answer's timing does not tell which usernames exist.
pub fn verify_password(operator: Option<&Operator>, password: &str, params: DigestParams) -> bool {
    let password = &password.as_bytes()[..password.len().min(MAX_PASSWORD_BYTES)];
    match operator {
        Some(op) => op.password.matches(password),
        None => {
            let _ = SecretDigest::compute(password, params);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::domain::access::Role;
    use crate::domain::ids::OperatorId;

    const CHEAP: DigestParams = DigestParams { memory_kib: 64, iterations: 1 };

    #[test]
    fn usernames_are_canonical_and_bounded() {
        assert_eq!(username("  Alice@Example.com ").unwrap(), "alice@example.com");
        for bad in ["", " ", "al ice", "bob/1", "ümlaut", &"a".repeat(65)] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_are_checked_then_hashed() {
        assert!(matches!(hash_password("short", CHEAP), Err(CredentialError::PasswordTooShort)));
        assert!(matches!(hash_password(&"x".repeat(2000), CHEAP), Err(CredentialError::PasswordTooLong)));
        let digest = hash_password("correct horse battery", CHEAP).unwrap();
        let op = Operator {
            id: OperatorId::new(Timestamp(0)),
            username: "alice".into(),
            role: Role::Admin,
            password: digest,
            created_at: Timestamp(0),
            created_by: "cli".into(),
            password_changed_at: Timestamp(0),
        };
        assert!(verify_password(Some(&op), "correct horse battery", CHEAP));
        assert!(!verify_password(Some(&op), "correct horse battery!", CHEAP));
        assert!(!verify_password(None, "correct horse battery", CHEAP));
    }
}
