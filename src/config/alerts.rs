//! The `[alerts]` section joined with the sinks' credentials from the environment, and checked: a sink's
//! URL changed without its credential is an error here, at start and in `hookplane check`, rather than an
//! alert that silently goes nowhere.

use std::time::Duration;

use super::{ConfigError, Settings, invalid};
use crate::connectors::standard;
use crate::secrets::SecretBytes;
use crate::sinks::SinkSettings;
use crate::sinks::betterstack::{self, BetterStack};
use crate::sinks::pagerduty::{self, PagerDuty};
use crate::sinks::webhook::Webhook;

pub const ENV_PAGERDUTY_KEY: &str = "PAGERDUTY_ROUTING_KEY";
pub const ENV_BETTERSTACK_TOKEN: &str = "BETTERSTACK_API_TOKEN";
pub const ENV_WEBHOOK_SECRET: &str = "HOOKPLANE_ALERTS_WEBHOOK_SECRET";

fn web(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

impl Settings {
    /// The sinks that are on, with where each sends: for the settings page.
    pub fn alert_sinks(&self) -> Vec<(String, String)> {
        let s = self.sink_settings();
        let mut out = Vec::new();
        if let Some(p) = &s.pagerduty {
            out.push(("pagerduty".to_owned(), p.url.clone()));
        }
        if let Some(b) = &s.betterstack {
            out.push(("betterstack".to_owned(), b.url.clone()));
        }
        if let Some(w) = &s.webhook {
            // Incoming-webhook URLs often carry their own secret in the path: only where they go is shown.
            let url = w.url.as_str();
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            out.push(("webhook".to_owned(), format!("{scheme}://{host}/…")));
        }
        out
    }

    pub(super) fn validate_alerts(&self, origin: &str) -> Result<(), ConfigError> {
        let a = &self.alerts;
        a.check().map_err(|m| invalid(origin, m))?;
        let url = |key: &str, value: &str| {
            if value.is_empty() || web(value) {
                Ok(())
            } else {
                Err(invalid(origin, format!("alerts.{key} must start with http:// or https://")))
            }
        };
        url("runbook_url", a.runbook_url.trim())?;
        url("pagerduty_url", a.pagerduty_url.trim())?;
        url("betterstack_url", a.betterstack_url.trim())?;
        url("webhook_url", a.webhook_url.trim())?;
        let env = |name: &str| self.env.var(name).is_some();
        let needs = |key: &str, changed: bool, var: &str| {
            if changed && !env(var) {
                Err(invalid(
                    origin,
                    format!("alerts.{key} is set but {var} is not: set {var}, or leave alerts.{key} at its default"),
                ))
            } else {
                Ok(())
            }
        };
        needs("pagerduty_url", a.pagerduty_url.trim() != pagerduty::DEFAULT_URL, ENV_PAGERDUTY_KEY)?;
        needs("betterstack_url", a.betterstack_url.trim() != betterstack::DEFAULT_URL, ENV_BETTERSTACK_TOKEN)?;
        needs("webhook_url", !a.webhook_url.trim().is_empty(), ENV_WEBHOOK_SECRET)?;
        if env(ENV_PAGERDUTY_KEY) && a.pagerduty_url.trim().is_empty() {
            return Err(invalid(origin, format!("{ENV_PAGERDUTY_KEY} is set but alerts.pagerduty_url is empty")));
        }
        if env(ENV_BETTERSTACK_TOKEN) && a.betterstack_url.trim().is_empty() {
            return Err(invalid(origin, format!("{ENV_BETTERSTACK_TOKEN} is set but alerts.betterstack_url is empty")));
        }
        if let Some(secret) = self.env.var(ENV_WEBHOOK_SECRET) {
            if a.webhook_url.trim().is_empty() {
                return Err(invalid(ENV_WEBHOOK_SECRET, "is set but alerts.webhook_url is empty"));
            }
            standard::decode_secret(secret.trim())
                .map_err(|e| invalid(ENV_WEBHOOK_SECRET, format!("is not a Standard Webhooks secret: {e}")))?;
        }
        Ok(())
    }

    /// The runbook, without a section: `alerts.runbook_url`, or this instance's own.
    pub fn runbook_url(&self) -> String {
        let own = self.alerts.runbook_url.trim();
        if own.is_empty() { format!("{}/docs/runbook", self.public_base()) } else { own.to_owned() }
    }

    /// Where incidents are told, with their credentials; only sinks whose credential is set are on.
    pub fn sink_settings(&self) -> SinkSettings {
        let a = &self.alerts;
        let public_url = self.public_base();
        SinkSettings {
            pagerduty: self
                .env
                .secret(ENV_PAGERDUTY_KEY)
                .map(|routing_key| PagerDuty { url: a.pagerduty_url.trim().to_owned(), routing_key }),
            betterstack: self.env.secret(ENV_BETTERSTACK_TOKEN).map(|token| BetterStack {
                url: a.betterstack_url.trim().to_owned(),
                token,
                requester_email: a.betterstack_requester_email.trim().to_owned(),
            }),
            webhook: self
                .env
                .var(ENV_WEBHOOK_SECRET)
                .and_then(|s| standard::decode_secret(s.trim()).ok())
                .filter(|_| !a.webhook_url.trim().is_empty())
                .map(|key| Webhook { url: a.webhook_url.trim().to_owned(), key: SecretBytes::new(key) }),
            runbook_url: self.runbook_url(),
            public_url,
            timeout: Duration::from_secs(a.timeout_seconds),
        }
    }
}
