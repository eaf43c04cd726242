//! Patterns: clusters of clone instances linked by verified pairs (union-find), each with
//! a stable id derived from the shape hash its members share (the id every tier computes:
//! the edge files units under the same hash), an automatic name telling it apart from the
//! others (`pattern_names`), and the user's name when one was given.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{ClonePair, CloneKind, FileRecord, Instance};
pub use crate::pattern_names::{DiskText, NoText, SourceText};

#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    /// `P-` and 16 hex digits (see [`pattern_id`]): the same code gives the same id on
    /// every machine and on the team edge.
    pub id: String,
    /// The id this family had before ids followed shapes (`P-` and 8 hex digits of a pair's
    /// content hash): names stored under it still apply until they are re-keyed.
    pub legacy_id: String,
    pub auto_name: String,
    pub user_name: Option<String>,
    pub note: Option<String>,
    /// The weakest kind among the pattern's pairs (T3 if any pair is a near miss).
    pub kind: CloneKind,
    /// The smallest similarity among the pattern's pairs.
    pub similarity: f64,
    /// Sorted by path, then line.
    pub members: Vec<Instance>,
    /// Language families, sorted.
    pub languages: Vec<String>,
    /// Lines covered by members (overlaps within a file counted once).
    pub duplicated_lines: u64,
    /// Indices into the pair list.
    pub pairs: Vec<usize>,
}

impl Pattern {
    pub fn name(&self) -> &str {
        self.user_name.as_deref().unwrap_or(&self.auto_name)
    }
}

/// A user-given name and note for a pattern id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatternLabel {
    pub name: Option<String>,
    pub note: Option<String>,
}

type MemberKey = (u32, u32, u32, bool);

fn member_key(instance: &Instance) -> MemberKey {
    (instance.file, instance.start_line, instance.end_line, instance.unit.is_some())
}

struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
    /// Per root: how many pairs join it to each other root (kept for roots only).
    links: Vec<HashMap<usize, u32>>,
}

impl UnionFind {
    fn new(nodes: usize, pair_nodes: &[(usize, usize)]) -> Self {
        let mut links: Vec<HashMap<usize, u32>> = vec![HashMap::new(); nodes];
        for &(a, b) in pair_nodes.iter().filter(|(a, b)| a != b) {
            *links[a].entry(b).or_default() += 1;
            *links[b].entry(a).or_default() += 1;
        }
        UnionFind { parent: (0..nodes).collect(), size: vec![1; nodes], links }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (root_a, root_b) = (self.find(a), self.find(b));
        if root_a == root_b {
            return;
        }
        let (root, absorbed) = (root_a.min(root_b), root_a.max(root_b));
        self.parent[absorbed] = root;
        self.size[root] += self.size[absorbed];
        // Small-to-large: the absorbed root's links move to the surviving root, and each
        // neighbour's link to it is renamed.
        let mut moved = std::mem::take(&mut self.links[absorbed]);
        let mut kept = std::mem::take(&mut self.links[root]);
        if moved.len() > kept.len() {
            std::mem::swap(&mut moved, &mut kept);
        }
        for (neighbour, count) in moved {
            *kept.entry(neighbour).or_default() += count;
        }
        kept.remove(&root);
        kept.remove(&absorbed);
        for (&neighbour, &count) in &kept {
            let theirs = &mut self.links[neighbour];
            theirs.remove(&absorbed);
            theirs.remove(&root);
            theirs.insert(root, count);
        }
        self.links[root] = kept;
    }

    /// Whether a near-miss pair may join the groups of `a` and `b`: the pairs between the
    /// two groups must link at least half of the member pairs that could be linked (each
    /// member proposes a bounded number of candidates, hence the cap). One pair between
    /// two large families is a bridge, not a family, and single links chained through
    /// look-alikes (table-driven tests, guard-then-delegate methods) stop at the first
    /// member that resembles only its neighbour.
    fn dense_enough(&mut self, a: usize, b: usize) -> bool {
        let (root_a, root_b) = (self.find(a), self.find(b));
        if root_a == root_b {
            return true;
        }
        let (size_a, size_b) = (self.size[root_a], self.size[root_b]);
        let possible = (size_a * size_b).min(LINKS_PER_MEMBER * size_a.min(size_b));
        let links = self.links[root_a].get(&root_b).copied().unwrap_or(0) as usize;
        2 * links >= possible
    }
}

/// Links a member can be expected to have into another group (see `dense_enough`).
const LINKS_PER_MEMBER: usize = 8;

/// Clusters pairs into patterns, largest (duplicated lines, then members) first. Exact
/// pairs (Type-1/2) and blocks join their groups freely; near-miss pairs, strongest first,
/// only when the two groups are densely linked (`UnionFind::dense_enough`).
/// Names come from the members' text as `text` gives it (`pattern_names`).
pub fn build_patterns(files: &[FileRecord], pairs: &[ClonePair], labels: &BTreeMap<String, PatternLabel>, text: &dyn SourceText) -> Vec<Pattern> {
    // Clustering runs on one core; the codebase's term counts that naming needs come from
    // the files alone, so they are counted on the other meanwhile.
    let (mut patterns, rarity) = rayon::join(|| cluster(files, pairs, labels), || crate::pattern_names::codebase_rarity(files));
    let members: Vec<&[Instance]> = patterns.iter().map(|pattern| pattern.members.as_slice()).collect();
    let names = crate::pattern_names::name_patterns(files, &members, text, rarity);
    for (pattern, name) in patterns.iter_mut().zip(names) {
        pattern.auto_name = name;
    }
    patterns
}

/// The patterns of `pairs`, in table order, not yet named.
fn cluster(files: &[FileRecord], pairs: &[ClonePair], labels: &BTreeMap<String, PatternLabel>) -> Vec<Pattern> {
    let mut keys: HashMap<MemberKey, usize> = HashMap::new();
    let mut instances: Vec<Instance> = Vec::new();
    let mut node = |instance: &Instance| -> usize {
        *keys.entry(member_key(instance)).or_insert_with(|| {
            instances.push(*instance);
            instances.len() - 1
        })
    };
    let pair_nodes: Vec<(usize, usize)> = pairs.iter().map(|pair| (node(&pair.a), node(&pair.b))).collect();
    let mut union_find = UnionFind::new(instances.len(), &pair_nodes);
    let mut near_misses: Vec<usize> = Vec::new();
    for (index, &(a, b)) in pair_nodes.iter().enumerate() {
        if pairs[index].kind == CloneKind::T3 && pairs[index].a.unit.is_some() && pairs[index].b.unit.is_some() {
            near_misses.push(index);
        } else {
            union_find.union(a, b);
        }
    }
    // Blocks found from different seeds often cover nearly the same lines: one region of
    // code is one member, so mostly-overlapping blocks in a file join the same pattern.
    let mut blocks: Vec<usize> = (0..instances.len()).filter(|&i| instances[i].unit.is_none()).collect();
    blocks.sort_by_key(|&i| (instances[i].file, instances[i].start_line));
    for (position, &x) in blocks.iter().enumerate() {
        for &y in &blocks[position + 1..] {
            let (a, b) = (&instances[x], &instances[y]);
            if b.file != a.file || b.start_line > a.end_line {
                break;
            }
            let overlap = a.end_line.min(b.end_line).saturating_sub(b.start_line) + 1;
            let shorter = (a.end_line - a.start_line + 1).min(b.end_line - b.start_line + 1);
            if overlap * 2 >= shorter {
                union_find.union(x, y);
            }
        }
    }
    let strength = |pair: &ClonePair| pair.evidence.map_or(pair.similarity, |evidence| f64::from(evidence.score));
    near_misses.sort_by(|&x, &y| {
        strength(&pairs[y]).total_cmp(&strength(&pairs[x])).then(pairs[y].similarity.total_cmp(&pairs[x].similarity)).then(x.cmp(&y))
    });
    for index in near_misses {
        let (a, b) = pair_nodes[index];
        if union_find.dense_enough(a, b) {
            union_find.union(a, b);
        }
    }
    let mut components: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for index in 0..instances.len() {
        let root = union_find.find(index);
        components.entry(root).or_default().0.push(index);
    }
    // A pair belongs to the pattern holding both its sides; a pair between two patterns
    // (a link refused above) belongs to none.
    for (pair_index, &(a, b)) in pair_nodes.iter().enumerate() {
        let root = union_find.find(a);
        if root == union_find.find(b) {
            components.entry(root).or_default().1.push(pair_index);
        }
    }
    components.retain(|_, (members, pair_indices)| members.len() >= 2 && !pair_indices.is_empty());
    let mut patterns: Vec<Pattern> = components
        .into_values()
        .map(|(member_nodes, pair_indices)| {
            let mut members: Vec<Instance> = coalesce_blocks(member_nodes.iter().map(|&n| instances[n]).collect());
            members.sort_by(|x, y| (&files[x.file as usize].path, x.start_line, x.end_line).cmp(&(&files[y.file as usize].path, y.start_line, y.end_line)));
            let id = pattern_id(files, &members, pairs, &pair_indices);
            let legacy_id = legacy_pattern_id(pairs, &pair_indices);
            let label = labels.get(&id).or_else(|| labels.get(&legacy_id)).cloned().unwrap_or_default();
            let kind = pair_indices.iter().map(|&p| pairs[p].kind).max().unwrap_or(CloneKind::T1);
            let similarity = pair_indices.iter().map(|&p| pairs[p].similarity).fold(1.0, f64::min);
            let languages: BTreeSet<String> = members.iter().map(|m| files[m.file as usize].language.family().to_string()).collect();
            Pattern {
                auto_name: String::new(),
                user_name: label.name,
                note: label.note,
                id,
                legacy_id,
                kind,
                similarity,
                duplicated_lines: covered_lines(&members),
                languages: languages.into_iter().collect(),
                members,
                pairs: pair_indices,
            }
        })
        .collect();
    // Two patterns may share their most common shape (separate families of one shape kept
    // apart, copies of the same block): the later one in a stable order gets its first
    // member folded in.
    let mut order: Vec<usize> = (0..patterns.len()).collect();
    order.sort_by(|&x, &y| {
        let key = |p: &Pattern| (files[p.members[0].file as usize].path.clone(), p.members[0].start_line);
        key(&patterns[x]).cmp(&key(&patterns[y]))
    });
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for index in order {
        let pattern = &mut patterns[index];
        if !taken.insert(pattern.id.clone()) {
            let first = &pattern.members[0];
            let salted = blake3::hash(format!("{}|{}|{}", pattern.id, files[first.file as usize].path, first.start_line).as_bytes());
            let bytes = salted.as_bytes();
            pattern.id = shape_id(u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]));
            taken.insert(pattern.id.clone());
            let label = labels.get(&pattern.id).cloned().unwrap_or_default();
            pattern.user_name = label.name;
            pattern.note = label.note;
        }
    }
    patterns.sort_by(|x, y| {
        y.duplicated_lines.cmp(&x.duplicated_lines).then(y.members.len().cmp(&x.members.len())).then(x.id.cmp(&y.id))
    });
    patterns
}

/// One member per region: overlapping blocks of one file (found from different seeds)
/// become a single block spanning them.
fn coalesce_blocks(mut members: Vec<Instance>) -> Vec<Instance> {
    members.sort_by_key(|m| (m.unit.is_some(), m.file, m.token_start));
    let mut merged: Vec<Instance> = Vec::with_capacity(members.len());
    for member in members {
        if let Some(last) = merged.last_mut()
            && last.unit.is_none()
            && member.unit.is_none()
            && last.file == member.file
            && member.token_start < last.token_end
        {
            last.token_end = last.token_end.max(member.token_end);
            last.end_line = last.end_line.max(member.end_line);
            continue;
        }
        merged.push(member);
    }
    merged
}

/// The id of a family: the shape hash (`t2`) most of its unit members share, smallest on
/// ties, as `P-` and 16 hex digits. Every tier computes it: the edge files each unit under
/// that same hash, so the id names one family locally, in reports and on the edge. Adding
/// or removing a copy leaves it unchanged as long as the most common shape stays the most
/// common. A family of blocks only (no unit member) takes the content hash most of its
/// pairs share instead.
pub fn pattern_id(files: &[FileRecord], members: &[Instance], pairs: &[ClonePair], pair_indices: &[usize]) -> String {
    let mut shapes: BTreeMap<u64, usize> = BTreeMap::new();
    for member in members {
        if let Some(unit) = member.unit.and_then(|unit| files.get(member.file as usize)?.units.get(unit as usize)) {
            *shapes.entry(unit.hashes.t2).or_default() += 1;
        }
    }
    let most_shared = |counts: &BTreeMap<u64, usize>| counts.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0))).map(|(&hash, _)| hash);
    if let Some(shape) = most_shared(&shapes) {
        return shape_id(shape);
    }
    let mut contents: BTreeMap<u64, usize> = BTreeMap::new();
    for &index in pair_indices {
        *contents.entry(pairs[index].content).or_default() += 1;
    }
    shape_id(most_shared(&contents).unwrap_or(0))
}

/// A shape hash written as a pattern id.
pub fn shape_id(t2: u64) -> String {
    format!("P-{t2:016x}")
}

/// The shape hash of a pattern id (`P-` and 16 hex digits, any case).
pub fn parse_shape_id(id: &str) -> Option<u64> {
    let hex = id.strip_prefix("P-").or_else(|| id.strip_prefix("p-"))?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| u64::from_str_radix(hex, 16).ok()).flatten()
}

/// Whether `id` has the form of ids before they followed shapes (`P-` and 8 hex digits).
pub fn is_legacy_id(id: &str) -> bool {
    id.strip_prefix("P-").is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The id of earlier versions: the content hash shared by the most pairs (smallest on
/// ties), its top 32 bits. Kept so that names stored under it are found and re-keyed.
fn legacy_pattern_id(pairs: &[ClonePair], pair_indices: &[usize]) -> String {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for &index in pair_indices {
        *counts.entry(pairs[index].content).or_default() += 1;
    }
    let best = counts.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0))).map_or(0, |(&content, _)| content);
    format!("P-{:08x}", (best >> 32) as u32)
}

/// Labels found only under a pattern's legacy id: `(legacy id, id)` for each, so that the
/// caller can re-key what it stores or tell the user about what it may not change.
pub fn legacy_labels<'a>(patterns: &'a [Pattern], labels: &BTreeMap<String, PatternLabel>) -> Vec<(&'a str, &'a str)> {
    patterns
        .iter()
        .filter(|pattern| !labels.contains_key(&pattern.id) && labels.contains_key(&pattern.legacy_id))
        .map(|pattern| (pattern.legacy_id.as_str(), pattern.id.as_str()))
        .collect()
}

/// Lines covered by the instances, merging overlapping ranges within each file.
pub fn covered_lines(instances: &[Instance]) -> u64 {
    let mut by_file: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
    for instance in instances {
        by_file.entry(instance.file).or_default().push((instance.start_line, instance.end_line));
    }
    by_file.into_values().map(merged_length).sum()
}

/// Total length of inclusive line ranges, overlapping or adjacent ones merged.
pub fn merged_length(mut ranges: Vec<(u32, u32)>) -> u64 {
    ranges.sort_unstable();
    let mut total = 0u64;
    let mut current: Option<(u32, u32)> = None;
    for (start, end) in ranges {
        current = match current {
            Some((current_start, current_end)) if start <= current_end + 1 => Some((current_start, current_end.max(end))),
            Some((current_start, current_end)) => {
                total += u64::from(current_end - current_start + 1);
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((start, end)) = current {
        total += u64::from(end - start + 1);
    }
    total
}

/// The name to show for an instance: the unit's name, or for a block the innermost unit
/// around it (empty at top level).
pub fn instance_name(files: &[FileRecord], instance: &Instance) -> String {
    let record = &files[instance.file as usize];
    if let Some(unit) = instance.unit {
        return record.units.get(unit as usize).map(|u| u.name.clone()).unwrap_or_default();
    }
    record
        .units
        .iter()
        .filter(|u| u.token_start <= instance.token_start && instance.token_end <= u.token_end)
        .min_by_key(|u| u.token_end - u.token_start)
        .map(|u| u.name.clone())
        .unwrap_or_default()
}

/// Splits an identifier into its words, keeping their case: on non-alphanumerics and on
/// lower-to-upper changes (`parseConfigFile`, `load_user_DB`).
pub fn split_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for character in name.chars() {
        if !character.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if character.is_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = character.is_lowercase() || character.is_numeric();
        current.push(character);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_lines_count_overlaps_once() {
        assert_eq!(merged_length(vec![(1, 10), (5, 12), (20, 20)]), 13);
    }

    /// One file of eight small functions, each a unit.
    fn eight_units() -> FileRecord {
        let source: String = (0..8).map(|i| format!("def f{i}(x):\n    y = x + {i}\n    return y * 2\n\n")).collect();
        let analysis = crate::analysis::analyze(crate::Language::Python, &source);
        let settings = crate::config::DetectionSettings { min_lines: 1, min_tokens: 1, ..Default::default() };
        let file = FileRecord::from_analysis("f.py".into(), crate::Language::Python, [0; 32], source.len() as u64, 0, &analysis, &settings);
        assert_eq!(file.units.len(), 8, "every function is a unit");
        file
    }

    fn unit_pair(file: &FileRecord, x: usize, y: usize, kind: CloneKind) -> ClonePair {
        let instance = |u: usize| {
            let unit = &file.units[u];
            Instance { file: 0, start_line: unit.start_line, end_line: unit.end_line, unit: Some(u as u32), token_start: unit.token_start, token_end: unit.token_end }
        };
        let evidence = (kind == CloneKind::T3).then(|| crate::verify::Evidence { score: 0.9, ..Default::default() });
        ClonePair { a: instance(x), b: instance(y), kind, similarity: if kind == CloneKind::T3 { 0.8 } else { 1.0 }, content: x as u64, evidence }
    }

    /// Two families of four exact copies each (units 0-3 and 4-7).
    fn two_families(file: &FileRecord) -> Vec<ClonePair> {
        let mut pairs = Vec::new();
        for family in [0..4, 4..8] {
            for x in family.clone() {
                for y in x + 1..family.end {
                    pairs.push(unit_pair(file, x, y, CloneKind::T2));
                }
            }
        }
        pairs
    }

    #[test]
    fn one_near_miss_edge_does_not_chain_two_families() {
        let file = eight_units();
        let mut pairs = two_families(&file);
        pairs.push(unit_pair(&file, 0, 4, CloneKind::T3));
        let patterns = build_patterns(std::slice::from_ref(&file), &pairs, &BTreeMap::new(), &NoText);
        let sizes: Vec<usize> = patterns.iter().map(|p| p.members.len()).collect();
        assert_eq!(sizes, vec![4, 4], "the bridge between the families is refused");
    }

    #[test]
    fn densely_linked_families_form_one_pattern() {
        let file = eight_units();
        let mut pairs = two_families(&file);
        for x in 0..4 {
            for y in 4..8 {
                if (x + y) % 2 == 0 {
                    pairs.push(unit_pair(&file, x, y, CloneKind::T3));
                }
            }
        }
        let patterns = build_patterns(std::slice::from_ref(&file), &pairs, &BTreeMap::new(), &NoText);
        let sizes: Vec<usize> = patterns.iter().map(|p| p.members.len()).collect();
        assert_eq!(sizes, vec![8], "half of the cross pairs linked: one family");
        assert_eq!(patterns[0].kind, CloneKind::T3);
    }
}
