//! A minimal LSP client for end-to-end tests: starts the real `periodic lsp`, frames
//! JSON-RPC with Content-Length headers over its pipes, answers the server's own requests
//! (and records them), and waits for responses and notifications with a deadline.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Deadline for anything the server should do promptly on a loaded CI machine.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct LspClient {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    /// Notifications and server requests seen and not yet consumed.
    pub seen: Vec<Value>,
}

pub fn uri_of(path: &Path) -> String {
    format!("file://{}", path.display())
}

impl LspClient {
    /// Starts the server; `initialize` is the caller's (see [`LspClient::initialize`]).
    pub fn start() -> LspClient {
        let mut child = Command::new(env!("CARGO_BIN_EXE_periodic"))
            .arg("lsp")
            .env("PERIODIC_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start periodic lsp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    let (name, value) = line.split_once(':').expect("a header line");
                    assert!(name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("content-type"), "unexpected header {line:?}");
                    if name.eq_ignore_ascii_case("content-length") {
                        length = Some(value.trim().parse::<usize>().expect("a length"));
                    }
                }
                let mut body = vec![0; length.expect("Content-Length")];
                reader.read_exact(&mut body).expect("a body");
                let message: Value = serde_json::from_slice(&body).expect("the server writes JSON");
                if sender.send(message).is_err() {
                    return;
                }
            }
        });
        LspClient { child, stdin, incoming, next_id: 0, seen: Vec::new() }
    }

    /// Starts the server and initializes it for `roots` with `capabilities` and `options`.
    pub fn initialized(roots: &[&Path], capabilities: Value, options: Value) -> (LspClient, Value) {
        let mut client = LspClient::start();
        let result = client.initialize(roots, capabilities, options);
        (client, result)
    }

    pub fn initialize(&mut self, roots: &[&Path], capabilities: Value, options: Value) -> Value {
        let folders: Vec<Value> = roots.iter().map(|root| json!({"uri": uri_of(root), "name": root.file_name().unwrap().to_string_lossy()})).collect();
        let response = self.request(
            "initialize",
            json!({"processId": null, "rootUri": uri_of(roots[0]), "workspaceFolders": folders, "capabilities": capabilities, "initializationOptions": options}),
        );
        let result = response.get("result").cloned().unwrap_or_else(|| panic!("initialize failed: {response}"));
        self.notify("initialized", json!({}));
        result
    }

    pub fn write_raw(&mut self, body: &[u8]) {
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).unwrap();
        self.stdin.write_all(body).unwrap();
        self.stdin.flush().unwrap();
    }

    fn send(&mut self, message: &Value) {
        self.write_raw(&serde_json::to_vec(message).unwrap());
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its id without waiting.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Sends a request and waits for its whole response (`result` or `error`).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.response(id)
    }

    /// The result of a request that must succeed.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params);
        match response.get("result") {
            Some(result) => result.clone(),
            None => panic!("{method} failed: {response}"),
        }
    }

    pub fn response(&mut self, id: i64) -> Value {
        self.next_message(|message| message.get("id") == Some(&json!(id)) && message.get("method").is_none())
            .unwrap_or_else(|| panic!("no response to request {id}"))
    }

    /// Waits for a message matching `wanted`; answers server requests on the way and keeps
    /// every other message in `seen`.
    pub fn next_message(&mut self, wanted: impl Fn(&Value) -> bool) -> Option<Value> {
        if let Some(index) = self.seen.iter().position(&wanted) {
            return Some(self.seen.remove(index));
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let message = match self.incoming.recv_timeout(left) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => return None,
            };
            if let (Some(method), Some(id)) = (message.get("method").and_then(Value::as_str), message.get("id")) {
                let result = match method {
                    "window/showDocument" => json!({"success": true}),
                    "workspace/configuration" => json!([null]),
                    _ => Value::Null,
                };
                self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
            }
            if wanted(&message) {
                return Some(message);
            }
            self.seen.push(message);
        }
    }

    /// The next notification `method` whose params match `wanted`.
    pub fn notification(&mut self, method: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        self.next_message(|message| message.get("method").and_then(Value::as_str) == Some(method) && message.get("id").is_none() && wanted(&message["params"]))
            .unwrap_or_else(|| panic!("no {method} notification came; seen: {:?}", self.seen))["params"]
            .clone()
    }

    /// The next server-to-client request `method`.
    pub fn server_request(&mut self, method: &str) -> Value {
        self.next_message(|message| message.get("method").and_then(Value::as_str) == Some(method) && message.get("id").is_some())
            .unwrap_or_else(|| panic!("the server sent no {method} request"))["params"]
            .clone()
    }

    /// The next pushed diagnostics for `uri` that satisfy `wanted`.
    pub fn diagnostics(&mut self, uri: &str, wanted: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let params = self.notification("textDocument/publishDiagnostics", |params| {
            params["uri"] == json!(uri) && wanted(params["diagnostics"].as_array().map(Vec::as_slice).unwrap_or(&[]))
        });
        params["diagnostics"].as_array().cloned().unwrap_or_default()
    }

    /// The pushed diagnostics of `uri` for document `version`.
    pub fn diagnostics_at(&mut self, uri: &str, version: i64) -> Vec<Value> {
        let params = self.notification("textDocument/publishDiagnostics", |params| params["uri"] == json!(uri) && params["version"] == json!(version));
        params["diagnostics"].as_array().cloned().unwrap_or_default()
    }

    pub fn open(&mut self, path: &Path, language: &str, text: &str) -> String {
        let uri = uri_of(path);
        self.notify("textDocument/didOpen", json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}));
        uri
    }

    /// Asks until `check` accepts the result, or the deadline passes (for state the
    /// server reaches in the background, e.g. after a file changes on disk).
    pub fn poll(&mut self, method: &str, params: Value, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let result = self.call(method, params.clone());
            if check(&result) {
                return result;
            }
            assert!(Instant::now() < deadline, "{method} never gave the expected answer; last: {result}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `shutdown` then `exit`; returns the exit code.
    pub fn shutdown(mut self) -> i32 {
        let response = self.request("shutdown", Value::Null);
        assert!(response.get("error").is_none(), "shutdown failed: {response}");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Applies LSP text edits (UTF-16 positions) to `text`, last edit first.
pub fn apply_edits(text: &str, edits: &[Value]) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let offset = |lines: &[String], position: &Value| -> usize {
        let line = position["line"].as_u64().unwrap() as usize;
        let character = position["character"].as_u64().unwrap() as usize;
        let before: usize = lines.iter().take(line).map(String::len).sum();
        let mut units = 0;
        let mut bytes = 0;
        if let Some(content) = lines.get(line) {
            for ch in content.chars() {
                if units >= character || ch == '\n' {
                    break;
                }
                units += ch.len_utf16();
                bytes += ch.len_utf8();
            }
        }
        before + bytes
    };
    let mut sorted: Vec<&Value> = edits.iter().collect();
    sorted.sort_by_key(|edit| std::cmp::Reverse((edit["range"]["start"]["line"].as_u64(), edit["range"]["start"]["character"].as_u64())));
    let mut joined: String = lines.concat();
    for edit in sorted {
        let start = offset(&lines, &edit["range"]["start"]);
        let end = offset(&lines, &edit["range"]["end"]);
        joined.replace_range(start..end, edit["newText"].as_str().unwrap());
        lines = joined.split_inclusive('\n').map(str::to_string).collect();
        if joined.is_empty() {
            lines.clear();
        }
    }
    joined
}
