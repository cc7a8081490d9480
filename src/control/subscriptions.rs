//! Creating, adopting and declaring subscriptions, and building the registry ingest verifies against.

use std::sync::Arc;

use super::queue::DestinationState;
use serde::Deserialize;

use crate::connectors::standard;
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::subscription::StoredSecret;
use crate::domain::subscription::{Destination, Origin, Subscription, ZohoAuth, default_name, validate_name};
use crate::domain::{Clock, Source, SubscriptionId, SubscriptionStatus, Timestamp};
use crate::ingest::registry::{Entry, HeldSecret, Registry, SharedRegistry};
use crate::jobs::worker::Wake;
use crate::secrets::{DigestParams, MasterKey, SecretBytes, SecretDigest};
use crate::storage::subscriptions::{self as repo, SLOT_CURRENT, SLOT_PREVIOUS};
use crate::storage::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::task::TaskFailed> for ControlError {
    fn from(e: crate::task::TaskFailed) -> Self {
        ControlError::Store(e.into())
    }
}

fn invalid(msg: impl Into<String>) -> ControlError {
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
}

pub struct Created {
    pub subscription: Subscription,
    /// A discovered subscription was adopted instead of a new one created.
    pub adopted: bool,
    /// A secret Hookplane generated because none was given; shown to the caller once.
    pub generated_secret: Option<String>,
}

const MAX_FIELD: usize = 256;

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

/// A subscription declared in the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeclaredSubscription {
    pub name: String,
    pub source: String,
    pub topic: String,
    pub account: String,
    pub channel_id: Option<String>,
    pub auth: Option<String>,
    pub token_header: Option<String>,
    pub secret_env: Option<String>,
    pub destination_url: Option<String>,
    pub dedupe_header: Option<String>,
}

/// The subscription-changing operations, shared by the API and the command line.
pub struct Control {
    pub(super) store: Arc<Store>,
    pub(super) registry: Arc<SharedRegistry>,
    master_key: MasterKey,
    pub(super) clock: Arc<dyn Clock>,
    /// Wakes the delivery queue after a replay or a resume made jobs ready.
    pub(super) wake: Wake,
    options: ControlOptions,
    /// Held by whatever changes a stored subscription and then its registry entry (a rotation, the sweep,
    /// a pause, a destination change), from its first read to its registry update, so that two of them
    /// never interleave: a lost secret, or a registry older than the store (ingest would then file
    /// deliveries under an old destination until a restart). Creation writes secrets too, but only for a
    /// subscription that holds none, which rotation refuses.
    pub(super) registry_lock: std::sync::Mutex<()>,
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
        Self { store, registry, master_key, clock, wake, options, registry_lock: std::sync::Mutex::new(()) }
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

    /// Changes where and how a subscription's deliveries are forwarded, with its audit entry. Attempts made
    /// from now on use the new settings; one already handed to the worker may still go to the old URL.
    /// Going back to `store` ends forwarding: deliveries held by a pause are released, and their attempt
    /// records that they were not sent, since a destination that keeps its deliveries has nothing to resume.
    pub fn change_destination_blocking(
        &self,
        id: SubscriptionId,
        patch: DestinationPatch,
        by: &Actor,
    ) -> Result<DestinationState, ControlError> {
        let DestinationPatch { url, timeout_seconds, concurrency, headers } = patch;
        if url.as_ref().is_some_and(|u| u.as_deref() == Some("")) {
            return Err(invalid("`destination_url` is empty: give a URL, or `null` to keep deliveries in `store`"));
        }
        if url.is_none() && timeout_seconds.is_none() && concurrency.is_none() && headers.is_none() {
            return Err(invalid(
                "nothing to change: give any of `destination_url`, `destination_timeout_seconds`, \
                 `destination_concurrency`, `destination_headers`",
            ));
        }
        let _serial = self.serial();
        let db = self.store.db()?;
        let tx = db.begin_write().map_err(StoreError::from)?;
        let before = repo::get_in(&tx, id)?.ok_or_else(|| ControlError::NotFound(format!("no subscription {id}")))?;
        let refused = match before.origin {
            Origin::Api => None,
            Origin::Config => {
                Some("is declared in the configuration file: change it there, since every start applies the file again")
            }
            Origin::Discovered => Some(
                "was discovered from traffic: adopt it first (`POST /api/v1/subscriptions` with its shop and topic)",
            ),
        };
        if let Some(why) = refused {
            return Err(StoreError::Conflict(format!("`{}` {why}; nothing was changed", before.name)).into());
        }
        let destination = match (url, &before.destination) {
            // Kept or going to `store`: the forwarding settings go with the URL, unless this change sets them.
            (Some(None), _) | (None, Destination::Store) => {
                self.destination(None, timeout_seconds.flatten(), concurrency.flatten(), headers.unwrap_or_default())?
            }
            (url, current) => {
                let (u, t, c, h) = match current {
                    Destination::Http { url, timeout_seconds, concurrency, headers } => {
                        (Some(url.clone()), *timeout_seconds, *concurrency, headers.clone())
                    }
                    Destination::Store => (None, None, None, Vec::new()),
                };
                self.destination(
                    url.unwrap_or(u),
                    timeout_seconds.unwrap_or(t),
                    concurrency.unwrap_or(c),
                    headers.unwrap_or(h),
                )?
            }
        };
        let forwards = matches!(destination, Destination::Http { .. });
        let status = match before.status {
            SubscriptionStatus::Paused if !forwards => SubscriptionStatus::Active,
            status => status,
        };
        if destination == before.destination {
            return Ok(DestinationState { subscription: before, released: 0 });
        }
        let now = self.clock.now();
        // A run of failures belongs to the URL that failed.
        let consecutive_failures =
            if destination.url() == before.destination.url() { before.consecutive_failures } else { 0 };
        let after = Subscription { destination, status, consecutive_failures, updated_at: now, ..before.clone() };
        repo::update(&tx, &before, &after)?;
        let mut entry = by.entry(now, AuditAction::SubscriptionUpdated).target(id);
        for ((field, was), (_, is)) in
            destination_fields(&before.destination).into_iter().zip(destination_fields(&after.destination))
        {
            if was != is {
                entry = entry.change(Change { field: field.to_owned(), before: was, after: is });
            }
        }
        let released = if status == before.status { 0 } else { self.release_held_in(&tx, id, now)? };
        if status != before.status {
            entry = entry
                .change(Change::changed("status", before.status.as_str(), status.as_str()))
                .change(Change::set("released", released.to_string()));
        }
        self.commit_destination(tx, &entry, after, released)
    }

    /// Replaces a subscription's secret with `new`. The secret it replaces stays accepted for `overlap_ms`
    /// as the previous one (a previous one already held is dropped), so that deliveries the provider signs
    /// before it switches still verify. The audit entry shows both secrets as digests.
    pub fn rotate_secret_blocking(
        &self,
        id: SubscriptionId,
        new: SecretBytes,
        overlap_ms: i64,
        by: &Actor,
    ) -> Result<Rotated, ControlError> {
        let _serial = self.serial();
        let now = self.clock.now();
        let db = self.store.db()?;
        let sub = repo::get(&db, id)?.ok_or_else(|| ControlError::NotFound(format!("no subscription `{id}`")))?;
        if sub.origin == Origin::Config {
            return Err(invalid(format!(
                "`{}` is declared in the configuration file and its secret comes from the environment variable \
                 named by `secret_env`: change that variable and restart",
                sub.name
            )));
        }
        let new = check_secret(sub.source, Some(new))?
            .ok_or_else(|| invalid("`secret` is required: the new secret, typed twice"))?;
        let current = repo::all_secrets(&db)?
            .into_iter()
            .find(|(sid, slot, _)| *sid == id && *slot == SLOT_CURRENT)
            .map(|(_, _, stored)| stored);
        let Some(current) = current else {
            return Err(invalid(format!(
                "`{}` verifies with the Shopify app's client secret (SHOPIFY_WEBHOOK_SECRET): rotate that by moving \
                 the old value to SHOPIFY_WEBHOOK_SECRET_PREVIOUS and setting the new one",
                sub.name
            )));
        };
        // argon2 is slow on purpose: compare and digest before the write transaction, which ingest waits on.
        if current.digest.matches(new.expose()) {
            return Err(invalid("the new secret is the one already in use: rotation needs a different secret"));
        }
        let digest = self.digest_of(&new)?;
        let context = id.to_string();
        let old_plain = self.master_key.open(&current.sealed, &context).map_err(|e| invalid(e.to_string()))?;
        let expires = now.plus_millis(overlap_ms);
        let previous = StoredSecret { expires_at: Some(expires), ..current.clone() };
        let stored = StoredSecret {
            sealed: self.master_key.seal(new.expose(), &context),
            digest,
            created_at: now,
            expires_at: None,
        };
        let tx = db.begin_write().map_err(StoreError::from)?;
        let dropped = repo::secret_in(&tx, id, SLOT_PREVIOUS)?;
        repo::set_secret(&tx, id, SLOT_PREVIOUS, &previous)?;
        repo::set_secret(&tx, id, SLOT_CURRENT, &stored)?;
        let mut entry = by
            .entry(now, AuditAction::SecretRotated)
            .target(id)
            .change(Change::changed("secret_digest", current.digest.to_phc(), stored.digest.to_phc()))
            .change(Change::set("previous_expires_at", expires.to_rfc3339()));
        if let Some(d) = dropped {
            entry = entry.change(Change {
                field: "dropped_previous_digest".to_owned(),
                before: Some(d.digest.to_phc()),
                after: None,
            });
        }
        crate::storage::audit::append(&tx, &entry)?;
        tx.commit().map_err(StoreError::from)?;
        let held = vec![
            held_from(&sub, "current", &new, &stored.digest, Some(now), None)?,
            held_from(&sub, "previous", &old_plain, &previous.digest, Some(previous.created_at), Some(expires))?,
        ];
        self.registry.upsert(Entry { sub: sub.clone(), secrets: held });
        Ok(Rotated { subscription: sub, previous_expires_at: expires })
    }

    /// Drops every previous secret whose overlap has ended, from the store and from the registry (which
    /// stopped accepting it already at its expiry). Returns how many were dropped.
    pub fn sweep_expired_secrets(&self) -> Result<usize, ControlError> {
        let _serial = self.serial();
        let now = self.clock.now();
        let db = self.store.db()?;
        let expired: Vec<SubscriptionId> = repo::all_secrets(&db)?
            .into_iter()
            .filter(|(_, slot, s)| *slot == SLOT_PREVIOUS && s.expires_at.is_some_and(|t| t <= now))
            .map(|(id, _, _)| id)
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let tx = db.begin_write().map_err(StoreError::from)?;
        let mut dropped = Vec::new();
        for id in expired {
            let Some(prev) = repo::secret_in(&tx, id, SLOT_PREVIOUS)? else { continue };
            if prev.expires_at.is_none_or(|t| t > now) {
                continue;
            }
            repo::remove_secret(&tx, id, SLOT_PREVIOUS)?;
            let entry = Actor::system().entry(now, AuditAction::SecretPreviousDropped).target(id).change(Change {
                field: "previous_secret_digest".to_owned(),
                before: Some(prev.digest.to_phc()),
                after: None,
            });
            crate::storage::audit::append(&tx, &entry)?;
            dropped.push(id);
        }
        tx.commit().map_err(StoreError::from)?;
        let snapshot = self.registry.snapshot();
        for id in &dropped {
            if let Some(e) = snapshot.get(*id) {
                let secrets = e.secrets.iter().filter(|h| h.label != "previous").cloned().collect();
                self.registry.upsert(Entry { sub: e.sub.clone(), secrets });
            }
        }
        tracing::info!(dropped = dropped.len(), "dropped previous secrets whose overlap ended");
        Ok(dropped.len())
    }

    fn digest_of(&self, secret: &SecretBytes) -> Result<SecretDigest, ControlError> {
        SecretDigest::compute(secret.expose(), self.options.digest).map_err(|e| invalid(e.to_string()))
    }

    /// Checks a spec and turns it into a subscription and the secret it will verify with.
    fn build(
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
        };
        Ok((sub, secret, generated))
    }

    /// Checks a destination's settings: `store` when there is no URL, and then none of the others.
    fn destination(
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
        Ok(Destination::Http { url: validate_url(&url)?, timeout_seconds, concurrency, headers })
    }

    fn zoho_auth(
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

    /// Applies the subscriptions declared in the configuration: creates the missing, updates the changed,
    /// and returns them with the secrets their `secret_env` variables hold.
    /// `env` reads the environment variables `secret_env` names.
    pub fn apply_declared(
        &self,
        declared: &[DeclaredSubscription],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<Entry>, ControlError> {
        let mut entries = Vec::new();
        for d in declared {
            let context = |e: ControlError| invalid(format!("declared subscription `{}`: {e}", d.name));
            let (sub, secret) = self.apply_one(d, env).map_err(context)?;
            let held = match secret {
                Some(s) => vec![held_from(&sub, "current", &s, &self.digest_of(&s)?, None, None)?],
                None => Vec::new(),
            };
            entries.push(Entry { sub, secrets: held });
        }
        Ok(entries)
    }

    fn apply_one(
        &self,
        d: &DeclaredSubscription,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Subscription, Option<SecretBytes>), ControlError> {
        let secret = match &d.secret_env {
            Some(var) => Some(SecretBytes::new(
                env(var)
                    .ok_or_else(|| {
                        invalid(format!("the environment variable `{var}` named by `secret_env` is not set"))
                    })?
                    .into_bytes(),
            )),
            None => None,
        };
        let spec = SubscriptionSpec {
            source: Some(d.source.parse().map_err(invalid)?),
            topic: d.topic.clone(),
            account: d.account.clone(),
            name: Some(d.name.clone()),
            destination_url: d.destination_url.clone(),
            destination_timeout_seconds: None,
            destination_concurrency: None,
            destination_headers: Vec::new(),
            secret: secret.clone(),
            channel_id: d.channel_id.clone(),
            auth: d.auth.clone(),
            token_header: d.token_header.clone(),
            dedupe_header: d.dedupe_header.clone(),
        };
        let now = self.clock.now();
        let (mut sub, secret, _) = self.build(spec, now, Origin::Config)?;
        if secret.is_none() && sub.source == Source::Standard {
            return Err(invalid("standard subscriptions declared in the file need `secret_env`"));
        }
        let db = self.store.db()?;
        let tx = db.begin_write().map_err(StoreError::from)?;
        let by_name = repo::find_by_key(&tx, &repo::name_key(&sub.name))?;
        let by_natural = match repo::natural_key(&sub) {
            Some(k) => repo::find_by_key(&tx, &k)?,
            None => None,
        };
        match by_name.or(by_natural).map(|id| repo::get_in(&tx, id)).transpose()?.flatten() {
            Some(found) if found.origin == Origin::Config || found.origin == Origin::Discovered => {
                sub.id = found.id;
                sub.created_at = found.created_at;
                sub.last_verified_at = found.last_verified_at;
                sub.consecutive_failures = found.consecutive_failures;
                // A pause is the operator's, not the file's: a restart keeps it (and its held deliveries).
                if found.status == SubscriptionStatus::Paused && matches!(sub.destination, Destination::Http { .. }) {
                    sub.status = SubscriptionStatus::Paused;
                }
                let unchanged = Subscription { updated_at: found.updated_at, ..sub.clone() } == found;
                if unchanged {
                    sub.updated_at = found.updated_at;
                } else {
                    repo::update(&tx, &found, &sub)?;
                }
            }
            Some(found) => {
                return Err(invalid(format!(
                    "it clashes with `{}` ({}), which was created through the API; rename one of them",
                    found.name, found.id
                )));
            }
            None => repo::insert(&tx, &sub)?,
        }
        tx.commit().map_err(StoreError::from)?;
        Ok((sub, secret))
    }

    /// Builds the registry: stored subscriptions with their unsealed secrets, the declared ones with the
    /// secrets from the environment, and the Shopify app secrets.
    /// `app_secrets` are Shopify's app secrets: the current one, and the previous during a rotation.
    pub fn load_registry(
        &self,
        declared: Vec<Entry>,
        app_secrets: [Option<&SecretBytes>; 2],
    ) -> Result<Registry, ControlError> {
        let db = self.store.db()?;
        let subs = repo::list(&db)?;
        let secrets = repo::all_secrets(&db)?;
        let mut entries: Vec<Entry> = declared;
        for sub in subs {
            if entries.iter().any(|e| e.sub.id == sub.id) {
                continue;
            }
            let mut held = Vec::new();
            for (_, slot, stored) in secrets.iter().filter(|(id, _, _)| *id == sub.id) {
                let plain = self.master_key.open(&stored.sealed, &sub.id.to_string()).map_err(|e| {
                    invalid(format!(
                        "subscription `{}`: {e} (is HOOKPLANE_MASTER_KEY the key this data was sealed with?)",
                        sub.name
                    ))
                })?;
                let label = if *slot == SLOT_PREVIOUS { "previous" } else { "current" };
                held.push(held_from(&sub, label, &plain, &stored.digest, Some(stored.created_at), stored.expires_at)?);
            }
            held.sort_by_key(|h| h.label != "current");
            entries.push(Entry { sub, secrets: held });
        }
        let mut app = Vec::new();
        for (label, s) in ["app", "app_previous"].into_iter().zip(app_secrets) {
            if let Some(s) = s {
                let fingerprint = self.digest_of(s)?.fingerprint();
                app.push(HeldSecret { label, key: s.clone(), expires_at: None, fingerprint, created_at: None });
            }
        }
        Ok(Registry::new(entries, app))
    }
}

/// A subscription's own secret as given, checked for its source: Zoho needs one, Standard Webhooks needs a
/// `whsec_` secret, Shopify may have none (the app's secret then verifies).
fn check_secret(source: Source, secret: Option<SecretBytes>) -> Result<Option<SecretBytes>, ControlError> {
    let secret = secret.filter(|s| !s.expose().is_empty());
    match (source, secret) {
        (Source::Zoho, None) => {
            Err(invalid("zoho subscriptions need a `secret`: the channel token, shared token or signing key"))
        }
        (Source::Standard, None) => Err(invalid("standard subscriptions need a `secret` (`whsec_` and base64)")),
        (_, Some(s)) if s.expose().len() > MAX_FIELD => {
            Err(invalid(format!("`secret` must be at most {MAX_FIELD} bytes")))
        }
        (Source::Standard, Some(s)) => {
            let text = std::str::from_utf8(s.expose()).map_err(|_| invalid("`secret` must be text"))?;
            standard::decode_secret(text).map_err(invalid)?;
            Ok(Some(s))
        }
        (_, s) => Ok(s),
    }
}

/// The key ingest verifies with: Standard Webhooks secrets are base64 behind `whsec_`, others are used as is.
fn held_from(
    sub: &Subscription,
    label: &'static str,
    secret: &SecretBytes,
    digest: &SecretDigest,
    created_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
) -> Result<HeldSecret, ControlError> {
    let key = match sub.source {
        Source::Standard => {
            let text = std::str::from_utf8(secret.expose()).map_err(|_| invalid("the stored secret is not text"))?;
            SecretBytes::new(standard::decode_secret(text).map_err(invalid)?)
        }
        _ => secret.clone(),
    };
    Ok(HeldSecret { label, key, expires_at, fingerprint: digest.fingerprint(), created_at })
}

fn required(field: &str, value: &str) -> Result<String, ControlError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(format!("`{field}` is required")));
    }
    if v.len() > MAX_FIELD || v.chars().any(char::is_control) {
        return Err(invalid(format!("`{field}` must be at most {MAX_FIELD} bytes of printable text")));
    }
    Ok(v.to_owned())
}

/// A destination's settings as its audit entries show them; absent for `store`.
fn destination_fields(d: &Destination) -> [(&'static str, Option<String>); 4] {
    let (url, timeout, concurrency, headers) = match d {
        Destination::Store => (None, None, None, None),
        Destination::Http { url, timeout_seconds, concurrency, headers } => (
            Some(url.clone()),
            timeout_seconds.map(|t| t.to_string()),
            concurrency.map(|c| c.to_string()),
            (!headers.is_empty())
                .then(|| headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")),
        ),
    };
    [
        ("destination_url", url),
        ("destination_timeout_seconds", timeout),
        ("destination_concurrency", concurrency),
        ("destination_headers", headers),
    ]
}

fn validate_url(url: &str) -> Result<String, ControlError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid(format!("`destination_url` must be an http:// or https:// URL, not `{url}`")))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!("`destination_url` is not a usable URL: `{url}`")));
    }
    Ok(url.to_owned())
}

fn validate_header_name(field: &str, name: &str) -> Result<(), ControlError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if ok { Ok(()) } else { Err(invalid(format!("`{field}` must be a header name such as `X-Api-Key`, not `{name}`"))) }
}
