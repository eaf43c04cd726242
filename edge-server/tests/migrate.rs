//! `periodic-edge migrate` against a real 6-node Redis Cluster on loopback: an embedded edge
//! is filled over HTTP (two tenants, several repositories, a removal, pattern names), stopped,
//! and migrated in two runs (the first paused by `--max-batches`); the counts printed before
//! and after agree, a run after completion and a run that lost its progress marker (as after
//! a crash before the marker was written) change nothing, and an edge serving the cluster
//! answers as the embedded one did: no unit twice, the removed unit absent, names kept.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{Edge, client, create_token};
use periodic_edge::store::conformance::{batch, sketch_of, t2_of, unit};
use periodic_wire::{DeltaBatch, PatternDetail, QueryRequest, QueryResponse, QuerySketch, Stats, UnitUpsert};
use redis_cluster::RedisCluster;
use reqwest::StatusCode;
use serde_json::json;

fn migrate(from: &Path, to: &str, extra: &[&str]) -> Output {
    Command::new(common::BINARY).args(["migrate", "--from"]).arg(from).args(["--to", to]).args(extra).env("PERIODIC_EDGE_LOG", "warn,redis=error").output().unwrap()
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The counts printed on lines `when TENANT side units=… repos=… patterns=… named=…`.
fn counts(text: &str, when: &str, side: &str) -> BTreeMap<String, Vec<u64>> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 7 && fields[0] == when && fields[2] == side)
                .then(|| (fields[1].to_string(), fields[3..].iter().map(|field| field.split_once('=').unwrap().1.parse().unwrap()).collect()))
        })
        .collect()
}

async fn stats(edge: &Edge, token: &str) -> Stats {
    client().get(edge.url("/v1/stats")).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn an_embedded_edge_moves_to_a_redis_cluster_resumably_and_verified() {
    let cluster = RedisCluster::start(false);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let team_a = create_token(&tokens, "team-a", "write");
    let team_b = create_token(&tokens, "team-b", "write");
    let data = dir.path().join("data");

    // The embedded edge's data, written through its API.
    let mut embedded = Edge::start(&data, &tokens, &["--shards", "4", "--sync", "normal"]);
    let http = client();
    let push = |token: &str, repo: &str, body: DeltaBatch| http.post(embedded.url(&format!("/v1/repos/{repo}/deltas"))).bearer_auth(token.to_string()).json(&body).send();
    for (token, repo, body) in [
        (&team_a, "billing", batch("a1", 0..300)),
        (&team_a, "ledger", batch("a2", 100..250)),
        (&team_a, "billing", DeltaBatch { batch_id: "a3".into(), upserts: Vec::new(), removals: vec!["unit-5".into()] }),
        (&team_b, "billing", batch("b1", 0..60)),
        // A near miss of unit 3 in a family named by unit 3's shape: one pattern of two shapes.
        (&team_b, "shop", DeltaBatch { batch_id: "b2".into(), upserts: vec![UnitUpsert { key: "near".into(), family: Some(t2_of(3)), ..unit(1000) }], removals: Vec::new() }),
    ] {
        assert_eq!(push(token, repo, body).await.unwrap().status(), StatusCode::OK);
    }
    for (token, number, name) in [(&team_a, 120, "money rounding"), (&team_a, 7, "named before any copy"), (&team_b, 3, "b's own name")] {
        let url = embedded.url(&format!("/v1/patterns/{}", t2_of(number).to_hex()));
        let named = http.put(url).bearer_auth(token).json(&json!({"name": name, "note": format!("note on {number}")})).send().await.unwrap();
        assert_eq!(named.status(), StatusCode::OK);
    }
    let embedded_stats = (stats(&embedded, &team_a).await, stats(&embedded, &team_b).await);
    assert_eq!((embedded_stats.0.units, embedded_stats.0.repos, embedded_stats.0.patterns), (449, 2, 150));
    assert!(embedded.stop().success());

    // Bad input: a clear error, nothing done.
    let missing = migrate(&dir.path().join("nowhere"), &cluster.url(), &[]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is not the data directory of an embedded edge"), "{missing:?}");
    let not_a_cluster = migrate(&data, "embedded", &[]);
    assert!(String::from_utf8_lossy(&not_a_cluster.stderr).contains("--to must name a Redis Cluster"), "{not_a_cluster:?}");

    // First run: paused after two batches (exit status 3), part of the data in the cluster.
    let first = migrate(&data, &cluster.url(), &["--batch-units", "100", "--max-batches", "2"]);
    let text = stdout_of(&first);
    assert_eq!(first.status.code(), Some(3), "{text}\n{}", String::from_utf8_lossy(&first.stderr));
    assert!(text.contains("paused after 2 batches"), "{text}");
    assert!(text.contains("tokens: not stored in"), "{text}");
    let source = counts(&text, "before", "source");
    assert_eq!(source["team-a"], vec![449, 2, 150, 2], "{text}");
    assert_eq!(source["team-b"], vec![61, 2, 1, 1], "{text}");
    assert_eq!(counts(&text, "before", "target")["team-a"], vec![0, 0, 0, 0], "{text}");
    let paused: u64 = counts(&text, "paused", "target").values().map(|counts| counts[0]).sum();
    assert!(paused > 0 && paused <= 200, "two batches of at most 100 units stored {paused}:\n{text}");
    let marker = text.split_whitespace().find(|word| word.starts_with("pe:migrate:")).unwrap().trim_end_matches(';').to_string();

    // Second run: completes from where the first stopped and verifies.
    let second = migrate(&data, &cluster.url(), &["--batch-units", "100"]);
    let text = stdout_of(&second);
    assert!(second.status.success(), "{text}\n{}", String::from_utf8_lossy(&second.stderr));
    assert!(text.contains("verified:"), "{text}");
    assert_eq!(counts(&text, "after", "target"), source, "{text}");
    let copied: u64 = text.lines().find_map(|line| line.strip_prefix("copied ")).and_then(|rest| rest.split(' ').next()).unwrap().parse().unwrap();
    assert_eq!(copied + paused, 449 + 61, "the second run sent only what the first had not:\n{text}");

    // Third run: nothing left to do. Fourth, with the progress marker gone (a crash before it
    // was written): everything is sent again and nothing is stored twice.
    let third = migrate(&data, &cluster.url(), &[]);
    let text = stdout_of(&third);
    assert!(third.status.success() && text.contains("copied 0 units in 0 batches (4 of 4 shards"), "{text}");
    assert!(redis_cluster::cli(cluster.nodes[0].port, &["-c", "DEL", &marker]).is_some_and(|out| out.trim() == "1"), "{marker}");
    let fourth = migrate(&data, &cluster.url(), &[]);
    let text = stdout_of(&fourth);
    assert!(fourth.status.success() && text.contains("copied 510 units"), "{text}\n{}", String::from_utf8_lossy(&fourth.stderr));
    assert_eq!(counts(&text, "after", "target"), source, "{text}");

    // An edge on the cluster answers as the embedded one did.
    let edge = Edge::start(&dir.path().join("replica"), &tokens, &["--store", &cluster.url()]);
    let on_cluster = (stats(&edge, &team_a).await, stats(&edge, &team_b).await);
    assert_eq!((on_cluster.0.units, on_cluster.0.repos, on_cluster.0.patterns), (embedded_stats.0.units, embedded_stats.0.repos, embedded_stats.0.patterns));
    assert_eq!((on_cluster.1.units, on_cluster.1.repos, on_cluster.1.patterns), (embedded_stats.1.units, embedded_stats.1.repos, embedded_stats.1.patterns));
    let query = QueryRequest {
        sketches: [5, 120, 299].iter().map(|&n| QuerySketch { id: format!("q{n}"), t2_hash: t2_of(n), sketch: sketch_of(n) }).collect(),
        exclude_repo: None,
        min_similarity: Some(0.99),
        top_k: Some(10),
    };
    let answer: QueryResponse = http.post(edge.url("/v1/query")).bearer_auth(&team_a).json(&query).send().await.unwrap().json().await.unwrap();
    let found: Vec<Vec<&str>> = answer
        .results
        .iter()
        .map(|result| {
            let mut repos: Vec<&str> = result.matches.iter().map(|unit| unit.repo.as_str()).collect();
            repos.sort_unstable();
            repos
        })
        .collect();
    assert_eq!(found, vec![vec![], vec!["billing", "ledger"], vec!["billing"]], "no unit twice, the removed one absent");
    let detail: PatternDetail = http.get(edge.url(&format!("/v1/patterns/{}", t2_of(120).to_hex()))).bearer_auth(&team_a).send().await.unwrap().json().await.unwrap();
    assert_eq!((detail.summary.name.as_deref(), detail.summary.note.as_deref(), detail.summary.units), (Some("money rounding"), Some("note on 120"), 2));
    let only_named: PatternDetail = http.get(edge.url(&format!("/v1/patterns/{}", t2_of(7).to_hex()))).bearer_auth(&team_a).send().await.unwrap().json().await.unwrap();
    assert_eq!(only_named.summary.name.as_deref(), Some("named before any copy"));
    let other_team: PatternDetail = http.get(edge.url(&format!("/v1/patterns/{}", t2_of(3).to_hex()))).bearer_auth(&team_b).send().await.unwrap().json().await.unwrap();
    assert_eq!((other_team.summary.name.as_deref(), other_team.summary.units), (Some("b's own name"), 2), "the family came along");
    let through_near: PatternDetail = http.get(edge.url(&format!("/v1/patterns/{}", t2_of(1000).to_hex()))).bearer_auth(&team_b).send().await.unwrap().json().await.unwrap();
    assert_eq!(through_near, other_team);
}
