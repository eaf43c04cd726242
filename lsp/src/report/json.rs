//! The JSON report (`--format json`), documented in `docs/report-format.md`.

use std::collections::BTreeMap;
use std::io::Write;

use periodic_core::ScanOutcome;
use periodic_core::pattern::PatternLabel;
use rayon::prelude::*;
use serde::Serialize;

use super::{REPORT_FORMAT_VERSION, Report, apply_label, pair_model, pattern_id_of, pattern_model, pattern_of_each_pair, stats_of};

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
    write_serialised(report, out)
}

/// Writes the report of `outcome` without building the report model: the patterns and
/// pairs are shown and serialised a window at a time, so the report of a very large tree
/// (half a million pairs) costs no memory beyond the scan's own and a few megabytes of
/// text, and its serialisation, on one core the last step of a scan, runs on all of them.
/// The bytes are those `write` gives for
/// `super::build(outcome)`.
/// `names` are names given elsewhere (the team's), put over the patterns' by id.
pub fn write_outcome(outcome: &ScanOutcome, names: &BTreeMap<String, PatternLabel>, out: impl Write) -> std::io::Result<()> {
    let files = &outcome.files;
    let pattern_of_pair = pattern_of_each_pair(outcome);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    // The fields in `Report`'s order, as serde_json writes a struct in compact form: the
    // patterns and pairs are then shown and serialised on every core, a window at a time.
    out.write_all(b"{\"version\":")?;
    serde_json::to_writer(&mut out, &REPORT_FORMAT_VERSION)?;
    out.write_all(b",\"tool_version\":")?;
    serde_json::to_writer(&mut out, env!("CARGO_PKG_VERSION"))?;
    out.write_all(b",\"stats\":")?;
    serde_json::to_writer(&mut out, &stats_of(outcome))?;
    out.write_all(b",\"patterns\":")?;
    write_sequence(&mut out, outcome.patterns.len(), |index| {
        let mut pattern = pattern_model(files, &outcome.patterns[index]);
        apply_label(names, &mut pattern);
        pattern
    })?;
    out.write_all(b",\"pairs\":")?;
    write_sequence(&mut out, outcome.pairs.len(), |index| pair_model(files, &outcome.pairs[index], pattern_id_of(outcome, pattern_of_pair[index])))?;
    out.write_all(b"}\n")?;
    out.flush()
}

fn write_serialised(report: &impl Serialize, out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer(&mut out, report)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Items shown and serialised together by one task.
const ITEMS_PER_PIECE: usize = 512;
/// Items serialised before their bytes are written: what is held at once stays a few
/// megabytes, however many pairs there are.
const ITEMS_PER_WINDOW: usize = 16 * ITEMS_PER_PIECE;

/// A JSON array of `len` items made by `show`, as serde_json writes a sequence in compact
/// form, serialised in pieces on the rayon pool and written in order.
fn write_sequence<T: Serialize>(out: &mut impl Write, len: usize, show: impl Fn(usize) -> T + Sync) -> std::io::Result<()> {
    out.write_all(b"[")?;
    for window in (0..len).step_by(ITEMS_PER_WINDOW) {
        let end = (window + ITEMS_PER_WINDOW).min(len);
        let starts: Vec<usize> = (window..end).step_by(ITEMS_PER_PIECE).collect();
        let pieces: Vec<serde_json::Result<Vec<u8>>> = starts
            .par_iter()
            .map(|&start| {
                let mut piece = Vec::new();
                for index in start..(start + ITEMS_PER_PIECE).min(end) {
                    if index > 0 {
                        piece.push(b',');
                    }
                    serde_json::to_writer(&mut piece, &show(index))?;
                }
                Ok(piece)
            })
            .collect();
        for piece in pieces {
            out.write_all(&piece?)?;
        }
    }
    out.write_all(b"]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_written_as_its_report_model_is() {
        let root = tempfile::tempdir().expect("tempdir");
        let body = "def total(items, rate):\n    sum = 0\n    count = 0\n    for item in items:\n        if item.price > 0:\n            sum += item.price * item.count\n            count += item.count\n        elif item.refund:\n            sum -= item.refund\n    if count > 10:\n        sum = sum * (1 - rate)\n    print('total', sum, count)\n    return round(sum, 2)\n";
        std::fs::write(root.path().join("a.py"), body).expect("write");
        std::fs::write(root.path().join("b.py"), body.replace("total", "amount").replace("sum", "acc")).expect("write");
        std::fs::write(root.path().join("c.py"), body.replace("item.count", "item.count + 1")).expect("write");
        let options = periodic_core::ScanOptions { root: root.path().to_path_buf(), config: periodic_core::Config::default(), use_index: false, progress: None, team: None };
        let outcome = periodic_core::scan(options).expect("scan");
        assert!(!outcome.pairs.is_empty() && !outcome.patterns.is_empty(), "the copies are found");
        let (mut streamed, mut built) = (Vec::new(), Vec::new());
        write_outcome(&outcome, &BTreeMap::new(), &mut streamed).expect("streamed");
        write(&super::super::build(&outcome), &mut built).expect("built");
        assert_eq!(String::from_utf8(streamed).expect("utf-8"), String::from_utf8(built).expect("utf-8"));
    }
}
