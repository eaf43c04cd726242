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
//! - `names`: the overlap of the names both units call or read (their own names left out),
//!   each weighted by its rarity in the codebase: sharing `len` and `append` says little,
//!   sharing `lookupMX` much, and two siblings that differ in the one rare call they make
//!   (`getArray` / `putArray`) differ where it matters;
//! - `literals`: the share of aligned literals with the same value;
//! - `size`: the ratio of their lengths;
//! - `shape`: the cosine of their histograms of token kinds;
//! - `free_sub`: on the alignment of the normalised streams, the rarity-weighted share of
//!   aligned *free* identifiers (names a unit uses but does not bind: callees, fields,
//!   constants; type names count as bound, a Type-2 copy renames them) whose texts
//!   differ. Siblings of one template differ exactly there (`SYS_BIND` / `SYS_SOCKET`,
//!   `getArray` / `putArray`), spread over the whole body; an edited copy keeps those
//!   names and adds or removes statements instead.
//!
//! The model has two stages: a logistic regression over the first eight signals, and for
//! a pair within a margin of its cut that swaps free names, boosted trees over all nine
//! (`verify_trees`). Both are fitted on the near-miss evaluation set
//! (`scripts/quality-nearmiss`, split by project, docs/quality.md) and checked in as
//! constants: deterministic, the same on every machine.

use std::cell::RefCell;

use rustc_hash::FxHashMap as HashMap;

use crate::analysis::{SYM_BARRIER, SYM_IDENTIFIER, SYM_LITERAL};
use crate::fingerprint::is_param;
use crate::names::{NameContext, TokenRun};
use crate::similarity::{lcs_alignment, lcs_length};
use crate::verify_trees as trees;

/// The signals behind a verified Type-3 pair, each in [0, 1], and the model's score.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Evidence {
    pub tokens: f32,
    pub aligned: f32,
    pub runs: f32,
    pub names: f32,
    pub literals: f32,
    pub swaps: f32,
    pub size: f32,
    pub shape: f32,
    pub free_sub: f32,
    /// The model's estimate that the pair is a real near-miss clone.
    pub score: f32,
}

/// Names of the signals in the order of `Evidence::signals`, for reports and traces.
pub const SIGNAL_NAMES: [&str; SIGNALS] = ["tokens", "aligned", "runs", "names", "literals", "swaps", "size", "shape", "free_sub"];

/// How many signals the evidence holds.
pub const SIGNALS: usize = 9;

impl Evidence {
    pub fn signals(&self) -> [f32; SIGNALS] {
        [self.tokens, self.aligned, self.runs, self.names, self.literals, self.swaps, self.size, self.shape, self.free_sub]
    }
}

/// What verification needs beyond the two token runs: the language's name context, each
/// unit's own-name keys, and how common each used name is in the codebase.
pub struct NameWeights<'a> {
    pub context: &'a NameContext,
    pub own_a: &'a [u32],
    pub own_b: &'a [u32],
    /// The names each unit binds, by text hash, sorted (`UnitRecord::bound`).
    pub bound_a: &'a [u32],
    pub bound_b: &'a [u32],
    /// Each unit's used names (`NameContext::all_used_names` with its own name left out)
    /// when already known, e.g. a unit's complete sample; `None` finds them in the run.
    pub known_a: Option<&'a [u32]>,
    pub known_b: Option<&'a [u32]>,
    /// Units using a name (by key).
    pub frequency: &'a dyn Fn(u32) -> usize,
    pub units: usize,
}

impl NameWeights<'_> {
    /// Inverse document frequency of a used name.
    fn weight(&self, name: u32) -> f64 {
        (1.0 + self.units as f64 / (1.0 + (self.frequency)(name) as f64)).ln()
    }
}

/// Aligned runs of this length or more count fully in `runs`; shorter ones in proportion.
const FULL_RUN: usize = 5;

/// Model weights, in `SIGNAL_NAMES` order, and intercept: a pair is accepted when
/// `INTERCEPT + Σ weight·signal >= 0` (score 0.5) at the default `--similarity`.
const WEIGHTS: [f64; SIGNALS] = [-0.106, 2.317, 8.658, 2.268, 1.228, 0.3419, 1.273, 1.253, 0.0];
const INTERCEPT: f64 = -12.68;

/// The `--similarity` setting at which both stages keep the cuts they were fitted with
/// (log-odds 0 for the logistic regression, `TREES_CUT` for the trees). The default, 0.7,
/// asks for odds e^0.45 ≈ 1.6 times weaker: on the evaluation set that finds about a
/// quarter more independent implementations of one job for a fifth more flagged
/// look-alikes (docs/quality.md, "The default operating point").
const SETTING_AT_FIT: f64 = 0.725;
/// How much the model's log-odds cut moves per unit of `--similarity`: 0.1 up asks for
/// odds e^1.8 ≈ 6 times stronger, 0.1 down accepts odds 6 times weaker.
const CUT_PER_SETTING: f64 = 18.0;
/// How far below the `--similarity` setting a pair's token similarity may lie and still be
/// weighed by the model: edits spread through a function pull the token similarity of a
/// real copy well below what its other signals show.
const FLOOR_BELOW_SETTING: f64 = 0.225;

/// The lowest token similarity a pair may have to be verified at this `--similarity`.
pub fn token_floor(setting: f64) -> f64 {
    setting - FLOOR_BELOW_SETTING
}

/// The model's log-odds cut at this `--similarity` setting.
fn cut(setting: f64) -> f64 {
    CUT_PER_SETTING * (setting - SETTING_AT_FIT)
}

/// The outcome of verifying a candidate pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// The pair's token similarity is below the threshold: no alignment was made.
    /// `tokens` is the similarity, or only an upper bound of it when the pair was settled
    /// by its token counts (never when every signal is asked for).
    BelowThreshold { tokens: f32 },
    /// Even the most favourable values of the signals not yet computed would not make the
    /// model accept the pair: the costlier signals were not computed. `tokens` as above.
    Unreachable { tokens: f32 },
    Rejected(Evidence),
    Accepted(Evidence),
}

/// Verifies a candidate at a `--similarity` setting: the pair's token similarity must
/// reach `token_floor(setting)`, then the model decides on the evidence, with a cut that
/// rises with the setting (`cut`).
///
/// The signals are computed cheapest first — size, the token-kind counts (which bound the
/// token similarity and give the shape), the token similarity, the used names, the length
/// of the alignment, and last the alignment itself — and after each step the model is
/// given the most favourable values of the signals not yet known (`SignalRange`). Most
/// look-alikes fall below the cut long before their alignment is made; the bounds never
/// lie below the model's value (tested), so the verdict is the one the full evidence
/// gives. `always_gather` computes every signal anyway (for the trace).
pub fn verify(a: TokenRun<'_>, b: TokenRun<'_>, setting: f64, names: &NameWeights<'_>, always_gather: bool) -> Verdict {
    let floor = token_floor(setting);
    let total = a.syms.len() + b.syms.len();
    let shorter = a.syms.len().min(b.syms.len());
    if total == 0 || 2.0 * shorter as f64 / (total as f64) < floor {
        return Verdict::BelowThreshold { tokens: 0.0 };
    }
    let cut = cut(setting);
    let out_of_reach = |range: &SignalRange| !always_gather && range.best_value() < cut;
    // The trees' bound costs a walk over every tree: asked only where it saves an alignment.
    let trees_out_of_reach = |range: &SignalRange| !always_gather && !range.may_reach_with_trees(cut);
    let kinds = kind_counts(a.syms, b.syms);
    let mut range = SignalRange::of_sizes(shorter, total);
    range.bound_by_lcs(kinds.common, shorter, total);
    range.fix(SHAPE, kinds.shape);
    // Compared unrounded, as the token similarity itself is below.
    let tokens_high = 2.0 * kinds.common as f64 / total as f64;
    if !always_gather && tokens_high < floor {
        return Verdict::BelowThreshold { tokens: tokens_high as f32 };
    }
    if out_of_reach(&range) {
        return Verdict::Unreachable { tokens: tokens_high as f32 };
    }
    let normalised_lcs = lcs_length(a.syms, b.syms);
    let tokens = 2.0 * normalised_lcs as f64 / total as f64;
    if tokens < floor {
        return Verdict::BelowThreshold { tokens: tokens as f32 };
    }
    range.bound_by_lcs(normalised_lcs, shorter, total);
    range.fix(TOKENS, tokens as f32);
    if out_of_reach(&range) {
        return Verdict::Unreachable { tokens: tokens as f32 };
    }
    range.fix(NAMES, name_overlap(a, b, names));
    if out_of_reach(&range) {
        return Verdict::Unreachable { tokens: tokens as f32 };
    }
    let (syms_a, syms_b) = semi_normalised(a, b, names);
    let aligned_length = lcs_length(&syms_a, &syms_b);
    range.fix(ALIGNED, share(aligned_length, shorter));
    // Every aligned token weighs at most 1 in `runs`.
    range.high[RUNS] = f64::from(share(2 * aligned_length, total));
    if out_of_reach(&range) || trees_out_of_reach(&range) {
        return Verdict::Unreachable { tokens: tokens as f32 };
    }
    let mut evidence = alignment_signals(a, b, &syms_a, &syms_b, tokens);
    evidence.names = range.low[NAMES] as f32;
    evidence.shape = kinds.shape;
    for (signal, value) in [(RUNS, evidence.runs), (LITERALS, evidence.literals), (SWAPS, evidence.swaps)] {
        range.fix(signal, value);
    }
    // `free_sub` takes a second alignment: only for a pair the trees may still accept.
    if trees_out_of_reach(&range) {
        return Verdict::Unreachable { tokens: tokens as f32 };
    }
    evidence.free_sub = free_substitutions(a, b, names);
    let z = model_value(&evidence);
    evidence.score = (1.0 / (1.0 + (-z).exp())) as f32;
    if z >= cut { Verdict::Accepted(evidence) } else { Verdict::Rejected(evidence) }
}

/// The model's log-odds that the pair is a real near-miss clone, both stages together: the
/// logistic regression (whose bounds settle most pairs early) with its margin, and the
/// trees over every signal. A pair is accepted when both reach the setting's cut.
///
/// The trees overrule the first stage only for a pair that swaps names: one whose aligned
/// free names all agree (`free_sub` 0) is no template sibling, and the first stage alone
/// judges it.
fn model_value(evidence: &Evidence) -> f64 {
    let linear = INTERCEPT + WEIGHTS.iter().zip(evidence.signals()).map(|(w, s)| w * f64::from(s)).sum::<f64>();
    let both = (linear + trees::PREFILTER_MARGIN).min(trees_value(&evidence.signals()) - trees::TREES_CUT);
    if evidence.free_sub == 0.0 { both.max(linear) } else { both }
}

/// The boosted trees' log-odds for a pair's signals (`verify_trees`).
fn trees_value(signals: &[f32; SIGNALS]) -> f64 {
    let mut value = trees::BASE;
    for &root in &trees::ROOTS {
        let mut node = &trees::NODES[usize::from(root)];
        while node.signal != trees::LEAF {
            let next = if f64::from(signals[usize::from(node.signal)]) <= node.threshold { node.left } else { node.right };
            node = &trees::NODES[usize::from(next)];
        }
        value += node.value;
    }
    value
}

/// Positions of the signals in `Evidence::signals`.
const TOKENS: usize = 0;
const ALIGNED: usize = 1;
const RUNS: usize = 2;
const NAMES: usize = 3;
const LITERALS: usize = 4;
const SWAPS: usize = 5;
const FREE_SUB: usize = 8;
const SIZE: usize = 6;
const SHAPE: usize = 7;

/// What is known of a pair's signals part way through verification: the lowest and
/// highest value each may still take (equal once computed).
#[derive(Clone, Copy, Debug)]
struct SignalRange {
    low: [f64; SIGNALS],
    high: [f64; SIGNALS],
}

impl SignalRange {
    /// What lengths alone tell: the size; every other signal lies in [0, 1].
    fn of_sizes(shorter: usize, total: usize) -> SignalRange {
        let mut range = SignalRange { low: [0.0; SIGNALS], high: [1.0; SIGNALS] };
        range.fix(SIZE, share(shorter, total - shorter));
        range
    }

    /// What an upper bound `lcs_high` of the LCS of the normalised streams tells: a token
    /// similarity of at most `2·lcs_high/total`. The alignment the other signals come from
    /// is an LCS of streams that refine the normalised one, so it is no longer: `runs`
    /// cannot exceed the token similarity, nor `aligned` the LCS over the shorter length.
    fn bound_by_lcs(&mut self, lcs_high: usize, shorter: usize, total: usize) {
        self.high[TOKENS] = f64::from(share(2 * lcs_high, total));
        self.high[ALIGNED] = f64::from(share(lcs_high, shorter).min(1.0));
        self.high[RUNS] = self.high[TOKENS];
    }

    /// A signal now computed, as the model will read it.
    fn fix(&mut self, signal: usize, value: f32) {
        self.low[signal] = f64::from(value);
        self.high[signal] = f64::from(value);
    }

    /// The highest model value the pair can still reach: the first stage's, summed in its
    /// order so that, once every signal is fixed, it is that stage's value to the last bit.
    fn best_value(&self) -> f64 {
        // The trees may only lower the model's value: the first stage bounds it.
        self.best_linear_value() + trees::PREFILTER_MARGIN
    }

    /// The highest value the first stage alone can still give, summed in its order.
    fn best_linear_value(&self) -> f64 {
        INTERCEPT
            + WEIGHTS
                .iter()
                .enumerate()
                .map(|(signal, &w)| if w > 0.0 { w * self.high[signal] } else { w * self.low[signal] })
                .sum::<f64>()
    }

    /// Whether the model's value, the trees' bound included, may still reach `cut`. The
    /// trees are walked only when their bound decides: not for a pair the first stage's
    /// bound already rejects, nor for one it accepts while `free_sub` may still be 0 (then
    /// the first stage alone may judge it).
    fn may_reach_with_trees(&self, cut: f64) -> bool {
        let linear = self.best_linear_value();
        if linear + trees::PREFILTER_MARGIN < cut {
            return false;
        }
        if self.low[FREE_SUB] == 0.0 && linear >= cut {
            return true;
        }
        self.best_trees_value() - trees::TREES_CUT >= cut
    }

    /// The highest value the trees can still give, each signal anywhere in its range;
    /// summed as `trees_value` sums, so that with every signal fixed it is that value.
    fn best_trees_value(&self) -> f64 {
        trees::ROOTS.iter().fold(trees::BASE, |value, &root| value + self.best_leaf(root))
    }

    fn best_leaf(&self, node: u16) -> f64 {
        let node = &trees::NODES[usize::from(node)];
        if node.signal == trees::LEAF {
            return node.value;
        }
        let signal = usize::from(node.signal);
        match (self.low[signal] <= node.threshold, self.high[signal] > node.threshold) {
            (true, true) => self.best_leaf(node.left).max(self.best_leaf(node.right)),
            (true, false) => self.best_leaf(node.left),
            _ => self.best_leaf(node.right),
        }
    }
}

/// `part / whole` as a signal reads it (0 for an empty whole).
fn share(part: usize, whole: usize) -> f32 {
    if whole == 0 { 0.0 } else { (part as f64 / whole as f64) as f32 }
}

/// The two runs' streams with used names by their text (`NameContext::name_symbols`),
/// except either unit's own name (in its header, or a recursive call): that is a name it
/// binds, and a copy renames it like a local.
fn semi_normalised(a: TokenRun<'_>, b: TokenRun<'_>, names: &NameWeights<'_>) -> (Vec<u16>, Vec<u16>) {
    let (mut syms_a, mut syms_b) = (names.context.name_symbols(a), names.context.name_symbols(b));
    for (syms, run) in [(&mut syms_a, a), (&mut syms_b, b)] {
        for (sym, &text) in syms.iter_mut().zip(run.texts) {
            if *sym >= crate::names::SYM_USED_NAME && *sym != SYM_BARRIER {
                let key = crate::names::name_key(text);
                if names.own_a.contains(&key) || names.own_b.contains(&key) {
                    *sym = SYM_IDENTIFIER;
                }
            }
        }
    }
    (syms_a, syms_b)
}

/// Computes every signal of a pair whose token similarity is `tokens`.
#[cfg(test)]
fn gather(a: TokenRun<'_>, b: TokenRun<'_>, tokens: f64, names: &NameWeights<'_>) -> Evidence {
    let (syms_a, syms_b) = semi_normalised(a, b, names);
    let mut evidence = alignment_signals(a, b, &syms_a, &syms_b, tokens);
    evidence.names = name_overlap(a, b, names);
    evidence.shape = kind_counts(a.syms, b.syms).shape;
    evidence.free_sub = free_substitutions(a, b, names);
    evidence
}

/// The signals that come from the alignment of the semi-normalised streams, with the
/// token similarity and size; `names` and `shape` are left for the caller.
fn alignment_signals(a: TokenRun<'_>, b: TokenRun<'_>, syms_a: &[u16], syms_b: &[u16], tokens: f64) -> Evidence {
    let (total, shorter, longer) = (a.syms.len() + b.syms.len(), a.syms.len().min(b.syms.len()), a.syms.len().max(b.syms.len()));
    let alignment = lcs_alignment(syms_a, syms_b);
    let mut weighted = 0.0f64;
    let (mut literals, mut same_literals) = (0usize, 0usize);
    // Fx, not SipHash: every accepted candidate and most near the cut fill these maps,
    // keyed by text hashes that no caller chooses.
    let mut renamings: HashMap<(u32, u32), (u32, f64)> = HashMap::default();
    for run in alignment.chunk_by(|x, y| y.0 == x.0 + 1 && y.1 == x.1 + 1) {
        let weight = (run.len().saturating_sub(1) as f64 / (FULL_RUN - 1) as f64).min(1.0);
        for &(i, j) in run {
            if syms_a[i] == SYM_IDENTIFIER {
                let entry = renamings.entry((a.texts[i], b.texts[j])).or_default();
                entry.0 += 1;
                entry.1 += weight;
            } else {
                weighted += weight;
                if syms_a[i] == SYM_LITERAL {
                    literals += 1;
                    same_literals += usize::from(a.texts[i] == b.texts[j]);
                }
            }
        }
    }
    weighted += consistent_weight(&renamings);
    Evidence {
        tokens: tokens as f32,
        aligned: share(alignment.len(), shorter),
        runs: if total == 0 { 0.0 } else { (2.0 * weighted / total as f64) as f32 },
        names: 0.0,
        swaps: swapped_names(syms_a, syms_b, &alignment),
        literals: if literals == 0 { 1.0 } else { (same_literals as f64 / literals as f64) as f32 },
        size: share(shorter, longer),
        shape: 0.0,
        free_sub: 0.0,
        score: 0.0,
    }
}

/// The run weight of aligned identifier pairs (x, y) where y is x's most frequent partner
/// and x is y's: a systematic renaming keeps them all, an unrelated function keeps few. A
/// renaming seen once is weak evidence (unrelated code "renames" every name it uses once):
/// it counts half, unless the names are equal.
fn consistent_weight(renamings: &HashMap<(u32, u32), (u32, f64)>) -> f64 {
    let mut best_for_a: HashMap<u32, (u32, u32)> = HashMap::with_capacity_and_hasher(renamings.len(), Default::default());
    let mut best_for_b: HashMap<u32, (u32, u32)> = HashMap::with_capacity_and_hasher(renamings.len(), Default::default());
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

/// Weighted overlap of the two units' used names (own names left out): the rarity-weighted
/// share of the smaller set's names that the other unit uses too. Names added with new
/// statements leave it intact, names swapped for others do not. 1 when either uses none
/// (nothing to tell them apart by).
fn name_overlap(a: TokenRun<'_>, b: TokenRun<'_>, names: &NameWeights<'_>) -> f32 {
    let own: Vec<u32> = names.own_a.iter().chain(names.own_b).copied().collect();
    // A known list already leaves its unit's own name out; the other's goes too.
    let names_of = |run: TokenRun<'_>, known: Option<&[u32]>, other_own: &[u32]| match known {
        Some(known) => known.iter().copied().filter(|key| !other_own.contains(key)).collect(),
        None => names.context.all_used_names(run, &own),
    };
    let (names_a, names_b): (Vec<u32>, Vec<u32>) = (names_of(a, names.known_a, names.own_b), names_of(b, names.known_b, names.own_a));
    if names_a.is_empty() || names_b.is_empty() {
        return 1.0;
    }
    // One walk over both sorted lists, each name weighed once; every sum still adds its
    // names in sorted order.
    let (mut weight_a, mut weight_b, mut shared) = (0.0f64, 0.0f64, 0.0f64);
    let (mut i, mut j) = (0, 0);
    while i < names_a.len() || j < names_b.len() {
        let (name, in_a, in_b) = match (names_a.get(i), names_b.get(j)) {
            (Some(&x), Some(&y)) if x == y => (x, true, true),
            (Some(&x), Some(&y)) if x < y => (x, true, false),
            (Some(&x), None) => (x, true, false),
            (_, Some(&y)) => (y, false, true),
            (None, None) => unreachable!("the loop runs while either list has names"),
        };
        let weight = names.weight(name);
        if in_a {
            weight_a += weight;
            i += 1;
        }
        if in_b {
            weight_b += weight;
            j += 1;
        }
        if in_a && in_b {
            shared += weight;
        }
    }
    let smaller = weight_a.min(weight_b);
    if smaller == 0.0 { 1.0 } else { (shared / smaller) as f32 }
}

/// The rarity-weighted share of aligned free identifiers whose texts differ, on one LCS
/// alignment of the normalised streams (every identifier one symbol, so a swapped name
/// stays aligned with the name it replaced). Free: an identifier the unit neither binds
/// (`bound_*`) nor is named by. Each aligned pair weighs the larger rarity of its two
/// names. 0 when no free identifiers align.
fn free_substitutions(a: TokenRun<'_>, b: TokenRun<'_>, names: &NameWeights<'_>) -> f32 {
    let free = |run: TokenRun<'_>, i: usize, bound: &[u32], own: &[u32]| {
        run.syms[i] == SYM_IDENTIFIER && bound.binary_search(&run.texts[i]).is_err() && !own.contains(&crate::names::name_key(run.texts[i]))
    };
    let (mut total, mut swapped) = (0.0f64, 0.0f64);
    for (i, j) in lcs_alignment(a.syms, b.syms) {
        if !(free(a, i, names.bound_a, names.own_a) && free(b, j, names.bound_b, names.own_b)) {
            continue;
        }
        let (text_a, text_b) = (a.texts[i], b.texts[j]);
        let weight = names.weight(crate::names::name_key(text_a)).max(names.weight(crate::names::name_key(text_b)));
        total += weight;
        if text_a != text_b {
            swapped += weight;
        }
    }
    if total == 0.0 { 0.0 } else { (swapped / total) as f32 }
}

/// The share of used-name occurrences swapped for another: in a short two-sided gap of
/// the alignment, a name the other unit never uses facing a name this unit never uses
/// (`getArray` for `putArray`). That is how sibling functions of one template differ;
/// edits to a copy mostly add or remove statements instead, and keep the names they had.
fn swapped_names(syms_a: &[u16], syms_b: &[u16], alignment: &[(usize, usize)]) -> f32 {
    let used = |sym: u16| sym >= crate::names::SYM_USED_NAME && sym != SYM_BARRIER;
    let distinct = |syms: &[u16]| {
        let mut names: Vec<u16> = syms.iter().copied().filter(|&sym| used(sym)).collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let (names_a, names_b) = (distinct(syms_a), distinct(syms_b));
    let total = syms_a.iter().chain(syms_b).filter(|&&sym| used(sym)).count();
    if total == 0 {
        return 0.0;
    }
    // Used names of a gap that the other unit does not use anywhere.
    let foreign = |gap: &[u16], other: &[u16]| gap.iter().filter(|&&sym| used(sym) && other.binary_search(&sym).is_err()).count();
    let mut swapped = 0usize;
    let ends = alignment.iter().map(|&(i, j)| (i, j)).chain(std::iter::once((syms_a.len(), syms_b.len())));
    let (mut start_a, mut start_b) = (0usize, 0usize);
    for (i, j) in ends {
        let (gap_a, gap_b) = (&syms_a[start_a..i], &syms_b[start_b..j]);
        if !gap_a.is_empty() && !gap_b.is_empty() && gap_a.len() <= MAX_SWAP_GAP && gap_b.len() <= MAX_SWAP_GAP {
            let (foreign_a, foreign_b) = (foreign(gap_a, &names_b), foreign(gap_b, &names_a));
            if foreign_a > 0 && foreign_b > 0 {
                swapped += foreign_a + foreign_b;
            }
        }
        (start_a, start_b) = (i + 1, j + 1);
    }
    (swapped as f64 / total as f64) as f32
}

/// Longest gap, in tokens on each side, still read as a swap rather than an edit.
const MAX_SWAP_GAP: usize = 3;

thread_local! {
    static KIND_COUNTS: RefCell<KindScratch> = RefCell::new(KindScratch::default());
}

/// Per token kind, its count in side `a` (kept while the next pair has the same `a`, as a
/// scan's pairs mostly do: they are sorted by it) and in side `b` (zero between pairs), and
/// the kinds each holds: histograms without sorting or allocating per pair.
struct KindScratch {
    held_a: Vec<u16>,
    counts_a: Vec<u32>,
    kinds_a: Vec<u16>,
    /// Sum of squares of `a`'s counts of non-parameter kinds.
    norm_a: u64,
    counts_b: Vec<u32>,
    kinds_b: Vec<u16>,
}

impl Default for KindScratch {
    fn default() -> Self {
        KindScratch { held_a: Vec::new(), counts_a: vec![0; 1 << 16], kinds_a: Vec::new(), norm_a: 0, counts_b: vec![0; 1 << 16], kinds_b: Vec::new() }
    }
}

/// What the two units' counts of each token kind tell.
struct KindCounts {
    /// Tokens the two could have in common, kind by kind (the smaller count of each):
    /// an upper bound of their LCS.
    common: usize,
    /// Cosine of the two histograms of token kinds, identifiers and literals left out: the
    /// code's shape, not its names.
    shape: f32,
}

fn kind_counts(a: &[u16], b: &[u16]) -> KindCounts {
    KIND_COUNTS.with_borrow_mut(|scratch| {
        let KindScratch { held_a, counts_a, kinds_a, norm_a, counts_b, kinds_b } = scratch;
        if held_a[..] != a[..] {
            for &kind in kinds_a.iter() {
                counts_a[usize::from(kind)] = 0;
            }
            kinds_a.clear();
            held_a.clear();
            held_a.extend_from_slice(a);
            for &sym in a.iter().filter(|&&s| s != SYM_BARRIER) {
                let count = &mut counts_a[usize::from(sym)];
                if *count == 0 {
                    kinds_a.push(sym);
                }
                *count += 1;
            }
            *norm_a = kinds_a.iter().filter(|&&kind| !is_param(kind)).map(|&kind| u64::from(counts_a[usize::from(kind)]).pow(2)).sum();
        }
        // A token of `b` has a partner in `a` while its kind's running count in `b` is
        // within `a`'s count: the sum of the smaller counts, kind by kind.
        let mut common = 0usize;
        for &sym in b.iter().filter(|&&s| s != SYM_BARRIER) {
            let count = &mut counts_b[usize::from(sym)];
            if *count == 0 {
                kinds_b.push(sym);
            }
            *count += 1;
            common += usize::from(*count <= counts_a[usize::from(sym)]);
        }
        // Sums of products of counts: exact integers, whatever the order.
        let (mut dot, mut norm_b) = (0u64, 0u64);
        for &kind in kinds_b.iter() {
            let y = u64::from(std::mem::take(&mut counts_b[usize::from(kind)]));
            if !is_param(kind) {
                dot += u64::from(counts_a[usize::from(kind)]) * y;
                norm_b += y * y;
            }
        }
        kinds_b.clear();
        let shape = if *norm_a == 0 || norm_b == 0 { 0.0 } else { (dot as f64 / ((*norm_a as f64).sqrt() * (norm_b as f64).sqrt())) as f32 };
        KindCounts { common, shape }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Language;
    use crate::config::DetectionSettings;
    use crate::analysis::analyze;

    /// Original of the labelled pairs below: a function of a real shape (validate, loop,
    /// accumulate, format).
    const ORIGINAL: &str = r#"def summarize_orders(orders, currency):
    if not orders:
        return None
    total = 0
    paid = []
    for order in orders:
        if order.status != "paid":
            continue
        amount = order.amount * order.quantity
        total += amount
        paid.append(order.identifier)
    average = total / len(paid)
    report = {"total": total, "count": len(paid), "average": average}
    return format_report(report, currency)
"#;

    /// A copy edited throughout: a guard and a log call added, one loop statement
    /// rewritten, an expression extracted, a name changed — a strongly modified clone.
    const EDITED_COPY: &str = r#"def summarize_paid(orders, currency, log):
    if not orders or currency is None:
        log.warning("nothing to summarize")
        return None
    total = 0
    paid = []
    for order in orders:
        if order.status != "paid":
            continue
        quantity = max(order.quantity, 1)
        amount = order.amount * quantity
        total += amount
        paid.append(order.identifier)
    log.debug("paid orders: %d", len(paid))
    average = total / len(paid)
    report = {"total": total, "count": len(paid), "average": average}
    return format_report(report, currency)
"#;

    /// A look-alike: the same guard-loop-accumulate shape doing another job with other
    /// names — common in any codebase, not a copy.
    const LOOK_ALIKE: &str = r#"def collect_warnings(entries, limit):
    if not entries:
        return []
    seen = 0
    result = []
    for entry in entries:
        if entry.level == "debug":
            break
        message = entry.render(limit)
        seen += 1
        result.extend(message.split_lines())
    ratio = seen / max(limit, 1)
    summary = [seen, ratio]
    return sorted(result + summary)
"#;

    struct Unit {
        syms: Vec<u16>,
        texts: Vec<u32>,
        own: Vec<u32>,
        bound: Vec<u32>,
    }

    fn unit(source: &str) -> Unit {
        let analysis = analyze(Language::Python, source);
        let name = source.split(['(', ' ']).nth(1).expect("def NAME(");
        let own = NameContext::of(Language::Python).name_keys(name);
        let bound = crate::model::bound_names(&analysis, 0, analysis.tokens.len()).into_vec();
        Unit { syms: analysis.tokens.syms, texts: analysis.tokens.texts, own, bound }
    }

    fn run(unit: &Unit) -> TokenRun<'_> {
        TokenRun { syms: &unit.syms, texts: &unit.texts }
    }

    /// Verifies at `setting` with every name equally common.
    fn decide(a: &Unit, b: &Unit, setting: f64, always_gather: bool) -> Verdict {
        let frequency = |_: u32| 1usize;
        let weights = NameWeights { context: NameContext::of(Language::Python), own_a: &a.own, own_b: &b.own, bound_a: &a.bound, bound_b: &b.bound, known_a: None, known_b: None, frequency: &frequency, units: 1000 };
        verify(run(a), run(b), setting, &weights, always_gather)
    }

    #[test]
    fn an_edited_copy_is_accepted_and_a_look_alike_rejected() {
        let (original, copy, look_alike) = (unit(ORIGINAL), unit(EDITED_COPY), unit(LOOK_ALIKE));
        let default = DetectionSettings::default().similarity;
        let accepted = decide(&original, &copy, default, false);
        assert!(matches!(accepted, Verdict::Accepted(_)), "{accepted:?}");
        let rejected = decide(&original, &look_alike, default, false);
        assert!(matches!(rejected, Verdict::Rejected(_) | Verdict::Unreachable { .. }), "weighed by the model, and rejected: {rejected:?}");
    }

    /// `ORIGINAL` with other callees, fields and another constant: a sibling of one
    /// template.
    fn sibling() -> String {
        ORIGINAL
            .replace("summarize_orders", "summarize_refunds")
            .replace(".status != \"paid\"", ".state != \"refunded\"")
            .replace("order.amount * order.quantity", "order.refund * order.returned")
            .replace("order.identifier", "order.reference")
            .replace("format_report", "render_refunds")
    }

    fn free_sub_of(a: &Unit, b: &Unit) -> f32 {
        let frequency = |_: u32| 1usize;
        let weights = NameWeights { context: NameContext::of(Language::Python), own_a: &a.own, own_b: &b.own, bound_a: &a.bound, bound_b: &b.bound, known_a: None, known_b: None, frequency: &frequency, units: 1000 };
        free_substitutions(run(a), run(b), &weights)
    }

    #[test]
    fn swapped_free_names_mark_a_sibling_and_renamed_locals_do_not() {
        let original = unit(ORIGINAL);
        // Every local and parameter renamed, the function too: nothing free changes.
        let renamed = unit(&ORIGINAL.replace("orders", "rows").replace("order", "row").replace("total", "sum").replace("paid", "done").replace("summarize_", "collect_"));
        assert_eq!(free_sub_of(&original, &renamed), 0.0);
        assert_eq!(free_sub_of(&original, &unit(EDITED_COPY)), 0.0, "an edited copy keeps the names it uses");
        let sibling = free_sub_of(&original, &unit(&sibling()));
        assert!(sibling > 0.4, "status/amount/quantity/identifier/format_report swapped: {sibling}");
    }

    #[test]
    fn the_trees_give_the_log_odds_they_were_fitted_to() {
        for (signals, expected) in trees::CHECKS {
            let value = trees_value(&signals);
            assert!((value - expected).abs() < 1e-9, "{signals:?}: {value} against {expected}");
        }
    }

    #[test]
    fn a_stricter_setting_asks_for_more() {
        let (original, copy) = (unit(ORIGINAL), unit(EDITED_COPY));
        let default = DetectionSettings::default().similarity;
        let Verdict::Accepted(evidence) = decide(&original, &copy, default, true) else { panic!("accepted at the default") };
        // The strictest setting whose cut this pair's value still meets, and just above it.
        let z = model_value(&evidence);
        let limit = SETTING_AT_FIT + z / CUT_PER_SETTING;
        assert!(matches!(decide(&original, &copy, limit - 0.01, true), Verdict::Accepted(_)));
        assert!(!matches!(decide(&original, &copy, limit + 0.01, true), Verdict::Accepted(_)));
    }

    /// The three sources, and each with one line dropped: pairs spread over the model's
    /// range, near and far from any cut.
    fn variants() -> Vec<Unit> {
        let mut sources = Vec::new();
        for source in [ORIGINAL, EDITED_COPY, LOOK_ALIKE] {
            sources.push(source.to_string());
            let lines: Vec<&str> = source.lines().collect();
            for dropped in (2..lines.len()).step_by(3) {
                let kept: Vec<&str> = lines.iter().enumerate().filter(|&(i, _)| i != dropped).map(|(_, line)| *line).collect();
                sources.push(kept.join("\n") + "\n");
            }
        }
        sources.iter().map(|source| unit(source)).collect()
    }

    #[test]
    fn the_first_bound_is_never_below_the_model() {
        let units = variants();
        for a in &units {
            for b in &units {
                let (total, shorter) = (a.syms.len() + b.syms.len(), a.syms.len().min(b.syms.len()));
                let lcs = lcs_length(&a.syms, &b.syms);
                let tokens = 2.0 * lcs as f64 / total as f64;
                let frequency = |_: u32| 1usize;
                let weights = NameWeights { context: NameContext::of(Language::Python), own_a: &a.own, own_b: &b.own, bound_a: &a.bound, bound_b: &b.bound, known_a: None, known_b: None, frequency: &frequency, units: 1000 };
                let evidence = gather(run(a), run(b), tokens, &weights);
                // The trees' bound: exact with every signal known, never below with one open.
                let mut known = SignalRange::of_sizes(shorter, total);
                for (signal, value) in evidence.signals().into_iter().enumerate() {
                    known.fix(signal, value);
                }
                assert_eq!(known.best_trees_value(), trees_value(&evidence.signals()));
                for open in 0..SIGNALS {
                    let mut partly = known;
                    (partly.low[open], partly.high[open]) = (0.0, 1.0);
                    assert!(trees_value(&evidence.signals()) <= partly.best_trees_value(), "{evidence:?} with signal {open} open");
                }
                let mut range = SignalRange::of_sizes(shorter, total);
                range.bound_by_lcs(lcs, shorter, total);
                assert!(model_value(&evidence) <= range.best_value(), "{evidence:?} above {range:?}");
                // The kind counts bound the LCS, and with it everything bounded by it.
                let kinds = kind_counts(&a.syms, &b.syms);
                assert!(kinds.common >= lcs);
                range = SignalRange::of_sizes(shorter, total);
                range.bound_by_lcs(kinds.common, shorter, total);
                range.fix(SHAPE, kinds.shape);
                assert!(model_value(&evidence) <= range.best_value(), "{evidence:?} above {range:?}");
            }
        }
    }

    #[test]
    fn shortcuts_never_change_a_verdict() {
        let units = variants();
        let context = NameContext::of(Language::Python);
        let frequency = |_: u32| 1usize;
        let mut settled_early = 0;
        for a in &units {
            for b in &units {
                // The quick path also takes each unit's used names as its sample holds them.
                let (known_a, known_b) = (context.used_names(run(a), &a.own), context.used_names(run(b), &b.own));
                assert!(known_a.len() < crate::names::NAME_SAMPLE && known_b.len() < crate::names::NAME_SAMPLE, "complete samples");
                let quick_weights =
                    NameWeights { context, own_a: &a.own, own_b: &b.own, bound_a: &a.bound, bound_b: &b.bound, known_a: Some(&known_a), known_b: Some(&known_b), frequency: &frequency, units: 1000 };
                for step in 0..56 {
                    let setting = 0.4 + 0.01 * f64::from(step);
                    let full = decide(a, b, setting, true);
                    let quick = verify(run(a), run(b), setting, &quick_weights, false);
                    match quick {
                        Verdict::Unreachable { .. } | Verdict::BelowThreshold { .. } => {
                            settled_early += usize::from(!matches!(full, Verdict::BelowThreshold { .. }));
                            assert!(!matches!(full, Verdict::Accepted(_)), "settled early, yet {full:?} at {setting}");
                        }
                        _ => assert_eq!(quick, full, "at {setting}"),
                    }
                }
            }
        }
        assert!(settled_early > 0, "the shortcuts were never taken");
    }

    /// The histogram of side `a` kept from pair to pair gives what counting both sides
    /// afresh gives, whether `a` repeats or changes.
    #[test]
    fn kind_counts_keep_side_a_only_while_it_is_the_same() {
        let naive = |a: &[u16], b: &[u16]| {
            let count = |syms: &[u16], kind: u16| syms.iter().filter(|&&sym| sym == kind).count() as u64;
            let mut kinds: Vec<u16> = a.iter().chain(b).copied().filter(|&sym| sym != SYM_BARRIER).collect();
            kinds.sort_unstable();
            kinds.dedup();
            let common: u64 = kinds.iter().map(|&kind| count(a, kind).min(count(b, kind))).sum();
            let shaped: Vec<u16> = kinds.into_iter().filter(|&kind| !is_param(kind)).collect();
            let dot: u64 = shaped.iter().map(|&kind| count(a, kind) * count(b, kind)).sum();
            let norm = |syms: &[u16]| shaped.iter().map(|&kind| count(syms, kind).pow(2)).sum::<u64>();
            let shape = if norm(a) == 0 || norm(b) == 0 { 0.0 } else { (dot as f64 / ((norm(a) as f64).sqrt() * (norm(b) as f64).sqrt())) as f32 };
            (common as usize, shape)
        };
        let one: Vec<u16> = vec![3, 4, 3, SYM_IDENTIFIER, 5, SYM_BARRIER, 3, SYM_LITERAL];
        let two: Vec<u16> = vec![4, 4, 3, SYM_IDENTIFIER, SYM_IDENTIFIER, 6];
        let three: Vec<u16> = vec![7, 3, SYM_LITERAL, 4];
        for (a, b) in [(&one, &two), (&one, &three), (&one, &one), (&two, &one), (&two, &three), (&one, &two)] {
            let counts = kind_counts(a, b);
            assert_eq!((counts.common, counts.shape), naive(a, b), "{a:?} against {b:?}");
        }
    }
}
