//! `DELETE /v1/repos/{repo}` against the real `periodic-edge` binary (embedded store) on a
//! loopback port: an admin token removes every unit of a repository larger than one removal
//! batch (stats, queries and pattern counts no longer see them; the repository's batch ids
//! apply again), write and read tokens get 403, an unknown repository 404, another team's
//! repository of the same name is untouched, and each attempt gives one `repo.delete` audit
//! line with who, the repository and the count, never a key. The Redis Cluster side is in
//! `redis_cluster.rs`.

mod common;

use std::path::Path;

use common::{Edge, client, create_token};
use periodic_edge::store::conformance::{batch, sketch_of, t2_of};
use periodic_wire::{DeltaAck, DeltaBatch, PatternList, QueryRequest, QueryResponse, QuerySketch, RepoDeleted, Stats};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn id_of(token: &str) -> String {
    periodic_edge::tokens::hash_token(token).to_hex()[..8].to_string()
}

fn audit_lines(path: &Path, action: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("audit log");
    text.lines().map(|line| serde_json::from_str::<Value>(line).expect("a JSON line")).filter(|line| line["action"] == action).collect()
}

async fn push(edge: &Edge, token: &str, repo: &str, body: &DeltaBatch) -> DeltaAck {
    let response = client().post(edge.url(&format!("/v1/repos/{repo}/deltas"))).bearer_auth(token).json(body).send().await.expect("push");
    assert_eq!(response.status(), StatusCode::OK, "push to {repo}");
    response.json().await.expect("ack")
}

async fn delete(edge: &Edge, token: &str, repo: &str) -> reqwest::Response {
    client().delete(edge.url(&format!("/v1/repos/{repo}"))).bearer_auth(token).send().await.expect("delete")
}

async fn stats(edge: &Edge, token: &str) -> Stats {
    client().get(edge.url("/v1/stats")).bearer_auth(token).send().await.expect("stats").json().await.expect("stats body")
}

/// The repositories holding an exact match of unit `number`.
async fn repos_holding(edge: &Edge, token: &str, number: u64) -> Vec<String> {
    let request = QueryRequest { sketches: vec![QuerySketch { id: "q".into(), t2_hash: t2_of(number), sketch: sketch_of(number) }], exclude_repo: None, min_similarity: Some(0.99), top_k: Some(10) };
    let response: QueryResponse = client().post(edge.url("/v1/query")).bearer_auth(token).json(&request).send().await.expect("query").json().await.expect("query body");
    response.results[0].matches.iter().map(|found| found.repo.clone()).collect()
}

#[tokio::test]
async fn an_admin_deletes_a_repository_of_its_team_and_every_attempt_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.json");
    let audit = dir.path().join("audit.jsonl");
    let admin = create_token(&tokens, "team-a", "admin");
    let writer = create_token(&tokens, "team-a", "write");
    let reader = create_token(&tokens, "team-a", "read");
    let other_admin = create_token(&tokens, "team-b", "admin");
    // Removal batches of 100 units: the 250-unit repository takes three.
    let audit_arg = audit.to_str().expect("utf-8 path");
    let edge = Edge::start(&dir.path().join("data"), &tokens, &["--shards", "4", "--sync", "normal", "--max-batch-units", "100", "--audit-log", audit_arg]);

    let pushed = batch("b1", 0..100);
    push(&edge, &writer, "doomed", &pushed).await;
    push(&edge, &writer, "doomed", &batch("b2", 100..200)).await;
    push(&edge, &writer, "doomed", &batch("b3", 200..250)).await;
    // Units 0..5 are also in `kept`: patterns of two units each while `doomed` exists.
    push(&edge, &writer, "kept", &batch("k1", 0..5)).await;
    push(&edge, &other_admin, "doomed", &batch("b1", 0..10)).await;
    let before = stats(&edge, &reader).await;
    assert_eq!((before.units, before.repos, before.patterns), (255, 2, 5));

    // Refused for write and read tokens, and recorded as denied; nothing changes.
    for token in [&writer, &reader] {
        let refused = delete(&edge, token, "doomed").await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(stats(&edge, &reader).await.units, 255);

    let response = delete(&edge, &admin, "doomed").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("body");
    assert_eq!(body, json!({"repo": "doomed", "removed": 250}));
    let deleted: RepoDeleted = serde_json::from_value(body).expect("the wire type reads the answer");
    assert_eq!(deleted.removed, 250);

    let after = stats(&edge, &reader).await;
    assert_eq!((after.units, after.repos, after.patterns), (5, 1, 0), "only `kept` is left, and its units are single");
    assert_eq!(repos_holding(&edge, &reader, 3).await, vec!["kept".to_string()]);
    assert!(repos_holding(&edge, &reader, 120).await.is_empty());
    let patterns: PatternList = client().get(edge.url("/v1/patterns")).bearer_auth(&reader).send().await.expect("patterns").json().await.expect("patterns body");
    assert!(patterns.patterns.is_empty(), "{:?}", patterns.patterns);

    // The other team's repository of the same name is untouched.
    let other = stats(&edge, &other_admin).await;
    assert_eq!((other.units, other.repos), (10, 1));
    assert_eq!(repos_holding(&edge, &other_admin, 3).await, vec!["doomed".to_string()]);

    // Gone, so a second delete (and one of a name never pushed) is 404.
    for repo in ["doomed", "never-pushed"] {
        let missing = delete(&edge, &admin, repo).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{repo}");
        let error: Value = missing.json().await.expect("error body");
        assert_eq!(error["error"], "not_found");
    }
    // A bad name is refused before anything is done.
    assert_eq!(delete(&edge, &admin, "bad%20name").await.status(), StatusCode::BAD_REQUEST);

    // A later push starts clean: batch id b1 of the deleted repository applies again.
    let again = push(&edge, &writer, "doomed", &batch("b1", 0..3)).await;
    assert!(!again.duplicate && again.upserted == 3, "{again:?}");

    let lines = audit_lines(&audit, "repo.delete");
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    assert_eq!(lines.len(), 5, "a bad name is refused before anything is done, not recorded: {text:#?}");
    let outcomes: Vec<&str> = lines.iter().map(|line| line["outcome"].as_str().unwrap_or_default()).collect();
    assert_eq!(outcomes, vec!["denied", "denied", "ok", "not_found", "not_found"]);
    for (line, token, role) in [(&lines[0], &writer, "write"), (&lines[1], &reader, "read")] {
        assert_eq!((&line["actor"]["token_id"], &line["actor"]["role"], &line["repo"]), (&json!(id_of(token)), &json!(role), &json!("doomed")), "{line}");
    }
    let ok = &lines[2];
    assert_eq!((&ok["outcome"], &ok["repo"], &ok["removed"], &ok["error"]), (&json!("ok"), &json!("doomed"), &json!(250), &Value::Null), "{ok}");
    assert_eq!((&ok["actor"]["kind"], &ok["actor"]["token_id"], &ok["actor"]["tenant"], &ok["actor"]["role"]), (&json!("token"), &json!(id_of(&admin)), &json!("team-a"), &json!("admin")), "{ok}");
    assert!(ok["actor"]["remote"].as_str().is_some_and(|remote| remote.starts_with("127.0.0.1:")), "{ok}");
    assert_eq!((&lines[3]["repo"], &lines[3]["removed"]), (&json!("doomed"), &json!(0)));
    assert_eq!(lines[4]["repo"], "never-pushed");
    // The removal batches are the deletion's own: no batch.apply line for them, and no key.
    assert_eq!(audit_lines(&audit, "batch.apply").iter().filter(|line| line["actor"]["token_id"] == json!(id_of(&admin))).count(), 0);
    let whole = std::fs::read_to_string(&audit).expect("audit log");
    for unit in &pushed.upserts {
        assert!(!whole.contains(&format!("\"{}\"", unit.key)) && !whole.contains(&unit.t2_hash.to_hex()), "the audit log holds a key or fingerprint of {}", unit.key);
    }

    // The route is counted per route like every other.
    let metrics = client().get(edge.url("/metrics")).send().await.expect("metrics").text().await.expect("metrics body");
    assert!(metrics.lines().any(|line| line.starts_with("edge_http_requests_total") && line.contains("route=\"/v1/repos/{repo}\"") && line.contains("method=\"DELETE\"")), "{metrics}");
}
