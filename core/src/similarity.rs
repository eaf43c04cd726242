//! Token-level similarity, the measure every reported Type-3 pair is verified with.
//!
//! Two steps: a bit-parallel LCS over normalised symbols (Hyyrö's algorithm, |a|/64 word
//! operations per token of b) bounds the similarity from above and rejects most candidates
//! cheaply; survivors are aligned (one LCS, walked back through the kept bit rows) and
//! scored on evidence of copying: local identifiers count as matching only when they follow
//! one consistent renaming, and the names the code uses but does not bind (called
//! functions, attributes, fields, methods) only when they are the same name, so two
//! unrelated functions of the same shape do not look like clones.

use std::cell::RefCell;
use std::collections::HashMap;
use crate::analysis::{SYM_BARRIER, SYM_IDENTIFIER};
pub use crate::names::{NameContext, TokenRun};

/// Aligned runs shorter than this do not count as shared code.
const MIN_RUN: usize = 5;

/// No slot: the symbol is not in the alphabet of `a`.
const NO_SLOT: u16 = u16::MAX;

/// What one thread's LCS computations reuse, so that a pair costs no allocation.
struct LcsScratch {
    /// Slot of every symbol of `held` in its match masks, `NO_SLOT` for all others: one
    /// load per token of `b` instead of a search.
    slots: Vec<u16>,
    /// One mask per distinct symbol of `held`, `words` long each.
    masks: Vec<u64>,
    /// The mask of a symbol `a` does not have.
    no_match: Vec<u64>,
    row: Vec<u64>,
    /// The run whose masks `slots` and `masks` hold; they are kept after use. Verification
    /// compares one unit with each of its candidates in turn (they are sorted by it), and
    /// building its masks cost about a third of each comparison; masks depend on the run's
    /// symbols alone, so an equal run finds them ready.
    held: Vec<u16>,
}

impl LcsScratch {
    fn new() -> Self {
        LcsScratch { slots: vec![NO_SLOT; 1 << 16], masks: Vec::new(), no_match: Vec::new(), row: Vec::new(), held: Vec::new() }
    }
}

/// Two scratches and the one used last: verification compares a unit's normalised stream
/// and then its semi-normalised one with each candidate, so one of each stays held.
struct Scratches {
    scratches: [LcsScratch; 2],
    last: usize,
}

thread_local! {
    static SCRATCH: RefCell<Scratches> = RefCell::new(Scratches { scratches: [LcsScratch::new(), LcsScratch::new()], last: 0 });
}

/// The match masks of one `a` (one bit per token of `a`, one mask per distinct symbol),
/// and how a bit row of Hyyrö's algorithm advances by one token of `b`.
struct Masks<'s> {
    slots: &'s [u16],
    masks: &'s [u64],
    no_match: &'s [u64],
    words: usize,
}

impl Masks<'_> {
    fn advance(&self, row: &mut [u64], sym: u16) {
        let slot = usize::from(self.slots[usize::from(sym)]);
        let words = self.words;
        let mask = if slot == usize::from(NO_SLOT) { self.no_match } else { &self.masks[slot * words..(slot + 1) * words] };
        advance_row(row, mask);
    }
}

/// One step of Hyyrö's bit-parallel LCS: the row advanced by a token whose match mask is
/// `mask`. Inlined so that a fixed-width row stays in registers (`lcs_length_fixed`).
#[inline(always)]
fn advance_row(row: &mut [u64], mask: &[u64]) {
    let mut carry = 0u64;
    for (value, &m) in row.iter_mut().zip(mask) {
        let v = *value;
        let u = v & m;
        let (sum, overflow_a) = v.overflowing_add(u);
        let (sum, overflow_b) = sum.overflowing_add(carry);
        carry = u64::from(overflow_a || overflow_b);
        *value = sum | (v & !m);
    }
}

/// Mask words a thread keeps between pairs: one very long unit's masks (tens of megabytes
/// on the Linux tree's largest functions) are let go rather than held to the scan's end.
const MOST_KEPT_MASK_WORDS: usize = 1 << 20;

/// Builds the masks of `a` in the thread's scratch, unless it holds them already, and
/// runs `run` with them and the scratch row (`a.len()` words wide, unset).
fn with_masks<R>(a: &[u16], run: impl FnOnce(&Masks<'_>, &mut Vec<u64>) -> R) -> R {
    let words = a.len().div_ceil(64);
    SCRATCH.with_borrow_mut(|scratches| {
        // The scratch holding `a`, else the one used least recently.
        let index = scratches.scratches.iter().position(|scratch| scratch.held == a).unwrap_or(1 - scratches.last);
        scratches.last = index;
        let LcsScratch { slots, masks, no_match, row, held } = &mut scratches.scratches[index];
        if held[..] != a[..] {
            for &sym in held.iter() {
                slots[usize::from(sym)] = NO_SLOT;
            }
            held.clear();
            masks.clear();
            for (position, &sym) in a.iter().enumerate() {
                if sym == SYM_BARRIER {
                    continue;
                }
                let mut slot = slots[usize::from(sym)];
                if slot == NO_SLOT {
                    // Fewer distinct symbols than `NO_SLOT`: the barrier is never given one.
                    slot = (masks.len() / words) as u16;
                    slots[usize::from(sym)] = slot;
                    masks.resize(masks.len() + words, 0);
                }
                masks[usize::from(slot) * words + position / 64] |= 1u64 << (position % 64);
            }
            held.extend_from_slice(a);
        }
        no_match.clear();
        no_match.resize(words, 0);
        let result = run(&Masks { slots, masks, no_match, words }, row);
        if masks.capacity() > MOST_KEPT_MASK_WORDS {
            for &sym in held.iter() {
                slots[usize::from(sym)] = NO_SLOT;
            }
            *held = Vec::new();
            *masks = Vec::new();
        }
        result
    })
}

/// Hyyrö's bit-parallel LCS over `a` (one bit per token of `a`), fed the tokens of `b`;
/// returns the LCS length. `on_row` sees the bit row after each token of `b`: the number
/// of zero bits among the first i bits is the LCS of `a[..i]` and the part of `b`
/// consumed so far.
fn lcs_rows(a: &[u16], b: &[u16], mut on_row: impl FnMut(&[u64])) -> usize {
    with_masks(a, |masks, row| {
        row.clear();
        row.resize(masks.words, u64::MAX);
        for &sym in b {
            masks.advance(row, sym);
            on_row(row);
        }
        zeros_in_prefix(row, a.len())
    })
}

/// Zero bits among the first `length` bits of a row.
fn zeros_in_prefix(row: &[u64], length: usize) -> usize {
    let full = length / 64;
    let mut zeros: usize = row[..full].iter().map(|w| w.count_zeros() as usize).sum();
    let rest = length % 64;
    if rest > 0 {
        zeros += (!row[full] & ((1u64 << rest) - 1)).count_ones() as usize;
    }
    zeros
}

/// Length of the longest common subsequence of two symbol runs; barriers never match.
pub fn lcs_length(a: &[u16], b: &[u16]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    // The masks are made for `a`, the run callers keep from pair to pair (`with_masks`).
    // Asking first which side the scratch holds compared whole runs several times a pair:
    // a third of `verify`'s own time in a profile.
    match a.len().div_ceil(64) {
        1 => lcs_length_fixed::<1>(a, b),
        2 => lcs_length_fixed::<2>(a, b),
        3 => lcs_length_fixed::<3>(a, b),
        4 => lcs_length_fixed::<4>(a, b),
        5 => lcs_length_fixed::<5>(a, b),
        6 => lcs_length_fixed::<6>(a, b),
        7 => lcs_length_fixed::<7>(a, b),
        8 => lcs_length_fixed::<8>(a, b),
        _ => lcs_rows(a, b, |_| {}),
    }
}

/// [`lcs_rows`] without rows to show, for an `a` of exactly `WORDS` words: the row lives
/// in registers and the carry chain is unrolled, where the general loop loads and stores
/// the row and counts its words at every token of `b` (verification runs this on every
/// candidate that its token-kind counts do not settle).
fn lcs_length_fixed<const WORDS: usize>(a: &[u16], b: &[u16]) -> usize {
    with_masks(a, |masks, _| {
        debug_assert_eq!(masks.words, WORDS);
        let mut row = [u64::MAX; WORDS];
        for &sym in b {
            let slot = usize::from(masks.slots[usize::from(sym)]);
            if slot == usize::from(NO_SLOT) {
                // No bit of `a` matches: the step leaves the row as it is (u = 0, no carry).
                continue;
            }
            advance_row(&mut row, &masks.masks[slot * WORDS..][..WORDS]);
        }
        zeros_in_prefix(&row, a.len())
    })
}

/// Bit-row words an alignment keeps whole (16 MB): past that, rows are kept every so often
/// and recomputed a segment at a time on the way back. Two of the Linux tree's longest
/// functions took 300 MB of rows at once, the scan's peak.
const MOST_ALIGNMENT_WORDS: usize = 2 << 20;

/// One longest common subsequence, as matched index pairs in increasing order: the
/// bit rows are kept and walked back from the end (|a|/64 words per token of b). Bit
/// i-1 of row j is set exactly when dropping a[i-1] keeps the LCS of a[..i] and b[..j],
/// so each step back is one bit test.
pub(crate) fn lcs_alignment(a: &[u16], b: &[u16]) -> Vec<(usize, usize)> {
    lcs_alignment_within(a, b, MOST_ALIGNMENT_WORDS)
}

/// [`lcs_alignment`] holding at most about `most_words` words of rows: past that, every
/// `span`th row is kept on the way forward, and on the way back the rows of one segment
/// are recomputed from the row before it (twice the bit operations, a square root of the
/// memory). The rows are the same either way, so is the alignment.
fn lcs_alignment_within(a: &[u16], b: &[u16], most_words: usize) -> Vec<(usize, usize)> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let words = a.len().div_ceil(64);
    let bit = |rows: &[u64], row: usize, i: usize| rows[row * words + (i - 1) / 64] >> ((i - 1) % 64) & 1 == 1;
    if words * (b.len() + 1) <= most_words {
        let mut rows: Vec<u64> = Vec::with_capacity(words * (b.len() + 1));
        rows.extend(std::iter::repeat_n(u64::MAX, words));
        let remaining = lcs_rows(a, b, |row| rows.extend_from_slice(row));
        return walk_back(a, b, remaining, |i, j| bit(&rows, j, i));
    }
    let span = b.len().isqrt().max(1);
    with_masks(a, |masks, row| {
        row.clear();
        row.resize(words, u64::MAX);
        // `checkpoints[k]` is row `k * span`: the row after the first `k * span` tokens of b.
        let mut checkpoints: Vec<u64> = Vec::with_capacity(words * (b.len() / span + 1));
        checkpoints.extend_from_slice(row);
        for (index, &sym) in b.iter().enumerate() {
            masks.advance(row, sym);
            if (index + 1) % span == 0 {
                checkpoints.extend_from_slice(row);
            }
        }
        let remaining = zeros_in_prefix(row, a.len());
        // Rows `first..first + held` of the segment walked through now.
        let mut segment: Vec<u64> = Vec::with_capacity(words * span);
        let (mut first, mut held) = (0usize, 0usize);
        walk_back(a, b, remaining, |i, j| {
            if !(first..first + held).contains(&j) {
                let k = (j - 1) / span;
                row.copy_from_slice(&checkpoints[k * words..(k + 1) * words]);
                segment.clear();
                for &sym in &b[k * span..((k + 1) * span).min(b.len())] {
                    masks.advance(row, sym);
                    segment.extend_from_slice(row);
                }
                (first, held) = (k * span + 1, segment.len() / words);
            }
            bit(&segment, j - first, i)
        })
    })
}

/// The matches of one LCS of `remaining` tokens, walked back from the ends of `a` and `b`;
/// `keeps_lcs_without_a(i, j)` is bit i-1 of row j, asked for rows in decreasing order.
fn walk_back(a: &[u16], b: &[u16], mut remaining: usize, mut keeps_lcs_without_a: impl FnMut(usize, usize) -> bool) -> Vec<(usize, usize)> {
    let mut matches = Vec::with_capacity(remaining);
    let (mut i, mut j) = (a.len(), b.len());
    while remaining > 0 {
        if a[i - 1] == b[j - 1] && a[i - 1] != SYM_BARRIER {
            // Equal symbols always extend the LCS of the prefixes before them.
            matches.push((i - 1, j - 1));
            i -= 1;
            j -= 1;
            remaining -= 1;
        } else if keeps_lcs_without_a(i, j) {
            i -= 1;
        } else {
            // Neither equal nor droppable from a: then dropping b[j-1] keeps the LCS.
            j -= 1;
        }
    }
    matches.reverse();
    matches
}

/// The evidence score of a pair (the previous verification rule, kept as a reference in
/// the Type-3 trace): it counts, over one LCS alignment, only runs of `MIN_RUN` or more
/// consecutive matches: any two pieces of code share scattered `(`, `;` and keywords, but
/// copied code shares runs. Within runs, identifiers split in two. The names a function
/// binds (parameters, locals) count where they follow one consistent renaming (a renaming
/// seen once counts half), since a copy renames them systematically. The names it uses
/// but does not bind, an identifier after a member access or before a call's `(`, must be
/// the same name: a copy that was renamed and edited still calls the same functions and
/// reads the same fields, while two different functions of one shape (two table-driven
/// tests, two guard-then-delegate methods) differ exactly there. Such names take part in
/// the alignment as themselves, so a different callee also breaks the run around it. The
/// function's own name, followed by its parameter list, is one of them: a renamed copy
/// loses only the few tokens around it. Literals count as matched (Type-2 allows changed
/// values). In [0, 1].
pub fn evidence_score(a: TokenRun<'_>, b: TokenRun<'_>, context: &NameContext) -> f64 {
    let total = a.syms.len() + b.syms.len();
    if total == 0 {
        return 0.0;
    }
    let (syms_a, syms_b) = (context.name_symbols(a), context.name_symbols(b));
    let alignment = lcs_alignment(&syms_a, &syms_b);
    let mut matched = 0usize;
    let mut renamings: HashMap<(u32, u32), u32> = HashMap::new();
    for run in alignment.chunk_by(|x, y| y.0 == x.0 + 1 && y.1 == x.1 + 1) {
        if run.len() < MIN_RUN {
            continue;
        }
        for &(i, j) in run {
            if syms_a[i] == SYM_IDENTIFIER {
                *renamings.entry((a.texts[i], b.texts[j])).or_default() += 1;
            } else {
                matched += 1;
            }
        }
    }
    2.0 * (matched as f64 + consistent_renamings(&renamings)) / total as f64
}

/// Occurrences of aligned identifier pairs (x, y) where y is x's most frequent partner and
/// x is y's: a systematic renaming keeps them all, an unrelated function keeps few.
fn consistent_renamings(renamings: &HashMap<(u32, u32), u32>) -> f64 {
    let mut best_for_a: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut best_for_b: HashMap<u32, (u32, u32)> = HashMap::new();
    for (&(x, y), &count) in renamings {
        let entry = best_for_a.entry(x).or_insert((y, count));
        if count > entry.1 || (count == entry.1 && y < entry.0) {
            *entry = (y, count);
        }
        let entry = best_for_b.entry(y).or_insert((x, count));
        if count > entry.1 || (count == entry.1 && x < entry.0) {
            *entry = (x, count);
        }
    }
    // A renaming seen once is weak evidence: unrelated code "renames" every name it uses
    // once. Identical names, and renamings followed at every use, count fully.
    renamings
        .iter()
        .filter(|&(&(x, y), _)| best_for_a[&x].0 == y && best_for_b[&y].0 == x)
        .map(|(&(x, y), &count)| if x == y || count >= 2 { f64::from(count) } else { 0.5 })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;
    use crate::lang::Language;

    fn naive_lcs(a: &[u16], b: &[u16]) -> usize {
        let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                table[i][j] = if a[i - 1] == b[j - 1] && a[i - 1] != SYM_BARRIER {
                    table[i - 1][j - 1] + 1
                } else {
                    table[i - 1][j].max(table[i][j - 1])
                };
            }
        }
        table[a.len()][b.len()]
    }

    /// Sixty pseudo-random pairs of symbol runs over a small alphabet (so they share much),
    /// every fourth with a barrier inside `b`.
    fn random_runs(seed: u32, alphabet: u32) -> Vec<(Vec<u16>, Vec<u16>)> {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((state >> 16) % alphabet) as u16
        };
        (0..60)
            .map(|round| {
                let a: Vec<u16> = (0..1 + (round * 7) % 150).map(|_| next()).collect();
                let mut b: Vec<u16> = (0..1 + (round * 13) % 140).map(|_| next()).collect();
                if round % 4 == 0 {
                    let middle = b.len() / 2;
                    b[middle] = SYM_BARRIER;
                }
                (a, b)
            })
            .collect()
    }

    #[test]
    fn bit_parallel_lcs_matches_the_textbook_dynamic_programme() {
        for (round, (a, b)) in random_runs(7, 6).iter().enumerate() {
            assert_eq!(lcs_length(a, b), naive_lcs(a, b), "round {round}");
        }
    }

    #[test]
    fn the_lcs_length_is_the_same_at_every_row_width_and_either_way_round() {
        // Lengths from one to ten words, so each fixed width and the general loop are met.
        let mut state = 5u32;
        let mut next = move |below: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) % below
        };
        for round in 0..40 {
            let a: Vec<u16> = (0..1 + next(640)).map(|_| next(7) as u16).collect();
            let mut b: Vec<u16> = (0..1 + next(640)).map(|_| next(7) as u16).collect();
            if round % 3 == 0 {
                let middle = b.len() / 2;
                b[middle] = SYM_BARRIER;
            }
            let expected = lcs_rows(&a, &b, |_| {});
            assert_eq!(lcs_length(&a, &b), expected, "round {round}");
            assert_eq!(lcs_length(&b, &a), expected, "round {round}, swapped");
            assert_eq!(expected, naive_lcs(&a, &b), "round {round}");
        }
    }

    #[test]
    fn masks_kept_from_pair_to_pair_give_what_fresh_ones_give() {
        // One run against many, then others in between, as verification goes: the masks a
        // scratch keeps are found again, replaced, and found again.
        let runs: Vec<Vec<u16>> = random_runs(19, 6).into_iter().flat_map(|(a, b)| [a, b]).take(24).collect();
        for a in &runs {
            for b in &runs {
                assert_eq!(lcs_length(a, b), naive_lcs(a, b));
                assert_eq!(lcs_length(b, a), naive_lcs(a, b));
                let alignment = lcs_alignment(a, b);
                assert_eq!(alignment.len(), naive_lcs(a, b));
                assert!(alignment.iter().all(|&(i, j)| a[i] == b[j] && a[i] != SYM_BARRIER));
            }
        }
    }

    #[test]
    fn the_alignment_is_a_longest_common_subsequence() {
        for (round, (a, b)) in random_runs(11, 5).iter().enumerate() {
            let alignment = lcs_alignment(a, b);
            assert_eq!(alignment.len(), naive_lcs(a, b), "round {round}");
            assert!(alignment.iter().all(|&(i, j)| a[i] == b[j] && a[i] != SYM_BARRIER), "round {round}");
            assert!(alignment.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "round {round}");
        }
    }

    #[test]
    fn an_alignment_from_recomputed_segments_is_the_one_from_kept_rows() {
        for (round, (a, b)) in random_runs(13, 5).iter().chain(&random_runs(17, 40)).enumerate() {
            let kept = lcs_alignment_within(a, b, usize::MAX);
            assert_eq!(lcs_alignment_within(a, b, 0), kept, "round {round}");
        }
    }

    fn run_of(source: &str) -> (Vec<u16>, Vec<u32>) {
        let analysis = analyze(Language::Python, source);
        (analysis.tokens.syms, analysis.tokens.texts)
    }

    fn score(a: &str, b: &str) -> f64 {
        let (syms_a, texts_a) = run_of(a);
        let (syms_b, texts_b) = run_of(b);
        let context = NameContext::of(Language::Python);
        evidence_score(TokenRun { syms: &syms_a, texts: &texts_a }, TokenRun { syms: &syms_b, texts: &texts_b }, context)
    }

    #[test]
    fn consistent_renaming_scores_like_identical_code() {
        let original = "def total(items, rate):\n    s = 0\n    for item in items:\n        s += item.price * rate\n    return s\n";
        let renamed = "def amount(rows, factor):\n    acc = 0\n    for row in rows:\n        acc += row.price * factor\n    return acc\n";
        let renamed_score = score(original, renamed);
        // All but the function's own name and the `def` before it, which the new name cuts
        // off: a used name, matched only by text.
        assert!(renamed_score > 0.9 && renamed_score <= 1.0, "{renamed_score}");
    }

    #[test]
    fn same_shape_with_unrelated_names_scores_lower_than_a_renaming() {
        let original = "def f(a, b):\n    x = a.get(b)\n    y = b.put(a)\n    return x + y\n";
        let scrambled = "def f(p, q):\n    r = s.get(t)\n    u = v.put(w)\n    return z + k\n";
        let renamed = "def g(m, n):\n    x = m.get(n)\n    y = n.put(m)\n    return x + y\n";
        assert!(score(original, scrambled) < score(original, renamed));
        assert!(score(original, scrambled) < 0.8);
    }

    #[test]
    fn a_renamed_copy_keeps_the_names_it_uses_and_a_stranger_does_not() {
        let original = "def total(items, rate):\n    s = 0\n    for item in items:\n        s += item.price * rate\n    log.debug(s)\n    return s\n";
        // Locals renamed, attribute and callee kept: a copy.
        let renamed = "def amount(rows, factor):\n    acc = 0\n    for row in rows:\n        acc += row.price * factor\n    log.debug(acc)\n    return acc\n";
        // Same shape, locals renamed the same way, but other fields and calls.
        let stranger = "def amount(rows, factor):\n    acc = 0\n    for row in rows:\n        acc += row.weight * factor\n    out.write(acc)\n    return acc\n";
        let (copy, other) = (score(original, renamed), score(original, stranger));
        assert!(copy > 0.9, "{copy}");
        assert!(other < copy - 0.1, "{other} against {copy}");
    }
}
