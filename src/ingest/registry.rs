//! The in-memory view ingest resolves requests against: every subscription with its opened secrets,
//! indexed by the same lookup keys as storage. Rebuilt at start, updated after each committed change, and
//! read lock-free per request (a snapshot is an `Arc`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::subscription::Subscription;
use crate::domain::{SubscriptionId, Timestamp};
use crate::secrets::SecretBytes;
use crate::storage::subscriptions::{name_key, natural_key, shopify_key, zoho_channel_key};

/// A secret ingest may verify with.
#[derive(Debug, Clone)]
pub struct HeldSecret {
    /// `current` or `previous` for a subscription's own secrets; `app` or `app_previous` for Shopify's.
    pub label: &'static str,
    pub key: SecretBytes,
    /// Not accepted from this instant on (a previous secret after its overlap).
    pub expires_at: Option<Timestamp>,
    /// From the secret's digest, for display; never derived from the secret itself.
    pub fingerprint: String,
    /// When the secret was set, where known (secrets from the environment have no such time).
    pub created_at: Option<Timestamp>,
}

impl HeldSecret {
    pub fn live_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

#[derive(Debug)]
pub struct Entry {
    pub sub: Subscription,
    pub secrets: Vec<HeldSecret>,
}

#[derive(Debug, Default)]
pub struct Registry {
    by_id: HashMap<SubscriptionId, Arc<Entry>>,
    by_key: HashMap<String, SubscriptionId>,
    /// The Shopify app's client secrets (current, then previous), valid for every shop and topic.
    pub shopify_app: Vec<HeldSecret>,
}

impl Registry {
    pub fn new(entries: Vec<Entry>, shopify_app: Vec<HeldSecret>) -> Self {
        let mut r = Self { shopify_app, ..Self::default() };
        for e in entries {
            r.insert(Arc::new(e));
        }
        r
    }

    fn insert(&mut self, e: Arc<Entry>) {
        if let Some(old) = self.by_id.get(&e.sub.id) {
            self.by_key.remove(&name_key(&old.sub.name));
            if let Some(k) = natural_key(&old.sub) {
                self.by_key.remove(&k);
            }
        }
        self.by_key.insert(name_key(&e.sub.name), e.sub.id);
        if let Some(k) = natural_key(&e.sub) {
            self.by_key.insert(k, e.sub.id);
        }
        self.by_id.insert(e.sub.id, e);
    }

    pub fn get(&self, id: SubscriptionId) -> Option<&Arc<Entry>> {
        self.by_id.get(&id)
    }

    fn by_key(&self, key: &str) -> Option<&Arc<Entry>> {
        self.by_key.get(key).and_then(|id| self.by_id.get(id))
    }

    /// A subscription by its `sub_…` id or its name, as used in ingest URLs.
    pub fn by_name_or_id(&self, s: &str) -> Option<&Arc<Entry>> {
        match s.parse::<SubscriptionId>() {
            Ok(id) => self.get(id),
            Err(_) => self.by_key(&name_key(s)),
        }
    }

    /// The subscription for a shop and topic, or the one for the topic on every shop (`*`).
    pub fn shopify(&self, shop: &str, topic: &str) -> Option<&Arc<Entry>> {
        self.by_key(&shopify_key(shop, topic)).or_else(|| self.by_key(&shopify_key("*", topic)))
    }

    pub fn zoho_channel(&self, channel_id: &str) -> Option<&Arc<Entry>> {
        self.by_key(&zoho_channel_key(channel_id))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The registry shared by request handlers and the writers that change subscriptions.
#[derive(Debug, Default)]
pub struct SharedRegistry(RwLock<Arc<Registry>>);

impl SharedRegistry {
    pub fn new(r: Registry) -> Self {
        Self(RwLock::new(Arc::new(r)))
    }

    pub fn snapshot(&self) -> Arc<Registry> {
        match self.0.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace(&self, r: Registry) {
        let mut guard = match self.0.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(r);
    }

    /// Adds or replaces one subscription. Copy-on-write: subscriptions change rarely, requests read often.
    pub fn upsert(&self, entry: Entry) {
        let mut guard = match self.0.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = Registry {
            by_id: guard.by_id.clone(),
            by_key: guard.by_key.clone(),
            shopify_app: guard.shopify_app.clone(),
        };
        next.insert(Arc::new(entry));
        *guard = Arc::new(next);
    }
}
