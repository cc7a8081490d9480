//! A generic webhook, signed with Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`). The JSON carries the incident, plus a `text` line that a Slack-compatible incoming
//! webhook shows as it is.

use serde_json::json;

use super::{Outgoing, SinkSettings, headline};
use crate::connectors::standard;
use crate::domain::Timestamp;
use crate::domain::incident::{Incident, NotifyAction};
use crate::secrets::SecretBytes;

#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    /// The signing key, decoded from its `whsec_…` form (`HOOKPLANE_ALERTS_WEBHOOK_SECRET`).
    pub key: SecretBytes,
}

/// The message id: the same for every try of one notification, so the receiver can drop repeats.
pub fn message_id(incident: &Incident, index: usize) -> String {
    format!("msg_{}_{index}", incident.id)
}

pub fn request(
    wh: &Webhook,
    s: &SinkSettings,
    action: NotifyAction,
    incident: &Incident,
    index: usize,
    now: Timestamp,
) -> Outgoing {
    let kind = match action {
        NotifyAction::Trigger => "incident.opened",
        NotifyAction::Acknowledge => "incident.acknowledged",
        NotifyAction::Resolve => "incident.resolved",
    };
    let figures: serde_json::Map<String, serde_json::Value> =
        incident.figures.iter().map(|f| (f.name.clone(), json!(f.value))).collect();
    let text = format!(
        "{} <{}|incident> · <{}|runbook>",
        headline(incident, action),
        s.incident_url(incident),
        s.runbook_section(incident)
    );
    let body = json!({
        "type": kind,
        "timestamp": now.to_rfc3339(),
        "text": text,
        "data": {
            "id": incident.id.to_string(),
            "rule": incident.rule.as_str(),
            "subject": incident.subject.key(),
            "subject_name": incident.subject_name,
            "state": incident.state().as_str(),
            "summary": incident.summary,
            "figures": figures,
            "opened_at": incident.opened_at.to_rfc3339(),
            "acknowledged_by": incident.acknowledged.as_ref().map(|a| a.by.clone()),
            "resolved_at": incident.resolved_at.map(Timestamp::to_rfc3339),
            "url": s.incident_url(incident),
            "runbook_url": s.runbook_section(incident),
        },
    });
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let id = message_id(incident, index);
    let ts = now.seconds();
    let signature = standard::sign(&id, ts, &body, wh.key.expose());
    Outgoing {
        url: wh.url.clone(),
        headers: vec![("webhook-id", id), ("webhook-timestamp", ts.to_string()), ("webhook-signature", signature)],
        body,
    }
}
