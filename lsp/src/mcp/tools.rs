//! The MCP tools' contract: argument and result types (their JSON Schemas are what
//! `tools/list` declares, so names and shapes here are stable and documented in
//! `docs/mcp.md`), conversions from the answers layer, and the compact text an agent
//! reads. No engine work happens here.

use std::fmt::Write;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::answers::snippet::SnippetAnswer;
use crate::answers::{PatternAnswer, Place, SimilarAt, SimilarCode};
use crate::edge_sync::UnitMatch;

pub const FIND_SIMILAR_CODE: &str = "find_similar_code";
pub const FIND_SIMILAR_AT: &str = "find_similar_at";
pub const LIST_PATTERNS: &str = "list_patterns";
pub const GET_PATTERN: &str = "get_pattern";

/// Default and largest `limit` of the similar-code tools.
pub const DEFAULT_MATCHES: u32 = 10;
pub const MAX_MATCHES: u32 = 100;
/// Default and largest `limit` of `list_patterns`.
pub const DEFAULT_PATTERNS: u32 = 20;
pub const MAX_PATTERNS: u32 = 500;
/// Longest closest-copy text returned, in lines.
const CODE_LINES: usize = 80;

#[derive(Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct FindSimilarCodeArgs {
    /// The code you are about to write: a whole function, several functions, or statements from a function body.
    pub code: String,
    /// Its language: python, javascript, typescript, tsx, java, rust, go, c, cpp, csharp or ruby. Default: from `path`, else guessed from the code.
    #[serde(default)]
    pub language: Option<String>,
    /// The file the code is meant for, absolute or relative to the root (it need not exist yet): names the language, and copies inside that file are left out.
    #[serde(default)]
    pub path: Option<String>,
    /// Only code at least this similar, in (0, 1]. Default: the near-miss threshold configured for the workspace (0.7 unless `.periodic.toml` says otherwise).
    #[serde(default)]
    pub min_similarity: Option<f64>,
    /// Most matches to return, 1 to 100. Default: 10.
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct FindSimilarAtArgs {
    /// A file of the workspace, absolute or relative to the root.
    pub path: String,
    /// A 1-based line inside the function (or duplicated block) to look up.
    pub line: u32,
    /// Most matches to return, 1 to 100. Default: 10.
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ListPatternsArgs {
    /// Most patterns to return, 1 to 500. Default: 20.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only patterns with a member in this language (python, javascript, typescript, java, rust, go, c, cpp, csharp, ruby).
    #[serde(default)]
    pub language: Option<String>,
    /// Only patterns with a member under this folder or file, relative to the root (or absolute inside it).
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct GetPatternArgs {
    /// A pattern id as the other tools return it, e.g. `P-3fa9c2d1e07b4a55` (an id of an
    /// earlier version, `P-3fa9c2d1`, is accepted too).
    pub id: String,
}

/// Where code is, in the workspace.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct Location {
    /// Relative to the root, `/`-separated.
    pub path: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// The function's name; for a block, the function around it (empty at top level).
    pub name: String,
    /// `function` (any function, method, constructor or closure) or `block`.
    pub unit: String,
    pub language: String,
}

impl Location {
    pub fn of(place: &Place) -> Location {
        Location {
            path: place.path.clone(),
            start_line: place.start_line,
            end_line: place.end_line,
            name: place.display_name().to_string(),
            unit: if place.is_block() { "block" } else { "function" }.to_string(),
            language: place.language.family().to_string(),
        }
    }
}

/// Code in this workspace that is the same or nearly the same.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct CodeMatch {
    #[serde(flatten)]
    pub location: Location,
    /// `T1` identical but for layout and comments, `T2` identifiers or literals renamed, `T3` near miss (statements added, removed or changed).
    pub kind: String,
    /// Token similarity in [0, 1].
    pub similarity: f64,
    /// The pattern (cluster of similar code) this code belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern_name: Option<String>,
    /// `find_similar_code`: the lines of the submitted code that match (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet_start_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet_end_line: Option<u32>,
    /// The code itself, for the closest match only (at most 80 lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl CodeMatch {
    pub fn of(similar: &SimilarCode) -> CodeMatch {
        CodeMatch {
            location: Location::of(&similar.place),
            kind: similar.kind.as_str().to_string(),
            similarity: round(similar.similarity),
            pattern_id: similar.pattern.as_ref().map(|pattern| pattern.id.clone()),
            pattern_name: similar.pattern.as_ref().map(|pattern| pattern.name.clone()),
            snippet_start_line: None,
            snippet_end_line: None,
            code: None,
        }
    }
}

/// Similar code in one of the team's other repositories (from the team edge server).
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct TeamMatch {
    pub repo: String,
    /// Absent when that repository shares fingerprints only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub similarity: f64,
    /// `T2` (same structure) or `T3` (near miss).
    pub kind: String,
    pub language: String,
}

impl TeamMatch {
    pub fn of(found: &UnitMatch) -> TeamMatch {
        TeamMatch {
            repo: found.repo.clone(),
            path: found.location.as_ref().map(|location| location.path.clone()),
            start_line: found.location.as_ref().map(|location| location.start_line),
            end_line: found.location.as_ref().map(|location| location.end_line),
            name: found.location.as_ref().map(|location| location.name.clone()),
            similarity: round(f64::from(found.similarity)),
            kind: if found.exact { "T2" } else { "T3" }.to_string(),
            language: found.language.clone(),
        }
    }
}

/// How current the answers are.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq, Default)]
pub struct IndexState {
    /// Files indexed so far.
    pub files: u64,
    /// The index is being refreshed: answers come from what was indexed before.
    pub indexing: bool,
    /// While indexing: files read so far and files to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_done: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_total: Option<u64>,
    /// The last refresh failed (answers come from before it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct FindSimilarCodeResult {
    /// The language the code was read as.
    pub language: String,
    /// The language was guessed from the code (pass `language` or `path` to be sure).
    pub language_guessed: bool,
    /// Functions found in the code that are big enough to compare (statements are compared as blocks too).
    pub snippet_units: u32,
    /// Most similar first.
    pub matches: Vec<CodeMatch>,
    /// Similar code in the team's other repositories (only with a team edge server configured).
    pub team: Vec<TeamMatch>,
    pub index: IndexState,
}

#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct FindSimilarAtResult {
    /// The function or duplicated block at the line; absent outside every function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Location>,
    /// Most similar first.
    pub matches: Vec<CodeMatch>,
    pub team: Vec<TeamMatch>,
    pub index: IndexState,
}

#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct PatternSummary {
    pub id: String,
    pub name: String,
    /// The weakest kind among its pairs.
    pub kind: String,
    /// The smallest similarity among its pairs.
    pub similarity: f64,
    pub member_count: u32,
    pub duplicated_lines: u64,
    pub languages: Vec<String>,
    /// One member, inside `path` when that was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub representative: Option<Location>,
}

#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct ListPatternsResult {
    /// Largest first (duplicated lines, then members).
    pub patterns: Vec<PatternSummary>,
    /// Patterns passing the filters, before `limit`.
    pub total: u32,
    pub index: IndexState,
}

#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct PatternMember {
    #[serde(flatten)]
    pub location: Location,
    /// Kind and similarity of this member's closest link to another member (absent while the pattern is being re-clustered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
}

#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct GetPatternResult {
    pub id: String,
    /// The user's name when given, else the automatic one.
    pub name: String,
    pub auto_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub kind: String,
    pub similarity: f64,
    pub duplicated_lines: u64,
    pub languages: Vec<String>,
    /// Sorted by path, then line.
    pub members: Vec<PatternMember>,
    pub index: IndexState,
}

fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// The first `CODE_LINES` lines of a copy.
pub fn clip_code(code: &str) -> String {
    let lines: Vec<&str> = code.lines().collect();
    if lines.len() <= CODE_LINES {
        return lines.join("\n");
    }
    format!("{}\n… {} more lines", lines[..CODE_LINES].join("\n"), lines.len() - CODE_LINES)
}

pub fn snippet_result(answer: &SnippetAnswer, team: &[UnitMatch], index: IndexState) -> FindSimilarCodeResult {
    FindSimilarCodeResult {
        language: answer.language.name().to_string(),
        language_guessed: answer.guessed,
        snippet_units: answer.units as u32,
        matches: answer
            .matches
            .iter()
            .map(|found| CodeMatch {
                snippet_start_line: Some(found.snippet_lines.0),
                snippet_end_line: Some(found.snippet_lines.1),
                ..CodeMatch::of(&found.similar)
            })
            .collect(),
        team: team.iter().map(TeamMatch::of).collect(),
        index,
    }
}

pub fn similar_at_result(answer: &SimilarAt, index: IndexState) -> FindSimilarAtResult {
    FindSimilarAtResult {
        subject: answer.subject.as_ref().map(Location::of),
        matches: answer.similar.iter().map(CodeMatch::of).collect(),
        team: answer.team.iter().map(TeamMatch::of).collect(),
        index,
    }
}

pub fn pattern_summary(pattern: &PatternAnswer, path_prefix: Option<&str>) -> PatternSummary {
    PatternSummary {
        id: pattern.id.clone(),
        name: pattern.name.clone(),
        kind: pattern.kind.as_str().to_string(),
        similarity: round(pattern.similarity),
        member_count: pattern.members.len() as u32,
        duplicated_lines: pattern.duplicated_lines,
        languages: pattern.languages.clone(),
        representative: pattern.representative(path_prefix).map(|member| Location::of(&member.place)),
    }
}

pub fn pattern_result(pattern: &PatternAnswer, index: IndexState) -> GetPatternResult {
    GetPatternResult {
        id: pattern.id.clone(),
        name: pattern.name.clone(),
        auto_name: pattern.auto_name.clone(),
        user_name: pattern.user_name.clone(),
        note: pattern.note.clone(),
        kind: pattern.kind.as_str().to_string(),
        similarity: round(pattern.similarity),
        duplicated_lines: pattern.duplicated_lines,
        languages: pattern.languages.clone(),
        members: pattern
            .members
            .iter()
            .map(|member| PatternMember {
                location: Location::of(&member.place),
                kind: member.kind.map(|kind| kind.as_str().to_string()),
                similarity: member.similarity.map(round),
            })
            .collect(),
        index,
    }
}

// ---- Text an agent reads: one line per place, no colour, no tables.

fn place_line(location: &Location) -> String {
    let name = match (location.unit.as_str(), location.name.is_empty()) {
        ("block", true) => "block".to_string(),
        ("block", false) => format!("block in {}", location.name),
        _ => location.name.clone(),
    };
    format!("{}:{}-{} {name}", location.path, location.start_line, location.end_line)
}

fn match_line(found: &CodeMatch) -> String {
    let mut line = format!("- {} — {} {}%", place_line(&found.location), found.kind, (found.similarity * 100.0).round());
    if let Some(id) = &found.pattern_id {
        let _ = write!(line, ", pattern {id} '{}'", found.pattern_name.as_deref().unwrap_or(""));
    }
    if let (Some(start), Some(end)) = (found.snippet_start_line, found.snippet_end_line) {
        let _ = write!(line, " (your lines {start}-{end})");
    }
    line
}

fn team_line(found: &TeamMatch) -> String {
    let place = match (&found.path, found.start_line, found.end_line) {
        (Some(path), Some(start), Some(end)) => format!("{path}:{start}-{end} {}", found.name.as_deref().unwrap_or("")),
        _ => "(location not shared)".to_string(),
    };
    format!("- repo {}: {} — {} {}%", found.repo, place.trim_end(), found.kind, (found.similarity * 100.0).round())
}

fn index_note(index: &IndexState) -> Option<String> {
    if let Some(error) = &index.error {
        return Some(format!("Note: the last index refresh failed ({error}); answers come from {} files indexed before.", index.files));
    }
    if !index.indexing {
        return None;
    }
    let progress = match (index.progress_done, index.progress_total) {
        (Some(done), Some(total)) => format!(" ({done}/{total} files read)"),
        _ => String::new(),
    };
    Some(format!("Note: the index is being refreshed{progress}; answers come from the {} files indexed so far.", index.files))
}

fn closest_code(out: &mut String, matches: &[CodeMatch]) {
    if let Some((found, code)) = matches.first().and_then(|found| Some((found, found.code.as_ref()?))) {
        let _ = write!(out, "\nClosest, {}:\n```\n{code}\n```\n", place_line(&found.location));
    }
}

pub fn snippet_text(result: &FindSimilarCodeResult) -> String {
    let mut out = String::new();
    let guessed = if result.language_guessed { " (guessed; pass `language` to be sure)" } else { "" };
    if result.matches.is_empty() {
        let _ = writeln!(out, "No similar code found in this workspace (read as {}{guessed}).", result.language);
        if result.snippet_units == 0 {
            let _ = writeln!(out, "The code is below the size a copy must have to count (6 lines and 50 tokens unless .periodic.toml says otherwise).");
        }
    } else {
        let _ = writeln!(out, "{} similar place{} in this workspace (read as {}{guessed}):", result.matches.len(), if result.matches.len() == 1 { "" } else { "s" }, result.language);
        for found in &result.matches {
            let _ = writeln!(out, "{}", match_line(found));
        }
    }
    if !result.team.is_empty() {
        let _ = writeln!(out, "In the team's other repositories:");
        for found in &result.team {
            let _ = writeln!(out, "{}", team_line(found));
        }
    }
    closest_code(&mut out, &result.matches);
    if let Some(note) = index_note(&result.index) {
        let _ = writeln!(out, "{note}");
    }
    out
}

pub fn similar_at_text(result: &FindSimilarAtResult, path: &str, line: u32) -> String {
    let mut out = String::new();
    match &result.subject {
        Some(subject) => {
            let _ = writeln!(out, "{}:", place_line(subject));
        }
        None => {
            let _ = writeln!(out, "{path}:{line} is outside every function and duplicated block.");
        }
    }
    if result.matches.is_empty() && result.subject.is_some() {
        let _ = writeln!(out, "No similar code found in this workspace.");
    }
    for found in &result.matches {
        let _ = writeln!(out, "{}", match_line(found));
    }
    if !result.team.is_empty() {
        let _ = writeln!(out, "In the team's other repositories:");
        for found in &result.team {
            let _ = writeln!(out, "{}", team_line(found));
        }
    }
    closest_code(&mut out, &result.matches);
    if let Some(note) = index_note(&result.index) {
        let _ = writeln!(out, "{note}");
    }
    out
}

pub fn patterns_text(result: &ListPatternsResult) -> String {
    let mut out = String::new();
    if result.patterns.is_empty() {
        let _ = writeln!(out, "No patterns: no duplicated code found{}.", if result.total > 0 { " within the limit" } else { "" });
    } else {
        let _ = writeln!(out, "{} of {} patterns, largest first:", result.patterns.len(), result.total);
    }
    for pattern in &result.patterns {
        let at = pattern.representative.as_ref().map(|location| format!(", e.g. {}", place_line(location))).unwrap_or_default();
        let _ = writeln!(
            out,
            "- {} '{}': {} members, {} duplicated lines, {} {}%, {}{at}",
            pattern.id,
            pattern.name,
            pattern.member_count,
            pattern.duplicated_lines,
            pattern.kind,
            (pattern.similarity * 100.0).round(),
            pattern.languages.join(",")
        );
    }
    if let Some(note) = index_note(&result.index) {
        let _ = writeln!(out, "{note}");
    }
    out
}

pub fn pattern_text(result: &GetPatternResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Pattern {} '{}': {} members, {} duplicated lines, {} {}%, {}",
        result.id,
        result.name,
        result.members.len(),
        result.duplicated_lines,
        result.kind,
        (result.similarity * 100.0).round(),
        result.languages.join(",")
    );
    if let Some(note) = &result.note {
        let _ = writeln!(out, "Note: {note}");
    }
    for member in &result.members {
        let link = match (&member.kind, member.similarity) {
            (Some(kind), Some(similarity)) => format!(" — {kind} {}%", (similarity * 100.0).round()),
            _ => String::new(),
        };
        let _ = writeln!(out, "- {}{link}", place_line(&member.location));
    }
    if let Some(note) = index_note(&result.index) {
        let _ = writeln!(out, "{note}");
    }
    out
}
