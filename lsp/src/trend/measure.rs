//! Duplication along a history, one commit after another, incrementally: the engine's live
//! index (core's `LiveIndex`, as the language server uses it) holds the files of the last
//! commit measured; a commit re-indexes only the files whose blob changed and recomputes
//! only the pairs touching them. A blob is parsed once (cached by its git id), so a file
//! moved or a change reverted costs nothing, and the same tokens serve every later
//! verification: no file is ever read from the working tree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use gix::ObjectId;
use periodic_core::analysis::{self, Analysis};
use periodic_core::live::LiveIndex;
use periodic_core::pattern::{self, PatternLabel};
use periodic_core::{ClonePair, Config, Instance, Language};
use rayon::prelude::*;

use super::history::{CommitInfo, History};
use super::{LanguageFigures, PatternGrowth, Point};

/// Which paths of a commit are analysed: the configuration's languages and include/exclude
/// globs, and the working tree's `.periodicignore`.
pub struct FileFilter {
    include: Option<globset::GlobSet>,
    exclude: Option<globset::GlobSet>,
    ignore: Option<ignore::gitignore::Gitignore>,
}

fn globs(patterns: &[String]) -> Option<globset::GlobSet> {
    if patterns.is_empty() {
        return None;
    }
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        // Checked when the configuration was parsed.
        if let Ok(glob) = globset::Glob::new(pattern) {
            builder.add(glob);
        }
    }
    builder.build().ok()
}

impl FileFilter {
    pub fn new(config: &Config, folder: &Path) -> FileFilter {
        let ignore_file = folder.join(periodic_core::walk::IGNORE_FILE_NAME);
        let ignore = ignore_file.is_file().then(|| ignore::gitignore::Gitignore::new(&ignore_file).0);
        FileFilter { include: globs(&config.include), exclude: globs(&config.exclude), ignore }
    }

    fn language(&self, config: &Config, path: &str) -> Option<Language> {
        if self.include.as_ref().is_some_and(|globs| !globs.is_match(path))
            || self.exclude.as_ref().is_some_and(|globs| globs.is_match(path))
            || self.ignore.as_ref().is_some_and(|ignore| ignore.matched_path_or_any_parents(path, false).is_ignore())
        {
            return None;
        }
        let extension = Path::new(path).extension()?.to_str()?;
        config.language_for_extension(extension).filter(|&language| config.language_enabled(language))
    }
}

/// A parsed blob.
struct Parsed {
    text: String,
    analysis: Analysis,
}

/// Each pattern's size at the last measured point, for what grew.
#[derive(Clone)]
struct PatternSize {
    name: String,
    members: u64,
    duplicated_lines: u64,
}

pub struct Measurer<'a> {
    history: &'a History,
    config: Config,
    filter: FileFilter,
    labels: BTreeMap<String, PatternLabel>,
    live: LiveIndex,
    pairs: Vec<ClonePair>,
    /// Path → blob of the files in the live index (the last commit measured).
    current: HashMap<String, ObjectId>,
    /// Every blob read so far, by git id and language; `None` when it is not analysed
    /// (binary, generated, minified, too large).
    blobs: HashMap<(ObjectId, Language), Option<Arc<Parsed>>>,
    patterns: HashMap<String, PatternSize>,
    /// The previous commit's pattern of each member (path and unit name): a family whose id
    /// moved (its most common shape changed as copies came or went) is matched to it.
    pattern_of_member: HashMap<(String, String), String>,
    /// Whether a point was measured already: the first has nothing to have grown from.
    measured_before: bool,
    /// Blobs parsed so far (each once).
    pub parsed_total: u64,
}

impl<'a> Measurer<'a> {
    pub fn new(history: &'a History, config: Config) -> Measurer<'a> {
        let filter = FileFilter::new(&config, &history.folder);
        let labels = config.patterns.iter().map(|(id, setting)| (id.clone(), PatternLabel { name: setting.name.clone(), note: setting.note.clone() })).collect();
        let live = LiveIndex::new(&history.folder, config.clone(), Vec::new());
        Measurer { history, config, filter, labels, live, pairs: Vec::new(), current: HashMap::new(), blobs: HashMap::new(), patterns: HashMap::new(), pattern_of_member: HashMap::new(), measured_before: false, parsed_total: 0 }
    }

    /// Reads and parses (in parallel) the blobs not seen before.
    fn parse_new(&mut self, wanted: &[(ObjectId, Language, String)]) -> anyhow::Result<u64> {
        let mut read: Vec<(ObjectId, Language, String)> = Vec::new();
        let mut seen = HashSet::new();
        for (id, language, path) in wanted {
            if self.blobs.contains_key(&(*id, *language)) || !seen.insert((*id, *language)) {
                continue;
            }
            let bytes = self.history.blob(*id)?;
            if periodic_core::walk::classify(path, &bytes, self.config.max_file_bytes).is_err() {
                self.blobs.insert((*id, *language), None);
                continue;
            }
            let text = periodic_core::scan::decode(bytes, path, &mut Vec::new());
            read.push((*id, *language, text));
        }
        let parsed: Vec<((ObjectId, Language), Arc<Parsed>)> = read
            .into_par_iter()
            .with_max_len(1)
            .map(|(id, language, text)| {
                let analysis = analysis::analyze(language, &text);
                ((id, language), Arc::new(Parsed { text, analysis }))
            })
            .collect();
        let count = parsed.len() as u64;
        for (key, parsed) in parsed {
            self.blobs.insert(key, Some(parsed));
        }
        self.parsed_total += count;
        Ok(count)
    }

    /// Moves the live index to `commit` and measures it.
    pub fn measure(&mut self, commit: &CommitInfo) -> anyhow::Result<Point> {
        let files = self.history.files(commit.id)?;
        let wanted: Vec<(ObjectId, Language, String)> =
            files.iter().filter_map(|(path, id)| Some((*id, self.filter.language(&self.config, path)?, path.clone()))).collect();
        let parsed_now = self.parse_new(&wanted)?;
        let mut next: HashMap<String, (ObjectId, Language, Arc<Parsed>)> = HashMap::new();
        for (id, language, path) in wanted {
            if let Some(Some(parsed)) = self.blobs.get(&(id, language)) {
                next.insert(path, (id, language, parsed.clone()));
            }
        }
        // In path order: slots are handed out in the order files enter the live index, and
        // ties between candidates are broken by slot, so a hash map's order would make two
        // runs over the same history disagree.
        let mut removed: Vec<String> = self.current.keys().filter(|path| !next.contains_key(*path)).cloned().collect();
        let mut changed: Vec<String> = next.iter().filter(|(path, (id, _, _))| self.current.get(*path) != Some(id)).map(|(path, _)| path.clone()).collect();
        removed.sort_unstable();
        changed.sort_unstable();
        let mut touched: HashSet<u32> = HashSet::new();
        for path in &removed {
            if let Some(slot) = self.live.slot(path) {
                touched.insert(slot);
            }
            self.live.remove(path);
            self.current.remove(path);
        }
        for path in &changed {
            let (id, language, parsed) = &next[path];
            touched.insert(self.live.update_analysis(path, *language, &parsed.text, parsed.analysis.clone()));
            self.current.insert(path.clone(), *id);
        }
        self.pairs.retain(|pair| !touched.contains(&pair.a.file) && !touched.contains(&pair.b.file));
        // Each changed file's clones against everything, in parallel; a pair between two
        // changed files is found from both sides and kept once.
        let live = &self.live;
        let found: Vec<ClonePair> = changed.par_iter().with_max_len(1).flat_map_iter(|path| live.clones_of(path)).collect();
        let mut known: HashSet<(Instance, Instance)> = HashSet::new();
        self.pairs.extend(found.into_iter().filter(|pair| known.insert((pair.a, pair.b))));
        Ok(self.point(commit, parsed_now))
    }

    fn point(&mut self, commit: &CommitInfo, parsed_now: u64) -> Point {
        let records = self.live.files();
        let mut instances: HashMap<u32, Vec<Instance>> = HashMap::new();
        for pair in &self.pairs {
            instances.entry(pair.a.file).or_default().push(pair.a);
            instances.entry(pair.b.file).or_default().push(pair.b);
        }
        let mut languages: BTreeMap<String, LanguageFigures> = BTreeMap::new();
        let (mut lines, mut duplicated) = (0u64, 0u64);
        for path in self.current.keys() {
            let Some(slot) = self.live.slot(path) else { continue };
            let record = &records[slot as usize];
            let covered = instances.get(&slot).map_or(0, |found| pattern::covered_lines(found));
            let figures = languages.entry(record.language.family().to_string()).or_default();
            figures.files += 1;
            figures.lines += u64::from(record.lines);
            figures.duplicated_lines += covered;
            lines += u64::from(record.lines);
            duplicated += covered;
        }
        for figures in languages.values_mut() {
            figures.duplicated_percent = percent(figures.duplicated_lines, figures.lines);
        }
        // Names from the blobs measured: the working tree may hold other text.
        let (current, blobs) = (&self.current, &self.blobs);
        let text = |record: &periodic_core::FileRecord| {
            let blob = current.get(&record.path)?;
            blobs.get(&(*blob, record.language))?.as_ref().map(|parsed| parsed.text.clone())
        };
        let built = pattern::build_patterns(records, &self.pairs, &self.labels, &text);
        let mut grew = Vec::new();
        let mut sizes = HashMap::new();
        let mut pattern_of_member = HashMap::new();
        for found in &built {
            let size = PatternSize { name: found.name().to_string(), members: found.members.len() as u64, duplicated_lines: found.duplicated_lines };
            let members: Vec<(String, String)> =
                found.members.iter().map(|member| (records[member.file as usize].path.clone(), pattern::instance_name(records, member))).collect();
            // Under its id, else the previous pattern most of its members were in.
            let before = self.patterns.get(&found.id).or_else(|| {
                let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
                for member in &members {
                    if let Some(id) = self.pattern_of_member.get(member) {
                        *counts.entry(id).or_default() += 1;
                    }
                }
                counts.into_iter().max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(x.0))).and_then(|(id, _)| self.patterns.get(id))
            });
            for member in members {
                pattern_of_member.insert(member, found.id.clone());
            }
            if before.is_none_or(|before| size.members > before.members || size.duplicated_lines > before.duplicated_lines) {
                grew.push(PatternGrowth {
                    id: found.id.clone(),
                    name: size.name.clone(),
                    members: size.members,
                    members_before: before.map_or(0, |before| before.members),
                    duplicated_lines: size.duplicated_lines,
                    duplicated_lines_before: before.map_or(0, |before| before.duplicated_lines),
                });
            }
            sizes.insert(found.id.clone(), size);
        }
        let added = |growth: &PatternGrowth| growth.duplicated_lines.saturating_sub(growth.duplicated_lines_before);
        grew.sort_by(|x, y| added(y).cmp(&added(x)).then(x.id.cmp(&y.id)));
        grew.truncate(MAX_GROWTH);
        if !self.measured_before {
            grew.clear();
            self.measured_before = true;
        }
        self.patterns = sizes;
        self.pattern_of_member = pattern_of_member;
        Point {
            commit: commit.id.to_string(),
            date: commit.date.clone(),
            author_date: commit.author_date.clone(),
            author: commit.author.clone(),
            subject: commit.subject.clone(),
            files: self.current.len() as u64,
            lines,
            duplicated_lines: duplicated,
            duplicated_percent: percent(duplicated, lines),
            clone_pairs: self.pairs.len() as u64,
            patterns: built.len() as u64,
            parsed_files: parsed_now,
            languages,
            jump: false,
            grew,
        }
    }
}

/// Patterns listed as grown at one point.
const MAX_GROWTH: usize = 10;

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { (part as f64 * 100.0 / whole as f64 * 100.0).round() / 100.0 }
}
