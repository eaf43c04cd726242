//! The TLS that `deploy/` uses by default, with the material `deploy/gen-certs.sh` makes, on
//! loopback: a Redis Cluster speaking only TLS (clients, cluster bus, replication), a cloud tier
//! serving HTTPS with its generated certificate, and a team edge reaching both over TLS while
//! trusting only the generated CA (`--redis-ca-file`, `--cloud-ca-file`). A batch pushed through
//! the edge is stored in the cluster and its statistics reach the cloud; an edge that does not
//! trust the CA refuses to start rather than fall back to plain text.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BINARY, Edge, client, create_token};
use periodic_edge::store::conformance::{batch, sketch_of, t2_of};
use periodic_wire::cloud::CloudSummary;
use periodic_wire::{QueryRequest, QueryResponse, QuerySketch};
use redis_cluster::{RedisCluster, TlsFiles};
use reqwest::StatusCode;

fn gen_certs(out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("deploy/gen-certs.sh");
    let output = Command::new("sh").arg(&script).arg(out).output().unwrap();
    assert!(output.status.success(), "gen-certs.sh failed: {}", String::from_utf8_lossy(&output.stderr));
    for file in ["ca.pem", "ca.key", "redis.pem", "redis.key", "cloud.pem", "cloud.key"] {
        assert!(out.join(file).is_file(), "gen-certs.sh did not write {file}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(out.join("ca.key")).unwrap().permissions().mode() & 0o777, 0o600, "the CA key is private");
    }
}

#[tokio::test]
async fn the_edge_reaches_redis_and_the_cloud_over_tls_with_generated_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("tls");
    gen_certs(&certs);
    let ca = certs.join("ca.pem");
    let path = |name: &str| certs.join(name).display().to_string();
    let cluster = RedisCluster::start_tls(TlsFiles { cert: certs.join("redis.pem"), key: certs.join("redis.key"), ca: ca.clone() });

    let cloud_tokens = dir.path().join("cloud-tokens.json");
    let push_token = create_token(&cloud_tokens, "edge-tls", "cloud-push");
    let dashboard = create_token(&cloud_tokens, "dashboard", "cloud-read");
    let cloud = Edge::start_https(&dir.path().join("cloud"), &cloud_tokens, &["--role", "cloud", "--tls-cert", &path("cloud.pem"), "--tls-key", &path("cloud.key")]);
    // The certificate names localhost, not the address: reach the cloud by that name.
    let cloud_url = cloud.base.replace("127.0.0.1", "localhost");
    let cloud_token_file = dir.path().join("cloud-token");
    std::fs::write(&cloud_token_file, &push_token).unwrap();

    let tokens = dir.path().join("tokens.json");
    let writer = create_token(&tokens, "team-a", "write");
    let ca_arg = ca.display().to_string();
    let token_file_arg = cloud_token_file.display().to_string();
    let edge = Edge::start(
        &dir.path().join("edge"),
        &tokens,
        &["--store", &cluster.url(), "--redis-ca-file", &ca_arg, "--cloud-url", &cloud_url, "--cloud-token-file", &token_file_arg, "--cloud-ca-file", &ca_arg, "--cloud-push-interval-ms", "100"],
    );

    // Through the edge into the TLS cluster and back.
    let http = client();
    let pushed = http.post(edge.url("/v1/repos/billing/deltas")).bearer_auth(&writer).json(&batch("b1", 0..20)).send().await.unwrap();
    assert_eq!(pushed.status(), StatusCode::OK, "{}", pushed.text().await.unwrap());
    let query = QueryRequest { sketches: vec![QuerySketch { id: "q".into(), t2_hash: t2_of(7), sketch: sketch_of(7) }], exclude_repo: None, min_similarity: Some(0.99), top_k: Some(5) };
    let answer: QueryResponse = http.post(edge.url("/v1/query")).bearer_auth(&writer).json(&query).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer.results[0].matches.len(), 1, "the unit came back from the TLS cluster");

    // The statistics reach the cloud over HTTPS; the test reads them trusting only the same CA.
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .tls_built_in_root_certs(false)
        .no_proxy()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let summary: CloudSummary = trusting.get(format!("{cloud_url}/v1/summary")).bearer_auth(&dashboard).send().await.unwrap().json().await.unwrap();
        if summary.fingerprints == 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the cloud holds {} of 20 fingerprints after 30 s", summary.fingerprints);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A client with the web PKI roots only does not trust the private CA's certificate.
    assert!(cloud_url.starts_with("https://"));
    assert!(http.get(format!("{cloud_url}/health/live")).send().await.is_err(), "the cloud's certificate was trusted without the CA");

    // Without the CA (system roots only) the edge does not trust the cluster and exits.
    let mut untrusting = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("untrusting"))
        .arg("--tokens")
        .arg(&tokens)
        .args(["--store", &cluster.url(), "--redis-tls"])
        .env("PERIODIC_EDGE_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = untrusting.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "an edge that does not trust the cluster's CA kept running");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(untrusting.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success() && stderr.contains("connect to the Redis Cluster"), "{status}: {stderr}");
}
