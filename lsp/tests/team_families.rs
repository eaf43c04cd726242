//! A near-miss family across two repositories is one team pattern, with a real
//! `periodic-edge` on loopback: repository `billing` holds two functions the engine pairs as
//! a near miss (two shapes), its language server sends each unit with its family, and
//! repository `shop` holds a renamed copy of one of them, pushed by `periodic scan --edge`.
//! The edge then lists one pattern over both repositories, with the id `periodic scan`
//! reports in `billing`, its occurrences marked `t2` or `t3`, and the other shape's id
//! resolving to it. When an edit in billing's editor ends the family, the unit that is still
//! there is sent again without it (its own code did not change) and the team pattern is gone.

#[path = "support/edge.rs"]
mod edge;
#[path = "support/lsp_client.rs"]
mod lsp_client;
#[path = "support/team.rs"]
mod team;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use edge::{Edge, create_token};
use lsp_client::LspClient;
use periodic_core::{Config, FileRecord, ScanOptions};
use serde_json::{Value, json};
use team::{options, write};

/// Two functions the engine pairs as a near miss (`tests/near_miss.rs`): edits on many lines,
/// so their shapes (t2) differ.
const ORDERS: &str = "def summarize_orders(orders, currency, tax_rate):
    if not orders:
        return None
    total = 0
    paid = []
    refunds = 0
    for order in orders:
        if order.status == \"refunded\":
            refunds += order.amount
            continue
        if order.status != \"paid\":
            continue
        amount = order.amount * order.quantity
        total += amount
        paid.append(order.identifier)
    taxed = total * (1 + tax_rate)
    average = taxed / len(paid)
    report = {\"total\": taxed, \"count\": len(paid), \"average\": average, \"refunds\": refunds}
    return format_report(report, currency)
";

const LEDGER: &str = "def summarize_ledger(entries, currency, tax_rate):
    if not entries or currency is None:
        return None
    total = 0
    paid = []
    refunds = 0
    for entry in entries:
        if entry.status == \"refunded\":
            refunds = refunds + entry.amount
            continue
        elif entry.status not in (\"paid\", \"settled\"):
            continue
        amount = entry.amount * max(entry.quantity, 1)
        total = total + amount
        paid.append(entry.identifier)
    taxed = total * (1 + tax_rate)
    average = taxed / max(len(paid), 1)
    report = dict(total=taxed, count=len(paid), average=average, refunds=refunds)
    return format_report(report, currency)
";

fn periodic(args: &[&str], dir: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_periodic")).args(args).current_dir(dir).env_remove("PERIODIC_EDGE_TOKEN").output().expect("run periodic");
    assert!(output.status.success(), "periodic {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("a JSON report")
}

/// The shape (t2) of the only unit of `path`, as the engine computes it.
fn shape_of(files: &[FileRecord], path: &str) -> u64 {
    let file = files.iter().find(|file| file.path == path).expect("the file was scanned");
    assert_eq!(file.units.len(), 1, "{path} holds one function");
    file.units[0].hashes.t2
}

/// Polls `GET path` until `done` holds for the answer (the push and the sync are asynchronous).
fn poll_edge(edge: &Edge, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + lsp_client::PATIENCE;
    loop {
        let answer: Value = serde_json::from_str(&edge.get(path, token)).expect("JSON answer");
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "GET {path} never got there; last: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `POST path` with a JSON body; the answer's JSON.
fn post(edge: &Edge, path: &str, token: &str, body: &Value) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
        let response = client.post(format!("{}{path}", edge.base)).bearer_auth(token).json(body).send().await.expect("POST");
        assert!(response.status().is_success(), "POST {path}: {}", response.status());
        response.json().await.expect("JSON answer")
    })
}

/// (repository, path, kind) of each occurrence, sorted.
fn occurrences(detail: &Value) -> Vec<(String, String, String)> {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let mut found: Vec<(String, String, String)> = detail["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .map(|occurrence| (text(&occurrence["repo"]), text(&occurrence["location"]["path"]), text(&occurrence["kind"])))
        .collect();
    found.sort();
    found
}

#[test]
fn a_near_miss_family_across_two_repositories_forms_one_team_pattern() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().canonicalize().expect("canonical temp dir");
    let tokens = base.join("tokens.json");
    let writer = create_token(&tokens, "team", "write");
    let edge = Edge::start(&base.join("edge-data"), &tokens, 0);
    let (billing, shop) = (base.join("billing"), base.join("shop"));
    write(&billing, "orders.py", ORDERS);
    write(&billing, "ledger.py", LEDGER);

    // The local family: one pattern of two shapes; its id is one of them.
    let scanned = periodic(&["scan", ".", "--format", "json", "--no-index"], &billing);
    let patterns = scanned["patterns"].as_array().expect("patterns");
    assert_eq!(patterns.len(), 1, "one near-miss family: {scanned}");
    let id = patterns[0]["id"].as_str().expect("an id").to_string();
    let outcome = periodic_core::scan(ScanOptions { root: billing.clone(), config: Config::default(), use_index: false, progress: None, team: None }).expect("scan");
    let (orders, ledger) = (shape_of(&outcome.files, "orders.py"), shape_of(&outcome.files, "ledger.py"));
    assert_ne!(orders, ledger, "a near miss: two shapes");
    let shape_id = |shape: u64| format!("P-{shape:016x}");
    let (id_file, id_text, other) = if shape_id(orders) == id { ("orders.py", ORDERS, ledger) } else { ("ledger.py", LEDGER, orders) };
    assert!([shape_id(orders), shape_id(ledger)].contains(&id), "{id} is one of the family's shapes");

    // Billing's language server sends both units, the one not of the id's shape with its
    // family: the edge already sees one pattern of two units in one repository.
    let (mut client, _) = LspClient::initialized(&[&billing], json!({}), options(&edge.base, &writer, "billing"));
    let symbols = client.poll("workspace/symbol", json!({"query": ""}), |answer| answer.as_array().is_some_and(|symbols| !symbols.is_empty()));
    let listed: Vec<&str> = symbols.as_array().expect("symbols").iter().filter_map(|symbol| symbol["containerName"].as_str()).collect();
    assert!(!listed.is_empty() && listed.iter().all(|listed| *listed == id), "the language server lists {id}: {symbols}");
    let team = poll_edge(&edge, "/v1/patterns", &writer, |answer| answer["patterns"].as_array().is_some_and(|patterns| !patterns.is_empty()));
    assert_eq!((team["patterns"][0]["id"].as_str(), team["patterns"][0]["units"].as_u64()), (Some(id.as_str()), Some(2)), "{team}");

    // Shop holds a renamed copy of the function of the id's shape, pushed from the command line.
    let renamed = id_text.replace("summarize_", "summarise_").replace("currency", "money");
    write(&shop, "sales.py", &renamed);
    let token_file = base.join("token");
    std::fs::write(&token_file, &writer).expect("token file");
    let url = edge.base.clone();
    let token_path = token_file.to_string_lossy().to_string();
    periodic(&["scan", ".", "--format", "json", "--edge", &url, "--edge-token-file", &token_path, "--edge-repo", "shop"], &shop);

    // One team pattern over both repositories, with billing's id.
    let team = poll_edge(&edge, "/v1/patterns", &writer, |answer| answer["patterns"][0]["repos"].as_u64() == Some(2));
    let listed = team["patterns"].as_array().expect("patterns");
    assert_eq!(listed.len(), 1, "one team pattern: {team}");
    assert_eq!((listed[0]["id"].as_str(), listed[0]["units"].as_u64()), (Some(id.as_str()), Some(3)), "{team}");
    let detail: Value = serde_json::from_str(&edge.get(&format!("/v1/patterns/{id}"), &writer)).expect("detail");
    let near_file = if id_file == "orders.py" { "ledger.py" } else { "orders.py" };
    let expected = vec![
        ("billing".to_string(), id_file.to_string(), "t2".to_string()),
        ("billing".to_string(), near_file.to_string(), "t3".to_string()),
        ("shop".to_string(), "sales.py".to_string(), "t2".to_string()),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(occurrences(&detail), expected, "{detail}");

    // The other shape's id resolves to the family.
    let through_other: Value = serde_json::from_str(&edge.get(&format!("/v1/patterns/{}", shape_id(other)), &writer)).expect("detail");
    assert_eq!(through_other, detail, "P-{other:016x} answers with the family");

    // Shop's editor asking about billing's near miss gets the family's id with the match.
    let near = &outcome.files.iter().find(|file| file.path == near_file).expect("scanned").units[0];
    let query = json!({"sketches": [{"id": "near", "t2_hash": format!("{:016x}", near.hashes.t2), "sketch": periodic_wire::Sketch(*near.sketch.as_deref().expect("a fresh record holds its sketch")).to_base64()}],
                       "exclude_repo": "shop"});
    let answer = post(&edge, "/v1/query", &writer, &query);
    let matches = answer["results"][0]["matches"].as_array().expect("matches");
    assert!(matches.iter().any(|found| found["location"]["path"] == near_file && found["exact"] == true), "{answer}");
    assert!(matches.iter().all(|found| found["pattern_id"] == id.as_str()), "every match names the family: {answer}");

    // Billing's developer replaces the function of the id's shape with something else: the
    // near miss left behind is in no family any more, and the language server sends it again
    // without one, so the edge no longer joins it with shop's copy.
    let uri = client.open(&billing.join(id_file), "python", id_text);
    let unrelated = "def greet(name, greeting):\n    text = greeting + ', ' + name\n    if not name:\n        text = greeting\n    return text.strip()\n";
    client.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": unrelated}]}));
    let team = poll_edge(&edge, "/v1/patterns", &writer, |answer| answer["patterns"].as_array().is_some_and(Vec::is_empty));
    assert_eq!(team["patterns"], json!([]), "shop's copy and billing's near miss are two shapes again");
    let alone: Value = serde_json::from_str(&edge.get(&format!("/v1/patterns/{}", shape_id(other)), &writer)).expect("detail");
    assert_eq!((alone["summary"]["id"].as_str(), alone["summary"]["units"].as_u64()), (Some(shape_id(other).as_str()), Some(1)), "{alone}");
    assert_eq!(client.shutdown(), 0);
}
