//! Sync to the team edge against the real `periodic-edge` binary on loopback ports:
//! `scan --edge` pushes, another repository's query finds the clone with its location, share
//! level `fingerprints` sends no paths or names, an unreachable edge only grows the outbox
//! which drains exactly once when the edge comes up, the outbox survives the process, a
//! bad `[edge]` table or token is reported, and an edge on a real Redis Cluster that lost a
//! master for good (503 until the node is back) keeps the push queued until it goes through.
//!
//! The edge binary is `$PERIODIC_EDGE_BIN`, else `periodic-edge` in this target directory
//! (built by `cargo build --workspace`, which the test command runs first).

#![allow(clippy::unwrap_used)]

#[path = "support/edge.rs"]
mod edge;
#[path = "../../edge-server/tests/common/redis_cluster.rs"]
mod redis_cluster;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use edge::{Edge, create_token, free_port};
use periodic::edge_sync::{EdgeOptions, EdgeSettings, EdgeSync, RetryPolicy, ShareLevel, UnitMatch};
use periodic_core::{Config, FileRecord, ScanOptions};

const PERIODIC: &str = env!("CARGO_BIN_EXE_periodic");

/// The shared function (same shape in both repositories, renamed) and one of each's own.
const MONEY: &str = "def round_amount(amount, places):\n    factor = 10 ** places\n    scaled = amount * factor\n    if scaled - int(scaled) >= 0.5:\n        scaled = int(scaled) + 1\n    else:\n        scaled = int(scaled)\n    return scaled / factor\n";
const LEDGER: &str = "def round_value(value, digits):\n    factor = 10 ** digits\n    scaled = value * factor\n    if scaled - int(scaled) >= 0.5:\n        scaled = int(scaled) + 1\n    else:\n        scaled = int(scaled)\n    return scaled / factor\n";
const OTHER: &str = "def parse_rows(text):\n    rows = []\n    for line in text.splitlines():\n        cells = line.split(',')\n        if len(cells) < 2:\n            continue\n        rows.append((cells[0].strip(), cells[1].strip()))\n    return rows\n";

struct Workspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
    tokens: PathBuf,
    token_file: PathBuf,
    token: String,
    data: PathBuf,
}

/// Two repositories, `billing` and `ledger`, under one temporary folder, plus an edge data
/// folder and a write token for tenant `team`.
fn workspace() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    for (repo, files) in [("billing", vec![("src/money.py", MONEY), ("src/rows.py", OTHER)]), ("ledger", vec![("lib/amounts.py", LEDGER)])] {
        for (path, text) in files {
            let file = root.join(repo).join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
    }
    let tokens = root.join("tokens.json");
    let token = create_token(&tokens, "team", "write");
    let token_file = root.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    Workspace { root: root.clone(), tokens, token_file, token, data: root.join("edge-data"), _dir: dir }
}

fn scan_files(root: &Path) -> Vec<FileRecord> {
    let config = Config { detection: periodic_core::config::DetectionSettings { min_lines: 4, min_tokens: 20, ..Default::default() }, ..Config::default() };
    periodic_core::scan(ScanOptions { root: root.to_path_buf(), config, use_index: true, progress: None, team: None }).unwrap().files
}

fn run_scan_edge(root: &Path, url: &str, extra: &[&str], token_file: &Path) -> Output {
    Command::new(PERIODIC)
        .arg("scan")
        .arg(root)
        .args(["--min-lines", "4", "--min-tokens", "20", "--format", "json", "--edge", url, "--edge-token-file"])
        .arg(token_file)
        .args(extra)
        .env_remove("PERIODIC_EDGE_TOKEN")
        .output()
        .unwrap()
}

fn settings(url: &str, share: ShareLevel, token: &str, root: &Path) -> EdgeSettings {
    let mut settings = EdgeSettings::resolve(root, EdgeOptions { url: Some(url.to_string()), share: Some(share), ..EdgeOptions::default() }).unwrap();
    settings.token = Some(token.to_string());
    settings.retry = RetryPolicy { initial: Duration::from_millis(100), max: Duration::from_millis(400) };
    settings
}

/// Asks the team about `files`' units until the edge has answered (bounded).
fn team_answers(sync: &EdgeSync, files: &[FileRecord]) -> Vec<Vec<UnitMatch>> {
    let units: Vec<&periodic_core::UnitRecord> = files.iter().flat_map(|file| file.units.iter()).collect();
    assert!(!units.is_empty());
    let first = sync.team_matches(&units);
    assert!(first.iter().all(Option::is_none), "nothing is known before the edge answered");
    let updates = sync.subscribe();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answers = sync.team_matches(&units);
        if answers.iter().all(Option::is_some) {
            assert!(*updates.borrow() >= 1, "the update channel ticked");
            return answers.into_iter().map(|answer| answer.unwrap().as_ref().clone()).collect();
        }
        assert!(Instant::now() < deadline, "no team answer within 30 s: {:?}", sync.status());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn scan_edge_pushes_units_that_another_repository_finds_with_their_location() {
    let ws = workspace();
    let edge = Edge::start(&ws.data, &ws.tokens, 0);
    let output = run_scan_edge(&ws.root.join("billing"), &edge.base, &[], &ws.token_file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("2 units of 2 files pushed") && stderr.contains("repository `billing`"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the JSON report stays alone on stdout");
    assert!(report["stats"].is_object());
    assert_eq!(edge.stats_units(&ws.token), 2);

    // The second repository's language server asks about its own units.
    let ledger = ws.root.join("ledger");
    let sync = EdgeSync::start(&ledger, settings(&edge.base, ShareLevel::Locations, &ws.token, &ledger));
    assert_eq!(sync.settings().repo, "ledger");
    let answers = team_answers(&sync, &scan_files(&ledger));
    assert_eq!(answers.len(), 1);
    let found = &answers[0];
    assert_eq!(found.len(), 1, "only the clone, not parse_rows: {found:?}");
    assert_eq!(found[0].repo, "billing");
    assert!(found[0].exact && found[0].similarity == 1.0, "{found:?}");
    let location = found[0].location.as_ref().expect("shared at level locations");
    assert_eq!((location.path.as_str(), location.name.as_str(), location.start_line, location.end_line), ("src/money.py", "round_amount", 1, 8));

    // A repository never hears about itself: billing asking finds nothing.
    let billing = ws.root.join("billing");
    let own = EdgeSync::start(&billing, settings(&edge.base, ShareLevel::Locations, &ws.token, &billing));
    assert!(team_answers(&own, &scan_files(&billing)).iter().all(Vec::is_empty));
}

#[test]
fn share_level_fingerprints_sends_no_paths_or_names() {
    let ws = workspace();
    let edge = Edge::start(&ws.data, &ws.tokens, 0);
    let output = run_scan_edge(&ws.root.join("billing"), &edge.base, &["--edge-share", "fingerprints"], &ws.token_file);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ledger = ws.root.join("ledger");
    let sync = EdgeSync::start(&ledger, settings(&edge.base, ShareLevel::Fingerprints, &ws.token, &ledger));
    let answers = team_answers(&sync, &scan_files(&ledger));
    assert_eq!(answers[0].len(), 1);
    assert_eq!(answers[0][0].repo, "billing");
    assert!(answers[0][0].location.is_none(), "{:?}", answers[0][0]);
    // Nothing the edge stores names a path or a function.
    let pattern = edge.get(&format!("/v1/patterns/{}", answers[0][0].pattern_id), &ws.token);
    assert!(!pattern.contains("money") && !pattern.contains("round_amount"), "{pattern}");
    for shard in std::fs::read_dir(&ws.data).unwrap() {
        let bytes = std::fs::read(shard.unwrap().path()).unwrap();
        assert!(!bytes.windows(b"round_amount".len()).any(|window| window == b"round_amount"));
        assert!(!bytes.windows(b"money.py".len()).any(|window| window == b"money.py"));
    }
}

#[test]
fn an_unreachable_edge_only_grows_the_outbox_which_drains_exactly_once() {
    let ws = workspace();
    let billing = ws.root.join("billing");
    let files = scan_files(&billing);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let sync = EdgeSync::start(&billing, settings(&url, ShareLevel::Locations, &ws.token, &billing));
    let started = Instant::now();
    sync.record_files(&files, &[]);
    let units: Vec<&periodic_core::UnitRecord> = files.iter().flat_map(|file| file.units.iter()).collect();
    assert!(sync.team_matches(&units).iter().all(Option::is_none));
    eprintln!("record_files + team_matches with the edge down returned in {:?}", started.elapsed());
    // The changes are queued and the edge is known to be down.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = sync.status();
        if status.pending_units == 2 && !status.connected && status.last_error.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "{status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let queued: i64 = rusqlite::Connection::open(billing.join(".periodic/index.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM edge_outbox", [], |row| row.get(0))
        .unwrap();
    assert_eq!(queued, 2);

    // The edge comes up on that port: the outbox drains, each unit applied once.
    let edge = Edge::start(&ws.data, &ws.tokens, port);
    let status = sync.wait_drained(Duration::from_secs(30), |_| {}).expect("drained");
    assert_eq!((status.units_sent, status.pending_units), (2, 0));
    assert_eq!(edge.stats_units(&ws.token), 2);
    assert_eq!(edge.units_ingested(), 2, "no unit was sent twice");
    // Recording the same files again queues nothing; a change queues only that unit.
    sync.record_files(&files, &[]);
    sync.wait_drained(Duration::from_secs(30), |_| {}).expect("drained");
    assert_eq!(sync.status().queued_units, 2);
    std::fs::write(billing.join("src/rows.py"), OTHER.replace("continue", "break")).unwrap();
    let changed: Vec<FileRecord> = scan_files(&billing).into_iter().filter(|file| file.path == "src/rows.py").collect();
    sync.record_files(&changed, &[]);
    let status = sync.wait_drained(Duration::from_secs(30), |_| {}).expect("drained");
    assert_eq!((status.queued_units, status.units_sent), (3, 3));
    // A removed file removes its units from the edge.
    sync.record_files(&[], &["src/rows.py".to_string()]);
    sync.wait_drained(Duration::from_secs(30), |_| {}).expect("drained");
    assert_eq!(edge.stats_units(&ws.token), 1);
    assert_eq!(edge.units_ingested(), 3);
}

#[test]
fn the_outbox_survives_the_process_and_drains_in_the_next_one() {
    let ws = workspace();
    let billing = ws.root.join("billing");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let output = run_scan_edge(&billing, &dead, &["--edge-timeout", "2"], &ws.token_file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2 unit changes stay queued"), "{stderr}");

    // Another process (this one) with the edge up sends what the first one queued.
    let edge = Edge::start(&ws.data, &ws.tokens, 0);
    let sync = EdgeSync::start(&billing, settings(&edge.base, ShareLevel::Locations, &ws.token, &billing));
    let status = sync.wait_drained(Duration::from_secs(30), |_| {}).expect("drained");
    assert_eq!(status.units_sent, 2);
    assert_eq!(edge.stats_units(&ws.token), 2);
    assert_eq!(edge.units_ingested(), 2);
}

#[test]
fn a_bad_edge_table_or_token_is_an_error_naming_it() {
    let ws = workspace();
    let billing = ws.root.join("billing");
    let url = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(billing.join(".periodic.toml"), "min_lines = 4\n[edge]\nshares = \"fingerprints\"\n").unwrap();
    let output = run_scan_edge(&billing, &url, &[], &ws.token_file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(".periodic.toml:3:") && stderr.contains("`edge.shares`"), "{stderr}");
    std::fs::write(billing.join(".periodic.toml"), "[edge]\nquery_ttl_seconds = \"long\"\n").unwrap();
    let stderr = String::from_utf8_lossy(&run_scan_edge(&billing, &url, &[], &ws.token_file).stderr).into_owned();
    assert!(stderr.contains(".periodic.toml:2:") && stderr.contains("`edge.query_ttl_seconds`"), "{stderr}");
    std::fs::remove_file(billing.join(".periodic.toml")).unwrap();

    // A read-only token may not write: the push stops and says why.
    let reader = ws.root.join("reader-token");
    std::fs::write(&reader, create_token(&ws.tokens, "team", "read")).unwrap();
    let edge = Edge::start(&ws.data, &ws.tokens, 0);
    let output = run_scan_edge(&billing, &edge.base, &[], &reader);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the token") && stderr.contains("403"), "{stderr}");
    assert_eq!(edge.stats_units(&ws.token), 0);
}

/// The layout docs/deploy.md describes (one replica per master, `--redis-wait-replicas 1`): a
/// master dies and stays dead. `scan --edge` is answered 503 (never acknowledged), gives up
/// after `--edge-timeout` and keeps every unit change queued; once the node is back, the next
/// push sends them, and the edge holds them all.
#[test]
fn a_push_to_an_edge_whose_redis_cluster_lost_a_master_stays_queued_until_it_is_back() {
    let ws = workspace();
    let billing = ws.root.join("billing");
    let mut cluster = redis_cluster::RedisCluster::start(false);
    let url = cluster.url();
    let edge = Edge::start_with(&ws.data, &ws.tokens, 0, &["--store", &url]);
    let victim = cluster.masters()[0];
    cluster.kill9(victim);

    let output = run_scan_edge(&billing, &edge.base, &["--edge-timeout", "4"], &ws.token_file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2 unit changes stay queued"), "{stderr}");
    assert!(stderr.contains("503"), "the reason names the edge's answer: {stderr}");
    assert!(!stderr.contains("500"), "{stderr}");

    cluster.restart(victim);
    cluster.wait_healthy(Duration::from_secs(30));
    let output = run_scan_edge(&billing, &edge.base, &["--edge-timeout", "20"], &ws.token_file);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(edge.stats_units(&ws.token), 2);
}
