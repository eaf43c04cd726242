//! The JSON report (`--format json`), documented in `docs/report-format.md`.

use std::collections::BTreeMap;
use std::io::Write;

use periodic_core::ScanOutcome;
use periodic_core::pattern::PatternLabel;
use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};

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

/// Writes the report of `outcome` without building the report model: each pattern and pair
/// is shown and serialised in turn, so the report of a very large tree (half a million
/// pairs) costs no memory beyond the scan's own. The bytes are those `write` gives for
/// `super::build(outcome)`.
/// `names` are names given elsewhere (the team's), put over the patterns' by id.
pub fn write_outcome(outcome: &ScanOutcome, names: &BTreeMap<String, PatternLabel>, out: impl Write) -> std::io::Result<()> {
    write_serialised(&OutcomeReport { outcome, names, pattern_of_pair: pattern_of_each_pair(outcome) }, out)
}

fn write_serialised(report: &impl Serialize, out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer(&mut out, report)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// A scan outcome serialised as a `Report`, field for field.
struct OutcomeReport<'a> {
    outcome: &'a ScanOutcome,
    names: &'a BTreeMap<String, PatternLabel>,
    pattern_of_pair: Vec<u32>,
}

impl Serialize for OutcomeReport<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let files = &self.outcome.files;
        let mut report = serializer.serialize_struct("Report", 5)?;
        report.serialize_field("version", REPORT_FORMAT_VERSION)?;
        report.serialize_field("tool_version", env!("CARGO_PKG_VERSION"))?;
        report.serialize_field("stats", &stats_of(self.outcome))?;
        report.serialize_field(
            "patterns",
            &Shown(self.outcome.patterns.len(), |index| {
                let mut pattern = pattern_model(files, &self.outcome.patterns[index]);
                apply_label(self.names, &mut pattern);
                pattern
            }),
        )?;
        report.serialize_field(
            "pairs",
            &Shown(self.outcome.pairs.len(), |index| pair_model(files, &self.outcome.pairs[index], pattern_id_of(self.outcome, self.pattern_of_pair[index]))),
        )?;
        report.end()
    }
}

/// A sequence of `len` items made one at a time by `show`.
struct Shown<F>(usize, F);

impl<T: Serialize, F: Fn(usize) -> T> Serialize for Shown<F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sequence = serializer.serialize_seq(Some(self.0))?;
        for index in 0..self.0 {
            sequence.serialize_element(&(self.1)(index))?;
        }
        sequence.end()
    }
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
