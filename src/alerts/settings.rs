//! The `[alerts]` section: thresholds with per-subscription overrides, and where the sinks are. Their
//! credentials come from the environment; `config` joins the two.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::incident::{AlertRules, Thresholds};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    pub evaluate_interval_ms: u64,
    pub resolve_after_minutes: u64,
    pub consecutive_failures: u32,
    pub success_rate: f64,
    pub min_attempts: u64,
    pub signature_failures: u64,
    pub silence: bool,
    pub runbook_url: String,
    pub pagerduty_url: String,
    pub betterstack_url: String,
    pub betterstack_requester_email: String,
    pub webhook_url: String,
    pub timeout_seconds: u64,
    #[serde(default)]
    pub overrides: BTreeMap<String, ThresholdOverride>,
}

/// A subscription's own thresholds; what it leaves out is the default's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOverride {
    pub consecutive_failures: Option<u32>,
    pub success_rate: Option<f64>,
    pub min_attempts: Option<u64>,
    pub signature_failures: Option<u64>,
    pub silence: Option<bool>,
}

impl AlertSettings {
    pub fn defaults(&self) -> Thresholds {
        Thresholds {
            consecutive_failures: self.consecutive_failures,
            success_rate: self.success_rate,
            min_attempts: self.min_attempts,
            signature_failures: self.signature_failures,
            silence: self.silence,
        }
    }

    /// The rules, with `drift_grace_minutes` for the version drift warnings the same banners show.
    pub fn rules(&self, drift_grace_minutes: u32) -> AlertRules {
        let d = self.defaults();
        let overrides = self
            .overrides
            .iter()
            .map(|(name, o)| {
                let t = Thresholds {
                    consecutive_failures: o.consecutive_failures.unwrap_or(d.consecutive_failures),
                    success_rate: o.success_rate.unwrap_or(d.success_rate),
                    min_attempts: o.min_attempts.unwrap_or(d.min_attempts),
                    signature_failures: o.signature_failures.unwrap_or(d.signature_failures),
                    silence: o.silence.unwrap_or(d.silence),
                };
                (name.clone(), t)
            })
            .collect();
        AlertRules {
            defaults: d,
            overrides,
            resolve_after_minutes: self.resolve_after_minutes,
            drift_grace_ms: i64::from(drift_grace_minutes) * 60_000,
        }
    }

    pub fn evaluate_every(&self) -> Duration {
        Duration::from_millis(self.evaluate_interval_ms)
    }

    /// What is wrong with the thresholds, if anything, named by key.
    pub fn check(&self) -> Result<(), String> {
        let rate = |r: f64| (0.0..=1.0).contains(&r);
        if !(50..=3_600_000).contains(&self.evaluate_interval_ms) {
            return Err("alerts.evaluate_interval_ms must be between 50 and 3600000".into());
        }
        if self.resolve_after_minutes > 1440 {
            return Err("alerts.resolve_after_minutes must be between 0 and 1440".into());
        }
        if !rate(self.success_rate) {
            return Err("alerts.success_rate must be between 0 and 1 (0.9 is 90 %)".into());
        }
        if !(1..=120).contains(&self.timeout_seconds) {
            return Err("alerts.timeout_seconds must be between 1 and 120".into());
        }
        for (name, o) in &self.overrides {
            if o.success_rate.is_some_and(|r| !rate(r)) {
                return Err(format!("alerts.overrides.{name}.success_rate must be between 0 and 1"));
            }
        }
        Ok(())
    }
}
