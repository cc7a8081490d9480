//! Incidents: one per (subject, rule) while the rule holds, with the figures that opened it, who
//! acknowledged it, when it resolved, and every notification sent about it. The rules' thresholds, and the
//! pure decision of what an evaluation does to an incident, live here too.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ids::IncidentId;
pub use super::notification::{NOTIFY_RETRY_SECONDS, Notification, NotifyAction, NotifyState, SinkAnswer, SinkKind};
use super::{Source, SubscriptionId, Timestamp};

/// An alert rule. The text forms are stable: the API, the runbook's section anchors and sink payloads use
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// More than N consecutive failed attempts (the seed's rule).
    ConsecutiveFailures,
    /// Under a success rate over the last hour, once the hour holds enough attempts.
    SuccessRate,
    /// At least N requests refused for their signature in 10 minutes.
    SignatureFailures,
    /// Nothing received for longer than the subscription's own baseline allows.
    Silence,
    /// A handshake failed or a provider channel is about to expire (raised by the handshake work).
    Handshake,
}

impl Rule {
    pub const ALL: [Rule; 5] =
        [Rule::ConsecutiveFailures, Rule::SuccessRate, Rule::SignatureFailures, Rule::Silence, Rule::Handshake];

    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::ConsecutiveFailures => "consecutive_failures",
            Rule::SuccessRate => "success_rate",
            Rule::SignatureFailures => "signature_failures",
            Rule::Silence => "silence",
            Rule::Handshake => "handshake",
        }
    }

    /// The rule's section of the runbook: its anchor is the rule's name.
    pub const fn title(self) -> &'static str {
        match self {
            Rule::ConsecutiveFailures => "Consecutive failed attempts",
            Rule::SuccessRate => "Low success rate",
            Rule::SignatureFailures => "Signature failures",
            Rule::Silence => "Silence",
            Rule::Handshake => "Handshake",
        }
    }

    /// The PagerDuty severity of an incident of this rule.
    pub const fn severity(self) -> &'static str {
        match self {
            Rule::ConsecutiveFailures | Rule::SuccessRate | Rule::Handshake => "error",
            Rule::SignatureFailures | Rule::Silence => "warning",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
            format!("`{s}` is not an alert rule (expected one of {})", known.join(", "))
        })
    }
}

/// What an incident is about: a subscription, or a source as a whole when a refused request names none (a
/// signature checked against Shopify's app secret for a shop no subscription matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Subscription(SubscriptionId),
    Source(Source),
}

impl Subject {
    /// The key of its open incidents: `sub_…` or `source:shopify`.
    pub fn key(self) -> String {
        match self {
            Subject::Subscription(id) => id.to_string(),
            Subject::Source(s) => format!("source:{}", s.as_str()),
        }
    }

    pub fn subscription(self) -> Option<SubscriptionId> {
        match self {
            Subject::Subscription(id) => Some(id),
            Subject::Source(_) => None,
        }
    }
}

/// The thresholds of the rules for one subscription. Defaults are the seed's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// More consecutive failed attempts than this open `consecutive_failures`.
    pub consecutive_failures: u32,
    /// A success rate under this over the last hour opens `success_rate`…
    pub success_rate: f64,
    /// …once the hour holds at least this many attempts.
    pub min_attempts: u64,
    /// This many refused signatures in [`SIGNATURE_WINDOW_MS`] open `signature_failures`; 0 turns it off.
    pub signature_failures: u64,
    /// Whether `silence` is watched.
    pub silence: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { consecutive_failures: 5, success_rate: 0.9, min_attempts: 10, signature_failures: 5, silence: true }
    }
}

/// The window of `signature_failures`.
pub const SIGNATURE_WINDOW_MS: i64 = 10 * 60_000;

/// Hours of history the silence baseline learns from.
pub const SILENCE_HISTORY_HOURS: u64 = 7 * 24;
/// A subscription "normally receives traffic" once this many hours of its history had some.
pub const SILENCE_MIN_BUSY_HOURS: usize = 12;

/// How long a subscription may stay silent, learned from its hourly history (oldest first; the last entry
/// is the current hour): three times the 95th-percentile gap between its busy hours, and at least an hour.
/// `None` for a subscription that does not normally receive traffic.
pub fn silence_allowance_ms(hourly: &[u64]) -> Option<i64> {
    let busy: Vec<usize> = hourly.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, _)| i).collect();
    if busy.len() < SILENCE_MIN_BUSY_HOURS {
        return None;
    }
    let mut gaps: Vec<usize> = busy.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let rank = ((gaps.len() as f64) * 0.95).ceil().max(1.0) as usize;
    let p95 = gaps.get(rank - 1).copied().unwrap_or(1);
    Some(3_600_000 * i64::try_from(p95.max(1) * 3).unwrap_or(i64::MAX / 3_600_000))
}

/// Thresholds for every subscription: the defaults, and overrides by subscription name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertRules {
    pub defaults: Thresholds,
    pub overrides: BTreeMap<String, Thresholds>,
    /// Minutes a rule must have been clear before its incident resolves.
    pub resolve_after_minutes: u64,
    /// How long a deploy may take before the version drift warnings hold (`drift.grace_minutes`).
    pub drift_grace_ms: i64,
}

impl AlertRules {
    pub fn for_subscription(&self, name: &str) -> &Thresholds {
        self.overrides.get(name).unwrap_or(&self.defaults)
    }

    pub fn resolve_after_ms(&self) -> i64 {
        i64::try_from(self.resolve_after_minutes.saturating_mul(60_000)).unwrap_or(i64::MAX)
    }
}

/// One figure behind a finding, e.g. `consecutive_failures = 7`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub value: String,
}

impl Figure {
    pub fn new(name: &str, value: impl ToString) -> Self {
        Self { name: name.to_owned(), value: value.to_string() }
    }
}

/// A rule that holds for a subject now, with what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub subject: Subject,
    /// The subscription's name, or the source's, for people.
    pub subject_name: String,
    pub rule: Rule,
    pub summary: String,
    pub figures: Vec<Figure>,
}

/// Who acknowledged an incident, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub subject: Subject,
    pub subject_name: String,
    pub rule: Rule,
    pub opened_at: Timestamp,
    /// What opened it, in a line, and the figures behind that.
    pub summary: String,
    pub figures: Vec<Figure>,
    /// The latest figures while the rule holds: they change as the problem grows or shrinks.
    #[serde(default)]
    pub latest_figures: Vec<Figure>,
    #[serde(default)]
    pub acknowledged: Option<Acknowledgement>,
    /// Since when the rule has been clear; the incident resolves once that lasts long enough.
    #[serde(default)]
    pub clear_since: Option<Timestamp>,
    #[serde(default)]
    pub resolved_at: Option<Timestamp>,
    #[serde(default)]
    pub notifications: Vec<Notification>,
    /// Ids the sinks gave the incident (Better Stack's), by sink name.
    #[serde(default)]
    pub external_ids: BTreeMap<String, String>,
}

/// The state an incident shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub const ALL: [IncidentState; 3] = [IncidentState::Open, IncidentState::Acknowledged, IncidentState::Resolved];

    pub const fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Resolved => "resolved",
        }
    }
}

impl FromStr for IncidentState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [IncidentState::Open, IncidentState::Acknowledged, IncidentState::Resolved]
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an incident state (expected open, acknowledged or resolved)"))
    }
}

/// What one evaluation does to an open incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing changed.
    Keep,
    /// The rule holds (again): figures updated, any clear period forgotten.
    Holding,
    /// The rule has just stopped holding; the clear period starts now.
    Clearing,
    /// Clear for long enough: resolve.
    Resolve,
}

impl Incident {
    pub fn open(finding: Finding, now: Timestamp, sinks: &[SinkKind]) -> Self {
        Self {
            id: IncidentId::new(now),
            subject: finding.subject,
            subject_name: finding.subject_name,
            rule: finding.rule,
            opened_at: now,
            summary: finding.summary,
            latest_figures: finding.figures.clone(),
            figures: finding.figures,
            acknowledged: None,
            clear_since: None,
            resolved_at: None,
            notifications: sinks.iter().map(|s| Notification::due(*s, NotifyAction::Trigger, now)).collect(),
            external_ids: BTreeMap::new(),
        }
    }

    pub fn state(&self) -> IncidentState {
        match (&self.resolved_at, &self.acknowledged) {
            (Some(_), _) => IncidentState::Resolved,
            (None, Some(_)) => IncidentState::Acknowledged,
            (None, None) => IncidentState::Open,
        }
    }

    /// How long it lasted (or has lasted, as of `now`).
    pub fn duration_ms(&self, now: Timestamp) -> i64 {
        self.resolved_at.unwrap_or(now).millis() - self.opened_at.millis()
    }

    /// Hysteresis: an incident resolves only after its rule has been clear for `resolve_after_ms`, so a
    /// subscription hovering at the threshold keeps one incident rather than opening many.
    pub fn step(&self, holds: bool, now: Timestamp, resolve_after_ms: i64) -> Step {
        match (holds, self.clear_since) {
            (true, _) => Step::Holding,
            (false, None) if resolve_after_ms <= 0 => Step::Resolve,
            (false, None) => Step::Clearing,
            (false, Some(since)) if now.millis() - since.millis() >= resolve_after_ms => Step::Resolve,
            (false, Some(_)) => Step::Keep,
        }
    }

    /// Applies a step, queueing the notifications it calls for. Returns whether the record changed.
    pub fn apply(&mut self, step: Step, latest: Option<&[Figure]>, now: Timestamp, sinks: &[SinkKind]) -> bool {
        match step {
            Step::Keep => false,
            Step::Holding => {
                let figures = latest.map(<[Figure]>::to_vec).unwrap_or_default();
                let changed = self.clear_since.is_some() || (latest.is_some() && figures != self.latest_figures);
                self.clear_since = None;
                if latest.is_some() {
                    self.latest_figures = figures;
                }
                changed
            }
            Step::Clearing => {
                self.clear_since = Some(now);
                true
            }
            Step::Resolve => {
                self.resolved_at = Some(now);
                self.queue(NotifyAction::Resolve, now, sinks);
                true
            }
        }
    }

    pub fn acknowledge(&mut self, by: &str, now: Timestamp, sinks: &[SinkKind]) {
        self.acknowledged = Some(Acknowledgement { by: by.to_owned(), at: now });
        self.queue(NotifyAction::Acknowledge, now, sinks);
    }

    fn queue(&mut self, action: NotifyAction, now: Timestamp, sinks: &[SinkKind]) {
        self.notifications.extend(sinks.iter().map(|s| Notification::due(*s, action, now)));
    }

    /// The earliest try any of its notifications waits for.
    pub fn next_notification_at(&self) -> Option<Timestamp> {
        self.notifications.iter().filter_map(Notification::next_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Finding {
        Finding {
            subject: Subject::Source(Source::Shopify),
            subject_name: "shopify".into(),
            rule: Rule::SignatureFailures,
            summary: "6 refused".into(),
            figures: vec![Figure::new("refused", 6)],
        }
    }

    #[test]
    fn names_read_back() {
        for r in Rule::ALL {
            assert_eq!(r.as_str().parse::<Rule>(), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert!("flapping".parse::<Rule>().unwrap_err().contains("silence"));
        for k in SinkKind::ALL {
            assert_eq!(k.as_str().parse::<SinkKind>(), Ok(k));
        }
    }

    #[test]
    fn an_incident_resolves_only_after_its_rule_stayed_clear() {
        let t = |m: i64| Timestamp::from_millis(m * 60_000);
        let mut i = Incident::open(finding(), t(0), &[SinkKind::Pagerduty]);
        let after = 10 * 60_000;
        assert_eq!(i.step(false, t(1), after), Step::Clearing);
        i.apply(Step::Clearing, None, t(1), &[SinkKind::Pagerduty]);
        assert_eq!(i.step(false, t(10), after), Step::Keep, "clear for 9 minutes");
        // Back over the threshold: the clear period starts again.
        assert_eq!(i.step(true, t(10), after), Step::Holding);
        assert!(i.apply(Step::Holding, Some(&[Figure::new("refused", 7)]), t(10), &[]));
        assert_eq!(i.clear_since, None);
        assert_eq!(i.step(false, t(11), after), Step::Clearing);
        i.apply(Step::Clearing, None, t(11), &[]);
        assert_eq!(i.step(false, t(21), after), Step::Resolve);
        i.apply(Step::Resolve, None, t(21), &[SinkKind::Pagerduty]);
        assert_eq!(i.state(), IncidentState::Resolved);
        assert_eq!(i.duration_ms(t(99)), 21 * 60_000);
        let actions: Vec<_> = i.notifications.iter().map(|n| n.action).collect();
        assert_eq!(actions, [NotifyAction::Trigger, NotifyAction::Resolve]);
        // With no wait, the first clear evaluation resolves.
        assert_eq!(Incident::open(finding(), t(0), &[]).step(false, t(0), 0), Step::Resolve);
    }

    #[test]
    fn silence_is_judged_against_the_subscriptions_own_rhythm() {
        let hourly = |every: usize, hours: usize| (0..hours).map(|h| u64::from(h % every == 0)).collect::<Vec<_>>();
        assert_eq!(silence_allowance_ms(&hourly(1, 24)), Some(3 * 3_600_000), "hourly traffic: 3 hours");
        assert_eq!(silence_allowance_ms(&hourly(6, 168)), Some(18 * 3_600_000), "every 6 hours: 18 hours");
        assert_eq!(silence_allowance_ms(&hourly(1, 11)), None, "too little history to know its rhythm");
        assert_eq!(silence_allowance_ms(&[0; 168]), None);
    }
}
