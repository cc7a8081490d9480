//! Every table Hookplane keeps, in one place. Names carry a layout version: a change of key or value layout
//! gets a new name and a migration that copies, while additive field changes need neither (see `codec`).
//! Ids are ULIDs stored as `u128`, so key order is creation order.

use redb::TableDefinition;

use super::codec::RecordTable;
use crate::domain::{Delivery, Subscription};
use crate::jobs::Job;
use crate::secrets::StoredSecret;
use crate::storage::records::{MinuteStats, RejectionSample};

/// `meta`: key → number. Holds `schema_version`, the index of the last migration applied.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Subscription id → subscription.
pub const SUBSCRIPTIONS: RecordTable<u128, Subscription> = RecordTable::new("subscriptions_v1");

/// Lookup key → subscription id. Keys: `name/{name}`, `shopify/{shop domain}/{topic}`,
/// `zoho-channel/{channel id}`. Ingest resolves requests through the in-memory registry built from these.
pub const SUBSCRIPTION_KEYS: TableDefinition<&str, u128> = TableDefinition::new("subscription_keys_v1");

/// (subscription id, slot) → sealed secret; slot 0 is the current secret, 1 the previous one during a
/// rotation overlap. Kept apart from the subscription so listing subscriptions never touches ciphertext.
pub const SECRETS: RecordTable<(u128, u8), StoredSecret> = RecordTable::new("secrets_v1");

/// Delivery id → delivery metadata (a few hundred bytes: listing reads many of these).
pub const DELIVERIES: RecordTable<u128, Delivery> = RecordTable::new("deliveries_v1");

/// Delivery id → the headers and exact body, compressed together (see `storage::body`). Previews are cut
/// from here when read rather than stored twice, which keeps the data on disk smaller than the raw bodies.
pub const PAYLOADS: TableDefinition<u128, &[u8]> = TableDefinition::new("payloads_v1");

/// Delivery id → fingerprint of its dedupe key (`{scope}/{provider delivery id}`, the scope being the source
/// for globally unique ids and the subscription otherwise). Appended in id order, read whole at start to
/// rebuild the in-memory dedupe index (see `storage::dedupe`).
pub const DEDUPE_LOG: TableDefinition<u128, u64> = TableDefinition::new("dedupe_log_v1");

/// (subscription id, delivery id) → (): the deliveries of a subscription, newest last, for listing without
/// scanning all deliveries.
pub const DELIVERIES_BY_SUBSCRIPTION: TableDefinition<(u128, u128), ()> =
    TableDefinition::new("deliveries_by_subscription_v1");

/// Rejection cause → number of requests rejected for it since the data directory was created.
pub const REJECTION_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("rejection_counts_v1");

/// Rejection sample id → metadata of a recent rejected request (never its body). Bounded to
/// `REJECTION_SAMPLES_KEPT` rows: the oldest go first.
pub const REJECTIONS: RecordTable<u128, RejectionSample> = RecordTable::new("rejections_v1");

/// (subscription id, minute since epoch) → counters for that minute, written in the same transaction as
/// the events they count, so health figures cost a bounded number of reads.
pub const STATS_MINUTE: RecordTable<(u128, u64), MinuteStats> = RecordTable::new("stats_minute_v1");

/// Job id → job for the processing queue, written in the same transaction as its delivery.
pub const JOBS: RecordTable<u128, Job> = RecordTable::new("jobs_v1");

/// (run at, in Unix ms; job id) → (): jobs that are ready to run, earliest first.
pub const JOBS_READY: TableDefinition<(i64, u128), ()> = TableDefinition::new("jobs_ready_v1");

/// How many rejection samples are kept: enough to see a misconfigured secret's pattern, bounded so a flood
/// of junk cannot grow the file.
pub const REJECTION_SAMPLES_KEPT: u64 = 500;
