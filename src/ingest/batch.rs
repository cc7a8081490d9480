//! What one group commit writes: each delivery under its subscription (found, or discovered for Shopify
//! traffic nobody registered), its job (leased straight to the running worker where there is room), and
//! the minute's counters.

use std::collections::HashMap;

use redb::WriteTransaction;

use super::writer::{LeaseRoom, Pending, Stored, Target, WriteError, bind, first_state};
use crate::domain::health::Counters;
use crate::domain::job::Preloaded;
use crate::domain::subscription::{Destination, Origin, Subscription, default_name};
use crate::domain::{Delivery, DeliveryStatus, Source, SubscriptionId, SubscriptionStatus};
use crate::domain::{Job, JobState, Lease};
use crate::storage::dedupe::DedupeIndex;
use crate::storage::deliveries::{DeliveryWriter, Inserted, NewDelivery};
use crate::storage::{StoreError, stats, subscriptions};

/// What one group commit wrote, for the writer to answer and hand on.
pub(super) struct Committed {
    /// Per request, its result.
    pub(super) results: Vec<Result<Stored, WriteError>>,
    /// The subscriptions discovered.
    pub(super) created: Vec<Subscription>,
    /// The new deliveries with their stored payloads, for the search indexer.
    pub(super) stored: Vec<(Delivery, Vec<u8>)>,
    /// The jobs leased to the running worker, with its lease owner, to hand over.
    pub(super) handed: Option<(String, Vec<(Job, Preloaded)>)>,
}

/// Writes a batch's deliveries, their jobs and subscriptions discovered on the way, in `tx`.
pub(super) fn write_batch(
    tx: &WriteTransaction,
    pendings: Vec<Pending>,
    index: &mut DedupeIndex,
    mut room: Option<LeaseRoom>,
) -> Result<Committed, StoreError> {
    let mut subs: HashMap<SubscriptionId, Option<Subscription>> = HashMap::new();
    let mut created = Vec::new();
    let mut deltas = stats::Deltas::new();
    let mut results = Vec::with_capacity(pendings.len());
    let mut stored = Vec::with_capacity(pendings.len());
    let mut handed = Vec::new();
    let mut writer = DeliveryWriter::open(tx)?;
    for p in pendings {
        let Pending { target, mut new, mut job, payload } = p;
        let sub = match &target {
            Target::Known(id) => match cached(tx, &mut subs, *id)? {
                Some(s) if new.delivery.subscription_id == s.id => {
                    // The job was made from the registry's copy; the stored subscription decides. A 410
                    // may have paused its destination since, and an operator may have changed it between
                    // forwarding and keeping.
                    let forwards = matches!(s.destination, Destination::Http { .. });
                    match job.as_mut() {
                        Some(job) if forwards => job.state = first_state(&s),
                        None if !forwards => {}
                        _ => new.update(|d| job = bind(d, &s))?,
                    }
                    s
                }
                Some(s) => {
                    new.update(|d| job = bind(d, &s))?;
                    s
                }
                None => {
                    results.push(Err(WriteError::SubscriptionGone(*id)));
                    continue;
                }
            },
            Target::DiscoverShopify { account, topic } => {
                let key = subscriptions::shopify_key(account, topic);
                let sub = match subscriptions::find_by_key(tx, &key)? {
                    Some(id) => cached(tx, &mut subs, id)?
                        .ok_or(StoreError::Corrupt { table: "subscription_keys_v1", detail: key })?,
                    None => {
                        let s = discovered(account, topic, &new);
                        subscriptions::insert(tx, &s)?;
                        subs.insert(s.id, Some(s.clone()));
                        created.push(s.clone());
                        s
                    }
                };
                new.update(|d| job = bind(d, &sub))?;
                sub
            }
        };
        let sub_id = sub.id;
        let minute = new.delivery.received_at.minute();
        let delta = deltas.entry((sub_id.as_u128(), minute)).or_default();
        let handing = match (job.as_mut(), room.as_mut(), payload) {
            (Some(j), Some(r), Some(payload)) if j.state == JobState::Ready && r.left > 0 => {
                let until = new.delivery.received_at.plus_millis(r.lease_ms);
                j.state = JobState::Leased;
                j.lease = Some(Lease { owner: r.owner.clone(), until });
                new.update(|d| d.status = DeliveryStatus::Processing)?;
                r.left -= 1;
                Some(Preloaded { sub, payload })
            }
            _ => None,
        };
        match writer.insert(&new, job.as_ref(), index)? {
            Inserted::New => {
                if let (Some(pre), Some(job)) = (handing, job) {
                    handed.push((job, pre));
                }
                // A kept delivery has reached its end; a forwarded one is counted when its destination answers.
                let kept = new.delivery.status == DeliveryStatus::Stored;
                delta.add(&Counters {
                    received: 1,
                    bytes: new.delivery.size_bytes,
                    succeeded: u64::from(kept),
                    ..Counters::default()
                });
                results.push(Ok(Stored { delivery_id: new.delivery.id, subscription_id: sub_id, duplicate: false }));
                stored.push(new.into_parts());
            }
            Inserted::Duplicate(existing) => {
                if handing.is_some()
                    && let Some(r) = room.as_mut()
                {
                    r.left += 1;
                }
                delta.duplicates += 1;
                results.push(Ok(Stored { delivery_id: existing, subscription_id: sub_id, duplicate: true }));
            }
        }
    }
    drop(writer);
    stats::apply(tx, &deltas)?;
    let handed = room.map(|r| (r.owner, handed));
    Ok(Committed { results, created, stored, handed })
}

/// A subscription read once per batch.
fn cached(
    tx: &WriteTransaction,
    subs: &mut HashMap<SubscriptionId, Option<Subscription>>,
    id: SubscriptionId,
) -> Result<Option<Subscription>, StoreError> {
    if let Some(s) = subs.get(&id) {
        return Ok(s.clone());
    }
    let s = subscriptions::get_in(tx, id)?;
    subs.insert(id, s.clone());
    Ok(s)
}

fn discovered(account: &str, topic: &str, first: &NewDelivery) -> Subscription {
    let at = first.delivery.received_at;
    let id = SubscriptionId::new(at);
    Subscription {
        id,
        name: default_name(Source::Shopify, topic, id),
        source: Source::Shopify,
        topic: topic.to_owned(),
        account: account.to_owned(),
        status: SubscriptionStatus::Discovered,
        destination: Destination::Store,
        origin: Origin::Discovered,
        zoho: None,
        dedupe_header: None,
        created_at: at,
        updated_at: at,
        last_verified_at: Some(at),
        consecutive_failures: 0,
        metadata: Default::default(),
        retention_days: None,
        versions: Default::default(),
    }
}
