//! Converting answers (`crate::answers`) into LSP: diagnostics, hover, code lenses, code
//! actions, workspace symbols and the `periodic/*` custom answers. Pure functions of the
//! snapshot, the answers and the document text: no locks, no I/O. Positions are converted
//! here and in `position`, nowhere else.

use std::path::Path;

use periodic_core::{Instance, Language, Pattern};
use ropey::Rope;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeLens, Command, Diagnostic, DiagnosticRelatedInformation,
    DiagnosticSeverity, Location, NumberOrString, OneOf, Position, Range, SymbolKind, TextEdit, Uri, WorkspaceEdit, WorkspaceSymbol,
};

use super::position::{Encoding, line_end, line_start_of_text};
use crate::answers::workspace::{Snapshot, TeamCopies};
use crate::answers::{Copy, Group, PatternAnswer, Place, SimilarAt, SimilarCode, text::line_diff};
use crate::edge_sync::UnitMatch;
use crate::edge_sync::names::{TeamName, TeamNames};

pub const SOURCE: &str = "periodic";
pub const SHOW_REFERENCES: &str = "periodic.showReferences";
pub const SHOW_SIMILAR: &str = "periodic.showSimilar";
pub const GO_TO_SIMILAR: &str = "periodic.goToSimilar";
pub const NAME_PATTERN: &str = "periodic.namePattern";
/// Most copies listed in a hover.
const HOVER_COPIES: usize = 5;
/// Longest diff shown in a hover, in lines.
const HOVER_DIFF_LINES: usize = 40;

/// How a workspace's files are addressed in answers.
pub struct Addresses<'a> {
    pub root: &'a Path,
}

impl Addresses<'_> {
    pub fn uri(&self, snapshot: &Snapshot, slot: u32) -> Option<Uri> {
        let file = snapshot.file(slot)?;
        Uri::from_file_path(self.root.join(&file.path))
    }

    /// Whole lines of an instance: from the start of its first line to the start of the
    /// line after its last, which needs no knowledge of the other file's text.
    pub fn location(&self, snapshot: &Snapshot, instance: &Instance) -> Option<Location> {
        Some(Location { uri: self.uri(snapshot, instance.file)?, range: whole_lines(instance.start_line, instance.end_line) })
    }

    /// Whole lines of a place in an answer.
    pub fn place_location(&self, place: &Place) -> Option<Location> {
        Some(Location { uri: Uri::from_file_path(self.root.join(&place.path))?, range: whole_lines(place.start_line, place.end_line) })
    }
}

pub fn whole_lines(start_line: u32, end_line: u32) -> Range {
    Range::new(Position::new(start_line.saturating_sub(1), 0), Position::new(end_line, 0))
}

/// The open document's text, for ranges that end where the text does.
pub struct Text<'a> {
    pub rope: &'a Rope,
    pub encoding: Encoding,
}

impl Text<'_> {
    /// The first line of an instance, from its first non-blank character to its end.
    fn first_line(&self, instance: &Instance) -> Range {
        let line = instance.start_line.saturating_sub(1) as usize;
        if line >= self.rope.len_lines() {
            // Not open: the whole line, without knowing its text.
            return whole_lines(instance.start_line, instance.start_line);
        }
        Range::new(line_start_of_text(self.rope, line, self.encoding), line_end(self.rope, line, self.encoding))
    }

    fn line(&self, line_1_based: u32) -> String {
        let index = line_1_based.saturating_sub(1) as usize;
        if index >= self.rope.len_lines() { String::new() } else { self.rope.line(index).to_string() }
    }
}

pub fn percent(similarity: f64) -> u32 {
    (similarity * 100.0).round() as u32
}

fn pattern_label(pattern: Option<&Pattern>) -> String {
    match pattern {
        Some(pattern) => format!("'{}'", pattern.name()),
        None => "unnamed".to_string(),
    }
}

fn describe(snapshot: &Snapshot, copy: &Copy) -> String {
    let file = snapshot.file(copy.instance.file).map_or("?", |file| file.path.as_str());
    let name = snapshot.instance_name(&copy.instance).map(|name| format!(" `{name}`")).unwrap_or_default();
    format!("{file}:{}{name}, {}% {}", copy.instance.start_line, percent(copy.similarity), copy.kind.as_str())
}

/// What a diagnostic carries for code actions.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct DiagnosticData {
    pub pattern: Option<String>,
    pub start_line: u32,
    pub end_line: u32,
}

/// "also in repo `billing`: src/money.rs:40, 88%" for the best team copy, and how many more.
pub fn team_note(matches: &[UnitMatch]) -> Option<String> {
    let best = matches.first()?;
    let place = match &best.location {
        Some(location) => format!("also in repo `{}`: {}:{}, {}%", best.repo, location.path, location.start_line, percent(f64::from(best.similarity))),
        None => format!("also in repo `{}`, {}%", best.repo, percent(f64::from(best.similarity))),
    };
    Some(match matches.len() {
        1 => place,
        count => format!("{place} (and {} more)", count - 1),
    })
}

/// Most repository names listed in "also in N other repositories of your team (…)".
const TEAM_REPOS_LISTED: usize = 5;

/// "also in 2 other repositories of your team (billing, web)": the distinct repositories of
/// the team's copies, when the edge knows any.
pub fn team_repos_sentence(matches: &[UnitMatch]) -> Option<String> {
    let repos: std::collections::BTreeSet<&str> = matches.iter().map(|found| found.repo.as_str()).collect();
    let count = repos.len();
    if count == 0 {
        return None;
    }
    let mut listed: Vec<&str> = repos.into_iter().take(TEAM_REPOS_LISTED).collect();
    if count > TEAM_REPOS_LISTED {
        listed.push("…");
    }
    let repositories = if count == 1 { "repository" } else { "repositories" };
    Some(format!("also in {count} other {repositories} of your team ({})", listed.join(", ")))
}

/// Diagnostics of file `slot`: one per place with local copies (noting team copies of the
/// same unit), and one per unit whose only copies are in the team's other repositories.
pub fn diagnostics(
    snapshot: &Snapshot,
    slot: u32,
    groups: &[Group],
    text: &Text<'_>,
    addresses: &Addresses<'_>,
    severity: DiagnosticSeverity,
) -> Vec<Diagnostic> {
    let team_note_of = |local: &Instance| local.unit.and_then(|unit| snapshot.team_of(slot, unit)).and_then(|copies| team_note(&copies.matches));
    let mut diagnostics: Vec<Diagnostic> = groups
        .iter()
        .filter_map(|group| {
            let best = group.best()?;
            let pattern = snapshot.pattern_of(best.pair);
            let others = group.copies.len();
            let places = if others == 1 { "1 other place".to_string() } else { format!("{others} other places") };
            let mut related: Vec<DiagnosticRelatedInformation> = group
                .copies
                .iter()
                .filter_map(|copy| {
                    Some(DiagnosticRelatedInformation { location: addresses.location(snapshot, &copy.instance)?, message: describe(snapshot, copy) })
                })
                .collect();
            // The team's copies have no place in this workspace to point at: the entry
            // points at this code and says where else the team has it.
            let team_repos = group.local.unit.and_then(|unit| snapshot.team_of(slot, unit)).and_then(|copies| team_repos_sentence(&copies.matches));
            if let (Some(sentence), Some(location)) = (team_repos, addresses.location(snapshot, &group.local)) {
                related.push(DiagnosticRelatedInformation { location, message: format!("This code is {sentence}") });
            }
            let data = DiagnosticData { pattern: pattern.map(|pattern| pattern.id.clone()), start_line: group.local.start_line, end_line: group.local.end_line };
            Some(Diagnostic {
                range: text.first_line(&group.local),
                severity: Some(severity),
                code: Some(NumberOrString::String(pattern.map_or_else(|| best.kind.as_str().to_string(), |pattern| pattern.id.clone()))),
                // No link: Periodic has no published documentation site to point at.
                code_description: None,
                source: Some(SOURCE.to_string()),
                message: match team_note_of(&group.local) {
                    Some(note) => format!("Similar to {places} (pattern {}, {}%); {note}", pattern_label(pattern), percent(best.similarity)),
                    None => format!("Similar to {places} (pattern {}, {}%)", pattern_label(pattern), percent(best.similarity)),
                },
                related_information: Some(related),
                tags: None,
                data: serde_json::to_value(data).ok(),
            })
        })
        .collect();
    let local_units: Vec<u32> = groups.iter().filter_map(|group| group.local.unit).collect();
    let file = snapshot.file(slot);
    for copies in snapshot.team.get(&slot).into_iter().flatten() {
        let (Some(file), false) = (file, local_units.contains(&copies.unit)) else { continue };
        let (Some(unit), Some(note)) = (file.units.get(copies.unit as usize), team_note(&copies.matches)) else { continue };
        let local = Instance { file: slot, start_line: unit.start_line, end_line: unit.end_line, unit: Some(copies.unit), token_start: 0, token_end: 0 };
        let mut message = note;
        message.replace_range(..1, "A");
        let related = team_repos_sentence(&copies.matches)
            .zip(addresses.location(snapshot, &local))
            .map(|(sentence, location)| vec![DiagnosticRelatedInformation { location, message: format!("This code is {sentence}") }]);
        diagnostics.push(Diagnostic {
            range: text.first_line(&local),
            severity: Some(severity),
            code: copies.matches.first().map(|best| NumberOrString::String(best.pattern_id.clone())),
            code_description: None,
            source: Some(SOURCE.to_string()),
            message,
            related_information: related,
            tags: None,
            data: serde_json::to_value(DiagnosticData { pattern: None, start_line: unit.start_line, end_line: unit.end_line }).ok(),
        });
    }
    diagnostics
}

/// Markdown for a hover on `group`: pattern, closest copies as links, and a diff of the
/// closest copy against this one.
pub fn hover_markdown(snapshot: &Snapshot, group: &Group, text: &Text<'_>, addresses: &Addresses<'_>, closest_text: Option<String>) -> String {
    let mut out = String::new();
    let best = group.best();
    if let Some(pattern) = best.and_then(|best| snapshot.pattern_of(best.pair)) {
        out.push_str(&format!(
            "**Pattern `{}`** · {} · {} · {} copies · {} duplicated lines\n\n",
            pattern.name(),
            pattern.id,
            pattern.kind.as_str(),
            pattern.members.len(),
            pattern.duplicated_lines
        ));
        if let Some(team_name) = snapshot.team_names.get(&pattern.id).filter(|team_name| team_name.name.is_some()) {
            out.push_str(&team_name_line(pattern.user_name.as_deref(), team_name, snapshot.team_ttl));
        }
    } else {
        out.push_str("**Similar code**\n\n");
    }
    for copy in group.copies.iter().take(HOVER_COPIES) {
        let file = snapshot.file(copy.instance.file).map_or("?", |file| file.path.as_str());
        let target = addresses.uri(snapshot, copy.instance.file).map(|uri| format!("{}#L{}", uri.as_str(), copy.instance.start_line));
        let name = snapshot.instance_name(&copy.instance).map(|name| format!(" `{name}`")).unwrap_or_default();
        let place = format!("{file}:{}", copy.instance.start_line);
        let link = match target {
            Some(target) => format!("[{place}]({target})"),
            None => place,
        };
        out.push_str(&format!("- {link}{name} — {}% {}\n", percent(copy.similarity), copy.kind.as_str()));
    }
    if group.copies.len() > HOVER_COPIES {
        out.push_str(&format!("- … and {} more\n", group.copies.len() - HOVER_COPIES));
    }
    if let Some(evidence) = best.and_then(|best| snapshot.pairs.get(best.pair as usize)).and_then(|pair| pair.evidence.as_ref()) {
        out.push_str(&format!("\n{}\n", evidence_sentence(evidence)));
    }
    if let Some(team) = group.local.unit.and_then(|unit| snapshot.team_of(group.local.file, unit)) {
        out.push_str(&team_markdown(team, &snapshot.team_names));
    }
    if let (Some(best), Some(theirs)) = (best, closest_text) {
        let ours: Vec<String> = (group.local.start_line..=group.local.end_line).map(|line| text.line(line)).collect();
        let theirs: Vec<&str> = theirs.lines().collect();
        let file = snapshot.file(best.instance.file).map_or("?", |file| file.path.as_str());
        out.push_str(&format!("\nClosest copy, `{file}:{}` (`-` here, `+` there):\n\n```diff\n", best.instance.start_line));
        out.push_str(&line_diff(&ours.iter().map(|line| line.trim_end_matches(['\n', '\r'])).collect::<Vec<_>>(), &theirs, HOVER_DIFF_LINES));
        out.push_str("```\n");
    }
    out
}

/// Who gave the team's name of a pattern and when; when this workspace shows another name
/// (its `.periodic.toml`'s, or one given here later), the team's is shown beside it.
pub fn team_name_line(shown: Option<&str>, team_name: &TeamName, ttl: std::time::Duration) -> String {
    let name = team_name.name.as_deref().unwrap_or_default();
    let now = crate::edge_sync::names::now_unix();
    let stale = if team_name.is_stale(ttl, now) { format!(" (stale: read from the edge {} ago)", age(now.saturating_sub(team_name.fetched_at))) } else { String::new() };
    if shown == Some(name) {
        format!("Named for the team by {}{stale}\n\n", team_name.attribution())
    } else {
        format!("Team name: '{name}' (by {}){stale}; this workspace's own name is shown\n\n", team_name.attribution())
    }
}

/// "45 s", "12 min", "3 h", "2 days".
fn age(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds / 60),
        7200..172_800 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

/// Why the closest near miss was paired, in one sentence: the verifier's signals.
pub fn evidence_sentence(evidence: &periodic_core::verify::Evidence) -> String {
    let share = |signal: f32| (f64::from(signal) * 100.0).round() as u32;
    format!(
        "Why a near miss (score {:.2}): {}% of tokens in common, {}% aligned, {}% in long shared runs, {}% of called and read names shared, {}% of the length, shape {}% alike, {}% of the used names swapped for others.",
        evidence.score,
        share(evidence.tokens),
        share(evidence.aligned),
        share(evidence.runs),
        share(evidence.names),
        share(evidence.size),
        share(evidence.shape),
        share(evidence.free_sub)
    )
}

/// The team's copies of a unit and how common it is in the organisation, for a hover; the
/// team's name of the closest copy's pattern when it has one.
pub fn team_markdown(copies: &TeamCopies, names: &TeamNames) -> String {
    let mut out = String::new();
    if let Some((id, team_name)) = copies.matches.first().and_then(|best| Some((&best.pattern_id, names.get(&best.pattern_id)?))).filter(|(_, team_name)| team_name.name.is_some()) {
        out.push_str(&format!("\nTeam pattern `{}` · {id} · named by {}\n", team_name.name.as_deref().unwrap_or_default(), team_name.attribution()));
    }
    if let Some(counts) = copies.organisation {
        let teams = if counts.teams == 1 { "1 team".to_string() } else { format!("{} teams", counts.teams) };
        out.push_str(&format!("\nCommon across the organisation: {teams}, {} repositories\n", counts.repos));
    }
    let matches = copies.matches.as_slice();
    if matches.is_empty() {
        return out;
    }
    if let Some(sentence) = team_repos_sentence(matches) {
        out.push_str(&format!("\nThis code is {sentence}.\n"));
    }
    if let Some(seconds) = copies.stale_age {
        out.push_str(&format!("\n(stale: the team edge last answered {} ago)\n", age(seconds)));
    }
    out.push_str("\nIn the team's other repositories:\n");
    for found in matches.iter().take(HOVER_COPIES) {
        let place = match &found.location {
            Some(location) => format!("{}:{} `{}`", location.path, location.start_line, location.name),
            None => "(location not shared)".to_string(),
        };
        out.push_str(&format!("- repo `{}`: {place} — {}%\n", found.repo, percent(f64::from(found.similarity))));
    }
    if matches.len() > HOVER_COPIES {
        out.push_str(&format!("- … and {} more\n", matches.len() - HOVER_COPIES));
    }
    out
}

/// Where a code lens points and what it resolves from.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct LensData {
    pub uri: Uri,
    /// 1-based first line of the unit.
    pub line: u32,
}

pub fn code_lenses(groups: &[Group], uri: &Uri) -> Vec<CodeLens> {
    groups
        .iter()
        .filter(|group| group.local.unit.is_some())
        .map(|group| CodeLens {
            range: Range::new(Position::new(group.local.start_line.saturating_sub(1), 0), Position::new(group.local.start_line.saturating_sub(1), 0)),
            command: None,
            data: serde_json::to_value(LensData { uri: uri.clone(), line: group.local.start_line }).ok(),
        })
        .collect()
}

/// The command of a resolved lens: "3 similar · pattern P-12" showing every copy.
pub fn lens_command(snapshot: &Snapshot, group: &Group, uri: &Uri, addresses: &Addresses<'_>) -> Command {
    let pattern = group.best().and_then(|best| snapshot.pattern_of(best.pair));
    let count = group.copies.len();
    let mut title = match pattern {
        Some(pattern) => format!("{count} similar · pattern {}", pattern.name()),
        None => format!("{count} similar"),
    };
    if let Some(team) = group.local.unit.and_then(|unit| snapshot.team_of(group.local.file, unit)).filter(|team| !team.matches.is_empty()) {
        title.push_str(&format!(" · {} in other repos", team.matches.len()));
    }
    show_references_command(title, snapshot, group, uri, addresses)
}

fn show_references_command(title: String, snapshot: &Snapshot, group: &Group, uri: &Uri, addresses: &Addresses<'_>) -> Command {
    let locations: Vec<Location> = group.copies.iter().filter_map(|copy| addresses.location(snapshot, &copy.instance)).collect();
    let position = Position::new(group.local.start_line.saturating_sub(1), 0);
    Command { title, command: SHOW_REFERENCES.to_string(), arguments: Some(vec![json!(uri), json!(position), json!(locations)]) }
}

/// The comment that starts a line comment in `language`.
fn line_comment(language: Language) -> &'static str {
    match language.family() {
        "python" | "ruby" => "#",
        _ => "//",
    }
}

/// Code actions for the innermost group at `line`.
pub fn code_actions(
    snapshot: &Snapshot,
    group: &Group,
    uri: &Uri,
    language: Language,
    text: &Text<'_>,
    addresses: &Addresses<'_>,
    diagnostics: Vec<Diagnostic>,
) -> Vec<CodeActionOrCommand> {
    let mut actions = Vec::new();
    let position = Position::new(group.local.start_line.saturating_sub(1), 0);
    if let Some(best) = group.best() {
        let file = snapshot.file(best.instance.file).map_or("?", |file| file.path.as_str());
        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: format!("Go to the most similar copy ({file}:{}, {}%)", best.instance.start_line, percent(best.similarity)),
            command: Some(Command { title: "Go to the most similar copy".into(), command: GO_TO_SIMILAR.into(), arguments: Some(vec![json!(uri), json!(position)]) }),
            ..CodeAction::default()
        }));
    }
    let count = group.copies.len();
    actions.push(CodeActionOrCommand::CodeAction(CodeAction {
        title: format!("Show all {count} similar {}", if count == 1 { "copy" } else { "copies" }),
        command: Some(show_references_command("Show similar code".into(), snapshot, group, uri, addresses)),
        ..CodeAction::default()
    }));
    actions.push(CodeActionOrCommand::CodeAction(CodeAction {
        title: "Ignore this duplicate (periodic-ignore comment)".into(),
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: if diagnostics.is_empty() { None } else { Some(diagnostics) },
        edit: Some(ignore_edit(group, uri, language, text)),
        ..CodeAction::default()
    }));
    if let Some(pattern) = group.best().and_then(|best| snapshot.pattern_of(best.pair)) {
        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: format!("Name pattern {} ('{}')…", pattern.id, pattern.name()),
            command: Some(Command { title: "Name this pattern".into(), command: NAME_PATTERN.into(), arguments: Some(vec![json!(pattern.id)]) }),
            ..CodeAction::default()
        }));
    }
    actions
}

/// Inserts `periodic-ignore` above a unit, or start/end markers around a block, indented
/// like the code they mark.
fn ignore_edit(group: &Group, uri: &Uri, language: Language, text: &Text<'_>) -> WorkspaceEdit {
    let comment = line_comment(language);
    let first = text.line(group.local.start_line);
    let indent: String = first.chars().take_while(|ch| *ch == ' ' || *ch == '\t').collect();
    let above = Position::new(group.local.start_line.saturating_sub(1), 0);
    let mut edits = Vec::new();
    if group.local.unit.is_some() {
        edits.push(TextEdit { range: Range::new(above, above), new_text: format!("{indent}{comment} periodic-ignore\n") });
    } else {
        let below = Position::new(group.local.end_line, 0);
        edits.push(TextEdit { range: Range::new(above, above), new_text: format!("{indent}{comment} periodic-ignore-start\n") });
        let ending = if group.local.end_line as usize >= text.rope.len_lines() { "\n" } else { "" };
        edits.push(TextEdit { range: Range::new(below, below), new_text: format!("{ending}{indent}{comment} periodic-ignore-end\n") });
    }
    WorkspaceEdit { changes: Some([(uri.clone(), edits)].into_iter().collect()), ..WorkspaceEdit::default() }
}

/// A member of a pattern, as `periodic/patterns` lists it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct PatternMember {
    pub uri: Uri,
    pub range: Range,
    pub name: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PatternEntry {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub similarity: f64,
    pub member_count: usize,
    pub duplicated_lines: u64,
    pub languages: Vec<String>,
    pub members: Vec<PatternMember>,
}

/// A pattern answer as `periodic/patterns` lists it.
pub fn pattern_entry(pattern: &PatternAnswer, addresses: &Addresses<'_>) -> PatternEntry {
    PatternEntry {
        id: pattern.id.clone(),
        name: pattern.name.clone(),
        kind: pattern.kind.as_str().to_string(),
        similarity: pattern.similarity,
        member_count: pattern.members.len(),
        duplicated_lines: pattern.duplicated_lines,
        languages: pattern.languages.clone(),
        members: pattern
            .members
            .iter()
            .filter_map(|member| {
                let location = addresses.place_location(&member.place)?;
                Some(PatternMember { uri: location.uri, range: location.range, name: member.place.unit.clone().unwrap_or_default() })
            })
            .collect(),
    }
}

pub fn workspace_symbols(snapshot: &Snapshot, query: &str, addresses: &Addresses<'_>, limit: usize) -> Vec<WorkspaceSymbol> {
    let mut symbols = Vec::new();
    for pattern in snapshot.patterns.iter().filter(|pattern| crate::answers::matches_text(pattern, query)) {
        for member in &pattern.members {
            if symbols.len() >= limit {
                return symbols;
            }
            let Some(location) = addresses.location(snapshot, member) else { continue };
            let member_name = snapshot.instance_name(member).unwrap_or("block");
            symbols.push(WorkspaceSymbol {
                name: format!("{} · {member_name}", pattern.name()),
                kind: SymbolKind::CLASS,
                tags: None,
                container_name: Some(pattern.id.clone()),
                location: OneOf::Left(location),
                data: None,
            });
        }
    }
    symbols
}

/// A similar unit as `periodic/similar` returns it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct SimilarEntry {
    pub uri: Uri,
    pub range: Range,
    pub name: String,
    pub similarity: f64,
    pub kind: String,
    pub pattern: String,
    /// Set for copies in other repositories (from the team server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct UnitEntry {
    pub name: String,
    pub range: Range,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct SimilarAnswer {
    pub unit: Option<UnitEntry>,
    pub similar: Vec<SimilarEntry>,
}

fn similar_entry(code: &SimilarCode, addresses: &Addresses<'_>) -> Option<SimilarEntry> {
    let location = addresses.place_location(&code.place)?;
    Some(SimilarEntry {
        uri: location.uri,
        range: location.range,
        name: code.place.unit.clone().unwrap_or_default(),
        similarity: code.similarity,
        kind: code.kind.as_str().to_string(),
        pattern: code.pattern.as_ref().map(|pattern| pattern.id.clone()).unwrap_or_default(),
        repo: None,
    })
}

/// The `periodic/similar` answer: the unit (or block) at the position, its copies here,
/// then its copies in the team's other repositories.
pub fn similar_answer(answer: &SimilarAt, addresses: &Addresses<'_>) -> SimilarAnswer {
    let unit = answer.subject.as_ref().map(|place| UnitEntry { name: place.unit.clone().unwrap_or_default(), range: whole_lines(place.start_line, place.end_line) });
    let mut similar: Vec<SimilarEntry> = answer.similar.iter().filter_map(|code| similar_entry(code, addresses)).collect();
    similar.extend(answer.team.iter().map(team_entry));
    SimilarAnswer { unit, similar }
}

/// A copy in another repository of the team, as `periodic/similar` lists it. Its `uri`
/// names the place (`periodic-edge://repo/path`); it is not a file on this machine.
pub fn team_entry(found: &UnitMatch) -> SimilarEntry {
    let (path, name, range) = match &found.location {
        Some(location) => (location.path.clone(), location.name.clone(), whole_lines(location.start_line, location.end_line)),
        None => (found.key.clone(), String::new(), whole_lines(1, 1)),
    };
    let uri = format!("periodic-edge://{}/{}", found.repo, path.trim_start_matches('/')).parse().unwrap_or_else(|_| {
        // Repository names are checked by the edge; a path that is not a valid URI keeps only the repository.
        format!("periodic-edge://{}/", found.repo).parse().unwrap_or_else(|_| "periodic-edge://team/".parse().expect("a valid URI"))
    });
    SimilarEntry {
        uri,
        range,
        name,
        similarity: f64::from(found.similarity),
        kind: if found.exact { "T2".to_string() } else { "T3".to_string() },
        pattern: found.pattern_id.clone(),
        repo: Some(found.repo.clone()),
    }
}
