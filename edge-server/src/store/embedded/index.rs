//! The in-memory candidate index of one shard: every unit the shard's SQLite file holds, with
//! its sketch, chained into 17 "lanes" per unit (16 LSH bands plus the exact structural hash).
//!
//! Memory matters at a million units, so a lane bucket is not a `Vec` but the head of an
//! intrusive singly linked list: the map holds `lane key -> first slot`, and each slot holds
//! its successor in each of its 17 lanes. A lane key mixes tenant, lane number and value, so
//! a collision can only add a candidate; scoring re-checks the tenant and the band itself.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use periodic_wire::{BANDS, Location, Sketch, T2Hash};
#[cfg(test)]
use periodic_wire::SKETCH_LEN;

/// Lanes per unit: one per LSH band, then one for the exact structural hash.
pub const LANES: usize = BANDS + 1;
const T2_LANE: usize = BANDS;
const NIL: u32 = u32::MAX;
/// Longest stretch of one lane walked per query: bounds the cost of very common shapes
/// (thousands of identical getters) at the price of possibly missing some of their copies.
pub const MAX_LANE_WALK: usize = 2048;

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

/// A stored unit as the index keeps it. Strings are interned ids (see `Interner`).
#[derive(Debug, Clone)]
pub struct MemUnit {
    /// The unit's row in the shard's SQLite `units` table: rewrites and removals address it.
    pub row_id: i64,
    pub tenant: u32,
    pub repo: u32,
    pub language: u32,
    pub key: Box<str>,
    pub t2_hash: T2Hash,
    pub sketch: Sketch,
    pub tokens: u32,
    pub lines: u32,
    pub nesting: u32,
    pub location: Option<Box<Location>>,
}

struct Slot {
    unit: Option<MemUnit>,
    next: [u32; LANES],
}

/// A candidate found by [`ShardIndex::candidates`], already scored.
pub struct ScoredSlot {
    pub slot: u32,
    pub similarity: f32,
    pub exact: bool,
}

/// Aggregate of one exact-structure group inside one shard.
#[derive(Debug, Clone, Default)]
pub struct GroupCount {
    pub units: u64,
    pub repos: HashMap<u32, u64>,
    pub language: u32,
    pub tokens: u32,
}

#[derive(Default)]
pub struct ShardIndex {
    slots: Vec<Slot>,
    free: Vec<u32>,
    lane_heads: PremixedMap<u64, u32>,
    by_identity: PremixedMap<u128, u32>,
    units_per_tenant: HashMap<u32, u64>,
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn lane_key(tenant: u32, lane: usize, value: u64) -> u64 {
    mix64(value ^ (u64::from(tenant) << 8 | lane as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The keys of the unit's 17 lanes. Pure, so a writer computes them before it takes the
/// index's write lock (see [`ShardIndex::upsert_with_lanes`]).
pub fn lane_keys(unit: &MemUnit) -> [u64; LANES] {
    let mut keys = [0u64; LANES];
    for (lane, band_key) in unit.sketch.band_keys().into_iter().enumerate() {
        keys[lane] = lane_key(unit.tenant, lane, band_key);
    }
    keys[T2_LANE] = lane_key(unit.tenant, T2_LANE, unit.t2_hash.0);
    keys
}

impl ShardIndex {
    /// An empty index with room for `units` units, so that loading a shard does not grow
    /// (and rehash) its maps step by step.
    pub fn with_capacity(units: usize) -> ShardIndex {
        ShardIndex {
            slots: Vec::with_capacity(units),
            lane_heads: PremixedMap::with_capacity_and_hasher(units.saturating_mul(LANES), Default::default()),
            by_identity: PremixedMap::with_capacity_and_hasher(units, Default::default()),
            ..ShardIndex::default()
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn units_of(&self, tenant: u32) -> u64 {
        self.units_per_tenant.get(&tenant).copied().unwrap_or(0)
    }

    pub fn unit(&self, slot: u32) -> Option<&MemUnit> {
        self.slots.get(slot as usize).and_then(|s| s.unit.as_ref())
    }

    /// The unit with this identity (hash of tenant, repo and key), if stored.
    pub fn unit_by_identity(&self, identity: u128) -> Option<&MemUnit> {
        self.by_identity.get(&identity).and_then(|&slot| self.unit(slot))
    }

    /// Inserts or replaces the unit with this identity (hash of tenant, repo and key);
    /// returns the unit it replaced.
    pub fn upsert(&mut self, identity: u128, unit: MemUnit) -> Option<MemUnit> {
        let lanes = lane_keys(&unit);
        self.upsert_with_lanes(identity, unit, lanes)
    }

    /// [`ShardIndex::upsert`] with the unit's [`lane_keys`] already computed.
    pub fn upsert_with_lanes(&mut self, identity: u128, unit: MemUnit, lanes: [u64; LANES]) -> Option<MemUnit> {
        let replaced = self.take(identity);
        let slot_index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot { unit: None, next: [NIL; LANES] });
                (self.slots.len() - 1) as u32
            }
        };
        let mut next = [NIL; LANES];
        for (lane, key) in lanes.into_iter().enumerate() {
            next[lane] = self.lane_heads.insert(key, slot_index).unwrap_or(NIL);
        }
        *self.units_per_tenant.entry(unit.tenant).or_insert(0) += 1;
        let slot = &mut self.slots[slot_index as usize];
        slot.next = next;
        slot.unit = Some(unit);
        self.by_identity.insert(identity, slot_index);
        replaced
    }

    /// Removes the unit with this identity; returns whether it was there.
    pub fn remove(&mut self, identity: u128) -> bool {
        self.take(identity).is_some()
    }

    /// Removes the unit with this identity and returns it.
    fn take(&mut self, identity: u128) -> Option<MemUnit> {
        let slot_index = self.by_identity.remove(&identity)?;
        let unit = self.slots[slot_index as usize].unit.take()?;
        let own_next = self.slots[slot_index as usize].next;
        for (lane, key) in lane_keys(&unit).into_iter().enumerate() {
            let Some(&head) = self.lane_heads.get(&key) else { continue };
            if head == slot_index {
                if own_next[lane] == NIL {
                    self.lane_heads.remove(&key);
                } else {
                    self.lane_heads.insert(key, own_next[lane]);
                }
                continue;
            }
            let mut current = head;
            while current != NIL {
                let following = self.slots[current as usize].next[lane];
                if following == slot_index {
                    self.slots[current as usize].next[lane] = own_next[lane];
                    break;
                }
                current = following;
            }
        }
        self.slots[slot_index as usize].next = [NIL; LANES];
        self.free.push(slot_index);
        if let Some(count) = self.units_per_tenant.get_mut(&unit.tenant) {
            *count = count.saturating_sub(1);
        }
        Some(unit)
    }

    /// Units of `tenant` sharing a band or the exact hash with the query, scored and
    /// filtered by `min_similarity`, excluding `exclude_repo`.
    pub fn candidates(&self, tenant: u32, t2_hash: T2Hash, sketch: &Sketch, exclude_repo: Option<u32>, min_similarity: f32) -> Vec<ScoredSlot> {
        let mut values = [0u64; LANES];
        values[..BANDS].copy_from_slice(&sketch.band_keys());
        values[T2_LANE] = t2_hash.0;
        let mut seen: Vec<u32> = Vec::new();
        for (lane, value) in values.into_iter().enumerate() {
            let Some(&head) = self.lane_heads.get(&lane_key(tenant, lane, value)) else { continue };
            let mut current = head;
            let mut walked = 0;
            while current != NIL && walked < MAX_LANE_WALK {
                seen.push(current);
                current = self.slots[current as usize].next[lane];
                walked += 1;
            }
        }
        seen.sort_unstable();
        seen.dedup();
        let mut scored = Vec::new();
        for slot in seen {
            let Some(unit) = self.unit(slot) else { continue };
            if unit.tenant != tenant || exclude_repo == Some(unit.repo) {
                continue;
            }
            let exact = unit.t2_hash == t2_hash;
            let similarity = if exact { 1.0 } else { unit.sketch.similarity(sketch) };
            if similarity >= min_similarity {
                scored.push(ScoredSlot { slot, similarity, exact });
            }
        }
        scored
    }

    /// Slots of `tenant`'s units whose exact hash is `t2_hash`.
    pub fn exact_group(&self, tenant: u32, t2_hash: T2Hash) -> Vec<u32> {
        let mut found = Vec::new();
        let Some(&head) = self.lane_heads.get(&lane_key(tenant, T2_LANE, t2_hash.0)) else {
            return found;
        };
        let mut current = head;
        while current != NIL {
            if let Some(unit) = self.unit(current)
                && unit.tenant == tenant
                && unit.t2_hash == t2_hash
            {
                found.push(current);
            }
            current = self.slots[current as usize].next[T2_LANE];
        }
        found
    }

    /// Per exact hash, how many units and in which repositories, for one tenant.
    pub fn group_counts(&self, tenant: u32, into: &mut HashMap<u64, GroupCount>) {
        for slot in &self.slots {
            let Some(unit) = &slot.unit else { continue };
            if unit.tenant != tenant {
                continue;
            }
            let group = into.entry(unit.t2_hash.0).or_insert_with(|| GroupCount {
                language: unit.language,
                tokens: unit.tokens,
                ..GroupCount::default()
            });
            group.units += 1;
            *group.repos.entry(unit.repo).or_insert(0) += 1;
        }
    }

    /// Repositories of `tenant` with at least one unit here.
    pub fn repos_of(&self, tenant: u32, into: &mut std::collections::HashSet<u32>) {
        for slot in &self.slots {
            if let Some(unit) = &slot.unit
                && unit.tenant == tenant
            {
                into.insert(unit.repo);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(tenant: u32, key: &str, t2: u64, seed: u32) -> MemUnit {
        let mut values = [0u32; SKETCH_LEN];
        for (index, value) in values.iter_mut().enumerate() {
            *value = seed.wrapping_mul(31).wrapping_add(index as u32);
        }
        MemUnit {
            row_id: 0,
            tenant,
            repo: 1,
            language: 0,
            key: key.into(),
            t2_hash: T2Hash(t2),
            sketch: Sketch(values),
            tokens: 10,
            lines: 3,
            nesting: 1,
            location: None,
        }
    }

    #[test]
    fn upsert_replace_and_remove_keep_chains_consistent() {
        let mut index = ShardIndex::default();
        for number in 0..50u32 {
            // Five copies of each sketch so that chains are longer than one.
            index.upsert(u128::from(number), unit(1, &format!("k{number}"), u64::from(number % 5), number % 5));
        }
        assert_eq!(index.len(), 50);
        let probe = unit(1, "probe", 3, 3);
        assert_eq!(index.candidates(1, probe.t2_hash, &probe.sketch, None, 0.9).len(), 10);
        assert_eq!(index.exact_group(1, T2Hash(3)).len(), 10);
        // Another tenant sees nothing.
        assert!(index.candidates(2, probe.t2_hash, &probe.sketch, None, 0.0).is_empty());
        // Remove every other unit, in an order that exercises heads and middles.
        for number in (0..50u32).rev().step_by(2) {
            assert!(index.remove(u128::from(number)));
        }
        assert!(!index.remove(u128::from(49u32)));
        assert_eq!(index.len(), 25);
        assert_eq!(index.exact_group(1, T2Hash(3)).len(), 5);
        // Replacing a unit moves it to its new group.
        index.upsert(0, unit(1, "k0", 3, 3));
        assert_eq!(index.exact_group(1, T2Hash(3)).len(), 6);
        assert_eq!(index.exact_group(1, T2Hash(0)).len(), 4);
        assert_eq!(index.units_of(1), 25);
    }
}
