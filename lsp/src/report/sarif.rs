//! The SARIF 2.1.0 renderer of a scan report: one result per clone instance, so that code
//! scanning views (GitHub, VS Code's SARIF viewer) put a finding on every copy, each pointing
//! at its other copies through `relatedLocations`. Paths stay relative to the scan root
//! through the `SRCROOT` base id, so a log written on one machine reads on another.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use super::{Location, Pattern, Report};

/// The schema location consumers (GitHub code scanning among them) recognise.
const SARIF_SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const SARIF_VERSION: &str = "2.1.0";
/// The base id every artifact location is relative to.
const SOURCE_ROOT_BASE_ID: &str = "SRCROOT";
/// Named with a version suffix so a later change of what the value means gets a new key
/// instead of silently breaking the matching of results across runs.
const PATTERN_FINGERPRINT_KEY: &str = "periodicPattern/v1";
const INSTANCE_FINGERPRINT_KEY: &str = "periodicInstance/v1";

/// One rule per clone kind. Kinds the renderer does not know still get a rule (built in
/// `rule_for_kind`) so that a newer engine never produces an invalid log.
const KNOWN_RULES: [RuleText; 3] = [
    RuleText {
        kind: "T1",
        name: "ExactClone",
        short: "Exact copy of code found elsewhere (Type-1 clone).",
        full: "This code is identical to code elsewhere in the scanned tree, apart from whitespace, \
               layout and comments. Copies like these tend to drift apart when only one of them is fixed.",
        help: "Extract the shared code into one function or module and call it from every copy, or \
               suppress the finding with a `periodic-ignore` comment if the duplication is deliberate.",
    },
    RuleText {
        kind: "T2",
        name: "RenamedClone",
        short: "Copy of code found elsewhere with identifiers, literals or types renamed (Type-2 clone).",
        full: "This code has the same structure as code elsewhere in the scanned tree; only identifiers, \
               literals or type names differ. The copies usually encode the same logic for different data.",
        help: "Extract the shared logic into one function that takes the differing names or values as \
               parameters, or suppress the finding with a `periodic-ignore` comment.",
    },
    RuleText {
        kind: "T3",
        name: "NearMissClone",
        short: "Near-miss copy of code found elsewhere, with statements added, removed or changed (Type-3 clone).",
        full: "This code is similar, above the configured similarity threshold, to code elsewhere in the \
               scanned tree, with some statements added, removed or changed. Such copies often started \
               as one and drifted apart.",
        help: "Compare the copies: a fix applied to one may be missing from the others. Consolidate them \
               where the differences are accidental, or suppress the finding with a `periodic-ignore` comment.",
    },
];

struct RuleText {
    kind: &'static str,
    name: &'static str,
    short: &'static str,
    full: &'static str,
    help: &'static str,
}

/// Renders `report` as a SARIF 2.1.0 log. `root` is the scanned directory; it becomes the
/// `SRCROOT` base URI, and every location in the report is already relative to it.
pub fn render(report: &Report, root: &Path) -> anyhow::Result<String> {
    let root_uri = directory_file_uri(root)
        .with_context(|| format!("cannot express the scan root {} as a file URI", root.display()))?;

    let rule_kinds = rule_kinds(report);
    let rules: Vec<Value> = rule_kinds.iter().map(|kind| rule_for_kind(kind)).collect();
    let rule_index: BTreeMap<&str, usize> =
        rule_kinds.iter().enumerate().map(|(index, kind)| (kind.as_str(), index)).collect();

    let mut results = Vec::new();
    for pattern in &report.patterns {
        let kind = normalised_kind(&pattern.kind);
        let index = rule_index.get(kind.as_str()).copied().unwrap_or_default();
        results.extend(pattern_results(pattern, &kind, index));
    }

    let notifications: Vec<Value> = report
        .stats
        .warnings
        .iter()
        .map(|warning| json!({ "level": "warning", "message": { "text": warning } }))
        .collect();

    let log = json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {
                "driver": {
                    "name": "periodic",
                    "version": report.tool_version,
                    "rules": rules,
                }
            },
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "originalUriBaseIds": {
                SOURCE_ROOT_BASE_ID: {
                    "uri": root_uri,
                    "description": { "text": "The directory that was scanned." }
                }
            },
            "results": results,
            "properties": {
                "reportFormatVersion": report.version,
                "files": report.stats.files,
                "lines": report.stats.lines,
                "duplicatedLines": report.stats.duplicated_lines,
                "duplicationPercent": report.stats.duplication_percent,
                "patterns": report.stats.patterns,
                "clonePairs": report.stats.clone_pairs,
            }
        }]
    });
    let mut text = serde_json::to_string_pretty(&log).context("cannot serialise the SARIF log")?;
    text.push('\n');
    Ok(text)
}

/// The kinds that get a rule: the three known ones always (so rule indexes are the same in
/// every log), then any other kind the report uses, in sorted order.
fn rule_kinds(report: &Report) -> Vec<String> {
    let mut kinds: Vec<String> = KNOWN_RULES.iter().map(|rule| rule.kind.to_string()).collect();
    let mut extra: Vec<String> = report
        .patterns
        .iter()
        .map(|pattern| normalised_kind(&pattern.kind))
        .filter(|kind| !kinds.contains(kind))
        .collect();
    extra.sort();
    extra.dedup();
    kinds.extend(extra);
    kinds
}

fn normalised_kind(kind: &str) -> String {
    let trimmed = kind.trim();
    if trimmed.is_empty() { "clone".to_string() } else { trimmed.to_ascii_uppercase() }
}

fn rule_id(kind: &str) -> String {
    format!("periodic/{kind}")
}

fn rule_for_kind(kind: &str) -> Value {
    match KNOWN_RULES.iter().find(|rule| rule.kind == kind) {
        Some(rule) => json!({
            "id": rule_id(kind),
            "name": rule.name,
            "shortDescription": { "text": rule.short },
            "fullDescription": { "text": rule.full },
            "help": { "text": rule.help },
            "defaultConfiguration": { "level": "note" },
            "properties": { "tags": ["duplication", "maintainability"], "cloneKind": kind }
        }),
        None => json!({
            "id": rule_id(kind),
            "name": "Clone",
            "shortDescription": { "text": format!("Code duplicated elsewhere (clone kind {kind}).") },
            "fullDescription": { "text": "This code is duplicated elsewhere in the scanned tree." },
            "defaultConfiguration": { "level": "note" },
            "properties": { "tags": ["duplication", "maintainability"], "cloneKind": kind }
        }),
    }
}

/// One result per member of `pattern`: that member first, every other member related.
fn pattern_results(pattern: &Pattern, kind: &str, rule_index: usize) -> Vec<Value> {
    // Two members of one pattern can sit in the same file; the ordinal among those keeps
    // their instance fingerprints apart while staying independent of line numbers, which
    // change whenever code above the clone is edited.
    let mut seen_per_path: BTreeMap<&str, usize> = BTreeMap::new();
    let kind_label = kind_label(kind);
    let mut results = Vec::with_capacity(pattern.members.len());
    for (member_index, member) in pattern.members.iter().enumerate() {
        let ordinal = seen_per_path.entry(member.path.as_str()).or_insert(0);
        let instance_fingerprint = format!("{}:{}:{}", pattern.id, member.path, ordinal);
        *ordinal += 1;

        let others: Vec<&Location> = pattern
            .members
            .iter()
            .enumerate()
            .filter(|(other_index, _)| *other_index != member_index)
            .map(|(_, other)| other)
            .collect();
        let related: Vec<Value> = others
            .iter()
            .enumerate()
            .map(|(position, other)| {
                let mut location = sarif_location(other);
                location["id"] = json!(position + 1);
                location["message"] = json!({ "text": format!("Copy at {}", display_location(other)) });
                location
            })
            .collect();

        let links: Vec<String> = others
            .iter()
            .enumerate()
            .map(|(position, other)| {
                format!("[{}]({})", escape_message_text(&display_location(other)), position + 1)
            })
            .collect();
        let subject = if member.name.is_empty() {
            String::from("This code")
        } else {
            format!("'{}'", escape_message_text(&member.name))
        };
        let similarity_percent = (pattern.similarity * 100.0).round();
        let message = if links.is_empty() {
            format!("{subject} belongs to pattern {} but no other copy was reported.", escape_message_text(&pattern.name))
        } else {
            format!(
                "{subject} is a {kind_label} ({similarity_percent}% similar) of code at {}. Pattern {} '{}', {} copies.",
                links.join(", "),
                escape_message_text(&pattern.id),
                escape_message_text(&pattern.name),
                pattern.members.len(),
            )
        };

        results.push(json!({
            "ruleId": rule_id(kind),
            "ruleIndex": rule_index,
            "level": "note",
            "message": { "text": message },
            "locations": [sarif_location(member)],
            "relatedLocations": related,
            "partialFingerprints": {
                PATTERN_FINGERPRINT_KEY: pattern.id,
                INSTANCE_FINGERPRINT_KEY: instance_fingerprint,
            },
            "properties": {
                "patternId": pattern.id,
                "patternName": pattern.name,
                "similarity": pattern.similarity,
                "copies": pattern.members.len(),
                "duplicatedLines": pattern.duplicated_lines,
                "languages": pattern.languages,
            }
        }));
    }
    results
}

fn kind_label(kind: &str) -> String {
    match kind {
        "T1" => "exact copy".to_string(),
        "T2" => "renamed copy".to_string(),
        "T3" => "near-miss copy".to_string(),
        other => format!("copy ({other})"),
    }
}

fn display_location(location: &Location) -> String {
    format!("{}:{}-{}", location.path, location.start_line, location.end_line)
}

/// SARIF message text treats `[text](id)` as an embedded link; literal brackets and
/// backslashes elsewhere must be escaped with a backslash (SARIF 2.1.0 §3.11.6).
fn escape_message_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

fn sarif_location(location: &Location) -> Value {
    // SARIF lines are 1-based like the report's; a zero would violate the schema's minimum,
    // so it is raised to 1 rather than written out.
    let start_line = location.start_line.max(1);
    let end_line = location.end_line.max(start_line);
    let mut value = json!({
        "physicalLocation": {
            "artifactLocation": {
                "uri": relative_uri(&location.path),
                "uriBaseId": SOURCE_ROOT_BASE_ID,
            },
            "region": { "startLine": start_line, "endLine": end_line }
        }
    });
    if !location.name.is_empty() {
        value["logicalLocations"] = json!([{
            "name": location.name,
            "kind": if location.unit == "block" { "block" } else { "function" },
        }]);
    }
    value
}

/// A report path (relative, `/`-separated) as a relative URI reference: each segment
/// percent-encoded so spaces, `#`, `?` and non-ASCII names survive. A leading `/` or a
/// Windows drive would make the reference absolute, so they are stripped.
fn relative_uri(path: &str) -> String {
    let normalised = path.replace('\\', "/");
    normalised
        .trim_start_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .map(percent_encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// The `file:` URI of a directory, ending in `/` so relative references resolve inside it.
fn directory_file_uri(root: &Path) -> anyhow::Result<String> {
    let absolute = absolute_path(root)?;
    let mut uri = String::from("file://");
    let mut segments = Vec::new();
    for component in absolute.components() {
        match component {
            Component::Prefix(prefix) => {
                // `C:` on Windows: the drive letter is its own first segment, kept unencoded.
                segments.push(prefix.as_os_str().to_string_lossy().replace('\\', "/"));
            }
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                segments.pop();
            }
            Component::Normal(name) => segments.push(percent_encode_segment(&name.to_string_lossy())),
        }
    }
    for segment in segments {
        uri.push('/');
        uri.push_str(&segment);
    }
    uri.push('/');
    Ok(uri)
}

fn absolute_path(root: &Path) -> anyhow::Result<PathBuf> {
    if let Ok(canonical) = std::fs::canonicalize(root) {
        return Ok(canonical);
    }
    if root.is_absolute() {
        return Ok(root.to_path_buf());
    }
    let current = std::env::current_dir().context("cannot read the current directory")?;
    Ok(current.join(root))
}

/// Percent-encodes everything but RFC 3986 unreserved characters and a few sub-delimiters
/// that are safe inside a path segment.
fn percent_encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b'@');
        if keep {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{LanguageStats, Pair, Stats};

    fn location(path: &str, start_line: u32, end_line: u32, name: &str) -> Location {
        Location {
            path: path.to_string(),
            start_line,
            end_line,
            name: name.to_string(),
            unit: if name.is_empty() { "block".to_string() } else { "function".to_string() },
            language: "python".to_string(),
        }
    }

    fn pattern(id: &str, kind: &str, members: Vec<Location>) -> Pattern {
        Pattern {
            id: id.to_string(),
            name: format!("{id} name"),
            auto_name: format!("{id} name"),
            user_name: None,
            note: None,
            kind: kind.to_string(),
            similarity: if kind == "T3" { 0.82 } else { 1.0 },
            languages: vec!["python".to_string()],
            duplicated_lines: members.iter().map(|m| u64::from(m.end_line - m.start_line + 1)).sum(),
            members,
        }
    }

    fn sample_report() -> Report {
        let patterns = vec![
            pattern(
                "P-00000001",
                "T1",
                vec![location("src/a.py", 3, 14, "load_config"), location("src/b.py", 20, 31, "load_settings")],
            ),
            pattern(
                "P-00000002",
                "T3",
                vec![
                    location("src/dir with space/c#1.py", 1, 9, ""),
                    location("src/c.py", 40, 48, "merge"),
                    location("src/c.py", 60, 68, "merge_all"),
                ],
            ),
            pattern("P-00000003", "T2", vec![location("lib/ü.py", 5, 12, "[weird]"), location("lib/v.py", 5, 12, "w")]),
        ];
        let mut languages = BTreeMap::new();
        languages.insert(
            "python".to_string(),
            LanguageStats { files: 6, lines: 400, units: 30, duplicated_lines: 57 },
        );
        Report {
            version: crate::report::REPORT_FORMAT_VERSION.to_string(),
            tool_version: "0.1.0".to_string(),
            stats: Stats {
                files: 6,
                lines: 400,
                patterns: 3,
                clone_pairs: 4,
                duplicated_lines: 57,
                duplication_percent: 14.25,
                languages,
                warnings: vec!["src/bad.py: invalid UTF-8, read lossily".to_string()],
                ..Stats::default()
            },
            patterns,
            pairs: vec![Pair {
                a: location("src/a.py", 3, 14, "load_config"),
                b: location("src/b.py", 20, 31, "load_settings"),
                kind: "T1".to_string(),
                similarity: 1.0,
                pattern: "P-00000001".to_string(),
                evidence: None,
            }],
        }
    }

    fn render_value(report: &Report) -> Value {
        let root = tempfile::tempdir().expect("tempdir");
        let text = render(report, root.path()).expect("render");
        serde_json::from_str(&text).expect("rendered SARIF is JSON")
    }

    /// The OASIS SARIF 2.1.0 schema (errata 01), vendored; see tests/schemas/README.md.
    fn sarif_validator() -> jsonschema::Validator {
        let schema_text = include_str!("../../../tests/schemas/sarif-schema-2.1.0.json");
        let schema: Value = serde_json::from_str(schema_text).expect("schema is JSON");
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles")
    }

    fn schema_errors(validator: &jsonschema::Validator, log: &Value) -> Vec<String> {
        validator.iter_errors(log).map(|error| format!("{} at {}", error, error.instance_path())).collect()
    }

    #[test]
    fn rendered_log_is_valid_against_the_official_schema() {
        let log = render_value(&sample_report());
        let errors = schema_errors(&sarif_validator(), &log);
        assert!(errors.is_empty(), "schema violations: {errors:#?}");
    }

    #[test]
    fn empty_report_is_valid_and_has_no_results() {
        let mut report = sample_report();
        report.patterns.clear();
        report.pairs.clear();
        report.stats.warnings.clear();
        let log = render_value(&report);
        assert!(schema_errors(&sarif_validator(), &log).is_empty());
        assert_eq!(log["runs"][0]["results"].as_array().map(Vec::len), Some(0));
        assert_eq!(log["runs"][0]["tool"]["driver"]["rules"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn validator_rejects_a_broken_log() {
        // Guards the test above: a validator that accepted anything would make it pass.
        let mut log = render_value(&sample_report());
        log["runs"][0]["results"][0]["level"] = json!("loud");
        log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = json!(0);
        assert_eq!(schema_errors(&sarif_validator(), &log).len(), 2);
    }

    #[test]
    fn one_result_per_instance_with_its_copies_related() {
        let report = sample_report();
        let log = render_value(&report);
        let results = log["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), 7, "2 + 3 + 2 members");

        let near_miss: Vec<&Value> =
            results.iter().filter(|result| result["partialFingerprints"][PATTERN_FINGERPRINT_KEY] == "P-00000002").collect();
        assert_eq!(near_miss.len(), 3);
        for (member, result) in report.patterns[1].members.iter().zip(&near_miss) {
            assert_eq!(result["ruleId"], "periodic/T3");
            assert_eq!(result["ruleIndex"], 2);
            assert_eq!(result["level"], "note");
            let primary = &result["locations"][0]["physicalLocation"];
            assert_eq!(primary["artifactLocation"]["uri"], relative_uri(&member.path));
            assert_eq!(primary["artifactLocation"]["uriBaseId"], "SRCROOT");
            assert_eq!(primary["region"]["startLine"], member.start_line);
            assert_eq!(primary["region"]["endLine"], member.end_line);

            let related = result["relatedLocations"].as_array().expect("related");
            assert_eq!(related.len(), 2);
            let related_lines: Vec<u64> = related
                .iter()
                .map(|location| location["physicalLocation"]["region"]["startLine"].as_u64().unwrap_or(0))
                .collect();
            assert!(!related_lines.contains(&u64::from(member.start_line)), "an instance is not its own copy");
            let message = result["message"]["text"].as_str().expect("message");
            assert!(message.contains("](1)") && message.contains("](2)"), "links to related ids: {message}");
        }
        let instance_ids: std::collections::BTreeSet<&str> = near_miss
            .iter()
            .map(|result| result["partialFingerprints"][INSTANCE_FINGERPRINT_KEY].as_str().unwrap_or(""))
            .collect();
        assert_eq!(instance_ids.len(), 3, "two members in one file still get distinct fingerprints");
    }

    #[test]
    fn rules_describe_every_kind_and_unknown_kinds_get_their_own_rule() {
        let mut report = sample_report();
        report.patterns[2].kind = "T4".to_string();
        let log = render_value(&report);
        let rules = log["runs"][0]["tool"]["driver"]["rules"].as_array().expect("rules");
        let ids: Vec<&str> = rules.iter().filter_map(|rule| rule["id"].as_str()).collect();
        assert_eq!(ids, ["periodic/T1", "periodic/T2", "periodic/T3", "periodic/T4"]);
        for rule in rules {
            assert!(rule["shortDescription"]["text"].as_str().is_some_and(|text| !text.is_empty()));
            assert!(rule["fullDescription"]["text"].as_str().is_some_and(|text| !text.is_empty()));
            // Periodic has no web page per rule; a link would point nowhere.
            assert!(rule.get("helpUri").is_none(), "{rule}");
        }
        let t4_results: Vec<&Value> =
            log["runs"][0]["results"].as_array().expect("results").iter().filter(|r| r["ruleId"] == "periodic/T4").collect();
        assert_eq!(t4_results.len(), 2);
        assert!(t4_results.iter().all(|result| result["ruleIndex"] == 3));
        assert!(schema_errors(&sarif_validator(), &log).is_empty());
    }

    #[test]
    fn driver_and_base_uri_describe_the_run() {
        let root = tempfile::tempdir().expect("tempdir");
        let log: Value =
            serde_json::from_str(&render(&sample_report(), root.path()).expect("render")).expect("json");
        let driver = &log["runs"][0]["tool"]["driver"];
        assert_eq!(driver["name"], "periodic");
        assert_eq!(driver["version"], "0.1.0");
        assert!(driver.get("informationUri").is_none());
        let base = log["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"].as_str().expect("base uri");
        let canonical = std::fs::canonicalize(root.path()).expect("canonical");
        assert!(base.starts_with("file:///") && base.ends_with('/'), "{base}");
        assert!(base.trim_end_matches('/').ends_with(&*canonical.file_name().expect("name").to_string_lossy()));
        let notifications = &log["runs"][0]["invocations"][0]["toolExecutionNotifications"];
        assert_eq!(notifications[0]["message"]["text"], "src/bad.py: invalid UTF-8, read lossily");
    }

    #[test]
    fn paths_become_encoded_relative_uris() {
        assert_eq!(relative_uri("src/dir with space/c#1.py"), "src/dir%20with%20space/c%231.py");
        assert_eq!(relative_uri("lib/ü.py"), "lib/%C3%BC.py");
        assert_eq!(relative_uri("/abs/x.py"), "abs/x.py");
        assert_eq!(relative_uri("./a//b.py"), "a/b.py");
        assert_eq!(percent_encode_segment("a?b%c"), "a%3Fb%25c");
    }

    #[test]
    fn message_text_escapes_brackets_outside_links() {
        let log = render_value(&sample_report());
        let result = log["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|result| result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "lib/%C3%BC.py")
            .expect("result for lib/ü.py");
        let message = result["message"]["text"].as_str().expect("message");
        assert!(message.starts_with("'\\[weird\\]'"), "{message}");
        assert!(message.contains("[lib/v.py:5-12](1)"), "{message}");
    }
}
