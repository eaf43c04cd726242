//! The SQLite file of one shard: schema, pragmas, and the few statements the embedded store
//! runs. Every function here is blocking and is called from `spawn_blocking` (or at startup).
//!
//! Durability: WAL journal. With `SyncMode::Full` a commit returns after the WAL is fsynced,
//! so an acknowledged batch survives a power loss. With `SyncMode::Normal` a commit survives a
//! crash or `kill -9` of the server (the WAL is in the OS page cache) but the last commits
//! before an OS crash or power loss may be lost.

use std::path::Path;

use periodic_wire::{Location, SKETCH_LEN, Sketch, T2Hash, UnitUpsert};
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{PatternMeta, StoreError};

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// fsync the WAL on every commit.
    Full,
    /// fsync only at checkpoints: safe against process crashes, not against power loss.
    Normal,
}

/// Units are rows of a rowid table without any index on their key: the shard's in-memory
/// index knows every unit's row id (see `MemUnit::row_id`), so an upsert of a known unit
/// rewrites its row by id and a new unit is appended with the next id. Keyed by its random
/// (tenant, repo, key), the table would make every insert dirty a random leaf page, and a
/// commit of a few hundred units would write (and later checkpoint) hundreds of 4 KiB pages
/// for a few dozen KiB of rows; appended, they fill the last pages in order.
const UNITS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS units (
    id INTEGER PRIMARY KEY,
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
    end_line INTEGER
);
";

/// The columns of a unit after its id in files written before units had row ids (and
/// before families).
const KEYED_UNIT_COLUMNS: &str = "tenant, repo, key, t2_hash, sketch, tokens, lines, nesting, language, path, name, start_line, end_line";
/// The columns of a unit after its id, in the order every statement here uses. `family` is
/// added to existing files by [`add_unit_family`].
const UNIT_COLUMNS: &str = "tenant, repo, key, t2_hash, sketch, tokens, lines, nesting, language, path, name, start_line, end_line, family";
/// Bound parameters per inserted row: the id and [`UNIT_COLUMNS`].
const INSERT_PARAMS_PER_ROW: usize = 15;
/// Rows per multi-row `INSERT`: one statement execution instead of this many.
const INSERT_ROWS_PER_STATEMENT: usize = 32;

const SCHEMA: &str = "
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
    pub row_id: i64,
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
    pub family: Option<T2Hash>,
}

pub fn open(path: &Path, sync: SyncMode) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", match sync {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
    })?;
    connection.pragma_update(None, "busy_timeout", 5000)?;
    migrate_keyed_units(&connection)?;
    connection.execute_batch(UNITS_TABLE)?;
    connection.execute_batch(SCHEMA)?;
    add_pattern_attribution(&connection)?;
    add_unit_family(&connection)?;
    Ok(connection)
}

/// Files written before near-miss families lack the column of a unit's family; it is added
/// (empty: those units link no shapes until their clients send them again).
fn add_unit_family(connection: &Connection) -> Result<(), StoreError> {
    let present: bool = connection.query_row("SELECT count(*) FROM pragma_table_info('units') WHERE name = 'family'", [], |row| row.get::<_, i64>(0))? > 0;
    if !present {
        connection.execute_batch("ALTER TABLE units ADD COLUMN family INTEGER;")?;
    }
    Ok(())
}

/// Files written before names were attributed lack the columns saying who set a pattern's
/// name and when; they are added (empty for the names already there).
fn add_pattern_attribution(connection: &Connection) -> Result<(), StoreError> {
    let present: bool = connection.query_row("SELECT count(*) FROM pragma_table_info('patterns') WHERE name = 'named_by'", [], |row| row.get::<_, i64>(0))? > 0;
    if !present {
        connection.execute_batch("ALTER TABLE patterns ADD COLUMN named_by TEXT; ALTER TABLE patterns ADD COLUMN named_at INTEGER;")?;
    }
    Ok(())
}

/// Files written before units had row ids keep them in a `WITHOUT ROWID` table keyed by
/// (tenant, repo, key); their rows move to the rowid table, in one transaction.
fn migrate_keyed_units(connection: &Connection) -> Result<(), StoreError> {
    let mut columns = Vec::new();
    {
        let mut statement = connection.prepare("SELECT name FROM pragma_table_info('units')")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            columns.push(row.get::<_, String>(0)?);
        }
    }
    if columns.is_empty() || columns.iter().any(|column| column == "id") {
        return Ok(());
    }
    tracing::info!("moving units to the rowid table (one-time migration)");
    connection.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         ALTER TABLE units RENAME TO units_keyed;
         {UNITS_TABLE}
         INSERT INTO units ({KEYED_UNIT_COLUMNS}) SELECT {KEYED_UNIT_COLUMNS} FROM units_keyed;
         DROP TABLE units_keyed;
         COMMIT;"
    ))?;
    Ok(())
}

fn blob_to_sketch(blob: &[u8]) -> Result<Sketch, StoreError> {
    let bytes: &[u8; SKETCH_LEN * 4] = blob.try_into().map_err(|_| StoreError::Corrupt(format!("sketch of {} bytes", blob.len())))?;
    Ok(Sketch::from_le_bytes(bytes))
}

/// One unit to write: its row id and its fields as the client sent them.
pub struct UnitWrite<'a> {
    pub row_id: i64,
    pub unit: &'a UnitUpsert,
}

fn insert_sql(rows: usize) -> String {
    let placeholders = format!("({})", vec!["?"; INSERT_PARAMS_PER_ROW].join(", "));
    format!("INSERT INTO units (id, {UNIT_COLUMNS}) VALUES {}", vec![placeholders; rows].join(", "))
}

/// Binds one row's parameters from position `first` (1-based) on.
fn bind_unit(statement: &mut rusqlite::CachedStatement<'_>, first: usize, tenant: &str, repo: &str, write: &UnitWrite<'_>) -> rusqlite::Result<()> {
    let unit = write.unit;
    let location = unit.location.as_ref();
    statement.raw_bind_parameter(first, write.row_id)?;
    statement.raw_bind_parameter(first + 1, tenant)?;
    statement.raw_bind_parameter(first + 2, repo)?;
    statement.raw_bind_parameter(first + 3, unit.key.as_str())?;
    statement.raw_bind_parameter(first + 4, unit.t2_hash.0 as i64)?;
    statement.raw_bind_parameter(first + 5, &unit.sketch.to_le_bytes()[..])?;
    statement.raw_bind_parameter(first + 6, unit.tokens)?;
    statement.raw_bind_parameter(first + 7, unit.lines)?;
    statement.raw_bind_parameter(first + 8, unit.nesting)?;
    statement.raw_bind_parameter(first + 9, unit.language.as_str())?;
    statement.raw_bind_parameter(first + 10, location.map(|l| l.path.as_str()))?;
    statement.raw_bind_parameter(first + 11, location.map(|l| l.name.as_str()))?;
    statement.raw_bind_parameter(first + 12, location.map(|l| l.start_line))?;
    statement.raw_bind_parameter(first + 13, location.map(|l| l.end_line))?;
    statement.raw_bind_parameter(first + 14, unit.family.map(|family| family.0 as i64))?;
    Ok(())
}

/// Writes one batch's changes to this shard in one transaction: `inserts` are new rows (ids
/// never used before), `rewrites` replace the fields of existing rows, `deletes` remove rows.
/// Inserts go first, so a row inserted and then deleted by the same batch ends deleted.
pub fn write_units(
    connection: &mut Connection,
    tenant: &str,
    repo: &str,
    inserts: &[UnitWrite<'_>],
    rewrites: &[UnitWrite<'_>],
    deletes: &[i64],
) -> Result<(), StoreError> {
    let transaction = connection.transaction()?;
    {
        let mut chunks = inserts.chunks_exact(INSERT_ROWS_PER_STATEMENT);
        if chunks.len() > 0 {
            let mut insert_many = transaction.prepare_cached(&insert_sql(INSERT_ROWS_PER_STATEMENT))?;
            for chunk in &mut chunks {
                for (position, write) in chunk.iter().enumerate() {
                    bind_unit(&mut insert_many, 1 + position * INSERT_PARAMS_PER_ROW, tenant, repo, write)?;
                }
                insert_many.raw_execute()?;
            }
        }
        if !chunks.remainder().is_empty() {
            let mut insert_one = transaction.prepare_cached(&insert_sql(1))?;
            for write in chunks.remainder() {
                bind_unit(&mut insert_one, 1, tenant, repo, write)?;
                insert_one.raw_execute()?;
            }
        }
        if !rewrites.is_empty() {
            // Same column order as an insert, the id last (`?1` is the id in both).
            let mut rewrite = transaction.prepare_cached(
                "UPDATE units SET tenant = ?2, repo = ?3, key = ?4, t2_hash = ?5, sketch = ?6, tokens = ?7, lines = ?8, nesting = ?9,
                 language = ?10, path = ?11, name = ?12, start_line = ?13, end_line = ?14, family = ?15 WHERE id = ?1",
            )?;
            let mut missing = Vec::new();
            for write in rewrites {
                bind_unit(&mut rewrite, 1, tenant, repo, write)?;
                if rewrite.raw_execute()? == 0 {
                    missing.push(write);
                }
            }
            // The index named a row the file does not have (the file was changed from
            // outside): the unit is written anew under that id rather than lost.
            if !missing.is_empty() {
                tracing::warn!(rows = missing.len(), "rewritten unit rows were missing; inserting them");
                let mut insert_one = transaction.prepare_cached(&insert_sql(1))?;
                for write in missing {
                    bind_unit(&mut insert_one, 1, tenant, repo, write)?;
                    insert_one.raw_execute()?;
                }
            }
        }
        if !deletes.is_empty() {
            let mut delete = transaction.prepare_cached("DELETE FROM units WHERE id = ?1")?;
            for row_id in deletes {
                delete.execute([row_id])?;
            }
        }
    }
    transaction.commit()?;
    Ok(())
}

/// Removes rows by id in one transaction (startup clean-up of superseded rows).
pub fn delete_units(connection: &mut Connection, row_ids: &[i64]) -> Result<(), StoreError> {
    write_units(connection, "", "", &[], &[], row_ids)
}

/// A unit row read by a statement selecting `id, {UNIT_COLUMNS}`.
fn unit_row(row: &rusqlite::Row<'_>) -> Result<UnitRow, StoreError> {
    let path: Option<String> = row.get(10)?;
    let location = match path {
        Some(path) => Some(Location {
            path,
            name: row.get::<_, Option<String>>(11)?.unwrap_or_default(),
            start_line: row.get::<_, Option<u32>>(12)?.unwrap_or(0),
            end_line: row.get::<_, Option<u32>>(13)?.unwrap_or(0),
        }),
        None => None,
    };
    let sketch = blob_to_sketch(row.get_ref(5)?.as_blob().map_err(|error| StoreError::Corrupt(format!("sketch: {error}")))?)?;
    Ok(UnitRow {
        row_id: row.get(0)?,
        tenant: row.get(1)?,
        repo: row.get(2)?,
        key: row.get(3)?,
        t2_hash: T2Hash(row.get::<_, i64>(4)? as u64),
        sketch,
        tokens: row.get(6)?,
        lines: row.get(7)?,
        nesting: row.get(8)?,
        language: row.get(9)?,
        location,
        family: row.get::<_, Option<i64>>(14)?.map(|family| T2Hash(family as u64)),
    })
}

/// Reads every unit of the shard in row id order (startup).
pub fn load_units(connection: &Connection, mut each: impl FnMut(UnitRow)) -> Result<(), StoreError> {
    let mut statement = connection.prepare(&format!("SELECT id, {UNIT_COLUMNS} FROM units ORDER BY id"))?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        each(unit_row(row)?);
    }
    Ok(())
}

/// Reads the shard's units after `after` = (tenant, repo, row id) in that order, so that the
/// units of one repository come together (`periodic-edge migrate` sends them as batches of
/// one repository and resumes after the last one it sent). `each` returns `false` to stop.
/// The table has no index on (tenant, repo): SQLite sorts once per call.
pub fn units_in_repo_order(connection: &Connection, after: Option<(&str, &str, i64)>, mut each: impl FnMut(UnitRow) -> bool) -> Result<(), StoreError> {
    let (tenant, repo, row_id) = after.unwrap_or(("", "", i64::MIN));
    let mut statement =
        connection.prepare(&format!("SELECT id, {UNIT_COLUMNS} FROM units WHERE (tenant, repo, id) > (?1, ?2, ?3) ORDER BY tenant, repo, id"))?;
    let mut rows = statement.query(params![tenant, repo, row_id])?;
    while let Some(row) = rows.next()? {
        if !each(unit_row(row)?) {
            break;
        }
    }
    Ok(())
}

/// The tenants with units or pattern names in this shard.
pub fn tenants(connection: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement = connection.prepare("SELECT DISTINCT tenant FROM units UNION SELECT DISTINCT tenant FROM patterns")?;
    let tenants = statement.query_map([], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(tenants)
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

/// Batch records dropped per transaction by [`forget_batches`].
const FORGET_BATCHES_PER_STEP: usize = 1000;

/// Drops every batch record of (`tenant`, `repo`) in this shard, a bounded number per
/// transaction (a repository pushed for years holds many); returns how many.
pub fn forget_batches(connection: &Connection, tenant: &str, repo: &str) -> Result<u64, StoreError> {
    let mut statement = connection.prepare_cached(
        "DELETE FROM batches WHERE (tenant, repo, batch_id) IN (SELECT tenant, repo, batch_id FROM batches WHERE tenant = ?1 AND repo = ?2 LIMIT ?3)",
    )?;
    let mut forgotten = 0u64;
    loop {
        let deleted = statement.execute(params![tenant, repo, FORGET_BATCHES_PER_STEP as i64])?;
        forgotten += deleted as u64;
        if deleted < FORGET_BATCHES_PER_STEP {
            return Ok(forgotten);
        }
    }
}

pub fn load_pattern_meta(connection: &Connection, mut each: impl FnMut(String, T2Hash, PatternMeta)) -> Result<(), StoreError> {
    let mut statement = connection.prepare("SELECT tenant, id, name, note, named_by, named_at FROM patterns")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let meta = PatternMeta { name: row.get(2)?, note: row.get(3)?, named_by: row.get(4)?, named_at: row.get::<_, Option<i64>>(5)?.map(|at| at.max(0) as u64) };
        each(row.get(0)?, T2Hash(row.get::<_, i64>(1)? as u64), meta);
    }
    Ok(())
}

pub fn write_pattern_meta(connection: &Connection, tenant: &str, id: T2Hash, meta: &PatternMeta) -> Result<(), StoreError> {
    connection
        .prepare_cached("INSERT OR REPLACE INTO patterns (tenant, id, name, note, named_by, named_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![tenant, id.0 as i64, meta.name, meta.note, meta.named_by, meta.named_at.map(|at| at as i64)])?;
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
