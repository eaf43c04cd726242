//! End-to-end tests of the team analysis cache (`POST /v1/analyses/lookup`, `POST
//! /v1/analyses`) against the real `periodic-edge` binary on a loopback port, embedded store:
//! the round trip and the NDJSON answer with its done line, misses, tenant isolation, roles,
//! bad input, the route's own body limit, LRU eviction at a tiny budget, TTL expiry, other
//! analysis keys, the cache turned off, a damaged cache (an error, never a miss), the audit
//! log and the metrics. The same behaviour of
//! the Redis Cluster backend is checked by the conformance suite (tests/redis_cluster.rs).

mod common;

use base64::Engine as _;
use common::{Edge, client, create_token};
use periodic_edge::store::conformance::{analysis_entry, content_hash};
use periodic_wire::{AnalysisEntry, AnalysisLookup, AnalysisLookupLine, AnalysisUpload, AnalysisUploadAck, MAX_ANALYSIS_LOOKUP, MAX_ANALYSIS_UPLOAD};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Fixture {
    dir: tempfile::TempDir,
    edge: Edge,
    writer: String,
    reader: String,
    other_tenant: String,
}

fn fixture(extra: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.json");
    let writer = create_token(&tokens, "team-a", "write");
    let reader = create_token(&tokens, "team-a", "read");
    let other_tenant = create_token(&tokens, "team-b", "write");
    let audit = dir.path().join("audit.jsonl");
    let audit = audit.to_str().expect("utf-8 path");
    let mut args = vec!["--shards", "2", "--sync", "normal", "--audit-log", audit];
    args.extend_from_slice(extra);
    let edge = Edge::start(&dir.path().join("data"), &tokens, &args);
    Fixture { dir, edge, writer, reader, other_tenant }
}

fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An upload entry for `content_hash(number)` of `len` bytes.
fn wire_entry(number: u64, variant: u8, len: usize) -> AnalysisEntry {
    AnalysisEntry { hash: hex(&content_hash(number)), entry: encode(&analysis_entry(number, variant, len)) }
}

async fn upload(fixture: &Fixture, token: &str, analysis: &str, entries: Vec<AnalysisEntry>) -> reqwest::Response {
    let body = AnalysisUpload { analysis: analysis.into(), entries };
    client().post(fixture.edge.url("/v1/analyses")).bearer_auth(token).json(&body).send().await.expect("upload sent")
}

async fn stored(fixture: &Fixture, token: &str, analysis: &str, entries: Vec<AnalysisEntry>) -> u32 {
    let response = upload(fixture, token, analysis, entries).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<AnalysisUploadAck>().await.expect("ack").stored
}

/// The answer to a lookup: its content type, whether it came without a length (streamed), and
/// its lines, each parsed.
async fn lookup_lines(fixture: &Fixture, token: &str, analysis: &str, numbers: &[u64]) -> (String, bool, Vec<AnalysisLookupLine>) {
    let body = AnalysisLookup { analysis: analysis.into(), hashes: numbers.iter().map(|&n| hex(&content_hash(n))).collect() };
    let response = client().post(fixture.edge.url("/v1/analyses/lookup")).bearer_auth(token).json(&body).send().await.expect("lookup sent");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
    // Written as it is read: no length is known when the answer starts.
    let streamed = response.headers().get("content-length").is_none();
    let text = response.text().await.expect("answer");
    assert!(text.ends_with('\n'), "every line ends with a newline: {text:?}");
    let lines = text.lines().map(|line| serde_json::from_str(line).expect("each line is one JSON value")).collect();
    (content_type, streamed, lines)
}

/// Hits of a lookup as (number, entry bytes), checked against the done line.
async fn hits(fixture: &Fixture, token: &str, analysis: &str, numbers: &[u64]) -> Vec<(u64, Vec<u8>)> {
    let (_, _, lines) = lookup_lines(fixture, token, analysis, numbers).await;
    let (last, entries) = lines.split_last().expect("at least the done line");
    let mut found = Vec::new();
    for line in entries {
        let AnalysisLookupLine::Hit(entry) = line else { panic!("a done line before the end: {lines:?}") };
        let number = numbers.iter().copied().find(|&n| hex(&content_hash(n)) == entry.hash).expect("a hit for a hash that was asked");
        found.push((number, base64::engine::general_purpose::STANDARD.decode(&entry.entry).expect("base64")));
    }
    assert_eq!(last, &AnalysisLookupLine::Done { done: true, hits: found.len() as u32 }, "the last line counts the hits");
    found.sort();
    found
}

async fn hit_numbers(fixture: &Fixture, token: &str, analysis: &str, numbers: &[u64]) -> Vec<u64> {
    hits(fixture, token, analysis, numbers).await.into_iter().map(|(number, _)| number).collect()
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("error body");
    (status, body["error"].as_str().unwrap_or_default().to_string(), body["message"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn entries_round_trip_as_ndjson_with_a_done_line_and_unknown_hashes_miss() {
    let fixture = fixture(&[]);
    // 40 entries: more than one store step of hashes, some of them large.
    let entries: Vec<AnalysisEntry> = (0..40).map(|n| wire_entry(n, 1, if n % 10 == 0 { 300_000 } else { 2000 + n as usize })).collect();
    assert_eq!(stored(&fixture, &fixture.writer, "engine-1:abc", entries).await, 40);

    let (content_type, streamed, lines) = lookup_lines(&fixture, &fixture.reader, "engine-1:abc", &[5, 1000, 0, 1001]).await;
    assert_eq!((content_type.as_str(), streamed), ("application/x-ndjson", true));
    assert_eq!(lines.len(), 3, "two hits and the done line: {lines:?}");
    let asked: Vec<u64> = (0..45).rev().collect();
    let found = hits(&fixture, &fixture.reader, "engine-1:abc", &asked).await;
    assert_eq!(found.len(), 40, "the five unknown hashes are left out");
    for (number, bytes) in found {
        assert_eq!(bytes, analysis_entry(number, 1, if number % 10 == 0 { 300_000 } else { 2000 + number as usize }));
    }
    // Nothing asked: only the done line.
    let (_, _, lines) = lookup_lines(&fixture, &fixture.reader, "engine-1:abc", &[]).await;
    assert_eq!(lines, vec![AnalysisLookupLine::Done { done: true, hits: 0 }]);
    // Uploading what is held refreshes it: the first bytes stay.
    assert_eq!(stored(&fixture, &fixture.writer, "engine-1:abc", vec![wire_entry(3, 9, 50)]).await, 1);
    assert_eq!(hits(&fixture, &fixture.reader, "engine-1:abc", &[3]).await, vec![(3, analysis_entry(3, 1, 2003))]);

    // A read token looks up but cannot upload.
    let (status, kind, _) = error_of(upload(&fixture, &fixture.reader, "engine-1:abc", vec![wire_entry(99, 1, 10)]).await).await;
    assert_eq!((status, kind.as_str()), (StatusCode::FORBIDDEN, "forbidden"));
    assert!(hit_numbers(&fixture, &fixture.reader, "engine-1:abc", &[99]).await.is_empty());
    // Without a token: 401 on both routes.
    let anonymous = client().post(fixture.edge.url("/v1/analyses/lookup")).json(&json!({"analysis": "v1", "hashes": []})).send().await.expect("sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The audit log has the uploads' counts and bytes, never a hash or the analysis key.
    let audit = std::fs::read_to_string(fixture.dir.path().join("audit.jsonl")).expect("audit log");
    let uploads: Vec<Value> = audit.lines().map(|line| serde_json::from_str::<Value>(line).expect("json")).filter(|line| line["action"] == "analysis.upload").collect();
    assert_eq!(uploads.iter().map(|line| line["outcome"].as_str().unwrap_or_default()).collect::<Vec<_>>(), vec!["ok", "ok", "denied"]);
    assert_eq!((uploads[0]["entries"].as_u64(), uploads[0]["stored"].as_u64()), (Some(40), Some(40)));
    assert_eq!(uploads[1]["bytes"].as_u64(), Some(50));
    assert!(!audit.contains(&hex(&content_hash(3))) && !audit.contains("engine-1"), "{audit}");

    let metrics = client().get(fixture.edge.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    for needle in [
        "edge_analysis_hashes_total{outcome=\"hit\"}",
        "edge_analysis_hashes_total{outcome=\"miss\"}",
        "edge_analysis_bytes_total{direction=\"served\"}",
        "edge_analysis_entries_stored_total",
        "route=\"/v1/analyses/lookup\"",
    ] {
        assert!(metrics.contains(needle), "/metrics lacks {needle}");
    }
}

#[tokio::test]
async fn a_tenant_neither_reads_nor_overwrites_another_tenants_entries() {
    let fixture = fixture(&[]);
    assert_eq!(stored(&fixture, &fixture.writer, "engine-1", vec![wire_entry(1, 0xa, 500)]).await, 1);
    // B's lookup of A's hash is a plain miss, like any unknown hash.
    assert!(hit_numbers(&fixture, &fixture.other_tenant, "engine-1", &[1]).await.is_empty());
    // B's upload of the same hash stores B's own entry and leaves A's as it was.
    assert_eq!(stored(&fixture, &fixture.other_tenant, "engine-1", vec![wire_entry(1, 0xb, 700)]).await, 1);
    assert_eq!(hits(&fixture, &fixture.reader, "engine-1", &[1]).await, vec![(1, analysis_entry(1, 0xa, 500))]);
    assert_eq!(hits(&fixture, &fixture.other_tenant, "engine-1", &[1]).await, vec![(1, analysis_entry(1, 0xb, 700))]);
}

#[tokio::test]
async fn bad_input_is_refused_with_400_naming_the_field() {
    let fixture = fixture(&[]);
    let http = client();
    let good_hash = hex(&content_hash(1));
    let lookups = [
        (json!({"analysis": "engine-1", "hashes": [good_hash, "ABCDEF".repeat(10) + "abcd"]}), "hashes[1]"),
        (json!({"analysis": "engine-1", "hashes": ["0".repeat(63)]}), "hashes[0]"),
        (json!({"analysis": "engine 1", "hashes": []}), "analysis"),
        (json!({"analysis": "", "hashes": []}), "analysis"),
        (json!({"analysis": "k".repeat(129), "hashes": []}), "analysis"),
        (json!({"analysis": "engine-1", "hashes": vec![good_hash.clone(); MAX_ANALYSIS_LOOKUP + 1]}), "hashes"),
        (json!({"analysis": "engine-1", "hashes": [], "extra": 1}), "extra"),
    ];
    for (body, field) in lookups {
        let response = http.post(fixture.edge.url("/v1/analyses/lookup")).bearer_auth(&fixture.reader).json(&body).send().await.expect("sent");
        let (status, kind, message) = error_of(response).await;
        assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{field}: {message}");
        assert!(message.contains(field), "the message names `{field}`: {message}");
    }
    let larger = encode(&vec![0u8; periodic_wire::MAX_ANALYSIS_ENTRY_BYTES + 1]);
    let uploads = [
        (json!({"analysis": "engine-1", "entries": [{"hash": "xyz", "entry": ""}]}), "entries[0].hash"),
        (json!({"analysis": "engine-1", "entries": [{"hash": good_hash, "entry": "not base64!"}]}), "entries[0].entry"),
        (json!({"analysis": "engine-1", "entries": [{"hash": good_hash, "entry": ""}, {"hash": good_hash, "entry": larger}]}), "entries[1].entry"),
        (json!({"analysis": "engine/1", "entries": []}), "analysis"),
        (json!({"analysis": "engine-1", "entries": vec![json!({"hash": good_hash, "entry": ""}); MAX_ANALYSIS_UPLOAD + 1]}), "entries"),
    ];
    for (body, field) in uploads {
        let response = http.post(fixture.edge.url("/v1/analyses")).bearer_auth(&fixture.writer).json(&body).send().await.expect("sent");
        let (status, kind, message) = error_of(response).await;
        assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{field}: {message}");
        assert!(message.contains(field), "the message names `{field}`: {message}");
    }
    // Nothing of the refused uploads was stored.
    assert!(hit_numbers(&fixture, &fixture.reader, "engine-1", &[1]).await.is_empty());
}

/// The status line the server answers to `head` (a request without its body); bounded.
async fn status_of_head(edge: &Edge, head: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = edge.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !answer.windows(2).any(|window| window == b"\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => answer.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 20 s");
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn uploads_have_a_body_limit_of_their_own() {
    // Every other route takes at most 1 MB here; uploads keep their 64 MiB.
    let fixture = fixture(&["--max-body-bytes", "1000000"]);
    let entries: Vec<AnalysisEntry> = (0..3).map(|n| wire_entry(n, 0, 600_000)).collect();
    assert_eq!(stored(&fixture, &fixture.writer, "engine-1", entries).await, 3);
    let lookup = json!({"analysis": "engine-1", "hashes": [hex(&content_hash(0))], "padding": "x".repeat(1_100_000)});
    let response = client().post(fixture.edge.url("/v1/analyses/lookup")).bearer_auth(&fixture.reader).json(&lookup).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "the lookup route keeps the common limit");

    // Beyond 64 MiB: refused as soon as the headers are in.
    let address = fixture.edge.base.trim_start_matches("http://").to_string();
    let head = format!(
        "POST /v1/analyses HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        fixture.writer,
        (64 << 20) + 1
    );
    let status = status_of_head(&fixture.edge, head).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
}

#[tokio::test]
async fn a_tiny_budget_evicts_the_least_recently_used_entries() {
    // 1 MiB holds three entries of 300 KB (each charged a little more than its bytes).
    let fixture = fixture(&["--analysis-cache-mib", "1"]);
    for number in 0..3 {
        assert_eq!(stored(&fixture, &fixture.writer, "engine-1", vec![wire_entry(number, 0, 300_000)]).await, 1);
    }
    // 0 is used again, so 1 is the least recently used when a fourth arrives.
    assert_eq!(hit_numbers(&fixture, &fixture.reader, "engine-1", &[0]).await, vec![0]);
    assert_eq!(stored(&fixture, &fixture.writer, "engine-1", vec![wire_entry(3, 0, 300_000)]).await, 1);
    assert_eq!(hit_numbers(&fixture, &fixture.reader, "engine-1", &[0, 1, 2, 3]).await, vec![0, 2, 3]);
    // Another tenant's budget is its own: its uploads evict nothing of team-a's.
    for number in 10..13 {
        assert_eq!(stored(&fixture, &fixture.other_tenant, "engine-1", vec![wire_entry(number, 0, 300_000)]).await, 1);
    }
    assert_eq!(hit_numbers(&fixture, &fixture.reader, "engine-1", &[0, 1, 2, 3]).await, vec![0, 2, 3]);
    // An entry larger than the whole budget is not kept.
    assert_eq!(stored(&fixture, &fixture.writer, "engine-1", vec![wire_entry(20, 0, 2_000_000)]).await, 0);
}

#[tokio::test]
async fn entries_expire_after_the_ttl_and_other_analysis_keys_miss() {
    let fixture = fixture(&["--analysis-cache-ttl", "2s"]);
    assert_eq!(stored(&fixture, &fixture.writer, "engine-1:settings-a", vec![wire_entry(1, 0, 100)]).await, 1);
    assert_eq!(hit_numbers(&fixture, &fixture.reader, "engine-1:settings-a", &[1]).await, vec![1]);
    // Another engine version or settings digest is another address: a miss.
    assert!(hit_numbers(&fixture, &fixture.reader, "engine-2:settings-a", &[1]).await.is_empty());
    assert!(hit_numbers(&fixture, &fixture.reader, "engine-1:settings-b", &[1]).await.is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    assert!(hit_numbers(&fixture, &fixture.reader, "engine-1:settings-a", &[1]).await.is_empty(), "unused for longer than the TTL");
}

#[tokio::test]
async fn a_budget_of_zero_turns_the_cache_off() {
    let fixture = fixture(&["--analysis-cache-mib", "0"]);
    assert_eq!(stored(&fixture, &fixture.writer, "engine-1", vec![wire_entry(1, 0, 100)]).await, 0);
    let (_, _, lines) = lookup_lines(&fixture, &fixture.reader, "engine-1", &[1]).await;
    assert_eq!(lines, vec![AnalysisLookupLine::Done { done: true, hits: 0 }]);
    // Input is still checked.
    let response = upload(&fixture, &fixture.writer, "engine 1", Vec::new()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_damaged_cache_is_an_error_not_a_miss() {
    let fixture = fixture(&[]);
    assert_eq!(stored(&fixture, &fixture.writer, "engine-1", vec![wire_entry(1, 0, 100)]).await, 1);
    // Damage the cache's file from outside while the server runs.
    let outside = rusqlite::Connection::open(fixture.edge.data.join("analyses.db")).expect("open");
    outside.execute_batch("DROP TABLE analysis_entries; DROP TABLE analyses;").expect("drop");
    let body = AnalysisLookup { analysis: "engine-1".into(), hashes: vec![hex(&content_hash(1))] };
    let response = client().post(fixture.edge.url("/v1/analyses/lookup")).bearer_auth(&fixture.reader).json(&body).send().await.expect("sent");
    let (status, kind, _) = error_of(response).await;
    assert_eq!((status, kind.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"), "a failing store is not an empty answer");
    let (status, kind, _) = error_of(upload(&fixture, &fixture.writer, "engine-1", vec![wire_entry(2, 0, 100)]).await).await;
    assert_eq!((status, kind.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"));
    let ready = client().get(fixture.edge.url("/health/ready")).send().await.expect("sent");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let audit = std::fs::read_to_string(fixture.dir.path().join("audit.jsonl")).expect("audit log");
    assert!(audit.lines().any(|line| line.contains("\"analysis.upload\"") && line.contains("\"failed\"") && line.contains("storage_error")), "{audit}");
}
