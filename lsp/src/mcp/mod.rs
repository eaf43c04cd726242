//! `periodic mcp`: a Model Context Protocol server on stdio for coding agents, asking the
//! same answers layer as the language server and the command line. It opens the folder's
//! `.periodic/index.db` (answers at once when it exists), refreshes it in the background
//! (only changed files are parsed again), and again when a question comes after the files
//! may have changed. Standard output carries only the protocol; logs go to standard error.
//!
//! `tools` holds the tools' contract (arguments, results, text); `server` the protocol
//! handler; this module the state the tools read: the workspace and its indexing status.

mod server;
mod tools;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use periodic_core::{Config, ScanProgress};
use rmcp::ServiceExt;

use crate::answers::Workspace;
use crate::answers::workspace::lock;
use crate::edge_sync::{EdgeSettings, EdgeSync};
use tools::IndexState;

/// A question waits at most this long for the first index of a folder that has none.
const FIRST_INDEX_WAIT: Duration = Duration::from_secs(30);
/// A question starts a background refresh when the last one ended longer ago than this:
/// the agent may have written files since.
const REFRESH_AFTER: Duration = Duration::from_secs(5);

/// Serves one client on stdin/stdout until it closes the pipe.
pub fn run(root: Option<PathBuf>) -> anyhow::Result<()> {
    let root = match root {
        Some(root) => root,
        None => std::env::current_dir().context("cannot read the current folder")?,
    };
    let root = root.canonicalize().with_context(|| format!("{}: no such folder", root.display()))?;
    if !root.is_dir() {
        anyhow::bail!("{}: not a folder", root.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let state = State::open(root);
        state.clone().start();
        let service = server::PeriodicMcp::new(state).serve(rmcp::transport::stdio()).await.context("the MCP client did not start a session")?;
        service.waiting().await.context("the MCP session failed")?;
        anyhow::Ok(())
    })?;
    // A refresh may still be running on a blocking thread: do not wait for it.
    runtime.shutdown_background();
    Ok(())
}

#[derive(Default)]
struct Status {
    indexing: bool,
    done: u64,
    total: u64,
    error: Option<String>,
    finished: Option<Instant>,
}

/// The folder the server answers about.
pub struct State {
    pub root: PathBuf,
    pub workspace: Arc<Workspace>,
    config: Config,
    status: Mutex<Status>,
}

impl State {
    fn open(root: PathBuf) -> Arc<State> {
        let (workspace, problem) = Workspace::new(root.clone());
        if let Some(problem) = problem {
            tracing::warn!("{problem} (the defaults are used)");
        }
        let config = workspace.effective_config(|_| ());
        Arc::new(State { root, workspace, config, status: Mutex::new(Status::default()) })
    }

    /// Loads the stored index, then refreshes it and starts the team sync, in the background.
    fn start(self: Arc<State>) {
        lock(&self.status).indexing = true;
        tokio::spawn(async move {
            let loading = self.clone();
            let loaded = tokio::task::spawn_blocking(move || loading.workspace.load_stored(loading.config.clone())).await;
            match loaded {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!("{}: the stored index could not be read: {error}", self.root.display()),
                Err(error) => tracing::warn!("{}: loading the stored index failed: {error}", self.root.display()),
            }
            lock(&self.status).indexing = false;
            self.refresh().await;
            self.start_edge();
        });
    }

    /// With `[edge]` configured (as for `periodic scan --edge` and the language server),
    /// questions about code are asked of the team too.
    fn start_edge(&self) {
        match EdgeSettings::for_workspace(&self.root, &self.config, None) {
            // Asking only: the MCP server answers agents; the language server and
            // `periodic scan --edge` push this repository.
            Ok(settings) if settings.enabled() => self.workspace.set_edge(EdgeSync::start_asking(&self.root, settings)),
            Ok(_) => {}
            Err(error) => tracing::warn!("team edge sync is off: {error}"),
        }
    }

    /// Scans what changed since the index was written; answers keep coming from the
    /// previous state until it is done. Returns at once when a refresh is running.
    async fn refresh(self: &Arc<State>) {
        {
            let mut status = lock(&self.status);
            if status.indexing {
                return;
            }
            *status = Status { indexing: true, ..Status::default() };
        }
        let state = self.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let progress = |event: ScanProgress| {
                let mut status = lock(&state.status);
                match event {
                    ScanProgress::Discovered { files } => status.total = files as u64,
                    ScanProgress::Parsed { done, total } => (status.done, status.total) = (done as u64, total as u64),
                    ScanProgress::Detecting => {}
                }
            };
            state.workspace.refresh(state.config.clone(), &progress)
        })
        .await;
        let error = match outcome {
            Ok(Ok(warnings)) => {
                for warning in warnings.iter().take(20) {
                    tracing::warn!("{warning}");
                }
                None
            }
            Ok(Err(error)) => Some(error.to_string()),
            Err(error) => Some(format!("indexing stopped: {error}")),
        };
        if let Some(error) = &error {
            tracing::error!("could not index {}: {error}", self.root.display());
        }
        let mut status = lock(&self.status);
        *status = Status { error, finished: Some(Instant::now()), ..Status::default() };
    }

    /// Starts a background refresh if the last one is old enough.
    fn refresh_if_stale(self: &Arc<State>) {
        let stale = {
            let status = lock(&self.status);
            !status.indexing && status.finished.is_some_and(|finished| finished.elapsed() >= REFRESH_AFTER)
        };
        if stale {
            let state = self.clone();
            tokio::spawn(async move { state.refresh().await });
        }
    }

    /// Waits (bounded) until the folder has been indexed once.
    async fn wait_for_index(&self) {
        if self.workspace.inspect(|_| ()).is_some() {
            return;
        }
        let mut published = self.workspace.published.subscribe();
        let deadline = tokio::time::Instant::now() + FIRST_INDEX_WAIT;
        while self.workspace.inspect(|_| ()).is_none() {
            if tokio::time::timeout_at(deadline, published.changed()).await.is_err() {
                return;
            }
        }
        // The first index is published just before its scan is done: the answer waits for
        // that too, so it does not say it comes from an index being refreshed.
        while lock(&self.status).indexing && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn index_state(&self) -> IndexState {
        let status = lock(&self.status);
        let files = self.workspace.snapshot().files.len() as u64;
        IndexState {
            files,
            indexing: status.indexing,
            progress_done: status.indexing.then_some(status.done),
            progress_total: status.indexing.then_some(status.total),
            error: status.error.clone(),
        }
    }

    /// A path given by the client, absolute or relative to the root, as a relative
    /// `/`-separated path; `Err` when it leaves the root.
    fn relative(&self, path: &str) -> Result<String, String> {
        let given = Path::new(path.trim());
        let absolute = if given.is_absolute() { given.to_path_buf() } else { self.root.join(given) };
        // Existing paths are resolved (symbolic links, `..`); a new file's folder may be.
        let resolved = absolute.canonicalize().unwrap_or_else(|_| std::path::absolute(&absolute).unwrap_or(absolute.clone()));
        let normalised = normalise(&resolved);
        match normalised.strip_prefix(&self.root) {
            Ok(relative) => Ok(periodic_core::walk::relative_path(Path::new(""), relative)),
            Err(_) => Err(format!("`{path}` is outside the root {}", self.root.display())),
        }
    }
}

/// Removes `.` and `..` components without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
