//! The HTML renderer of a scan report: one self-contained page (inline CSS and script, no
//! network) showing the codebase's "periodic table", one tile per pattern, and the code of
//! each pattern's members side by side. The code is read from the files under the scan
//! root while rendering, so the page needs nothing but itself to be read later.
//!
//! The page's script and style live beside this file (`html/report.js`, `html/report.css`)
//! and are compiled in; the report data travels as one JSON block the script reads.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Component, Path};

use anyhow::Context;
use serde::Serialize;

use super::{Location, Pattern, Report};

const PAGE_STYLE: &str = include_str!("html/report.css");
const PAGE_SCRIPT: &str = include_str!("html/report.js");

/// Lines of code shown per member; longer members end with a note of what was left out.
const MAX_LINES_PER_MEMBER: usize = 400;
/// Characters kept per line, so one minified line cannot swell the page.
const MAX_CHARS_PER_LINE: usize = 400;
/// Members shown side by side with their code; further members are listed by location.
const MAX_MEMBERS_WITH_CODE: usize = 6;
/// Total code embedded in one page. Past it, members are listed without code so a report
/// of a very large tree stays small enough for a browser to open.
const MAX_EMBEDDED_CODE_BYTES: usize = 24 * 1024 * 1024;

/// Renders `report` as one HTML page. Member code is read from files under `root`; a file
/// that cannot be read leaves its member without code and says why, it never fails the render.
pub fn render(report: &Report, root: &Path) -> anyhow::Result<String> {
    let root_name = root_display_name(root);
    let data = page_data(report, root, &root_name);
    let data_json = serde_json::to_string(&data).context("cannot serialise the HTML report data")?;

    let mut page = String::with_capacity(data_json.len() + PAGE_STYLE.len() + PAGE_SCRIPT.len() + 8192);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // The page must never reach the network: everything it needs is inline.
    page.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n",
    );
    let _ = writeln!(page, "<title>Periodic table of {}</title>", escape_html(&root_name));
    let _ = writeln!(page, "<style>\n{PAGE_STYLE}</style>\n</head>");
    page.push_str("<body data-colour=\"language\">\n");
    write_header(&mut page, report, &root_name);
    page.push_str(CONTROLS_AND_PANELS);
    page.push_str("<script type=\"application/json\" id=\"periodic-data\">");
    page.push_str(&escape_json_for_script(&data_json));
    page.push_str("</script>\n");
    let _ = writeln!(page, "<script>\n{PAGE_SCRIPT}</script>\n</body>\n</html>");
    Ok(page)
}

/// Everything between the header and the data: filled in by the script.
const CONTROLS_AND_PANELS: &str = r#"<section id="controls" aria-label="Filter and colour">
<input id="filter" type="search" placeholder="Filter by name, path or language  ( / )" autocomplete="off" spellcheck="false" aria-label="Filter patterns">
<fieldset id="kinds"><legend>Kinds</legend>
<label title="Type-1: identical apart from layout and comments"><input type="checkbox" name="kind" value="T1" checked> T1 exact</label>
<label title="Type-2: identifiers, literals or types renamed"><input type="checkbox" name="kind" value="T2" checked> T2 renamed</label>
<label title="Type-3: statements added, removed or changed"><input type="checkbox" name="kind" value="T3" checked> T3 near-miss</label>
</fieldset>
<fieldset id="colour-by"><legend>Colour</legend>
<label><input type="radio" name="colour" value="language" checked> language</label>
<label><input type="radio" name="colour" value="kind"> kind</label>
</fieldset>
<label id="sort-label">Sort <select id="sort" aria-label="Sort patterns">
<option value="lines">duplicated lines</option><option value="copies">copies</option>
<option value="similarity">similarity</option><option value="name">name</option>
</select></label>
<span id="shown-count" aria-live="polite"></span>
<div id="legend" aria-label="Legend"></div>
</section>
<main>
<div id="table" role="list" aria-label="Patterns"></div>
<p id="empty" hidden></p>
<noscript><p class="notice">This report draws its table with JavaScript; enable it to see the patterns.</p></noscript>
</main>
<aside id="detail" hidden aria-label="Pattern detail"></aside>
"#;

fn write_header(page: &mut String, report: &Report, root_name: &str) {
    let stats = &report.stats;
    page.push_str("<header id=\"summary\">\n<div class=\"title\">\n");
    let _ = writeln!(page, "<h1>Periodic table of <span class=\"root\">{}</span></h1>", escape_html(root_name));
    let _ = writeln!(
        page,
        "<p class=\"subtitle\">Recurring code shapes, one tile per pattern. Written by periodic {}.</p>",
        escape_html(&report.tool_version)
    );
    page.push_str("</div>\n<dl class=\"stats\">\n");
    let figures = [
        ("files", "Files", group_thousands(stats.files)),
        ("lines", "Lines", group_thousands(stats.lines)),
        ("duplicated-lines", "Duplicated lines", group_thousands(stats.duplicated_lines)),
        ("duplication", "Duplication", format!("{:.1}%", stats.duplication_percent)),
        ("patterns", "Patterns", group_thousands(report.patterns.len() as u64)),
        ("pairs", "Clone pairs", group_thousands(stats.clone_pairs)),
    ];
    for (key, label, value) in figures {
        let _ = writeln!(page, "<div><dt>{label}</dt><dd id=\"stat-{key}\">{value}</dd></div>");
    }
    page.push_str("</dl>\n<div id=\"language-bar\" aria-label=\"Lines per language\"></div>\n</header>\n");
}

#[derive(Serialize)]
struct PageData<'a> {
    root_name: &'a str,
    tool_version: &'a str,
    languages: Vec<PageLanguage<'a>>,
    patterns: Vec<PagePattern<'a>>,
    max_lines_per_member: usize,
}

#[derive(Serialize)]
struct PageLanguage<'a> {
    name: &'a str,
    files: u64,
    lines: u64,
    duplicated_lines: u64,
}

#[derive(Serialize)]
struct PagePattern<'a> {
    /// Rank in the report (largest first), shown like an atomic number.
    number: usize,
    id: &'a str,
    name: &'a str,
    symbol: String,
    kind: &'a str,
    similarity: f64,
    languages: &'a [String],
    duplicated_lines: u64,
    /// 1 (smallest) to 4 (largest): the tile's size class, from duplicated lines.
    size: u8,
    members: Vec<PageMember<'a>>,
}

#[derive(Serialize)]
struct PageMember<'a> {
    path: &'a str,
    start_line: u32,
    end_line: u32,
    name: &'a str,
    language: &'a str,
    /// The member's lines joined with `\n`, when embedded.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    /// Lines of the member left out of `code` because of `MAX_LINES_PER_MEMBER`.
    #[serde(skip_serializing_if = "is_zero")]
    omitted_lines: usize,
    /// Why `code` is missing, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    no_code_reason: Option<String>,
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

fn page_data<'a>(report: &'a Report, root: &Path, root_name: &'a str) -> PageData<'a> {
    let mut sources = SourceFiles::new(root);
    let mut code_budget = MAX_EMBEDDED_CODE_BYTES;
    let (min_lines, max_lines) = report
        .patterns
        .iter()
        .map(|pattern| pattern.duplicated_lines.max(1))
        .fold((u64::MAX, 0), |(low, high), lines| (low.min(lines), high.max(lines)));

    let symbols = element_symbols(report.patterns.iter().map(|pattern| pattern.name.as_str()));
    let patterns = report
        .patterns
        .iter()
        .enumerate()
        .map(|(index, pattern)| PagePattern {
            number: index + 1,
            id: &pattern.id,
            name: &pattern.name,
            symbol: symbols[index].clone(),
            kind: &pattern.kind,
            similarity: pattern.similarity,
            languages: &pattern.languages,
            duplicated_lines: pattern.duplicated_lines,
            size: tile_size(pattern.duplicated_lines, min_lines, max_lines),
            members: page_members(pattern, &mut sources, &mut code_budget),
        })
        .collect();

    let languages = report
        .stats
        .languages
        .iter()
        .map(|(name, language)| PageLanguage {
            name,
            files: language.files,
            lines: language.lines,
            duplicated_lines: language.duplicated_lines,
        })
        .collect();

    PageData {
        root_name,
        tool_version: &report.tool_version,
        languages,
        patterns,
        max_lines_per_member: MAX_LINES_PER_MEMBER,
    }
}

fn page_members<'a>(pattern: &'a Pattern, sources: &mut SourceFiles, code_budget: &mut usize) -> Vec<PageMember<'a>> {
    pattern
        .members
        .iter()
        .enumerate()
        .map(|(index, member)| {
            let mut page_member = PageMember {
                path: &member.path,
                start_line: member.start_line,
                end_line: member.end_line,
                name: &member.name,
                language: &member.language,
                code: None,
                omitted_lines: 0,
                no_code_reason: None,
            };
            if index >= MAX_MEMBERS_WITH_CODE {
                return page_member;
            }
            if *code_budget == 0 {
                page_member.no_code_reason = Some("left out: the report reached its size limit".to_string());
                return page_member;
            }
            match sources.member_code(member) {
                Ok((code, omitted_lines)) => {
                    *code_budget = code_budget.saturating_sub(code.len());
                    page_member.code = Some(code);
                    page_member.omitted_lines = omitted_lines;
                }
                Err(reason) => page_member.no_code_reason = Some(reason),
            }
            page_member
        })
        .collect()
}

/// The files members come from, each read once however many members it holds.
struct SourceFiles<'r> {
    root: &'r Path,
    files_by_path: HashMap<String, Result<SourceText, String>>,
}

/// A file's text with the byte offset where each line starts: one allocation per file
/// rather than one per line, since a large tree can have thousands of files with members.
struct SourceText {
    text: String,
    line_starts: Vec<usize>,
}

impl SourceText {
    fn new(text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(index, _)| index + 1).filter(|start| *start < text.len()));
        if text.is_empty() {
            line_starts.clear();
        }
        Self { text, line_starts }
    }

    fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Line `number` (1-based) without its line ending.
    fn line(&self, number: usize) -> &str {
        let start = self.line_starts[number - 1];
        let end = self.line_starts.get(number).copied().unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches('\n').trim_end_matches('\r')
    }
}

impl<'r> SourceFiles<'r> {
    fn new(root: &'r Path) -> Self {
        Self { root, files_by_path: HashMap::new() }
    }

    /// The member's lines (capped) and how many were left out, or why there are none.
    fn member_code(&mut self, member: &Location) -> Result<(String, usize), String> {
        let root = self.root;
        let source = self
            .files_by_path
            .entry(member.path.clone())
            .or_insert_with(|| read_source(root, &member.path))
            .as_ref()
            .map_err(Clone::clone)?;
        let start = member.start_line.max(1) as usize;
        let end = (member.end_line as usize).max(start);
        if start > source.line_count() {
            return Err(format!("lines {start}-{end} are past the end of the file ({} lines)", source.line_count()));
        }
        let end = end.min(source.line_count());
        let shown_end = end.min(start + MAX_LINES_PER_MEMBER - 1);
        let mut code = String::new();
        for number in start..=shown_end {
            if number > start {
                code.push('\n');
            }
            code.push_str(capped_line(source.line(number)));
        }
        Ok((code, end - shown_end))
    }
}

fn read_source(root: &Path, relative: &str) -> Result<SourceText, String> {
    let relative_path = Path::new(relative);
    // Report paths are relative to the root; anything else is not read, so a crafted
    // report cannot make the page embed files from elsewhere.
    if relative_path.components().any(|component| !matches!(component, Component::Normal(_) | Component::CurDir)) {
        return Err("path is not inside the scanned directory".to_string());
    }
    let bytes = std::fs::read(root.join(relative_path)).map_err(|error| format!("cannot read the file: {error}"))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    };
    Ok(SourceText::new(text))
}

fn capped_line(line: &str) -> &str {
    match line.char_indices().nth(MAX_CHARS_PER_LINE) {
        Some((byte_index, _)) => &line[..byte_index],
        None => line,
    }
}

/// Tile size class on a log scale between the smallest and largest pattern, so one huge
/// pattern does not flatten every other tile to the same size. The scale spans at least a
/// factor of `MIN_SIZE_RANGE`, so patterns of nearly equal size get nearly equal tiles.
fn tile_size(duplicated_lines: u64, min_lines: u64, max_lines: u64) -> u8 {
    const MIN_SIZE_RANGE: f64 = 16.0;
    let high = (max_lines.max(1) as f64).ln();
    let low = (min_lines.max(1) as f64).ln().min(high - MIN_SIZE_RANGE.ln());
    let position = ((duplicated_lines.max(1) as f64).ln() - low) / (high - low);
    match position {
        p if p >= 0.85 => 4,
        p if p >= 0.55 => 3,
        p if p >= 0.25 => 2,
        _ => 1,
    }
}

/// Chemical-element-like symbols for the patterns in table order: the initials of a name's
/// first two words (`parse_args` → `Pa`, `loadUserConfig` → `Lu`), or its first two
/// letters. Each follows its name and, where the name's
/// letters allow, differs from every symbol before it (a neighbour with the same initials
/// takes another letter of its name: `parse-args` `Pa`, then `parse-arguments` `Pr`).
fn element_symbols<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    names
        .map(|name| {
            let candidates = symbol_candidates(name);
            let symbol = candidates.iter().find(|symbol| !taken.contains(*symbol)).or(candidates.first()).cloned().unwrap_or_else(|| "#".to_string());
            taken.insert(symbol.clone());
            symbol
        })
        .collect()
}

/// A name's possible symbols, best first: the initials of its first two words, the first
/// initial with a later word's, then with any later letter of the name.
fn symbol_candidates(name: &str) -> Vec<String> {
    let words: Vec<Vec<char>> = periodic_core::pattern::split_words(name).iter().map(|word| word.chars().collect()).collect();
    let Some(first_word) = words.first() else { return Vec::new() };
    let first = first_word[0];
    let symbol = |second: Option<char>| -> String {
        let mut symbol: String = first.to_uppercase().collect();
        symbol.extend(second.into_iter().flat_map(char::to_lowercase));
        symbol
    };
    let mut candidates: Vec<String> = Vec::new();
    let mut push = |candidate: String| {
        if !candidates.contains(&candidate) {
            candidates.push(candidate);
        }
    };
    match words.as_slice() {
        [only] if only.len() == 1 => push(symbol(None)),
        [only] => push(symbol(Some(only[1]))),
        _ => {}
    }
    for word in words.iter().skip(1) {
        push(symbol(Some(word[0])));
    }
    for (index, word) in words.iter().enumerate() {
        for &letter in word.iter().skip(usize::from(index == 0)) {
            push(symbol(Some(letter)));
        }
    }
    candidates
}

fn root_display_name(root: &Path) -> String {
    let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    canonical
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| canonical.display().to_string())
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Makes serialised JSON safe inside a `<script>` element: `<`, `>` and `&` can only occur
/// inside JSON strings, where their `\u` escapes mean the same, so `</script>` and `<!--`
/// can never close or confuse the element. U+2028/2029 are escaped for older parsers.
pub(crate) fn escape_json_for_script(json: &str) -> String {
    let mut escaped = String::with_capacity(json.len() + 64);
    for character in json.chars() {
        match character {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{LanguageStats, Stats};
    use std::collections::BTreeMap;

    fn member(path: &str, start_line: u32, end_line: u32, name: &str, language: &str) -> Location {
        Location {
            path: path.to_string(),
            start_line,
            end_line,
            name: name.to_string(),
            unit: "function".to_string(),
            language: language.to_string(),
        }
    }

    fn pattern(id: &str, name: &str, kind: &str, duplicated_lines: u64, members: Vec<Location>) -> Pattern {
        let mut languages: Vec<String> = members.iter().map(|m| m.language.clone()).collect();
        languages.sort();
        languages.dedup();
        Pattern {
            id: id.to_string(),
            name: name.to_string(),
            auto_name: name.to_string(),
            user_name: None,
            note: None,
            kind: kind.to_string(),
            similarity: 0.9,
            languages,
            duplicated_lines,
            members,
        }
    }

    fn report(patterns: Vec<Pattern>) -> Report {
        let mut languages = BTreeMap::new();
        languages.insert("python".to_string(), LanguageStats { files: 2, lines: 1200, units: 9, duplicated_lines: 24 });
        Report {
            version: crate::report::REPORT_FORMAT_VERSION.to_string(),
            tool_version: "0.1.0".to_string(),
            stats: Stats {
                files: 2,
                lines: 1200,
                duplicated_lines: 24,
                duplication_percent: 2.0,
                patterns: patterns.len() as u64,
                clone_pairs: 1,
                languages,
                ..Stats::default()
            },
            patterns,
            pairs: Vec::new(),
        }
    }

    /// A scan root holding two Python files that share a function, one with hostile text.
    fn sample_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        let shared = "def total(items):\n    result = 0\n    for item in items:\n        result += item.price\n    return result\n";
        std::fs::create_dir_all(root.path().join("src")).expect("mkdir");
        std::fs::write(root.path().join("src/a.py"), format!("import os\n\n{shared}")).expect("write a");
        let hostile = "def show(x):\n    html = \"</script><script>alert(1)</script> & <b>\"\n    return html\n";
        std::fs::write(root.path().join("src/b.py"), format!("{shared}\n{hostile}")).expect("write b");
        root
    }

    fn sample_report() -> Report {
        report(vec![
            pattern(
                "P-aaaa0001",
                "total </script><img src=x onerror=alert(1)>",
                "T1",
                10,
                vec![member("src/a.py", 3, 7, "total", "python"), member("src/b.py", 1, 5, "total", "python")],
            ),
            pattern(
                "P-aaaa0002",
                "show_html",
                "T3",
                6,
                vec![member("src/b.py", 7, 9, "show", "python"), member("src/missing.py", 1, 3, "gone", "python")],
            ),
        ])
    }

    /// The JSON data block of a rendered page, parsed.
    fn embedded_data(page: &str) -> serde_json::Value {
        let opening = "<script type=\"application/json\" id=\"periodic-data\">";
        let start = page.find(opening).expect("data block") + opening.len();
        let length = page[start..].find("</script>").expect("end of data block");
        serde_json::from_str(&page[start..start + length]).expect("data block is JSON")
    }

    #[test]
    fn page_is_self_contained() {
        let root = sample_root();
        let page = render(&sample_report(), root.path()).expect("render");
        assert!(page.starts_with("<!DOCTYPE html>"));
        // Member code may mention URLs; everything around the data block may not.
        let data_start = page.find("<script type=\"application/json\"").expect("data block");
        let data_end = data_start + page[data_start..].find("</script>").expect("end of data block");
        let outside_data = format!("{}{}", &page[..data_start], &page[data_end..]);
        assert!(outside_data.contains("function openDetail"), "the inline script is part of what is checked");
        for external in ["http://", "https://", "<link", " src=", "@import", "url(", "fetch(", "XMLHttpRequest"] {
            assert!(!outside_data.contains(external), "page refers to something outside itself: {external}");
        }
        assert!(page.contains("default-src 'none'"), "a Content-Security-Policy forbids network loads");
        assert_eq!(page.matches("<script").count(), 2, "the data block and the inline script");
    }

    #[test]
    fn data_block_cannot_be_closed_by_report_text() {
        let root = sample_root();
        let page = render(&sample_report(), root.path()).expect("render");
        // The pattern name and b.py's code both hold `</script>`: neither may appear raw.
        assert_eq!(page.matches("</script>").count(), 2, "only the two real closing tags");
        assert!(!page.contains("<img src=x"));
        let data = embedded_data(&page);
        assert_eq!(data["patterns"][0]["name"], "total </script><img src=x onerror=alert(1)>");
        let hostile_code = data["patterns"][1]["members"][0]["code"].as_str().expect("code");
        assert!(hostile_code.contains("\"</script><script>alert(1)</script> & <b>\""), "{hostile_code}");
    }

    #[test]
    fn members_carry_their_code_read_from_the_root() {
        let root = sample_root();
        let data = embedded_data(&render(&sample_report(), root.path()).expect("render"));
        let first = &data["patterns"][0]["members"];
        let expected = "def total(items):\n    result = 0\n    for item in items:\n        result += item.price\n    return result";
        assert_eq!(first[0]["code"], expected);
        assert_eq!(first[1]["code"], expected);
        assert_eq!(first[0]["start_line"], 3);
        let missing = &data["patterns"][1]["members"][1];
        assert!(missing.get("code").is_none());
        assert!(missing["no_code_reason"].as_str().is_some_and(|reason| reason.contains("cannot read")));
    }

    #[test]
    fn header_shows_escaped_stats() {
        let root = tempfile::tempdir().expect("tempdir");
        let named_root = root.path().join("a<b>&c");
        std::fs::create_dir(&named_root).expect("mkdir");
        let page = render(&sample_report(), &named_root).expect("render");
        assert!(page.contains("<title>Periodic table of a&lt;b&gt;&amp;c</title>"));
        assert!(page.contains("<dd id=\"stat-lines\">1,200</dd>"));
        assert!(page.contains("<dd id=\"stat-duplication\">2.0%</dd>"));
        assert!(page.contains("<dd id=\"stat-patterns\">2</dd>"));
        assert!(!page.contains("a<b>&c"));
    }

    #[test]
    fn long_members_and_long_lines_are_capped() {
        let root = tempfile::tempdir().expect("tempdir");
        let body: String = (1..=1000).map(|n| format!("x{n} = {}\n", "y".repeat(if n == 2 { 5000 } else { 3 }))).collect();
        std::fs::write(root.path().join("long.py"), &body).expect("write");
        let long = report(vec![pattern(
            "P-long",
            "long",
            "T1",
            2000,
            vec![member("long.py", 1, 1000, "", "python"), member("long.py", 1, 1000, "", "python")],
        )]);
        let data = embedded_data(&render(&long, root.path()).expect("render"));
        let shown = &data["patterns"][0]["members"][0];
        let code = shown["code"].as_str().expect("code");
        assert_eq!(code.lines().count(), MAX_LINES_PER_MEMBER);
        assert_eq!(shown["omitted_lines"], 1000 - MAX_LINES_PER_MEMBER);
        assert_eq!(code.lines().nth(1).map(|line| line.chars().count()), Some(MAX_CHARS_PER_LINE));
    }

    #[test]
    fn paths_outside_the_root_are_not_read() {
        let outer = tempfile::tempdir().expect("tempdir");
        std::fs::write(outer.path().join("secret.txt"), "password\n").expect("write");
        let root = outer.path().join("root");
        std::fs::create_dir(&root).expect("mkdir");
        let escaping = report(vec![pattern(
            "P-out",
            "out",
            "T1",
            2,
            vec![member("../secret.txt", 1, 1, "", "python"), member("/etc/hostname", 1, 1, "", "python")],
        )]);
        let page = render(&escaping, &root).expect("render");
        assert!(!page.contains("password"));
        let data = embedded_data(&page);
        for index in 0..2 {
            assert!(data["patterns"][0]["members"][index].get("code").is_none());
        }
    }

    #[test]
    fn empty_report_renders_an_empty_table() {
        let root = tempfile::tempdir().expect("tempdir");
        let page = render(&report(Vec::new()), root.path()).expect("render");
        let data = embedded_data(&page);
        assert_eq!(data["patterns"].as_array().map(Vec::len), Some(0));
        assert!(page.contains("id=\"table\""));
        assert!(page.contains("id=\"empty\""));
    }

    #[test]
    fn thousands_of_patterns_stay_within_the_code_budget() {
        let root = tempfile::tempdir().expect("tempdir");
        let file: String = (1..=60).map(|n| format!("line {n} of shared code\n")).collect();
        std::fs::write(root.path().join("big.py"), &file).expect("write");
        let patterns = (0..3000)
            .map(|n| {
                pattern(
                    &format!("P-{n:08x}"),
                    &format!("shape_{n}"),
                    ["T1", "T2", "T3"][n % 3],
                    (n as u64 % 97) + 12,
                    vec![member("big.py", 1, 60, "a", "python"), member("big.py", 1, 60, "b", "python")],
                )
            })
            .collect();
        let page = render(&report(patterns), root.path()).expect("render");
        let data = embedded_data(&page);
        let rendered = data["patterns"].as_array().expect("patterns");
        assert_eq!(rendered.len(), 3000);
        assert_eq!(rendered[2999]["number"], 3000);
        let sizes: std::collections::BTreeSet<u64> = rendered.iter().filter_map(|p| p["size"].as_u64()).collect();
        assert_eq!(sizes, [1, 2, 3, 4].into_iter().collect(), "all four tile sizes are used");
        assert!(page.len() < MAX_EMBEDDED_CODE_BYTES + 4 * 1024 * 1024, "page is {} bytes", page.len());
    }

    #[test]
    fn members_past_the_side_by_side_limit_are_listed_without_code() {
        let root = sample_root();
        let members = (0..9).map(|_| member("src/a.py", 3, 7, "total", "python")).collect();
        let many = report(vec![pattern("P-many", "many", "T1", 45, members)]);
        let data = embedded_data(&render(&many, root.path()).expect("render"));
        let members = data["patterns"][0]["members"].as_array().expect("members");
        assert_eq!(members.len(), 9);
        let with_code = members.iter().filter(|m| m.get("code").is_some()).count();
        assert_eq!(with_code, MAX_MEMBERS_WITH_CODE);
    }

    #[test]
    fn source_text_splits_lines_like_an_editor() {
        let source = SourceText::new("a\r\nb\n\nd".to_string());
        assert_eq!(source.line_count(), 4);
        assert_eq!([source.line(1), source.line(2), source.line(3), source.line(4)], ["a", "b", "", "d"]);
        assert_eq!(SourceText::new("x\n".to_string()).line_count(), 1, "a final newline ends a line");
        assert_eq!(SourceText::new(String::new()).line_count(), 0);
    }

    #[test]
    fn symbols_and_sizes() {
        let element_symbol = |name: &str| element_symbols(std::iter::once(name)).remove(0);
        assert_eq!(element_symbol("parse_args"), "Pa");
        assert_eq!(element_symbol("loadUserConfig"), "Lu");
        assert_eq!(element_symbol("x"), "X");
        assert_eq!(element_symbol("HTTPServer"), "Ht");
        assert_eq!(element_symbol("__init__"), "In");
        assert_eq!(element_symbol("ärger_über"), "Äü");
        assert_eq!(element_symbol("  "), "#");
        assert_eq!(element_symbols(["parse-args", "parse-arguments", "parse-args"].into_iter()), ["Pa", "Pr", "Ps"], "neighbours differ while the name's letters allow");
        assert_eq!(element_symbols(["x", "x"].into_iter()), ["X", "X"], "a one-letter name has one symbol");
        assert_eq!(tile_size(10, 10, 10), 4, "the largest pattern gets the largest tile");
        assert_eq!(tile_size(23, 23, 26), tile_size(26, 23, 26), "near-equal patterns, equal tiles");
        assert_eq!(tile_size(10, 10, 1000), 1);
        assert_eq!(tile_size(1000, 10, 1000), 4);
        assert!(tile_size(100, 10, 1000) > tile_size(20, 10, 1000));
        assert_eq!(group_thousands(1234567), "1,234,567");
        assert_eq!(group_thousands(12), "12");
    }
}
