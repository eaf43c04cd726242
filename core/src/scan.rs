//! A whole scan: walk the root, re-parse only files whose content changed since the index
//! last saw them, detect clones, cluster patterns, and save the index. Plain data in, plain
//! data out; the command line and the language server render it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::analysis::{self, FileTokens};
use crate::candidates::CandidateIndex;
use crate::config::Config;
use crate::detect::{self, RangeTokens, TokenSource};
use crate::index::Index;
use crate::lang::Language;
use crate::model::{ClonePair, FileRecord};
use crate::pattern::{self, Pattern, PatternLabel};
use crate::pattern_store::{self, StoredPatterns};
use crate::spill::{self, HeldTokens, IN_MEMORY_TOKENS, SpillSlot, TokenSpill};
use crate::team_cache::{self, FileEntries, TeamCache, TeamCacheStats};
use crate::walk::{self, FoundFile, SkipReason};

/// Progress events, for a progress bar or `$/progress`.
#[derive(Clone, Copy, Debug)]
pub enum ScanProgress {
    Discovered { files: usize },
    Parsed { done: usize, total: usize },
    Detecting,
}

pub struct ScanOptions<'a> {
    pub root: PathBuf,
    pub config: Config,
    /// Read and write `.periodic/index.db`; `false` scans without writing anything.
    pub use_index: bool,
    pub progress: Option<&'a (dyn Fn(ScanProgress) + Sync)>,
    /// The team's analysis cache: files a teammate analysed are not parsed again, and a tree
    /// a teammate scanned is not detected again (`team_cache`).
    pub team: Option<&'a dyn TeamCache>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LanguageStats {
    pub files: u64,
    pub lines: u64,
    pub units: u64,
    pub duplicated_lines: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanStats {
    pub files: u64,
    pub lines: u64,
    pub tokens: u64,
    pub units: u64,
    pub files_parsed: u64,
    pub files_with_syntax_errors: u64,
    pub skipped: BTreeMap<SkipReason, u64>,
    pub duplicated_lines: u64,
    pub languages: BTreeMap<String, LanguageStats>,
    pub duration_ms: u64,
    /// What the team cache did, when one was given.
    pub team_cache: Option<TeamCacheStats>,
}

impl ScanStats {
    pub fn duplication_percent(&self) -> f64 {
        if self.lines == 0 { 0.0 } else { self.duplicated_lines as f64 * 100.0 / self.lines as f64 }
    }
}

pub struct ScanOutcome {
    pub root: PathBuf,
    pub files: Vec<FileRecord>,
    pub pairs: Vec<ClonePair>,
    pub patterns: Vec<Pattern>,
    pub stats: ScanStats,
    pub warnings: Vec<String>,
    /// When the walk found no file: how many ignore files (`.gitignore`, ...) hid. 0 with
    /// `no_ignore`, and whenever some file was found.
    pub hidden_by_ignore_files: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: no such file or directory")]
    Missing { path: PathBuf },
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
}

enum FileOutcome {
    /// The index's record stands; the file's modification time as now seen. The record is
    /// moved out of the loaded index afterwards rather than cloned here: on the Linux tree a
    /// copy of every record was 400 MB of an unchanged re-scan's peak.
    Clean(i64),
    /// Analysed this run: parsed here (`true`) or taken from a teammate's entry.
    Parsed(FileRecord, HeldTokens, bool),
    Skipped(SkipReason),
}

/// The team cache as the per-file step sees it.
struct TeamSide<'e, 't, 'c> {
    /// The answers for the files of this batch.
    entries: &'e FileEntries,
    /// Where parsed files' entries go (`None`: nowhere, so none is encoded).
    uploads: Option<&'t dyn TeamCache>,
    counts: &'c TeamCounts,
}

/// What the team cache gave and took over a whole scan.
#[derive(Default)]
struct TeamCounts {
    used: AtomicUsize,
    refused: AtomicUsize,
    offered: AtomicUsize,
}

/// Files in the first team-cache lookup: few, so that the first files are analysed as soon
/// as possible; later lookups double up to [`LOOKUP_BATCH_FILES`].
const FIRST_LOOKUP_BATCH_FILES: usize = 64;
const LOOKUP_BATCH_FILES: usize = 2048;

/// The ranges of files asked for together, in walk order.
fn lookup_batches(files: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let mut start = 0;
    let mut size = FIRST_LOOKUP_BATCH_FILES;
    std::iter::from_fn(move || {
        (start < files).then(|| {
            let range = start..(start + size).min(files);
            start = range.end;
            size = (size * 2).min(LOOKUP_BATCH_FILES);
            range
        })
    })
}

/// The key under which stored fingerprints stay valid: detection settings and engine version.
fn settings_key(config: &Config) -> String {
    format!("engine-4|{}|{:?}|{:?}", env!("CARGO_PKG_VERSION"), config.detection, config.per_language)
}

/// Pattern names from `.periodic.toml` win over names stored in the index.
fn add_configured_labels(labels: &mut BTreeMap<String, PatternLabel>, config: &Config) {
    for (id, setting) in &config.patterns {
        labels.insert(id.clone(), PatternLabel { name: setting.name.clone(), note: setting.note.clone() });
    }
}

/// Names given under the ids of earlier versions (`P-` and 8 hex digits) and found again
/// through `Pattern::legacy_id`: those in the index move to the current id; those in
/// `.periodic.toml` still apply, and a warning says which table to rename (the file is the
/// user's and is not rewritten).
fn rekey_legacy_labels(
    index: Option<&Index>,
    patterns: &[pattern::Pattern],
    labels: &BTreeMap<String, PatternLabel>,
    config: &Config,
    warnings: &mut Vec<String>,
) -> Result<(), ScanError> {
    for (legacy, id) in pattern::legacy_labels(patterns, labels) {
        if config.patterns.contains_key(legacy) {
            warnings.push(format!(
                ".periodic.toml: [patterns.\"{legacy}\"] names pattern {id} by its former id; rename the table to [patterns.\"{id}\"] (the name applies meanwhile)"
            ));
        } else if let Some(index) = index
            && index.rekey_label(legacy, id)?
        {
            tracing::info!("pattern name moved from the former id {legacy} to {id}");
        }
    }
    Ok(())
}

/// What the index holds for a root, ready to answer from before any re-scan.
pub struct StoredState {
    pub files: Vec<FileRecord>,
    /// Index into `files`.
    pub pairs: Vec<ClonePair>,
    pub labels: BTreeMap<String, PatternLabel>,
    /// The last scan's patterns, to be restored once the pairs are complete
    /// ([`StoredPatterns::restore`]).
    pub patterns: Option<StoredPatterns>,
}

/// Loads the last scan of `root` from its index without touching the files: `None` when
/// there is no index, or it was made with other detection settings.
pub fn load_stored(root: &Path, config: &Config) -> Result<Option<StoredState>, ScanError> {
    load_stored_with(root, config, true)
}

/// [`load_stored`] without the units' sketches (`UnitRecord::sketch` is `None`), for a
/// live index that reads them back when it builds its candidate tables
/// (`LiveIndex::hold_sketches`): faster to read and a third less to hold.
pub fn load_stored_without_sketches(root: &Path, config: &Config) -> Result<Option<StoredState>, ScanError> {
    load_stored_with(root, config, false)
}

/// The index of `root` when it exists and was made with these detection settings.
fn index_with_settings(root: &Path, config: &Config) -> Result<Option<Index>, ScanError> {
    if !Index::path_for(root).is_file() {
        return Ok(None);
    }
    let (index, _) = Index::open(root)?;
    Ok((index.meta("settings")?.as_deref() == Some(settings_key(config).as_str())).then_some(index))
}

fn load_stored_with(root: &Path, config: &Config, sketches: bool) -> Result<Option<StoredState>, ScanError> {
    let started = Instant::now();
    let Some(index) = index_with_settings(root, config)? else { return Ok(None) };
    let (files, pairs) = index.load_state(sketches)?;
    let mut labels = index.load_labels()?;
    add_configured_labels(&mut labels, config);
    let patterns = index.load_patterns()?;
    tracing::debug!(files = files.len(), pairs = pairs.len(), sketches, elapsed_ms = started.elapsed().as_millis() as u64, "stored index read");
    Ok(Some(StoredState { files, pairs, labels, patterns }))
}

/// Whether a scan of `root` now would find what its index holds: the same settings, the same
/// files, each with the size and modification time it had (what a scan trusts), and no new
/// file it would analyse. A process answering from the index (`load_stored`) has nothing to
/// re-index then: what it holds is what the scan would give.
pub fn index_is_current(root: &Path, config: &Config) -> Result<bool, ScanError> {
    let started = Instant::now();
    let Some(index) = index_with_settings(root, config)? else { return Ok(false) };
    let stored = index.file_metadata()?;
    let found = walk::discover(root, config);
    let mut held = 0;
    for file in &found.files {
        let Some(language) = file.language else { continue };
        match stored.get(&file.relative) {
            Some((size, mtime_ns, stored_language)) => {
                if *size != file.size || *mtime_ns != file.mtime_ns || stored_language != language.name() {
                    return Ok(false);
                }
                held += 1;
            }
            // Not in the index: current only if a scan would skip it too.
            None => {
                if file.size > config.max_file_bytes {
                    continue;
                }
                match std::fs::read(&file.path) {
                    Ok(bytes) if walk::classify(&file.relative, &bytes, config.max_file_bytes).is_err() => continue,
                    Err(_) => continue,
                    Ok(_) => return Ok(false),
                }
            }
        }
    }
    let current = held == stored.len();
    tracing::debug!(current, files = held, elapsed_ms = started.elapsed().as_millis() as u64, "index checked against the tree");
    Ok(current)
}

/// The pattern names of `root`: stored in its index, then from its configuration.
pub fn load_labels(root: &Path, config: &Config) -> Result<BTreeMap<String, PatternLabel>, ScanError> {
    let mut labels = if Index::path_for(root).is_file() { Index::open(root)?.0.load_labels()? } else { BTreeMap::new() };
    add_configured_labels(&mut labels, config);
    Ok(labels)
}

/// When each name stored in the index of `root` was given (see [`Index::label_times`]).
pub fn label_times(root: &Path) -> Result<BTreeMap<String, u64>, ScanError> {
    if !Index::path_for(root).is_file() {
        return Ok(BTreeMap::new());
    }
    Ok(Index::open(root)?.0.label_times()?)
}

/// Stores a user-given pattern name (and keeps its note) in the index of `root`.
pub fn save_label(root: &Path, id: &str, label: &PatternLabel) -> Result<(), ScanError> {
    let (index, _) = Index::open(root)?;
    index.set_label(id, label)?;
    Ok(())
}

pub fn scan(options: ScanOptions<'_>) -> Result<ScanOutcome, ScanError> {
    scan_then(options, |_| ()).map(|(outcome, ())| outcome)
}

/// [`scan`], running `while_saving` on the results while the index is being written (a
/// command line renders its report meanwhile). Returns once both are done; a failure to
/// write the index is an error even though `while_saving` ran.
pub fn scan_then<R>(options: ScanOptions<'_>, while_saving: impl FnOnce(&ScanOutcome) -> R) -> Result<(ScanOutcome, R), ScanError> {
    scan_holding(options, IN_MEMORY_TOKENS, while_saving)
}

/// [`scan_then`], holding at most `in_memory_tokens` tokens of parsed files in memory
/// (`spill`).
fn scan_holding<R>(
    options: ScanOptions<'_>,
    in_memory_tokens: u64,
    while_saving: impl FnOnce(&ScanOutcome) -> R,
) -> Result<(ScanOutcome, R), ScanError> {
    let started = Instant::now();
    let root = options.root.clone();
    if !root.exists() {
        return Err(ScanError::Missing { path: root });
    }
    let walk_root = walk::scan_folder(&root);
    let single_file = root.is_file().then(|| root.clone());
    let config = &options.config;
    let mut warnings = Vec::new();
    let mut found = walk::discover(&walk_root, config);
    if let Some(file) = &single_file {
        let name = walk::relative_path(&walk_root, file);
        found.files.retain(|f| f.relative == name);
        found.skipped.retain(|(path, _)| *path == name);
    }
    warnings.append(&mut found.warnings);
    let found_none = found.files.is_empty() && single_file.is_none();
    tracing::debug!(files = found.files.len(), elapsed_ms = started.elapsed().as_millis() as u64, "walk done");
    if let Some(report) = options.progress {
        report(ScanProgress::Discovered { files: found.files.len() });
    }

    let mut index = None;
    let mut previous_files: HashMap<String, FileRecord> = HashMap::new();
    let mut previous_pairs = Vec::new();
    let mut labels: BTreeMap<String, PatternLabel> = BTreeMap::new();
    let key = settings_key(config);
    // A single-file scan sees one file of its folder: saving that as the folder's index
    // would drop every other file from it, so it reads and writes no index.
    if options.use_index && single_file.is_none() {
        let (opened, mut open_warnings) = Index::open(&walk_root)?;
        warnings.append(&mut open_warnings);
        if opened.meta("settings")?.as_deref() == Some(key.as_str()) {
            previous_files = opened.load_files()?.into_iter().map(|f| (f.path.clone(), f)).collect();
            previous_pairs = opened.load_pairs()?;
        }
        labels = opened.load_labels()?;
        index = Some(opened);
    }
    add_configured_labels(&mut labels, config);

    // Files a teammate already analysed: asked for a batch at a time, each batch's answer
    // used while the next one is asked for, so parsing the misses waits for no more than the
    // first (small) batch.
    let team = options.team.filter(|_| single_file.is_none());
    let uploads = team.filter(|team| team.accepts_uploads());
    let team_counts = TeamCounts::default();
    let done = AtomicUsize::new(0);
    let total = found.files.len();
    let spill = TokenSpill::new(spill::in_memory_budget(in_memory_tokens, found.files.iter().map(|file| file.size).sum()));
    let analyse = |files: &[FoundFile], entries: &FileEntries| -> Vec<(FileOutcome, Vec<String>)> {
        let team_side = TeamSide { entries, uploads, counts: &team_counts };
        // One file per rayon job: with rayon's default splitting, a thread could be left
        // with a long sequential run of files that no idle thread may steal from (seen on
        // `large`: one core idle for the last 0.4 s of the parse phase).
        files
            .par_iter()
            .with_max_len(1)
            .map(|file| {
                let result = process_file(file, previous_files.get(&file.relative), config, &spill, &team_side);
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(report) = options.progress
                    && (finished.is_multiple_of(64) || finished == total)
                {
                    report(ScanProgress::Parsed { done: finished, total });
                }
                result
            })
            .collect()
    };
    let mut looked_up = 0;
    let outcomes: Vec<(FileOutcome, Vec<String>)> = match team {
        None => analyse(&found.files, &FileEntries::default()),
        Some(team) => std::thread::scope(|scope| {
            let (answers, answered) = std::sync::mpsc::sync_channel::<(std::ops::Range<usize>, FileEntries)>(1);
            let files = &found.files;
            let previous = &previous_files;
            let asker = scope.spawn(move || {
                let mut asked = 0;
                for range in lookup_batches(files.len()) {
                    let (entries, batch_asked) = prefetch_entries(team, &files[range.clone()], previous, config);
                    asked += batch_asked;
                    if answers.send((range, entries)).is_err() {
                        break;
                    }
                }
                asked
            });
            let mut outcomes = Vec::with_capacity(total);
            // Each batch's entries are let go once its files are analysed: on a very large
            // tree they are hundreds of megabytes.
            for (range, entries) in answered {
                outcomes.extend(analyse(&found.files[range], &entries));
            }
            looked_up = asker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            tracing::debug!(looked_up, hits = team_counts.used.load(Ordering::Relaxed), elapsed_ms = started.elapsed().as_millis() as u64, "team cache asked");
            outcomes
        }),
    };
    let TeamCounts { used, refused, offered } = team_counts;
    let mut offered = offered.into_inner();

    let mut files: Vec<FileRecord> = Vec::with_capacity(total);
    let mut dirty: Vec<bool> = Vec::with_capacity(total);
    let mut parsed_here: Vec<bool> = Vec::with_capacity(total);
    let mut fresh_tokens: FxHashMap<u32, Arc<FileTokens>> = FxHashMap::default();
    let mut spilled_slots: FxHashMap<u32, SpillSlot> = FxHashMap::default();
    let mut skipped: BTreeMap<SkipReason, u64> = BTreeMap::new();
    for (_, reason) in &found.skipped {
        *skipped.entry(*reason).or_default() += 1;
    }
    let previous_count = previous_files.len();
    // A file touched but not changed (a checkout, a copy) keeps its record; its new mtime is
    // written so that the next scan, and the next start from the index, need not hash it.
    let mut mtimes_moved = false;
    for ((outcome, mut file_warnings), found_file) in outcomes.into_iter().zip(&found.files) {
        warnings.append(&mut file_warnings);
        match outcome {
            FileOutcome::Clean(mtime_ns) => {
                let Some(mut record) = previous_files.remove(&found_file.relative) else {
                    unreachable!("a clean outcome comes from a record of the index")
                };
                mtimes_moved |= record.mtime_ns != mtime_ns;
                record.mtime_ns = mtime_ns;
                files.push(record);
                dirty.push(false);
                parsed_here.push(false);
            }
            FileOutcome::Parsed(record, tokens, parsed) => {
                let file = files.len() as u32;
                match tokens {
                    HeldTokens::Memory(tokens) => {
                        fresh_tokens.insert(file, tokens);
                    }
                    HeldTokens::Spilled(slot) => {
                        spilled_slots.insert(file, slot);
                    }
                }
                files.push(record);
                dirty.push(true);
                parsed_here.push(parsed);
            }
            FileOutcome::Skipped(reason) => *skipped.entry(reason).or_default() += 1,
        }
    }
    // What is left are the records of files gone since.
    drop(previous_files);
    let files_changed = dirty.iter().any(|&d| d) || files.len() != previous_count;
    tracing::debug!(files = files.len(), elapsed_ms = started.elapsed().as_millis() as u64, "parse done");
    // The index stores what changed since it was written, whatever detection reuses.
    let changed_for_index = dirty.clone();

    if let Some(report) = options.progress {
        report(ScanProgress::Detecting);
    }
    let positions: HashMap<&str, u32> = files.iter().enumerate().map(|(i, f)| (f.path.as_str(), i as u32)).collect();
    // Consumed: the stored pairs carry both paths as strings (about 100 MB on the Linux tree).
    let mut previous: Vec<ClonePair> = previous_pairs
        .into_iter()
        .filter_map(|stored| {
            let mut pair = stored.pair;
            pair.a.file = *positions.get(stored.path_a.as_str())?;
            pair.b.file = *positions.get(stored.path_b.as_str())?;
            Some(pair)
        })
        .collect();
    // A fresh tree a teammate scanned as it is: their pairs stand for detection here, as a
    // re-scan's stored pairs do, so nothing is detected again.
    let mut snapshot_used = false;
    // Keyed by every path and content: computed only when a snapshot is asked for or offered.
    let fresh_tree = previous_count == 0 && !files.is_empty();
    let snapshot_key = team
        .filter(|_| fresh_tree || (uploads.is_some() && files_changed))
        .map(|_| team_cache::snapshot_key(&key, files.iter().map(|file| (file.path.as_str(), &file.content_hash))));
    if let Some(team) = team
        && let Some(snapshot_key) = snapshot_key
        && fresh_tree
    {
        match team_cache::fetch_snapshot(team, snapshot_key, &files) {
            Ok(Some(pairs)) => {
                previous = pairs;
                dirty.fill(false);
                fresh_tokens.clear();
                spilled_slots.clear();
                snapshot_used = true;
            }
            Ok(None) => {}
            Err(error) => warnings.push(format!("team cache: the stored pairs of this tree were refused ({error}); detected here instead")),
        }
        tracing::debug!(snapshot_used, elapsed_ms = started.elapsed().as_millis() as u64, "team snapshot asked");
    }
    let spilled = Spilled { spill: &spill, slots: &spilled_slots };
    if !spilled_slots.is_empty() {
        tracing::debug!(files = spilled_slots.len(), "token streams spilled to a temporary file");
    }
    let source = ReparsingSource { root: &walk_root, files: &files, fresh: &fresh_tokens, spilled: Some(spilled), cache: token_cache() };
    // Few changed files (a re-scan): index bands and winnows only under their keys.
    let dirty_count = dirty.iter().filter(|&&d| d).count();
    let candidate_index = if dirty_count > 0 && dirty_count * 10 < files.len() {
        CandidateIndex::build_focused(&files, &dirty)
    } else {
        CandidateIndex::build_fixed(&files, dirty_count > 0)
    };
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "candidate index built");
    let pairs = detect::detect_releasing(&files, &dirty, config, &source, candidate_index, &previous);
    drop(previous);
    tracing::debug!(pairs = pairs.len(), elapsed_ms = started.elapsed().as_millis() as u64, "detection done");
    // Patterns need no token streams: let them go before the patterns are built and the
    // index written (on the Linux tree the peak fell there).
    drop(source);
    drop(fresh_tokens);
    drop(spilled_slots);
    drop(spill);
    if let Some(uploads) = uploads
        && let Some(snapshot_key) = snapshot_key
        && files_changed
        && !snapshot_used
    {
        for (key, entry) in team_cache::encode_snapshot(snapshot_key, &files, &pairs) {
            uploads.offer(key, entry);
            offered += 1;
        }
    }

    let mut stats = statistics(&files, &parsed_here, &pairs, skipped, started);
    stats.team_cache = team.map(|_| TeamCacheStats {
        looked_up,
        used: used.into_inner() as u64,
        refused: refused.into_inner() as u64,
        snapshot_used,
        offered: offered as u64,
    });
    let hidden_by_ignore_files = if found_none { walk::count_hidden_by_ignore_files(&walk_root, config) } else { 0 };
    let mut outcome = ScanOutcome { root: walk_root, files, pairs, patterns: Vec::new(), stats, warnings, hidden_by_ignore_files };
    // The index is written on its own thread while the patterns are built and the caller
    // works with the results (renders a report): it needs neither, and on a large tree
    // each takes a few tenths of a second on one core.
    let (index_to_save, mut index) = match index {
        Some(index) if files_changed || mtimes_moved => (Some(index), None),
        index => (None, index),
    };
    let (saved, result) = std::thread::scope(|scope| {
        let saver = index_to_save.map(|mut index| {
            let (files, pairs) = (&outcome.files, &outcome.pairs);
            let (changed, key) = (&changed_for_index, &key);
            scope.spawn(move || {
                let saved = index.save(files, changed, pairs, key);
                (index, saved)
            })
        });
        let root = outcome.root.clone();
        outcome.patterns = pattern::build_patterns(&outcome.files, &outcome.pairs, &labels, &pattern::DiskText { root: &root });
        tracing::debug!(patterns = outcome.patterns.len(), elapsed_ms = started.elapsed().as_millis() as u64, "patterns built");
        // Names under former ids in `.periodic.toml` are reported now; those in the index
        // move once it is written.
        let configured = rekey_legacy_labels(None, &outcome.patterns, &labels, config, &mut outcome.warnings);
        let result = configured.map(|()| while_saving(&outcome));
        let saved = match saver {
            Some(saver) => {
                let (saved_index, saved) = saver.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                index = Some(saved_index);
                saved
            }
            None => Ok(()),
        };
        (saved, result)
    });
    saved?;
    let result = result?;
    rekey_legacy_labels(index.as_ref(), &outcome.patterns, &labels, config, &mut Vec::new())?;
    if let Some(index) = &index {
        keep_patterns(index, &outcome, &labels)?;
    }
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "index saved");
    Ok((outcome, result))
}

/// Keeps the scan's patterns in the index for the next start from it (`pattern_store`),
/// unless the ones kept were built from the same files, pairs and names.
fn keep_patterns(index: &Index, outcome: &ScanOutcome, labels: &BTreeMap<String, PatternLabel>) -> Result<(), ScanError> {
    keep_patterns_in(index, &outcome.files, &outcome.pairs, labels, &outcome.patterns)
}

/// Keeps `patterns`, built from `files`, `pairs` and `labels` as the index of `root` holds
/// them, for the next start from it: a process that loaded the index and had to build its
/// patterns (none kept, or kept by another version) finds nothing to re-index and keeps
/// them itself.
pub fn keep_loaded_patterns(
    root: &Path,
    files: &[FileRecord],
    pairs: &[ClonePair],
    labels: &BTreeMap<String, PatternLabel>,
    patterns: &[Pattern],
) -> Result<(), ScanError> {
    let (index, _) = Index::open(root)?;
    keep_patterns_in(&index, files, pairs, labels, patterns)
}

fn keep_patterns_in(
    index: &Index,
    files: &[FileRecord],
    pairs: &[ClonePair],
    labels: &BTreeMap<String, PatternLabel>,
    patterns: &[Pattern],
) -> Result<(), ScanError> {
    let digest = pattern_store::digest(files, pairs, labels);
    if index.patterns_digest()?.as_deref() == Some(&digest[..]) {
        return Ok(());
    }
    let bytes = pattern_store::encode(files, pairs, patterns);
    index.save_patterns(&StoredPatterns { digest, bytes })?;
    Ok(())
}

fn process_file(
    file: &FoundFile,
    previous: Option<&FileRecord>,
    config: &Config,
    spill: &TokenSpill,
    team: &TeamSide<'_, '_, '_>,
) -> (FileOutcome, Vec<String>) {
    let mut warnings = Vec::new();
    let Some(language) = file.language else { return (FileOutcome::Skipped(SkipReason::UnknownLanguage), warnings) };
    if let Some(previous) = previous
        && unchanged_by_metadata(previous, file, language)
    {
        return (FileOutcome::Clean(file.mtime_ns), warnings);
    }
    if file.size > config.max_file_bytes {
        return (FileOutcome::Skipped(SkipReason::TooLarge), warnings);
    }
    let bytes = match std::fs::read(&file.path) {
        Ok(bytes) => bytes,
        Err(error) => {
            warnings.push(format!("{}: cannot read ({error}); skipped", file.relative));
            return (FileOutcome::Skipped(SkipReason::Unreadable), warnings);
        }
    };
    if let Err(reason) = walk::classify(&file.relative, &bytes, config.max_file_bytes) {
        return (FileOutcome::Skipped(reason), warnings);
    }
    let content_hash = *blake3::hash(&bytes).as_bytes();
    if let Some(previous) = previous
        && unchanged_by_content(previous, &content_hash, language)
    {
        return (FileOutcome::Clean(file.mtime_ns), warnings);
    }
    let text = decode(bytes, &file.relative, &mut warnings);
    let settings = config.detection_for(language);
    let record_of = |analysis: &analysis::Analysis| {
        FileRecord::from_analysis(file.relative.clone(), language, content_hash, file.size, file.mtime_ns, analysis, settings)
    };
    if let Some(entry) = team.entries.get(&content_hash) {
        match team_cache::decode_file(entry, language, &content_hash, &text) {
            Ok(analysis) => {
                team.counts.used.fetch_add(1, Ordering::Relaxed);
                let record = record_of(&analysis);
                return (FileOutcome::Parsed(record, spill.hold(analysis.tokens), false), warnings);
            }
            Err(error) => {
                team.counts.refused.fetch_add(1, Ordering::Relaxed);
                warnings.push(format!("{}: the team cache's analysis was refused ({error}); parsed here", file.relative));
            }
        }
    }
    let analysis = match team.uploads {
        Some(uploads) => {
            let (analysis, sources) = analysis::analyze_with_sources(language, &text);
            if let Some(sources) = sources {
                uploads.offer(content_hash, team_cache::encode_file(language, &content_hash, &analysis, &sources));
                team.counts.offered.fetch_add(1, Ordering::Relaxed);
            }
            analysis
        }
        None => analysis::analyze(language, &text),
    };
    let record = record_of(&analysis);
    (FileOutcome::Parsed(record, spill.hold(analysis.tokens), true), warnings)
}

/// The index's record of a file still holds, judged without reading it.
fn unchanged_by_metadata(previous: &FileRecord, file: &FoundFile, language: Language) -> bool {
    previous.size == file.size && previous.mtime_ns == file.mtime_ns && previous.language == language
}

/// The index's record of a file still holds, judged by the bytes' hash.
fn unchanged_by_content(previous: &FileRecord, content_hash: &[u8; 32], language: Language) -> bool {
    previous.content_hash == *content_hash && previous.language == language
}

/// Asks the team cache for every file of `files` the index cannot vouch for (new, or changed
/// since): one pass reading and hashing them, one lookup of the distinct contents. Returns
/// the hits and how many files were asked for.
fn prefetch_entries(team: &dyn TeamCache, files: &[FoundFile], previous: &HashMap<String, FileRecord>, config: &Config) -> (FileEntries, u64) {
    // On the asking thread alone: on rayon's pool it would queue behind the files being
    // analysed, and the lookup would no longer overlap with them.
    let mut hashes: Vec<[u8; 32]> = files
        .iter()
        .filter_map(|file| {
            let language = file.language?;
            let previous = previous.get(&file.relative);
            if previous.is_some_and(|previous| unchanged_by_metadata(previous, file, language)) || file.size > config.max_file_bytes {
                return None;
            }
            let bytes = std::fs::read(&file.path).ok()?;
            let hash = *blake3::hash(&bytes).as_bytes();
            previous.is_none_or(|previous| !unchanged_by_content(previous, &hash, language)).then_some(hash)
        })
        .collect();
    let files_asked = hashes.len() as u64;
    hashes.sort_unstable();
    hashes.dedup();
    if hashes.is_empty() {
        return (FileEntries::default(), 0);
    }
    let found = team.lookup(&hashes);
    let entries = hashes.iter().zip(found).filter_map(|(hash, entry)| Some((*hash, entry?))).collect();
    (entries, files_asked)
}

/// Source text of a file; invalid UTF-8 is replaced (with a warning) rather than skipped.
pub fn decode(bytes: Vec<u8>, relative: &str, warnings: &mut Vec<String>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|error| {
        warnings.push(format!("{relative}: not valid UTF-8; read with replacement characters"));
        String::from_utf8_lossy(error.as_bytes()).into_owned()
    })
}

/// Cache of token streams re-parsed from disk, weighed in tokens.
pub(crate) type TokenCache = moka::sync::Cache<u32, Arc<FileTokens>>;

pub(crate) fn token_cache() -> TokenCache {
    token_cache_of(8_000_000)
}

/// A token cache holding at most `tokens` tokens (10 bytes each).
pub(crate) fn token_cache_of(tokens: u64) -> TokenCache {
    moka::sync::Cache::builder()
        .weigher(|_: &u32, tokens: &Arc<FileTokens>| tokens.len().try_into().unwrap_or(u32::MAX))
        .max_capacity(tokens)
        .build()
}

/// The tokens of an unchanged file, parsed again from disk; `Err` when the file no longer
/// holds the text whose blake3 is `content_hash`.
pub(crate) fn reparse_tokens(root: &Path, path: &str, language: Language, content_hash: &[u8; 32]) -> Result<Arc<FileTokens>, ()> {
    tracing::trace!(path, "re-parsing an unchanged file for its tokens");
    let bytes = std::fs::read(root.join(path)).map_err(|_| ())?;
    // The file changed since it was indexed: its stored fingerprints no longer apply.
    if *blake3::hash(&bytes).as_bytes() != *content_hash {
        return Err(());
    }
    let text = decode(bytes, path, &mut Vec::new());
    Ok(Arc::new(analysis::analyze(language, &text).tokens))
}

/// Token streams for detection: files parsed this run (or edited) from memory or read
/// back from where the scan spilled them, others re-parsed from disk on demand (only the
/// few a changed file's candidates live in) and cached.
pub(crate) struct ReparsingSource<'a> {
    pub root: &'a Path,
    pub files: &'a [FileRecord],
    pub fresh: &'a FxHashMap<u32, Arc<FileTokens>>,
    pub spilled: Option<Spilled<'a>>,
    pub cache: TokenCache,
}

/// The streams a scan wrote out, by file.
#[derive(Clone, Copy)]
pub(crate) struct Spilled<'a> {
    spill: &'a TokenSpill,
    slots: &'a FxHashMap<u32, SpillSlot>,
}

impl TokenSource for ReparsingSource<'_> {
    fn tokens(&self, file: u32) -> Option<Arc<FileTokens>> {
        if let Some(tokens) = self.fresh.get(&file) {
            return Some(Arc::clone(tokens));
        }
        // A whole spilled stream is read again rather than cached: detection itself reads
        // only ranges of spilled files (`range`), so a cache would hold what no one asks.
        if let Some(spilled) = self.spilled
            && let Some(slot) = spilled.slots.get(&file)
        {
            return spilled.spill.read(slot).map(Arc::new);
        }
        let record = self.files.get(file as usize)?;
        self.cache.try_get_with(file, || reparse_tokens(self.root, &record.path, record.language, &record.content_hash)).ok()
    }

    /// A spilled file's range is read alone, around the cache: verification and block
    /// extension meet files in no useful order, and reading whole streams to cut a unit or
    /// a block from each cost more than the comparison itself.
    fn range(&self, file: u32, start: u32, end: u32) -> Option<RangeTokens> {
        if let Some(spilled) = self.spilled
            && let Some(slot) = spilled.slots.get(&file)
        {
            return spilled.spill.read_range(slot, start, end).map(|tokens| RangeTokens { tokens: Arc::new(tokens), first: start });
        }
        Some(RangeTokens { tokens: self.tokens(file)?, first: 0 })
    }

    fn line(&self, file: u32, token: u32) -> Option<u32> {
        if let Some(spilled) = self.spilled
            && let Some(slot) = spilled.slots.get(&file)
        {
            return spilled.spill.line(slot, token);
        }
        Some(self.tokens(file)?.line(token as usize))
    }
}

fn statistics(
    files: &[FileRecord],
    parsed_here: &[bool],
    pairs: &[ClonePair],
    skipped: BTreeMap<SkipReason, u64>,
    started: Instant,
) -> ScanStats {
    let mut stats = ScanStats { skipped, ..ScanStats::default() };
    let mut per_file_instances: Vec<Vec<crate::model::Instance>> = vec![Vec::new(); files.len()];
    for pair in pairs {
        per_file_instances[pair.a.file as usize].push(pair.a);
        per_file_instances[pair.b.file as usize].push(pair.b);
    }
    for (index, file) in files.iter().enumerate() {
        let duplicated = pattern::covered_lines(&per_file_instances[index]);
        stats.files += 1;
        stats.lines += u64::from(file.lines);
        stats.tokens += u64::from(file.tokens);
        stats.units += file.units.len() as u64;
        stats.files_parsed += u64::from(parsed_here[index]);
        stats.files_with_syntax_errors += u64::from(file.has_syntax_errors);
        stats.duplicated_lines += duplicated;
        let language = stats.languages.entry(file.language.family().to_string()).or_default();
        language.files += 1;
        language.lines += u64::from(file.lines);
        language.units += file.units.len() as u64;
        language.duplicated_lines += duplicated;
    }
    stats.duration_ms = started.elapsed().as_millis() as u64;
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function of about twenty lines; `variant` changes a statement every few lines.
    fn function(name: &str, variant: usize) -> String {
        let mut lines = vec![
            format!("def {name}(orders, tax_rate, limit):"),
            "    total = 0".to_string(),
            "    count = 0".to_string(),
            "    skipped = []".to_string(),
            "    for order in orders:".to_string(),
            "        if order.status != 'paid':".to_string(),
            "            skipped.append(order.id)".to_string(),
            "            continue".to_string(),
            "        amount = order.amount * (1 + tax_rate)".to_string(),
            "        if amount > limit:".to_string(),
            "            amount = limit".to_string(),
            "        total += amount".to_string(),
            "        count += 1".to_string(),
            "    average = total / count if count else 0".to_string(),
            "    report = {'total': round(total, 2), 'count': count}".to_string(),
            "    report['average'] = round(average, 2)".to_string(),
            "    report['skipped'] = sorted(skipped)".to_string(),
            "    return report".to_string(),
        ];
        for edit in 0..variant {
            let line = 2 + (edit * 5) % (lines.len() - 3);
            lines.insert(line, format!("    log.debug('step {edit}', count)"));
        }
        lines.join("\n") + "\n"
    }

    /// A team cache held in memory: what the edge does, without the network.
    #[derive(Default)]
    struct MemoryTeamCache {
        entries: std::sync::Mutex<HashMap<[u8; 32], Vec<u8>>>,
        lookups: AtomicUsize,
        /// Keys asked for by each lookup, in order.
        requests: std::sync::Mutex<Vec<usize>>,
    }

    impl TeamCache for MemoryTeamCache {
        fn lookup(&self, keys: &[[u8; 32]]) -> Vec<Option<Vec<u8>>> {
            self.lookups.fetch_add(keys.len(), Ordering::Relaxed);
            self.requests.lock().expect("not poisoned").push(keys.len());
            let entries = self.entries.lock().expect("not poisoned");
            keys.iter().map(|key| entries.get(key).cloned()).collect()
        }

        fn accepts_uploads(&self) -> bool {
            true
        }

        fn offer(&self, key: [u8; 32], entry: Vec<u8>) {
            self.entries.lock().expect("not poisoned").insert(key, entry);
        }
    }

    /// Pairs and patterns as text: equal results give equal text.
    fn results(outcome: &ScanOutcome) -> String {
        let side = |instance: &crate::model::Instance| {
            let file = &outcome.files[instance.file as usize];
            let name = instance.unit.map(|unit| file.units[unit as usize].name.clone()).unwrap_or_default();
            format!("{}:{}-{}:{name}", file.path, instance.start_line, instance.end_line)
        };
        let mut lines: Vec<String> = outcome
            .pairs
            .iter()
            .map(|pair| format!("{} {} ~ {} {:.4}", pair.kind.as_str(), side(&pair.a), side(&pair.b), pair.similarity))
            .collect();
        lines.sort();
        lines.extend(outcome.patterns.iter().map(|pattern| format!("{} {} {}", pattern.id, pattern.name(), pattern.members.len())));
        lines.join("\n")
    }

    fn write_tree(root: &Path, edited: bool) {
        let block: String = (0..14).map(|line| format!("SETTINGS_{line} = configure('key_{line}', default={line}, cast=int)\n")).collect();
        for file in 0..6 {
            let variant = if edited && file == 2 { 4 } else { file % 3 };
            let source = format!("{}\n\n{}\n\n{block}", function(&format!("summary_{file}"), variant), function("totals", 0));
            std::fs::create_dir_all(root.join("pkg")).expect("folder made");
            std::fs::write(root.join(format!("pkg/module_{file}.py")), source).expect("fixture written");
        }
    }

    #[test]
    fn a_tree_a_teammate_scanned_is_neither_parsed_nor_detected_again_and_gives_the_same_results() {
        let cache = MemoryTeamCache::default();
        let scan_in = |root: &Path, team: Option<&dyn TeamCache>| {
            scan(ScanOptions { root: root.to_path_buf(), config: Config::default(), use_index: true, progress: None, team }).expect("scanned")
        };
        let first = tempfile::tempdir().expect("temporary folder");
        write_tree(first.path(), false);
        let pushed = scan_in(first.path(), Some(&cache));
        let pushed_stats = pushed.stats.team_cache.clone().expect("team stats");
        assert_eq!((pushed.stats.files_parsed, pushed_stats.used, pushed_stats.snapshot_used), (6, 0, false));
        assert!(pushed_stats.offered >= 8, "six files, a snapshot root and its chunk: {pushed_stats:?}");
        assert!(!pushed.pairs.is_empty() && pushed.pairs.iter().any(|pair| pair.kind == crate::model::CloneKind::T3));

        // A fresh clone of the same tree: nothing parsed, nothing detected, same results.
        let clone = tempfile::tempdir().expect("temporary folder");
        write_tree(clone.path(), false);
        let warm = scan_in(clone.path(), Some(&cache));
        let warm_stats = warm.stats.team_cache.clone().expect("team stats");
        assert_eq!((warm.stats.files_parsed, warm_stats.used, warm_stats.refused, warm_stats.snapshot_used), (0, 6, 0, true));
        assert_eq!(results(&warm), results(&pushed));
        // Its index was written whole: a re-scan without the cache parses nothing either and
        // still finds every pair.
        let again = scan_in(clone.path(), None);
        assert_eq!(again.stats.files_parsed, 0);
        assert_eq!(results(&again), results(&pushed));

        // A teammate's tree with one file changed: the other files come from the cache, the
        // changed one is parsed, detection runs, and results equal a cold local scan's.
        let edited = tempfile::tempdir().expect("temporary folder");
        write_tree(edited.path(), true);
        let partial = scan_in(edited.path(), Some(&cache));
        let partial_stats = partial.stats.team_cache.clone().expect("team stats");
        assert_eq!((partial.stats.files_parsed, partial_stats.used, partial_stats.snapshot_used), (1, 5, false));
        let cold = tempfile::tempdir().expect("temporary folder");
        write_tree(cold.path(), true);
        assert_eq!(results(&partial), results(&scan_in(cold.path(), None)));
    }

    #[test]
    fn a_large_tree_is_asked_for_in_growing_batches_and_every_file_comes_from_the_team() {
        let write_many = |root: &Path| {
            for file in 0..200 {
                let source = format!("{}\n\n{}\n", function(&format!("summary_{file}"), file % 3), function(&format!("totals_{file}"), (file + 1) % 3));
                std::fs::write(root.join(format!("module_{file:03}.py")), source).expect("fixture written");
            }
        };
        let scan_in = |root: &Path, team: Option<&dyn TeamCache>| {
            scan(ScanOptions { root: root.to_path_buf(), config: Config::default(), use_index: false, progress: None, team }).expect("scanned")
        };
        let cache = MemoryTeamCache::default();
        let first = tempfile::tempdir().expect("temporary folder");
        write_many(first.path());
        let pushed = scan_in(first.path(), Some(&cache));
        assert_eq!(pushed.stats.files_parsed, 200);
        cache.requests.lock().expect("not poisoned").clear();

        let clone = tempfile::tempdir().expect("temporary folder");
        write_many(clone.path());
        let warm = scan_in(clone.path(), Some(&cache));
        let stats = warm.stats.team_cache.clone().expect("team stats");
        assert_eq!((warm.stats.files_parsed, stats.looked_up, stats.used, stats.refused), (0, 200, 200, 0));
        // The files' lookups come first (a snapshot's follow): the first is small, so that
        // analysing starts early, and the rest ask for each file once.
        let requests = cache.requests.lock().expect("not poisoned").clone();
        let file_requests: Vec<usize> = requests.iter().copied().take_while({
            let mut asked = 0;
            move |&keys| {
                asked += keys;
                asked <= 200
            }
        }).collect();
        assert_eq!(file_requests.iter().sum::<usize>(), 200, "{requests:?}");
        assert!(file_requests.len() >= 3 && file_requests[0] <= FIRST_LOOKUP_BATCH_FILES, "{requests:?}");
        assert_eq!(results(&warm), results(&pushed));
        assert_eq!(results(&warm), results(&scan_in(clone.path(), None)));
    }

    #[test]
    fn a_corrupt_team_entry_is_reported_and_the_file_parsed() {
        let cache = MemoryTeamCache::default();
        let first = tempfile::tempdir().expect("temporary folder");
        write_tree(first.path(), false);
        fn options<'a>(root: &Path, team: &'a dyn TeamCache) -> ScanOptions<'a> {
            ScanOptions { root: root.to_path_buf(), config: Config::default(), use_index: false, progress: None, team: Some(team) }
        }
        let pushed = scan(options(first.path(), &cache)).expect("scanned");
        let damaged_hash = pushed.files[0].content_hash;
        cache.entries.lock().expect("not poisoned").insert(damaged_hash, b"PAF1 damaged".to_vec());
        let second = tempfile::tempdir().expect("temporary folder");
        write_tree(second.path(), false);
        let outcome = scan(options(second.path(), &cache)).expect("scanned");
        let stats = outcome.stats.team_cache.clone().expect("team stats");
        assert_eq!((outcome.stats.files_parsed, stats.used, stats.refused), (1, 5, 1));
        let warning = outcome.warnings.iter().find(|warning| warning.contains("team cache")).expect("the refusal is reported");
        assert!(warning.starts_with(&pushed.files[0].path), "{warning}");
        assert_eq!(results(&outcome), results(&pushed));
    }

    #[test]
    fn a_scan_that_spills_every_stream_finds_what_one_in_memory_finds() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let block: String = (0..14).map(|line| format!("SETTINGS_{line} = configure('key_{line}', default={line}, cast=int)\n")).collect();
        for file in 0..6 {
            let source = format!("{}\n\n{}\n\n{block}", function(&format!("summary_{file}"), file % 3), function("totals", 0));
            std::fs::write(dir.path().join(format!("module_{file}.py")), source).expect("fixture written");
        }
        let scan_with = |in_memory_tokens: u64| {
            let options = ScanOptions { root: dir.path().to_path_buf(), config: Config::default(), use_index: false, progress: None, team: None };
            scan_holding(options, in_memory_tokens, |_| ()).expect("scanned").0
        };
        let in_memory = scan_with(u64::MAX);
        let spilled = scan_with(0);
        let kinds = |outcome: &ScanOutcome| -> Vec<(crate::model::CloneKind, bool)> {
            let mut kinds: Vec<_> = outcome.pairs.iter().map(|pair| (pair.kind, pair.a.unit.is_some())).collect();
            kinds.dedup();
            kinds
        };
        let found = kinds(&in_memory);
        for expected in [(crate::model::CloneKind::T1, true), (crate::model::CloneKind::T3, true), (crate::model::CloneKind::T1, false)] {
            assert!(found.contains(&expected), "the fixture has a {expected:?} pair: {found:?}");
        }
        assert_eq!(spilled.pairs, in_memory.pairs);
        assert_eq!(spilled.patterns, in_memory.patterns);
    }

    #[test]
    fn names_under_former_ids_move_to_the_shape_id_and_configured_ones_are_reported() {
        let dir = tempfile::tempdir().expect("temporary folder");
        for file in 0..2 {
            std::fs::write(dir.path().join(format!("module_{file}.py")), function(&format!("summary_{file}"), 0)).expect("fixture written");
        }
        let scan_now = |config: Config| scan(ScanOptions { root: dir.path().to_path_buf(), config, use_index: true, progress: None, team: None }).expect("scanned");
        let first = scan_now(Config::default());
        let pattern = first.patterns.first().expect("the two copies are a pattern").clone();
        let shape = first.files[0].units[0].hashes.t2;
        assert_eq!(pattern.id, pattern::shape_id(shape), "the id is the shape hash the members share");
        assert_eq!(pattern::parse_shape_id(&pattern.id), Some(shape));
        assert!(pattern::is_legacy_id(&pattern.legacy_id) && pattern.legacy_id != pattern.id, "{}", pattern.legacy_id);

        // A name stored by an earlier version, under the former id.
        save_label(dir.path(), &pattern.legacy_id, &PatternLabel { name: Some("totals".into()), note: Some("kept".into()) }).expect("stored");
        let second = scan_now(Config::default());
        assert_eq!(second.patterns[0].user_name.as_deref(), Some("totals"));
        let stored = load_labels(dir.path(), &Config::default()).expect("labels");
        assert_eq!(stored.get(&pattern.id).and_then(|label| label.note.as_deref()), Some("kept"), "re-keyed: {stored:?}");
        assert!(!stored.contains_key(&pattern.legacy_id));

        // A `.periodic.toml` table under the former id applies, and the scan says how to fix it.
        let mut config = Config::default();
        config.patterns.insert(pattern.legacy_id.clone(), crate::config::PatternSetting { name: Some("configured".into()), note: None });
        let index_names = Index::open(dir.path()).expect("index").0;
        index_names.rekey_label(&pattern.id, "P-elsewhere").expect("moved away");
        drop(index_names);
        let third = scan_now(config);
        assert_eq!(third.patterns[0].user_name.as_deref(), Some("configured"));
        let warning = third.warnings.iter().find(|warning| warning.contains(&pattern.legacy_id)).expect("a warning names the former id");
        assert!(warning.contains(&pattern.id), "{warning}");
    }

    fn scan_with_index(root: &Path, config: &Config) -> ScanOutcome {
        scan(ScanOptions { root: root.to_path_buf(), config: config.clone(), use_index: true, progress: None, team: None }).expect("scan")
    }

    #[test]
    fn the_index_is_current_until_a_file_changes_or_one_to_analyse_appears() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::default();
        assert!(!index_is_current(dir.path(), &config).expect("check"), "no index yet");
        std::fs::write(dir.path().join("a.py"), function("first", 0)).expect("write");
        std::fs::write(dir.path().join("b.py"), function("second", 3)).expect("write");
        scan_with_index(dir.path(), &config);
        assert!(index_is_current(dir.path(), &config).expect("check"));
        // A file a scan would skip (binary) and one of no language change nothing.
        std::fs::write(dir.path().join("blob.py"), b"\0\x01\x02binary\0".repeat(10)).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "notes").expect("write");
        assert!(index_is_current(dir.path(), &config).expect("check"));
        let other = Config { detection: crate::config::DetectionSettings { min_lines: 3, ..Default::default() }, ..Config::default() };
        assert!(!index_is_current(dir.path(), &other).expect("check"), "other settings");
        std::fs::write(dir.path().join("c.py"), function("third", 1)).expect("write");
        assert!(!index_is_current(dir.path(), &config).expect("check"), "a new file to analyse");
        scan_with_index(dir.path(), &config);
        assert!(index_is_current(dir.path(), &config).expect("check"));
        std::fs::write(dir.path().join("a.py"), function("first", 2)).expect("write");
        assert!(!index_is_current(dir.path(), &config).expect("check"), "a changed file");
        scan_with_index(dir.path(), &config);
        std::fs::remove_file(dir.path().join("b.py")).expect("remove");
        assert!(!index_is_current(dir.path(), &config).expect("check"), "a removed file");
        scan_with_index(dir.path(), &config);
        assert!(index_is_current(dir.path(), &config).expect("check"));
        // Touched, same bytes: the scan keeps the record and writes the new mtime.
        let touched = std::fs::File::options().write(true).open(dir.path().join("a.py")).expect("open");
        touched.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).expect("set mtime");
        drop(touched);
        assert!(!index_is_current(dir.path(), &config).expect("check"), "a touched file");
        let rescan = scan_with_index(dir.path(), &config);
        assert_eq!(rescan.stats.files_parsed, 0, "same content: nothing parsed");
        assert!(index_is_current(dir.path(), &config).expect("check"), "the touched file's mtime was written");
    }

    #[test]
    fn a_scans_patterns_are_restored_from_its_index_once_the_pairs_are_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::default();
        std::fs::write(dir.path().join("a.py"), function("first", 0)).expect("write");
        std::fs::write(dir.path().join("b.py"), function("second", 0)).expect("write");
        std::fs::write(dir.path().join("c.py"), function("third", 3)).expect("write");
        std::fs::write(dir.path().join("d.py"), function("fourth", 4)).expect("write");
        let outcome = scan_with_index(dir.path(), &config);
        assert!(!outcome.patterns.is_empty() && outcome.pairs.iter().any(|pair| pair.kind == crate::model::CloneKind::T3));
        let stored = load_stored_without_sketches(dir.path(), &config).expect("load").expect("stored");
        let live = crate::live::LiveIndex::from_stored(dir.path(), config.clone(), stored.files);
        let pairs = live.complete_pairs(&stored.pairs);
        let kept = stored.patterns.expect("the scan kept its patterns");
        let restored = kept.restore(live.files(), &pairs, &stored.labels).expect("built from the same files, pairs and names");
        let built = pattern::build_patterns(live.files(), &pairs, &stored.labels, &pattern::DiskText { root: dir.path() });
        assert_eq!(restored, built);
        // A name given since, or a pair fewer: built again.
        let mut labels = stored.labels.clone();
        labels.insert(built[0].id.clone(), PatternLabel { name: Some("totals".into()), note: None });
        assert!(kept.restore(live.files(), &pairs, &labels).is_none());
        assert!(kept.restore(live.files(), &pairs[1..], &stored.labels).is_none());
        // Damaged bytes are never taken.
        let damaged = StoredPatterns { digest: kept.digest, bytes: kept.bytes[..kept.bytes.len() - 3].to_vec() };
        assert!(damaged.restore(live.files(), &pairs, &stored.labels).is_none());
        // A re-scan with nothing changed keeps them as they are.
        scan_with_index(dir.path(), &config);
        let again = load_stored(dir.path(), &config).expect("load").expect("stored").patterns.expect("kept");
        assert_eq!((again.digest, again.bytes), (kept.digest, kept.bytes));
    }
}
