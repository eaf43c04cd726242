//! Automatic pattern names: what a pattern's members share and the rest of the codebase
//! does not. Each member's source lines are read (once per file) and reduced to terms —
//! the functions it calls and the fields it reads, its other identifiers, the words of its
//! string literals — besides the words of the members' unit names and of their paths. A
//! term shared by a clear majority of members scores its share times its rarity (an IDF:
//! document frequency over every unit of the scan), and the best terms, rendered as
//! kebab-case words, make the name. Names are unique within the table: a collision is
//! settled by the next most distinctive term. Everything here stays on the machine.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::lang::Language;
use crate::model::{FileRecord, Instance};
use crate::names::NameContext;

/// Where naming finds the text of a scanned file. `None` (the file is gone, or the caller
/// has no text) leaves that file's members with only their unit names and paths.
pub trait SourceText: Sync {
    fn text(&self, file: &FileRecord) -> Option<String>;
}

impl<F: Fn(&FileRecord) -> Option<String> + Sync> SourceText for F {
    fn text(&self, file: &FileRecord) -> Option<String> {
        self(file)
    }
}

/// No text at all: names from unit names and paths only.
pub struct NoText;

impl SourceText for NoText {
    fn text(&self, _: &FileRecord) -> Option<String> {
        None
    }
}

/// The files as they are on disk under a scan root (read lossily: a name is a hint).
pub struct DiskText<'a> {
    pub root: &'a Path,
}

impl SourceText for DiskText<'_> {
    fn text(&self, file: &FileRecord) -> Option<String> {
        let bytes = std::fs::read(self.root.join(&file.path)).ok()?;
        Some(String::from_utf8(bytes).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()))
    }
}

/// Words a name takes from the members' terms before the place of its first member
/// disambiguates it.
const MOST_TERM_WORDS: usize = 4;

/// Words that say nothing about what code does: never a name on their own, never a term.
const GENERIC: &[&str] = &[
    "test", "tests", "testcase", "get", "set", "run", "new", "init", "main", "constructor", "compute", "apply", "call", "process", "handle",
    "handler", "do", "make", "create", "build", "update", "execute", "exec", "func", "function", "method", "fn", "lambda", "anonymous",
    "closure", "setup", "teardown", "check", "value", "values", "data", "item", "items", "result", "results", "self", "this", "code",
    "block", "helper", "util", "utils", "default", "impl", "from", "into", "to", "with", "add", "remove", "load", "save", "read", "write",
    "parse", "format", "render", "visit", "the", "an", "of", "and", "or", "for", "in", "on", "is", "it", "at", "by", "be", "as", "not",
    "obj", "object", "args", "kwargs", "arg", "param", "params", "ctx", "context", "err", "error", "errors", "ok", "res", "req", "val",
    "var", "tmp", "temp", "foo", "bar", "baz", "len", "size", "index", "idx", "key", "keys", "name", "type", "types", "str", "string",
    "int", "bool", "list", "dict", "map", "vec", "array", "count", "num", "mod", "lib", "src", "pkg", "internal", "common", "base",
    "core", "spec", "specs", "mock", "mocks", "expected", "actual", "want", "got", "case", "cases", "assert", "equal", "equals", "true",
    "false", "none", "null", "nil", "undefined", "void", "unwrap", "clone", "len", "append", "push", "print", "println", "printf",
    "log", "fmt", "to_string", "string", "option", "some", "err", "length", "next", "iter", "begin", "end", "start", "stop", "done",
];

/// Keywords and builtin words of the supported languages: the lexer below does not know
/// them from identifiers, and they describe syntax, not a task.
const KEYWORDS: &[&str] = &[
    "def", "class", "return", "if", "elif", "else", "while", "for", "try", "except", "finally", "raise", "import", "from", "pass",
    "break", "continue", "yield", "async", "await", "with", "lambda", "global", "nonlocal", "assert", "del", "not", "and", "or",
    "is", "in", "function", "var", "let", "const", "typeof", "instanceof", "switch", "case", "default", "throw", "throws", "catch",
    "public", "private", "protected", "static", "final", "abstract", "interface", "extends", "implements", "package", "void",
    "int", "long", "short", "byte", "char", "float", "double", "boolean", "super", "synchronized", "volatile", "transient",
    "native", "enum", "struct", "union", "unsigned", "signed", "sizeof", "typedef", "extern", "register", "goto", "auto", "inline",
    "restrict", "func", "go", "chan", "defer", "select", "range", "map", "type", "fallthrough", "iota", "make", "len", "cap",
    "fn", "impl", "trait", "pub", "crate", "mod", "use", "mut", "ref", "match", "loop", "where", "dyn", "unsafe", "move", "as",
    "box", "usize", "isize", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64", "str", "bool", "string", "self",
    "Self", "elsif", "unless", "until", "begin", "end", "rescue", "ensure", "module", "then", "do", "nil", "true", "false", "null",
    "none", "undefined", "new", "delete", "this", "export", "readonly", "declare", "namespace", "keyof", "any", "unknown", "never",
    "number", "object", "symbol", "bigint", "get", "set", "of", "constructor", "override", "virtual", "template", "typename",
    "using", "operator", "friend", "explicit", "mutable", "constexpr", "nullptr", "noexcept", "decltype", "include", "define",
    "ifdef", "ifndef", "endif", "pragma", "undef", "error", "string", "object", "internal", "sealed", "foreach", "lock", "out",
    "params", "base", "checked", "fixed", "implicit", "decimal", "sbyte", "ushort", "uint", "ulong", "yield", "async", "print",
    "cls", "kwargs", "args", "int", "float", "dict", "list", "tuple", "bytes", "isinstance", "len", "super", "println", "vec",
];

/// How much a term of each class counts beside its rarity: the members' shared name and
/// what they call or read say most about what they do; literal words and paths are hints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Class {
    /// The words the members' unit names share, in their order.
    UnitName,
    /// A called function or method, or a field read after a member access.
    Called,
    /// Any other identifier.
    Identifier,
    /// A word of a string literal.
    Literal,
    /// A word of the members' paths.
    Path,
}

impl Class {
    fn weight(self) -> f64 {
        match self {
            // What most members are called is the authors' own word for the task.
            Class::UnitName => 1.5,
            Class::Called => 1.0,
            Class::Identifier => 0.8,
            Class::Literal => 0.6,
            Class::Path => 0.3,
        }
    }
}

type Term = (Class, Box<str>);
/// A member's terms with their `term_key`s, sorted.
type KeyedTerms = Vec<(u64, Term)>;
/// A term and how many of a pattern's members hold it.
type Counted<'a> = (Cow<'a, Term>, usize);
/// The words of a pattern's majority terms, best first, and its few-member terms.
type Ranked<'a> = (Vec<Vec<String>>, Vec<Counted<'a>>);

/// Members a term must be shared by: a clear majority (three in five, at least two), so a
/// change to one member of a family of three or more keeps its name.
fn needed(members: usize) -> usize {
    (members * 3).div_ceil(5).max(2)
}

/// Lower-case words of a name, without noise words and numbers.
pub(crate) fn words(name: &str) -> Vec<String> {
    const NOISE: [&str; 12] = ["get", "set", "the", "a", "an", "of", "to", "self", "this", "fn", "func", "anonymous"];
    let mut words: Vec<String> = crate::pattern::split_words(name).into_iter().map(|word| word.to_lowercase()).collect();
    words.retain(|word| word.len() > 1 && !NOISE.contains(&word.as_str()) && !word.chars().all(|c| c.is_ascii_digit()));
    words
}

fn is_generic(word: &str) -> bool {
    generic_words().contains(word)
}

fn is_keyword(word: &str) -> bool {
    static SET: std::sync::OnceLock<FxHashSet<&'static str>> = std::sync::OnceLock::new();
    SET.get_or_init(|| KEYWORDS.iter().copied().collect()).contains(word)
}

/// `GENERIC` and `KEYWORDS` as one set: the lexer asks about every word it meets.
fn generic_words() -> &'static FxHashSet<&'static str> {
    static SET: std::sync::OnceLock<FxHashSet<&'static str>> = std::sync::OnceLock::new();
    SET.get_or_init(|| GENERIC.iter().chain(KEYWORDS).copied().collect())
}

/// The words a term shows in a name; empty when it says nothing (only generic words, or a
/// single short one).
fn rendered(term: &Term) -> Vec<String> {
    let mut shown = words(&term.1);
    shown.truncate(4);
    let telling = shown.iter().filter(|word| !is_generic(word) && word.len() > 2).count();
    if telling == 0 { Vec::new() } else { shown }
}

/// The terms of one member's source lines (`text`: the member's lines of its file).
fn code_terms(language: Language, text: &str, terms: &mut FxHashSet<Term>) {
    let bytes = text.as_bytes();
    let hash_comments = matches!(language, Language::Python | Language::Ruby);
    let single_quote_strings = !matches!(language, Language::Rust);
    let backtick_strings = matches!(language, Language::JavaScript | Language::TypeScript | Language::Tsx | Language::Go);
    let mut found: FxHashMap<&str, bool> = FxHashMap::default();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if hash_comments && byte == b'#' || !hash_comments && byte == b'/' && bytes.get(i + 1) == Some(&b'/') {
            i = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |end| i + end);
        } else if !hash_comments && byte == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i = memchr::memmem::find(&bytes[i + 2..], b"*/").map_or(bytes.len(), |end| i + 2 + end + 2);
        } else if byte == b'"' || byte == b'\'' && single_quote_strings || byte == b'`' && backtick_strings {
            let triple = bytes.len() >= i + 3 && bytes[i + 1] == byte && bytes[i + 2] == byte;
            let start = if triple { i + 3 } else { i + 1 };
            let mut end = start;
            while end < bytes.len() {
                let here = bytes[end];
                if here == b'\\' {
                    end += 2;
                    continue;
                }
                if here == byte && (!triple || bytes.get(end + 1) == Some(&byte) && bytes.get(end + 2) == Some(&byte)) {
                    break;
                }
                if here == b'\n' && !triple && byte != b'`' {
                    break;
                }
                end += 1;
            }
            let end = end.min(bytes.len());
            // A triple-quoted string is a docstring: prose about the code, like a comment.
            let words = if triple { Vec::new() } else { crate::pattern::split_words(&without_escapes(&text[start..end])) };
            for word in words {
                let word = word.to_lowercase();
                if word.len() > 2 && !word.chars().all(|c| c.is_ascii_digit()) && !is_generic(&word) {
                    terms.insert((Class::Literal, word.into_boxed_str()));
                }
            }
            i = if triple { end + 3 } else { end + 1 };
        } else if byte.is_ascii_digit() {
            // A number, with its suffix or hex digits (`0x7fffffff`, `10u64`): no word.
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                i += 1;
            }
        } else if byte.is_ascii_alphabetic() || byte == b'_' || byte == b'$' || byte >= 0x80 {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$' || bytes[i] >= 0x80) {
                i += 1;
            }
            let identifier = &text[start..i];
            if identifier.len() < 3 {
                continue;
            }
            // Called (an opening parenthesis follows) or read after a member access.
            let after = bytes[i..].iter().find(|b| !matches!(b, b' ' | b'\t'));
            let mut before = bytes[..start].iter().rev().filter(|b| !matches!(b, b' ' | b'\t'));
            let used = after == Some(&b'(') || matches!((before.next(), before.next()), (Some(b'.'), _) | (Some(b':'), Some(b':')) | (Some(b'>'), Some(b'-')));
            *found.entry(identifier).or_default() |= used;
        } else {
            i += 1;
        }
    }
    for (identifier, used) in found.into_iter().filter(|(identifier, _)| !is_keyword(identifier)) {
        terms.insert((if used { Class::Called } else { Class::Identifier }, identifier.into()));
    }
}

/// A string literal's text with its escape sequences (`\n`, `\xa0`, `\u00e9`) blanked: they
/// are not words.
fn without_escapes(literal: &str) -> Cow<'_, str> {
    if !literal.contains('\\') {
        return Cow::Borrowed(literal);
    }
    let mut text = String::with_capacity(literal.len());
    let mut chars = literal.chars().peekable();
    while let Some(character) = chars.next() {
        if character != '\\' {
            text.push(character);
            continue;
        }
        text.push(' ');
        let digits = match chars.next() {
            Some('x') => 2,
            Some('u') if chars.peek() == Some(&'{') => usize::MAX,
            Some('u') => 4,
            Some('U') => 8,
            _ => 0,
        };
        if digits == usize::MAX {
            for next in chars.by_ref() {
                if next == '}' {
                    break;
                }
            }
        } else {
            for _ in 0..digits {
                if chars.next_if(char::is_ascii_hexdigit).is_none() {
                    break;
                }
            }
        }
    }
    Cow::Owned(text)
}

/// The lines `start..=end` (1-based) of a text whose lines start at `line_starts`.
fn lines<'a>(text: &'a str, line_starts: &[usize], start: u32, end: u32) -> &'a str {
    let (start, end) = (start.max(1) as usize, end.max(start.max(1)) as usize);
    let first = line_starts.get(start - 1).copied().unwrap_or(text.len());
    let last = line_starts.get(end).copied().unwrap_or(text.len());
    &text[first..last.max(first)]
}

/// Path words of a file: the telling words of its folders and file name.
fn path_words(path: &str) -> BTreeSet<String> {
    place_words(path).into_iter().filter(|word| word != "root").collect()
}

/// Document frequencies over the whole scan, and the member counts that scale the
/// frequencies seen among clone members to the codebase.
pub(crate) struct Rarity {
    units: f64,
    files: f64,
    members: f64,
    /// Units calling or reading a name, by the name's key (`UnitRecord::used_names`).
    used: FxHashMap<u32, u32>,
    /// Units whose name has a word.
    unit_words: FxHashMap<String, u32>,
    /// Files whose path has a word.
    path_words: FxHashMap<String, u32>,
    /// Members (of every pattern) holding a term, by `term_key`.
    member_terms: FxHashMap<u64, u32>,
}

impl Rarity {
    /// Inverse document frequency of a term held by `count` of a pattern's members, from
    /// how many documents outside the pattern hold it (what the members share and the
    /// rest does not): every unit for unit-name words and used names, every file for path
    /// words, and for what only the members' text shows (other identifiers, literal words)
    /// the members of every other pattern — the neighbours a name must tell the pattern
    /// from. A name both tables know is as common as the larger count says.
    fn idf(&self, term: &Term, count: usize, language: Language) -> f64 {
        let idf = |all: f64, frequency: u32| ((all + 1.0) / (f64::from(frequency.saturating_sub(count as u32)) + 1.0)).ln().max(0.0);
        match term.0 {
            Class::UnitName => {
                let frequency = term.1.split('-').map(|word| self.unit_words.get(word).copied().unwrap_or(0)).min().unwrap_or(0);
                idf(self.units, frequency)
            }
            Class::Path => {
                let files = self.path_words.get(&*term.1).copied().unwrap_or(0);
                ((self.files + 1.0) / (f64::from(files) + 1.0)).ln().max(0.0)
            }
            Class::Called | Class::Identifier | Class::Literal => {
                let among_members = idf(self.members, self.member_terms.get(&term_key(term)).copied().unwrap_or(0));
                if term.0 == Class::Literal {
                    return among_members;
                }
                let keys = NameContext::of(language).name_keys(&term.1);
                let used = keys.iter().map(|key| self.used.get(key).copied().unwrap_or(0)).max().unwrap_or(0);
                among_members.min(idf(self.units, used))
            }
        }
    }
}

/// A term's key in the frequency tables: a hash, so that counting a term costs no string.
fn term_key(term: &Term) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = rustc_hash::FxHasher::default();
    term.hash(&mut hasher);
    hasher.finish()
}

/// Members past which their text is not read again for names: the terms of every member
/// are held at once (about 3 KB a member), which on the Linux tree's 233,000 members would
/// add 700 MB to the scan's peak. Such tables are named from unit names and places only.
const MOST_MEMBERS_READ: usize = 100_000;

/// Names for patterns given in table order (largest first): each unique among them.
/// `rarity` is `codebase_rarity(files)`.
pub(crate) fn name_patterns(files: &[FileRecord], patterns: &[&[Instance]], text: &dyn SourceText, mut rarity: Rarity) -> Vec<String> {
    let started = std::time::Instant::now();
    let members: usize = patterns.iter().map(|members| members.len()).sum();
    let text: &dyn SourceText = if members > MOST_MEMBERS_READ { &NoText } else { text };
    let mut by_file: BTreeMap<u32, Vec<(usize, usize)>> = BTreeMap::new();
    for (pattern, members) in patterns.iter().enumerate() {
        for (member, instance) in members.iter().enumerate() {
            by_file.entry(instance.file).or_default().push((pattern, member));
        }
    }
    rarity.members = members as f64;
    // Every member's terms, each file read once.
    let read: Vec<Vec<(usize, usize, KeyedTerms)>> =
        by_file.par_iter().map(|(&file, members)| member_terms_of(&files[file as usize], members, patterns, text)).collect();
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "names: members read");
    let mut member_terms: Vec<Vec<KeyedTerms>> = patterns.iter().map(|members| vec![Vec::new(); members.len()]).collect();
    for (pattern, member, terms) in read.into_iter().flatten() {
        for (key, _) in &terms {
            *rarity.member_terms.entry(*key).or_default() += 1;
        }
        member_terms[pattern][member] = terms;
    }
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "names: terms counted");
    let ranked: Vec<Ranked<'_>> =
        patterns.par_iter().zip(member_terms.par_iter()).map(|(members, terms)| ranked_terms(files, members, terms, &rarity)).collect();
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "names: terms ranked");
    let mut taken: FxHashSet<String> = FxHashSet::default();
    let mut names = Vec::with_capacity(patterns.len());
    for (members, (ranked, few)) in patterns.iter().zip(ranked) {
        let name = unique_name(files, members, &ranked, || scored(files, members, few, &rarity), &taken);
        taken.insert(name.clone());
        names.push(name);
    }
    names
}

/// The terms of the members (pattern, member) of one file, each sorted by key.
fn member_terms_of(record: &FileRecord, members: &[(usize, usize)], patterns: &[&[Instance]], text: &dyn SourceText) -> Vec<(usize, usize, KeyedTerms)> {
    let Some(source) = text.text(record) else { return Vec::new() };
    let line_starts: Vec<usize> = std::iter::once(0).chain(memchr::memchr_iter(b'\n', source.as_bytes()).map(|at| at + 1)).collect();
    members
        .iter()
        .map(|&(pattern, member)| {
            let instance = &patterns[pattern][member];
            let mut terms = FxHashSet::default();
            code_terms(record.language, lines(&source, &line_starts, instance.start_line, instance.end_line), &mut terms);
            let mut terms: Vec<(u64, Term)> = terms.into_iter().map(|term| (term_key(&term), term)).collect();
            terms.sort_unstable();
            (pattern, member, terms)
        })
        .collect()
}

/// The frequency tables of the whole scan (the members' terms, and how many members
/// there are, are counted by `name_patterns`).
pub(crate) fn codebase_rarity(files: &[FileRecord]) -> Rarity {
    let mut rarity = Rarity {
        units: files.iter().map(|file| file.units.len()).sum::<usize>().max(1) as f64,
        files: files.len().max(1) as f64,
        members: 0.0,
        used: FxHashMap::default(),
        unit_words: FxHashMap::default(),
        path_words: FxHashMap::default(),
        member_terms: FxHashMap::default(),
    };
    for file in files {
        for word in path_words(&file.path) {
            *rarity.path_words.entry(word).or_default() += 1;
        }
        for unit in &file.units {
            for &key in unit.used_names.iter() {
                *rarity.used.entry(key).or_default() += 1;
            }
            let mut distinct = words(&unit.name);
            distinct.sort_unstable();
            distinct.dedup();
            for word in distinct {
                *rarity.unit_words.entry(word).or_default() += 1;
            }
        }
    }
    rarity
}

/// A pattern's terms shared by a clear majority of its members, as the words they show,
/// most distinctive first; and the terms only a few members share, unscored (the last
/// resort against a collision, see `unique_name`: they change more easily).
fn ranked_terms<'a>(files: &[FileRecord], members: &[Instance], terms: &'a [KeyedTerms], rarity: &Rarity) -> Ranked<'a> {
    let needed = needed(members.len());
    let mut counts: FxHashMap<u64, (&Term, usize)> = FxHashMap::default();
    for member_terms in terms {
        for (key, term) in member_terms {
            counts.entry(*key).or_insert((term, 0)).1 += 1;
        }
    }
    let mut shared: Vec<Counted<'a>> = Vec::new();
    let mut few: Vec<Counted<'a>> = Vec::new();
    for (term, count) in counts.into_values() {
        if count >= needed {
            shared.push((Cow::Borrowed(term), count));
        } else if count >= 2 {
            few.push((Cow::Borrowed(term), count));
        }
    }
    if let Some(words) = shared_name_words(files, members, needed) {
        shared.push((Cow::Owned((Class::UnitName, words.join("-").into_boxed_str())), needed));
    }
    let mut per_file: BTreeMap<u32, usize> = BTreeMap::new();
    for member in members {
        *per_file.entry(member.file).or_default() += 1;
    }
    let mut path_counts: BTreeMap<String, usize> = BTreeMap::new();
    for (file, count) in per_file {
        for word in path_words(&files[file as usize].path) {
            *path_counts.entry(word).or_default() += count;
        }
    }
    for (word, count) in path_counts {
        let term = Cow::Owned((Class::Path, word.into_boxed_str()));
        if count >= needed { shared.push((term, count)) } else if count >= 2 { few.push((term, count)) }
    }
    (scored(files, members, shared, rarity), few)
}

/// Terms as the words they show, most distinctive first (ties by text), those saying
/// nothing left out.
fn scored(files: &[FileRecord], members: &[Instance], terms: Vec<Counted<'_>>, rarity: &Rarity) -> Vec<Vec<String>> {
    let language = files[members[0].file as usize].language;
    let mut scored: Vec<(f64, Vec<String>)> = terms
        .into_iter()
        .filter_map(|(term, count)| {
            let shown = if term.0 == Class::UnitName { term.1.split('-').map(str::to_string).collect() } else { rendered(&term) };
            let score = count as f64 / members.len() as f64 * rarity.idf(&term, count, language) * term.0.weight();
            (!shown.is_empty() && score > 0.0).then_some((score, shown))
        })
        .collect();
    scored.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
    scored.into_iter().map(|(_, shown)| shown).filter(|shown| seen.insert(shown.clone())).collect()
}

/// The telling words most members' unit names share (generic ones left out), in the order
/// of the first name that has them all: `parse-config` for `parse_config`, `parseConfig2`.
fn shared_name_words(files: &[FileRecord], members: &[Instance], needed: usize) -> Option<Vec<String>> {
    let names: Vec<Vec<String>> = members
        .iter()
        .map(|member| words(&crate::pattern::instance_name(files, member)).into_iter().filter(|word| word.len() > 2 && !is_generic(word)).collect())
        .collect();
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for name in &names {
        for word in name.iter().collect::<BTreeSet<_>>() {
            *counts.entry(word).or_default() += 1;
        }
    }
    let shared: BTreeSet<&String> = counts.into_iter().filter(|(_, count)| *count >= needed).map(|(word, _)| word).collect();
    let first = names.iter().find(|name| shared.iter().all(|word| name.contains(word)))?;
    let mut ordered: Vec<String> = Vec::new();
    for word in first.iter().filter(|word| shared.contains(word)) {
        if !ordered.contains(word) {
            ordered.push(word.clone());
        }
    }
    ordered.truncate(4);
    (!ordered.is_empty()).then_some(ordered)
}

/// The pattern's name: its most distinctive term (and the next when the first is a single
/// word), more terms while the name is taken, then the first member's file and folders,
/// then terms a few members share.
fn unique_name(files: &[FileRecord], members: &[Instance], ranked: &[Vec<String>], few: impl FnOnce() -> Vec<Vec<String>>, taken: &FxHashSet<String>) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut next = ranked.iter();
    // Appends the words not shown yet; whether there were any.
    let add = |shown: &mut Vec<String>, words: &[String]| -> bool {
        let before = shown.len();
        for word in words {
            if !shown.contains(word) {
                shown.push(word.clone());
            }
        }
        shown.len() > before
    };
    for term in next.by_ref() {
        if add(&mut shown, term) {
            break;
        }
    }
    if shown.len() < 2 {
        for term in next.by_ref() {
            if add(&mut shown, term) {
                break;
            }
        }
    }
    if shown.is_empty() {
        // Nothing telling is shared: what the members are called, then where they live.
        let common = most_common_name(files, members);
        shown.extend(common);
        shown.push("in".to_string());
        let place = place_words(&files[members[0].file as usize].path);
        if let Some(word) = place.iter().find(|word| !shown.contains(word)) {
            shown.push(word.clone());
        } else {
            shown.pop();
        }
    }
    // Past a few words a name stops reading as one: the place tells the rest apart.
    while taken.contains(&shown.join("-")) && shown.len() < MOST_TERM_WORDS {
        match next.next() {
            Some(term) => {
                add(&mut shown, term);
            }
            None => break,
        }
    }
    if taken.contains(&shown.join("-")) {
        // Where the first member lives, one word at a time from its file up its folders.
        let mut placed = shown.clone();
        if !placed.iter().any(|word| word == "in") {
            placed.push("in".to_string());
        }
        let unplaced = placed.len();
        for word in place_words(&files[members[0].file as usize].path) {
            if add(&mut placed, std::slice::from_ref(&word)) && !taken.contains(&placed.join("-")) {
                return placed.join("-");
            }
        }
        if placed.len() > unplaced {
            shown = placed;
        }
        // Then what only a few members share.
        for term in few() {
            if add(&mut shown, &term) && !taken.contains(&shown.join("-")) {
                return shown.join("-");
            }
        }
        // Every term and place is taken by an earlier pattern: the first member's line
        // tells the two apart.
        return format!("{}-at-{}", shown.join("-"), members[0].start_line);
    }
    shown.join("-")
}

/// The most common unit name among the members, as words (generic ones kept).
fn most_common_name(files: &[FileRecord], members: &[Instance]) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for member in members {
        let name = crate::pattern::instance_name(files, member);
        if !name.is_empty() && !name.starts_with('<') {
            *counts.entry(name).or_default() += 1;
        }
    }
    let best = counts.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0))).map(|(name, _)| words(name)).unwrap_or_default();
    if best.is_empty() { vec!["block".to_string()] } else { best }
}

/// A file's place, nearest first: the telling words of its file name, then of each
/// folder up to the root (`src/billing/mod.rs` → `billing`).
fn place_words(path: &str) -> Vec<String> {
    let stem = path.rsplit_once('.').filter(|(_, extension)| !extension.contains('/')).map_or(path, |(stem, _)| stem);
    let mut place: Vec<String> = Vec::new();
    for part in stem.rsplit('/') {
        for word in words(part) {
            if word.len() > 2 && !is_generic(&word) && !place.contains(&word) {
                place.push(word);
            }
        }
    }
    if place.is_empty() {
        place.push("root".to_string());
    }
    place
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python files by path, with their records (every function a unit).
    struct Fixture {
        sources: BTreeMap<String, String>,
        files: Vec<FileRecord>,
    }

    impl Fixture {
        fn new(files: &[(&str, String)]) -> Fixture {
            let settings = crate::config::DetectionSettings { min_lines: 1, min_tokens: 1, ..Default::default() };
            let records = files
                .iter()
                .map(|(path, source)| {
                    let analysis = crate::analysis::analyze(Language::Python, source);
                    FileRecord::from_analysis(path.to_string(), Language::Python, [0; 32], source.len() as u64, 0, &analysis, &settings)
                })
                .collect();
            Fixture { sources: files.iter().map(|(path, source)| (path.to_string(), source.clone())).collect(), files: records }
        }

        /// Every unit whose name starts with `prefix`, as pattern members.
        fn members(&self, prefix: &str) -> Vec<Instance> {
            let mut members = Vec::new();
            for (file, record) in self.files.iter().enumerate() {
                for (index, unit) in record.units.iter().enumerate().filter(|(_, unit)| unit.name.starts_with(prefix)) {
                    members.push(Instance {
                        file: file as u32,
                        start_line: unit.start_line,
                        end_line: unit.end_line,
                        unit: Some(index as u32),
                        token_start: unit.token_start,
                        token_end: unit.token_end,
                    });
                }
            }
            assert!(members.len() >= 2, "fixture has members named {prefix}*");
            members
        }

        /// The members of `validation_tests`.
        fn fields(&self) -> Vec<Instance> {
            let mut members = self.members("test_");
            members.retain(|member| !crate::pattern::instance_name(&self.files, member).starts_with("test_page"));
            members
        }

        fn names(&self, patterns: &[Vec<Instance>]) -> Vec<String> {
            let sources = &self.sources;
            let text = |record: &FileRecord| sources.get(&record.path).cloned();
            let groups: Vec<&[Instance]> = patterns.iter().map(Vec::as_slice).collect();
            name_patterns(&self.files, &groups, &text, codebase_rarity(&self.files))
        }
    }

    /// Test methods that each check a different form field against a different message,
    /// all through `assertRaisesMessage(ValidationError, …)`; `changed` members do not.
    fn validation_tests(count: usize, changed: usize) -> String {
        let fields = ["email", "phone", "zip", "street", "city", "country", "birthday"];
        let mut source = String::from("class FieldTests(TestCase):\n");
        for (i, field) in fields.iter().enumerate().take(count) {
            let check = if i < changed {
                format!("        self.assertFalse(form.is_valid(), \"{field} rejected\")\n")
            } else {
                format!("        with self.assertRaisesMessage(ValidationError, \"bad {field}\"):\n            form.clean_{field}()\n")
            };
            source.push_str(&format!(
                "    def test_{field}_{i}(self):\n        form = ProfileForm(data={{\"{field}\": \"x{i}\"}})\n{check}        self.assertEqual(form.errors, {{}})\n\n"
            ));
        }
        source
    }

    /// Ordinary tests of the same codebase: the same form, other assertions.
    fn other_tests(count: usize) -> String {
        let mut source = String::from("class PageTests(TestCase):\n");
        for i in 0..count {
            source.push_str(&format!(
                "    def test_page_{i}(self):\n        form = ProfileForm(data={{}})\n        response = self.client.get(\"/p/{i}\")\n        self.assertEqual(response.status_code, 200)\n        self.assertEqual(form.errors, {{}})\n\n"
            ));
        }
        source
    }

    #[test]
    fn words_split_camel_snake_and_kebab() {
        assert_eq!(words("parseConfigFile"), vec!["parse", "config", "file"]);
        assert_eq!(words("load_user_DB"), vec!["load", "user", "db"]);
        assert_eq!(words("get-x"), Vec::<String>::new());
    }

    #[test]
    fn a_distinctive_shared_call_names_the_pattern() {
        let fixture = Fixture::new(&[("tests/test_fields.py", validation_tests(5, 0)), ("tests/test_pages.py", other_tests(6))]);
        let names = fixture.names(&[fixture.fields(), fixture.members("test_page")]);
        assert!(names[0].contains("assert-raises-message"), "{names:?}");
        assert!(!names[1].contains("assert-raises-message"), "{names:?}");
    }

    #[test]
    fn the_name_survives_a_change_to_one_member() {
        let before = Fixture::new(&[("tests/test_fields.py", validation_tests(5, 0)), ("tests/test_pages.py", other_tests(6))]);
        let after = Fixture::new(&[("tests/test_fields.py", validation_tests(5, 1)), ("tests/test_pages.py", other_tests(6))]);
        assert_eq!(after.sources["tests/test_fields.py"].matches("assertRaisesMessage").count(), 4, "one member changed");
        let name_before = before.names(&[before.fields(), before.members("test_page")]).remove(0);
        let name_after = after.names(&[after.fields(), after.members("test_page")]).remove(0);
        assert!(name_before.contains("assert-raises-message"), "{name_before}");
        assert_eq!(name_before, name_after);
    }

    #[test]
    fn patterns_of_one_function_name_get_different_names() {
        let family = |call: &str, field: &str| -> String {
            (0..4).map(|i| format!("def compute(rows):\n    total = {call}(rows, {i})\n    return total.{field} + {i}\n\n")).collect()
        };
        let fixture = Fixture::new(&[
            ("stats/means.py", family("weighted_mean", "variance")),
            ("net/headers.py", family("parse_header", "charset")),
        ]);
        let in_file = |path: &str| -> Vec<Instance> {
            let file = fixture.files.iter().position(|record| record.path == path).expect("fixture file") as u32;
            fixture.members("compute").into_iter().filter(|member| member.file == file).collect()
        };
        let names = fixture.names(&[in_file("stats/means.py"), in_file("net/headers.py")]);
        assert_ne!(names[0], names[1]);
        assert!(names.iter().all(|name| name != "compute" && name.contains('-')), "{names:?}");
        assert!(names[0].contains("weighted-mean") || names[0].contains("variance"), "{names:?}");
        assert!(names[1].contains("parse-header") || names[1].contains("charset"), "{names:?}");
    }

    #[test]
    fn a_generic_family_gets_no_bare_generic_word() {
        let body: String = (0..3).map(|i| format!("def test(self):\n    x = {i}\n    return x + 1\n\n")).collect();
        let fixture = Fixture::new(&[("a.py", body.clone()), ("b.py", body)]);
        let names = fixture.names(&[fixture.members("test")]);
        assert!(!is_generic(&names[0]) && names[0].contains('-'), "{names:?}");
    }

    #[test]
    fn identical_families_are_told_apart_without_a_number() {
        let fixture = Fixture::new(&[
            ("billing/tests/test_fields.py", validation_tests(4, 0)),
            ("accounts/tests/test_fields.py", validation_tests(4, 0)),
            ("tests/test_pages.py", other_tests(6)),
        ]);
        let in_file = |file: u32| -> Vec<Instance> { fixture.fields().into_iter().filter(|member| member.file == file).collect() };
        let names = fixture.names(&[in_file(0), in_file(1)]);
        assert_ne!(names[0], names[1]);
        assert!(!names[1].ends_with(|c: char| c.is_ascii_digit()), "{names:?}");
    }

    #[test]
    fn a_pattern_alone_in_its_codebase_is_named_by_what_its_members_share() {
        let orders = "def summarize_orders(orders, tax_rate):\n    total = 0\n    for order in orders:\n        if order.status == \"paid\":\n            total += order.amount * (1 + tax_rate)\n    return {\"total\": round(total, 2)}\n";
        let invoices = "def collect_invoices(invoices, vat):\n    acc = 0\n    for invoice in invoices:\n        if invoice.status == \"settled\":\n            acc += invoice.amount * (1 + vat)\n    return {\"total\": round(acc, 3)}\n";
        let fixture = Fixture::new(&[("src/orders.py", orders.to_string()), ("src/invoices.py", invoices.to_string())]);
        let name = fixture.names(&[fixture.members("")]).remove(0);
        assert!(!name.ends_with("-in"), "{name}");
        for word in name.split('-') {
            assert!(orders.to_lowercase().contains(word) && invoices.to_lowercase().contains(word), "{name}: {word} is shared");
        }
    }

    #[test]
    fn member_lines_are_cut_from_the_text() {
        let text = "one\ntwo\nthree\nfour";
        let starts = [0, 4, 8, 14];
        assert_eq!(lines(text, &starts, 2, 3), "two\nthree\n");
        assert_eq!(lines(text, &starts, 1, 1), "one\n");
        assert_eq!(lines(text, &starts, 4, 9), "four");
    }

    #[test]
    fn escape_sequences_are_not_words() {
        assert_eq!(without_escapes(r"a\xa0b\u00e9c\u{1F600}d\ne"), "a b c d e");
        let mut terms = FxHashSet::default();
        code_terms(Language::Python, "x = 'THOUSAND\\xa0SEPARATOR'\n", &mut terms);
        let literal: BTreeSet<&str> = terms.iter().filter(|(class, _)| *class == Class::Literal).map(|(_, word)| &**word).collect();
        assert_eq!(literal, BTreeSet::from(["separator", "thousand"]));
    }

    #[test]
    fn the_lexer_finds_calls_fields_identifiers_and_literal_words() {
        let mut terms = FxHashSet::default();
        code_terms(Language::Python, "# skipped comment\nrows = db.fetch_rows(query, \"customerInvoices\", 0x7fff)  # note\nrows.total_amount\n", &mut terms);
        assert!(terms.contains(&(Class::Called, "fetch_rows".into())));
        assert!(terms.contains(&(Class::Called, "total_amount".into())));
        assert!(terms.contains(&(Class::Identifier, "query".into())));
        assert!(terms.contains(&(Class::Literal, "invoices".into())));
        assert!(!terms.iter().any(|(_, text)| ["skipped", "note", "x7fff"].contains(&&**text)), "{terms:?}");
    }
}
