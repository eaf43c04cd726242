//! The audit log: one JSON line per administrative or write action (tokens created, revoked or
//! reloaded; delta batches applied, refused or failed; pattern names and notes set;
//! repositories deleted), saying
//! who (the token's id, tenant and role and the client's address, or the operator at the
//! command line), what and when. It goes to a file opened for appending (`--audit-log PATH`
//! or `PERIODIC_EDGE_AUDIT_LOG`) or to stderr (`-`), apart from the diagnostic log.
//!
//! What a line may hold is decided here, not by callers: fixed fields and the counts, names
//! and ids an action has, never source code, fingerprints, sketches, unit keys or pattern ids
//! (a pattern id is the structural hash of code). A line is written with a single `write` on a
//! file opened with `O_APPEND`, so lines from concurrent requests (or from the `token` command
//! writing to the same file while the server runs) never interleave. A failed write does not
//! fail the action: it is logged and counted (`edge_audit_write_errors_total`), because an
//! edge that refused every push when its audit disk filled would lose developers' work
//! rather than only the record of it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use serde_json::{Map, Value, json};

use crate::tokens::Caller;

/// The environment variable equivalent of `--audit-log`.
pub const AUDIT_LOG_ENV: &str = "PERIODIC_EDGE_AUDIT_LOG";

/// Where audit lines go; [`AuditLog::off`] writes nothing.
pub struct AuditLog {
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

/// Who did it.
pub enum Actor<'a> {
    /// A request authenticated by a token.
    Token { caller: &'a Caller, remote: Option<SocketAddr> },
    /// Someone running a `periodic-edge` command on the server's machine.
    Operator,
    /// The server itself, acting on a signal (e.g. SIGHUP reloading the tokens file).
    Signal(&'static str),
}

impl Actor<'_> {
    fn to_json(&self) -> Value {
        match self {
            Actor::Token { caller, remote } => json!({
                "kind": "token",
                "token_id": caller.token_id,
                "tenant": caller.tenant,
                "role": caller.role.as_str(),
                "remote": remote.map(|address| address.to_string()),
            }),
            Actor::Operator => json!({ "kind": "operator", "os_user": os_user(), "uid": uid() }),
            Actor::Signal(signal) => json!({ "kind": "signal", "signal": signal }),
        }
    }
}

/// The login name the command runs under, as the environment gives it.
fn os_user() -> Option<String> {
    ["USER", "LOGNAME"].iter().find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
}

/// The process's real user id (the owner of `/proc/self`), which the environment cannot fake.
fn uid() -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|metadata| metadata.uid())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Where the audit log goes: `--audit-log` if given, else [`AUDIT_LOG_ENV`] if set and not
/// empty, else nowhere.
pub fn target(option: Option<String>) -> Option<String> {
    option.or_else(|| std::env::var(AUDIT_LOG_ENV).ok().filter(|value| !value.is_empty()))
}

impl AuditLog {
    pub fn off() -> AuditLog {
        AuditLog { sink: None }
    }

    /// `-`: stderr; anything else: a file, created (readable by its owner only) if missing and
    /// appended to.
    pub fn open(target: &str) -> anyhow::Result<AuditLog> {
        let sink: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stderr())
        } else {
            let path = Path::new(target);
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            Box::new(options.open(path).with_context(|| format!("open the audit log {}", path.display()))?)
        };
        Ok(AuditLog { sink: Some(Mutex::new(sink)) })
    }

    /// The log named by `--audit-log` if given, else by [`AUDIT_LOG_ENV`], else off.
    pub fn from_option(option: Option<String>) -> anyhow::Result<AuditLog> {
        match target(option) {
            Some(target) => AuditLog::open(&target),
            None => Ok(AuditLog::off()),
        }
    }

    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Writes one line: `time`, `action`, `outcome`, `actor`, then `details`' fields (an
    /// object of plain values: counts, names, ids; see the module comment for what never goes
    /// here).
    pub fn record(&self, action: &str, outcome: &str, actor: Actor<'_>, details: Value) {
        let Some(sink) = &self.sink else { return };
        let mut line = Map::new();
        line.insert("time".into(), Value::String(crate::clock::format_rfc3339_millis(crate::clock::now_unix_millis())));
        line.insert("action".into(), Value::String(action.to_string()));
        line.insert("outcome".into(), Value::String(outcome.to_string()));
        line.insert("actor".into(), actor.to_json());
        if let Value::Object(details) = details {
            for (name, value) in details {
                line.entry(name).or_insert(value);
            }
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        let written = match sink.lock() {
            Ok(mut sink) => sink.write_all(text.as_bytes()).and_then(|()| sink.flush()),
            Err(_) => Err(std::io::Error::other("the audit log's lock was poisoned by a panic")),
        };
        if let Err(error) = written {
            metrics::counter!("edge_audit_write_errors_total").increment(1);
            tracing::error!(%error, action, "audit line not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Role;

    #[test]
    fn lines_carry_time_action_outcome_and_actor_and_fixed_fields_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(path.to_str().expect("utf-8 path")).expect("open");
        let caller = Caller { tenant: "team-a".into(), role: Role::Write, token_id: "0123abcd".into(), token_hash: [0; 32] };
        log.record("batch.applied", "ok", Actor::Token { caller: &caller, remote: Some(([127, 0, 0, 1], 9).into()) }, json!({"repo": "billing", "action": "spoofed"}));
        log.record("token.created", "ok", Actor::Operator, json!({"token_id": "feedbeef"}));
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).expect("json line")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["action"], "batch.applied", "a detail cannot overwrite a fixed field");
        assert_eq!(lines[0]["actor"]["tenant"], "team-a");
        assert_eq!(lines[0]["actor"]["remote"], "127.0.0.1:9");
        assert_eq!(lines[0]["repo"], "billing");
        assert_eq!(lines[1]["actor"]["kind"], "operator");
        assert!(lines[1]["time"].as_str().is_some_and(|time| time.ends_with('Z') && time.len() == 24));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777, 0o600);
        }
        AuditLog::off().record("ignored", "ok", Actor::Operator, json!({}));
    }
}
