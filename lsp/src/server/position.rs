//! LSP positions against document text. A position's `character` counts UTF-8 bytes or
//! UTF-16 code units, whichever encoding was negotiated at `initialize`; the rope counts
//! chars. Lines past the end are an error (an edit against text the server does not have);
//! a character past the end of its line is clamped to the line's end, as the spec asks.

use ropey::{Rope, RopeSlice};
use tower_lsp_server::ls_types::{Position, PositionEncodingKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

impl Encoding {
    /// UTF-8 when the client offers it (no conversion needed), else the mandatory UTF-16.
    pub fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Encoding {
        match offered {
            Some(kinds) if kinds.contains(&PositionEncodingKind::UTF8) => Encoding::Utf8,
            _ => Encoding::Utf16,
        }
    }

    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }
    }

    fn width(self, ch: char) -> usize {
        match self {
            Encoding::Utf8 => ch.len_utf8(),
            Encoding::Utf16 => ch.len_utf16(),
        }
    }
}

/// A line without its line break.
fn line_content(rope: &Rope, line: usize) -> RopeSlice<'_> {
    let slice = rope.line(line);
    let mut chars = slice.len_chars();
    while chars > 0 && matches!(slice.char(chars - 1), '\n' | '\r') {
        chars -= 1;
    }
    slice.slice(..chars)
}

/// The char index of `position`, or why it is not in the text.
pub fn char_index(rope: &Rope, position: Position, encoding: Encoding) -> Result<usize, String> {
    let line = position.line as usize;
    if line >= rope.len_lines() {
        return Err(format!("line {} is past the end of the document ({} lines)", position.line, rope.len_lines()));
    }
    let content = line_content(rope, line);
    let mut units = 0usize;
    let mut chars = 0usize;
    for ch in content.chars() {
        let width = encoding.width(ch);
        // A position inside a character (half a surrogate pair, a byte inside UTF-8)
        // stays before it.
        if units + width > position.character as usize {
            break;
        }
        units += width;
        chars += 1;
    }
    Ok(rope.line_to_char(line) + chars)
}

/// The LSP position of a char index.
#[cfg(test)]
pub fn position_of(rope: &Rope, char_index: usize, encoding: Encoding) -> Position {
    let char_index = char_index.min(rope.len_chars());
    let line = rope.char_to_line(char_index);
    let start = rope.line_to_char(line);
    let character: usize = rope.slice(start..char_index).chars().map(|ch| encoding.width(ch)).sum();
    Position::new(line as u32, character as u32)
}

/// The end of `line` (before its line break), as an LSP position.
pub fn line_end(rope: &Rope, line: usize, encoding: Encoding) -> Position {
    if line >= rope.len_lines() {
        return Position::new(line as u32, 0);
    }
    let width: usize = line_content(rope, line).chars().map(|ch| encoding.width(ch)).sum();
    Position::new(line as u32, width as u32)
}

/// The first non-blank character of `line`.
pub fn line_start_of_text(rope: &Rope, line: usize, encoding: Encoding) -> Position {
    if line >= rope.len_lines() {
        return Position::new(line as u32, 0);
    }
    let width: usize = line_content(rope, line).chars().take_while(|ch| ch.is_whitespace()).map(|ch| encoding.width(ch)).sum();
    Position::new(line as u32, width as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_counts_surrogate_pairs_as_two_units_and_utf8_counts_bytes() {
        let rope = Rope::from_str("a😀b\n漢字x\n");
        // 😀 is 2 UTF-16 units and 4 UTF-8 bytes; 漢 is 1 unit and 3 bytes.
        assert_eq!(char_index(&rope, Position::new(0, 3), Encoding::Utf16), Ok(2));
        assert_eq!(char_index(&rope, Position::new(0, 5), Encoding::Utf8), Ok(2));
        assert_eq!(char_index(&rope, Position::new(1, 2), Encoding::Utf16), Ok(6));
        assert_eq!(char_index(&rope, Position::new(1, 6), Encoding::Utf8), Ok(6));
        assert_eq!(position_of(&rope, 6, Encoding::Utf16), Position::new(1, 2));
        assert_eq!(position_of(&rope, 6, Encoding::Utf8), Position::new(1, 6));
        assert_eq!(position_of(&rope, 2, Encoding::Utf16), Position::new(0, 3));
    }

    #[test]
    fn half_a_character_stays_before_it_and_long_lines_clamp() {
        let rope = Rope::from_str("a😀b\n");
        assert_eq!(char_index(&rope, Position::new(0, 2), Encoding::Utf16), Ok(1));
        assert_eq!(char_index(&rope, Position::new(0, 99), Encoding::Utf16), Ok(3));
        assert_eq!(line_end(&rope, 0, Encoding::Utf16), Position::new(0, 4));
    }

    #[test]
    fn lines_past_the_end_are_errors() {
        let rope = Rope::from_str("one\ntwo\n");
        assert!(char_index(&rope, Position::new(2, 0), Encoding::Utf16).is_ok(), "the empty last line exists");
        assert!(char_index(&rope, Position::new(3, 0), Encoding::Utf16).is_err());
    }
}
