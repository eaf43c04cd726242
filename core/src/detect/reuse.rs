//! Near-miss pairs of one edited file, reusing what the units an edit left alone found
//! the last time. An edit changes a function or two of a file, yet verifying every unit of
//! the file against its candidates again was half the time from keystroke to diagnostics.
//!
//! Each pair of an edited file is proposed by exactly one of its units (a pair with
//! another file by the unit in this one, a pair within the file by its earlier unit), so
//! what a unit proposed and verified is kept per unit (`NearMissMemo`). A unit's proposal
//! and verdicts read: its own record and tokens; the index entries under its keys (who
//! holds them and how many do); the records and tokens of the units it met; and, when
//! names are weighed, the frequency of each name weighed and the index's unit count. When
//! only this file changed since, a unit whose content is the same, that shares too few keys
//! with every changed unit it could meet for that unit to be counted (a unit never meets
//! the units before it in its file, nor those enclosing or enclosed by it), whose keys are
//! held by as many units as before or at least on the same side of each lookup's limit,
//! and whose verdicts weighed no name whose frequency changed (nor any name, when the unit
//! count changed) would propose and verify the same again: its pairs are taken over with
//! its units' current positions. Everything else is computed as `Detector::detect_dirty` does,
//! and the exact pairs, blocks and nested-pair filtering are computed afresh each time.

use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::{Candidate, DENSE_FAMILY_PAIRS, Detector, MIN_SHARED_BANDS, MIN_SHARED_GRAMS, MIN_SHARED_NAMES, MeetCounts, Quota, UnitNumbering, VERIFICATION_JOB_PAIRS, VerificationJob, unit_key};
use crate::analysis::FileTokens;
use crate::candidates::{MAX_BUCKET, MAX_GRAM_POSTINGS, MAX_NAME_POSTINGS, UnitRef};
use crate::fingerprint;
use crate::model::{ClonePair, FileRecord, UnitRecord};

/// What the units of one file proposed and found in its last near-miss detection, and the
/// file as it then was.
pub struct NearMissMemo {
    file: u32,
    record: FileRecord,
    tokens: Arc<FileTokens>,
    unit_count: usize,
    proposers: Vec<ProposerMemo>,
    /// How many units took over what they had found before, in the detection that left it.
    reused: usize,
}

impl NearMissMemo {
    /// The file the memo is of.
    pub fn file(&self) -> u32 {
        self.file
    }

    /// How many of the file's units took over their earlier pairs in the detection that
    /// left this memo, and how many units the file has.
    pub fn reused(&self) -> (usize, usize) {
        (self.reused, self.proposers.len())
    }
}

/// What one unit proposed and found.
#[derive(Clone, Default)]
struct ProposerMemo {
    /// First-pass candidates (what a dense pass leaves out).
    first: Vec<Candidate>,
    first_pairs: Vec<ClonePair>,
    /// The dense-family pass's pairs, when the unit took one.
    dense: Option<Vec<ClonePair>>,
    /// Names whose frequency its verdicts weighed, sorted.
    names: Vec<u32>,
}

/// How the units of the file now relate to the memo's.
struct Plan {
    /// For each unit now, the memo's unit with the same content (order kept).
    old_of_new: Vec<Option<u32>>,
    new_of_old: Vec<Option<u32>>,
    /// For each unit now, whether its memo may be taken over.
    reusable: Vec<bool>,
}

impl Detector<'_> {
    /// Every pair touching `file`, the only dirty file, as `detect_dirty` gives them,
    /// reusing `previous` (this file's memo from its last detection, when nothing but this
    /// file changed since) for the units an edit left alone. `tokens` is the file's current
    /// stream. Returns the pairs and the memo for the next edit.
    pub fn detect_file_reusing(&self, file: u32, tokens: Arc<FileTokens>, previous: Option<&NearMissMemo>) -> (Vec<ClonePair>, NearMissMemo) {
        let started = std::time::Instant::now();
        let plan = previous.and_then(|memo| self.plan(file, &tokens, memo));
        let mut pairs = self.exact_pairs_of_dirty();
        let exact: HashSet<(UnitRef, UnitRef)> = pairs.iter().filter_map(unit_key).collect();
        let (near_miss, proposers, reused) = self.near_miss_of_file(file, &exact, previous.zip(plan.as_ref()));
        pairs.extend(near_miss);
        tracing::debug!(units = proposers.len(), reused, elapsed_ms = started.elapsed().as_millis() as u64, "unit pairs of an edited file");
        let memo = NearMissMemo { file, record: self.files[file as usize].clone(), tokens, unit_count: self.index.unit_count(), proposers, reused };
        (self.with_blocks(self.drop_nested_pairs(pairs), Vec::new()), memo)
    }

    /// The near-miss pairs proposed by the units of `file`, with each unit's memo and how
    /// many units' memos were taken over.
    fn near_miss_of_file(&self, file: u32, exact: &HashSet<(UnitRef, UnitRef)>, reuse: Option<(&NearMissMemo, &Plan)>) -> (Vec<ClonePair>, Vec<ProposerMemo>, usize) {
        let count = self.files[file as usize].units.len();
        let mut proposers: Vec<ProposerMemo> = vec![ProposerMemo::default(); count];
        let mut taken = vec![false; count];
        let not_exact = |pair: &ClonePair| unit_key(pair).is_none_or(|(a, b)| !exact.contains(&(a, b)) && !exact.contains(&(b, a)));
        if let Some((memo, plan)) = reuse {
            for (unit, (old, reusable)) in plan.old_of_new.iter().zip(&plan.reusable).enumerate() {
                let Some(old) = old.filter(|_| *reusable) else { continue };
                let Some(kept) = memo.proposers.get(old as usize) else { continue };
                let Some(mut moved) = self.moved(file, kept, &plan.new_of_old) else { continue };
                moved.first_pairs.retain(not_exact);
                if let Some(dense) = &mut moved.dense {
                    dense.retain(not_exact);
                }
                proposers[unit] = moved;
                taken[unit] = true;
            }
        }
        let reused = taken.iter().filter(|&&taken| taken).count();
        let numbering = UnitNumbering::of(self.files);
        let frequencies = self.index.name_frequencies();
        // Candidates of `units` with their proposer, sorted by pair (a job's pairs then
        // mostly share side a), and the verdicts with the names each one weighed.
        let propose = |units: &[u32], quota: Quota| -> Vec<(u32, Vec<Candidate>)> {
            units
                .par_iter()
                .map_init(
                    || MeetCounts::new(numbering.len()),
                    |counts, &unit| (unit, self.candidates_of(UnitRef { file, unit }, &numbering, counts, quota)),
                )
                .collect()
        };
        let verify_all = |proposed: &[(u32, Vec<Candidate>)]| -> Vec<(u32, Option<ClonePair>, Vec<u32>)> {
            let mut flat: Vec<(u32, Candidate)> = proposed.iter().flat_map(|(unit, candidates)| candidates.iter().map(|&candidate| (*unit, candidate))).collect();
            flat.sort_unstable_by_key(|(_, candidate)| (candidate.a, candidate.b));
            flat.par_iter()
                .with_max_len(VERIFICATION_JOB_PAIRS)
                .map_init(
                    || VerificationJob { read: Some(Default::default()), ..VerificationJob::default() },
                    |job, &(unit, candidate)| {
                        if exact.contains(&(candidate.a, candidate.b)) || exact.contains(&(candidate.b, candidate.a)) {
                            return (unit, None, Vec::new());
                        }
                        let pair = self.verify_units(&candidate, None, frequencies.as_ref(), job);
                        let read = job.read.as_ref().map(|read| std::mem::take(&mut *read.borrow_mut())).unwrap_or_default();
                        (unit, pair, read)
                    },
                )
                .collect()
        };
        let fresh: Vec<u32> = (0..count as u32).filter(|&unit| !taken[unit as usize]).collect();
        let proposed = propose(&fresh, Quota::FIRST);
        for (unit, pair, read) in verify_all(&proposed) {
            let proposer = &mut proposers[unit as usize];
            proposer.first_pairs.extend(pair);
            proposer.names.extend(read);
        }
        for (unit, mut candidates) in proposed {
            candidates.sort_unstable_by_key(|candidate| (candidate.a, candidate.b));
            proposers[unit as usize].first = candidates;
        }
        // Dense families as `near_miss_unit_pairs` finds them: from every first-pass pair.
        let mut accepted: HashMap<UnitRef, usize> = HashMap::default();
        for (a, b) in proposers.iter().flat_map(|proposer| &proposer.first_pairs).filter_map(unit_key) {
            *accepted.entry(a).or_default() += 1;
            *accepted.entry(b).or_default() += 1;
        }
        let dense = |unit: u32| accepted.get(&UnitRef { file, unit }).is_some_and(|&count| count >= DENSE_FAMILY_PAIRS);
        let mut asking: Vec<u32> = Vec::new();
        for unit in 0..count as u32 {
            let proposer = &mut proposers[unit as usize];
            if !dense(unit) {
                proposer.dense = None;
            } else if !(taken[unit as usize] && proposer.dense.is_some()) {
                proposer.dense = None;
                asking.push(unit);
            }
        }
        if !asking.is_empty() {
            let mut more = propose(&asking, Quota::DENSE);
            for (unit, candidates) in &mut more {
                let known = &proposers[*unit as usize].first;
                candidates.retain(|candidate| known.binary_search_by_key(&(candidate.a, candidate.b), |known| (known.a, known.b)).is_err());
            }
            for (unit, _) in &more {
                proposers[*unit as usize].dense = Some(Vec::new());
            }
            for (unit, pair, read) in verify_all(&more) {
                let proposer = &mut proposers[unit as usize];
                proposer.dense.get_or_insert_default().extend(pair);
                proposer.names.extend(read);
            }
        }
        let mut pairs = Vec::new();
        for proposer in &mut proposers {
            proposer.names.sort_unstable();
            proposer.names.dedup();
            pairs.extend(proposer.first_pairs.iter().copied());
            pairs.extend(proposer.dense.iter().flatten().copied());
        }
        (pairs, proposers, reused)
    }

    /// A unit's memo with this file's units renumbered as they are now and every side at
    /// its current position; `None` when it names a unit that is gone.
    fn moved(&self, file: u32, kept: &ProposerMemo, new_of_old: &[Option<u32>]) -> Option<ProposerMemo> {
        let unit = |old: UnitRef| -> Option<UnitRef> {
            if old.file != file {
                return Some(old);
            }
            Some(UnitRef { file, unit: (*new_of_old.get(old.unit as usize)?)? })
        };
        let candidate = |candidate: &Candidate| Some(Candidate { a: unit(candidate.a)?, b: unit(candidate.b)?, sources: candidate.sources });
        let pair = |pair: &ClonePair| -> Option<ClonePair> {
            let (a, b) = unit_key(pair)?;
            Some(ClonePair { a: self.instance(unit(a)?), b: self.instance(unit(b)?), ..*pair })
        };
        Some(ProposerMemo {
            first: kept.first.iter().map(candidate).collect::<Option<_>>()?,
            first_pairs: kept.first_pairs.iter().map(pair).collect::<Option<_>>()?,
            dense: match &kept.dense {
                Some(dense) => Some(dense.iter().map(pair).collect::<Option<_>>()?),
                None => None,
            },
            names: kept.names.clone(),
        })
    }

    /// Which units of `file` may take over their memo; `None` when none may (another file,
    /// another language, or units whose nesting changed).
    fn plan(&self, file: u32, tokens: &FileTokens, memo: &NearMissMemo) -> Option<Plan> {
        let record = &self.files[file as usize];
        if memo.file != file || memo.record.language != record.language || memo.proposers.len() != memo.record.units.len() {
            return None;
        }
        let (old_units, new_units) = (&memo.record.units, &record.units);
        if old_units.iter().chain(new_units).any(|unit| unit.sketch.is_none()) {
            return None;
        }
        let same = |old: usize, new: usize| same_unit(&old_units[old], &memo.tokens, &new_units[new], tokens);
        let (old_of_new, new_of_old) = match_units(old_units, new_units, same);
        // Nesting decides which units a unit may be paired with: it must be the same
        // between every two units matched.
        let matched_ancestors = |units: &[UnitRecord], unit: usize, map: &[Option<u32>]| -> Vec<u32> {
            let mut chain = Vec::new();
            let mut current = units[unit].parent;
            while let Some(parent) = current {
                if let Some(mapped) = map[parent as usize] {
                    chain.push(mapped);
                }
                current = units[parent as usize].parent;
            }
            chain
        };
        let identity: Vec<Option<u32>> = (0..new_units.len() as u32).map(Some).collect();
        for (new, old) in old_of_new.iter().enumerate() {
            let Some(old) = *old else { continue };
            if matched_ancestors(old_units, old as usize, &new_of_old) != matched_ancestors(new_units, new, &identity).into_iter().filter(|&unit| old_of_new[unit as usize].is_some()).collect::<Vec<_>>() {
                return None;
            }
        }
        // The keys of the changed units, before and after: the units under every other key
        // are the same ones, in the same order.
        let mut changed = ChangedKeys::default();
        for (old, unit) in old_units.iter().enumerate() {
            if new_of_old[old].is_none() {
                changed.add(unit, old as u32, Side::Before);
            }
        }
        for (new, unit) in new_units.iter().enumerate() {
            if old_of_new[new].is_none() {
                changed.add(unit, new as u32, Side::After);
            }
        }
        // A name's frequency is how many units hold it in their name sample.
        let reweighed: HashSet<u32> = changed.names.iter().filter(|(_, holders)| holders.before.len() != holders.after.len()).map(|(&name, _)| name).collect();
        let unit_count_same = memo.unit_count == self.index.unit_count();
        let reusable = old_of_new
            .iter()
            .enumerate()
            .map(|(new, old)| {
                let Some(old) = *old else { return false };
                let Some(kept) = memo.proposers.get(old as usize) else { return false };
                if (!kept.names.is_empty() && !unit_count_same) || kept.names.iter().any(|name| reweighed.contains(name)) {
                    return false;
                }
                let (old_unit, new_unit) = (&old_units[old as usize], &new_units[new]);
                // A unit meets only the units after it in its own file, and never one it
                // encloses or is enclosed by: a changed unit under one of its keys that it
                // cannot meet, before or after the edit, changes nothing it counts.
                let unmet_before = |other: u32| other < old || nested(old_unit, &old_units[other as usize]);
                let unmet_after = |other: u32| other < new as u32 || nested(new_unit, &new_units[other as usize]);
                // Changed units it could meet, and how many of its keys of each door they
                // share (an upper bound on what it would count for them).
                let mut shared: HashMap<(Side, u32), [usize; 3]> = HashMap::default();
                let mut same_limits = true;
                let mut look = |holders: Option<&Holders>, door: usize, held_now: &dyn Fn() -> usize, limit: usize, none_past_limit: bool| {
                    let Some(holders) = holders else { return };
                    // How many units hold a key is compared with the lookup's limit only;
                    // past it, a used name is met through by no one.
                    if holders.before.len() != holders.after.len() || none_past_limit {
                        let now = held_now();
                        let before = (now + holders.before.len()).saturating_sub(holders.after.len());
                        if (before > limit) != (now > limit) {
                            same_limits = false;
                            return;
                        }
                        if none_past_limit && now > limit {
                            return;
                        }
                    }
                    for &other in holders.before.iter().filter(|&&other| !unmet_before(other)) {
                        shared.entry((Side::Before, other)).or_default()[door] += 1;
                    }
                    for &other in holders.after.iter().filter(|&&other| !unmet_after(other)) {
                        shared.entry((Side::After, other)).or_default()[door] += 1;
                    }
                };
                for key in new_unit.sketch.as_deref().into_iter().flat_map(fingerprint::band_keys) {
                    look(changed.bands.get(&key), 0, &|| self.index.band_count(key), MAX_BUCKET, false);
                }
                for &gram in &new_unit.grams {
                    look(changed.grams.get(&gram), 1, &|| self.index.gram_count(gram), MAX_GRAM_POSTINGS, false);
                }
                for &name in &new_unit.used_names {
                    look(changed.names.get(&name), 2, &|| self.index.name_frequency(name), MAX_NAME_POSTINGS, true);
                }
                // A unit met through fewer keys than every door asks for is dropped before
                // anything else is read of it (`candidates_of`): it changes nothing.
                same_limits && shared.values().all(|&[bands, grams, names]| bands < MIN_SHARED_BANDS && grams < MIN_SHARED_GRAMS && names < MIN_SHARED_NAMES)
            })
            .collect();
        Some(Plan { old_of_new, new_of_old, reusable })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Before,
    After,
}

/// The changed units holding a key, before and after the edit.
#[derive(Default)]
struct Holders {
    before: Vec<u32>,
    after: Vec<u32>,
}

/// The keys of changed units, per candidate table.
#[derive(Default)]
struct ChangedKeys {
    bands: HashMap<u64, Holders>,
    grams: HashMap<u32, Holders>,
    names: HashMap<u32, Holders>,
}

impl ChangedKeys {
    /// Adds a changed unit's keys as the candidate index holds them (`entries_of`).
    fn add(&mut self, unit: &UnitRecord, index: u32, side: Side) {
        let push = |holders: &mut Holders| match side {
            Side::Before => holders.before.push(index),
            Side::After => holders.after.push(index),
        };
        for key in unit.sketch.as_deref().into_iter().flat_map(fingerprint::band_keys) {
            push(self.bands.entry(key).or_default());
        }
        for &gram in &unit.grams {
            push(self.grams.entry(gram).or_default());
        }
        for &name in &unit.used_names {
            push(self.names.entry(name).or_default());
        }
    }
}

/// Whether one unit contains the other (`Detector::nested`, within one file).
fn nested(x: &UnitRecord, y: &UnitRecord) -> bool {
    (x.start_byte <= y.start_byte && y.end_byte <= x.end_byte) || (y.start_byte <= x.start_byte && x.end_byte <= y.end_byte)
}

/// Whether two units are the same code with the same fingerprints: everything a unit's
/// candidates and verdicts read of it, its position aside.
fn same_unit(old: &UnitRecord, old_tokens: &FileTokens, new: &UnitRecord, new_tokens: &FileTokens) -> bool {
    let range = |unit: &UnitRecord| unit.token_start as usize..unit.token_end as usize;
    old.name == new.name
        && old.kind == new.kind
        && old.nesting == new.nesting
        && old.hashes == new.hashes
        && old.sketch == new.sketch
        && old.grams == new.grams
        && old.used_names == new.used_names
        && old.bound == new.bound
        && old.token_count() == new.token_count()
        && old_tokens.syms.get(range(old)) == new_tokens.syms.get(range(new))
        && old_tokens.texts.get(range(old)) == new_tokens.texts.get(range(new))
        && old_tokens.syms.get(range(old)).is_some()
}

/// Middles of two unit lists (past their common ends) longer than this together are left
/// unmatched rather than aligned: the alignment's table grows with their product.
const MOST_ALIGNED: usize = 1 << 20;

/// Matches the units of the file before and after an edit, keeping their order: the
/// common ends first, then a longest common subsequence of what lies between. Returns the
/// match of each unit after, and of each unit before.
fn match_units(before: &[UnitRecord], after: &[UnitRecord], same: impl Fn(usize, usize) -> bool) -> (Vec<Option<u32>>, Vec<Option<u32>>) {
    let (mut old_of_new, mut new_of_old) = (vec![None; after.len()], vec![None; before.len()]);
    let mut link = |old: usize, new: usize| {
        old_of_new[new] = Some(old as u32);
        new_of_old[old] = Some(new as u32);
    };
    let mut prefix = 0;
    while prefix < before.len() && prefix < after.len() && same(prefix, prefix) {
        link(prefix, prefix);
        prefix += 1;
    }
    let mut suffix = 0;
    while suffix < before.len() - prefix && suffix < after.len() - prefix && same(before.len() - 1 - suffix, after.len() - 1 - suffix) {
        link(before.len() - 1 - suffix, after.len() - 1 - suffix);
        suffix += 1;
    }
    let (old_middle, new_middle) = (prefix..before.len() - suffix, prefix..after.len() - suffix);
    let (rows, columns) = (old_middle.len(), new_middle.len());
    if rows == 0 || columns == 0 || (rows + 1) * (columns + 1) > MOST_ALIGNED {
        return (old_of_new, new_of_old);
    }
    // Cheap keys first: the full comparison only for units whose hashes agree.
    let key = |unit: &UnitRecord| (unit.hashes.t1, unit.hashes.tc, unit.token_count());
    let equal = |row: usize, column: usize| key(&before[prefix + row]) == key(&after[prefix + column]) && same(prefix + row, prefix + column);
    // lengths[r][c]: the longest common subsequence of the middles from row r and column c on.
    let width = columns + 1;
    let mut lengths = vec![0u32; (rows + 1) * width];
    for row in (0..rows).rev() {
        for column in (0..columns).rev() {
            lengths[row * width + column] = if equal(row, column) {
                lengths[(row + 1) * width + column + 1] + 1
            } else {
                lengths[(row + 1) * width + column].max(lengths[row * width + column + 1])
            };
        }
    }
    let (mut row, mut column) = (0, 0);
    while row < rows && column < columns {
        if lengths[row * width + column] == lengths[(row + 1) * width + column + 1] + 1 && equal(row, column) {
            link(prefix + row, prefix + column);
            row += 1;
            column += 1;
        } else if lengths[(row + 1) * width + column] >= lengths[row * width + column + 1] {
            row += 1;
        } else {
            column += 1;
        }
    }
    (old_of_new, new_of_old)
}
