//! The read model: one function builds what the dashboard page and the API show (invariant 7: the HTML never
//! shows what the API cannot). Every figure comes from rollups and index tables, so the cost of a load
//! grows with the number of subscriptions and the page size, never with the number of stored deliveries.

use std::collections::BTreeSet;

use redb::{Database, ReadTransaction, ReadableDatabase};

use crate::domain::deploy;
use crate::domain::filter::Filter;
use crate::domain::handshake::{HandshakeRun, HandshakeState};
use crate::domain::health::{Counters, Health, TIMELINE_ATTEMPTS};
use crate::domain::incident::{AlertRules, Rule, Subject};
use crate::domain::subscription::Destination;
use crate::domain::{DeliveryId, Source, Subscription, SubscriptionId, SubscriptionStatus, Timestamp};
use crate::search::{SearchError, SearchIndex, SearchQuery};
use crate::storage::deliveries::{self, Page};
use crate::storage::{StoreError, attempts, deploys, handshakes, incidents, stats, subscriptions};

/// Which deliveries the page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Full-text search of payloads (see `search`), combined with the filter.
    pub text: Option<String>,
    pub filter: Filter,
    /// The cursor: only deliveries older than this.
    pub before: Option<DeliveryId>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionHealth {
    pub subscription: Subscription,
    pub health: Health,
    /// What the last handshake found, once one ran.
    pub handshake: Option<HandshakeState>,
    /// The newest handshake runs, newest first.
    pub handshake_runs: Vec<HandshakeRun>,
}

/// Handshake runs shown in a subscription's panel.
pub const RECENT_HANDSHAKES: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct Kpis {
    /// Subscriptions registered and receiving: active, failing or expiring.
    pub active_subscriptions: usize,
    /// Distinct source and topic pairs with a failing, handshake-failed or degraded subscription.
    pub failing_topics: usize,
    pub deliveries_24h: u64,
    pub success_rate_24h: Option<f64>,
    pub avg_latency_ms_24h: Option<u32>,
}

/// A degraded subscription, or one whose provider registration failed, for the banner above the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Banner {
    pub subscription_id: SubscriptionId,
    pub subscription_name: String,
    /// `failure_streak`, `low_success_rate`, `handshake_failed` or `expiring`.
    pub code: &'static str,
    pub message: String,
    /// The alert rule that watches it; none for a version drift, which warns without an incident.
    pub rule: Option<Rule>,
    /// The incident open for this rule, once the alert evaluator has opened it.
    pub incident: Option<crate::domain::ids::IncidentId>,
}

/// Subscriptions with their health, the figures of the page, and the banners: everything but deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    pub generated_at: Timestamp,
    pub subscriptions: Vec<SubscriptionHealth>,
    pub kpis: Kpis,
    pub banners: Vec<Banner>,
}

/// `WebhookDashboardPayload`: the overview and one page of deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardPayload {
    pub overview: Overview,
    pub deliveries: Page,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

pub fn load(
    db: &Database,
    search: &SearchIndex,
    query: &Query,
    now: Timestamp,
    rules: &AlertRules,
) -> Result<DashboardPayload, LoadError> {
    let overview = overview(db, now, rules)?;
    let deliveries = deliveries_page(db, search, query)?;
    Ok(DashboardPayload { overview, deliveries })
}

/// One page of deliveries: from the redb indexes, or, with search text, from the search index (newest
/// first as well) with each item's match. The status filter is applied to the stored record, since status
/// changes after indexing.
pub fn deliveries_page(db: &Database, search: &SearchIndex, query: &Query) -> Result<Page, LoadError> {
    let Some(text) = query.text.as_deref() else {
        return Ok(deliveries::list(db, &query.filter, query.before, query.limit)?);
    };
    let sq = SearchQuery {
        text: text.to_owned(),
        filter: Filter { status: None, ..query.filter.clone() },
        before: query.before,
        limit: query.limit,
    };
    let (hits, more) = search.search(&sq)?;
    let snippets = search.snippets(text)?;
    let mut items = Vec::with_capacity(hits.len());
    for hit in &hits {
        // A hit whose delivery is gone (deleted by retention before the index caught up) is skipped, and so
        // is one whose payload was erased since: what it matched is no longer there.
        let Some((mut listed, payload)) = deliveries::get_full(db, hit.id)? else { continue };
        if query.filter.status.is_some_and(|s| s != listed.delivery.status) || listed.delivery.erased.is_some() {
            continue;
        }
        listed.matched = Some(snippets.of(&payload.body));
        items.push(listed);
    }
    let next_cursor = if more { hits.last().map(|h| h.id) } else { None };
    Ok(Page { items, next_cursor })
}

/// A subscription with its health judged against its thresholds, showing the status that decides
/// (`Health::status`).
fn with_health(
    tx: &ReadTransaction,
    mut sub: Subscription,
    now: Timestamp,
    rules: &AlertRules,
) -> Result<SubscriptionHealth, StoreError> {
    let mut health = stats::health(tx, &sub, now)?;
    health.judge(rules.for_subscription(&sub.name));
    // A subscription that keeps its deliveries makes no attempts (one that did before keeps its panel's
    // other figures).
    if matches!(sub.destination, Destination::Http { .. }) {
        health.recent_attempts = attempts::recent_of_subscription(tx, sub.id, TIMELINE_ATTEMPTS)?;
    }
    sub.status = health.status(sub.status);
    let handshake = handshakes::state_in(tx, sub.id)?;
    if let Some(h) = &handshake {
        // A registration the provider lost outranks failing deliveries: nothing more will arrive. A pause is
        // the operator's and shows as such.
        let decides = h.status(now).filter(|_| !matches!(sub.status, SubscriptionStatus::Paused));
        if let Some(status) = decides {
            sub.status = status;
        }
        sub.last_verified_at = h.last_verified_at.or(sub.last_verified_at);
    }
    let handshake_runs = handshakes::runs_in(tx, sub.id, RECENT_HANDSHAKES)?;
    Ok(SubscriptionHealth { subscription: sub, health, handshake, handshake_runs })
}

/// One subscription with its health.
pub fn subscription(
    db: &Database,
    id: SubscriptionId,
    now: Timestamp,
    rules: &AlertRules,
) -> Result<Option<SubscriptionHealth>, StoreError> {
    let tx = db.begin_read()?;
    subscriptions::get_in_read(&tx, id)?.map(|sub| with_health(&tx, sub, now, rules)).transpose()
}

/// Every subscription with its health, oldest first, read in one transaction.
pub fn overview(db: &Database, now: Timestamp, rules: &AlertRules) -> Result<Overview, StoreError> {
    let tx = db.begin_read()?;
    let mut subs = Vec::new();
    for sub in subscriptions::list_in(&tx)? {
        subs.push(with_health(&tx, sub, now, rules)?);
    }
    let kpis = kpis(&subs);
    let mut banners = Vec::new();
    for s in &subs {
        let subject = Subject::Subscription(s.subscription.id);
        let mut reasons: Vec<(&'static str, String, Option<Rule>)> =
            s.health.degraded.iter().map(|d| (d.code(), d.message(), Some(d.rule()))).collect();
        if let Some(problem) = handshake_problem(s, now) {
            reasons.push((s.subscription.status.as_str(), problem, Some(Rule::Handshake)));
        }
        for drift in drift_of(&tx, &s.subscription, now, rules.drift_grace_ms)? {
            reasons.push((VERSION_DRIFT, drift, None));
        }
        for (code, message, rule) in reasons {
            let incident = match rule {
                Some(r) => incidents::open_id_in(&tx, subject, r)?,
                None => None,
            };
            banners.push(Banner {
                subscription_id: s.subscription.id,
                subscription_name: s.subscription.name.clone(),
                code,
                message,
                rule,
                incident,
            });
        }
    }
    Ok(Overview { generated_at: now, subscriptions: subs, kpis, banners })
}

/// The banner code of a version drift.
pub const VERSION_DRIFT: &str = "version_drift";

/// A forwarding subscription's destination: its service, the versions it answered with (most recently seen
/// first), the deploys announced for its service (oldest first), and the drift warnings they make.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationVersions {
    pub subscription: Subscription,
    pub service: String,
    pub versions: Vec<(String, deploy::Seen)>,
    pub announced: Vec<deploy::Announced>,
    pub drift: Vec<String>,
}

fn versions_of(
    tx: &ReadTransaction,
    sub: &Subscription,
    now: Timestamp,
    grace_ms: i64,
) -> Result<Option<DestinationVersions>, StoreError> {
    let Some(service) = sub.versions.service(sub.destination.url()) else { return Ok(None) };
    let versions = deploys::versions_in(tx, sub.id)?;
    let announced = deploys::announced_in(tx, &service)?;
    let drift = deploy::judge(&versions, &announced, now, grace_ms).iter().map(|d| d.message(&service)).collect();
    Ok(Some(DestinationVersions { subscription: sub.clone(), service, versions, announced, drift }))
}

/// The version drift warnings of a forwarding subscription's destination, as messages.
fn drift_of(
    tx: &ReadTransaction,
    sub: &Subscription,
    now: Timestamp,
    grace_ms: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(versions_of(tx, sub, now, grace_ms)?.map(|v| v.drift).unwrap_or_default())
}

/// Every forwarding subscription's destination with its versions, oldest subscription first.
pub fn destination_versions(
    db: &Database,
    now: Timestamp,
    grace_ms: i64,
) -> Result<Vec<DestinationVersions>, StoreError> {
    let tx = db.begin_read()?;
    let mut out = Vec::new();
    for sub in subscriptions::list_in(&tx)? {
        out.extend(versions_of(&tx, &sub, now, grace_ms)?);
    }
    Ok(out)
}

/// What is wrong with the subscription's provider registration, while its handshake state decides its status.
pub fn handshake_problem(s: &SubscriptionHealth, now: Timestamp) -> Option<String> {
    let failed = matches!(s.subscription.status, SubscriptionStatus::HandshakeFailed | SubscriptionStatus::Expiring);
    s.handshake.as_ref().filter(|_| failed).and_then(|h| h.problem(now))
}

fn kpis(subs: &[SubscriptionHealth]) -> Kpis {
    use SubscriptionStatus::{Active, Expiring, Failing, HandshakeFailed};
    let mut day = Counters::default();
    let mut failing: BTreeSet<(Source, &str)> = BTreeSet::new();
    for s in subs {
        day.add(&s.health.totals_24h);
        if matches!(s.subscription.status, Failing | HandshakeFailed) {
            failing.insert((s.subscription.source, s.subscription.topic.as_str()));
        }
    }
    Kpis {
        active_subscriptions: subs
            .iter()
            .filter(|s| matches!(s.subscription.status, Active | Failing | Expiring))
            .count(),
        failing_topics: failing.len(),
        deliveries_24h: day.received,
        success_rate_24h: day.success_rate(),
        avg_latency_ms_24h: day.avg_latency_ms(),
    }
}
