//! The language server's protocol handlers (tower-lsp-server's `LanguageServer`) and the
//! tasks they start: debounced analysis of edits, background (re-)indexing with
//! `$/progress`, file-change handling and diagnostics publishing.
//!
//! Concurrency rules (tower-lsp may run handlers concurrently and out of order): document
//! edits are applied synchronously, before any `.await`; analyses are stamped with the
//! document version and a stale one never replaces a newer one; requests read immutable
//! workspace snapshots and never wait for an analysis, except pull diagnostics, which
//! wait (bounded) for the analysis of the version they ask about.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use periodic_core::ScanProgress;
use periodic_core::pattern::PatternLabel;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use super::answers::{self, Addresses, Group, Text};
use super::document::{Document, parse_and_analyze};
use super::position::{Encoding, char_index};
use super::settings::Settings;
use super::workspace::{OpenText, Snapshot, Workspace, lock};
use crate::edge_sync::{EdgeSettings, EdgeSync};

/// How long a pull-diagnostics request waits for the analysis of the version it asks about.
const PULL_WAIT: Duration = Duration::from_secs(5);
/// More changed files than this at once (a branch switch) re-index the folder instead.
const MAX_FILES_UPDATED_ONE_BY_ONE: usize = 64;
/// Quiet time after the last change before patterns are clustered again.
const PATTERN_BUILD_DELAY: Duration = Duration::from_millis(250);
/// Most workspace symbols in one answer.
const MAX_SYMBOLS: usize = 500;

/// What the client said it supports, read once at `initialize`.
#[derive(Default, Clone, Copy, Debug)]
struct ClientSupport {
    pull_diagnostics: bool,
    diagnostic_refresh: bool,
    code_lens_refresh: bool,
    work_done_progress: bool,
    show_document: bool,
    watched_files_registration: bool,
}

#[derive(Default)]
struct State {
    encoding: RwLock<Option<Encoding>>,
    support: RwLock<ClientSupport>,
    settings: RwLock<Settings>,
    workspaces: RwLock<Vec<Arc<Workspace>>>,
    documents: Mutex<HashMap<Uri, Document>>,
    /// Edit generation per document, for debouncing.
    pending: Mutex<HashMap<Uri, u64>>,
    /// Documents whose edits could not be applied: requests on them fail until the client
    /// sends their whole text again.
    out_of_sync: Mutex<HashMap<Uri, String>>,
    watchers: Mutex<Vec<super::watch::Watcher>>,
    /// Set when a re-index is waiting for its turn, per workspace root.
    reindex_queued: Mutex<HashSet<PathBuf>>,
    progress_tokens: AtomicU64,
    /// Pattern-build generation per workspace root, for debouncing.
    pattern_builds: Mutex<HashMap<PathBuf, u64>>,
    shut_down: AtomicBool,
}

#[derive(Clone)]
pub struct Backend {
    client: Client,
    state: Arc<State>,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().map(|value| value.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
}

fn write<T>(lock: &RwLock<T>, value: T) {
    match lock.write() {
        Ok(mut guard) => *guard = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_params(message.into())
}

/// Everything a request about one open document needs, taken under the documents lock.
struct DocumentContext {
    workspace: Arc<Workspace>,
    snapshot: Arc<Snapshot>,
    slot: Option<u32>,
    rope: ropey::Rope,
    version: i32,
    language: Option<periodic_core::Language>,
    encoding: Encoding,
}

impl DocumentContext {
    fn text(&self) -> Text<'_> {
        Text { rope: &self.rope, encoding: self.encoding }
    }

    fn addresses(&self) -> Addresses<'_> {
        Addresses { root: &self.workspace.root }
    }

    fn groups(&self, shown: impl Fn(periodic_core::CloneKind) -> bool) -> Vec<Group> {
        self.slot.map(|slot| answers::groups(&self.snapshot, slot, shown)).unwrap_or_default()
    }

    /// 1-based line of a position, checked against the document.
    fn line_of(&self, position: Position) -> Result<u32> {
        char_index(&self.rope, position, self.encoding).map_err(invalid)?;
        Ok(position.line + 1)
    }
}

/// `periodic/similar` parameters.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SimilarParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
}

/// `periodic/patterns` parameters; `{}` and `[]` mean all patterns.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct PatternsParams {
    pub top: Option<usize>,
    pub query: Option<String>,
}

impl Backend {
    pub fn new(client: Client) -> Backend {
        Backend { client, state: Arc::new(State::default()) }
    }

    fn encoding(&self) -> Encoding {
        read(&self.state.encoding).unwrap_or(Encoding::Utf16)
    }

    fn support(&self) -> ClientSupport {
        read(&self.state.support)
    }

    fn settings(&self) -> Settings {
        read(&self.state.settings)
    }

    fn workspaces(&self) -> Vec<Arc<Workspace>> {
        read(&self.state.workspaces)
    }

    /// The workspace folder holding `path`: the deepest one, for nested folders.
    fn workspace_for(&self, path: &Path) -> Option<Arc<Workspace>> {
        self.workspaces().into_iter().filter(|workspace| path.starts_with(&workspace.root)).max_by_key(|workspace| workspace.root.as_os_str().len())
    }

    async fn warn(&self, message: String) {
        tracing::warn!("{message}");
        self.client.log_message(MessageType::WARNING, message).await;
    }

    fn context(&self, uri: &Uri) -> Result<DocumentContext> {
        if let Some(reason) = lock(&self.state.out_of_sync).get(uri) {
            return Err(Error {
                code: ErrorCode::ContentModified,
                message: format!("{} is out of sync ({reason}); send its whole text again", uri.as_str()).into(),
                data: None,
            });
        }
        let documents = lock(&self.state.documents);
        let document = documents.get(uri).ok_or_else(|| invalid(format!("document not open: {}", uri.as_str())))?;
        let workspace = self.workspace_for(&document.path).ok_or_else(|| invalid(format!("{} is outside every workspace folder", uri.as_str())))?;
        let relative = workspace.relative(&document.path).unwrap_or_default();
        let snapshot = workspace.snapshot();
        let slot = snapshot.slot(&relative);
        Ok(DocumentContext {
            slot,
            snapshot,
            workspace,
            rope: document.rope.clone(),
            version: document.version,
            language: document.language,
            encoding: self.encoding(),
        })
    }

    /// Re-analyses a document after `delay`, unless it changes again meanwhile.
    fn schedule_analysis(&self, uri: Uri, delay: Duration) {
        let generation = {
            let mut pending = lock(&self.state.pending);
            let generation = pending.entry(uri.clone()).or_insert(0);
            *generation += 1;
            *generation
        };
        let this = self.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if lock(&this.state.pending).get(&uri) != Some(&generation) {
                return;
            }
            this.analyse(uri).await;
        });
    }

    async fn analyse(&self, uri: Uri) {
        let job = {
            let documents = lock(&self.state.documents);
            let Some(document) = documents.get(&uri) else { return };
            let Some(language) = document.language else { return };
            let Some(workspace) = self.workspace_for(&document.path) else { return };
            let Some(relative) = workspace.relative(&document.path) else { return };
            (workspace, relative, language, document.version, document.rope.to_string(), document.tree.clone())
        };
        let (workspace, relative, language, version, text, tree) = job;
        let task_workspace = workspace.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let (analysis, tree) = parse_and_analyze(language, &text, tree.as_ref());
            let affected = task_workspace
                .change(|engine| {
                    if engine.has_version(&relative, version) {
                        return None;
                    }
                    let affected = engine.apply_analysis(&relative, language, &text, analysis, Some(version));
                    let edge = task_workspace.edge();
                    if let Some(record) = engine.record(&relative) {
                        edge.record_files(std::slice::from_ref(record), &[]);
                    }
                    engine.refresh_team(&relative, &edge);
                    Some(affected)
                })
                .flatten();
            (tree, affected)
        })
        .await;
        let Ok((tree, affected)) = outcome else {
            self.warn(format!("analysis of {} failed", uri.as_str())).await;
            return;
        };
        if let Some(document) = lock(&self.state.documents).get_mut(&uri)
            && document.version == version
        {
            document.tree = tree;
        }
        if let Some(affected) = affected {
            self.after_change(&workspace, Some(&uri), &affected).await;
        }
    }

    /// Clusters a workspace's pairs into patterns again once changes settle, off the edit
    /// path, and shows the result.
    fn schedule_pattern_build(&self, workspace: &Arc<Workspace>) {
        let generation = {
            let mut builds = lock(&self.state.pattern_builds);
            let generation = builds.entry(workspace.root.clone()).or_insert(0);
            *generation += 1;
            *generation
        };
        let this = self.clone();
        let workspace = workspace.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PATTERN_BUILD_DELAY).await;
            if lock(&this.state.pattern_builds).get(&workspace.root) != Some(&generation) {
                return;
            }
            let building = workspace.clone();
            let rebuilt = tokio::task::spawn_blocking(move || {
                building.change(|engine| {
                    let stale = !engine.patterns_current();
                    if stale {
                        engine.rebuild_patterns();
                    }
                    stale
                })
            })
            .await;
            if let Ok(Some(true)) = rebuilt {
                this.refresh_all(&workspace).await;
            }
        });
    }

    /// Tells the client about changed results: diagnostics of `uri` and of open documents
    /// in `affected` slots, and code lenses.
    async fn after_change(&self, workspace: &Arc<Workspace>, uri: Option<&Uri>, affected: &HashSet<u32>) {
        if workspace.inspect(|engine| engine.patterns_current()) == Some(false) {
            self.schedule_pattern_build(workspace);
        }
        let support = self.support();
        let snapshot = workspace.snapshot();
        let mut targets: Vec<Uri> = uri.into_iter().cloned().collect();
        {
            let documents = lock(&self.state.documents);
            for (other, document) in documents.iter() {
                if Some(other) == uri {
                    continue;
                }
                let slot = workspace.relative(&document.path).and_then(|relative| snapshot.slot(&relative));
                if slot.is_some_and(|slot| affected.contains(&slot)) {
                    targets.push(other.clone());
                }
            }
        }
        if support.pull_diagnostics {
            if support.diagnostic_refresh && !affected.is_empty() {
                let _ = self.client.workspace_diagnostic_refresh().await;
            }
        } else {
            for target in targets {
                self.publish(&target).await;
            }
        }
        if support.code_lens_refresh {
            let _ = self.client.code_lens_refresh().await;
        }
    }

    /// Pushes the diagnostics of an open document, if its analysis is current.
    async fn publish(&self, uri: &Uri) {
        let Ok(context) = self.context(uri) else { return };
        let Some(slot) = context.slot else { return };
        if context.snapshot.versions.get(&slot) != Some(&context.version) {
            return;
        }
        let diagnostics = self.diagnostics_of(&context);
        self.client.publish_diagnostics(uri.clone(), diagnostics, Some(context.version)).await;
    }

    fn diagnostics_of(&self, context: &DocumentContext) -> Vec<Diagnostic> {
        let settings = self.settings();
        let Some(severity) = settings.severity else { return Vec::new() };
        let groups = context.groups(|kind| settings.shows(kind));
        let Some(slot) = context.slot else { return Vec::new() };
        answers::diagnostics(&context.snapshot, slot, &groups, &context.text(), &context.addresses(), severity)
    }

    /// Publishes everything again for a workspace (after a re-index or settings change).
    async fn refresh_all(&self, workspace: &Arc<Workspace>) {
        let support = self.support();
        if support.pull_diagnostics {
            if support.diagnostic_refresh {
                let _ = self.client.workspace_diagnostic_refresh().await;
            }
        } else {
            for uri in self.open_uris(workspace) {
                self.publish(&uri).await;
            }
        }
        if support.code_lens_refresh {
            let _ = self.client.code_lens_refresh().await;
        }
    }

    fn open_uris(&self, workspace: &Workspace) -> Vec<Uri> {
        lock(&self.state.documents).iter().filter(|(_, document)| document.path.starts_with(&workspace.root)).map(|(uri, _)| uri.clone()).collect()
    }

    /// The open documents of a workspace, for re-applying unsaved text over a re-index.
    fn open_texts(state: &State, workspace: &Workspace) -> Vec<OpenText> {
        lock(&state.documents)
            .values()
            .filter_map(|document| {
                Some(OpenText {
                    path: workspace.relative(&document.path)?,
                    language: document.language?,
                    version: document.version,
                    text: document.rope.to_string(),
                })
            })
            .collect()
    }

    /// Loads a workspace: stored results first (answers at once), then a scan of what
    /// changed since, with progress.
    async fn start_workspace(&self, workspace: Arc<Workspace>) {
        let config = workspace.effective_config(&self.settings());
        let loading = workspace.clone();
        match tokio::task::spawn_blocking(move || loading.load_stored(config)).await {
            Ok(Ok(true)) => {
                for uri in self.open_uris(&workspace) {
                    self.schedule_analysis(uri, Duration::ZERO);
                }
            }
            Ok(Ok(false)) => {}
            Ok(Err(error)) => self.warn(format!("{}: the stored index could not be read: {error}", workspace.root.display())).await,
            Err(error) => self.warn(format!("{}: loading the stored index failed: {error}", workspace.root.display())).await,
        }
        self.reindex(workspace.clone()).await;
        // The team sync keeps its outbox in the index, which exists from here on.
        self.start_edge(&workspace).await;
    }

    /// (Re)starts the team sync of a workspace from `[edge]` and the editor's `edge` options.
    /// A bad setting is shown and sync stays off; nothing else depends on it.
    async fn start_edge(&self, workspace: &Arc<Workspace>) {
        let settings = self.settings();
        let edge_settings = match EdgeSettings::for_workspace(&workspace.root, &workspace.project_config(), settings.edge.as_ref()) {
            Ok(edge_settings) => edge_settings,
            Err(error) => {
                self.client.show_message(MessageType::ERROR, format!("Periodic team sync is off: {error}")).await;
                EdgeSettings::disabled()
            }
        };
        if !edge_settings.enabled() && !workspace.edge().enabled() {
            return;
        }
        // Team answers expire: open files are looked up again at that pace.
        let lookup_again = edge_settings.query_ttl.max(Duration::from_secs(1));
        let sync = EdgeSync::start(&workspace.root, edge_settings);
        let mut answers = sync.subscribe();
        let enabled = sync.enabled();
        workspace.set_edge(sync);
        // What the workspace holds now goes to the team; later changes follow as they come.
        let recording = workspace.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let edge = recording.edge();
            recording.inspect(|engine| edge.record_snapshot(engine.files()));
        })
        .await;
        if !enabled {
            return;
        }
        // New team answers: look the open files up again and show the result.
        let this = self.clone();
        let workspace = workspace.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = answers.changed() => if changed.is_err() { break },
                    () = tokio::time::sleep(lookup_again) => {}
                }
                if this.state.shut_down.load(Ordering::SeqCst) {
                    break;
                }
                let paths: Vec<String> = lock(&this.state.documents).values().filter_map(|document| workspace.relative(&document.path)).collect();
                let refreshing = workspace.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let edge = refreshing.edge();
                    refreshing.change(|engine| paths.iter().for_each(|path| {
                        engine.refresh_team(path, &edge);
                    }))
                })
                .await;
                this.refresh_all(&workspace).await;
            }
        });
    }

    /// Scans a workspace folder in the background and swaps the result in. Requests keep
    /// being answered from the previous snapshot meanwhile; calls made while one waits
    /// for its turn are merged into it.
    async fn reindex(&self, workspace: Arc<Workspace>) {
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
        let config = workspace.effective_config(&self.settings());
        let scanning = workspace.clone();
        let state = self.state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let report = move |event: ScanProgress| {
                let _ = sender.send(event);
            };
            let open = || Backend::open_texts(&state, &scanning);
            let outcome = scanning.reindex(config, &report, &open);
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

    async fn begin_progress(&self, workspace: &Workspace) -> Option<tower_lsp_server::OngoingProgress<tower_lsp_server::Bounded, tower_lsp_server::NotCancellable>> {
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
    pub async fn on_disk_changes(&self, paths: Vec<PathBuf>) {
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

    async fn on_workspace_disk_changes(&self, workspace: Arc<Workspace>, paths: Vec<PathBuf>) {
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

    fn answer_group(&self, uri: &Uri, position: Position) -> Result<(DocumentContext, Option<Group>)> {
        let context = self.context(uri)?;
        let line = context.line_of(position)?;
        let groups = context.groups(|_| true);
        let group = answers::group_at(&groups, line).cloned();
        Ok((context, group))
    }

    /// The text of a copy: from the editor when open, else from disk.
    fn copy_text(&self, root: &Path, snapshot: &Snapshot, instance: &periodic_core::Instance) -> Option<String> {
        let path = root.join(&snapshot.file(instance.file)?.path);
        let documents = lock(&self.state.documents);
        if let Some(document) = documents.values().find(|document| document.path == path) {
            let lines: Vec<String> = (instance.start_line..=instance.end_line)
                .filter(|&line| line as usize <= document.rope.len_lines())
                .map(|line| document.rope.line(line as usize - 1).to_string())
                .collect();
            return Some(lines.concat());
        }
        drop(documents);
        answers::read_lines(&path, instance.start_line, instance.end_line)
    }

    /// `periodic/similar`: the units similar to the one at a position.
    pub async fn similar(&self, params: SimilarParams) -> Result<answers::SimilarAnswer> {
        let (context, group) = self.answer_group(&params.text_document.uri, params.position)?;
        let line = params.position.line + 1;
        let team_unit = group.as_ref().map_or_else(|| context.slot.and_then(|slot| innermost_unit(&context.snapshot, slot, line)), |group| group.local.unit);
        let team = context.slot.zip(team_unit).and_then(|(slot, unit)| context.snapshot.team_of(slot, unit)).map_or(&[][..], |copies| copies.matches.as_slice());
        let mut answer = self.local_similar(&context, group, line);
        answer.similar.extend(team.iter().map(answers::team_entry));
        Ok(answer)
    }

    fn local_similar(&self, context: &DocumentContext, group: Option<Group>, line: u32) -> answers::SimilarAnswer {
        match group {
            Some(group) => {
                let unit = match group.local.unit {
                    Some(_) => context.snapshot.instance_name(&group.local).map(|name| answers::UnitEntry {
                        name: name.to_string(),
                        range: answers::whole_lines(group.local.start_line, group.local.end_line),
                    }),
                    None => Some(answers::UnitEntry { name: String::new(), range: answers::whole_lines(group.local.start_line, group.local.end_line) }),
                };
                answers::SimilarAnswer { unit, similar: answers::similar_entries(&context.snapshot, &group, &context.addresses()) }
            }
            None => answers::SimilarAnswer { unit: context.slot.and_then(|slot| answers::unit_at(&context.snapshot, slot, line)), similar: Vec::new() },
        }
    }

    /// `periodic/patterns`: the periodic table, largest first.
    pub async fn patterns(&self, params: PatternsParams) -> Result<Vec<answers::PatternEntry>> {
        let query = params.query.unwrap_or_default();
        let top = params.top.unwrap_or(usize::MAX);
        let mut entries = Vec::new();
        for workspace in self.workspaces() {
            let snapshot = workspace.snapshot();
            let addresses = Addresses { root: &workspace.root };
            for pattern in snapshot.patterns.iter().filter(|pattern| answers::pattern_matches(pattern, &query)) {
                entries.push(answers::pattern_entry(&snapshot, pattern, &addresses));
            }
        }
        entries.sort_by(|a, b| b.duplicated_lines.cmp(&a.duplicated_lines).then(b.member_count.cmp(&a.member_count)).then(a.id.cmp(&b.id)));
        entries.truncate(top);
        Ok(entries)
    }

    async fn name_pattern(&self, arguments: &[Value]) -> Result<Option<Value>> {
        let (Some(Value::String(id)), Some(Value::String(name))) = (arguments.first(), arguments.get(1)) else {
            return Err(invalid("periodic.namePattern expects [patternId, name]"));
        };
        let name = name.trim().to_string();
        if name.is_empty() || name.len() > 120 || name.contains('\n') {
            return Err(invalid("a pattern name must be one line of 1 to 120 characters"));
        }
        let workspace = self
            .workspaces()
            .into_iter()
            .find(|workspace| workspace.snapshot().patterns.iter().any(|pattern| &pattern.id == id))
            .ok_or_else(|| invalid(format!("no pattern {id} in this workspace")))?;
        let note = workspace.inspect(|engine| engine.label(id).and_then(|label| label.note.clone())).flatten();
        let label = PatternLabel { name: Some(name.clone()), note };
        let (saving, saved_id, saved_label) = (workspace.clone(), id.clone(), label.clone());
        let saved = tokio::task::spawn_blocking(move || {
            periodic_core::scan::save_label(&saving.root, &saved_id, &saved_label)?;
            saving.change(|engine| engine.set_label(&saved_id, saved_label));
            Ok::<(), periodic_core::scan::ScanError>(())
        })
        .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(Error { code: ErrorCode::InternalError, message: format!("could not store the name: {error}").into(), data: None }),
            Err(error) => return Err(Error { code: ErrorCode::InternalError, message: format!("could not store the name: {error}").into(), data: None }),
        }
        self.refresh_all(&workspace).await;
        Ok(Some(json!({"id": id, "name": name})))
    }

    fn position_arguments(arguments: &[Value], command: &str) -> Result<(Uri, Position)> {
        let uri = arguments.first().cloned().and_then(|value| serde_json::from_value::<Uri>(value).ok());
        let position = arguments.get(1).cloned().and_then(|value| serde_json::from_value::<Position>(value).ok());
        match (uri, position) {
            (Some(uri), Some(position)) => Ok((uri, position)),
            _ => Err(invalid(format!("{command} expects [uri, position]"))),
        }
    }

    async fn show_similar(&self, arguments: &[Value], go_to_best: bool) -> Result<Option<Value>> {
        let command = if go_to_best { answers::GO_TO_SIMILAR } else { answers::SHOW_SIMILAR };
        let (uri, position) = Self::position_arguments(arguments, command)?;
        let (context, group) = self.answer_group(&uri, position)?;
        let Some(group) = group else { return Ok(Some(json!([]))) };
        let addresses = context.addresses();
        let locations: Vec<Location> = group.copies.iter().filter_map(|copy| addresses.location(&context.snapshot, &copy.instance)).collect();
        let shown = if go_to_best { locations.first().cloned().into_iter().collect() } else { locations.clone() };
        if shown.len() == 1 && self.support().show_document {
            let target = &shown[0];
            let _ = self
                .client
                .show_document(ShowDocumentParams { uri: target.uri.clone(), external: Some(false), take_focus: Some(true), selection: Some(Range::new(target.range.start, target.range.start)) })
                .await;
        }
        Ok(Some(json!(shown)))
    }
}

/// Index of the innermost unit of file `slot` containing 1-based `line`.
fn innermost_unit(snapshot: &Snapshot, slot: u32, line: u32) -> Option<u32> {
    let file = snapshot.file(slot)?;
    file.units
        .iter()
        .enumerate()
        .filter(|(_, unit)| unit.start_line <= line && line <= unit.end_line)
        .min_by_key(|(_, unit)| unit.end_line - unit.start_line)
        .map(|(index, _)| index as u32)
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

fn client_support(capabilities: &ClientCapabilities) -> ClientSupport {
    let text = capabilities.text_document.as_ref();
    let workspace = capabilities.workspace.as_ref();
    let window = capabilities.window.as_ref();
    let diagnostic_refresh =
        workspace.and_then(|workspace| workspace.diagnostics.as_ref()).and_then(|diagnostics| diagnostics.refresh_support).unwrap_or(false);
    ClientSupport {
        // Results change in the background (other files, re-indexes): a client that pulls
        // but cannot be told to pull again would show stale diagnostics, so it gets pushes.
        pull_diagnostics: text.and_then(|text| text.diagnostic.as_ref()).is_some() && diagnostic_refresh,
        diagnostic_refresh,
        code_lens_refresh: workspace.and_then(|workspace| workspace.code_lens.as_ref()).and_then(|lens| lens.refresh_support).unwrap_or(false),
        work_done_progress: window.and_then(|window| window.work_done_progress).unwrap_or(false),
        show_document: window.and_then(|window| window.show_document.as_ref()).is_some_and(|show| show.support),
        watched_files_registration: workspace
            .and_then(|workspace| workspace.did_change_watched_files.as_ref())
            .and_then(|watched| watched.dynamic_registration)
            .unwrap_or(false),
    }
}

/// The workspace folders of an `initialize`: its folders, else its root.
#[allow(deprecated)]
fn initial_folders(params: &InitializeParams) -> Vec<PathBuf> {
    let mut uris: Vec<Uri> = params.workspace_folders.iter().flatten().map(|folder| folder.uri.clone()).collect();
    if uris.is_empty() {
        uris.extend(params.root_uri.clone());
    }
    let mut folders: Vec<PathBuf> = uris.iter().filter_map(|uri| uri.to_file_path().map(|path| path.into_owned())).collect();
    if folders.is_empty()
        && let Some(root) = &params.root_path
    {
        folders.push(PathBuf::from(root));
    }
    folders
}

/// The result id of a diagnostics report: equal diagnostics give equal ids.
fn result_id(diagnostics: &[Diagnostic]) -> String {
    let bytes = serde_json::to_vec(diagnostics).unwrap_or_default();
    blake3::hash(&bytes).to_hex()[..16].to_string()
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let offered = params.capabilities.general.as_ref().and_then(|general| general.position_encodings.as_deref());
        let encoding = Encoding::negotiate(offered);
        write(&self.state.encoding, Some(encoding));
        let support = client_support(&params.capabilities);
        write(&self.state.support, support);
        let (settings, problems) = Settings::from_json(params.initialization_options.as_ref());
        write(&self.state.settings, settings);
        let mut workspaces = Vec::new();
        for folder in initial_folders(&params) {
            let root = folder.canonicalize().unwrap_or(folder);
            let (workspace, problem) = Workspace::new(root);
            if let Some(problem) = problem {
                let message = format!("Periodic: {problem} (the defaults are used)");
                self.client.show_message(MessageType::ERROR, message).await;
            }
            workspaces.push(workspace);
        }
        write(&self.state.workspaces, workspaces);
        for problem in problems {
            self.client.show_message(MessageType::WARNING, format!("Periodic settings: {problem}")).await;
        }
        let diagnostic_provider = support.pull_diagnostics.then(|| {
            DiagnosticServerCapabilities::Options(DiagnosticOptions {
                identifier: Some(answers::SOURCE.to_string()),
                inter_file_dependencies: true,
                workspace_diagnostics: true,
                work_done_progress_options: WorkDoneProgressOptions::default(),
            })
        });
        Ok(InitializeResult {
            server_info: Some(ServerInfo { name: "periodic".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
            capabilities: ServerCapabilities {
                position_encoding: Some(encoding.kind()),
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..TextDocumentSyncOptions::default()
                })),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                code_lens_provider: Some(CodeLensOptions { resolve_provider: Some(true) }),
                code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                    code_action_kinds: Some(vec![CodeActionKind::QUICKFIX, CodeActionKind::EMPTY]),
                    resolve_provider: Some(true),
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                })),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![answers::NAME_PATTERN.into(), answers::SHOW_SIMILAR.into(), answers::GO_TO_SIMILAR.into()],
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                }),
                diagnostic_provider,
                workspace: Some(WorkspaceServerCapabilities {
                    workspace_folders: Some(WorkspaceFoldersServerCapabilities { supported: Some(true), change_notifications: Some(OneOf::Left(true)) }),
                    file_operations: None,
                }),
                ..ServerCapabilities::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        if self.support().watched_files_registration {
            let extensions: Vec<&str> = periodic_core::Language::ALL.iter().flat_map(|language| language.extensions().iter().copied()).collect();
            let options = json!({"watchers": [
                {"globPattern": format!("**/*.{{{}}}", extensions.join(","))},
                {"globPattern": format!("**/{}", periodic_core::config::CONFIG_FILE_NAME)},
            ]});
            let registration = Registration { id: "periodic-watched-files".into(), method: "workspace/didChangeWatchedFiles".into(), register_options: Some(options) };
            if let Err(error) = self.client.register_capability(vec![registration]).await {
                tracing::warn!("the client refused file watching: {error}");
            }
        }
        for workspace in self.workspaces() {
            let this = self.clone();
            let watched = workspace.clone();
            tokio::spawn(async move { this.start_workspace(workspace).await });
            // Watching a big tree takes a while; answers come first.
            let this = self.clone();
            tokio::spawn(async move { this.watch(&watched).await });
        }
    }

    async fn shutdown(&self) -> Result<()> {
        self.state.shut_down.store(true, Ordering::SeqCst);
        lock(&self.state.watchers).clear();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let document = params.text_document;
        let Some(path) = document.uri.to_file_path().map(|path| path.into_owned()) else { return };
        let path = path.canonicalize().unwrap_or(path);
        let language = self.workspace_for(&path).and_then(|workspace| workspace.language_of(&path));
        let uri = document.uri.clone();
        lock(&self.state.out_of_sync).remove(&uri);
        lock(&self.state.documents).insert(uri.clone(), Document::new(path, language, document.version, &document.text));
        self.schedule_analysis(uri, Duration::ZERO);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let version = params.text_document.version;
        let outcome = {
            let mut documents = lock(&self.state.documents);
            match documents.get_mut(&uri) {
                None => Err(format!("didChange for a document that is not open: {}", uri.as_str())),
                Some(document) if version <= document.version => {
                    Err(format!("ignored a stale change to {} (version {version}, have {})", uri.as_str(), document.version))
                }
                Some(document) => match document.apply(&params.content_changes, self.encoding()) {
                    Ok(()) => {
                        document.version = version;
                        Ok(())
                    }
                    Err(reason) => {
                        // The client's text and ours now differ: refuse to answer about the
                        // document until it sends the whole text again.
                        document.version = version;
                        let whole_text = params.content_changes.iter().rev().find(|change| change.range.is_none());
                        if whole_text.is_none() {
                            lock(&self.state.out_of_sync).insert(uri.clone(), reason.clone());
                        }
                        Err(format!("could not apply a change to {}: {reason}", uri.as_str()))
                    }
                },
            }
        };
        if params.content_changes.iter().any(|change| change.range.is_none()) {
            lock(&self.state.out_of_sync).remove(&uri);
        }
        match outcome {
            Ok(()) => self.schedule_analysis(uri, self.settings().debounce),
            Err(message) => {
                self.warn(message.clone()).await;
                self.client.show_message(MessageType::WARNING, format!("Periodic: {message}")).await;
            }
        }
    }

    async fn did_save(&self, _: DidSaveTextDocumentParams) {}

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        let removed = lock(&self.state.documents).remove(&uri);
        lock(&self.state.out_of_sync).remove(&uri);
        lock(&self.state.pending).remove(&uri);
        if !self.support().pull_diagnostics {
            self.client.publish_diagnostics(uri, Vec::new(), None).await;
        }
        // The file on disk is the truth again (unsaved edits were discarded or saved).
        if let Some(document) = removed
            && let Some(workspace) = self.workspace_for(&document.path)
        {
            self.on_workspace_disk_changes(workspace, vec![document.path]).await;
        }
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let (settings, problems) = Settings::from_json(Some(&params.settings));
        for problem in problems {
            self.client.show_message(MessageType::WARNING, format!("Periodic settings: {problem}")).await;
        }
        let previous = self.settings();
        write(&self.state.settings, settings.clone());
        for workspace in self.workspaces() {
            if previous.edge != settings.edge {
                self.start_edge(&workspace).await;
            }
            if previous.detection_differs(&settings) {
                let this = self.clone();
                tokio::spawn(async move { this.reindex(workspace).await });
            } else {
                self.refresh_all(&workspace).await;
            }
        }
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        let removed: Vec<PathBuf> = params.event.removed.iter().filter_map(|folder| folder.uri.to_file_path().map(|path| path.into_owned())).collect();
        let mut workspaces = self.workspaces();
        workspaces.retain(|workspace| !removed.iter().any(|root| root == &workspace.root || root.canonicalize().ok().as_ref() == Some(&workspace.root)));
        let mut added = Vec::new();
        for folder in &params.event.added {
            let Some(path) = folder.uri.to_file_path().map(|path| path.into_owned()) else { continue };
            let root = path.canonicalize().unwrap_or(path);
            if workspaces.iter().any(|workspace| workspace.root == root) {
                continue;
            }
            let (workspace, problem) = Workspace::new(root);
            if let Some(problem) = problem {
                self.client.show_message(MessageType::ERROR, format!("Periodic: {problem} (the defaults are used)")).await;
            }
            workspaces.push(workspace.clone());
            added.push(workspace);
        }
        write(&self.state.workspaces, workspaces);
        for workspace in added {
            self.watch(&workspace).await;
            let this = self.clone();
            tokio::spawn(async move { this.start_workspace(workspace).await });
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let paths: Vec<PathBuf> = params
            .changes
            .iter()
            .filter_map(|change| change.uri.to_file_path().map(|path| path.into_owned()))
            .map(|path| path.canonicalize().unwrap_or(path))
            .collect();
        self.on_disk_changes(paths).await;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let position = params.text_document_position_params;
        let (context, group) = self.answer_group(&position.text_document.uri, position.position)?;
        let Some(group) = group else {
            // Code with copies only in the team's other repositories.
            let team = context.slot.and_then(|slot| {
                let unit = innermost_unit(&context.snapshot, slot, position.position.line + 1)?;
                context.snapshot.team_of(slot, unit)
            });
            return Ok(team.map(|team| Hover {
                contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: format!("**Beyond this workspace**\n{}", answers::team_markdown(team)) }),
                range: None,
            }));
        };
        let closest = group.best().and_then(|best| self.copy_text(&context.workspace.root, &context.snapshot, &best.instance));
        let markdown = answers::hover_markdown(&context.snapshot, &group, &context.text(), &context.addresses(), closest);
        Ok(Some(Hover { contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: markdown }), range: None }))
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        let context = self.context(&params.text_document.uri)?;
        let groups = context.groups(|_| true);
        Ok(Some(answers::code_lenses(&groups, &params.text_document.uri)))
    }

    async fn code_lens_resolve(&self, mut lens: CodeLens) -> Result<CodeLens> {
        let data: answers::LensData =
            lens.data.clone().and_then(|data| serde_json::from_value(data).ok()).ok_or_else(|| invalid("this code lens was not made by periodic"))?;
        let context = self.context(&data.uri)?;
        let groups = context.groups(|_| true);
        let group = groups.iter().find(|group| group.local.unit.is_some() && group.local.start_line == data.line);
        lens.command = Some(match group {
            Some(group) => answers::lens_command(&context.snapshot, group, &data.uri, &context.addresses()),
            None => Command { title: "no similar code".into(), command: answers::SHOW_REFERENCES.into(), arguments: Some(vec![json!(data.uri), json!(lens.range.start), json!([])]) },
        });
        Ok(lens)
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let (context, group) = self.answer_group(&params.text_document.uri, params.range.start)?;
        let (Some(group), Some(language)) = (group, context.language) else { return Ok(Some(Vec::new())) };
        let ours: Vec<Diagnostic> = params.context.diagnostics.into_iter().filter(|diagnostic| diagnostic.source.as_deref() == Some(answers::SOURCE)).collect();
        Ok(Some(answers::code_actions(&context.snapshot, &group, &params.text_document.uri, language, &context.text(), &context.addresses(), ours)))
    }

    async fn code_action_resolve(&self, action: CodeAction) -> Result<CodeAction> {
        // Every action is complete when first sent.
        Ok(action)
    }

    async fn symbol(&self, params: WorkspaceSymbolParams) -> Result<Option<WorkspaceSymbolResponse>> {
        let mut symbols = Vec::new();
        for workspace in self.workspaces() {
            let snapshot = workspace.snapshot();
            let addresses = Addresses { root: &workspace.root };
            symbols.extend(answers::workspace_symbols(&snapshot, &params.query, &addresses, MAX_SYMBOLS - symbols.len()));
        }
        Ok(Some(WorkspaceSymbolResponse::Nested(symbols)))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        match params.command.as_str() {
            answers::NAME_PATTERN => self.name_pattern(&params.arguments).await,
            answers::SHOW_SIMILAR => self.show_similar(&params.arguments, false).await,
            answers::GO_TO_SIMILAR => self.show_similar(&params.arguments, true).await,
            other => Err(invalid(format!("unknown command {other}"))),
        }
    }

    async fn diagnostic(&self, params: DocumentDiagnosticParams) -> Result<DocumentDiagnosticReportResult> {
        let uri = params.text_document.uri;
        let mut context = self.context(&uri)?;
        // Wait (bounded) for the analysis of the version the client has.
        if context.language.is_some() {
            let mut published = context.workspace.published.subscribe();
            let deadline = tokio::time::Instant::now() + PULL_WAIT;
            loop {
                let current = context.slot.and_then(|slot| context.snapshot.versions.get(&slot)).copied();
                if current.is_some_and(|version| version >= context.version) {
                    break;
                }
                // Before the first index there is nothing to wait for: answer what is known.
                if context.workspace.inspect(|_| ()).is_none() {
                    break;
                }
                if tokio::time::timeout_at(deadline, published.changed()).await.is_err() {
                    break;
                }
                context = self.context(&uri)?;
            }
        }
        let diagnostics = if context.language.is_some() { self.diagnostics_of(&context) } else { Vec::new() };
        let id = result_id(&diagnostics);
        let report = if params.previous_result_id.as_deref() == Some(id.as_str()) {
            DocumentDiagnosticReport::Unchanged(RelatedUnchangedDocumentDiagnosticReport {
                related_documents: None,
                unchanged_document_diagnostic_report: UnchangedDocumentDiagnosticReport { result_id: id },
            })
        } else {
            DocumentDiagnosticReport::Full(RelatedFullDocumentDiagnosticReport {
                related_documents: None,
                full_document_diagnostic_report: FullDocumentDiagnosticReport { result_id: Some(id), items: diagnostics },
            })
        };
        Ok(DocumentDiagnosticReportResult::Report(report))
    }

    async fn workspace_diagnostic(&self, params: WorkspaceDiagnosticParams) -> Result<WorkspaceDiagnosticReportResult> {
        let previous: HashMap<Uri, String> = params.previous_result_ids.into_iter().map(|previous| (previous.uri, previous.value)).collect();
        let settings = self.settings();
        let mut items = Vec::new();
        let Some(severity) = settings.severity else {
            return Ok(WorkspaceDiagnosticReportResult::Report(WorkspaceDiagnosticReport { items }));
        };
        let open: HashSet<PathBuf> = lock(&self.state.documents).values().map(|document| document.path.clone()).collect();
        for workspace in self.workspaces() {
            let snapshot = workspace.snapshot();
            let addresses = Addresses { root: &workspace.root };
            let mut slots: Vec<u32> = snapshot.pairs_by_slot.keys().copied().collect();
            slots.sort_unstable();
            for slot in slots {
                let Some(file) = snapshot.file(slot) else { continue };
                let path = workspace.root.join(&file.path);
                // Open documents are reported by `textDocument/diagnostic`.
                if open.contains(&path) {
                    continue;
                }
                let Some(uri) = Uri::from_file_path(&path) else { continue };
                let groups = answers::groups(&snapshot, slot, |kind| settings.shows(kind));
                let rope = ropey::Rope::new();
                let text = Text { rope: &rope, encoding: self.encoding() };
                let diagnostics = answers::diagnostics(&snapshot, slot, &groups, &text, &addresses, severity);
                let id = result_id(&diagnostics);
                let report = if previous.get(&uri) == Some(&id) {
                    WorkspaceDocumentDiagnosticReport::Unchanged(WorkspaceUnchangedDocumentDiagnosticReport {
                        uri,
                        version: None,
                        unchanged_document_diagnostic_report: UnchangedDocumentDiagnosticReport { result_id: id },
                    })
                } else {
                    WorkspaceDocumentDiagnosticReport::Full(WorkspaceFullDocumentDiagnosticReport {
                        uri,
                        version: None,
                        full_document_diagnostic_report: FullDocumentDiagnosticReport { result_id: Some(id), items: diagnostics },
                    })
                };
                items.push(report);
            }
        }
        Ok(WorkspaceDiagnosticReportResult::Report(WorkspaceDiagnosticReport { items }))
    }
}

impl Backend {
    async fn watch(&self, workspace: &Workspace) {
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
