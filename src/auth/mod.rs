//! Who may do what. Roles and principals, and the one place credentials are made and checked: API tokens
//! here, operator passwords and sessions as they come. Handlers never see a credential, only the
//! [`Principal`] the HTTP layer's security schemes derive from one.

pub mod tokens;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::ids::TokenId;

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
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::AdminToken => Role::Admin,
            Principal::Token { role, .. } => *role,
        }
    }

    /// How the audit log and the logs name this principal.
    pub fn label(&self) -> String {
        match self {
            Principal::AdminToken => "admin-token".to_owned(),
            Principal::Token { name, .. } => format!("token:{name}"),
        }
    }
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
