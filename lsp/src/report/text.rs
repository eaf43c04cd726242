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

fn plural(count: u64, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// The report as text; `root` goes before every member's path (see `super::shown_root`).
pub fn render(report: &Report, color: bool, root: &str) -> String {
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
        if let Some(note) = &pattern.note {
            let _ = writeln!(out, "    {}", style.paint("3", note));
        }
        for member in &pattern.members {
            let name = if member.name.is_empty() { String::new() } else { format!("  {}", member.name) };
            let kind = if member.unit == "block" { style.paint("2", " (block)") } else { String::new() };
            let _ = writeln!(out, "    {root}{}:{}-{}{name}{kind}", member.path, member.start_line, member.end_line);
        }
        out.push('\n');
    }
    let stats = &report.stats;
    let skipped: u64 = stats.skipped.iter().filter(|(reason, _)| reason.as_str() != "unknown_language").map(|(_, n)| n).sum();
    if stats.files == 0 {
        let _ = writeln!(out, "no supported source files found (languages: python, javascript, typescript, java, rust, go, c, cpp, csharp, ruby)");
    }
    let _ = writeln!(
        out,
        "{}, {}, {}: {}, {}, {} ({:.2}%)",
        plural(stats.files, "file"),
        plural(stats.lines, "line"),
        plural(stats.units, "unit"),
        plural(stats.patterns, "pattern"),
        plural(stats.clone_pairs, "clone pair"),
        plural(stats.duplicated_lines, "duplicated line"),
        stats.duplication_percent
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
        // A few of them by name, the rest counted: the JSON report lists them all.
        const NAMED: usize = 5;
        let named = stats.syntax_error_files.iter().take(NAMED).map(|path| format!("{root}{path}")).collect::<Vec<_>>().join(", ");
        let rest = stats.syntax_error_files.len().saturating_sub(NAMED);
        let more = if rest > 0 { format!(" and {rest} more (all in the JSON report's `stats.syntax_error_files`)") } else { String::new() };
        let _ = writeln!(
            out,
            "{} had syntax errors (units were recovered where possible): {named}{more}",
            plural(stats.files_with_syntax_errors, "file")
        );
    }
    out
}
