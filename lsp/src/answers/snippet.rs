//! "I am about to write this: does it exist?": the code in the workspace that is the same
//! or nearly the same as a snippet. The snippet is parsed as the language server parses a
//! buffer; a body fragment that does not parse on its own is parsed again inside a
//! function (and class) of its language, so statements copied out of a function still
//! make a unit and blocks. Its clones come from the live index (core's `LiveIndex::probe`),
//! which keeps nothing of it afterwards.

use std::collections::{HashMap, HashSet};

use periodic_core::analysis::{self, Analysis};
use periodic_core::live::Probe;
use periodic_core::{Config, Instance, Language, UnitRecord};

use super::workspace::Snapshot;
use super::{PatternRef, Place, SimilarCode, patterns::is_under};

/// Largest snippet accepted, in bytes: a snippet is what one is about to write, not a file.
pub const MAX_SNIPPET_BYTES: usize = 64 * 1024;

/// A snippet question.
#[derive(Clone, Debug)]
pub struct SnippetQuestion<'a> {
    pub code: &'a str,
    /// The language; else guessed from `path`, else from the code.
    pub language: Option<Language>,
    /// Where the code is going (relative to the root, `/`-separated): its extension names
    /// the language, and copies in that file are not answers.
    pub path: Option<&'a str>,
    /// Only copies at least this similar; below the configured near-miss threshold, the
    /// threshold is lowered for this question.
    pub min_similarity: Option<f64>,
    pub limit: usize,
}

#[derive(Debug, PartialEq)]
pub enum SnippetError {
    Empty,
    TooLarge { bytes: usize },
    /// `path` has an extension no enabled language uses, and no language was given.
    UnknownLanguage(String),
    LanguageDisabled(Language),
}

impl std::fmt::Display for SnippetError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnippetError::Empty => write!(formatter, "`code` is empty"),
            SnippetError::TooLarge { bytes } => write!(formatter, "`code` has {bytes} bytes; the limit is {MAX_SNIPPET_BYTES} bytes (ask about one function or a few)"),
            SnippetError::UnknownLanguage(path) => write!(formatter, "cannot tell the language of `{path}`; pass `language`"),
            SnippetError::LanguageDisabled(language) => write!(formatter, "{} is not analysed in this workspace (see `languages` in .periodic.toml)", language.name()),
        }
    }
}

/// The snippet, ready to probe: possibly wrapped, with its analysis.
pub struct PreparedSnippet {
    pub language: Language,
    /// The language was not given (from `language` or `path`) but guessed from the code.
    pub guessed: bool,
    pub text: String,
    pub analysis: Analysis,
    /// Lines added above the snippet by a wrapper.
    wrapper_lines: u32,
    snippet_lines: u32,
}

impl PreparedSnippet {
    /// 1-based lines of the prepared text mapped back to the snippet's own lines.
    pub fn snippet_lines(&self, start_line: u32, end_line: u32) -> (u32, u32) {
        let map = |line: u32| line.saturating_sub(self.wrapper_lines).clamp(1, self.snippet_lines.max(1));
        (map(start_line), map(end_line))
    }
}

/// Code in the workspace similar to a part of the snippet.
#[derive(Clone, Debug, PartialEq)]
pub struct SnippetMatch {
    pub similar: SimilarCode,
    /// The lines of the snippet that match (1-based, inclusive).
    pub snippet_lines: (u32, u32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SnippetAnswer {
    pub language: Language,
    pub guessed: bool,
    /// Units (functions, methods, closures) of the snippet above the size minimums.
    pub units: usize,
    /// Most similar first.
    pub matches: Vec<SnippetMatch>,
}

/// Removes the indentation every non-blank line shares (a fragment copied from inside a
/// function), so Python parses it.
fn dedent(code: &str) -> String {
    let indent = code
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    if indent == 0 {
        return code.to_string();
    }
    code.lines().map(|line| if line.len() >= indent { &line[indent..] } else { line.trim_start() }).collect::<Vec<_>>().join("\n")
}

/// Shells that make a fragment of `language` a whole file: (text above, text below).
fn wrappers(language: Language) -> &'static [(&'static str, &'static str)] {
    match language {
        Language::Python => &[("def snippet():\n", "\n")],
        Language::JavaScript | Language::TypeScript | Language::Tsx => &[("function snippet() {\n", "\n}\n")],
        Language::Java => &[("class Snippet {\n", "\n}\n"), ("class Snippet {\nvoid snippet() {\n", "\n}\n}\n")],
        Language::CSharp => &[("class Snippet {\n", "\n}\n"), ("class Snippet {\nvoid Snippet() {\n", "\n}\n}\n")],
        Language::Rust => &[("fn snippet() {\n", "\n}\n")],
        Language::Go => &[("func snippet() {\n", "\n}\n")],
        Language::C | Language::Cpp => &[("void snippet(void) {\n", "\n}\n")],
        Language::Ruby => &[("def snippet\n", "\nend\n")],
    }
}

/// Parses `code` as `language`: as it is when it parses cleanly into at least one unit,
/// else (a fragment) inside the first wrapper it parses cleanly in, else as it is.
fn prepare_as(code: &str, language: Language, guessed: bool) -> PreparedSnippet {
    let text = dedent(code);
    let snippet_lines = analysis::count_lines(&text);
    let analysis = analysis::analyze(language, &text);
    if !analysis.has_syntax_errors && !analysis.units.is_empty() {
        return PreparedSnippet { language, guessed, text, analysis, wrapper_lines: 0, snippet_lines };
    }
    for (above, below) in wrappers(language) {
        let indented;
        let body = if language == Language::Python {
            indented = text.lines().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n");
            &indented
        } else {
            &text
        };
        let wrapped = format!("{above}{body}{below}");
        let wrapped_analysis = analysis::analyze(language, &wrapped);
        if !wrapped_analysis.has_syntax_errors {
            let wrapper_lines = above.matches('\n').count() as u32;
            return PreparedSnippet { language, guessed, text: wrapped, analysis: wrapped_analysis, wrapper_lines, snippet_lines };
        }
    }
    PreparedSnippet { language, guessed, text, analysis, wrapper_lines: 0, snippet_lines }
}

/// The language of a snippet: the one given, else `path`'s, else the enabled language it
/// parses best in (without errors, with the most units), ties going to the language most
/// of the workspace is written in.
pub fn prepare(question: &SnippetQuestion<'_>, config: &Config, snapshot: &Snapshot) -> Result<PreparedSnippet, SnippetError> {
    if question.code.trim().is_empty() {
        return Err(SnippetError::Empty);
    }
    if question.code.len() > MAX_SNIPPET_BYTES {
        return Err(SnippetError::TooLarge { bytes: question.code.len() });
    }
    let from_path = match question.path {
        Some(path) if question.language.is_none() => {
            let extension = std::path::Path::new(path).extension().and_then(|extension| extension.to_str()).unwrap_or("");
            Some(config.language_for_extension(extension).ok_or_else(|| SnippetError::UnknownLanguage(path.to_string()))?)
        }
        _ => None,
    };
    if let Some(language) = question.language.or(from_path) {
        if !config.language_enabled(language) {
            return Err(SnippetError::LanguageDisabled(language));
        }
        return Ok(prepare_as(question.code, language, false));
    }
    let mut files_per_language: HashMap<Language, usize> = HashMap::new();
    for file in &snapshot.files {
        *files_per_language.entry(file.language).or_default() += 1;
    }
    let best = Language::ALL
        .into_iter()
        .filter(|&language| config.language_enabled(language))
        .map(|language| prepare_as(question.code, language, true))
        .max_by_key(|prepared| {
            let units = prepared.analysis.units.len();
            (!prepared.analysis.has_syntax_errors, units, files_per_language.get(&prepared.language).copied().unwrap_or(0))
        });
    best.ok_or(SnippetError::LanguageDisabled(Language::Python))
}

/// The pattern an existing instance belongs to, through any pair it is a side of.
fn pattern_of_instance<'a>(snapshot: &'a Snapshot, instance: &Instance) -> Option<&'a periodic_core::Pattern> {
    snapshot
        .pairs_of(instance.file)
        .find(|(_, pair)| [pair.a, pair.b].iter().any(|side| side.start_line == instance.start_line && side.end_line == instance.end_line && side.unit == instance.unit))
        .and_then(|(index, _)| snapshot.pattern_of(index))
}

/// Turns a probe into the answer: each place in the workspace once, with its best match
/// in the snippet, most similar first. `snapshot` must be the one published with the
/// engine the probe ran on (slots agree).
pub fn answer(prepared: &PreparedSnippet, probe: &Probe, snapshot: &Snapshot, question: &SnippetQuestion<'_>) -> SnippetAnswer {
    let minimum = question.min_similarity.unwrap_or(0.0);
    let mut matches: Vec<SnippetMatch> = Vec::new();
    for pair in &probe.pairs {
        let (mine, theirs) = match (pair.a.file == probe.slot, pair.b.file == probe.slot) {
            (true, false) => (pair.a, pair.b),
            (false, true) => (pair.b, pair.a),
            // Within the snippet, or (never) between two other files.
            _ => continue,
        };
        if pair.similarity < minimum {
            continue;
        }
        let Some(place) = Place::of(snapshot, &theirs) else { continue };
        if question.path.is_some_and(|path| is_under(&place.path, path)) {
            continue;
        }
        matches.push(SnippetMatch {
            similar: SimilarCode { place, kind: pair.kind, similarity: pair.similarity, pattern: pattern_of_instance(snapshot, &theirs).map(PatternRef::of) },
            snippet_lines: prepared.snippet_lines(mine.start_line, mine.end_line),
        });
    }
    matches.sort_by(|x, y| {
        y.similar
            .similarity
            .total_cmp(&x.similar.similarity)
            .then(x.similar.kind.cmp(&y.similar.kind))
            .then_with(|| x.similar.place.cmp(&y.similar.place))
    });
    let mut seen = HashSet::new();
    matches.retain(|found| seen.insert((found.similar.place.path.clone(), found.similar.place.start_line, found.similar.place.end_line)));
    matches.truncate(question.limit);
    SnippetAnswer { language: prepared.language, guessed: prepared.guessed, units: probe.record.units.len(), matches }
}

/// The snippet's units above the size minimums, for asking the team edge about them.
pub fn units(probe: &Probe) -> Vec<&UnitRecord> {
    probe.record.units.iter().collect()
}
