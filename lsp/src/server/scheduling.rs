//! The work an edit or a disk change starts, off the request path: debounced analysis of a
//! document on a blocking thread, the debounced re-clustering of patterns, and telling the
//! client about changed results (pushed diagnostics, or a refresh request to pull them,
//! and code lens refreshes).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_lsp_server::ls_types::{Diagnostic, Uri};

use super::backend::{Backend, DocumentContext};
use super::document::parse_and_analyze;
use super::to_proto;
use crate::answers::workspace::{Workspace, lock};

/// Loads into the engine's token cache the files an edit of `path` would verify against,
/// in the background: the engine is held only to find them, not while they are parsed.
fn warm_tokens(workspace: Arc<Workspace>, path: String) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let Some(warmup) = workspace.probe(|engine, _| engine.token_warmup(&path)).flatten() else { return };
        let found = started.elapsed();
        let files = warmup.len();
        let parsed = warmup.run();
        tracing::debug!(path, files, parsed, found_ms = found.as_millis() as u64, elapsed_ms = started.elapsed().as_millis() as u64, "token cache warmed");
    });
}

/// When each step of one analysis ended, for the debug log.
struct Times {
    blocking_start: Instant,
    parsed: Option<Instant>,
    locked: Option<Instant>,
    applied: Option<Instant>,
    changed: Option<Instant>,
    published: Option<Instant>,
}

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
        let scheduled = Instant::now();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if lock(&this.state.pending).get(&uri) != Some(&generation) {
                return;
            }
            this.analyse_timed(uri, scheduled).await;
        });
    }

    pub(super) async fn analyse(&self, uri: Uri) {
        self.analyse_timed(uri, Instant::now()).await
    }

    /// `scheduled`: when the change asked for this analysis (the debug log's queue time).
    async fn analyse_timed(&self, uri: Uri, scheduled: Instant) {
        let started = Instant::now();
        let job = {
            let documents = lock(&self.state.documents);
            let Some(document) = documents.get(&uri) else { return };
            let Some(language) = document.language else { return };
            let Some(workspace) = self.workspace_for(&document.path) else { return };
            let Some(relative) = workspace.relative(&document.path) else { return };
            (workspace, relative, language, document.version, document.rope.to_string(), document.tree.clone())
        };
        let (workspace, relative, language, version, text, tree) = job;
        // A document's first analysis (after opening it, or after its whole text was
        // replaced) is followed by loading what its edits will read.
        let first = tree.is_none();
        let warm_path = relative.clone();
        let task_workspace = workspace.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut times = Times { blocking_start: Instant::now(), parsed: None, locked: None, applied: None, changed: None, published: None };
            let (analysis, new_tree) = parse_and_analyze(language, &text, tree.as_ref());
            times.parsed = Some(Instant::now());
            let affected = task_workspace
                .change(|engine| {
                    times.locked = Some(Instant::now());
                    if engine.has_version(&relative, version) {
                        return None;
                    }
                    let affected = engine.apply_analysis(&relative, language, &text, analysis, Some(version));
                    times.applied = Some(Instant::now());
                    let edge = task_workspace.edge();
                    if let Some(record) = engine.record(&relative) {
                        edge.record_files(std::slice::from_ref(record), &[]);
                    }
                    engine.refresh_team(&relative, &edge);
                    times.changed = Some(Instant::now());
                    Some(affected)
                })
                .flatten();
            times.published = Some(Instant::now());
            // The previous tree goes back too, to be freed after the diagnostics are out:
            // freeing the nodes the new parse did not reuse is not on the way to them.
            (new_tree, tree, affected, times)
        })
        .await;
        let Ok((tree, old_tree, affected, times)) = outcome else {
            self.warn(format!("analysis of {} failed", uri.as_str())).await;
            return;
        };
        // Not after every edit of a file that does not parse (it never has a tree).
        let first = first && tree.is_some();
        if let Some(document) = lock(&self.state.documents).get_mut(&uri)
            && document.version == version
        {
            document.tree = tree;
        }
        let returned = Instant::now();
        let affected_files = affected.as_ref().map_or(0, HashSet::len);
        if let Some(affected) = affected {
            self.after_change(&workspace, Some(&uri), &affected).await;
        }
        drop(old_tree);
        if first {
            warm_tokens(workspace.clone(), warm_path);
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let done = Instant::now();
            let ms = |from: Instant, to: Option<Instant>| to.map_or(-1.0, |to| to.duration_since(from).as_secs_f64() * 1000.0);
            tracing::debug!(
                uri = uri.as_str(),
                version,
                queued_ms = ms(scheduled, Some(started)),
                to_blocking_ms = ms(started, Some(times.blocking_start)),
                parse_ms = ms(times.blocking_start, times.parsed),
                lock_wait_ms = times.parsed.map_or(-1.0, |parsed| ms(parsed, times.locked)),
                apply_ms = times.locked.map_or(-1.0, |locked| ms(locked, times.applied)),
                team_ms = times.applied.map_or(-1.0, |applied| ms(applied, times.changed)),
                snapshot_ms = times.changed.map_or(-1.0, |changed| ms(changed, times.published)),
                back_ms = times.published.map_or(-1.0, |published| ms(published, Some(returned))),
                after_change_ms = ms(returned, Some(done)),
                total_ms = ms(scheduled, Some(done)),
                affected_files,
                "analysed an edit"
            );
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
