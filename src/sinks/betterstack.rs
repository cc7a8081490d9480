//! Better Stack's Uptime API, v3 (as documented in December 2026 at betterstack.com/docs/uptime/api):
//! `POST /api/v3/incidents` with a Bearer token creates an incident and answers 201 with its id at
//! `data.id` (a string); `POST /api/v3/incidents/{id}/acknowledge` (`acknowledged_by`) and
//! `POST /api/v3/incidents/{id}/resolve` (`resolved_by`) answer 200, or 409 when already done.

use serde_json::json;

use super::{Outgoing, SinkSettings, headline};
use crate::domain::incident::{Incident, NotifyAction, SinkKind};
use crate::secrets::SecretBytes;

pub const DEFAULT_URL: &str = "https://uptime.betterstack.com";

#[derive(Debug, Clone)]
pub struct BetterStack {
    /// The API's base URL, without `/api/v3`.
    pub url: String,
    /// An Uptime API token (`BETTERSTACK_API_TOKEN`).
    pub token: SecretBytes,
    /// Who the incidents are requested by; Better Stack lists it on the incident. Empty: left out.
    pub requester_email: String,
}

/// The request, or `None` for an acknowledgement or resolution of an incident Better Stack has not given
/// an id yet.
pub fn request(bs: &BetterStack, s: &SinkSettings, action: NotifyAction, incident: &Incident) -> Option<Outgoing> {
    let base = format!("{}/api/v3/incidents", bs.url.trim_end_matches('/'));
    let (url, body) = match action {
        NotifyAction::Trigger => {
            let mut lines: Vec<String> = incident.figures.iter().map(|f| format!("{}: {}", f.name, f.value)).collect();
            lines.push(format!("Incident: {}", s.incident_url(incident)));
            lines.push(format!("Runbook: {}", s.runbook_section(incident)));
            let mut body = json!({
                "name": format!("Hookplane: {} on {}", incident.rule.title(), incident.subject_name),
                "summary": headline(incident, action),
                "description": lines.join("\n"),
            });
            if !bs.requester_email.is_empty() {
                body["requester_email"] = json!(bs.requester_email);
            }
            (base, body)
        }
        NotifyAction::Acknowledge | NotifyAction::Resolve => {
            let id = incident.external_ids.get(SinkKind::Betterstack.as_str())?;
            let by = incident.acknowledged.as_ref().map_or("Hookplane", |a| a.by.as_str());
            if action == NotifyAction::Acknowledge {
                (format!("{base}/{id}/acknowledge"), json!({ "acknowledged_by": by }))
            } else {
                (format!("{base}/{id}/resolve"), json!({ "resolved_by": "Hookplane" }))
            }
        }
    };
    let token = String::from_utf8_lossy(bs.token.expose()).into_owned();
    Some(Outgoing {
        url,
        headers: vec![("authorization", format!("Bearer {token}"))],
        body: serde_json::to_vec(&body).unwrap_or_default(),
    })
}

/// The id of the incident Better Stack made, from its answer.
pub fn id_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    match &v["data"]["id"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
