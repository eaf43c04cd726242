//! End-to-end tests of the v1 API against the real `periodic-edge` binary on a loopback port:
//! every route (and the OpenAPI document against the route table), authentication and roles,
//! tenant isolation, bad input, rate limiting, idempotent retries, metrics, storage failure,
//! token reload on SIGHUP, and TLS.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{Edge, client, create_token};
use periodic_edge::store::conformance::{batch, sketch_of, t2_of, unit};
use periodic_wire::{DeltaAck, DeltaBatch, PatternDetail, PatternList, QueryRequest, QueryResponse, QuerySketch, Stats, T2Hash};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Fixture {
    _dir: tempfile::TempDir,
    edge: Edge,
    writer: String,
    reader: String,
    other_tenant: String,
}

fn fixture(extra: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let writer = create_token(&tokens, "team-a", "write");
    let reader = create_token(&tokens, "team-a", "read");
    let other_tenant = create_token(&tokens, "team-b", "admin");
    let mut args = vec!["--shards", "4", "--sync", "normal"];
    args.extend_from_slice(extra);
    let edge = Edge::start(&dir.path().join("data"), &tokens, &args);
    Fixture { _dir: dir, edge, writer, reader, other_tenant }
}

fn query_for(numbers: &[u64]) -> QueryRequest {
    QueryRequest {
        sketches: numbers.iter().map(|&n| QuerySketch { id: format!("q{n}"), t2_hash: t2_of(n), sketch: sketch_of(n) }).collect(),
        exclude_repo: None,
        min_similarity: Some(0.9),
        top_k: Some(10),
    }
}

async fn post_batch(fixture: &Fixture, token: &str, repo: &str, body: &DeltaBatch) -> reqwest::Response {
    client().post(fixture.edge.url(&format!("/v1/repos/{repo}/deltas"))).bearer_auth(token).json(body).send().await.unwrap()
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string(), body["message"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn openapi_document_matches_the_routes_and_every_route_answers() {
    let fixture = fixture(&[]);
    let http = client();
    let document: Value = http.get(fixture.edge.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(document["openapi"], "3.0.3");
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = periodic_edge::api::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served, "OpenAPI document and router disagree");

    // Every route, with valid input, answers 200 from the real server.
    let token = &fixture.writer;
    let ack: DeltaAck = post_batch(&fixture, token, "billing", &batch("b1", 0..20)).await.json().await.unwrap();
    assert_eq!((ack.upserted, ack.duplicate), (20, false));
    post_batch(&fixture, token, "ledger", &batch("b1", 0..5)).await.error_for_status().unwrap();

    let mut request = query_for(&[3]);
    request.exclude_repo = Some("ledger".into());
    let response: QueryResponse = http.post(fixture.edge.url("/v1/query")).bearer_auth(token).json(&request).send().await.unwrap().json().await.unwrap();
    let matches = &response.results[0].matches;
    assert_eq!(matches.len(), 1);
    assert_eq!((matches[0].repo.as_str(), matches[0].key.as_str(), matches[0].exact), ("billing", "unit-3", true));
    assert_eq!(matches[0].location.as_ref().unwrap().path, unit(3).location.unwrap().path);

    let list: PatternList = http.get(fixture.edge.url("/v1/patterns?top=3")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.patterns.len(), 3);
    assert!(list.patterns.iter().all(|p| p.units == 2 && p.repos == 2));
    // Pattern ids are `P-` and the shared hash, as `periodic` shows them locally.
    assert!(list.patterns.iter().all(|p| T2Hash::from_pattern_id(&p.id).is_some_and(|hash| hash.pattern_id() == p.id)), "{:?}", list.patterns);
    let id = t2_of(4).pattern_id();
    let named: PatternDetail = http
        .put(fixture.edge.url(&format!("/v1/patterns/{id}")))
        .bearer_auth(token)
        .json(&json!({"name": "money rounding", "note": "use Money::round"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(named.summary.name.as_deref(), Some("money rounding"));
    // Language servers from before families read this answer strictly: no occurrence kinds.
    assert!(!named.occurrences.is_empty() && named.occurrences.iter().all(|o| o.kind.is_none()), "{:?}", named.occurrences);
    // The edge records who set the name (the token's id) and when.
    assert!(named.summary.named_by.as_deref().is_some_and(|by| !by.is_empty() && by != token.as_str()), "the token's id, never the secret: {:?}", named.summary);
    assert!(named.summary.named_at.is_some_and(|at| at > 1_700_000_000), "{:?}", named.summary);
    let listed: PatternList = http.get(fixture.edge.url("/v1/patterns?named=true")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.patterns.iter().map(|p| (p.id.as_str(), p.name.as_deref())).collect::<Vec<_>>(), vec![(id.as_str(), Some("money rounding"))]);
    let detail: PatternDetail = http.get(fixture.edge.url(&format!("/v1/patterns/{id}"))).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(detail.occurrences.len(), 2);
    assert!(detail.occurrences.iter().all(|o| o.kind == Some(periodic_wire::OccurrenceKind::T2)), "{:?}", detail.occurrences);
    assert_eq!(detail.summary.note.as_deref(), Some("use Money::round"));
    assert_eq!(detail.summary.id, id);
    // The bare hash, as earlier versions wrote pattern ids, names the same pattern.
    let bare: PatternDetail = http.get(fixture.edge.url(&format!("/v1/patterns/{}", t2_of(4).to_hex()))).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(bare, detail);
    let missing = http.get(fixture.edge.url(&format!("/v1/patterns/{}", t2_of(999).to_hex()))).bearer_auth(token).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let stats: Stats = http.get(fixture.edge.url("/v1/stats")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!((stats.units, stats.repos, stats.patterns, stats.shards), (25, 2, 5, 4));

    for path in ["/health/live", "/health/ready"] {
        assert_eq!(http.get(fixture.edge.url(path)).send().await.unwrap().status(), StatusCode::OK, "{path}");
    }
    let metrics = http.get(fixture.edge.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for needle in ["edge_http_requests_total", "route=\"/v1/query\"", "edge_units_stored 25", "edge_store_seconds", "edge_http_request_duration_seconds", "edge_cache_requests_total"] {
        assert!(metrics.contains(needle), "/metrics lacks {needle}:\n{metrics}");
    }
    let unknown = http.get(fixture.edge.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn authentication_and_roles_are_enforced() {
    let fixture = fixture(&[]);
    let http = client();
    let url = fixture.edge.url("/v1/stats");
    let no_token = http.get(&url).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    let wrong = http.get(&url).bearer_auth("pe1_0000000000000000000000000000000000000000000000000000000000000000").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let basic = http.get(&url).basic_auth("user", Some(&fixture.writer)).send().await.unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    // Unauthenticated requests never reach storage, even with a body.
    let anonymous_write = http.post(fixture.edge.url("/v1/repos/r/deltas")).json(&batch("b", 0..1)).send().await.unwrap();
    assert_eq!(anonymous_write.status(), StatusCode::UNAUTHORIZED);

    // A read token reads but may not write or name patterns.
    assert_eq!(http.get(&url).bearer_auth(&fixture.reader).send().await.unwrap().status(), StatusCode::OK);
    let (status, kind, _) = error_of(post_batch(&fixture, &fixture.reader, "r", &batch("b", 0..3)).await).await;
    assert_eq!((status, kind.as_str()), (StatusCode::FORBIDDEN, "forbidden"));
    let put = http.put(fixture.edge.url(&format!("/v1/patterns/{}", t2_of(1).to_hex()))).bearer_auth(&fixture.reader).json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::FORBIDDEN);
    let stats: Stats = http.get(&url).bearer_auth(&fixture.reader).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats.units, 0, "a refused write stored nothing");
    let query = http.post(fixture.edge.url("/v1/query")).bearer_auth(&fixture.reader).json(&query_for(&[1])).send().await.unwrap();
    assert_eq!(query.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoked_tokens_stop_working_after_sighup() {
    let fixture = fixture(&[]);
    let http = client();
    let url = fixture.edge.url("/v1/stats");
    assert_eq!(http.get(&url).bearer_auth(&fixture.reader).send().await.unwrap().status(), StatusCode::OK);
    let list = std::process::Command::new(common::BINARY).args(["token", "list", "--tokens"]).arg(&fixture.edge.tokens).output().unwrap();
    let listing = String::from_utf8(list.stdout).unwrap();
    assert_eq!(listing.lines().count(), 3);
    assert!(!listing.contains(&fixture.reader), "token list never shows tokens");
    let reader_line = listing.lines().find(|line| line.contains("\tteam-a\tread\t")).unwrap();
    let id = reader_line.split('\t').next().unwrap();
    let revoke = std::process::Command::new(common::BINARY).args(["token", "revoke", "--tokens"]).arg(&fixture.edge.tokens).args(["--id", id]).status().unwrap();
    assert!(revoke.success());
    let added = create_token(&fixture.edge.tokens, "team-c", "read");
    fixture.edge.signal("HUP");
    // Reload is asynchronous; poll (bounded) until the revoked token is refused.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = http.get(&url).bearer_auth(&fixture.reader).send().await.unwrap().status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "revoked token still accepted after SIGHUP");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(http.get(&url).bearer_auth(&added).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(http.get(&url).bearer_auth(&fixture.writer).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn tenants_cannot_see_or_change_each_others_data() {
    let fixture = fixture(&[]);
    let http = client();
    post_batch(&fixture, &fixture.writer, "billing", &batch("b1", 0..10)).await.error_for_status().unwrap();
    post_batch(&fixture, &fixture.writer, "ledger", &batch("b1", 0..10)).await.error_for_status().unwrap();
    let id = t2_of(2).to_hex();
    http.put(fixture.edge.url(&format!("/v1/patterns/{id}"))).bearer_auth(&fixture.writer).json(&json!({"name": "a-name"})).send().await.unwrap().error_for_status().unwrap();

    let other = &fixture.other_tenant;
    let response: QueryResponse = http.post(fixture.edge.url("/v1/query")).bearer_auth(other).json(&query_for(&[1, 2, 3])).send().await.unwrap().json().await.unwrap();
    assert!(response.results.iter().all(|r| r.matches.is_empty()), "tenant B saw tenant A's units");
    let patterns: PatternList = http.get(fixture.edge.url("/v1/patterns")).bearer_auth(other).send().await.unwrap().json().await.unwrap();
    assert!(patterns.patterns.is_empty());
    assert_eq!(http.get(fixture.edge.url(&format!("/v1/patterns/{id}"))).bearer_auth(other).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // B writes to the same repository name with the same batch id and keys, renames the same
    // pattern id and removes the same keys: A is untouched.
    let ack: DeltaAck = post_batch(&fixture, other, "billing", &batch("b1", 0..2)).await.json().await.unwrap();
    assert!(!ack.duplicate);
    let removal = DeltaBatch { batch_id: "b2".into(), upserts: vec![], removals: (0..10).map(|n| format!("unit-{n}")).collect() };
    post_batch(&fixture, other, "billing", &removal).await.error_for_status().unwrap();
    http.put(fixture.edge.url(&format!("/v1/patterns/{id}"))).bearer_auth(other).json(&json!({"name": "b-name"})).send().await.unwrap().error_for_status().unwrap();

    let a_stats: Stats = http.get(fixture.edge.url("/v1/stats")).bearer_auth(&fixture.reader).send().await.unwrap().json().await.unwrap();
    assert_eq!((a_stats.units, a_stats.repos), (20, 2));
    let a_detail: PatternDetail = http.get(fixture.edge.url(&format!("/v1/patterns/{id}"))).bearer_auth(&fixture.reader).send().await.unwrap().json().await.unwrap();
    assert_eq!(a_detail.summary.name.as_deref(), Some("a-name"));
    assert_eq!(a_detail.summary.units, 2);
    let b_stats: Stats = http.get(fixture.edge.url("/v1/stats")).bearer_auth(other).send().await.unwrap().json().await.unwrap();
    assert_eq!(b_stats.units, 0);
}

#[tokio::test]
async fn bad_input_is_refused_with_a_message_naming_the_field() {
    let fixture = fixture(&["--max-batch-units", "10", "--max-body-bytes", "200000"]);
    let http = client();
    let token = &fixture.writer;
    let deltas = fixture.edge.url("/v1/repos/billing/deltas");
    let send_raw = |body: String| http.post(&deltas).bearer_auth(token).header("content-type", "application/json").body(body).send();

    let (status, _, message) = error_of(send_raw("{not json".into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");

    let mut wrong_type = serde_json::to_value(batch("b1", 0..2)).unwrap();
    wrong_type["upserts"][1]["tokens"] = json!("many");
    let (status, _, message) = error_of(send_raw(wrong_type.to_string()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("upserts[1].tokens"), "{message}");

    let mut unknown_field = serde_json::to_value(batch("b1", 0..1)).unwrap();
    unknown_field["upserts"][0]["source_code"] = json!("fn secret() {}");
    let (status, _, message) = error_of(send_raw(unknown_field.to_string()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("source_code"), "{message}");

    let mut short_sketch = serde_json::to_value(batch("b1", 0..1)).unwrap();
    short_sketch["upserts"][0]["sketch"] = json!([1, 2, 3]);
    let (status, _, message) = error_of(send_raw(short_sketch.to_string()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("upserts[0].sketch"), "{message}");

    let mut bad_hash = serde_json::to_value(batch("b1", 0..1)).unwrap();
    bad_hash["upserts"][0]["t2_hash"] = json!(12345);
    let (status, _, message) = error_of(send_raw(bad_hash.to_string()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("upserts[0].t2_hash"), "{message}");

    let mut inverted_lines = batch("b1", 0..1);
    if let Some(location) = inverted_lines.upserts[0].location.as_mut() {
        location.start_line = 50;
    }
    let (status, _, message) = error_of(post_batch(&fixture, token, "billing", &inverted_lines).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("upserts[0].location"), "{message}");

    let deep = format!("{}{}", "[".repeat(150_000), "]".repeat(150_000));
    assert_eq!(send_raw(deep).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE, "300 kB of brackets exceeds the 200 kB body limit");
    let deep_small = format!("{{\"batch_id\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
    assert_eq!(send_raw(deep_small).await.unwrap().status(), StatusCode::BAD_REQUEST);

    let huge = format!("{{\"batch_id\":\"{}\"}}", "x".repeat(300_000));
    assert_eq!(send_raw(huge).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, kind, _) = error_of(post_batch(&fixture, token, "billing", &batch("big", 0..11)).await).await;
    assert_eq!((status, kind.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    // More items than the schema's maxItems is a malformed request, not merely a large one.
    let removals = vec!["\"k\""; 5001].join(",");
    let (status, _, message) = error_of(send_raw(format!("{{\"batch_id\":\"m\",\"removals\":[{removals}]}}")).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("removals"), "{message}");

    let (status, _, message) = error_of(post_batch(&fixture, token, "bad%20name", &batch("b", 0..1)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("repo"), "{message}");
    let (status, _, message) = error_of(send_raw(r#"{"batch_id":""}"#.into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("batch_id"), "{message}");
    assert_eq!(send_raw(r#"{"batch_id":"ok"} trailing"#.into()).await.unwrap().status(), StatusCode::BAD_REQUEST);
    // serde would take a struct in positional array form; the API accepts objects only.
    let (status, _, message) = error_of(send_raw(r#"["b1", [], []]"#.into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("object"), "{message}");

    let query = fixture.edge.url("/v1/query");
    for (body, field) in [
        (json!({"sketches": []}), "sketches"),
        (json!({"sketches": [{"id": "a", "t2_hash": t2_of(1), "sketch": sketch_of(1)}], "min_similarity": 2.0}), "min_similarity"),
        (json!({"sketches": [{"id": "a", "t2_hash": t2_of(1), "sketch": sketch_of(1)}], "top_k": 0}), "top_k"),
        (json!({"sketches": [{"id": "a", "t2_hash": "ABCDEF0123456789", "sketch": sketch_of(1)}]}), "sketches[0].t2_hash"),
        (json!({"sketches": "none"}), "sketches"),
    ] {
        let (status, _, message) = error_of(http.post(&query).bearer_auth(token).json(&body).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(message.contains(field), "{field}: {message}");
    }
    for path in ["/v1/patterns/xyz", "/v1/patterns/ABCDEF0123456789", "/v1/patterns?top=0", "/v1/patterns?top=abc", "/v1/patterns?bottom=3"] {
        assert_eq!(http.get(fixture.edge.url(path)).bearer_auth(token).send().await.unwrap().status(), StatusCode::BAD_REQUEST, "{path}");
    }
    let long_name = json!({"name": "n".repeat(201)});
    let put = http.put(fixture.edge.url(&format!("/v1/patterns/{}", t2_of(1).to_hex()))).bearer_auth(token).json(&long_name).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::BAD_REQUEST);

    // Nothing of the above was stored, and the server is still alive.
    let stats: Stats = http.get(fixture.edge.url("/v1/stats")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats.units, 0);
    assert_eq!(http.get(fixture.edge.url("/health/live")).send().await.unwrap().status(), StatusCode::OK);
}

/// Sends `head` (request line and headers) and then `body_parts` on a raw connection, one
/// part every 100 ms, without ever finishing the body; returns the status line the server
/// answers and how long after the headers it came. Bounded: 20 s.
async fn answer_to_an_unfinished_body(edge: &Edge, head: String, body_parts: Vec<Vec<u8>>) -> (String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = edge.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let sent_headers = std::time::Instant::now();
    let sender = tokio::spawn(async move {
        for part in body_parts {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if writer.write_all(&part).await.is_err() {
                return writer;
            }
        }
        // The body never ends: the client stalls, as a slow or hostile one would.
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        writer
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !answer.windows(2).any(|window| window == b"\r\n") {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => answer.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    let elapsed = sent_headers.elapsed();
    sender.abort();
    assert!(read.is_ok(), "no answer within 20 s");
    let text = String::from_utf8_lossy(&answer);
    (text.lines().next().unwrap_or_default().to_string(), elapsed)
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_without_waiting_for_it() {
    // A request timeout far above the bounds below: a server that waited for the body would
    // answer only after it.
    let fixture = fixture(&["--max-body-bytes", "200000", "--request-timeout", "60"]);
    let token = &fixture.writer;
    let address = fixture.edge.base.trim_start_matches("http://").to_string();

    // A declared length of 256 MiB: refused as soon as the headers are in, body unread.
    let head = format!(
        "POST /v1/repos/billing/deltas HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 268435456\r\n\r\n"
    );
    let (status, elapsed) = answer_to_an_unfinished_body(&fixture.edge, head, vec![b"{\"batch_id\":\"".to_vec()]).await;
    eprintln!("declared 256 MiB: {status:?} after {elapsed:?}");
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert!(elapsed < std::time::Duration::from_secs(10), "413 came only after {elapsed:?}");

    // The same with `Expect: 100-continue`: the client learns 413 without sending anything.
    let head = format!(
        "POST /v1/query HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Length: 268435456\r\nExpect: 100-continue\r\n\r\n"
    );
    let (status, _) = answer_to_an_unfinished_body(&fixture.edge, head, Vec::new()).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");

    // A chunked body (no declared length) that grows past the limit and then stalls: 413
    // once the limit is crossed, not at the request timeout.
    let head = format!(
        "POST /v1/repos/billing/deltas HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let chunk = |data: &[u8]| [format!("{:x}\r\n", data.len()).into_bytes(), data.to_vec(), b"\r\n".to_vec()].concat();
    let mut parts = vec![chunk(b"{\"batch_id\":\"")];
    parts.extend((0..5).map(|_| chunk(&[b'x'; 64 * 1024])));
    let (status, elapsed) = answer_to_an_unfinished_body(&fixture.edge, head, parts).await;
    eprintln!("chunked past the limit: {status:?} after {elapsed:?}");
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert!(elapsed < std::time::Duration::from_secs(10), "413 came only after {elapsed:?}");

    // The server still serves.
    let response = post_batch(&fixture, token, "billing", &batch("b1", 0..2)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_per_token() {
    let fixture = fixture(&["--rate-limit", "2", "--rate-burst", "3"]);
    let http = client();
    let url = fixture.edge.url("/v1/stats");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..12 {
        let response = http.get(&url).bearer_auth(&fixture.reader).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        }
        statuses.push(response.status());
    }
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(limited >= 6, "expected most of 12 rapid requests over a burst of 3 to be limited: {statuses:?}");
    assert!(statuses[0] == StatusCode::OK);
    assert!(retry_after.unwrap() >= 1);
    // Another token has its own budget.
    assert_eq!(http.get(&url).bearer_auth(&fixture.writer).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn retried_batches_are_applied_once() {
    let fixture = fixture(&[]);
    let http = client();
    let first: DeltaAck = post_batch(&fixture, &fixture.writer, "billing", &batch("retry-me", 0..40)).await.json().await.unwrap();
    assert!(!first.duplicate);
    let removal = DeltaBatch { batch_id: "remove-some".into(), upserts: vec![], removals: vec!["unit-0".into()] };
    post_batch(&fixture, &fixture.writer, "billing", &removal).await.error_for_status().unwrap();
    // A late retry of the first batch must not resurrect unit-0.
    let retry: DeltaAck = post_batch(&fixture, &fixture.writer, "billing", &batch("retry-me", 0..40)).await.json().await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.upserted, 40);
    let stats: Stats = http.get(fixture.edge.url("/v1/stats")).bearer_auth(&fixture.writer).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats.units, 39);
}

#[tokio::test]
async fn sketches_are_read_in_both_wire_forms_and_a_bad_compact_one_names_the_field() {
    let fixture = fixture(&[]);
    let http = client();
    let token = &fixture.writer;
    // The wire crate writes the compact form; the first v1 clients wrote 64 integers.
    let mut mixed = serde_json::to_value(batch("mixed", 0..2)).unwrap();
    assert!(mixed["upserts"][1]["sketch"].is_string(), "{}", mixed["upserts"][1]);
    mixed["upserts"][0]["sketch"] = json!(sketch_of(0).0.to_vec());
    let deltas = fixture.edge.url("/v1/repos/billing/deltas");
    let response = http.post(&deltas).bearer_auth(token).json(&mixed).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<DeltaAck>().await.unwrap().upserted, 2);

    // Each stored sketch is found by a query in either form: the two spellings mean the same.
    let query = fixture.edge.url("/v1/query");
    let probe = |number: u64, sketch: Value| json!({"sketches": [{"id": "p", "t2_hash": t2_of(number + 1000), "sketch": sketch}], "min_similarity": 1.0});
    for (number, sketch) in [(0, json!(sketch_of(0).to_base64())), (1, json!(sketch_of(1).0.to_vec()))] {
        let answer: QueryResponse = http.post(&query).bearer_auth(token).json(&probe(number, sketch)).send().await.unwrap().json().await.unwrap();
        let keys: Vec<&str> = answer.results[0].matches.iter().map(|found| found.key.as_str()).collect();
        assert_eq!(keys, [format!("unit-{number}")], "unit {number}");
    }

    let good = sketch_of(3).to_base64();
    for (bad, reason) in [
        (format!("{}!{}", &good[..20], &good[21..]), "base64"),
        (good[..200].to_string(), "344"),
        (format!("{good}===="), "344"),
        (String::new(), "344"),
    ] {
        let mut body = serde_json::to_value(batch("bad", 0..1)).unwrap();
        body["upserts"][0]["sketch"] = json!(bad);
        let (status, kind, message) = error_of(http.post(&deltas).bearer_auth(token).json(&body).send().await.unwrap()).await;
        assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{message}");
        assert!(message.contains("upserts[0].sketch") && message.contains(reason), "{reason}: {message}");
        let (status, _, message) = error_of(http.post(&query).bearer_auth(token).json(&probe(3, json!(bad))).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("sketches[0].sketch") && message.contains(reason), "{reason}: {message}");
    }
    let stats: Stats = http.get(fixture.edge.url("/v1/stats")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats.units, 2, "no bad batch was applied");
}

#[tokio::test]
async fn storage_failure_is_a_5xx_and_readiness_fails() {
    let fixture = fixture(&[]);
    let http = client();
    post_batch(&fixture, &fixture.writer, "billing", &batch("b1", 0..5)).await.error_for_status().unwrap();
    // Damage every shard from outside while the server runs.
    for shard in 0..4 {
        let path = fixture.edge.data.join(format!("shard-{shard:04}.db"));
        let connection = rusqlite::Connection::open(path).unwrap();
        connection.execute_batch("DROP TABLE units; DROP TABLE batches;").unwrap();
    }
    let (status, kind, _) = error_of(post_batch(&fixture, &fixture.writer, "billing", &batch("b2", 0..5)).await).await;
    assert_eq!((status, kind.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"));
    let ready = http.get(fixture.edge.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(http.get(fixture.edge.url("/health/live")).send().await.unwrap().status(), StatusCode::OK);
    let metrics = http.get(fixture.edge.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("edge_store_errors_total"), "storage errors are counted");
}

#[tokio::test]
async fn tls_serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let tokens = dir.path().join("tokens.json");
    let token = create_token(&tokens, "team-a", "read");
    let edge = Edge::start_tls(&dir.path().join("data"), &tokens, &cert, &key);
    assert!(edge.base.starts_with("https://127.0.0.1:"));
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let stats: Stats = http.get(edge.url("/v1/stats")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats.shards, 2);
    // Plain HTTP to the TLS port does not get an answer.
    let plain = client().get(edge.url("/health/live").replacen("https", "http", 1)).send().await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
}
