//! End-to-end tests of the `periodic` binary: every report format, exit codes, bad input,
//! the index (incremental re-scans, corruption, concurrent scans) and `--no-index`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const ORIGINAL: &str = r#"def summarize_orders(orders, tax_rate):
    total = 0
    count = 0
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count, "average": average}
"#;

const RENAMED: &str = r#"def collect_invoices(invoices, vat):
    acc = 0
    n = 0
    for invoice in invoices:
        if invoice.status == "settled":
            acc += invoice.amount * (1 + vat)
            n += 1
    mean = acc / n if n else 0
    return {"total": round(acc, 3), "count": n, "average": mean}
"#;

const UNRELATED: &str = r#"def render_rows(rows, width):
    lines = []
    for row in rows:
        if row.visible:
            cells = [str(cell).ljust(width) for cell in row.cells]
            lines.append(" | ".join(cells))
    header = "-" * (width * len(lines))
    return "\n".join([header] + lines + [header])
"#;

fn periodic(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_periodic")).args(args).current_dir(dir).output().expect("run periodic")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
    std::fs::write(dir.path().join("src/orders.py"), ORIGINAL).expect("write");
    std::fs::write(dir.path().join("src/invoices.py"), RENAMED).expect("write");
    std::fs::write(dir.path().join("src/rows.py"), UNRELATED).expect("write");
    dir
}

fn json_scan(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["scan", ".", "--format", "json", "--min-lines", "5", "--min-tokens", "30"];
    args.extend_from_slice(extra);
    let output = periodic(&args, dir);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("JSON report")
}

fn pair_names(report: &Value) -> Vec<(String, String, String)> {
    let mut pairs: Vec<(String, String, String)> = report["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .map(|pair| {
            let (a, b) = (pair["a"]["name"].as_str().unwrap_or("").to_string(), pair["b"]["name"].as_str().unwrap_or("").to_string());
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            (a, b, pair["kind"].as_str().unwrap_or("").to_string())
        })
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn json_report_has_the_documented_shape() {
    let dir = project();
    let report = json_scan(dir.path(), &["--no-index"]);
    assert_eq!(report["version"], "1");
    assert_eq!(pair_names(&report), vec![("collect_invoices".into(), "summarize_orders".into(), "T2".into())]);
    let pair = &report["pairs"][0];
    assert!(pair["a"]["path"].as_str().is_some_and(|p| p.starts_with("src/")), "relative paths: {pair}");
    assert_eq!(pair["a"]["start_line"], 1);
    assert_eq!(pair["a"]["end_line"], 9);
    assert_eq!(pair["similarity"], 1.0);
    let pattern = &report["patterns"][0];
    assert!(pattern["id"].as_str().is_some_and(|id| id.starts_with("P-") && id.len() == 18));
    assert_eq!(pattern["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(pattern["languages"][0], "python");
    assert_eq!(report["stats"]["files"], 3);
    assert!(!dir.path().join(".periodic").exists(), "--no-index writes nothing");
}

#[test]
fn pattern_ids_are_stable_across_copies_of_the_tree() {
    let (first, second) = (project(), project());
    let id = |dir: &Path| json_scan(dir, &["--no-index"])["patterns"][0]["id"].clone();
    assert_eq!(id(first.path()), id(second.path()));
}

#[test]
fn text_report_groups_by_pattern() {
    let dir = project();
    let output = periodic(&["scan", ".", "--min-lines", "5", "--min-tokens", "30", "--no-index"], dir.path());
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("src/orders.py:1-9  summarize_orders"), "{text}");
    assert!(text.contains("src/invoices.py:1-9  collect_invoices"), "{text}");
    assert!(text.contains("3 files"), "{text}");
    assert!(!text.contains("\x1b["), "no colour when not a terminal");
}

#[test]
fn sarif_and_html_reports_are_written_to_files() {
    let dir = project();
    for format in ["sarif", "html"] {
        let output = periodic(&["scan", ".", "--format", format, "--output", &format!("report.{format}"), "--no-index", "--min-lines", "5"], dir.path());
        assert_eq!(output.status.code(), Some(0), "{format}: {}", stderr(&output));
        let written = std::fs::read_to_string(dir.path().join(format!("report.{format}"))).expect("report written");
        assert!(written.contains("summarize_orders") || written.contains("orders.py"), "{format} report mentions the clone");
    }
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.sarif")).expect("sarif")).expect("json");
    assert_eq!(sarif["version"], "2.1.0");
}

#[test]
fn fail_on_thresholds_set_the_exit_code() {
    let dir = project();
    let base = ["scan", ".", "--no-index", "--min-lines", "5", "--min-tokens", "30", "-q", "--fail-on"];
    let run = |limit: &str| {
        let mut args = base.to_vec();
        args.push(limit);
        periodic(&args, dir.path()).status.code()
    };
    assert_eq!(run("1%"), Some(1));
    assert_eq!(run("99%"), Some(0));
    assert_eq!(run("0"), Some(1));
    assert_eq!(run("1"), Some(0));
    assert_eq!(run("lots"), Some(2));
}

#[test]
fn fail_thresholds_come_from_the_config_file_too() {
    let dir = project();
    std::fs::write(dir.path().join(".periodic.toml"), "min_lines = 5\nmin_tokens = 30\n[fail]\nmax_pairs = 0\n").expect("write");
    let output = periodic(&["scan", ".", "--no-index", "-q"], dir.path());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("threshold exceeded"));
    // Either of two thresholds fails the scan.
    std::fs::write(dir.path().join(".periodic.toml"), "min_lines = 5\nmin_tokens = 30\n[fail]\nduplication_percent = 99\nmax_pairs = 0\n").expect("write");
    assert_eq!(periodic(&["scan", ".", "--no-index", "-q"], dir.path()).status.code(), Some(1));
}

#[test]
fn a_baseline_only_gates_new_duplication() {
    let dir = project();
    let output = periodic(&["scan", ".", "--no-index", "--min-lines", "5", "--min-tokens", "30", "--format", "json", "--output", "baseline.json"], dir.path());
    assert_eq!(output.status.code(), Some(0));
    let gate = ["scan", ".", "--no-index", "--min-lines", "5", "--min-tokens", "30", "-q", "--fail-on", "0", "--baseline", "baseline.json"];
    assert_eq!(periodic(&gate, dir.path()).status.code(), Some(0), "known clones do not fail");
    std::fs::write(dir.path().join("src/rows_copy.py"), UNRELATED.replace("render_rows", "render_table")).expect("write");
    let output = periodic(&gate, dir.path());
    assert_eq!(output.status.code(), Some(1), "a new clone fails: {}", stderr(&output));
    assert!(stderr(&output).contains("new since the baseline"));
}

#[test]
fn usage_and_config_errors_exit_2_with_a_clear_message() {
    let dir = project();
    let output = periodic(&["scan", "no/such/folder"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no/such/folder"), "{}", stderr(&output));

    std::fs::write(dir.path().join(".periodic.toml"), "min_lines = 5\nsimilarty = 0.8\n").expect("write");
    let output = periodic(&["scan", "."], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains(".periodic.toml:2") && message.contains("similarty"), "{message}");

    let output = periodic(&["scan", ".", "--similarity", "3"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let output = periodic(&["scan", ".", "--format", "pdf"], dir.path());
    assert_eq!(output.status.code(), Some(2));

    // The `[edge]` table is as strict, for commands that do not push too, and quiet or not.
    for (table, key) in [
        ("[edge]\nurl = \"http://127.0.0.1:9\"\nshare = \"all\"\n", "edge.share"),
        ("[edge]\nurl = \"ftp://example.com\"\n", "edge.url"),
        ("[edge]\nshare = 3\n", "edge.share"),
        ("[edge]\ntoken = \"abc\"\n", "token"),
    ] {
        std::fs::write(dir.path().join(".periodic.toml"), format!("min_lines = 5\n\n{table}")).expect("write");
        for command in [&["scan", ".", "-q"][..], &["patterns", "."][..]] {
            let output = periodic(command, dir.path());
            assert_eq!(output.status.code(), Some(2), "{command:?} with {table:?}: {}", stderr(&output));
            let message = stderr(&output);
            assert!(message.contains(".periodic.toml:") && message.contains(key), "{command:?} with {table:?}: {message}");
        }
    }
}

#[test]
fn bad_files_are_reported_and_the_scan_goes_on() {
    let dir = project();
    let root = dir.path();
    std::fs::write(root.join("src/latin1.py"), b"# caf\xe9\nx = 1\n").expect("write");
    std::fs::write(root.join("src/broken.py"), "def broken(:\n    pass\n").expect("write");
    std::fs::write(root.join("src/blob.py"), b"\x00\x01\x02binary").expect("write");
    std::fs::write(root.join("src/huge.py"), "x = 1\n".repeat(600_000)).expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("src"), root.join("src/loop")).expect("symlink");
    let output = periodic(&["scan", ".", "--format", "json", "--no-index", "--min-lines", "5", "--min-tokens", "30"], root);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(pair_names(&report).len(), 1, "the real clone is still found");
    assert_eq!(report["stats"]["skipped"]["binary"], 1);
    assert_eq!(report["stats"]["skipped"]["too_large"], 1);
    assert_eq!(report["stats"]["files_with_syntax_errors"], 1);
    let named = report["stats"]["syntax_error_files"].as_array().expect("syntax error files");
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(named[0].as_str().is_some_and(|path| path.ends_with(".py")), "{named:?}");
    let message = stderr(&output);
    assert!(message.contains("latin1.py") && message.contains("UTF-8"), "{message}");
    #[cfg(unix)]
    assert!(message.to_lowercase().contains("loop"), "symlink loop warned: {message}");
}

#[test]
fn rescans_reuse_the_index_and_follow_edits_deletes_and_renames() {
    let dir = project();
    let root = dir.path();
    let first = json_scan(root, &[]);
    assert_eq!(first["stats"]["files_parsed"], 3);
    assert!(root.join(".periodic/index.db").exists());
    assert_eq!(std::fs::read_to_string(root.join(".periodic/.gitignore")).expect("gitignore").lines().last(), Some("*"));

    let warm = json_scan(root, &[]);
    assert_eq!(warm["stats"]["files_parsed"], 0);
    assert_eq!(pair_names(&warm), pair_names(&first));

    // Edit: the unrelated file becomes a near copy of the original.
    std::fs::write(root.join("src/rows.py"), ORIGINAL.replace("summarize_orders", "summarize_orders_again").replace("count += 1", "count += 2")).expect("write");
    let edited = json_scan(root, &[]);
    assert_eq!(edited["stats"]["files_parsed"], 1);
    let names = pair_names(&edited);
    assert!(names.iter().any(|(a, b, _)| a == "summarize_orders" && b == "summarize_orders_again"), "{names:?}");

    // Rename: same content, new path.
    std::fs::rename(root.join("src/invoices.py"), root.join("src/billing.py")).expect("rename");
    let renamed = json_scan(root, &[]);
    assert_eq!(renamed["stats"]["files_parsed"], 1);
    let paths: Vec<String> = renamed["pairs"].as_array().expect("pairs").iter().flat_map(|p| [p["a"]["path"].as_str().unwrap_or("").to_string(), p["b"]["path"].as_str().unwrap_or("").to_string()]).collect();
    assert!(paths.contains(&"src/billing.py".to_string()) && !paths.contains(&"src/invoices.py".to_string()), "{paths:?}");

    // Delete: its clones disappear.
    std::fs::remove_file(root.join("src/rows.py")).expect("remove");
    let deleted = json_scan(root, &[]);
    assert_eq!(pair_names(&deleted), vec![("collect_invoices".into(), "summarize_orders".into(), "T2".into())]);
    assert_eq!(deleted["stats"]["files"], 2);

    // The incremental result equals a fresh scan's.
    let fresh = json_scan(root, &["--no-index"]);
    assert_eq!(pair_names(&fresh), pair_names(&deleted));
}

#[test]
fn a_corrupt_index_is_rebuilt_with_a_warning() {
    let dir = project();
    let root = dir.path();
    json_scan(root, &[]);
    std::fs::write(root.join(".periodic/index.db"), b"this is not a database at all, just garbage bytes".repeat(100)).expect("corrupt");
    let _ = std::fs::remove_file(root.join(".periodic/index.db-wal"));
    let _ = std::fs::remove_file(root.join(".periodic/index.db-shm"));
    let output = periodic(&["scan", ".", "--format", "json", "--min-lines", "5", "--min-tokens", "30"], root);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("rebuilding the index"), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(pair_names(&report).len(), 1);
    assert_eq!(json_scan(root, &[])["stats"]["files_parsed"], 0, "the rebuilt index is used next time");
}

#[test]
fn an_index_from_a_newer_version_is_rebuilt() {
    let dir = project();
    let root = dir.path();
    json_scan(root, &[]);
    let connection = rusqlite::Connection::open(root.join(".periodic/index.db")).expect("open");
    connection.pragma_update(None, "user_version", 999).expect("bump");
    drop(connection);
    let output = periodic(&["scan", ".", "--format", "json", "--min-lines", "5", "--min-tokens", "30"], root);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("newer Periodic"), "{}", stderr(&output));
}

#[test]
fn concurrent_scans_of_one_root_both_succeed() {
    let dir = project();
    let root = dir.path().to_path_buf();
    for index in 0..40 {
        std::fs::write(root.join(format!("src/gen_{index}.py")), ORIGINAL.replace("summarize_orders", &format!("summarize_{index}"))).expect("write");
    }
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let root = root.clone();
            std::thread::spawn(move || periodic(&["scan", ".", "--format", "json", "--min-lines", "5", "--min-tokens", "30"], &root))
        })
        .collect();
    for handle in handles {
        let output = handle.join().expect("thread");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let report: Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(report["stats"]["files"], 43);
    }
    let after = json_scan(&root, &[]);
    assert_eq!(after["stats"]["files_parsed"], 0, "the index is intact and complete");
}

#[test]
fn similar_lists_the_copies_of_the_function_at_a_line() {
    let dir = project();
    std::fs::write(dir.path().join(".periodic.toml"), "min_lines = 5\nmin_tokens = 30\n").expect("write");
    let output = periodic(&["similar", "src/orders.py:4", "--format", "json"], dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let answer: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(answer["unit"]["name"], "summarize_orders");
    assert_eq!(answer["similar"][0]["path"], "src/invoices.py");
    assert_eq!(answer["similar"][0]["kind"], "T2");
    let output = periodic(&["similar", "src/orders.py"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let output = periodic(&["similar", "src/orders.py:500"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("the file has 9 lines"), "{}", stderr(&output));
}

#[test]
fn patterns_lists_the_table_and_honours_configured_names() {
    let dir = project();
    let report = json_scan(dir.path(), &["--no-index"]);
    let id = report["patterns"][0]["id"].as_str().expect("id").to_string();
    std::fs::write(dir.path().join(".periodic.toml"), format!("min_lines = 5\nmin_tokens = 30\n[patterns.\"{id}\"]\nname = \"order-totals\"\n")).expect("write");
    let output = periodic(&["patterns", ".", "--format", "json"], dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let patterns: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(patterns[0]["id"], id.as_str());
    assert_eq!(patterns[0]["name"], "order-totals");
    assert_eq!(patterns[0]["user_name"], "order-totals");

    std::fs::write(dir.path().join(".periodic.toml"), format!("min_lines = 5\nmin_tokens = 30\n[patterns.\"{id}\"]\nnote = \"Use billing::total.\"\n")).expect("write");
    let output = periodic(&["scan", ".", "--no-index"], dir.path());
    assert!(String::from_utf8_lossy(&output.stdout).contains("Use billing::total."), "the note is shown");
}

#[test]
fn a_missing_baseline_fails_before_scanning() {
    let dir = project();
    let output = periodic(&["scan", ".", "--no-index", "--baseline", "missing.json"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "no report was printed");
    assert!(stderr(&output).contains("missing.json"));
}

#[test]
fn an_incremental_rescan_of_a_larger_tree_equals_a_fresh_scan() {
    let dir = project();
    let root = dir.path();
    // Enough files that one edit counts as "a few changed files" (focused candidate index).
    for index in 0..30 {
        let body = UNRELATED.replace("render_rows", &format!("render_rows_{index}")).replace("width", &format!("width_{index}"));
        std::fs::write(root.join(format!("src/view_{index}.py")), body.replace("lines.append", &format!("lines.insert({index}, ")).replace("(\" | \".join(cells))", "\" | \".join(cells))")).expect("write");
    }
    json_scan(root, &[]);
    // One edit that makes a near miss of the original and copies a block.
    let near_miss = ORIGINAL.replace("summarize_orders", "summarize_refunds").replace("count += 1", "count += 1\n            log(order)");
    std::fs::write(root.join("src/view_7.py"), near_miss).expect("write");
    let incremental = json_scan(root, &[]);
    assert_eq!(incremental["stats"]["files_parsed"], 1);
    let fresh = json_scan(root, &["--no-index"]);
    assert_eq!(pair_names(&incremental), pair_names(&fresh));
    assert!(pair_names(&fresh).iter().any(|(a, b, kind)| a == "summarize_orders" && b == "summarize_refunds" && kind == "T3"), "{:?}", pair_names(&fresh));
}

/// A source tarball whose `.gitignore` hides everything (Debian's `linux-source` ships `/*`):
/// the plain scan finds nothing and says what hid the files and which flag to use;
/// `--no-ignore` (or `no_ignore = true`) scans them, for `scan`, `similar` and `patterns`,
/// and the configuration's `exclude` still applies.
#[test]
fn no_ignore_scans_a_tree_whose_gitignore_hides_everything() {
    let dir = project();
    std::fs::write(dir.path().join(".gitignore"), "/*\n").expect("write");
    let output = periodic(&["scan", ".", "--min-lines", "5", "--min-tokens", "30", "--quiet"], dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("hide 3 source files") && message.contains("--no-ignore"), "{message}");

    let report = json_scan(dir.path(), &["--no-ignore"]);
    assert_eq!(report["stats"]["files"], 3, "{report}");
    assert_eq!(pair_names(&report), vec![("collect_invoices".into(), "summarize_orders".into(), "T2".into())]);

    std::fs::write(dir.path().join(".periodic.toml"), "min_lines = 5\nmin_tokens = 30\nno_ignore = true\nexclude = [\"src/rows.py\"]\n").expect("write");
    let report = json_scan(dir.path(), &[]);
    assert_eq!(report["stats"]["files"], 2, "exclude still applies: {report}");

    std::fs::write(dir.path().join(".periodic.toml"), "min_lines = 5\nmin_tokens = 30\n").expect("write");
    let output = periodic(&["similar", "src/orders.py:4", "--format", "json", "--no-ignore"], dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let answer: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(answer["similar"][0]["path"], "src/invoices.py");
    let output = periodic(&["patterns", ".", "--format", "json", "--no-ignore"], dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let patterns: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(patterns.as_array().map(Vec::len), Some(1), "{patterns}");
    let output = periodic(&["patterns", ".", "--format", "json"], dir.path());
    assert!(stderr(&output).contains("--no-ignore"), "{}", stderr(&output));

    std::fs::write(dir.path().join(".periodic.toml"), "no_ignore = \"yes\"\n").expect("write");
    let output = periodic(&["scan", "."], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(".periodic.toml:1"), "{}", stderr(&output));
}

/// `--version` names the commit the binary was built from (HEAD of the checkout the test
/// runs in); `completions` and `man` come from the same clap definitions.
#[test]
fn version_names_the_commit_and_completions_and_man_page_are_generated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = periodic(&["--version"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let head = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("git");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    // A build outside a git checkout (a source tarball) says so instead.
    let head = if head.is_empty() { "unknown commit".to_string() } else { head };
    let expected_prefix = format!("periodic {} (", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected_prefix) && version.ends_with(')'), "{version}");
    let commit = &version[expected_prefix.len()..version.len() - 1];
    assert!(commit.len() >= 7 && head.starts_with(commit), "--version names {commit}, HEAD is {head}");

    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef periodic"), ("fish", "complete -c periodic"), ("powershell", "Register-ArgumentCompleter")] {
        let output = periodic(&["completions", shell], dir.path());
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains(marker), "{shell} completions lack {marker:?}");
        assert!(script.contains("no-ignore") && script.contains("similar"), "{shell} completions miss options or subcommands");
    }
    let output = periodic(&["completions", "tcsh"], dir.path());
    assert_eq!(output.status.code(), Some(2), "an unknown shell is a usage error");

    let output = periodic(&["man"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(page.contains(".TH periodic 1") && page.contains("completions") && page.contains("scan"), "{page}");
    // Every subcommand's options are in the page itself, with no pointer to pages that do not exist.
    assert!(page.contains(".SH \"PERIODIC SCAN\"") && page.contains(".SH \"PERIODIC SIMILAR\""), "{page}");
    assert!(page.contains("\\-\\-min\\-lines") && page.contains("\\-\\-fail\\-on"), "scan's options: {page}");
    assert!(!page.contains("periodic\\-scan(1)") && !page.contains("periodic-scan(1)"), "{page}");
}

#[test]
fn a_file_named_without_its_folder_is_scanned_from_the_current_one() {
    let dir = project();
    let src = dir.path().join("src");
    std::fs::write(src.join("both.py"), format!("{ORIGINAL}\n\n{RENAMED}")).expect("write");
    let output = periodic(&["scan", "both.py", "--format", "json", "--no-index", "--min-lines", "5", "--min-tokens", "30"], &src);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("error"), "no walk error: {}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["stats"]["files"], 1, "the one file named: {report}");
    let names = pair_names(&report);
    assert!(names.iter().any(|(a, b, _)| a == "collect_invoices" && b == "summarize_orders"), "the copy within it is found: {names:?}");
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = project();
    let output = Command::new(env!("CARGO_BIN_EXE_periodic"))
        .args(["scan", ".", "-q", "--no-index"])
        .env("PERIODIC_LOG", "debug")
        .current_dir(dir.path())
        .output()
        .expect("run periodic");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let log = stderr(&output);
    assert!(log.contains("DEBUG") && log.contains("parse done"), "the debug log is written: {log}");
    assert!(!log.contains('\u{1b}'), "no escape codes: {log:?}");
}

#[test]
fn text_paths_open_from_the_folder_the_scan_was_run_in() {
    let dir = project();
    let member_lines = |output: &Output| -> Vec<String> {
        assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
        String::from_utf8_lossy(&output.stdout).lines().filter(|line| line.starts_with("    ") && line.contains(".py:")).map(|line| line.trim().to_string()).collect()
    };
    let args = ["--format", "text", "--no-index", "--min-lines", "5", "--min-tokens", "30"];
    let here = member_lines(&periodic(&[&["scan", "."][..], &args].concat(), dir.path()));
    assert!(!here.is_empty() && here.iter().all(|line| line.starts_with("src/")), "{here:?}");
    // The same tree scanned by its folder's name, by an absolute path, and from its parent.
    let inner = member_lines(&periodic(&[&["scan", "src"][..], &args].concat(), dir.path()));
    assert_eq!(inner, here, "a root under the current folder is shown before each path");
    let absolute = dir.path().join("src");
    let absolute = absolute.to_str().expect("a UTF-8 path");
    assert_eq!(member_lines(&periodic(&[&["scan", absolute][..], &args].concat(), dir.path())), here);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let outside = member_lines(&periodic(&[&["scan", absolute][..], &args].concat(), elsewhere.path()));
    assert!(outside.iter().all(|line| line.starts_with(absolute)), "a root elsewhere is shown whole: {outside:?}");
    // Every path shown names a file that exists from where the scan ran.
    for line in &here {
        let path = line.split(':').next().expect("a path");
        assert!(dir.path().join(path).is_file(), "{path}");
    }
}
