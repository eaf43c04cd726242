//! One workspace folder: its engine state and the snapshots every question is answered
//! from (by the language server, the MCP server and the command line alike).
//!
//! The [`Engine`] (live candidate index, every clone pair, pattern labels: the repository's
//! own and the team's, combined by `edge_sync::names::merge_labels`) is changed only
//! in blocking tasks, one at a time, under a mutex. After each change it publishes an
//! immutable [`Snapshot`] (file and unit views, pairs, patterns, the editor version each
//! file was analysed at) that requests read without ever waiting for an analysis.
//! Snapshots share everything that did not change through `Arc`s, so publishing after an
//! edit copies pointers, not the workspace.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use periodic_core::analysis::Analysis;
use periodic_core::config::ConfigError;
use periodic_core::live::{LiveIndex, Probe, TokenWarmup};
use periodic_core::pattern::{self, PatternLabel};
use periodic_core::scan::{self, ScanOptions, ScanOutcome, ScanProgress};
use periodic_core::team_cache::TeamCache;
use periodic_core::{ClonePair, Config, FileRecord, Instance, Language, Pattern};
use rustc_hash::FxHashMap;

use crate::edge_sync::convert::Families;
use crate::edge_sync::names::{TeamNames, merge_labels};
use crate::edge_sync::{EdgeSync, Organisation, UnitMatch};

/// What a request needs to know about a unit.
#[derive(Debug, Clone)]
pub struct UnitView {
    pub name: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
}

#[derive(Debug, Clone)]
pub struct FileView {
    /// Relative to the workspace root, `/`-separated.
    pub path: String,
    pub language: Language,
    pub lines: u32,
    pub units: Vec<UnitView>,
}

impl FileView {
    fn of(record: &FileRecord) -> FileView {
        FileView {
            path: record.path.clone(),
            language: record.language,
            lines: record.lines,
            units: record
                .units
                .iter()
                .map(|unit| UnitView { name: unit.name.clone(), start_line: unit.start_line, end_line: unit.end_line })
                .collect(),
        }
    }
}

/// The team's copies of one unit, from the edge server.
#[derive(Debug, Clone)]
pub struct TeamCopies {
    /// Index of the unit in its file.
    pub unit: u32,
    /// Best first; may be empty when only the organisation counts are known.
    pub matches: Arc<Vec<UnitMatch>>,
    pub organisation: Option<Organisation>,
    /// Seconds since the matches were fetched, when that is longer than the query TTL (kept
    /// in the index from an earlier session, and the edge has not answered since).
    pub stale_age: Option<u64>,
}

/// An immutable view of a workspace's results.
#[derive(Default)]
pub struct Snapshot {
    pub files: Vec<Arc<FileView>>,
    pub slots: Arc<HashMap<String, u32>>,
    pub pairs: Arc<Vec<ClonePair>>,
    /// Pair indices per file slot.
    pub pairs_by_slot: Arc<PairsBySlot>,
    pub patterns: Arc<Vec<Pattern>>,
    /// Pattern index of each pair.
    pub pattern_of_pair: Arc<Vec<u32>>,
    /// The editor version each edited file was last analysed at.
    pub versions: Arc<HashMap<u32, i32>>,
    /// Copies in the team's other repositories, per file slot (open files only).
    pub team: Arc<HashMap<u32, Vec<TeamCopies>>>,
    /// The team's pattern names by id, as last read from the edge (who named them, when).
    pub team_names: Arc<TeamNames>,
    /// How long team answers stay fresh (the sync's query TTL): older ones are marked stale.
    pub team_ttl: std::time::Duration,
}

impl Snapshot {
    pub fn slot(&self, path: &str) -> Option<u32> {
        self.slots.get(path).copied()
    }

    pub fn pairs_of(&self, slot: u32) -> impl Iterator<Item = (u32, &ClonePair)> {
        self.pairs_by_slot.get(slot).iter().map(|&index| (index, &self.pairs[index as usize]))
    }

    pub fn pattern_of(&self, pair: u32) -> Option<&Pattern> {
        self.pattern_of_pair.get(pair as usize).and_then(|&index| self.patterns.get(index as usize))
    }

    pub fn team_of(&self, slot: u32, unit: u32) -> Option<&TeamCopies> {
        self.team.get(&slot)?.iter().find(|copies| copies.unit == unit)
    }

    pub fn file(&self, slot: u32) -> Option<&FileView> {
        self.files.get(slot as usize).map(Arc::as_ref)
    }

    /// Name of an instance: its unit's name, or `None` for a block.
    pub fn instance_name(&self, instance: &Instance) -> Option<&str> {
        let unit = instance.unit?;
        self.file(instance.file)?.units.get(unit as usize).map(|unit| unit.name.as_str())
    }
}

impl Snapshot {
    /// The results of a one-off scan as a snapshot, for front ends that answer one
    /// question and exit (the command line): no live index is built.
    pub fn of_scan(outcome: &ScanOutcome) -> Snapshot {
        let mut pattern_of_pair = vec![u32::MAX; outcome.pairs.len()];
        for (index, pattern) in outcome.patterns.iter().enumerate() {
            for &pair in &pattern.pairs {
                pattern_of_pair[pair] = index as u32;
            }
        }
        Snapshot {
            files: outcome.files.iter().map(|file| Arc::new(FileView::of(file))).collect(),
            slots: Arc::new(outcome.files.iter().enumerate().map(|(slot, file)| (file.path.clone(), slot as u32)).collect()),
            pairs: Arc::new(outcome.pairs.clone()),
            pairs_by_slot: Arc::new(PairsBySlot::of(&outcome.pairs)),
            patterns: Arc::new(outcome.patterns.clone()),
            pattern_of_pair: Arc::new(pattern_of_pair),
            versions: Arc::default(),
            team: Arc::default(),
            team_names: Arc::default(),
            team_ttl: std::time::Duration::MAX,
        }
    }
}

/// Pair indices per file slot (a pair within one file is listed once), ascending, as one
/// array cut at each slot's start. Every edit rebuilds it from every pair of the workspace:
/// counting and placing in two passes costs a fraction of a hash map of lists (a map entry
/// and a list push per pair, and a list to free per file when the snapshot goes).
#[derive(Default)]
pub struct PairsBySlot {
    /// Where each slot's indices start in `indices`; one more entry than slots.
    starts: Vec<u32>,
    indices: Vec<u32>,
}

impl PairsBySlot {
    pub fn of(pairs: &[ClonePair]) -> PairsBySlot {
        let slots = pairs.iter().map(|pair| pair.a.file.max(pair.b.file) as usize + 1).max().unwrap_or(0);
        let mut starts = vec![0u32; slots + 1];
        for pair in pairs {
            starts[pair.a.file as usize + 1] += 1;
            if pair.b.file != pair.a.file {
                starts[pair.b.file as usize + 1] += 1;
            }
        }
        for slot in 0..slots {
            starts[slot + 1] += starts[slot];
        }
        let mut next = starts.clone();
        let mut indices = vec![0u32; starts[slots] as usize];
        let mut place = |slot: u32, index: u32| {
            let at = &mut next[slot as usize];
            indices[*at as usize] = index;
            *at += 1;
        };
        for (index, pair) in pairs.iter().enumerate() {
            place(pair.a.file, index as u32);
            if pair.b.file != pair.a.file {
                place(pair.b.file, index as u32);
            }
        }
        PairsBySlot { starts, indices }
    }

    /// The indices of the pairs with a side in `slot`, ascending.
    pub fn get(&self, slot: u32) -> &[u32] {
        match (self.starts.get(slot as usize), self.starts.get(slot as usize + 1)) {
            (Some(&start), Some(&end)) => &self.indices[start as usize..end as usize],
            _ => &[],
        }
    }

    /// The slots with at least one pair, ascending.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.starts.windows(2).enumerate().filter(|(_, range)| range[0] < range[1]).map(|(slot, _)| slot as u32)
    }
}

/// The mutable engine state of a workspace.
pub struct Engine {
    live: LiveIndex,
    /// Shared with the snapshots published from it: a change copies the list only while a
    /// snapshot still holds it (on the Linux tree it is 58 MB).
    pairs: Arc<Vec<ClonePair>>,
    /// The names shown: `own_labels` with newer team names over them.
    labels: BTreeMap<String, PatternLabel>,
    /// The repository's names: the index's and `.periodic.toml`'s.
    own_labels: BTreeMap<String, PatternLabel>,
    /// When each of the index's names was given (seconds since the Unix epoch).
    label_times: BTreeMap<String, u64>,
    team_names: Arc<TeamNames>,
    team_ttl: std::time::Duration,
    views: Vec<Arc<FileView>>,
    slots: Arc<HashMap<String, u32>>,
    versions: HashMap<u32, i32>,
    team: Arc<HashMap<u32, Vec<TeamCopies>>>,
    /// The last pattern build. Clustering every pair costs milliseconds on a big workspace,
    /// so an edit does not wait for it: pairs are matched to these patterns by their content
    /// hash until the next build (see [`Engine::rebuild_patterns`]).
    patterns: Arc<Vec<Pattern>>,
    /// Looked up for every pair on every edit's snapshot, hence Fx rather than SipHash.
    pattern_by_content: FxHashMap<u64, u32>,
    /// The patterns were built from the current pairs.
    patterns_current: bool,
}

/// A document's current text, for re-applying editor state over a fresh index.
pub struct OpenText {
    pub path: String,
    pub language: Language,
    pub version: i32,
    pub text: String,
}

impl Engine {
    /// After a scan. The candidate tables are built on the first edit or query that needs
    /// them, as after a warm start: the first diagnostics do not wait for them.
    /// `patterns` are the scan's, built with `labels`: kept until the labels change.
    fn new(
        root: &Path,
        config: Config,
        files: Vec<FileRecord>,
        pairs: Vec<ClonePair>,
        patterns: Vec<Pattern>,
        labels: BTreeMap<String, PatternLabel>,
    ) -> Engine {
        let mut engine = Engine::assemble(LiveIndex::from_stored(root, config, files), Arc::new(pairs), labels);
        engine.set_patterns(patterns);
        engine
    }

    /// Sets when the index's names were given and the team's names, and shows the result.
    pub fn set_label_sources(&mut self, label_times: BTreeMap<String, u64>, edge: &EdgeSync) {
        self.label_times = label_times;
        self.team_names = edge.team_names();
        self.team_ttl = edge.settings().query_ttl;
        let labels = merge_labels(&self.own_labels, self.live.config(), &self.label_times, &self.team_names);
        // The scan's patterns stand while the names they were built with do (half a second
        // of naming on `large` before the first diagnostics).
        if !self.patterns_current || labels != self.labels {
            self.labels = labels;
            self.rebuild_patterns();
        }
    }

    /// Takes the team's names as last read; re-clusters only when they changed.
    pub fn set_team_names(&mut self, edge: &EdgeSync) -> bool {
        let team_names = edge.team_names();
        self.team_ttl = edge.settings().query_ttl;
        if Arc::ptr_eq(&self.team_names, &team_names) || *self.team_names == *team_names {
            self.team_names = team_names;
            return false;
        }
        self.team_names = team_names;
        let labels = merge_labels(&self.own_labels, self.live.config(), &self.label_times, &self.team_names);
        if labels != self.labels {
            self.labels = labels;
            self.rebuild_patterns();
        }
        true
    }

    /// From a stored index, which holds no exact pairs: they are recomputed (no file is read).
    /// The last scan's patterns are taken as they were kept when they were built from these
    /// files, pairs and names (clustering and naming the Linux tree's pairs again took
    /// most of the time before the first answer).
    fn from_stored(root: &Path, config: Config, stored: scan::StoredState) -> Engine {
        let scan::StoredState { files, pairs: stored_pairs, labels, patterns } = stored;
        let live = LiveIndex::from_stored(root, config, files);
        let pairs = live.complete_pairs(&stored_pairs);
        drop(stored_pairs);
        let restored = patterns.and_then(|patterns| patterns.restore(live.files(), &pairs, &labels));
        tracing::debug!(restored = restored.is_some(), "stored patterns");
        let mut engine = Engine::assemble(live, Arc::new(pairs), labels);
        if let Some(patterns) = restored {
            engine.set_patterns(patterns);
        }
        engine
    }

    /// An engine without patterns: [`Engine::set_label_sources`] builds them.
    fn assemble(live: LiveIndex, pairs: Arc<Vec<ClonePair>>, labels: BTreeMap<String, PatternLabel>) -> Engine {
        let views = live.files().iter().map(|file| Arc::new(FileView::of(file))).collect();
        let slots = Arc::new(live.files().iter().enumerate().map(|(slot, file)| (file.path.clone(), slot as u32)).collect());
        // No patterns yet: every caller sets the label sources next, which builds them with
        // the team's names merged in (building them here too cost a second build, half a
        // second on `large`, before the first diagnostics).
        Engine {
            live,
            pairs,
            own_labels: labels.clone(),
            labels,
            label_times: BTreeMap::new(),
            team_names: Arc::default(),
            team_ttl: std::time::Duration::MAX,
            views,
            slots,
            versions: HashMap::new(),
            team: Arc::new(HashMap::new()),
            patterns: Arc::new(Vec::new()),
            pattern_by_content: FxHashMap::default(),
            patterns_current: false,
        }
    }

    /// Clusters the current pairs into patterns again.
    pub fn rebuild_patterns(&mut self) {
        let patterns = pattern::build_patterns(self.live.files(), &self.pairs, &self.labels, &pattern::DiskText { root: self.live.root() });
        self.set_patterns(patterns);
    }

    /// Takes `patterns` of the current pairs as the engine's.
    fn set_patterns(&mut self, patterns: Vec<Pattern>) {
        self.pattern_by_content.clear();
        for (index, pattern) in patterns.iter().enumerate() {
            for &pair in &pattern.pairs {
                self.pattern_by_content.entry(self.pairs[pair].content).or_insert(index as u32);
            }
        }
        self.patterns = Arc::new(patterns);
        self.patterns_current = true;
    }

    pub fn patterns_current(&self) -> bool {
        self.patterns_current
    }

    /// Keeps the patterns in the index, so the next start restores them (their digest says
    /// what they were built from: an editor's text applied here makes them another
    /// state's, which no load matches). Not when a team name is among their names.
    fn keep_built_patterns(&self, root: &Path) -> Result<(), scan::ScanError> {
        if !self.patterns_current || self.labels != self.own_labels {
            return Ok(());
        }
        scan::keep_loaded_patterns(root, self.live.files(), &self.pairs, &self.own_labels, &self.patterns)
    }

    /// The near-miss family of each shape, as the last pattern build says; `None` while
    /// edits are newer than it (its members may no longer name the units they did).
    pub fn families(&self) -> Option<Families> {
        self.patterns_current.then(|| Families::of_patterns(self.live.files(), &self.patterns))
    }

    /// Re-indexes one file from `text` (already analysed) and recomputes its pairs.
    /// Returns the other files whose pairs changed.
    pub fn apply_analysis(&mut self, path: &str, language: Language, text: &str, analysis: Analysis, version: Option<i32>) -> HashSet<u32> {
        // A file opened as the engine already holds it keeps its pairs: recomputing them would
        // give the same ones, and from a stored index it would first build the candidate
        // tables of the whole workspace (seconds on a very large tree) before the file's
        // first diagnostics.
        if let Some(slot) = self.live.slot(path) {
            let held = &self.live.files()[slot as usize];
            if held.language == language && held.content_hash == *blake3::hash(text.as_bytes()).as_bytes() {
                match version {
                    Some(version) => self.versions.insert(slot, version),
                    None => self.versions.remove(&slot),
                };
                return HashSet::new();
            }
        }
        let slot = self.live.update_analysis(path, language, text, analysis);
        self.refresh_slot(slot, path);
        match version {
            Some(version) => self.versions.insert(slot, version),
            None => self.versions.remove(&slot),
        };
        self.replace_pairs(slot)
    }

    /// Forgets a file deleted from disk.
    pub fn remove(&mut self, path: &str) -> HashSet<u32> {
        let Some(slot) = self.live.slot(path) else { return HashSet::new() };
        self.live.remove(path);
        self.refresh_slot(slot, path);
        self.versions.remove(&slot);
        let mut affected = self.put_pairs_of(slot, Vec::new());
        affected.remove(&slot);
        affected
    }

    /// Puts `found` in place of every pair touching `slot`; returns the files on the sides
    /// of both. The published snapshot shares the list, so the new one is written in one
    /// pass (the pairs kept, then the ones found) rather than copied whole, filtered and
    /// appended to.
    fn put_pairs_of(&mut self, slot: u32, found: Vec<ClonePair>) -> HashSet<u32> {
        self.patterns_current = false;
        let touches = |pair: &ClonePair| pair.a.file == slot || pair.b.file == slot;
        let mut affected = HashSet::new();
        if found.is_empty() && !self.pairs.iter().any(touches) {
            return affected;
        }
        let mut pairs = Vec::with_capacity(self.pairs.len() + found.len());
        for pair in self.pairs.iter() {
            if touches(pair) {
                affected.insert(pair.a.file);
                affected.insert(pair.b.file);
            } else {
                pairs.push(*pair);
            }
        }
        for pair in found {
            affected.insert(pair.a.file);
            affected.insert(pair.b.file);
            pairs.push(pair);
        }
        self.pairs = Arc::new(pairs);
        affected
    }

    pub fn record(&self, path: &str) -> Option<&FileRecord> {
        self.live.slot(path).map(|slot| &self.live.files()[slot as usize])
    }

    pub fn files(&self) -> &[FileRecord] {
        self.live.files()
    }

    /// Whether the workspace's candidate tables were built (see `LiveIndex`).
    pub fn candidate_tables_built(&self) -> bool {
        self.live.candidate_tables_built()
    }

    /// Looks up the team's copies of every unit of `path` in the sync's cache (asking the
    /// edge in the background for the ones not known yet). Returns whether any are known.
    pub fn refresh_team(&mut self, path: &str, edge: &EdgeSync) -> bool {
        let Some(slot) = self.live.slot(path) else { return false };
        if !edge.enabled() {
            return false;
        }
        let units: Vec<&periodic_core::UnitRecord> = self.live.files()[slot as usize].units.iter().collect();
        let copies: Vec<TeamCopies> = edge
            .team_matches(&units)
            .into_iter()
            .zip(&units)
            .enumerate()
            .filter_map(|(index, (matches, unit))| {
                let matches = matches.unwrap_or_default();
                let organisation = edge.organisation(unit).filter(|counts| counts.teams > 0);
                let stale_age = if matches.is_empty() { None } else { edge.stale_age(unit) };
                (!matches.is_empty() || organisation.is_some()).then_some(TeamCopies { unit: index as u32, matches, organisation, stale_age })
            })
            .collect();
        let known = !copies.is_empty();
        let team = Arc::make_mut(&mut self.team);
        if known { team.insert(slot, copies) } else { team.remove(&slot) };
        known
    }

    /// Whether the engine holds editor text for `path` at `version` or later.
    pub fn has_version(&self, path: &str, version: i32) -> bool {
        self.live.slot(path).and_then(|slot| self.versions.get(&slot)).is_some_and(|&applied| applied >= version)
    }

    pub fn slot(&self, path: &str) -> Option<u32> {
        self.live.slot(path)
    }

    /// blake3 of the text the engine holds for `path`.
    pub fn content_hash(&self, path: &str) -> Option<[u8; 32]> {
        self.live.slot(path).map(|slot| self.live.files()[slot as usize].content_hash)
    }

    pub fn config(&self) -> &Config {
        self.live.config()
    }

    /// The files an edit of `path` would read tokens of and the cache does not hold yet,
    /// for loading without the engine (see [`periodic_core::live::TokenWarmup`]).
    pub fn token_warmup(&mut self, path: &str) -> Option<TokenWarmup> {
        self.live.token_warmup(path)
    }

    /// The clones `text` (already analysed) would have as a file here; nothing of it is
    /// kept (see [`LiveIndex::probe`]).
    pub fn probe(&mut self, language: Language, text: &str, analysis: Analysis, similarity: Option<f64>) -> Probe {
        self.live.probe(language, text, analysis, similarity)
    }

    /// A name given here now (stored in the index by the caller).
    pub fn set_label(&mut self, id: &str, label: PatternLabel) {
        self.own_labels.insert(id.to_string(), label);
        self.label_times.insert(id.to_string(), crate::edge_sync::names::now_unix());
        self.labels = merge_labels(&self.own_labels, self.live.config(), &self.label_times, &self.team_names);
        self.rebuild_patterns();
    }

    /// The name and note shown for a pattern id.
    pub fn label(&self, id: &str) -> Option<&PatternLabel> {
        self.labels.get(id)
    }

    fn refresh_slot(&mut self, slot: u32, path: &str) {
        let view = Arc::new(FileView::of(&self.live.files()[slot as usize]));
        if slot as usize == self.views.len() {
            self.views.push(view);
            Arc::make_mut(&mut self.slots).insert(path.to_string(), slot);
        } else {
            self.views[slot as usize] = view;
        }
    }

    /// Recomputes the pairs touching `slot`; returns the other files on their sides. The
    /// units an edit left alone keep what they found (`LiveIndex::clones_of_edited`).
    fn replace_pairs(&mut self, slot: u32) -> HashSet<u32> {
        let path = self.live.files()[slot as usize].path.clone();
        let found = self.live.clones_of_edited(&path);
        let mut affected = self.put_pairs_of(slot, found);
        affected.remove(&slot);
        affected
    }

    fn snapshot(&self) -> Snapshot {
        let mut pattern_of_pair = vec![u32::MAX; self.pairs.len()];
        if self.patterns_current {
            for (index, pattern) in self.patterns.iter().enumerate() {
                for &pair in &pattern.pairs {
                    pattern_of_pair[pair] = index as u32;
                }
            }
        } else {
            for (slot, pair) in pattern_of_pair.iter_mut().zip(self.pairs.iter()) {
                *slot = self.pattern_by_content.get(&pair.content).copied().unwrap_or(u32::MAX);
            }
        }
        Snapshot {
            files: self.views.clone(),
            slots: self.slots.clone(),
            pairs: self.pairs.clone(),
            pairs_by_slot: Arc::new(PairsBySlot::of(&self.pairs)),
            patterns: self.patterns.clone(),
            pattern_of_pair: Arc::new(pattern_of_pair),
            versions: Arc::new(self.versions.clone()),
            team: self.team.clone(),
            team_names: self.team_names.clone(),
            team_ttl: self.team_ttl,
        }
    }
}

/// Why loading a workspace's configuration failed: shown to the user, old config kept.
pub type ConfigProblem = ConfigError;

pub struct Workspace {
    pub root: PathBuf,
    engine: Mutex<Option<Engine>>,
    snapshot: RwLock<Arc<Snapshot>>,
    generation: AtomicU64,
    /// The last `.periodic.toml` that parsed (defaults when there is none).
    project_config: Mutex<Config>,
    /// Serialises full re-indexes of this folder.
    pub reindexing: tokio::sync::Mutex<()>,
    /// The configuration the engine was loaded from the index with, until the first
    /// re-index: that one has nothing to do when the tree is as the index holds it.
    loaded_with: Mutex<Option<Config>>,
    /// Ticks with the generation of every published snapshot.
    pub published: tokio::sync::watch::Sender<u64>,
    /// Sync with the team edge server (disabled unless configured).
    edge: RwLock<Arc<EdgeSync>>,
    /// The pattern build whose families the sync was last given (weak: the build is not
    /// kept alive for this, and the allocation it names cannot be reused while held).
    families_given: Mutex<std::sync::Weak<Vec<Pattern>>>,
}

impl Workspace {
    /// A workspace with no results yet; `Err` carries a bad `.periodic.toml` (the defaults
    /// are used meanwhile).
    pub fn new(root: PathBuf) -> (Arc<Workspace>, Option<ConfigProblem>) {
        let (config, problem) = match Config::load_from_root(&root) {
            Ok(config) => (config, None),
            Err(problem) => (Config::default(), Some(problem)),
        };
        let snapshot = Snapshot::default();
        let workspace = Workspace {
            root,
            engine: Mutex::new(None),
            snapshot: RwLock::new(Arc::new(snapshot)),
            generation: AtomicU64::new(0),
            project_config: Mutex::new(config),
            reindexing: tokio::sync::Mutex::new(()),
            loaded_with: Mutex::new(None),
            published: tokio::sync::watch::channel(0).0,
            edge: RwLock::new(Arc::new(EdgeSync::disabled())),
            families_given: Mutex::new(std::sync::Weak::new()),
        };
        (Arc::new(workspace), problem)
    }

    pub fn edge(&self) -> Arc<EdgeSync> {
        self.edge.read().map(|edge| edge.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Replaces the team sync (settings changed); the previous one stops in the background.
    /// A sync is sent every unit's sketch: the engine holds them again first (read back from
    /// the index), and the engine's lock is held until the sync is in, so a re-index ending
    /// meanwhile sees it and keeps them too.
    pub fn set_edge(&self, edge: EdgeSync) {
        let edge = Arc::new(edge);
        let mut engine = lock(&self.engine);
        if edge.enabled()
            && let Some(engine) = engine.as_mut()
        {
            engine.live.hold_sketches();
        }
        match self.edge.write() {
            Ok(mut current) => *current = edge,
            Err(poisoned) => *poisoned.into_inner() = edge,
        }
    }

    /// The configuration from `.periodic.toml` alone (for the `[edge]` table).
    pub fn project_config(&self) -> Config {
        lock(&self.project_config).clone()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().map(|snapshot| snapshot.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Re-reads `.periodic.toml`; on error the previous configuration stays in force.
    pub fn reload_project_config(&self) -> Result<(), ConfigProblem> {
        let config = Config::load_from_root(&self.root)?;
        *lock(&self.project_config) = config;
        Ok(())
    }

    /// The project's configuration with a front end's overrides (editor settings,
    /// command-line thresholds) applied.
    pub fn effective_config(&self, overrides: impl FnOnce(&mut Config)) -> Config {
        let mut config = lock(&self.project_config).clone();
        overrides(&mut config);
        config
    }

    pub fn relative(&self, path: &Path) -> Option<String> {
        path.strip_prefix(&self.root).ok().map(|relative| periodic_core::walk::relative_path(Path::new(""), relative))
    }

    pub fn language_of(&self, path: &Path) -> Option<Language> {
        let extension = path.extension()?.to_str()?;
        let config = lock(&self.project_config);
        config.language_for_extension(extension).filter(|&language| config.language_enabled(language))
    }

    /// Answers from the stored index at once, before any file is read (warm start).
    /// Returns false when there is nothing usable stored.
    pub fn load_stored(&self, config: Config) -> Result<bool, scan::ScanError> {
        // Without a team edge nothing reads a sketch before the candidate tables are built,
        // which read them back: the records are read and held without them.
        let stored = if self.edge().enabled() { scan::load_stored(&self.root, &config)? } else { scan::load_stored_without_sketches(&self.root, &config)? };
        let Some(stored) = stored else { return Ok(false) };
        let times = scan::label_times(&self.root)?;
        let mut engine = Engine::from_stored(&self.root, config.clone(), stored);
        engine.set_label_sources(times, &self.edge());
        let mut guard = lock(&self.engine);
        if guard.is_none() {
            *guard = Some(engine);
            *lock(&self.loaded_with) = Some(config);
            self.publish(guard.as_ref());
        }
        Ok(true)
    }

    /// Scans the folder (re-using `.periodic/index.db`), swaps the result in and re-applies
    /// the editor's unsaved text on top. Runs on a blocking thread.
    pub fn reindex(
        &self,
        config: Config,
        progress: &(dyn Fn(ScanProgress) + Sync),
        open: &dyn Fn() -> Vec<OpenText>,
        team: Option<&dyn TeamCache>,
    ) -> Result<Vec<String>, scan::ScanError> {
        // Just loaded from the index, and no file changed since it was written: the engine
        // holds what a scan would give (the index's pairs and patterns, the editor's text
        // applied on top), and a scan would only read it all again (on the Linux tree that
        // is seconds of work and a few hundred megabytes the allocator keeps afterwards).
        let loaded_with = lock(&self.loaded_with).take();
        if loaded_with.as_ref() == Some(&config) && lock(&self.engine).is_some() && scan::index_is_current(&self.root, &config)? {
            tracing::info!("{}: nothing changed since the index was written", self.root.display());
            // Only the next start's speed depends on it: a failure is logged, not raised.
            if let Some(engine) = lock(&self.engine).as_ref()
                && let Err(error) = engine.keep_built_patterns(&self.root)
            {
                tracing::warn!("{}: the patterns could not be kept in the index: {error}", self.root.display());
            }
            return Ok(Vec::new());
        }
        // The scan reads the stored index itself: the engine goes first, so the workspace is
        // not held twice in memory. Requests keep reading the last snapshot; edits made
        // meanwhile are applied from the editor's text when the new engine is in.
        *lock(&self.engine) = None;
        self.scan_and_swap(config, progress, open, team)
    }

    /// Like [`Workspace::reindex`] without open documents, keeping the current engine
    /// until the new one is in: questions that need the engine (snippets) are answered
    /// from the previous state meanwhile, at the cost of holding both for a moment.
    pub fn refresh(&self, config: Config, progress: &(dyn Fn(ScanProgress) + Sync)) -> Result<Vec<String>, scan::ScanError> {
        self.scan_and_swap(config, progress, &Vec::new, None)
    }

    fn scan_and_swap(
        &self,
        config: Config,
        progress: &(dyn Fn(ScanProgress) + Sync),
        open: &dyn Fn() -> Vec<OpenText>,
        team: Option<&dyn TeamCache>,
    ) -> Result<Vec<String>, scan::ScanError> {
        let outcome = scan::scan(ScanOptions { root: self.root.clone(), config: config.clone(), use_index: true, progress: Some(progress), team })?;
        let labels = scan::load_labels(&self.root, &config)?;
        let times = scan::label_times(&self.root)?;
        let mut guard = lock(&self.engine);
        let mut engine = Engine::new(&self.root, config, outcome.files, outcome.pairs, outcome.patterns, labels);
        let edge = self.edge();
        engine.set_label_sources(times, &edge);
        // The team gets the files as on disk, with their families; editor text follows as it
        // is analysed.
        if let Some(families) = engine.families() {
            edge.set_families(families);
        }
        edge.record_snapshot(engine.files());
        for document in open() {
            let analysis = periodic_core::analysis::analyze(document.language, &document.text);
            engine.apply_analysis(&document.path, document.language, &document.text, analysis, Some(document.version));
            if let Some(record) = engine.record(&document.path) {
                edge.record_files(std::slice::from_ref(record), &[]);
            }
            engine.refresh_team(&document.path, &edge);
        }
        if !engine.patterns_current() {
            engine.rebuild_patterns();
        }
        // The scan just wrote these records to the index: without a team edge (which is sent
        // every sketch) they are held without their sketches until the tables need them.
        if !edge.enabled() {
            engine.live.forget_sketches();
        }
        *guard = Some(engine);
        self.publish(guard.as_ref());
        Ok(outcome.warnings)
    }

    /// Runs `change` on the engine (if loaded) and publishes the result. Returns what
    /// `change` returned, or `None` before the engine exists.
    pub fn change<T>(&self, change: impl FnOnce(&mut Engine) -> T) -> Option<T> {
        let mut guard = lock(&self.engine);
        let engine = guard.as_mut()?;
        let result = change(engine);
        self.publish(guard.as_ref());
        Some(result)
    }

    /// Runs `probe` on the engine with the snapshot published from it (their slots agree),
    /// without publishing: `probe` must leave the results as they were.
    pub fn probe<T>(&self, probe: impl FnOnce(&mut Engine, &Snapshot) -> T) -> Option<T> {
        let mut guard = lock(&self.engine);
        let engine = guard.as_mut()?;
        let snapshot = self.snapshot();
        Some(probe(engine, &snapshot))
    }

    /// Reads the engine without publishing.
    pub fn inspect<T>(&self, read: impl FnOnce(&Engine) -> T) -> Option<T> {
        let guard = lock(&self.engine);
        guard.as_ref().map(read)
    }

    fn publish(&self, engine: Option<&Engine>) {
        let Some(engine) = engine else { return };
        self.give_families(engine);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let snapshot = Arc::new(engine.snapshot());
        match self.snapshot.write() {
            Ok(mut current) => *current = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        self.published.send_replace(generation);
    }

    /// After a new pattern build, gives the sync the units' families and lets it send again
    /// the units whose family changed (an edit can move a unit of another file into, out
    /// of, or between near-miss families). Cheap when the build is the one already given.
    fn give_families(&self, engine: &Engine) {
        if !engine.patterns_current() {
            return;
        }
        let mut given = lock(&self.families_given);
        if std::ptr::eq(given.as_ptr(), Arc::as_ptr(&engine.patterns)) {
            return;
        }
        *given = Arc::downgrade(&engine.patterns);
        // Without a team edge the families are not computed at all.
        let edge = self.edge();
        if edge.enabled()
            && let Some(families) = engine.families()
        {
            edge.update_families(engine.files(), families);
        }
    }
}

/// Locks a mutex, recovering its data if a panicking thread poisoned it: the engine's
/// state is replaced wholesale on re-index, so a half-finished change is not fatal.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use periodic_core::CloneKind;

    use super::*;

    fn pair(a: u32, b: u32) -> ClonePair {
        let instance = |file| Instance { file, start_line: 1, end_line: 5, unit: Some(0), token_start: 0, token_end: 40 };
        ClonePair { a: instance(a), b: instance(b), kind: CloneKind::T1, similarity: 1.0, content: 7, evidence: None }
    }

    /// The map of lists it replaced, as the reference.
    fn by_map(pairs: &[ClonePair]) -> BTreeMap<u32, Vec<u32>> {
        let mut by_slot: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (index, pair) in pairs.iter().enumerate() {
            by_slot.entry(pair.a.file).or_default().push(index as u32);
            if pair.b.file != pair.a.file {
                by_slot.entry(pair.b.file).or_default().push(index as u32);
            }
        }
        by_slot
    }

    #[test]
    fn pairs_by_slot_lists_each_pair_under_both_files_once_in_order() {
        let pairs = vec![pair(3, 0), pair(2, 2), pair(0, 5), pair(3, 5), pair(5, 5)];
        let by_slot = PairsBySlot::of(&pairs);
        let expected = by_map(&pairs);
        assert_eq!(by_slot.slots().collect::<Vec<_>>(), expected.keys().copied().collect::<Vec<_>>());
        for slot in 0..8 {
            assert_eq!(by_slot.get(slot), expected.get(&slot).map_or(&[][..], Vec::as_slice), "slot {slot}");
        }
        assert!(PairsBySlot::of(&[]).get(0).is_empty());
        assert_eq!(PairsBySlot::default().slots().count(), 0);
    }
}
