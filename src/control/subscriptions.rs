//! Creating, adopting and declaring subscriptions, and building the registry ingest verifies against.

use std::sync::Arc;

use super::secrets::{check_secret, held_from};

use crate::connectors::standard;
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::subscription::StoredSecret;
use crate::domain::subscription::{Destination, Origin, Subscription, ZohoAuth, default_name, validate_name};
use crate::domain::{Clock, Source, SubscriptionId, SubscriptionStatus, Timestamp};
use crate::ingest::registry::{Entry, SharedRegistry};
use crate::jobs::worker::Wake;
use crate::secrets::{DigestParams, MasterKey, SecretBytes};
use crate::storage::subscriptions::{self as repo, SLOT_CURRENT};
use crate::storage::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is valid, but the subscription's state does not allow it.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::task::TaskFailed> for ControlError {
    fn from(e: crate::task::TaskFailed) -> Self {
        ControlError::Store(e.into())
    }
}

pub(super) fn invalid(msg: impl Into<String>) -> ControlError {
    ControlError::Invalid(msg.into())
}

/// What an operator asks for when creating a subscription.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionSpec {
    pub source: Option<Source>,
    pub topic: String,
    pub account: String,
    pub name: Option<String>,
    pub destination_url: Option<String>,
    pub destination_timeout_seconds: Option<u32>,
    pub destination_concurrency: Option<u32>,
    pub destination_headers: Vec<(String, String)>,
    /// Write-only: sealed at once, never shown again.
    pub secret: Option<SecretBytes>,
    /// Zoho CRM notification channel id.
    pub channel_id: Option<String>,
    /// Zoho workflow webhooks: `token` (default) or `signature`.
    pub auth: Option<String>,
    pub token_header: Option<String>,
    pub dedupe_header: Option<String>,
}

/// What an operator changes on a subscription's destination. `None` leaves a setting as it is;
/// `Some(None)` goes back to its default: for the URL, keeping deliveries (`store`).
#[derive(Debug, Clone, Default)]
pub struct DestinationPatch {
    pub url: Option<Option<String>>,
    pub timeout_seconds: Option<Option<u32>>,
    pub concurrency: Option<Option<u32>>,
    pub headers: Option<Vec<(String, String)>>,
}

#[derive(Debug, Clone)]
pub struct Rotated {
    pub subscription: Subscription,
    /// When the replaced secret stops being accepted.
    pub previous_expires_at: Timestamp,
    /// The secrets this rotation left, for its answer: by the time that is made, another rotation may have
    /// replaced them in the registry.
    pub secrets: Vec<crate::ingest::registry::HeldSecret>,
}

pub struct Created {
    pub subscription: Subscription,
    /// A discovered subscription was adopted instead of a new one created.
    pub adopted: bool,
    /// A secret Hookplane generated because none was given; shown to the caller once.
    pub generated_secret: Option<String>,
}

pub(super) const MAX_FIELD: usize = 256;

/// What changing subscriptions needs from the configuration.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// The longest attempt a destination may ask for: its lease must outlive it.
    pub max_timeout_seconds: u32,
    /// argon2id cost of secret fingerprints.
    pub digest: DigestParams,
    /// The header a Zoho workflow webhook's shared token comes in by default.
    pub zoho_token_header: String,
}

/// The subscription-changing operations, shared by the API and the command line.
pub struct Control {
    pub(super) store: Arc<Store>,
    pub(super) registry: Arc<SharedRegistry>,
    pub(super) master_key: MasterKey,
    pub(super) clock: Arc<dyn Clock>,
    /// Wakes the delivery queue after a replay or a resume made jobs ready.
    pub(super) wake: Wake,
    pub(super) options: ControlOptions,
    /// Held by whatever changes a stored subscription and then its registry entry (a rotation, the sweep,
    /// a pause, a destination change), from its first read to its registry update, so that two of them
    /// never interleave: a lost secret, or a registry older than the store (ingest would then file
    /// deliveries under an old destination until a restart). Creation writes secrets too, but only for a
    /// subscription that holds none, which rotation refuses.
    pub(super) registry_lock: std::sync::Mutex<()>,
    backups: super::backups::Backups,
}

impl Control {
    pub fn new(
        store: Arc<Store>,
        registry: Arc<SharedRegistry>,
        master_key: MasterKey,
        clock: Arc<dyn Clock>,
        options: ControlOptions,
        wake: Wake,
    ) -> Self {
        let backups = super::backups::Backups::new(Arc::clone(&store), Arc::clone(&clock));
        Self { store, registry, master_key, clock, wake, options, registry_lock: std::sync::Mutex::new(()), backups }
    }

    /// Backups of the whole store.
    pub fn backups(&self) -> &super::backups::Backups {
        &self.backups
    }

    pub(super) fn serial(&self) -> std::sync::MutexGuard<'_, ()> {
        self.registry_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `whsec_` secret Hookplane signs what it forwards for `id` with, for the receiving service to
    /// verify. Derived from the master key, so it is the same after every restart and stored nowhere.
    pub fn destination_secret(&self, id: SubscriptionId) -> String {
        use base64::Engine as _;
        let key = crate::secrets::destination_key(&self.master_key.destination_signing_root(), &id.to_string());
        format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key))
    }

    /// Creates a subscription, or adopts the `discovered` Shopify subscription for the same shop and topic.
    pub async fn create(self: &Arc<Self>, spec: SubscriptionSpec, by: Actor) -> Result<Created, ControlError> {
        let this = Arc::clone(self);
        crate::task::blocking(move || this.create_blocking(spec, &by)).await
    }

    /// Makes (or adopts) a subscription; the audit entry, made by `by`, commits with it.
    pub fn create_blocking(&self, spec: SubscriptionSpec, by: &Actor) -> Result<Created, ControlError> {
        let now = self.clock.now();
        let (mut sub, secret, generated_secret) = self.build(spec, now, Origin::Api)?;
        // argon2 is slow on purpose: digest before the write transaction, which ingest waits on.
        let digest = secret.as_ref().map(|s| self.digest_of(s)).transpose()?;
        let db = self.store.db()?;
        let tx = db.begin_write().map_err(StoreError::from)?;
        let existing = match repo::natural_key(&sub) {
            Some(key) => repo::find_by_key(&tx, &key)?,
            None => None,
        };
        let adopted = match existing.map(|id| repo::get_in(&tx, id)).transpose()?.flatten() {
            Some(found) if found.origin == Origin::Discovered => {
                let mut adopted = sub.clone();
                adopted.id = found.id;
                adopted.created_at = found.created_at;
                adopted.last_verified_at = found.last_verified_at;
                repo::update(&tx, &found, &adopted)?;
                sub = adopted;
                true
            }
            _ => {
                repo::insert(&tx, &sub)?;
                false
            }
        };
        let mut held = Vec::new();
        let mut secret_digest = None;
        if let (Some(secret), Some(digest)) = (&secret, digest) {
            // Sealing binds the ciphertext to the final id, which adoption may have changed.
            let stored = StoredSecret {
                sealed: self.master_key.seal(secret.expose(), &sub.id.to_string()),
                digest,
                created_at: now,
                expires_at: None,
            };
            repo::set_secret(&tx, sub.id, SLOT_CURRENT, &stored)?;
            held.push(held_from(&sub, "current", secret, &stored.digest, Some(now), None)?);
            secret_digest = Some(stored.digest.to_phc());
        }
        let mut entry = by
            .entry(now, AuditAction::SubscriptionCreated)
            .target(sub.id)
            .change(Change::set("name", sub.name.clone()))
            .change(Change::set("source", sub.source.as_str()))
            .change(Change::set("topic", sub.topic.clone()))
            .change(Change::set("account", sub.account.clone()));
        if adopted {
            entry = entry.change(Change::changed("origin", "discovered", "api"));
        }
        if let Some(digest) = secret_digest {
            entry = entry.change(Change::set("secret_digest", digest));
        }
        crate::storage::audit::append(&tx, &entry)?;
        tx.commit().map_err(StoreError::from)?;
        self.registry.upsert(Entry { sub: sub.clone(), secrets: held });
        Ok(Created { subscription: sub, adopted, generated_secret })
    }

    /// Checks a spec and turns it into a subscription and the secret it will verify with.
    pub(super) fn build(
        &self,
        spec: SubscriptionSpec,
        now: Timestamp,
        origin: Origin,
    ) -> Result<(Subscription, Option<SecretBytes>, Option<String>), ControlError> {
        let source = spec.source.ok_or_else(|| invalid("`source` is required (shopify, zoho or standard)"))?;
        let topic = required("topic", &spec.topic)?;
        let account = required("account", &spec.account)?;
        let id = SubscriptionId::new(now);
        let name = match spec.name.filter(|n| !n.is_empty()) {
            Some(n) => {
                validate_name(&n).map_err(invalid)?;
                n
            }
            None => default_name(source, &topic, id),
        };
        let destination = self.destination(
            spec.destination_url,
            spec.destination_timeout_seconds,
            spec.destination_concurrency,
            spec.destination_headers,
        )?;
        let zoho_only = [
            ("channel_id", spec.channel_id.is_some()),
            ("auth", spec.auth.is_some()),
            ("token_header", spec.token_header.is_some()),
        ];
        if source != Source::Zoho
            && let Some((field, _)) = zoho_only.iter().find(|(_, set)| *set)
        {
            return Err(invalid(format!("`{field}` applies to zoho subscriptions only")));
        }
        let mut generated = None;
        let secret = spec.secret.filter(|s| !s.expose().is_empty());
        let zoho = match source {
            Source::Zoho => Some(self.zoho_auth(&spec.channel_id, spec.auth.as_deref(), spec.token_header)?),
            _ => None,
        };
        let secret = match (source, secret) {
            (Source::Standard, None) => {
                let fresh = standard::generate_secret();
                generated = Some(fresh.clone());
                Some(SecretBytes::new(fresh.into_bytes()))
            }
            (source, secret) => check_secret(source, secret)?,
        };
        let dedupe_header = spec.dedupe_header.filter(|h| !h.is_empty());
        if let Some(h) = &dedupe_header {
            validate_header_name("dedupe_header", h)?;
        }
        let sub = Subscription {
            id,
            name,
            source,
            topic,
            account,
            status: SubscriptionStatus::Active,
            destination,
            origin,
            zoho,
            dedupe_header,
            created_at: now,
            updated_at: now,
            last_verified_at: None,
            consecutive_failures: 0,
            metadata: Default::default(),
            retention_days: None,
            versions: Default::default(),
        };
        Ok((sub, secret, generated))
    }

    /// Checks a destination's settings: `store` when there is no URL, and then none of the others.
    pub(super) fn destination(
        &self,
        url: Option<String>,
        timeout_seconds: Option<u32>,
        concurrency: Option<u32>,
        headers: Vec<(String, String)>,
    ) -> Result<Destination, ControlError> {
        let Some(url) = url.filter(|u| !u.is_empty()) else {
            if timeout_seconds.is_some() || concurrency.is_some() || !headers.is_empty() {
                return Err(invalid(
                    "`destination_timeout_seconds`, `destination_concurrency` and `destination_headers` need a `destination_url`",
                ));
            }
            return Ok(Destination::Store);
        };
        if let Some(t) = timeout_seconds
            && !(1..=self.options.max_timeout_seconds).contains(&t)
        {
            return Err(invalid(format!(
                "`destination_timeout_seconds` must be between 1 and {} (the queue's lease, `delivery.lease_seconds`, \
                 less two heartbeats), not {t}",
                self.options.max_timeout_seconds
            )));
        }
        if let Some(c) = concurrency
            && !(1..=256).contains(&c)
        {
            return Err(invalid(format!("`destination_concurrency` must be between 1 and 256, not {c}")));
        }
        if headers.len() > 20 {
            return Err(invalid("`destination_headers` may hold at most 20 headers"));
        }
        for (k, v) in &headers {
            crate::domain::subscription::check_extra_header(k, v).map_err(invalid)?;
        }
        Ok(Destination::Http { url: validate_url("destination_url", &url)?, timeout_seconds, concurrency, headers })
    }

    pub(super) fn zoho_auth(
        &self,
        channel_id: &Option<String>,
        auth: Option<&str>,
        token_header: Option<String>,
    ) -> Result<ZohoAuth, ControlError> {
        match (channel_id.as_deref().filter(|c| !c.is_empty()), auth) {
            (Some(_), Some(a)) if a != "channel" => Err(invalid("`auth` does not apply to a channel subscription")),
            (Some(channel_id), _) => Ok(ZohoAuth::Channel { channel_id: required("channel_id", channel_id)? }),
            (None, None | Some("token")) => {
                let header =
                    token_header.filter(|h| !h.is_empty()).unwrap_or_else(|| self.options.zoho_token_header.clone());
                validate_header_name("token_header", &header)?;
                Ok(ZohoAuth::Token { header })
            }
            (None, Some("signature")) => Ok(ZohoAuth::Signature),
            (None, Some(other)) => Err(invalid(format!(
                "`auth` must be `token` or `signature` (or give `channel_id` for a CRM notification channel), not `{other}`"
            ))),
        }
    }
}

/// Text that must be there: not blank, at most `MAX_FIELD` characters as sent, no control character once
/// the surrounding spaces are trimmed.
pub(super) fn required(field: &str, value: &str) -> Result<String, ControlError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(format!("`{field}` is required")));
    }
    if value.chars().count() > MAX_FIELD || v.chars().any(char::is_control) {
        return Err(invalid(format!("`{field}` must be at most {MAX_FIELD} characters of printable text")));
    }
    Ok(v.to_owned())
}

/// A destination or version URL as Hookplane accepts one: http or https, with a host, printable, at most
/// 2 048 bytes.
pub fn validate_url(field: &str, url: &str) -> Result<String, ControlError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid(format!("`{field}` must be an http:// or https:// URL, not `{url}`")))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!("`{field}` is not a usable URL: `{url}`")));
    }
    Ok(url.to_owned())
}

pub(super) fn validate_header_name(field: &str, name: &str) -> Result<(), ControlError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if ok { Ok(()) } else { Err(invalid(format!("`{field}` must be a header name such as `X-Api-Key`, not `{name}`"))) }
}
