//! A real `periodic-edge` process on a loopback port for tests, and its tokens. The binary
//! is `$PERIODIC_EDGE_BIN`, else `periodic-edge` in this test's target directory (built by
//! `cargo build --workspace`, which the test command runs first).

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn edge_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PERIODIC_EDGE_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/edge_sync-<hash> -> target/<profile>/periodic-edge
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let candidate = profile_dir.join(format!("periodic-edge{}", std::env::consts::EXE_SUFFIX));
    assert!(
        candidate.is_file(),
        "{} not found: build it with `cargo build -p periodic-edge` (or `cargo build --workspace`), or set PERIODIC_EDGE_BIN",
        candidate.display()
    );
    candidate
}

/// A real edge server process on 127.0.0.1, killed when dropped.
pub struct Edge {
    child: Child,
    pub base: String,
}

impl Edge {
    /// Starts on `port` (0: any free port) with data in `data`.
    pub fn start(data: &Path, tokens: &Path, port: u16) -> Edge {
        Edge::start_with(data, tokens, port, &[])
    }

    /// Like [`Edge::start`], with more arguments (e.g. `--role cloud`).
    pub fn start_with(data: &Path, tokens: &Path, port: u16, extra: &[&str]) -> Edge {
        let addr_file = data.with_extension("addr");
        let _ = std::fs::remove_file(&addr_file);
        let mut child = Command::new(edge_binary())
            .args(["--listen", &format!("127.0.0.1:{port}"), "--shards", "2", "--data"])
            .arg(data)
            .arg("--tokens")
            .arg(tokens)
            .arg("--addr-file")
            .arg(&addr_file)
            .args(extra)
            .env("PERIODIC_EDGE_LOG", "warn,redis=error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(address) = std::fs::read_to_string(&addr_file)
                && !address.is_empty()
            {
                return Edge { child, base: format!("http://{}", address.trim()) };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("periodic-edge exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "periodic-edge did not listen within 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str, token: &str) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
            let response = client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap();
            assert!(response.status().is_success(), "GET {path}: {}", response.status());
            response.text().await.unwrap()
        })
    }

    pub fn stats_units(&self, token: &str) -> u64 {
        let stats: serde_json::Value = serde_json::from_str(&self.get("/v1/stats", token)).unwrap();
        stats["units"].as_u64().unwrap()
    }

    /// `edge_units_ingested_total`: upserts applied by non-duplicate batches.
    pub fn units_ingested(&self) -> u64 {
        let metrics = self.get("/metrics", "");
        metrics
            .lines()
            .find(|line| line.starts_with("edge_units_ingested_total"))
            .and_then(|line| line.split_whitespace().last())
            .map_or(0, |value| value.parse::<f64>().unwrap() as u64)
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn create_token(tokens: &Path, tenant: &str, role: &str) -> String {
    let output = Command::new(edge_binary()).args(["token", "create", "--tokens"]).arg(tokens).args(["--tenant", tenant, "--role", role]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A port nothing listens on (bound once by the OS, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

