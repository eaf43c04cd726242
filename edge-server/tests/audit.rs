//! The audit log against the real `periodic-edge` binary on a loopback port: token commands
//! and the server append to one file, every administrative or write action gives one JSON
//! line with who (token id, tenant, role, client address, or the operator), what and when,
//! refused writes are recorded as denied, and no line holds a fingerprint, sketch, unit key,
//! path, pattern id or note text of what was pushed.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Edge, client};
use periodic_edge::store::conformance::{batch, t2_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn id_of(token: &str) -> String {
    periodic_edge::tokens::hash_token(token).to_hex()[..8].to_string()
}

/// `periodic-edge token ARGS...` with the environment variable `env` set (or removed).
fn token_command(args: &[&str], env: Option<&Path>) -> std::process::Output {
    let mut command = Command::new(common::BINARY);
    command.arg("token").args(args);
    match env {
        Some(path) => command.env("PERIODIC_EDGE_AUDIT_LOG", path),
        None => command.env_remove("PERIODIC_EDGE_AUDIT_LOG"),
    };
    let output = command.output().unwrap();
    assert!(output.status.success(), "token {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn find<'a>(lines: &'a [Value], action: &str, outcome: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["action"] == action && line["outcome"] == outcome).collect()
}

#[tokio::test]
async fn actions_give_audit_lines_with_who_what_and_when_and_never_a_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let audit = dir.path().join("audit.jsonl");
    let audit_arg = audit.to_str().unwrap();
    let tokens_arg = tokens.to_str().unwrap();
    // One token created with --audit-log, the other with the environment variable.
    let writer = String::from_utf8(token_command(&["create", "--tokens", tokens_arg, "--tenant", "team-a", "--role", "write", "--audit-log", audit_arg], None).stdout).unwrap();
    let reader = String::from_utf8(token_command(&["create", "--tokens", tokens_arg, "--tenant", "team-a", "--role", "read", "--expires", "90d"], Some(&audit)).stdout).unwrap();
    let (writer, reader) = (writer.trim().to_string(), reader.trim().to_string());
    let edge = Edge::start(&dir.path().join("data"), &tokens, &["--shards", "2", "--sync", "normal", "--audit-log", audit_arg]);
    let http = client();

    let pushed = batch("b1", 0..12);
    let post = |token: &str| http.post(edge.url("/v1/repos/billing/deltas")).bearer_auth(token).json(&pushed);
    assert_eq!(post(&writer).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(post(&writer).send().await.unwrap().status(), StatusCode::OK, "the retry is a duplicate");
    assert_eq!(post(&reader).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let pattern = t2_of(3).to_hex();
    let note = "prefer Money::round_half_even over this copy";
    let named = http.put(edge.url(&format!("/v1/patterns/{pattern}"))).bearer_auth(&writer).json(&json!({"name": "money rounding", "note": note})).send().await.unwrap();
    assert_eq!(named.status(), StatusCode::OK);
    let denied = http.put(edge.url(&format!("/v1/patterns/{pattern}"))).bearer_auth(&reader).json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    // Reads are not audited.
    assert_eq!(http.get(edge.url("/v1/stats")).bearer_auth(&reader).send().await.unwrap().status(), StatusCode::OK);

    token_command(&["revoke", "--tokens", tokens_arg, "--id", &id_of(&reader), "--audit-log", audit_arg], None);
    edge.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while find(&lines_of(&audit), "tokens.reload", "ok").is_empty() {
        assert!(Instant::now() < deadline, "no tokens.reload line after SIGHUP:\n{}", std::fs::read_to_string(&audit).unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let text = std::fs::read_to_string(&audit).unwrap();
    let lines = lines_of(&audit);
    assert_eq!(lines.len(), 9, "{text}");
    for line in &lines {
        let time = line["time"].as_str().unwrap();
        assert!(time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{line}");
        assert!(line["actor"]["kind"].is_string(), "{line}");
    }

    let created = find(&lines, "token.create", "ok");
    assert_eq!(created.len(), 2, "{text}");
    for (line, token, role) in [(created[0], &writer, "write"), (created[1], &reader, "read")] {
        assert_eq!((line["token_id"].as_str(), line["tenant"].as_str(), line["role"].as_str()), (Some(id_of(token).as_str()), Some("team-a"), Some(role)));
        assert_eq!(line["actor"]["kind"], "operator");
        assert!(line["actor"]["uid"].is_u64(), "{line}");
    }
    assert!(created[1]["expires"].as_str().is_some_and(|time| time.ends_with('Z')), "{}", created[1]);

    let writer_actor = json!({"kind": "token", "token_id": id_of(&writer), "tenant": "team-a", "role": "write"});
    let applied = find(&lines, "batch.apply", "ok");
    assert_eq!(applied.len(), 1, "{text}");
    let applied = applied[0];
    for field in ["kind", "token_id", "tenant", "role"] {
        assert_eq!(applied["actor"][field], writer_actor[field], "{applied}");
    }
    assert!(applied["actor"]["remote"].as_str().is_some_and(|remote| remote.starts_with("127.0.0.1:")), "{applied}");
    assert_eq!((&applied["repo"], &applied["batch_id"], &applied["upserts"], &applied["removals"]), (&json!("billing"), &json!("b1"), &json!(12), &json!(0)));
    assert_eq!(find(&lines, "batch.apply", "duplicate").len(), 1, "{text}");
    let refused = find(&lines, "batch.apply", "denied");
    assert_eq!(refused.len(), 1, "{text}");
    assert_eq!((&refused[0]["actor"]["token_id"], &refused[0]["actor"]["role"]), (&json!(id_of(&reader)), &json!("read")));

    let renamed = find(&lines, "pattern.update", "ok");
    assert_eq!(renamed.len(), 1, "{text}");
    assert_eq!((&renamed[0]["name"], &renamed[0]["note_chars"]), (&json!("money rounding"), &json!(note.chars().count())));
    assert_eq!(renamed[0]["actor"]["token_id"], json!(id_of(&writer)));
    assert_eq!(find(&lines, "pattern.update", "denied").len(), 1, "{text}");

    let revoked = find(&lines, "token.revoke", "ok");
    assert_eq!((revoked.len(), &revoked[0]["token_id"], &revoked[0]["role"]), (1, &json!(id_of(&reader)), &json!("read")));
    let reloaded = find(&lines, "tokens.reload", "ok");
    assert_eq!((&reloaded[0]["removed"], &reloaded[0]["added"], &reloaded[0]["tokens"]), (&json!([id_of(&reader)]), &json!([]), &json!(1)));
    assert_eq!(reloaded[0]["actor"], json!({"kind": "signal", "signal": "SIGHUP"}));

    // Nothing of the code: no structural hash (hex or decimal), sketch, key, path or unit
    // name of any pushed unit, no pattern id, no note text, and no token.
    for unit in &pushed.upserts {
        let location = unit.location.as_ref().unwrap();
        for secret in [unit.t2_hash.to_hex(), unit.t2_hash.0.to_string(), unit.sketch.to_base64(), unit.key.clone(), location.path.clone(), location.name.clone()] {
            assert!(!text.contains(&secret), "the audit log holds {secret:?}:\n{text}");
        }
    }
    for secret in [pattern.as_str(), note, writer.as_str(), reader.as_str()] {
        assert!(!text.contains(secret), "the audit log holds {secret:?}:\n{text}");
    }
}
