//! Handshakes and provider credentials as the API takes and answers them.

use poem_openapi::{Enum, Object};

use super::time;
use crate::domain::handshake::{FailureKind, HandshakeFailure, HandshakeRun, HandshakeState, RunOutcome};

/// What a handshake found.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum HandshakeOutcome {
    /// The provider has the registration as it should be.
    Verified,
    /// It was missing or different, and was created, updated or refreshed.
    Repaired,
    Failed,
}

impl From<RunOutcome> for HandshakeOutcome {
    fn from(o: RunOutcome) -> Self {
        match o {
            RunOutcome::Verified => Self::Verified,
            RunOutcome::Repaired => Self::Repaired,
            RunOutcome::Failed => Self::Failed,
        }
    }
}

/// Why a handshake failed.
#[derive(Object, Debug, Clone)]
pub struct HandshakeFailureOut {
    /// Stable: `unauthorized`, `shop_frozen`, `shop_locked`, `forbidden`, `not_found`, `user_errors`,
    /// `graphql_errors`, `throttled`, `network`, `provider_unavailable`, `provider_error`, `malformed_answer`,
    /// `oauth_refused`, `zoho_refused`, `token_missing`, `token_too_long`, `credential_unreadable`.
    pub code: String,
    pub message: String,
    /// The provider's own words, when it answered.
    #[oai(nullable)]
    pub provider_said: Option<String>,
    /// Whether the next run may succeed by itself (no answer, a server error, throttling); otherwise
    /// someone must act first.
    pub transient: bool,
}

impl From<&HandshakeFailure> for HandshakeFailureOut {
    fn from(f: &HandshakeFailure) -> Self {
        Self {
            code: f.code.clone(),
            message: f.message.clone(),
            provider_said: f.provider_said.clone(),
            transient: f.kind == FailureKind::Transient,
        }
    }
}

/// One handshake of one subscription with its provider.
#[derive(Object, Debug, Clone)]
pub struct HandshakeOut {
    /// `hsk_…`.
    pub id: String,
    pub subscription_id: String,
    pub at: String,
    /// Who asked: an operator, a token, or `system` for the watchdog.
    pub by: String,
    pub outcome: HandshakeOutcome,
    /// What was looked at, in order.
    pub checked: Vec<String>,
    /// What was created, updated or refreshed at the provider.
    pub repaired: Vec<String>,
    #[oai(nullable)]
    pub failure: Option<HandshakeFailureOut>,
    /// Registrations the provider has for this account that no subscription here owns: reported, never
    /// deleted.
    pub unknown: Vec<String>,
    /// Shopify's `gid://shopify/WebhookSubscription/…`, or the Zoho channel id.
    #[oai(nullable)]
    pub provider_id: Option<String>,
    /// When the Zoho channel expires unless refreshed.
    #[oai(nullable)]
    pub expires_at: Option<String>,
}

impl From<&HandshakeRun> for HandshakeOut {
    fn from(r: &HandshakeRun) -> Self {
        Self {
            id: r.id.to_string(),
            subscription_id: r.subscription_id.to_string(),
            at: time(r.at),
            by: r.by.clone(),
            outcome: r.outcome.into(),
            checked: r.checked.clone(),
            repaired: r.repaired.clone(),
            failure: r.failure.as_ref().map(HandshakeFailureOut::from),
            unknown: r.unknown.clone(),
            provider_id: r.registration.provider_id.clone(),
            expires_at: r.registration.expires_at.map(time),
        }
    }
}

/// Where a subscription's handshakes stand.
#[derive(Object, Debug, Clone)]
pub struct HandshakeStateOut {
    pub last_run_at: String,
    pub last_outcome: HandshakeOutcome,
    #[oai(nullable)]
    pub last_verified_at: Option<String>,
    /// When the watchdog runs it again.
    pub next_at: String,
    #[oai(nullable)]
    pub provider_id: Option<String>,
    #[oai(nullable)]
    pub expires_at: Option<String>,
    /// The last run's failure; absent once a run succeeds.
    #[oai(nullable)]
    pub failure: Option<HandshakeFailureOut>,
    /// Transient failures since the last success (three in a row make `handshake_failed`).
    pub transient_failures: u32,
}

impl From<&HandshakeState> for HandshakeStateOut {
    fn from(s: &HandshakeState) -> Self {
        Self {
            last_run_at: time(s.last_run_at),
            last_outcome: s.last_outcome.into(),
            last_verified_at: s.last_verified_at.map(time),
            next_at: time(s.next_at),
            provider_id: s.registration.provider_id.clone(),
            expires_at: s.registration.expires_at.map(time),
            failure: s.failure.as_ref().map(HandshakeFailureOut::from),
            transient_failures: s.transient_failures,
        }
    }
}

/// Every run `POST /api/v1/handshakes` made.
#[derive(Object, Debug, Clone)]
pub struct HandshakesOut {
    pub runs: Vec<HandshakeOut>,
    /// Accounts that were not run, each with why: `shopify/{shop}: no Admin API access token …`.
    pub skipped: Vec<String>,
}

/// A provider credential as operators see it: never the secret, only its fingerprint.
#[derive(Object, Debug, Clone)]
pub struct CredentialOut {
    /// `shopify` or `zoho`.
    pub provider: String,
    /// The shop domain or Zoho organisation; `*` for `SHOPIFY_ADMIN_ACCESS_TOKEN`, which serves every shop
    /// without a token of its own.
    pub account: String,
    /// A keyed digest of the secret parts.
    pub fingerprint: String,
    /// Zoho only.
    #[oai(nullable)]
    pub data_centre: Option<String>,
    /// Absent for the environment's token.
    #[oai(nullable)]
    pub set_at: Option<String>,
    #[oai(nullable)]
    pub set_by: Option<String>,
}

/// A shop's Admin API access token (`shpat_…`), from a custom app or the app's OAuth.
#[derive(Object, Debug)]
pub struct ShopifyCredentialIn {
    #[oai(write_only)]
    pub access_token: String,
}

/// What Zoho's OAuth needs to mint access tokens for an organisation: a self client (or server-based
/// client) with the scope `ZohoCRM.notifications.ALL`, and a refresh token it issued.
#[derive(Object, Debug)]
pub struct ZohoCredentialIn {
    #[oai(write_only)]
    pub client_id: String,
    #[oai(write_only)]
    pub client_secret: String,
    #[oai(write_only)]
    pub refresh_token: String,
    /// `com`, `eu`, `in`, `com.au`, `jp`, `ca`, `sa`, `uk` or `com.cn`; `com` when absent.
    #[oai(nullable)]
    pub data_centre: Option<String>,
}
