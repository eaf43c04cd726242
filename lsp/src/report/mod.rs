//! The scan report: one plain, serialisable model built from a scan result, and one
//! renderer per output format (text, json, sarif, html). Renderers only read the model.

pub mod html;
pub mod json;
pub mod sarif;
pub mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning or disappears; adding fields keeps the version.
pub const REPORT_FORMAT_VERSION: &str = "1";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Report format version (`REPORT_FORMAT_VERSION`).
    pub version: String,
    /// Version of the `periodic` binary that wrote it.
    pub tool_version: String,
    pub stats: Stats,
    /// Largest first (duplicated lines, then member count).
    pub patterns: Vec<Pattern>,
    pub pairs: Vec<Pair>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub files: u64,
    pub lines: u64,
    pub tokens: u64,
    pub units: u64,
    /// Files that were parsed again this run (the rest came from the index).
    pub files_parsed: u64,
    pub files_with_syntax_errors: u64,
    /// Why files were left out, with counts: binary, minified, generated, too_large,
    /// unreadable, unknown_language, excluded.
    pub skipped: BTreeMap<String, u64>,
    pub patterns: u64,
    pub clone_pairs: u64,
    /// Lines that belong to at least one clone instance.
    pub duplicated_lines: u64,
    /// duplicated_lines / lines * 100.
    pub duplication_percent: f64,
    pub languages: BTreeMap<String, LanguageStats>,
    pub duration_ms: u64,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LanguageStats {
    pub files: u64,
    pub lines: u64,
    pub units: u64,
    pub duplicated_lines: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pattern {
    /// Stable id, e.g. `P-3fa9c2d1`: the same code gives the same id on every machine.
    pub id: String,
    /// The user-given name when there is one, else the automatic name.
    pub name: String,
    pub auto_name: String,
    pub user_name: Option<String>,
    /// The closest kind among the pattern's pairs: "T1", "T2" or "T3".
    pub kind: String,
    /// Smallest similarity among the pattern's pairs.
    pub similarity: f64,
    pub languages: Vec<String>,
    pub duplicated_lines: u64,
    pub members: Vec<Location>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Relative to the scan root, with `/` separators.
    pub path: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// Function name, or empty for a block inside or outside functions.
    #[serde(default)]
    pub name: String,
    /// "function" (any unit) or "block".
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub language: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pair {
    pub a: Location,
    pub b: Location,
    /// "T1", "T2" or "T3".
    pub kind: String,
    /// Token-level similarity in [0, 1].
    pub similarity: f64,
    /// Id of the pattern both belong to.
    pub pattern: String,
}
