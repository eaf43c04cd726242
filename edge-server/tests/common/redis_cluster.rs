//! Test harness: a real 6-node Redis Cluster (3 masters, 3 replicas) of Debian `redis-server`
//! processes on free loopback ports, each in its own directory under a temp dir (AOF on,
//! `cluster-node-timeout 1000`), created with `redis-cli --cluster create`. Nodes can be
//! killed (`kill -9`) and started again from their directory (same port, `nodes.conf`, AOF).
//! [`RedisCluster::start_tls`] starts the same cluster speaking only TLS (clients, cluster
//! bus and replication), with certificates from `deploy/gen-certs.sh`.
//! Every wait is bounded; every process is killed when the harness drops.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

pub struct Node {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

pub struct RedisCluster {
    _root: tempfile::TempDir,
    pub nodes: Vec<Node>,
    fsync_always: bool,
    tls: Option<TlsFiles>,
}

/// A node's certificate and key and the CA that signed them (PEM files).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// Options every `redis-cli` call of this test binary adds (`--tls --cacert CA` once a TLS
/// cluster is started): a test binary runs either plain or TLS clusters, not both.
static CLI_TLS: OnceLock<Vec<String>> = OnceLock::new();

fn cli_tls_args() -> &'static [String] {
    CLI_TLS.get().map_or(&[], Vec::as_slice)
}

fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin", "/usr/local/bin"]) {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} not found: run scripts/test-setup (it installs Debian's redis-server)");
}

fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A port whose cluster bus port (+10000) is free too. Ports come from a range below the
/// kernel's ephemeral range, stepped per process so that parallel test binaries rarely meet.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 400) as u16 * 25;
    for _ in 0..10_000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 10_000;
        let port = 20_000 + (base - 20_000 + offset) % 10_000;
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
    panic!("no free loopback port pair");
}

/// `redis-cli -p PORT args...`, bounded; stdout, or `None` when it failed.
pub fn cli(port: u16, args: &[&str]) -> Option<String> {
    let mut child = Command::new(tool("redis-cli"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(cli_tls_args())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().ok()? {
            let mut out = String::new();
            std::io::Read::read_to_string(child.stdout.as_mut()?, &mut out).ok()?;
            return status.success().then_some(out);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Node {
    fn spawn(&mut self, fsync_always: bool, tls: Option<&TlsFiles>) {
        let mut command = Command::new(tool("redis-server"));
        match tls {
            // TLS only: no plain port; the cluster bus and replication use TLS too.
            Some(files) => {
                command.args(["--port", "0", "--tls-port", &self.port.to_string(), "--tls-cluster", "yes", "--tls-replication", "yes", "--tls-auth-clients", "no"]);
                command.arg("--tls-cert-file").arg(&files.cert).arg("--tls-key-file").arg(&files.key).arg("--tls-ca-cert-file").arg(&files.ca);
            }
            None => {
                command.args(["--port", &self.port.to_string()]);
            }
        }
        let child = command
            .args(["--bind", "127.0.0.1", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"])
            // A replica may take over however long it was cut off; the other shards keep
            // serving while one fails over.
            .args(["--cluster-replica-validity-factor", "0", "--cluster-require-full-coverage", "no"])
            .args(["--appendonly", "yes", "--appendfsync", if fsync_always { "always" } else { "everysec" }, "--save", ""])
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while cli(self.port, &["PING"]).is_none_or(|out| !out.contains("PONG")) {
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer within 20 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node running").id()
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

impl RedisCluster {
    /// Starts six nodes and joins them into a cluster with one replica per master.
    /// `fsync_always`: AOF fsync before every reply (survives `kill -9` of every node).
    pub fn start(fsync_always: bool) -> RedisCluster {
        RedisCluster::start_with(fsync_always, None)
    }

    /// Like [`RedisCluster::start`], every node speaking only TLS with `files`.
    pub fn start_tls(files: TlsFiles) -> RedisCluster {
        let wanted = vec!["--tls".to_string(), "--cacert".to_string(), files.ca.display().to_string()];
        assert_eq!(CLI_TLS.get_or_init(|| wanted.clone()), &wanted, "one CA per test binary");
        RedisCluster::start_with(false, Some(files))
    }

    fn start_with(fsync_always: bool, tls: Option<TlsFiles>) -> RedisCluster {
        let root = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for number in 0..6 {
            let dir = root.path().join(format!("node{number}"));
            std::fs::create_dir_all(&dir).unwrap();
            let mut node = Node { port: free_port(), dir, child: None };
            node.spawn(fsync_always, tls.as_ref());
            nodes.push(node);
        }
        let addresses: Vec<String> = nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
        let mut create = Command::new(tool("redis-cli"));
        create.args(cli_tls_args()).arg("--cluster").arg("create").args(&addresses).args(["--cluster-replicas", "1", "--cluster-yes"]);
        let output = create.stdin(Stdio::null()).output().unwrap();
        assert!(output.status.success(), "redis-cli --cluster create failed: {}", String::from_utf8_lossy(&output.stdout));
        let cluster = RedisCluster { _root: root, nodes, fsync_always, tls };
        cluster.wait_healthy(Duration::from_secs(60));
        cluster
    }

    /// `redis-cluster://` address of every node, for `periodic-edge --store`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
        format!("redis-cluster://{}", nodes.join(","))
    }

    /// Indexes of the running nodes that are masters now.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&index| self.nodes[index].running() && cli(self.nodes[index].port, &["ROLE"]).is_some_and(|out| out.lines().next() == Some("master")))
            .collect()
    }

    /// Index of the running master that serves `key` now.
    pub fn master_of(&self, key: &str) -> usize {
        let first = self.nodes.iter().find(|node| node.running()).expect("a running node");
        let slot: u16 = cli(first.port, &["CLUSTER", "KEYSLOT", key]).unwrap().trim().parse().unwrap();
        let nodes = cli(first.port, &["CLUSTER", "NODES"]).unwrap();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| match range.split_once('-') {
                Some((low, high)) => low.parse::<u16>().is_ok_and(|low| low <= slot) && high.parse::<u16>().is_ok_and(|high| slot <= high),
                None => range.parse::<u16>().is_ok_and(|single| single == slot),
            });
            let port: Option<u16> = fields[1].split('@').next().and_then(|address| address.rsplit_once(':')).and_then(|(_, port)| port.parse().ok());
            if serves && let Some(index) = self.nodes.iter().position(|node| Some(node.port) == port) {
                return index;
            }
        }
        panic!("no master serves slot {slot} of {key}:\n{nodes}");
    }

    /// Waits until every running node reports `cluster_state:ok`, all slots are covered and
    /// every master has an online replica.
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.healthy() {
                return;
            }
            assert!(Instant::now() < deadline, "the Redis Cluster did not become healthy within {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn healthy(&self) -> bool {
        let running: Vec<&Node> = self.nodes.iter().filter(|node| node.running()).collect();
        let states_ok = running.iter().all(|node| cli(node.port, &["CLUSTER", "INFO"]).is_some_and(|out| out.contains("cluster_state:ok")));
        let masters = self.masters();
        states_ok
            && masters.len() == 3
            && masters.iter().all(|&index| cli(self.nodes[index].port, &["INFO", "replication"]).is_some_and(|out| out.contains("state=online")))
            && cli(running[0].port, &["--cluster", "check", &format!("127.0.0.1:{}", running[0].port)]).is_some_and(|out| out.contains("All 16384 slots covered"))
    }

    /// `kill -9` of one node, by its PID.
    pub fn kill9(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let pid = node.pid();
        let status = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(status.success());
        node.child.take().unwrap().wait().unwrap();
    }

    /// Starts a stopped node again from its directory (it rejoins with its `nodes.conf`).
    pub fn restart(&mut self, index: usize) {
        let fsync_always = self.fsync_always;
        let tls = self.tls.clone();
        self.nodes[index].spawn(fsync_always, tls.as_ref());
    }

    pub fn kill_all(&mut self) {
        for index in 0..self.nodes.len() {
            if self.nodes[index].running() {
                self.kill9(index);
            }
        }
    }

    pub fn restart_all(&mut self) {
        for index in 0..self.nodes.len() {
            if !self.nodes[index].running() {
                self.restart(index);
            }
        }
    }

    /// Bytes of Redis memory used by data across all masters (`used_memory - used_memory_startup`).
    pub fn data_memory(&self) -> u64 {
        self.masters()
            .iter()
            .map(|&index| {
                let info = cli(self.nodes[index].port, &["INFO", "memory"]).unwrap_or_default();
                let field = |name: &str| -> u64 {
                    info.lines().find_map(|line| line.strip_prefix(&format!("{name}:"))).and_then(|value| value.trim().parse().ok()).unwrap_or(0)
                };
                field("used_memory").saturating_sub(field("used_memory_startup"))
            })
            .sum()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
