//! Request and response objects of the API, kept apart from the domain types they are made from.

use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object};

use crate::domain::delivery::Match;
use crate::domain::health::Health;
use crate::domain::subscription::{Destination, Origin, ZohoAuth};
use crate::domain::{self, RejectCause, Subscription, Timestamp};
use crate::ingest::registry::HeldSecret;
use crate::loader::{Banner, Kpis};
use crate::storage::deliveries::{Listed, Page};
use crate::storage::records::RejectionSample;

macro_rules! mirror_enum {
    ($(#[$doc:meta])* $api:ident <=> $domain:path { $($v:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        #[oai(rename_all = "snake_case")]
        pub enum $api { $($v),* }

        impl From<$domain> for $api {
            fn from(v: $domain) -> Self {
                match v { $(<$domain>::$v => $api::$v),* }
            }
        }

        impl From<$api> for $domain {
            fn from(v: $api) -> Self {
                match v { $($api::$v => <$domain>::$v),* }
            }
        }
    };
}

mirror_enum!(
    /// The provider that sent a delivery.
    Source <=> domain::Source { Shopify, Zoho, Standard }
);
mirror_enum!(
    /// `queued` → `processing` → `succeeded` | `retrying` → `failed`; `stored` when the destination is `store`.
    DeliveryStatus <=> domain::DeliveryStatus { Queued, Processing, Succeeded, Retrying, Failed, Stored }
);
mirror_enum!(
    SubscriptionStatus <=> domain::SubscriptionStatus { Active, Failing, HandshakeFailed, Expiring, Paused, Discovered }
);
mirror_enum!(
    /// Why an attempt failed: no whole answer in time, no connection, a non-2xx answer, or Hookplane could
    /// not make the attempt.
    AttemptErrorClass <=> crate::domain::attempt::ErrorClass { Timeout, Connect, Http, Internal }
);
mirror_enum!(
    /// Where a subscription came from: the configuration file, the API or command line, or discovery.
    SubscriptionOrigin <=> Origin { Config, Api, Discovered }
);
mirror_enum!(
    /// What a principal may do: viewers read, operators also replay, admins also manage.
    ApiRole <=> crate::auth::Role { Viewer, Operator, Admin }
);
mirror_enum!(
    RejectionCause <=> RejectCause {
        SignatureMissing, SignatureInvalid, TimestampOutOfTolerance, UnknownSubscription, PayloadTooLarge,
        EmptyBody, HeaderMissing, HeaderMalformed, BodyMalformed, StorageUnavailable,
    }
);

pub fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

#[derive(Object, Debug, Clone)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// One verified inbound event.
#[derive(Object, Debug, Clone)]
pub struct DeliveryOut {
    /// `dlv_…`; ids sort by arrival.
    pub id: String,
    pub subscription_id: String,
    pub source: Source,
    pub topic: String,
    /// The provider's per-delivery id, used to drop repeats (`X-Shopify-Webhook-Id`, `webhook-id`, …).
    pub provider_delivery_id: Option<String>,
    /// The provider's event id, shared by deliveries of one event (`X-Shopify-Event-Id`).
    pub event_id: Option<String>,
    /// Shop domain, Zoho org, or sender.
    pub account: String,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    /// RFC 3339.
    pub received_at: String,
    pub last_attempted_at: Option<String>,
    pub response_code: Option<u16>,
    pub latency_ms: Option<u32>,
    /// Size of the exact body in bytes.
    pub size_bytes: u64,
    pub content_type: Option<String>,
    /// Hex SHA-256 of the exact body.
    pub body_sha256: String,
    /// The first 4 KB of the body as text.
    pub preview: String,
    /// The preview is shorter than the body; fetch `/deliveries/{id}/body` for all of it.
    pub preview_truncated: bool,
    pub error_message: Option<String>,
    /// `provider`, or the operator who replayed it.
    pub initiated_by: String,
    /// Which secret verified it: `current`, `previous`, `app`, `app_previous`.
    pub verified_with: String,
    /// With a search: where the query matched the body.
    #[oai(rename = "match", skip_serializing_if_is_none)]
    pub matched: Option<MatchOut>,
    /// The request headers as received, without credentials. Only in the single-delivery answer.
    #[oai(skip_serializing_if_is_none)]
    pub headers: Option<Vec<Header>>,
}

impl DeliveryOut {
    pub fn new(l: Listed, headers: Option<Vec<(String, String)>>) -> Self {
        let d = l.delivery;
        Self {
            id: d.id.to_string(),
            subscription_id: d.subscription_id.to_string(),
            source: d.source.into(),
            topic: d.topic,
            provider_delivery_id: d.provider_delivery_id,
            event_id: d.event_id,
            account: d.account,
            status: d.status.into(),
            attempt_count: d.attempt_count,
            received_at: time(d.received_at),
            last_attempted_at: d.last_attempted_at.map(time),
            response_code: d.response_code,
            latency_ms: d.latency_ms,
            size_bytes: d.size_bytes,
            content_type: d.content_type,
            body_sha256: d.body_sha256,
            preview: l.preview,
            preview_truncated: l.preview_truncated,
            error_message: d.error_message,
            initiated_by: d.initiated_by,
            verified_with: d.verified_with,
            matched: l.matched.map(MatchOut::from),
            headers: headers.map(|h| h.into_iter().map(|(name, value)| Header { name, value }).collect()),
        }
    }
}

/// Where a search matched a body: a fragment of it, and the matched terms as `[start, end)` byte offsets into
/// the fragment (escape the fragment before highlighting).
#[derive(Object, Debug, Clone)]
pub struct MatchOut {
    pub fragment: String,
    pub highlights: Vec<Vec<u64>>,
}

impl From<Match> for MatchOut {
    fn from(m: Match) -> Self {
        Self {
            fragment: m.fragment,
            highlights: m.highlights.into_iter().map(|(a, b)| vec![a as u64, b as u64]).collect(),
        }
    }
}

/// One page of deliveries, newest first.
#[derive(Object, Debug, Clone)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryOut>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page. A page can be shorter than
    /// `limit` and still have a cursor when a rare filter needed a long scan.
    pub next_cursor: Option<String>,
}

/// A secret as operators see it: never the secret, only its fingerprint and lifetime.
#[derive(Object, Debug, Clone)]
pub struct SecretOut {
    /// `current`, `previous` (still accepted during a rotation overlap), `app` or `app_previous` (the
    /// Shopify app's client secret from the environment).
    pub slot: String,
    /// From the salted argon2id digest of the secret.
    pub fingerprint: String,
    pub created_at: Option<String>,
    /// When a previous secret stops being accepted.
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
    pub destination_url: Option<String>,
    /// The destination's own attempt timeout, when it has one.
    pub destination_timeout_seconds: Option<u32>,
    /// The destination's own limit of attempts at once, when it has one.
    pub destination_concurrency: Option<u32>,
    /// Headers sent with every attempt.
    pub destination_headers: std::collections::BTreeMap<String, String>,
    /// Zoho only: `channel`, `token` or `signature`.
    pub zoho_auth: Option<String>,
    pub channel_id: Option<String>,
    pub token_header: Option<String>,
    pub dedupe_header: Option<String>,
    /// The secrets requests are verified with.
    pub secrets: Vec<SecretOut>,
    pub created_at: String,
    pub updated_at: String,
    pub last_verified_at: Option<String>,
    pub consecutive_failures: u32,
    /// Present in lists and the dashboard: figures from the rollups as of the response.
    pub health: Option<HealthOut>,
}

impl SubscriptionOut {
    pub fn new(s: Subscription, secrets: &[HeldSecret], public_url: &str) -> Self {
        let (zoho_auth, channel_id, token_header) = match &s.zoho {
            None => (None, None, None),
            Some(ZohoAuth::Channel { channel_id }) => (Some("channel"), Some(channel_id.clone()), None),
            Some(ZohoAuth::Token { header }) => (Some("token"), None, Some(header.clone())),
            Some(ZohoAuth::Signature) => (Some("signature"), None, None),
        };
        Self {
            callback_url: format!("{public_url}{}", crate::http::paths::callback_path(&s)),
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
    pub name: Option<String>,
    /// The processing service's URL; absent or null keeps deliveries in `store`.
    pub destination_url: Option<String>,
    /// Seconds an attempt may take; `delivery.timeout_seconds` from the configuration when absent.
    pub destination_timeout_seconds: Option<u32>,
    /// At most this many attempts at once towards the destination (1–256); the configured default when absent.
    pub destination_concurrency: Option<u32>,
    /// Headers sent with every attempt (at most 20), in place of a provider header of the same name. Not for
    /// credentials: they are stored and shown as given; the receiver authenticates Hookplane by its signature.
    pub destination_headers: Option<std::collections::BTreeMap<String, String>>,
    /// The signing secret or token. Required for zoho; optional for shopify (the app secret from the
    /// environment applies to every subscription); for standard, generated and returned once when absent.
    #[oai(write_only)]
    pub secret: Option<String>,
    /// Zoho CRM notification channel id (the token is then echoed in each notification body).
    pub channel_id: Option<String>,
    /// Zoho workflow webhooks: `token` (default) or `signature`.
    pub auth: Option<String>,
    /// Zoho workflow webhooks: the header carrying the token (default from configuration: `Authorization`).
    pub token_header: Option<String>,
    /// A request header holding a per-delivery id, for senders without a standard one.
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
    pub generated_secret: Option<String>,
}

#[derive(Object, Debug, Clone)]
pub struct RejectionCount {
    pub cause: RejectionCause,
    pub count: u64,
}

/// Metadata of a refused request; bodies of refused requests are never kept.
#[derive(Object, Debug, Clone)]
pub struct RejectionOut {
    pub at: String,
    pub cause: RejectionCause,
    pub detail: String,
    pub path: String,
    pub subscription_id: Option<String>,
    pub topic: Option<String>,
    pub remote_addr: Option<String>,
    pub user_agent: Option<String>,
    pub content_length: Option<u64>,
}

impl From<RejectionSample> for RejectionOut {
    fn from(s: RejectionSample) -> Self {
        Self {
            at: time(s.at),
            cause: s.cause.into(),
            detail: s.detail,
            path: s.path,
            subscription_id: s.subscription_id.map(|id| id.to_string()),
            topic: s.topic,
            remote_addr: s.remote_addr,
            user_agent: s.user_agent,
            content_length: s.content_length,
        }
    }
}

#[derive(Object, Debug, Clone)]
pub struct RejectionsOut {
    /// Requests refused since the data directory was created, by cause.
    pub counts: Vec<RejectionCount>,
    /// The most recent refused requests, newest first.
    pub recent: Vec<RejectionOut>,
}

/// Health of a subscription as of the response's `generated_at`, from per-minute and per-hour rollups.
#[derive(Object, Debug, Clone)]
pub struct HealthOut {
    pub last_delivery_at: Option<String>,
    /// Deliveries stored over the last 24 hours (by hour: the current hour so far and the 23 before it).
    pub deliveries_24h: u64,
    /// Deliveries stored over the last 60 minutes.
    pub deliveries_1h: u64,
    /// Repeats answered 200 and not stored again, over the last 24 hours.
    pub duplicates_24h: u64,
    /// Successful ends over all ends (succeeded or kept, against failed for good), 0 to 1; absent when
    /// nothing ended in the window.
    pub success_rate_24h: Option<f64>,
    pub success_rate_1h: Option<f64>,
    pub consecutive_failures: u32,
    /// Average latency of attempts to hand deliveries to the destination.
    pub avg_latency_ms_24h: Option<u32>,
    /// 95th percentile of attempt latency, as the upper bound of a power-of-two bucket.
    pub p95_latency_ms_24h: Option<u32>,
    /// Deliveries per hour over the last 24 hours, oldest first; the last is the current hour so far.
    pub hourly_24h: Vec<u64>,
    /// Why the subscription needs attention; empty when it does not.
    pub degraded: Vec<String>,
}

impl From<&Health> for HealthOut {
    fn from(h: &Health) -> Self {
        Self {
            last_delivery_at: h.last_delivery_at.map(time),
            deliveries_24h: h.deliveries_24h,
            deliveries_1h: h.deliveries_1h,
            duplicates_24h: h.duplicates_24h,
            success_rate_24h: h.success_rate_24h,
            success_rate_1h: h.success_rate_1h,
            consecutive_failures: h.consecutive_failures,
            avg_latency_ms_24h: h.avg_latency_ms_24h,
            p95_latency_ms_24h: h.p95_latency_ms_24h,
            hourly_24h: h.hourly_24h.clone(),
            degraded: h.degraded().into_iter().map(|d| d.code().to_owned()).collect(),
        }
    }
}

/// The figures at the top of the dashboard.
#[derive(Object, Debug, Clone)]
pub struct KpisOut {
    /// Subscriptions registered and receiving: active, failing or expiring.
    pub active_subscriptions: u64,
    /// Distinct source and topic pairs with a failing, handshake-failed or degraded subscription.
    pub failing_topics: u64,
    pub deliveries_24h: u64,
    pub success_rate_24h: Option<f64>,
    pub avg_latency_ms_24h: Option<u32>,
}

impl From<&Kpis> for KpisOut {
    fn from(k: &Kpis) -> Self {
        Self {
            active_subscriptions: k.active_subscriptions as u64,
            failing_topics: k.failing_topics as u64,
            deliveries_24h: k.deliveries_24h,
            success_rate_24h: k.success_rate_24h,
            avg_latency_ms_24h: k.avg_latency_ms_24h,
        }
    }
}

/// A degraded subscription: more than 5 consecutive failed attempts, or under 90 % success over the last hour.
#[derive(Object, Debug, Clone)]
pub struct BannerOut {
    pub subscription_id: String,
    pub subscription_name: String,
    /// `failure_streak` or `low_success_rate`.
    pub code: String,
    pub message: String,
}

impl From<&Banner> for BannerOut {
    fn from(b: &Banner) -> Self {
        Self {
            subscription_id: b.subscription_id.to_string(),
            subscription_name: b.subscription_name.clone(),
            code: b.reason.code().to_owned(),
            message: b.reason.message(),
        }
    }
}

/// Health of every subscription and of the whole instance.
#[derive(Object, Debug, Clone)]
pub struct StatsOut {
    pub generated_at: String,
    pub kpis: KpisOut,
    /// Every subscription, oldest first, with its health.
    pub subscriptions: Vec<SubscriptionOut>,
    pub banners: Vec<BannerOut>,
}

/// `WebhookDashboardPayload`: what the dashboard page shows, for the same filters.
#[derive(Object, Debug, Clone)]
pub struct DashboardOut {
    pub generated_at: String,
    pub kpis: KpisOut,
    pub subscriptions: Vec<SubscriptionOut>,
    pub banners: Vec<BannerOut>,
    /// One page of deliveries for the filters, newest first.
    pub deliveries: DeliveryPage,
}

impl From<Page> for DeliveryPage {
    fn from(page: Page) -> Self {
        Self {
            items: page.items.into_iter().map(|l| DeliveryOut::new(l, None)).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        }
    }
}

/// One field an audited action changed; secrets appear only as digests.
#[derive(Object, Debug, Clone, serde::Serialize)]
pub struct AuditChangeOut {
    pub field: String,
    /// Absent before a creation.
    pub before: Option<String>,
    /// Absent after a removal.
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
    /// `bulk_replay_started`, `bulk_replay_cancelled`.
    pub action: String,
    pub target_id: Option<String>,
    /// The client's address, for actions over HTTP.
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
    pub revoked_at: Option<String>,
}

impl From<crate::auth::tokens::ApiToken> for TokenOut {
    fn from(t: crate::auth::tokens::ApiToken) -> Self {
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

/// One try at handing a delivery to its destination.
#[derive(Object, Debug, Clone)]
pub struct AttemptOut {
    /// 1 for the first attempt, counting automatic retries and replays alike.
    pub number: u32,
    pub started_at: String,
    /// The destination's status code; absent when no answer came.
    pub response_code: Option<u16>,
    pub latency_ms: u32,
    pub error_class: Option<AttemptErrorClass>,
    pub error: Option<String>,
    /// The start of the destination's answer (at most 1 KiB), as text.
    pub excerpt: String,
    /// `provider` for the first run and its automatic retries; the operator's name for a replay.
    pub initiated_by: String,
    /// What followed: `delivered`, `retry`, `paused` (the destination answered 410, or is paused) or `gave_up`.
    pub next: String,
}

impl From<crate::domain::attempt::Attempt> for AttemptOut {
    fn from(a: crate::domain::attempt::Attempt) -> Self {
        AttemptOut {
            number: a.number,
            started_at: time(a.started_at),
            response_code: a.response_code,
            latency_ms: a.latency_ms,
            error_class: a.error_class.map(Into::into),
            error: a.error,
            excerpt: a.excerpt,
            initiated_by: a.initiated_by,
            next: a.next,
        }
    }
}

mirror_enum!(
    /// `queued` → `succeeded` | `retrying` → `failed`; `held` while the destination is paused.
    ReplayStatus <=> crate::domain::replay::ReplayStatus { Queued, Retrying, Succeeded, Failed, Held }
);

/// A replay: a new attempt of a delivery, asked for by an operator.
#[derive(Object, Debug, Clone)]
pub struct ReplayOut {
    pub id: String,
    pub delivery_id: String,
    pub requested_by: String,
    pub requested_at: String,
    pub status: ReplayStatus,
    /// Where the new attempt shows once made (`initiated_by` is the operator).
    pub attempts_url: String,
}

impl From<crate::domain::replay::Replay> for ReplayOut {
    fn from(r: crate::domain::replay::Replay) -> Self {
        ReplayOut {
            id: r.id.to_string(),
            delivery_id: r.delivery_id.to_string(),
            requested_by: r.requested_by,
            requested_at: time(r.requested_at),
            status: r.status.into(),
            attempts_url: format!("/api/v1/deliveries/{}/attempts", r.delivery_id),
        }
    }
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
    pub destination_url: MaybeUndefined<String>,
    /// Seconds an attempt may take; `null` for `delivery.timeout_seconds` from the configuration.
    pub destination_timeout_seconds: MaybeUndefined<u32>,
    /// At most this many attempts at once towards the destination (1–256); `null` for the configured default.
    pub destination_concurrency: MaybeUndefined<u32>,
    /// Replaces every extra header (at most 20); `null` or `{}` for none. Not for credentials.
    pub destination_headers: MaybeUndefined<std::collections::BTreeMap<String, String>>,
}

/// The secret Hookplane signs forwarded deliveries with (Standard Webhooks `webhook-signature`, or
/// `x-hookplane-webhook-signature` when the provider's own Standard Webhooks headers are passed through).
#[derive(Object, Debug, Clone)]
pub struct DestinationSecretOut {
    pub secret: String,
}

/// A bulk replay asked for: the delivery filters (as `GET /api/v1/deliveries` takes them; at least one), and
/// either a dry run that only counts, or the rate to replay at.
#[derive(Object, Debug, Clone, Default)]
pub struct BulkReplayIn {
    pub q: Option<String>,
    pub source: Option<Source>,
    pub topic: Option<String>,
    pub status: Option<DeliveryStatus>,
    /// A subscription id.
    pub subscription: Option<String>,
    pub account: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive; absent: everything received until now (not what arrives while it runs).
    pub to: Option<String>,
    /// Only count what would be replayed.
    #[oai(default)]
    pub dry_run: bool,
    /// Replays per second, 1 to 200; 10 when absent, slow enough that live traffic flows.
    pub rate_per_second: Option<u32>,
}

/// What a bulk replay would cover.
#[derive(Object, Debug, Clone)]
pub struct BulkReplayPreview {
    pub matched: u64,
    /// The most one bulk replay may cover; a filter matching more must be narrowed.
    pub limit: u64,
}

mirror_enum!(
    /// `running` until every matching delivery was handled, then `done`; or `cancelled`, or `failed`.
    BulkStatus <=> crate::domain::replay::BulkStatus { Running, Done, Cancelled, Failed }
);

/// A bulk replay and its progress.
#[derive(Object, Debug, Clone)]
pub struct BulkReplayOut {
    pub id: String,
    pub requested_by: String,
    pub requested_at: String,
    pub status: BulkStatus,
    /// The filter as applied, with `to` fixed at the start when it was not given.
    pub filter: BulkFilterOut,
    pub rate_per_second: u32,
    pub matched: u64,
    pub replayed: u64,
    /// Replayed less than 5 minutes before, or not replayable.
    pub skipped: u64,
    /// Refused because the stored body failed its integrity check.
    pub failed: u64,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Object, Debug, Clone)]
pub struct BulkFilterOut {
    pub q: Option<String>,
    pub source: Option<String>,
    pub topic: Option<String>,
    pub status: Option<String>,
    pub subscription: Option<String>,
    pub account: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl From<crate::domain::replay::BulkReplay> for BulkReplayOut {
    fn from(b: crate::domain::replay::BulkReplay) -> Self {
        let f = b.filter;
        BulkReplayOut {
            id: b.id.to_string(),
            requested_by: b.requested_by,
            requested_at: time(b.requested_at),
            status: b.status.into(),
            filter: BulkFilterOut {
                q: f.q,
                source: f.source,
                topic: f.topic,
                status: f.status,
                subscription: f.subscription,
                account: f.account,
                from: f.from,
                to: f.to,
            },
            rate_per_second: b.rate_per_second,
            matched: b.matched,
            replayed: b.replayed,
            skipped: b.skipped,
            failed: b.failed,
            finished_at: b.finished_at.map(time),
            error: b.error,
        }
    }
}
