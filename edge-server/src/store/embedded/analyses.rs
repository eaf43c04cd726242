//! The embedded backend's analysis cache: one SQLite file, `DIR/analyses.db`, apart from the
//! unit shards (a cache must not slow down or bloat the files that hold acknowledged
//! batches). Every function here is blocking and runs on the blocking pool.
//!
//! Layout: `analyses` holds one small row per entry (tenant, analysis key, content hash,
//! charged bytes, last use) and `analysis_entries` the entry bytes under the same id. They
//! are apart because a lookup refreshes the last use: SQLite rewrites a whole row on update,
//! and rewriting a few hundred kilobytes of entry (its overflow pages) per hit would turn
//! every lookup into a large write. `analysis_usage` keeps each tenant's charged total, in
//! the same transactions as the rows, so the budget check is one read.
//!
//! Durability: the file is always opened with `synchronous = NORMAL`, whatever `--sync` says:
//! it is a cache, so an entry lost to a power failure only costs some client a parse and an
//! upload; fsyncing every upload and every lookup's refresh would cost every request.
//!
//! Bounds: uploads are written in steps of [`STORE_STEP_BYTES`], one transaction each; then
//! expired entries (of any tenant) and the caller's least recently used entries beyond its
//! budget are removed in transactions of at most [`EVICT_BATCH`] entries. Reads use their
//! own connection (WAL), so a lookup is not held behind an upload's transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::poisoned;
use crate::store::StoreError;
use crate::store::analyses::{AnalysisPolicy, ContentHash, EVICT_BATCH, STORE_STEP_BYTES, UseClock, charged_bytes};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS analyses (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    analysis TEXT NOT NULL,
    hash BLOB NOT NULL,
    bytes INTEGER NOT NULL,
    last_used INTEGER NOT NULL,
    UNIQUE (tenant, analysis, hash)
);
CREATE INDEX IF NOT EXISTS analyses_by_tenant_use ON analyses (tenant, last_used);
CREATE INDEX IF NOT EXISTS analyses_by_use ON analyses (last_used);
CREATE TABLE IF NOT EXISTS analysis_entries (
    id INTEGER PRIMARY KEY,
    entry BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS analysis_usage (
    tenant TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Steps of expired-entry removal per upload: a large backlog (a tenant that stopped using the
/// cache a month ago) is worked off over several uploads instead of delaying one.
const EXPIRY_STEPS_PER_UPLOAD: usize = 8;

pub struct AnalysisCache {
    /// Uploads, refreshes and evictions.
    writer: Mutex<Connection>,
    /// Lookups' reads.
    reader: Mutex<Connection>,
    clock: UseClock,
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "busy_timeout", 5000)?;
    Ok(connection)
}

/// A row to remove: id, tenant, charged bytes.
type Victim = (i64, String, i64);

impl AnalysisCache {
    /// Opens (or creates) the cache file; the last-use clock continues after the newest use
    /// stored, so eviction order survives a restart even if the wall clock stepped back.
    pub fn open(path: &Path) -> Result<AnalysisCache, StoreError> {
        let writer = open_connection(path)?;
        writer.execute_batch(SCHEMA)?;
        let newest: i64 = writer.query_row("SELECT coalesce(max(last_used), 0) FROM analyses", [], |row| row.get(0))?;
        let reader = open_connection(path)?;
        Ok(AnalysisCache { writer: Mutex::new(writer), reader: Mutex::new(reader), clock: UseClock::after(newest.max(0) as u64) })
    }

    /// Each hash's entry (`None`: a miss), in order; hits get a new last use.
    pub fn lookup(&self, tenant: &str, analysis: &str, hashes: &[ContentHash], policy: &AnalysisPolicy) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let now = self.clock.tick();
        let oldest_live = now.saturating_sub(policy.ttl_micros()) as i64;
        let mut found = Vec::with_capacity(hashes.len());
        let mut hit_ids = Vec::new();
        {
            let reader = self.reader.lock().map_err(poisoned)?;
            let mut read = reader.prepare_cached(
                "SELECT a.id, e.entry FROM analyses a JOIN analysis_entries e ON e.id = a.id
                 WHERE a.tenant = ?1 AND a.analysis = ?2 AND a.hash = ?3 AND a.last_used >= ?4",
            )?;
            for hash in hashes {
                let row = read.query_row(params![tenant, analysis, &hash[..], oldest_live], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))).optional()?;
                found.push(row.map(|(id, entry)| {
                    hit_ids.push(id);
                    entry
                }));
            }
        }
        if !hit_ids.is_empty() {
            let mut writer = self.writer.lock().map_err(poisoned)?;
            let transaction = writer.transaction()?;
            {
                // An entry evicted since it was read simply updates nothing.
                let mut touch = transaction.prepare_cached("UPDATE analyses SET last_used = ?1 WHERE id = ?2")?;
                for id in hit_ids {
                    touch.execute(params![now as i64, id])?;
                }
            }
            transaction.commit()?;
        }
        Ok(found)
    }

    /// Stores or refreshes `entries`, then removes expired entries and evicts the tenant's
    /// least recently used ones beyond its budget. Returns the entries stored or refreshed.
    pub fn store(&self, tenant: &str, analysis: &str, entries: &[(ContentHash, Vec<u8>)], policy: &AnalysisPolicy) -> Result<u32, StoreError> {
        let mut stored = 0u32;
        let mut rest = entries;
        while !rest.is_empty() {
            let (step, after) = rest.split_at(step_len(rest));
            rest = after;
            // The lock is taken per step, so lookups' refreshes interleave with a long upload.
            let mut writer = self.writer.lock().map_err(poisoned)?;
            stored += store_step(&mut writer, &self.clock, tenant, analysis, step, policy)?;
        }
        let oldest_live = self.clock.tick().saturating_sub(policy.ttl_micros()) as i64;
        for _ in 0..EXPIRY_STEPS_PER_UPLOAD {
            let mut writer = self.writer.lock().map_err(poisoned)?;
            if remove_expired(&mut writer, oldest_live)? < EVICT_BATCH {
                break;
            }
        }
        loop {
            let mut writer = self.writer.lock().map_err(poisoned)?;
            if !evict_over_budget(&mut writer, tenant, policy.budget_bytes)? {
                break;
            }
        }
        Ok(stored)
    }

    /// Touches every table, so a missing or unreadable file shows.
    pub fn ping(&self) -> Result<(), StoreError> {
        let reader = self.reader.lock().map_err(poisoned)?;
        for table in ["analyses", "analysis_entries", "analysis_usage"] {
            reader.query_row(&format!("SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)"), [], |_| Ok(()))?;
        }
        Ok(())
    }

    pub fn checkpoint(&self) -> Result<(), StoreError> {
        super::db::checkpoint(&*self.writer.lock().map_err(poisoned)?)
    }
}

/// How many of `entries` go into the next step: up to [`STORE_STEP_BYTES`] of entries, at
/// least one.
fn step_len(entries: &[(ContentHash, Vec<u8>)]) -> usize {
    let mut bytes = 0;
    let mut count = 0;
    for (_, entry) in entries {
        if count > 0 && bytes + entry.len() > STORE_STEP_BYTES {
            break;
        }
        bytes += entry.len();
        count += 1;
    }
    count
}

fn store_step(connection: &mut Connection, clock: &UseClock, tenant: &str, analysis: &str, step: &[(ContentHash, Vec<u8>)], policy: &AnalysisPolicy) -> Result<u32, StoreError> {
    let now = clock.tick();
    let oldest_live = now.saturating_sub(policy.ttl_micros()) as i64;
    let now = now as i64;
    let transaction = connection.transaction()?;
    let mut stored = 0;
    let mut added = 0i64;
    {
        let mut find = transaction.prepare_cached("SELECT id, bytes, last_used FROM analyses WHERE tenant = ?1 AND analysis = ?2 AND hash = ?3")?;
        let mut touch = transaction.prepare_cached("UPDATE analyses SET last_used = ?1 WHERE id = ?2")?;
        let mut insert = transaction.prepare_cached("INSERT INTO analyses (tenant, analysis, hash, bytes, last_used) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        let mut insert_entry = transaction.prepare_cached("INSERT INTO analysis_entries (id, entry) VALUES (?1, ?2)")?;
        for (hash, entry) in step {
            let charged = charged_bytes(entry.len());
            // It would evict everything else and then itself.
            if charged > policy.budget_bytes {
                continue;
            }
            // Held already: the same file under the same analysis key gives the same entry, so
            // it is refreshed, not rewritten.
            let held = find.query_row(params![tenant, analysis, &hash[..]], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))).optional()?;
            // An expired entry not removed yet is gone for lookups: it is replaced, as a new one.
            let held = match held {
                Some((id, bytes, last_used)) if last_used < oldest_live => {
                    remove(&transaction, &[(id, tenant.to_string(), bytes)])?;
                    None
                }
                other => other,
            };
            match held {
                Some((id, _, _)) => {
                    touch.execute(params![now, id])?;
                }
                None => {
                    insert.execute(params![tenant, analysis, &hash[..], charged as i64, now])?;
                    insert_entry.execute(params![transaction.last_insert_rowid(), entry])?;
                    added += charged as i64;
                }
            }
            stored += 1;
        }
        if added > 0 {
            transaction
                .prepare_cached("INSERT INTO analysis_usage (tenant, bytes) VALUES (?1, ?2) ON CONFLICT (tenant) DO UPDATE SET bytes = bytes + excluded.bytes")?
                .execute(params![tenant, added])?;
        }
    }
    transaction.commit()?;
    Ok(stored)
}

/// Removes rows and their entries and takes their bytes off their tenants' totals.
fn remove(transaction: &Transaction<'_>, victims: &[Victim]) -> Result<(), StoreError> {
    let mut delete = transaction.prepare_cached("DELETE FROM analyses WHERE id = ?1")?;
    let mut delete_entry = transaction.prepare_cached("DELETE FROM analysis_entries WHERE id = ?1")?;
    let mut freed: HashMap<&str, i64> = HashMap::new();
    for (id, tenant, bytes) in victims {
        delete.execute([id])?;
        delete_entry.execute([id])?;
        *freed.entry(tenant.as_str()).or_default() += bytes;
    }
    let mut lower = transaction.prepare_cached("UPDATE analysis_usage SET bytes = max(0, bytes - ?2) WHERE tenant = ?1")?;
    for (tenant, bytes) in freed {
        lower.execute(params![tenant, bytes])?;
    }
    Ok(())
}

/// Removes up to [`EVICT_BATCH`] entries of any tenant last used before `oldest_live`, in one
/// transaction; returns how many.
fn remove_expired(connection: &mut Connection, oldest_live: i64) -> Result<usize, StoreError> {
    let transaction = connection.transaction()?;
    let victims: Vec<Victim> = transaction
        .prepare_cached("SELECT id, tenant, bytes FROM analyses WHERE last_used < ?1 ORDER BY last_used LIMIT ?2")?
        .query_map(params![oldest_live, EVICT_BATCH as i64], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    remove(&transaction, &victims)?;
    transaction.commit()?;
    Ok(victims.len())
}

/// When the tenant holds more than `budget` bytes, evicts its least recently used entries,
/// as many as bring it under the budget but at most [`EVICT_BATCH`], in one transaction.
/// Returns whether another step may be needed.
fn evict_over_budget(connection: &mut Connection, tenant: &str, budget: u64) -> Result<bool, StoreError> {
    let transaction = connection.transaction()?;
    let usage: i64 = transaction
        .prepare_cached("SELECT bytes FROM analysis_usage WHERE tenant = ?1")?
        .query_row([tenant], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    let excess = usage - budget.min(i64::MAX as u64) as i64;
    if excess <= 0 {
        return Ok(false);
    }
    let mut victims: Vec<Victim> = Vec::new();
    let mut freed = 0i64;
    {
        let mut oldest = transaction.prepare_cached("SELECT id, bytes FROM analyses WHERE tenant = ?1 ORDER BY last_used, id LIMIT ?2")?;
        let mut rows = oldest.query(params![tenant, EVICT_BATCH as i64])?;
        while freed < excess
            && let Some(row) = rows.next()?
        {
            let bytes: i64 = row.get(1)?;
            victims.push((row.get(0)?, tenant.to_string(), bytes));
            freed += bytes;
        }
    }
    if victims.is_empty() {
        // The total says more than the rows hold (it never should): set it from the rows.
        transaction.execute(
            "UPDATE analysis_usage SET bytes = (SELECT coalesce(sum(bytes), 0) FROM analyses WHERE tenant = ?1) WHERE tenant = ?1",
            [tenant],
        )?;
        transaction.commit()?;
        return Ok(false);
    }
    remove(&transaction, &victims)?;
    transaction.commit()?;
    Ok(freed < excess)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hash(number: u8) -> ContentHash {
        [number; 32]
    }

    #[test]
    fn usage_follows_inserts_refreshes_and_evictions_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("analyses.db");
        let policy = AnalysisPolicy { budget_bytes: 3 * charged_bytes(1000), ttl: Duration::from_secs(3600) };
        {
            let cache = AnalysisCache::open(&path).expect("open");
            let entries: Vec<(ContentHash, Vec<u8>)> = (1..=3).map(|n| (hash(n), vec![n; 1000])).collect();
            assert_eq!(cache.store("team", "v1", &entries, &policy).expect("store"), 3);
            // Storing the same entries again refreshes them: nothing is charged twice.
            assert_eq!(cache.store("team", "v1", &entries[..1], &policy).expect("refresh"), 1);
            let usage: i64 = cache.writer.lock().expect("lock").query_row("SELECT bytes FROM analysis_usage WHERE tenant = 'team'", [], |row| row.get(0)).expect("usage");
            assert_eq!(usage as u64, 3 * charged_bytes(1000));
            // A fourth evicts the least recently used: entry 2 (1 was refreshed after it).
            assert_eq!(cache.store("team", "v1", &[(hash(4), vec![4; 1000])], &policy).expect("store"), 1);
        }
        let cache = AnalysisCache::open(&path).expect("reopen");
        let found = cache.lookup("team", "v1", &[hash(1), hash(2), hash(3), hash(4)], &policy).expect("lookup");
        assert_eq!(found.iter().map(Option::is_some).collect::<Vec<_>>(), vec![true, false, true, true]);
        let (rows, entries, usage): (i64, i64, i64) = cache
            .writer
            .lock()
            .expect("lock")
            .query_row("SELECT (SELECT count(*) FROM analyses), (SELECT count(*) FROM analysis_entries), (SELECT bytes FROM analysis_usage)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .expect("counts");
        assert_eq!((rows, entries, usage as u64), (3, 3, 3 * charged_bytes(1000)));
    }

    #[test]
    fn uploads_are_written_in_bounded_steps() {
        let big = vec![0u8; STORE_STEP_BYTES / 2 + 1];
        let entries: Vec<(ContentHash, Vec<u8>)> = (0..5).map(|n| (hash(n), big.clone())).collect();
        assert_eq!(step_len(&entries), 1, "two would pass the step size");
        let small: Vec<(ContentHash, Vec<u8>)> = (0..5).map(|n| (hash(n), vec![0; 10])).collect();
        assert_eq!(step_len(&small), 5);
        let huge = vec![(hash(0), vec![0u8; STORE_STEP_BYTES * 2])];
        assert_eq!(step_len(&huge), 1, "an entry larger than a step is a step of its own");
    }
}
