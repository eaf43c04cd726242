//! The team analysis cache end to end, with a real `periodic-edge` on loopback: a scan with a
//! write token fills it; a fresh copy of the repository scanned by a teammate (read token)
//! parses nothing and reports exactly the same pairs and patterns; what the edge holds
//! carries none of the code's names, literals, comments or paths; another tenant gets only
//! misses; a damaged entry is refused and the file parsed; with the edge gone the scan parses
//! everything and says so; the language server starting in a fresh copy takes its index from
//! the edge too.

#![allow(clippy::unwrap_used)]

#[path = "support/edge.rs"]
mod edge;
#[path = "support/lsp_client.rs"]
mod lsp_client;
// Only `write` of the shared team support is used here; the language server tests use the rest.
#[path = "support/team.rs"]
#[allow(dead_code)]
mod team;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use edge::{Edge, create_token};
use lsp_client::LspClient;
use serde_json::{Value, json};
use team::write;

/// A Python function of about twenty lines; `variant` adds a logging line every few lines,
/// so variants pair as near-miss (Type-3) clones.
fn payroll(name: &str, variant: usize) -> String {
    let mut lines = vec![
        format!("def {name}(employee_ledger, bonus_rate, ceiling):"),
        "    # SECRET_COMMENT_TEXT on how bonuses are capped".to_string(),
        "    total = 0".to_string(),
        "    count = 0".to_string(),
        "    skipped = []".to_string(),
        "    for entry in employee_ledger:".to_string(),
        "        if entry.status != 'TOP-SECRET-LITERAL':".to_string(),
        "            skipped.append(entry.id)".to_string(),
        "            continue".to_string(),
        "        amount = entry.amount * (1 + bonus_rate) + 31337".to_string(),
        "        if amount > ceiling:".to_string(),
        "            amount = ceiling".to_string(),
        "        total += amount".to_string(),
        "        count += 1".to_string(),
        "    average = total / count if count else 0".to_string(),
        "    report = {'total': round(total, 2), 'count': count}".to_string(),
        "    report['average'] = round(average, 2)".to_string(),
        "    report['skipped'] = sorted(skipped)".to_string(),
        "    return report".to_string(),
    ];
    for edit in 0..variant {
        let line = 3 + (edit * 5) % (lines.len() - 4);
        lines.insert(line, format!("    audit_trail.debug('step {edit}', count)"));
    }
    lines.join("\n") + "\n"
}

const JAVASCRIPT: &str = "export function reconcileConfidentialAccounts(ledgerRows, threshold) {\n  const flagged = [];\n  for (const row of ledgerRows) {\n    if (row.balance > threshold && row.owner !== 'CLASSIFIED') {\n      flagged.push({ id: row.id, balance: row.balance });\n    }\n  }\n  flagged.sort((a, b) => b.balance - a.balance);\n  return flagged;\n}\n";

/// What the edge must never learn from an entry.
const SECRETS: [&str; 9] =
    ["payroll", "employee_ledger", "bonus_rate", "SECRET_COMMENT", "TOP-SECRET", "31337", "reconcileConfidential", "CLASSIFIED", "confidential_dir"];

/// A repository with exact, renamed and near-miss copies in two languages, under a folder
/// whose name is itself a secret.
fn repository(root: &Path) {
    for (index, variant) in [0, 0, 1, 2, 3].into_iter().enumerate() {
        write(root, &format!("confidential_dir/payroll_{index}.py"), &format!("{}\n\n{}", payroll(&format!("payroll_run_{index}"), variant), payroll("shared_helper", 0)));
    }
    for index in 0..3 {
        write(root, &format!("confidential_dir/web/accounts_{index}.js"), &JAVASCRIPT.replace("threshold", &format!("limit{index}")));
    }
    write(root, "confidential_dir/notes.py", "def unrelated(x):\n    return x + 1\n");
}

fn configure(root: &Path, edge_url: &str, token: &str) {
    write(root, "edge.token", token);
    write(root, ".periodic.toml", &format!("min_lines = 4\nmin_tokens = 20\n\n[edge]\nurl = \"{edge_url}\"\nshare = \"fingerprints\"\ntoken_file = \"edge.token\"\n"));
}

/// `periodic scan --format json`: the report and what was said on standard error.
fn scan(dir: &Path, extra: &[&str]) -> (Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_periodic")).args(["scan", ".", "--format", "json"]).args(extra).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "periodic scan: {}", String::from_utf8_lossy(&output.stderr));
    (serde_json::from_slice(&output.stdout).unwrap(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The report without what legitimately differs between two runs.
fn results(report: &Value) -> Value {
    json!({"patterns": report["patterns"], "pairs": report["pairs"], "files": report["stats"]["files"], "units": report["stats"]["units"]})
}

fn post(edge: &Edge, path: &str, token: &str, body: &Value) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
        let response = client.post(format!("{}{path}", edge.base)).bearer_auth(token).json(body).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

fn content_hash(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap()).to_hex().to_string()
}

/// The entries the edge holds for these files, decoded from base64.
fn stored_entries(edge: &Edge, token: &str, files: &[&Path]) -> Vec<Vec<u8>> {
    let hashes: Vec<String> = files.iter().map(|file| content_hash(file)).collect();
    let (status, body) = post(edge, "/v1/analyses/lookup", token, &json!({"analysis": analysis_key(), "hashes": hashes}));
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| line["entry"].as_str().map(|entry| base64::engine::general_purpose::STANDARD.decode(entry).unwrap()))
        .collect()
}

fn analysis_key() -> String {
    periodic_core::team_cache::analysis_key()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".periodic" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn metric(edge: &Edge, prefix: &str) -> f64 {
    edge.get("/metrics", "").lines().find(|line| line.starts_with(prefix)).and_then(|line| line.split_whitespace().last()).map_or(0.0, |value| value.parse().unwrap())
}

#[test]
fn a_teammates_fresh_copy_is_analysed_from_the_edge_with_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let writer = create_token(&tokens, "team", "write");
    let reader = create_token(&tokens, "team", "read");
    let stranger = create_token(&tokens, "other-team", "write");
    let edge = Edge::start(&dir.path().join("edge-data"), &tokens, 0);

    // The first developer's scan fills the cache.
    let first = dir.path().join("first");
    repository(&first);
    configure(&first, &edge.base, &writer);
    let (pushed, said) = scan(&first, &[]);
    assert!(said.contains("entries uploaded"), "{said}");
    assert_eq!(pushed["stats"]["files_parsed"], pushed["stats"]["files"]);
    let kinds: Vec<&str> = pushed["pairs"].as_array().unwrap().iter().filter_map(|pair| pair["kind"].as_str()).collect();
    assert!(kinds.contains(&"T3") && kinds.iter().any(|kind| *kind != "T3"), "the repository has near-miss and exact pairs: {kinds:?}");

    // A teammate's fresh copy: nothing parsed, the same pairs and patterns.
    let second = dir.path().join("second");
    copy_tree(&first, &second);
    configure(&second, &edge.base, &reader);
    let (warm, said) = scan(&second, &[]);
    assert_eq!(warm["stats"]["files_parsed"], 0, "{said}");
    assert!(said.contains("this tree's pairs were reused"), "{said}");
    assert_eq!(results(&warm), results(&pushed));
    // Its own index was written: a second scan needs neither the edge nor parsing.
    let (again, _) = scan(&second, &["--no-team-cache"]);
    assert_eq!(again["stats"]["files_parsed"], 0);
    assert_eq!(results(&again), results(&pushed));

    // What the edge holds says nothing of the code but its shape.
    let files = [first.join("confidential_dir/payroll_3.py"), first.join("confidential_dir/web/accounts_1.js")];
    let entries = stored_entries(&edge, &reader, &files.iter().map(|file| file.as_path()).collect::<Vec<_>>());
    assert_eq!(entries.len(), 2, "both files have an entry");
    for entry in &entries {
        let text = String::from_utf8_lossy(entry).to_lowercase();
        for secret in SECRETS {
            assert!(!text.contains(&secret.to_lowercase()), "an entry holds {secret:?}");
        }
    }

    // Another tenant neither reads the entries nor learns they exist.
    assert!(stored_entries(&edge, &stranger, &files.iter().map(|file| file.as_path()).collect::<Vec<_>>()).is_empty());
    let third = dir.path().join("third");
    copy_tree(&first, &third);
    configure(&third, &edge.base, &stranger);
    let (other, _) = scan(&third, &[]);
    assert_eq!(other["stats"]["files_parsed"], other["stats"]["files"]);
    assert_eq!(results(&other), results(&pushed));

    // A damaged entry is refused, reported, and its file parsed. (An entry the edge holds is
    // never replaced, so the damage goes under the hash of an edited file.)
    let fourth = dir.path().join("fourth");
    copy_tree(&first, &fourth);
    configure(&fourth, &edge.base, &reader);
    let damaged = fourth.join("confidential_dir/payroll_2.py");
    std::fs::write(&damaged, std::fs::read_to_string(&damaged).unwrap() + "\n# edited\n").unwrap();
    let junk = base64::engine::general_purpose::STANDARD.encode(b"PAF1 not an analysis");
    let (status, body) =
        post(&edge, "/v1/analyses", &writer, &json!({"analysis": analysis_key(), "entries": [{"hash": content_hash(&damaged), "entry": junk}]}));
    assert_eq!(status, 200, "{body}");
    let (refused, said) = scan(&fourth, &["--no-index"]);
    assert!(said.contains("confidential_dir/payroll_2.py: the team cache's analysis was refused"), "{said}");
    assert_eq!(refused["stats"]["files_parsed"], 1);
    let (cold, _) = scan(&fourth, &["--no-index", "--no-team-cache"]);
    assert_eq!(results(&refused), results(&cold));

    // The language server in a fresh copy takes its index from the edge as well.
    let hits_before = metric(&edge, "edge_analysis_hashes_total{outcome=\"hit\"}");
    let fifth = dir.path().join("fifth");
    copy_tree(&first, &fifth);
    let options = json!({"debounceMs": 0, "minLines": 4, "minTokens": 20, "edge": {"url": edge.base, "share": "fingerprints", "token": reader, "repo": "fifth"}});
    let (mut client, _) = LspClient::initialized(&[fifth.as_path()], json!({}), options);
    let opened = fifth.join("confidential_dir/payroll_1.py");
    let uri = client.open(&opened, "python", &std::fs::read_to_string(&opened).unwrap());
    let diagnostics = client.diagnostics(&uri, |diagnostics| !diagnostics.is_empty());
    assert!(!diagnostics.is_empty());
    let hits = metric(&edge, "edge_analysis_hashes_total{outcome=\"hit\"}") - hits_before;
    assert!(hits >= 8.0, "the language server's scan found its files on the edge ({hits} hits)");
    client.shutdown();

    // The edge gone: the scan parses everything, says so, and finds the same.
    drop(edge);
    let sixth = dir.path().join("sixth");
    copy_tree(&first, &sixth);
    configure(&sixth, &format!("http://127.0.0.1:{}", edge::free_port()), &reader);
    let (offline, said) = scan(&sixth, &[]);
    assert!(said.contains("the edge did not answer"), "{said}");
    assert_eq!(offline["stats"]["files_parsed"], offline["stats"]["files"]);
    assert_eq!(results(&offline), results(&pushed));
}
