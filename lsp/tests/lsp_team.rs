//! Two workspaces, two `periodic lsp` processes, one real `periodic-edge` on loopback: the
//! second sees the first's clone in its hover and `periodic/similar`; with the edge stopped
//! both keep answering locally, and changes made meanwhile reach the edge when it returns.

#![allow(clippy::unwrap_used)]

#[path = "support/edge.rs"]
mod edge;
#[path = "support/lsp_client.rs"]
mod lsp_client;
#[path = "support/team.rs"]
mod team;

use edge::{Edge, create_token};
use lsp_client::LspClient;
use serde_json::{Value, json};
use team::{MONEY, options, write};

const LEDGER: &str = "def round_value(value, digits):\n    factor = 10 ** digits\n    scaled = value * factor\n    if scaled - int(scaled) >= 0.5:\n        scaled = int(scaled) + 1\n    else:\n        scaled = int(scaled)\n    return scaled / factor\n";
const ROWS: &str = "def parse_rows(text):\n    rows = []\n    for line in text.splitlines():\n        cells = line.split(',')\n        if len(cells) < 2:\n            continue\n        rows.append((cells[0].strip(), cells[1].strip()))\n    return rows\n";

fn team_entries(client: &mut LspClient, uri: &str) -> Value {
    client.poll("periodic/similar", json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": 4}}), |answer| {
        answer["similar"].as_array().unwrap().iter().any(|entry| entry["repo"] == "billing")
    })
}

#[test]
fn a_second_workspace_sees_the_first_ones_clone_through_the_edge_and_survives_it_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let (billing, ledger) = (base.join("billing"), base.join("ledger"));
    write(&billing, "src/money.py", MONEY);
    write(&billing, "src/rows.py", ROWS);
    write(&ledger, "lib/amounts.py", LEDGER);
    let tokens = base.join("tokens.json");
    let token = create_token(&tokens, "team", "write");
    let data = base.join("edge-data");
    let edge = Edge::start(&data, &tokens, 0);
    let url = edge.base.clone();

    let (mut first, _) = LspClient::initialized(&[&billing], json!({}), options(&url, &token, "billing"));
    // The first server pushes its workspace after indexing it.
    let deadline = std::time::Instant::now() + lsp_client::PATIENCE;
    while edge.stats_units(&token) < 2 {
        assert!(std::time::Instant::now() < deadline, "billing's units never reached the edge");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let (mut second, _) = LspClient::initialized(&[&ledger], json!({}), options(&url, &token, "ledger"));
    let amounts = second.open(&ledger.join("lib/amounts.py"), "python", LEDGER);
    let answer = team_entries(&mut second, &amounts);
    let entry = answer["similar"].as_array().unwrap().iter().find(|entry| entry["repo"] == "billing").unwrap().clone();
    assert_eq!(entry["uri"], "periodic-edge://billing/src/money.py");
    assert_eq!(entry["name"], "round_amount");
    assert_eq!(answer["unit"]["name"], "round_value");
    let hover = second.call("textDocument/hover", json!({"textDocument": {"uri": amounts}, "position": {"line": 0, "character": 5}}));
    let markdown = hover["contents"]["value"].as_str().unwrap();
    assert!(markdown.contains("repo `billing`: src/money.py:1 `round_amount` — 100%"), "{markdown}");
    let diagnostics = second.diagnostics(&amounts, |diagnostics| !diagnostics.is_empty());
    assert!(diagnostics[0]["message"].as_str().unwrap().starts_with("Also in repo `billing`: src/money.py:1"), "{diagnostics:?}");

    // The edge goes away: both servers keep answering from local state.
    let units_before = edge.stats_units(&token);
    drop(edge);
    assert_eq!(first.call("periodic/patterns", json!({})), json!([]), "billing alone has no local clone");
    let money = first.open(&billing.join("src/money.py"), "python", MONEY);
    let hover = first.call("textDocument/hover", json!({"textDocument": {"uri": money}, "position": {"line": 0, "character": 5}}));
    assert!(hover.is_null() || hover["contents"]["value"].as_str().is_some());
    let renamed = LEDGER.replace("round_value", "round_ledger_value");
    second.notify("textDocument/didChange", json!({"textDocument": {"uri": amounts, "version": 2}, "contentChanges": [{"text": renamed}]}));
    second.diagnostics_at(&amounts, 2);
    second.notify("textDocument/didChange", json!({"textDocument": {"uri": amounts, "version": 3}, "contentChanges": [{"text": format!("{renamed}\n{ROWS}")}]}));
    second.diagnostics_at(&amounts, 3);

    // The edge returns on the same address: the outbox drains.
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let edge = Edge::start(&data, &tokens, port);
    let deadline = std::time::Instant::now() + lsp_client::PATIENCE;
    while edge.stats_units(&token) <= units_before {
        assert!(std::time::Instant::now() < deadline, "changes made while the edge was away never arrived");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(first.shutdown(), 0);
    assert_eq!(second.shutdown(), 0);
}

#[test]
fn hover_tells_how_common_a_shape_is_across_the_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let billing = base.join("billing");
    write(&billing, "src/money.py", MONEY);
    write(&billing, "src/ledger.py", LEDGER);
    let cloud_tokens = base.join("cloud-tokens.json");
    let cloud_token_file = base.join("cloud-token");
    std::fs::write(&cloud_token_file, create_token(&cloud_tokens, "edge-one", "cloud-push")).unwrap();
    let cloud = Edge::start_with(&base.join("cloud-data"), &cloud_tokens, 0, &["--role", "cloud"]);
    let tokens = base.join("tokens.json");
    let token = create_token(&tokens, "team", "write");
    let token_file = cloud_token_file.display().to_string();
    let uplink = ["--cloud-url", cloud.base.as_str(), "--cloud-token-file", token_file.as_str(), "--cloud-push-interval-ms", "50", "--cloud-cache-ttl", "3"];
    let edge = Edge::start_with(&base.join("edge-data"), &tokens, 0, &uplink);

    let (mut client, _) = LspClient::initialized(&[&billing], json!({}), options(&edge.base, &token, "billing"));
    let money = client.open(&billing.join("src/money.py"), "python", MONEY);
    let hover = client.poll("textDocument/hover", json!({"textDocument": {"uri": money}, "position": {"line": 0, "character": 5}}), |hover| {
        hover["contents"]["value"].as_str().is_some_and(|text| text.contains("Common across the organisation"))
    });
    let markdown = hover["contents"]["value"].as_str().unwrap();
    assert!(markdown.contains("Common across the organisation: 1 team, 1 repositories"), "{markdown}");
    assert!(markdown.contains("src/ledger.py:1"), "the local copy is still listed: {markdown}");
    assert_eq!(client.shutdown(), 0);
}
