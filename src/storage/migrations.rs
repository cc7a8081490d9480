//! Forward-only schema migrations. Each runs in its own write transaction together with the bump of
//! `schema_version`, so a crash leaves the database at one version or the next, never between. A database
//! from a newer build is refused rather than misread.

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use super::{StoreError, stats, tables};
use crate::domain::subscription::Destination;

pub struct Migration {
    pub version: u64,
    pub name: &'static str,
    pub run: fn(&WriteTransaction) -> Result<(), StoreError>,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "create the ingest tables", run: v1_initial },
    Migration { version: 2, name: "stats by minute and by hour", run: v2_stats_by_hour },
    Migration { version: 3, name: "deliveries by status", run: v3_deliveries_by_status },
    Migration { version: 4, name: "api tokens", run: v4_api_tokens },
    Migration { version: 5, name: "operators, sessions and the audit log", run: v5_operators },
    Migration { version: 6, name: "the processing queue: leases, held jobs, attempts, replays", run: v6_queue },
    Migration { version: 7, name: "incidents and their notifications", run: v7_incidents },
    Migration { version: 8, name: "handshakes and provider credentials", run: v8_handshakes },
    Migration { version: 9, name: "dedupe keys of deleted deliveries", run: v9_dedupe_stubs },
    Migration { version: 10, name: "privacy erasures", run: v10_erasures },
    Migration { version: 11, name: "destination versions and announced deploys", run: v11_versions },
];

/// The version a database has once every migration ran.
pub fn latest() -> u64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const VERSION_KEY: &str = "schema_version";

pub fn current(db: &impl ReadableDatabase) -> Result<u64, StoreError> {
    let tx = db.begin_read()?;
    match tx.open_table(tables::META) {
        Ok(t) => Ok(t.get(VERSION_KEY)?.map_or(0, |v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

pub fn migrate(db: &Database) -> Result<(), StoreError> {
    let found = current(db)?;
    if found > latest() {
        return Err(StoreError::Downgrade { found, known: latest() });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        let tx = db.begin_write()?;
        (m.run)(&tx)?;
        tx.open_table(tables::META)?.insert(VERSION_KEY, m.version)?;
        tx.commit()?;
        tracing::info!(version = m.version, name = m.name, "applied storage migration");
    }
    Ok(())
}

/// Opening a table in a write transaction creates it; creating them all up front lets readers open any
/// table without handling its absence.
fn v1_initial(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::META)?;
    tx.open_table(tables::SUBSCRIPTIONS.def())?;
    tx.open_table(tables::SUBSCRIPTION_KEYS)?;
    tx.open_table(tables::SECRETS.def())?;
    tx.open_table(tables::DELIVERIES)?;
    tx.open_table(tables::DELIVERIES_BY_SUBSCRIPTION)?;
    tx.open_table(tables::REJECTION_COUNTS)?;
    tx.open_table(tables::REJECTIONS.def())?;
    tx.open_table(tables::STATS_MINUTE_V1.def())?;
    tx.open_table(tables::JOBS.def())?;
    tx.open_table(tables::JOBS_READY)?;
    Ok(())
}

/// Minute rows move to the new table, and each hour gets the sum of its minutes. Schema 1 had no
/// `succeeded` counter: deliveries of subscriptions that keep them (destination `store`) ended when they
/// were stored, so they count as succeeded; forwarded ones had not been forwarded yet.
fn v2_stats_by_hour(tx: &WriteTransaction) -> Result<(), StoreError> {
    let mut deltas = stats::Deltas::new();
    {
        let subs = tx.open_table(tables::SUBSCRIPTIONS.def())?;
        let old = tx.open_table(tables::STATS_MINUTE_V1.def())?;
        for row in old.iter()? {
            let (k, v) = row?;
            let (sub, _) = k.value();
            let mut c = tables::STATS_MINUTE_V1.decode(v.value())?;
            let kept = match subs.get(sub)? {
                Some(s) => matches!(tables::SUBSCRIPTIONS.decode(s.value())?.destination, Destination::Store),
                None => false,
            };
            if kept {
                c.succeeded = c.received;
            }
            deltas.insert(k.value(), c);
        }
    }
    stats::apply(tx, &deltas)?;
    tx.open_table(tables::STATS.def())?;
    tx.delete_table(tables::STATS_MINUTE_V1.def())?;
    Ok(())
}

/// Indexes every delivery whose status moved on from the one it was stored with.
fn v4_api_tokens(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::API_TOKENS.def())?;
    Ok(())
}

fn v5_operators(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::OPERATORS.def())?;
    tx.open_table(tables::SESSIONS.def())?;
    tx.open_table(tables::AUDIT_LOG.def())?;
    Ok(())
}

fn v6_queue(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::JOBS_LEASED)?;
    tx.open_table(tables::JOBS_HELD)?;
    tx.open_table(tables::ATTEMPTS.def())?;
    tx.open_table(tables::REPLAYS.def())?;
    tx.open_table(tables::REPLAYS_BY_DELIVERY)?;
    tx.open_table(tables::REPLAYS_BY_OPERATOR)?;
    tx.open_table(tables::BULK_REPLAYS.def())?;
    Ok(())
}

fn v3_deliveries_by_status(tx: &WriteTransaction) -> Result<(), StoreError> {
    let deliveries = tx.open_table(tables::DELIVERIES)?;
    let mut by_status = tx.open_table(tables::DELIVERIES_BY_STATUS)?;
    for row in deliveries.iter()? {
        let (id, v) = row?;
        let d = super::deliveries::decode_record(v.value())?;
        if let Some(code) = tables::indexed_status(d.status) {
            by_status.insert((code, tables::source_code(d.source), id.value()), ())?;
        }
    }
    Ok(())
}

fn v7_incidents(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::INCIDENTS.def())?;
    tx.open_table(tables::INCIDENTS_OPEN)?;
    tx.open_table(tables::INCIDENTS_NOTIFY)?;
    Ok(())
}

fn v8_handshakes(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::HANDSHAKE_STATES.def())?;
    tx.open_table(tables::HANDSHAKE_RUNS.def())?;
    tx.open_table(tables::CREDENTIALS.def())?;
    Ok(())
}

fn v9_dedupe_stubs(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::DEDUPE_STUBS.def())?;
    Ok(())
}

fn v10_erasures(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::ERASURES.def())?;
    Ok(())
}

fn v11_versions(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::VERSIONS_SEEN.def())?;
    tx.open_table(tables::DEPLOYS.def())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_increase() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as u64 + 1, "{}", m.name);
        }
    }

    #[test]
    fn schema_1_minute_stats_become_minutes_and_hours() {
        use crate::domain::health::Counters;
        use crate::domain::subscription::{Origin, default_name};
        use crate::domain::{Source, Subscription, SubscriptionId, SubscriptionStatus, Timestamp};

        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let at = Timestamp::from_millis(1_800_000_000_000);
        let sub = |n: i64, destination| {
            let id = SubscriptionId::new(at.plus_millis(n));
            Subscription {
                id,
                name: default_name(Source::Shopify, "orders/create", id),
                source: Source::Shopify,
                topic: "orders/create".into(),
                account: "a.myshopify.com".into(),
                status: SubscriptionStatus::Active,
                destination,
                origin: Origin::Config,
                zoho: None,
                dedupe_header: None,
                created_at: at,
                updated_at: at,
                last_verified_at: None,
                consecutive_failures: 0,
                metadata: Default::default(),
                retention_days: None,
                versions: Default::default(),
            }
        };
        let kept = sub(0, Destination::Store);
        let forwarded = sub(
            1,
            Destination::Http {
                url: "http://127.0.0.1:9/".into(),
                timeout_seconds: None,
                concurrency: None,
                headers: Vec::new(),
            },
        );
        let minute = at.minute() / 60 * 60; // the first minute of an hour
        let tx = db.begin_write().unwrap();
        v1_initial(&tx).unwrap();
        tx.open_table(tables::META).unwrap().insert(VERSION_KEY, 1).unwrap();
        for s in [&kept, &forwarded] {
            let mut subs = tx.open_table(tables::SUBSCRIPTIONS.def()).unwrap();
            subs.insert(s.id.as_u128(), tables::SUBSCRIPTIONS.encode(s).unwrap().as_slice()).unwrap();
            let mut old = tx.open_table(tables::STATS_MINUTE_V1.def()).unwrap();
            for (m, received) in [(minute, 2), (minute + 59, 3), (minute + 60, 4)] {
                let c = Counters { received, bytes: received * 100, ..Counters::default() };
                old.insert((s.id.as_u128(), m), tables::STATS_MINUTE_V1.encode(&c).unwrap().as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();

        migrate(&db).unwrap();
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(tables::STATS.def()).unwrap();
        let row = |s: &Subscription, kind, period| {
            tables::STATS.decode(t.get((s.id.as_u128(), kind, period)).unwrap().unwrap().value()).unwrap()
        };
        let hour = minute / 60;
        let first = row(&kept, tables::STATS_HOUR, hour);
        assert_eq!((first.received, first.bytes, first.succeeded), (5, 500, 5), "an hour sums its minutes");
        assert_eq!(row(&kept, tables::STATS_HOUR, hour + 1).received, 4);
        assert_eq!(row(&kept, tables::STATS_MINUTE, minute + 59).received, 3);
        let fwd = row(&forwarded, tables::STATS_HOUR, hour);
        assert_eq!((fwd.received, fwd.succeeded), (5, 0), "forwarded deliveries had not ended");
        assert!(matches!(tx.open_table(tables::STATS_MINUTE_V1.def()), Err(redb::TableError::TableDoesNotExist(_))));
    }

    #[test]
    fn schema_2_deliveries_that_moved_on_are_indexed_by_status() {
        use crate::domain::filter::Filter;
        use crate::domain::{DeliveryId, DeliveryStatus, Source, Timestamp};
        use crate::storage::deliveries;

        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let at = Timestamp::from_millis(1_800_000_000_000);
        let delivery = |n: i64, source, status| deliveries::sample(at.plus_millis(n), source, status);
        let rows = [
            delivery(0, Source::Shopify, DeliveryStatus::Failed),
            delivery(1, Source::Shopify, DeliveryStatus::Succeeded),
            delivery(2, Source::Zoho, DeliveryStatus::Failed),
            delivery(3, Source::Shopify, DeliveryStatus::Stored),
            delivery(4, Source::Standard, DeliveryStatus::Failed),
        ];
        let tx = db.begin_write().unwrap();
        v1_initial(&tx).unwrap();
        v2_stats_by_hour(&tx).unwrap();
        tx.open_table(tables::META).unwrap().insert(VERSION_KEY, 2).unwrap();
        for d in &rows {
            deliveries::put_sample(&tx, d);
        }
        tx.commit().unwrap();

        migrate(&db).unwrap();
        let ids = |filter: Filter| -> Vec<DeliveryId> {
            deliveries::list(&db, &filter, None, 10).unwrap().items.iter().map(|l| l.delivery.id).collect()
        };
        let failed = Filter { status: Some(DeliveryStatus::Failed), ..Filter::default() };
        assert_eq!(ids(failed.clone()), [rows[4].id, rows[2].id, rows[0].id], "newest first, every source");
        assert_eq!(ids(Filter { source: Some(Source::Zoho), ..failed.clone() }), [rows[2].id]);
        assert_eq!(ids(Filter { status: Some(DeliveryStatus::Stored), ..Filter::default() }), [rows[3].id]);

        // A status change moves the entry.
        let tx = db.begin_write().unwrap();
        deliveries::update(&tx, rows[0].id, |d| d.status = DeliveryStatus::Succeeded).unwrap().unwrap();
        tx.commit().unwrap();
        assert_eq!(ids(failed), [rows[4].id, rows[2].id]);
        assert_eq!(
            ids(Filter { status: Some(DeliveryStatus::Succeeded), ..Filter::default() }),
            [rows[1].id, rows[0].id]
        );
    }

    #[test]
    fn a_new_database_is_migrated_once_and_downgrades_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        assert_eq!(current(&db).unwrap(), 0);
        migrate(&db).unwrap();
        assert_eq!(current(&db).unwrap(), latest());
        migrate(&db).unwrap();
        assert_eq!(current(&db).unwrap(), latest(), "migrating again changes nothing");

        let tx = db.begin_write().unwrap();
        tx.open_table(tables::META).unwrap().insert(VERSION_KEY, latest() + 1).unwrap();
        tx.commit().unwrap();
        let err = migrate(&db).unwrap_err();
        assert!(matches!(err, StoreError::Downgrade { found, .. } if found == latest() + 1), "{err}");
    }
}
