//! Watching a workspace folder for changes made outside the editor (git checkout, codegen,
//! another tool) with notify and its debouncer: a burst of events arrives as one batch of
//! paths. The index's own writes (`.periodic/`) and `.git/` internals are left out here,
//! before they reach the server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc::UnboundedSender;

/// Quiet time after the last event before a batch is delivered.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches one folder until dropped.
pub struct Watcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl Watcher {
    pub fn start(root: &Path, sender: UnboundedSender<Vec<PathBuf>>) -> notify_debouncer_full::notify::Result<Watcher> {
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| match result {
            Ok(events) => {
                let mut paths: Vec<PathBuf> = events
                    .into_iter()
                    .filter(|event| !matches!(event.event.kind, EventKind::Access(_)))
                    .flat_map(|event| event.event.paths.clone())
                    .filter(|path| !path.components().any(|part| part.as_os_str() == ".git" || part.as_os_str() == ".periodic"))
                    .collect();
                paths.sort();
                paths.dedup();
                if !paths.is_empty() {
                    let _ = sender.send(paths);
                }
            }
            Err(errors) => {
                for error in errors {
                    tracing::warn!("file watcher: {error}");
                }
            }
        })?;
        debouncer.watch(root, RecursiveMode::Recursive)?;
        Ok(Watcher { _debouncer: debouncer })
    }
}
