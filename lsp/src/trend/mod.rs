//! `periodic trend`: duplication along the first-parent history of a git repository, one
//! point per commit, oldest first. `history` reads commits, trees and blobs from git objects
//! (nothing is checked out), `measure` moves the engine's live index from one commit to the
//! next (only changed blobs are parsed, each once), `render` writes text, JSON, CSV or HTML.

mod history;
mod measure;
pub mod render;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use periodic_core::Config;
use serde::{Deserialize, Serialize};

use history::History;
use measure::Measurer;

/// A point is a jump when duplication grows by at least this many percentage points of the
/// code, or by at least `JUMP_LINES` lines, since the point before.
pub const JUMP_PERCENT: f64 = 1.0;
pub const JUMP_LINES: u64 = 100;

/// Bumped when a field changes meaning or disappears; adding fields keeps the version.
pub const TREND_FORMAT_VERSION: &str = "1";

pub struct TrendOptions {
    pub path: PathBuf,
    pub since: Option<String>,
    pub until: Option<String>,
    pub branch: Option<String>,
    /// Most points (the newest).
    pub commits: usize,
    /// One point every this many commits, counted from the newest.
    pub every: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LanguageFigures {
    pub files: u64,
    pub lines: u64,
    pub duplicated_lines: u64,
    pub duplicated_percent: f64,
}

/// A pattern that is new or larger than at the point before.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PatternGrowth {
    pub id: String,
    pub name: String,
    pub members: u64,
    pub members_before: u64,
    pub duplicated_lines: u64,
    pub duplicated_lines_before: u64,
}

/// Duplication at one commit.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub commit: String,
    /// Committer date (ISO 8601).
    pub date: String,
    pub author_date: String,
    pub author: String,
    /// First line of the commit message.
    pub subject: String,
    pub files: u64,
    pub lines: u64,
    pub duplicated_lines: u64,
    pub duplicated_percent: f64,
    pub clone_pairs: u64,
    pub patterns: u64,
    /// Files parsed for this point: blobs not seen at an earlier point.
    pub parsed_files: u64,
    /// Per language family.
    pub languages: BTreeMap<String, LanguageFigures>,
    /// Duplication grew sharply since the point before (see `JUMP_PERCENT`, `JUMP_LINES`).
    pub jump: bool,
    /// Patterns new or larger than at the point before, most added lines first (at most 10);
    /// empty at the first point.
    pub grew: Vec<PatternGrowth>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Trend {
    pub version: String,
    pub tool_version: String,
    /// The analysed folder, relative to the repository's top (empty: all of it).
    pub path: String,
    /// The revision walked (`--branch`, else `HEAD`).
    pub branch: String,
    /// Oldest first.
    pub points: Vec<Point>,
    /// Distinct blobs parsed for the whole history.
    pub blobs_parsed: u64,
    pub duration_ms: u64,
}

/// What a caller hears while the history is measured: points done out of the total.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Measures the history `options` name with the detection settings of `config`.
pub fn run(options: &TrendOptions, config: Config, progress: Progress<'_>) -> anyhow::Result<Trend> {
    if options.commits == 0 || options.every == 0 {
        bail!("--commits and --every must be at least 1");
    }
    let started = Instant::now();
    let history = History::open(&options.path)?;
    let branch = options.branch.clone().unwrap_or_else(|| "HEAD".to_string());
    let tip = history.resolve(&branch)?;
    let since = options.since.as_deref().map(|since| history.since(since)).transpose()?;
    let mut commits = history.first_parent_commits(tip, since.as_ref())?;
    if let Some(until) = &options.until {
        let newest = history.resolve(until)?;
        let Some(position) = commits.iter().position(|commit| commit.id == newest) else {
            bail!("--until {until} is not on the first-parent history of {branch} (after --since)");
        };
        commits.drain(..position);
    }
    // Newest first: every `every`-th commit from the newest, the newest `commits` of them.
    let mut sampled: Vec<_> = commits.into_iter().step_by(options.every).take(options.commits).collect();
    sampled.reverse();
    let mut measurer = Measurer::new(&history, config);
    let mut points = Vec::with_capacity(sampled.len());
    for (done, commit) in sampled.iter().enumerate() {
        points.push(measurer.measure(commit)?);
        progress(done + 1, sampled.len());
    }
    mark_jumps(&mut points);
    Ok(Trend {
        version: TREND_FORMAT_VERSION.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        path: history.prefix.clone(),
        branch,
        points,
        blobs_parsed: measurer.parsed_total,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

fn mark_jumps(points: &mut [Point]) {
    for index in 1..points.len() {
        let (before, now) = (&points[index - 1], &points[index]);
        let lines = now.duplicated_lines.saturating_sub(before.duplicated_lines);
        let percent = now.duplicated_percent - before.duplicated_percent;
        points[index].jump = lines > 0 && (percent >= JUMP_PERCENT || lines >= JUMP_LINES);
    }
}
