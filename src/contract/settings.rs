//! The settings page and `GET /api/v1/settings`: retention and its overrides, the integrations' credentials
//! by fingerprint, the alert sinks, the version.

use poem_openapi::Object;

use super::{CredentialOut, SecretOut};

#[derive(Object, Debug, Clone)]
pub struct SettingsOut {
    /// Hookplane's version and the commit it was built from.
    pub version: String,
    pub git_sha: String,
    pub retention: RetentionSettingsOut,
    /// Shopify's app secret (and its previous one during a rotation), from the environment.
    pub shopify_app_secrets: Vec<SecretOut>,
    /// Provider credentials the handshakes sign in with.
    pub credentials: Vec<CredentialOut>,
    /// Where incidents are told.
    pub alert_sinks: Vec<AlertSinkOut>,
    /// Each forwarding subscription's destination with its deploy history and drift warnings.
    pub destinations: Vec<super::DestinationVersionsOut>,
    /// `drift.grace_minutes`: how long a deploy may roll out before the drift warnings hold.
    pub drift_grace_minutes: u32,
}

#[derive(Object, Debug, Clone)]
pub struct RetentionSettingsOut {
    /// Days deliveries are kept, for subscriptions without their own.
    pub days: u32,
    /// `default`, `dashboard` (set on this page), or `configuration` (the file or the environment).
    pub source: String,
    /// Where the configuration sets it, when it does; the page cannot change it then.
    #[oai(nullable)]
    pub set_in: Option<String>,
    /// Body bytes received over the last 24 hours by subscriptions without their own retention, before
    /// compression: what a day of retention costs them.
    pub bytes_per_day: u64,
    /// Subscriptions with a retention of their own.
    pub overrides: Vec<RetentionOverrideOut>,
}

#[derive(Object, Debug, Clone)]
pub struct RetentionOverrideOut {
    pub subscription_id: String,
    pub name: String,
    pub days: u32,
}

#[derive(Object, Debug, Clone)]
pub struct AlertSinkOut {
    /// `pagerduty`, `betterstack` or `webhook`.
    pub kind: String,
    pub target: String,
}

/// A new retention for subscriptions without their own.
#[derive(Object, Debug, Clone)]
#[oai(deny_unknown_fields)]
pub struct RetentionChangeIn {
    /// 1 to 30 days.
    pub days: u32,
    /// Must be `true`: payloads hold customers' personal data, and a longer retention costs disk; the
    /// settings page states both before asking.
    pub confirm: bool,
}
