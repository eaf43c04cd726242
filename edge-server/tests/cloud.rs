//! End-to-end tests of the cloud tier with real processes on loopback ports: team edges push
//! statistics to a real `periodic-edge --role cloud`; two teams are counted as two; the cloud
//! goes down while deltas keep arriving and the team edge keeps answering; when it returns
//! the outbox drains and counts are exact, also when a batch reaches the cloud twice; team and
//! cloud tokens are not interchangeable; the cloud's OpenAPI document matches its routes; and
//! nothing the cloud stores or answers holds a path, a name, a repository or a team name.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BINARY, Edge, client, create_token};
use periodic_edge::store::conformance::sketch_of;
use periodic_wire::cloud::{CloudSummary, CommonnessRequest, CommonnessResponse, StatisticsAck, StatisticsBatch};
use periodic_wire::{DeltaAck, DeltaBatch, Location, Organisation, QueryRequest, QueryResponse, QuerySketch, Stats, T2Hash, UnitUpsert};
use reqwest::StatusCode;
use serde_json::Value;

/// A `periodic-edge --role cloud` process on a fixed loopback port, so that it can be stopped
/// and started again where the team edges expect it.
struct Cloud {
    child: Option<Child>,
    port: u16,
    data: PathBuf,
    tokens: PathBuf,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Cloud {
    fn start(data: &Path, tokens: &Path) -> Cloud {
        let mut cloud = Cloud { child: None, port: free_port(), data: data.to_path_buf(), tokens: tokens.to_path_buf() };
        cloud.spawn();
        cloud
    }

    fn spawn(&mut self) {
        let addr_file = self.data.with_extension("addr");
        let _ = std::fs::remove_file(&addr_file);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut child = Command::new(BINARY)
                .args(["--role", "cloud", "--listen", &format!("127.0.0.1:{}", self.port), "--data"])
                .arg(&self.data)
                .arg("--tokens")
                .arg(&self.tokens)
                .arg("--addr-file")
                .arg(&addr_file)
                .env("PERIODIC_EDGE_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            loop {
                if std::fs::read_to_string(&addr_file).is_ok_and(|address| !address.is_empty()) {
                    self.child = Some(child);
                    return;
                }
                if child.try_wait().unwrap().is_some() {
                    // The port may still be held by the previous process for a moment.
                    break;
                }
                assert!(Instant::now() < deadline, "the cloud did not start listening within 60 s");
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(Instant::now() < deadline, "the cloud could not bind 127.0.0.1:{}", self.port);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGTERM and wait: a graceful stop.
    fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "the cloud exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the cloud did not stop within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A unit with a chosen exact hash, and a location full of names the cloud must never see.
fn unit(key: &str, t2: u64, path: &str, name: &str) -> UnitUpsert {
    UnitUpsert {
        key: key.into(),
        t2_hash: T2Hash(t2),
        sketch: sketch_of(t2),
        tokens: 50,
        lines: 9,
        nesting: 2,
        language: "rust".into(),
        location: Some(Location { path: path.into(), name: name.into(), start_line: 3, end_line: 11 }),
        family: None,
    }
}

const X: u64 = 0x0123_4567_89ab_cdef;
const Y: u64 = 0x0fed_cba9_8765_4321;
const Z: u64 = 0x0a0a_0b0b_0c0c_0d0d;

/// Team edge arguments that push to `cloud` quickly (short intervals and backoff, short cache).
fn uplink_args(cloud: &Cloud, token_file: &Path) -> Vec<String> {
    [
        "--shards",
        "2",
        "--sync",
        "normal",
        "--cloud-url",
        &cloud.url(""),
        "--cloud-token-file",
        &token_file.display().to_string(),
        "--cloud-push-interval-ms",
        "50",
        "--cloud-retry-max-ms",
        "400",
        "--cloud-cache-ttl",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start_edge(data: &Path, tokens: &Path, args: &[String]) -> Edge {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Edge::start(data, tokens, &args)
}

fn write_token_file(path: &Path, token: &str) {
    std::fs::write(path, format!("{token}\n")).unwrap();
}

async fn push(edge: &Edge, token: &str, repo: &str, batch: &DeltaBatch) -> DeltaAck {
    let response = client().post(edge.url(&format!("/v1/repos/{repo}/deltas"))).bearer_auth(token).json(batch).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "delta batch refused: {}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn commonness(cloud: &Cloud, token: &str, fingerprints: &[u64]) -> Vec<Organisation> {
    let request = CommonnessRequest { fingerprints: fingerprints.iter().map(|&n| T2Hash(n)).collect() };
    let response: CommonnessResponse =
        client().post(cloud.url("/v1/commonness")).bearer_auth(token).json(&request).send().await.unwrap().json().await.unwrap();
    response.results.into_iter().map(|result| result.organisation).collect()
}

/// Polls the cloud until `fingerprints` have the `expected` counts (bounded).
async fn wait_for_counts(cloud: &Cloud, token: &str, fingerprints: &[u64], expected: &[Organisation]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = commonness(cloud, token, fingerprints).await;
        if counts == expected {
            return;
        }
        assert!(Instant::now() < deadline, "cloud counts {counts:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn org(teams: u64, repos: u64, units: u64) -> Organisation {
    Organisation { teams, repos, units }
}

fn query(t2s: &[u64]) -> QueryRequest {
    QueryRequest {
        sketches: t2s.iter().map(|&t2| QuerySketch { id: format!("{t2:x}"), t2_hash: T2Hash(t2), sketch: sketch_of(t2) }).collect(),
        exclude_repo: None,
        min_similarity: Some(0.9),
        top_k: Some(10),
    }
}

async fn team_query(edge: &Edge, token: &str, t2s: &[u64]) -> QueryResponse {
    let response = client().post(edge.url("/v1/query")).bearer_auth(token).json(&query(t2s)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Every byte of every file under `dir` (database, WAL, shared memory).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_teams_push_and_the_organisation_count_reaches_their_queries_without_names() {
    let dir = tempfile::tempdir().unwrap();
    let cloud_tokens = dir.path().join("cloud-tokens.json");
    let edge_one_cloud_token = create_token(&cloud_tokens, "edge-one", "cloud-push");
    let edge_two_cloud_token = create_token(&cloud_tokens, "edge-two", "cloud-push");
    let observer = create_token(&cloud_tokens, "dashboard", "cloud-read");
    let cloud = Cloud::start(&dir.path().join("cloud"), &cloud_tokens);

    let mut edges = Vec::new();
    let mut team_tokens = Vec::new();
    for (index, (team, cloud_token)) in [("team-alpha", &edge_one_cloud_token), ("team-beta", &edge_two_cloud_token)].into_iter().enumerate() {
        let tokens = dir.path().join(format!("team-tokens-{index}.json"));
        team_tokens.push(create_token(&tokens, team, "write"));
        let token_file = dir.path().join(format!("cloud-token-{index}"));
        write_token_file(&token_file, cloud_token);
        edges.push(start_edge(&dir.path().join(format!("edge-{index}")), &tokens, &uplink_args(&cloud, &token_file)));
    }

    // team-alpha: X twice in two repositories, Y once; team-beta: X once.
    let alpha = DeltaBatch {
        batch_id: "a1".into(),
        upserts: vec![unit("key-of-alpha-1", X, "src/secret_money.rs", "round_cents_secretly"), unit("key-of-alpha-2", Y, "src/hidden_ledger.rs", "post_entry_quietly")],
        removals: vec![],
    };
    push(&edges[0], &team_tokens[0], "billing-service", &alpha).await;
    let alpha_two = DeltaBatch { batch_id: "a2".into(), upserts: vec![unit("key-of-alpha-1", X, "lib/private_copy.rs", "round_cents_again")], removals: vec![] };
    push(&edges[0], &team_tokens[0], "ledger-core", &alpha_two).await;
    let beta = DeltaBatch { batch_id: "b1".into(), upserts: vec![unit("key-of-beta-1", X, "pkg/confidential.rs", "beta_rounding")], removals: vec![] };
    push(&edges[1], &team_tokens[1], "payments-api", &beta).await;

    wait_for_counts(&cloud, &observer, &[X, Y, Z], &[org(2, 3, 3), org(1, 1, 1), org(0, 0, 0)]).await;
    let summary: CloudSummary = client().get(cloud.url("/v1/summary")).bearer_auth(&observer).send().await.unwrap().json().await.unwrap();
    assert_eq!((summary.fingerprints, summary.teams, summary.sources), (2, 2, 2));

    // A team edge's query carries the organisation counts once its cache has them (the first
    // query starts the lookup and does not wait for it).
    let deadline = Instant::now() + Duration::from_secs(30);
    let x_hex = T2Hash(X).to_hex();
    loop {
        let answer = team_query(&edges[1], &team_tokens[1], &[X, Y]).await;
        assert_eq!(answer.results[0].matches.len(), 1, "the team's own answer is unchanged");
        if answer.organisation.get(&x_hex) == Some(&org(2, 3, 3)) {
            assert_eq!(answer.organisation.get(&T2Hash(Y).to_hex()), Some(&org(1, 1, 1)), "known, even if the asking team lacks it");
            break;
        }
        assert!(Instant::now() < deadline, "no organisation counts in the team answer: {:?}", answer.organisation);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Nothing the cloud stores or answers names a path, a function, a repository or a team.
    let forbidden = [
        "secret_money",
        "round_cents",
        "hidden_ledger",
        "post_entry",
        "private_copy",
        "confidential",
        "beta_rounding",
        "billing-service",
        "ledger-core",
        "payments-api",
        "team-alpha",
        "team-beta",
        "src/",
        "key-of-",
    ];
    let stored = all_bytes(&cloud.data);
    assert!(stored.len() > 4096, "the cloud database is where the test looks");
    let mut answered = serde_json::to_string(&summary).unwrap();
    answered.push_str(&client().post(cloud.url("/v1/commonness")).bearer_auth(&observer).json(&CommonnessRequest { fingerprints: vec![T2Hash(X)] }).send().await.unwrap().text().await.unwrap());
    for needle in forbidden {
        assert!(!contains(&stored, needle), "the cloud's files contain {needle:?}");
        assert!(!answered.contains(needle), "the cloud's answers contain {needle:?}");
    }
    // What it does hold: fingerprints as integers and teams as 32-hex pseudonyms.
    let connection = rusqlite::Connection::open(cloud.data.join("cloud.db")).unwrap();
    let teams: Vec<String> = connection
        .prepare("SELECT DISTINCT team FROM team_fingerprints")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(teams.len(), 2);
    assert!(teams.iter().all(|team| periodic_wire::cloud::is_team_pseudonym(team)), "{teams:?}");
}

/// The pending batch in a team edge's outbox, read the way the edge stored it.
fn pending_batch(edge_data: &Path) -> Option<StatisticsBatch> {
    let connection = rusqlite::Connection::open_with_flags(edge_data.join("cloud-outbox.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let body: Option<String> = connection.query_row("SELECT body FROM pending WHERE slot = 1", [], |row| row.get(0)).ok();
    body.map(|body| serde_json::from_str(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_drains_after_a_cloud_outage_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let cloud_tokens = dir.path().join("cloud-tokens.json");
    let edge_cloud_token = create_token(&cloud_tokens, "edge-one", "cloud-push");
    let observer = create_token(&cloud_tokens, "dashboard", "cloud-read");
    let mut cloud = Cloud::start(&dir.path().join("cloud"), &cloud_tokens);
    let team_tokens = dir.path().join("team-tokens.json");
    let writer = create_token(&team_tokens, "team-alpha", "write");
    let token_file = dir.path().join("cloud-token");
    write_token_file(&token_file, &edge_cloud_token);
    let edge_data = dir.path().join("edge");
    let mut edge = start_edge(&edge_data, &team_tokens, &uplink_args(&cloud, &token_file));

    let first = DeltaBatch { batch_id: "d1".into(), upserts: vec![unit("k1", X, "src/a.rs", "a"), unit("k2", X, "src/b.rs", "b"), unit("k3", Y, "src/c.rs", "c")], removals: vec![] };
    push(&edge, &writer, "repo-one", &first).await;
    wait_for_counts(&cloud, &observer, &[X, Y], &[org(1, 1, 2), org(1, 1, 1)]).await;

    cloud.stop();
    // With the cloud down the team edge takes deltas and answers as before.
    let second = DeltaBatch { batch_id: "d2".into(), upserts: vec![unit("k4", X, "src/d.rs", "d"), unit("k5", Z, "src/e.rs", "e")], removals: vec![] };
    push(&edge, &writer, "repo-two", &second).await;
    // k3 changes shape (Y -> Z) and k2 is removed: Y disappears, X loses a unit in repo-one.
    let third = DeltaBatch { batch_id: "d3".into(), upserts: vec![unit("k3", Z, "src/c.rs", "c")], removals: vec!["k2".into()] };
    push(&edge, &writer, "repo-one", &third).await;
    // A retried delta batch is applied once on the team edge, so it cannot inflate counts.
    assert!(push(&edge, &writer, "repo-one", &third).await.duplicate);
    let answer = team_query(&edge, &writer, &[X, Z]).await;
    assert_eq!(answer.results[0].matches.len(), 2);
    assert_eq!(answer.results[1].matches.len(), 2);
    let stats: Stats = client().get(edge.url("/v1/stats")).bearer_auth(&writer).send().await.unwrap().json().await.unwrap();
    assert_eq!((stats.units, stats.repos), (4, 2));
    for path in ["/health/live", "/health/ready"] {
        assert_eq!(client().get(edge.url(path)).send().await.unwrap().status(), StatusCode::OK, "{path} with the cloud down");
    }

    // The edge formed a batch it could not deliver; it survives a kill -9 of the edge.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending_batch(&edge_data).is_none() {
        assert!(Instant::now() < deadline, "no pending statistics batch while the cloud is down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    edge.kill9();
    let pending = pending_batch(&edge_data).unwrap();
    edge.restart();

    // The cloud returns. Before the edge retries, the same batch arrives as if an earlier
    // attempt had been applied and its acknowledgement lost: the edge's retry must then be a
    // duplicate, and a replay under a new id must be stale, never added.
    cloud.spawn();
    let direct: StatisticsAck =
        client().post(cloud.url("/v1/statistics")).bearer_auth(&edge_cloud_token).json(&pending).send().await.unwrap().json().await.unwrap();
    let replay = StatisticsBatch { batch_id: format!("{}-replay", pending.batch_id), entries: pending.entries.clone() };
    let replayed: StatisticsAck =
        client().post(cloud.url("/v1/statistics")).bearer_auth(&edge_cloud_token).json(&replay).send().await.unwrap().json().await.unwrap();
    assert_eq!(replayed.applied, 0, "a replayed count is stale: {replayed:?} after {direct:?}");

    // X: k1 (repo-one) and k4 (repo-two); Y: none; Z: k5 (repo-two) and k3 (repo-one).
    wait_for_counts(&cloud, &observer, &[X, Y, Z], &[org(1, 2, 2), org(0, 0, 0), org(1, 2, 2)]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending_batch(&edge_data).is_some() {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Drained and quiet: the counts stay exact.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(commonness(&cloud, &observer, &[X, Y, Z]).await, vec![org(1, 2, 2), org(0, 0, 0), org(1, 2, 2)]);
    let metrics = client().get(edge.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("edge_cloud_batches_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_and_cloud_tokens_are_not_interchangeable() {
    let dir = tempfile::tempdir().unwrap();
    // Even with one tokens file for both servers, each refuses the other tier's tokens.
    let tokens = dir.path().join("tokens.json");
    let team_admin = create_token(&tokens, "team-alpha", "admin");
    let cloud_push = create_token(&tokens, "edge-one", "cloud-push");
    let cloud_read = create_token(&tokens, "dashboard", "cloud-read");
    assert!(team_admin.starts_with("pe1_") && cloud_push.starts_with("pc1_"));
    let cloud = Cloud::start(&dir.path().join("cloud"), &tokens);
    let edge = Edge::start(&dir.path().join("edge"), &tokens, &["--shards", "2"]);
    let http = client();

    let statistics = StatisticsBatch { batch_id: "t1".into(), entries: vec![] };
    let refused = http.post(cloud.url("/v1/statistics")).bearer_auth(&team_admin).json(&statistics).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("team edge token"), "{body}");
    assert_eq!(http.get(cloud.url("/v1/summary")).bearer_auth(&team_admin).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(http.post(cloud.url("/v1/statistics")).bearer_auth(&cloud_read).json(&statistics).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(http.post(cloud.url("/v1/statistics")).bearer_auth(&cloud_push).json(&statistics).send().await.unwrap().status(), StatusCode::OK);

    for token in [&cloud_push, &cloud_read] {
        assert_eq!(http.get(edge.url("/v1/stats")).bearer_auth(token).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let batch = DeltaBatch { batch_id: "x".into(), upserts: vec![], removals: vec![] };
        assert_eq!(http.post(edge.url("/v1/repos/r/deltas")).bearer_auth(token).json(&batch).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(http.get(edge.url("/v1/stats")).bearer_auth(&team_admin).send().await.unwrap().status(), StatusCode::OK);

    // Bad statistics are refused with the field named: a name in place of a team pseudonym.
    let named = serde_json::json!({"batch_id": "t2", "entries": [{"team": "team-alpha", "fingerprint": "0123456789abcdef", "units": 1, "repos": 1, "version": 1}]});
    let refused = http.post(cloud.url("/v1/statistics")).bearer_auth(&cloud_push).json(&named).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("entries[0].team"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_openapi_document_matches_its_routes_and_every_route_answers() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let pusher = create_token(&tokens, "edge-one", "cloud-push");
    let cloud = Cloud::start(&dir.path().join("cloud"), &tokens);
    let http = client();
    let document: Value = http.get(cloud.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(document["openapi"], "3.0.3");
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = periodic_edge::cloud::api::CLOUD_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served, "the cloud's OpenAPI document and router disagree");

    let team = "0123456789abcdef0123456789abcdef";
    let batch = serde_json::json!({"batch_id": "e1", "entries": [{"team": team, "fingerprint": "00000000000000aa", "units": 3, "repos": 2, "version": 5}]});
    let ack: StatisticsAck = http.post(cloud.url("/v1/statistics")).bearer_auth(&pusher).json(&batch).send().await.unwrap().json().await.unwrap();
    assert_eq!((ack.duplicate, ack.applied, ack.stale), (false, 1, 0));
    let again: StatisticsAck = http.post(cloud.url("/v1/statistics")).bearer_auth(&pusher).json(&batch).send().await.unwrap().json().await.unwrap();
    assert!(again.duplicate);
    assert_eq!(commonness(&cloud, &pusher, &[0xaa]).await, vec![org(1, 2, 3)]);
    let summary: CloudSummary = http.get(cloud.url("/v1/summary")).bearer_auth(&pusher).send().await.unwrap().json().await.unwrap();
    assert_eq!((summary.fingerprints, summary.teams, summary.sources, summary.batches), (1, 1, 1, 1));
    for path in ["/health/live", "/health/ready", "/metrics"] {
        assert_eq!(http.get(cloud.url(path)).send().await.unwrap().status(), StatusCode::OK, "{path}");
    }
    let metrics = http.get(cloud.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("cloud_statistics_entries_total"), "{metrics}");
    assert_eq!(http.get(cloud.url("/v1/query")).send().await.unwrap().status(), StatusCode::NOT_FOUND, "team routes are not served");
}
