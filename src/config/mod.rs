//! Settings in layers: the commented defaults file compiled into the binary → a user TOML file →
//! `HOOKPLANE_*` environment variables → command-line flags. Validated once, here; unknown keys are errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::alerts::settings::AlertSettings;
use crate::auth::AuthSettings;
use crate::connectors::zoho::{SignatureEncoding, SignatureScheme};
use crate::control::erasures::PrivacySettings;
use crate::control::{ControlOptions, DeclaredSubscription};
use crate::deploys::DriftSettings;
use crate::handshakes::settings::HandshakeSettings;
use crate::http::HttpSettings;
use crate::ingest::IngestOptions;
use crate::jobs::worker::DeliverySettings;
use crate::retention::RetentionSettings;
use crate::search::SearchSettings;
use crate::secrets::DigestParams;

mod alerts;
mod env;
mod handshake;
mod layers;
mod master_key;

use env::{ENV_CONFIG, ENV_SETUP_CODE};
pub use env::{ENV_DEMO, ENV_SHOPIFY_SECRET, ENV_SHOPIFY_SECRET_PREVIOUS, EnvSecrets};
pub use master_key::master_key;

use layers::{apply_env, merge};

/// The defaults, documented key by key.
pub const DEFAULTS_TOML: &str = include_str!("../../config/hookplane.example.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

fn invalid(origin: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { origin: origin.into(), message: message.into() }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub master_key_file: PathBuf,
    pub public_url: String,
    pub log: String,
    pub log_format: crate::logging::LogFormat,
    pub shutdown_grace_seconds: u64,
    pub ingest: IngestSettings,
    pub storage: StorageSettings,
    pub search: SearchSettings,
    pub delivery: DeliverySettings,
    pub dashboard: DashboardSettings,
    pub auth: AuthSettings,
    pub shopify: ShopifySettings,
    pub standard: StandardSettings,
    pub zoho: ZohoSettings,
    pub secrets: SecretSettings,
    pub alerts: AlertSettings,
    pub handshake: HandshakeSettings,
    pub retention: RetentionSettings,
    pub privacy: PrivacySettings,
    pub drift: DriftSettings,
    pub subscriptions: Vec<DeclaredSubscription>,
    /// Secrets taken from the environment; never from a file.
    #[serde(skip)]
    pub env: EnvSecrets,
    /// Where `retention.days` was set, when the file or the environment set it: the dashboard shows it and
    /// cannot change it.
    #[serde(skip)]
    pub retention_days_from: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub cache_mib: u32,
    pub verify_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    pub max_body_bytes: usize,
    pub write_queue: usize,
    pub max_batch: usize,
    pub compression_level: i32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSettings {
    pub open_on_loopback: bool,
    pub logs_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifySettings {
    pub discover_unknown_topics: bool,
    pub api_version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardSettings {
    pub tolerance_seconds: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoSettings {
    pub token_header: String,
    pub signature: ZohoSignatureSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoSignatureSettings {
    pub header: String,
    pub encoding: SignatureEncoding,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSettings {
    pub digest_memory_kib: u32,
    pub digest_iterations: u32,
    pub rotation_overlap_hours: u32,
}

impl SecretSettings {
    pub fn digest_params(&self) -> DigestParams {
        DigestParams { memory_kib: self.digest_memory_kib, iterations: self.digest_iterations }
    }
}

/// Command-line flags that override everything else.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads settings from the layers. `env` is the process environment (passed in so tests need not
    /// touch the real one).
    pub fn load(flags: &Flags, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut merged: toml::Table =
            DEFAULTS_TOML.parse().map_err(|e| invalid("built-in defaults", format!("{e}")))?;
        let defaults = merged.clone();

        let file = flags.config.clone().or_else(|| env.get(ENV_CONFIG).filter(|v| !v.is_empty()).map(PathBuf::from));
        let mut retention_days_from = None;
        if let Some(path) = &file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            let user: toml::Table = text.parse().map_err(|e| invalid(path.display().to_string(), format!("{e}")))?;
            if user.get("retention").and_then(|r| r.get("days")).is_some() {
                retention_days_from = Some(format!("`retention.days` in {}", path.display()));
            }
            merge(&mut merged, user);
        }
        if let Some(name) = env.keys().find(|k| k.eq_ignore_ascii_case("HOOKPLANE_RETENTION__DAYS")) {
            retention_days_from = Some(format!("the environment variable {name}"));
        }
        apply_env(&mut merged, &defaults, env)?;
        let origin = file.as_deref().map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
        let mut settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().message().to_owned();
            invalid(origin.clone(), if key == "." { message } else { format!("{key}: {message}") })
        })?;
        if let Some(listen) = flags.listen {
            settings.listen = listen;
        }
        if let Some(dir) = &flags.data_dir {
            settings.data_dir = dir.clone();
        }
        settings.retention_days_from = retention_days_from;
        settings.env = EnvSecrets::from_env(env);
        settings.validate(&origin)?;
        if settings.env.setup_code.as_ref().is_some_and(|c| c.expose().len() < crate::auth::setup::MIN_CODE_CHARS) {
            return Err(invalid(
                ENV_SETUP_CODE,
                format!("must be at least {} characters", crate::auth::setup::MIN_CODE_CHARS),
            ));
        }
        Ok(settings)
    }

    /// The settings of `--demo` and of tests: the built-in defaults, no file, no environment.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::load(&Flags::default(), &BTreeMap::new())
    }

    pub fn master_key_file(&self) -> Option<&Path> {
        (!self.master_key_file.as_os_str().is_empty()).then_some(self.master_key_file.as_path())
    }

    /// What ingest needs.
    pub fn ingest_options(&self) -> IngestOptions {
        IngestOptions {
            compression_level: self.ingest.compression_level,
            discover: self.shopify.discover_unknown_topics,
            tolerance_secs: self.standard.tolerance_seconds,
            zoho_token_header: self.zoho.token_header.clone(),
            zoho_signature: SignatureScheme {
                header: self.zoho.signature.header.clone(),
                encoding: self.zoho.signature.encoding,
            },
        }
    }

    /// What changing subscriptions needs.
    pub fn control_options(&self) -> ControlOptions {
        let d = &self.delivery;
        ControlOptions {
            // A destination's own timeout must leave its lease two heartbeats to spare.
            max_timeout_seconds: u32::try_from(d.lease_seconds.saturating_sub(2 * d.heartbeat_seconds + 1))
                .unwrap_or(u32::MAX)
                .min(600),
            digest: self.secrets.digest_params(),
            zoho_token_header: self.zoho.token_header.clone(),
        }
    }

    /// The base URL providers and people reach this instance at; no trailing slash.
    pub fn public_base(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }

    /// What the HTTP handlers need.
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            public_url: self.public_base(),
            max_body_bytes: self.ingest.max_body_bytes,
            open_on_loopback: self.dashboard.open_on_loopback,
            rotation_overlap_hours: self.secrets.rotation_overlap_hours,
            shopify_api_version: self.shopify.api_version.clone(),
            logs_url: Some(self.dashboard.logs_url.trim().to_owned()).filter(|u| !u.is_empty()),
            alert_rules: std::sync::Arc::new(self.alerts.rules(self.drift.grace_minutes)),
            runbook_url: self.runbook_url(),
            alert_sinks: self.alert_sinks(),
        }
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let check = |ok: bool, msg: &str| if ok { Ok(()) } else { Err(invalid(origin, msg)) };
        let i = &self.ingest;
        check((1..=1 << 30).contains(&i.max_body_bytes), "ingest.max_body_bytes must be between 1 and 1073741824")?;
        check(i.write_queue >= 1, "ingest.write_queue must be at least 1")?;
        check(i.max_batch >= 1, "ingest.max_batch must be at least 1")?;
        check((-7..=19).contains(&i.compression_level), "ingest.compression_level must be between -7 and 19")?;
        check((1..=65536).contains(&self.storage.cache_mib), "storage.cache_mib must be between 1 and 65536")?;
        let s = &self.search;
        check((1..=60_000).contains(&s.commit_interval_ms), "search.commit_interval_ms must be between 1 and 60000")?;
        check(s.commit_docs >= 1, "search.commit_docs must be at least 1")?;
        check((15..=4096).contains(&s.memory_mib), "search.memory_mib must be between 15 and 4096")?;
        check(s.defer_busy_percent <= 100, "search.defer_busy_percent must be between 0 and 100")?;
        check(s.max_queued_kib >= 1, "search.max_queued_kib must be at least 1")?;
        let d = &self.delivery;
        check((1..=600).contains(&d.timeout_seconds), "delivery.timeout_seconds must be between 1 and 600")?;
        check(
            d.retry_delays_seconds.len() <= 50 && d.retry_delays_seconds.iter().all(|s| *s <= 7 * 86_400),
            "delivery.retry_delays_seconds may hold at most 50 waits of at most 604800 seconds (7 days) each",
        )?;
        check(d.retry_jitter_percent <= 100, "delivery.retry_jitter_percent must be between 0 and 100")?;
        check(
            d.concurrency >= 1 && d.per_destination_concurrency >= 1,
            "delivery.concurrency and delivery.per_destination_concurrency must be at least 1",
        )?;
        check(d.heartbeat_seconds >= 1, "delivery.heartbeat_seconds must be at least 1")?;
        check(
            d.lease_seconds > d.timeout_seconds + 2 * d.heartbeat_seconds,
            "delivery.lease_seconds must exceed delivery.timeout_seconds plus two delivery.heartbeat_seconds, so a delivery is never sent by two workers at once",
        )?;
        check((10..=60_000).contains(&d.poll_interval_ms), "delivery.poll_interval_ms must be between 10 and 60000")?;
        check(self.standard.tolerance_seconds >= 1, "standard.tolerance_seconds must be at least 1")?;
        check(
            self.shopify.api_version.len() == 7
                && self
                    .shopify
                    .api_version
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| if i == 4 { b == b'-' } else { b.is_ascii_digit() }),
            "shopify.api_version must be a quarterly version like 2026-10",
        )?;
        check(
            !self.zoho.token_header.trim().is_empty() && !self.zoho.signature.header.trim().is_empty(),
            "zoho.token_header and zoho.signature.header must name a header",
        )?;
        check(self.secrets.digest_memory_kib >= 8, "secrets.digest_memory_kib must be at least 8")?;
        check(self.secrets.digest_iterations >= 1, "secrets.digest_iterations must be at least 1")?;
        check(
            (1..=720).contains(&self.secrets.rotation_overlap_hours),
            "secrets.rotation_overlap_hours must be between 1 and 720",
        )?;
        let a = &self.auth;
        check(a.password_memory_kib >= 8, "auth.password_memory_kib must be at least 8")?;
        check(a.password_iterations >= 1, "auth.password_iterations must be at least 1")?;
        check(a.session_idle_minutes >= 1, "auth.session_idle_minutes must be at least 1")?;
        check(a.session_absolute_hours >= 1, "auth.session_absolute_hours must be at least 1")?;
        check(
            a.login_failures_per_account >= 1 && a.login_failures_per_address >= 1,
            "auth.login_failures_per_account and auth.login_failures_per_address must be at least 1",
        )?;
        check(a.login_window_minutes >= 1, "auth.login_window_minutes must be at least 1")?;
        let web = |url: &str| url.is_empty() || url.starts_with("http://") || url.starts_with("https://");
        check(web(&self.public_url), "public_url must start with http:// or https://")?;
        check(web(self.dashboard.logs_url.trim()), "dashboard.logs_url must start with http:// or https://")?;
        self.handshake.check().map_err(|m| invalid(origin, m))?;
        self.retention.check().map_err(|m| invalid(origin, m))?;
        self.drift.check().map_err(|m| invalid(origin, m))?;
        self.privacy.check().map_err(|m| invalid(origin, m))?;
        self.validate_alerts(origin)
    }
}

impl Settings {
    /// What an operator starting Hookplane should know about this configuration.
    pub fn log_hints(&self, registry: &crate::ingest::registry::Registry, operators_exist: bool) {
        if registry.shopify_app.is_empty() {
            tracing::info!(
                "SHOPIFY_WEBHOOK_SECRET is not set: /shopify/webhook accepts only subscriptions with their own secret"
            );
        }
        if !operators_exist && !self.dashboard.open_on_loopback {
            tracing::info!(
                "no operator can sign in yet: stop Hookplane and run `hookplane admin create-user --username NAME \
                 --role admin`; until one exists, only API tokens can reach the dashboard"
            );
        }
        tracing::info!(subscriptions = registry.len(), "subscriptions loaded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.ingest.max_body_bytes, 5 * 1024 * 1024);
        assert_eq!(s.standard.tolerance_seconds, 300);
        assert!(s.master_key_file().is_none());
        assert!(s.subscriptions.is_empty());
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nlisten = \"127.0.0.1:1000\"\n[ingest]\nmax_body_bytes = 100\n\
             [[subscriptions]]\nname = \"leads\"\nsource = \"zoho\"\ntopic = \"Leads.all\"\naccount = \"org\"\nchannel_id = \"7\"\nsecret_env = \"LEADS\"\n",
        )
        .unwrap();
        let e = env(&[
            ("HOOKPLANE_CONFIG", file.to_str().unwrap()),
            ("HOOKPLANE_LISTEN", "127.0.0.1:2000"),
            ("HOOKPLANE_INGEST__MAX_BATCH", "7"),
            ("HOOKPLANE_SHOPIFY__DISCOVER_UNKNOWN_TOPICS", "false"),
            ("HOOKPLANE_DELIVERY__RETRY_DELAYS_SECONDS", "5, 10,20"),
            ("SHOPIFY_WEBHOOK_SECRET", "hush"),
            ("LEADS", "tok"),
            ("UNRELATED", "x"),
        ]);
        let s = Settings::load(&Flags { data_dir: Some("/flag".into()), ..Flags::default() }, &e).unwrap();
        assert_eq!(s.listen.port(), 2000, "env beats file");
        assert_eq!(s.data_dir, PathBuf::from("/flag"), "flag beats file");
        assert_eq!(s.ingest.max_body_bytes, 100, "file beats defaults");
        assert_eq!(s.ingest.max_batch, 7);
        assert!(!s.shopify.discover_unknown_topics);
        assert_eq!(s.delivery.retry_delays_seconds, vec![5, 10, 20], "a list from `a,b,c`");
        assert_eq!(s.subscriptions[0].channel_id.as_deref(), Some("7"));
        assert_eq!(s.env.shopify_secret.as_ref().map(|b| b.expose().to_vec()), Some(b"hush".to_vec()));
        assert_eq!(s.env.var("LEADS"), Some("tok"));
        assert!(!format!("{s:?}").contains("hush"), "secrets never print");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.toml");
        std::fs::write(&file, "[ingest]\nmax_body = 1\n").unwrap();
        let flags = Flags { config: Some(file.clone()), ..Flags::default() };
        let err = Settings::load(&flags, &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("max_body"), "{err}");

        let err = Settings::load(&Flags::default(), &env(&[("HOOKPLANE_NOPE", "1")])).unwrap_err().to_string();
        assert!(err.contains("HOOKPLANE_NOPE") && err.contains("no such configuration key"), "{err}");
        let err = Settings::load(&Flags::default(), &env(&[("HOOKPLANE_INGEST__MAX_BATCH", "many")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid value"), "{err}");
        let err =
            Settings::load(&Flags::default(), &env(&[("HOOKPLANE_INGEST__MAX_BATCH", "0")])).unwrap_err().to_string();
        assert!(err.contains("max_batch"), "{err}");
        let short_lease = env(&[("HOOKPLANE_DELIVERY__TIMEOUT_SECONDS", "80")]);
        let err = Settings::load(&Flags::default(), &short_lease).unwrap_err().to_string();
        assert!(err.contains("lease_seconds must exceed"), "{err}");
        let bad_list = env(&[("HOOKPLANE_DELIVERY__RETRY_DELAYS_SECONDS", "60,soon")]);
        let err = Settings::load(&Flags::default(), &bad_list).unwrap_err().to_string();
        assert!(err.contains("RETRY_DELAYS_SECONDS") && err.contains("not a valid value"), "{err}");
        std::fs::write(&file, "listen = \"not an address\"\n").unwrap();
        assert!(Settings::load(&flags, &BTreeMap::new()).is_err());
        let missing = Flags { config: Some(dir.path().join("absent.toml")), ..Flags::default() };
        assert!(matches!(Settings::load(&missing, &BTreeMap::new()), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn the_default_retry_schedule_is_close_to_shopifys() {
        let defaults = Settings::defaults().unwrap().delivery;
        let delays = defaults.retry_delays_seconds.iter().map(|s| std::time::Duration::from_secs(*s)).collect();
        let schedule = crate::domain::attempt::RetrySchedule { delays, jitter_percent: 0 };
        assert_eq!(schedule.max_attempts(), 8);
        let total: u64 = defaults.retry_delays_seconds.iter().sum();
        assert!((3 * 3600..=5 * 3600).contains(&total), "about 4 hours, not {total} s");
    }

    #[test]
    fn the_logs_link_is_a_web_address_or_nothing() {
        let with = |url: &str| Settings::load(&Flags::default(), &env(&[("HOOKPLANE_DASHBOARD__LOGS_URL", url)]));
        assert_eq!(
            with("https://logs.example/hookplane").unwrap().http_settings().logs_url.as_deref(),
            Some("https://logs.example/hookplane")
        );
        assert_eq!(with("").unwrap().http_settings().logs_url, None);
        let err = with("javascript:alert(1)").unwrap_err().to_string();
        assert!(err.contains("dashboard.logs_url"), "{err}");
    }

    #[test]
    fn the_demo_variable_is_not_a_configuration_key() {
        assert!(Settings::load(&Flags::default(), &env(&[("HOOKPLANE_DEMO", "base")])).is_ok());
        let bad = env(&[("HOOKPLANE_SHOPIFY__API_VERSION", "2026-1x")]);
        assert!(Settings::load(&Flags::default(), &bad).unwrap_err().to_string().contains("shopify.api_version"));
    }
}
