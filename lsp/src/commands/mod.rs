//! The commands behind `periodic scan`, `similar`, `patterns`, `trend`, `completions` and `man`, and what they share:
//! loading the configuration, applying command-line overrides, and running a scan with a
//! progress bar on standard error when it is a terminal.

pub mod manual;
pub mod patterns;
pub mod scan;
pub mod similar;
pub mod trend;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use periodic_core::pattern::PatternLabel;
use periodic_core::{Config, ScanOptions, ScanOutcome, ScanProgress};

use crate::cli::DetectionArgs;
use crate::edge_sync::EdgeSettings;
use crate::edge_sync::analyses::EdgeTeamCache;

/// The configuration for `root`: `--config FILE` or `<root>/.periodic.toml`, then the
/// command-line overrides.
pub fn load_config(root: &Path, args: &DetectionArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::load_from_root(&periodic_core::walk::scan_folder(root))?,
    };
    // The `[edge]` table is read by the edge client, not by the core's loader: checked here,
    // so that a mistake in it stops every command as one anywhere else in the file does.
    crate::edge_sync::settings::EdgeOptions::check_config(&config)?;
    config.override_thresholds(args.min_lines, args.min_tokens, args.similarity);
    config.no_ignore |= args.no_ignore;
    Ok(config)
}

/// Writes to standard output; a closed pipe (`periodic scan | head`) is not an error.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout_result(stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()))
}

/// The result of writing to standard output: a reader that stopped early (`| head`) is
/// not an error.
pub fn stdout_result(result: std::io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(error).context("cannot write to standard output")),
        _ => Ok(()),
    }
}

/// Runs a scan on a thread pool of `--jobs` threads, with a progress bar unless quiet.
pub fn run_scan(root: &Path, config: Config, args: &DetectionArgs, quiet: bool) -> anyhow::Result<ScanOutcome> {
    run_scan_then(root, config, args, None, quiet, |_| ()).map(|(outcome, ())| outcome)
}

/// The team analysis cache of the edge `edge` names (else `[edge]` of the configuration),
/// when sync is on and `--no-team-cache` was not given. A configuration error here is left
/// to the commands that need the edge to report.
fn team_cache_for(root: &Path, config: &Config, args: &DetectionArgs, edge: Option<&EdgeSettings>) -> Option<EdgeTeamCache> {
    if args.no_team_cache {
        return None;
    }
    let folder = if root.is_file() { return None } else { root };
    match edge {
        Some(settings) => EdgeTeamCache::for_settings(settings),
        None => EdgeTeamCache::for_settings(&EdgeSettings::from_config(config, folder).ok()?),
    }
}

/// One line on what the team cache did, and the wait for the uploads to end.
fn finish_team_cache(cache: &EdgeTeamCache, outcome: &ScanOutcome, quiet: bool) {
    cache.finish(crate::edge_sync::analyses::UPLOAD_FINISH_WAIT);
    if quiet {
        return;
    }
    let Some(stats) = &outcome.stats.team_cache else { return };
    let counters = cache.counters();
    let uploaded = counters.uploaded.load(std::sync::atomic::Ordering::Relaxed);
    // A re-scan the index answered alone asked nothing and sent nothing: nothing to say.
    if stats.looked_up == 0 && uploaded == 0 && cache.problem().is_none() {
        return;
    }
    let mut line = if cache.reachable() {
        format!("team cache: {} of {} files asked for were analysed by the team", stats.used, stats.looked_up)
    } else {
        "team cache: the edge did not answer; every file was parsed here".to_string()
    };
    if stats.snapshot_used {
        line.push_str("; this tree's pairs were reused");
    }
    if uploaded > 0 {
        let bytes = counters.uploaded_bytes.load(std::sync::atomic::Ordering::Relaxed);
        line.push_str(&format!("; {uploaded} entries uploaded ({:.1} MB)", bytes as f64 / 1e6));
    }
    if let Some(problem) = cache.problem() {
        line.push_str(&format!(" ({problem})"));
    }
    eprintln!("periodic: {line}");
}

/// [`run_scan`], running `while_saving` on the results while the index is written.
pub fn run_scan_then<R>(
    root: &Path,
    config: Config,
    args: &DetectionArgs,
    edge: Option<&EdgeSettings>,
    quiet: bool,
    while_saving: impl FnOnce(&ScanOutcome) -> R + Send,
) -> anyhow::Result<(ScanOutcome, R)>
where
    R: Send,
{
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(jobs) = args.jobs {
        pool = pool.num_threads(jobs as usize);
    }
    let pool = pool.build().context("cannot start worker threads")?;
    let show_progress = !quiet && std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::hidden();
    if show_progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} files")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message("parsing");
    }
    let progress = |event: ScanProgress| match event {
        ScanProgress::Discovered { files } => bar.set_length(files as u64),
        ScanProgress::Parsed { done, .. } => bar.set_position(done as u64),
        ScanProgress::Detecting => bar.set_message("detecting"),
    };
    let team = team_cache_for(root, &config, args, edge);
    let options = ScanOptions {
        root: root.to_path_buf(),
        config,
        use_index: !args.no_index,
        progress: Some(&progress),
        team: team.as_ref().map(|team| team as &dyn periodic_core::team_cache::TeamCache),
    };
    let outcome = pool.install(|| periodic_core::scan_then(options, while_saving));
    bar.finish_and_clear();
    let (outcome, result) = outcome?;
    if let Some(team) = &team {
        finish_team_cache(team, &outcome, quiet);
    }
    if !quiet {
        for warning in &outcome.warnings {
            eprintln!("periodic: warning: {warning}");
        }
    }
    // Shown even with --quiet: it is the explanation of an empty result.
    if let Some(message) = hidden_files_message(&outcome) {
        eprintln!("periodic: {message}");
    }
    Ok((outcome, result))
}

/// How long `periodic scan` and `periodic patterns` wait for the team's pattern names.
const TEAM_NAMES_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Reads the team's pattern names on a thread (while the scan runs) when `[edge]` turns
/// sync on; join it with [`apply_team_names`].
pub fn fetch_team_names(root: &Path, config: &Config) -> std::thread::JoinHandle<Result<Option<crate::edge_sync::names::TeamNames>, String>> {
    let root = periodic_core::walk::scan_folder(root);
    let config = config.clone();
    std::thread::spawn(move || crate::edge_sync::names::fetch_once(&root, &config, TEAM_NAMES_WAIT))
}

/// The team's names that replace local ones, by pattern id, as the language server puts
/// them (the last writer wins; `.periodic.toml` always does). An edge that did not answer
/// leaves the local names, with a note on standard error unless quiet.
pub fn team_overrides(
    fetched: std::thread::JoinHandle<Result<Option<crate::edge_sync::names::TeamNames>, String>>,
    root: &Path,
    config: &Config,
    quiet: bool,
) -> BTreeMap<String, PatternLabel> {
    let team = match fetched.join() {
        Ok(Ok(Some(team))) => team,
        Ok(Ok(None)) | Err(_) => return BTreeMap::new(),
        Ok(Err(reason)) => {
            if !quiet {
                eprintln!("periodic: team pattern names not read ({reason}); local names shown");
            }
            return BTreeMap::new();
        }
    };
    let own = periodic_core::scan::load_labels(root, config).unwrap_or_default();
    let times = periodic_core::scan::label_times(root).unwrap_or_default();
    let merged = crate::edge_sync::names::merge_labels(&own, config, &times, &team);
    merged.into_iter().filter(|(id, label)| label.name.is_some() && own.get(id) != Some(label)).collect()
}

/// Puts the team's names over the report's patterns (see [`team_overrides`]).
pub fn apply_team_names(
    fetched: std::thread::JoinHandle<Result<Option<crate::edge_sync::names::TeamNames>, String>>,
    root: &Path,
    config: &Config,
    patterns: &mut [crate::report::Pattern],
    quiet: bool,
) {
    let overrides = team_overrides(fetched, root, config, quiet);
    for pattern in patterns {
        crate::report::apply_label(&overrides, pattern);
    }
}

/// When a scan found no source file because ignore files hid them: what happened and the
/// flag that scans them anyway.
pub fn hidden_files_message(outcome: &ScanOutcome) -> Option<String> {
    let hidden = outcome.hidden_by_ignore_files;
    (hidden > 0).then(|| {
        let files = if hidden == 1 { "1 source file".to_string() } else { format!("{hidden} source files") };
        format!(
            "no source file found in {}: ignore files (.gitignore, .ignore, .git/info/exclude) hide {files}; scan them with --no-ignore (or `no_ignore = true` in .periodic.toml)",
            outcome.root.display()
        )
    })
}
