//! Clone detection over fingerprinted files.
//!
//! - Type-1/Type-2 units: grouped by exact hashes (no token access needed).
//! - Type-3 units: candidates through three doors (LSH bands, sampled k-grams, used
//!   names), the best families of each unit verified by `verify::verify` on the real tokens.
//! - Blocks: files sharing a winnowed k-gram are extended token by token into maximal
//!   runs (as PMD CPD and jscpd do, but on normalised tokens), then checked for a
//!   consistent renaming so shape-alike code does not count.
//!
//! Work is incremental: only pairs touching a dirty (re-parsed) file are computed; pairs
//! between two clean files come from the index. Token streams are fetched through
//! `TokenSource`, which re-parses clean files on demand.

use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::analysis::{FileTokens, SYM_BARRIER, SYM_IDENTIFIER};
use crate::candidates::{CandidateIndex, Hubs, UnitRef};
use crate::config::Config;
use crate::fingerprint;
use crate::model::{ClonePair, CloneKind, FileRecord, Instance};
use crate::similarity::{self, TokenRun};
use crate::{trace, verify};

mod reuse;
pub use reuse::NearMissMemo;

/// Gives the token stream of a file by index; `None` if it can no longer be read.
pub trait TokenSource: Sync {
    fn tokens(&self, file: u32) -> Option<Arc<FileTokens>>;

    /// Tokens `start..end` of a file: its whole stream by default. A source that keeps
    /// streams out of memory reads only the range: verifying a candidate needs two units,
    /// not their files.
    fn range(&self, file: u32, start: u32, end: u32) -> Option<RangeTokens> {
        let _ = (start, end);
        Some(RangeTokens { tokens: self.tokens(file)?, first: 0 })
    }

    /// The 1-based line of a token of a file (`FileTokens::line`).
    fn line(&self, file: u32, token: u32) -> Option<u32> {
        Some(self.tokens(file)?.line(token as usize))
    }
}

/// Tokens of part of a file: `tokens` holds the file's tokens from `first` on.
pub struct RangeTokens {
    pub tokens: Arc<FileTokens>,
    pub first: u32,
}

impl RangeTokens {
    fn run(&self, start: u32, end: u32) -> Option<TokenRun<'_>> {
        run(&self.tokens, start.checked_sub(self.first)?, end.checked_sub(self.first)?)
    }

    /// One past the last token held.
    fn end(&self) -> usize {
        self.first as usize + self.tokens.len()
    }

    fn sym(&self, token: usize) -> u16 {
        self.tokens.syms[token - self.first as usize]
    }

    fn text(&self, token: usize) -> u32 {
        self.tokens.texts[token - self.first as usize]
    }

    /// The line of a token when the line starts are held (a whole stream in memory); a
    /// range read back from a spill holds none.
    fn held_line(&self, token: usize) -> Option<u32> {
        (!self.tokens.row_starts.is_empty()).then(|| self.tokens.line(token))
    }
}

/// Items whose results are collected together (`collect_in_slices`).
const COLLECTED_TOGETHER: usize = 1 << 16;

/// `collect(slice)` over `items` a slice at a time, the results appended in order. A
/// parallel collect holds every job's results and then their concatenation: twice the
/// 1.8 M candidates, or the 300 k verified pairs, of the Linux tree at once.
fn collect_in_slices<T, R>(items: &[T], collect: impl Fn(&[T]) -> Vec<R>) -> Vec<R> {
    let mut all = Vec::new();
    for slice in items.chunks(COLLECTED_TOGETHER) {
        all.append(&mut collect(slice));
    }
    all
}

/// Exact-hash groups larger than this are linked as a star, not every pair.
const MAX_GROUP_FOR_ALL_PAIRS: usize = 40;
/// How many candidate families (units and their exact copies) a unit proposes: its best
/// on the keys met whole, then its best with sampled keys counted (a large family's hubs),
/// and at most how many units counting every member of those families.
#[derive(Clone, Copy)]
struct Quota {
    best: usize,
    hubs: usize,
    with_members: usize,
    /// Hubs of an oversized key met.
    width: Hubs,
}

impl Quota {
    const FIRST: Quota = Quota { best: 16, hubs: 8, with_members: 160, width: Hubs::Few };
    /// For a unit in a dense family (`DENSE_FAMILY_PAIRS`).
    const DENSE: Quota = Quota { best: 64, hubs: 64, with_members: 640, width: Hubs::Many };
}

/// Near-miss pairs after which a unit counts as a member of a dense family: most of its
/// first quota verified.
const DENSE_FAMILY_PAIRS: usize = 16;
/// A candidate met only through sampled keys shares at least this much of the smaller
/// k-gram sample.
const MIN_HUB_GRAM_SHARE: f32 = 0.3;
/// A k-gram candidate shares at least this many sampled k-grams, and this share of the
/// smaller sample (NIL's filtration threshold is 10% of the distinct n-grams).
const MIN_SHARED_GRAMS: usize = 2;
const MIN_GRAM_SHARE: f32 = 0.1;
/// A used-name candidate shares at least this many names, and this share of the smaller
/// set: the names alone are weak evidence, so most of them must agree.
const MIN_SHARED_NAMES: usize = 3;
const MIN_NAME_SHARE: f32 = 0.6;
/// LSH bands two units must share before they are verified.
const MIN_SHARED_BANDS: usize = 3;
/// Most work items in one rayon job. Costs are skewed (a few huge units or file pairs),
/// and rayon's default splitting can leave one thread a long run of them that no idle
/// thread may steal; small jobs keep both busy to the end. Candidate jobs are larger since
/// each starts a fresh counting array.
const CANDIDATE_JOB_UNITS: usize = 256;
const VERIFICATION_JOB_PAIRS: usize = 64;
const BLOCK_JOB_FILE_PAIRS: usize = 16;
/// Dirty files whose block seeds are gathered and extended together.
const BLOCK_SEEDING_FILES: usize = 4096;
/// Tokens read on either side of a pair of files' outermost seeds before extending them:
/// most blocks end well within it.
const BLOCK_WINDOW_MARGIN: u32 = 512;

/// Detection by a scan that owns its fixed index (`CandidateIndex::build_fixed`): the
/// tables only unit pairs need are let go before block pairs are sought, which on the
/// Linux tree is a third of the memory detection holds.
pub fn detect_releasing(files: &[FileRecord], dirty: &[bool], config: &Config, tokens: &dyn TokenSource, mut index: CandidateIndex, previous: &[ClonePair]) -> Vec<ClonePair> {
    let (pairs, previous_blocks) = Detector { files, dirty, config, tokens, index: &index }.unit_pairs(previous);
    index.release_unit_tables();
    Detector { files, dirty, config, tokens, index: &index }.with_blocks(pairs, previous_blocks)
}

pub struct Detector<'a> {
    pub files: &'a [FileRecord],
    pub dirty: &'a [bool],
    pub config: &'a Config,
    pub tokens: &'a dyn TokenSource,
    pub index: &'a CandidateIndex,
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
        let (pairs, previous_blocks) = self.unit_pairs(previous);
        self.with_blocks(pairs, previous_blocks)
    }

    /// Unit pairs (nested ones dropped), and the blocks of `previous` to keep.
    fn unit_pairs(&self, previous: &[ClonePair]) -> (Vec<ClonePair>, Vec<ClonePair>) {
        let started = std::time::Instant::now();
        let mut pairs = self.exact_unit_pairs();
        tracing::debug!(pairs = pairs.len(), elapsed_ms = started.elapsed().as_millis() as u64, "exact unit pairs");
        let exact: HashSet<(UnitRef, UnitRef)> = pairs.iter().filter_map(unit_key).collect();
        let kept_previous = previous.iter().filter(|pair| !self.is_dirty(pair.a.file) && !self.is_dirty(pair.b.file));
        let (previous_units, previous_blocks): (Vec<ClonePair>, Vec<ClonePair>) =
            kept_previous.partition(|pair| pair.a.unit.is_some() && pair.b.unit.is_some());
        pairs.extend(previous_units.into_iter().filter(|pair| unit_key(pair).is_none_or(|key| !exact.contains(&key))));
        // The near-miss pairs are the bulk: their vector grows (in place, as a large one is
        // mapped) to take the few exact pairs in front, rather than a copy of it all.
        let mut near_miss = self.near_miss_unit_pairs(&exact);
        near_miss.splice(0..0, pairs);
        let pairs = near_miss;
        tracing::debug!(pairs = pairs.len(), elapsed_ms = started.elapsed().as_millis() as u64, "near-miss unit pairs");
        (self.drop_nested_pairs(pairs), previous_blocks)
    }

    /// `pairs` with the block pairs not covered by them.
    fn with_blocks(&self, pairs: Vec<ClonePair>, previous_blocks: Vec<ClonePair>) -> Vec<ClonePair> {
        let started = std::time::Instant::now();
        let mut blocks = self.block_pairs();
        tracing::debug!(blocks = blocks.len(), elapsed_ms = started.elapsed().as_millis() as u64, "block pairs");
        blocks.extend(previous_blocks);
        let mut all = pairs;
        let covered = self.unit_pair_index(&all, &blocks);
        all.extend(blocks.into_iter().filter(|block| !self.covered_by_unit_pair(block, &covered)));
        all.sort_by_key(|pair| (pair.a, pair.b));
        all.dedup_by(|x, y| x.a == y.a && x.b == y.b);
        all
    }

    /// Every pair touching a dirty file, all computed now: the query after an edit. Exact
    /// pairs come from index lookups, so files re-indexed into the overlay count.
    pub fn detect_dirty(&self) -> Vec<ClonePair> {
        let mut pairs = self.exact_pairs_of_dirty();
        let exact: HashSet<(UnitRef, UnitRef)> = pairs.iter().filter_map(unit_key).collect();
        pairs.extend(self.near_miss_unit_pairs(&exact));
        self.with_blocks(self.drop_nested_pairs(pairs), Vec::new())
    }

    /// The exact pairs touching a dirty file, from index lookups (files re-indexed into the
    /// overlay count).
    fn exact_pairs_of_dirty(&self) -> Vec<ClonePair> {
        let mut pairs = Vec::new();
        for (file, record) in self.files.iter().enumerate() {
            let file = file as u32;
            if !self.is_dirty(file) {
                continue;
            }
            for (unit, shown) in record.units.iter().enumerate() {
                let me = UnitRef { file, unit: unit as u32 };
                for other in self.index.exact(shown.hashes.tc).take(MAX_GROUP_FOR_ALL_PAIRS) {
                    if other == me || self.nested(me, other) || (self.is_dirty(other.file) && other < me) {
                        continue;
                    }
                    let kind = if self.unit(other).hashes.t1 == shown.hashes.t1 { CloneKind::T1 } else { CloneKind::T2 };
                    let (a, b) = (me.min(other), me.max(other));
                    pairs.push(ClonePair { a: self.instance(a), b: self.instance(b), kind, similarity: 1.0, content: shown.hashes.tc, evidence: None });
                }
            }
        }
        pairs
    }

    /// Type-1 and Type-2 pairs: units with equal consistent-renaming hashes. Computed over
    /// the whole index every time: it needs no tokens and takes milliseconds.
    fn exact_unit_pairs(&self) -> Vec<ClonePair> {
        let mut pairs = Vec::new();
        for members in self.index.exact_groups() {
            let content = self.unit(members[0]).hashes.tc;
            let mut push = |a: UnitRef, b: UnitRef| {
                if self.nested(a, b) {
                    return;
                }
                let kind = if self.unit(a).hashes.t1 == self.unit(b).hashes.t1 { CloneKind::T1 } else { CloneKind::T2 };
                pairs.push(ClonePair { a: self.instance(a), b: self.instance(b), kind, similarity: 1.0, content, evidence: None });
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

    /// Type-3 pairs touching at least one dirty unit: candidates from the LSH bands, the
    /// k-gram samples and the used names, verified on tokens.
    fn near_miss_unit_pairs(&self, exact: &HashSet<(UnitRef, UnitRef)>) -> Vec<ClonePair> {
        let dirty_units: Vec<UnitRef> = self
            .files
            .iter()
            .enumerate()
            .filter(|(file, _)| self.is_dirty(*file as u32))
            .flat_map(|(file, record)| (0..record.units.len()).map(move |unit| UnitRef { file: file as u32, unit: unit as u32 }))
            .collect();
        let numbering = UnitNumbering::of(self.files);
        // Candidates of `units`, leaving out pairs `known` (sorted) holds: dropped unit by
        // unit, since a dense family's units propose millions again that are mostly known.
        let propose = |units: &[UnitRef], quota: Quota, known: &[Candidate]| -> Vec<Candidate> {
            let is_new = |candidate: &Candidate| known.binary_search_by_key(&(candidate.a, candidate.b), |known| (known.a, known.b)).is_err();
            let mut candidates: Vec<Candidate> = collect_in_slices(units, |units| {
                units
                    .par_iter()
                    .with_max_len(CANDIDATE_JOB_UNITS)
                    .map_init(
                        || MeetCounts::new(numbering.len()),
                        |counts, &unit| {
                            let mut proposed = self.candidates_of(unit, &numbering, counts, quota);
                            proposed.retain(is_new);
                            proposed
                        },
                    )
                    .flatten_iter()
                    .collect()
            });
            candidates.par_sort_unstable_by_key(|candidate| (candidate.a, candidate.b));
            // The same pair proposed from both sides: one verification, both sources.
            candidates.dedup_by(|later, kept| {
                let same = (later.a, later.b) == (kept.a, kept.b);
                if same {
                    kept.sources |= later.sources;
                }
                same
            });
            candidates
        };
        let trace = trace::T3Trace::get();
        let frequencies = self.index.name_frequencies();
        let verify_all = |candidates: &[Candidate]| -> Vec<ClonePair> {
            collect_in_slices(candidates, |candidates| {
                candidates
                    .par_iter()
                    .with_max_len(VERIFICATION_JOB_PAIRS)
                    .map_init(VerificationJob::default, |job, candidate| {
                        if exact.contains(&(candidate.a, candidate.b)) || exact.contains(&(candidate.b, candidate.a)) {
                            return None;
                        }
                        self.verify_units(candidate, trace, frequencies.as_ref(), job)
                    })
                    .flatten_iter()
                    .collect()
            })
        };
        let started = std::time::Instant::now();
        let candidates = propose(&dirty_units, Quota::FIRST, &[]);
        tracing::debug!(candidates = candidates.len(), elapsed_ms = started.elapsed().as_millis() as u64, "near-miss candidates");
        let started = std::time::Instant::now();
        let mut pairs = verify_all(&candidates);
        tracing::debug!(pairs = pairs.len(), elapsed_ms = started.elapsed().as_millis() as u64, "near-miss candidates verified");
        // A unit paired with most of its first candidates sits in a family larger than
        // its quota (hundreds of implementations of one job): it proposes again with a
        // larger quota, and what it had not proposed before is verified too.
        let mut accepted: HashMap<UnitRef, usize> = HashMap::default();
        for (a, b) in pairs.iter().filter_map(unit_key) {
            *accepted.entry(a).or_default() += 1;
            *accepted.entry(b).or_default() += 1;
        }
        let dense: Vec<UnitRef> = dirty_units.iter().copied().filter(|unit| accepted.get(unit).is_some_and(|&count| count >= DENSE_FAMILY_PAIRS)).collect();
        if !dense.is_empty() {
            let started = std::time::Instant::now();
            let more = propose(&dense, Quota::DENSE, &candidates);
            drop(candidates);
            pairs.extend(verify_all(&more));
            tracing::debug!(units = dense.len(), candidates = more.len(), elapsed_ms = started.elapsed().as_millis() as u64, "dense-family candidates verified");
        }
        pairs
    }

    /// The best near-miss candidates of a unit; a pair of two dirty units is proposed once,
    /// by its smaller side. A unit meets others through three doors: LSH bands of its
    /// MinHash sketch (fast, for close copies), its sampled k-grams over the
    /// semi-normalised stream (an exact inverted index: scattered edits leave most k-grams
    /// of a copy intact, and used names make them specific), and the names it calls and
    /// reads (independent implementations of one job use the same APIs). Keys shared by
    /// too many units are boilerplate and skipped. Candidates are ranked by how much of
    /// their samples they share, and only those that can reach the similarity threshold
    /// by length are kept.
    fn candidates_of(&self, unit: UnitRef, numbering: &UnitNumbering, counts: &mut MeetCounts, quota: Quota) -> Vec<Candidate> {
        let record = self.unit(unit);
        let meets = |other: UnitRef| other != unit && !(self.is_dirty(other.file) && other < unit);
        // A unit meets a few hundred others in its buckets: counting them in a dense
        // array is several times cheaper than sorting the hits to count them.
        // Asking again for more of a dense family, a unit meets the wider set of hubs only,
        // not every unit of the keys it is a hub of: those it met in the first pass.
        let hub = if quota.width == Hubs::Many { u32::MAX } else { crate::candidates::hub_value(record) };
        // Every key is looked up before any entry is counted: a look-up misses the cache
        // (the tables are tens of megabytes, searched at random), and look-ups in a row
        // overlap their misses where each one behind a key's counting waited alone.
        let band_keys: Vec<u64> = record.sketch.as_deref().into_iter().flat_map(fingerprint::band_keys).collect();
        self.index.prefetch_unit_keys(&band_keys, &record.grams, &record.used_names);
        let bands: Vec<_> = band_keys.iter().map(|&key| self.index.band_sampled(key, hub, quota.width)).collect();
        let grams: Vec<_> = record.grams.iter().map(|&gram| self.index.gram_sampled(gram, hub, quota.width)).collect();
        let names: Vec<_> = record.used_names.iter().map(|&name| self.index.name_postings(name)).collect();
        for (sampled, bucket) in bands.into_iter().flatten() {
            let door = if sampled { Door::SampledBands } else { Door::Bands };
            for other in bucket.filter(|&other| meets(other)) {
                if let Some(number) = numbering.number(other) {
                    counts.add(number, other, door);
                }
            }
        }
        for (sampled, postings) in grams.into_iter().flatten() {
            let door = if sampled { Door::SampledGrams } else { Door::Grams };
            for other in postings.filter(|&other| meets(other)) {
                if let Some(number) = numbering.number(other) {
                    counts.add(number, other, door);
                }
            }
        }
        for postings in names.into_iter().flatten() {
            for other in postings.filter(|&other| meets(other)) {
                if let Some(number) = numbering.number(other) {
                    counts.add(number, other, Door::Names);
                }
            }
        }
        let language = self.files[unit.file as usize].language;
        let floor = verify::token_floor(self.config.detection_for(language).similarity);
        let length = record.token_count() as f64;
        // Each unit met is scored twice: on the keys met whole (what decides the best
        // candidates), and with the sampled keys added (what decides its hubs).
        let gram_share = |met: &Met, other_record: &crate::model::UnitRecord| met.grams as f32 / record.grams.len().min(other_record.grams.len()).max(1) as f32;
        let score = |met: Met, other_record: &crate::model::UnitRecord| -> Option<(f32, u8)> {
            let grams = gram_share(&met, other_record);
            let names = met.names as f32 / record.used_names.len().min(other_record.used_names.len()).max(1) as f32;
            let mut sources = 0u8;
            if usize::from(met.bands) >= MIN_SHARED_BANDS {
                sources |= SOURCE_BANDS;
            }
            if usize::from(met.grams) >= MIN_SHARED_GRAMS && grams >= MIN_GRAM_SHARE {
                sources |= SOURCE_GRAMS;
            }
            if usize::from(met.names) >= MIN_SHARED_NAMES && names >= MIN_NAME_SHARE {
                sources |= SOURCE_NAMES;
            }
            (sources != 0).then_some((grams + f32::from(met.bands) / fingerprint::BAND_COUNT as f32 + names / 2.0, sources))
        };
        let mut ranked: Vec<(Option<f32>, f32, UnitRef, u8)> = counts
            .drain()
            .filter_map(|(met, other)| {
                // Most units met share a key or two: settled on the counts alone, before
                // their records are read (scattered across memory, the costly part).
                let all = met.with_samples();
                let enough = |count: u8, least: usize| usize::from(count) >= least;
                if !enough(all.bands, MIN_SHARED_BANDS) && !enough(all.grams, MIN_SHARED_GRAMS) && !enough(all.names, MIN_SHARED_NAMES) {
                    return None;
                }
                let other_record = self.unit(other);
                let other_length = other_record.token_count() as f64;
                if 2.0 * length.min(other_length) / (length + other_length) < floor {
                    return None;
                }
                let (with_hubs, sources) = score(all, other_record)?;
                let whole = score(met, other_record).map(|(whole, _)| whole);
                // Met only through sampled keys: a member of a large family shares most of
                // its k-grams with the family's hubs, a unit met through a few boilerplate
                // keys does not.
                if whole.is_none() && gram_share(&all, other_record) < MIN_HUB_GRAM_SHARE {
                    return None;
                }
                Some((whole, with_hubs, other, sources))
            })
            .filter(|&(_, _, other, _)| !self.nested(unit, other) && self.unit(other).hashes.tc != record.hashes.tc)
            .collect();
        // The best families, not the best units: exact copies of one another (equal
        // renaming hashes) take one place together, so a family of thirty copies neither
        // crowds out every other candidate nor leaves which of its members are paired to
        // the order of a tie (a scan after one copy is deleted must equal a fresh one).
        // First the best on keys met whole, then a few more with the sampled keys counted:
        // in a large family those are its hubs, which keep the family one pattern without
        // crowding out the unit's closest relatives.
        let mut families: Vec<u64> = Vec::with_capacity(quota.best + quota.hubs);
        let mut chosen: Vec<(UnitRef, u8)> = Vec::new();
        let mut take = |ranked: &mut Vec<(Option<f32>, f32, UnitRef, u8)>, extra: usize| {
            let most = families.len() + extra;
            ranked.retain(|&(_, _, other, sources)| {
                let family = self.unit(other).hashes.tc;
                let join = families.contains(&family) || families.len() < most && {
                    families.push(family);
                    true
                };
                if join && chosen.len() < quota.with_members {
                    chosen.push((other, sources));
                }
                !join
            });
        };
        ranked.sort_by(|x, y| y.0.unwrap_or(-1.0).total_cmp(&x.0.unwrap_or(-1.0)).then(x.2.cmp(&y.2)));
        let whole = ranked.iter().take_while(|entry| entry.0.is_some()).count();
        let mut rest = ranked.split_off(whole);
        take(&mut ranked, quota.best);
        rest.append(&mut ranked);
        rest.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.2.cmp(&y.2)));
        take(&mut rest, quota.hubs);
        chosen.into_iter().map(|(other, sources)| Candidate { a: unit.min(other), b: unit.max(other), sources }).collect()
    }

    /// Verifies a candidate pair on tokens; `Some` when similar enough to report.
    /// `frequencies` holds every name's `name_frequency` when the index is never updated.
    fn verify_units(
        &self,
        candidate: &Candidate,
        trace: Option<&trace::T3Trace>,
        frequencies: Option<&HashMap<u32, u32>>,
        job: &mut VerificationJob,
    ) -> Option<ClonePair> {
        let (a, b) = (candidate.a, candidate.b);
        let (record_a, record_b) = (self.unit(a), self.unit(b));
        let language = self.files[a.file as usize].language;
        let threshold = self.config.detection_for(language).similarity;
        let context = crate::names::NameContext::of(language);
        let VerificationJob { frequencies: looked_up, side_a, read } = job;
        if side_a.as_ref().is_none_or(|side| side.unit != a) {
            *side_a = None;
            let tokens = self.tokens.range(a.file, record_a.token_start, record_a.token_end)?;
            *side_a = Some(SideA { unit: a, tokens, own: context.name_keys(&record_a.name) });
        }
        let SideA { tokens: tokens_a, own: own_a, .. } = side_a.as_ref()?;
        let tokens_b = self.tokens.range(b.file, record_b.token_start, record_b.token_end)?;
        let run_a = tokens_a.run(record_a.token_start, record_a.token_end)?;
        let run_b = tokens_b.run(record_b.token_start, record_b.token_end)?;
        let own_b = context.name_keys(&record_b.name);
        let read = read.as_ref();
        let frequency = |name: u32| {
            if let Some(read) = read {
                read.borrow_mut().push(name);
            }
            match frequencies {
                Some(frequencies) => frequencies.get(&name).map_or(0, |&count| count as usize),
                None => *looked_up.borrow_mut().entry(name).or_insert_with(|| self.index.name_frequency(name)),
            }
        };
        let weights = verify::NameWeights {
            context,
            own_a,
            own_b: &own_b,
            bound_a: &record_a.bound,
            bound_b: &record_b.bound,
            known_a: complete_names(record_a),
            known_b: complete_names(record_b),
            frequency: &frequency,
            units: self.index.unit_count(),
        };
        let verdict = verify::verify(run_a, run_b, threshold, &weights, trace.is_some());
        if let Some(trace) = trace {
            let old = similarity::evidence_score(run_a, run_b, context);
            trace.record(&self.files[a.file as usize].path, record_a, &self.files[b.file as usize].path, record_b, candidate.sources, &verdict, old);
        }
        let verify::Verdict::Accepted(evidence) = verdict else { return None };
        Some(ClonePair {
            a: self.instance(a),
            b: self.instance(b),
            kind: CloneKind::T3,
            similarity: f64::from(evidence.tokens),
            content: record_a.hashes.tc.min(record_b.hashes.tc),
            evidence: Some(evidence),
        })
    }

    /// Drops a unit pair when the units' enclosing units already form a pair: the copy of
    /// a function reports the function, not each closure inside it again. Drops a near-miss
    /// pair of a part and a whole too when the part's enclosing unit, or a unit inside the
    /// whole, is an exact copy of the other side: a closure is not paired with the copy of
    /// the function holding it, nor a function with the copy of a closure it holds (the
    /// exact pair reports that copy).
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
        let exact: HashSet<(UnitRef, UnitRef)> = pairs.iter().filter(|pair| pair.kind != CloneKind::T3).filter_map(unit_key).collect();
        let is_exact = |x: UnitRef, y: UnitRef| exact.contains(&(x, y)) || exact.contains(&(y, x));
        // (enclosing unit, other side) of every exact pair: a near-miss pair between them is
        // a function paired with the copy of a closure it holds.
        let mut whole_and_copied_part: HashSet<(UnitRef, UnitRef)> = HashSet::default();
        for &(a, b) in &exact {
            for (inner, other) in [(a, b), (b, a)] {
                for outer in ancestors(inner) {
                    whole_and_copied_part.insert((outer, other));
                    whole_and_copied_part.insert((other, outer));
                }
            }
        }
        pairs
            .into_iter()
            .filter(|pair| {
                let Some((a, b)) = unit_key(pair) else { return true };
                let (outer_a, outer_b) = (ancestors(a), ancestors(b));
                // Both sides must be replaced by an enclosing unit: a closure paired with a
                // whole function says nothing about the closure's own exact copy.
                let enclosed = outer_a.iter().any(|&x| outer_b.iter().any(|&y| keys.contains(&(x, y)) || keys.contains(&(y, x))));
                let part_and_whole = pair.kind == CloneKind::T3
                    && (whole_and_copied_part.contains(&(a, b)) || outer_a.iter().any(|&x| is_exact(x, b)) || outer_b.iter().any(|&y| is_exact(a, y)));
                !enclosed && !part_and_whole
            })
            .collect()
    }

    /// The unit pairs between each two files some block joins, both ways round (what
    /// `covered_by_unit_pair` looks up): indexing every pair took 100 MB on the Linux tree.
    fn unit_pair_index(&self, pairs: &[ClonePair], blocks: &[ClonePair]) -> HashMap<(u32, u32), Vec<(Instance, Instance)>> {
        let joined: HashSet<(u32, u32)> = blocks.iter().map(|block| (block.a.file, block.b.file)).collect();
        let mut index: HashMap<(u32, u32), Vec<(Instance, Instance)>> = HashMap::default();
        for pair in pairs {
            if joined.contains(&(pair.a.file, pair.b.file)) {
                index.entry((pair.a.file, pair.b.file)).or_default().push((pair.a, pair.b));
            }
            if joined.contains(&(pair.b.file, pair.a.file)) {
                index.entry((pair.b.file, pair.a.file)).or_default().push((pair.b, pair.a));
            }
        }
        index
    }

    /// Whether a block adds nothing to the unit pairs between the same two files: what is
    /// left of it outside their units, on either side, is too short to be a clone itself
    /// (a run that only spills over a function's closing brace, or spans two copied methods).
    fn covered_by_unit_pair(&self, block: &ClonePair, index: &HashMap<(u32, u32), Vec<(Instance, Instance)>>) -> bool {
        let Some(pairs) = index.get(&(block.a.file, block.b.file)) else { return false };
        let language = self.files[block.a.file as usize].language;
        let min_tokens = self.config.detection_for(language).min_tokens;
        let uncovered = |side: &Instance, units: Vec<(u32, u32)>| -> u32 {
            let mut ranges: Vec<(u32, u32)> = units
                .into_iter()
                .map(|(start, end)| (start.max(side.token_start), end.min(side.token_end)))
                .filter(|(start, end)| start < end)
                .collect();
            ranges.sort_unstable();
            let mut covered = 0;
            let mut reach = side.token_start;
            for (start, end) in ranges {
                let start = start.max(reach);
                if end > start {
                    covered += end - start;
                    reach = end;
                }
            }
            (side.token_end - side.token_start) - covered
        };
        let units_a = pairs.iter().map(|(x, _)| (x.token_start, x.token_end)).collect();
        let units_b = pairs.iter().map(|(_, y)| (y.token_start, y.token_end)).collect();
        uncovered(&block.a, units_a) < min_tokens && uncovered(&block.b, units_b) < min_tokens
    }

    /// Maximal shared token runs seeded by common winnowed k-grams, for runs touching a
    /// dirty file.
    fn block_pairs(&self) -> Vec<ClonePair> {
        // Every seed of a pair of files comes from one of them (the first dirty one, see
        // `seeds_of`), so the dirty files are taken a slice at a time: the seeds of a
        // slice are all the seeds of its file pairs, and a tree's seeds are never held at
        // once (hundreds of megabytes on the Linux tree).
        let seeding: Vec<u32> = (0..self.files.len() as u32)
            .filter(|&file| self.is_dirty(file) && self.config.detection_for(self.files[file as usize].language).blocks)
            .collect();
        let mut pairs = Vec::new();
        for slice in seeding.chunks(BLOCK_SEEDING_FILES) {
            let mut seeds: Vec<Seed> = slice.par_iter().flat_map_iter(|&file| self.seeds_of(file)).collect();
            seeds.par_sort_unstable();
            seeds.dedup();
            let runs: Vec<&[Seed]> = seeds.chunk_by(|x, y| x.0 == y.0).collect();
            tracing::debug!(files = slice.len(), seeds = seeds.len(), file_pairs = runs.len(), "block seeds");
            let found: Vec<ClonePair> = runs
                .par_iter()
                .with_max_len(BLOCK_JOB_FILE_PAIRS)
                .flat_map_iter(|run| {
                    let (file_a, file_b) = run[0].0;
                    let positions: Vec<(u32, u32)> = run.iter().map(|seed| seed.1).collect();
                    self.extend_seeds(file_a, file_b, &positions)
                })
                .collect();
            pairs.extend(found);
        }
        pairs
    }

    /// The seeds a dirty file contributes: its winnowed k-grams found elsewhere, each
    /// pair of occurrences once (from the smaller position when both files are dirty).
    fn seeds_of(&self, file: u32) -> Vec<Seed> {
        let mut found: Vec<Seed> = Vec::new();
        for winnow in &self.files[file as usize].winnows {
            let Some(occurrences) = self.index.winnow_occurrences(winnow.hash) else { continue };
            for (other, position) in occurrences {
                let here = (file, winnow.position);
                if (other, position) == here || (self.is_dirty(other) && (other, position) < here) {
                    continue;
                }
                if !self.config.detection_for(self.files[other as usize].language).blocks {
                    continue;
                }
                let (first, second) = if here <= (other, position) { (here, (other, position)) } else { ((other, position), here) };
                found.push(((first.0, second.0), (first.1, second.1)));
            }
        }
        found
    }

    /// The blocks a pair of files shares around its seeds. Each side is read as a window
    /// around its seeds (a spilled file is not read whole for every file it shares a
    /// k-gram with); a run reaching a window's edge inside its file is extended again over
    /// the whole files.
    fn extend_seeds(&self, file_a: u32, file_b: u32, positions: &[(u32, u32)]) -> Vec<ClonePair> {
        let window = |file: u32, seeds: &mut dyn Iterator<Item = u32>| -> Option<RangeTokens> {
            let (mut low, mut high) = (u32::MAX, 0);
            for seed in seeds {
                (low, high) = (low.min(seed), high.max(seed));
            }
            let length = self.files[file as usize].tokens;
            self.tokens.range(file, low.saturating_sub(BLOCK_WINDOW_MARGIN), high.saturating_add(BLOCK_WINDOW_MARGIN).min(length))
        };
        let whole = |file: u32| self.tokens.range(file, 0, self.files[file as usize].tokens);
        let windows = (window(file_a, &mut positions.iter().map(|seed| seed.0)), window(file_b, &mut positions.iter().map(|seed| seed.1)));
        if let (Some(a), Some(b)) = &windows
            && let Some(pairs) = self.extend_within(file_a, a, file_b, b, positions)
        {
            return pairs;
        }
        let (Some(a), Some(b)) = (whole(file_a), whole(file_b)) else { return Vec::new() };
        self.extend_within(file_a, &a, file_b, &b, positions).unwrap_or_default()
    }

    /// The blocks around `positions` within two windows; `None` when a run reaches the
    /// edge of a window that is not the edge of its file.
    fn extend_within(&self, file_a: u32, tokens_a: &RangeTokens, file_b: u32, tokens_b: &RangeTokens, positions: &[(u32, u32)]) -> Option<Vec<ClonePair>> {
        let language = self.files[file_a as usize].language;
        let settings = self.config.detection_for(language);
        let (first_a, first_b) = (tokens_a.first as usize, tokens_b.first as usize);
        let (end_a, end_b) = (tokens_a.end(), tokens_b.end());
        let cut_a = end_a < self.files[file_a as usize].tokens as usize;
        let cut_b = end_b < self.files[file_b as usize].tokens as usize;
        let mut found: HashSet<(u32, u32)> = HashSet::default();
        let mut pairs = Vec::new();
        for &(pos_a, pos_b) in positions {
            let (pos_a, pos_b) = (pos_a as usize, pos_b as usize);
            if pos_a < first_a || pos_b < first_b || pos_a >= end_a || pos_b >= end_b {
                // Outside whole files: a seed the streams no longer have.
                if first_a == 0 && first_b == 0 && !cut_a && !cut_b {
                    continue;
                }
                return None;
            }
            if tokens_a.sym(pos_a) != tokens_b.sym(pos_b) || tokens_a.sym(pos_a) == SYM_BARRIER {
                continue;
            }
            let (mut start_a, mut start_b) = (pos_a, pos_b);
            while start_a > first_a && start_b > first_b && tokens_a.sym(start_a - 1) == tokens_b.sym(start_b - 1) && tokens_a.sym(start_a - 1) != SYM_BARRIER {
                start_a -= 1;
                start_b -= 1;
            }
            if (start_a == first_a && first_a > 0) || (start_b == first_b && first_b > 0) {
                return None;
            }
            if !found.insert((start_a as u32, start_b as u32)) {
                continue;
            }
            let mut length = 0;
            while start_a + length < end_a
                && start_b + length < end_b
                && tokens_a.sym(start_a + length) == tokens_b.sym(start_b + length)
                && tokens_a.sym(start_a + length) != SYM_BARRIER
            {
                length += 1;
            }
            if (start_a + length == end_a && cut_a) || (start_b + length == end_b && cut_b) {
                return None;
            }
            if file_a == file_b {
                // A run overlapping itself, or followed closely by its own repeat, is one
                // repetitive region (a table, a row of similar setters), not a copy.
                let (first, second) = (start_a.min(start_b), start_a.max(start_b));
                if second < first + length + length / 2 {
                    continue;
                }
            }
            if let Some(pair) = self.accept_block(file_a, file_b, tokens_a, tokens_b, start_a, start_b, length, settings) {
                pairs.push(pair);
            }
        }
        Some(pairs)
    }

    #[allow(clippy::too_many_arguments)]
    fn accept_block(
        &self,
        file_a: u32,
        file_b: u32,
        tokens_a: &RangeTokens,
        tokens_b: &RangeTokens,
        start_a: usize,
        start_b: usize,
        length: usize,
        settings: &crate::config::DetectionSettings,
    ) -> Option<ClonePair> {
        if length < settings.min_tokens as usize {
            return None;
        }
        let (end_a, end_b) = (start_a + length - 1, start_b + length - 1);
        let line = |file: u32, tokens: &RangeTokens, token: usize| tokens.held_line(token).or_else(|| self.tokens.line(file, token as u32));
        let (start_line_a, end_line_a) = (line(file_a, tokens_a, start_a)?, line(file_a, tokens_a, end_a)?);
        let (start_line_b, end_line_b) = (line(file_b, tokens_b, start_b)?, line(file_b, tokens_b, end_b)?);
        if (end_line_a - start_line_a + 1).min(end_line_b - start_line_b + 1) < settings.min_lines {
            return None;
        }
        // Renaming check: identical texts, or identifiers following one renaming.
        // Identifiers and literals are judged separately: a table with the same keys but
        // other values (locale data, fixtures) is not a copy either.
        let (mut identifiers, mut identical_identifiers) = (0usize, 0usize);
        let (mut literals, mut identical_literals) = (0usize, 0usize);
        let mut renamings: HashMap<(u32, u32), u32> = HashMap::default();
        let mut all_identical = true;
        for offset in 0..length {
            let (text_a, text_b) = (tokens_a.text(start_a + offset), tokens_b.text(start_b + offset));
            let sym = tokens_a.sym(start_a + offset);
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
        for token in start_a..start_a + length {
            content.update(&tokens_a.text(token).to_le_bytes());
        }
        let bytes = content.finalize();
        let content = u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or([0; 8]));
        let instance = |file: u32, start: usize, end: usize, start_line: u32, end_line: u32| Instance {
            file,
            start_line,
            end_line,
            unit: None,
            token_start: start as u32,
            token_end: end as u32 + 1,
        };
        Some(ClonePair {
            a: instance(file_a, start_a, end_a, start_line_a, end_line_a),
            b: instance(file_b, start_b, end_b, start_line_b, end_line_b),
            kind,
            similarity: 1.0,
            content,
            evidence: None,
        })
    }
}

/// Dense numbers for the units of a file list: the units of file `f` are numbered from
/// `first[f]` on, in their order in the file record.
struct UnitNumbering {
    first: Vec<u32>,
}

impl UnitNumbering {
    /// The candidate tables' numbering (`candidates::first_numbers`), with the total after it.
    fn of(files: &[FileRecord]) -> Self {
        let mut first = crate::candidates::first_numbers(files);
        first.push(files.iter().map(|record| record.units.len() as u32).sum());
        UnitNumbering { first }
    }

    fn len(&self) -> usize {
        self.first.last().copied().unwrap_or(0) as usize
    }

    fn number(&self, unit: UnitRef) -> Option<usize> {
        let first = *self.first.get(unit.file as usize)?;
        let end = *self.first.get(unit.file as usize + 1)?;
        (unit.unit < end - first).then_some((first + unit.unit) as usize)
    }
}

/// Where a candidate came from (bits of `Candidate::sources`).
pub const SOURCE_BANDS: u8 = 1;
pub const SOURCE_GRAMS: u8 = 2;
pub const SOURCE_NAMES: u8 = 4;

/// A near-miss candidate pair (a < b) and the doors it came through.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    a: UnitRef,
    b: UnitRef,
    sources: u8,
}

#[derive(Clone, Copy)]
enum Door {
    Bands,
    Grams,
    Names,
    /// A band or k-gram held by so many units that it was sampled by hub.
    SampledBands,
    SampledGrams,
}

/// How much one unit shares with another it met: keys met whole, and keys met because
/// one of the two is a hub of the key.
#[derive(Clone, Copy, Default)]
struct Met {
    bands: u8,
    grams: u8,
    names: u8,
    sampled_bands: u8,
    sampled_grams: u8,
}

impl Met {
    fn untouched(&self) -> bool {
        self.bands == 0 && self.grams == 0 && self.names == 0 && self.sampled_bands == 0 && self.sampled_grams == 0
    }

    /// The counts with the sampled keys added in.
    fn with_samples(self) -> Met {
        Met {
            bands: self.bands.saturating_add(self.sampled_bands),
            grams: self.grams.saturating_add(self.sampled_grams),
            names: self.names,
            sampled_bands: 0,
            sampled_grams: 0,
        }
    }
}

/// Shared-key counts of the units one unit met, reused from unit to unit: only the
/// entries touched are read back and cleared.
struct MeetCounts {
    counts: Vec<Met>,
    touched: Vec<(usize, UnitRef)>,
}

impl MeetCounts {
    fn new(units: usize) -> Self {
        MeetCounts { counts: vec![Met::default(); units], touched: Vec::new() }
    }

    fn add(&mut self, number: usize, unit: UnitRef, door: Door) {
        let met = &mut self.counts[number];
        if met.untouched() {
            self.touched.push((number, unit));
        }
        // Samples hold at most a few dozen keys: every count fits a byte.
        let count = match door {
            Door::Bands => &mut met.bands,
            Door::Grams => &mut met.grams,
            Door::Names => &mut met.names,
            Door::SampledBands => &mut met.sampled_bands,
            Door::SampledGrams => &mut met.sampled_grams,
        };
        *count = count.saturating_add(1);
    }

    /// What each unit met since the last drain shares, clearing the counts.
    fn drain(&mut self) -> impl Iterator<Item = (Met, UnitRef)> + '_ {
        self.touched.drain(..).map(|(number, unit)| (std::mem::take(&mut self.counts[number]), unit))
    }
}

/// A shared winnowed k-gram: (file a, file b) and its positions (in a, in b).
type Seed = ((u32, u32), (u32, u32));

fn consistent_count(renamings: &HashMap<(u32, u32), u32>) -> usize {
    let mut forward: HashMap<u32, u32> = HashMap::default();
    let mut backward: HashMap<u32, u32> = HashMap::default();
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

/// Units using each name, as looked up so far by one verification job, when the index
/// may change between detections (a scan's index gives them all at once,
/// `CandidateIndex::name_frequencies`): a unit's names are weighed again for each of its
/// candidates, and the index does not change meanwhile.
type NameFrequencies = std::cell::RefCell<HashMap<u32, usize>>;

/// What one verification job keeps from pair to pair. Candidates are sorted by their
/// side `a`, so a job's pairs mostly share it: its tokens (two map look-ups and a shared
/// count touched by both threads, or two reads of a spilled stream) and its own-name keys
/// are fetched once for them all.
#[derive(Default)]
struct VerificationJob {
    frequencies: NameFrequencies,
    side_a: Option<SideA>,
    /// The names whose frequency the verdicts weighed, when they are noted: a verdict that
    /// weighed none of the names whose frequency changed is the same verdict again
    /// (`reuse`).
    read: Option<std::cell::RefCell<Vec<u32>>>,
}

/// The side `a` of the last pair a job verified.
struct SideA {
    unit: UnitRef,
    tokens: RangeTokens,
    own: Vec<u32>,
}

/// A unit's used names when its sample holds them all (fewer than the cap).
fn complete_names(record: &crate::model::UnitRecord) -> Option<&[u32]> {
    (record.used_names.len() < crate::names::NAME_SAMPLE).then_some(&record.used_names[..])
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
