//! `initialize`, `initialized` and `shutdown`: negotiation, settings, workspace folders,
//! file-watch registration and the start of each folder's indexing.

use std::sync::atomic::Ordering;

use serde_json::json;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::answers::workspace::{Workspace, lock};
use crate::server::backend::{Backend, write};
use crate::server::capabilities::{self, client_support, initial_folders};
use crate::server::position::Encoding;
use crate::server::settings::Settings;

pub async fn initialize(backend: &Backend, params: InitializeParams) -> Result<InitializeResult> {
    let offered = params.capabilities.general.as_ref().and_then(|general| general.position_encodings.as_deref());
    let encoding = Encoding::negotiate(offered);
    write(&backend.state.encoding, Some(encoding));
    let support = client_support(&params.capabilities);
    write(&backend.state.support, support);
    let (settings, problems) = Settings::from_json(params.initialization_options.as_ref());
    write(&backend.state.settings, settings);
    let mut workspaces = Vec::new();
    for folder in initial_folders(&params) {
        let root = folder.canonicalize().unwrap_or(folder);
        let (workspace, problem) = Workspace::new(root);
        if let Some(problem) = problem {
            let message = format!("Periodic: {problem} (the defaults are used)");
            backend.client.show_message(MessageType::ERROR, message).await;
        }
        workspaces.push(workspace);
    }
    write(&backend.state.workspaces, workspaces);
    for problem in problems {
        backend.client.show_message(MessageType::WARNING, format!("Periodic settings: {problem}")).await;
    }
    Ok(InitializeResult {
        server_info: Some(ServerInfo { name: "periodic".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
        capabilities: capabilities::server_capabilities(encoding, support),
        offset_encoding: None,
    })
}

pub async fn initialized(backend: &Backend, _: InitializedParams) {
    if backend.support().watched_files_registration {
        let extensions: Vec<&str> = periodic_core::Language::ALL.iter().flat_map(|language| language.extensions().iter().copied()).collect();
        let options = json!({"watchers": [
            {"globPattern": format!("**/*.{{{}}}", extensions.join(","))},
            {"globPattern": format!("**/{}", periodic_core::config::CONFIG_FILE_NAME)},
        ]});
        let registration = Registration { id: "periodic-watched-files".into(), method: "workspace/didChangeWatchedFiles".into(), register_options: Some(options) };
        if let Err(error) = backend.client.register_capability(vec![registration]).await {
            tracing::warn!("the client refused file watching: {error}");
        }
    }
    for workspace in backend.workspaces() {
        let this = backend.clone();
        tokio::spawn(async move { this.start_workspace(workspace).await });
    }
}

pub async fn shutdown(backend: &Backend) -> Result<()> {
    backend.state.shut_down.store(true, Ordering::SeqCst);
    lock(&backend.state.watchers).clear();
    Ok(())
}
