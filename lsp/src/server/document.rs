//! An open document: its text in a rope, its version, and the syntax tree of the last
//! analysis with every edit since applied to it (`Tree::edit`), so the next parse reuses
//! what did not change. Edits are applied all-or-nothing: a change with a position outside
//! the text leaves the document exactly as it was.

use std::path::PathBuf;

use periodic_core::Language;
use periodic_core::analysis::{self, Analysis};
use ropey::Rope;
use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;
use tree_sitter::{InputEdit, Point, Tree};

use super::position::{Encoding, char_index};

pub struct Document {
    pub path: PathBuf,
    pub language: Option<Language>,
    pub version: i32,
    pub rope: Rope,
    /// The tree of the last parse, edited in step with the rope since; `None` after a
    /// whole-text replacement or before the first parse.
    pub tree: Option<Tree>,
}

impl Document {
    pub fn new(path: PathBuf, language: Option<Language>, version: i32, text: &str) -> Document {
        Document { path, language, version, rope: Rope::from_str(text), tree: None }
    }

    /// Applies the changes of one `didChange` in order, or none of them.
    pub fn apply(&mut self, changes: &[TextDocumentContentChangeEvent], encoding: Encoding) -> Result<(), String> {
        let mut rope = self.rope.clone();
        let mut edits = Vec::new();
        let mut replaced_whole = false;
        for change in changes {
            match change.range {
                None => {
                    rope = Rope::from_str(&change.text);
                    replaced_whole = true;
                    edits.clear();
                }
                Some(range) => {
                    let start = char_index(&rope, range.start, encoding)?;
                    let end = char_index(&rope, range.end, encoding)?;
                    if end < start {
                        return Err(format!(
                            "range end {}:{} is before its start {}:{}",
                            range.end.line, range.end.character, range.start.line, range.start.character
                        ));
                    }
                    let start_byte = rope.char_to_byte(start);
                    let old_end_byte = rope.char_to_byte(end);
                    let start_position = point_of(&rope, start);
                    let old_end_position = point_of(&rope, end);
                    rope.remove(start..end);
                    rope.insert(start, &change.text);
                    let new_end = start + change.text.chars().count();
                    edits.push(InputEdit {
                        start_byte,
                        old_end_byte,
                        new_end_byte: start_byte + change.text.len(),
                        start_position,
                        old_end_position,
                        new_end_position: point_of(&rope, new_end),
                    });
                }
            }
        }
        self.rope = rope;
        if replaced_whole {
            self.tree = None;
        }
        if let Some(tree) = &mut self.tree {
            for edit in &edits {
                tree.edit(edit);
            }
        }
        Ok(())
    }
}

/// Row and byte column, as tree-sitter counts them.
fn point_of(rope: &Rope, char_index: usize) -> Point {
    let row = rope.char_to_line(char_index);
    Point { row, column: rope.char_to_byte(char_index) - rope.line_to_byte(row) }
}

/// Parses `text`, reusing `old` (already edited to match `text`) when given, and analyses
/// the new tree. Returns the tree for the next incremental parse.
pub fn parse_and_analyze(language: Language, text: &str, old: Option<&Tree>) -> (Analysis, Option<Tree>) {
    analysis::analyze_incrementally(language, text, old)
}

#[cfg(test)]
mod tests {
    use tower_lsp_server::ls_types::{Position, Range};

    use super::*;

    fn change(start: (u32, u32), end: (u32, u32), text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(start.0, start.1), Position::new(end.0, end.1))),
            range_length: None,
            text: text.to_string(),
        }
    }

    fn document(text: &str) -> Document {
        Document::new(PathBuf::from("/w/a.py"), Some(Language::Python), 1, text)
    }

    #[test]
    fn edits_apply_in_order_and_a_bad_one_changes_nothing() {
        let mut doc = document("def f():\n    return 1\n");
        doc.apply(&[change((1, 11), (1, 12), "2"), change((0, 4), (0, 5), "g")], Encoding::Utf16).expect("apply");
        assert_eq!(doc.rope.to_string(), "def g():\n    return 2\n");
        let bad = [change((0, 0), (0, 0), "x"), change((9, 0), (9, 0), "y")];
        assert!(doc.apply(&bad, Encoding::Utf16).is_err());
        assert_eq!(doc.rope.to_string(), "def g():\n    return 2\n");
    }

    #[test]
    fn an_incrementally_reparsed_tree_equals_a_fresh_parse() {
        let mut doc = document("def f(a):\n    s = '漢字'\n    return a + 1\n");
        let (_, tree) = parse_and_analyze(Language::Python, &doc.rope.to_string(), None);
        doc.tree = tree;
        doc.apply(&[change((2, 15), (2, 16), "total"), change((1, 9), (1, 9), "😀")], Encoding::Utf16).expect("apply");
        let text = doc.rope.to_string();
        assert_eq!(text, "def f(a):\n    s = '😀漢字'\n    return a + total\n");
        let (incremental, _) = parse_and_analyze(Language::Python, &text, doc.tree.as_ref());
        let fresh = analysis::analyze(Language::Python, &text);
        assert_eq!(incremental.tokens.syms, fresh.tokens.syms);
        assert_eq!(incremental.tokens.texts, fresh.tokens.texts);
    }
}
