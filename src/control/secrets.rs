//! Rotating a subscription's secret, dropping replaced secrets whose overlap ended, and the secrets ingest
//! verifies with.

use std::sync::Arc;
use std::time::Duration;

use super::subscriptions::{Control, ControlError, MAX_FIELD, Rotated, invalid};
use crate::connectors::standard;
use crate::domain::audit::{Actor, AuditAction, Change};
use crate::domain::subscription::StoredSecret;
use crate::domain::subscription::{Origin, Subscription};
use crate::domain::{Source, SubscriptionId, Timestamp};
use crate::ingest::registry::{Entry, HeldSecret};
use crate::secrets::{SecretBytes, SecretDigest};
use crate::storage::StoreError;
use crate::storage::subscriptions::{self as repo, SLOT_CURRENT, SLOT_PREVIOUS};
use crate::task::AliveGuard;

impl Control {
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
        let current = repo::all_secrets(&*db)?
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
        self.registry.upsert(Entry { sub: sub.clone(), secrets: held.clone() });
        Ok(Rotated { subscription: sub, previous_expires_at: expires, secrets: held })
    }

    /// Drops every previous secret whose overlap has ended, from the store and from the registry (which
    /// stopped accepting it already at its expiry). Returns how many were dropped.
    pub fn sweep_expired_secrets(&self) -> Result<usize, ControlError> {
        let _serial = self.serial();
        let now = self.clock.now();
        let db = self.store.db()?;
        let expired: Vec<SubscriptionId> = repo::all_secrets(&*db)?
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

    pub(super) fn digest_of(&self, secret: &SecretBytes) -> Result<SecretDigest, ControlError> {
        SecretDigest::compute(secret.expose(), self.options.digest).map_err(|e| invalid(e.to_string()))
    }

    /// The digest of a secret that is read from the environment at every start rather than stored: salted
    /// from the master key and `name`, so its fingerprint, and with it a replay's re-check of deliveries it
    /// verified, survives a restart. It also depends on `[secrets] digest_*`: changing those changes it, as
    /// changing the master key does.
    pub(super) fn stable_digest_of(&self, secret: &SecretBytes, name: &str) -> Result<SecretDigest, ControlError> {
        let salt = self.master_key.stable_salt(name);
        SecretDigest::compute_with_salt(secret.expose(), &salt, self.options.digest).map_err(|e| invalid(e.to_string()))
    }
}

/// A subscription's own secret as given, checked for its source: Zoho needs one, Standard Webhooks needs a
/// `whsec_` secret, Shopify may have none (the app's secret then verifies).
pub(super) fn check_secret(source: Source, secret: Option<SecretBytes>) -> Result<Option<SecretBytes>, ControlError> {
    let secret = secret.filter(|s| !s.expose().is_empty());
    match (source, secret) {
        (Source::Zoho, None) => {
            Err(invalid("zoho subscriptions need a `secret`: the channel token, shared token or signing key"))
        }
        (Source::Standard, None) => Err(invalid("standard subscriptions need a `secret` (`whsec_` and base64)")),
        (_, Some(s)) if String::from_utf8_lossy(s.expose()).chars().count() > MAX_FIELD => {
            Err(invalid(format!("`secret` must be at most {MAX_FIELD} characters")))
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
pub(super) fn held_from(
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

/// How often previous secrets past their overlap are looked for. The registry stops accepting one at its
/// expiry on its own; the sweep only removes it from the store, so a minute's delay costs nothing.
const SECRET_SWEEP_EVERY: Duration = Duration::from_secs(60);

impl Control {
    /// Drops previous secrets whose overlap has ended: once at start, then every minute. A sweep that fails
    /// (even by panicking, on the blocking pool) is logged and tried again at the next tick.
    pub fn spawn_secret_sweep(self: &Arc<Self>, guard: AliveGuard) -> tokio::task::JoinHandle<()> {
        let control = Arc::clone(self);
        tokio::spawn(async move {
            let _alive = guard;
            let mut tick = tokio::time::interval(SECRET_SWEEP_EVERY);
            loop {
                tick.tick().await;
                let c = Arc::clone(&control);
                match tokio::task::spawn_blocking(move || c.sweep_expired_secrets()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "the sweep of expired secrets failed; it runs again in a minute")
                    }
                    Err(e) => tracing::warn!(error = %e, "the sweep of expired secrets stopped"),
                }
            }
        })
    }
}
