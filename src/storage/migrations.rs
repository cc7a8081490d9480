//! Forward-only schema migrations. Each runs in its own write transaction together with the bump of
//! `schema_version`, so a crash leaves the database at one version or the next, never between. A database
//! from a newer build is refused rather than misread.

use redb::{Database, ReadableDatabase, WriteTransaction};

use super::{StoreError, tables};

pub struct Migration {
    pub version: u64,
    pub name: &'static str,
    pub run: fn(&WriteTransaction) -> Result<(), StoreError>,
}

pub const MIGRATIONS: &[Migration] = &[Migration { version: 1, name: "create the ingest tables", run: v1_initial }];

/// The version a database has once every migration ran.
pub fn latest() -> u64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const VERSION_KEY: &str = "schema_version";

pub fn current(db: &Database) -> Result<u64, StoreError> {
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
    tx.open_table(tables::STATS_MINUTE.def())?;
    tx.open_table(tables::JOBS.def())?;
    tx.open_table(tables::JOBS_READY)?;
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
