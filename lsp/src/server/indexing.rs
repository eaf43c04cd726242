//! Keeping a workspace's index current: loading it at start (stored results first, then a
//! background scan with `$/progress`), re-indexing after configuration changes or big
//! batches of file changes, re-reading single files changed on disk, and watching folders.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use periodic_core::ScanProgress;
use tower_lsp_server::ls_types::{MessageType, NumberOrString};

use super::backend::Backend;
use super::document::parse_and_analyze;
use crate::answers::workspace::{ConfigProblem, Workspace, lock};
use crate::edge_sync::EdgeSettings;
use crate::edge_sync::analyses::EdgeTeamCache;
use periodic_core::team_cache::TeamCache;

/// More changed files than this at once (a branch switch) re-index the folder instead.
const MAX_FILES_UPDATED_ONE_BY_ONE: usize = 64;

/// Files that mark a project's root, searched upwards from a file outside every folder.
const ROOT_MARKERS: [&str; 2] = [periodic_core::config::CONFIG_FILE_NAME, ".git"];

/// The folder to index for a file outside every workspace folder: the nearest ancestor
/// holding a root marker, else the file's own folder (a scratch folder, an unpacked tarball).
fn root_for_outside_file(path: &Path) -> Option<PathBuf> {
    let folder = path.parent()?;
    let marked = folder.ancestors().find(|ancestor| ROOT_MARKERS.iter().any(|marker| ancestor.join(marker).exists()));
    Some(marked.unwrap_or(folder).to_path_buf())
}

/// The workspace folder answering for an opened file.
pub(super) enum FolderFor {
    Known(Arc<Workspace>),
    /// Added just now for a file outside every folder; not loaded yet.
    New(Arc<Workspace>, Option<ConfigProblem>),
}

impl FolderFor {
    pub(super) fn workspace(&self) -> &Arc<Workspace> {
        match self {
            FolderFor::Known(workspace) | FolderFor::New(workspace, _) => workspace,
        }
    }
}

impl Backend {
    /// The workspace for a file the editor opened. A file outside every workspace folder (an
    /// editor started without a root, or a file opened from elsewhere) gets a folder of its
    /// own, registered at once so the document is answered for like any other; the caller
    /// then starts it with `adopt_folder`.
    pub(super) fn workspace_or_new(&self, path: &Path) -> Option<FolderFor> {
        if let Some(workspace) = self.workspace_for(path) {
            return Some(FolderFor::Known(workspace));
        }
        let root = root_for_outside_file(path)?;
        let mut workspaces = self.state.workspaces.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Another didOpen may have added a folder holding this file meanwhile.
        if let Some(workspace) = workspaces.iter().find(|workspace| path.starts_with(&workspace.root)) {
            return Some(FolderFor::Known(workspace.clone()));
        }
        let (workspace, problem) = Workspace::new(root);
        workspaces.push(workspace.clone());
        Some(FolderFor::New(workspace, problem))
    }

    /// Starts a folder added for `file`, which was outside every workspace folder: says so
    /// in the log, reports a bad `.periodic.toml`, then watches and indexes it.
    pub(super) async fn adopt_folder(&self, file: PathBuf, workspace: Arc<Workspace>, problem: Option<ConfigProblem>) {
        let message = format!("{} is outside every workspace folder: indexing {} for it", file.display(), workspace.root.display());
        tracing::info!("{message}");
        self.client.log_message(MessageType::INFO, format!("Periodic: {message}")).await;
        if let Some(problem) = problem {
            self.client.show_message(MessageType::ERROR, format!("Periodic: {problem} (the defaults are used)")).await;
        }
        self.start_workspace(workspace).await;
    }

    /// Loads a workspace: stored results first (answers at once), then watches it, then
    /// scans what changed since, with progress. Watching a big tree takes a core for a while
    /// (the Linux tree: a second): it starts once the stored answers are out, before the
    /// scan, which sees whatever changed before the watch began.
    pub(super) async fn start_workspace(&self, workspace: Arc<Workspace>) {
        let config = workspace.effective_config(|config| self.settings().apply_to(config));
        let loading = workspace.clone();
        match tokio::task::spawn_blocking(move || loading.load_stored(config)).await {
            Ok(Ok(true)) => {
                // Open files are answered from the stored engine before the re-index below
                // drops it: scheduled instead, they would race the drop and, on a large tree,
                // wait for the whole re-index.
                for uri in self.open_uris(&workspace) {
                    self.analyse(uri).await;
                }
            }
            Ok(Ok(false)) => {}
            Ok(Err(error)) => self.warn(format!("{}: the stored index could not be read: {error}", workspace.root.display())).await,
            Err(error) => self.warn(format!("{}: loading the stored index failed: {error}", workspace.root.display())).await,
        }
        self.watch(&workspace).await;
        self.reindex(workspace.clone()).await;
        // The team sync keeps its outbox in the index, which exists from here on.
        self.start_edge(&workspace).await;
    }

    /// Scans a workspace folder in the background and swaps the result in. Requests keep
    /// being answered from the previous snapshot meanwhile; calls made while one waits
    /// for its turn are merged into it.
    pub(super) async fn reindex(&self, workspace: Arc<Workspace>) {
        if !lock(&self.state.reindex_queued).insert(workspace.root.clone()) {
            return;
        }
        let _turn = workspace.reindexing.lock().await;
        lock(&self.state.reindex_queued).remove(&workspace.root);
        if self.state.shut_down.load(Ordering::SeqCst) {
            return;
        }
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<ScanProgress>();
        let progress = self.begin_progress(&workspace).await;
        let forward = tokio::spawn(async move {
            let mut last_percent = None;
            while let Some(event) = receiver.recv().await {
                let Some(progress) = &progress else { continue };
                if let ScanProgress::Parsed { done, total } = event {
                    let percent = (done * 100 / total.max(1)) as u32;
                    if last_percent != Some(percent) {
                        last_percent = Some(percent);
                        progress.report_with_message(format!("{done}/{total} files"), percent).await;
                    }
                }
            }
            if let Some(progress) = progress {
                progress.finish().await;
            }
        });
        let config = workspace.effective_config(|config| self.settings().apply_to(config));
        let scanning = workspace.clone();
        let state = self.state.clone();
        let edge = self.settings().edge.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let report = move |event: ScanProgress| {
                let _ = sender.send(event);
            };
            let open = || Backend::open_texts(&state, &scanning);
            // Files a teammate analysed are taken from the edge instead of parsed.
            let team = EdgeSettings::for_workspace(&scanning.root, &scanning.project_config(), edge.as_ref())
                .ok()
                .and_then(|settings| EdgeTeamCache::for_settings(&settings));
            let outcome = scanning.reindex(config, &report, &open, team.as_ref().map(|team| team as &dyn TeamCache));
            if let Some(team) = &team {
                tracing::info!(
                    hits = team.counters().hits.load(std::sync::atomic::Ordering::Relaxed),
                    asked = team.counters().asked.load(std::sync::atomic::Ordering::Relaxed),
                    problem = team.problem().unwrap_or_default(),
                    "team analysis cache"
                );
            }
            super::memory::release_free_memory();
            outcome
        })
        .await;
        let _ = forward.await;
        match outcome {
            Ok(Ok(warnings)) => {
                for warning in warnings.into_iter().take(20) {
                    self.warn(warning).await;
                }
            }
            Ok(Err(error)) => {
                let message = format!("Periodic could not index {}: {error}", workspace.root.display());
                tracing::error!("{message}");
                self.client.show_message(MessageType::ERROR, message).await;
            }
            Err(error) => self.warn(format!("indexing {} failed: {error}", workspace.root.display())).await,
        }
        self.refresh_all(&workspace).await;
    }

    pub(super) async fn begin_progress(&self, workspace: &Workspace) -> Option<tower_lsp_server::OngoingProgress<tower_lsp_server::Bounded, tower_lsp_server::NotCancellable>> {
        if !self.support().work_done_progress {
            return None;
        }
        let number = self.state.progress_tokens.fetch_add(1, Ordering::SeqCst);
        let token = NumberOrString::String(format!("periodic-index-{number}"));
        self.client.create_work_done_progress(token.clone()).await.ok()?;
        let title = format!("Periodic: indexing {}", workspace.root.file_name().map_or_else(|| workspace.root.display().to_string(), |name| name.to_string_lossy().into_owned()));
        Some(self.client.progress(token, title).with_percentage(0).begin().await)
    }

    /// Files changed on disk (watcher or client): re-read known files one by one; new
    /// files, `.periodic.toml` and big batches re-index the folder.
    pub(super) async fn on_disk_changes(&self, paths: Vec<PathBuf>) {
        let mut by_workspace: HashMap<PathBuf, (Arc<Workspace>, Vec<PathBuf>)> = HashMap::new();
        for path in paths {
            if let Some(workspace) = self.workspace_for(&path) {
                by_workspace.entry(workspace.root.clone()).or_insert_with(|| (workspace, Vec::new())).1.push(path);
            }
        }
        for (_, (workspace, paths)) in by_workspace {
            self.on_workspace_disk_changes(workspace, paths).await;
        }
    }

    pub(super) async fn on_workspace_disk_changes(&self, workspace: Arc<Workspace>, paths: Vec<PathBuf>) {
        let config_path = workspace.root.join(periodic_core::config::CONFIG_FILE_NAME);
        if paths.contains(&config_path) {
            match workspace.reload_project_config() {
                Ok(()) => {
                    tracing::info!("{} changed: re-indexing", config_path.display());
                    self.start_edge(&workspace).await;
                    self.reindex(workspace).await;
                }
                Err(problem) => {
                    let message = format!("Periodic: {problem} (the previous configuration stays in force)");
                    tracing::error!("{message}");
                    self.client.show_message(MessageType::ERROR, message).await;
                }
            }
            return;
        }
        let open: HashSet<PathBuf> = lock(&self.state.documents).values().map(|document| document.path.clone()).collect();
        let snapshot = workspace.snapshot();
        let mut known = Vec::new();
        let mut new_files = false;
        for path in paths {
            // Unsaved editor text wins over the file on disk.
            if open.contains(&path) || workspace.language_of(&path).is_none() {
                continue;
            }
            let Some(relative) = workspace.relative(&path) else { continue };
            if relative.split('/').any(|part| part == ".git" || part == ".periodic") {
                continue;
            }
            if snapshot.slot(&relative).is_some() {
                known.push((path, relative));
            } else if path.is_file() {
                new_files = true;
            }
        }
        if new_files || known.len() > MAX_FILES_UPDATED_ONE_BY_ONE {
            self.reindex(workspace).await;
            return;
        }
        if known.is_empty() {
            return;
        }
        let updating = workspace.clone();
        let affected = tokio::task::spawn_blocking(move || update_from_disk(&updating, known)).await.ok().flatten();
        if let Some(affected) = affected {
            self.after_change(&workspace, None, &affected).await;
        }
    }

    pub(super) async fn watch(&self, workspace: &Workspace) {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
        let root = workspace.root.clone();
        let started = tokio::task::spawn_blocking(move || super::watch::Watcher::start(&root, sender)).await;
        let started = started.unwrap_or_else(|error| Err(notify_debouncer_full::notify::Error::generic(&error.to_string())));
        match started {
            Ok(watcher) => lock(&self.state.watchers).push(watcher),
            Err(error) => {
                tracing::warn!("cannot watch {}: {error}; changes made outside the editor are seen at the next start", workspace.root.display());
                return;
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(paths) = receiver.recv().await {
                if this.state.shut_down.load(Ordering::SeqCst) {
                    break;
                }
                this.on_disk_changes(paths).await;
            }
        });
    }
}

/// Re-reads known files from disk into the engine; returns the slots whose pairs changed.
fn update_from_disk(workspace: &Workspace, files: Vec<(PathBuf, String)>) -> Option<HashSet<u32>> {
    let config = workspace.inspect(|engine| engine.config().clone())?;
    let mut updates = Vec::new();
    for (path, relative) in files {
        let Some(language) = workspace.language_of(&path) else { continue };
        match std::fs::read(&path) {
            Ok(bytes) if periodic_core::walk::classify(&relative, &bytes, config.max_file_bytes).is_ok() => {
                let hash = *blake3::hash(&bytes).as_bytes();
                let mut warnings = Vec::new();
                let text = periodic_core::scan::decode(bytes, &relative, &mut warnings);
                updates.push((relative, Some((language, text, hash))));
            }
            // Deleted, unreadable, or now binary/generated/too large: it leaves the index.
            _ => updates.push((relative, None)),
        }
    }
    let edge = workspace.edge();
    workspace.change(|engine| {
        let mut affected = HashSet::new();
        for (relative, update) in updates {
            match update {
                Some((language, text, hash)) => {
                    if engine.content_hash(&relative) == Some(hash) {
                        continue;
                    }
                    let (analysis, _) = parse_and_analyze(language, &text, None);
                    affected.extend(engine.apply_analysis(&relative, language, &text, analysis, None));
                    if let Some(record) = engine.record(&relative) {
                        edge.record_files(std::slice::from_ref(record), &[]);
                    }
                    if let Some(slot) = engine.slot(&relative) {
                        affected.insert(slot);
                    }
                }
                None => {
                    affected.extend(engine.remove(&relative));
                    edge.record_files(&[], std::slice::from_ref(&relative));
                }
            }
        }
        affected
    })
}
