//! The processing service's versions: deploys a pipeline announces (`POST /api/v1/deploys`,
//! `hookplane deploys announce`), and the poller that asks each subscription's version URL every
//! `drift.poll_interval_seconds`. Versions named in attempts' answers are recorded with the attempt
//! (`storage::attempts::file`); the drift rules read both (`domain::deploy::judge`, through `loader`).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::deploy::{self, Announced, clean_version};
use crate::domain::{Clock, SubscriptionId};
use crate::storage::{Store, StoreError, audit, deploys, subscriptions};
use crate::task::AliveGuard;

/// The `[drift]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DriftSettings {
    /// How long a deploy may roll out before two versions side by side, or a destination more than one
    /// deploy behind, is warned about. 0 warns at once.
    pub grace_minutes: u32,
    /// How often each subscription's version URL is asked.
    pub poll_interval_seconds: u32,
    /// How long a version URL may take to answer.
    pub timeout_seconds: u32,
}

impl DriftSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.grace_minutes > 1440 {
            return Err("drift.grace_minutes must be between 0 and 1440".to_owned());
        }
        if !(10..=86_400).contains(&self.poll_interval_seconds) {
            return Err("drift.poll_interval_seconds must be between 10 and 86400".to_owned());
        }
        if !(1..=120).contains(&self.timeout_seconds) {
            return Err("drift.timeout_seconds must be between 1 and 120".to_owned());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A deploy recorded, and the subscriptions whose destinations belong to its service.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub service: String,
    pub deploy: Announced,
    pub subscriptions: Vec<String>,
}

/// Most of a version URL's answer read: a version is a short label.
const MAX_ANSWER_BYTES: usize = 4096;

pub struct Deploys {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    settings: DriftSettings,
    client: reqwest::Client,
}

impl Deploys {
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>, settings: DriftSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("Hookplane/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(u64::from(settings.timeout_seconds)))
            .build()?;
        Ok(Self { store, clock, settings, client })
    }

    pub fn settings(&self) -> &DriftSettings {
        &self.settings
    }

    /// Records that `service` was deployed at `version` now, audited.
    pub async fn announce(&self, service: String, version: String, by: Actor) -> Result<Recorded, DeployError> {
        deploy::check_label("service", &service).map_err(DeployError::Invalid)?;
        deploy::check_label("version", &version).map_err(DeployError::Invalid)?;
        let now = self.clock.now();
        let recorded = self
            .store
            .read(move |db| {
                let tx = db.begin_write()?;
                let deploy = Announced { version, at: now, by: by.label.clone() };
                deploys::announce(&tx, &service, &deploy)?;
                let entry = by
                    .entry(now, AuditAction::DeployAnnounced)
                    .target(&service)
                    .change(Change::set("version", deploy.version.clone()));
                audit::append(&tx, &entry)?;
                tx.commit()?;
                let subs = subscriptions::list(db)?
                    .into_iter()
                    .filter(|s| s.versions.service(s.destination.url()).as_deref() == Some(service.as_str()))
                    .map(|s| s.name)
                    .collect();
                Ok::<_, StoreError>(Recorded { service, deploy, subscriptions: subs })
            })
            .await?;
        Ok(recorded)
    }

    /// Asks every version URL at once, then every `drift.poll_interval_seconds`.
    pub fn spawn_poller(self: &Arc<Self>, guard: AliveGuard) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _guard = guard;
            let mut tick = tokio::time::interval(Duration::from_secs(u64::from(this.settings.poll_interval_seconds)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = this.poll_once().await {
                    tracing::error!(error = %e, "reading the subscriptions to poll versions failed; will retry");
                }
            }
        })
    }

    /// Asks each subscription's version URL once and records what they answer; returns how many did.
    pub async fn poll_once(&self) -> Result<usize, StoreError> {
        let subs = self.store.read(subscriptions::list).await?;
        let mut recorded = 0;
        for s in subs.into_iter().filter(|s| s.destination.url().is_some()) {
            let Some(url) = s.versions.url.clone() else { continue };
            match self.ask(&url, s.versions.header()).await {
                Ok(version) => {
                    let (id, at) = (s.id, self.clock.now());
                    self.store.read(move |db| record(db, id, &version, at)).await?;
                    recorded += 1;
                }
                Err(why) => tracing::warn!(subscription = %s.name, %url, %why, "a version URL gave no version"),
            }
        }
        Ok(recorded)
    }

    async fn ask(&self, url: &str, header: &str) -> Result<String, String> {
        let mut resp = self.client.get(url).send().await.map_err(|e| crate::logging::chain(&e))?;
        if !resp.status().is_success() {
            return Err(format!("it answered {}", resp.status().as_u16()));
        }
        if let Some(v) = resp.headers().get(header).and_then(|v| v.to_str().ok()).and_then(clean_version) {
            return Ok(v);
        }
        let mut body = Vec::new();
        while body.len() < MAX_ANSWER_BYTES {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => return Err(crate::logging::chain(&e)),
            }
        }
        version_in(&body).ok_or_else(|| {
            format!("neither its `{header}` header nor its body (a JSON `version`, or the version as text) named one")
        })
    }
}

fn record(
    db: &redb::Database,
    id: SubscriptionId,
    version: &str,
    at: crate::domain::Timestamp,
) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    deploys::seen(&tx, id, version, at)?;
    tx.commit()?;
    Ok(())
}

/// The version a version URL's body names: a JSON object's `version`, or the whole body as text.
fn version_in(body: &[u8]) -> Option<String> {
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(body) {
        return match o.get("version").unwrap_or(&serde_json::Value::Null) {
            serde_json::Value::String(s) => clean_version(s),
            serde_json::Value::Number(n) => clean_version(&n.to_string()),
            _ => None,
        };
    }
    std::str::from_utf8(body).ok().and_then(clean_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_url_may_answer_json_or_text() {
        assert_eq!(version_in(br#"{"version":"1.4.2","commit":"abc"}"#), Some("1.4.2".into()));
        assert_eq!(version_in(b"2.0.1\n"), Some("2.0.1".into()));
        assert_eq!(version_in(br#"{"name":"orders"}"#), None);
        assert_eq!(version_in(b"7"), Some("7".into()), "a bare number is text");
        assert_eq!(version_in(b""), None);
        assert_eq!(version_in(&[0xff, 0xfe]), None);
    }
}
