//! The dashboard's read model as the API answers it: health, figures, banners.

use poem_openapi::Object;

use super::{DeliveryPage, SubscriptionOut, time};
use crate::domain::health::Health;
use crate::loader::{Banner, Kpis};

/// Health of a subscription as of the response's `generated_at`, from per-minute and per-hour rollups.
#[derive(Object, Debug, Clone)]
pub struct HealthOut {
    #[oai(nullable)]
    pub last_delivery_at: Option<String>,
    /// Deliveries stored over the last 24 hours (by hour: the current hour so far and the 23 before it).
    pub deliveries_24h: u64,
    /// Deliveries stored over the last 60 minutes.
    pub deliveries_1h: u64,
    /// Repeats answered 200 and not stored again, over the last 24 hours.
    pub duplicates_24h: u64,
    /// Successful ends over all ends (succeeded or kept, against failed for good), 0 to 1; absent when
    /// nothing ended in the window.
    #[oai(nullable)]
    pub success_rate_24h: Option<f64>,
    #[oai(nullable)]
    pub success_rate_1h: Option<f64>,
    pub consecutive_failures: u32,
    /// Average latency of attempts to hand deliveries to the destination.
    #[oai(nullable)]
    pub avg_latency_ms_24h: Option<u32>,
    /// 95th percentile of attempt latency, as the upper bound of a power-of-two bucket.
    #[oai(nullable)]
    pub p95_latency_ms_24h: Option<u32>,
    /// Deliveries per hour over the last 24 hours, oldest first; the last is the current hour so far.
    pub hourly_24h: Vec<u64>,
    /// Why the subscription needs attention; empty when it does not.
    pub degraded: Vec<String>,
    /// The last attempts (up to 20) to hand its deliveries to the destination, oldest first.
    pub recent_attempts: Vec<AttemptMarkOut>,
}

/// One attempt on a subscription's failure timeline.
#[derive(Object, Debug, Clone)]
pub struct AttemptMarkOut {
    pub started_at: String,
    /// Absent when no answer came (a timeout, no connection).
    #[oai(nullable)]
    pub response_code: Option<u16>,
    pub succeeded: bool,
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
            degraded: h.degraded.iter().map(|d| d.code().to_owned()).collect(),
            recent_attempts: h
                .recent_attempts
                .iter()
                .map(|m| AttemptMarkOut {
                    started_at: time(m.started_at),
                    response_code: m.response_code,
                    succeeded: m.succeeded,
                })
                .collect(),
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
    #[oai(nullable)]
    pub success_rate_24h: Option<f64>,
    #[oai(nullable)]
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
    /// `failure_streak`, `low_success_rate`, `handshake_failed`, `expiring` or `version_drift`.
    pub code: String,
    pub message: String,
    /// The alert rule that watches this condition; absent for `version_drift`, which warns without an
    /// incident.
    #[oai(skip_serializing_if_is_none)]
    pub rule: Option<super::AlertRule>,
    /// The incident open for it, once the alert evaluator has opened one.
    #[oai(nullable)]
    pub incident_id: Option<String>,
    /// The rule's section of the runbook.
    pub runbook_url: String,
}

impl BannerOut {
    /// `runbook` is the runbook without a section.
    pub fn new(b: &Banner, runbook: &str) -> Self {
        let rule = b.rule;
        Self {
            subscription_id: b.subscription_id.to_string(),
            subscription_name: b.subscription_name.clone(),
            code: b.code.to_owned(),
            message: b.message.clone(),
            rule: rule.map(Into::into),
            incident_id: b.incident.map(|i| i.to_string()),
            runbook_url: format!("{runbook}#{}", rule.map_or(b.code, |r| r.as_str())),
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
