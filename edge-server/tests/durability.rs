//! Durability of acknowledged batches against the real binary: a graceful restart keeps all
//! data, and a `kill -9` in the middle of a concurrent write load loses no batch the server
//! had acknowledged (default `--sync full`). Loads are bounded in batches and time.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Edge, client, create_token};
use periodic_edge::store::conformance::{batch, sketch_of, t2_of};
use periodic_wire::{DeltaAck, QueryRequest, QueryResponse, QuerySketch, Stats};

async fn stats(edge: &Edge, token: &str) -> Stats {
    client().get(edge.url("/v1/stats")).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

/// Asserts that every unit number in `numbers` is stored in `repo` (exact match found).
async fn assert_all_found(edge: &Edge, token: &str, repo: &str, numbers: &[u64]) {
    for chunk in numbers.chunks(200) {
        let request = QueryRequest {
            sketches: chunk.iter().map(|&n| QuerySketch { id: n.to_string(), t2_hash: t2_of(n), sketch: sketch_of(n) }).collect(),
            exclude_repo: None,
            min_similarity: Some(1.0),
            top_k: Some(5),
        };
        let response: QueryResponse = client().post(edge.url("/v1/query")).bearer_auth(token).json(&request).send().await.unwrap().json().await.unwrap();
        for result in response.results {
            assert!(result.matches.iter().any(|m| m.repo == repo && m.exact), "unit {} of acknowledged batch missing in {repo}", result.id);
        }
    }
}

#[tokio::test]
async fn graceful_restart_keeps_everything_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let token = create_token(&tokens, "team-a", "write");
    let mut edge = Edge::start(&dir.path().join("data"), &tokens, &["--shards", "3"]);
    let http = client();
    for (number, repo) in ["billing", "ledger"].iter().enumerate() {
        let range = (number as u64 * 100)..(number as u64 * 100 + 100);
        http.post(edge.url(&format!("/v1/repos/{repo}/deltas"))).bearer_auth(&token).json(&batch("first", range)).send().await.unwrap().error_for_status().unwrap();
    }
    http.put(edge.url(&format!("/v1/patterns/{}", t2_of(5).to_hex()))).bearer_auth(&token).json(&serde_json::json!({"name": "kept"})).send().await.unwrap().error_for_status().unwrap();
    let before = stats(&edge, &token).await;
    let status = edge.stop();
    assert!(status.success(), "SIGTERM must end with exit 0, got {status}");

    edge.restart();
    assert_eq!(stats(&edge, &token).await, before);
    assert_all_found(&edge, &token, "billing", &(0..100).collect::<Vec<_>>()).await;
    let detail: serde_json::Value = http.get(edge.url(&format!("/v1/patterns/{}", t2_of(5).to_hex()))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(detail["summary"]["name"], "kept");
    // The batch log survived too: a retry is recognised.
    let retry: DeltaAck = http.post(edge.url("/v1/repos/billing/deltas")).bearer_auth(&token).json(&batch("first", 0..100)).send().await.unwrap().json().await.unwrap();
    assert!(retry.duplicate);
    assert!(edge.stop().success());
}

#[tokio::test]
async fn kill_9_during_writes_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let token = create_token(&tokens, "team-a", "write");
    let mut edge = Edge::start(&dir.path().join("data"), &tokens, &["--shards", "4", "--sync", "full"]);

    const WRITERS: u64 = 4;
    const UNITS_PER_BATCH: u64 = 50;
    const MAX_BATCHES_PER_WRITER: u64 = 400;
    let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let url = edge.url(&format!("/v1/repos/repo-{writer}/deltas"));
        let token = token.clone();
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).no_proxy().build().unwrap();
            for sequence in 0..MAX_BATCHES_PER_WRITER {
                // Unit numbers are globally unique: writer w, batch s -> a disjoint range.
                let first = (writer * MAX_BATCHES_PER_WRITER + sequence) * UNITS_PER_BATCH;
                let body = batch(&format!("w{writer}-s{sequence}"), first..first + UNITS_PER_BATCH);
                match http.post(&url).bearer_auth(&token).json(&body).send().await {
                    Ok(response) if response.status().is_success() => {
                        let ack: DeltaAck = match response.json().await {
                            Ok(ack) => ack,
                            Err(_) => return, // connection cut while reading: not acknowledged
                        };
                        assert!(!ack.duplicate);
                        acknowledged.lock().unwrap().push((format!("repo-{writer}"), first));
                    }
                    // The server was killed: stop writing.
                    _ => return,
                }
            }
        }));
    }
    // Let the load run until a fair number of batches were acknowledged (bounded in time).
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 60 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    edge.kill9();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 10, "the load acknowledged too little to prove anything: {}", acknowledged.len());

    edge.restart();
    let stored = stats(&edge, &token).await;
    assert!(stored.units >= acknowledged.len() as u64 * UNITS_PER_BATCH, "{} units stored, {} batches acknowledged", stored.units, acknowledged.len());
    for (repo, first) in &acknowledged {
        let numbers: Vec<u64> = (*first..first + UNITS_PER_BATCH).collect();
        assert_all_found(&edge, &token, repo, &numbers).await;
    }
    // Every acknowledged batch id is remembered: its retry is a duplicate.
    let http = client();
    for (repo, first) in acknowledged.iter().take(20) {
        let writer: u64 = repo.trim_start_matches("repo-").parse().unwrap();
        let sequence = first / UNITS_PER_BATCH - writer * MAX_BATCHES_PER_WRITER;
        let retry: DeltaAck = http
            .post(edge.url(&format!("/v1/repos/{repo}/deltas")))
            .bearer_auth(&token)
            .json(&batch(&format!("w{writer}-s{sequence}"), *first..first + UNITS_PER_BATCH))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(retry.duplicate, "batch w{writer}-s{sequence} was acknowledged but its id was lost");
    }
}
