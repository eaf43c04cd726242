//! `periodic trend` on real git repositories built by the test with the `git` command:
//! duplication 0 -> up when a copy is committed -> further up -> down when a copy is
//! removed, each point equal to a fresh scan of that commit's files, blobs parsed once,
//! the working tree, index and uncommitted changes untouched, and the options that pick
//! the commits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const ORDERS: &str = r#"def summarize_orders(orders, tax_rate):
    total = 0
    count = 0
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count, "average": average}
"#;

const ROWS: &str = r#"def render_rows(rows, width):
    lines = []
    for row in rows:
        if row.visible:
            cells = [str(cell).ljust(width) for cell in row.cells]
            lines.append(" | ".join(cells))
    header = "-" * (width * len(lines))
    return "\n".join([header] + lines + [header])
"#;

fn invoices() -> String {
    ORDERS.replace("summarize_orders", "collect_invoices").replace("order", "invoice").replace("tax_rate", "vat")
}

fn refunds() -> String {
    ORDERS.replace("summarize_orders", "summarize_refunds").replace("count += 1", "count += 1\n            log(order)")
}

fn git(dir: &Path, args: &[&str], date: &str) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, text).expect("write");
}

fn commit(root: &Path, message: &str, day: u32) -> String {
    let date = format!("2024-03-{day:02}T12:00:00+00:00");
    git(root, &["add", "-A"], &date);
    git(root, &["commit", "-q", "-m", message], &date);
    git(root, &["rev-parse", "HEAD"], &date)
}

/// A repository of four commits: no copy, a renamed copy, a near miss, the renamed copy
/// removed. Returns it and the commit ids, oldest first.
fn repository() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"], "2024-03-01T12:00:00+00:00");
    git(root, &["config", "user.email", "dev@example.com"], "2024-03-01T12:00:00+00:00");
    git(root, &["config", "user.name", "Dev"], "2024-03-01T12:00:00+00:00");
    write(root, ".periodic.toml", "min_lines = 5\nmin_tokens = 30\n");
    write(root, "src/orders.py", ORDERS);
    write(root, "src/rows.py", ROWS);
    let mut commits = vec![commit(root, "orders and rows", 1)];
    write(root, "src/invoices.py", &invoices());
    commits.push(commit(root, "invoices, copied from orders", 5));
    write(root, "lib/refunds.py", &refunds());
    commits.push(commit(root, "refunds, a near miss", 10));
    std::fs::remove_file(root.join("src/invoices.py")).expect("remove");
    commits.push(commit(root, "invoices use orders again", 15));
    (dir, commits)
}

fn periodic(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_periodic")).args(args).current_dir(dir).output().expect("run periodic")
}

fn trend_json(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["trend", ".", "--format", "json", "--quiet"];
    args.extend_from_slice(extra);
    let output = periodic(&args, dir);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

fn commits_of(trend: &Value) -> Vec<String> {
    trend["points"].as_array().expect("points").iter().map(|point| point["commit"].as_str().expect("commit").to_string()).collect()
}

fn numbers(trend: &Value, field: &str) -> Vec<u64> {
    trend["points"].as_array().expect("points").iter().map(|point| point[field].as_u64().expect(field)).collect()
}

/// Every file of the working tree (but `.git`), with its bytes.
fn tree_state(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|name| name == ".git") {
                continue;
            }
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).expect("read")));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn duplication_goes_up_with_each_copy_and_down_when_one_is_removed() {
    let (dir, commits) = repository();
    let trend = trend_json(dir.path(), &[]);
    assert_eq!(commits_of(&trend), commits, "one point per commit, oldest first");
    let duplicated = numbers(&trend, "duplicated_lines");
    assert_eq!(duplicated[0], 0);
    assert!(duplicated[1] > 0, "{duplicated:?}");
    assert!(duplicated[2] > duplicated[1], "{duplicated:?}");
    assert!(duplicated[3] < duplicated[2], "{duplicated:?}");
    assert_eq!(numbers(&trend, "clone_pairs"), [0, 1, 3, 1]);
    assert_eq!(numbers(&trend, "patterns"), [0, 1, 1, 1]);
    let points = trend["points"].as_array().expect("points");
    assert_eq!(points[1]["date"], "2024-03-05T12:00:00+00:00");
    assert_eq!(points[1]["author_date"], "2024-03-05T12:00:00+00:00");
    assert_eq!(points[1]["subject"], "invoices, copied from orders");
    assert_eq!(points[1]["languages"]["python"]["duplicated_lines"], duplicated[1]);
    let percents: Vec<f64> = points.iter().map(|point| point["duplicated_percent"].as_f64().expect("percent")).collect();
    assert!(percents[0] == 0.0 && percents[2] > percents[1] && percents[3] < percents[2], "{percents:?}");
    assert_eq!(points.iter().map(|point| point["jump"].as_bool().expect("jump")).collect::<Vec<_>>(), [false, true, true, false]);
    assert_eq!(points[0]["grew"], serde_json::json!([]), "the first point has nothing to have grown from");
    assert_eq!(points[1]["grew"][0]["members"], 2);
    assert_eq!(points[1]["grew"][0]["members_before"], 0);
    assert_eq!(points[2]["grew"][0]["id"], points[1]["grew"][0]["id"], "the near miss joins the same pattern");
    assert_eq!(points[2]["grew"][0]["members"], 3);
    assert_eq!(points[3]["grew"], serde_json::json!([]), "nothing grew when a copy was removed");
    // Each blob is parsed once: two files, then one new file twice, then nothing.
    assert_eq!(numbers(&trend, "parsed_files"), [2, 1, 1, 0]);
    assert_eq!(trend["blobs_parsed"], 4);
}

#[test]
fn every_point_equals_a_fresh_scan_of_that_commits_files() {
    let (dir, commits) = repository();
    let trend = trend_json(dir.path(), &[]);
    for (point, commit) in trend["points"].as_array().expect("points").iter().zip(&commits) {
        // The commit's files, exported outside the working tree by git itself.
        let export = tempfile::tempdir().expect("tempdir");
        let archive = Command::new("git").args(["archive", commit]).current_dir(dir.path()).output().expect("git archive");
        let mut tar = Command::new("tar").args(["-x", "-C"]).arg(export.path()).stdin(std::process::Stdio::piped()).spawn().expect("tar");
        std::io::Write::write_all(tar.stdin.as_mut().expect("stdin"), &archive.stdout).expect("pipe");
        drop(tar.stdin.take());
        assert!(tar.wait().expect("tar").success());
        let output = periodic(&["scan", ".", "--format", "json", "--no-index"], export.path());
        let scan: Value = serde_json::from_slice(&output.stdout).expect("scan JSON");
        let stats = &scan["stats"];
        assert_eq!(point["lines"], stats["lines"], "{commit}");
        assert_eq!(point["duplicated_lines"], stats["duplicated_lines"], "{commit}");
        assert_eq!(point["clone_pairs"], stats["clone_pairs"], "{commit}");
        assert_eq!(point["patterns"], stats["patterns"], "{commit}");
    }
}

#[test]
fn the_working_tree_index_and_uncommitted_changes_stay_untouched() {
    let (dir, _) = repository();
    let root = dir.path();
    std::fs::write(root.join("src/rows.py"), format!("{ROWS}\n# unsaved thought\n")).expect("edit");
    write(root, "src/staged.py", &invoices());
    git(root, &["add", "src/staged.py"], "2024-03-20T12:00:00+00:00");
    write(root, "notes.txt", "untracked\n");
    let status = git(root, &["status", "--porcelain=v2", "--untracked-files=all"], "2024-03-20T12:00:00+00:00");
    let head = git(root, &["rev-parse", "HEAD"], "2024-03-20T12:00:00+00:00");
    let index = std::fs::read(root.join(".git/index")).expect("index");
    let files = tree_state(root);
    let trend = trend_json(root, &[]);
    assert_eq!(trend["points"].as_array().expect("points").len(), 4, "uncommitted changes are not a point");
    assert_eq!(git(root, &["status", "--porcelain=v2", "--untracked-files=all"], "2024-03-20T12:00:00+00:00"), status);
    assert_eq!(git(root, &["rev-parse", "HEAD"], "2024-03-20T12:00:00+00:00"), head);
    assert_eq!(std::fs::read(root.join(".git/index")).expect("index"), index, "the git index is not rewritten");
    assert_eq!(tree_state(root), files, "no file of the working tree is created, changed or removed");
}

#[test]
fn options_pick_the_commits() {
    let (dir, commits) = repository();
    let root = dir.path();
    assert_eq!(commits_of(&trend_json(root, &["--every", "2"])), [commits[1].clone(), commits[3].clone()], "every 2nd from the newest");
    assert_eq!(commits_of(&trend_json(root, &["--commits", "2"])), commits[2..]);
    assert_eq!(commits_of(&trend_json(root, &["--since", &commits[1]])), commits[1..]);
    assert_eq!(commits_of(&trend_json(root, &["--since", "2024-03-04"])), commits[1..], "a date");
    assert_eq!(commits_of(&trend_json(root, &["--until", &commits[2]])), commits[..3]);
    assert_eq!(commits_of(&trend_json(root, &["--since", "HEAD~2", "--until", "HEAD~1"])), commits[1..3]);
    // A side branch is followed by --branch; merged back, it counts as one commit of main.
    let date = "2024-03-20T12:00:00+00:00";
    git(root, &["checkout", "-q", "-b", "side", &commits[1]], date);
    write(root, "src/side.py", &invoices().replace("collect_invoices", "collect_side"));
    let side = commit(root, "side copy", 20);
    git(root, &["checkout", "-q", "main"], date);
    assert_eq!(commits_of(&trend_json(root, &["--branch", "side"])), [commits[0].clone(), commits[1].clone(), side.clone()]);
    git(root, &["merge", "-q", "--no-ff", "-m", "merge side", "side"], date);
    let merged = trend_json(root, &[]);
    let merged_commits = commits_of(&merged);
    assert_eq!(merged_commits.len(), 5);
    assert!(!merged_commits.contains(&side), "first parents only");
    assert_eq!(merged["points"][4]["subject"], "merge side");
    // A folder of the repository: its files only.
    let lib = trend_json(&root.join("lib"), &[]);
    assert_eq!(lib["path"], "lib");
    assert_eq!(numbers(&lib, "files"), [0, 0, 1, 1, 1]);
    assert_eq!(numbers(&lib, "duplicated_lines"), [0, 0, 0, 0, 0], "a near miss of code outside the folder is not a copy inside it");
}

#[test]
fn text_and_csv_show_the_same_points() {
    let (dir, commits) = repository();
    let output = periodic(&["trend", "."], dir.path());
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("duplication ▁"), "{text}");
    assert!(text.contains("up +"), "{text}");
    assert_eq!(text.lines().filter(|line| line.contains("^ jump")).count(), 2, "{text}");
    assert!(text.contains(&commits[3][..10]));
    let output = periodic(&["trend", ".", "--format", "csv"], dir.path());
    let csv = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5);
    assert!(rows[0].starts_with("commit,date,author_date,files,lines,duplicated_lines,duplicated_percent,clone_pairs,patterns,jump,python_lines"));
    assert!(rows[1].starts_with(&format!("{},2024-03-01T12:00:00+00:00", commits[0])));
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let (dir, _) = repository();
    let plain = tempfile::tempdir().expect("tempdir");
    let cases: [(&Path, &[&str], &str); 5] = [
        (plain.path(), &["trend", "."], "not inside a git repository"),
        (dir.path(), &["trend", ".", "--since", "not-a-rev-or-date"], "neither a revision nor a date"),
        (dir.path(), &["trend", ".", "--branch", "nope"], "`nope` is not a revision"),
        (dir.path(), &["trend", ".", "--every", "0"], "--every"),
        (dir.path(), &["trend", "missing-folder"], "no such folder"),
    ];
    for (folder, args, message) in cases {
        let output = periodic(args, folder);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(message), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
}
