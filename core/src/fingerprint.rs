//! Fingerprints of token runs: exact structural hashes (blake3) for Type-1/Type-2 clones,
//! MinHash sketches with LSH bands for Type-3 candidates, and winnowed k-gram hashes for
//! duplicated blocks that do not align with functions.

use crate::analysis::{FileTokens, PARAM_BIT, SYM_BARRIER, SYM_IDENTIFIER};

/// MinHash signature length. Shared with the edge server's wire format.
pub const SKETCH_LEN: usize = 64;
/// Rows per LSH band: two rows give 32 bands, sensitive enough for 0.7 token similarity.
pub const BAND_ROWS: usize = 2;
pub const BAND_COUNT: usize = SKETCH_LEN / BAND_ROWS;
/// Tokens per shingle for the MinHash sketch.
const SHINGLE: usize = 5;

pub type Sketch = [u32; SKETCH_LEN];

/// The three exact hashes of a token run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ExactHashes {
    /// Exact token texts: equal means Type-1 (only whitespace/comments differ).
    pub t1: u64,
    /// Identifiers and literals blinded: equal means same shape.
    pub t2: u64,
    /// Identifiers renamed consistently (first-occurrence numbering), literals blinded:
    /// equal means Type-2 with a consistent renaming.
    pub tc: u64,
}

fn truncate(hash: blake3::Hash) -> u64 {
    let bytes = hash.as_bytes();
    u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
}

pub fn exact_hashes(tokens: &FileTokens, start: usize, end: usize) -> ExactHashes {
    // One buffer per hash, hashed once: blake3 is fast on long inputs, slow on tiny updates.
    let length = end.saturating_sub(start);
    let mut exact: Vec<u8> = Vec::with_capacity(length * 4);
    let mut blinded: Vec<u8> = Vec::with_capacity(length * 2);
    let mut renamed: Vec<u8> = Vec::with_capacity(length * 4);
    // Identifier texts in first-occurrence order; units are small, a linear scan is cheapest.
    let mut seen: Vec<u32> = Vec::new();
    for index in start..end {
        let sym = tokens.syms[index];
        let text = tokens.texts[index];
        exact.extend_from_slice(&text.to_le_bytes());
        blinded.extend_from_slice(&sym.to_le_bytes());
        let canonical = if sym == SYM_IDENTIFIER {
            let ordinal = match seen.iter().position(|&t| t == text) {
                Some(position) => position,
                None => {
                    seen.push(text);
                    seen.len() - 1
                }
            };
            0x4000_0000u32 | ordinal as u32
        } else {
            u32::from(sym)
        };
        renamed.extend_from_slice(&canonical.to_le_bytes());
    }
    ExactHashes {
        t1: truncate(blake3::hash(&exact)),
        t2: truncate(blake3::hash(&blinded)),
        tc: truncate(blake3::hash(&renamed)),
    }
}

#[inline]
pub(crate) fn mix64(mut x: u64) -> u64 {
    // splitmix64 finaliser: a full-avalanche mix for hashes that get compared by order.
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const fn sketch_seeds() -> [(u32, u32); SKETCH_LEN] {
    let mut seeds = [(0u32, 0u32); SKETCH_LEN];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut index = 0;
    while index < SKETCH_LEN {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let xor = (state >> 32) as u32;
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let multiplier = ((state >> 32) as u32) | 1;
        seeds[index] = (xor, multiplier);
        index += 1;
    }
    seeds
}
const SEEDS: [(u32, u32); SKETCH_LEN] = sketch_seeds();

/// MinHash over the set of normalised token shingles of a run. Shingles crossing a
/// suppressed token are left out. An empty run gives all-`u32::MAX`.
pub fn sketch(syms: &[u16]) -> Sketch {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // The 64 lanes need a 32-bit multiply and an unsigned minimum per shingle, which
        // baseline x86-64 (SSE2) lacks: with AVX2 the same loop runs about four times faster.
        #[allow(unsafe_code)]
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { sketch_avx2(syms) };
    }
    sketch_lanes(syms)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sketch_avx2(syms: &[u16]) -> Sketch {
    sketch_lanes(syms)
}

#[inline(always)]
fn sketch_lanes(syms: &[u16]) -> Sketch {
    let mut signature = [u32::MAX; SKETCH_LEN];
    if syms.len() < SHINGLE {
        return signature;
    }
    for window in syms.windows(SHINGLE) {
        if window.contains(&SYM_BARRIER) {
            continue;
        }
        let mut packed: u64 = 0;
        for &sym in window {
            packed = packed.wrapping_mul(0x0100_0000_01B3).wrapping_add(u64::from(sym));
        }
        let base = mix64(packed) as u32;
        // xor + odd multiply + shift per lane: vectorises, and orders like independent hashes.
        for (slot, &(xor, multiplier)) in signature.iter_mut().zip(SEEDS.iter()) {
            let mut h = (base ^ xor).wrapping_mul(multiplier);
            h ^= h >> 15;
            if h < *slot {
                *slot = h;
            }
        }
    }
    signature
}

/// The LSH band keys of a sketch: equal keys make two units candidates.
pub fn band_keys(signature: &Sketch) -> [u64; BAND_COUNT] {
    let mut keys = [0u64; BAND_COUNT];
    for (band, key) in keys.iter_mut().enumerate() {
        let mut value = band as u64;
        for row in 0..BAND_ROWS {
            value = mix64(value ^ (u64::from(signature[band * BAND_ROWS + row]) << 8));
        }
        *key = value;
    }
    keys
}

/// A selected k-gram: its hash and the token index where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Winnow {
    pub hash: u32,
    pub position: u32,
}

/// k-gram length and window for winnowing, chosen so every shared run of at least
/// `min_tokens` normalised tokens contains at least one shared selected k-gram.
pub fn winnow_parameters(min_tokens: usize) -> (usize, usize) {
    let gram = (min_tokens / 3).clamp(4, 24).min(min_tokens.max(1));
    let window = (min_tokens + 1).saturating_sub(gram).max(1);
    (gram, window)
}

/// Winnowing (Schleimer, Wilkerson, Aiken): the minimum k-gram hash of each window,
/// rightmost on ties, each selected position recorded once.
pub fn winnow(syms: &[u16], min_tokens: usize) -> Vec<Winnow> {
    let (gram, window) = winnow_parameters(min_tokens);
    if syms.len() < gram {
        return Vec::new();
    }
    let gram_count = syms.len() - gram + 1;
    // k-gram hashes; a k-gram holding a suppressed token gets u64::MAX and is never selected.
    let mut grams: Vec<u64> = Vec::with_capacity(gram_count);
    let mut last_barrier: Option<usize> = None;
    for (index, &sym) in syms.iter().enumerate().take(gram - 1) {
        if sym == SYM_BARRIER {
            last_barrier = Some(index);
        }
    }
    let mut power: u64 = 1;
    const BASE: u64 = 0x100_0000_01B3;
    for _ in 1..gram {
        power = power.wrapping_mul(BASE);
    }
    let mut rolling: u64 = 0;
    for &sym in &syms[..gram - 1] {
        rolling = rolling.wrapping_mul(BASE).wrapping_add(u64::from(sym));
    }
    for start in 0..gram_count {
        let incoming = syms[start + gram - 1];
        if incoming == SYM_BARRIER {
            last_barrier = Some(start + gram - 1);
        }
        rolling = rolling.wrapping_mul(BASE).wrapping_add(u64::from(incoming));
        let crosses_barrier = last_barrier.is_some_and(|barrier| barrier >= start);
        grams.push(if crosses_barrier { u64::MAX } else { mix64(rolling) });
        rolling = rolling.wrapping_sub(u64::from(syms[start]).wrapping_mul(power));
    }
    let mut selected: Vec<Winnow> = Vec::with_capacity(gram_count * 2 / (window + 1) + 1);
    let window = window.min(gram_count);
    // Sliding-window minimum with a monotonic deque: O(n) instead of O(n * window).
    let mut deque: std::collections::VecDeque<usize> = std::collections::VecDeque::with_capacity(window + 1);
    let mut last_selected: Option<usize> = None;
    for index in 0..gram_count {
        while deque.back().is_some_and(|&back| grams[back] >= grams[index]) {
            deque.pop_back();
        }
        deque.push_back(index);
        if index + 1 < window {
            continue;
        }
        let window_start = index + 1 - window;
        while deque.front().is_some_and(|&front| front < window_start) {
            deque.pop_front();
        }
        if let Some(&best) = deque.front()
            && grams[best] != u64::MAX
            && last_selected != Some(best)
        {
            selected.push(Winnow { hash: (grams[best] >> 32) as u32, position: best as u32 });
            last_selected = Some(best);
        }
    }
    selected
}

/// Whether a symbol is an identifier or literal (its text is abstracted by Type-2).
#[inline]
pub fn is_param(sym: u16) -> bool {
    sym != SYM_BARRIER && sym & PARAM_BIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;
    use crate::lang::Language;

    #[test]
    fn the_dispatched_sketch_equals_the_portable_one() {
        // Sketches cross machines (index files, the edge server): every CPU must agree.
        let mut state: u32 = 11;
        for length in [0usize, 4, 5, 6, 64, 333, 2_000] {
            let syms: Vec<u16> = (0..length)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    if state.is_multiple_of(97) { SYM_BARRIER } else { (state >> 16) as u16 % 300 }
                })
                .collect();
            assert_eq!(sketch(&syms), sketch_lanes(&syms), "length {length}");
        }
    }

    fn estimated_jaccard(a: &Sketch, b: &Sketch) -> f64 {
        a.iter().zip(b.iter()).filter(|(x, y)| x == y).count() as f64 / SKETCH_LEN as f64
    }

    fn hashes(source: &str) -> ExactHashes {
        let analysis = analyze(Language::Python, source);
        exact_hashes(&analysis.tokens, 0, analysis.tokens.len())
    }

    #[test]
    fn exact_hashes_tell_type1_type2_and_consistency_apart() {
        let original = hashes("def f(a, b):\n    return a + b * a\n");
        let reformatted = hashes("def f(a,b):\n  # comment\n  return a+b*a\n");
        let renamed = hashes("def g(x, y):\n    return x + y * x\n");
        let inconsistent = hashes("def g(x, y):\n    return x + y * y\n");
        assert_eq!(original, reformatted);
        assert_ne!(original.t1, renamed.t1);
        assert_eq!((original.t2, original.tc), (renamed.t2, renamed.tc));
        assert_eq!(original.t2, inconsistent.t2);
        assert_ne!(original.tc, inconsistent.tc);
    }

    #[test]
    fn similar_runs_have_similar_sketches() {
        let base: Vec<u16> = (0..200).map(|i| (i * 7 % 23) as u16).collect();
        let mut edited = base.clone();
        edited[100] = 999;
        let other: Vec<u16> = (0..200).map(|i| (i * 11 % 29 + 40) as u16).collect();
        let (a, b, c) = (sketch(&base), sketch(&edited), sketch(&other));
        assert!(estimated_jaccard(&a, &b) > 0.6);
        assert!(estimated_jaccard(&a, &c) < 0.2);
    }

    #[test]
    fn winnowing_finds_a_shared_run_of_min_tokens() {
        let shared: Vec<u16> = (0..50).map(|i| (i * 13 % 97) as u16 + 1).collect();
        let mut a: Vec<u16> = (0..70).map(|i| 500 + i as u16).collect();
        a.extend(&shared);
        let mut b = shared.clone();
        b.extend((0..30).map(|i| 700 + i as u16));
        let hashes_a: Vec<u32> = winnow(&a, 50).iter().map(|w| w.hash).collect();
        let common = winnow(&b, 50).iter().filter(|w| hashes_a.contains(&w.hash)).count();
        assert!(common >= 1);
    }

    #[test]
    fn barriers_are_never_selected() {
        let syms = vec![SYM_BARRIER; 100];
        assert!(winnow(&syms, 20).is_empty());
        assert_eq!(sketch(&syms), [u32::MAX; SKETCH_LEN]);
    }
}
