//! Plain text of answers: lines of a file on disk (the closest copy's code) and a short
//! line diff between two copies.

use std::path::Path;

/// A unified-style diff of two short line lists (LCS), cut at `limit` lines.
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
    // Walk the table; changed lines are collected per hunk and printed pairwise (each line
    // here next to its counterpart there), which reads well for renamed copies.
    let mut out = Vec::new();
    let (mut removed, mut added): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let flush = |out: &mut Vec<String>, removed: &mut Vec<&str>, added: &mut Vec<&str>| {
        for index in 0..removed.len().max(added.len()) {
            if let Some(line) = removed.get(index) {
                out.push(format!("-{line}"));
            }
            if let Some(line) = added.get(index) {
                out.push(format!("+{line}"));
            }
        }
        removed.clear();
        added.clear();
    };
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && ours[i].trim() == theirs[j].trim() {
            flush(&mut out, &mut removed, &mut added);
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
    flush(&mut out, &mut removed, &mut added);
    let total = out.len();
    let mut text: String = out.into_iter().take(limit).map(|line| line + "\n").collect();
    if total > limit {
        text.push_str(&format!("… {} more lines\n", total - limit));
    }
    text
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
        assert_eq!(line_diff(&["p", "q"], &["r", "s"], 10), "-p\n+r\n-q\n+s\n", "changed lines pair up");
        assert!(line_diff(&["a"; 30], &["b"; 30], 5).ends_with("… 55 more lines\n"));
    }
}
