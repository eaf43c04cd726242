//! The cloud tier's storage: one SQLite file (`DIR/cloud.db`, WAL, fsync on commit) holding,
//! per (fingerprint, pushing edge, team pseudonym), the latest counts and their version, plus
//! the batch ids already applied.
//!
//! Counts are replaced, never added: an entry is written only when its version is higher than
//! the stored one. That makes every application idempotent and order-independent, so a retry
//! (even one whose batch id was forgotten) or a reordered batch cannot double-count. The batch
//! table only lets a retry learn its first acknowledgement.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use periodic_wire::Organisation;
use periodic_wire::cloud::{CloudSummary, StatisticsAck, StatisticsBatch};
use periodic_wire::T2Hash;
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreError;

/// Batch ids are remembered this long; a retry later than that is still harmless (versions
/// decide) but is answered as a new batch.
const BATCH_MEMORY_SECONDS: u64 = 7 * 24 * 3600;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS team_fingerprints (
    fingerprint INTEGER NOT NULL,
    source TEXT NOT NULL,
    team TEXT NOT NULL,
    units INTEGER NOT NULL,
    repos INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, source, team)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    source TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    applied INTEGER NOT NULL,
    stale INTEGER NOT NULL,
    received_unix INTEGER NOT NULL,
    PRIMARY KEY (source, batch_id)
) WITHOUT ROWID;
";

/// The cloud's statistics store. Writes go through one connection, reads through another, so
/// a long push does not hold up lookups (WAL lets them run side by side).
pub struct CloudStore {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(connection)
}

fn unavailable<T>(_: T) -> StoreError {
    StoreError::Task("the cloud store lock was poisoned by a panic".into())
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// SQLite integers are signed; fingerprints and versions are stored by their bit pattern.
fn as_sql(value: u64) -> i64 {
    value as i64
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| StoreError::Task(error.to_string()))?
}

impl CloudStore {
    /// Opens (or creates) `dir/cloud.db`.
    pub fn open(dir: &Path) -> Result<CloudStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Unavailable(format!("create {}: {error}", dir.display())))?;
        let path = dir.join("cloud.db");
        let writer = open_connection(&path)?;
        writer.execute_batch(SCHEMA)?;
        let reader = open_connection(&path)?;
        Ok(CloudStore { writer: Arc::new(Mutex::new(writer)), reader: Arc::new(Mutex::new(reader)) })
    }

    /// Applies a batch from `source` (the pushing edge's cloud-token tenant) in one
    /// transaction; an already applied batch id returns its first acknowledgement.
    pub async fn apply(&self, source: &str, batch: StatisticsBatch) -> Result<StatisticsAck, StoreError> {
        let writer = self.writer.clone();
        let source = source.to_string();
        blocking(move || {
            let mut connection = writer.lock().map_err(unavailable)?;
            let transaction = connection.transaction()?;
            let previous: Option<(u32, u32)> = transaction
                .query_row("SELECT applied, stale FROM batches WHERE source = ?1 AND batch_id = ?2", params![source, batch.batch_id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            if let Some((applied, stale)) = previous {
                return Ok(StatisticsAck { batch_id: batch.batch_id, duplicate: true, applied, stale });
            }
            let (mut applied, mut stale) = (0u32, 0u32);
            {
                let mut upsert = transaction.prepare_cached(
                    "INSERT INTO team_fingerprints (fingerprint, source, team, units, repos, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (fingerprint, source, team) DO UPDATE SET units = excluded.units, repos = excluded.repos, version = excluded.version
                     WHERE excluded.version > team_fingerprints.version",
                )?;
                for entry in &batch.entries {
                    let changed = upsert.execute(params![
                        as_sql(entry.fingerprint.0),
                        source,
                        entry.team,
                        as_sql(entry.units),
                        as_sql(entry.repos),
                        as_sql(entry.version)
                    ])?;
                    if changed > 0 { applied += 1 } else { stale += 1 }
                }
            }
            let now = now_unix();
            transaction.execute(
                "INSERT INTO batches (source, batch_id, applied, stale, received_unix) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![source, batch.batch_id, applied, stale, as_sql(now)],
            )?;
            transaction.execute("DELETE FROM batches WHERE received_unix < ?1", params![as_sql(now.saturating_sub(BATCH_MEMORY_SECONDS))])?;
            transaction.commit()?;
            Ok(StatisticsAck { batch_id: batch.batch_id, duplicate: false, applied, stale })
        })
        .await
    }

    /// Organisation-wide counts of each fingerprint, in order.
    pub async fn commonness(&self, fingerprints: Vec<T2Hash>) -> Result<Vec<Organisation>, StoreError> {
        let reader = self.reader.clone();
        blocking(move || {
            let connection = reader.lock().map_err(unavailable)?;
            let mut select = connection.prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(repos), 0), COALESCE(SUM(units), 0) FROM team_fingerprints WHERE fingerprint = ?1 AND units > 0",
            )?;
            fingerprints
                .iter()
                .map(|fingerprint| {
                    select
                        .query_row(params![as_sql(fingerprint.0)], |row| {
                            Ok(Organisation { teams: row.get::<_, i64>(0)? as u64, repos: row.get::<_, i64>(1)? as u64, units: row.get::<_, i64>(2)? as u64 })
                        })
                        .map_err(StoreError::from)
                })
                .collect()
        })
        .await
    }

    /// Totals for monitoring (scans the table: meant for dashboards, not for every request).
    pub async fn summary(&self) -> Result<CloudSummary, StoreError> {
        let reader = self.reader.clone();
        blocking(move || {
            let connection = reader.lock().map_err(unavailable)?;
            let count = |sql: &str| connection.query_row(sql, [], |row| row.get::<_, i64>(0)).map(|n| n as u64);
            Ok(CloudSummary {
                fingerprints: count("SELECT COUNT(DISTINCT fingerprint) FROM team_fingerprints WHERE units > 0")?,
                teams: count("SELECT COUNT(*) FROM (SELECT DISTINCT source, team FROM team_fingerprints WHERE units > 0)")?,
                sources: count("SELECT COUNT(DISTINCT source) FROM team_fingerprints")?,
                batches: count("SELECT COUNT(*) FROM batches")?,
            })
        })
        .await
    }

    /// `Ok` when the database answers.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let reader = self.reader.clone();
        blocking(move || {
            let connection = reader.lock().map_err(unavailable)?;
            connection.query_row("SELECT COUNT(*) FROM batches WHERE 0", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// Checkpoints the WAL into the database file (called at shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let writer = self.writer.clone();
        blocking(move || {
            let connection = writer.lock().map_err(unavailable)?;
            connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periodic_wire::cloud::TeamFingerprintCount;

    fn entry(team: char, fingerprint: u64, units: u64, repos: u64, version: u64) -> TeamFingerprintCount {
        TeamFingerprintCount { team: team.to_string().repeat(32), fingerprint: T2Hash(fingerprint), units, repos, version }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counts_are_replaced_by_newer_versions_and_never_added() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CloudStore::open(dir.path()).expect("open");
        let first = StatisticsBatch { batch_id: "b1".into(), entries: vec![entry('a', 1, 3, 2, 10), entry('b', 1, 1, 1, 10)] };
        let ack = store.apply("edge-1", first.clone()).await.expect("apply");
        assert_eq!((ack.duplicate, ack.applied, ack.stale), (false, 2, 0));
        // The same batch again: acknowledged as a duplicate, nothing added.
        let again = store.apply("edge-1", first).await.expect("apply");
        assert_eq!((again.duplicate, again.applied), (true, 2));
        // The same counts under a new batch id and an old version: stale, still not added.
        let replay = store.apply("edge-1", StatisticsBatch { batch_id: "b2".into(), entries: vec![entry('a', 1, 3, 2, 10)] }).await.expect("apply");
        assert_eq!((replay.applied, replay.stale), (0, 1));
        let counts = store.commonness(vec![T2Hash(1), T2Hash(2)]).await.expect("lookup");
        assert_eq!(counts[0], Organisation { teams: 2, repos: 3, units: 4 });
        assert_eq!(counts[1], Organisation::default());
        // A newer count replaces; a zero count removes the team from the answer.
        store.apply("edge-1", StatisticsBatch { batch_id: "b3".into(), entries: vec![entry('a', 1, 5, 1, 11), entry('b', 1, 0, 0, 11)] }).await.expect("apply");
        assert_eq!(store.commonness(vec![T2Hash(1)]).await.expect("lookup")[0], Organisation { teams: 1, repos: 1, units: 5 });
        // The same team pseudonym from another edge is another team.
        store.apply("edge-2", StatisticsBatch { batch_id: "b1".into(), entries: vec![entry('a', 1, 1, 1, 1)] }).await.expect("apply");
        assert_eq!(store.commonness(vec![T2Hash(1)]).await.expect("lookup")[0].teams, 2);
        let summary = store.summary().await.expect("summary");
        assert_eq!((summary.fingerprints, summary.teams, summary.sources, summary.batches), (1, 2, 2, 4));
    }
}
