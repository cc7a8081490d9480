//! The subscriptions declared in the configuration file, applied at every start, and the registry built
//! from the store, those declarations and Shopify's app secrets.

use serde::Deserialize;

use super::secrets::held_from;
use super::subscriptions::{Control, ControlError, SubscriptionSpec, invalid};
use crate::domain::subscription::{Destination, Origin, Subscription};
use crate::domain::{Source, SubscriptionStatus};
use crate::ingest::registry::{Entry, HeldSecret, Registry};
use crate::secrets::SecretBytes;
use crate::storage::StoreError;
use crate::storage::subscriptions::{self as repo, SLOT_PREVIOUS};

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

impl Control {
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
                Some(s) => {
                    let digest = self.stable_digest_of(&s, &format!("declared/{}", sub.id))?;
                    vec![held_from(&sub, "current", &s, &digest, None, None)?]
                }
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
                // Like a pause, an operator's retention override outlives the file being applied again.
                sub.retention_days = found.retention_days;
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
        let subs = repo::list(&*db)?;
        let secrets = repo::all_secrets(&*db)?;
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
                // One name for the current and the previous: a secret moved to `_PREVIOUS` keeps its fingerprint.
                let fingerprint = self.stable_digest_of(s, "shopify-app")?.fingerprint();
                let seen = repo::app_secret_first_seen(&db, &fingerprint, self.clock.now())?;
                app.push(HeldSecret { label, key: s.clone(), expires_at: None, fingerprint, created_at: Some(seen) });
            }
        }
        Ok(Registry::new(entries, app))
    }
}
