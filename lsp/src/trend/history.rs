//! A git repository's history as `periodic trend` reads it, from git objects only (gix):
//! the first-parent commits of a branch between two bounds, each commit's files under a
//! folder, and the bytes of a blob. Nothing is checked out: the working tree, the index and
//! uncommitted changes are never touched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gix::ObjectId;

/// One commit of the walked history.
#[derive(Clone, Debug)]
pub struct CommitInfo {
    pub id: ObjectId,
    /// Committer date, ISO 8601 with the committer's offset.
    pub date: String,
    pub author_date: String,
    pub author: String,
    /// The first line of the message.
    pub subject: String,
}

/// Where the history stops at its old end.
pub enum Since {
    /// At this commit, included.
    Commit(ObjectId),
    /// At the first commit older than this (seconds since the epoch).
    Date(i64),
}

pub struct History {
    repo: gix::Repository,
    /// The folder analysed, relative to the repository's top (`/`-separated, empty for all).
    pub prefix: String,
    /// The folder analysed, in the working tree (for `.periodic.toml` and `.periodicignore`).
    pub folder: PathBuf,
}

fn format_time(time: &gix::date::Time) -> String {
    time.format_or_unix(gix::date::time::format::ISO8601_STRICT)
}

impl History {
    /// The repository holding `path` (a folder inside its working tree, or the repository).
    pub fn open(path: &Path) -> anyhow::Result<History> {
        let folder = path.canonicalize().with_context(|| format!("{}: no such folder", path.display()))?;
        let repo = gix::discover(&folder).with_context(|| format!("{} is not inside a git repository", folder.display()))?;
        let top = repo.workdir().map(Path::to_path_buf).unwrap_or_else(|| repo.git_dir().to_path_buf());
        let top = top.canonicalize().unwrap_or(top);
        let prefix = folder.strip_prefix(&top).map(|relative| periodic_core::walk::relative_path(Path::new(""), relative)).unwrap_or_default();
        Ok(History { repo, prefix, folder })
    }

    /// The commit `spec` names (`HEAD`, a branch, a tag, an abbreviated id, `main~3`).
    pub fn resolve(&self, spec: &str) -> anyhow::Result<ObjectId> {
        let id = self.repo.rev_parse_single(spec).with_context(|| format!("`{spec}` is not a revision of this repository"))?;
        let commit = id.object().and_then(|object| object.peel_to_commit()).with_context(|| format!("`{spec}` does not name a commit"))?;
        Ok(commit.id)
    }

    /// `--since`: a revision when it names one, else a date (`2024-05-01`, `2 weeks ago`).
    pub fn since(&self, text: &str) -> anyhow::Result<Since> {
        if let Ok(id) = self.resolve(text) {
            return Ok(Since::Commit(id));
        }
        match gix::date::parse(text, Some(gix::date::ZonedDateTime::now())) {
            Ok(time) => Ok(Since::Date(time.seconds)),
            Err(_) => bail!("--since `{text}` is neither a revision nor a date (e.g. 2024-05-01, \"3 months ago\")"),
        }
    }

    /// First-parent commits from `tip` back to `since` (newest first).
    pub fn first_parent_commits(&self, tip: ObjectId, since: Option<&Since>) -> anyhow::Result<Vec<CommitInfo>> {
        let mut commits = Vec::new();
        let mut next = Some(tip);
        while let Some(id) = next {
            let commit = self.repo.find_commit(id).with_context(|| format!("cannot read commit {id}"))?;
            let time = commit.time().with_context(|| format!("commit {id} has no readable date"))?;
            if let Some(Since::Date(seconds)) = since
                && time.seconds < *seconds
            {
                break;
            }
            let author = commit.author().with_context(|| format!("commit {id} has no readable author"))?;
            let author_time = author.time().unwrap_or(time);
            let subject = commit.message_raw_sloppy().to_string();
            commits.push(CommitInfo {
                id,
                date: format_time(&time),
                author_date: format_time(&author_time),
                author: author.name.to_string().trim().to_string(),
                subject: subject.lines().next().unwrap_or("").trim().to_string(),
            });
            if let Some(Since::Commit(stop)) = since
                && *stop == id
            {
                break;
            }
            next = commit.parent_ids().next().map(|parent| parent.detach());
        }
        if let Some(Since::Commit(stop)) = since
            && commits.last().is_none_or(|commit| commit.id != *stop)
        {
            bail!("--since {stop} is not on the first-parent history of the walked branch");
        }
        Ok(commits)
    }

    /// The files of `commit` under the analysed folder: path relative to that folder → blob.
    pub fn files(&self, commit: ObjectId) -> anyhow::Result<HashMap<String, ObjectId>> {
        let commit = self.repo.find_commit(commit)?;
        let mut tree = commit.tree().with_context(|| format!("cannot read the tree of {}", commit.id))?;
        if !self.prefix.is_empty() {
            match tree.lookup_entry_by_path(&self.prefix)? {
                Some(entry) if entry.mode().is_tree() => tree = entry.object()?.into_tree(),
                // The folder does not exist yet at this commit.
                _ => return Ok(HashMap::new()),
            }
        }
        let entries = tree.traverse().breadthfirst.files().with_context(|| format!("cannot read the tree of {}", commit.id))?;
        Ok(entries.into_iter().filter(|entry| entry.mode.is_blob()).map(|entry| (entry.filepath.to_string(), entry.oid)).collect())
    }

    pub fn blob(&self, id: ObjectId) -> anyhow::Result<Vec<u8>> {
        let mut blob = self.repo.find_blob(id).with_context(|| format!("cannot read blob {id}"))?;
        Ok(blob.take_data())
    }
}
