//! The scan report: one plain, serialisable model built from a scan result, and one
//! renderer per output format (text, json, sarif, html). Renderers only read the model.

pub mod html;
pub mod json;
pub mod sarif;
pub mod text;

use std::collections::BTreeMap;
use std::path::Path;

use periodic_core::{FileRecord, Instance, ScanOutcome};
use serde::{Deserialize, Serialize};

use crate::answers::{PatternAnswer, Place};
use crate::cli::Format;

/// Bumped when a field changes meaning or disappears; adding fields keeps the version.
pub const REPORT_FORMAT_VERSION: &str = "1";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Report format version (`REPORT_FORMAT_VERSION`).
    pub version: String,
    /// Version of the `periodic` binary that wrote it.
    pub tool_version: String,
    pub stats: Stats,
    /// Largest first (duplicated lines, then member count).
    pub patterns: Vec<Pattern>,
    pub pairs: Vec<Pair>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub files: u64,
    pub lines: u64,
    pub tokens: u64,
    pub units: u64,
    /// Files that were parsed again this run (the rest came from the index).
    pub files_parsed: u64,
    pub files_with_syntax_errors: u64,
    /// Their paths, sorted: which files to look at (their units were recovered where the
    /// parser could).
    #[serde(default)]
    pub syntax_error_files: Vec<String>,
    /// Why files were left out, with counts: binary, minified, generated, too_large,
    /// unreadable, unknown_language, excluded.
    pub skipped: BTreeMap<String, u64>,
    pub patterns: u64,
    pub clone_pairs: u64,
    /// Lines that belong to at least one clone instance.
    pub duplicated_lines: u64,
    /// duplicated_lines / lines * 100.
    pub duplication_percent: f64,
    pub languages: BTreeMap<String, LanguageStats>,
    pub duration_ms: u64,
    pub warnings: Vec<String>,
    /// What the team edge's analysis cache did, when one was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_cache: Option<TeamCacheStats>,
}

/// The team analysis cache's part in a scan (`docs/edge.md`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TeamCacheStats {
    /// Files the index could not vouch for, asked of the edge.
    pub files_asked: u64,
    /// Files analysed from a teammate's entry instead of parsed.
    pub files_from_team: u64,
    /// Entries refused as damaged or not fitting their file (those files were parsed).
    pub entries_refused: u64,
    /// A teammate had scanned this very tree: their pairs were reused.
    pub tree_reused: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LanguageStats {
    pub files: u64,
    pub lines: u64,
    pub units: u64,
    pub duplicated_lines: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pattern {
    /// Stable id, e.g. `P-3fa9c2d1e07b4a55`: the same code gives the same id on every machine and on the team edge.
    pub id: String,
    /// The user-given name when there is one, else the automatic name.
    pub name: String,
    pub auto_name: String,
    pub user_name: Option<String>,
    /// The user's note for the pattern (`.periodic.toml`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The weakest kind among the pattern's pairs: "T3" if any pair is a near miss.
    pub kind: String,
    /// Smallest similarity among the pattern's pairs.
    pub similarity: f64,
    pub languages: Vec<String>,
    pub duplicated_lines: u64,
    pub members: Vec<Location>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Relative to the scan root, with `/` separators.
    pub path: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// Function name, or empty for a block inside or outside functions.
    #[serde(default)]
    pub name: String,
    /// "function" (any unit) or "block".
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub language: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pair {
    pub a: Location,
    pub b: Location,
    /// "T1", "T2" or "T3".
    pub kind: String,
    /// Token-level similarity in [0, 1].
    pub similarity: f64,
    /// Id of the pattern both belong to; empty when the pair links two patterns that were
    /// kept apart (a near-miss pair between two families that are not densely linked).
    pub pattern: String,
    /// Why a Type-3 pair was reported: the verifier's signals and score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// The signals behind a Type-3 pair, each in [0, 1] (docs/report-format.md).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// The verifier's estimate that the pair is a real near-miss clone.
    pub score: f64,
    /// Dice coefficient of the LCS of normalised tokens (the pair's `similarity`).
    pub tokens: f64,
    /// Aligned share of the shorter unit, called and read names matching only themselves.
    pub aligned: f64,
    /// Aligned tokens weighted by the length of their run, renamings consistent.
    pub runs: f64,
    /// Overlap of the names both call or read, weighted by rarity (1 when neither uses any).
    pub names: f64,
    /// Share of aligned literals with the same value (1 when none are aligned).
    pub literals: f64,
    /// Share of called and read names swapped one for another (0 when none).
    pub swaps: f64,
    /// Length ratio.
    pub size: f64,
    /// Cosine of the histograms of token kinds.
    pub shape: f64,
    /// Share of aligned names the units use without binding them (callees, fields,
    /// constants) that differ, weighted by rarity (0 when none differ): how
    /// siblings of one template differ.
    pub free_sub: f64,
}

impl Evidence {
    fn of(evidence: &periodic_core::verify::Evidence) -> Evidence {
        let value = |signal: f32| round(f64::from(signal));
        Evidence {
            score: value(evidence.score),
            tokens: value(evidence.tokens),
            aligned: value(evidence.aligned),
            runs: value(evidence.runs),
            names: value(evidence.names),
            literals: value(evidence.literals),
            swaps: value(evidence.swaps),
            size: value(evidence.size),
            shape: value(evidence.shape),
            free_sub: value(evidence.free_sub),
        }
    }
}

/// Renders a report in the requested format. `root` is the scan root (the HTML report
/// reads member code from it).
pub fn render(report: &Report, format: Format, root: &Path) -> anyhow::Result<String> {
    match format {
        Format::Text => Ok(text::render(report, text::use_color(), &shown_root(root))),
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report, root),
        Format::Html => html::render(report, root),
    }
}

/// What the text report writes before each member's path (which is relative to the scan
/// root): nothing when the root is the current folder, else the root as it can be opened
/// from here — relative when it lies under the current folder — and a `/`. A terminal or
/// an editor can then open `proj/hex.go:244` where `hex.go:244` named no file.
pub fn shown_root(root: &Path) -> String {
    let from_here = match std::env::current_dir() {
        Ok(current) if root.is_absolute() => root.strip_prefix(&current).map(Path::to_path_buf).unwrap_or_else(|_| root.to_path_buf()),
        _ => root.to_path_buf(),
    };
    let shown: std::path::PathBuf = from_here.components().filter(|part| !matches!(part, std::path::Component::CurDir)).collect();
    if shown.as_os_str().is_empty() {
        String::new()
    } else {
        format!("{}/", shown.to_string_lossy().replace('\\', "/").trim_end_matches('/'))
    }
}

/// Builds the report model from a scan outcome.
pub fn build(outcome: &ScanOutcome) -> Report {
    let files = &outcome.files;
    let pattern_of_pair = pattern_of_each_pair(outcome);
    let patterns: Vec<Pattern> = outcome.patterns.iter().map(|pattern| pattern_model(files, pattern)).collect();
    let pairs: Vec<Pair> = outcome
        .pairs
        .iter()
        .zip(pattern_of_pair)
        .map(|(pair, pattern)| pair_model(files, pair, pattern_id_of(outcome, pattern)))
        .collect();
    let stats = stats_of(outcome);
    Report { version: REPORT_FORMAT_VERSION.to_string(), tool_version: env!("CARGO_PKG_VERSION").to_string(), stats, patterns, pairs }
}

/// How a member or a pair's side is shown.
fn location_in(files: &[FileRecord], instance: &Instance) -> Location {
    Location {
        path: files[instance.file as usize].path.clone(),
        start_line: instance.start_line,
        end_line: instance.end_line,
        name: periodic_core::pattern::instance_name(files, instance),
        unit: if instance.unit.is_some() { "function".to_string() } else { "block".to_string() },
        language: files[instance.file as usize].language.family().to_string(),
    }
}

/// A pattern of the scan, as reports show it.
pub fn pattern_model(files: &[FileRecord], pattern: &periodic_core::Pattern) -> Pattern {
    Pattern {
        id: pattern.id.clone(),
        name: pattern.name().to_string(),
        auto_name: pattern.auto_name.clone(),
        user_name: pattern.user_name.clone(),
        note: pattern.note.clone(),
        kind: pattern.kind.as_str().to_string(),
        similarity: round(pattern.similarity),
        languages: pattern.languages.clone(),
        duplicated_lines: pattern.duplicated_lines,
        members: pattern.members.iter().map(|member| location_in(files, member)).collect(),
    }
}

/// Puts a name given elsewhere (the team's) over a pattern's, when `overrides` holds one
/// for its id.
pub fn apply_label(overrides: &BTreeMap<String, periodic_core::pattern::PatternLabel>, pattern: &mut Pattern) {
    if let Some(label) = overrides.get(&pattern.id)
        && let Some(name) = &label.name
    {
        pattern.name = name.clone();
        pattern.user_name = Some(name.clone());
        pattern.note = label.note.clone();
    }
}

/// A pair of the scan, as reports show it, in the pattern `pattern` (empty: none).
pub fn pair_model(files: &[FileRecord], pair: &periodic_core::ClonePair, pattern: String) -> Pair {
    Pair {
        a: location_in(files, &pair.a),
        b: location_in(files, &pair.b),
        kind: pair.kind.as_str().to_string(),
        similarity: round(pair.similarity),
        pattern,
        evidence: pair.evidence.as_ref().map(Evidence::of),
    }
}

/// For each pair of the outcome, the index of the pattern holding it (`u32::MAX`: none).
pub fn pattern_of_each_pair(outcome: &ScanOutcome) -> Vec<u32> {
    let mut pattern_of_pair = vec![u32::MAX; outcome.pairs.len()];
    for (index, pattern) in outcome.patterns.iter().enumerate() {
        for &pair in &pattern.pairs {
            pattern_of_pair[pair] = index as u32;
        }
    }
    pattern_of_pair
}

/// The id of the pattern at `index` of `pattern_of_each_pair`, or empty.
pub fn pattern_id_of(outcome: &ScanOutcome, index: u32) -> String {
    outcome.patterns.get(index as usize).map(|pattern| pattern.id.clone()).unwrap_or_default()
}

/// The report's statistics of a scan outcome.
pub fn stats_of(outcome: &ScanOutcome) -> Stats {
    let scan_stats = &outcome.stats;
    Stats {
        files: scan_stats.files,
        lines: scan_stats.lines,
        tokens: scan_stats.tokens,
        units: scan_stats.units,
        files_parsed: scan_stats.files_parsed,
        files_with_syntax_errors: scan_stats.files_with_syntax_errors,
        syntax_error_files: {
            let mut paths: Vec<String> = outcome.files.iter().filter(|file| file.has_syntax_errors).map(|file| file.path.clone()).collect();
            paths.sort();
            paths
        },
        skipped: scan_stats.skipped.iter().map(|(reason, count)| (reason.as_str().to_string(), *count)).collect(),
        patterns: outcome.patterns.len() as u64,
        clone_pairs: outcome.pairs.len() as u64,
        duplicated_lines: scan_stats.duplicated_lines,
        duplication_percent: round(scan_stats.duplication_percent()),
        languages: scan_stats
            .languages
            .iter()
            .map(|(name, language)| {
                (
                    name.clone(),
                    LanguageStats {
                        files: language.files,
                        lines: language.lines,
                        units: language.units,
                        duplicated_lines: language.duplicated_lines,
                    },
                )
            })
            .collect(),
        duration_ms: scan_stats.duration_ms,
        warnings: outcome.warnings.clone(),
        team_cache: scan_stats.team_cache.as_ref().map(|team| TeamCacheStats {
            files_asked: team.looked_up,
            files_from_team: team.used,
            entries_refused: team.refused,
            tree_reused: team.snapshot_used,
        }),
    }
}

/// A place in an answer, as reports show it.
pub fn location_of(place: &Place) -> Location {
    Location {
        path: place.path.clone(),
        start_line: place.start_line,
        end_line: place.end_line,
        name: place.display_name().to_string(),
        unit: if place.is_block() { "block".to_string() } else { "function".to_string() },
        language: place.language.family().to_string(),
    }
}

/// A pattern answer, as reports show it.
pub fn pattern_of(pattern: &PatternAnswer) -> Pattern {
    Pattern {
        id: pattern.id.clone(),
        name: pattern.name.clone(),
        auto_name: pattern.auto_name.clone(),
        user_name: pattern.user_name.clone(),
        note: pattern.note.clone(),
        kind: pattern.kind.as_str().to_string(),
        similarity: round(pattern.similarity),
        languages: pattern.languages.clone(),
        duplicated_lines: pattern.duplicated_lines,
        members: pattern.members.iter().map(|member| location_of(&member.place)).collect(),
    }
}

/// Four decimals are plenty for a similarity or a percentage and keep reports diffable.
pub fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// Percentage of `total_lines` covered by the given locations (overlaps counted once).
pub fn covered_percent(locations: &[Location], total_lines: u64) -> f64 {
    if total_lines == 0 {
        return 0.0;
    }
    let mut by_file: BTreeMap<&str, Vec<(u32, u32)>> = BTreeMap::new();
    for location in locations {
        by_file.entry(&location.path).or_default().push((location.start_line, location.end_line));
    }
    let covered: u64 = by_file.into_values().map(periodic_core::pattern::merged_length).sum();
    covered as f64 * 100.0 / total_lines as f64
}
