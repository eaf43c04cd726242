//! Plain text of answers: lines of a file on disk (the closest copy's code) and a short
//! line diff between two copies.

use std::path::Path;

/// Lines longer than this many characters are cut before the hunk alignment compares them:
/// it only needs to tell a line's partner from the other lines of its hunk.
const COMPARED_CHARS: usize = 200;

/// Line pairs a hunk's alignment compares at most: a hover answers in milliseconds, and a
/// hunk of hundreds of changed lines on each side (a unit rewritten throughout) would cost
/// a quarter of a second. Past it, the hunk's lines are paired by position.
const MOST_COMPARED_PAIRS: usize = 20_000;

/// How alike two changed lines must be (see [`Compared`], from 0 to 1) to be shown as one line
/// changed rather than one removed and another added.
const PAIRED_SIMILARITY: f64 = 0.5;

/// A unified-style diff of two short line lists, cut at `limit` lines: lines equal but for
/// their indentation are context (` `), the others removed (`-`) or added (`+`).
///
/// Two passes. A longest common subsequence of equal lines anchors the two sides, so an extra
/// docstring line on one side does not push the rest out of step. Between two anchors (a
/// hunk), the changed lines are aligned again, by how alike they are: a line changed on both
/// sides (a renamed variable) is shown as its `-` line followed by its `+` line, and a line
/// with no counterpart (the rest of a longer docstring) is shown alone. Pairing the hunk's
/// lines by position instead put every line after a docstring of a different length next to
/// the wrong partner, so that nothing seemed to match.
pub fn line_diff(ours: &[&str], theirs: &[&str], limit: usize) -> String {
    // Long units are cut before diffing: the hover shows the start of the difference.
    let ours = &ours[..ours.len().min(400)];
    let theirs = &theirs[..theirs.len().min(400)];
    let (n, m) = (ours.len(), theirs.len());
    let mut common = vec![vec![0u16; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if ours[i].trim() == theirs[j].trim() { common[i + 1][j + 1] + 1 } else { common[i + 1][j].max(common[i][j + 1]) };
        }
    }
    let mut out = Vec::new();
    let (mut removed, mut added): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && ours[i].trim() == theirs[j].trim() {
            align_hunk(&mut out, &removed, &added);
            removed.clear();
            added.clear();
            out.push(format!(" {}", ours[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            removed.push(ours[i]);
            i += 1;
        } else {
            added.push(theirs[j]);
            j += 1;
        }
    }
    align_hunk(&mut out, &removed, &added);
    let total = out.len();
    let mut text: String = out.into_iter().take(limit).map(|line| line + "\n").collect();
    if total > limit {
        text.push_str(&format!("… {} more lines\n", total - limit));
    }
    text
}

/// Appends one hunk's changed lines: an order-keeping alignment of `removed` with `added` that
/// maximises the summed similarity of the pairs it makes (only pairs at least
/// [`PAIRED_SIMILARITY`] alike may be made). A pair is shown as `-` then `+`; an unpaired line
/// alone, where it falls.
fn align_hunk(out: &mut Vec<String>, removed: &[&str], added: &[&str]) {
    let (n, m) = (removed.len(), added.len());
    if n == 0 || m == 0 {
        out.extend(removed.iter().map(|line| format!("-{line}")));
        out.extend(added.iter().map(|line| format!("+{line}")));
        return;
    }
    if n * m > MOST_COMPARED_PAIRS {
        for index in 0..n.max(m) {
            out.extend(removed.get(index).map(|line| format!("-{line}")));
            out.extend(added.get(index).map(|line| format!("+{line}")));
        }
        return;
    }
    let removed_compared: Vec<Compared> = removed.iter().map(|line| Compared::new(line)).collect();
    let added_compared: Vec<Compared> = added.iter().map(|line| Compared::new(line)).collect();
    let similarity: Vec<Vec<f64>> =
        removed_compared.iter().map(|ours| added_compared.iter().map(|theirs| ours.similarity(theirs)).collect()).collect();
    // best[i][j]: the largest summed similarity aligning removed[i..] with added[j..].
    let mut best = vec![vec![0.0f64; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let paired = if similarity[i][j] >= PAIRED_SIMILARITY { similarity[i][j] + best[i + 1][j + 1] } else { 0.0 };
            best[i][j] = paired.max(best[i + 1][j]).max(best[i][j + 1]);
        }
    }
    // The pairs, in order; the lines between two pairs go removed first, then added.
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if similarity[i][j] >= PAIRED_SIMILARITY && best[i][j] == similarity[i][j] + best[i + 1][j + 1] {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if best[i][j] == best[i + 1][j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    let (mut next_removed, mut next_added) = (0, 0);
    for (i, j) in pairs.into_iter().chain(std::iter::once((n, m))) {
        out.extend(removed[next_removed..i].iter().map(|line| format!("-{line}")));
        out.extend(added[next_added..j].iter().map(|line| format!("+{line}")));
        if i < n && j < m {
            out.push(format!("-{}", removed[i]));
            out.push(format!("+{}", added[j]));
        }
        (next_removed, next_added) = (i + 1, j + 1);
    }
}

/// What a changed line is compared by: the pairs of neighbouring characters of its text, and
/// the pairs of neighbouring tokens of its shape (each name a `w`, each number a `0`, other
/// characters as they are, blanks dropped). Its similarity to another line is the mean of the
/// two Dice coefficients: the text alone rates a renamed line (`total = 0`, `amount = 0`)
/// below a line of prose sharing a long name, the shape alone cannot tell two assignments
/// apart.
struct Compared {
    text: Vec<(char, char)>,
    shape: Vec<(char, char)>,
}

impl Compared {
    fn new(line: &str) -> Compared {
        let line: String = line.trim().chars().take(COMPARED_CHARS).collect();
        let mut text = Vec::new();
        for ch in line.chars() {
            let ch = if ch.is_whitespace() { ' ' } else { ch };
            if !(ch == ' ' && text.last() == Some(&' ')) {
                text.push(ch);
            }
        }
        let mut shape = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch.is_whitespace() {
                continue;
            }
            let word = ch.is_alphabetic() || ch == '_';
            if word || ch.is_ascii_digit() {
                while chars.next_if(|next| next.is_alphanumeric() || *next == '_' || (!word && *next == '.')).is_some() {}
                shape.push(if word { 'w' } else { '0' });
            } else {
                shape.push(ch);
            }
        }
        Compared { text: neighbour_pairs(&text), shape: neighbour_pairs(&shape) }
    }

    fn similarity(&self, other: &Compared) -> f64 {
        (dice(&self.text, &other.text) + dice(&self.shape, &other.shape)) / 2.0
    }
}

/// The sorted pairs of neighbouring items, the sequence framed by a start and an end mark so
/// that a sequence of one item still has pairs (`}` and `)` share none).
fn neighbour_pairs(items: &[char]) -> Vec<(char, char)> {
    let framed: Vec<char> = std::iter::once('\u{2}').chain(items.iter().copied()).chain(std::iter::once('\u{3}')).collect();
    let mut pairs: Vec<(char, char)> = framed.windows(2).map(|pair| (pair[0], pair[1])).collect();
    pairs.sort_unstable();
    pairs
}

/// Dice coefficient of two sorted multisets of pairs (never empty: see [`neighbour_pairs`]): 1
/// for the same sequence, 0 for sequences with no pair in common.
fn dice(ours: &[(char, char)], theirs: &[(char, char)]) -> f64 {
    let shared = periodic_core::names::shared_count(ours, theirs);
    (2 * shared) as f64 / (ours.len() + theirs.len()) as f64
}

/// Lines `start..=end` (1-based) of a file on disk.
pub fn read_lines(path: &Path, start: u32, end: u32) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let lines: Vec<&str> = text.lines().skip(start.saturating_sub(1) as usize).take((end + 1).saturating_sub(start) as usize).collect();
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_diff_marks_changed_lines_only() {
        let diff = line_diff(&["a", "b", "c"], &["a", "x", "c"], 10);
        assert_eq!(diff, " a\n-b\n+x\n c\n");
        assert_eq!(
            line_diff(&["p = f(x)", "q"], &["r.close()", "s = g(y)"], 10),
            "+r.close()\n-p = f(x)\n+s = g(y)\n-q\n",
            "a line pairs with the alike line, not with the one at its position"
        );
        assert_eq!(
            line_diff(&["total = 0", "count = 0"], &["amount = 0", "number = 0"], 10),
            "-total = 0\n+amount = 0\n-count = 0\n+number = 0\n",
            "renamed lines pair up"
        );
        assert!(line_diff(&["a"; 30], &["b"; 30], 5).ends_with("… 55 more lines\n"));
    }

    /// The shape of the reported hover: a four-line docstring here, a one-line one there.
    fn docstring_copies() -> (Vec<&'static str>, Vec<&'static str>) {
        let ours = vec![
            "def get_prepopulated_fields(self, request, obj=None):",
            "    \"\"\"",
            "    Create a list of prepopulated_fields for the admin form,",
            "    one entry per field that has its own slug.",
            "    \"\"\"",
            "    fields = []",
            "    for field in self.prepopulated_fields:",
            "        fields.append(field)",
            "    return fields",
        ];
        let theirs = vec![
            "def get_prepopulated_fields(self, request, obj=None):",
            "    \"\"\"Create a list of prepopulated_fields.\"\"\"",
            "    fields = []",
            "    for field in self.prepopulated_fields:",
            "        fields.append(field)",
            "    return fields",
        ];
        (ours, theirs)
    }

    #[test]
    fn lines_after_docstrings_of_different_lengths_stay_aligned() {
        let (ours, theirs) = docstring_copies();
        let diff = line_diff(&ours, &theirs, 40);
        let lines: Vec<&str> = diff.lines().collect();
        for equal in ["    fields = []", "    for field in self.prepopulated_fields:", "        fields.append(field)", "    return fields"] {
            assert!(lines.contains(&format!(" {equal}").as_str()), "{equal:?} is shown as unchanged:\n{diff}");
            assert!(!lines.contains(&format!("-{equal}").as_str()) && !lines.contains(&format!("+{equal}").as_str()), "{equal:?} is not changed:\n{diff}");
        }
        assert_eq!(lines.iter().filter(|line| line.starts_with('-')).count(), 4, "the long docstring's lines are removed:\n{diff}");
        assert_eq!(lines.iter().filter(|line| line.starts_with('+')).count(), 1, "the short docstring is added:\n{diff}");
        assert_eq!(lines.last(), Some(&"     return fields"), "{diff}");
    }

    #[test]
    fn changed_lines_pair_with_their_counterparts_not_by_position() {
        // A near-copy: the same docstring shapes, and the variable renamed, so no line after
        // the signature is equal and the whole body is one hunk.
        let (ours, _) = docstring_copies();
        let theirs = [
            "def get_prepopulated_names(self, request, obj=None):",
            "    \"\"\"Create a list of prepopulated_fields.\"\"\"",
            "    names = []",
            "    for name in self.prepopulated_fields:",
            "        names.append(name)",
            "    return names",
        ];
        let diff = line_diff(&ours, &theirs, 40);
        let lines: Vec<&str> = diff.lines().collect();
        let after = |line: &str| lines.iter().position(|candidate| *candidate == line).and_then(|index| lines.get(index + 1)).copied();
        assert_eq!(after("-    fields = []"), Some("+    names = []"), "{diff}");
        assert_eq!(after("-    for field in self.prepopulated_fields:"), Some("+    for name in self.prepopulated_fields:"), "{diff}");
        assert_eq!(after("-        fields.append(field)"), Some("+        names.append(name)"), "{diff}");
        assert_eq!(after("-    return fields"), Some("+    return names"), "{diff}");
        assert_eq!(after("-    Create a list of prepopulated_fields for the admin form,"), Some("+    \"\"\"Create a list of prepopulated_fields.\"\"\""), "{diff}");
        // The signature's pair, five docstring lines (four here, one there), the body's pairs.
        assert_eq!(lines.len(), 2 + 5 + 2 * 4, "no line is shown twice or lost:\n{diff}");
    }

    #[test]
    fn a_hunk_past_the_comparison_budget_is_paired_by_position() {
        let ours: Vec<String> = (0..200).map(|line| format!("    left_{line} = compute({line})")).collect();
        let theirs: Vec<String> = (0..150).map(|line| format!("    right_{line} = other({line}, {line})")).collect();
        assert!(ours.len() * theirs.len() > MOST_COMPARED_PAIRS);
        let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
        let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
        let diff = line_diff(&ours, &theirs, 1000);
        let lines: Vec<&str> = diff.lines().collect();
        assert_eq!(lines.len(), 350, "every line once");
        assert_eq!(&lines[..2], &["-    left_0 = compute(0)", "+    right_0 = other(0, 0)"]);
        assert_eq!(lines[349], "-    left_199 = compute(199)");
    }
}
