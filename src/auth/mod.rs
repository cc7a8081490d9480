//! Who may do what. Roles and principals, and the one place credentials are made and checked: API tokens,
//! operator passwords, sessions, CSRF tokens and sign-in throttling. Handlers never see a credential, only
//! the [`Principal`] the HTTP layer derives from one.

pub mod csrf;
pub mod operators;
pub mod sessions;
pub mod throttle;
pub mod tokens;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::ids::{OperatorId, TokenId};
use crate::secrets::{DigestParams, SecretBytes};

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

/// Who is calling, as established from a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `HOOKPLANE_ADMIN_TOKEN`, for automation and the first start.
    AdminToken,
    /// An API token made by an admin.
    Token { id: TokenId, name: String, role: Role },
    /// An operator signed in to the dashboard.
    Operator { id: OperatorId, username: String, role: Role },
    /// A browser on this machine, before any operator exists (`dashboard.open_on_loopback`).
    Local,
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::AdminToken | Principal::Local => Role::Admin,
            Principal::Token { role, .. } | Principal::Operator { role, .. } => *role,
        }
    }

    /// How the audit log and the logs name this principal.
    pub fn label(&self) -> String {
        match self {
            Principal::AdminToken => "admin-token".to_owned(),
            Principal::Token { name, .. } => format!("token:{name}"),
            Principal::Operator { username, .. } => operators::label(username),
            Principal::Local => "local".to_owned(),
        }
    }
}

/// One password check per core of the 2-core machines Hookplane is sized for.
const PASSWORD_CHECKS_AT_ONCE: usize = 2;

/// What the HTTP layer needs to check credentials, shared by every request.
#[derive(Debug)]
pub struct Gate {
    pub csrf: csrf::CsrfKey,
    pub throttle: throttle::LoginThrottle,
    pub sessions: sessions::SessionPolicy,
    pub passwords: DigestParams,
    /// Cookies marked `Secure` and `__Host-` named (`auth.secure_cookies`).
    pub secure_cookies: bool,
    /// Until the first operator exists, browsers on this machine may use the dashboard without signing in.
    /// Operators are only made by the command line on a stopped instance, so this is read once at start.
    pub operators_exist: bool,
    /// Password checks running at once. Each costs argon2's memory (19 MiB by default) and a core for tens
    /// of milliseconds; sign-ins beyond these wait their turn, so a flood of them cannot exhaust memory.
    pub verifying: tokio::sync::Semaphore,
}

impl Gate {
    pub fn new(settings: &crate::config::AuthSettings, csrf_key: [u8; 32], operators_exist: bool) -> Self {
        Self {
            csrf: csrf::CsrfKey::new(csrf_key),
            throttle: throttle::LoginThrottle::new(settings.throttle_limits()),
            sessions: settings.session_policy(),
            passwords: settings.password_params(),
            secure_cookies: settings.secure_cookies,
            operators_exist,
            verifying: tokio::sync::Semaphore::new(PASSWORD_CHECKS_AT_ONCE),
        }
    }
}

/// `prefix` and 32 random bytes in base64url, and the SHA-256 under which it is stored.
pub fn random_credential(prefix: &str) -> (SecretBytes, [u8; 32]) {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    let value = format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let digest = tokens::digest(value.as_bytes());
    (SecretBytes::new(value.into_bytes()), digest)
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("Admin".parse::<Role>().is_err() && "root".parse::<Role>().is_err());
    }
}
