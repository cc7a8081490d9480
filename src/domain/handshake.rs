//! Handshakes: checking that a provider still sends a subscription's events here, and repairing its
//! registration when it does not (a Shopify webhook subscription, a Zoho CRM notification channel). The
//! records and the rules of what a run means; the calls themselves are in `providers`.

use serde::{Deserialize, Serialize};

use super::credential::Provider;
use super::ids::HandshakeRunId;
use super::subscription::ZohoAuth;
use super::{Source, Subscription, SubscriptionId, SubscriptionStatus, Timestamp};

/// Transient failures in a row after which a subscription shows `handshake_failed`: one network error on an
/// hourly check is not worth a page; three in a row are.
pub const TRANSIENT_FAILURES_TO_FAIL: u32 = 3;

/// The soonest a channel granted a short life is looked at again.
const MIN_RECHECK_MS: i64 = 300_000;

/// When a run after a transient failure comes: 1, 5 and 15 minutes, then every 15 minutes until the
/// regular interval is shorter.
const TRANSIENT_RETRY_MS: [i64; 3] = [60_000, 300_000, 900_000];

/// Shopify's mandatory privacy topics: every app receives them through its configuration, and the Admin API
/// refuses subscriptions to them.
pub const SHOPIFY_COMPLIANCE_TOPICS: [&str; 3] = ["customers/data_request", "customers/redact", "shop/redact"];

/// Where Shopify sends webhooks here, after `public_url`: the callback URL a handshake registers.
pub const SHOPIFY_CALLBACK_PATH: &str = "/shopify/webhook";
/// Where Zoho CRM notification channels send here, after `public_url`.
pub const ZOHO_NOTIFY_PATH: &str = "/zoho/incoming";

/// The registrations a subscription can have at its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A webhook subscription of the shop, through the GraphQL Admin API.
    ShopifyWebhook,
    /// A Zoho CRM notification channel (`actions/watch`).
    ZohoChannel,
}

impl Kind {
    /// The path after `public_url` the provider must send to.
    pub const fn ingest_path(self) -> &'static str {
        match self {
            Kind::ShopifyWebhook => SHOPIFY_CALLBACK_PATH,
            Kind::ZohoChannel => ZOHO_NOTIFY_PATH,
        }
    }

    /// What a subscription has at its provider that Hookplane can check, or why it has nothing.
    pub fn of(sub: &Subscription) -> Result<Kind, &'static str> {
        match (sub.source, &sub.zoho) {
            _ if sub.status == SubscriptionStatus::Discovered => {
                Err("it was discovered from traffic: adopt it first, so Hookplane knows it should exist")
            }
            (Source::Shopify, _) if sub.account == "*" || sub.account.is_empty() => {
                Err("it matches every shop (`*`): a handshake needs one shop domain, whose Admin API it talks to")
            }
            // The account becomes the Admin API's host, and the request carries the access token: anything
            // but a shop's own domain could send the token elsewhere.
            (Source::Shopify, _) if Provider::Shopify.check_account(&sub.account).is_err() => {
                Err("its account is not a shop's `name.myshopify.com` domain, whose Admin API a handshake talks to")
            }
            (Source::Shopify, _) if SHOPIFY_COMPLIANCE_TOPICS.contains(&sub.topic.as_str()) => {
                Err("Shopify's privacy topics are subscribed in the app's configuration (Partner Dashboard or \
                 shopify.app.toml), not through the Admin API")
            }
            (Source::Shopify, _) => Ok(Kind::ShopifyWebhook),
            (Source::Zoho, Some(ZohoAuth::Channel { .. })) => Ok(Kind::ZohoChannel),
            (Source::Zoho, _) => {
                Err("it is a Zoho workflow webhook, which is configured in Zoho's settings and has no API to check it")
            }
            (Source::Standard, _) => Err("Standard Webhooks senders have no registration Hookplane can check"),
        }
    }
}

/// Shopify's GraphQL topic for a REST-style topic: `orders/create` → `ORDERS_CREATE`.
pub fn shopify_graphql_topic(topic: &str) -> String {
    topic.to_ascii_uppercase().replace(['/', '.'], "_")
}

/// Whether trying again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The provider refused (credentials, a frozen or locked shop, its own validation): nothing changes
    /// until someone acts.
    Refused,
    /// No answer, a server error, throttling beyond what is worth waiting for: the next try may work.
    Transient,
}

/// Why a handshake failed: a stable code, a sentence for people, and the provider's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeFailure {
    pub code: String,
    pub message: String,
    pub provider_said: Option<String>,
    pub kind: FailureKind,
}

impl HandshakeFailure {
    pub fn refused(code: &str, message: impl Into<String>, provider_said: Option<String>) -> Self {
        Self { code: code.to_owned(), message: message.into(), provider_said, kind: FailureKind::Refused }
    }

    pub fn transient(code: &str, message: impl Into<String>, provider_said: Option<String>) -> Self {
        Self { code: code.to_owned(), message: message.into(), provider_said, kind: FailureKind::Transient }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The provider has the registration as it should be.
    Verified,
    /// It was missing or different, and Hookplane created, updated or refreshed it.
    Repaired,
    Failed,
}

impl RunOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Verified => "verified",
            RunOutcome::Repaired => "repaired",
            RunOutcome::Failed => "failed",
        }
    }
}

/// What the provider has now, as one run found or left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Shopify's `gid://shopify/WebhookSubscription/…`, or the Zoho channel id.
    pub provider_id: Option<String>,
    /// When a Zoho channel stops notifying unless refreshed.
    pub expires_at: Option<Timestamp>,
}

/// One handshake of one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeRun {
    pub id: HandshakeRunId,
    pub subscription_id: SubscriptionId,
    pub at: Timestamp,
    /// Who asked: an operator's label, or `system` for the watchdog.
    pub by: String,
    pub outcome: RunOutcome,
    /// What was looked at, in order.
    pub checked: Vec<String>,
    /// What was created, updated or refreshed.
    pub repaired: Vec<String>,
    pub failure: Option<HandshakeFailure>,
    /// Registrations the provider has for this account that no Hookplane subscription matches: reported,
    /// never deleted (another consumer of the same app may own them).
    #[serde(default)]
    pub unknown: Vec<String>,
    #[serde(default)]
    pub registration: Registration,
}

/// How often handshakes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval_ms: i64,
    /// A Zoho channel is refreshed this long before it expires.
    pub refresh_before_ms: i64,
}

/// A subscription's handshake state: what the last run found, and when the next is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeState {
    pub subscription_id: SubscriptionId,
    pub registration: Registration,
    pub last_run_at: Timestamp,
    pub last_outcome: RunOutcome,
    pub last_verified_at: Option<Timestamp>,
    /// The last run's failure; none once a run succeeds.
    pub failure: Option<HandshakeFailure>,
    /// Transient failures since the last success.
    pub transient_failures: u32,
    pub next_at: Timestamp,
    /// From when a channel is near its expiry: `expiring` if a refresh has failed by then.
    pub refresh_at: Option<Timestamp>,
}

impl HandshakeState {
    /// The state after `run`, given the one before it.
    pub fn after(before: Option<&HandshakeState>, run: &HandshakeRun, schedule: Schedule) -> HandshakeState {
        let now = run.at;
        // A failed run learns nothing new of the registration: keep what the last success found.
        let registration = match (&run.failure, before) {
            (Some(_), Some(b)) => b.registration.clone(),
            _ => run.registration.clone(),
        };
        let transient_failures = match &run.failure {
            Some(f) if f.kind == FailureKind::Transient => before.map_or(0, |b| b.transient_failures) + 1,
            _ => 0,
        };
        let regular = now.plus_millis(schedule.interval_ms);
        let mut next_at = match &run.failure {
            None | Some(HandshakeFailure { kind: FailureKind::Refused, .. }) => regular,
            Some(_) => {
                let wait = TRANSIENT_RETRY_MS[(transient_failures as usize - 1).min(TRANSIENT_RETRY_MS.len() - 1)];
                now.plus_millis(wait.min(schedule.interval_ms))
            }
        };
        // A channel is refreshed ahead of its expiry, however long the regular interval. One granted for
        // less than the refresh window (Zoho falls back to an hour when asked for more than it allows) is
        // looked at again halfway to its expiry, not in a loop.
        let refresh_at = registration.expires_at.map(|e| e.plus_millis(-schedule.refresh_before_ms));
        if let (Some(at), Some(expires)) = (refresh_at, registration.expires_at)
            && run.failure.is_none()
        {
            let halfway = now.plus_millis(((expires.millis() - now.millis()) / 2).max(MIN_RECHECK_MS));
            next_at = next_at.min(if at > now { at } else { halfway });
        }
        HandshakeState {
            subscription_id: run.subscription_id,
            registration,
            last_run_at: now,
            last_outcome: run.outcome,
            last_verified_at: if run.failure.is_none() { Some(now) } else { before.and_then(|b| b.last_verified_at) },
            failure: run.failure.clone(),
            transient_failures,
            next_at,
            refresh_at,
        }
    }

    /// The status this state gives its subscription, if it decides one: a channel past its expiry, a
    /// refusal or transient failures that keep on are `handshake_failed`; a channel near its expiry whose
    /// refresh failed is `expiring`.
    pub fn status(&self, now: Timestamp) -> Option<SubscriptionStatus> {
        if self.registration.expires_at.is_some_and(|e| e <= now) {
            return Some(SubscriptionStatus::HandshakeFailed);
        }
        let f = self.failure.as_ref()?;
        let near_expiry = self.refresh_at.is_some_and(|at| at <= now);
        match f.kind {
            FailureKind::Refused => Some(SubscriptionStatus::HandshakeFailed),
            FailureKind::Transient if self.transient_failures >= TRANSIENT_FAILURES_TO_FAIL => {
                Some(SubscriptionStatus::HandshakeFailed)
            }
            FailureKind::Transient if near_expiry => Some(SubscriptionStatus::Expiring),
            FailureKind::Transient => None,
        }
    }

    /// What is wrong, for a banner or an incident, while `status` decides one.
    pub fn problem(&self, now: Timestamp) -> Option<String> {
        if let Some(e) = self.registration.expires_at.filter(|e| *e <= now) {
            return Some(format!("the provider's channel expired at {}", e.to_rfc3339()));
        }
        self.failure.as_ref().map(|f| f.message.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const SCHEDULE: Schedule = Schedule { interval_ms: HOUR, refresh_before_ms: 6 * HOUR };

    fn run(at: i64, failure: Option<HandshakeFailure>, expires_at: Option<i64>) -> HandshakeRun {
        HandshakeRun {
            id: HandshakeRunId::new(Timestamp::from_millis(at)),
            subscription_id: SubscriptionId::new(Timestamp::from_millis(0)),
            at: Timestamp::from_millis(at),
            by: "system".to_owned(),
            outcome: if failure.is_some() { RunOutcome::Failed } else { RunOutcome::Verified },
            checked: Vec::new(),
            repaired: Vec::new(),
            failure,
            unknown: Vec::new(),
            registration: Registration {
                provider_id: Some("1".to_owned()),
                expires_at: expires_at.map(Timestamp::from_millis),
            },
        }
    }

    fn network() -> Option<HandshakeFailure> {
        Some(HandshakeFailure::transient("network", "no answer", None))
    }

    #[test]
    fn a_success_comes_back_at_the_interval_or_before_the_channel_expires() {
        let s = HandshakeState::after(None, &run(0, None, None), SCHEDULE);
        assert_eq!((s.next_at.millis(), s.last_verified_at), (HOUR, Some(Timestamp::from_millis(0))));
        assert_eq!(s.status(Timestamp::from_millis(0)), None);
        let channel = HandshakeState::after(None, &run(0, None, Some(6 * HOUR + 30 * 60_000)), SCHEDULE);
        assert_eq!(channel.next_at.millis(), 30 * 60_000, "six hours before it expires");
        let short = HandshakeState::after(None, &run(0, None, Some(HOUR)), SCHEDULE);
        assert_eq!(short.next_at.millis(), HOUR / 2, "granted an hour: halfway, not in a loop");
    }

    #[test]
    fn transient_failures_retry_sooner_and_fail_the_third_time() {
        let first = HandshakeState::after(None, &run(0, None, None), SCHEDULE);
        let second = HandshakeState::after(Some(&first), &run(HOUR, network(), None), SCHEDULE);
        assert_eq!((second.next_at.millis(), second.transient_failures), (HOUR + 60_000, 1));
        assert_eq!(second.status(second.last_run_at), None, "one blip is not a failure");
        assert_eq!(second.last_verified_at, Some(Timestamp::from_millis(0)));
        let third = HandshakeState::after(Some(&second), &run(HOUR + 60_000, network(), None), SCHEDULE);
        assert_eq!(third.next_at.millis(), HOUR + 60_000 + 300_000);
        let fourth = HandshakeState::after(Some(&third), &run(HOUR + 360_000, network(), None), SCHEDULE);
        assert_eq!(fourth.status(fourth.last_run_at), Some(SubscriptionStatus::HandshakeFailed));
        let fine = HandshakeState::after(Some(&fourth), &run(2 * HOUR, None, None), SCHEDULE);
        assert_eq!((fine.transient_failures, fine.status(fine.last_run_at)), (0, None));
    }

    #[test]
    fn a_refusal_fails_at_once_and_a_channel_near_expiry_is_expiring() {
        let refused = Some(HandshakeFailure::refused("unauthorized", "bad token", Some("401".to_owned())));
        let s = HandshakeState::after(None, &run(0, refused, None), SCHEDULE);
        assert_eq!((s.status(s.last_run_at), s.next_at.millis()), (Some(SubscriptionStatus::HandshakeFailed), HOUR));
        let ok = HandshakeState::after(None, &run(0, None, Some(10 * HOUR)), SCHEDULE);
        let failed = HandshakeState::after(Some(&ok), &run(5 * HOUR, network(), None), SCHEDULE);
        assert_eq!(failed.registration.expires_at, Some(Timestamp::from_millis(10 * HOUR)), "kept from the success");
        let at = Timestamp::from_millis(5 * HOUR);
        assert_eq!(failed.status(at), Some(SubscriptionStatus::Expiring));
        let past = Timestamp::from_millis(10 * HOUR);
        assert_eq!(failed.status(past), Some(SubscriptionStatus::HandshakeFailed));
        assert!(failed.problem(past).unwrap().contains("expired"));
    }

    #[test]
    fn only_a_shops_own_domain_and_its_api_topics_have_a_handshake() {
        let sub = |account: &str, topic: &str| Subscription {
            id: SubscriptionId::new(Timestamp::from_millis(0)),
            name: "s".to_owned(),
            source: Source::Shopify,
            topic: topic.to_owned(),
            account: account.to_owned(),
            status: SubscriptionStatus::Active,
            destination: super::super::subscription::Destination::Store,
            origin: super::super::subscription::Origin::Api,
            zoho: None,
            dedupe_header: None,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            last_verified_at: None,
            consecutive_failures: 0,
            metadata: Default::default(),
            retention_days: None,
            versions: Default::default(),
        };
        assert_eq!(Kind::of(&sub("a.myshopify.com", "orders/create")), Ok(Kind::ShopifyWebhook));
        assert!(Kind::of(&sub("a.myshopify.com@evil.example", "orders/create")).unwrap_err().contains("not a shop"));
        assert!(Kind::of(&sub("a.myshopify.com", "customers/redact")).unwrap_err().contains("privacy topics"));
        assert!(Kind::of(&sub("*", "orders/create")).is_err());
    }

    #[test]
    fn graphql_topics_are_upper_case_with_underscores() {
        assert_eq!(shopify_graphql_topic("orders/create"), "ORDERS_CREATE");
        assert_eq!(shopify_graphql_topic("customers/data_request"), "CUSTOMERS_DATA_REQUEST");
    }
}
