//! A scanned workspace kept in memory for a long-running process (the language server):
//! the file records, the candidate index with its per-file overlay, and the text of files
//! being edited. An edit re-analyses one file and re-indexes it in place; a query computes
//! the clones touching that file against everything else, without a full scan.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;

use crate::analysis::{self, FileTokens};
use crate::candidates::CandidateIndex;
use crate::config::Config;
use crate::detect::{Detector, NearMissMemo};
use crate::index::Index;
use crate::lang::Language;
use crate::model::{ClonePair, FileRecord};

use crate::scan::{ReparsingSource, TokenCache, token_cache_of};

mod complete;
mod probe;
#[cfg(test)]
mod reuse_tests;
mod warm;
pub use probe::Probe;
pub use warm::TokenWarmup;

/// Tokens of unchanged files kept for verifying an edited file's candidates: a long-running
/// process keeps a small working set (about 10 MB), a batch scan a larger one.
const LIVE_TOKEN_CACHE: u64 = 1_000_000;

pub struct LiveIndex {
    root: PathBuf,
    config: Config,
    /// Indexed by a stable slot: a file keeps its slot across edits; a removed file keeps
    /// an empty record so other slots do not move.
    files: Vec<FileRecord>,
    slots: HashMap<String, u32>,
    /// The candidate index, built on first need from the current records when the live
    /// index started from a stored one (`LiveIndex::from_stored`).
    index: OnceLock<CandidateIndex>,
    /// Exact hashes only: all that completing a stored index's pairs needs, built at once
    /// by `from_stored` (empty otherwise). Read only while `index` is not built yet.
    exact: CandidateIndex,
    /// Token streams of files whose current text came from an editor, not from disk.
    edited: FxHashMap<u32, Arc<FileTokens>>,
    disk_tokens: TokenCache,
    /// What the units of each edited file found in its last `clones_of_edited`, with the
    /// content of every other edited file then: it is taken over only while they hold the
    /// same content (an edit undone counts as none), and any other change lets all go.
    memos: FxHashMap<u32, (NearMissMemo, EditedContents)>,
}

/// The content hash of each edited file, by slot, sorted.
type EditedContents = Vec<(u32, [u8; 32])>;

impl LiveIndex {
    /// Starts from a scan's file records (e.g. `ScanOutcome::files`).
    pub fn new(root: &Path, config: Config, files: Vec<FileRecord>) -> Self {
        let index = CandidateIndex::build(&files, true);
        LiveIndex::with(root, config, files, OnceLock::from(index), CandidateIndex::default())
    }

    /// Starts from a stored index's records, answering at once: only exact hashes are
    /// indexed now; the candidate tables an edit or a query needs (about a quarter of a
    /// second on a large workspace) are built on first need.
    pub fn from_stored(root: &Path, config: Config, files: Vec<FileRecord>) -> Self {
        let exact = CandidateIndex::build(&files, false);
        LiveIndex::with(root, config, files, OnceLock::new(), exact)
    }

    fn with(root: &Path, config: Config, files: Vec<FileRecord>, index: OnceLock<CandidateIndex>, exact: CandidateIndex) -> Self {
        let slots = files.iter().enumerate().map(|(slot, file)| (file.path.clone(), slot as u32)).collect();
        LiveIndex {
            root: root.to_path_buf(),
            config,
            files,
            slots,
            index,
            exact,
            edited: FxHashMap::default(),
            disk_tokens: token_cache_of(LIVE_TOKEN_CACHE),
            memos: FxHashMap::default(),
        }
    }

    /// The candidate index, built now if it was not yet. Every path that changes the live
    /// index builds it first (`index_mut`), with the sketches held again.
    fn index(&self) -> &CandidateIndex {
        self.index.get_or_init(|| {
            if self.files.iter().any(|file| file.units.iter().any(|unit| unit.sketch.is_none())) {
                tracing::warn!("candidate tables built without the sketches the index holds: close copies may be missed");
            }
            CandidateIndex::build(&self.files, true)
        })
    }

    /// The candidate index for a change; built first from the records as they are (with
    /// their sketches read back), so the change then goes into its overlay.
    fn index_mut(&mut self) -> &mut CandidateIndex {
        // Whatever changes the index may change any unit's candidates; an edit takes them
        // back (`update_analysis`: the next detection tells what changed).
        self.memos.clear();
        if self.index.get().is_none() {
            self.hold_sketches();
        }
        self.index();
        self.index.get_mut().expect("built just above")
    }

    /// Re-indexes the file in `slot` from its current record.
    fn reindex_slot(&mut self, slot: u32) {
        self.index_mut();
        let index = self.index.get_mut().expect("built just above");
        index.update_file(slot, &self.files[slot as usize]);
    }

    /// Lets go of the sketches of the records the index at the root holds as they are (every
    /// file whose text came from disk, not from an editor): a third of a record's memory,
    /// which only the candidate tables read, and those are built on first need. Call it
    /// only when the index was just written from these records or they were read from it.
    pub fn forget_sketches(&mut self) {
        self.memos.clear();
        // The records are copied rather than changed in place: a sketch freed between the
        // unit's other allocations, which stay, would leave no page free to give back.
        let records = std::mem::take(&mut self.files);
        self.files = records
            .iter()
            .enumerate()
            .map(|(slot, record)| if self.edited.contains_key(&(slot as u32)) { record.clone() } else { without_sketches(record) })
            .collect();
    }

    /// Gives every unit its sketch back (see [`LiveIndex::forget_sketches`]): read from the
    /// index, else sketched again from the file on disk when it still holds the recorded
    /// text. Returns how many units are left without one: their file changed on disk and in
    /// the index since it was read (the file watcher re-reads it).
    pub fn hold_sketches(&mut self) -> usize {
        self.memos.clear();
        let missing = |files: &[FileRecord]| files.iter().map(|file| file.units.iter().filter(|unit| unit.sketch.is_none()).count()).sum::<usize>();
        let before = missing(&self.files);
        if before == 0 {
            return 0;
        }
        let started = std::time::Instant::now();
        let from_index = if Index::path_for(&self.root).is_file() {
            match Index::open(&self.root).and_then(|(index, _)| index.load_sketches(&mut self.files)) {
                Ok(filled) => filled,
                Err(error) => {
                    tracing::warn!("sketches could not be read back from the index: {error}");
                    0
                }
            }
        } else {
            0
        };
        let mut from_disk = 0;
        if from_index < before {
            for record in self.files.iter_mut().filter(|record| record.units.iter().any(|unit| unit.sketch.is_none())) {
                from_disk += sketch_from_disk(&self.root, &self.config, record);
            }
        }
        let left = before - from_index - from_disk;
        tracing::debug!(units = before, from_index, from_disk, left, elapsed_ms = started.elapsed().as_millis() as u64, "sketches read back");
        if left > 0 {
            tracing::warn!("{left} units have no sketch: their files changed since they were indexed");
        }
        left
    }

    /// Whether the candidate tables exist yet (a live index from a stored one builds them
    /// on first need).
    pub fn candidate_tables_built(&self) -> bool {
        self.index.get().is_some()
    }

    pub fn files(&self) -> &[FileRecord] {
        &self.files
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn slot(&self, path: &str) -> Option<u32> {
        self.slots.get(path).copied()
    }

    /// Re-analyses `path` from the given text (unsaved editor text wins over the disk) and
    /// re-indexes it. Returns its slot.
    pub fn update_text(&mut self, path: &str, language: Language, text: &str) -> u32 {
        let analysis = analysis::analyze(language, text);
        self.update_analysis(path, language, text, analysis)
    }

    /// Like [`LiveIndex::update_text`], for an analysis the caller made from `text` (the
    /// language server parses incrementally, reusing the previous tree).
    pub fn update_analysis(&mut self, path: &str, language: Language, text: &str, analysis: analysis::Analysis) -> u32 {
        let started = std::time::Instant::now();
        let settings = self.config.detection_for(language);
        let content_hash = *blake3::hash(text.as_bytes()).as_bytes();
        let previous = self.slots.get(path).map(|&slot| &self.files[slot as usize]);
        let record = FileRecord::from_analysis_reusing(path.to_string(), language, content_hash, text.len() as u64, 0, &analysis, settings, previous);
        let fingerprinted = started.elapsed();
        // The memos outlive an edit: the next detection of a file tells what changed in it,
        // and the other files' contents whether its memo still holds.
        let memos = std::mem::take(&mut self.memos);
        let slot = match self.slots.get(path) {
            Some(&slot) => {
                self.files[slot as usize] = record;
                slot
            }
            None => {
                self.files.push(record);
                let slot = (self.files.len() - 1) as u32;
                self.slots.insert(path.to_string(), slot);
                slot
            }
        };
        self.reindex_slot(slot);
        self.memos = memos;
        self.edited.insert(slot, Arc::new(analysis.tokens));
        self.disk_tokens.invalidate(&slot);
        tracing::debug!(path, fingerprint_ms = fingerprinted.as_secs_f64() * 1e3, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "file re-indexed");
        slot
    }

    /// Forgets a deleted file: it leaves the index and every answer.
    pub fn remove(&mut self, path: &str) {
        self.memos.clear();
        let Some(&slot) = self.slots.get(path) else { return };
        self.index_mut().remove_file(slot);
        let record = &mut self.files[slot as usize];
        record.units.clear();
        record.winnows.clear();
        self.edited.remove(&slot);
        self.disk_tokens.invalidate(&slot);
    }

    /// Every clone pair with at least one side in `path`, computed now.
    pub fn clones_of(&self, path: &str) -> Vec<ClonePair> {
        let Some(slot) = self.slot(path) else { return Vec::new() };
        let mut dirty = vec![false; self.files.len()];
        dirty[slot as usize] = true;
        let source = ReparsingSource { root: &self.root, files: &self.files, fresh: &self.edited, spilled: None, cache: self.disk_tokens.clone() };
        let detector = Detector { files: &self.files, dirty: &dirty, config: &self.config, tokens: &source, index: self.index() };
        detector.detect_dirty()
    }

    /// [`LiveIndex::clones_of`] for a file whose text came from an editor, reusing what its
    /// units found last time when only this file changed since: the units an edit left
    /// alone are not verified again (see `detect::reuse`). The answer is the same.
    pub fn clones_of_edited(&mut self, path: &str) -> Vec<ClonePair> {
        let Some(slot) = self.slot(path) else { return Vec::new() };
        let Some(tokens) = self.edited.get(&slot).cloned() else { return self.clones_of(path) };
        let others = self.other_edited_contents(slot);
        let previous = self.memos.remove(&slot).filter(|(_, then)| *then == others).map(|(memo, _)| memo);
        let mut dirty = vec![false; self.files.len()];
        dirty[slot as usize] = true;
        let source = ReparsingSource { root: &self.root, files: &self.files, fresh: &self.edited, spilled: None, cache: self.disk_tokens.clone() };
        let detector = Detector { files: &self.files, dirty: &dirty, config: &self.config, tokens: &source, index: self.index() };
        if crate::trace::T3Trace::get().is_some() {
            // A trace records every verdict: none is taken over.
            return detector.detect_dirty();
        }
        let started = std::time::Instant::now();
        let (pairs, memo) = detector.detect_file_reusing(slot, tokens, previous.as_ref());
        tracing::debug!(path, pairs = pairs.len(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "clones of an edited file");
        self.memos.insert(slot, (memo, others));
        pairs
    }

    /// The content of every edited file but `slot`, by slot.
    fn other_edited_contents(&self, slot: u32) -> EditedContents {
        let mut contents: EditedContents =
            self.edited.keys().filter(|&&other| other != slot).map(|&other| (other, self.files[other as usize].content_hash)).collect();
        contents.sort_unstable();
        contents
    }

    /// How many units of `path` took over their earlier pairs in its last
    /// `clones_of_edited`, of how many.
    pub fn units_reused(&self, path: &str) -> Option<(usize, usize)> {
        self.memos.get(&self.slot(path)?).map(|(memo, _)| memo.reused())
    }
}

/// A copy of `record` whose units hold no sketch (field by field: `..unit.clone()` would copy
/// every sketch first).
fn without_sketches(record: &FileRecord) -> FileRecord {
    let units = record
        .units
        .iter()
        .map(|unit| crate::model::UnitRecord {
            name: unit.name.clone(),
            kind: unit.kind.clone(),
            start_line: unit.start_line,
            end_line: unit.end_line,
            start_byte: unit.start_byte,
            end_byte: unit.end_byte,
            token_start: unit.token_start,
            token_end: unit.token_end,
            nesting: unit.nesting,
            parent: unit.parent,
            hashes: unit.hashes,
            sketch: None,
            grams: unit.grams.clone(),
            used_names: unit.used_names.clone(),
            bound: unit.bound.clone(),
        })
        .collect();
    FileRecord {
        path: record.path.clone(),
        language: record.language,
        content_hash: record.content_hash,
        size: record.size,
        mtime_ns: record.mtime_ns,
        lines: record.lines,
        tokens: record.tokens,
        has_syntax_errors: record.has_syntax_errors,
        units,
        winnows: record.winnows.clone(),
    }
}

/// Sketches the units of `record` that have none from its file on disk, when the file still
/// holds the recorded text (same content hash) and the unit is the one recorded. Returns how
/// many units got one.
fn sketch_from_disk(root: &Path, config: &Config, record: &mut FileRecord) -> usize {
    let Ok(bytes) = std::fs::read(root.join(&record.path)) else { return 0 };
    if *blake3::hash(&bytes).as_bytes() != record.content_hash {
        return 0;
    }
    let text = crate::scan::decode(bytes, &record.path, &mut Vec::new());
    let analysis = analysis::analyze(record.language, &text);
    let fresh = FileRecord::from_analysis(record.path.clone(), record.language, record.content_hash, record.size, record.mtime_ns, &analysis, config.detection_for(record.language));
    let mut filled = 0;
    for (unit, fresh) in record.units.iter_mut().zip(fresh.units) {
        if unit.sketch.is_none() && unit.hashes.t1 == fresh.hashes.t1 && (unit.token_start, unit.token_end) == (fresh.token_start, fresh.token_end) {
            unit.sketch = fresh.sketch;
            filled += 1;
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectionSettings;
    use crate::scan::{ScanOptions, scan};

    const ORIGINAL: &str = "def summarize_orders(orders, tax_rate):\n    total = 0\n    count = 0\n    for order in orders:\n        if order.status == \"paid\":\n            total += order.amount * (1 + tax_rate)\n            count += 1\n    average = total / count if count else 0\n    return {\"total\": round(total, 2), \"count\": count, \"average\": average}\n";
    const OTHER: &str = "def render_rows(rows, width):\n    lines = []\n    for row in rows:\n        if row.visible:\n            cells = [str(cell).ljust(width) for cell in row.cells]\n            lines.append(\" | \".join(cells))\n    header = \"-\" * (width * len(lines))\n    return \"\\n\".join([header] + lines + [header])\n";

    fn config() -> Config {
        Config { detection: DetectionSettings { min_lines: 5, min_tokens: 30, ..DetectionSettings::default() }, ..Config::default() }
    }

    fn live_index(dir: &Path) -> LiveIndex {
        std::fs::write(dir.join("orders.py"), ORIGINAL).expect("write");
        std::fs::write(dir.join("rows.py"), OTHER).expect("write");
        let outcome = scan(ScanOptions { root: dir.to_path_buf(), config: config(), use_index: false, progress: None, team: None }).expect("scan");
        assert!(outcome.pairs.is_empty());
        LiveIndex::new(dir, config(), outcome.files)
    }

    #[test]
    fn an_edit_that_copies_code_is_found_and_undoing_it_clears_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut live = live_index(dir.path());
        // Unsaved text: the disk still holds the unrelated function.
        live.update_text("rows.py", Language::Python, &ORIGINAL.replace("summarize_orders", "sum_paid"));
        let pairs = live.clones_of("rows.py");
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].kind, crate::model::CloneKind::T2);
        let files = live.files();
        let paths: Vec<&str> = [pairs[0].a.file, pairs[0].b.file].iter().map(|&f| files[f as usize].path.as_str()).collect();
        assert!(paths.contains(&"orders.py") && paths.contains(&"rows.py"));
        assert_eq!(live.clones_of("orders.py").len(), 1, "the clean side sees the edited copy too");

        live.update_text("rows.py", Language::Python, OTHER);
        assert!(live.clones_of("rows.py").is_empty());
        assert!(live.clones_of("orders.py").is_empty());
    }

    #[test]
    fn an_edit_re_fingerprints_to_the_same_record_as_a_fresh_analysis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut live = live_index(dir.path());
        let both = format!("{ORIGINAL}\n\n{OTHER}");
        live.update_text("rows.py", Language::Python, &both);
        let edited = both.replace("lines = []", "lines = [header_line()]");
        live.update_text("rows.py", Language::Python, &edited);
        let slot = live.slot("rows.py").expect("slot") as usize;
        let analysis = analysis::analyze(Language::Python, &edited);
        let fresh = FileRecord::from_analysis("rows.py".into(), Language::Python, *blake3::hash(edited.as_bytes()).as_bytes(), edited.len() as u64, 0, &analysis, &config().detection);
        assert_eq!(live.files()[slot], fresh);
    }

    #[test]
    fn a_live_index_from_stored_records_answers_like_one_built_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = live_index(dir.path()).files().to_vec();
        let near_miss = ORIGINAL.replace("count += 1", "count += 1\n            print(order)");
        let mut answers = Vec::new();
        for mut live in [LiveIndex::new(dir.path(), config(), files.clone()), LiveIndex::from_stored(dir.path(), config(), files)] {
            assert!(live.complete_pairs(&[]).is_empty());
            live.update_text("new.py", Language::Python, &near_miss);
            let found = live.clones_of("new.py");
            live.remove("orders.py");
            answers.push((found, live.clones_of("new.py")));
        }
        let (built_at_once, built_on_need) = (&answers[0], &answers[1]);
        assert_eq!(built_at_once.0.len(), 1, "the near-miss copy is found");
        assert_eq!(built_at_once, built_on_need);
        assert!(built_on_need.1.is_empty());
    }

    #[test]
    fn near_miss_edits_and_new_files_are_found_and_removed_files_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut live = live_index(dir.path());
        let near_miss = ORIGINAL.replace("count += 1", "count += 1\n            print(order)");
        live.update_text("new.py", Language::Python, &near_miss);
        let pairs = live.clones_of("new.py");
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].kind, crate::model::CloneKind::T3);
        live.remove("orders.py");
        assert!(live.clones_of("new.py").is_empty());
    }

    /// A workspace with a copy, a near-miss copy and an unrelated file, scanned with its
    /// index written.
    fn scanned(dir: &Path) {
        std::fs::write(dir.join("orders.py"), ORIGINAL).expect("write");
        std::fs::write(dir.join("rows.py"), OTHER).expect("write");
        std::fs::write(dir.join("copy.py"), ORIGINAL.replace("count += 1", "count += 1\n            print(order)")).expect("write");
        scan(ScanOptions { root: dir.to_path_buf(), config: config(), use_index: true, progress: None, team: None }).expect("scan");
    }

    fn units(files: &[FileRecord]) -> impl Iterator<Item = &crate::model::UnitRecord> {
        files.iter().flat_map(|file| &file.units)
    }

    #[test]
    fn records_read_without_sketches_answer_an_edit_as_whole_ones_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        scanned(dir.path());
        let whole = crate::scan::load_stored(dir.path(), &config()).expect("load").expect("stored");
        let lean = crate::scan::load_stored_without_sketches(dir.path(), &config()).expect("load").expect("stored");
        assert!(units(&whole.files).all(|unit| unit.sketch.is_some()));
        assert!(units(&lean.files).all(|unit| unit.sketch.is_none()), "no sketch is read");
        assert_eq!(whole.pairs, lean.pairs);
        let edited = ORIGINAL.replace("summarize_orders", "sum_paid").replace("total = 0", "total = 0.0");
        let mut answers = Vec::new();
        for files in [whole.files.clone(), lean.files] {
            let mut live = LiveIndex::from_stored(dir.path(), config(), files);
            live.update_text("new.py", Language::Python, &edited);
            answers.push(live.clones_of("new.py"));
            // Read back from the index when the tables were built for the edit.
            assert_eq!(live.files().iter().filter(|file| file.path != "new.py").cloned().collect::<Vec<_>>(), whole.files);
        }
        assert_eq!(answers[0].len(), 2, "both copies are found: {:?}", answers[0]);
        assert_eq!(answers[0], answers[1]);
    }

    #[test]
    fn sketches_the_index_no_longer_holds_are_sketched_again_from_unchanged_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        scanned(dir.path());
        let whole = crate::scan::load_stored(dir.path(), &config()).expect("load").expect("stored");
        let lean = crate::scan::load_stored_without_sketches(dir.path(), &config()).expect("load").expect("stored");
        std::fs::remove_dir_all(dir.path().join(crate::index::INDEX_DIR)).expect("remove the index");
        // One file changed on disk since: its units stay without a sketch, and are counted.
        std::fs::write(dir.path().join("rows.py"), OTHER.replace("lines = []", "lines = [0]")).expect("write");
        let mut live = LiveIndex::from_stored(dir.path(), config(), lean.files);
        let rows_units = live.files().iter().find(|file| file.path == "rows.py").map_or(0, |file| file.units.len());
        assert!(rows_units > 0);
        assert_eq!(live.hold_sketches(), rows_units);
        for (held, expected) in live.files().iter().zip(&whole.files).filter(|(file, _)| file.path != "rows.py") {
            assert_eq!(held, expected, "sketched again from {}", held.path);
        }
    }

    #[test]
    fn forgotten_sketches_are_read_back_and_an_edited_file_keeps_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        scanned(dir.path());
        let outcome = scan(ScanOptions { root: dir.path().to_path_buf(), config: config(), use_index: true, progress: None, team: None }).expect("scan");
        let mut live = LiveIndex::from_stored(dir.path(), config(), outcome.files.clone());
        live.update_text("rows.py", Language::Python, &OTHER.replace("lines = []", "lines = [0]"));
        live.forget_sketches();
        let rows = live.slot("rows.py").expect("slot") as usize;
        for (slot, file) in live.files().iter().enumerate() {
            assert!(file.units.iter().all(|unit| unit.sketch.is_some() == (slot == rows)), "{}", file.path);
        }
        assert_eq!(live.hold_sketches(), 0);
        for (held, scanned) in live.files().iter().zip(&outcome.files).filter(|(file, _)| file.path != "rows.py") {
            assert_eq!(held, scanned);
        }
    }
}
