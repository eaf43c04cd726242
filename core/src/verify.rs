//! Verification of near-miss (Type-3) candidates: the signals that tell a copy or an
//! independent implementation of the same job from a look-alike, and the calibrated model
//! that weighs them.
//!
//! Every signal is computed on one LCS alignment of the two units' semi-normalised streams
//! (used names keep their text; `names`), so one alignment serves them all:
//! - `tokens`: the Dice coefficient of the LCS of normalised tokens (identifiers and
//!   literals abstracted), the similarity Periodic reports;
//! - `aligned`: the aligned share of the shorter unit, used names matching only themselves;
//! - `runs`: the aligned tokens weighted by the length of the run they sit in (a lone `(`
//!   or `;` in common means nothing, a run of five means much), bound identifiers counted
//!   only where they follow one consistent renaming;
//! - `names`: the overlap of the names both units call or read;
//! - `size`: the ratio of their lengths;
//! - `shape`: the cosine of their histograms of token kinds.
//!
//! The model is a logistic regression over these signals, fitted on the near-miss
//! evaluation set (`scripts/quality-nearmiss`, split by project, docs/quality.md) and
//! checked in as constants: deterministic, the same on every machine.

use std::collections::HashMap;

use crate::analysis::{SYM_BARRIER, SYM_IDENTIFIER};
use crate::fingerprint::is_param;
use crate::names::{NameContext, SYM_USED_NAME, TokenRun};
use crate::similarity::{lcs_alignment, structural_similarity};

/// The signals behind a verified Type-3 pair, each in [0, 1], and the model's score.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Evidence {
    pub tokens: f32,
    pub aligned: f32,
    pub runs: f32,
    pub names: f32,
    pub size: f32,
    pub shape: f32,
    /// The model's estimate that the pair is a real near-miss clone.
    pub score: f32,
}

/// Names of the signals in the order of `Evidence::signals`, for reports and traces.
pub const SIGNAL_NAMES: [&str; 6] = ["tokens", "aligned", "runs", "names", "size", "shape"];

impl Evidence {
    pub fn signals(&self) -> [f32; 6] {
        [self.tokens, self.aligned, self.runs, self.names, self.size, self.shape]
    }
}

/// Aligned runs of this length or more count fully in `runs`; shorter ones in proportion.
const FULL_RUN: usize = 5;

/// Model weights, in `SIGNAL_NAMES` order, and intercept: a pair is accepted when
/// `INTERCEPT + Σ weight·signal >= 0` (score 0.5).
const WEIGHTS: [f64; 6] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
const INTERCEPT: f64 = 0.0;

/// The outcome of verifying a candidate pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// The pair's token similarity is below the threshold: no alignment was made.
    BelowThreshold { tokens: f32 },
    Rejected(Evidence),
    Accepted(Evidence),
}

/// Verifies a candidate: the token similarity must reach `threshold` (the `--similarity`
/// setting), then the model decides on the evidence.
pub fn verify(a: TokenRun<'_>, b: TokenRun<'_>, threshold: f64, context: &NameContext) -> Verdict {
    let total = a.syms.len() + b.syms.len();
    let shorter = a.syms.len().min(b.syms.len());
    if total == 0 || 2.0 * shorter as f64 / (total as f64) < threshold {
        return Verdict::BelowThreshold { tokens: 0.0 };
    }
    let tokens = structural_similarity(a.syms, b.syms);
    if tokens < threshold {
        return Verdict::BelowThreshold { tokens: tokens as f32 };
    }
    let mut evidence = gather(a, b, tokens, context);
    let z = INTERCEPT + WEIGHTS.iter().zip(evidence.signals()).map(|(w, s)| w * f64::from(s)).sum::<f64>();
    evidence.score = (1.0 / (1.0 + (-z).exp())) as f32;
    let accepted = crate::similarity::evidence_score(a, b, context) >= threshold - 0.08;
    if accepted { Verdict::Accepted(evidence) } else { Verdict::Rejected(evidence) }
}

/// Computes every signal of a pair whose token similarity is `tokens`.
pub fn gather(a: TokenRun<'_>, b: TokenRun<'_>, tokens: f64, context: &NameContext) -> Evidence {
    let (total, shorter, longer) = (a.syms.len() + b.syms.len(), a.syms.len().min(b.syms.len()), a.syms.len().max(b.syms.len()));
    let (syms_a, syms_b) = (context.name_symbols(a), context.name_symbols(b));
    let alignment = lcs_alignment(&syms_a, &syms_b);
    let mut weighted = 0.0f64;
    let mut renamings: HashMap<(u32, u32), (u32, f64)> = HashMap::new();
    for run in alignment.chunk_by(|x, y| y.0 == x.0 + 1 && y.1 == x.1 + 1) {
        let weight = (run.len().saturating_sub(1) as f64 / (FULL_RUN - 1) as f64).min(1.0);
        for &(i, j) in run {
            if syms_a[i] == SYM_IDENTIFIER {
                let entry = renamings.entry((a.texts[i], b.texts[j])).or_default();
                entry.0 += 1;
                entry.1 += weight;
            } else {
                weighted += weight;
            }
        }
    }
    weighted += consistent_weight(&renamings);
    Evidence {
        tokens: tokens as f32,
        aligned: if shorter == 0 { 0.0 } else { (alignment.len() as f64 / shorter as f64) as f32 },
        runs: if total == 0 { 0.0 } else { (2.0 * weighted / total as f64) as f32 },
        names: name_overlap(&syms_a, &syms_b),
        size: if longer == 0 { 0.0 } else { (shorter as f64 / longer as f64) as f32 },
        shape: shape_cosine(a.syms, b.syms),
        score: 0.0,
    }
}

/// The run weight of aligned identifier pairs (x, y) where y is x's most frequent partner
/// and x is y's: a systematic renaming keeps them all, an unrelated function keeps few. A
/// renaming seen once is weak evidence (unrelated code "renames" every name it uses once):
/// it counts half, unless the names are equal.
fn consistent_weight(renamings: &HashMap<(u32, u32), (u32, f64)>) -> f64 {
    let mut best_for_a: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut best_for_b: HashMap<u32, (u32, u32)> = HashMap::new();
    for (&(x, y), &(count, _)) in renamings {
        let entry = best_for_a.entry(x).or_insert((y, count));
        if count > entry.1 || (count == entry.1 && y < entry.0) {
            *entry = (y, count);
        }
        let entry = best_for_b.entry(y).or_insert((x, count));
        if count > entry.1 || (count == entry.1 && x < entry.0) {
            *entry = (x, count);
        }
    }
    renamings
        .iter()
        .filter(|&(&(x, y), _)| best_for_a[&x].0 == y && best_for_b[&y].0 == x)
        .map(|(&(x, y), &(count, weight))| if x == y || count >= 2 { weight } else { weight / 2.0 })
        .sum()
}

/// Dice coefficient of the distinct used names of the two streams; 1 when neither uses
/// any (nothing to tell them apart by).
fn name_overlap(syms_a: &[u16], syms_b: &[u16]) -> f32 {
    let used = |syms: &[u16]| {
        let mut names: Vec<u16> = syms.iter().copied().filter(|&s| s >= SYM_USED_NAME && s != SYM_BARRIER).collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let (names_a, names_b) = (used(syms_a), used(syms_b));
    if names_a.is_empty() && names_b.is_empty() {
        return 1.0;
    }
    let shared = names_a.iter().filter(|name| names_b.binary_search(name).is_ok()).count();
    (2.0 * shared as f64 / (names_a.len() + names_b.len()) as f64) as f32
}

/// Cosine of the two histograms of token kinds (identifiers and literals left out: the
/// code's shape, not its names).
fn shape_cosine(a: &[u16], b: &[u16]) -> f32 {
    let histogram = |syms: &[u16]| {
        let mut kinds: Vec<u16> = syms.iter().copied().filter(|&s| !is_param(s) && s != SYM_BARRIER).collect();
        kinds.sort_unstable();
        let mut counts: Vec<(u16, f64)> = Vec::new();
        for run in kinds.chunk_by(|x, y| x == y) {
            counts.push((run[0], run.len() as f64));
        }
        counts
    };
    let (counts_a, counts_b) = (histogram(a), histogram(b));
    let norm = |counts: &[(u16, f64)]| counts.iter().map(|(_, c)| c * c).sum::<f64>().sqrt();
    let (norm_a, norm_b) = (norm(&counts_a), norm(&counts_b));
    if norm_a == 0.0 || norm_b == 0.0 {
        return 0.0;
    }
    let (mut i, mut j, mut dot) = (0, 0, 0.0);
    while i < counts_a.len() && j < counts_b.len() {
        match counts_a[i].0.cmp(&counts_b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += counts_a[i].1 * counts_b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    (dot / (norm_a * norm_b)) as f32
}
