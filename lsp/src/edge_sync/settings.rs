//! Settings of the sync to a team edge server: the `[edge]` table of `.periodic.toml`, the
//! editor's `edge` initialization options, and the token (environment or token file).
//!
//! Parsing is strict like the rest of the configuration: an unknown key or a wrong type is an
//! error naming the key, with `file:line` when the value came from a file, so that a typo never
//! silently turns sharing on or off.

use std::path::{Path, PathBuf};
use std::time::Duration;

use periodic_core::Config;
pub use periodic_wire::v1::ShareLevel;

/// Environment variable holding the edge token; it wins over `token_file`.
pub const TOKEN_ENV: &str = "PERIODIC_EDGE_TOKEN";
/// Keys accepted in `[edge]`.
const KEYS: &[&str] = &["url", "share", "token_file", "repo", "query_ttl_seconds"];
const DEFAULT_QUERY_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum EdgeConfigError {
    /// `location` is `file:line`, or `editor settings`, or `command line`.
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    #[error("{path}: cannot read the edge token file: {source}")]
    TokenFile { path: PathBuf, source: std::io::Error },
}

/// The unresolved settings, each optional, as written in one place (file, editor, command
/// line). [`EdgeOptions::overlay`] combines sources; [`EdgeSettings::resolve`] fills defaults
/// and reads the token.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EdgeOptions {
    pub url: Option<String>,
    pub share: Option<ShareLevel>,
    /// Relative paths are relative to the workspace root.
    pub token_file: Option<PathBuf>,
    pub repo: Option<String>,
    pub query_ttl_seconds: Option<u64>,
    /// A token given directly (editor settings only: a committed file holds a token file's
    /// path, never a token). Wins over `PERIODIC_EDGE_TOKEN` and the token file.
    pub token: Option<String>,
}

/// Exponential backoff with full jitter: a retry waits a random time between 0 and the
/// current bound, which starts at `initial` and doubles up to `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { initial: Duration::from_secs(1), max: Duration::from_secs(300) }
    }
}

/// Everything the sync needs, resolved. Sync is on only when [`EdgeSettings::enabled`].
#[derive(Clone, PartialEq)]
pub struct EdgeSettings {
    /// Base URL without a trailing slash, e.g. `https://edge.example.com:7700`.
    pub url: Option<String>,
    pub share: ShareLevel,
    pub token: Option<String>,
    /// Repository name the units are filed under on the edge.
    pub repo: String,
    /// How long a team answer is reused before it is asked again.
    pub query_ttl: Duration,
    /// Limit of one background query; an editor request never waits on it.
    pub query_timeout: Duration,
    /// Limit of one delta batch request.
    pub batch_timeout: Duration,
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for EdgeSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never in logs.
        formatter
            .debug_struct("EdgeSettings")
            .field("url", &self.url)
            .field("share", &self.share)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("repo", &self.repo)
            .field("query_ttl", &self.query_ttl)
            .finish_non_exhaustive()
    }
}

impl EdgeOptions {
    /// The `[edge]` table of a loaded configuration (empty options when there is none).
    pub fn from_config(config: &Config) -> Result<EdgeOptions, EdgeConfigError> {
        let Some(table) = config.sections.get("edge") else { return Ok(EdgeOptions::default()) };
        let source_text = config.source.as_ref().and_then(|path| std::fs::read_to_string(path).ok());
        let locate = |key: Option<&str>| -> String {
            let Some(path) = &config.source else { return ".periodic.toml".to_string() };
            let line = source_text.as_deref().and_then(|text| line_of_edge_key(text, key)).unwrap_or(1);
            format!("{}:{line}", path.display())
        };
        EdgeOptions::from_toml_table(table, &locate)
    }

    /// Checks the `[edge]` table of `config` the way every command reads it: an unknown key,
    /// a wrong type or a value out of range (a `url` that is no http(s) URL included) is an
    /// error naming `file:line`, even for a command that would not use the edge.
    pub fn check_config(config: &Config) -> Result<(), EdgeConfigError> {
        EdgeOptions::from_config(config).map(|_| ())
    }

    fn from_toml_table(table: &toml::Value, locate: &dyn Fn(Option<&str>) -> String) -> Result<EdgeOptions, EdgeConfigError> {
        let invalid = |key: Option<&str>, message: String| EdgeConfigError::Invalid { location: locate(key), message };
        let toml::Value::Table(table) = table else {
            return Err(invalid(None, "`edge` must be a table".to_string()));
        };
        let mut options = EdgeOptions::default();
        for (key, value) in table {
            let wrong_type = |expected: &str| invalid(Some(key), format!("`edge.{key}`: expected {expected}, found {}", value.type_str()));
            match key.as_str() {
                "url" => {
                    let url = value.as_str().ok_or_else(|| wrong_type("a string"))?;
                    validate_url(url).map_err(|message| invalid(Some(key), format!("`edge.url`: {message}")))?;
                    options.url = Some(url.to_string());
                }
                "share" => {
                    let text = value.as_str().ok_or_else(|| wrong_type("a string"))?;
                    options.share = Some(parse_share(text).map_err(|message| invalid(Some(key), format!("`edge.share`: {message}")))?);
                }
                "token_file" => options.token_file = Some(PathBuf::from(value.as_str().ok_or_else(|| wrong_type("a string"))?)),
                "repo" => options.repo = Some(value.as_str().ok_or_else(|| wrong_type("a string"))?.to_string()),
                "query_ttl_seconds" => {
                    let seconds = value.as_integer().ok_or_else(|| wrong_type("a whole number of seconds"))?;
                    if !(1..=86_400).contains(&seconds) {
                        return Err(invalid(Some(key), format!("`edge.query_ttl_seconds` must be between 1 and 86400, not {seconds}")));
                    }
                    options.query_ttl_seconds = Some(seconds as u64);
                }
                _ => {
                    return Err(invalid(Some(key), format!("unknown key `edge.{key}` (expected one of {})", KEYS.join(", "))));
                }
            }
        }
        options.validate(&|key, message| invalid(Some(key), message))?;
        Ok(options)
    }

    /// The editor's `edge` initialization options: `{url, share, token, tokenFile, repo,
    /// queryTtlSeconds}` (camelCase, as VS Code and Neovim settings spell them). `null`
    /// values count as absent.
    pub fn from_editor_json(value: &serde_json::Value) -> Result<EdgeOptions, EdgeConfigError> {
        let invalid = |message: String| EdgeConfigError::Invalid { location: "editor settings".to_string(), message };
        let serde_json::Value::Object(object) = value else {
            return Err(invalid("`edge` must be an object".to_string()));
        };
        let mut options = EdgeOptions::default();
        for (key, value) in object {
            if value.is_null() {
                continue;
            }
            let text = || value.as_str().ok_or_else(|| invalid(format!("`edge.{key}`: expected a string, found {value}")));
            match key.as_str() {
                "url" => options.url = Some(text()?.to_string()),
                "share" => options.share = Some(parse_share(text()?).map_err(|message| invalid(format!("`edge.share`: {message}")))?),
                "tokenFile" => options.token_file = Some(PathBuf::from(text()?)),
                "token" => options.token = Some(text()?.to_string()).filter(|token| !token.trim().is_empty()),
                "repo" => options.repo = Some(text()?.to_string()),
                "queryTtlSeconds" => {
                    let seconds = value
                        .as_u64()
                        .filter(|seconds| (1..=86_400).contains(seconds))
                        .ok_or_else(|| invalid(format!("`edge.queryTtlSeconds` must be a whole number between 1 and 86400, not {value}")))?;
                    options.query_ttl_seconds = Some(seconds);
                }
                _ => return Err(invalid(format!("unknown key `edge.{key}` (expected one of url, share, token, tokenFile, repo, queryTtlSeconds)"))),
            }
        }
        options.validate(&|_, message| invalid(message))?;
        Ok(options)
    }

    /// `self` with every field that `over` sets replaced by `over`'s value (editor settings
    /// over the file, command line over both).
    pub fn overlay(self, over: EdgeOptions) -> EdgeOptions {
        EdgeOptions {
            url: over.url.or(self.url),
            share: over.share.or(self.share),
            token_file: over.token_file.or(self.token_file),
            repo: over.repo.or(self.repo),
            query_ttl_seconds: over.query_ttl_seconds.or(self.query_ttl_seconds),
            token: over.token.or(self.token),
        }
    }

    fn validate(&self, invalid: &dyn Fn(&str, String) -> EdgeConfigError) -> Result<(), EdgeConfigError> {
        if let Some(url) = &self.url {
            validate_url(url).map_err(|message| invalid("url", format!("`edge.url`: {message}")))?;
        }
        if let Some(repo) = &self.repo
            && !is_valid_repo_name(repo)
        {
            return Err(invalid("repo", format!("`edge.repo`: `{repo}` is not a repository name (1-200 letters, digits, `.`, `_`, `-`)")));
        }
        Ok(())
    }
}

impl EdgeSettings {
    /// Sync switched off: every [`super::EdgeSync`] method is then a cheap no-op.
    pub fn disabled() -> EdgeSettings {
        EdgeSettings {
            url: None,
            share: ShareLevel::Off,
            token: None,
            repo: "repository".to_string(),
            query_ttl: DEFAULT_QUERY_TTL,
            query_timeout: Duration::from_secs(2),
            batch_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }

    /// The `[edge]` table of `.periodic.toml`, resolved for the workspace at `root`.
    pub fn from_config(config: &Config, root: &Path) -> Result<EdgeSettings, EdgeConfigError> {
        EdgeSettings::resolve(root, EdgeOptions::from_config(config)?)
    }

    /// What the language server uses: the `[edge]` table, overridden key by key by the
    /// editor's `edge` initialization options (`initializationOptions.edge`) when given.
    pub fn for_workspace(root: &Path, config: &Config, editor: Option<&serde_json::Value>) -> Result<EdgeSettings, EdgeConfigError> {
        let mut options = EdgeOptions::from_config(config)?;
        if let Some(editor) = editor.filter(|value| !value.is_null()) {
            options = options.overlay(EdgeOptions::from_editor_json(editor)?);
        }
        EdgeSettings::resolve(root, options)
    }

    /// Fills defaults and reads the token: the one given directly, else `PERIODIC_EDGE_TOKEN`
    /// if set, else the token file (its first non-empty line, trimmed). The token file is
    /// read only when sync is on.
    pub fn resolve(root: &Path, options: EdgeOptions) -> Result<EdgeSettings, EdgeConfigError> {
        EdgeSettings::resolve_with_token_env(root, options, std::env::var(TOKEN_ENV).ok())
    }

    fn resolve_with_token_env(root: &Path, options: EdgeOptions, token_env: Option<String>) -> Result<EdgeSettings, EdgeConfigError> {
        let mut settings = EdgeSettings::disabled();
        settings.share = options.share.unwrap_or(ShareLevel::Off);
        settings.url = match options.url {
            Some(url) => {
                validate_url(&url).map_err(|message| EdgeConfigError::Invalid { location: "edge settings".to_string(), message: format!("`edge.url`: {message}") })?;
                Some(url.trim_end_matches('/').to_string())
            }
            None => None,
        };
        settings.repo = match options.repo {
            Some(repo) => repo,
            None => default_repo_name(root),
        };
        if let Some(seconds) = options.query_ttl_seconds {
            settings.query_ttl = Duration::from_secs(seconds);
        }
        if settings.enabled() {
            settings.token = match options.token.or(token_env) {
                Some(token) if !token.trim().is_empty() => Some(token.trim().to_string()),
                _ => match options.token_file {
                    Some(file) => Some(read_token_file(&root.join(file))?),
                    None => None,
                },
            };
        }
        Ok(settings)
    }

    /// Sync is on: a URL is set and the share level is not `off`.
    pub fn enabled(&self) -> bool {
        self.url.is_some() && self.share != ShareLevel::Off
    }
}

/// Reads a token file: the first non-empty line, trimmed.
pub fn read_token_file(path: &Path) -> Result<String, EdgeConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| EdgeConfigError::TokenFile { path: path.to_path_buf(), source })?;
    text.lines().map(str::trim).find(|line| !line.is_empty()).map(str::to_string).ok_or_else(|| EdgeConfigError::TokenFile {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file holds no token"),
    })
}

pub fn parse_share(text: &str) -> Result<ShareLevel, String> {
    match text {
        "locations" => Ok(ShareLevel::Locations),
        "fingerprints" => Ok(ShareLevel::Fingerprints),
        "off" => Ok(ShareLevel::Off),
        other => Err(format!("`{other}` is not a share level (expected \"locations\", \"fingerprints\" or \"off\")")),
    }
}

fn validate_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|error| format!("`{url}` is not a URL ({error})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}`: only http:// and https:// are supported"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("`{url}`: give the server's base URL, without a query or fragment"));
    }
    Ok(())
}

/// The edge's rule for repository names.
pub fn is_valid_repo_name(name: &str) -> bool {
    (1..=200).contains(&name.len()) && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// The root folder's name, with characters the edge does not accept replaced by `-`.
pub fn default_repo_name(root: &Path) -> String {
    let absolute = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let name = absolute.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .take(200)
        .collect();
    if cleaned.is_empty() { "repository".to_string() } else { cleaned }
}

/// Line (1-based) of `key` inside the `[edge]` table of a TOML text, or of the table header
/// when `key` is `None` or not found. `toml::Value` keeps no positions, so the text is read
/// again; a dotted `edge.key = …` at the top level is found too.
fn line_of_edge_key(text: &str, key: Option<&str>) -> Option<usize> {
    let mut in_edge = false;
    let mut header_line = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            let header = trimmed.trim_start_matches('[').split(']').next().unwrap_or("").trim();
            in_edge = header == "edge";
            if in_edge {
                header_line = Some(index + 1);
            }
            continue;
        }
        let Some(key) = key else { continue };
        let Some((left, _)) = trimmed.split_once('=') else { continue };
        let left = left.trim().trim_matches('"');
        if (in_edge && left == key) || left == format!("edge.{key}") {
            return Some(index + 1);
        }
    }
    header_line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EdgeOptions, EdgeConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".periodic.toml");
        std::fs::write(&path, text).expect("write");
        let config = Config::load(&path).expect("core accepts [edge]");
        EdgeOptions::from_config(&config).map_err(|error| {
            // Report with a stable file name so assertions can check `file:line`.
            match error {
                EdgeConfigError::Invalid { location, message } => EdgeConfigError::Invalid {
                    location: location.replace(&path.display().to_string(), ".periodic.toml"),
                    message,
                },
                other => other,
            }
        })
    }

    #[test]
    fn a_full_table_is_read() {
        let options = parse(
            "min_lines = 6\n[edge]\nurl = \"https://edge.example:7700/\"\nshare = \"fingerprints\"\ntoken_file = \"secrets/edge\"\nrepo = \"billing\"\nquery_ttl_seconds = 60\n",
        )
        .expect("valid");
        assert_eq!(options.url.as_deref(), Some("https://edge.example:7700/"));
        assert_eq!(options.share, Some(ShareLevel::Fingerprints));
        assert_eq!(options.token_file, Some(PathBuf::from("secrets/edge")));
        assert_eq!(options.repo.as_deref(), Some("billing"));
        assert_eq!(options.query_ttl_seconds, Some(60));
    }

    #[test]
    fn an_unknown_key_names_file_line_and_key() {
        let message = parse("[edge]\nurl = \"http://127.0.0.1:7700\"\nshares = \"off\"\n").expect_err("typo").to_string();
        assert!(message.starts_with(".periodic.toml:3:"), "{message}");
        assert!(message.contains("`edge.shares`"), "{message}");
    }

    #[test]
    fn wrong_types_and_values_name_their_key() {
        let message = parse("[edge]\nquery_ttl_seconds = \"soon\"\n").expect_err("type").to_string();
        assert!(message.starts_with(".periodic.toml:2:") && message.contains("`edge.query_ttl_seconds`"), "{message}");
        let message = parse("[edge]\n\nshare = \"everything\"\n").expect_err("value").to_string();
        assert!(message.starts_with(".periodic.toml:3:") && message.contains("`edge.share`"), "{message}");
        let message = parse("[edge]\nurl = \"ftp://edge\"\n").expect_err("scheme").to_string();
        assert!(message.contains("`edge.url`"), "{message}");
        let message = parse("[edge]\nrepo = \"my repo\"\n").expect_err("repo").to_string();
        assert!(message.contains("`edge.repo`"), "{message}");
        let message = parse("[edge]\nurl = 7700\n").expect_err("type").to_string();
        assert!(message.starts_with(".periodic.toml:2:") && message.contains("`edge.url`"), "{message}");
    }

    #[test]
    fn editor_options_use_camel_case_and_are_strict() {
        let options = EdgeOptions::from_editor_json(&serde_json::json!({
            "url": "http://127.0.0.1:7700", "share": "locations", "tokenFile": "/tmp/token", "repo": null
        }))
        .expect("valid");
        assert_eq!(options.share, Some(ShareLevel::Locations));
        assert_eq!(options.token_file, Some(PathBuf::from("/tmp/token")));
        assert_eq!(options.repo, None);
        let direct = EdgeOptions::from_editor_json(&serde_json::json!({"url": "http://127.0.0.1:7700", "share": "fingerprints", "token": "t0k"})).expect("valid");
        let settings = EdgeSettings::resolve_with_token_env(Path::new("."), direct, Some("env".into())).expect("valid");
        assert_eq!(settings.token.as_deref(), Some("t0k"), "a token from the editor wins");
        let message = EdgeOptions::from_editor_json(&serde_json::json!({"token_file": "x"})).expect_err("snake case").to_string();
        assert!(message.starts_with("editor settings:") && message.contains("`edge.token_file`"), "{message}");
        let message = EdgeOptions::from_editor_json(&serde_json::json!({"share": 3})).expect_err("type").to_string();
        assert!(message.contains("`edge.share`"), "{message}");
    }

    #[test]
    fn the_workspace_settings_are_the_file_overridden_by_the_editor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".periodic.toml");
        std::fs::write(&path, "[edge]\nurl = \"http://127.0.0.1:7700\"\nshare = \"locations\"\nrepo = \"billing\"\n").expect("write");
        let config = Config::load(&path).expect("config");
        let editor = serde_json::json!({"share": "fingerprints", "token": "t"});
        let settings = EdgeSettings::for_workspace(dir.path(), &config, Some(&editor)).expect("valid");
        assert_eq!((settings.url.as_deref(), settings.share, settings.repo.as_str()), (Some("http://127.0.0.1:7700"), ShareLevel::Fingerprints, "billing"));
        assert_eq!(settings.token.as_deref(), Some("t"));
        let off = EdgeSettings::for_workspace(dir.path(), &Config::default(), None).expect("no table");
        assert!(!off.enabled());
        let bad = serde_json::json!({"share": "all"});
        assert!(EdgeSettings::for_workspace(dir.path(), &config, Some(&bad)).is_err());
    }

    #[test]
    fn overlay_prefers_the_later_source() {
        let file = EdgeOptions { url: Some("http://a".into()), share: Some(ShareLevel::Fingerprints), repo: Some("r".into()), ..EdgeOptions::default() };
        let editor = EdgeOptions { share: Some(ShareLevel::Locations), ..EdgeOptions::default() };
        let merged = file.overlay(editor);
        assert_eq!(merged.url.as_deref(), Some("http://a"));
        assert_eq!(merged.share, Some(ShareLevel::Locations));
        assert_eq!(merged.repo.as_deref(), Some("r"));
    }

    #[test]
    fn sharing_is_off_by_default_and_the_repo_is_the_folder_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("my service");
        std::fs::create_dir(&root).expect("mkdir");
        let settings = EdgeSettings::resolve(&root, EdgeOptions { url: Some("http://127.0.0.1:1/".into()), ..EdgeOptions::default() }).expect("valid");
        assert_eq!(settings.share, ShareLevel::Off);
        assert!(!settings.enabled());
        assert_eq!(settings.url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(settings.repo, "my-service");
        assert!(is_valid_repo_name(&settings.repo));
    }

    #[test]
    fn the_token_comes_from_the_environment_else_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("edge-token"), "\n  secret-token  \n").expect("write");
        let options = EdgeOptions {
            url: Some("http://127.0.0.1:1".into()),
            share: Some(ShareLevel::Fingerprints),
            token_file: Some(PathBuf::from("edge-token")),
            ..EdgeOptions::default()
        };
        let from_file = EdgeSettings::resolve_with_token_env(dir.path(), options.clone(), None).expect("valid");
        assert_eq!(from_file.token.as_deref(), Some("secret-token"));
        assert!(!format!("{from_file:?}").contains("secret-token"), "the token never appears in logs");
        let from_env = EdgeSettings::resolve_with_token_env(dir.path(), options.clone(), Some("env-token".into())).expect("valid");
        assert_eq!(from_env.token.as_deref(), Some("env-token"));
        let missing = EdgeOptions { token_file: Some(PathBuf::from("missing")), ..options.clone() };
        let message = EdgeSettings::resolve_with_token_env(dir.path(), missing, None).expect_err("missing file").to_string();
        assert!(message.contains("missing") && message.contains("token file"), "{message}");
        // With sharing off the token file is not needed, so a missing one is no error.
        let off = EdgeOptions { share: Some(ShareLevel::Off), token_file: Some(PathBuf::from("missing")), ..options };
        assert!(EdgeSettings::resolve_with_token_env(dir.path(), off, None).expect("off").token.is_none());
    }
}
