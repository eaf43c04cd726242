//! End-to-end tests of `periodic lsp`: the real binary, JSON-RPC with Content-Length
//! framing over its pipes, a real workspace on disk.

#![allow(clippy::unwrap_used)]

#[path = "support/lsp_client.rs"]
mod lsp_client;

use std::path::{Path, PathBuf};

use lsp_client::{LspClient, apply_edits, uri_of};
use serde_json::{Value, json};

const ORDERS: &str = r#""""Orders."""


def order_total(orders, tax_rate):
    total = 0
    count = 0
    label = "orders"
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
    average = total / count if count else 0
    rounded = round(total, 2)
    summary = {"total": rounded, "count": count, "average": average, "label": label}
    return summary
"#;

const INVOICES: &str = r#""""Invoices."""

import math


def invoice_amount(invoices, vat):
    amount = 0
    number = 0
    label = "invoices"
    for invoice in invoices:
        if invoice.state == "open":
            amount += invoice.net * (1 + vat)
            number += 1
    mean = amount / number if number else 0
    rounded = round(amount, 2)
    result = {"total": rounded, "count": number, "average": mean, "label": label}
    return result
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

/// A workspace with one Type-2 clone: `order_total` (0-based lines 3..) in pkg/orders.py
/// and `invoice_amount` (0-based lines 5..) in pkg/invoices.py.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    std::fs::write(root.join("pkg/orders.py"), ORDERS).unwrap();
    std::fs::write(root.join("pkg/invoices.py"), INVOICES).unwrap();
    (dir, root)
}

fn push_client() -> Value {
    json!({"window": {"showDocument": {"support": true}}, "workspace": {"codeLens": {"refreshSupport": false}}})
}

fn fast() -> Value {
    json!({"debounceMs": 0})
}

fn position(line: u32, character: u32) -> Value {
    json!({"line": line, "character": character})
}

fn text_position(uri: &str, line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": uri}, "position": position(line, character)})
}

fn full_change(uri: &str, version: i32, text: &str) -> Value {
    json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]})
}

fn error_code(response: &Value) -> i64 {
    response["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error, got {response}"))
}

fn pattern_count(client: &mut LspClient) -> usize {
    client.call("periodic/patterns", json!({})).as_array().unwrap().len()
}

fn member_count(patterns: &Value) -> u64 {
    patterns.as_array().unwrap().iter().map(|pattern| pattern["memberCount"].as_u64().unwrap()).max().unwrap_or(0)
}

#[test]
fn the_handshake_negotiates_the_position_encoding_and_shutdown_exits_cleanly() {
    let (_dir, root) = workspace();
    let (client, result) = LspClient::initialized(&[&root], json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}}), fast());
    assert_eq!(result["capabilities"]["positionEncoding"], "utf-8");
    assert_eq!(result["capabilities"]["textDocumentSync"]["change"], 2, "incremental sync");
    assert_eq!(result["serverInfo"]["name"], "periodic");
    assert!(result["capabilities"].get("diagnosticProvider").is_none(), "no pull diagnostics for a client without them");
    assert_eq!(client.shutdown(), 0);

    // A client that pulls but cannot be asked to pull again gets pushed diagnostics.
    let (client, result) = LspClient::initialized(&[&root], json!({"textDocument": {"diagnostic": {}}}), fast());
    assert!(result["capabilities"].get("diagnosticProvider").is_none());
    assert_eq!(client.shutdown(), 0);

    let (client, result) = LspClient::initialized(&[&root], json!({}), fast());
    assert_eq!(result["capabilities"]["positionEncoding"], "utf-16", "UTF-16 when the client offers nothing else");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn diagnostics_list_the_other_copy_and_every_code_action_works() {
    let (_dir, root) = workspace();
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    let uri = client.open(&root.join("pkg/orders.py"), "python", ORDERS);
    let invoices = uri_of(&root.join("pkg/invoices.py"));

    let diagnostics = client.diagnostics(&uri, |diagnostics| !diagnostics.is_empty());
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    let diagnostic = &diagnostics[0];
    assert_eq!(diagnostic["source"], "periodic");
    assert_eq!(diagnostic["severity"], 3, "Information by default");
    assert_eq!(diagnostic["range"]["start"], position(3, 0));
    let message = diagnostic["message"].as_str().unwrap();
    assert!(message.starts_with("Similar to 1 other place (pattern '") && message.ends_with("100%)"), "{message}");
    let pattern = diagnostic["code"].as_str().unwrap().to_string();
    assert!(pattern.starts_with("P-"), "{pattern}");
    assert!(diagnostic.get("codeDescription").is_none(), "a diagnostic links nowhere: {diagnostic}");
    assert_eq!(diagnostic["data"]["pattern"], json!(pattern));
    let related = diagnostic["relatedInformation"].as_array().unwrap();
    assert_eq!(related.len(), 1);
    assert_eq!(related[0]["location"]["uri"], json!(invoices));
    assert_eq!(related[0]["location"]["range"], json!({"start": position(5, 0), "end": position(17, 0)}));
    assert!(related[0]["message"].as_str().unwrap().contains("invoice_amount"));

    let actions = client.call(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": {"start": position(3, 4), "end": position(3, 4)}, "context": {"diagnostics": diagnostics}}),
    );
    let titles: Vec<&str> = actions.as_array().unwrap().iter().map(|action| action["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), 4, "{titles:?}");
    let action = |prefix: &str| actions.as_array().unwrap().iter().find(|action| action["title"].as_str().unwrap().starts_with(prefix)).unwrap().clone();

    // Go to the most similar copy: the server asks the client to show it.
    let go = action("Go to the most similar copy");
    assert_eq!(go["command"]["command"], "periodic.goToSimilar");
    let shown = client.call("workspace/executeCommand", json!({"command": "periodic.goToSimilar", "arguments": go["command"]["arguments"]}));
    assert_eq!(shown[0]["uri"], json!(invoices));
    let show_document = client.server_request("window/showDocument");
    assert_eq!(show_document["uri"], json!(invoices));
    assert_eq!(show_document["selection"]["start"], position(5, 0));

    // Show all copies: a client-side command carrying the locations.
    let all = action("Show all 1 similar copy");
    assert_eq!(all["command"]["command"], "periodic.showReferences");
    assert_eq!(all["command"]["arguments"][0], json!(uri));
    assert_eq!(all["command"]["arguments"][2][0]["uri"], json!(invoices));
    let listed = client.call("workspace/executeCommand", json!({"command": "periodic.showSimilar", "arguments": [uri, position(5, 0)]}));
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // Name this pattern: a command the client completes with a name.
    let name = action("Name pattern");
    assert_eq!(name["command"]["command"], "periodic.namePattern");
    assert_eq!(name["command"]["arguments"], json!([pattern]));

    // Ignore: the edit inserts the marker above the function; once applied, the
    // duplicate is no longer reported.
    let ignore = action("Ignore this duplicate");
    assert_eq!(ignore["kind"], "quickfix");
    let edits = ignore["edit"]["changes"][uri.as_str()].as_array().unwrap().clone();
    let edited = apply_edits(ORDERS, &edits);
    assert!(edited.contains("\n# periodic-ignore\ndef order_total("), "{edited}");
    client.notify("textDocument/didChange", full_change(&uri, 2, &edited));
    let after = client.diagnostics_at(&uri, 2);
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn hover_code_lens_symbols_and_custom_requests_name_the_other_copy() {
    let (_dir, root) = workspace();
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    let uri = client.open(&root.join("pkg/orders.py"), "python", ORDERS);
    let invoices = uri_of(&root.join("pkg/invoices.py"));
    client.diagnostics(&uri, |diagnostics| !diagnostics.is_empty());

    let hover = client.call("textDocument/hover", text_position(&uri, 3, 6));
    assert_eq!(hover["contents"]["kind"], "markdown");
    let markdown = hover["contents"]["value"].as_str().unwrap();
    assert!(markdown.contains("[pkg/invoices.py:6]("), "{markdown}");
    assert!(markdown.contains("`invoice_amount` — 100% T2"), "{markdown}");
    assert!(markdown.contains("```diff\n-def order_total(orders, tax_rate):\n+def invoice_amount(invoices, vat):\n"), "{markdown}");
    assert_eq!(client.call("textDocument/hover", text_position(&uri, 0, 0)), Value::Null, "no hover outside duplicated code");

    let lenses = client.call("textDocument/codeLens", json!({"textDocument": {"uri": uri}}));
    assert_eq!(lenses.as_array().unwrap().len(), 1);
    assert_eq!(lenses[0]["range"]["start"], position(3, 0));
    let resolved = client.call("codeLens/resolve", lenses[0].clone());
    let title = resolved["command"]["title"].as_str().unwrap();
    assert!(title.starts_with("1 similar · pattern "), "{title}");
    assert_eq!(resolved["command"]["command"], "periodic.showReferences");
    assert_eq!(resolved["command"]["arguments"][2][0]["uri"], json!(invoices));

    let similar = client.call("periodic/similar", text_position(&uri, 7, 8));
    assert_eq!(similar["unit"]["name"], "order_total");
    let copies = similar["similar"].as_array().unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0]["uri"], json!(invoices));
    assert_eq!(copies[0]["name"], "invoice_amount");
    assert_eq!(copies[0]["kind"], "T2");
    assert_eq!(copies[0]["similarity"], 1.0);
    let outside = client.call("periodic/similar", text_position(&uri, 0, 0));
    assert_eq!(outside, json!({"unit": null, "similar": []}));

    let patterns = client.call("periodic/patterns", json!({"top": 5}));
    assert_eq!(patterns.as_array().unwrap().len(), 1);
    assert_eq!(patterns[0]["memberCount"], 2);
    assert_eq!(patterns[0]["languages"], json!(["python"]));
    assert_eq!(client.call("periodic/patterns", json!({"query": "no-such-pattern"})), json!([]));
    assert_eq!(client.call("periodic/patterns", json!([])).as_array().unwrap().len(), 1, "empty positional params mean all");

    let name = patterns[0]["name"].as_str().unwrap().to_string();
    let symbols = client.call("workspace/symbol", json!({"query": name}));
    let mut members: Vec<String> = symbols.as_array().unwrap().iter().map(|symbol| symbol["location"]["uri"].as_str().unwrap().to_string()).collect();
    members.sort();
    assert_eq!(members, vec![invoices.clone(), uri.clone()]);
    assert_eq!(client.call("workspace/symbol", json!({"query": "zzz-nothing"})), json!([]));
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn naming_a_pattern_is_stored_in_the_index_and_shown_everywhere() {
    let (_dir, root) = workspace();
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    let uri = client.open(&root.join("pkg/orders.py"), "python", ORDERS);
    let diagnostics = client.diagnostics(&uri, |diagnostics| !diagnostics.is_empty());
    let pattern = diagnostics[0]["code"].as_str().unwrap().to_string();

    let bad = client.request("workspace/executeCommand", json!({"command": "periodic.namePattern", "arguments": [pattern, "  "]}));
    assert_eq!(error_code(&bad), -32602);
    let unknown = client.request("workspace/executeCommand", json!({"command": "periodic.namePattern", "arguments": ["P-00000000", "x"]}));
    assert_eq!(error_code(&unknown), -32602);

    client.call("workspace/executeCommand", json!({"command": "periodic.namePattern", "arguments": [pattern, "money-total"]}));
    let renamed = client.diagnostics(&uri, |diagnostics| diagnostics.iter().any(|d| d["message"].as_str().unwrap().contains("'money-total'")));
    assert_eq!(renamed.len(), 1);
    let patterns = client.call("periodic/patterns", json!({"query": "money"}));
    assert_eq!(patterns[0]["name"], "money-total");
    assert_eq!(client.shutdown(), 0);

    // `periodic patterns` reads the same index.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_periodic")).args(["patterns", "--format", "json"]).arg(&root).output().unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(listed.contains("money-total"), "{listed}");
}

/// The function of ORDERS with a non-ASCII string, on 0-based line 6.
fn non_ascii_orders() -> String {
    ORDERS.replace("label = \"orders\"", "label = \"😀漢字\"")
}

fn edits_land_where_the_client_meant(offered: Value, emoji_width: u32) {
    let (_dir, root) = workspace();
    let (mut client, result) = LspClient::initialized(&[&root], json!({"general": {"positionEncodings": offered}}), fast());
    let encoding = result["capabilities"]["positionEncoding"].as_str().unwrap().to_string();
    let uri = client.open(&root.join("pkg/orders.py"), "python", &non_ascii_orders());
    client.diagnostics(&uri, |diagnostics| !diagnostics.is_empty());
    // `    label = "` is 13 units; the emoji is 2 UTF-16 units or 4 UTF-8 bytes, 漢 1 or 3.
    let after_emoji = 13 + emoji_width;
    let after_kanji = after_emoji + if encoding == "utf-8" { 3 } else { 1 };
    let changes = json!([
        {"range": {"start": position(6, after_kanji), "end": position(6, after_kanji)}, "text": "Z"},
        {"range": {"start": position(6, after_emoji), "end": position(6, after_emoji)}, "text": "é"},
        {"range": {"start": position(9, 12), "end": position(9, 17)}, "text": "tally"},
        {"range": {"start": position(10, 22), "end": position(10, 22)}, "text": "\n            count += 0"},
    ]);
    client.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": changes}));
    let diagnostics = client.diagnostics_at(&uri, 2);
    assert_eq!(diagnostics.len(), 1, "still a near copy after the edit: {diagnostics:?}");
    let hover = client.call("textDocument/hover", text_position(&uri, 3, 6));
    let markdown = hover["contents"]["value"].as_str().unwrap();
    assert!(markdown.contains("label = \"😀é漢Z字\""), "{encoding}: {markdown}");
    assert!(markdown.contains("            tally += order.amount * (1 + tax_rate)\n"), "{encoding}: {markdown}");
    assert!(markdown.contains("            count += 0\n"), "{encoding}: {markdown}");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn incremental_edits_with_surrogate_pairs_and_cjk_in_utf16() {
    edits_land_where_the_client_meant(json!(["utf-16"]), 2);
}

#[test]
fn incremental_edits_with_surrogate_pairs_and_cjk_in_utf8() {
    edits_land_where_the_client_meant(json!(["utf-8"]), 4);
}

#[test]
fn pull_diagnostics_report_open_and_other_files_and_unchanged_results() {
    let (_dir, root) = workspace();
    let capabilities = json!({"textDocument": {"diagnostic": {"dynamicRegistration": false}}, "workspace": {"diagnostics": {"refreshSupport": true}}});
    let (mut client, result) = LspClient::initialized(&[&root], capabilities, fast());
    assert_eq!(result["capabilities"]["diagnosticProvider"]["workspaceDiagnostics"], true);
    let uri = client.open(&root.join("pkg/orders.py"), "python", ORDERS);
    let invoices = uri_of(&root.join("pkg/invoices.py"));

    let report = client.poll("textDocument/diagnostic", json!({"textDocument": {"uri": uri}}), |report| {
        report["items"].as_array().is_some_and(|items| !items.is_empty())
    });
    assert_eq!(report["kind"], "full");
    assert_eq!(report["items"][0]["relatedInformation"][0]["location"]["uri"], json!(invoices));
    let again = client.call("textDocument/diagnostic", json!({"textDocument": {"uri": uri}, "previousResultId": report["resultId"]}));
    assert_eq!(again["kind"], "unchanged");
    assert_eq!(again["resultId"], report["resultId"]);

    let workspace_report = client.call("workspace/diagnostic", json!({"previousResultIds": []}));
    let items = workspace_report["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the open document is reported by textDocument/diagnostic: {items:?}");
    assert_eq!(items[0]["uri"], json!(invoices));
    assert_eq!(items[0]["items"][0]["relatedInformation"][0]["location"]["uri"], json!(uri));

    // An edit that removes the copy: the pull waits for the analysis of the new version.
    client.notify("textDocument/didChange", full_change(&uri, 2, UNRELATED));
    let report = client.call("textDocument/diagnostic", json!({"textDocument": {"uri": uri}}));
    assert_eq!(report["items"], json!([]));
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn stale_versions_are_dropped() {
    let (_dir, root) = workspace();
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    let uri = client.open(&root.join("pkg/orders.py"), "python", ORDERS);
    client.diagnostics(&uri, |diagnostics| !diagnostics.is_empty());
    client.notify("textDocument/didChange", full_change(&uri, 3, UNRELATED));
    let diagnostics = client.diagnostics_at(&uri, 3);
    assert!(diagnostics.is_empty());
    // Version 2 arrives late: it must not bring the copy back.
    client.notify("textDocument/didChange", full_change(&uri, 2, ORDERS));
    let warning = client.notification("window/logMessage", |params| params["message"].as_str().unwrap_or("").contains("stale"));
    assert!(warning["message"].as_str().unwrap().contains("version 2, have 3"), "{warning}");
    let similar = client.call("periodic/similar", text_position(&uri, 1, 4));
    assert_eq!(similar["similar"], json!([]));
    assert_eq!(similar["unit"]["name"], "render_rows");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn cancelling_a_waiting_request_answers_request_cancelled() {
    let (_dir, root) = workspace();
    let capabilities = json!({"textDocument": {"diagnostic": {}}, "workspace": {"diagnostics": {"refreshSupport": true}}});
    let (mut client, _) = LspClient::initialized(&[&root], capabilities, json!({"debounceMs": 600000}));
    let uri = client.open(&root.join("pkg/orders.py"), "python", ORDERS);
    client.poll("textDocument/diagnostic", json!({"textDocument": {"uri": uri}}), |report| report["items"].as_array().is_some_and(|items| !items.is_empty()));
    // With a long debounce the new version is not analysed yet, so the pull waits.
    client.notify("textDocument/didChange", full_change(&uri, 2, UNRELATED));
    let id = client.send_request("textDocument/diagnostic", json!({"textDocument": {"uri": uri}}));
    client.notify("$/cancelRequest", json!({"id": id}));
    let response = client.response(id);
    assert_eq!(error_code(&response), -32800, "{response}");
    // And the server goes on serving.
    assert_eq!(pattern_count(&mut client), 1);
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn bad_input_gets_json_rpc_errors_and_the_server_keeps_serving() {
    let (_dir, root) = workspace();
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    let uri = client.open(&root.join("pkg/orders.py"), "python", ORDERS);
    client.diagnostics(&uri, |diagnostics| !diagnostics.is_empty());

    client.write_raw(b"{\"jsonrpc\": \"2.0\", \"id\": 99, \"method\": ");
    let parse_error = client.next_message(|message| message.get("error").is_some()).expect("an error for malformed JSON");
    assert_eq!(error_code(&parse_error), -32700);

    let wrong_params = client.request("textDocument/hover", json!("nonsense"));
    assert_eq!(error_code(&wrong_params), -32602);
    let unknown_method = client.request("periodic/nothing", json!({}));
    assert_eq!(error_code(&unknown_method), -32601);
    let not_open = client.request("textDocument/hover", text_position("file:///nowhere/x.py", 0, 0));
    assert_eq!(error_code(&not_open), -32602);
    assert!(not_open["error"]["message"].as_str().unwrap().contains("not open"));
    let past_end = client.request("textDocument/hover", text_position(&uri, 500, 0));
    assert_eq!(error_code(&past_end), -32602);
    let bad_command = client.request("workspace/executeCommand", json!({"command": "periodic.showSimilar", "arguments": [1, 2]}));
    assert_eq!(error_code(&bad_command), -32602);

    // An edit outside the text: reported, and the document refuses answers until the
    // client sends its whole text again.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"range": {"start": position(400, 0), "end": position(400, 1)}, "text": "x"}]}),
    );
    let shown = client.notification("window/showMessage", |params| params["message"].as_str().unwrap_or("").contains("could not apply"));
    assert!(shown["message"].as_str().unwrap().contains("line 400"), "{shown}");
    let out_of_sync = client.request("textDocument/hover", text_position(&uri, 3, 6));
    assert_eq!(error_code(&out_of_sync), -32801);
    client.notify("textDocument/didChange", full_change(&uri, 3, ORDERS));
    client.diagnostics(&uri, |diagnostics| !diagnostics.is_empty());
    let hover = client.call("textDocument/hover", text_position(&uri, 3, 6));
    assert!(hover["contents"]["value"].as_str().unwrap().contains("invoices.py"));
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn files_changed_on_disk_while_the_server_runs_are_picked_up() {
    let (_dir, root) = workspace();
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 2);

    // A new file with a third copy (as a git checkout would write it).
    std::fs::write(root.join("pkg/billing.py"), ORDERS.replace("order_total", "bill_total")).unwrap();
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 3);

    // A known file rewritten to unrelated code, also reported by the client.
    std::fs::write(root.join("pkg/billing.py"), UNRELATED).unwrap();
    client.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": uri_of(&root.join("pkg/billing.py")), "type": 2}]}));
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 2);

    // A deleted file leaves every answer.
    std::fs::remove_file(root.join("pkg/invoices.py")).unwrap();
    client.poll("periodic/patterns", json!({}), |patterns| patterns == &json!([]));
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn unsaved_editor_text_wins_over_the_file_on_disk() {
    let (_dir, root) = workspace();
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    let uri = client.open(&root.join("pkg/invoices.py"), "python", UNRELATED);
    client.diagnostics(&uri, |diagnostics| diagnostics.is_empty());
    std::fs::write(root.join("pkg/invoices.py"), INVOICES.replace("vat", "rate")).unwrap();
    client.notify("workspace/didChangeWatchedFiles", json!({"changes": [{"uri": uri, "type": 2}]}));
    // The open buffer still holds unrelated code, so there is nothing to pair with.
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(pattern_count(&mut client), 0);
    // Closing the buffer makes the disk the truth again.
    client.notify("textDocument/didClose", json!({"textDocument": {"uri": uri}}));
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 2);
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn configuration_changes_apply_and_a_bad_file_keeps_the_previous_one() {
    let (_dir, root) = workspace();
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 2);

    std::fs::write(root.join(".periodic.toml"), "# thresholds\nmin_lines = \"many\"\n").unwrap();
    let shown = client.notification("window/showMessage", |params| params["type"] == 1);
    let message = shown["message"].as_str().unwrap();
    assert!(message.contains(".periodic.toml:2") && message.contains("min_lines"), "{message}");
    assert_eq!(pattern_count(&mut client), 1, "the previous configuration stays in force");

    std::fs::write(root.join(".periodic.toml"), "min_lines = 40\n").unwrap();
    client.poll("periodic/patterns", json!({}), |patterns| patterns == &json!([]));

    // Editor settings override the file.
    client.notify("workspace/didChangeConfiguration", json!({"settings": {"periodic": {"minLines": 5, "debounceMs": 0}}}));
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 2);
    assert_eq!(client.shutdown(), 0);
}

/// Files a `.gitignore` hides are indexed once the editor sets `noIgnore` (at start or later).
#[test]
fn the_no_ignore_setting_indexes_files_a_gitignore_hides() {
    let (_dir, root) = workspace();
    // Two more copies that no ignore file hides: once they are found, the index is done.
    std::fs::create_dir_all(root.join("shown")).unwrap();
    std::fs::write(root.join("shown/orders.py"), ORDERS).unwrap();
    std::fs::write(root.join("shown/invoices.py"), INVOICES).unwrap();
    std::fs::write(root.join(".gitignore"), "/pkg/\n").unwrap();
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 2);

    client.notify("workspace/didChangeConfiguration", json!({"settings": {"periodic": {"noIgnore": true, "debounceMs": 0}}}));
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 4);
    assert_eq!(client.shutdown(), 0);

    let (mut client, _) = LspClient::initialized(&[&root], push_client(), json!({"noIgnore": true, "debounceMs": 0}));
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 4);
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn diagnostics_follow_the_configured_severity_and_kinds() {
    let (_dir, root) = workspace();
    let options = json!({"debounceMs": 0, "diagnostics": {"severity": "warning", "kinds": {"T2": false}}});
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), options);
    let uri = client.open(&root.join("pkg/orders.py"), "python", ORDERS);
    // The only clone is a T2: hidden, though hover still knows it.
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 2);
    let diagnostics = client.diagnostics(&uri, |_| true);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    client.notify("workspace/didChangeConfiguration", json!({"settings": {"periodic": {"debounceMs": 0, "diagnostics": {"severity": "warning"}}}}));
    let diagnostics = client.diagnostics(&uri, |diagnostics| !diagnostics.is_empty());
    assert_eq!(diagnostics[0]["severity"], 2);
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn indexing_reports_work_done_progress() {
    let (_dir, root) = workspace();
    let (mut client, _) = LspClient::initialized(&[&root], json!({"window": {"workDoneProgress": true}}), fast());
    let created = client.server_request("window/workDoneProgress/create");
    let token = created["token"].clone();
    let begin = client.notification("$/progress", |params| params["token"] == token && params["value"]["kind"] == "begin");
    assert!(begin["value"]["title"].as_str().unwrap().starts_with("Periodic: indexing"));
    client.notification("$/progress", |params| params["token"] == token && params["value"]["kind"] == "end");
    assert_eq!(pattern_count(&mut client), 1);
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn each_workspace_folder_has_its_own_index() {
    let (_first_dir, first) = workspace();
    let (_second_dir, second) = workspace();
    std::fs::write(second.join("pkg/invoices.py"), UNRELATED).unwrap();
    std::fs::write(second.join("pkg/copy.py"), UNRELATED.replace("render_rows", "draw_rows")).unwrap();
    let (mut client, _) = LspClient::initialized(&[&first, &second], push_client(), fast());
    let patterns = client.poll("periodic/patterns", json!({}), |patterns| patterns.as_array().unwrap().len() == 2);
    for pattern in patterns.as_array().unwrap() {
        let uris: Vec<&str> = pattern["members"].as_array().unwrap().iter().map(|member| member["uri"].as_str().unwrap()).collect();
        let in_first = uris.iter().all(|uri| uri.starts_with(&uri_of(&first)));
        let in_second = uris.iter().all(|uri| uri.starts_with(&uri_of(&second)));
        assert!(in_first != in_second, "a pattern spans two folders: {uris:?}");
    }
    assert_eq!(client.shutdown(), 0);
    assert!(first.join(".periodic/index.db").is_file() && second.join(".periodic/index.db").is_file());
}

#[test]
fn a_warm_start_answers_from_the_index_a_scan_left() {
    let (_dir, root) = workspace();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_periodic")).args(["scan", "--quiet"]).arg(&root).output().unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(Path::new(&root.join(".periodic/index.db")).is_file());
    let (mut client, _) = LspClient::initialized(&[&root], push_client(), fast());
    client.poll("periodic/patterns", json!({}), |patterns| member_count(patterns) == 2);
    assert_eq!(client.shutdown(), 0);
}

/// What Neovim sends when started in a plain folder with `setup({})`: no root, no workspace
/// folders, empty Lua tables for the options (`[]`, `{"periodic": []}`). The server shows no
/// warning, indexes the opened file's folder, and answers for it like for any workspace.
#[test]
fn a_file_outside_every_workspace_folder_gets_its_folder_indexed_without_a_warning() {
    let (_dir, root) = workspace();
    let mut client = LspClient::start();
    let response = client.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "workspaceFolders": null, "capabilities": push_client(), "initializationOptions": []}),
    );
    assert!(response.get("result").is_some(), "{response}");
    client.notify("initialized", json!({}));
    client.notify("workspace/didChangeConfiguration", json!({"settings": {"periodic": []}}));
    let orders = client.open(&root.join("pkg/orders.py"), "python", ORDERS);
    let invoices = uri_of(&root.join("pkg/invoices.py"));

    let diagnostics = client.diagnostics(&orders, |diagnostics| !diagnostics.is_empty());
    let related = diagnostics[0]["relatedInformation"].as_array().unwrap();
    assert_eq!(related[0]["location"]["uri"], json!(invoices), "{diagnostics:?}");
    let similar = client.call("periodic/similar", text_position(&orders, 7, 8));
    let uris: Vec<&Value> = similar["similar"].as_array().unwrap().iter().map(|candidate| &candidate["uri"]).collect();
    assert!(uris.contains(&&json!(invoices)), "{similar}");
    let hover = client.call("textDocument/hover", text_position(&orders, 3, 6));
    assert!(hover["contents"]["value"].as_str().unwrap().contains("invoice_amount"), "{hover}");

    let warnings: Vec<&Value> = client.seen.iter().filter(|message| message["method"] == "window/showMessage").collect();
    assert!(warnings.is_empty(), "the server showed {warnings:?}");
    assert!(root.join("pkg/.periodic/index.db").exists(), "the file's folder (no root marker above it) has an index");
    assert_eq!(client.shutdown(), 0);
}
