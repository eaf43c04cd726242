//! The in-memory candidate index: which units share an exact hash, an LSH band, a sampled
//! k-gram or a used name, and which files share a winnowed k-gram. Built once from all file
//! records (sorted arrays of a key and a unit's number, 8 or 12 bytes an entry, searched by
//! binary search), then updated file by file through a small overlay, so the language
//! server can re-index one edited file in microseconds without rebuilding millions of
//! entries.

use rayon::prelude::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::fingerprint;
use crate::model::FileRecord;

/// A unit: its file's index and its position in the file record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitRef {
    pub file: u32,
    pub unit: u32,
}

/// Keys are hashes, uniformly spread: their top bits locate them in the sorted table.
trait HashKey: Copy + Ord + std::hash::Hash + Send + Sync {
    /// The key's top bits as the high bits of a u64.
    fn top(self) -> u64;
}

impl HashKey for u64 {
    fn top(self) -> u64 {
        self
    }
}

impl HashKey for u32 {
    fn top(self) -> u64 {
        u64::from(self) << 32
    }
}

/// (file, position) entries a key holds in the overlay.
type OverlayEntries = Vec<(u32, u32)>;

/// A base entry: a key and what it locates, a unit by its number in the index (`Located`)
/// or a winnowed k-gram by file and position. Packed to 4-byte alignment: a band key and a
/// unit number take 12 bytes, not 16, and a k-gram or name key and a number 8, not 12 as
/// (key, file, unit) did — on the Linux tree about 90 MB of tables. Fields are only ever
/// read by value (a reference to a packed field is refused by the compiler).
#[derive(Clone, Copy, Default)]
#[repr(C, packed(4))]
struct Entry<K, V> {
    key: K,
    value: V,
}

impl<K: Copy, V: Copy> Entry<K, V> {
    fn key(&self) -> K {
        self.key
    }

    fn value(&self) -> V {
        self.value
    }
}

impl<K: Copy + PartialEq, V: Copy + PartialEq> PartialEq for Entry<K, V> {
    fn eq(&self, other: &Self) -> bool {
        let (key, value, other_key, other_value) = (self.key, self.value, other.key, other.value);
        key == other_key && value == other_value
    }
}

impl<K: Copy + std::fmt::Debug, V: Copy + std::fmt::Debug> std::fmt::Debug for Entry<K, V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (key, value) = (self.key, self.value);
        write!(formatter, "({key:?}, {value:?})")
    }
}

/// What a base entry's value locates, as (file, unit) or (file, position).
trait Located: Copy + Ord + Default + Send + Sync {
    fn locate(self, units: &[UnitRef]) -> (u32, u32);
}

/// A unit's number: its place in `CandidateIndex::units`.
impl Located for u32 {
    fn locate(self, units: &[UnitRef]) -> (u32, u32) {
        let unit = units[self as usize];
        (unit.file, unit.unit)
    }
}

/// A place given whole.
impl Located for (u32, u32) {
    fn locate(self, _units: &[UnitRef]) -> (u32, u32) {
        self
    }
}

/// What a key holds: its base entries and overlay entries, stale ones included, and how
/// many entries that is with a pruned key's count.
struct Under<'a, K, V> {
    base: &'a [Entry<K, V>],
    overlay: Option<&'a OverlayEntries>,
    held: usize,
}

#[derive(Default)]
struct Table<K: HashKey, V: Located = u32> {
    /// Sorted by key, then value; entries of files in `replaced` are stale.
    base: Vec<Entry<K, V>>,
    /// `directory[p]` is the first base index whose key's top `directory_bits` bits are
    /// at least `p`: a lookup binary-searches only the one or two entries in its slot
    /// instead of millions (cache misses dominated the search).
    directory: Vec<u32>,
    directory_bits: u32,
    /// One bit per key prefix, set when a key with that prefix has two or more base
    /// entries. Most keys belong to one unit only, the one asking about them: this bitmap,
    /// small enough for the cache, answers those without a miss in the table.
    repeated: Vec<u64>,
    repeated_bits: u32,
    overlay: HashMap<K, OverlayEntries>,
    /// Keys held by more units than a lookup takes but few enough to sample: their base
    /// entries are ordered by hub value (`hub_value`) and the sample says how many of them
    /// are hubs.
    sampled: HashMap<K, HubSample>,
    /// Keys held by more entries than any lookup of this table takes, with their counts:
    /// their entries are not kept. They hold a large share of a large tree's entries (its
    /// idioms and ubiquitous APIs), and a lookup of one answers from its count alone.
    pruned: HashMap<K, u32>,
}

/// The hubs of an oversized key, per width (`Hubs`): the first `hubs[w]` base entries,
/// whose hub values lie below `threshold[w]`.
#[derive(Clone, Copy)]
struct HubSample {
    hubs: [u32; 2],
    threshold: [u32; 2],
}

/// How many hubs an oversized key is met through: `Few` for every unit, `Many` (four
/// times as many) for a unit of a dense family asking again for more of its relatives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Hubs {
    Few = 0,
    Many = 1,
}

impl<K: HashKey, V: Located> Table<K, V> {
    /// A table of `entries`, keeping those of keys held at most `kept_at_most` times, and
    /// of keys held once only when `singles` says so (see `Singles`).
    fn build(mut entries: Vec<Entry<K, V>>, kept_at_most: usize, singles: Singles) -> Self {
        entries.par_sort_unstable_by_key(|entry| (entry.key(), entry.value()));
        // Keys past the limit are marked repeated before their entries go: the bitmap then
        // never calls a pruned key alone, and a lookup of one finds its count.
        let repeated_bits = (usize::BITS - entries.len().leading_zeros() + 3).clamp(6, 26);
        let mut repeated = vec![0u64; (1usize << repeated_bits) / 64];
        let mut pruned: HashMap<K, u32> = HashMap::default();
        let (mut read, mut kept) = (0, 0);
        while read < entries.len() {
            let key = entries[read].key();
            let end = read + entries[read..].partition_point(|entry| entry.key() == key);
            if end - read >= 2 {
                let bit = (key.top() >> (64 - repeated_bits)) as usize;
                repeated[bit / 64] |= 1 << (bit % 64);
            }
            if end - read > kept_at_most {
                pruned.insert(key, (end - read) as u32);
            } else if end - read == 1 && singles == Singles::Dropped {
                // Its one entry is the asker's own: a lookup yields nothing either way.
            } else {
                entries.copy_within(read..end, kept);
                kept += end - read;
            }
            read = end;
        }
        if kept < entries.len() {
            entries.truncate(kept);
            entries.shrink_to_fit();
        }
        // About four entries a slot: a directory a quarter of the table's length stays in
        // cache better, and a four-entry window is one or two cache lines of the table.
        let directory_bits = (usize::BITS - entries.len().leading_zeros()).saturating_sub(2).clamp(4, 24);
        let slots = 1usize << directory_bits;
        let mut directory = Vec::with_capacity(slots + 1);
        let mut index = 0usize;
        for slot in 0..slots as u64 {
            while index < entries.len() && (entries[index].key().top() >> (64 - directory_bits)) < slot {
                index += 1;
            }
            directory.push(index as u32);
        }
        directory.push(entries.len() as u32);
        Table { base: entries, directory, directory_bits, repeated, repeated_bits, overlay: HashMap::default(), sampled: HashMap::default(), pruned }
    }

    /// Orders the entries of every key held by more than `limit` and at most `most` units
    /// by hub value, and remembers how many of them are hubs (see `hub_threshold`).
    fn sample_oversized(&mut self, limit: usize, most: usize, hub: impl Fn(V) -> u32 + Sync) {
        let mut groups: Vec<&mut [Entry<K, V>]> =
            self.base.chunk_by_mut(|x, y| x.key() == y.key()).filter(|group| group.len() > limit && group.len() <= most).collect();
        self.sampled = groups
            .par_iter_mut()
            .map(|group| {
                group.sort_unstable_by_key(|entry| (hub(entry.value()), entry.value()));
                let threshold = [hub_threshold(group.len(), Hubs::Few), hub_threshold(group.len(), Hubs::Many)];
                let hubs = threshold.map(|below| group.partition_point(|entry| hub(entry.value()) < below) as u32);
                (group[0].key(), HubSample { hubs, threshold })
            })
            .collect();
    }

    /// Whether `key` may have two or more base entries (false: at most one).
    fn may_repeat(&self, key: K) -> bool {
        if self.repeated.is_empty() {
            return true;
        }
        let bit = (key.top() >> (64 - self.repeated_bits)) as usize;
        self.repeated[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Asks the cache for what looking up each of `keys` reads — the repeated bitmap's
    /// word, then the directory slot, then the base window — one level for all keys at a
    /// time. A unit looks up about a hundred keys in tables of tens of megabytes; looked
    /// up one after another, each waited for two or three misses in a row.
    fn prefetch(&self, keys: impl Iterator<Item = K> + Clone) {
        if self.base.is_empty() {
            return;
        }
        if !self.repeated.is_empty() {
            for key in keys.clone() {
                prefetch(&self.repeated[(key.top() >> (64 - self.repeated_bits)) as usize / 64]);
            }
        }
        for key in keys.clone().filter(|&key| self.may_repeat(key)) {
            prefetch(&self.directory[(key.top() >> (64 - self.directory_bits)) as usize]);
        }
        for key in keys.filter(|&key| self.may_repeat(key)) {
            let slot = (key.top() >> (64 - self.directory_bits)) as usize;
            let (low, high) = (self.directory[slot] as usize, self.directory[slot + 1] as usize);
            if low < high {
                prefetch(&self.base[low]);
                prefetch(&self.base[high - 1]);
            }
        }
    }

    /// The base entries under `key`.
    fn base_range(&self, key: K) -> &[Entry<K, V>] {
        if self.base.is_empty() {
            return &[];
        }
        let slot = (key.top() >> (64 - self.directory_bits)) as usize;
        let (low, high) = (self.directory[slot] as usize, self.directory[slot + 1] as usize);
        let window = &self.base[low..high];
        let start = window.partition_point(|entry| entry.key() < key);
        let end = window.partition_point(|entry| entry.key() <= key);
        &window[start..end]
    }

    fn get<'a>(&'a self, key: K, replaced: &'a HashSet<u32>, units: &'a [UnitRef]) -> impl Iterator<Item = (u32, u32)> + 'a {
        live_entries(self.base_range(key), self.overlay.get(&key), replaced, units)
    }

    /// Entries under `key` other than the asker's, when there are at most `limit` of them
    /// (stale ones counted): one lookup for the check and the answer. The asker must be
    /// indexed under `key` itself (every key asked about is one of its own), so a key
    /// with a single base entry and no overlay yields nothing.
    fn others_at_most<'a>(
        &'a self,
        key: K,
        limit: usize,
        replaced: &'a HashSet<u32>,
        units: &'a [UnitRef],
    ) -> Option<impl Iterator<Item = (u32, u32)> + 'a> {
        let under = self.under(key, replaced);
        if under.held > limit {
            return None;
        }
        Some(live_entries(under.base, under.overlay, replaced, units))
    }

    /// The base entries and the overlay under `key` an asker may meet (see
    /// `others_at_most`), stale ones included, and how many entries the key holds (a
    /// pruned key's count included).
    fn under<'a>(&'a self, key: K, replaced: &HashSet<u32>) -> Under<'a, K, V> {
        let alone = self.overlay.is_empty() && replaced.is_empty() && !self.may_repeat(key);
        let base = if alone { &[][..] } else { self.base_range(key) };
        let overlay = if self.overlay.is_empty() { None } else { self.overlay.get(&key) };
        // A key that is not alone and has no base entries may be a pruned one.
        let pruned = if alone || !base.is_empty() || self.pruned.is_empty() { 0 } else { self.pruned.get(&key).map_or(0, |&count| count as usize) };
        Under { base, overlay, held: base.len() + pruned + overlay.map_or(0, Vec::len) }
    }

    /// How many base entries `key` holds, pruned ones counted.
    fn base_count(&self, key: K) -> usize {
        match self.base_range(key).len() {
            0 => self.pruned.get(&key).map_or(0, |&count| count as usize),
            held => held,
        }
    }

    /// Entries under `key` other than the asker's, like `others_at_most`; for a sampled
    /// key past `limit`, only its hubs, or every entry when the asker is a hub itself. A
    /// pair of units is thus met under a key when either of them is one of its hubs, from
    /// whichever side asks. The overlay (files re-indexed since the build) counts as hubs.
    /// The flag says whether the key was sampled.
    fn others_sampled<'a>(
        &'a self,
        key: K,
        limit: usize,
        asker_hub: u32,
        width: Hubs,
        replaced: &'a HashSet<u32>,
        units: &'a [UnitRef],
    ) -> Option<(bool, impl Iterator<Item = (u32, u32)> + 'a)> {
        let Under { base, overlay, held } = self.under(key, replaced);
        if held <= limit {
            return Some((false, live_entries(base, overlay, replaced, units)));
        }
        let sample = self.sampled.get(&key)?;
        let width = width as usize;
        let met = if asker_hub < sample.threshold[width] { base } else { &base[..sample.hubs[width] as usize] };
        Some((true, live_entries(met, overlay, replaced, units)))
    }

    fn add_to_overlay(&mut self, entries: Vec<(K, u32, u32)>) {
        for (key, file, position) in entries {
            self.overlay.entry(key).or_default().push((file, position));
        }
    }

    fn remove_overlay_file(&mut self, file: u32) {
        self.overlay.retain(|_, entries| {
            entries.retain(|entry| entry.0 != file);
            !entries.is_empty()
        });
    }

    /// Sorted runs of equal keys in the base, for whole-index passes.
    fn base_groups(&self) -> impl Iterator<Item = &[Entry<K, V>]> {
        self.base.chunk_by(|x, y| x.key() == y.key())
    }
}

/// Starts loading the cache line holding `item`; nothing is read or written.
fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: a prefetch is a hint with no effect on memory, and `item` is a valid
    // reference besides; SSE, which it needs, is part of baseline x86-64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((item as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// Whether a table keeps keys held by one entry. Most band and k-gram keys belong to one
/// unit (on the Linux tree, most of the entries), and a lookup of one, always by its
/// holder, meets no one; but a file re-indexed into the overlay later must still meet the
/// base unit that shares its key, so only an index no file is added to drops them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Singles {
    Kept,
    Dropped,
}

/// LSH buckets shared by more units than this are sampled by hub, not met whole.
pub const MAX_BUCKET: usize = 150;
/// A sampled k-gram found in more units than this is sampled by hub, like a bucket.
pub const MAX_GRAM_POSTINGS: usize = 200;
/// Keys held by more units than this are boilerplate (an idiom of the language, a
/// ubiquitous API), like stop words: skipped, not their units.
pub const MOST_SAMPLED: usize = 4000;

/// A used name found in more units than this is boilerplate (a ubiquitous API), like a
/// stop word: it is skipped, not its unit.
pub const MAX_NAME_POSTINGS: usize = 400;
/// Winnowed k-grams found more often than this are boilerplate, not copies.
pub const MAX_WINNOW_OCCURRENCES: usize = 24;

/// Hubs an oversized key samples, on average: each unit under such a key meets its hubs,
/// and each hub meets every unit, so a large family of near-identical functions (whose
/// k-grams and bands are all oversized) is joined through a few shared members at a cost
/// of about `2 * HUBS_PER_KEY` meetings per unit and key instead of none or all.
const HUBS_PER_KEY: u64 = 48;

/// The hub value below which a unit is a hub of a key held by `units` units.
fn hub_threshold(units: usize, width: Hubs) -> u32 {
    let hubs = if width == Hubs::Many { 4 * HUBS_PER_KEY } else { HUBS_PER_KEY };
    ((hubs << 32) / units.max(1) as u64).min(u64::from(u32::MAX)) as u32
}

/// A unit's hub value: from its content (the consistent-renaming hash), so a unit is a
/// hub of a key in every scan that indexes the same code, and exact copies are hubs
/// together. Hubs are units whose value is small: the same ones under every key they
/// share, which is what lets a pair's shared keys add up.
pub fn hub_value(unit: &crate::model::UnitRecord) -> u32 {
    (unit.hashes.tc >> 32) as u32
}

/// Base entries of files not `replaced`, then the overlay's: what a key currently holds.
fn live_entries<'a, K: Copy, V: Located>(
    base: &'a [Entry<K, V>],
    overlay: Option<&'a Vec<(u32, u32)>>,
    replaced: &'a HashSet<u32>,
    units: &'a [UnitRef],
) -> impl Iterator<Item = (u32, u32)> + 'a {
    let base = base.iter().map(move |entry| entry.value().locate(units));
    let base = base.filter(move |(file, _)| replaced.is_empty() || !replaced.contains(file));
    base.chain(overlay.into_iter().flatten().copied())
}

#[derive(Default)]
pub struct CandidateIndex {
    exact: Table<u64>,
    bands: Table<u64>,
    grams: Table<u32>,
    names: Table<u32>,
    winnows: Table<u32, (u32, u32)>,
    /// Every unit of the files the base tables were built from, by number: what a base
    /// entry's number stands for. Files re-indexed since are `replaced` and their numbers
    /// stale with their entries.
    units: Vec<UnitRef>,
    /// Files whose base entries are stale (re-indexed into the overlay, or removed).
    replaced: HashSet<u32>,
    /// Built for one detection and never updated (`build_fixed`, `build_focused`).
    fixed: bool,
}

impl CandidateIndex {
    /// Indexes every file. Without `near_miss`, only exact hashes are indexed: enough
    /// when no file changed and near-miss and block pairs all come from the index.
    pub fn build(files: &[FileRecord], near_miss: bool) -> Self {
        CandidateIndex::build_in_place(files, near_miss, Singles::Kept).with_samples(files)
    }

    /// Like [`CandidateIndex::build`], for an index that answers one detection and is
    /// never updated (`update_file`, `remove_file`): band, k-gram and winnow keys held by
    /// one entry are left out, since only their holder ever looks them up. Detection finds
    /// the same candidates; on the Linux tree the tables hold a fraction of the entries.
    pub fn build_fixed(files: &[FileRecord], near_miss: bool) -> Self {
        let mut index = CandidateIndex::build_in_place(files, near_miss, Singles::Dropped).with_samples(files);
        index.fixed = true;
        index
    }

    /// The tables, each from its entries filled in place. On a large tree they are built
    /// one after another: only one table's entries are ever held before its keys are pruned
    /// (on the Linux tree the five unpruned tables together were 600 MB). Below
    /// `TABLES_BUILT_TOGETHER` entries in all they are built side by side: pruning a table
    /// and laying out its directory run on one core, which another table's sort then uses.
    fn build_in_place(files: &[FileRecord], near_miss: bool, singles: Singles) -> Self {
        let first = first_numbers(files);
        let exact = || Table::build(table_entries(files, Tables::Exact, &first), usize::MAX, Singles::Kept);
        let bands = || Table::build(if near_miss { table_entries(files, Tables::Bands, &first) } else { Vec::new() }, MOST_SAMPLED, singles);
        let grams = || Table::build(if near_miss { table_entries(files, Tables::Grams, &first) } else { Vec::new() }, MOST_SAMPLED, singles);
        // Names stay whole: their counts weigh names in verification.
        let names = || Table::build(if near_miss { table_entries(files, Tables::Names, &first) } else { Vec::new() }, MAX_NAME_POSTINGS, Singles::Kept);
        let winnows = || Table::build(if near_miss { winnow_entries(files) } else { Vec::new() }, MAX_WINNOW_OCCURRENCES, singles);
        let (exact, bands, grams, names, winnows) = if near_miss && entry_count(files) <= TABLES_BUILT_TOGETHER {
            let ((bands, exact), (grams, (names, winnows))) = rayon::join(|| rayon::join(bands, exact), || rayon::join(grams, || rayon::join(names, winnows)));
            (exact, bands, grams, names, winnows)
        } else {
            (exact(), bands(), grams(), names(), winnows())
        };
        let index = CandidateIndex { exact, bands, grams, names, winnows, units: units_by_number(files), replaced: HashSet::default(), fixed: false };
        index.log_sizes();
        index
    }

    /// Indexes every file's exact hashes, but band and winnow entries only under the keys
    /// the `focus` files have: all that detection for those files looks up. A re-scan
    /// after a few edits then sorts thousands of entries instead of millions.
    pub fn build_focused(files: &[FileRecord], focus: &[bool]) -> Self {
        let mut keys = FocusKeys::default();
        for (record, _) in files.iter().zip(focus).filter(|(_, focused)| **focused) {
            for unit in &record.units {
                keys.bands.extend(unit.sketch.as_deref().into_iter().flat_map(fingerprint::band_keys));
                keys.grams.extend(unit.grams.iter().copied());
                keys.names.extend(unit.used_names.iter().copied());
            }
            keys.winnows.extend(record.winnows.iter().map(|w| w.hash));
        }
        let per_file: Vec<FileEntries> = files
            .par_iter()
            .enumerate()
            .map(|(file, record)| {
                let mut entries = entries_of(file as u32, record);
                entries.bands.retain(|entry| keys.bands.contains(&entry.0));
                entries.grams.retain(|entry| keys.grams.contains(&entry.0));
                entries.names.retain(|entry| keys.names.contains(&entry.0));
                entries.winnows.retain(|entry| keys.winnows.contains(&entry.0));
                // `retain` keeps the capacity: every file's whole entries (700 MB on the
                // Linux tree) would stay allocated until the tables are built.
                entries.bands.shrink_to_fit();
                entries.grams.shrink_to_fit();
                entries.names.shrink_to_fit();
                entries.winnows.shrink_to_fit();
                entries
            })
            .collect();
        let mut all = FileEntries::default();
        for entries in per_file {
            all.append(entries);
        }
        // A re-scan's index answers one detection too: its unit tables may be let go.
        let mut index = CandidateIndex::from_entries(all, files).with_samples(files);
        index.fixed = true;
        index
    }

    /// Samples the oversized band and k-gram keys by hub (see `HUBS_PER_KEY`).
    fn with_samples(mut self, files: &[FileRecord]) -> Self {
        let units = &self.units;
        let hub = |number: u32| {
            let unit = units[number as usize];
            hub_value(&files[unit.file as usize].units[unit.unit as usize])
        };
        self.bands.sample_oversized(MAX_BUCKET, MOST_SAMPLED, hub);
        self.grams.sample_oversized(MAX_GRAM_POSTINGS, MOST_SAMPLED, hub);
        self
    }

    /// Tables of the (key, file, unit) entries `all` gathered from `files`.
    fn from_entries(all: FileEntries, files: &[FileRecord]) -> Self {
        let first = first_numbers(files);
        let index = CandidateIndex {
            exact: Table::build(numbered(all.exact, &first), usize::MAX, Singles::Kept),
            bands: Table::build(numbered(all.bands, &first), MOST_SAMPLED, Singles::Kept),
            grams: Table::build(numbered(all.grams, &first), MOST_SAMPLED, Singles::Kept),
            names: Table::build(numbered(all.names, &first), MAX_NAME_POSTINGS, Singles::Kept),
            winnows: Table::build(all.winnows.into_iter().map(|(key, file, position)| Entry { key, value: (file, position) }).collect(), MAX_WINNOW_OCCURRENCES, Singles::Kept),
            units: units_by_number(files),
            replaced: HashSet::default(),
            fixed: false,
        };
        index.log_sizes();
        index
    }

    fn log_sizes(&self) {
        let index = self;
        tracing::debug!(
            bands = index.bands.base.len(),
            grams = index.grams.base.len(),
            names = index.names.base.len(),
            winnows = index.winnows.base.len(),
            pruned_keys = index.bands.pruned.len() + index.grams.pruned.len() + index.names.pruned.len() + index.winnows.pruned.len(),
            "candidate tables"
        );
    }

    /// Lets go of every table but the winnows' once unit pairs are found: block pairs
    /// need only those. Lookups of the others then find nothing, so only a fixed index
    /// (`build_fixed`, `build_focused`), whose detection is done with them, may be released.
    pub fn release_unit_tables(&mut self) {
        debug_assert!(self.fixed, "only a fixed index's unit tables are done with after one detection");
        (self.exact, self.bands, self.grams, self.names) = (Table::default(), Table::default(), Table::default(), Table::default());
    }

    /// Re-indexes one file (new content) under its existing index.
    pub fn update_file(&mut self, file: u32, record: &FileRecord) {
        debug_assert!(!self.fixed, "a scan's index answers one detection: it is never updated");
        self.remove_file(file);
        let entries = entries_of(file, record);
        self.exact.add_to_overlay(entries.exact);
        self.bands.add_to_overlay(entries.bands);
        self.grams.add_to_overlay(entries.grams);
        self.names.add_to_overlay(entries.names);
        self.winnows.add_to_overlay(entries.winnows);
    }

    pub fn remove_file(&mut self, file: u32) {
        debug_assert!(!self.fixed, "a scan's index answers one detection: it is never updated");
        self.replaced.insert(file);
        self.exact.remove_overlay_file(file);
        self.bands.remove_overlay_file(file);
        self.grams.remove_overlay_file(file);
        self.names.remove_overlay_file(file);
        self.winnows.remove_overlay_file(file);
    }

    /// Units whose consistent-renaming hash is `tc`.
    pub fn exact(&self, tc: u64) -> impl Iterator<Item = UnitRef> + '_ {
        self.exact.get(tc, &self.replaced, &self.units).map(|(file, unit)| UnitRef { file, unit })
    }

    /// Prepares the look-ups of a unit's band keys, k-grams and used names (`Table::prefetch`).
    pub fn prefetch_unit_keys(&self, bands: &[u64], grams: &[u32], names: &[u32]) {
        self.bands.prefetch(bands.iter().copied());
        self.grams.prefetch(grams.iter().copied());
        self.names.prefetch(names.iter().copied());
    }

    /// Units under an LSH band key, or its hubs when more than `MAX_BUCKET` units are (all
    /// of them when the asker, whose hub value is `asker_hub`, is a hub), and whether the
    /// key was sampled; `None` past `MOST_SAMPLED`. `key` must be one of the asker's own.
    pub fn band_sampled(&self, key: u64, asker_hub: u32, width: Hubs) -> Option<(bool, impl Iterator<Item = UnitRef> + '_)> {
        let (sampled, entries) = self.bands.others_sampled(key, MAX_BUCKET, asker_hub, width, &self.replaced, &self.units)?;
        Some((sampled, entries.map(|(file, unit)| UnitRef { file, unit })))
    }

    /// Units whose k-gram sample holds `gram`, sampled as `band_sampled` past
    /// `MAX_GRAM_POSTINGS`.
    pub fn gram_sampled(&self, gram: u32, asker_hub: u32, width: Hubs) -> Option<(bool, impl Iterator<Item = UnitRef> + '_)> {
        let (sampled, entries) = self.grams.others_sampled(gram, MAX_GRAM_POSTINGS, asker_hub, width, &self.replaced, &self.units)?;
        Some((sampled, entries.map(|(file, unit)| UnitRef { file, unit })))
    }

    /// Units that use the name `name`, unless more than `MAX_NAME_POSTINGS` do. `name`
    /// must be one of the asking unit's own.
    pub fn name_postings(&self, name: u32) -> Option<impl Iterator<Item = UnitRef> + '_> {
        Some(self.names.others_at_most(name, MAX_NAME_POSTINGS, &self.replaced, &self.units)?.map(|(file, unit)| UnitRef { file, unit }))
    }

    /// How many units use the name `name` (stale entries counted: a frequency, not a list).
    pub fn name_frequency(&self, name: u32) -> usize {
        self.names.base_count(name) + self.names.overlay.get(&name).map_or(0, Vec::len)
    }

    /// `name_frequency` of every name, for an index that is never updated (`None` for
    /// one that may be): a scan's verification weighs each unit's names again for each of
    /// its candidates, and one map read by all its jobs answers without searching the table.
    pub fn name_frequencies(&self) -> Option<HashMap<u32, u32>> {
        if !self.fixed {
            return None;
        }
        // Sized to the distinct names, a pass over the sorted table: its entries are many
        // times as many.
        let groups = || self.names.base_groups();
        let mut frequencies: HashMap<u32, u32> = HashMap::with_capacity_and_hasher(self.names.pruned.len() + groups().count(), Default::default());
        for group in groups() {
            frequencies.insert(group[0].key(), group.len() as u32);
        }
        frequencies.extend(self.names.pruned.iter().map(|(&name, &count)| (name, count)));
        Some(frequencies)
    }

    /// How many entries an LSH band key holds (stale ones, and a pruned key's, counted):
    /// what `band_sampled` compares with `MAX_BUCKET`.
    pub fn band_count(&self, key: u64) -> usize {
        self.bands.base_count(key) + self.bands.overlay.get(&key).map_or(0, Vec::len)
    }

    /// How many entries a k-gram holds, as `band_count`: what `gram_sampled` compares with
    /// `MAX_GRAM_POSTINGS`.
    pub fn gram_count(&self, gram: u32) -> usize {
        self.grams.base_count(gram) + self.grams.overlay.get(&gram).map_or(0, Vec::len)
    }

    /// How many units the index holds (stale entries counted).
    pub fn unit_count(&self) -> usize {
        self.exact.base.len() + self.exact.overlay.values().map(Vec::len).sum::<usize>()
    }

    /// (file, token position) of every occurrence of a winnowed k-gram hash, unless it
    /// occurs more than `MAX_WINNOW_OCCURRENCES` times. `hash` must be one of the asking
    /// file's own: one only the asker has may yield nothing.
    pub fn winnow_occurrences(&self, hash: u32) -> Option<impl Iterator<Item = (u32, u32)> + '_> {
        self.winnows.others_at_most(hash, MAX_WINNOW_OCCURRENCES, &self.replaced, &self.units)
    }

    /// Every group of two or more units with equal consistent-renaming hashes (a fresh
    /// index only: the overlay is empty after `build`).
    pub fn exact_groups(&self) -> impl Iterator<Item = Vec<UnitRef>> + '_ {
        self.exact
            .base_groups()
            .filter(|group| group.len() >= 2)
            .map(|group| group.iter().map(|entry| self.units[entry.value() as usize]).collect())
    }
}

/// The keys the focus files have, per table.
#[derive(Default)]
struct FocusKeys {
    bands: HashSet<u64>,
    grams: HashSet<u32>,
    names: HashSet<u32>,
    winnows: HashSet<u32>,
}

/// One file's entries, per table.
#[derive(Default)]
struct FileEntries {
    exact: Vec<(u64, u32, u32)>,
    bands: Vec<(u64, u32, u32)>,
    grams: Vec<(u32, u32, u32)>,
    names: Vec<(u32, u32, u32)>,
    winnows: Vec<(u32, u32, u32)>,
}

impl FileEntries {
    fn append(&mut self, entries: FileEntries) {
        self.exact.extend(entries.exact);
        self.bands.extend(entries.bands);
        self.grams.extend(entries.grams);
        self.names.extend(entries.names);
        self.winnows.extend(entries.winnows);
    }
}

/// One of the unit tables, for `table_entries`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tables {
    Exact,
    Bands,
    Grams,
    Names,
}

/// An entry's key: u64 for exact hashes and bands, u32 for the others.
trait EntryKey: Copy + Default + Send + Sync {
    fn of_u64(key: u64) -> Self;
    fn of_u32(key: u32) -> Self;
}

impl EntryKey for u64 {
    fn of_u64(key: u64) -> Self {
        key
    }
    fn of_u32(key: u32) -> Self {
        u64::from(key)
    }
}

impl EntryKey for u32 {
    fn of_u64(key: u64) -> Self {
        key as u32
    }
    fn of_u32(key: u32) -> Self {
        key
    }
}

/// Entries of all five tables below which they are built side by side (12 bytes an entry
/// at most: about 100 MB unpruned; a tree of a few million lines has a few million).
const TABLES_BUILT_TOGETHER: usize = 8 << 20;

/// How many entries the five tables of `files` take before pruning.
fn entry_count(files: &[FileRecord]) -> usize {
    files
        .iter()
        .map(|record| {
            let units: usize = record
                .units
                .iter()
                .map(|unit| 1 + usize::from(unit.sketch.is_some()) * fingerprint::BAND_COUNT + unit.grams.len() + unit.used_names.len())
                .sum();
            units + record.winnows.len()
        })
        .sum()
}

/// The number of each file's first unit: a file's units are numbered on from it, in order.
pub(crate) fn first_numbers(files: &[FileRecord]) -> Vec<u32> {
    let mut next = 0u32;
    files
        .iter()
        .map(|record| {
            let first = next;
            next += record.units.len() as u32;
            first
        })
        .collect()
}

/// Every unit of `files`, by number (`first_numbers`).
fn units_by_number(files: &[FileRecord]) -> Vec<UnitRef> {
    files.iter().enumerate().flat_map(|(file, record)| (0..record.units.len() as u32).map(move |unit| UnitRef { file: file as u32, unit })).collect()
}

/// (key, file, unit) entries as (key, unit number) ones.
fn numbered<K>(entries: Vec<(K, u32, u32)>, first: &[u32]) -> Vec<Entry<K, u32>> {
    entries.into_iter().map(|(key, file, unit)| Entry { key, value: first[file as usize] + unit }).collect()
}

/// Every file's winnowed k-grams as (hash, (file, position)) entries (`table_entries`).
fn winnow_entries(files: &[FileRecord]) -> Vec<Entry<u32, (u32, u32)>> {
    let mut all = vec![Entry::default(); files.iter().map(|record| record.winnows.len()).sum()];
    let mut slices = Vec::with_capacity(files.len());
    let mut rest = &mut all[..];
    for record in files {
        slices.push(split_off_front(&mut rest, record.winnows.len()));
    }
    slices.into_par_iter().zip(files.par_iter()).enumerate().with_max_len(1).for_each(|(file, (slots, record))| {
        for (slot, winnow) in slots.iter_mut().zip(&record.winnows) {
            *slot = Entry { key: winnow.hash, value: (file as u32, winnow.position) };
        }
    });
    all
}

/// Every file's entries of one unit table, file after file, allocated once at its final
/// length and filled in place in parallel. Collecting per-file vectors and concatenating
/// them held every entry twice, plus the growing vectors' slack: on the Linux tree, 1.3 GB
/// at once. `first`: the files' first unit numbers (`first_numbers`).
fn table_entries<K: EntryKey>(files: &[FileRecord], table: Tables, first: &[u32]) -> Vec<Entry<K, u32>> {
    let counts: Vec<usize> = files
        .iter()
        .map(|record| match table {
            Tables::Exact => record.units.len(),
            // A unit whose sketch only the index holds has no band entries (see `UnitRecord::sketch`).
            Tables::Bands => record.units.iter().filter(|unit| unit.sketch.is_some()).count() * fingerprint::BAND_COUNT,
            Tables::Grams => record.units.iter().map(|unit| unit.grams.len()).sum(),
            Tables::Names => record.units.iter().map(|unit| unit.used_names.len()).sum(),
        })
        .collect();
    let mut all = vec![Entry::default(); counts.iter().sum()];
    let mut slices = Vec::with_capacity(files.len());
    let mut rest = &mut all[..];
    for &count in &counts {
        slices.push(split_off_front(&mut rest, count));
    }
    slices.into_par_iter().zip(files.par_iter()).zip(first.par_iter()).with_max_len(1).for_each(|((slots, record), &first)| {
        let mut slots = slots.iter_mut();
        for (index, unit) in record.units.iter().enumerate() {
            let value = first + index as u32;
            match table {
                Tables::Exact => {
                    if let Some(slot) = slots.next() {
                        *slot = Entry { key: K::of_u64(unit.hashes.tc), value };
                    }
                }
                Tables::Bands => {
                    for (key, slot) in unit.sketch.as_deref().into_iter().flat_map(fingerprint::band_keys).zip(slots.by_ref()) {
                        *slot = Entry { key: K::of_u64(key), value };
                    }
                }
                Tables::Grams => {
                    for (&gram, slot) in unit.grams.iter().zip(slots.by_ref()) {
                        *slot = Entry { key: K::of_u32(gram), value };
                    }
                }
                Tables::Names => {
                    for (&name, slot) in unit.used_names.iter().zip(slots.by_ref()) {
                        *slot = Entry { key: K::of_u32(name), value };
                    }
                }
            }
        }
    });
    all
}

/// The first `length` entries of `slice`, which keeps the rest.
fn split_off_front<'a, T>(slice: &mut &'a mut [T], length: usize) -> &'a mut [T] {
    let (front, rest) = std::mem::take(slice).split_at_mut(length);
    *slice = rest;
    front
}

fn entries_of(file: u32, record: &FileRecord) -> FileEntries {
    let mut entries = FileEntries {
        exact: Vec::with_capacity(record.units.len()),
        bands: Vec::with_capacity(record.units.len() * fingerprint::BAND_COUNT),
        ..FileEntries::default()
    };
    for (index, unit) in record.units.iter().enumerate() {
        let index = index as u32;
        entries.exact.push((unit.hashes.tc, file, index));
        entries.bands.extend(unit.sketch.as_deref().into_iter().flat_map(fingerprint::band_keys).map(|key| (key, file, index)));
        entries.grams.extend(unit.grams.iter().map(|&gram| (gram, file, index)));
        entries.names.extend(unit.used_names.iter().map(|&name| (name, file, index)));
    }
    entries.winnows = record.winnows.iter().map(|w| (w.hash, file, w.position)).collect();
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectionSettings;
    use crate::lang::Language;

    fn record(path: &str, source: &str) -> FileRecord {
        let analysis = crate::analysis::analyze(Language::Python, source);
        let settings = DetectionSettings { min_lines: 2, min_tokens: 10, ..DetectionSettings::default() };
        FileRecord::from_analysis(path.into(), Language::Python, [0; 32], source.len() as u64, 0, &analysis, &settings)
    }

    fn concatenated(files: &[FileRecord]) -> FileEntries {
        let mut all = FileEntries::default();
        for (file, record) in files.iter().enumerate() {
            all.append(entries_of(file as u32, record));
        }
        all
    }

    #[test]
    fn entries_filled_in_place_are_the_per_file_entries_in_file_order() {
        let body = "    total = 0\n    for item in items:\n        if item.price > limit:\n            total += item.price * rate\n    return round(total, 2)\n";
        let files = vec![
            record("a.py", &format!("def first(items, limit, rate):\n{body}\ndef second(items, limit, rate):\n{body}")),
            record("empty.py", "x = 1\n"),
            record("b.py", &format!("class Cart:\n    def total(self, items, limit, rate):\n    {}\n", body.replace('\n', "\n    "))),
        ];
        assert!(files[0].units.len() >= 2 && !files[2].units.is_empty(), "the fixture has units");
        let expected = concatenated(&files);
        assert!(!expected.grams.is_empty() && !expected.names.is_empty() && !expected.winnows.is_empty());
        let first = first_numbers(&files);
        assert_eq!(first, vec![0, files[0].units.len() as u32, (files[0].units.len() + files[1].units.len()) as u32]);
        assert_eq!(table_entries::<u64>(&files, Tables::Exact, &first), numbered(expected.exact, &first));
        assert_eq!(table_entries::<u64>(&files, Tables::Bands, &first), numbered(expected.bands, &first));
        assert_eq!(table_entries::<u32>(&files, Tables::Grams, &first), numbered(expected.grams, &first));
        assert_eq!(table_entries::<u32>(&files, Tables::Names, &first), numbered(expected.names, &first));
        let winnows: Vec<Entry<u32, (u32, u32)>> = expected.winnows.iter().map(|&(key, file, position)| Entry { key, value: (file, position) }).collect();
        assert_eq!(winnow_entries(&files), winnows);
        // A number stands for the unit it was given to.
        let units = units_by_number(&files);
        for (file, record) in files.iter().enumerate() {
            for unit in 0..record.units.len() as u32 {
                let number = first[file] + unit;
                assert_eq!(number.locate(&units), (file as u32, unit));
            }
        }
    }

    #[test]
    fn the_entry_count_that_decides_how_tables_are_built_is_theirs() {
        let body = "    total = 0\n    for item in items:\n        if item.price > limit:\n            total += item.price * rate\n    return round(total, 2)\n";
        let files = vec![record("a.py", &format!("def first(items, limit, rate):\n{body}\ndef second(items, limit, rate):\n{body}")), record("empty.py", "x = 1\n")];
        let all = concatenated(&files);
        let expected = all.exact.len() + all.bands.len() + all.grams.len() + all.names.len() + all.winnows.len();
        assert!(all.bands.len() > all.exact.len(), "the fixture's units have sketches");
        assert_eq!(entry_count(&files), expected);
    }

    #[test]
    fn name_frequencies_of_a_fixed_index_are_those_looked_up_one_by_one() {
        let body = "    total = 0\n    for item in items:\n        if item.price > limit:\n            total += compute(item.price, rate)\n    return round(total, 2)\n";
        let files = vec![
            record("a.py", &format!("def first(items, limit, rate):\n{body}\ndef second(items, limit, rate):\n{body}")),
            record("b.py", &format!("def third(items, limit, rate):\n{}", body.replace("round", "floor"))),
        ];
        let fixed = CandidateIndex::build_fixed(&files, true);
        let frequencies = fixed.name_frequencies().expect("a fixed index has them all");
        let names: Vec<u32> = files.iter().flat_map(|record| record.units.iter().flat_map(|unit| unit.used_names.iter().copied())).collect();
        assert!(names.iter().any(|&name| fixed.name_frequency(name) >= 3), "a name used by every unit");
        assert!(names.iter().any(|&name| fixed.name_frequency(name) == 2), "a name used by two units");
        for name in names {
            assert_eq!(frequencies.get(&name).map_or(0, |&count| count as usize), fixed.name_frequency(name));
        }
        assert_eq!(frequencies.values().map(|&count| count as usize).sum::<usize>(), fixed.names.base.len());
        // An index that edits update answers name by name: its counts change.
        assert!(CandidateIndex::build(&files, true).name_frequencies().is_none());
    }

    /// Table entries locating (file, unit) places directly, as the tests below give them.
    fn placed(entries: impl IntoIterator<Item = (u32, u32, u32)>) -> Vec<Entry<u32, (u32, u32)>> {
        entries.into_iter().map(|(key, file, unit)| Entry { key, value: (file, unit) }).collect()
    }

    #[test]
    fn a_fixed_table_leaves_out_keys_held_once_and_answers_as_a_whole_one() {
        let entries = placed([(3, 0, 0), (4, 1, 0), (4, 2, 1), (8, 5, 0)]);
        let whole = Table::build(entries.clone(), MOST_SAMPLED, Singles::Kept);
        let fixed = Table::build(entries, MOST_SAMPLED, Singles::Dropped);
        assert_eq!(fixed.base, placed([(4, 1, 0), (4, 2, 1)]), "only the shared key's entries are kept");
        let replaced = HashSet::default();
        let others = |table: &Table<u32, (u32, u32)>, key: u32, asker: (u32, u32)| -> Vec<(u32, u32)> {
            let (_, entries) = table.others_sampled(key, 200, 0, Hubs::Few, &replaced, &[]).expect("answered");
            entries.filter(|&entry| entry != asker).collect()
        };
        for (key, asker) in [(3, (0, 0)), (4, (1, 0)), (4, (2, 1)), (8, (5, 0))] {
            assert_eq!(others(&fixed, key, asker), others(&whole, key, asker), "key {key} asked by {asker:?}");
        }
    }

    #[test]
    fn a_key_held_past_every_lookup_keeps_its_count_not_its_entries() {
        let entries = placed((0..500).map(|file| (5, file, 0)).chain((0..3).map(|file| (6, file, 1))));
        let mut table = Table::build(entries, MAX_NAME_POSTINGS, Singles::Kept);
        assert_eq!(table.base, placed([(6, 0, 1), (6, 1, 1), (6, 2, 1)]), "only the small key's entries are kept");
        let replaced = HashSet::default();
        assert!(table.others_at_most(5, MAX_NAME_POSTINGS, &replaced, &[]).is_none(), "the pruned key is still too common");
        assert_eq!(table.others_at_most(6, MAX_NAME_POSTINGS, &replaced, &[]).map(Iterator::count), Some(3));
        assert_eq!((table.base_count(5), table.base_count(6), table.base_count(7)), (500, 3, 0));
        // An edited file indexed later under the pruned key does not bring it back.
        table.add_to_overlay(vec![(5, 900, 0)]);
        assert!(table.others_at_most(5, MAX_NAME_POSTINGS, &replaced, &[]).is_none());
        assert_eq!(table.under(5, &replaced).held, 501);
    }

    #[test]
    fn an_oversized_key_is_met_through_its_hubs_from_either_side() {
        let hub = |file: u32, _unit: u32| file.wrapping_mul(2_654_435_761);
        let mut entries = placed((0..600).map(|file| (7, file, 0)));
        entries.extend(placed((0..5).map(|file| (9, file, 0))));
        entries.extend(placed((0..4500).map(|file| (11, file, 0))));
        let mut table = Table::build(entries, MOST_SAMPLED, Singles::Kept);
        table.sample_oversized(200, 4000, |(file, unit)| hub(file, unit));
        let replaced = HashSet::default();
        let met = |key: u32, asker: u32| -> HashSet<u32> {
            let (_, entries) = table.others_sampled(key, 200, hub(asker, 0), Hubs::Few, &replaced, &[]).expect("answered");
            entries.map(|(file, _)| file).filter(|&file| file != asker).collect()
        };
        let (sampled, _) = table.others_sampled(9, 200, hub(0, 0), Hubs::Few, &replaced, &[]).expect("a small key is answered");
        assert!(!sampled);
        assert_eq!(met(9, 3).len(), 4, "a small key is met whole");
        assert!(table.others_sampled(11, 200, 0, Hubs::Few, &replaced, &[]).is_none(), "a key past the most sampled is boilerplate");
        let (_, many) = table.others_sampled(7, 200, u32::MAX, Hubs::Many, &replaced, &[]).expect("answered");
        let many = many.count();
        let threshold = hub_threshold(600, Hubs::Few);
        let is_hub = |file: u32| hub(file, 0) < threshold;
        let hubs = (0..600).filter(|&file| is_hub(file)).count();
        assert!((24..=96).contains(&hubs), "about HUBS_PER_KEY hubs: {hubs}");
        assert!(many > 2 * hubs && many == (0..600).filter(|&file| hub(file, 0) < hub_threshold(600, Hubs::Many)).count(), "more hubs when asked for many: {many}");
        let seen: Vec<HashSet<u32>> = (0..600).map(|asker| met(7, asker)).collect();
        for x in 0..600u32 {
            assert_eq!(seen[x as usize].len(), if is_hub(x) { 599 } else { hubs }, "a hub meets all, any other unit the hubs");
            for y in (x + 1)..600 {
                let either_side = seen[x as usize].contains(&y) || seen[y as usize].contains(&x);
                assert_eq!(either_side, is_hub(x) || is_hub(y), "units {x} and {y}");
            }
        }
    }
}
