//! Used names: the identifiers a unit refers to without binding them — called functions,
//! methods, attributes and fields, found by their context (after a member access, before a
//! call's `(`). Copies and independent implementations of one task call the same APIs and
//! read the same fields; two different functions of one shape differ exactly there. This
//! module finds them in a token run and derives what candidate search and verification
//! need from them: a symbol stream in which used names keep their text, the set of used
//! names, and a sample of the run's k-grams over that stream.

use std::sync::OnceLock;

use crate::analysis::{SYM_BARRIER, SYM_IDENTIFIER};
use crate::lang::Language;

/// The lowest symbol `NameContext::name_symbols` gives a used name: above every grammar
/// kind id and the two parameter symbols, so it never equals one of them.
pub const SYM_USED_NAME: u16 = 0xC000;

/// A run of tokens: normalised symbols and exact text hashes, same length.
#[derive(Clone, Copy, Debug)]
pub struct TokenRun<'a> {
    pub syms: &'a [u16],
    pub texts: &'a [u32],
}

/// The grammar's token kinds that mark an identifier as a used name rather than a bound
/// one: a member access before it (`.`, `->`, `::`, `?.`) or an opening parenthesis after
/// it (a call).
#[derive(Debug, Default)]
pub struct NameContext {
    /// Per grammar kind id, `MEMBER_ACCESS` and `OPEN_PAREN` bits: a table read, where
    /// searching the kind lists for every token was a tenth of verification's time.
    marks: Vec<u8>,
    /// Kinds of identifier tokens: a unit's own name is one of them.
    identifier_kinds: Vec<u16>,
}

impl NameContext {
    /// The context of a language, resolved from its grammar once per process. Every kind
    /// id with the token's text is taken: a grammar may alias one token under several ids.
    pub fn of(language: Language) -> &'static NameContext {
        static CONTEXTS: OnceLock<Vec<NameContext>> = OnceLock::new();
        let contexts = CONTEXTS.get_or_init(|| Language::ALL.iter().map(|&l| NameContext::build(l)).collect());
        &contexts[language as usize]
    }

    fn build(language: Language) -> NameContext {
        let spec = language.spec();
        let grammar = &spec.grammar;
        let mut context = NameContext { marks: vec![0; grammar.node_kind_count()], ..NameContext::default() };
        for id in 0..grammar.node_kind_count() {
            let id = id as u16;
            if grammar.node_kind_is_named(id) {
                if spec.class(id) == crate::lang::NodeClass::Identifier {
                    context.identifier_kinds.push(id);
                }
                continue;
            }
            match grammar.node_kind_for_id(id) {
                Some("." | "->" | "::" | "?.") => context.marks[usize::from(id)] |= MEMBER_ACCESS,
                Some("(") => context.marks[usize::from(id)] |= OPEN_PAREN,
                _ => {}
            }
        }
        context
    }

    /// The symbols with every used name replaced by a symbol of its own text, so that the
    /// alignment matches such a name only with the same name. The symbols lie from
    /// `SYM_USED_NAME` to just below the barrier (two names may share one, rarely).
    pub fn name_symbols(&self, run: TokenRun<'_>) -> Vec<u16> {
        let mut syms = run.syms.to_vec();
        for (i, sym) in syms.iter_mut().enumerate() {
            if self.is_used(run, i) {
                *sym = SYM_USED_NAME | (run.texts[i] % 0x3FFF) as u16;
            }
        }
        syms
    }
}

/// `NameContext::marks` bits: the kind is a member access (`.`, `->`, `::`, `?.`), or an
/// opening parenthesis.
const MEMBER_ACCESS: u8 = 1;
const OPEN_PAREN: u8 = 2;

/// Tokens per k-gram of the semi-normalised stream (as NIL, 5: long enough to be specific,
/// short enough that scattered edits leave most of them intact).
pub const GRAM: usize = 5;
/// k-gram hashes kept per unit (the smallest ones: a consistent sample, so two units
/// sample their shared k-grams alike).
pub const GRAM_SAMPLE: usize = 40;
/// Used names kept per unit (the smallest keys of the distinct names; most units use
/// fewer, so the index also gives each name's frequency).
pub const NAME_SAMPLE: usize = 48;

impl NameContext {
    /// Whether the identifier at `index` is a used name.
    fn is_used(&self, run: TokenRun<'_>, index: usize) -> bool {
        run.syms[index] == SYM_IDENTIFIER
            && ((index > 0 && self.marked(run.syms[index - 1], MEMBER_ACCESS))
                || run.syms.get(index + 1).is_some_and(|&next| self.marked(next, OPEN_PAREN)))
    }

    /// Whether the token kind `sym` carries `mark` (false for the parameter symbols and
    /// the barrier, which are no grammar kinds).
    fn marked(&self, sym: u16, mark: u8) -> bool {
        self.marks.get(usize::from(sym)).is_some_and(|&marks| marks & mark != 0)
    }

    /// The distinct used names of a run (keys of their texts), sorted, leaving out the
    /// unit's own name (`own`: its `name_keys`): a function's name says what it is called,
    /// not what it does, and a recursive call would count it twice.
    pub fn all_used_names(&self, run: TokenRun<'_>, own: &[u32]) -> Vec<u32> {
        let mut names: Vec<u32> =
            (0..run.syms.len()).filter(|&i| self.is_used(run, i)).map(|i| mix32(run.texts[i])).filter(|key| !own.contains(key)).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The `NAME_SAMPLE` smallest keys of `all_used_names`: what the candidate index holds.
    pub fn used_names(&self, run: TokenRun<'_>, own: &[u32]) -> Vec<u32> {
        let mut names = self.all_used_names(run, own);
        names.truncate(NAME_SAMPLE);
        names
    }

    /// The keys an identifier token spelled `name` has (one per identifier kind): how the
    /// unit's own name is recognised among its tokens.
    pub fn name_keys(&self, name: &str) -> Vec<u32> {
        self.identifier_kinds.iter().map(|&kind| mix32(crate::analysis::text_hash(kind, name.as_bytes()))).collect()
    }

    /// The `GRAM_SAMPLE` smallest distinct hashes of the run's `GRAM`-token windows over
    /// the semi-normalised stream: used names by their text, other identifiers and
    /// literals as one symbol each, everything else by kind. Windows across a suppressed
    /// token are left out. Sorted.
    pub fn gram_sample(&self, run: TokenRun<'_>) -> Vec<u32> {
        let elements: Vec<u32> = (0..run.syms.len())
            .map(|i| if self.is_used(run, i) { run.texts[i] | 0x8000_0000 } else { u32::from(run.syms[i]) })
            .collect();
        let mut grams: Vec<u32> = Vec::with_capacity(elements.len());
        for (start, window) in elements.windows(GRAM).enumerate() {
            if run.syms[start..start + GRAM].contains(&SYM_BARRIER) {
                continue;
            }
            let mut packed: u64 = 0x9E37_79B9_7F4A_7C15;
            for &element in window {
                packed = (packed ^ u64::from(element)).wrapping_mul(0x0100_0000_01B3);
            }
            grams.push(mix32((packed ^ (packed >> 29)) as u32 ^ (packed >> 32) as u32));
        }
        grams.sort_unstable();
        grams.dedup();
        grams.truncate(GRAM_SAMPLE);
        grams
    }
}

/// The key of a name token's text: what `used_names` and `name_keys` hold.
pub fn name_key(text: u32) -> u32 {
    mix32(text)
}

/// A full-avalanche 32-bit mix, so the smallest hashes are a uniform sample.
fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// How many values two sorted samples (or sorted multisets) share.
pub fn shared_count<T: Ord>(a: &[T], b: &[T]) -> usize {
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;

    fn run_of(source: &str) -> (Vec<u16>, Vec<u32>) {
        let analysis = analyze(Language::Python, source);
        (analysis.tokens.syms, analysis.tokens.texts)
    }

    #[test]
    fn used_names_are_found_after_member_access_and_before_calls() {
        let (syms, texts) = run_of("def f(a):\n    return a.size + g(a)\n");
        let context = NameContext::of(Language::Python);
        let named = context.name_symbols(TokenRun { syms: &syms, texts: &texts });
        let renamed: Vec<usize> = (0..syms.len()).filter(|&i| named[i] != syms[i]).collect();
        // `f` (before its parameter list), `size` (after `.`) and `g` (called); `a` never.
        assert_eq!(renamed.len(), 3, "{named:?}");
        assert!(renamed.iter().all(|&i| syms[i] == SYM_IDENTIFIER && named[i] >= SYM_USED_NAME && named[i] != SYM_BARRIER));
    }

}
