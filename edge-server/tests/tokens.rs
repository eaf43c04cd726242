//! Token lifetimes against the real `periodic-edge` binary on a loopback port: a token created
//! with `--expires` works until its time and is then refused with 401 and a reason that says
//! so, `token list` marks it expired, and a token is rotated (new one created, clients moved,
//! old one revoked) while the same server process keeps serving throughout.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Edge, client, create_token, create_token_with};
use periodic_edge::store::conformance::batch;
use periodic_wire::Stats;
use reqwest::StatusCode;
use serde_json::Value;

fn token_list(tokens: &Path) -> String {
    let output = Command::new(common::BINARY).args(["token", "list", "--tokens"]).arg(tokens).output().unwrap();
    assert!(output.status.success(), "token list failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The public id `token list` shows for a token (the first 8 hex characters of its hash).
fn id_of(token: &str) -> String {
    periodic_edge::tokens::hash_token(token).to_hex()[..8].to_string()
}

/// Status and error message of `GET /v1/stats` with `token`.
async fn stats_with(edge: &Edge, token: &str) -> (StatusCode, String) {
    let response = client().get(edge.url("/v1/stats")).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["message"].as_str().unwrap_or_default().to_string())
}

/// Polls (bounded) until `token` gets `wanted` from `/v1/stats`; returns the last message.
async fn wait_for_status(edge: &Edge, token: &str, wanted: StatusCode, limit: Duration, what: &str) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let (status, message) = stats_with(edge, token).await;
        if status == wanted {
            return message;
        }
        assert!(Instant::now() < deadline, "{what}: still {status} ({message}) after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_token_created_with_expires_works_and_then_gets_401_saying_it_expired() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let lasting = create_token(&tokens, "team-a", "read");
    let mut edge = Edge::start(&dir.path().join("data"), &tokens, &["--shards", "2", "--sync", "normal"]);

    // Bad values are refused by the command, naming the option, and nothing is added.
    for bad in ["2x", "0s", "yesterday", "2020-01-01T00:00:00Z"] {
        let output = Command::new(common::BINARY)
            .args(["token", "create", "--tokens"])
            .arg(&tokens)
            .args(["--tenant", "team-a", "--role", "read", "--expires", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && output.stdout.is_empty(), "--expires {bad} was accepted");
        assert!(stderr.contains("--expires"), "--expires {bad}: {stderr}");
    }
    assert_eq!(token_list(&tokens).lines().count(), 1);

    let expiring = create_token_with(&tokens, "team-a", "read", &["--expires", "2s"]);
    let listing = token_list(&tokens);
    let line = listing.lines().find(|line| line.starts_with(&id_of(&expiring))).unwrap();
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!((fields.len(), fields[1], fields[2]), (6, "team-a", "read"), "{line}");
    assert!(fields[4].ends_with('Z') && fields[4].len() == 20, "expiry as an RFC 3339 time: {line}");
    assert!(listing.lines().any(|line| line.starts_with(&id_of(&lasting)) && line.ends_with("\tnever\tactive")), "{listing}");

    // Loaded by SIGHUP while it is still valid: it works, then is refused once its time passes,
    // without any further reload.
    edge.signal("HUP");
    wait_for_status(&edge, &expiring, StatusCode::OK, Duration::from_secs(10), "the new token after SIGHUP").await;
    let message = wait_for_status(&edge, &expiring, StatusCode::UNAUTHORIZED, Duration::from_secs(30), "the expired token").await;
    assert!(message.contains("expired at") && message.contains(&id_of(&expiring)), "{message}");
    let listing = token_list(&tokens);
    assert!(listing.lines().any(|line| line.starts_with(&id_of(&expiring)) && line.ends_with("\texpired")), "{listing}");

    // Everything else goes on: the other token works, the server never stopped.
    assert_eq!(stats_with(&edge, &lasting).await.0, StatusCode::OK);
    let (status, message) = stats_with(&edge, "pe1_0000000000000000000000000000000000000000000000000000000000000000").await;
    assert_eq!((status, message.as_str()), (StatusCode::UNAUTHORIZED, "unknown or revoked token"));
    assert!(edge.running());
}

#[tokio::test]
async fn a_token_is_rotated_without_restarting_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let old = create_token(&tokens, "team-a", "write");
    let mut edge = Edge::start(&dir.path().join("data"), &tokens, &["--shards", "2", "--sync", "normal"]);
    let http = client();
    let push = |token: String, batch_id: &'static str, numbers: std::ops::Range<u64>| {
        let request = http.post(edge.url("/v1/repos/billing/deltas")).bearer_auth(token).json(&batch(batch_id, numbers));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(push(old.clone(), "b1", 0..10).await, StatusCode::OK);

    // 1. Create the new token and load it: during the overlap both work, for reads and writes.
    let new = create_token(&tokens, "team-a", "write");
    edge.signal("HUP");
    wait_for_status(&edge, &new, StatusCode::OK, Duration::from_secs(10), "the new token after SIGHUP").await;
    assert_eq!(push(old.clone(), "b2", 10..20).await, StatusCode::OK);
    assert_eq!(push(new.clone(), "b3", 20..30).await, StatusCode::OK);
    assert_eq!(stats_with(&edge, &old).await.0, StatusCode::OK);

    // 2. Clients have moved: revoke the old token and load the change.
    let revoke = Command::new(common::BINARY).args(["token", "revoke", "--tokens"]).arg(&tokens).args(["--id", &id_of(&old)]).status().unwrap();
    assert!(revoke.success());
    edge.signal("HUP");
    let message = wait_for_status(&edge, &old, StatusCode::UNAUTHORIZED, Duration::from_secs(10), "the revoked token after SIGHUP").await;
    assert_eq!(message, "unknown or revoked token");
    assert_eq!(push(old.clone(), "b4", 30..40).await, StatusCode::UNAUTHORIZED);

    // The new token sees everything written with either token (same tenant), and the one
    // server process served the whole rotation.
    let stats: Stats = http.get(edge.url("/v1/stats")).bearer_auth(&new).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats.units, 30);
    assert!(edge.running());
    assert_eq!(token_list(&tokens).lines().count(), 1);
}
