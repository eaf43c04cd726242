//! The language server's state and the `LanguageServer` implementation, which only
//! dispatches: each request and notification has its handler in `handlers/`; the work they
//! start lives in `scheduling` (analysis of edits, diagnostics publishing), `indexing`
//! (loading and re-indexing folders, disk changes) and `team` (edge sync).
//!
//! Concurrency rules (tower-lsp may run handlers concurrently and out of order): document
//! edits are applied synchronously, before any `.await`; analyses are stamped with the
//! document version and a stale one never replaces a newer one; requests read immutable
//! workspace snapshots and never wait for an analysis, except pull diagnostics, which
//! wait (bounded) for the analysis of the version they ask about.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use super::capabilities::ClientSupport;
use super::document::Document;
use super::handlers;
use super::position::{Encoding, char_index};
use super::settings::Settings;
use super::to_proto::{self, Addresses, Text};
use crate::answers::workspace::{OpenText, Snapshot, Workspace, lock};
use crate::answers::{self, Group};

#[derive(Default)]
pub(super) struct State {
    pub(super) encoding: RwLock<Option<Encoding>>,
    pub(super) support: RwLock<ClientSupport>,
    pub(super) settings: RwLock<Settings>,
    pub(super) workspaces: RwLock<Vec<Arc<Workspace>>>,
    pub(super) documents: Mutex<HashMap<Uri, Document>>,
    /// Edit generation per document, for debouncing.
    pub(super) pending: Mutex<HashMap<Uri, u64>>,
    /// Documents whose edits could not be applied: requests on them fail until the client
    /// sends their whole text again.
    pub(super) out_of_sync: Mutex<HashMap<Uri, String>>,
    pub(super) watchers: Mutex<Vec<super::watch::Watcher>>,
    /// Set when a re-index is waiting for its turn, per workspace root.
    pub(super) reindex_queued: Mutex<HashSet<PathBuf>>,
    pub(super) progress_tokens: AtomicU64,
    /// Pattern-build generation per workspace root, for debouncing.
    pub(super) pattern_builds: Mutex<HashMap<PathBuf, u64>>,
    pub(super) shut_down: AtomicBool,
}

#[derive(Clone)]
pub struct Backend {
    pub(super) client: Client,
    pub(super) state: Arc<State>,
}

pub(super) fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().map(|value| value.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
}

pub(super) fn write<T>(lock: &RwLock<T>, value: T) {
    match lock.write() {
        Ok(mut guard) => *guard = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_params(message.into())
}

/// Everything a request about one open document needs, taken under the documents lock.
pub(super) struct DocumentContext {
    pub(super) workspace: Arc<Workspace>,
    pub(super) snapshot: Arc<Snapshot>,
    pub(super) slot: Option<u32>,
    pub(super) rope: ropey::Rope,
    pub(super) version: i32,
    pub(super) language: Option<periodic_core::Language>,
    pub(super) encoding: Encoding,
}

impl DocumentContext {
    pub(super) fn text(&self) -> Text<'_> {
        Text { rope: &self.rope, encoding: self.encoding }
    }

    pub(super) fn addresses(&self) -> Addresses<'_> {
        Addresses { root: &self.workspace.root }
    }

    pub(super) fn groups(&self, shown: impl Fn(periodic_core::CloneKind) -> bool) -> Vec<Group> {
        self.slot.map(|slot| answers::groups(&self.snapshot, slot, shown)).unwrap_or_default()
    }

    /// 1-based line of a position, checked against the document.
    pub(super) fn line_of(&self, position: Position) -> Result<u32> {
        char_index(&self.rope, position, self.encoding).map_err(invalid)?;
        Ok(position.line + 1)
    }
}

impl Backend {
    pub fn new(client: Client) -> Backend {
        Backend { client, state: Arc::new(State::default()) }
    }

    pub(super) fn encoding(&self) -> Encoding {
        read(&self.state.encoding).unwrap_or(Encoding::Utf16)
    }

    pub(super) fn support(&self) -> ClientSupport {
        read(&self.state.support)
    }

    pub(super) fn settings(&self) -> Settings {
        read(&self.state.settings)
    }

    pub(super) fn workspaces(&self) -> Vec<Arc<Workspace>> {
        read(&self.state.workspaces)
    }

    /// The workspace folder holding `path`: the deepest one, for nested folders.
    pub(super) fn workspace_for(&self, path: &Path) -> Option<Arc<Workspace>> {
        self.workspaces().into_iter().filter(|workspace| path.starts_with(&workspace.root)).max_by_key(|workspace| workspace.root.as_os_str().len())
    }

    pub(super) async fn warn(&self, message: String) {
        tracing::warn!("{message}");
        self.client.log_message(MessageType::WARNING, message).await;
    }

    pub(super) fn context(&self, uri: &Uri) -> Result<DocumentContext> {
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

    pub(super) fn open_uris(&self, workspace: &Workspace) -> Vec<Uri> {
        lock(&self.state.documents).iter().filter(|(_, document)| document.path.starts_with(&workspace.root)).map(|(uri, _)| uri.clone()).collect()
    }

    /// The open documents of a workspace, for re-applying unsaved text over a re-index.
    pub(super) fn open_texts(state: &State, workspace: &Workspace) -> Vec<OpenText> {
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

    pub(super) fn answer_group(&self, uri: &Uri, position: Position) -> Result<(DocumentContext, Option<Group>)> {
        let context = self.context(uri)?;
        let line = context.line_of(position)?;
        let groups = context.groups(|_| true);
        let group = answers::group_at(&groups, line).cloned();
        Ok((context, group))
    }

    /// The text of a copy: from the editor when open, else from disk.
    pub(super) fn copy_text(&self, root: &Path, snapshot: &Snapshot, instance: &periodic_core::Instance) -> Option<String> {
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
        answers::text::read_lines(&path, instance.start_line, instance.end_line)
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        handlers::lifecycle::initialize(self, params).await
    }

    async fn initialized(&self, params: InitializedParams) {
        handlers::lifecycle::initialized(self, params).await
    }

    async fn shutdown(&self) -> Result<()> {
        handlers::lifecycle::shutdown(self).await
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        handlers::text_document::did_open(self, params).await
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        handlers::text_document::did_change(self, params).await
    }

    async fn did_save(&self, _: DidSaveTextDocumentParams) {}

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        handlers::text_document::did_close(self, params).await
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        handlers::workspace::did_change_configuration(self, params).await
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        handlers::workspace::did_change_workspace_folders(self, params).await
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        handlers::workspace::did_change_watched_files(self, params).await
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        handlers::hover::hover(self, params).await
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        handlers::code_lens::code_lens(self, params).await
    }

    async fn code_lens_resolve(&self, lens: CodeLens) -> Result<CodeLens> {
        handlers::code_lens::code_lens_resolve(self, lens).await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        handlers::code_action::code_action(self, params).await
    }

    async fn code_action_resolve(&self, action: CodeAction) -> Result<CodeAction> {
        // Every action is complete when first sent.
        Ok(action)
    }

    async fn symbol(&self, params: WorkspaceSymbolParams) -> Result<Option<WorkspaceSymbolResponse>> {
        handlers::symbol::symbol(self, params).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        handlers::execute_command::execute_command(self, params).await
    }

    async fn diagnostic(&self, params: DocumentDiagnosticParams) -> Result<DocumentDiagnosticReportResult> {
        handlers::diagnostic::diagnostic(self, params).await
    }

    async fn workspace_diagnostic(&self, params: WorkspaceDiagnosticParams) -> Result<WorkspaceDiagnosticReportResult> {
        handlers::diagnostic::workspace_diagnostic(self, params).await
    }
}

/// The custom requests (`periodic/*`), registered with the service in `server::run`.
impl Backend {
    pub async fn similar(&self, params: handlers::similar::SimilarParams) -> Result<to_proto::SimilarAnswer> {
        handlers::similar::similar(self, params).await
    }

    pub async fn patterns(&self, params: handlers::patterns::PatternsParams) -> Result<Vec<to_proto::PatternEntry>> {
        handlers::patterns::patterns(self, params).await
    }
}
