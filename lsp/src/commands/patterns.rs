//! `periodic patterns`: the codebase's periodic table, largest patterns first.

use std::io::Write;

use crate::answers::{self, PatternFilter, Snapshot};
use crate::cli::{ListFormat, PatternsArgs};
use crate::report;

pub fn run(args: PatternsArgs) -> anyhow::Result<u8> {
    if !args.path.exists() {
        anyhow::bail!("{}: no such file or directory", args.path.display());
    }
    let config = super::load_config(&args.path, &args.detection)?;
    let team_names = super::fetch_team_names(&args.path, &config);
    let outcome = super::run_scan(&args.path, config.clone(), &args.detection, true)?;
    let snapshot = Snapshot::of_scan(&outcome);
    let mut patterns: Vec<report::Pattern> = answers::patterns(&snapshot, &PatternFilter::default(), args.top).iter().map(report::pattern_of).collect();
    super::apply_team_names(team_names, &outcome.root, &config, &mut patterns, false);
    let mut out = std::io::stdout().lock();
    match args.format {
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&patterns)?)?,
        ListFormat::Text => {
            if patterns.is_empty() {
                writeln!(out, "no patterns: no duplicated code found")?;
            }
            for pattern in &patterns {
                writeln!(
                    out,
                    "{:<18} {:<32} {:>3} members {:>6} lines  {} {:.0}%  {}",
                    pattern.id,
                    pattern.name,
                    pattern.members.len(),
                    pattern.duplicated_lines,
                    pattern.kind,
                    pattern.similarity * 100.0,
                    pattern.languages.join(",")
                )?;
            }
        }
    }
    Ok(0)
}
