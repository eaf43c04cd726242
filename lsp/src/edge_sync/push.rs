//! `periodic scan --edge URL`: after a scan, push every unit of the repository to the edge
//! through the same outbox the language server uses, with a progress bar on standard error,
//! and wait until the edge has acknowledged everything (or stops answering).

use std::path::Path;
use std::time::Duration;

use periodic_core::{FileRecord, Pattern};

use super::convert::Families;
use super::{EdgeSettings, EdgeStatus, EdgeSync};

/// What a push sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    pub repo: String,
    /// Unit changes acknowledged by the edge (upserts of every unit, removals of units that
    /// existed at the last push and no longer do, and anything left from earlier runs).
    pub units_sent: u64,
    pub batches_sent: u64,
    /// Units that exist now.
    pub units_now: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("edge sync is off (share level `off` or no URL)")]
    Disabled,
    #[error("the edge refused the token: {0}")]
    Unauthorized(String),
    #[error("the edge did not acknowledge anything for {stalled_seconds} s ({reason}); {pending} unit changes stay queued in .periodic/index.db and are sent by the next push or the language server")]
    Stalled { stalled_seconds: u64, reason: String, pending: u64 },
}

/// Pushes every unit in `files` (the complete file list of the repository at `root`), each
/// with its near-miss family from `patterns` (the scan's, built over `files`). `stall`
/// bounds how long the edge may acknowledge nothing.
pub fn push_repository(
    root: &Path,
    settings: EdgeSettings,
    files: &[FileRecord],
    patterns: &[Pattern],
    stall: Duration,
    show_progress: bool,
) -> Result<PushReport, PushError> {
    if !settings.enabled() {
        return Err(PushError::Disabled);
    }
    let repo = settings.repo.clone();
    let sync = EdgeSync::start(root, settings);
    sync.set_families(Families::of_patterns(files, patterns));
    sync.push_all(files);
    let bar = indicatif::ProgressBar::hidden();
    if show_progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} pushing to the edge [{bar:30}] {pos}/{len} units {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
    }
    let progress = |status: &EdgeStatus| {
        // Entries left from an earlier run count too: they are sent first.
        bar.set_length(status.units_sent + status.pending_units);
        bar.set_position(status.units_sent);
        let note = if status.connected { String::new() } else { status.last_error.clone().map(|e| format!("(retrying: {e})")).unwrap_or_default() };
        bar.set_message(note);
    };
    let result = sync.wait_drained(stall, progress);
    bar.finish_and_clear();
    sync.shutdown(Duration::from_secs(2));
    match result {
        Ok(status) => Ok(PushReport {
            repo,
            units_sent: status.units_sent,
            batches_sent: status.batches_sent,
            units_now: files.iter().map(|file| file.units.len() as u64).sum(),
        }),
        Err(status) if status.halted => Err(PushError::Unauthorized(status.last_error.unwrap_or_default())),
        Err(status) => Err(PushError::Stalled {
            stalled_seconds: stall.as_secs(),
            reason: status.last_error.unwrap_or_else(|| "no answer".to_string()),
            pending: status.pending_units,
        }),
    }
}
