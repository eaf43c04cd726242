//! One pattern identity and shared names across tiers, with a real `periodic-edge` on
//! loopback and two workspaces as two developers: the same id in `periodic scan`, `periodic
//! patterns`, the language server and the edge API; a name given in one workspace's editor
//! shown in the other's hover (the time it takes is printed); a read-only token keeps the
//! name local and says so; a restart without the edge still shows the team's names and
//! context from `.periodic/index.db`.

#![allow(clippy::unwrap_used)]

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
use serde_json::{Value, json};
use team::{MONEY, options, write};


/// `MONEY` with other names: the same shape, so the same pattern id everywhere.
fn renamed(from: &str, to: &str) -> String {
    MONEY.replace("round_amount", from).replace("amount", to)
}

/// A repository with two copies of `MONEY`, named as `names` says; its `.periodic.toml`
/// points `periodic scan` at the edge (the language server gets the same from its options).
fn repository(root: &Path, names: [(&str, &str); 2], edge_url: &str, token: &str) {
    for (index, (function, variable)) in names.into_iter().enumerate() {
        write(root, &format!("src/copy{index}.py"), &renamed(function, variable));
    }
    write(root, "edge.token", token);
    write(root, ".periodic.toml", &format!("min_lines = 4\nmin_tokens = 20\n\n[edge]\nurl = \"{edge_url}\"\nshare = \"locations\"\ntoken_file = \"edge.token\"\nquery_ttl_seconds = 1\n"));
}

fn periodic(args: &[&str], dir: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_periodic")).args(args).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "periodic {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn hover(client: &mut LspClient, uri: &str) -> String {
    let answer = client.call("textDocument/hover", json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 5}}));
    answer["contents"]["value"].as_str().unwrap_or_default().to_string()
}

fn poll_hover(client: &mut LspClient, uri: &str, wanted: &str) -> String {
    let deadline = Instant::now() + lsp_client::PATIENCE;
    loop {
        let markdown = hover(client, uri);
        if markdown.contains(wanted) {
            return markdown;
        }
        assert!(Instant::now() < deadline, "the hover never showed {wanted:?}; last:\n{markdown}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pattern ids the language server lists as workspace symbols.
fn symbol_ids(client: &mut LspClient) -> Vec<String> {
    let symbols = client.poll("workspace/symbol", json!({"query": ""}), |answer| answer.as_array().is_some_and(|symbols| !symbols.is_empty()));
    let mut ids: Vec<String> = symbols.as_array().unwrap().iter().map(|symbol| symbol["containerName"].as_str().unwrap().to_string()).collect();
    ids.dedup();
    ids
}

fn name_pattern(client: &mut LspClient, id: &str, name: &str) -> Value {
    client.call("workspace/executeCommand", json!({"command": "periodic.namePattern", "arguments": [id, name]}))
}

#[test]
fn one_id_everywhere_and_names_flow_between_two_developers_through_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let tokens = base.join("tokens.json");
    let writer = create_token(&tokens, "team", "write");
    let reader = create_token(&tokens, "team", "read");
    let edge = Edge::start(&base.join("edge-data"), &tokens, 0);
    let (billing, ledger, viewer) = (base.join("billing"), base.join("ledger"), base.join("viewer"));
    repository(&billing, [("round_amount", "amount"), ("round_price", "price")], &edge.base, &writer);
    repository(&ledger, [("round_value", "value"), ("round_total", "total")], &edge.base, &writer);
    repository(&viewer, [("round_cost", "cost"), ("round_fee", "fee")], &edge.base, &reader);

    // One id: the command line (scan report and pattern list), the language server and the edge.
    let scanned = periodic(&["scan", ".", "--format", "json"], &billing);
    let id = scanned["patterns"][0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("P-") && id.len() == 18, "{id}");
    let listed = periodic(&["patterns", ".", "--format", "json"], &billing);
    assert_eq!(listed[0]["id"], id.as_str(), "periodic patterns");
    let (mut first, _) = LspClient::initialized(&[&billing], json!({}), options(&edge.base, &writer, "billing"));
    assert_eq!(symbol_ids(&mut first), vec![id.clone()], "workspace symbols");
    let copy = first.open(&billing.join("src/copy0.py"), "python", &renamed("round_amount", "amount"));
    assert!(poll_hover(&mut first, &copy, "**Pattern").contains(&id), "hover");
    let deadline = Instant::now() + lsp_client::PATIENCE;
    while edge.stats_units(&writer) < 2 {
        assert!(Instant::now() < deadline, "billing's units never reached the edge");
        std::thread::sleep(Duration::from_millis(50));
    }
    let team: Value = serde_json::from_str(&edge.get("/v1/patterns", &writer)).unwrap();
    assert_eq!(team["patterns"][0]["id"], id.as_str(), "edge API: {team}");
    let (mut second, _) = LspClient::initialized(&[&ledger], json!({}), options(&edge.base, &writer, "ledger"));
    assert_eq!(symbol_ids(&mut second), vec![id.clone()], "the other developer's copies are the same family");
    let amounts = second.open(&ledger.join("src/copy0.py"), "python", &renamed("round_value", "value"));
    poll_hover(&mut second, &amounts, "**Pattern");

    // A name given in billing's editor goes to the edge and shows in ledger's editor.
    let named = name_pattern(&mut first, &id, "money rounding");
    assert_eq!(named["team"], "shared", "{named}");
    let started = Instant::now();
    let markdown = poll_hover(&mut second, &amounts, "money rounding");
    eprintln!("name propagation: named in billing, shown in ledger's hover after {} ms", started.elapsed().as_millis());
    assert!(markdown.contains("**Pattern `money rounding`**"), "{markdown}");
    assert!(markdown.contains("Named for the team by `") && !markdown.contains(&writer), "who named it, never the secret: {markdown}");
    let detail: Value = serde_json::from_str(&edge.get(&format!("/v1/patterns/{id}"), &reader)).unwrap();
    assert_eq!(detail["summary"]["name"], "money rounding");
    // The team's name is used by every answer that names the pattern.
    let diagnostics = second.diagnostics(&amounts, |diagnostics| diagnostics.iter().any(|d| d["message"].as_str().unwrap().contains("money rounding")));
    assert_eq!(diagnostics[0]["code"], id.as_str());
    let symbols = second.call("workspace/symbol", json!({"query": "money rounding"}));
    assert!(!symbols.as_array().unwrap().is_empty(), "{symbols}");
    let lenses = second.call("textDocument/codeLens", json!({"textDocument": {"uri": amounts}}));
    let resolved = second.call("codeLens/resolve", lenses[0].clone());
    assert!(resolved["command"]["title"].as_str().unwrap().contains("money rounding"), "{resolved}");
    // And by the command line, with the edge configured in `.periodic.toml`.
    let listed = periodic(&["patterns", ".", "--format", "json"], &ledger);
    assert_eq!(listed[0]["name"], "money rounding", "{listed}");

    // Last writer wins: ledger renames it, billing sees the new name.
    assert_eq!(name_pattern(&mut second, &id, "round half up")["team"], "shared");
    let started = Instant::now();
    poll_hover(&mut first, &copy, "round half up");
    eprintln!("rename propagation: renamed in ledger, shown in billing's hover after {} ms", started.elapsed().as_millis());

    // A read-only token: the name stays in that workspace, and the user is told.
    let (mut third, _) = LspClient::initialized(&[&viewer], json!({}), options(&edge.base, &reader, "viewer"));
    assert_eq!(symbol_ids(&mut third), vec![id.clone()]);
    let cost = third.open(&viewer.join("src/copy0.py"), "python", &renamed("round_cost", "cost"));
    poll_hover(&mut third, &cost, "round half up");
    // Times are whole seconds and a tie goes to the team: name it a second later.
    std::thread::sleep(Duration::from_millis(1100));
    let refused = name_pattern(&mut third, &id, "viewer's own name");
    assert_eq!(refused["team"], "refused", "{refused}");
    let warning = third.notification("window/showMessage", |params| params["message"].as_str().is_some_and(|text| text.contains("may not write")));
    assert!(warning["message"].as_str().unwrap().contains(&id), "{warning}");
    let markdown = poll_hover(&mut third, &cost, "viewer's own name");
    assert!(markdown.contains("Team name: 'round half up'"), "the team's name beside the local one: {markdown}");
    let detail: Value = serde_json::from_str(&edge.get(&format!("/v1/patterns/{id}"), &reader)).unwrap();
    assert_eq!(detail["summary"]["name"], "round half up", "the edge kept the team's name");
    drop(third);

    // The team's context: ledger's copy is also in billing.
    let markdown = poll_hover(&mut second, &amounts, "other repositor");
    assert!(markdown.contains("also in 1 other repository of your team (billing)"), "{markdown}");

    // Restart without the edge: the team's name and context come from the index, marked stale.
    drop(edge);
    assert_eq!(second.shutdown(), 0);
    std::thread::sleep(Duration::from_millis(1100));
    let (mut again, _) = LspClient::initialized(&[&ledger], json!({}), options("http://127.0.0.1:9", &writer, "ledger"));
    let amounts = again.open(&ledger.join("src/copy0.py"), "python", &renamed("round_value", "value"));
    // The kept name shows as soon as the stored index is loaded; the kept team answers once
    // the sync has started after the background re-index.
    let markdown = poll_hover(&mut again, &amounts, "also in 1 other repository of your team (billing)");
    assert!(markdown.contains("round half up"), "{markdown}");
    assert!(markdown.contains("stale"), "answers older than the query TTL are marked: {markdown}");
    drop(first);
}
