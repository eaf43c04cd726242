//! Test harness: runs the real `periodic-edge` binary on a loopback port chosen by the OS
//! (port 0, address read back from `--addr-file`), creates tokens with the real `token`
//! command, and stops the process (SIGTERM, or SIGKILL for crash tests). Every wait is
//! bounded; a server left running is killed when its handle drops.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_periodic-edge");

pub struct Edge {
    child: Option<Child>,
    pub base: String,
    pub data: PathBuf,
    pub tokens: PathBuf,
    pub args: Vec<String>,
    /// Where the server's log (stderr) goes; `None`: this test's stderr.
    pub log: Option<PathBuf>,
}

/// Creates a token with `periodic-edge token create` and returns it.
pub fn create_token(tokens: &Path, tenant: &str, role: &str) -> String {
    create_token_with(tokens, tenant, role, &[])
}

/// [`create_token`] with more arguments (e.g. `--expires 2s`).
pub fn create_token_with(tokens: &Path, tenant: &str, role: &str, extra: &[&str]) -> String {
    let output = Command::new(BINARY)
        .args(["token", "create", "--tokens"])
        .arg(tokens)
        .args(["--tenant", tenant, "--role", role])
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "token create failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the token is printed alone: {stdout:?}");
    lines[0].to_string()
}

impl Edge {
    /// Starts a server on `data` with `tokens`, plus `extra` arguments.
    pub fn start(data: &Path, tokens: &Path, extra: &[&str]) -> Edge {
        let mut edge = Edge { child: None, base: String::new(), data: data.to_path_buf(), tokens: tokens.to_path_buf(), args: extra.iter().map(|s| s.to_string()).collect(), log: None };
        edge.spawn("http");
        edge
    }

    /// Like [`Edge::start`], with the server's log (warnings and errors) appended to `log`.
    pub fn start_logging_to(data: &Path, tokens: &Path, extra: &[&str], log: &Path) -> Edge {
        let mut edge = Edge {
            child: None,
            base: String::new(),
            data: data.to_path_buf(),
            tokens: tokens.to_path_buf(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            log: Some(log.to_path_buf()),
        };
        edge.spawn("http");
        edge
    }

    pub fn start_tls(data: &Path, tokens: &Path, cert: &Path, key: &Path) -> Edge {
        let mut args = vec!["--tls-cert".to_string(), cert.display().to_string(), "--tls-key".to_string(), key.display().to_string()];
        args.extend(["--shards".to_string(), "2".to_string()]);
        let mut edge = Edge { child: None, base: String::new(), data: data.to_path_buf(), tokens: tokens.to_path_buf(), args, log: None };
        edge.spawn("https");
        edge
    }

    /// Starts a server that serves HTTPS itself (its `extra` arguments include `--tls-cert` and
    /// `--tls-key`), addressed as `https://`.
    pub fn start_https(data: &Path, tokens: &Path, extra: &[&str]) -> Edge {
        let mut edge = Edge { child: None, base: String::new(), data: data.to_path_buf(), tokens: tokens.to_path_buf(), args: extra.iter().map(|s| s.to_string()).collect(), log: None };
        edge.spawn("https");
        edge
    }

    fn spawn(&mut self, scheme: &str) {
        let addr_file = self.data.with_extension(format!("addr-{}", std::process::id()));
        let _ = std::fs::remove_file(&addr_file);
        let child = Command::new(BINARY)
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(&self.data)
            .arg("--tokens")
            .arg(&self.tokens)
            .arg("--addr-file")
            .arg(&addr_file)
            .args(&self.args)
            // A test that reads the log sees what an operator sees: the default filter.
            .env("PERIODIC_EDGE_LOG", if self.log.is_some() { "info,redis=error" } else { "warn,redis=error" })
            .stdout(Stdio::null())
            .stderr(match &self.log {
                Some(path) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap()),
                None => Stdio::inherit(),
            })
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(address) = std::fs::read_to_string(&addr_file)
                && !address.is_empty()
            {
                self.base = format!("{scheme}://{address}");
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("periodic-edge exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "periodic-edge did not start listening within 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Whether the server process is still running (it has not exited since it was started).
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| child.try_wait().unwrap().is_none())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "periodic-edge did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status (graceful shutdown).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(30))
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the same server again (same data, tokens and arguments) on a new port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.spawn(if self.base.starts_with("https") { "https" } else { "http" });
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).no_proxy().build().unwrap()
}
