//! The subscriptions repository: records, lookup keys and sealed secrets.

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use super::{StoreError, tables};
use crate::domain::subscription::StoredSecret;
use crate::domain::subscription::ZohoAuth;
use crate::domain::{Source, Subscription, SubscriptionId, Timestamp};

/// Slot of the secret in use.
pub const SLOT_CURRENT: u8 = 0;
/// Slot of the secret a rotation replaced, accepted until it expires.
pub const SLOT_PREVIOUS: u8 = 1;

pub fn name_key(name: &str) -> String {
    format!("name/{name}")
}

pub fn shopify_key(account: &str, topic: &str) -> String {
    format!("shopify/{account}/{topic}")
}

pub fn zoho_channel_key(channel_id: &str) -> String {
    format!("zoho-channel/{channel_id}")
}

/// The key that makes a subscription unique besides its name, where its source has one.
pub fn natural_key(sub: &Subscription) -> Option<String> {
    match (sub.source, &sub.zoho) {
        (Source::Shopify, _) => Some(shopify_key(&sub.account, &sub.topic)),
        (Source::Zoho, Some(ZohoAuth::Channel { channel_id })) => Some(zoho_channel_key(channel_id)),
        _ => None,
    }
}

pub fn get(db: &Database, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
    get_in_read(&db.begin_read()?, id)
}

pub fn get_in_read(tx: &ReadTransaction, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
    let t = tx.open_table(tables::SUBSCRIPTIONS.def())?;
    t.get(id.as_u128())?.map(|v| tables::SUBSCRIPTIONS.decode(v.value())).transpose()
}

/// Every subscription, oldest first. Subscriptions number in the hundreds at most, so a full read is fine.
pub fn list(db: &impl ReadableDatabase) -> Result<Vec<Subscription>, StoreError> {
    list_in(&db.begin_read()?)
}

pub fn list_in(tx: &ReadTransaction) -> Result<Vec<Subscription>, StoreError> {
    let t = tx.open_table(tables::SUBSCRIPTIONS.def())?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (_, v) = row?;
        out.push(tables::SUBSCRIPTIONS.decode(v.value())?);
    }
    Ok(out)
}

/// Every stored secret by subscription, for building the in-memory registry.
pub fn all_secrets(db: &impl ReadableDatabase) -> Result<Vec<(SubscriptionId, u8, StoredSecret)>, StoreError> {
    let tx = db.begin_read()?;
    let t = tx.open_table(tables::SECRETS.def())?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let (sub, slot) = k.value();
        out.push((SubscriptionId::from_u128(sub), slot, tables::SECRETS.decode(v.value())?));
    }
    Ok(out)
}

pub fn find_by_key(tx: &WriteTransaction, key: &str) -> Result<Option<SubscriptionId>, StoreError> {
    let t = tx.open_table(tables::SUBSCRIPTION_KEYS)?;
    Ok(t.get(key)?.map(|v| SubscriptionId::from_u128(v.value())))
}

pub fn get_in(tx: &WriteTransaction, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
    let t = tx.open_table(tables::SUBSCRIPTIONS.def())?;
    t.get(id.as_u128())?.map(|v| tables::SUBSCRIPTIONS.decode(v.value())).transpose()
}

/// Inserts a new subscription, refusing a name or natural key that is taken.
pub fn insert(tx: &WriteTransaction, sub: &Subscription) -> Result<(), StoreError> {
    let mut keys = tx.open_table(tables::SUBSCRIPTION_KEYS)?;
    if keys.get(name_key(&sub.name).as_str())?.is_some() {
        return Err(StoreError::Conflict(format!("a subscription named `{}` already exists", sub.name)));
    }
    if let Some(nk) = natural_key(sub)
        && keys.get(nk.as_str())?.is_some()
    {
        return Err(StoreError::Conflict(format!(
            "a {} subscription for account `{}` and topic `{}` already exists",
            sub.source, sub.account, sub.topic
        )));
    }
    keys.insert(name_key(&sub.name).as_str(), sub.id.as_u128())?;
    if let Some(nk) = natural_key(sub) {
        keys.insert(nk.as_str(), sub.id.as_u128())?;
    }
    drop(keys);
    put(tx, sub)
}

/// Replaces a stored subscription, moving its lookup keys when its name or natural key changed.
pub fn update(tx: &WriteTransaction, before: &Subscription, after: &Subscription) -> Result<(), StoreError> {
    let mut keys = tx.open_table(tables::SUBSCRIPTION_KEYS)?;
    let moves =
        [(Some(name_key(&before.name)), Some(name_key(&after.name))), (natural_key(before), natural_key(after))];
    for (old, new) in moves {
        if old == new {
            continue;
        }
        if let Some(new) = &new
            && keys.get(new.as_str())?.is_some_and(|v| v.value() != after.id.as_u128())
        {
            return Err(StoreError::Conflict(format!("`{new}` is already used by another subscription")));
        }
        if let Some(old) = &old {
            keys.remove(old.as_str())?;
        }
        if let Some(new) = &new {
            keys.insert(new.as_str(), after.id.as_u128())?;
        }
    }
    drop(keys);
    put(tx, after)
}

fn put(tx: &WriteTransaction, sub: &Subscription) -> Result<(), StoreError> {
    let bytes = tables::SUBSCRIPTIONS.encode(sub)?;
    tx.open_table(tables::SUBSCRIPTIONS.def())?.insert(sub.id.as_u128(), bytes.as_slice())?;
    Ok(())
}

pub fn set_secret(
    tx: &WriteTransaction,
    id: SubscriptionId,
    slot: u8,
    secret: &StoredSecret,
) -> Result<(), StoreError> {
    let bytes = tables::SECRETS.encode(secret)?;
    tx.open_table(tables::SECRETS.def())?.insert((id.as_u128(), slot), bytes.as_slice())?;
    Ok(())
}

/// The secret in `slot` of a subscription, inside a write transaction.
pub fn secret_in(tx: &WriteTransaction, id: SubscriptionId, slot: u8) -> Result<Option<StoredSecret>, StoreError> {
    let t = tx.open_table(tables::SECRETS.def())?;
    t.get((id.as_u128(), slot))?.map(|v| tables::SECRETS.decode(v.value())).transpose()
}

pub fn remove_secret(tx: &WriteTransaction, id: SubscriptionId, slot: u8) -> Result<(), StoreError> {
    tx.open_table(tables::SECRETS.def())?.remove((id.as_u128(), slot))?;
    Ok(())
}

/// When this instance first held the Shopify app secret with `fingerprint`, recording `now` the first time.
/// The secret comes from the environment, which says nothing of its age: the dashboard counts it from here.
pub fn app_secret_first_seen(db: &Database, fingerprint: &str, now: Timestamp) -> Result<Timestamp, StoreError> {
    let key = format!("app_secret_seen:{fingerprint}");
    if let Some(ms) = db.begin_read()?.open_table(tables::META)?.get(key.as_str())? {
        return Ok(Timestamp::from_millis(i64::try_from(ms.value()).unwrap_or(i64::MAX)));
    }
    let tx = db.begin_write()?;
    let seen = {
        let mut meta = tx.open_table(tables::META)?;
        let stored = meta.get(key.as_str())?.map(|ms| ms.value());
        match stored {
            Some(ms) => Timestamp::from_millis(i64::try_from(ms).unwrap_or(i64::MAX)),
            None => {
                meta.insert(key.as_str(), u64::try_from(now.millis()).unwrap_or(0))?;
                now
            }
        }
    };
    tx.commit()?;
    Ok(seen)
}

/// A store-only Shopify subscription with id `id`, for tests that need one stored.
#[cfg(test)]
pub(crate) fn sample(id: SubscriptionId) -> crate::domain::Subscription {
    use crate::domain::subscription::{Destination, Origin};
    let t = id.timestamp();
    crate::domain::Subscription {
        id,
        name: "sample".into(),
        source: crate::domain::Source::Shopify,
        topic: "orders/create".into(),
        account: "sample.myshopify.com".into(),
        status: crate::domain::SubscriptionStatus::Active,
        destination: Destination::Store,
        origin: Origin::Api,
        zoho: None,
        dedupe_header: None,
        created_at: t,
        updated_at: t,
        last_verified_at: None,
        consecutive_failures: 0,
        metadata: Default::default(),
        retention_days: None,
        versions: Default::default(),
    }
}
