//! Who may do what. Roles and principals, and the one place credentials are made and checked: API tokens,
//! operator passwords, sessions, CSRF tokens and sign-in throttling. Handlers never see a credential, only
//! the [`Principal`] the HTTP layer derives from one.

pub mod csrf;
pub mod operators;
pub mod sessions;
pub mod setup;
pub mod throttle;

use serde::Deserialize;

use crate::domain::access::{Role, SessionPolicy, operator_label};
use crate::domain::ids::{OperatorId, TokenId};
use crate::secrets::DigestParams;

/// Who is calling, as established from a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `HOOKPLANE_ADMIN_TOKEN`, for automation and the first start.
    AdminToken,
    /// An API token made by an admin.
    Token { id: TokenId, name: String, role: Role },
    /// An operator signed in to the dashboard.
    Operator { id: OperatorId, username: String, role: Role },
    /// The browser on this machine that opened the start's setup link, before any operator exists
    /// (`dashboard.open_on_loopback`). An operator, never an admin: it cannot make API tokens or change
    /// secrets, so nothing it does outlives the first operator.
    Local,
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::AdminToken => Role::Admin,
            Principal::Local => Role::Operator,
            Principal::Token { role, .. } | Principal::Operator { role, .. } => *role,
        }
    }

    /// How the audit log and the logs name this principal.
    pub fn label(&self) -> String {
        match self {
            Principal::AdminToken => "admin-token".to_owned(),
            Principal::Token { name, .. } => format!("token:{name}"),
            Principal::Operator { username, .. } => operator_label(username),
            Principal::Local => "local".to_owned(),
        }
    }
}

/// The `[auth]` section: password cost, session lifetimes, cookies and sign-in throttling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub password_memory_kib: u32,
    pub password_iterations: u32,
    pub session_idle_minutes: u32,
    pub session_absolute_hours: u32,
    pub secure_cookies: bool,
    pub login_failures_per_account: u32,
    pub login_failures_per_address: u32,
    pub login_window_minutes: u32,
}

impl AuthSettings {
    pub fn password_params(&self) -> DigestParams {
        DigestParams { memory_kib: self.password_memory_kib, iterations: self.password_iterations }
    }

    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle_ms: i64::from(self.session_idle_minutes) * 60_000,
            absolute_ms: i64::from(self.session_absolute_hours) * 3_600_000,
        }
    }

    pub fn throttle_limits(&self) -> throttle::Limits {
        throttle::Limits {
            per_account: self.login_failures_per_account,
            per_address: self.login_failures_per_address,
            window_ms: i64::from(self.login_window_minutes) * 60_000,
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
    pub sessions: SessionPolicy,
    pub passwords: DigestParams,
    /// Cookies marked `Secure` and `__Host-` named (`auth.secure_cookies`).
    pub secure_cookies: bool,
    /// Operators are only made by the command line on a stopped instance, so this is read once at start.
    pub operators_exist: bool,
    /// Until the first operator exists, the setup link lets one browser on this machine in.
    pub setup: setup::LocalSetup,
    /// Password checks running at once. Each costs argon2's memory (19 MiB by default) and a core for tens
    /// of milliseconds; sign-ins beyond these wait their turn, so a flood of them cannot exhaust memory.
    pub verifying: tokio::sync::Semaphore,
}

impl Gate {
    pub fn new(settings: &AuthSettings, csrf_key: [u8; 32], operators_exist: bool, setup: setup::LocalSetup) -> Self {
        Self {
            csrf: csrf::CsrfKey::new(csrf_key),
            throttle: throttle::LoginThrottle::new(settings.throttle_limits()),
            sessions: settings.session_policy(),
            passwords: settings.password_params(),
            secure_cookies: settings.secure_cookies,
            operators_exist,
            setup,
            verifying: tokio::sync::Semaphore::new(PASSWORD_CHECKS_AT_ONCE),
        }
    }
}
