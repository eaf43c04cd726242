//! Pull diagnostics: `textDocument/diagnostic` (waits, bounded, for the analysis of the
//! version the client has) and `workspace/diagnostic` (files not open), with result ids
//! so unchanged reports are not sent again.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::answers::{self, workspace::lock};
use crate::server::backend::Backend;
use crate::server::to_proto::{self, Addresses, Text};

/// How long a pull-diagnostics request waits for the analysis of the version it asks about.
const PULL_WAIT: Duration = Duration::from_secs(5);

pub async fn diagnostic(backend: &Backend, params: DocumentDiagnosticParams) -> Result<DocumentDiagnosticReportResult> {
    let uri = params.text_document.uri;
    let mut context = backend.context(&uri)?;
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
            context = backend.context(&uri)?;
        }
    }
    let diagnostics = if context.language.is_some() { backend.diagnostics_of(&context) } else { Vec::new() };
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

pub async fn workspace_diagnostic(backend: &Backend, params: WorkspaceDiagnosticParams) -> Result<WorkspaceDiagnosticReportResult> {
    let previous: HashMap<Uri, String> = params.previous_result_ids.into_iter().map(|previous| (previous.uri, previous.value)).collect();
    let settings = backend.settings();
    let mut items = Vec::new();
    let Some(severity) = settings.severity else {
        return Ok(WorkspaceDiagnosticReportResult::Report(WorkspaceDiagnosticReport { items }));
    };
    let open: HashSet<PathBuf> = lock(&backend.state.documents).values().map(|document| document.path.clone()).collect();
    for workspace in backend.workspaces() {
        let snapshot = workspace.snapshot();
        let addresses = Addresses { root: &workspace.root };
        for slot in snapshot.pairs_by_slot.slots() {
            let Some(file) = snapshot.file(slot) else { continue };
            let path = workspace.root.join(&file.path);
            // Open documents are reported by `textDocument/diagnostic`.
            if open.contains(&path) {
                continue;
            }
            let Some(uri) = Uri::from_file_path(&path) else { continue };
            let groups = answers::groups(&snapshot, slot, |kind| settings.shows(kind));
            let rope = ropey::Rope::new();
            let text = Text { rope: &rope, encoding: backend.encoding() };
            let diagnostics = to_proto::diagnostics(&snapshot, slot, &groups, &text, &addresses, severity);
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

/// The result id of a diagnostics report: equal diagnostics give equal ids.
fn result_id(diagnostics: &[Diagnostic]) -> String {
    let bytes = serde_json::to_vec(diagnostics).unwrap_or_default();
    blake3::hash(&bytes).to_hex()[..16].to_string()
}
