//! Parsing one source text into what detection needs: a normalised token stream, the units
//! (functions, methods, closures) with their token ranges, and the suppression markers.
//!
//! Parsing never fails: a file with syntax errors yields the tokens and units tree-sitter
//! recovered, plus a flag. One parser per thread and language is kept and reused.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::lang::{BindingRole, Language, NodeClass};

/// High bit of a symbol: the token is a parameter (identifier or literal) whose text Type-2
/// abstracts away.
pub const PARAM_BIT: u16 = 0x8000;
/// Symbol of every identifier and type name.
pub const SYM_IDENTIFIER: u16 = PARAM_BIT | 1;
/// Symbol of every literal.
pub const SYM_LITERAL: u16 = PARAM_BIT | 2;
/// Symbol of a suppressed token: never equal to anything, itself included.
pub const SYM_BARRIER: u16 = 0xFFFF;

/// One analysed file. Tokens are stored column-wise to keep memory at 10 bytes a token.
#[derive(Clone, Debug, Default)]
pub struct FileTokens {
    /// Normalised symbol per token: grammar kind id, or `SYM_IDENTIFIER`/`SYM_LITERAL`.
    pub syms: Vec<u16>,
    /// Hash of the token's kind and exact text: equal texts give equal hashes.
    pub texts: Vec<u32>,
    /// `row_starts[r]`: the index of the first token on 0-based row `r` or after it. One
    /// entry a line instead of one a token: lines are needed only at a clone's two ends.
    pub row_starts: Vec<u32>,
}

impl FileTokens {
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// 1-based line of a token (of its first byte).
    pub fn line(&self, token: usize) -> u32 {
        // Rows whose first token is at or before `token` are its row and the ones above.
        self.row_starts.partition_point(|&first| first as usize <= token) as u32
    }

    /// Records a token on `row`, which is never above the previous token's.
    fn push(&mut self, sym: u16, text: u32, row: u32) {
        let index = self.syms.len() as u32;
        while self.row_starts.len() <= row as usize {
            self.row_starts.push(index);
        }
        self.syms.push(sym);
        self.texts.push(text);
    }

    /// Gives back capacity reserved for an estimated token count: the streams of every
    /// file stay in memory until detection ends.
    fn shrink_to_fit(&mut self) {
        self.syms.shrink_to_fit();
        self.texts.shrink_to_fit();
        self.row_starts.shrink_to_fit();
    }
}

/// Where a unit's name comes from in the source text: enough to rebuild the name from the
/// file's own bytes (a shared analysis carries this instead of the name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameOrigin {
    /// No name in the source: `<anonymous>`.
    Anonymous,
    /// The text of this byte range (shortened to its first line and 80 characters).
    Text { start: u32, end: u32 },
    /// A callback named after the callee at this byte range: `callee(…)`.
    Callee { start: u32, end: u32 },
}

impl NameOrigin {
    /// The unit name this origin gives in `source`; `None` when the range is not a valid
    /// slice of it.
    pub fn name_in(self, source: &str) -> Option<String> {
        match self {
            NameOrigin::Anonymous => Some("<anonymous>".to_string()),
            NameOrigin::Text { start, end } => source.get(start as usize..end as usize).map(|text| shorten(text.to_string())),
            NameOrigin::Callee { start, end } => {
                source.get(start as usize..end as usize).map(|text| shorten(format!("{text}(…)")))
            }
        }
    }
}

/// A function-like region of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    pub name_origin: NameOrigin,
    /// Grammar node kind, e.g. `function_definition`.
    pub kind: &'static str,
    pub start_line: u32,
    pub end_line: u32,
    pub start_byte: u32,
    pub end_byte: u32,
    pub token_start: u32,
    pub token_end: u32,
    /// Deepest syntax nesting inside the unit, relative to the unit.
    pub nesting: u32,
    /// Index of the innermost enclosing unit in the same file.
    pub parent: Option<u32>,
}

impl Unit {
    pub fn token_count(&self) -> u32 {
        self.token_end - self.token_start
    }

    pub fn line_count(&self) -> u32 {
        self.end_line - self.start_line + 1
    }
}

/// Where each token's text comes from, column-wise like [`FileTokens`]: its grammar kind,
/// whether it is named (its text counts) and its byte range. With the source, this gives
/// back `FileTokens::texts` without parsing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenSources {
    pub kinds: Vec<u16>,
    pub named: Vec<bool>,
    pub spans: Vec<(u32, u32)>,
}

#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub tokens: FileTokens,
    /// Every unit, of any size, in start order; filtering by size is the caller's.
    pub units: Vec<Unit>,
    pub has_syntax_errors: bool,
    pub line_count: u32,
    /// Indexes of the tokens that bind a name (a parameter, a local, a loop or pattern
    /// variable; `lang::BindingRole`) and of type names, ascending: with `tokens.texts`,
    /// the names a copy may rename as it renames its locals (Type-2), so that verification
    /// can tell them from the names a function uses (callees, fields, constants).
    pub binding_tokens: Vec<u32>,
}

thread_local! {
    static PARSERS: RefCell<HashMap<Language, tree_sitter::Parser>> = RefCell::new(HashMap::new());
}

/// Parses `source` and returns its analysis. Suppression markers are applied: suppressed
/// tokens become `SYM_BARRIER`, units marked `periodic-ignore` are dropped.
pub fn analyze(language: Language, source: &str) -> Analysis {
    analyze_incrementally(language, source, None).0
}

/// Parses `source` with this thread's parser for `language`, reusing `old` (a tree already
/// edited with `Tree::edit` to match `source`) when given.
pub fn parse(language: Language, source: &str, old: Option<&tree_sitter::Tree>) -> Option<tree_sitter::Tree> {
    PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let parser = parsers.entry(language).or_insert_with(|| {
            let mut parser = tree_sitter::Parser::new();
            // The registry test guarantees every grammar's ABI is supported.
            let _ = parser.set_language(&language.spec().grammar);
            parser
        });
        parser.parse(source, old)
    })
}

/// [`analyze`] for an editor: reuses the previous tree and returns the new one.
pub fn analyze_incrementally(language: Language, source: &str, old: Option<&tree_sitter::Tree>) -> (Analysis, Option<tree_sitter::Tree>) {
    match parse(language, source, old) {
        Some(tree) => (analyze_tree(language, source, &tree), Some(tree)),
        None => (Analysis { line_count: count_lines(source), ..Analysis::default() }, None),
    }
}

pub fn count_lines(source: &str) -> u32 {
    let newlines = memchr_count(source.as_bytes(), b'\n');
    let trailing = !source.is_empty() && !source.ends_with('\n');
    (newlines + usize::from(trailing)) as u32
}

fn memchr_count(bytes: &[u8], needle: u8) -> usize {
    bytes.iter().filter(|&&b| b == needle).count()
}

/// Walks an already parsed tree (the language server reuses this with incremental trees).
pub fn analyze_tree(language: Language, source: &str, tree: &tree_sitter::Tree) -> Analysis {
    analyze_tree_keeping(language, source, tree, false).0
}

/// [`analyze`], also returning where every token's text comes from: what a shared analysis
/// ([`crate::team_cache`]) carries instead of the text. `None` sources when parsing failed.
pub fn analyze_with_sources(language: Language, source: &str) -> (Analysis, Option<TokenSources>) {
    match parse(language, source, None) {
        Some(tree) => analyze_tree_keeping(language, source, &tree, true),
        None => (Analysis { line_count: count_lines(source), ..Analysis::default() }, None),
    }
}

fn analyze_tree_keeping(language: Language, source: &str, tree: &tree_sitter::Tree, keep_sources: bool) -> (Analysis, Option<TokenSources>) {
    let mut walker = Walker::new(language, source, keep_sources);
    walker.walk(tree.root_node());
    let mut analysis = Analysis {
        tokens: walker.tokens,
        units: walker.units,
        has_syntax_errors: tree.root_node().has_error(),
        line_count: count_lines(source),
        binding_tokens: walker.binding_tokens,
    };
    apply_suppressions(&mut analysis, &walker.markers);
    (analysis, walker.sources)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    IgnoreNext,
    Start,
    End,
}

fn marker_in(comment: &str) -> Option<Marker> {
    if comment.contains("periodic-ignore-start") || comment.contains("CPD-OFF") || comment.contains("jscpd:ignore-start") {
        Some(Marker::Start)
    } else if comment.contains("periodic-ignore-end") || comment.contains("CPD-ON") || comment.contains("jscpd:ignore-end") {
        Some(Marker::End)
    } else if comment.contains("periodic-ignore") {
        Some(Marker::IgnoreNext)
    } else {
        None
    }
}

/// A unit whose node the walk is inside of.
struct OpenUnit {
    unit: u32,
    depth: u32,
    /// Deepest node depth seen inside it so far.
    deepest: u32,
}

struct Walker<'a> {
    spec: &'static crate::lang::LanguageSpec,
    source: &'a str,
    tokens: FileTokens,
    /// Where each token's text comes from, kept only when the analysis is to be shared.
    sources: Option<TokenSources>,
    units: Vec<Unit>,
    open_units: Vec<OpenUnit>,
    /// (marker, the token index it stands before, its row)
    markers: Vec<(Marker, u32, u32)>,
    /// Nodes that switched binding collection on (a binding construct) or off (a use field,
    /// a block or a nested function below one): (depth, collecting below it).
    binding_frames: Vec<(u32, bool)>,
    binding_tokens: Vec<u32>,
}

impl<'a> Walker<'a> {
    fn new(language: Language, source: &'a str, keep_sources: bool) -> Self {
        let estimated_tokens = source.len() / 5;
        Walker {
            spec: language.spec(),
            source,
            sources: keep_sources.then(TokenSources::default),
            tokens: FileTokens {
                syms: Vec::with_capacity(estimated_tokens),
                texts: Vec::with_capacity(estimated_tokens),
                row_starts: Vec::with_capacity(source.len() / 24),
            },
            units: Vec::new(),
            open_units: Vec::new(),
            markers: Vec::new(),
            binding_frames: Vec::new(),
            binding_tokens: Vec::new(),
        }
    }

    /// Records a leaf spanning `span` (bytes).
    fn push_token(&mut self, node: tree_sitter::Node, span: (usize, usize), kind_id: u16, sym: u16, named: bool) {
        let text = token_text(kind_id, named, &self.source.as_bytes()[span.0..span.1]);
        self.tokens.push(sym, text, node.start_position().row as u32);
        if let Some(sources) = &mut self.sources {
            sources.kinds.push(kind_id);
            sources.named.push(named);
            sources.spans.push((span.0 as u32, span.1 as u32));
        }
    }

    /// Iterative pre-order walk. Units are closed by depth on the way back up, so leaving
    /// a node needs no second look at it (each `TreeCursor::node` resolves aliases again).
    fn walk(&mut self, root: tree_sitter::Node) {
        let mut cursor = root.walk();
        let mut depth: u32 = 0;
        loop {
            if self.enter(&mut cursor, depth) {
                depth += 1;
                continue;
            }
            self.leave(depth);
            loop {
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    self.tokens.shrink_to_fit();
                    return;
                }
                depth -= 1;
                self.leave(depth);
            }
        }
    }

    /// Handles the cursor's node on the way down; returns `true` when it moved the cursor
    /// to the node's first child.
    fn enter(&mut self, cursor: &mut tree_sitter::TreeCursor, depth: u32) -> bool {
        let node = cursor.node();
        let kind_id = node.kind_id();
        let class = self.spec.class(kind_id);
        // Missing nodes (inserted by error recovery) are zero-width leaves, never tokens; each
        // call into tree-sitter costs, so inner `Other` nodes skip the check.
        if class != NodeClass::Other && node.is_missing() {
            return false;
        }
        if let Some(open) = self.open_units.last_mut() {
            open.deepest = open.deepest.max(depth);
        }
        let collecting = self.binding_frames.last().is_some_and(|&(_, on)| on);
        match self.spec.binding_role(kind_id) {
            BindingRole::Binds => self.binding_frames.push((depth, true)),
            BindingRole::Stops if collecting => self.binding_frames.push((depth, false)),
            _ if collecting && cursor.field_id().is_some_and(|field| self.spec.is_use_field(field.get())) => {
                self.binding_frames.push((depth, false));
            }
            _ => {}
        }
        if self.spec.is_unit(kind_id) {
            let index = self.units.len() as u32;
            let parent = self.open_units.last().map(|open| open.unit);
            let name_origin = name_origin(node);
            self.units.push(Unit {
                name: name_origin.name_in(self.source).unwrap_or_default(),
                name_origin,
                kind: self.spec.grammar.node_kind_for_id(kind_id).unwrap_or("unit"),
                start_line: node.start_position().row as u32 + 1,
                end_line: end_row(node) + 1,
                start_byte: node.start_byte() as u32,
                end_byte: node.end_byte() as u32,
                token_start: self.tokens.len() as u32,
                token_end: 0,
                nesting: 0,
                parent,
            });
            self.open_units.push(OpenUnit { unit: index, depth, deepest: depth });
        }
        match class {
            NodeClass::Comment => {
                let text = &self.source[node.start_byte()..node.end_byte()];
                if let Some(marker) = marker_in(text) {
                    let row = node.start_position().row as u32;
                    self.markers.push((marker, self.tokens.len() as u32, row));
                }
                false
            }
            NodeClass::Skip => false,
            NodeClass::Identifier => {
                let binds = self.spec.is_plain_identifier(kind_id) && self.binding_frames.last().is_some_and(|&(_, on)| on);
                if binds || self.spec.is_type_name(kind_id) {
                    self.binding_tokens.push(self.tokens.len() as u32);
                }
                self.push_token(node, (node.start_byte(), node.end_byte()), kind_id, SYM_IDENTIFIER, true);
                false
            }
            NodeClass::Literal => {
                self.push_token(node, (node.start_byte(), node.end_byte()), kind_id, SYM_LITERAL, true);
                false
            }
            NodeClass::Other => {
                if cursor.goto_first_child() {
                    return true;
                }
                // A zero-width leaf (a missing node among them) is no token.
                let span = (node.start_byte(), node.end_byte());
                if span.1 > span.0 {
                    self.push_token(node, span, kind_id, kind_id & !PARAM_BIT, node.is_named());
                }
                false
            }
        }
    }

    /// Called when the walk leaves the node at `depth`: closes the unit opened there.
    fn leave(&mut self, depth: u32) {
        if self.binding_frames.last().is_some_and(|&(at, _)| at == depth) {
            self.binding_frames.pop();
        }
        if self.open_units.last().is_some_and(|open| open.depth == depth)
            && let Some(open) = self.open_units.pop()
        {
            let unit = &mut self.units[open.unit as usize];
            unit.token_end = self.tokens.len() as u32;
            unit.nesting = open.deepest - open.depth;
            if let Some(outer) = self.open_units.last_mut() {
                outer.deepest = outer.deepest.max(open.deepest);
            }
        }
    }
}

/// The last row holding the node's text: a node ending at column 0 ends on the row before.
fn end_row(node: tree_sitter::Node) -> u32 {
    let end = node.end_position();
    if end.column == 0 && end.row > node.start_position().row { end.row as u32 - 1 } else { end.row as u32 }
}

/// The `texts` entry of a token: its kind and exact text for a named token, its kind alone
/// for punctuation and keywords (whose text the kind fixes).
pub(crate) fn token_text(kind_id: u16, named: bool, bytes: &[u8]) -> u32 {
    if named { text_hash(kind_id, bytes) } else { u32::from(kind_id).wrapping_mul(0x9E37_79B1) }
}

/// FNV-1a over the kind and the bytes: cheap, and only ever compared for equality.
pub(crate) fn text_hash(kind_id: u16, bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811C_9DC5 ^ u32::from(kind_id);
    for &byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

const MAX_NAME_CHARS: usize = 80;

/// Where a readable name for a unit is: its own name, its declarator's, or the name it is
/// assigned to.
fn name_origin(node: tree_sitter::Node) -> NameOrigin {
    let text = |n: tree_sitter::Node| NameOrigin::Text { start: n.start_byte() as u32, end: n.end_byte() as u32 };
    if let Some(name) = node.child_by_field_name("name") {
        return text(name);
    }
    // C and C++: function_definition -> declarator (function_declarator) -> declarator ...
    // A C++ lambda's declarator is only its parameter list (`abstract_function_declarator`).
    let mut declarator = node.child_by_field_name("declarator").filter(|inner| !inner.kind().starts_with("abstract_"));
    while let Some(current) = declarator {
        match current.child_by_field_name("declarator") {
            Some(inner) => declarator = Some(inner),
            None => return text(current),
        }
    }
    // Go wraps assigned values in an expression_list: `handler := func(..) {..}`.
    let parent = node.parent().map(|parent| match parent.parent() {
        Some(outer) if parent.kind() == "expression_list" => outer,
        _ => parent,
    });
    if let Some(parent) = parent {
        // `declarator`: a C++ lambda in `auto name = [..](..) {..};` (an init_declarator).
        for field in ["name", "left", "key", "pattern", "property", "declarator"] {
            if let Some(named) = parent.child_by_field_name(field)
                && named.id() != node.id()
            {
                return text(named);
            }
        }
        // A callback passed to a call: name it after the callee, e.g. `it` or `map`.
        if parent.kind() == "arguments"
            && let Some(call) = parent.parent()
            && let Some(function) = call.child_by_field_name("function")
        {
            return NameOrigin::Callee { start: function.start_byte() as u32, end: function.end_byte() as u32 };
        }
    }
    NameOrigin::Anonymous
}

fn shorten(mut name: String) -> String {
    if let Some(newline) = name.find('\n') {
        name.truncate(newline);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        name = name.chars().take(MAX_NAME_CHARS).collect::<String>() + "…";
    }
    name
}

/// Applies suppression comments: `periodic-ignore` drops the next unit and blanks its
/// tokens; start/end pairs (also `CPD-OFF`/`CPD-ON`, `jscpd:ignore-start`/`-end`) blank
/// every token between them. An unclosed start runs to the end of the file.
fn apply_suppressions(analysis: &mut Analysis, markers: &[(Marker, u32, u32)]) {
    if markers.is_empty() {
        return;
    }
    let token_count = analysis.tokens.len() as u32;
    let mut blanked: Vec<(u32, u32)> = Vec::new();
    let mut open_start: Option<u32> = None;
    let mut ignored_units: Vec<usize> = Vec::new();
    for &(marker, token, row) in markers {
        match marker {
            Marker::Start => {
                open_start.get_or_insert(token);
            }
            Marker::End => {
                if let Some(start) = open_start.take() {
                    blanked.push((start, token));
                }
            }
            Marker::IgnoreNext => {
                let next = analysis.units.iter().position(|unit| unit.start_line > row && unit.token_start >= token);
                if let Some(index) = next {
                    let unit = &analysis.units[index];
                    blanked.push((unit.token_start, unit.token_end));
                    ignored_units.push(index);
                }
            }
        }
    }
    if let Some(start) = open_start {
        blanked.push((start, token_count));
    }
    for (start, end) in blanked {
        for sym in &mut analysis.tokens.syms[start as usize..end.min(token_count) as usize] {
            *sym = SYM_BARRIER;
        }
    }
    let syms = &analysis.tokens.syms;
    let mut index = 0;
    analysis.units.retain(|unit| {
        let keep = !ignored_units.contains(&index)
            && syms[unit.token_start as usize..unit.token_end as usize].iter().any(|&sym| sym != SYM_BARRIER);
        index += 1;
        keep
    });
    // Parent indices refer to positions before the retain: recompute them by containment.
    let spans: Vec<(u32, u32)> = analysis.units.iter().map(|u| (u.start_byte, u.end_byte)).collect();
    for (index, unit) in analysis.units.iter_mut().enumerate() {
        unit.parent = (0..index)
            .rev()
            .find(|&outer| spans[outer].0 <= unit.start_byte && unit.end_byte <= spans[outer].1)
            .map(|outer| outer as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distinct names of a source's binding tokens, sorted.
    fn bound_names(language: Language, source: &str) -> Vec<String> {
        let (analysis, sources) = analyze_with_sources(language, source);
        let spans = sources.expect("parsed").spans;
        let mut names: Vec<String> = analysis
            .binding_tokens
            .iter()
            .map(|&token| {
                let (start, end) = spans[token as usize];
                source[start as usize..end as usize].to_string()
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn parameters_locals_loop_variables_and_types_are_bound_and_used_names_are_not() {
        let cases: [(Language, &str, &[&str]); 6] = [
            (
                Language::Python,
                "def total(items, scale=FACTOR):\n    acc = 0\n    for item in items:\n        acc += price(item) * scale\n    return acc\n",
                &["acc", "item", "items", "scale"],
            ),
            (
                Language::Java,
                "class C { int total(List<Item> items, int scale) { int acc = 0; for (Item item : items) { acc += price(item) * scale; } return acc; } }",
                &["Item", "List", "acc", "int", "item", "items", "scale"],
            ),
            (
                Language::C,
                "int total(struct item *items, int count) { int acc = 0; for (int i = 0; i < count; i++) { acc += price(&items[i]) * SCALE; } return acc; }",
                &["acc", "count", "i", "int", "item", "items"],
            ),
            (
                Language::Go,
                "package p\nfunc total(items []Item, scale int) int {\n\tacc := 0\n\tfor _, item := range items {\n\t\tacc += price(item) * scale\n\t}\n\treturn acc\n}\n",
                &["Item", "_", "acc", "int", "item", "items", "scale"],
            ),
            (
                Language::Rust,
                "fn total(items: &[Item], scale: u32) -> u32 { let mut acc = 0; for item in items { acc += price(item) * scale; } acc }",
                &["Item", "acc", "item", "items", "scale", "u32"],
            ),
            (
                Language::JavaScript,
                "function total(items, scale) { let acc = 0; for (const item of items) { acc += price(item) * scale; } return acc; }",
                &["acc", "item", "items", "scale"],
            ),
        ];
        for (language, source, expected) in cases {
            assert_eq!(bound_names(language, source), expected, "{language:?}");
        }
    }

    #[test]
    fn identifiers_and_literals_are_abstracted_but_texts_kept() {
        let a = analyze(Language::Python, "x = foo(1)\n");
        let b = analyze(Language::Python, "y = bar(2)\n");
        assert_eq!(a.tokens.syms, b.tokens.syms);
        assert_ne!(a.tokens.texts, b.tokens.texts);
        assert!(a.tokens.syms.contains(&SYM_IDENTIFIER));
        assert!(a.tokens.syms.contains(&SYM_LITERAL));
    }

    #[test]
    fn comments_and_whitespace_produce_no_tokens() {
        let a = analyze(Language::Rust, "fn f() { let x = 1; }");
        let b = analyze(Language::Rust, "fn f() {\n  // note\n  let x =   1; /* more */\n}\n");
        assert_eq!(a.tokens.texts, b.tokens.texts);
    }

    #[test]
    fn units_get_names_lines_and_parents() {
        let source = "class A:\n    def run(self):\n        f = lambda: 1\n        return f\n";
        let analysis = analyze(Language::Python, source);
        let names: Vec<_> = analysis.units.iter().map(|u| (u.name.as_str(), u.start_line, u.end_line)).collect();
        assert_eq!(names, vec![("run", 2, 4), ("f", 3, 3)]);
        assert_eq!(analysis.units[1].parent, Some(0));
    }

    #[test]
    fn c_function_names_come_from_the_declarator() {
        let analysis = analyze(Language::C, "static int *make_thing(int a) {\n  return 0;\n}\n");
        assert_eq!(analysis.units[0].name, "make_thing");
    }

    #[test]
    fn syntax_errors_still_yield_units() {
        let source = "def good(a):\n    return a + 1\n\ndef broken(:\n    pass\n\ndef other(b):\n    return b\n";
        let analysis = analyze(Language::Python, source);
        assert!(analysis.has_syntax_errors);
        let names: Vec<_> = analysis.units.iter().map(|u| u.name.as_str()).collect();
        assert!(names.contains(&"good") && names.contains(&"other"), "{names:?}");
    }

    #[test]
    fn suppression_markers_blank_tokens_and_drop_units() {
        let source = "// periodic-ignore\nfunction a() { return 1; }\nfunction b() { return 2; }\n// CPD-OFF\nlet x = 3;\n// CPD-ON\nlet y = 4;\n";
        let analysis = analyze(Language::JavaScript, source);
        let names: Vec<_> = analysis.units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, vec!["b"]);
        let blanked_rows: Vec<u32> = (0..analysis.tokens.len())
            .filter(|&t| analysis.tokens.syms[t] == SYM_BARRIER)
            .map(|t| analysis.tokens.line(t) - 1)
            .collect();
        assert!(blanked_rows.contains(&1) && blanked_rows.contains(&4));
        assert!(!blanked_rows.contains(&2) && !blanked_rows.contains(&6));
    }

    #[test]
    fn token_lines_survive_blank_lines_and_multi_line_tokens() {
        let source = "x = 1\n\n\ny = \"\"\"a\nb\"\"\"\nz = 2\n";
        let tokens = analyze(Language::Python, source).tokens;
        let lines: Vec<u32> = (0..tokens.len()).map(|t| tokens.line(t)).collect();
        assert_eq!(lines, vec![1, 1, 1, 4, 4, 4, 6, 6, 6]);
    }

    #[test]
    fn nesting_is_the_deepest_level_below_the_unit() {
        let shallow = analyze(Language::Python, "def f():\n    return 1\n");
        let deep = analyze(Language::Python, "def f():\n    if a:\n        if b:\n            return [x for x in y]\n");
        assert!(deep.units[0].nesting > shallow.units[0].nesting + 3, "{} vs {}", deep.units[0].nesting, shallow.units[0].nesting);
        let nested = analyze(Language::Python, "def f():\n    def g():\n        if a:\n            return 1\n    return g\n");
        assert!(nested.units[0].nesting > nested.units[1].nesting);
    }

    #[test]
    fn line_counting() {
        assert_eq!(count_lines(""), 0);
        assert_eq!(count_lines("a"), 1);
        assert_eq!(count_lines("a\nb\n"), 2);
    }
}
