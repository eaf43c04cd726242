//! Document synchronisation: `didOpen`, `didChange` and `didClose`. Edits are applied to
//! the document synchronously, before the first `.await` (tower-lsp may run handlers
//! concurrently); analysis is scheduled, never awaited here.

use std::time::Duration;

use tower_lsp_server::ls_types::*;

use crate::answers::workspace::lock;
use crate::server::backend::Backend;
use crate::server::document::Document;
use crate::server::indexing::FolderFor;

pub async fn did_open(backend: &Backend, params: DidOpenTextDocumentParams) {
    let document = params.text_document;
    let Some(path) = document.uri.to_file_path().map(|path| path.into_owned()) else { return };
    let path = path.canonicalize().unwrap_or(path);
    // A file outside every workspace folder gets its folder indexed (registered here, before
    // any `.await`, so the analysis scheduled below finds it).
    let found = backend.workspace_or_new(&path);
    let language = found.as_ref().and_then(|folder| folder.workspace().language_of(&path));
    let uri = document.uri.clone();
    lock(&backend.state.out_of_sync).remove(&uri);
    lock(&backend.state.documents).insert(uri.clone(), Document::new(path.clone(), language, document.version, &document.text));
    backend.schedule_analysis(uri, Duration::ZERO);
    if let Some(FolderFor::New(workspace, problem)) = found {
        let this = backend.clone();
        tokio::spawn(async move { this.adopt_folder(path, workspace, problem).await });
    }
}

pub async fn did_change(backend: &Backend, params: DidChangeTextDocumentParams) {
    let uri = params.text_document.uri;
    let version = params.text_document.version;
    let outcome = {
        let mut documents = lock(&backend.state.documents);
        match documents.get_mut(&uri) {
            None => Err(format!("didChange for a document that is not open: {}", uri.as_str())),
            Some(document) if version <= document.version => {
                Err(format!("ignored a stale change to {} (version {version}, have {})", uri.as_str(), document.version))
            }
            Some(document) => match document.apply(&params.content_changes, backend.encoding()) {
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
                        lock(&backend.state.out_of_sync).insert(uri.clone(), reason.clone());
                    }
                    Err(format!("could not apply a change to {}: {reason}", uri.as_str()))
                }
            },
        }
    };
    if params.content_changes.iter().any(|change| change.range.is_none()) {
        lock(&backend.state.out_of_sync).remove(&uri);
    }
    match outcome {
        Ok(()) => backend.schedule_analysis(uri, backend.settings().debounce),
        Err(message) => {
            backend.warn(message.clone()).await;
            backend.client.show_message(MessageType::WARNING, format!("Periodic: {message}")).await;
        }
    }
}

pub async fn did_close(backend: &Backend, params: DidCloseTextDocumentParams) {
    let uri = params.text_document.uri;
    let removed = lock(&backend.state.documents).remove(&uri);
    lock(&backend.state.out_of_sync).remove(&uri);
    lock(&backend.state.pending).remove(&uri);
    if !backend.support().pull_diagnostics {
        backend.client.publish_diagnostics(uri, Vec::new(), None).await;
    }
    // The file on disk is the truth again (unsaved edits were discarded or saved).
    if let Some(document) = removed
        && let Some(workspace) = backend.workspace_for(&document.path)
    {
        backend.on_workspace_disk_changes(workspace, vec![document.path]).await;
    }
}
