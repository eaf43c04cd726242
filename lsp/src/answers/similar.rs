//! "What is similar to the code here?": the places in a file that have clones, grouped by
//! the local instance (a unit or a block), and the answer for one line: the unit or block
//! there, its copies in the workspace best first, and its copies in the team's other
//! repositories.

use std::collections::{BTreeMap, HashSet};

use periodic_core::{ClonePair, CloneKind, Instance};

use super::workspace::Snapshot;
use super::{Place, PatternRef};
use crate::edge_sync::UnitMatch;

/// Another place with the same or similar code.
#[derive(Clone, Copy, Debug)]
pub struct Copy {
    pub instance: Instance,
    pub kind: CloneKind,
    pub similarity: f64,
    /// Index of the pair in the snapshot.
    pub pair: u32,
}

/// One place in a file that has clones, with its copies, most similar first.
#[derive(Clone, Debug)]
pub struct Group {
    pub local: Instance,
    pub copies: Vec<Copy>,
}

impl Group {
    pub fn best(&self) -> Option<&Copy> {
        self.copies.first()
    }

    fn lines(&self) -> u32 {
        self.local.end_line - self.local.start_line
    }

    fn contains_line(&self, line: u32) -> bool {
        self.local.start_line <= line && line <= self.local.end_line
    }
}

/// The places in file `slot` that have clones, in line order. `shown` filters by kind.
pub fn groups(snapshot: &Snapshot, slot: u32, shown: impl Fn(CloneKind) -> bool) -> Vec<Group> {
    let mut by_local: BTreeMap<(u32, u32, u32, Option<u32>), Group> = BTreeMap::new();
    let mut add = |local: Instance, other: Instance, pair: &ClonePair, index: u32| {
        let key = (local.start_line, local.token_start, local.token_end, local.unit);
        let group = by_local.entry(key).or_insert_with(|| Group { local, copies: Vec::new() });
        group.copies.push(Copy { instance: other, kind: pair.kind, similarity: pair.similarity, pair: index });
    };
    for (index, pair) in snapshot.pairs_of(slot) {
        if !shown(pair.kind) {
            continue;
        }
        if pair.a.file == slot {
            add(pair.a, pair.b, pair, index);
        }
        if pair.b.file == slot {
            add(pair.b, pair.a, pair, index);
        }
    }
    let mut groups: Vec<Group> = by_local.into_values().collect();
    for group in &mut groups {
        group.copies.sort_by(|x, y| {
            y.similarity.total_cmp(&x.similarity).then(x.instance.file.cmp(&y.instance.file)).then(x.instance.start_line.cmp(&y.instance.start_line))
        });
    }
    groups
}

/// The innermost group containing 1-based `line`.
pub fn group_at(groups: &[Group], line: u32) -> Option<&Group> {
    groups.iter().filter(|group| group.contains_line(line)).min_by_key(|group| group.lines())
}

/// Index of the innermost unit of file `slot` containing 1-based `line`.
pub fn innermost_unit(snapshot: &Snapshot, slot: u32, line: u32) -> Option<u32> {
    let file = snapshot.file(slot)?;
    file.units
        .iter()
        .enumerate()
        .filter(|(_, unit)| unit.start_line <= line && line <= unit.end_line)
        .min_by_key(|(_, unit)| unit.end_line - unit.start_line)
        .map(|(index, _)| index as u32)
}

/// Code similar to a subject, in this workspace.
#[derive(Clone, Debug, PartialEq)]
pub struct SimilarCode {
    pub place: Place,
    pub kind: CloneKind,
    pub similarity: f64,
    pub pattern: Option<PatternRef>,
}

/// The answer about one place: what is there and what is similar to it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimilarAt {
    /// The innermost duplicated instance (unit or block) at the place, else the innermost
    /// unit there; `None` when the line is outside every unit and clone.
    pub subject: Option<Place>,
    /// Most similar first.
    pub similar: Vec<SimilarCode>,
    /// Copies in the team's other repositories (from the edge), best first.
    pub team: Vec<UnitMatch>,
}

/// The copies of `group`'s instance, as plain answers.
pub fn similar_code(snapshot: &Snapshot, group: &Group) -> Vec<SimilarCode> {
    group
        .copies
        .iter()
        .filter_map(|copy| {
            Some(SimilarCode {
                place: Place::of(snapshot, &copy.instance)?,
                kind: copy.kind,
                similarity: copy.similarity,
                pattern: snapshot.pattern_of(copy.pair).map(PatternRef::of),
            })
        })
        .collect()
}

/// What is similar to the code at 1-based `line` of file `slot`. `shown` filters clone
/// kinds; `limit` bounds the local copies (team copies are as the edge sent them).
pub fn similar_at(snapshot: &Snapshot, slot: u32, line: u32, shown: impl Fn(CloneKind) -> bool, limit: usize) -> SimilarAt {
    let groups = groups(snapshot, slot, shown);
    let group = group_at(&groups, line);
    let unit = match group {
        Some(group) => group.local.unit,
        None => innermost_unit(snapshot, slot, line),
    };
    let team = unit.and_then(|unit| snapshot.team_of(slot, unit)).map(|copies| copies.matches.as_slice().to_vec()).unwrap_or_default();
    let (subject, mut similar) = match group {
        Some(group) => (Place::of(snapshot, &group.local), similar_code(snapshot, group)),
        None => {
            let subject = unit.and_then(|unit| {
                let shown = snapshot.file(slot)?.units.get(unit as usize)?;
                let instance = Instance { file: slot, start_line: shown.start_line, end_line: shown.end_line, unit: Some(unit), token_start: 0, token_end: 0 };
                Place::of(snapshot, &instance)
            });
            (subject, Vec::new())
        }
    };
    // A place can be a copy through two pairs (as a unit and as a block): listed once,
    // with its best similarity.
    let mut seen = HashSet::new();
    similar.retain(|code| seen.insert((code.place.path.clone(), code.place.start_line, code.place.end_line)));
    similar.truncate(limit);
    SimilarAt { subject, similar, team }
}
