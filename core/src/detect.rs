//! Clone detection over fingerprinted files.
//!
//! - Type-1/Type-2 units: grouped by exact hashes (no token access needed).
//! - Type-3 units: LSH band buckets give candidates, ranked by the sketch's Jaccard
//!   estimate, each verified by `similarity::similarity` on the real tokens.
//! - Blocks: files sharing a winnowed k-gram are extended token by token into maximal
//!   runs (as PMD CPD and jscpd do, but on normalised tokens), then checked for a
//!   consistent renaming so shape-alike code does not count.
//!
//! Work is incremental: only pairs touching a dirty (re-parsed) file are computed; pairs
//! between two clean files come from the index. Token streams are fetched through
//! `TokenSource`, which re-parses clean files on demand.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;

use crate::analysis::{FileTokens, SYM_BARRIER, SYM_IDENTIFIER};
use crate::config::Config;
use crate::fingerprint::{self, BAND_COUNT};
use crate::model::{ClonePair, CloneKind, FileRecord, Instance};
use crate::similarity::{self, TokenRun};

/// Gives the token stream of a file by index; `None` if it can no longer be read.
pub trait TokenSource: Sync {
    fn tokens(&self, file: u32) -> Option<Arc<FileTokens>>;
}

/// Exact-hash groups larger than this are linked as a star, not every pair.
const MAX_GROUP_FOR_ALL_PAIRS: usize = 40;
/// Candidates verified per unit, best Jaccard estimate first.
const MAX_CANDIDATES_PER_UNIT: usize = 24;
/// Buckets shared by more units than this are too common to be evidence.
const MAX_BUCKET: usize = 2000;
/// Winnow hashes seen more often than this are boilerplate, not copies.
const MAX_WINNOW_OCCURRENCES: usize = 24;
/// Sketches estimating less overlap than this are not verified.
const MIN_ESTIMATED_JACCARD: f64 = 0.2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct UnitRef {
    file: u32,
    unit: u32,
}

pub struct Detector<'a> {
    pub files: &'a [FileRecord],
    pub dirty: &'a [bool],
    pub config: &'a Config,
    pub tokens: &'a dyn TokenSource,
}

impl Detector<'_> {
    fn unit(&self, unit: UnitRef) -> &crate::model::UnitRecord {
        &self.files[unit.file as usize].units[unit.unit as usize]
    }

    fn instance(&self, unit: UnitRef) -> Instance {
        let record = self.unit(unit);
        Instance {
            file: unit.file,
            start_line: record.start_line,
            end_line: record.end_line,
            unit: Some(unit.unit),
            token_start: record.token_start,
            token_end: record.token_end,
        }
    }

    fn is_dirty(&self, file: u32) -> bool {
        self.dirty.get(file as usize).copied().unwrap_or(true)
    }

    fn all_units(&self) -> Vec<UnitRef> {
        self.files
            .iter()
            .enumerate()
            .flat_map(|(file, record)| (0..record.units.len()).map(move |unit| UnitRef { file: file as u32, unit: unit as u32 }))
            .collect()
    }

    /// Whether one unit contains the other (a closure and its enclosing function).
    fn nested(&self, a: UnitRef, b: UnitRef) -> bool {
        if a.file != b.file {
            return false;
        }
        let (x, y) = (self.unit(a), self.unit(b));
        (x.start_byte <= y.start_byte && y.end_byte <= x.end_byte) || (y.start_byte <= x.start_byte && x.end_byte <= y.end_byte)
    }

    /// Runs detection. `previous` holds earlier Type-3 and block pairs, already mapped to
    /// current file indices; those between clean files are kept as they are.
    pub fn detect(&self, previous: &[ClonePair]) -> Vec<ClonePair> {
        let units = self.all_units();
        let mut pairs = self.exact_unit_pairs(&units);
        let exact: HashSet<(UnitRef, UnitRef)> = pairs.iter().filter_map(|pair| unit_key(pair)).collect();
        let kept_previous = previous.iter().filter(|pair| !self.is_dirty(pair.a.file) && !self.is_dirty(pair.b.file));
        let (previous_units, previous_blocks): (Vec<ClonePair>, Vec<ClonePair>) =
            kept_previous.partition(|pair| pair.a.unit.is_some() && pair.b.unit.is_some());
        pairs.extend(previous_units.into_iter().filter(|pair| unit_key(pair).is_none_or(|key| !exact.contains(&key))));
        pairs.extend(self.near_miss_unit_pairs(&units, &exact));
        let pairs = self.drop_nested_pairs(pairs);
        let mut blocks = if self.config.detection.blocks || self.config.per_language.values().any(|s| s.blocks) {
            self.block_pairs()
        } else {
            Vec::new()
        };
        blocks.extend(previous_blocks);
        let mut all = pairs;
        let covered = self.unit_pair_index(&all);
        all.extend(blocks.into_iter().filter(|block| !self.covered_by_unit_pair(block, &covered)));
        all.sort_by(|x, y| (x.a, x.b).cmp(&(y.a, y.b)));
        all.dedup_by(|x, y| x.a == y.a && x.b == y.b);
        all
    }

    /// Type-1 and Type-2 pairs: units with equal consistent-renaming hashes.
    fn exact_unit_pairs(&self, units: &[UnitRef]) -> Vec<ClonePair> {
        let mut groups: HashMap<u64, Vec<UnitRef>> = HashMap::new();
        for &unit in units {
            groups.entry(self.unit(unit).hashes.tc).or_default().push(unit);
        }
        let mut pairs = Vec::new();
        for (content, members) in groups {
            if members.len() < 2 {
                continue;
            }
            let mut push = |a: UnitRef, b: UnitRef| {
                if self.nested(a, b) {
                    return;
                }
                let kind = if self.unit(a).hashes.t1 == self.unit(b).hashes.t1 { CloneKind::T1 } else { CloneKind::T2 };
                pairs.push(ClonePair { a: self.instance(a), b: self.instance(b), kind, similarity: 1.0, content });
            };
            if members.len() <= MAX_GROUP_FOR_ALL_PAIRS {
                for (index, &a) in members.iter().enumerate() {
                    for &b in &members[index + 1..] {
                        push(a, b);
                    }
                }
            } else {
                for &b in &members[1..] {
                    push(members[0], b);
                }
            }
        }
        pairs
    }

    /// Type-3 pairs touching at least one dirty unit: LSH candidates, verified on tokens.
    fn near_miss_unit_pairs(&self, units: &[UnitRef], exact: &HashSet<(UnitRef, UnitRef)>) -> Vec<ClonePair> {
        let mut buckets: HashMap<u64, Vec<u32>> = HashMap::with_capacity(units.len() * 4);
        let band_keys: Vec<[u64; BAND_COUNT]> = units.par_iter().map(|&unit| fingerprint::band_keys(&self.unit(unit).sketch)).collect();
        for (index, keys) in band_keys.iter().enumerate() {
            for &key in keys {
                buckets.entry(key).or_default().push(index as u32);
            }
        }
        let dirty_units: Vec<u32> =
            (0..units.len() as u32).filter(|&index| self.is_dirty(units[index as usize].file)).collect();
        let candidates: Vec<(u32, u32)> = dirty_units
            .par_iter()
            .flat_map_iter(|&index| {
                let unit = units[index as usize];
                let sketch = &self.unit(unit).sketch;
                let mut seen: HashSet<u32> = HashSet::new();
                for key in &band_keys[index as usize] {
                    let Some(bucket) = buckets.get(key) else { continue };
                    if bucket.len() > MAX_BUCKET {
                        continue;
                    }
                    seen.extend(bucket.iter().copied().filter(|&other| other != index));
                }
                let mut ranked: Vec<(f64, u32)> = seen
                    .into_iter()
                    .filter(|&other| {
                        let other_unit = units[other as usize];
                        // A pair of two dirty units is produced once, from its smaller index.
                        !(self.is_dirty(other_unit.file) && other < index)
                    })
                    .map(|other| (fingerprint::estimated_jaccard(sketch, &self.unit(units[other as usize]).sketch), other))
                    .filter(|&(estimate, _)| estimate >= MIN_ESTIMATED_JACCARD)
                    .collect();
                ranked.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
                ranked.truncate(MAX_CANDIDATES_PER_UNIT);
                ranked.into_iter().map(move |(_, other)| (index.min(other), index.max(other)))
            })
            .collect();
        let mut candidates = candidates;
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .par_iter()
            .filter_map(|&(x, y)| {
                let (a, b) = (units[x as usize], units[y as usize]);
                if exact.contains(&(a, b)) || exact.contains(&(b, a)) || self.nested(a, b) {
                    return None;
                }
                let (record_a, record_b) = (self.unit(a), self.unit(b));
                if record_a.hashes.tc == record_b.hashes.tc {
                    return None;
                }
                let threshold = self.config.detection_for(self.files[a.file as usize].language).similarity;
                let tokens_a = self.tokens.tokens(a.file)?;
                let tokens_b = self.tokens.tokens(b.file)?;
                let run_a = run(&tokens_a, record_a.token_start, record_a.token_end)?;
                let run_b = run(&tokens_b, record_b.token_start, record_b.token_end)?;
                let score = similarity::similarity(run_a, run_b, threshold)?;
                Some(ClonePair {
                    a: self.instance(a),
                    b: self.instance(b),
                    kind: CloneKind::T3,
                    similarity: score,
                    content: record_a.hashes.tc.min(record_b.hashes.tc),
                })
            })
            .collect()
    }

    /// Drops a unit pair when the units' enclosing units already form a pair: the copy of
    /// a function reports the function, not each closure inside it again.
    fn drop_nested_pairs(&self, pairs: Vec<ClonePair>) -> Vec<ClonePair> {
        let keys: HashSet<(UnitRef, UnitRef)> = pairs.iter().filter_map(unit_key).collect();
        let ancestors = |unit: UnitRef| {
            let mut chain = Vec::new();
            let mut current = self.unit(unit).parent;
            while let Some(parent) = current {
                let parent_ref = UnitRef { file: unit.file, unit: parent };
                chain.push(parent_ref);
                current = self.unit(parent_ref).parent;
            }
            chain
        };
        pairs
            .into_iter()
            .filter(|pair| {
                let Some((a, b)) = unit_key(pair) else { return true };
                let (outer_a, outer_b) = (ancestors(a), ancestors(b));
                if outer_a.is_empty() && outer_b.is_empty() {
                    return true;
                }
                let candidates_a: Vec<UnitRef> = std::iter::once(a).chain(outer_a).collect();
                let candidates_b: Vec<UnitRef> = std::iter::once(b).chain(outer_b).collect();
                !candidates_a.iter().any(|&x| {
                    candidates_b.iter().any(|&y| (x, y) != (a, b) && (keys.contains(&(x, y)) || keys.contains(&(y, x))))
                })
            })
            .collect()
    }

    fn unit_pair_index(&self, pairs: &[ClonePair]) -> HashMap<(u32, u32), Vec<(Instance, Instance)>> {
        let mut index: HashMap<(u32, u32), Vec<(Instance, Instance)>> = HashMap::new();
        for pair in pairs {
            index.entry((pair.a.file, pair.b.file)).or_default().push((pair.a, pair.b));
            index.entry((pair.b.file, pair.a.file)).or_default().push((pair.b, pair.a));
        }
        index
    }

    fn covered_by_unit_pair(&self, block: &ClonePair, index: &HashMap<(u32, u32), Vec<(Instance, Instance)>>) -> bool {
        let inside = |inner: &Instance, outer: &Instance| outer.token_start <= inner.token_start && inner.token_end <= outer.token_end;
        index
            .get(&(block.a.file, block.b.file))
            .is_some_and(|pairs| pairs.iter().any(|(x, y)| inside(&block.a, x) && inside(&block.b, y)))
    }

    /// Maximal shared token runs seeded by common winnowed k-grams, for runs touching a
    /// dirty file.
    fn block_pairs(&self) -> Vec<ClonePair> {
        let mut entries: Vec<(u32, u32, u32)> = Vec::new();
        for (file, record) in self.files.iter().enumerate() {
            if !self.config.detection_for(record.language).blocks {
                continue;
            }
            entries.extend(record.winnows.iter().map(|w| (w.hash, file as u32, w.position)));
        }
        entries.par_sort_unstable();
        let mut seeds: Vec<((u32, u32), (u32, u32))> = Vec::new();
        let mut start = 0;
        while start < entries.len() {
            let mut end = start + 1;
            while end < entries.len() && entries[end].0 == entries[start].0 {
                end += 1;
            }
            let group = &entries[start..end];
            if group.len() >= 2 && group.len() <= MAX_WINNOW_OCCURRENCES && group.iter().any(|e| self.is_dirty(e.1)) {
                for (index, x) in group.iter().enumerate() {
                    for y in &group[index + 1..] {
                        if self.is_dirty(x.1) || self.is_dirty(y.1) {
                            seeds.push(((x.1, x.2), (y.1, y.2)));
                        }
                    }
                }
            }
            start = end;
        }
        // Group seeds by file pair so each pair of token streams is fetched once.
        let mut by_files: HashMap<(u32, u32), Vec<(u32, u32)>> = HashMap::new();
        for ((file_a, pos_a), (file_b, pos_b)) in seeds {
            let (first, second) = if (file_a, pos_a) <= (file_b, pos_b) { ((file_a, pos_a), (file_b, pos_b)) } else { ((file_b, pos_b), (file_a, pos_a)) };
            by_files.entry((first.0, second.0)).or_default().push((first.1, second.1));
        }
        let mut work: Vec<((u32, u32), Vec<(u32, u32)>)> = by_files.into_iter().collect();
        work.sort_unstable_by_key(|(files, _)| *files);
        work.par_iter()
            .flat_map_iter(|&((file_a, file_b), ref positions)| self.extend_seeds(file_a, file_b, positions))
            .collect()
    }

    fn extend_seeds(&self, file_a: u32, file_b: u32, positions: &[(u32, u32)]) -> Vec<ClonePair> {
        let (Some(tokens_a), Some(tokens_b)) = (self.tokens.tokens(file_a), self.tokens.tokens(file_b)) else {
            return Vec::new();
        };
        let language = self.files[file_a as usize].language;
        let settings = self.config.detection_for(language);
        let (syms_a, syms_b) = (&tokens_a.syms, &tokens_b.syms);
        let mut found: HashSet<(u32, u32)> = HashSet::new();
        let mut pairs = Vec::new();
        for &(pos_a, pos_b) in positions {
            let (pos_a, pos_b) = (pos_a as usize, pos_b as usize);
            if pos_a >= syms_a.len() || pos_b >= syms_b.len() || syms_a[pos_a] != syms_b[pos_b] || syms_a[pos_a] == SYM_BARRIER {
                continue;
            }
            let (mut start_a, mut start_b) = (pos_a, pos_b);
            while start_a > 0 && start_b > 0 && syms_a[start_a - 1] == syms_b[start_b - 1] && syms_a[start_a - 1] != SYM_BARRIER {
                start_a -= 1;
                start_b -= 1;
            }
            if !found.insert((start_a as u32, start_b as u32)) {
                continue;
            }
            let mut length = 0;
            while start_a + length < syms_a.len()
                && start_b + length < syms_b.len()
                && syms_a[start_a + length] == syms_b[start_b + length]
                && syms_a[start_a + length] != SYM_BARRIER
            {
                length += 1;
            }
            if file_a == file_b && start_a + length > start_b && start_b + length > start_a {
                // A run overlapping itself is repetition inside one region, not a copy.
                continue;
            }
            if let Some(pair) = self.accept_block(file_a, file_b, &tokens_a, &tokens_b, start_a, start_b, length, settings) {
                pairs.push(pair);
            }
        }
        pairs
    }

    #[allow(clippy::too_many_arguments)]
    fn accept_block(
        &self,
        file_a: u32,
        file_b: u32,
        tokens_a: &FileTokens,
        tokens_b: &FileTokens,
        start_a: usize,
        start_b: usize,
        length: usize,
        settings: &crate::config::DetectionSettings,
    ) -> Option<ClonePair> {
        if length < settings.min_tokens as usize {
            return None;
        }
        let (end_a, end_b) = (start_a + length - 1, start_b + length - 1);
        let lines_a = tokens_a.line(end_a) - tokens_a.line(start_a) + 1;
        let lines_b = tokens_b.line(end_b) - tokens_b.line(start_b) + 1;
        if lines_a.min(lines_b) < settings.min_lines {
            return None;
        }
        // Renaming check: identical texts, or identifiers following one renaming.
        // Identifiers and literals are judged separately: a table with the same keys but
        // other values (locale data, fixtures) is not a copy either.
        let (mut identifiers, mut identical_identifiers) = (0usize, 0usize);
        let (mut literals, mut identical_literals) = (0usize, 0usize);
        let mut renamings: HashMap<(u32, u32), u32> = HashMap::new();
        let mut all_identical = true;
        for offset in 0..length {
            let (text_a, text_b) = (tokens_a.texts[start_a + offset], tokens_b.texts[start_b + offset]);
            let sym = tokens_a.syms[start_a + offset];
            if text_a != text_b {
                all_identical = false;
            }
            if sym == SYM_IDENTIFIER {
                identifiers += 1;
                identical_identifiers += usize::from(text_a == text_b);
                *renamings.entry((text_a, text_b)).or_default() += 1;
            } else if fingerprint::is_param(sym) {
                literals += 1;
                identical_literals += usize::from(text_a == text_b);
            }
        }
        let kind = if all_identical {
            CloneKind::T1
        } else {
            // Mostly-renamed runs are code of the same shape, not a copy.
            if identical_identifiers * 2 < identifiers || identical_literals * 2 < literals {
                return None;
            }
            let consistent = consistent_count(&renamings);
            if (consistent as f64) < 0.9 * identifiers as f64 {
                return None;
            }
            CloneKind::T2
        };
        // The exact text of side a: copies of the same code share it across machines.
        let mut content = blake3::Hasher::new();
        for &text in &tokens_a.texts[start_a..start_a + length] {
            content.update(&text.to_le_bytes());
        }
        let bytes = content.finalize();
        let content = u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or([0; 8]));
        let instance = |file: u32, tokens: &FileTokens, start: usize, end: usize| Instance {
            file,
            start_line: tokens.line(start),
            end_line: tokens.line(end),
            unit: None,
            token_start: start as u32,
            token_end: end as u32 + 1,
        };
        Some(ClonePair {
            a: instance(file_a, tokens_a, start_a, end_a),
            b: instance(file_b, tokens_b, start_b, end_b),
            kind,
            similarity: 1.0,
            content,
        })
    }
}

fn consistent_count(renamings: &HashMap<(u32, u32), u32>) -> usize {
    let mut forward: HashMap<u32, u32> = HashMap::new();
    let mut backward: HashMap<u32, u32> = HashMap::new();
    let mut consistent = 0usize;
    let mut ordered: Vec<(&(u32, u32), &u32)> = renamings.iter().collect();
    ordered.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    for (&(x, y), &count) in ordered {
        let forward_ok = *forward.entry(x).or_insert(y) == y;
        let backward_ok = *backward.entry(y).or_insert(x) == x;
        if forward_ok && backward_ok {
            consistent += count as usize;
        }
    }
    consistent
}

fn unit_key(pair: &ClonePair) -> Option<(UnitRef, UnitRef)> {
    Some((UnitRef { file: pair.a.file, unit: pair.a.unit? }, UnitRef { file: pair.b.file, unit: pair.b.unit? }))
}

fn run(tokens: &FileTokens, start: u32, end: u32) -> Option<TokenRun<'_>> {
    let (start, end) = (start as usize, end as usize);
    if end > tokens.len() || start > end {
        return None;
    }
    Some(TokenRun { syms: &tokens.syms[start..end], texts: &tokens.texts[start..end] })
}
