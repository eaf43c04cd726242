//! The JSON report (`--format json`), documented in `docs/report-format.md`.

use std::io::Write;

use super::Report;

/// Compact JSON: reports of large codebases hold tens of thousands of pairs, and tools, not
/// people, read this format.
pub fn render(report: &Report) -> anyhow::Result<String> {
    let mut text = serde_json::to_string(report)?;
    text.push('\n');
    Ok(text)
}

/// Writes the report to `out` as it is serialised: the JSON of a tree like the Linux kernel's
/// runs to hundreds of megabytes, and is never held whole in memory.
pub fn write(report: &Report, out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer(&mut out, report)?;
    out.write_all(b"\n")?;
    out.flush()
}
