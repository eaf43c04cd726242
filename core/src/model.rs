//! The plain data the engine produces and the index stores: per-file records with their
//! fingerprinted units, and clone pairs between two instances (a unit or a block).

use std::borrow::Cow;

use crate::analysis::{Analysis, Unit};
use crate::config::DetectionSettings;
use crate::fingerprint::{self, ExactHashes, Sketch, Winnow};
use crate::lang::Language;
use crate::names::{NameContext, TokenRun};

/// A unit above the size minimums, with its fingerprints.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitRecord {
    pub name: String,
    /// Borrowed from the grammar's table when parsed here: a string of its own per unit was
    /// 14 MB of the Linux tree's records.
    pub kind: Cow<'static, str>,
    pub start_line: u32,
    pub end_line: u32,
    pub start_byte: u32,
    pub end_byte: u32,
    pub token_start: u32,
    pub token_end: u32,
    pub nesting: u32,
    /// Index of the enclosing recorded unit in the same file.
    pub parent: Option<u32>,
    pub hashes: ExactHashes,
    /// `None` while only the index holds it: a long-running process keeps its stored
    /// records without sketches (a third of their memory) until the candidate tables are
    /// built (`live::LiveIndex`).
    pub sketch: Option<Box<Sketch>>,
    /// A consistent sample of the unit's k-grams over the semi-normalised stream (used
    /// names by text): the exact inverted index for near-miss candidates.
    pub grams: Box<[u32]>,
    /// A sample of the names the unit calls or reads (`names::NameContext::used_names`).
    pub used_names: Box<[u32]>,
    /// The names the unit binds and the types it names (`Analysis::binding_tokens`), by
    /// text hash, sorted: every other identifier in it is a name it uses (a callee, a
    /// field, a constant).
    pub bound: Box<[u32]>,
}

impl UnitRecord {
    pub fn token_count(&self) -> u32 {
        self.token_end - self.token_start
    }
}

/// Everything the index keeps about one scanned file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileRecord {
    /// Relative to the scan root, `/`-separated.
    pub path: String,
    pub language: Language,
    /// blake3 of the file's bytes.
    pub content_hash: [u8; 32],
    pub size: u64,
    pub mtime_ns: i64,
    pub lines: u32,
    pub tokens: u32,
    pub has_syntax_errors: bool,
    pub units: Vec<UnitRecord>,
    pub winnows: Vec<Winnow>,
}

impl FileRecord {
    /// Fingerprints an analysis: keeps the units above the minimums, hashes and sketches
    /// them, and winnows the whole token stream for block detection.
    pub fn from_analysis(
        path: String,
        language: Language,
        content_hash: [u8; 32],
        size: u64,
        mtime_ns: i64,
        analysis: &Analysis,
        settings: &DetectionSettings,
    ) -> FileRecord {
        FileRecord::from_analysis_reusing(path, language, content_hash, size, mtime_ns, analysis, settings, None)
    }

    /// Like [`FileRecord::from_analysis`], taking the sketches of units whose tokens did not
    /// change from `previous` (the same file before an edit): while typing, only the
    /// edited units are sketched again. Equal exact text means equal normalised tokens, so
    /// a reused sketch is the one that would be computed.
    #[allow(clippy::too_many_arguments)]
    pub fn from_analysis_reusing(
        path: String,
        language: Language,
        content_hash: [u8; 32],
        size: u64,
        mtime_ns: i64,
        analysis: &Analysis,
        settings: &DetectionSettings,
        previous: Option<&FileRecord>,
    ) -> FileRecord {
        let reusable: std::collections::HashMap<(u64, u32), &Sketch> = previous
            .map(|previous| {
                previous.units.iter().filter_map(|unit| Some(((unit.hashes.t1, unit.token_count()), unit.sketch.as_deref()?))).collect()
            })
            .unwrap_or_default();
        let kept: Vec<&Unit> = analysis
            .units
            .iter()
            .filter(|unit| unit.line_count() >= settings.min_lines && unit.token_count() >= settings.min_tokens)
            .collect();
        let mut units: Vec<UnitRecord> = Vec::with_capacity(kept.len());
        let context = NameContext::of(language);
        for unit in &kept {
            let (start, end) = (unit.token_start as usize, unit.token_end as usize);
            // The innermost kept unit that contains this one (units come in start order).
            let parent = units
                .iter()
                .rposition(|outer| outer.start_byte <= unit.start_byte && unit.end_byte <= outer.end_byte)
                .map(|index| index as u32);
            let hashes = fingerprint::exact_hashes(&analysis.tokens, start, end);
            let run = TokenRun { syms: &analysis.tokens.syms[start..end], texts: &analysis.tokens.texts[start..end] };
            units.push(UnitRecord {
                name: unit.name.clone(),
                kind: Cow::Borrowed(unit.kind),
                start_line: unit.start_line,
                end_line: unit.end_line,
                start_byte: unit.start_byte,
                end_byte: unit.end_byte,
                token_start: unit.token_start,
                token_end: unit.token_end,
                nesting: unit.nesting,
                parent,
                sketch: Some(Box::new(match reusable.get(&(hashes.t1, unit.token_count())) {
                    Some(&sketch) => *sketch,
                    None => fingerprint::sketch(&analysis.tokens.syms[start..end]),
                })),
                hashes,
                grams: context.gram_sample(run).into_boxed_slice(),
                used_names: context.used_names(run, &context.name_keys(&unit.name)).into_boxed_slice(),
                bound: bound_names(analysis, start, end),
            });
        }
        let winnows =
            if settings.blocks { fingerprint::winnow(&analysis.tokens.syms, settings.min_tokens as usize) } else { Vec::new() };
        FileRecord {
            path,
            language,
            content_hash,
            size,
            mtime_ns,
            lines: analysis.line_count,
            tokens: analysis.tokens.len() as u32,
            has_syntax_errors: analysis.has_syntax_errors,
            units,
            winnows,
        }
    }
}

/// The distinct text hashes of the binding tokens in `start..end`, sorted.
pub(crate) fn bound_names(analysis: &Analysis, start: usize, end: usize) -> Box<[u32]> {
    let bindings = &analysis.binding_tokens;
    let first = bindings.partition_point(|&token| (token as usize) < start);
    let mut names: Vec<u32> = bindings[first..]
        .iter()
        .take_while(|&&token| (token as usize) < end)
        .map(|&token| analysis.tokens.texts[token as usize])
        .collect();
    names.sort_unstable();
    names.dedup();
    names.into_boxed_slice()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CloneKind {
    T1,
    T2,
    T3,
}

impl CloneKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CloneKind::T1 => "T1",
            CloneKind::T2 => "T2",
            CloneKind::T3 => "T3",
        }
    }

    pub fn parse(text: &str) -> Option<CloneKind> {
        match text {
            "T1" => Some(CloneKind::T1),
            "T2" => Some(CloneKind::T2),
            "T3" => Some(CloneKind::T3),
            _ => None,
        }
    }
}

/// One side of a clone pair: a unit, or a block of tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance {
    /// Index into the scan's file list.
    pub file: u32,
    pub start_line: u32,
    pub end_line: u32,
    /// Index of the unit in its file record; `None` for a block.
    pub unit: Option<u32>,
    pub token_start: u32,
    pub token_end: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClonePair {
    pub a: Instance,
    pub b: Instance,
    pub kind: CloneKind,
    pub similarity: f64,
    /// Content fingerprint used for the pattern id: the structural hash of the shared code.
    pub content: u64,
    /// Why a Type-3 pair was reported (`None` for exact pairs and blocks).
    pub evidence: Option<crate::verify::Evidence>,
}
