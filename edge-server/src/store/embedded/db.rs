//! The SQLite file of one shard: schema, pragmas, and the few statements the embedded store
//! runs. Every function here is blocking and is called from `spawn_blocking` (or at startup).
//!
//! Durability: WAL journal. With `SyncMode::Full` a commit returns after the WAL is fsynced,
//! so an acknowledged batch survives a power loss. With `SyncMode::Normal` a commit survives a
//! crash or `kill -9` of the server (the WAL is in the OS page cache) but the last commits
//! before an OS crash or power loss may be lost.

use std::path::Path;

use periodic_wire::{Location, SKETCH_LEN, Sketch, T2Hash};
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreError;

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// fsync the WAL on every commit.
    Full,
    /// fsync only at checkpoints: safe against process crashes, not against power loss.
    Normal,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS units (
    tenant TEXT NOT NULL,
    repo TEXT NOT NULL,
    key TEXT NOT NULL,
    t2_hash INTEGER NOT NULL,
    sketch BLOB NOT NULL,
    tokens INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    nesting INTEGER NOT NULL,
    language TEXT NOT NULL,
    path TEXT,
    name TEXT,
    start_line INTEGER,
    end_line INTEGER,
    PRIMARY KEY (tenant, repo, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    tenant TEXT NOT NULL,
    repo TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    upserted INTEGER NOT NULL,
    removed INTEGER NOT NULL,
    PRIMARY KEY (tenant, repo, batch_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS patterns (
    tenant TEXT NOT NULL,
    id INTEGER NOT NULL,
    name TEXT,
    note TEXT,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
";

/// A unit row as stored.
pub struct UnitRow {
    pub tenant: String,
    pub repo: String,
    pub key: String,
    pub t2_hash: T2Hash,
    pub sketch: Sketch,
    pub tokens: u32,
    pub lines: u32,
    pub nesting: u32,
    pub language: String,
    pub location: Option<Location>,
}

pub fn open(path: &Path, sync: SyncMode) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", match sync {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
    })?;
    connection.pragma_update(None, "busy_timeout", 5000)?;
    connection.execute_batch(SCHEMA)?;
    Ok(connection)
}

fn sketch_to_blob(sketch: &Sketch) -> Vec<u8> {
    sketch.0.iter().flat_map(|value| value.to_le_bytes()).collect()
}

fn blob_to_sketch(blob: &[u8]) -> Result<Sketch, StoreError> {
    if blob.len() != SKETCH_LEN * 4 {
        return Err(StoreError::Corrupt(format!("sketch of {} bytes", blob.len())));
    }
    let mut values = [0u32; SKETCH_LEN];
    for (value, chunk) in values.iter_mut().zip(blob.chunks_exact(4)) {
        *value = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Ok(Sketch(values))
}

/// Writes upserts and removals of one batch for this shard in one transaction.
pub fn write_units(connection: &mut Connection, upserts: &[UnitRow], removals: &[(String, String, String)]) -> Result<(), StoreError> {
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT OR REPLACE INTO units (tenant, repo, key, t2_hash, sketch, tokens, lines, nesting, language, path, name, start_line, end_line)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        for row in upserts {
            let location = row.location.as_ref();
            insert.execute(params![
                row.tenant,
                row.repo,
                row.key,
                row.t2_hash.0 as i64,
                sketch_to_blob(&row.sketch),
                row.tokens,
                row.lines,
                row.nesting,
                row.language,
                location.map(|l| l.path.as_str()),
                location.map(|l| l.name.as_str()),
                location.map(|l| l.start_line),
                location.map(|l| l.end_line),
            ])?;
        }
        let mut delete = transaction.prepare_cached("DELETE FROM units WHERE tenant = ?1 AND repo = ?2 AND key = ?3")?;
        for (tenant, repo, key) in removals {
            delete.execute(params![tenant, repo, key])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

/// Reads every unit of the shard (startup).
pub fn load_units(connection: &Connection, mut each: impl FnMut(UnitRow)) -> Result<(), StoreError> {
    let mut statement = connection.prepare(
        "SELECT tenant, repo, key, t2_hash, sketch, tokens, lines, nesting, language, path, name, start_line, end_line FROM units",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let path: Option<String> = row.get(9)?;
        let location = match path {
            Some(path) => Some(Location {
                path,
                name: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
                start_line: row.get::<_, Option<u32>>(11)?.unwrap_or(0),
                end_line: row.get::<_, Option<u32>>(12)?.unwrap_or(0),
            }),
            None => None,
        };
        let blob: Vec<u8> = row.get(4)?;
        each(UnitRow {
            tenant: row.get(0)?,
            repo: row.get(1)?,
            key: row.get(2)?,
            t2_hash: T2Hash(row.get::<_, i64>(3)? as u64),
            sketch: blob_to_sketch(&blob)?,
            tokens: row.get(5)?,
            lines: row.get(6)?,
            nesting: row.get(7)?,
            language: row.get(8)?,
            location,
        });
    }
    Ok(())
}

/// The acknowledgement counts of a batch already applied, if any.
pub fn find_batch(connection: &Connection, tenant: &str, repo: &str, batch_id: &str) -> Result<Option<(u32, u32)>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT upserted, removed FROM batches WHERE tenant = ?1 AND repo = ?2 AND batch_id = ?3")?
        .query_row(params![tenant, repo, batch_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

pub fn record_batch(connection: &Connection, tenant: &str, repo: &str, batch_id: &str, upserted: u32, removed: u32) -> Result<(), StoreError> {
    connection
        .prepare_cached("INSERT OR IGNORE INTO batches (tenant, repo, batch_id, upserted, removed) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![tenant, repo, batch_id, upserted, removed])?;
    Ok(())
}

pub fn load_pattern_meta(connection: &Connection, mut each: impl FnMut(String, T2Hash, Option<String>, Option<String>)) -> Result<(), StoreError> {
    let mut statement = connection.prepare("SELECT tenant, id, name, note FROM patterns")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        each(row.get(0)?, T2Hash(row.get::<_, i64>(1)? as u64), row.get(2)?, row.get(3)?);
    }
    Ok(())
}

pub fn write_pattern_meta(connection: &Connection, tenant: &str, id: T2Hash, name: Option<&str>, note: Option<&str>) -> Result<(), StoreError> {
    connection
        .prepare_cached("INSERT OR REPLACE INTO patterns (tenant, id, name, note) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![tenant, id.0 as i64, name, note])?;
    Ok(())
}

/// Touches every table, so a missing or unreadable file shows.
pub fn ping(connection: &Connection) -> Result<(), StoreError> {
    for table in ["units", "batches", "patterns"] {
        connection.query_row(&format!("SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)"), [], |_| Ok(()))?;
    }
    Ok(())
}

pub fn checkpoint(connection: &Connection) -> Result<(), StoreError> {
    connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}
