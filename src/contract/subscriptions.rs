//! Subscriptions, their secrets and destinations, as the API takes and answers them.

use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;

use super::{HandshakeOut, HandshakeStateOut, HealthOut, Source, SubscriptionOrigin, SubscriptionStatus, time};
use crate::domain::Subscription;
use crate::domain::subscription::{Destination, ZohoAuth};
use crate::ingest::registry::HeldSecret;

/// A secret as operators see it: never the secret, only its fingerprint and lifetime.
#[derive(Object, Debug, Clone)]
pub struct SecretOut {
    /// `current`, `previous` (still accepted during a rotation overlap), `app` or `app_previous` (the
    /// Shopify app's client secret from the environment).
    pub slot: String,
    /// From the salted argon2id digest of the secret.
    pub fingerprint: String,
    #[oai(nullable)]
    pub created_at: Option<String>,
    /// When a previous secret stops being accepted.
    #[oai(nullable)]
    pub expires_at: Option<String>,
}

impl From<&HeldSecret> for SecretOut {
    fn from(h: &HeldSecret) -> Self {
        Self {
            slot: h.label.to_owned(),
            fingerprint: h.fingerprint.clone(),
            created_at: h.created_at.map(time),
            expires_at: h.expires_at.map(time),
        }
    }
}

/// A provider-side registration that sends us events.
#[derive(Object, Debug, Clone)]
pub struct SubscriptionOut {
    /// `sub_…`.
    pub id: String,
    /// Unique and URL-safe; usable in place of the id in ingest URLs.
    pub name: String,
    pub source: Source,
    pub topic: String,
    pub account: String,
    pub status: SubscriptionStatus,
    pub origin: SubscriptionOrigin,
    /// Where the provider must send this subscription's webhooks.
    pub callback_url: String,
    /// The processing service's URL; absent means `store` (keep only, consumers pull through the API).
    #[oai(nullable)]
    pub destination_url: Option<String>,
    /// The destination's own attempt timeout, when it has one.
    #[oai(nullable)]
    pub destination_timeout_seconds: Option<u32>,
    /// The destination's own limit of attempts at once, when it has one.
    #[oai(nullable)]
    pub destination_concurrency: Option<u32>,
    /// Headers sent with every attempt.
    pub destination_headers: std::collections::BTreeMap<String, String>,
    /// Zoho only: `channel`, `token` or `signature`.
    #[oai(nullable)]
    pub zoho_auth: Option<String>,
    #[oai(nullable)]
    pub channel_id: Option<String>,
    #[oai(nullable)]
    pub token_header: Option<String>,
    #[oai(nullable)]
    pub dedupe_header: Option<String>,
    /// The secrets requests are verified with.
    pub secrets: Vec<SecretOut>,
    pub created_at: String,
    pub updated_at: String,
    #[oai(nullable)]
    pub last_verified_at: Option<String>,
    pub consecutive_failures: u32,
    /// Present in lists and the dashboard: figures from the rollups as of the response.
    #[oai(nullable)]
    pub health: Option<HealthOut>,
    /// Days its deliveries are kept, when it has its own retention; absent: `retention.days`.
    #[oai(nullable)]
    pub retention_days: Option<u32>,
    /// Why this subscription has no handshake, when it has none (a workflow webhook, a Standard Webhooks
    /// sender, a discovered or `*` subscription).
    #[oai(nullable)]
    pub handshake_unavailable: Option<String>,
    /// Where its handshakes stand, once one ran.
    #[oai(nullable)]
    pub handshake: Option<HandshakeStateOut>,
    /// Its newest handshakes, newest first (in lists and the dashboard).
    pub handshake_runs: Vec<HandshakeOut>,
}

impl SubscriptionOut {
    pub fn new(s: Subscription, secrets: &[HeldSecret], public_url: &str) -> Self {
        let (zoho_auth, channel_id, token_header) = match &s.zoho {
            None => (None, None, None),
            Some(ZohoAuth::Channel { channel_id }) => (Some("channel"), Some(channel_id.clone()), None),
            Some(ZohoAuth::Token { header }) => (Some("token"), None, Some(header.clone())),
            Some(ZohoAuth::Signature) => (Some("signature"), None, None),
        };
        let handshake_unavailable = crate::domain::handshake::Kind::of(&s).err().map(str::to_owned);
        Self {
            retention_days: s.retention_days,
            handshake_unavailable,
            handshake: None,
            handshake_runs: Vec::new(),
            callback_url: format!("{public_url}{}", crate::contract::paths::callback_path(&s)),
            id: s.id.to_string(),
            name: s.name,
            source: s.source.into(),
            topic: s.topic,
            account: s.account,
            status: s.status.into(),
            origin: s.origin.into(),
            destination_url: s.destination.url().map(str::to_owned),
            destination_timeout_seconds: match &s.destination {
                Destination::Http { timeout_seconds, .. } => *timeout_seconds,
                Destination::Store => None,
            },
            destination_concurrency: match &s.destination {
                Destination::Http { concurrency, .. } => *concurrency,
                Destination::Store => None,
            },
            destination_headers: match s.destination {
                Destination::Http { headers, .. } => headers.into_iter().collect(),
                Destination::Store => Default::default(),
            },
            zoho_auth: zoho_auth.map(str::to_owned),
            channel_id,
            token_header,
            dedupe_header: s.dedupe_header,
            secrets: secrets.iter().map(SecretOut::from).collect(),
            created_at: time(s.created_at),
            updated_at: time(s.updated_at),
            last_verified_at: s.last_verified_at.map(time),
            consecutive_failures: s.consecutive_failures,
            health: None,
        }
    }

    /// With its health and handshakes, as the read model has them.
    pub fn with(self, s: &crate::loader::SubscriptionHealth) -> Self {
        Self {
            health: Some(HealthOut::from(&s.health)),
            handshake: s.handshake.as_ref().map(HandshakeStateOut::from),
            handshake_runs: s.handshake_runs.iter().map(HandshakeOut::from).collect(),
            ..self
        }
    }
}

/// A subscription to create. For a Shopify shop and topic that is already `discovered`, the discovered
/// subscription is adopted instead.
#[derive(Object, Clone)]
#[oai(deny_unknown_fields)]
pub struct SubscriptionIn {
    pub source: Source,
    /// `orders/create`, `Leads.all`, `invoice.paid`, …
    pub topic: String,
    /// Shop domain (`example.myshopify.com`, or `*` for every shop), Zoho org, or the sender's name.
    pub account: String,
    /// 1–64 characters from a-z, 0-9, `-`, `_`. Generated when absent.
    #[oai(nullable)]
    pub name: Option<String>,
    /// The processing service's URL; absent or null keeps deliveries in `store`.
    #[oai(nullable)]
    pub destination_url: Option<String>,
    /// Seconds an attempt may take; `delivery.timeout_seconds` from the configuration when absent.
    #[oai(nullable)]
    pub destination_timeout_seconds: Option<u32>,
    /// At most this many attempts at once towards the destination (1–256); the configured default when absent.
    #[oai(nullable)]
    pub destination_concurrency: Option<u32>,
    /// Headers sent with every attempt (at most 20), in place of a provider header of the same name. Not for
    /// credentials: they are stored and shown as given; the receiver authenticates Hookplane by its signature.
    #[oai(nullable)]
    pub destination_headers: Option<std::collections::BTreeMap<String, String>>,
    /// The signing secret or token. Required for zoho; optional for shopify (the app secret from the
    /// environment applies to every subscription); for standard, generated and returned once when absent.
    #[oai(write_only)]
    #[oai(nullable)]
    pub secret: Option<String>,
    /// Zoho CRM notification channel id (the token is then echoed in each notification body).
    #[oai(nullable)]
    pub channel_id: Option<String>,
    /// Zoho workflow webhooks: `token` (default) or `signature`.
    #[oai(nullable)]
    pub auth: Option<String>,
    /// Zoho workflow webhooks: the header carrying the token (default from configuration: `Authorization`).
    #[oai(nullable)]
    pub token_header: Option<String>,
    /// A request header holding a per-delivery id, for senders without a standard one.
    #[oai(nullable)]
    pub dedupe_header: Option<String>,
}

/// Everything but the secret, which must never reach a log.
impl std::fmt::Debug for SubscriptionIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionIn")
            .field("source", &self.source)
            .field("topic", &self.topic)
            .field("account", &self.account)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A new secret for a subscription, typed twice so that a typo cannot lock the provider out.
#[derive(Object, Clone)]
pub struct RotateSecretIn {
    /// The new secret: the Shopify webhook secret, the Zoho token or key, or a `whsec_` secret.
    #[oai(write_only)]
    pub secret: String,
    /// The same secret again.
    #[oai(write_only)]
    pub secret_confirmation: String,
    /// How long the replaced secret stays accepted, 1 to 720 hours (default `secrets.rotation_overlap_hours`,
    /// 24).
    #[oai(nullable)]
    pub overlap_hours: Option<u32>,
}

impl std::fmt::Debug for RotateSecretIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotateSecretIn").field("overlap_hours", &self.overlap_hours).finish_non_exhaustive()
    }
}

#[derive(Object, Debug, Clone)]
pub struct SecretRotated {
    /// The subscription, with the new secret as `current` and the replaced one as `previous`.
    pub subscription: SubscriptionOut,
    /// When the replaced secret stops being accepted.
    pub previous_expires_at: String,
    /// What to do on the provider's side now.
    pub reminder: String,
}

#[derive(Object, Debug, Clone)]
pub struct SubscriptionCreated {
    pub subscription: SubscriptionOut,
    /// A discovered subscription was adopted rather than a new one created.
    pub adopted: bool,
    /// The secret Hookplane generated because none was given. Shown this once only.
    #[oai(nullable)]
    pub generated_secret: Option<String>,
}

/// A subscription after its destination was paused, resumed or changed.
#[derive(Object, Debug, Clone)]
pub struct DestinationStateOut {
    pub subscription: SubscriptionOut,
    /// How many held deliveries were released, oldest first: by a resume, to be sent; by a change to
    /// `store`, to be recorded as not sent.
    pub released: u64,
}

/// Changes to a subscription's destination. An absent field stays as it is; `null` goes back to the
/// default.
#[derive(Object, Debug, Clone)]
#[oai(deny_unknown_fields)]
pub struct SubscriptionPatchIn {
    /// The processing service's URL; `null` keeps deliveries in `store` from now on (a paused destination
    /// is then no longer paused, and the deliveries it held are recorded as not sent).
    #[oai(nullable)]
    pub destination_url: MaybeUndefined<String>,
    /// Seconds an attempt may take; `null` for `delivery.timeout_seconds` from the configuration.
    #[oai(nullable)]
    pub destination_timeout_seconds: MaybeUndefined<u32>,
    /// At most this many attempts at once towards the destination (1–256); `null` for the configured default.
    #[oai(nullable)]
    pub destination_concurrency: MaybeUndefined<u32>,
    /// Replaces every extra header (at most 20); `null` or `{}` for none. Not for credentials.
    #[oai(nullable)]
    pub destination_headers: MaybeUndefined<std::collections::BTreeMap<String, String>>,
}

/// A subscription's own retention.
#[derive(Object, Debug, Clone)]
#[oai(deny_unknown_fields)]
pub struct RetentionIn {
    /// 1 to 30 days; `null` for `retention.days`. Required.
    #[oai(nullable)]
    pub days: MaybeUndefined<u32>,
}

/// The secret Hookplane signs forwarded deliveries with (Standard Webhooks `webhook-signature`, or
/// `x-hookplane-webhook-signature` when the provider's own Standard Webhooks headers are passed through).
#[derive(Object, Debug, Clone)]
pub struct DestinationSecretOut {
    pub secret: String,
}
