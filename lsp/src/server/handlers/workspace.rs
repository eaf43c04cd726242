//! Workspace notifications: settings changed, folders added or removed, watched files
//! changed on disk.

use std::path::PathBuf;

use tower_lsp_server::ls_types::*;

use crate::answers::workspace::Workspace;
use crate::server::backend::{Backend, write};
use crate::server::settings::Settings;

pub async fn did_change_configuration(backend: &Backend, params: DidChangeConfigurationParams) {
    let (settings, problems) = Settings::from_json(Some(&params.settings));
    for problem in problems {
        backend.client.show_message(MessageType::WARNING, format!("Periodic settings: {problem}")).await;
    }
    let previous = backend.settings();
    write(&backend.state.settings, settings.clone());
    for workspace in backend.workspaces() {
        if previous.edge != settings.edge {
            backend.start_edge(&workspace).await;
        }
        if previous.detection_differs(&settings) {
            let this = backend.clone();
            tokio::spawn(async move { this.reindex(workspace).await });
        } else {
            backend.refresh_all(&workspace).await;
        }
    }
}

pub async fn did_change_workspace_folders(backend: &Backend, params: DidChangeWorkspaceFoldersParams) {
    let removed: Vec<PathBuf> = params.event.removed.iter().filter_map(|folder| folder.uri.to_file_path().map(|path| path.into_owned())).collect();
    let mut workspaces = backend.workspaces();
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
            backend.client.show_message(MessageType::ERROR, format!("Periodic: {problem} (the defaults are used)")).await;
        }
        workspaces.push(workspace.clone());
        added.push(workspace);
    }
    write(&backend.state.workspaces, workspaces);
    for workspace in added {
        let this = backend.clone();
        tokio::spawn(async move { this.start_workspace(workspace).await });
    }
}

pub async fn did_change_watched_files(backend: &Backend, params: DidChangeWatchedFilesParams) {
    let paths: Vec<PathBuf> = params
        .changes
        .iter()
        .filter_map(|change| change.uri.to_file_path().map(|path| path.into_owned()))
        .map(|path| path.canonicalize().unwrap_or(path))
        .collect();
    backend.on_disk_changes(paths).await;
}
