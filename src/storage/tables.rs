//! Every table Hookplane keeps, in one place. Names carry a layout version: a change of key or value layout
//! gets a new name and a migration that copies, while additive field changes need neither (see `codec`).
//! Ids are ULIDs stored as `u128`, so key order is creation order.

use redb::TableDefinition;

use super::codec::{Codec, RecordTable};
use crate::domain::Job;
use crate::domain::access::ApiToken;
use crate::domain::access::Operator;
use crate::domain::access::Session;
use crate::domain::attempt::Attempt;
use crate::domain::audit::AuditEntry;
use crate::domain::credential::StoredCredential;
use crate::domain::deploy::{Announced, Seen};
use crate::domain::erasure::Erasure;
use crate::domain::handshake::{HandshakeRun, HandshakeState};
use crate::domain::health::Counters;
use crate::domain::incident::Incident;
use crate::domain::replay::{BulkReplay, Replay};
use crate::domain::retention::DedupeStub;
use crate::domain::subscription::StoredSecret;
use crate::domain::{Delivery, DeliveryStatus, Source, Subscription};
use crate::storage::records::RejectionSample;

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

/// Delivery id → row: `u32` length of the record, the record ([`DELIVERY_RECORD`]), then the payload (headers
/// and exact body compressed together, see `storage::payload`). One table rather than two because every
/// table a commit touches rewrites at least a page, and the bytes each commit syncs bound ingest throughput.
/// Previews are cut from the payload when read rather than stored twice.
pub const DELIVERIES: TableDefinition<u128, &[u8]> = TableDefinition::new("deliveries_v1");

/// The record part of a `DELIVERIES` row.
pub const DELIVERY_RECORD: Codec<Delivery> = Codec::new("deliveries_v1");

/// (subscription id, delivery id) → fingerprint of the delivery's dedupe key (`{scope}/{provider delivery
/// id}`; none for senders without ids). In key order it lists a subscription's deliveries without scanning
/// all of them; read whole at start it rebuilds the in-memory dedupe index (see `storage::dedupe`). The
/// fingerprint rides here rather than in a table of its own for the same reason as `DELIVERIES`.
pub const DELIVERIES_BY_SUBSCRIPTION: TableDefinition<(u128, u128), Option<u64>> =
    TableDefinition::new("deliveries_by_subscription_v1");

/// (status, source, delivery id) for deliveries whose status moved on from the one they were stored with
/// (`queued` or `stored`): succeeded, processing, retrying, failed. Written by whatever changes a status, and
/// on the ingest path only for a delivery whose job is handed straight to the worker (`processing`); it lets
/// "failed" or "retrying" (the currently failing) be listed newest first without scanning the deliveries
/// that are fine.
pub const DELIVERIES_BY_STATUS: TableDefinition<(u8, u8, u128), ()> = TableDefinition::new("deliveries_by_status_v1");

/// The stored code of a status in `DELIVERIES_BY_STATUS`, or `None` for the statuses deliveries are stored
/// with, which the table leaves out.
pub const fn indexed_status(s: DeliveryStatus) -> Option<u8> {
    match s {
        DeliveryStatus::Queued | DeliveryStatus::Stored => None,
        DeliveryStatus::Processing => Some(1),
        DeliveryStatus::Succeeded => Some(2),
        DeliveryStatus::Retrying => Some(3),
        DeliveryStatus::Failed => Some(4),
    }
}

pub const fn source_code(s: Source) -> u8 {
    match s {
        Source::Shopify => 0,
        Source::Zoho => 1,
        Source::Standard => 2,
    }
}

/// SHA-256 of an API token → the token's record (never the token). Revoked tokens stay, marked.
pub const API_TOKENS: RecordTable<&[u8], ApiToken> = RecordTable::new("api_tokens_v1");

/// Username (lowercase) → operator, with the argon2id digest of their password.
pub const OPERATORS: RecordTable<&str, Operator> = RecordTable::new("operators_v1");

/// SHA-256 of a session id → session. The id itself is only ever in the operator's cookie. Sessions past
/// their idle or absolute expiry are swept at each sign-in.
pub const SESSIONS: RecordTable<&[u8], Session> = RecordTable::new("sessions_v1");

/// Audit entry id → entry. Append-only: nothing in Hookplane updates or deletes a row. Ids are ULIDs, so
/// key order is time order and a time range is a key range.
pub const AUDIT_LOG: RecordTable<u128, AuditEntry> = RecordTable::new("audit_log_v1");

/// Rejection cause → number of requests rejected for it since the data directory was created.
pub const REJECTION_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("rejection_counts_v1");

/// Rejection sample id → metadata of a recent rejected request (never its body). Bounded to
/// `REJECTION_SAMPLES_KEPT` rows: the oldest go first.
pub const REJECTIONS: RecordTable<u128, RejectionSample> = RecordTable::new("rejections_v1");

/// Schema 1's per-minute counters; migration 2 moves them into [`STATS`] and deletes the table.
pub const STATS_MINUTE_V1: RecordTable<(u128, u64), Counters> = RecordTable::new("stats_minute_v1");

/// (subscription id, granularity, period) → counters, written in the same transaction as the events they
/// count. Granularity [`STATS_HOUR`]: the period is an hour since the epoch; [`STATS_MINUTE`]: a minute.
/// Each event adds to both rows, so the 24-hour figures cost 24 reads and the last hour's 60, whatever the
/// traffic. Hours before minutes in key order keeps each kind contiguous for those range reads.
pub const STATS: RecordTable<(u128, u8, u64), Counters> = RecordTable::new("stats_v2");
pub const STATS_HOUR: u8 = 0;
pub const STATS_MINUTE: u8 = 1;

/// Job id → job for the processing queue, written in the same transaction as its delivery.
pub const JOBS: RecordTable<u128, Job> = RecordTable::new("jobs_v1");

/// (run at, in Unix ms; job id) → (): jobs that are ready to run, earliest first.
pub const JOBS_READY: TableDefinition<(i64, u128), ()> = TableDefinition::new("jobs_ready_v1");

/// (lease end, in Unix ms; job id) → (): jobs a worker holds, soonest to end first. Every job is in exactly
/// one of `JOBS_READY` and `JOBS_LEASED`, or in neither when dead; a lease that has ended is claimable.
pub const JOBS_LEASED: TableDefinition<(i64, u128), ()> = TableDefinition::new("jobs_leased_v1");

/// (subscription id, job id) → (): jobs held while their subscription's destination is paused, released in
/// job order (arrival order) on resume. A held job is in neither `JOBS_READY` nor `JOBS_LEASED`.
pub const JOBS_HELD: TableDefinition<(u128, u128), ()> = TableDefinition::new("jobs_held_v1");

/// (delivery id, attempt number) → attempt: every try at handing a delivery to its destination, numbered
/// from 1 across automatic retries and replays, written in the transaction that settles the attempt.
pub const ATTEMPTS: RecordTable<(u128, u32), Attempt> = RecordTable::new("attempts_v1");

/// Replay id → replay (`webhook_replay_jobs`): who asked for a new attempt of which delivery, and how it went.
pub const REPLAYS: RecordTable<u128, Replay> = RecordTable::new("replays_v1");

/// (delivery id, replay id) → (): a delivery's replays, for the per-delivery limit and its history.
pub const REPLAYS_BY_DELIVERY: TableDefinition<(u128, u128), ()> = TableDefinition::new("replays_by_delivery_v1");

/// (operator label, replay id) → (): an operator's replays, newest last, for the per-operator limit.
pub const REPLAYS_BY_OPERATOR: TableDefinition<(&str, u128), ()> = TableDefinition::new("replays_by_operator_v1");

/// Bulk replay id → bulk replay with its filter and progress.
pub const BULK_REPLAYS: RecordTable<u128, BulkReplay> = RecordTable::new("bulk_replays_v1");

/// Incident id → incident, with its notifications. Ids are ULIDs, so key order is opening order.
pub const INCIDENTS: RecordTable<u128, Incident> = RecordTable::new("incidents_v1");

/// (subject key, rule) → the id of its open incident: at most one per (subscription or source, rule) while
/// the rule holds. Removed when the incident resolves.
pub const INCIDENTS_OPEN: TableDefinition<(&str, &str), u128> = TableDefinition::new("incidents_open_v1");

/// (next try, in Unix ms; incident id) → (): incidents with a notification waiting, soonest first. Each
/// incident is here once, at its earliest waiting notification, or not at all.
pub const INCIDENTS_NOTIFY: TableDefinition<(i64, u128), ()> = TableDefinition::new("incidents_notify_v1");

/// How many rejection samples are kept: enough to see a misconfigured secret's pattern, bounded so a flood
/// of junk cannot grow the file.
pub const REJECTION_SAMPLES_KEPT: u64 = 500;

/// Subscription id → its handshake state: what the last run found at the provider, and when the next run is
/// due. Kept apart from the subscription, which the configuration file rewrites at every start.
pub const HANDSHAKE_STATES: RecordTable<u128, HandshakeState> = RecordTable::new("handshake_states_v1");

/// (subscription id, run id) → one handshake run, the newest [`crate::storage::handshakes::KEPT_RUNS`] per
/// subscription: the timeline of its panel.
pub const HANDSHAKE_RUNS: RecordTable<(u128, u128), HandshakeRun> = RecordTable::new("handshake_runs_v1");

/// `{provider}/{account}` → the sealed credential Hookplane signs in to that provider's admin API with.
pub const CREDENTIALS: RecordTable<&str, StoredCredential> = RecordTable::new("credentials_v1");

/// Delivery id → the dedupe key of a delivery retention deleted, kept until its provider can no longer send
/// it again (`DedupeStub::keep_until`), so a late retry is still a repeat. Nothing else of it is kept.
pub const DEDUPE_STUBS: RecordTable<u128, DedupeStub> = RecordTable::new("dedupe_stubs_v1");

/// Erasure id → erasure with its filter and progress. A redact webhook's erasure has its delivery's id.
pub const ERASURES: RecordTable<u128, Erasure> = RecordTable::new("erasures_v1");

/// (subscription id, version) → when its destination first and last answered with that version: the deploy
/// history. The newest `deploys::VERSIONS_KEPT` per subscription are kept.
pub const VERSIONS_SEEN: RecordTable<(u128, &str), Seen> = RecordTable::new("versions_seen_v1");

/// (service, announced at in Unix ms) → the deploy a pipeline announced. The newest
/// `deploys::ANNOUNCEMENTS_KEPT` per service are kept.
pub const DEPLOYS: RecordTable<(&str, i64), Announced> = RecordTable::new("deploys_v1");
