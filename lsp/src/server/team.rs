//! The team edge server, as the language server uses it: (re)starting a workspace's sync
//! from `[edge]` and the editor's `edge` options, and looking open files up again (and
//! taking the team's pattern names) when new team answers arrive.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tower_lsp_server::ls_types::MessageType;

use super::backend::Backend;
use crate::answers::workspace::{Workspace, lock};
use crate::edge_sync::{EdgeSettings, EdgeSync};

impl Backend {
    /// (Re)starts the team sync of a workspace from `[edge]` and the editor's `edge` options.
    /// A bad setting is shown and sync stays off; nothing else depends on it.
    pub(super) async fn start_edge(&self, workspace: &Arc<Workspace>) {
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
            recording.inspect(|engine| {
                if let Some(families) = engine.families() {
                    edge.set_families(families);
                }
                edge.record_snapshot(engine.files());
            });
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
                    refreshing.change(|engine| {
                        engine.set_team_names(&edge);
                        paths.iter().for_each(|path| {
                            engine.refresh_team(path, &edge);
                        })
                    })
                })
                .await;
                this.refresh_all(&workspace).await;
            }
        });
    }
}
