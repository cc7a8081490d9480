//! The audit log and API tokens, as the API takes and answers them.

use poem_openapi::Object;

use super::{ApiRole, time};

/// One field an audited action changed; secrets appear only as digests.
#[derive(Object, Debug, Clone, serde::Serialize)]
pub struct AuditChangeOut {
    pub field: String,
    /// Absent before a creation.
    #[oai(nullable)]
    pub before: Option<String>,
    /// Absent after a removal.
    #[oai(nullable)]
    pub after: Option<String>,
}

/// One entry of the audit log.
#[derive(Object, Debug, Clone, serde::Serialize)]
pub struct AuditEntryOut {
    pub id: String,
    pub at: String,
    /// `operator:<username>`, `token:<name>`, `admin-token`, `local` (a browser on this machine before any
    /// operator existed) or `cli`; for a failed sign-in, the username that was tried.
    pub performed_by: String,
    /// `sign_in`, `sign_in_failed`, `sign_out`, `operator_created`, `password_reset`, `token_created`,
    /// `token_revoked`, `subscription_created`, `subscription_updated`, `secret_rotated`,
    /// `secret_previous_dropped`, `delivery_replayed`, `destination_paused`, `destination_resumed`,
    /// `bulk_replay_started`, `bulk_replay_cancelled`, and the rest `GET /api/v1/audit`'s `action` filter
    /// names; `system` performs what Hookplane does by itself (a redact webhook's erasure, say).
    pub action: String,
    #[oai(nullable)]
    pub target_id: Option<String>,
    /// The client's address, for actions over HTTP.
    #[oai(nullable)]
    pub client: Option<String>,
    pub changes: Vec<AuditChangeOut>,
}

impl From<crate::domain::audit::AuditEntry> for AuditEntryOut {
    fn from(e: crate::domain::audit::AuditEntry) -> Self {
        Self {
            id: e.id.to_string(),
            at: time(e.at),
            performed_by: e.performed_by,
            action: e.action.as_str().to_owned(),
            target_id: e.target_id,
            client: e.client,
            changes: e
                .changes
                .into_iter()
                .map(|c| AuditChangeOut { field: c.field, before: c.before, after: c.after })
                .collect(),
        }
    }
}

#[derive(Object, Debug, Clone)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditEntryOut>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// An API token as listed: never the token itself, which is shown once when it is made.
#[derive(Object, Debug, Clone)]
pub struct TokenOut {
    /// `tok_…`.
    pub id: String,
    pub name: String,
    pub role: ApiRole,
    pub created_at: String,
    /// Who made it, as the audit log names them.
    pub created_by: String,
    /// Absent while the token is live.
    #[oai(nullable)]
    pub revoked_at: Option<String>,
}

impl From<crate::domain::access::ApiToken> for TokenOut {
    fn from(t: crate::domain::access::ApiToken) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            role: t.role.into(),
            created_at: time(t.created_at),
            created_by: t.created_by,
            revoked_at: t.revoked_at.map(time),
        }
    }
}

#[derive(Object, Debug, Clone)]
pub struct TokenIn {
    /// What the token is for, 1 to 64 printable characters; unique among live tokens.
    pub name: String,
    pub role: ApiRole,
}

#[derive(Object, Debug, Clone)]
pub struct TokenCreated {
    pub token: TokenOut,
    /// The bearer token: `hp_` and 43 characters. Shown this once only; Hookplane keeps its SHA-256.
    pub secret: String,
}

/// The filters as they arrive in a query string, shared by the API and the dashboard's audit page.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct AuditParams {
    pub action: Option<String>,
    pub performed_by: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}
