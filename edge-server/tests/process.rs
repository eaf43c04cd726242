//! The server process's life against the real binary: it refuses to start on a tokens file
//! that is missing or malformed (non-zero exit, the file named), and SIGTERM stops it even
//! when its stderr is a pipe nobody reads any more (`periodic-edge … 2>&1 | head -1`). Every
//! wait is bounded and a process left running is killed.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{BINARY, Edge, client, create_token};

/// Kills the process if the test ends (or fails) before it exited.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs the server with `args` to its exit, which must come within 30 s (a server that
/// starts serving instead is killed and the test fails); returns its status and stderr.
fn serve_until_exit(args: &[&std::ffi::OsStr]) -> (ExitStatus, String) {
    let child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("PERIODIC_EDGE_LOG", "info,redis=error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start periodic-edge");
    let mut running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = running.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "periodic-edge was still running after 30 s: it started serving");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    running.0.stderr.take().expect("stderr is piped").read_to_string(&mut stderr).expect("read stderr");
    (status, stderr)
}

/// Runs the server with `args` and checks that it refused to start because of `tokens`: a
/// failed exit, the file named in the message, and no "listening". Returns the message.
fn refused_start(what: &str, args: &[&std::ffi::OsStr], tokens: &std::path::Path) -> String {
    let (status, stderr) = serve_until_exit(args);
    assert!(!status.success(), "{what}: exit status {status}: {stderr}");
    assert!(stderr.contains(&tokens.display().to_string()), "{what}: the message names the file: {stderr}");
    assert!(!stderr.contains("listening"), "{what}: {stderr}");
    stderr
}

#[test]
fn a_malformed_tokens_file_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("bad.json");
    std::fs::write(&tokens, "{\n  \"tokens\": [\n    {bad\n").expect("write");
    let data = dir.path().join("data");
    let stderr = refused_start("malformed", &["--data".as_ref(), data.as_os_str(), "--tokens".as_ref(), tokens.as_os_str()], &tokens);
    assert!(stderr.contains("line 3 column 6"), "the message gives the line and column: {stderr}");
    assert!(!data.exists(), "nothing is created for a server that does not start");
}

#[test]
fn a_missing_tokens_file_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("no-such-tokens.json");
    for role in ["team", "cloud"] {
        let data = dir.path().join(role);
        let args = ["--role".as_ref(), role.as_ref(), "--data".as_ref(), data.as_os_str(), "--tokens".as_ref(), tokens.as_os_str()];
        let stderr = refused_start(role, &args, &tokens);
        assert!(stderr.contains("does not exist"), "{role}: {stderr}");
        assert!(!tokens.exists(), "{role}: the server does not create the tokens file");
    }
}

#[test]
fn sigterm_stops_the_server_when_its_stderr_is_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.json");
    create_token(&tokens, "team-a", "read");
    let addr_file = dir.path().join("addr");
    let child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--shards", "2", "--sync", "normal", "--data"])
        .arg(dir.path().join("data"))
        .arg("--tokens")
        .arg(&tokens)
        .arg("--addr-file")
        .arg(&addr_file)
        // The default filter: the shutdown path logs at info.
        .env("PERIODIC_EDGE_LOG", "info,redis=error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start periodic-edge");
    let mut running = Running(child);

    // Read the first line, as `| head -1` does, then close the pipe's only reader.
    let stderr = running.0.stderr.take().expect("stderr is piped");
    let mut first_line = String::new();
    BufReader::new(stderr).read_line(&mut first_line).expect("read the first log line");
    assert!(!first_line.is_empty(), "the server logs at start");
    assert!(!first_line.contains('\u{1b}'), "no colour codes in a log that is not a terminal: {first_line:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&addr_file).map_or(true, |address| address.is_empty()) {
        assert!(running.0.try_wait().expect("try_wait").is_none(), "periodic-edge exited before listening");
        assert!(Instant::now() < deadline, "periodic-edge did not start listening within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let address = std::fs::read_to_string(&addr_file).expect("address");

    // A health probe still answers with its log gone.
    let mut probe = std::net::TcpStream::connect(address.trim()).expect("connect");
    probe.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    std::io::Write::write_all(&mut probe, b"GET /health/live HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n").expect("send");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut probe, &mut answer).expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let pid = running.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(status.success(), "kill -TERM {pid}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = running.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "periodic-edge was still running 15 s after SIGTERM with its stderr closed");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "a graceful shutdown exits 0, not {status}");
}

/// Waits (bounded) until the server's log holds `count` lines containing `text`.
async fn wait_for_log_lines(log: &std::path::Path, text: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let content = std::fs::read_to_string(log).unwrap_or_default();
        if content.lines().filter(|line| line.contains(text)).count() >= count {
            return content;
        }
        assert!(Instant::now() < deadline, "no {count} log lines with {text:?} within 15 s:\n{content}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_reload_of_a_malformed_or_missing_tokens_file_keeps_the_previous_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.json");
    let token = create_token(&tokens, "team-a", "read");
    let log = dir.path().join("edge.log");
    let edge = Edge::start_logging_to(&dir.path().join("data"), &tokens, &["--shards", "2", "--sync", "normal"], &log);
    let stats_status = || async { client().get(edge.url("/v1/stats")).bearer_auth(&token).send().await.expect("GET /v1/stats").status() };
    assert_eq!(stats_status().await, reqwest::StatusCode::OK);

    std::fs::write(&tokens, "{\"tokens\": [oops]}").expect("corrupt the tokens file");
    edge.signal("HUP");
    let content = wait_for_log_lines(&log, "tokens not reloaded", 1).await;
    assert!(content.contains("line 1 column 13"), "the reload error gives the line and column:\n{content}");
    assert_eq!(stats_status().await, reqwest::StatusCode::OK, "the previous tokens stay in force after a malformed reload");

    std::fs::remove_file(&tokens).expect("remove the tokens file");
    edge.signal("HUP");
    let content = wait_for_log_lines(&log, "tokens not reloaded", 2).await;
    assert!(content.contains("does not exist"), "{content}");
    assert_eq!(stats_status().await, reqwest::StatusCode::OK, "a vanished file does not revoke every token");
}
