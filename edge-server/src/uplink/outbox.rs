//! The team edge's durable outbox to the cloud tier: one SQLite file in the data directory
//! (`cloud-outbox.db`, WAL, fsync on commit).
//!
//! It holds *which* (tenant, fingerprint) pairs changed, not the changes themselves: counts are
//! read from the team's store when a batch is formed, so the cloud always receives absolute
//! numbers. Each mark carries a sequence number; a batch claims (tenant, fingerprint, seq)
//! and, once acknowledged, deletes only the rows whose seq is unchanged, so a fingerprint
//! marked again while its batch was in flight stays queued. The batch being sent is stored
//! whole (id, body, claims) before the first attempt, so every retry, even after a restart,
//! sends the same bytes under the same id.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use periodic_wire::T2Hash;
use periodic_wire::cloud::{StatisticsBatch, TeamFingerprintCount};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dirty (
    tenant TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (tenant, fingerprint)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dirty_by_seq ON dirty (seq);
CREATE TABLE IF NOT EXISTS pending (
    slot INTEGER PRIMARY KEY CHECK (slot = 1),
    batch_id TEXT NOT NULL,
    body TEXT NOT NULL,
    claims TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// One queued (tenant, fingerprint) as of mark number `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub tenant: String,
    pub fingerprint: T2Hash,
    pub seq: i64,
}

/// A formed batch, stored until the cloud acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBatch {
    pub batch: StatisticsBatch,
    pub claims: Vec<Claim>,
}

/// Counts of one claimed fingerprint, read from the team's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub units: u64,
    pub repos: u64,
}

pub struct Outbox {
    connection: Mutex<Connection>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Task("the cloud outbox lock was poisoned by a panic".into())
}

fn corrupt(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("cloud outbox: {error}"))
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros() as u64)
}

fn meta_get(connection: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    Ok(connection.query_row("SELECT value FROM meta WHERE name = ?1", params![name], |row| row.get(0)).optional()?)
}

fn meta_set(connection: &Connection, name: &str, value: &str) -> Result<(), StoreError> {
    connection.execute("INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value", params![name, value])?;
    Ok(())
}

fn meta_number(connection: &Connection, name: &str) -> Result<u64, StoreError> {
    match meta_get(connection, name)? {
        Some(text) => text.parse().map_err(|_| StoreError::Corrupt(format!("cloud outbox: meta {name} is not a number"))),
        None => Ok(0),
    }
}

impl Outbox {
    /// Opens (or creates) the outbox file. Blocking.
    pub fn open(path: &Path) -> Result<Outbox, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| StoreError::Unavailable(format!("create {}: {error}", parent.display())))?;
        }
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(SCHEMA)?;
        if meta_get(&connection, "instance")?.is_none() {
            // Batch ids must be unique per pushing edge; replicas sharing a cloud token each
            // have their own outbox, so each names its batches after a random instance id.
            let mut random = [0u8; 8];
            getrandom::fill(&mut random).map_err(|error| StoreError::Unavailable(format!("no randomness from the OS: {error}")))?;
            let instance: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
            meta_set(&connection, "instance", &instance)?;
        }
        Ok(Outbox { connection: Mutex::new(connection) })
    }

    /// Queues `fingerprints` of `tenant` (durably, before returning). Blocking.
    pub fn mark(&self, tenant: &str, fingerprints: &[T2Hash]) -> Result<(), StoreError> {
        if fingerprints.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection.lock().map_err(poisoned)?;
        let transaction = connection.transaction()?;
        let seq = meta_number(&transaction, "next_seq")? + 1;
        {
            let mut upsert = transaction.prepare_cached(
                "INSERT INTO dirty (tenant, fingerprint, seq) VALUES (?1, ?2, ?3) ON CONFLICT (tenant, fingerprint) DO UPDATE SET seq = excluded.seq",
            )?;
            for fingerprint in fingerprints {
                upsert.execute(params![tenant, fingerprint.0 as i64, seq as i64])?;
            }
        }
        meta_set(&transaction, "next_seq", &seq.to_string())?;
        transaction.commit()?;
        Ok(())
    }

    /// The batch waiting for an acknowledgement, if any. Blocking.
    pub fn pending(&self) -> Result<Option<PendingBatch>, StoreError> {
        let connection = self.connection.lock().map_err(poisoned)?;
        let row: Option<(String, String)> =
            connection.query_row("SELECT body, claims FROM pending WHERE slot = 1", [], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
        row.map(|(body, claims)| Ok(PendingBatch { batch: serde_json::from_str(&body).map_err(corrupt)?, claims: serde_json::from_str(&claims).map_err(corrupt)? }))
            .transpose()
    }

    /// Up to `limit` queued fingerprints, oldest marks first. Blocking.
    pub fn claim(&self, limit: usize) -> Result<Vec<Claim>, StoreError> {
        let connection = self.connection.lock().map_err(poisoned)?;
        let mut select = connection.prepare_cached("SELECT tenant, fingerprint, seq FROM dirty ORDER BY seq LIMIT ?1")?;
        let rows = select.query_map(params![limit as i64], |row| {
            Ok(Claim { tenant: row.get(0)?, fingerprint: T2Hash(row.get::<_, i64>(1)? as u64), seq: row.get(2)? })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Stores a new batch for `claims` with their `counts`: assigns its id and versions
    /// (increasing, and at least the current time in microseconds, so that several replicas
    /// pushing for one team order their counts by when they were read). Blocking.
    pub fn form(&self, claims: Vec<Claim>, counts: &[Counts], pseudonym: impl Fn(&str) -> String) -> Result<PendingBatch, StoreError> {
        let mut connection = self.connection.lock().map_err(poisoned)?;
        let transaction = connection.transaction()?;
        let instance = meta_get(&transaction, "instance")?.unwrap_or_default();
        let number = meta_number(&transaction, "next_batch")? + 1;
        let mut version = meta_number(&transaction, "last_version")?.max(now_micros());
        let entries = claims
            .iter()
            .zip(counts)
            .map(|(claim, counts)| {
                version += 1;
                TeamFingerprintCount { team: pseudonym(&claim.tenant), fingerprint: claim.fingerprint, units: counts.units, repos: counts.repos, version }
            })
            .collect();
        let batch = StatisticsBatch { batch_id: format!("{instance}-{number}"), entries };
        transaction.execute(
            "INSERT INTO pending (slot, batch_id, body, claims) VALUES (1, ?1, ?2, ?3)",
            params![batch.batch_id, serde_json::to_string(&batch).map_err(corrupt)?, serde_json::to_string(&claims).map_err(corrupt)?],
        )?;
        meta_set(&transaction, "next_batch", &number.to_string())?;
        meta_set(&transaction, "last_version", &version.to_string())?;
        transaction.commit()?;
        Ok(PendingBatch { batch, claims })
    }

    /// Forgets the pending batch and every claim whose fingerprint was not marked again since
    /// (called after the cloud acknowledged it, or refused it for good). Blocking.
    pub fn complete(&self, pending: &PendingBatch) -> Result<(), StoreError> {
        let mut connection = self.connection.lock().map_err(poisoned)?;
        let transaction = connection.transaction()?;
        {
            let mut delete = transaction.prepare_cached("DELETE FROM dirty WHERE tenant = ?1 AND fingerprint = ?2 AND seq = ?3")?;
            for claim in &pending.claims {
                delete.execute(params![claim.tenant, claim.fingerprint.0 as i64, claim.seq])?;
            }
        }
        transaction.execute("DELETE FROM pending WHERE batch_id = ?1", params![pending.batch.batch_id])?;
        transaction.commit()?;
        Ok(())
    }

    /// Queued fingerprints plus the entries of the pending batch (for the metrics gauge). Blocking.
    pub fn backlog(&self) -> Result<u64, StoreError> {
        let connection = self.connection.lock().map_err(poisoned)?;
        Ok(connection.query_row("SELECT COUNT(*) FROM dirty", [], |row| row.get::<_, i64>(0))? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_marked_again_while_in_flight_stays_queued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(&dir.path().join("outbox.db")).expect("open");
        outbox.mark("team-a", &[T2Hash(1), T2Hash(2)]).expect("mark");
        let claims = outbox.claim(10).expect("claim");
        assert_eq!(claims.len(), 2);
        let counts = [Counts { units: 2, repos: 1 }, Counts { units: 0, repos: 0 }];
        let pending = outbox.form(claims, &counts, |tenant| format!("pseudo-{tenant}")).expect("form");
        assert_eq!(pending.batch.entries[0].team, "pseudo-team-a");
        assert!(pending.batch.entries[1].version > pending.batch.entries[0].version);
        // Survives reopening: the same batch, same id.
        drop(outbox);
        let outbox = Outbox::open(&dir.path().join("outbox.db")).expect("reopen");
        assert_eq!(outbox.pending().expect("pending"), Some(pending.clone()));
        outbox.mark("team-a", &[T2Hash(2)]).expect("mark again");
        outbox.complete(&pending).expect("complete");
        assert_eq!(outbox.pending().expect("pending"), None);
        let left = outbox.claim(10).expect("claim");
        assert_eq!(left.iter().map(|claim| claim.fingerprint).collect::<Vec<_>>(), vec![T2Hash(2)]);
        let next = outbox.form(left, &[Counts { units: 1, repos: 1 }], |tenant| tenant.to_string()).expect("form");
        assert_ne!(next.batch.batch_id, pending.batch.batch_id);
        assert!(next.batch.entries[0].version > pending.batch.entries[1].version);
    }
}
