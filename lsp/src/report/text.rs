//! The text report: patterns largest first, each with its members, then a summary. Colour
//! only on a terminal, and never when `NO_COLOR` is set.

use std::fmt::Write;
use std::io::IsTerminal;

use super::Report;

pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

pub fn render(report: &Report, color: bool) -> String {
    let style = Style { color };
    let mut out = String::new();
    for pattern in &report.patterns {
        let _ = writeln!(
            out,
            "{} {}  {} · {} members · {} lines · {} {:.0}%",
            style.paint("1;36", &pattern.id),
            style.paint("1", &pattern.name),
            pattern.languages.join(", "),
            pattern.members.len(),
            pattern.duplicated_lines,
            pattern.kind,
            pattern.similarity * 100.0
        );
        for member in &pattern.members {
            let name = if member.name.is_empty() { String::new() } else { format!("  {}", member.name) };
            let kind = if member.unit == "block" { style.paint("2", " (block)") } else { String::new() };
            let _ = writeln!(out, "    {}:{}-{}{name}{kind}", member.path, member.start_line, member.end_line);
        }
        out.push('\n');
    }
    let stats = &report.stats;
    let skipped: u64 = stats.skipped.iter().filter(|(reason, _)| reason.as_str() != "unknown_language").map(|(_, n)| n).sum();
    let _ = writeln!(
        out,
        "{} files, {} lines, {} units: {} patterns, {} clone pairs, {} duplicated lines ({:.2}%)",
        stats.files, stats.lines, stats.units, stats.patterns, stats.clone_pairs, stats.duplicated_lines, stats.duplication_percent
    );
    if skipped > 0 {
        let reasons: Vec<String> = stats
            .skipped
            .iter()
            .filter(|(reason, _)| reason.as_str() != "unknown_language")
            .map(|(reason, count)| format!("{count} {}", reason.replace('_', " ")))
            .collect();
        let _ = writeln!(out, "skipped: {}", reasons.join(", "));
    }
    if stats.files_with_syntax_errors > 0 {
        let _ = writeln!(out, "{} files had syntax errors (units were recovered where possible)", stats.files_with_syntax_errors);
    }
    out
}
