//! Asking the live index about text that is no file of the workspace — a snippet a coding
//! agent is about to write: it is fingerprinted as a buffer would be, indexed in a scratch
//! slot past the last file, its clones computed like an edited file's, and the slot taken
//! away again, so the index answers every later question as before.

use std::sync::Arc;

use super::LiveIndex;
use crate::analysis::Analysis;
use crate::lang::Language;
use crate::model::{ClonePair, FileRecord};

/// The path the scratch slot is known by while a probe runs; no real path looks like it.
const PROBE_PATH: &str = "\0probe";

/// What a probe found.
pub struct Probe {
    /// The probed text's record (units with their fingerprints, as in a scan).
    pub record: FileRecord,
    /// The slot the text held: the side of each pair in this file is the text.
    pub slot: u32,
    /// Every clone pair between the text and the workspace (and within the text).
    pub pairs: Vec<ClonePair>,
}

impl LiveIndex {
    /// The clones `text` would have as a file of this workspace. `similarity` replaces the
    /// near-miss threshold of `language` for this question only.
    pub fn probe(&mut self, language: Language, text: &str, analysis: Analysis, similarity: Option<f64>) -> Probe {
        let settings = self.config.detection_for(language).clone();
        let content_hash = *blake3::hash(text.as_bytes()).as_bytes();
        let record = FileRecord::from_analysis(PROBE_PATH.to_string(), language, content_hash, text.len() as u64, 0, &analysis, &settings);
        let slot = self.files.len() as u32;
        // Built before the scratch record exists, so none of its entries outlive the probe.
        self.index_mut();
        self.files.push(record);
        self.slots.insert(PROBE_PATH.to_string(), slot);
        self.reindex_slot(slot);
        self.edited.insert(slot, Arc::new(analysis.tokens));
        let configured = similarity.map(|similarity| {
            let mut config = self.config.clone();
            config.override_thresholds(None, None, Some(similarity));
            std::mem::replace(&mut self.config, config)
        });
        let pairs = self.clones_of(PROBE_PATH);
        if let Some(configured) = configured {
            self.config = configured;
        }
        self.index_mut().remove_file(slot);
        self.edited.remove(&slot);
        self.slots.remove(PROBE_PATH);
        let record = self.files.pop().expect("the probe's record is the last");
        Probe { record, slot, pairs }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::analysis;
    use crate::config::{Config, DetectionSettings};
    use crate::model::CloneKind;
    use crate::scan::{ScanOptions, scan};

    const ORIGINAL: &str = "def summarize_orders(orders, tax_rate):\n    total = 0\n    count = 0\n    for order in orders:\n        if order.status == \"paid\":\n            total += order.amount * (1 + tax_rate)\n            count += 1\n    average = total / count if count else 0\n    return {\"total\": round(total, 2), \"count\": count, \"average\": average}\n";

    fn live_index(dir: &Path) -> LiveIndex {
        let config = Config { detection: DetectionSettings { min_lines: 5, min_tokens: 30, ..DetectionSettings::default() }, ..Config::default() };
        std::fs::write(dir.join("orders.py"), ORIGINAL).expect("write");
        let outcome = scan(ScanOptions { root: dir.to_path_buf(), config: config.clone(), use_index: false, progress: None, team: None }).expect("scan");
        LiveIndex::new(dir, config, outcome.files)
    }

    fn probe(live: &mut LiveIndex, text: &str) -> Probe {
        live.probe(Language::Python, text, analysis::analyze(Language::Python, text), None)
    }

    #[test]
    fn a_probe_finds_near_copies_and_leaves_the_index_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut live = live_index(dir.path());
        let files_before = live.files().to_vec();
        let near_miss = ORIGINAL.replace("summarize_orders", "sum_refunds").replace("order", "refund").replace("count += 1", "count += 1\n            audit(refund)");
        let found = probe(&mut live, &near_miss);
        assert_eq!(found.pairs.len(), 1, "{:?}", found.pairs);
        assert_eq!(found.pairs[0].kind, CloneKind::T3);
        assert_eq!(found.slot, 1);
        assert_eq!(found.record.units.len(), 1);
        assert_eq!(live.files(), &files_before[..]);
        assert!(live.slot(PROBE_PATH).is_none());
        assert!(live.clones_of("orders.py").is_empty(), "the probe left nothing behind");
        // The same question twice has the same answer.
        assert_eq!(probe(&mut live, &near_miss).pairs, found.pairs);
    }

    #[test]
    fn unrelated_text_finds_nothing_and_a_lower_threshold_only_applies_to_its_probe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut live = live_index(dir.path());
        let unrelated = "def render_rows(rows, width):\n    lines = []\n    for row in rows:\n        if row.visible:\n            cells = [str(cell).ljust(width) for cell in row.cells]\n            lines.append(\" | \".join(cells))\n    header = \"-\" * (width * len(lines))\n    return \"\\n\".join([header] + lines + [header])\n";
        assert!(probe(&mut live, unrelated).pairs.is_empty());
        let text = ORIGINAL.replace("average", "mean");
        let analysis = analysis::analyze(Language::Python, &text);
        live.probe(Language::Python, &text, analysis, Some(0.5));
        assert_eq!(live.config().detection_for(Language::Python).similarity, DetectionSettings::default().similarity);
    }
}
