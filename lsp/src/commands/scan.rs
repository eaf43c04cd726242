//! `periodic scan`: scan, render the report, apply the failure thresholds.

use std::collections::HashSet;
use std::io::IsTerminal;

use anyhow::Context;

use crate::cli::{EXIT_THRESHOLD, EdgeShare, FailOn, Format, ScanArgs};
use crate::edge_sync::{EdgeOptions, EdgeSettings, ShareLevel, push};
use crate::report::{self, Pair, Report};

pub fn run(args: ScanArgs) -> anyhow::Result<u8> {
    if !args.path.exists() {
        anyhow::bail!("{}: no such file or directory", args.path.display());
    }
    let config = super::load_config(&args.path, &args.detection)?;
    let fail_settings = config.fail.clone();
    // Read the baseline before the scan, so a wrong path fails at once.
    let baseline = match &args.baseline {
        Some(path) => Some(load_baseline(path)?),
        None => None,
    };
    // `--edge`: the [edge] table is checked before the scan, so a typo fails at once.
    let edge_settings = match &args.edge.url {
        Some(_) => Some(edge_push_settings(&args, &config)?),
        None => None,
    };
    let team_names = super::fetch_team_names(&args.path, &config);
    let team_config = config.clone();
    // The report is rendered and written while the index is being saved. JSON is written
    // straight from the outcome: the report model of a very large tree would be the scan's
    // largest allocation.
    let (outcome, stats) = super::run_scan_then(&args.path, config, &args.detection, edge_settings.as_ref(), args.quiet, |outcome| {
        let names = super::team_overrides(team_names, &outcome.root, &team_config, args.quiet);
        let model = || {
            let mut report = report::build(outcome);
            for pattern in &mut report.patterns {
                report::apply_label(&names, pattern);
            }
            report
        };
        match (&args.output, args.format) {
            (Some(path), Format::Json) => std::fs::File::create(path)
                .and_then(|file| report::json::write_outcome(outcome, &names, file))
                .with_context(|| format!("cannot write {}", path.display()))?,
            (None, Format::Json) => super::stdout_result(report::json::write_outcome(outcome, &names, std::io::stdout().lock()))?,
            (Some(path), _) => {
                let rendered = report::render(&model(), args.format, &outcome.root)?;
                std::fs::write(path, rendered).with_context(|| format!("cannot write {}", path.display()))?;
            }
            (None, _) => super::write_stdout(&report::render(&model(), args.format, &outcome.root)?)?,
        }
        anyhow::Ok(report::stats_of(outcome))
    })?;
    let stats = stats?;
    if let Some(settings) = edge_settings {
        push_to_edge(&args, settings, &outcome)?;
    }

    // Without a baseline every pair counts; with one, only the pairs it does not hold.
    let (counted_pairs, counted_percent) = match &baseline {
        None => (outcome.pairs.len(), stats.duplication_percent),
        Some(known) => {
            let counted: Vec<Pair> = outcome
                .pairs
                .iter()
                .map(|pair| report::pair_model(&outcome.files, pair, String::new()))
                .filter(|pair| !known.contains(&pair_key(pair)))
                .collect();
            let instances: Vec<report::Location> = counted.iter().flat_map(|pair| [pair.a.clone(), pair.b.clone()]).collect();
            (counted.len(), report::covered_percent(&instances, stats.lines))
        }
    };
    // `--fail-on` replaces the file's thresholds; the file may set both, and either fails.
    let thresholds: Vec<FailOn> = match args.fail_on {
        Some(threshold) => vec![threshold],
        None => fail_settings
            .duplication_percent
            .map(FailOn::Percent)
            .into_iter()
            .chain(fail_settings.max_pairs.map(FailOn::Count))
            .collect(),
    };
    let exceeded = thresholds.iter().find_map(|threshold| match *threshold {
        FailOn::Percent(limit) => (counted_percent > limit).then(|| format!("duplication {counted_percent:.2}% exceeds {limit}%")),
        FailOn::Count(limit) => (counted_pairs as u64 > limit).then(|| format!("{counted_pairs} clone pairs exceed {limit}")),
    });
    if !args.quiet && (args.output.is_some() || args.format != Format::Text) {
        eprintln!(
            "periodic: {} files, {} lines, {} patterns, {} clone pairs, {:.2}% duplicated",
            stats.files, stats.lines, stats.patterns, stats.clone_pairs, stats.duplication_percent
        );
    }
    // The process ends after this command: handing back a few hundred megabytes of small
    // allocations one by one would only delay the exit (about 0.1 s on a large tree).
    std::mem::forget(outcome);
    if let Some(message) = exceeded {
        let scope = if baseline.is_some() { " (new since the baseline)" } else { "" };
        eprintln!("periodic: threshold exceeded: {message}{scope}");
        return Ok(EXIT_THRESHOLD);
    }
    Ok(0)
}

/// Identity of a clone pair that survives unrelated edits: paths and names, not lines.
/// Paths and names of both sides, plus a block's line span.
type PairKey = (String, String, String, String, u32);

fn pair_key(pair: &Pair) -> PairKey {
    let side = |location: &report::Location| {
        if location.unit == "block" { (location.path.clone(), format!("block:{}", location.name)) } else { (location.path.clone(), location.name.clone()) }
    };
    let (mut a, mut b) = (side(&pair.a), side(&pair.b));
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    let span = if pair.a.unit == "block" { pair.a.end_line - pair.a.start_line } else { 0 };
    (a.0, a.1, b.0, b.1, span)
}

fn load_baseline(path: &std::path::Path) -> anyhow::Result<HashSet<PairKey>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read baseline {}", path.display()))?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a periodic JSON report", path.display()))?;
    Ok(report.pairs.iter().map(pair_key).collect())
}

/// The folder whose index holds the outbox and whose name is the default repository name.
fn scan_root(path: &std::path::Path) -> std::path::PathBuf {
    periodic_core::walk::scan_folder(path)
}

/// `[edge]` of the configuration, overridden by the `--edge*` options. An explicit `--edge`
/// is consent to share: the level is `--edge-share`, else the file's when it is not `off`,
/// else `locations`.
fn edge_push_settings(args: &ScanArgs, config: &periodic_core::Config) -> anyhow::Result<EdgeSettings> {
    if args.detection.no_index {
        anyhow::bail!("--edge keeps its outbox in .periodic/index.db and cannot be used with --no-index");
    }
    if args.path.is_file() {
        anyhow::bail!("--edge pushes a whole repository: give its folder, not a file");
    }
    let file = EdgeOptions::from_config(config)?;
    let share = match args.edge.share {
        Some(EdgeShare::Locations) => ShareLevel::Locations,
        Some(EdgeShare::Fingerprints) => ShareLevel::Fingerprints,
        None => file.share.filter(|level| *level != ShareLevel::Off).unwrap_or(ShareLevel::Locations),
    };
    let command_line = EdgeOptions {
        url: args.edge.url.clone(),
        share: Some(share),
        token_file: None,
        repo: args.edge.repo.clone(),
        query_ttl_seconds: None,
        // An explicit --edge-token-file wins over PERIODIC_EDGE_TOKEN and [edge].token_file.
        token: match &args.edge.token_file {
            Some(file) => Some(crate::edge_sync::settings::read_token_file(file)?),
            None => None,
        },
    };
    if let Some(repo) = &command_line.repo
        && !crate::edge_sync::settings::is_valid_repo_name(repo)
    {
        anyhow::bail!("--edge-repo: `{repo}` is not a repository name (1-200 letters, digits, `.`, `_`, `-`)");
    }
    let settings = EdgeSettings::resolve(&scan_root(&args.path), file.overlay(command_line))?;
    if settings.token.is_none() {
        anyhow::bail!("--edge needs a token: set PERIODIC_EDGE_TOKEN, pass --edge-token-file, or set `token_file` in [edge]");
    }
    Ok(settings)
}

fn push_to_edge(args: &ScanArgs, settings: EdgeSettings, outcome: &periodic_core::ScanOutcome) -> anyhow::Result<()> {
    let url = settings.url.clone().unwrap_or_default();
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let stall = std::time::Duration::from_secs(args.edge.timeout_seconds);
    let pushed = push::push_repository(&scan_root(&args.path), settings, &outcome.files, &outcome.patterns, stall, show_progress)
        .with_context(|| format!("cannot push to the edge at {url}"))?;
    if !args.quiet {
        eprintln!(
            "periodic: edge: {} units of {} files pushed to {url} as repository `{}` ({} change{} in {} batch{})",
            pushed.units_now,
            outcome.files.len(),
            pushed.repo,
            pushed.units_sent,
            if pushed.units_sent == 1 { "" } else { "s" },
            pushed.batches_sent,
            if pushed.batches_sent == 1 { "" } else { "es" }
        );
    }
    Ok(())
}
