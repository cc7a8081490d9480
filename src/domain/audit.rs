//! The audit log's entries: who did what to which target, when, from where, and what it changed.
//! Entries are only ever appended (invariant 5); secrets appear in them as digests, never as themselves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::ids::AuditId;

/// What was done. The text forms are stable: filters and exports use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    SignIn,
    SignInFailed,
    SignOut,
    OperatorCreated,
    PasswordReset,
    TokenCreated,
    TokenRevoked,
    SubscriptionCreated,
    /// Its destination changed.
    SubscriptionUpdated,
    SecretRotated,
    /// A previous secret's overlap ended and the sweep dropped it.
    SecretPreviousDropped,
    /// An operator asked for a new attempt of a delivery.
    DeliveryReplayed,
    /// A subscription's destination was paused: by an operator, or by `system` when it answered 410.
    DestinationPaused,
    DestinationResumed,
    BulkReplayStarted,
    BulkReplayCancelled,
    /// A browser on this machine opened the setup link, before any operator existed.
    SetupLinkUsed,
    /// Under `serve --demo`: an operator changed how a destination of the demo's processing service answers.
    DemoDestinationChanged,
    /// An operator acknowledged an incident: they are on it, and the sinks are told.
    IncidentAcknowledged,
    /// A subscription's registration at its provider was checked, and repaired where it differed.
    HandshakeRan,
    /// A provider credential (Shopify access token, Zoho OAuth client) was set; only fingerprints recorded.
    CredentialSet,
    CredentialRemoved,
    /// A setting changed in the dashboard (retention), with before and after.
    SettingsChanged,
    /// Payloads were set to be erased: by an operator, or by `system` for a redact webhook.
    ErasureStarted,
    ErasureCancelled,
    /// An erasure ended, with how many payloads it erased.
    ErasureFinished,
    /// A deploy pipeline announced a service's new version.
    DeployAnnounced,
    /// A backup of the whole store was taken through the API.
    BackupTaken,
}

impl AuditAction {
    pub const ALL: [AuditAction; 28] = [
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::SignOut,
        AuditAction::OperatorCreated,
        AuditAction::PasswordReset,
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::SubscriptionCreated,
        AuditAction::SubscriptionUpdated,
        AuditAction::SecretRotated,
        AuditAction::SecretPreviousDropped,
        AuditAction::DeliveryReplayed,
        AuditAction::DestinationPaused,
        AuditAction::DestinationResumed,
        AuditAction::BulkReplayStarted,
        AuditAction::BulkReplayCancelled,
        AuditAction::SetupLinkUsed,
        AuditAction::DemoDestinationChanged,
        AuditAction::IncidentAcknowledged,
        AuditAction::HandshakeRan,
        AuditAction::CredentialSet,
        AuditAction::CredentialRemoved,
        AuditAction::SettingsChanged,
        AuditAction::ErasureStarted,
        AuditAction::ErasureCancelled,
        AuditAction::ErasureFinished,
        AuditAction::DeployAnnounced,
        AuditAction::BackupTaken,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignIn => "sign_in",
            AuditAction::SignInFailed => "sign_in_failed",
            AuditAction::SignOut => "sign_out",
            AuditAction::OperatorCreated => "operator_created",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::TokenCreated => "token_created",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::SubscriptionCreated => "subscription_created",
            AuditAction::SubscriptionUpdated => "subscription_updated",
            AuditAction::SecretRotated => "secret_rotated",
            AuditAction::SecretPreviousDropped => "secret_previous_dropped",
            AuditAction::DeliveryReplayed => "delivery_replayed",
            AuditAction::DestinationPaused => "destination_paused",
            AuditAction::DestinationResumed => "destination_resumed",
            AuditAction::BulkReplayStarted => "bulk_replay_started",
            AuditAction::BulkReplayCancelled => "bulk_replay_cancelled",
            AuditAction::SetupLinkUsed => "setup_link_used",
            AuditAction::DemoDestinationChanged => "demo_destination_changed",
            AuditAction::IncidentAcknowledged => "incident_acknowledged",
            AuditAction::HandshakeRan => "handshake_ran",
            AuditAction::CredentialSet => "credential_set",
            AuditAction::CredentialRemoved => "credential_removed",
            AuditAction::SettingsChanged => "settings_changed",
            AuditAction::ErasureStarted => "erasure_started",
            AuditAction::ErasureCancelled => "erasure_cancelled",
            AuditAction::ErasureFinished => "erasure_finished",
            AuditAction::DeployAnnounced => "deploy_announced",
            AuditAction::BackupTaken => "backup_taken",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
            format!("`{s}` is not an audit action (expected one of {})", known.join(", "))
        })
    }
}

/// One field an action changed. `None` means absent (before a creation, after a removal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    pub fn set(field: &str, after: impl Into<String>) -> Self {
        Self { field: field.to_owned(), before: None, after: Some(after.into()) }
    }

    pub fn changed(field: &str, before: impl Into<String>, after: impl Into<String>) -> Self {
        Self { field: field.to_owned(), before: Some(before.into()), after: Some(after.into()) }
    }
}

/// Who is acting and from where: what every audited change is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub label: String,
    pub client: Option<String>,
}

impl Actor {
    /// Hookplane itself, for what it does on a schedule (dropping a previous secret after its overlap).
    pub fn system() -> Self {
        Self { label: "system".to_owned(), client: None }
    }

    /// The command line, run on the machine itself.
    pub fn cli() -> Self {
        Self { label: "cli".to_owned(), client: None }
    }

    pub fn entry(&self, at: Timestamp, action: AuditAction) -> AuditEntry {
        AuditEntry::new(at, self.label.clone(), action).client(self.client.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: Timestamp,
    /// The principal's label: `operator:alice`, `token:deploy`, `admin-token`, `local`, `cli`, or for a
    /// failed sign-in the name that was tried.
    pub performed_by: String,
    pub action: AuditAction,
    /// The id of what the action was done to: an operator, a token, a subscription, a delivery.
    pub target_id: Option<String>,
    /// The client's address, for actions that came over HTTP.
    pub client: Option<String>,
    pub changes: Vec<Change>,
}

impl AuditEntry {
    pub fn new(at: Timestamp, performed_by: impl Into<String>, action: AuditAction) -> Self {
        Self {
            id: AuditId::new(at),
            at,
            performed_by: performed_by.into(),
            action,
            target_id: None,
            client: None,
            changes: Vec::new(),
        }
    }

    pub fn target(mut self, id: impl ToString) -> Self {
        self.target_id = Some(id.to_string());
        self
    }

    pub fn client(mut self, client: Option<String>) -> Self {
        self.client = client;
        self
    }

    pub fn change(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    #[test]
    fn actions_read_back_from_their_names() {
        for a in AuditAction::ALL {
            assert_eq!(a.as_str().parse::<AuditAction>(), Ok(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert!("delete_everything".parse::<AuditAction>().unwrap_err().contains("sign_in"));
    }
}
