//! The local index: `.periodic/index.db` (SQLite, WAL) in the scanned root. It keeps each
//! file's content hash and fingerprints, the Type-3 and block pairs found between files
//! (so a re-scan only recomputes pairs touching changed files), and user pattern labels.
//!
//! The schema is versioned (`PRAGMA user_version`) with ordered migrations. A corrupt
//! database, or one written by a newer Periodic, is moved aside and rebuilt with a warning.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::fingerprint::{ExactHashes, SKETCH_LEN, Sketch, Winnow};
use crate::lang::Language;
use crate::model::{ClonePair, CloneKind, FileRecord, Instance, UnitRecord};
use crate::pattern::PatternLabel;
use crate::pattern_store::StoredPatterns;
use crate::verify::Evidence;

pub const INDEX_DIR: &str = ".periodic";
pub const INDEX_FILE: &str = "index.db";

/// Migrations, in order; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    language TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    syntax_errors INTEGER NOT NULL,
    winnows BLOB NOT NULL
);
CREATE TABLE units (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    start_byte INTEGER NOT NULL,
    end_byte INTEGER NOT NULL,
    token_start INTEGER NOT NULL,
    token_end INTEGER NOT NULL,
    nesting INTEGER NOT NULL,
    parent INTEGER,
    t1 INTEGER NOT NULL,
    t2 INTEGER NOT NULL,
    tc INTEGER NOT NULL,
    sketch BLOB NOT NULL,
    PRIMARY KEY (file_id, ordinal)
) WITHOUT ROWID;
CREATE TABLE pairs (
    file_a INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    file_b INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    a_start INTEGER NOT NULL, a_end INTEGER NOT NULL, a_unit INTEGER, a_token_start INTEGER NOT NULL, a_token_end INTEGER NOT NULL,
    b_start INTEGER NOT NULL, b_end INTEGER NOT NULL, b_unit INTEGER, b_token_start INTEGER NOT NULL, b_token_end INTEGER NOT NULL,
    kind TEXT NOT NULL,
    similarity REAL NOT NULL,
    content INTEGER NOT NULL
);
CREATE INDEX pairs_b ON pairs(file_b);
CREATE INDEX pairs_a ON pairs(file_a);
CREATE TABLE pattern_labels (id TEXT PRIMARY KEY, name TEXT, note TEXT);
"#, r#"
-- Sync to a team edge server (written by the `periodic` crate; the engine only owns the
-- schema). `edge_outbox` holds unit changes not yet acknowledged by the edge, oldest first;
-- `batch_id` is set once the entry is part of a batch and never changes. `edge_units` is
-- what the edge holds once the outbox has drained: per key, a digest of what was queued.
CREATE TABLE edge_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    key TEXT NOT NULL,
    upsert TEXT,
    batch_id TEXT
);
CREATE INDEX edge_outbox_key ON edge_outbox(repo, key);
CREATE INDEX edge_outbox_batch ON edge_outbox(repo, batch_id);
CREATE TABLE edge_units (
    repo TEXT NOT NULL,
    key TEXT NOT NULL,
    path TEXT NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (repo, key)
) WITHOUT ROWID;
CREATE INDEX edge_units_path ON edge_units(repo, path);
"#, r#"
-- Near-miss candidate samples of each unit (k-grams and used names), and the evidence
-- behind each stored Type-3 pair.
ALTER TABLE units ADD COLUMN samples BLOB NOT NULL DEFAULT x'';
ALTER TABLE pairs ADD COLUMN evidence BLOB;
"#, r#"
-- Names shared with a team edge (written by the `periodic` crate). A local name keeps the
-- time it was given (seconds since the Unix epoch; NULL for names given before this), so
-- the newer of it and the team's name wins. `edge_patterns` holds the team's names as last
-- read from the edge and `edge_answers` the team's answers per unit fingerprint, each with
-- the time it was fetched, so a restart without the edge still shows them (marked stale
-- past the query TTL).
ALTER TABLE pattern_labels ADD COLUMN named_at INTEGER;
CREATE TABLE edge_patterns (
    repo TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT,
    note TEXT,
    named_by TEXT,
    named_at INTEGER,
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (repo, id)
) WITHOUT ROWID;
CREATE TABLE edge_answers (
    repo TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    answer TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (repo, fingerprint)
) WITHOUT ROWID;
"#, r#"
-- The patterns of the last scan (`pattern_store`) in one row, with the digest of the files,
-- pairs and names they were built from.
CREATE TABLE stored_patterns (slot INTEGER PRIMARY KEY CHECK (slot = 0), digest BLOB NOT NULL, patterns BLOB NOT NULL);
"#];

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("index {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// A pair as stored: file paths instead of indices, so it survives index renumbering.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPair {
    pub path_a: String,
    pub path_b: String,
    pub pair: ClonePair,
}

pub struct Index {
    connection: Connection,
    path: PathBuf,
}

impl Index {
    /// Opens (creating if needed) the index of `root`. Warnings say what was rebuilt.
    pub fn open(root: &Path) -> Result<(Index, Vec<String>), IndexError> {
        let directory = root.join(INDEX_DIR);
        std::fs::create_dir_all(&directory).map_err(|source| IndexError::Io { path: directory.clone(), source })?;
        let ignore_file = directory.join(".gitignore");
        if !ignore_file.exists() {
            std::fs::write(&ignore_file, "# Periodic's local index: never committed.\n*\n")
                .map_err(|source| IndexError::Io { path: ignore_file.clone(), source })?;
        }
        let path = directory.join(INDEX_FILE);
        let mut warnings = Vec::new();
        // A process creating the file at the same moment can make the first look fail (its
        // schema not yet visible); only a second failure means the file is damaged.
        let first = Index::open_file(&path);
        let opened = match first {
            Err(OpenProblem::Sqlite(_)) => {
                std::thread::sleep(Duration::from_millis(200));
                Index::open_file(&path)
            }
            other => other,
        };
        match opened {
            Ok(index) => Ok((index, warnings)),
            Err(problem) => {
                warnings.push(format!("{}: {problem}; rebuilding the index", path.display()));
                Index::move_aside(&path);
                let index = Index::open_file(&path).map_err(|problem| match problem {
                    OpenProblem::Sqlite(source) => IndexError::Sqlite { path: path.clone(), source },
                    OpenProblem::FutureVersion(_) => IndexError::Sqlite { path: path.clone(), source: rusqlite::Error::InvalidQuery },
                })?;
                Ok((index, warnings))
            }
        }
    }

    /// The index file of a root, whether or not it exists.
    pub fn path_for(root: &Path) -> PathBuf {
        root.join(INDEX_DIR).join(INDEX_FILE)
    }

    fn move_aside(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                let _ = std::fs::rename(&file, PathBuf::from(format!("{}{suffix}.broken", path.display())));
            }
        }
    }

    fn open_file(path: &Path) -> Result<Index, OpenProblem> {
        let mut connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(60))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version as usize > MIGRATIONS.len() {
            return Err(OpenProblem::FutureVersion(version));
        }
        if (version as usize) < MIGRATIONS.len() {
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Another process may have migrated while we waited for the lock.
            let current: i64 = transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
            for (number, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
                transaction.execute_batch(migration)?;
                transaction.pragma_update(None, "user_version", (number + 1) as i64)?;
            }
            transaction.commit()?;
        }
        // Touch every table so a damaged file fails here rather than mid-scan.
        connection.query_row("SELECT count(*) FROM files", [], |row| row.get::<_, i64>(0))?;
        Ok(Index { connection, path: path.to_path_buf() })
    }

    fn error(&self, source: rusqlite::Error) -> IndexError {
        IndexError::Sqlite { path: self.path.clone(), source }
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, IndexError> {
        self.connection
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0))
            .optional()
            .map_err(|e| self.error(e))
    }

    /// Every stored file with its units.
    pub fn load_files(&self) -> Result<Vec<FileRecord>, IndexError> {
        self.load_files_inner(true).map(|(files, _)| files).map_err(|e| self.error(e))
    }

    /// Every stored file with its units and the stored Type-3 and block pairs between them
    /// (indices into the files), for a process that answers from the index before any file
    /// is read. Without `sketches`, every unit's `sketch` is `None`: a third of a unit's
    /// memory, and only the candidate tables read it ([`Index::load_sketches`] reads it back).
    pub fn load_state(&self, sketches: bool) -> Result<(Vec<FileRecord>, Vec<ClonePair>), IndexError> {
        let (mut files, ids) = self.load_file_rows().map_err(|e| self.error(e))?;
        // The pairs are read on a second connection while the units are read on this one:
        // on the Linux tree each takes about half a second before the first answer.
        let (units, pairs) = std::thread::scope(|scope| {
            let path = &self.path;
            let pairs = scope.spawn(|| load_pairs_by_id(path, &ids));
            let units = self.load_units(&mut files, &ids, sketches);
            (units, pairs.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        units.map_err(|e| self.error(e))?;
        Ok((files, pairs.map_err(|e| self.error(e))?))
    }

    /// Reads back the sketches of `files`' units that have none (see [`Index::load_state`]),
    /// where the index holds the same file (same path and content hash) and the same unit
    /// (same ordinal, content hash and token range). Returns how many units got one.
    pub fn load_sketches(&self, files: &mut [FileRecord]) -> Result<usize, IndexError> {
        let mut inner = || -> rusqlite::Result<usize> {
            let slots: HashMap<String, usize> = files
                .iter()
                .enumerate()
                .filter(|(_, file)| file.units.iter().any(|unit| unit.sketch.is_none()))
                .map(|(slot, file)| (file.path.clone(), slot))
                .collect();
            let mut matching: HashMap<i64, usize> = HashMap::new();
            let mut statement = self.connection.prepare("SELECT id, path, content_hash FROM files")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let Some(&slot) = slots.get(row.get_ref(1)?.as_str()?) else { continue };
                if row.get_ref(2)?.as_blob()? == files[slot].content_hash.as_slice() {
                    matching.insert(row.get(0)?, slot);
                }
            }
            let mut filled = 0;
            let mut statement = self.connection.prepare("SELECT file_id, ordinal, t1, token_start, token_end, sketch FROM units")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let Some(&slot) = matching.get(&row.get::<_, i64>(0)?) else { continue };
                let Some(unit) = files[slot].units.get_mut(row.get::<_, i64>(1)? as usize) else { continue };
                let same = unit.hashes.t1 == row.get::<_, i64>(2)? as u64 && unit.token_start == row.get::<_, u32>(3)? && unit.token_end == row.get::<_, u32>(4)?;
                if same && unit.sketch.is_none() {
                    unit.sketch = Some(Box::new(decode_sketch(row.get_ref(5)?.as_blob()?)));
                    filled += 1;
                }
            }
            Ok(filled)
        };
        inner().map_err(|e| self.error(e))
    }

    /// The files with their units, and the slot of each file id.
    fn load_files_inner(&self, sketches: bool) -> rusqlite::Result<(Vec<FileRecord>, HashMap<i64, usize>)> {
        let (mut files, ids) = self.load_file_rows()?;
        self.load_units(&mut files, &ids, sketches)?;
        Ok((files, ids))
    }

    /// The files without their units, and the slot of each file id.
    fn load_file_rows(&self) -> rusqlite::Result<(Vec<FileRecord>, HashMap<i64, usize>)> {
        let mut files: Vec<FileRecord> = Vec::new();
        let mut ids: HashMap<i64, usize> = HashMap::new();
        let mut statement = self.connection.prepare(
            "SELECT id, path, language, content_hash, size, mtime_ns, lines, tokens, syntax_errors, winnows FROM files ORDER BY path",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let language_name: String = row.get(2)?;
            let Some(language) = Language::from_name(&language_name) else { continue };
            let hash_bytes: Vec<u8> = row.get(3)?;
            let mut content_hash = [0u8; 32];
            if hash_bytes.len() == 32 {
                content_hash.copy_from_slice(&hash_bytes);
            }
            let winnow_bytes: Vec<u8> = row.get(9)?;
            ids.insert(row.get(0)?, files.len());
            files.push(FileRecord {
                path: row.get(1)?,
                language,
                content_hash,
                size: row.get::<_, i64>(4)? as u64,
                mtime_ns: row.get(5)?,
                lines: row.get(6)?,
                tokens: row.get(7)?,
                has_syntax_errors: row.get::<_, i64>(8)? != 0,
                units: Vec::new(),
                winnows: decode_winnows(&winnow_bytes),
            });
        }
        Ok((files, ids))
    }

    /// Reads every stored unit into its file's record (`ids`: file id to slot).
    fn load_units(&self, files: &mut [FileRecord], ids: &HashMap<i64, usize>, sketches: bool) -> rusqlite::Result<()> {
        // Without sketches the column is not read at all (SQLite then skips its bytes).
        let sketch_column = if sketches { "sketch" } else { "NULL" };
        let mut statement = self.connection.prepare(&format!(
            "SELECT file_id, name, kind, start_line, end_line, start_byte, end_byte, token_start, token_end, nesting, parent, t1, t2, tc, {sketch_column}, samples
             FROM units ORDER BY file_id, ordinal"
        ))?;
        let mut rows = statement.query([])?;
        // A grammar finds a kind's id by a linear search of its names: a unit kind is looked
        // up once per language here, not once per unit (435 k times on the Linux tree).
        let mut kinds: Vec<(Language, String, std::borrow::Cow<'static, str>)> = Vec::new();
        while let Some(row) = rows.next()? {
            let Some(&file) = ids.get(&row.get::<_, i64>(0)?) else { continue };
            let sketch = match row.get_ref(14)? {
                rusqlite::types::ValueRef::Blob(bytes) => Some(Box::new(decode_sketch(bytes))),
                _ => None,
            };
            let (grams, used_names, bound) = decode_samples(row.get_ref(15)?.as_blob()?);
            let language = files[file].language;
            let stored_kind = row.get_ref(2)?.as_str()?;
            let kind = match kinds.iter().find(|(known_language, known, _)| *known_language == language && known == stored_kind) {
                Some((_, _, kind)) => kind.clone(),
                None => {
                    let kind = unit_kind(language, stored_kind.to_string());
                    kinds.push((language, stored_kind.to_string(), kind.clone()));
                    kind
                }
            };
            files[file].units.push(UnitRecord {
                name: row.get(1)?,
                kind,
                start_line: row.get(3)?,
                end_line: row.get(4)?,
                start_byte: row.get(5)?,
                end_byte: row.get(6)?,
                token_start: row.get(7)?,
                token_end: row.get(8)?,
                nesting: row.get(9)?,
                parent: row.get(10)?,
                hashes: ExactHashes { t1: row.get::<_, i64>(11)? as u64, t2: row.get::<_, i64>(12)? as u64, tc: row.get::<_, i64>(13)? as u64 },
                sketch,
                grams,
                used_names,
                bound,
            });
        }
        // Pushed one by one, each file's units would keep up to half their room unused
        // (tens of megabytes on the Linux tree, held for the life of the language server).
        for file in files.iter_mut() {
            file.units.shrink_to_fit();
        }
        Ok(())
    }

    /// Stored Type-3 and block pairs, with the paths of their files.
    pub fn load_pairs(&self) -> Result<Vec<StoredPair>, IndexError> {
        let inner = || -> rusqlite::Result<Vec<StoredPair>> {
            let mut statement = self.connection.prepare(&format!(
                "SELECT fa.path, fb.path, {PAIR_COLUMNS} FROM pairs JOIN files fa ON fa.id = file_a JOIN files fb ON fb.id = file_b"
            ))?;
            let rows = statement.query_map([], |row| Ok(StoredPair { path_a: row.get(0)?, path_b: row.get(1)?, pair: pair_of_row(row, 2)? }))?;
            rows.collect()
        };
        inner().map_err(|e| self.error(e))
    }

    /// Every stored file's path with its size, modification time and language name.
    pub fn file_metadata(&self) -> Result<HashMap<String, (u64, i64, String)>, IndexError> {
        let inner = || -> rusqlite::Result<HashMap<String, (u64, i64, String)>> {
            let mut statement = self.connection.prepare("SELECT path, size, mtime_ns, language FROM files")?;
            let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, (row.get::<_, i64>(1)? as u64, row.get::<_, i64>(2)?, row.get::<_, String>(3)?))))?;
            rows.collect()
        };
        inner().map_err(|e| self.error(e))
    }

    /// The kept patterns (see `pattern_store`), if any.
    pub fn load_patterns(&self) -> Result<Option<StoredPatterns>, IndexError> {
        self.connection
            .query_row("SELECT digest, patterns FROM stored_patterns WHERE slot = 0", [], |row| {
                let digest: Vec<u8> = row.get(0)?;
                Ok((digest, row.get::<_, Vec<u8>>(1)?))
            })
            .optional()
            .map(|row| row.and_then(|(digest, bytes)| Some(StoredPatterns { digest: digest.try_into().ok()?, bytes })))
            .map_err(|e| self.error(e))
    }

    /// The digest of the kept patterns, without reading them.
    pub fn patterns_digest(&self) -> Result<Option<Vec<u8>>, IndexError> {
        self.connection.query_row("SELECT digest FROM stored_patterns WHERE slot = 0", [], |row| row.get(0)).optional().map_err(|e| self.error(e))
    }

    /// Keeps `patterns` in place of any kept before.
    pub fn save_patterns(&self, patterns: &StoredPatterns) -> Result<(), IndexError> {
        self.connection
            .execute(
                "INSERT INTO stored_patterns (slot, digest, patterns) VALUES (0, ?1, ?2)
                 ON CONFLICT(slot) DO UPDATE SET digest = excluded.digest, patterns = excluded.patterns",
                params![&patterns.digest[..], patterns.bytes],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    pub fn load_labels(&self) -> Result<BTreeMap<String, PatternLabel>, IndexError> {
        let inner = || -> rusqlite::Result<BTreeMap<String, PatternLabel>> {
            let mut statement = self.connection.prepare("SELECT id, name, note FROM pattern_labels")?;
            let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, PatternLabel { name: row.get(1)?, note: row.get(2)? })))?;
            rows.collect()
        };
        inner().map_err(|e| self.error(e))
    }

    /// Stores a label given now: its time decides between it and a team's name for the id.
    pub fn set_label(&self, id: &str, label: &PatternLabel) -> Result<(), IndexError> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64);
        self.connection
            .execute(
                "INSERT INTO pattern_labels (id, name, note, named_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, note = excluded.note, named_at = excluded.named_at",
                params![id, label.name, label.note, now],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// When each stored label was given (seconds since the Unix epoch); labels from before
    /// times were kept are absent.
    pub fn label_times(&self) -> Result<BTreeMap<String, u64>, IndexError> {
        let inner = || -> rusqlite::Result<BTreeMap<String, u64>> {
            let mut statement = self.connection.prepare("SELECT id, named_at FROM pattern_labels WHERE named_at IS NOT NULL")?;
            let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?.max(0) as u64)))?;
            rows.collect()
        };
        inner().map_err(|e| self.error(e))
    }

    /// Moves a label stored under `old` (an id of an earlier version) to `new`, unless `new`
    /// has one already. Returns whether a label moved.
    pub fn rekey_label(&self, old: &str, new: &str) -> Result<bool, IndexError> {
        let moved = self
            .connection
            .execute("UPDATE OR IGNORE pattern_labels SET id = ?2 WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM pattern_labels WHERE id = ?2)", params![old, new])
            .map_err(|e| self.error(e))?;
        Ok(moved > 0)
    }

    /// Replaces the stored state with this scan's: `files` is the complete current file
    /// list, `changed` says which records are new; `pairs` index into `files`. Only
    /// Type-3 and block pairs are stored (exact pairs are recomputed from hashes).
    pub fn save(&mut self, files: &[FileRecord], changed: &[bool], pairs: &[ClonePair], settings_key: &str) -> Result<(), IndexError> {
        let path = self.path.clone();
        let result = (|| -> rusqlite::Result<()> {
            let transaction = self.connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut stored: HashMap<String, i64> = HashMap::new();
            {
                let mut statement = transaction.prepare("SELECT path, id FROM files")?;
                let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
                for row in rows {
                    let (path, id) = row?;
                    stored.insert(path, id);
                }
            }
            // Pairs of a changed or deleted file go with its row (ON DELETE CASCADE); pairs
            // between two unchanged files stay as they are.
            let current: HashMap<&str, usize> = files.iter().enumerate().map(|(i, f)| (f.path.as_str(), i)).collect();
            {
                let mut delete = transaction.prepare("DELETE FROM files WHERE id = ?1")?;
                for (path, id) in &stored {
                    let keep = current.get(path.as_str()).is_some_and(|&index| !changed[index]);
                    if !keep {
                        delete.execute([id])?;
                    }
                }
            }
            let mut ids: Vec<i64> = vec![0; files.len()];
            {
                let mut insert_file = transaction.prepare(
                    "INSERT INTO files (path, language, content_hash, size, mtime_ns, lines, tokens, syntax_errors, winnows)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                let mut update_file = transaction.prepare("UPDATE files SET mtime_ns = ?2 WHERE id = ?1")?;
                let mut insert_unit = transaction.prepare(
                    "INSERT INTO units (file_id, ordinal, name, kind, start_line, end_line, start_byte, end_byte,
                        token_start, token_end, nesting, parent, t1, t2, tc, sketch, samples)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                )?;
                for (index, file) in files.iter().enumerate() {
                    if !changed[index]
                        && let Some(&id) = stored.get(&file.path)
                    {
                        ids[index] = id;
                        update_file.execute(params![id, file.mtime_ns])?;
                        continue;
                    }
                    insert_file.execute(params![
                        file.path,
                        file.language.name(),
                        &file.content_hash[..],
                        file.size as i64,
                        file.mtime_ns,
                        file.lines,
                        file.tokens,
                        i64::from(file.has_syntax_errors),
                        encode_winnows(&file.winnows),
                    ])?;
                    let id = transaction.last_insert_rowid();
                    ids[index] = id;
                    for (ordinal, unit) in file.units.iter().enumerate() {
                        insert_unit.execute(params![
                            id,
                            ordinal as i64,
                            unit.name,
                            unit.kind.as_ref(),
                            unit.start_line,
                            unit.end_line,
                            unit.start_byte,
                            unit.end_byte,
                            unit.token_start,
                            unit.token_end,
                            unit.nesting,
                            unit.parent,
                            unit.hashes.t1 as i64,
                            unit.hashes.t2 as i64,
                            unit.hashes.tc as i64,
                            unit.sketch.as_deref().map(encode_sketch),
                            encode_samples(&unit.grams, &unit.used_names, &unit.bound),
                        ])?;
                    }
                }
            }
            {
                let mut insert_pair = transaction.prepare(
                    "INSERT INTO pairs (file_a, file_b, a_start, a_end, a_unit, a_token_start, a_token_end,
                        b_start, b_end, b_unit, b_token_start, b_token_end, kind, similarity, content, evidence)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )?;
                let touches_change = |pair: &&ClonePair| changed[pair.a.file as usize] || changed[pair.b.file as usize];
                for pair in pairs.iter().filter(|p| p.kind == CloneKind::T3 || p.a.unit.is_none()).filter(touches_change) {
                    insert_pair.execute(params![
                        ids[pair.a.file as usize],
                        ids[pair.b.file as usize],
                        pair.a.start_line,
                        pair.a.end_line,
                        pair.a.unit,
                        pair.a.token_start,
                        pair.a.token_end,
                        pair.b.start_line,
                        pair.b.end_line,
                        pair.b.unit,
                        pair.b.token_start,
                        pair.b.token_end,
                        pair.kind.as_str(),
                        pair.similarity,
                        pair.content as i64,
                        pair.evidence.as_ref().map(encode_evidence),
                    ])?;
                }
            }
            transaction.execute(
                "INSERT INTO meta (key, value) VALUES ('settings', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [settings_key],
            )?;
            transaction.commit()
        })();
        result.map_err(|source| IndexError::Sqlite { path, source })
    }
}

/// The stored pairs with their files as slots (`ids`: file id to slot), read by file id
/// rather than joined to the paths (on the Linux tree, a million path strings fewer).
fn load_pairs_by_id(path: &Path, ids: &HashMap<i64, usize>) -> rusqlite::Result<Vec<ClonePair>> {
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    connection.busy_timeout(Duration::from_secs(60))?;
    let mut statement = connection.prepare(&format!("SELECT file_a, file_b, {PAIR_COLUMNS} FROM pairs"))?;
    let mut rows = statement.query([])?;
    let mut pairs = Vec::new();
    while let Some(row) = rows.next()? {
        let (Some(&file_a), Some(&file_b)) = (ids.get(&row.get::<_, i64>(0)?), ids.get(&row.get::<_, i64>(1)?)) else { continue };
        let mut pair = pair_of_row(row, 2)?;
        pair.a.file = file_a as u32;
        pair.b.file = file_b as u32;
        pairs.push(pair);
    }
    Ok(pairs)
}

enum OpenProblem {
    Sqlite(rusqlite::Error),
    FutureVersion(i64),
}

impl From<rusqlite::Error> for OpenProblem {
    fn from(error: rusqlite::Error) -> Self {
        OpenProblem::Sqlite(error)
    }
}

impl std::fmt::Display for OpenProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenProblem::Sqlite(error) => write!(formatter, "unreadable ({error})"),
            OpenProblem::FutureVersion(version) => {
                write!(formatter, "written by a newer Periodic (schema {version}, this one knows {})", MIGRATIONS.len())
            }
        }
    }
}

/// The columns of a stored pair that [`pair_of_row`] reads, in its order.
const PAIR_COLUMNS: &str = "a_start, a_end, a_unit, a_token_start, a_token_end, b_start, b_end, b_unit, b_token_start, b_token_end, kind, similarity, content, evidence";

/// A stored pair from [`PAIR_COLUMNS`] starting at column `first`; its files are left 0.
fn pair_of_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ClonePair> {
    let instance = |offset: usize| -> rusqlite::Result<Instance> {
        Ok(Instance {
            file: 0,
            start_line: row.get(offset)?,
            end_line: row.get(offset + 1)?,
            unit: row.get(offset + 2)?,
            token_start: row.get(offset + 3)?,
            token_end: row.get(offset + 4)?,
        })
    };
    let kind = row.get_ref(first + 10)?.as_str()?;
    Ok(ClonePair {
        a: instance(first)?,
        b: instance(first + 5)?,
        kind: CloneKind::parse(kind).unwrap_or(CloneKind::T3),
        similarity: row.get(first + 11)?,
        content: row.get::<_, i64>(first + 12)? as u64,
        evidence: row.get_ref(first + 13)?.as_blob_or_null()?.and_then(decode_evidence),
    })
}

fn encode_sketch(sketch: &Sketch) -> Vec<u8> {
    sketch.iter().flat_map(|value| value.to_le_bytes()).collect()
}

fn decode_sketch(bytes: &[u8]) -> Sketch {
    let mut sketch = [u32::MAX; SKETCH_LEN];
    for (slot, chunk) in sketch.iter_mut().zip(bytes.chunks_exact(4)) {
        *slot = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    sketch
}

/// A pair's evidence: every signal, then the score (f32 each).
fn encode_evidence(evidence: &Evidence) -> Vec<u8> {
    evidence.signals().iter().chain([&evidence.score]).flat_map(|value| value.to_le_bytes()).collect()
}

fn decode_evidence(bytes: &[u8]) -> Option<Evidence> {
    let values: Vec<f32> = bytes.chunks_exact(4).map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).collect();
    match *values.as_slice() {
        [tokens, aligned, runs, names, literals, swaps, size, shape, free_sub, score] => {
            Some(Evidence { tokens, aligned, runs, names, literals, swaps, size, shape, free_sub, score })
        }
        // Stored before `free_sub` existed.
        [tokens, aligned, runs, names, literals, swaps, size, shape, score] => {
            Some(Evidence { tokens, aligned, runs, names, literals, swaps, size, shape, free_sub: 0.0, score })
        }
        _ => None,
    }
}

/// A unit's k-gram and used-name samples and the names it binds: the k-gram count (u16,
/// its top bit set when a used-name count follows), the used-name count (u16), then every
/// value (u32). Blobs of earlier versions have no used-name count and no bound names.
fn encode_samples(grams: &[u32], used_names: &[u32], bound: &[u32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + 4 * (grams.len() + used_names.len() + bound.len()));
    bytes.extend_from_slice(&(grams.len() as u16 | WITH_BOUND).to_le_bytes());
    bytes.extend_from_slice(&(used_names.len() as u16).to_le_bytes());
    for value in grams.iter().chain(used_names).chain(bound) {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// Marks a samples blob that holds bound names.
const WITH_BOUND: u16 = 0x8000;

type Samples = (Box<[u32]>, Box<[u32]>, Box<[u32]>);

fn decode_samples(bytes: &[u8]) -> Samples {
    let Some((count, rest)) = bytes.split_first_chunk::<2>() else { return Samples::default() };
    let count = u16::from_le_bytes(*count);
    let (grams, used, rest) = if count & WITH_BOUND == 0 {
        (usize::from(count), None, rest)
    } else {
        let Some((used, rest)) = rest.split_first_chunk::<2>() else { return Samples::default() };
        (usize::from(count & !WITH_BOUND), Some(usize::from(u16::from_le_bytes(*used))), rest)
    };
    let values: Vec<u32> = rest.chunks_exact(4).map(|chunk| u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).collect();
    let grams = grams.min(values.len());
    let used = used.map_or(values.len(), |used| (grams + used).min(values.len()));
    (values[..grams].into(), values[grams..used].into(), values[used..].into())
}

fn encode_winnows(winnows: &[Winnow]) -> Vec<u8> {
    winnows.iter().flat_map(|w| w.hash.to_le_bytes().into_iter().chain(w.position.to_le_bytes())).collect()
}

/// A stored unit kind, borrowed from the grammar's table when the grammar has it (as a parsed
/// unit's is) rather than a string of its own per unit.
fn unit_kind(language: Language, stored: String) -> std::borrow::Cow<'static, str> {
    let grammar = &language.spec().grammar;
    match grammar.node_kind_for_id(grammar.id_for_node_kind(&stored, true)) {
        Some(kind) if kind == stored => std::borrow::Cow::Borrowed(kind),
        _ => std::borrow::Cow::Owned(stored),
    }
}

fn decode_winnows(bytes: &[u8]) -> Vec<Winnow> {
    bytes
        .chunks_exact(8)
        .map(|chunk| Winnow {
            hash: u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
            position: u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_unit_kinds_are_borrowed_from_the_grammar_and_unknown_ones_kept() {
        let known = unit_kind(Language::Python, "function_definition".to_string());
        assert!(matches!(known, std::borrow::Cow::Borrowed("function_definition")), "{known:?}");
        let unknown = unit_kind(Language::Python, "no_such_kind".to_string());
        assert!(matches!(&unknown, std::borrow::Cow::Owned(kind) if kind == "no_such_kind"), "{unknown:?}");
    }
}
