//! The work an edit or a disk change starts, off the request path: debounced analysis of a
//! document on a blocking thread, the debounced re-clustering of patterns, and telling the
//! client about changed results (pushed diagnostics, or a refresh request to pull them,
//! and code lens refreshes).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tower_lsp_server::ls_types::{Diagnostic, Uri};

use super::backend::{Backend, DocumentContext};
use super::document::parse_and_analyze;
use super::to_proto;
use crate::answers::workspace::{Workspace, lock};

/// Quiet time after the last change before patterns are clustered again.
const PATTERN_BUILD_DELAY: Duration = Duration::from_millis(250);

impl Backend {
    /// Re-analyses a document after `delay`, unless it changes again meanwhile.
    pub(super) fn schedule_analysis(&self, uri: Uri, delay: Duration) {
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

    pub(super) async fn analyse(&self, uri: Uri) {
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
    pub(super) fn schedule_pattern_build(&self, workspace: &Arc<Workspace>) {
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
    pub(super) async fn after_change(&self, workspace: &Arc<Workspace>, uri: Option<&Uri>, affected: &HashSet<u32>) {
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
    pub(super) async fn publish(&self, uri: &Uri) {
        let Ok(context) = self.context(uri) else { return };
        let Some(slot) = context.slot else { return };
        if context.snapshot.versions.get(&slot) != Some(&context.version) {
            return;
        }
        let diagnostics = self.diagnostics_of(&context);
        self.client.publish_diagnostics(uri.clone(), diagnostics, Some(context.version)).await;
    }

    pub(super) fn diagnostics_of(&self, context: &DocumentContext) -> Vec<Diagnostic> {
        let settings = self.settings();
        let Some(severity) = settings.severity else { return Vec::new() };
        let groups = context.groups(|kind| settings.shows(kind));
        let Some(slot) = context.slot else { return Vec::new() };
        to_proto::diagnostics(&context.snapshot, slot, &groups, &context.text(), &context.addresses(), severity)
    }

    /// Publishes everything again for a workspace (after a re-index or settings change).
    pub(super) async fn refresh_all(&self, workspace: &Arc<Workspace>) {
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
}
