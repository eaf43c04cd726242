//! Edits of one file answered by `LiveIndex::clones_of_edited`, which takes over what the
//! units an edit left alone found before, checked against `LiveIndex::clones_of`, which
//! computes everything again: after every edit of a sequence the two must be equal.

use std::path::Path;

use super::LiveIndex;
use crate::config::{Config, DetectionSettings};
use crate::lang::Language;
use crate::model::CloneKind;
use crate::scan::{ScanOptions, scan};

const SUMMARIZE: &str = "def summarize_orders(orders, tax_rate):\n    total = 0\n    count = 0\n    for order in orders:\n        if order.status == \"paid\":\n            total += order.amount * (1 + tax_rate)\n            count += 1\n    average = total / count if count else 0\n    return {\"total\": round(total, 2), \"count\": count, \"average\": average}\n";
const RENDER: &str = "def render_rows(rows, width):\n    lines = []\n    for row in rows:\n        if row.visible:\n            cells = [str(cell).ljust(width) for cell in row.cells]\n            lines.append(\" | \".join(cells))\n    header = \"-\" * (width * len(lines))\n    return \"\\n\".join([header] + lines + [header])\n";
const SETTINGS: &str = "def load_settings(path, defaults):\n    settings = dict(defaults)\n    with open(path) as handle:\n        for line in handle:\n            line = line.strip()\n            if not line or line.startswith(\"#\"):\n                continue\n            key, _, value = line.partition(\"=\")\n            settings[key.strip()] = value.strip()\n    return settings\n";
const INVENTORY: &str = "def merge_inventory(stock, incoming):\n    merged = {}\n    for item in stock:\n        merged[item.sku] = item.quantity\n    for item in incoming:\n        if item.sku in merged:\n            merged[item.sku] += item.quantity\n        else:\n            merged[item.sku] = item.quantity\n    return sorted(merged.items())\n";
const FIBONACCI: &str = "def fibonacci_table(limit):\n    table = [0, 1]\n    while len(table) < limit:\n        table.append(table[-1] + table[-2])\n    evens = [value for value in table if value % 2 == 0]\n    odds = [value for value in table if value % 2 == 1]\n    return {\"evens\": evens, \"odds\": odds, \"total\": sum(table)}\n";

fn config() -> Config {
    Config { detection: DetectionSettings { min_lines: 5, min_tokens: 30, ..DetectionSettings::default() }, ..Config::default() }
}

/// `source` as a method of a class: indented one level, `self` first.
fn method(source: &str) -> String {
    let with_self = source.replacen('(', "(self, ", 1);
    with_self.lines().map(|line| if line.is_empty() { String::new() } else { format!("    {line}\n") }).collect()
}

/// The edited file: near-miss copies of functions of the other files, a class whose
/// methods are copies too, and an unrelated function.
fn main_text() -> String {
    let report = format!(
        "class Report:\n    def __init__(self, title, rows):\n        self.title = title\n        self.rows = rows\n        self.width = max(len(str(row)) for row in rows) if rows else 0\n        self.footer = None\n        self.printed = False\n\n{}\n{}",
        method(&RENDER.replace("lines.append(", "lines.insert(0, ")),
        method(&SUMMARIZE.replace("count += 1", "count += 1\n            print(order)")),
    );
    let settings = SETTINGS.replace("settings[key.strip()] = value.strip()", "settings[key.strip()] = value.strip()\n            print(key)");
    let inventory = INVENTORY.replace("return sorted(merged.items())", "print(len(merged))\n    return sorted(merged.items())");
    format!("import os\n\n\n{report}\n\n{settings}\n\n{inventory}\n\n{FIBONACCI}")
}

fn lib_b_text() -> String {
    format!("{}\n\n{}\n\n{RENDER}", SUMMARIZE.replace("total = 0", "total = 0\n    seen = set()"), SETTINGS.replace("continue", "pass"))
}

fn workspace(dir: &Path) -> LiveIndex {
    std::fs::write(dir.join("lib_a.py"), format!("{SUMMARIZE}\n\n{SETTINGS}\n\n{INVENTORY}")).expect("write");
    std::fs::write(dir.join("lib_b.py"), lib_b_text()).expect("write");
    std::fs::write(dir.join("main.py"), main_text()).expect("write");
    let outcome = scan(ScanOptions { root: dir.to_path_buf(), config: config(), use_index: false, progress: None, team: None }).expect("scan");
    LiveIndex::new(dir, config(), outcome.files)
}

/// An edit of the text; `None` when it does not apply to it.
type Edit = fn(&str) -> Option<String>;

fn replace_once(text: &str, from: &str, to: &str) -> Option<String> {
    text.contains(from).then(|| text.replacen(from, to, 1))
}

/// The kinds of edit the sequence draws from, with their names.
const EDITS: &[(&str, Edit)] = &[
    ("insert lines above a function", |text| replace_once(text, "def load_settings", "LIMIT = 10\nNAMES = [\"a\", \"b\"]\n\n\ndef load_settings")),
    ("change one statement of one function", |text| replace_once(text, "line = line.strip()", "line = line.strip().lower()")),
    ("change it back", |text| replace_once(text, "line = line.strip().lower()", "line = line.strip()")),
    ("rename a function", |text| replace_once(text, "def merge_inventory(", "def merge_stock(")),
    ("delete a function", |text| replace_once(text, FIBONACCI, "")),
    ("add a function back", |text| (!text.contains(FIBONACCI)).then(|| format!("{text}\n\n{FIBONACCI}"))),
    ("duplicate a function inside the file", |text| (!text.contains("def load_settings_again")).then(|| format!("{text}\n\n{}", SETTINGS.replace("load_settings", "load_settings_again")))),
    ("make the duplicate a near-miss of its original", |text| {
        let at = text.find("def load_settings_again")?;
        let (head, tail) = text.split_at(at);
        (!tail.contains("settings[\"source\"]")).then(|| format!("{head}{}", tail.replacen("settings = dict(defaults)", "settings = dict(defaults)\n    settings[\"source\"] = path", 1)))
    }),
    ("change a statement of a method", |text| replace_once(text, "lines.insert(0, ", "lines.insert(1, ")),
    ("insert a statement into a method", |text| replace_once(text, "        header = ", "        _periodic_bench = 0\n        header = ")),
    ("remove the inserted statement", |text| replace_once(text, "        _periodic_bench = 0\n", "")),
    ("insert a statement calling a new name", |text| replace_once(text, "    merged = {}\n", "    merged = {}\n    audit_trail(stock)\n")),
    ("turn the last function into a near-miss of an earlier one", |text| {
        replace_once(text, FIBONACCI, &SETTINGS.replace("load_settings", "load_options").replace("return settings", "settings.pop(\"debug\", None)\n    return settings"))
    }),
    ("turn it back", |text| replace_once(text, &SETTINGS.replace("load_settings", "load_options").replace("return settings", "settings.pop(\"debug\", None)\n    return settings"), FIBONACCI)),
    ("make a function too small to be a unit", |text| replace_once(text, FIBONACCI, "def fibonacci_table(limit):\n    return []\n")),
];

/// Applies `edit` to the edited file and checks the reusing answer against a full one.
fn check(live: &mut LiveIndex, text: &str, step: &str) {
    live.update_text("main.py", Language::Python, text);
    let reusing = live.clones_of_edited("main.py");
    let full = live.clones_of("main.py");
    assert_eq!(reusing, full, "after: {step}");
}

#[test]
fn every_edit_of_a_sequence_is_answered_as_a_full_recompute_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut live = workspace(dir.path());
    let mut text = main_text();
    check(&mut live, &text, "opening the file");
    let opened = live.clones_of("main.py");
    assert!(opened.iter().any(|pair| pair.kind == CloneKind::T3), "the fixture has near-miss pairs: {opened:?}");
    let mut reused_any = false;
    for (step, edit) in EDITS {
        let Some(edited) = edit(&text) else { panic!("the scripted edit applies: {step}") };
        text = edited;
        check(&mut live, &text, step);
        reused_any |= live.units_reused("main.py").is_some_and(|(reused, _)| reused > 0);
    }
    assert!(reused_any, "some edits took over the pairs of units they left alone");
    // Back to the text first opened: the pairs first found again.
    check(&mut live, &main_text(), "undoing everything");
    assert_eq!(live.clones_of_edited("main.py"), opened);
}

#[test]
fn random_sequences_of_edits_are_answered_as_a_full_recompute_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut live = workspace(dir.path());
    let mut text = main_text();
    check(&mut live, &text, "opening the file");
    // A fixed linear congruential sequence: the same edits on every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut applied = 0;
    for round in 0..120 {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let (step, edit) = EDITS[(state >> 33) as usize % EDITS.len()];
        let Some(edited) = edit(&text) else { continue };
        text = edited;
        applied += 1;
        check(&mut live, &text, &format!("{step} (round {round})"));
        if round % 40 == 39 {
            // Another file changes: what was found before is let go, and the answer is still
            // the full one.
            live.update_text("lib_b.py", Language::Python, &format!("{RENDER}\n\n{SETTINGS}"));
            check(&mut live, &text, &format!("another file changed (round {round})"));
            assert_eq!(live.units_reused("main.py").map(|(reused, _)| reused), Some(0), "nothing is taken over after another file changed");
        }
    }
    assert!(applied >= 60, "most drawn edits apply: {applied}");
}

#[test]
fn an_edit_of_one_function_verifies_only_the_units_it_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut live = workspace(dir.path());
    let text = main_text();
    check(&mut live, &text, "opening the file");
    let edited = text.replacen("        header = ", "        _periodic_bench = 0\n        header = ", 1);
    check(&mut live, &edited, "inserting a statement into a method");
    let (reused, units) = live.units_reused("main.py").expect("a memo");
    // The method and its class changed, and the method before it may meet the edited one;
    // every unit after them keeps what it found.
    assert!(reused + 3 >= units, "{reused} of {units} units reused");
}

#[test]
fn what_a_file_found_is_kept_while_another_file_is_edited_and_undone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut live = workspace(dir.path());
    // Both files open in an editor; the other one's edits are undone before the next edit
    // of this one.
    live.update_text("lib_b.py", Language::Python, &lib_b_text());
    let text = main_text();
    check(&mut live, &text, "opening the file");
    let near_miss_of_render = lib_b_text().replace("lines.append(", "lines.insert(0, ");
    live.update_text("lib_b.py", Language::Python, &near_miss_of_render);
    assert_eq!(live.clones_of_edited("lib_b.py"), live.clones_of("lib_b.py"));
    live.update_text("lib_b.py", Language::Python, &lib_b_text());
    assert_eq!(live.clones_of_edited("lib_b.py"), live.clones_of("lib_b.py"));
    let edited = text.replacen("line = line.strip()", "line = line.strip().lower()", 1);
    check(&mut live, &edited, "an edit after the other file's edit was undone");
    let (reused, units) = live.units_reused("main.py").expect("a memo");
    assert!(reused > 0, "{reused} of {units} units reused");
    // Left edited, the other file changes what this one's units may meet: nothing is kept.
    live.update_text("lib_b.py", Language::Python, &near_miss_of_render);
    check(&mut live, &text, "an edit after the other file changed");
    assert_eq!(live.units_reused("main.py"), Some((0, units)));
}
