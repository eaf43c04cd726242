//! The durable outbox in `.periodic/index.db` (tables `edge_outbox` and `edge_units`, schema
//! owned by `periodic_core::index`): unit changes waiting for the edge's acknowledgement, and
//! what the edge will hold once they are sent, so that unchanged units are not queued again.
//!
//! Everything here is blocking SQLite work; the sync worker calls it on a blocking thread.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use periodic_wire::v1::{DeltaBatch, UnitUpsert};
use rusqlite::{Connection, OptionalExtension, params};

use super::convert::PreparedUnit;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("edge outbox {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("edge outbox: {0}")]
    Index(#[from] periodic_core::index::IndexError),
}

/// Unit changes of some files, computed by the caller and applied to the outbox at once.
#[derive(Clone, Debug, Default)]
pub struct FileChanges {
    /// Every unit of each changed file, grouped by path (a file with no units is an empty list).
    pub files: Vec<(String, Vec<PreparedUnit>)>,
    /// Paths that no longer exist.
    pub removed_paths: Vec<String>,
    /// The files given are all files of the repository: anything else known is removed.
    pub complete: bool,
    /// Queue every unit even when its digest did not change (a full push).
    pub force: bool,
}

/// A batch formed from the outbox: its id never changes once formed.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingBatch {
    pub repo: String,
    pub batch: DeltaBatch,
}

impl PendingBatch {
    pub fn entries(&self) -> usize {
        self.batch.upserts.len() + self.batch.removals.len()
    }
}

pub struct Outbox {
    connection: Connection,
    path: PathBuf,
}

impl Outbox {
    /// Opens the outbox of the workspace at `root`, creating or migrating the index first.
    pub fn open(root: &Path) -> Result<Outbox, OutboxError> {
        // Opening the engine's index applies its migrations, which create the outbox tables.
        let (index, warnings) = periodic_core::index::Index::open(root)?;
        drop(index);
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        let path = periodic_core::index::Index::path_for(root);
        let sqlite = |source| OutboxError::Sqlite { path: path.clone(), source };
        let connection = Connection::open(&path).map_err(sqlite)?;
        // A scan may hold the write lock for a while; the worker waits instead of failing.
        connection.busy_timeout(Duration::from_secs(60)).map_err(sqlite)?;
        connection.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        connection.pragma_update(None, "synchronous", "NORMAL").map_err(sqlite)?;
        Ok(Outbox { connection, path })
    }

    fn error(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError::Sqlite { path: self.path.clone(), source }
    }

    /// Diffs `changes` against what was queued before and appends the differences. Returns
    /// the number of entries queued.
    pub fn record(&mut self, repo: &str, changes: &FileChanges) -> Result<u64, OutboxError> {
        let path = self.path.clone();
        self.record_inner(repo, changes).map_err(|source| OutboxError::Sqlite { path, source })
    }

    fn record_inner(&mut self, repo: &str, changes: &FileChanges) -> rusqlite::Result<u64> {
        let transaction = self.connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut queued = 0u64;
        {
            // Without statistics SQLite would walk the whole repository's primary key range
            // for each file (and, below, every unbatched entry for each key): name the index.
            let mut known_of_path = transaction.prepare("SELECT key, digest FROM edge_units INDEXED BY edge_units_path WHERE repo = ?1 AND path = ?2")?;
            let mut forget = transaction.prepare("DELETE FROM edge_units WHERE repo = ?1 AND key = ?2")?;
            let mut remember = transaction.prepare(
                "INSERT INTO edge_units (repo, key, path, digest) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(repo, key) DO UPDATE SET path = excluded.path, digest = excluded.digest",
            )?;
            // Consecutive changes of one key collapse to the last, unless already in a batch.
            let mut collapse = transaction.prepare("DELETE FROM edge_outbox INDEXED BY edge_outbox_key WHERE repo = ?1 AND key = ?2 AND batch_id IS NULL")?;
            let mut append = transaction.prepare("INSERT INTO edge_outbox (repo, key, upsert) VALUES (?1, ?2, ?3)")?;
            let mut queue = |key: &str, upsert: Option<&UnitUpsert>| -> rusqlite::Result<()> {
                collapse.execute(params![repo, key])?;
                let json = match upsert {
                    Some(upsert) => Some(serde_json::to_string(upsert).map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?),
                    None => None,
                };
                append.execute(params![repo, key, json])?;
                queued += 1;
                Ok(())
            };

            let mut removed_paths: Vec<String> = changes.removed_paths.clone();
            if changes.complete {
                let present: HashSet<&str> = changes.files.iter().map(|(path, _)| path.as_str()).collect();
                let mut statement = transaction.prepare("SELECT DISTINCT path FROM edge_units WHERE repo = ?1")?;
                let known: Vec<String> = statement.query_map([repo], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
                removed_paths.extend(known.into_iter().filter(|path| !present.contains(path.as_str())));
            }
            for (path, units) in &changes.files {
                let known: HashMap<String, Vec<u8>> =
                    known_of_path.query_map(params![repo, path], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
                let current: HashSet<&str> = units.iter().map(|unit| unit.key.as_str()).collect();
                for unit in units {
                    let unchanged = known.get(&unit.key).is_some_and(|digest| digest.as_slice() == unit.digest);
                    if unchanged && !changes.force {
                        continue;
                    }
                    queue(&unit.key, Some(&unit.upsert))?;
                    remember.execute(params![repo, unit.key, path, &unit.digest[..]])?;
                }
                for key in known.keys().filter(|key| !current.contains(key.as_str())) {
                    queue(key, None)?;
                    forget.execute(params![repo, key])?;
                }
            }
            for path in &removed_paths {
                let keys: Vec<String> = known_of_path.query_map(params![repo, path], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
                for key in keys {
                    queue(&key, None)?;
                    forget.execute(params![repo, key])?;
                }
            }
        }
        transaction.commit()?;
        Ok(queued)
    }

    /// The batch of `repo` to send next: the one already formed (a retry keeps its id), else
    /// a new one of up to `limit` entries. Entries queued under another repository name (a
    /// one-off `periodic scan --edge --edge-repo NAME` whose push did not go through) wait
    /// for a push under that name: a command syncing this workspace as `repo` never sends them.
    pub fn next_batch(&mut self, repo: &str, limit: usize) -> Result<Option<PendingBatch>, OutboxError> {
        let path = self.path.clone();
        self.next_batch_inner(repo, limit.max(1)).map_err(|source| OutboxError::Sqlite { path, source })
    }

    fn next_batch_inner(&mut self, repo: &str, limit: usize) -> rusqlite::Result<Option<PendingBatch>> {
        let transaction = self.connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let formed: Option<String> = transaction
            .query_row("SELECT batch_id FROM edge_outbox WHERE repo = ?1 AND batch_id IS NOT NULL ORDER BY seq LIMIT 1", [repo], |row| row.get(0))
            .optional()?;
        let repo = repo.to_string();
        let batch_id = match formed {
            Some(formed) => formed,
            None => {
                let any: Option<i64> =
                    transaction.query_row("SELECT seq FROM edge_outbox WHERE repo = ?1 LIMIT 1", [&repo], |row| row.get(0)).optional()?;
                if any.is_none() {
                    return Ok(None);
                }
                let batch_id = new_batch_id();
                transaction.execute(
                    "UPDATE edge_outbox SET batch_id = ?2 WHERE seq IN
                       (SELECT seq FROM edge_outbox WHERE repo = ?1 AND batch_id IS NULL ORDER BY seq LIMIT ?3)",
                    params![repo, batch_id, limit as i64],
                )?;
                batch_id
            }
        };
        let mut batch = DeltaBatch { batch_id: batch_id.clone(), upserts: Vec::new(), removals: Vec::new() };
        {
            let mut statement = transaction.prepare("SELECT key, upsert FROM edge_outbox WHERE repo = ?1 AND batch_id = ?2 ORDER BY seq")?;
            let mut rows = statement.query(params![repo, batch_id])?;
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                match row.get::<_, Option<String>>(1)? {
                    // A row that no longer parses (written by another version) is dropped
                    // from the batch rather than blocking the queue.
                    Some(json) => match serde_json::from_str::<UnitUpsert>(&json) {
                        Ok(upsert) => batch.upserts.push(upsert),
                        Err(error) => tracing::warn!(key, "edge outbox: unreadable entry dropped: {error}"),
                    },
                    None => batch.removals.push(key),
                }
            }
        }
        transaction.commit()?;
        Ok(Some(PendingBatch { repo, batch }))
    }

    /// The edge acknowledged the batch: its entries are done.
    pub fn acknowledge(&mut self, repo: &str, batch_id: &str) -> Result<(), OutboxError> {
        self.connection
            .execute("DELETE FROM edge_outbox WHERE repo = ?1 AND batch_id = ?2", params![repo, batch_id])
            .map(|_| ())
            .map_err(|error| self.error(error))
    }

    /// The batch was too large: its entries go back to the queue, to be re-formed (with new
    /// ids) into smaller batches. Entries queued later for the same keys stay after them.
    pub fn release(&mut self, repo: &str, batch_id: &str) -> Result<(), OutboxError> {
        self.connection
            .execute("UPDATE edge_outbox SET batch_id = NULL WHERE repo = ?1 AND batch_id = ?2", params![repo, batch_id])
            .map(|_| ())
            .map_err(|error| self.error(error))
    }

    /// The edge rejected the batch as malformed: drop it, and forget that its units were
    /// queued so the next change of those files queues them again.
    pub fn reject(&mut self, repo: &str, batch_id: &str) -> Result<(), OutboxError> {
        let result = (|| -> rusqlite::Result<()> {
            let transaction = self.connection.transaction()?;
            transaction.execute(
                "DELETE FROM edge_units WHERE repo = ?1 AND key IN (SELECT key FROM edge_outbox WHERE repo = ?1 AND batch_id = ?2)",
                params![repo, batch_id],
            )?;
            transaction.execute("DELETE FROM edge_outbox WHERE repo = ?1 AND batch_id = ?2", params![repo, batch_id])?;
            transaction.commit()
        })();
        result.map_err(|error| self.error(error))
    }

    /// At share level `fingerprints`, entries queued earlier at `locations` must not carry
    /// paths and names to the edge: strip them before anything is sent.
    pub fn strip_locations(&mut self) -> Result<u64, OutboxError> {
        self.connection
            .execute("UPDATE edge_outbox SET upsert = json_remove(upsert, '$.location') WHERE upsert IS NOT NULL AND json_extract(upsert, '$.location') IS NOT NULL", [])
            .map(|count| count as u64)
            .map_err(|error| self.error(error))
    }

    /// Entries of `repo` waiting to be acknowledged.
    pub fn pending(&self, repo: &str) -> Result<u64, OutboxError> {
        self.connection
            .query_row("SELECT count(*) FROM edge_outbox WHERE repo = ?1", [repo], |row| row.get::<_, i64>(0))
            .map(|count| count as u64)
            .map_err(|error| self.error(error))
    }
}

/// A random 128-bit batch id in hex: unique per repository without any coordination.
fn new_batch_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to time and process id, still unique in practice.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let seed = blake3::hash(format!("{nanos}-{}", std::process::id()).as_bytes());
        bytes.copy_from_slice(&seed.as_bytes()[..16]);
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge_sync::convert::prepare_file;
    use periodic_core::config::DetectionSettings;
    use periodic_core::{FileRecord, Language};
    use periodic_wire::v1::ShareLevel;

    fn record(path: &str, source: &str) -> FileRecord {
        let analysis = periodic_core::analysis::analyze(Language::Python, source);
        let settings = DetectionSettings { min_lines: 2, min_tokens: 5, similarity: 0.7, blocks: false };
        FileRecord::from_analysis(path.to_string(), Language::Python, [0; 32], source.len() as u64, 0, &analysis, &settings)
    }

    fn changes(files: &[&FileRecord], share: ShareLevel) -> FileChanges {
        FileChanges { files: files.iter().map(|file| (file.path.clone(), prepare_file(file, share, &crate::edge_sync::convert::Families::default()))).collect(), ..FileChanges::default() }
    }

    const TWO: &str = "def a(x):\n    y = x + 1\n    return y * 2\n\ndef b(x):\n    y = x - 1\n    return y / 2\n";

    fn drain(outbox: &mut Outbox) -> Vec<PendingBatch> {
        let mut sent = Vec::new();
        while let Some(batch) = outbox.next_batch("r", 100).expect("batch") {
            outbox.acknowledge(&batch.repo, &batch.batch.batch_id).expect("ack");
            sent.push(batch);
        }
        sent
    }

    #[test]
    fn unchanged_units_are_not_queued_again_and_removals_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outbox = Outbox::open(dir.path()).expect("open");
        let file = record("m.py", TWO);
        assert_eq!(file.units.len(), 2);
        assert_eq!(outbox.record("r", &changes(&[&file], ShareLevel::Locations)).expect("record"), 2);
        assert_eq!(outbox.record("r", &changes(&[&file], ShareLevel::Locations)).expect("record"), 0, "nothing changed");
        let edited = record("m.py", &TWO.replace("y * 2", "y * 3 + y"));
        assert_eq!(outbox.record("r", &changes(&[&edited], ShareLevel::Locations)).expect("record"), 1, "only `a` changed");
        // `a` was changed twice before sending: one entry, the latest.
        let batches = drain(&mut outbox);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].batch.upserts.len(), 2);
        let sent_a = batches[0].batch.upserts.iter().find(|u| u.location.as_ref().is_some_and(|l| l.name == "a")).expect("a");
        assert_eq!(sent_a.t2_hash.0, edited.units[0].hashes.t2);

        // `b` stays on its lines, so only `a`'s removal is queued.
        let only_b = record("m.py", "\n\n\n\ndef b(x):\n    y = x - 1\n    return y / 2\n");
        assert_eq!(outbox.record("r", &changes(&[&only_b], ShareLevel::Locations)).expect("record"), 1);
        let removal = drain(&mut outbox);
        assert_eq!(removal[0].batch.removals.len(), 1);
        assert!(removal[0].batch.upserts.is_empty());
        let gone = FileChanges { removed_paths: vec!["m.py".into()], ..FileChanges::default() };
        assert_eq!(outbox.record("r", &gone).expect("record"), 1);
        assert_eq!(drain(&mut outbox)[0].batch.removals.len(), 1);
        assert_eq!(outbox.pending("r").expect("pending"), 0);
    }

    #[test]
    fn a_complete_snapshot_removes_files_not_in_it_and_force_resends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outbox = Outbox::open(dir.path()).expect("open");
        let (a, b) = (record("a.py", TWO), record("b.py", TWO));
        outbox.record("r", &changes(&[&a, &b], ShareLevel::Fingerprints)).expect("record");
        drain(&mut outbox);
        let snapshot = FileChanges { complete: true, ..changes(&[&a], ShareLevel::Fingerprints) };
        assert_eq!(outbox.record("r", &snapshot).expect("record"), 2, "b.py's two units are removed");
        drain(&mut outbox);
        let push = FileChanges { complete: true, force: true, ..changes(&[&a], ShareLevel::Fingerprints) };
        assert_eq!(outbox.record("r", &push).expect("record"), 2, "a full push resends unchanged units");
    }

    #[test]
    fn a_formed_batch_keeps_its_id_and_entries_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = record("m.py", TWO);
        let first_id = {
            let mut outbox = Outbox::open(dir.path()).expect("open");
            outbox.record("r", &changes(&[&file], ShareLevel::Locations)).expect("record");
            let batch = outbox.next_batch("r", 1).expect("batch").expect("some");
            assert_eq!(batch.entries(), 1);
            batch.batch.batch_id
        };
        let mut outbox = Outbox::open(dir.path()).expect("reopen");
        assert_eq!(outbox.pending("r").expect("pending"), 2);
        let retry = outbox.next_batch("r", 100).expect("batch").expect("some");
        assert_eq!(retry.batch.batch_id, first_id, "a retry after a restart keeps the id");
        assert_eq!(retry.entries(), 1);
        outbox.release("r", &first_id).expect("release");
        let reformed = outbox.next_batch("r", 100).expect("batch").expect("some");
        assert_ne!(reformed.batch.batch_id, first_id);
        assert_eq!(reformed.entries(), 2);
    }

    #[test]
    fn locations_are_stripped_from_entries_queued_before_sharing_was_reduced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outbox = Outbox::open(dir.path()).expect("open");
        outbox.record("r", &changes(&[&record("m.py", TWO)], ShareLevel::Locations)).expect("record");
        assert_eq!(outbox.strip_locations().expect("strip"), 2);
        let batch = outbox.next_batch("r", 100).expect("batch").expect("some");
        assert!(batch.batch.upserts.iter().all(|upsert| upsert.location.is_none()));
    }

    #[test]
    fn a_rejected_batch_is_dropped_and_its_units_queue_again_on_the_next_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outbox = Outbox::open(dir.path()).expect("open");
        let file = record("m.py", TWO);
        outbox.record("r", &changes(&[&file], ShareLevel::Locations)).expect("record");
        let batch = outbox.next_batch("r", 100).expect("batch").expect("some");
        outbox.reject("r", &batch.batch.batch_id).expect("reject");
        assert_eq!(outbox.pending("r").expect("pending"), 0);
        assert_eq!(outbox.record("r", &changes(&[&file], ShareLevel::Locations)).expect("record"), 2);
    }

    #[test]
    fn entries_queued_under_another_repository_name_are_never_sent_as_this_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outbox = Outbox::open(dir.path()).expect("open");
        let file = record("m.py", TWO);
        // A one-off push as `other` that did not go through leaves its entries queued.
        assert_eq!(outbox.record("other", &changes(&[&file], ShareLevel::Locations)).expect("record"), 2);
        let formed = outbox.next_batch("other", 100).expect("batch").expect("some");
        assert_eq!(formed.repo, "other");
        assert_eq!(outbox.pending("r").expect("pending"), 0, "nothing of `r` waits");
        assert!(outbox.next_batch("r", 100).expect("batch").is_none(), "`other`'s batch is not sent as `r`");
        // This workspace's own entries go out under its own name only.
        assert_eq!(outbox.record("r", &changes(&[&file], ShareLevel::Locations)).expect("record"), 2);
        let own = outbox.next_batch("r", 100).expect("batch").expect("some");
        assert_eq!((own.repo.as_str(), own.entries()), ("r", 2));
        assert_ne!(own.batch.batch_id, formed.batch.batch_id);
        outbox.acknowledge("r", &own.batch.batch_id).expect("ack");
        assert_eq!(outbox.pending("r").expect("pending"), 0);
        // `other`'s entries wait, with their batch, for a push under that name.
        assert_eq!(outbox.pending("other").expect("pending"), 2);
        assert_eq!(outbox.next_batch("other", 100).expect("batch").expect("some").batch.batch_id, formed.batch.batch_id);
    }
}
