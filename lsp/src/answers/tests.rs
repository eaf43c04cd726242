//! The answers layer on its own: a fixture of several files (`//- /path` headers), scanned
//! without an index, and each question's answer rendered as stable text.

use std::fmt::Write;

use expect_test::{Expect, expect};
use periodic_core::config::DetectionSettings;
use periodic_core::{Config, ScanOptions};

use super::*;

const FIXTURE: &str = r#"
//- /src/orders.py
def summarize_orders(orders, tax_rate):
    total = 0
    count = 0
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count, "average": average}
//- /src/invoices.py
def collect_invoices(invoices, vat):
    acc = 0
    n = 0
    for invoice in invoices:
        if invoice.status == "settled":
            acc += invoice.amount * (1 + vat)
            n += 1
    mean = acc / n if n else 0
    return {"total": round(acc, 3), "count": n, "average": mean}
//- /lib/refunds.py
def summarize_refunds(refunds, tax_rate):
    total = 0
    count = 0
    for refund in refunds:
        if refund.status == "paid":
            total += refund.amount * (1 + tax_rate)
            count += 1
            audit(refund)
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count, "average": average}
//- /src/rows.py
def render_rows(rows, width):
    lines = []
    for row in rows:
        if row.visible:
            cells = [str(cell).ljust(width) for cell in row.cells]
            lines.append(" | ".join(cells))
    header = "-" * (width * len(lines))
    return "\n".join([header] + lines + [header])
"#;

/// Writes the fixture's files under a temporary folder.
fn write_fixture(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in fixture.split("//- /").skip(1) {
        let (path, text) = file.split_once('\n').expect("a path line");
        let path = dir.path().join(path.trim());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

/// Settings small enough for the fixture's functions to be units.
fn fixture_config() -> Config {
    Config { detection: DetectionSettings { min_lines: 5, min_tokens: 30, ..DetectionSettings::default() }, ..Config::default() }
}

/// Writes the fixture's files under a temporary folder and scans it.
fn snapshot_of(fixture: &str) -> (tempfile::TempDir, Snapshot) {
    let dir = write_fixture(fixture);
    let outcome = periodic_core::scan(ScanOptions { root: dir.path().to_path_buf(), config: fixture_config(), use_index: false, progress: None, team: None }).expect("scan");
    let snapshot = Snapshot::of_scan(&outcome);
    (dir, snapshot)
}

fn place(place: &Place) -> String {
    let name = if place.is_block() { format!("block in {}", place.display_name()) } else { place.display_name().to_string() };
    format!("{}:{}-{} {name} ({})", place.path, place.start_line, place.end_line, place.language.family())
}

fn check_similar(path: &str, line: u32, expect: Expect) {
    let (_dir, snapshot) = snapshot_of(FIXTURE);
    let slot = snapshot.slot(path).expect("scanned");
    let answer = similar_at(&snapshot, slot, line, |_| true, 10);
    let mut text = String::new();
    match &answer.subject {
        Some(subject) => writeln!(text, "subject {}", place(subject)).ok(),
        None => writeln!(text, "no subject").ok(),
    };
    for code in &answer.similar {
        let pattern = code.pattern.as_ref().map_or("-".to_string(), |pattern| pattern.name.clone());
        writeln!(text, "{} {} {:.2} {pattern}", place(&code.place), code.kind.as_str(), code.similarity).ok();
    }
    expect.assert_eq(&text);
}

fn check_patterns(filter: PatternFilter, expect: Expect) {
    let (_dir, snapshot) = snapshot_of(FIXTURE);
    let mut text = String::new();
    for pattern in patterns(&snapshot, &filter, 10) {
        writeln!(text, "{} {} lines, {} members, {} {:.2}", pattern.name, pattern.duplicated_lines, pattern.members.len(), pattern.kind.as_str(), pattern.similarity).ok();
        for member in &pattern.members {
            let link = member.kind.zip(member.similarity).map_or("-".to_string(), |(kind, similarity)| format!("{} {similarity:.2}", kind.as_str()));
            writeln!(text, "  {} {link}", place(&member.place)).ok();
        }
    }
    expect.assert_eq(&text);
}

#[test]
fn similar_at_a_line_lists_every_copy_best_first() {
    check_similar(
        "src/orders.py",
        4,
        expect![[r#"
            subject src/orders.py:1-9 summarize_orders (python)
            src/invoices.py:1-9 collect_invoices (python) T2 1.00 summarize-amount
            lib/refunds.py:1-10 summarize_refunds (python) T3 0.97 summarize-amount
        "#]],
    );
}

#[test]
fn code_without_copies_names_its_unit_and_nothing_else() {
    check_similar(
        "src/rows.py",
        3,
        expect![[r#"
            subject src/rows.py:1-8 render_rows (python)
        "#]],
    );
}

#[test]
fn patterns_are_listed_largest_first_with_each_members_closest_link() {
    check_patterns(
        PatternFilter::default(),
        expect![[r#"
            summarize-amount 28 lines, 3 members, T3 0.97
              lib/refunds.py:1-10 summarize_refunds (python) T3 0.97
              src/invoices.py:1-9 collect_invoices (python) T2 1.00
              src/orders.py:1-9 summarize_orders (python) T2 1.00
        "#]],
    );
}

#[test]
fn pattern_filters_narrow_by_text_language_and_path() {
    check_patterns(PatternFilter { text: Some("no-such".into()), ..PatternFilter::default() }, expect![[""]]);
    check_patterns(PatternFilter { language: Some("rust".into()), ..PatternFilter::default() }, expect![[""]]);
    check_patterns(PatternFilter { path_prefix: Some("lib/other".into()), ..PatternFilter::default() }, expect![[""]]);
    let (_dir, snapshot) = snapshot_of(FIXTURE);
    let filter = PatternFilter { text: Some("SUMMARIZE".into()), language: Some("python".into()), path_prefix: Some("lib/".into()) };
    let found = patterns(&snapshot, &filter, 10);
    assert_eq!(found.len(), 1);
    let representative = found[0].representative(filter.path_prefix.as_deref()).expect("a member");
    assert_eq!(representative.place.path, "lib/refunds.py");
}

#[test]
fn a_pattern_is_found_by_its_id_in_any_case_and_an_unknown_id_is_none() {
    let (_dir, snapshot) = snapshot_of(FIXTURE);
    let id = snapshot.patterns[0].id.clone();
    let found = pattern(&snapshot, &id.to_lowercase()).expect("found");
    assert_eq!(found.id, id);
    assert_eq!(found.members.len(), 3);
    assert!(pattern(&snapshot, "P-00000000").is_none());
}

#[test]
fn paths_are_under_a_prefix_by_whole_components() {
    assert!(is_under("src/a.py", "src"));
    assert!(is_under("src/a.py", "src/"));
    assert!(is_under("src/a.py", "./src/a.py"));
    assert!(is_under("src/a.py", ""));
    assert!(!is_under("src2/a.py", "src"));
}

#[test]
fn the_answers_layer_knows_no_protocol_and_no_front_end() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/answers");
    let forbidden = ["tower_lsp", "ls_types", "serde_json", "rmcp", "crate::server", "crate::commands", "crate::mcp", "crate::cli"];
    for entry in std::fs::read_dir(&folder).expect("read src/answers") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|name| name == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for word in forbidden {
            assert!(!text.contains(word), "{} mentions `{word}`", path.display());
        }
    }
}

/// Asks a snippet question of a workspace loaded from the fixture.
fn ask(question: &snippet::SnippetQuestion<'_>) -> Result<snippet::SnippetAnswer, snippet::SnippetError> {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in FIXTURE.split("//- /").skip(1) {
        let (path, text) = file.split_once('\n').expect("a path line");
        let path = dir.path().join(path.trim());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    std::fs::write(dir.path().join(".periodic.toml"), "min_lines = 5\nmin_tokens = 30\n").expect("write");
    let (workspace, problem) = Workspace::new(dir.path().to_path_buf());
    assert!(problem.is_none());
    workspace.refresh(workspace.effective_config(|_| ()), &|_| ()).expect("index");
    workspace
        .probe(|engine, snapshot| {
            let mut prepared = snippet::prepare(question, engine.config(), snapshot)?;
            let analysis = std::mem::take(&mut prepared.analysis);
            let probe = engine.probe(prepared.language, &prepared.text, analysis, None);
            Ok(snippet::answer(&prepared, &probe, snapshot, question))
        })
        .expect("indexed")
}

fn question(code: &str) -> snippet::SnippetQuestion<'_> {
    snippet::SnippetQuestion { code, language: None, path: None, min_similarity: None, limit: 10 }
}

fn matched_paths(answer: &snippet::SnippetAnswer) -> Vec<String> {
    answer.matches.iter().map(|found| format!("{} {}", found.similar.place.path, found.similar.kind.as_str())).collect()
}

const NEAR_COPY: &str = "def total_paid(payments, rate):\n    total = 0\n    count = 0\n    for payment in payments:\n        if payment.status == \"paid\":\n            total += payment.amount * (1 + rate)\n            count += 1\n            notify(payment)\n    average = total / count if count else 0\n    return {\"total\": round(total, 2), \"count\": count, \"average\": average}\n";

#[test]
fn a_snippet_finds_every_near_copy_and_a_stranger_finds_nothing() {
    let answer = ask(&question(NEAR_COPY)).expect("answer");
    assert_eq!(answer.language, Language::Python);
    assert!(answer.guessed);
    assert_eq!(answer.units, 1);
    assert_eq!(matched_paths(&answer), ["lib/refunds.py T2", "src/invoices.py T3", "src/orders.py T3"]);
    assert!(answer.matches.iter().all(|found| found.snippet_lines == (1, 10)));
    let stranger = "def parse_headers(raw_lines):\n    headers = {}\n    for raw in raw_lines:\n        if \":\" not in raw:\n            continue\n        name, _, value = raw.partition(\":\")\n        key = name.strip().lower()\n        headers.setdefault(key, []).append(value.strip())\n    return {key: \", \".join(values) for key, values in headers.items()}\n";
    let answer = ask(&snippet::SnippetQuestion { language: Some(Language::Python), ..question(stranger) }).expect("answer");
    assert!(!answer.guessed);
    assert!(answer.matches.is_empty(), "{:?}", answer.matches);
}

#[test]
fn a_body_fragment_is_parsed_inside_a_function_and_the_target_file_is_left_out() {
    let body: String = NEAR_COPY.lines().skip(1).map(|line| format!("{line}\n")).collect();
    let answer = ask(&question(&body)).expect("answer");
    assert_eq!(answer.units, 1, "the fragment became a unit");
    assert!(matched_paths(&answer).contains(&"src/orders.py T3".to_string()), "{:?}", matched_paths(&answer));
    assert_eq!(answer.matches[0].snippet_lines, (1, 9));
    let answer = ask(&snippet::SnippetQuestion { path: Some("src/orders.py"), ..question(NEAR_COPY) }).expect("answer");
    assert_eq!(matched_paths(&answer), ["lib/refunds.py T2", "src/invoices.py T3"]);
    assert!(!answer.guessed, "the path names the language");
}

#[test]
fn bad_snippets_are_refused_with_a_reason() {
    assert_eq!(ask(&question(" \n")), Err(snippet::SnippetError::Empty));
    let huge = "x = 1\n".repeat(20_000);
    assert!(matches!(ask(&question(&huge)), Err(snippet::SnippetError::TooLarge { .. })));
    let unknown = ask(&snippet::SnippetQuestion { path: Some("notes.txt"), ..question(NEAR_COPY) });
    assert_eq!(unknown, Err(snippet::SnippetError::UnknownLanguage("notes.txt".into())));
}

#[test]
fn a_file_opened_as_stored_keeps_its_pairs_without_building_the_candidate_tables() {
    let dir = write_fixture(FIXTURE);
    let config = fixture_config();
    periodic_core::scan(ScanOptions { root: dir.path().to_path_buf(), config: config.clone(), use_index: true, progress: None, team: None }).expect("scan");
    let (workspace, problem) = workspace::Workspace::new(dir.path().to_path_buf());
    assert!(problem.is_none());
    assert!(workspace.load_stored(config).expect("load"), "the scan stored an index");
    let pairs_of_orders = |workspace: &workspace::Workspace| {
        let snapshot = workspace.snapshot();
        snapshot.slot("src/orders.py").map_or(0, |slot| snapshot.pairs_of(slot).count())
    };
    let stored_pairs = pairs_of_orders(&workspace);
    assert!(stored_pairs > 0, "orders.py has copies in the stored index");

    let text = std::fs::read_to_string(dir.path().join("src/orders.py")).expect("read");
    let analysis = periodic_core::analysis::analyze(Language::Python, &text);
    let affected = workspace.change(|engine| engine.apply_analysis("src/orders.py", Language::Python, &text, analysis, Some(1))).expect("engine");
    assert!(affected.is_empty(), "nothing changed for the other files");
    assert_eq!(pairs_of_orders(&workspace), stored_pairs, "the stored pairs stand");
    assert_eq!(workspace.inspect(|engine| (engine.candidate_tables_built(), engine.has_version("src/orders.py", 1))), Some((false, true)));

    // An edit is analysed in full: the tables are built and the copy is found again.
    let edited = text.replace("count += 1", "count += 2");
    let analysis = periodic_core::analysis::analyze(Language::Python, &edited);
    workspace.change(|engine| engine.apply_analysis("src/orders.py", Language::Python, &edited, analysis, Some(2))).expect("engine");
    assert_eq!(workspace.inspect(|engine| engine.candidate_tables_built()), Some(true));
    assert!(pairs_of_orders(&workspace) > 0, "the edited function still has its copies");
}

/// A pattern's id, name and members by place.
type PatternByPlace = (String, String, Vec<String>);

/// Patterns and pairs by place, in a stable order.
fn results_by_place(snapshot: &Snapshot) -> (Vec<PatternByPlace>, Vec<String>) {
    let place = |instance: &periodic_core::Instance| format!("{}:{}-{}", snapshot.file(instance.file).map_or("?", |file| file.path.as_str()), instance.start_line, instance.end_line);
    let mut patterns: Vec<PatternByPlace> =
        snapshot.patterns.iter().map(|pattern| (pattern.id.clone(), pattern.name().to_string(), pattern.members.iter().map(place).collect())).collect();
    patterns.sort();
    let mut pairs: Vec<String> = snapshot.pairs.iter().map(|pair| format!("{} {} {}", place(&pair.a), place(&pair.b), pair.kind.as_str())).collect();
    pairs.sort();
    (patterns, pairs)
}

#[test]
fn a_start_from_an_unchanged_index_answers_as_the_scan_did_and_has_nothing_to_re_index() {
    let dir = write_fixture(FIXTURE);
    let config = fixture_config();
    let outcome = periodic_core::scan(ScanOptions { root: dir.path().to_path_buf(), config: config.clone(), use_index: true, progress: None, team: None }).expect("scan");
    let scanned = results_by_place(&Snapshot::of_scan(&outcome));
    assert!(!scanned.0.is_empty());
    let (workspace, _) = workspace::Workspace::new(dir.path().to_path_buf());
    assert!(workspace.load_stored(config.clone()).expect("load"));
    assert_eq!(results_by_place(&workspace.snapshot()), scanned);
    let no_sketch = |workspace: &workspace::Workspace| workspace.inspect(|engine| engine.files().iter().flat_map(|file| &file.units).all(|unit| unit.sketch.is_none()));
    assert_eq!(no_sketch(&workspace), Some(true), "held without sketches");

    let events = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: periodic_core::ScanProgress| {
        events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    workspace.reindex(config.clone(), &progress, &Vec::new, None).expect("re-index");
    assert_eq!(events.load(std::sync::atomic::Ordering::Relaxed), 0, "nothing changed: no scan");
    assert_eq!(results_by_place(&workspace.snapshot()), scanned);

    // Only the first re-index after the load may skip its scan; a scan's engine is held
    // without sketches too.
    workspace.reindex(config, &progress, &Vec::new, None).expect("re-index");
    assert!(events.load(std::sync::atomic::Ordering::Relaxed) > 0, "scanned");
    assert_eq!(results_by_place(&workspace.snapshot()), scanned);
    assert_eq!(no_sketch(&workspace), Some(true));

    // An edit reads them back to build the candidate tables and finds the copies again.
    let text = std::fs::read_to_string(dir.path().join("src/orders.py")).expect("read").replace("count += 1", "count += 2");
    let analysis = periodic_core::analysis::analyze(Language::Python, &text);
    workspace.change(|engine| engine.apply_analysis("src/orders.py", Language::Python, &text, analysis, Some(2))).expect("engine");
    assert_eq!(no_sketch(&workspace), Some(false));
    let snapshot = workspace.snapshot();
    let slot = snapshot.slot("src/orders.py").expect("slot");
    assert!(snapshot.pairs_of(slot).count() > 0, "the edited function still has its copies");
}
