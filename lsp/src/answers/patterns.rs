//! "Which patterns exist, largest first?" and "what is pattern P?": the periodic table of
//! a snapshot, filtered by name or id, language and path, with each member's closest link
//! to the rest of its pattern.

use std::collections::HashMap;

use periodic_core::{CloneKind, Instance, Pattern};

use super::Place;
use super::workspace::Snapshot;

/// Which patterns to list; every field narrows the list.
#[derive(Clone, Debug, Default)]
pub struct PatternFilter {
    /// Part of the name or id, any case.
    pub text: Option<String>,
    /// A language family (`python`, `javascript`, ...) one member at least is written in.
    pub language: Option<String>,
    /// A relative folder or file (`/`-separated) holding one member at least.
    pub path_prefix: Option<String>,
}

/// A member of a pattern, with its closest link to another member.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub place: Place,
    /// Kind and similarity of the member's most similar pair inside the pattern; `None`
    /// while the pattern predates the member's current pairs (clustered again shortly).
    pub kind: Option<CloneKind>,
    pub similarity: Option<f64>,
}

/// A pattern as every front end shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PatternAnswer {
    pub id: String,
    /// The user's name when there is one, else the automatic name.
    pub name: String,
    pub auto_name: String,
    pub user_name: Option<String>,
    pub note: Option<String>,
    /// The weakest kind among its pairs.
    pub kind: CloneKind,
    /// The smallest similarity among its pairs.
    pub similarity: f64,
    pub languages: Vec<String>,
    pub duplicated_lines: u64,
    /// Sorted by path, then line.
    pub members: Vec<Member>,
}

impl PatternAnswer {
    /// The member that stands for the pattern: the first one under `path_prefix` when
    /// given, else the first one.
    pub fn representative(&self, path_prefix: Option<&str>) -> Option<&Member> {
        let under = path_prefix.and_then(|prefix| self.members.iter().find(|member| is_under(&member.place.path, prefix)));
        under.or(self.members.first())
    }
}

/// Whether relative `path` is `prefix` or inside it (whole path components only).
pub fn is_under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_start_matches("./").trim_end_matches('/');
    prefix.is_empty() || prefix == "." || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

pub fn matches_text(pattern: &Pattern, text: &str) -> bool {
    let text = text.trim().to_lowercase();
    text.is_empty() || pattern.name().to_lowercase().contains(&text) || pattern.id.to_lowercase().contains(&text)
}

fn matches(snapshot: &Snapshot, pattern: &Pattern, filter: &PatternFilter) -> bool {
    filter.text.as_deref().is_none_or(|text| matches_text(pattern, text))
        && filter.language.as_deref().is_none_or(|language| pattern.languages.iter().any(|family| family.eq_ignore_ascii_case(language)))
        && filter.path_prefix.as_deref().is_none_or(|prefix| {
            pattern.members.iter().any(|member| snapshot.file(member.file).is_some_and(|file| is_under(&file.path, prefix)))
        })
}

type MemberKey = (u32, u32, u32, bool);

fn member_key(instance: &Instance) -> MemberKey {
    (instance.file, instance.start_line, instance.end_line, instance.unit.is_some())
}

/// The best pair of each member of the selected patterns: (pattern index, member) ->
/// (kind, similarity). One pass over the pairs.
fn member_links(snapshot: &Snapshot, selected: &[usize]) -> HashMap<(u32, MemberKey), (CloneKind, f64)> {
    let wanted: std::collections::HashSet<u32> = selected.iter().map(|&index| index as u32).collect();
    let mut links: HashMap<(u32, MemberKey), (CloneKind, f64)> = HashMap::new();
    for (pair, &pattern) in snapshot.pairs.iter().zip(snapshot.pattern_of_pair.iter()) {
        if !wanted.contains(&pattern) {
            continue;
        }
        for side in [&pair.a, &pair.b] {
            let link = links.entry((pattern, member_key(side))).or_insert((pair.kind, pair.similarity));
            if pair.similarity > link.1 {
                *link = (pair.kind, pair.similarity);
            }
        }
    }
    links
}

fn answer(snapshot: &Snapshot, index: usize, links: &HashMap<(u32, MemberKey), (CloneKind, f64)>) -> PatternAnswer {
    let pattern = &snapshot.patterns[index];
    PatternAnswer {
        id: pattern.id.clone(),
        name: pattern.name().to_string(),
        auto_name: pattern.auto_name.clone(),
        user_name: pattern.user_name.clone(),
        note: pattern.note.clone(),
        kind: pattern.kind,
        similarity: pattern.similarity,
        languages: pattern.languages.clone(),
        duplicated_lines: pattern.duplicated_lines,
        members: pattern
            .members
            .iter()
            .filter_map(|member| {
                let link = links.get(&(index as u32, member_key(member)));
                Some(Member { place: Place::of(snapshot, member)?, kind: link.map(|link| link.0), similarity: link.map(|link| link.1) })
            })
            .collect(),
    }
}

/// The patterns passing `filter`, largest first (duplicated lines, then members, then id).
pub fn patterns(snapshot: &Snapshot, filter: &PatternFilter, limit: usize) -> Vec<PatternAnswer> {
    let mut selected: Vec<usize> = (0..snapshot.patterns.len()).filter(|&index| matches(snapshot, &snapshot.patterns[index], filter)).collect();
    selected.sort_by(|&a, &b| {
        let (x, y) = (&snapshot.patterns[a], &snapshot.patterns[b]);
        y.duplicated_lines.cmp(&x.duplicated_lines).then(y.members.len().cmp(&x.members.len())).then(x.id.cmp(&y.id))
    });
    selected.truncate(limit);
    let links = member_links(snapshot, &selected);
    selected.into_iter().map(|index| answer(snapshot, index, &links)).collect()
}

/// Pattern `id` (exact, any case), with every member.
pub fn pattern(snapshot: &Snapshot, id: &str) -> Option<PatternAnswer> {
    // An id of an earlier version (8 hex digits, e.g. from an old report) still finds its pattern.
    let id = id.trim();
    let index = snapshot.patterns.iter().position(|pattern| pattern.id.eq_ignore_ascii_case(id)).or_else(|| snapshot.patterns.iter().position(|pattern| pattern.legacy_id.eq_ignore_ascii_case(id)))?;
    let links = member_links(snapshot, &[index]);
    Some(answer(snapshot, index, &links))
}
