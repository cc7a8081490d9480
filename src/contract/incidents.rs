//! Incidents as the API answers them and the Incidents page renders them.

use poem_openapi::{Enum, Object};

use super::time;
use crate::domain::Timestamp;
use crate::domain::incident::{self, Incident, Notification, NotifyState};

mirror_enum!(
    /// An alert rule; its runbook section has the same name as anchor.
    AlertRule <=> incident::Rule { ConsecutiveFailures, SuccessRate, SignatureFailures, Silence, Handshake }
);
mirror_enum!(
    /// `open` → `acknowledged` (an operator is on it) → `resolved` (its rule has been clear long enough).
    IncidentState <=> incident::IncidentState { Open, Acknowledged, Resolved }
);
mirror_enum!(
    /// Where a notification went.
    AlertSink <=> incident::SinkKind { Pagerduty, Betterstack, Webhook }
);
mirror_enum!(
    NotifyAction <=> incident::NotifyAction { Trigger, Acknowledge, Resolve }
);

/// Where a notification stands: waiting for its next try, taken by the sink, failed for good, or
/// skipped (no longer needed).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum NotifyStateOut {
    Pending,
    Sent,
    Failed,
    Skipped,
}

#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct FigureOut {
    pub name: String,
    pub value: String,
}

#[derive(Object, Debug, Clone)]
pub struct NotificationOut {
    pub sink: AlertSink,
    pub action: NotifyAction,
    pub state: NotifyStateOut,
    pub queued_at: String,
    pub tries: u32,
    /// When it was sent, failed or skipped; for a pending one, when it is tried next.
    pub at: String,
    /// The sink's last answer (`202 {"status":"success",…}`, `no answer: …`), or why it was skipped.
    #[oai(nullable)]
    pub last_answer: Option<String>,
}

impl From<&Notification> for NotificationOut {
    fn from(n: &Notification) -> Self {
        let (state, at, why) = match &n.state {
            NotifyState::Pending { next_at } => (NotifyStateOut::Pending, *next_at, None),
            NotifyState::Sent { at } => (NotifyStateOut::Sent, *at, None),
            NotifyState::Failed { at } => (NotifyStateOut::Failed, *at, None),
            NotifyState::Skipped { at, why } => (NotifyStateOut::Skipped, *at, Some(why.clone())),
        };
        Self {
            sink: n.sink.into(),
            action: n.action.into(),
            state,
            queued_at: time(n.queued_at),
            tries: n.tries,
            at: time(at),
            last_answer: why.or_else(|| n.last_answer.clone()),
        }
    }
}

#[derive(Object, Debug, Clone)]
pub struct IncidentOut {
    pub id: String,
    pub rule: AlertRule,
    pub state: IncidentState,
    /// `sub_…` for a subscription, `source:shopify` for a source as a whole.
    pub subject: String,
    pub subject_name: String,
    #[oai(nullable)]
    pub subscription_id: Option<String>,
    pub summary: String,
    /// The figures that opened it.
    pub figures: Vec<FigureOut>,
    /// The latest figures while its rule held.
    pub latest_figures: Vec<FigureOut>,
    pub opened_at: String,
    #[oai(nullable)]
    pub acknowledged_by: Option<String>,
    #[oai(nullable)]
    pub acknowledged_at: Option<String>,
    /// While open: since when its rule has been clear (it resolves once that lasts long enough).
    #[oai(nullable)]
    pub clear_since: Option<String>,
    #[oai(nullable)]
    pub resolved_at: Option<String>,
    /// How long it lasted, or has lasted so far.
    pub duration_seconds: i64,
    pub runbook_url: String,
    pub notifications: Vec<NotificationOut>,
}

fn figures(f: &[incident::Figure]) -> Vec<FigureOut> {
    f.iter().map(|f| FigureOut { name: f.name.clone(), value: f.value.clone() }).collect()
}

impl IncidentOut {
    /// `runbook` is the runbook without a section.
    pub fn new(i: &Incident, now: Timestamp, runbook: &str) -> Self {
        Self {
            id: i.id.to_string(),
            rule: i.rule.into(),
            state: i.state().into(),
            subject: i.subject.key(),
            subject_name: i.subject_name.clone(),
            subscription_id: i.subject.subscription().map(|s| s.to_string()),
            summary: i.summary.clone(),
            figures: figures(&i.figures),
            latest_figures: figures(&i.latest_figures),
            opened_at: time(i.opened_at),
            acknowledged_by: i.acknowledged.as_ref().map(|a| a.by.clone()),
            acknowledged_at: i.acknowledged.as_ref().map(|a| time(a.at)),
            clear_since: i.clear_since.map(time),
            resolved_at: i.resolved_at.map(time),
            duration_seconds: i.duration_ms(now) / 1000,
            runbook_url: format!("{runbook}#{}", i.rule.as_str()),
            notifications: i.notifications.iter().map(NotificationOut::from).collect(),
        }
    }
}

/// One page of incidents, newest first.
#[derive(Object, Debug, Clone)]
pub struct IncidentPage {
    pub items: Vec<IncidentOut>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// The filters as they arrive in a query string, shared by the API and the Incidents page.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct IncidentParams {
    pub state: Option<String>,
    pub rule: Option<String>,
    pub subscription: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}
