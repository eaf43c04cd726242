//! The pairs a stored index does not hold: the index keeps near-miss and block pairs, whose
//! verification costs, but not exact (Type-1/2) pairs, which the hash index gives back in
//! milliseconds. A long-running process starting from the stored index recomputes them
//! here, so its first answers include exact copies too.

use super::LiveIndex;
use crate::detect::Detector;
use crate::model::ClonePair;
use crate::scan::ReparsingSource;

impl LiveIndex {
    /// Every pair of the workspace: `stored` (near-miss and block pairs from the index,
    /// mapped to this index's slots) plus the exact pairs, computed now. No file is read.
    pub fn complete_pairs(&self, stored: &[ClonePair]) -> Vec<ClonePair> {
        let clean = vec![false; self.files.len()];
        let source = ReparsingSource { root: &self.root, files: &self.files, fresh: &self.edited, spilled: None, cache: self.disk_tokens.clone() };
        // With nothing dirty, detection reads exact hashes only (everything else is stored).
        let index = self.index.get().unwrap_or(&self.exact);
        let detector = Detector { files: &self.files, dirty: &clean, config: &self.config, tokens: &source, index };
        detector.detect(stored)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, DetectionSettings};
    use crate::live::LiveIndex;
    use crate::model::CloneKind;
    use crate::scan::{ScanOptions, load_stored, scan};

    #[test]
    fn a_stored_index_with_its_exact_pairs_completed_equals_the_scan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = "def summarize_orders(orders, tax_rate):\n    total = 0\n    count = 0\n    for order in orders:\n        if order.status == \"paid\":\n            total += order.amount * (1 + tax_rate)\n            count += 1\n    average = total / count if count else 0\n    return {\"total\": round(total, 2), \"count\": count, \"average\": average}\n";
        std::fs::write(dir.path().join("a.py"), original).expect("write");
        std::fs::write(dir.path().join("b.py"), original.replace("summarize_orders", "sum_orders")).expect("write");
        std::fs::write(dir.path().join("c.py"), original.replace("count += 1", "count += 1\n            log(order)")).expect("write");
        let config = Config { detection: DetectionSettings { min_lines: 5, min_tokens: 30, ..DetectionSettings::default() }, ..Config::default() };
        let outcome = scan(ScanOptions { root: dir.path().to_path_buf(), config: config.clone(), use_index: true, progress: None, team: None }).expect("scan");
        let stored = load_stored(dir.path(), &config).expect("load").expect("stored");
        assert!(stored.pairs.iter().all(|pair| pair.kind == CloneKind::T3), "the index keeps no exact pair");
        let live = LiveIndex::new(dir.path(), config, stored.files);
        let mut completed = live.complete_pairs(&stored.pairs);
        let mut scanned = outcome.pairs.clone();
        let key = |pair: &crate::model::ClonePair| (pair.a, pair.b, pair.kind);
        completed.sort_by_key(key);
        scanned.sort_by_key(key);
        assert_eq!(completed.iter().map(key).collect::<Vec<_>>(), scanned.iter().map(key).collect::<Vec<_>>());
        assert!(completed.iter().any(|pair| pair.kind == CloneKind::T2));
    }
}
