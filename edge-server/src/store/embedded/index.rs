//! The in-memory candidate index of the embedded store: every unit its shard files hold,
//! grouped into shapes, and the names those units refer to. A shape is what units of one
//! tenant with the same structural hash and sketch share (one function present in several
//! repositories, forks or branches); it is filed under 17 lanes (16 LSH bands plus the exact
//! structural hash) and keeps its units in answer order (repository name, then key).
//!
//! A query looks up its 17 lane keys, scores each distinct shape once and expands only the
//! shapes that pass into their first units, so its cost follows the number of distinct
//! shapes near it, not the number of copies. Most shapes met in a lane are far below the
//! similarity asked for; a 16-byte digest per shape, in a dense array that stays in cache,
//! rules them out before their sketch (a cache miss each) is read. Memory matters at a million units: a sketch is
//! stored once per shape, and a lane holding a single shape (most lanes) is one `u32` in the
//! map; only shared lanes spill into a `Vec`. A lane key mixes tenant, lane number and
//! value, so a collision can only add a candidate; scoring re-checks the tenant.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use periodic_wire::{BANDS, Location, SKETCH_LEN, Sketch, T2Hash};

/// Lanes per shape: one per LSH band, then one for the exact structural hash.
pub const LANES: usize = BANDS + 1;
const T2_LANE: usize = BANDS;
/// Most shapes read from one lane per query: bounds the cost of very common shapes (thousands
/// of near-identical getters) at the price of possibly missing some of them.
pub const MAX_LANE_WALK: usize = 2048;
/// Set in a lane's map value when the lane holds several shapes: the rest of the value is
/// then an index into `spilled`; otherwise the value is the one shape's id.
const SPILLED: u32 = 1 << 31;

/// Keys are already well-mixed 64-bit values, so hashing them again is wasted work.
#[derive(Default, Clone, Copy)]
pub struct PremixedHasher(u64);

impl Hasher for PremixedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64 ^ (value >> 64) as u64;
    }
}

type PremixedMap<K, V> = HashMap<K, V, BuildHasherDefault<PremixedHasher>>;

/// Tenant, repository and language names, stored once: units hold their u32 ids.
#[derive(Default)]
pub struct Names {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Names {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let shared: Arc<str> = name.into();
        self.names.push(shared.clone());
        self.ids.insert(shared, id);
        id
    }

    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |name| name)
    }
}

/// A stored unit. Its sketch is not here: the unit's shape keeps it, once for all its copies.
#[derive(Debug, Clone)]
pub struct MemUnit {
    /// The unit's row in its shard's SQLite `units` table: rewrites and removals address it.
    pub row_id: i64,
    pub tenant: u32,
    pub repo: u32,
    pub language: u32,
    /// The key and the location's path and name.
    pub text: UnitText,
    pub t2_hash: T2Hash,
    pub tokens: u32,
    pub lines: u32,
    pub nesting: u32,
    /// The client's near-miss family of this unit (see `store::family`).
    pub family: Option<T2Hash>,
}

/// A unit's key and its location's path and name, in one allocation (the key, then the path,
/// then the name). Every match of a query answer copies all three; kept apart (the key, the
/// location, its path, its name) they were four cache misses per match at a million units,
/// which made copying the answer's strings about a sixth of the server's time.
#[derive(Debug, Clone)]
pub struct UnitText {
    text: Box<str>,
    key_len: u32,
    path_len: u32,
    /// The location's first and last line; `None`: the unit has no location.
    location_lines: Option<(u32, u32)>,
}

impl UnitText {
    pub fn new(key: &str, location: Option<&Location>) -> UnitText {
        let (path, name) = location.map_or(("", ""), |location| (location.path.as_str(), location.name.as_str()));
        let mut text = String::with_capacity(key.len() + path.len() + name.len());
        text.push_str(key);
        text.push_str(path);
        text.push_str(name);
        UnitText {
            text: text.into_boxed_str(),
            // Lengths fit: every request body is limited to far less than 4 GiB.
            key_len: key.len() as u32,
            path_len: path.len() as u32,
            location_lines: location.map(|location| (location.start_line, location.end_line)),
        }
    }

    pub fn key(&self) -> &str {
        &self.text[..self.key_len as usize]
    }

    /// A copy of the location.
    pub fn location(&self) -> Option<Location> {
        let (start_line, end_line) = self.location_lines?;
        let path_end = (self.key_len + self.path_len) as usize;
        Some(Location { path: self.text[self.key_len as usize..path_end].to_string(), name: self.text[path_end..].to_string(), start_line, end_line })
    }
}

impl MemUnit {
    pub fn key(&self) -> &str {
        self.text.key()
    }

    pub fn location(&self) -> Option<Location> {
        self.text.location()
    }

    /// The (shape, family) link this unit adds, when its family is another shape.
    fn link(&self) -> Option<(u64, u64)> {
        self.family.filter(|family| *family != self.t2_hash).map(|family| (self.t2_hash.0, family.0))
    }
}

/// A unit and the shape it belongs to.
struct Stored {
    unit: MemUnit,
    shape: u32,
}

/// Two bits of each sketch position, and the structural hash: enough to bound a shape's
/// similarity to a query from above without reading its sketch. Positions whose bits differ
/// certainly differ, so `64 - differing` is an upper bound of the equal positions; the bound
/// never rules out a shape that could pass.
#[derive(Clone, Copy, Default)]
struct ShapeDigest {
    low_bits: u128,
    t2_hash: u64,
}

impl ShapeDigest {
    fn of(t2_hash: T2Hash, sketch: &Sketch) -> ShapeDigest {
        let mut low_bits = 0u128;
        for (position, value) in sketch.0.iter().enumerate() {
            low_bits |= u128::from(value & 3) << (2 * position);
        }
        ShapeDigest { low_bits, t2_hash: t2_hash.0 }
    }

    /// Whether a shape with this digest may reach `min_similarity` with the query (whose
    /// digest is `query`): always true when the structural hashes are equal (similarity 1).
    fn may_reach(&self, query: &ShapeDigest, min_similarity: f32) -> bool {
        const LOW_OF_PAIRS: u128 = 0x5555_5555_5555_5555_5555_5555_5555_5555;
        let differing_bits = self.low_bits ^ query.low_bits;
        let differing_positions = ((differing_bits | differing_bits >> 1) & LOW_OF_PAIRS).count_ones() as usize;
        self.t2_hash == query.t2_hash || (SKETCH_LEN - differing_positions) as f32 / SKETCH_LEN as f32 >= min_similarity
    }
}

struct Shape {
    tenant: u32,
    t2_hash: T2Hash,
    sketch: Sketch,
    /// Hash of (tenant, structural hash, sketch): this shape's key in `shape_by_content`.
    content: u64,
    /// Slots of the units holding this shape, in answer order (repository name, then key).
    units: Vec<u32>,
}

/// A unit found by [`CandidateIndex::query`].
pub struct Candidate {
    pub slot: u32,
    pub similarity: f32,
    pub exact: bool,
}

/// Aggregate of one exact-structure group.
#[derive(Debug, Clone, Default)]
pub struct GroupCount {
    pub units: u64,
    pub repos: HashMap<u32, u64>,
    pub language: u32,
    pub tokens: u32,
}

#[derive(Default)]
pub struct CandidateIndex {
    pub names: Names,
    units: Vec<Option<Stored>>,
    free_units: Vec<u32>,
    by_identity: PremixedMap<u128, u32>,
    shapes: Vec<Option<Shape>>,
    /// The digest of every shape, by shape id (also of freed ids, whose shape is `None`).
    digests: Vec<ShapeDigest>,
    free_shapes: Vec<u32>,
    shape_by_content: PremixedMap<u64, u32>,
    /// Lane key -> one shape id, or `SPILLED | index into spilled`.
    lanes: PremixedMap<u64, u32>,
    spilled: Vec<Vec<u32>>,
    free_spilled: Vec<u32>,
    units_per_tenant: HashMap<u32, u64>,
    /// Per tenant, the (shape, family) links of its units with how many units hold each.
    links: HashMap<u32, HashMap<(u64, u64), u32>>,
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn lane_key(tenant: u32, lane: usize, value: u64) -> u64 {
    mix64(value ^ (u64::from(tenant) << 8 | lane as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The 17 lane keys of a sketch and structural hash within a tenant. Pure, so a writer
/// computes them before it takes the index's write lock (see [`CandidateIndex::upsert_with_lanes`]).
pub fn lane_keys_of(tenant: u32, t2_hash: T2Hash, sketch: &Sketch) -> [u64; LANES] {
    let mut keys = [0u64; LANES];
    for (lane, band_key) in sketch.band_keys().into_iter().enumerate() {
        keys[lane] = lane_key(tenant, lane, band_key);
    }
    keys[T2_LANE] = lane_key(tenant, T2_LANE, t2_hash.0);
    keys
}

fn content_hash(tenant: u32, t2_hash: T2Hash, sketch: &Sketch) -> u64 {
    let mut hash = mix64(u64::from(tenant) ^ t2_hash.0.rotate_left(17));
    for pair in sketch.0.chunks_exact(2) {
        hash = mix64(hash ^ (u64::from(pair[0]) | u64::from(pair[1]) << 32));
    }
    hash
}

impl CandidateIndex {
    /// Room for `units` more units, so that loading the store does not grow (and rehash) its
    /// unit table step by step.
    pub fn reserve(&mut self, units: usize) {
        self.units.reserve(units);
        self.by_identity.reserve(units);
    }

    pub fn len(&self) -> usize {
        self.units.len() - self.free_units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct shapes stored.
    pub fn shapes(&self) -> usize {
        self.shapes.len() - self.free_shapes.len()
    }

    pub fn units_of(&self, tenant: u32) -> u64 {
        self.units_per_tenant.get(&tenant).copied().unwrap_or(0)
    }

    pub fn unit(&self, slot: u32) -> Option<&MemUnit> {
        self.units.get(slot as usize).and_then(Option::as_ref).map(|stored| &stored.unit)
    }

    /// The unit with this identity (hash of tenant, repo and key), if stored.
    pub fn unit_by_identity(&self, identity: u128) -> Option<&MemUnit> {
        self.by_identity.get(&identity).and_then(|&slot| self.unit(slot))
    }

    /// Inserts or replaces the unit with this identity (hash of tenant, repo and key);
    /// returns the unit it replaced.
    pub fn upsert(&mut self, identity: u128, unit: MemUnit, sketch: Sketch) -> Option<MemUnit> {
        let lanes = lane_keys_of(unit.tenant, unit.t2_hash, &sketch);
        self.upsert_with_lanes(identity, unit, sketch, lanes)
    }

    /// [`CandidateIndex::upsert`] with the unit's [`lane_keys_of`] already computed.
    pub fn upsert_with_lanes(&mut self, identity: u128, unit: MemUnit, sketch: Sketch, lanes: [u64; LANES]) -> Option<MemUnit> {
        let replaced = self.take(identity);
        let shape = self.shape_for(&unit, sketch, &lanes);
        let stored = Stored { unit, shape };
        let slot = place(&mut self.units, &mut self.free_units, None);
        let Self { units, shapes, names, .. } = self;
        if let Some(shape) = shapes[shape as usize].as_mut() {
            let position = shape.units.partition_point(|&other| {
                units[other as usize].as_ref().is_some_and(|other| answer_order(names, &other.unit, &stored.unit) == Ordering::Less)
            });
            shape.units.insert(position, slot);
        }
        *self.units_per_tenant.entry(stored.unit.tenant).or_insert(0) += 1;
        if let Some(link) = stored.unit.link() {
            *self.links.entry(stored.unit.tenant).or_default().entry(link).or_insert(0) += 1;
        }
        self.units[slot as usize] = Some(stored);
        self.by_identity.insert(identity, slot);
        replaced
    }

    /// Removes the unit with this identity; returns whether it was there.
    pub fn remove(&mut self, identity: u128) -> bool {
        self.take(identity).is_some()
    }

    /// Removes the unit with this identity and returns it.
    fn take(&mut self, identity: u128) -> Option<MemUnit> {
        let slot = self.by_identity.remove(&identity)?;
        let Stored { unit, shape: shape_id } = self.units[slot as usize].take()?;
        self.free_units.push(slot);
        if let Some(count) = self.units_per_tenant.get_mut(&unit.tenant) {
            *count = count.saturating_sub(1);
        }
        if let Some(link) = unit.link()
            && let Some(links) = self.links.get_mut(&unit.tenant)
            && let Some(count) = links.get_mut(&link)
        {
            *count -= 1;
            if *count == 0 {
                links.remove(&link);
            }
        }
        let emptied = match self.shapes[shape_id as usize].as_mut() {
            Some(shape) => {
                if let Some(position) = shape.units.iter().position(|&other| other == slot) {
                    shape.units.remove(position);
                }
                shape.units.is_empty()
            }
            None => false,
        };
        if emptied {
            self.drop_shape(shape_id);
        }
        Some(unit)
    }

    /// The shape this unit belongs to, created (and filed under its lanes) if new.
    fn shape_for(&mut self, unit: &MemUnit, sketch: Sketch, lanes: &[u64; LANES]) -> u32 {
        let content = content_hash(unit.tenant, unit.t2_hash, &sketch);
        if let Some(&id) = self.shape_by_content.get(&content)
            && let Some(shape) = &self.shapes[id as usize]
            && shape.tenant == unit.tenant
            && shape.t2_hash == unit.t2_hash
            && shape.sketch == sketch
        {
            return id;
        }
        let digest = ShapeDigest::of(unit.t2_hash, &sketch);
        let shape = Shape { tenant: unit.tenant, t2_hash: unit.t2_hash, sketch, content, units: Vec::new() };
        let id = place(&mut self.shapes, &mut self.free_shapes, Some(shape));
        match self.digests.get_mut(id as usize) {
            Some(slot) => *slot = digest,
            None => self.digests.push(digest),
        }
        // A content hash taken by a different shape (a 64-bit collision) leaves this one
        // unshared: correct, only without deduplication.
        self.shape_by_content.entry(content).or_insert(id);
        for &key in lanes {
            self.lane_add(key, id);
        }
        id
    }

    fn drop_shape(&mut self, id: u32) {
        let Some(shape) = self.shapes[id as usize].take() else { return };
        if self.shape_by_content.get(&shape.content) == Some(&id) {
            self.shape_by_content.remove(&shape.content);
        }
        for key in lane_keys_of(shape.tenant, shape.t2_hash, &shape.sketch) {
            self.lane_remove(key, id);
        }
        self.free_shapes.push(id);
    }

    fn lane_add(&mut self, key: u64, shape: u32) {
        match self.lanes.get(&key).copied() {
            None => {
                self.lanes.insert(key, shape);
            }
            Some(value) if value & SPILLED != 0 => self.spilled[(value & !SPILLED) as usize].push(shape),
            Some(single) => {
                let index = place(&mut self.spilled, &mut self.free_spilled, vec![single, shape]);
                self.lanes.insert(key, SPILLED | index);
            }
        }
    }

    fn lane_remove(&mut self, key: u64, shape: u32) {
        let Some(value) = self.lanes.get(&key).copied() else { return };
        if value & SPILLED == 0 {
            if value == shape {
                self.lanes.remove(&key);
            }
            return;
        }
        let index = (value & !SPILLED) as usize;
        let shapes = &mut self.spilled[index];
        if let Some(position) = shapes.iter().position(|&other| other == shape) {
            shapes.swap_remove(position);
        }
        if shapes.len() <= 1 {
            match shapes.first().copied() {
                Some(last) => self.lanes.insert(key, last),
                None => self.lanes.remove(&key),
            };
            self.spilled[index] = Vec::new();
            self.free_spilled.push(index as u32);
        }
    }

    /// The shapes filed under a lane key.
    fn lane(&self, key: u64) -> &[u32] {
        match self.lanes.get(&key) {
            None => &[],
            Some(value) => self.lane_of(value),
        }
    }

    /// The shapes of a lane, given its value in the map: a spilled list, or the one shape.
    fn lane_of<'a>(&'a self, value: &'a u32) -> &'a [u32] {
        if value & SPILLED != 0 { &self.spilled[(value & !SPILLED) as usize] } else { std::slice::from_ref(value) }
    }

    /// The `top_k` units of `tenant` most similar to the query (at least `min_similarity`,
    /// sharing a band or the exact hash with it, not in `exclude_repo`), in answer order:
    /// similarity descending, then repository name, then key.
    pub fn query(&self, tenant: u32, t2_hash: T2Hash, sketch: &Sketch, exclude_repo: Option<u32>, min_similarity: f32, top_k: usize) -> Vec<Candidate> {
        if top_k == 0 {
            return Vec::new();
        }
        // The 17 lookups first, then the spilled lists they point to, then the copies: each
        // step is a cache miss or two per lane in tables of millions of entries, and taken
        // lane by lane (lookup, list, copy, next lookup) the misses waited for one another;
        // taken step by step, the processor overlaps the misses of one step.
        let values = lane_keys_of(tenant, t2_hash, sketch).map(|key| self.lanes.get(&key));
        let lanes = values.map(|value| value.map_or(&[][..], |value| self.lane_of(value)));
        let mut seen: Vec<u32> = Vec::with_capacity(lanes.iter().map(|shapes| shapes.len().min(MAX_LANE_WALK)).sum());
        for shapes in lanes {
            seen.extend_from_slice(&shapes[..shapes.len().min(MAX_LANE_WALK)]);
        }
        seen.sort_unstable();
        seen.dedup();
        let query_digest = ShapeDigest::of(t2_hash, sketch);
        // Digests first, shapes after, for the same reason: most shapes are ruled out by
        // their digest alone, and those reads overlap when no shape read comes between them.
        seen.retain(|&id| self.digests[id as usize].may_reach(&query_digest, min_similarity));
        let mut passing: Vec<(f32, &Shape)> = Vec::new();
        for id in seen {
            let Some(shape) = &self.shapes[id as usize] else { continue };
            if shape.tenant != tenant {
                continue;
            }
            let similarity = if shape.t2_hash == t2_hash { 1.0 } else { shape.sketch.similarity(sketch) };
            if similarity >= min_similarity {
                passing.push((similarity, shape));
            }
        }
        passing.sort_by(|a, b| b.0.total_cmp(&a.0));
        // A shape's units are already in answer order, so each shape gives at most `top_k`,
        // and shapes less similar than the k-th unit found so far cannot enter the answer.
        let mut found: Vec<Candidate> = Vec::new();
        for (similarity, shape) in passing {
            if found.len() >= top_k && similarity < found[top_k - 1].similarity {
                break;
            }
            let exact = shape.t2_hash == t2_hash;
            let members = shape.units.iter().filter(|&&slot| self.unit(slot).is_some_and(|unit| exclude_repo != Some(unit.repo)));
            found.extend(members.take(top_k).map(|&slot| Candidate { slot, similarity, exact }));
        }
        found.sort_by(|a, b| {
            b.similarity.total_cmp(&a.similarity).then_with(|| match (self.unit(a.slot), self.unit(b.slot)) {
                (Some(a), Some(b)) => answer_order(&self.names, a, b),
                _ => Ordering::Equal,
            })
        });
        found.truncate(top_k);
        found
    }

    /// Slots of `tenant`'s units whose exact hash is `t2_hash`.
    pub fn exact_group(&self, tenant: u32, t2_hash: T2Hash) -> Vec<u32> {
        let mut found = Vec::new();
        for &id in self.lane(lane_key(tenant, T2_LANE, t2_hash.0)) {
            if let Some(shape) = &self.shapes[id as usize]
                && shape.tenant == tenant
                && shape.t2_hash == t2_hash
            {
                found.extend_from_slice(&shape.units);
            }
        }
        found
    }

    /// Per exact hash, how many units and in which repositories, for one tenant.
    pub fn group_counts(&self, tenant: u32) -> HashMap<u64, GroupCount> {
        let mut groups: HashMap<u64, GroupCount> = HashMap::new();
        for Stored { unit, .. } in self.units.iter().flatten() {
            if unit.tenant != tenant {
                continue;
            }
            let group = groups.entry(unit.t2_hash.0).or_insert_with(|| GroupCount { language: unit.language, tokens: unit.tokens, ..GroupCount::default() });
            group.units += 1;
            *group.repos.entry(unit.repo).or_insert(0) += 1;
        }
        groups
    }

    /// The (shape, family) links of `tenant`'s units, each once.
    pub fn links(&self, tenant: u32) -> Vec<(T2Hash, T2Hash)> {
        self.links.get(&tenant).map(|links| links.keys().map(|&(shape, family)| (T2Hash(shape), T2Hash(family))).collect()).unwrap_or_default()
    }

    /// Up to `limit` keys of the units of `tenant` stored in `repo`. A scan of every unit
    /// (the index keeps no per-repository list, which only repository deletion would use),
    /// once per deletion step; its cost grows with every tenant's units and is not measured.
    pub fn keys_of(&self, tenant: u32, repo: u32, limit: usize) -> Vec<String> {
        self.units.iter().flatten().filter(|stored| stored.unit.tenant == tenant && stored.unit.repo == repo).take(limit).map(|stored| stored.unit.key().to_string()).collect()
    }

    /// Repositories of `tenant` with at least one unit stored.
    pub fn repos_of(&self, tenant: u32) -> HashSet<u32> {
        self.units.iter().flatten().filter(|stored| stored.unit.tenant == tenant).map(|stored| stored.unit.repo).collect()
    }
}

/// Puts `item` at a freed position of `items` if there is one, else at the end; returns where.
fn place<T>(items: &mut Vec<T>, free: &mut Vec<u32>, item: T) -> u32 {
    match free.pop() {
        Some(index) => {
            items[index as usize] = item;
            index
        }
        None => {
            items.push(item);
            (items.len() - 1) as u32
        }
    }
}

/// The order in which units of equal similarity are answered: repository name, then key.
fn answer_order(names: &Names, a: &MemUnit, b: &MemUnit) -> Ordering {
    names.name(a.repo).cmp(names.name(b.repo)).then_with(|| a.key().cmp(b.key()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch(seed: u32) -> Sketch {
        let mut values = [0u32; SKETCH_LEN];
        for (index, value) in values.iter_mut().enumerate() {
            *value = seed.wrapping_mul(31).wrapping_add(index as u32);
        }
        Sketch(values)
    }

    fn unit(index: &mut CandidateIndex, tenant: u32, repo: &str, key: &str, t2: u64, seed: u32) -> (MemUnit, Sketch) {
        let unit = MemUnit {
            row_id: 0,
            tenant,
            repo: index.names.intern(repo),
            language: 0,
            text: UnitText::new(key, None),
            t2_hash: T2Hash(t2),
            tokens: 10,
            lines: 3,
            nesting: 1,
            family: None,
        };
        (unit, sketch(seed))
    }

    fn keys_found(index: &CandidateIndex, found: &[Candidate]) -> Vec<String> {
        found.iter().map(|candidate| {
            let unit = index.unit(candidate.slot).expect("stored");
            format!("{}/{}", index.names.name(unit.repo), unit.key())
        }).collect()
    }

    #[test]
    fn upsert_replace_and_remove_keep_shapes_and_lanes_consistent() {
        let mut index = CandidateIndex::default();
        for number in 0..50u32 {
            // Five shapes with ten units each, so that shapes and lanes are shared.
            let (added, sketch) = unit(&mut index, 1, "repo", &format!("k{number}"), u64::from(number % 5), number % 5);
            index.upsert(u128::from(number), added, sketch);
        }
        assert_eq!((index.len(), index.shapes()), (50, 5));
        let probe = sketch(3);
        assert_eq!(index.query(1, T2Hash(3), &probe, None, 0.9, 100).len(), 10);
        assert_eq!(index.exact_group(1, T2Hash(3)).len(), 10);
        // Another tenant sees nothing.
        assert!(index.query(2, T2Hash(3), &probe, None, 0.0, 100).is_empty());
        // Remove every other unit, then the rest of shape 4: its lanes go with it.
        for number in (0..50u32).rev().step_by(2) {
            assert!(index.remove(u128::from(number)));
        }
        assert!(!index.remove(u128::from(49u32)));
        assert_eq!(index.len(), 25);
        assert_eq!(index.exact_group(1, T2Hash(3)).len(), 5);
        for number in (0..50u32).filter(|n| n % 5 == 4 && n % 2 == 0) {
            assert!(index.remove(u128::from(number)));
        }
        assert_eq!(index.shapes(), 4);
        assert!(index.query(1, T2Hash(4), &sketch(4), None, 0.0, 100).is_empty());
        // Replacing a unit moves it to its new shape.
        let (moved, sketch) = unit(&mut index, 1, "repo", "k0", 3, 3);
        index.upsert(0, moved, sketch);
        assert_eq!(index.exact_group(1, T2Hash(3)).len(), 6);
        assert_eq!(index.exact_group(1, T2Hash(0)).len(), 4);
        assert_eq!(index.units_of(1), 25 - 5);
    }

    #[test]
    fn answers_are_ordered_by_similarity_then_repository_then_key_and_cut_at_top_k() {
        let mut index = CandidateIndex::default();
        let mut near = sketch(7);
        near.0[0] ^= 1; // 63 of 64 positions equal
        let entries = [("zeta", "a", 7u64, None), ("alpha", "b", 7, None), ("alpha", "a", 7, None), ("mid", "x", 8, Some(near.clone())), ("beta", "q", 7, None)];
        for (number, (repo, key, t2, sketch_override)) in entries.into_iter().enumerate() {
            let (added, sketch) = unit(&mut index, 1, repo, key, t2, 7);
            index.upsert(number as u128, added, sketch_override.unwrap_or(sketch));
        }
        let found = index.query(1, T2Hash(7), &sketch(7), None, 0.5, 10);
        assert_eq!(keys_found(&index, &found), ["alpha/a", "alpha/b", "beta/q", "zeta/a", "mid/x"]);
        assert!(found[..4].iter().all(|candidate| candidate.exact && candidate.similarity == 1.0));
        assert!(!found[4].exact && found[4].similarity < 1.0);
        let top = index.query(1, T2Hash(7), &sketch(7), index.names.lookup("alpha"), 0.5, 2);
        assert_eq!(keys_found(&index, &top), ["beta/q", "zeta/a"]);
        // The near shape alone, when the exact one is not asked for.
        let near_only = index.query(1, T2Hash(99), &near, None, 0.99, 10);
        assert_eq!(keys_found(&index, &near_only), ["mid/x"]);
    }

    #[test]
    fn the_digest_never_rules_out_a_shape_that_reaches_the_threshold() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            state = mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            state
        };
        for round in 0..20_000u32 {
            let base = Sketch(std::array::from_fn(|_| next() as u32));
            let mut other = base.clone();
            // 0 to 63 positions changed; some changes keep the low bits, as real values may.
            for _ in 0..(round % 64) {
                let position = (next() % SKETCH_LEN as u64) as usize;
                other.0[position] = if next() % 4 == 0 { other.0[position] ^ 0x100 } else { next() as u32 };
            }
            let min_similarity = [0.5f32, 0.7, 0.9][(round % 3) as usize];
            let query = ShapeDigest::of(T2Hash(1), &base);
            let may = ShapeDigest::of(T2Hash(2), &other).may_reach(&query, min_similarity);
            if other.similarity(&base) >= min_similarity {
                assert!(may, "round {round}: similarity {} ruled out at {min_similarity}", other.similarity(&base));
            }
            // Equal structural hashes always pass (an exact match scores 1).
            assert!(ShapeDigest::of(T2Hash(1), &other).may_reach(&query, 1.0));
        }
        // And it does rule out what is far: unrelated sketches, at the default threshold.
        let query = ShapeDigest::of(T2Hash(1), &Sketch(std::array::from_fn(|_| next() as u32)));
        let kept = (0..1000).filter(|_| ShapeDigest::of(T2Hash(2), &Sketch(std::array::from_fn(|_| next() as u32))).may_reach(&query, 0.7)).count();
        assert!(kept <= 10, "{kept} of 1000 unrelated shapes kept");
    }

    #[test]
    fn many_shapes_in_one_lane_spill_and_collapse_back() {
        let mut index = CandidateIndex::default();
        // Same first band (rows 0..4) for every shape, different elsewhere.
        for number in 0..6u32 {
            let (added, mut sketch) = unit(&mut index, 1, "repo", &format!("k{number}"), u64::from(number), 1);
            for value in &mut sketch.0[4..] {
                *value = value.wrapping_add(number * 1000);
            }
            index.upsert(u128::from(number), added, sketch);
        }
        let probe = sketch(1);
        assert_eq!(index.query(1, T2Hash(999), &probe, None, 0.0, 100).len(), 6);
        for number in 0..5u32 {
            index.remove(u128::from(number));
        }
        let left = index.query(1, T2Hash(999), &probe, None, 0.0, 100);
        assert_eq!(keys_found(&index, &left), ["repo/k5"]);
        assert!(index.spilled.iter().all(Vec::is_empty));
    }

    #[test]
    fn a_units_text_gives_back_its_key_and_location() {
        let location = Location { path: "src/money/ledger.rs".into(), name: "post".into(), start_line: 12, end_line: 40 };
        let text = UnitText::new("0123abcd", Some(&location));
        assert_eq!(text.key(), "0123abcd");
        assert_eq!(text.location(), Some(location));
        let without = UnitText::new("k", None);
        assert_eq!((without.key(), without.location()), ("k", None));
        // Empty parts stay apart: an empty key and name, a location on line 0.
        let empty = Location { path: "a".into(), name: String::new(), start_line: 0, end_line: 0 };
        let text = UnitText::new("", Some(&empty));
        assert_eq!((text.key(), text.location()), ("", Some(empty)));
    }
}
