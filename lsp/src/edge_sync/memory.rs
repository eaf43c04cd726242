//! The team's answers kept in `.periodic/index.db` (tables `edge_answers` and
//! `edge_patterns`, created by the engine's migrations), each with the time it was fetched:
//! a restart without the edge still shows the team's copies and names, marked stale once
//! older than the query TTL. Rows are per repository name, like the outbox's.

use std::path::Path;

use periodic_wire::v1::UnitMatch;
use rusqlite::{Connection, params};

use super::names::{TeamName, TeamNames};

/// Answers older than this are dropped when the memory is opened: they describe code the
/// team may long have changed.
const KEEP_SECONDS: u64 = 30 * 24 * 3600;

pub struct TeamMemory {
    connection: Connection,
    repo: String,
}

fn sqlite(error: rusqlite::Error) -> String {
    format!("team answers in the index: {error}")
}

impl TeamMemory {
    /// Opens the index of `root` (its migrations already applied by the outbox) and drops
    /// answers older than a month.
    pub fn open(root: &Path, repo: &str, now: u64) -> Result<TeamMemory, String> {
        let connection = Connection::open(periodic_core::index::Index::path_for(root)).map_err(sqlite)?;
        connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(sqlite)?;
        connection
            .execute("DELETE FROM edge_answers WHERE repo = ?1 AND fetched_at < ?2", params![repo, now.saturating_sub(KEEP_SECONDS) as i64])
            .map_err(sqlite)?;
        Ok(TeamMemory { connection, repo: repo.to_string() })
    }

    /// Every kept answer: the fingerprint id, the matches and when they were fetched.
    pub fn answers(&self) -> Result<Vec<(String, Vec<UnitMatch>, u64)>, String> {
        let mut statement = self.connection.prepare("SELECT fingerprint, answer, fetched_at FROM edge_answers WHERE repo = ?1").map_err(sqlite)?;
        let rows = statement
            .query_map(params![self.repo], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?)))
            .map_err(sqlite)?;
        let mut answers = Vec::new();
        for row in rows {
            let (id, text, fetched_at) = row.map_err(sqlite)?;
            // A row this version cannot read (written by another) is skipped, not fatal.
            if let Ok(matches) = serde_json::from_str::<Vec<UnitMatch>>(&text) {
                answers.push((id, matches, fetched_at.max(0) as u64));
            }
        }
        Ok(answers)
    }

    /// Keeps the answers of one query, fetched at `now`.
    pub fn save_answers(&mut self, answers: &[(String, std::sync::Arc<Vec<UnitMatch>>)], now: u64) -> Result<(), String> {
        let transaction = self.connection.transaction().map_err(sqlite)?;
        {
            let mut statement = transaction
                .prepare_cached("INSERT OR REPLACE INTO edge_answers (repo, fingerprint, answer, fetched_at) VALUES (?1, ?2, ?3, ?4)")
                .map_err(sqlite)?;
            for (id, matches) in answers {
                let text = serde_json::to_string(matches.as_ref()).map_err(|error| error.to_string())?;
                statement.execute(params![self.repo, id, text, now as i64]).map_err(sqlite)?;
            }
        }
        transaction.commit().map_err(sqlite)
    }

    /// The team's names as last read.
    pub fn names(&self) -> Result<TeamNames, String> {
        let mut statement =
            self.connection.prepare("SELECT id, name, note, named_by, named_at, fetched_at FROM edge_patterns WHERE repo = ?1").map_err(sqlite)?;
        let rows = statement
            .query_map(params![self.repo], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    TeamName {
                        name: row.get(1)?,
                        note: row.get(2)?,
                        named_by: row.get(3)?,
                        named_at: row.get::<_, Option<i64>>(4)?.map(|at| at.max(0) as u64),
                        fetched_at: row.get::<_, i64>(5)?.max(0) as u64,
                    },
                ))
            })
            .map_err(sqlite)?;
        rows.collect::<Result<TeamNames, _>>().map_err(sqlite)
    }

    /// Replaces the kept names with `names` (a complete read from the edge).
    pub fn replace_names(&mut self, names: &TeamNames) -> Result<(), String> {
        let transaction = self.connection.transaction().map_err(sqlite)?;
        transaction.execute("DELETE FROM edge_patterns WHERE repo = ?1", params![self.repo]).map_err(sqlite)?;
        {
            let mut statement = transaction
                .prepare_cached("INSERT INTO edge_patterns (repo, id, name, note, named_by, named_at, fetched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .map_err(sqlite)?;
            for (id, name) in names {
                statement
                    .execute(params![self.repo, id, name.name, name.note, name.named_by, name.named_at.map(|at| at as i64), name.fetched_at as i64])
                    .map_err(sqlite)?;
            }
        }
        transaction.commit().map_err(sqlite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_names_survive_a_reopen_and_old_answers_are_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (index, _) = periodic_core::index::Index::open(dir.path()).expect("index");
        drop(index);
        let found = UnitMatch {
            repo: "billing".into(),
            key: "k".into(),
            similarity: 1.0,
            exact: true,
            pattern_id: "P-00000000000000aa".into(),
            language: "python".into(),
            tokens: 40,
            lines: 8,
            location: None,
        };
        let mut memory = TeamMemory::open(dir.path(), "ledger", 1_000_000_000).expect("open");
        memory.save_answers(&[("new".into(), std::sync::Arc::new(vec![found.clone()]))], 1_000_000_000).expect("save");
        memory.save_answers(&[("old".into(), std::sync::Arc::new(Vec::new()))], 1_000).expect("save");
        let name = TeamName { name: Some("money".into()), note: None, named_by: Some("tok".into()), named_at: Some(5), fetched_at: 6 };
        memory.replace_names(&[("P-00000000000000aa".to_string(), name.clone())].into_iter().collect()).expect("names");
        drop(memory);
        let memory = TeamMemory::open(dir.path(), "ledger", 1_000_000_000).expect("reopen");
        assert_eq!(memory.answers().expect("answers"), vec![("new".to_string(), vec![found], 1_000_000_000)]);
        assert_eq!(memory.names().expect("names").get("P-00000000000000aa"), Some(&name));
        let other = TeamMemory::open(dir.path(), "other-repo", 1_000_000_000).expect("other");
        assert!(other.names().expect("names").is_empty(), "kept per repository");
    }
}
