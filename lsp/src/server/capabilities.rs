//! What the client supports (read once at `initialize`) and what the server offers in
//! return.

use std::path::PathBuf;

use tower_lsp_server::ls_types::*;

use super::position::Encoding;
use super::to_proto;

/// What the client said it supports, read once at `initialize`.
#[derive(Default, Clone, Copy, Debug)]
pub struct ClientSupport {
    pub pull_diagnostics: bool,
    pub diagnostic_refresh: bool,
    pub code_lens_refresh: bool,
    pub work_done_progress: bool,
    pub show_document: bool,
    pub watched_files_registration: bool,
}

/// Reads the client capabilities the server acts on.
pub fn client_support(capabilities: &ClientCapabilities) -> ClientSupport {
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
pub fn initial_folders(params: &InitializeParams) -> Vec<PathBuf> {
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

/// The server's capabilities for a client with `support`, answering in `encoding`.
pub fn server_capabilities(encoding: Encoding, support: ClientSupport) -> ServerCapabilities {
    let diagnostic_provider = support.pull_diagnostics.then(|| {
        DiagnosticServerCapabilities::Options(DiagnosticOptions {
            identifier: Some(to_proto::SOURCE.to_string()),
            inter_file_dependencies: true,
            workspace_diagnostics: true,
            work_done_progress_options: WorkDoneProgressOptions::default(),
        })
    });
    ServerCapabilities {
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
            commands: vec![to_proto::NAME_PATTERN.into(), to_proto::SHOW_SIMILAR.into(), to_proto::GO_TO_SIMILAR.into()],
            work_done_progress_options: WorkDoneProgressOptions::default(),
        }),
        diagnostic_provider,
        workspace: Some(WorkspaceServerCapabilities {
            workspace_folders: Some(WorkspaceFoldersServerCapabilities { supported: Some(true), change_notifications: Some(OneOf::Left(true)) }),
            file_operations: None,
        }),
        ..ServerCapabilities::default()
    }
}
