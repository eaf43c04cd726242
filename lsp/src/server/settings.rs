//! The editor's options: `initializationOptions` at start and `settings.periodic` in
//! `workspace/didChangeConfiguration`, validated field by field. A bad value is reported
//! and its default kept, so one typo never stops the server. Detection thresholds set here
//! override `.periodic.toml`; everything else is editor-only.

use std::time::Duration;

use periodic_core::{CloneKind, Config};
use serde_json::{Map, Value};
use tower_lsp_server::ls_types::DiagnosticSeverity;

/// Debounce of edits before re-analysis when the editor sets none.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub min_lines: Option<u32>,
    pub min_tokens: Option<u32>,
    pub similarity: Option<f64>,
    pub debounce: Duration,
    /// `None`: diagnostics off.
    pub severity: Option<DiagnosticSeverity>,
    /// Whether diagnostics show T1, T2, T3 clones.
    pub kinds: [bool; 3],
    /// The `edge` object as given (url, share, token, repo); read by the team sync.
    pub edge: Option<Value>,
    /// `noIgnore`: overrides `no_ignore` of `.periodic.toml` when set.
    pub no_ignore: Option<bool>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_lines: None,
            min_tokens: None,
            similarity: None,
            debounce: DEFAULT_DEBOUNCE,
            severity: Some(DiagnosticSeverity::INFORMATION),
            kinds: [true; 3],
            edge: None,
            no_ignore: None,
        }
    }
}

impl Settings {
    /// Reads the options object; `{"periodic": {...}}` (a whole settings tree) is accepted
    /// too. An empty array counts as an empty object wherever an object is meant, because
    /// Lua clients (Neovim) cannot tell `{}` from `[]` and send empty tables as arrays.
    /// Returns the settings and one message per value that was not used.
    pub fn from_json(value: Option<&Value>) -> (Settings, Vec<String>) {
        let mut settings = Settings::default();
        let mut problems = Vec::new();
        let object = match value {
            None | Some(Value::Null) => return (settings, problems),
            Some(empty) if is_empty_table(empty) => return (settings, problems),
            Some(Value::Object(object)) => match object.get("periodic") {
                Some(Value::Object(inner)) => inner,
                Some(inner) if inner.is_null() || is_empty_table(inner) => return (settings, problems),
                _ => object,
            },
            Some(other) => {
                problems.push(format!("the options must be an object, not {other}"));
                return (settings, problems);
            }
        };
        for (key, value) in object {
            if value.is_null() {
                continue;
            }
            match key.as_str() {
                "minLines" => settings.min_lines = whole(value, key, 1, &mut problems),
                "minTokens" => settings.min_tokens = whole(value, key, 1, &mut problems),
                "similarity" => match value.as_f64() {
                    Some(similarity) if similarity > 0.0 && similarity <= 1.0 => settings.similarity = Some(similarity),
                    _ => problems.push(format!("`similarity` must be a number in (0, 1], not {value}")),
                },
                "debounceMs" => {
                    if let Some(millis) = whole(value, key, 0, &mut problems) {
                        settings.debounce = Duration::from_millis(u64::from(millis));
                    }
                }
                "diagnostics" => read_diagnostics(value, &mut settings, &mut problems),
                "edge" if is_empty_table(value) => {}
                "edge" => settings.edge = Some(value.clone()),
                "noIgnore" => match value.as_bool() {
                    Some(no_ignore) => settings.no_ignore = Some(no_ignore),
                    None => problems.push(format!("`noIgnore` must be true or false, not {value}")),
                },
                // Client-side settings some extensions send along; not ours to judge.
                "server" | "trace" | "share" => {}
                other => problems.push(format!("unknown option `{other}`")),
            }
        }
        (settings, problems)
    }

    pub fn shows(&self, kind: CloneKind) -> bool {
        match kind {
            CloneKind::T1 => self.kinds[0],
            CloneKind::T2 => self.kinds[1],
            CloneKind::T3 => self.kinds[2],
        }
    }

    /// The project's configuration with the editor's threshold overrides applied.
    pub fn apply_to(&self, config: &mut Config) {
        config.override_thresholds(self.min_lines, self.min_tokens, self.similarity);
        if let Some(no_ignore) = self.no_ignore {
            config.no_ignore = no_ignore;
        }
    }

    /// Whether switching to `other` changes what the engine finds (and needs a re-index).
    pub fn detection_differs(&self, other: &Settings) -> bool {
        self.min_lines != other.min_lines || self.min_tokens != other.min_tokens || self.similarity != other.similarity || self.no_ignore != other.no_ignore
    }
}

/// `[]`: how a Lua client encodes an empty table, meant as `{}`.
fn is_empty_table(value: &Value) -> bool {
    value.as_array().is_some_and(|items| items.is_empty())
}

fn whole(value: &Value, key: &str, minimum: u64, problems: &mut Vec<String>) -> Option<u32> {
    match value.as_u64() {
        Some(number) if number >= minimum && number <= u64::from(u32::MAX) => Some(number as u32),
        _ => {
            problems.push(format!("`{key}` must be a whole number of at least {minimum}, not {value}"));
            None
        }
    }
}

fn read_diagnostics(value: &Value, settings: &mut Settings, problems: &mut Vec<String>) {
    if is_empty_table(value) {
        return;
    }
    let Some(object) = value.as_object() else {
        problems.push(format!("`diagnostics` must be an object, not {value}"));
        return;
    };
    for (key, value) in object {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "severity" => match value.as_str() {
                Some("error") => settings.severity = Some(DiagnosticSeverity::ERROR),
                Some("warning") => settings.severity = Some(DiagnosticSeverity::WARNING),
                Some("information") => settings.severity = Some(DiagnosticSeverity::INFORMATION),
                Some("hint") => settings.severity = Some(DiagnosticSeverity::HINT),
                Some("off") => settings.severity = None,
                _ => problems.push(format!(
                    "`diagnostics.severity` must be one of error, warning, information, hint, off; not {value}"
                )),
            },
            "kinds" => read_kinds(value, settings, problems),
            other => problems.push(format!("unknown option `diagnostics.{other}`")),
        }
    }
}

fn read_kinds(value: &Value, settings: &mut Settings, problems: &mut Vec<String>) {
    if is_empty_table(value) {
        return;
    }
    let empty = Map::new();
    let object = value.as_object().unwrap_or_else(|| {
        problems.push(format!("`diagnostics.kinds` must be an object like {{\"T1\": true}}, not {value}"));
        &empty
    });
    for (key, value) in object {
        let index = match key.as_str() {
            "T1" => 0,
            "T2" => 1,
            "T3" => 2,
            other => {
                problems.push(format!("unknown clone kind `diagnostics.kinds.{other}` (T1, T2 or T3)"));
                continue;
            }
        };
        match value.as_bool() {
            Some(shown) => settings.kinds[index] = shown,
            None if value.is_null() => {}
            None => problems.push(format!("`diagnostics.kinds.{key}` must be true or false, not {value}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn options_are_read_and_bad_values_keep_their_defaults() {
        let options = json!({
            "minLines": 4, "similarity": 0.8, "debounceMs": 0,
            "diagnostics": {"severity": "hint", "kinds": {"T1": false}},
            "edge": {"url": "http://127.0.0.1:7700"},
            "minTokens": -3, "colour": "blue"
        });
        let (settings, problems) = Settings::from_json(Some(&options));
        assert_eq!(settings.min_lines, Some(4));
        assert_eq!(settings.min_tokens, None);
        assert_eq!(settings.similarity, Some(0.8));
        assert_eq!(settings.debounce, Duration::ZERO);
        assert_eq!(settings.severity, Some(DiagnosticSeverity::HINT));
        assert_eq!(settings.kinds, [false, true, true]);
        assert!(settings.edge.is_some());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|problem| problem.contains("minTokens")));
        assert!(problems.iter().any(|problem| problem.contains("colour")));
    }

    #[test]
    fn a_whole_settings_tree_is_accepted_and_severity_off_disables_diagnostics() {
        let (settings, problems) = Settings::from_json(Some(&json!({"periodic": {"diagnostics": {"severity": "off"}}})));
        assert!(problems.is_empty());
        assert_eq!(settings.severity, None);
    }

    /// What Neovim sends for a default setup: empty Lua tables, encoded as arrays.
    #[test]
    fn empty_lua_tables_are_empty_options_not_problems() {
        for options in [json!([]), json!({"periodic": []}), json!({"periodic": null}), json!({"periodic": {"diagnostics": [], "edge": []}}), json!({"diagnostics": {"kinds": []}})] {
            let (settings, problems) = Settings::from_json(Some(&options));
            assert!(problems.is_empty(), "{options}: {problems:?}");
            assert_eq!(settings, Settings::default(), "{options}");
        }
        let (_, problems) = Settings::from_json(Some(&json!([1])));
        assert_eq!(problems.len(), 1, "a non-empty array is still refused: {problems:?}");
    }
}
