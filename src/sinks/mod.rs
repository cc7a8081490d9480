//! Where incidents are told: PagerDuty's Events API v2, Better Stack's Uptime API, and a generic webhook
//! signed with Standard Webhooks (its JSON carries a `text` line, so a Slack-compatible incoming webhook
//! takes it as it is). Each module builds its sink's exact request; this one sends it and sorts the answer
//! into accepted, worth another try, or refused for good.

pub mod betterstack;
pub mod pagerduty;
pub mod webhook;

use std::time::Duration;

use crate::domain::Timestamp;
use crate::domain::incident::{Incident, NotifyAction, SinkAnswer, SinkKind};

/// Each sink's settings; a sink without them is off.
#[derive(Debug, Clone, Default)]
pub struct SinkSettings {
    pub pagerduty: Option<pagerduty::PagerDuty>,
    pub betterstack: Option<betterstack::BetterStack>,
    pub webhook: Option<webhook::Webhook>,
    /// This instance's public base URL, for links to incidents.
    pub public_url: String,
    /// The runbook, without a section: `{public_url}/docs/runbook` unless `alerts.runbook_url` says.
    pub runbook_url: String,
    pub timeout: Duration,
}

impl SinkSettings {
    pub fn kinds(&self) -> Vec<SinkKind> {
        let mut out = Vec::new();
        if self.pagerduty.is_some() {
            out.push(SinkKind::Pagerduty);
        }
        if self.betterstack.is_some() {
            out.push(SinkKind::Betterstack);
        }
        if self.webhook.is_some() {
            out.push(SinkKind::Webhook);
        }
        out
    }

    /// The incident's page in the dashboard.
    pub fn incident_url(&self, incident: &Incident) -> String {
        format!("{}/dashboard/incidents/{}", self.public_url, incident.id)
    }

    /// The runbook's section for the incident's rule.
    pub fn runbook_section(&self, incident: &Incident) -> String {
        format!("{}#{}", self.runbook_url, incident.rule.as_str())
    }
}

/// One request to a sink, built by its module.
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What became of a notification that could not be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsent {
    /// Better Stack's acknowledgement or resolution needs the id its trigger got back.
    NeedsTrigger,
    /// The sink is not configured (any more): nothing can be sent to it.
    Off,
}

/// The line a person reads first.
pub fn headline(incident: &Incident, action: NotifyAction) -> String {
    let what = match action {
        NotifyAction::Trigger => "opened",
        NotifyAction::Acknowledge => "acknowledged",
        NotifyAction::Resolve => "resolved",
    };
    format!("[Hookplane] {} on {} {what}: {}", incident.rule.title(), incident.subject_name, incident.summary)
}

pub struct Sinks {
    settings: SinkSettings,
    client: reqwest::Client,
}

impl Sinks {
    pub fn new(settings: SinkSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Hookplane/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { settings, client })
    }

    pub fn settings(&self) -> &SinkSettings {
        &self.settings
    }

    /// Tells `kind` about `incident`; `index` is the notification's place in the incident, which keeps
    /// a webhook's message id stable across tries.
    pub async fn send(
        &self,
        kind: SinkKind,
        action: NotifyAction,
        incident: &Incident,
        index: usize,
        now: Timestamp,
    ) -> Result<SinkAnswer, Unsent> {
        let s = &self.settings;
        let out = match kind {
            SinkKind::Pagerduty => pagerduty::request(s.pagerduty.as_ref().ok_or(Unsent::Off)?, s, action, incident),
            SinkKind::Betterstack => {
                let bs = s.betterstack.as_ref().ok_or(Unsent::Off)?;
                betterstack::request(bs, s, action, incident).ok_or(Unsent::NeedsTrigger)?
            }
            SinkKind::Webhook => {
                webhook::request(s.webhook.as_ref().ok_or(Unsent::Off)?, s, action, incident, index, now)
            }
        };
        Ok(self.post(kind, action, out).await)
    }

    async fn post(&self, kind: SinkKind, action: NotifyAction, out: Outgoing) -> SinkAnswer {
        let mut req = self.client.post(&out.url).header("content-type", "application/json");
        for (k, v) in &out.headers {
            req = req.header(*k, v);
        }
        let resp = match req.body(out.body).send().await {
            Ok(resp) => resp,
            Err(e) => return SinkAnswer::Retry { answer: format!("no answer: {}", crate::logging::chain(&e)) },
        };
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        let excerpt: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        let answer = format!("{} {}", status.as_u16(), excerpt.trim()).trim().to_owned();
        // Better Stack answers 409 to an acknowledgement or resolution it already has: done.
        let already = kind == SinkKind::Betterstack && status.as_u16() == 409 && action != NotifyAction::Trigger;
        if status.is_success() || already {
            let external_id = if kind == SinkKind::Betterstack && action == NotifyAction::Trigger {
                betterstack::id_of(&body)
            } else {
                None
            };
            SinkAnswer::Accepted { answer, external_id }
        } else if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
            SinkAnswer::Retry { answer }
        } else {
            SinkAnswer::Refused { answer }
        }
    }
}
