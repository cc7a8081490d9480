//! PagerDuty Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`): `trigger` when an incident
//! opens, `acknowledge` when an operator acknowledges it in Hookplane, `resolve` when it resolves, all
//! under one `dedup_key` per incident, so PagerDuty keeps them as one alert.

use serde_json::{Value, json};

use super::{Outgoing, SinkSettings, headline};
use crate::domain::incident::{Incident, NotifyAction};
use crate::secrets::SecretBytes;

pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Debug, Clone)]
pub struct PagerDuty {
    pub url: String,
    /// The integration's routing key (`PAGERDUTY_ROUTING_KEY`).
    pub routing_key: SecretBytes,
}

/// The event's `dedup_key`: the same for every event of one incident.
pub fn dedup_key(incident: &Incident) -> String {
    format!("hookplane-{}", incident.id)
}

pub fn request(pd: &PagerDuty, s: &SinkSettings, action: NotifyAction, incident: &Incident) -> Outgoing {
    let routing_key = String::from_utf8_lossy(pd.routing_key.expose()).into_owned();
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action.as_str(),
        "dedup_key": dedup_key(incident),
    });
    if action == NotifyAction::Trigger {
        let details: serde_json::Map<String, Value> =
            incident.figures.iter().map(|f| (f.name.clone(), Value::String(f.value.clone()))).collect();
        event["payload"] = json!({
            "summary": headline(incident, action).chars().take(1024).collect::<String>(),
            "source": format!("hookplane:{}", incident.subject_name),
            "severity": incident.rule.severity(),
            "timestamp": incident.opened_at.to_rfc3339(),
            "component": incident.subject_name,
            "class": incident.rule.as_str(),
            "custom_details": details,
        });
        event["links"] = json!([
            { "href": s.incident_url(incident), "text": "The incident in Hookplane" },
            { "href": s.runbook_section(incident), "text": format!("Runbook: {}", incident.rule.title()) },
        ]);
        event["client"] = json!("Hookplane");
        event["client_url"] = json!(s.incident_url(incident));
    }
    Outgoing { url: pd.url.clone(), headers: Vec::new(), body: serde_json::to_vec(&event).unwrap_or_default() }
}
