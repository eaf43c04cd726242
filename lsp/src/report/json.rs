//! The JSON report (`--format json`), documented in `docs/report-format.md`.

use super::Report;

/// Compact JSON: reports of large codebases hold tens of thousands of pairs, and tools, not
/// people, read this format.
pub fn render(report: &Report) -> anyhow::Result<String> {
    let mut text = serde_json::to_string(report)?;
    text.push('\n');
    Ok(text)
}
