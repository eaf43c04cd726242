//! Team patterns from near-miss families, the same for every backend. A client sends with each
//! unit the id of the local family its shape belongs to (`UnitUpsert::family`) when that id
//! is another shape's; each such (shape, family) pair is a *link*. A team pattern is a
//! connected component of shapes under the links of the tenant's stored units: a family found
//! in one repository (shapes X and Y) absorbs another repository's units of X or Y. Its id is
//! the shape most of its units share, smallest on ties: the rule `periodic` applies locally,
//! so a family the team sees as one repository sees it keeps that repository's id.
//!
//! Backends keep the links as reference counts per (shape, family), updated with the units
//! in the same write, and build [`Components`] when a pattern answer is read: the links are
//! few (only units of near-miss families whose shape is not the family's id), the
//! union-find costs about 0.1 ms per thousand of them (`docs/benchmarks.md`), and the cache
//! in front of the store keeps its answers.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use periodic_wire::{OccurrenceKind, T2Hash};

use crate::store::PatternMeta;
use crate::store::embedded::index::PremixedHasher;

/// Shape hashes are already well mixed (blake3), so they key the maps as they are.
type ShapeMap<V> = HashMap<u64, V, BuildHasherDefault<PremixedHasher>>;

/// The shapes joined by a tenant's links. Shapes no link names are components of their own
/// and are not held.
#[derive(Debug, Default)]
pub struct Components {
    parent: ShapeMap<u64>,
    /// Every linked shape of each component, by its root, sorted.
    members: ShapeMap<Vec<T2Hash>>,
}

impl Components {
    /// The components of these (shape, family) links; a link of a shape to itself is ignored.
    pub fn from_links(links: impl IntoIterator<Item = (T2Hash, T2Hash)>) -> Components {
        let mut components = Components::default();
        for (shape, family) in links {
            if shape != family {
                components.union(shape.0, family.0);
            }
        }
        let hashes: Vec<u64> = components.parent.keys().copied().collect();
        for hash in hashes {
            let root = components.find(hash);
            components.members.entry(root).or_default().push(T2Hash(hash));
        }
        for shapes in components.members.values_mut() {
            shapes.sort_unstable();
        }
        components
    }

    fn find(&mut self, hash: u64) -> u64 {
        let mut root = hash;
        while let Some(&parent) = self.parent.get(&root) {
            if parent == root {
                break;
            }
            root = parent;
        }
        // Path compression: every hash on the way points at the root.
        let mut current = hash;
        while current != root {
            let next = self.parent.get(&current).copied().unwrap_or(root);
            self.parent.insert(current, root);
            current = next;
        }
        root
    }

    fn union(&mut self, a: u64, b: u64) {
        self.parent.entry(a).or_insert(a);
        self.parent.entry(b).or_insert(b);
        let (root_a, root_b) = (self.find(a), self.find(b));
        if root_a != root_b {
            // The smaller hash is the root: deterministic, whatever the order of the links.
            let (low, high) = if root_a < root_b { (root_a, root_b) } else { (root_b, root_a) };
            self.parent.insert(high, low);
        }
    }

    /// The component's root when `hash` is linked to another shape.
    fn root_of(&self, hash: T2Hash) -> Option<u64> {
        let mut root = *self.parent.get(&hash.0)?;
        while let Some(&parent) = self.parent.get(&root) {
            if parent == root {
                break;
            }
            root = parent;
        }
        Some(root)
    }

    /// A key naming `hash`'s component (the same for every shape of it).
    pub fn key_of(&self, hash: T2Hash) -> u64 {
        self.root_of(hash).unwrap_or(hash.0)
    }

    /// Every shape of `hash`'s component, sorted (`[hash]` when it is linked to none).
    pub fn shapes_of(&self, hash: T2Hash) -> Vec<T2Hash> {
        self.root_of(hash).and_then(|root| self.members.get(&root)).cloned().unwrap_or_else(|| vec![hash])
    }

    /// Whether `hash` is linked to another shape.
    pub fn is_linked(&self, hash: T2Hash) -> bool {
        self.parent.contains_key(&hash.0)
    }

    /// The components of more than one shape.
    pub fn linked(&self) -> impl Iterator<Item = &[T2Hash]> {
        self.members.values().map(Vec::as_slice)
    }

    /// Shapes linked to another one.
    pub fn linked_shapes(&self) -> usize {
        self.parent.len()
    }
}

/// The id of a component: the shape most of its units have, the smallest on ties (the rule
/// of `periodic_core::pattern::pattern_id`). `None` for no shapes.
pub fn component_id(unit_counts: impl IntoIterator<Item = (T2Hash, u64)>) -> Option<T2Hash> {
    unit_counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map(|(hash, _)| hash)
}

/// The id of the team pattern of each linked shape (shapes linked to none are their own id).
pub type FamilyIds = ShapeMap<u64>;

/// [`FamilyIds`] of `components`, given each shape's unit count.
pub fn linked_ids(components: &Components, units_of: impl Fn(T2Hash) -> u64) -> FamilyIds {
    let mut ids = FamilyIds::default();
    for shapes in components.linked() {
        if let Some(id) = component_id(shapes.iter().map(|shape| (*shape, units_of(*shape)))) {
            ids.extend(shapes.iter().map(|shape| (shape.0, id.0)));
        }
    }
    ids
}

/// The pattern id a unit of `shape` is answered with: its team pattern's.
pub fn pattern_id_of(ids: &FamilyIds, shape: T2Hash) -> String {
    ids.get(&shape.0).map_or(shape, |&id| T2Hash(id)).pattern_id()
}

/// How a unit of shape `shape` relates to the pattern `id`.
pub fn occurrence_kind(shape: T2Hash, id: T2Hash) -> OccurrenceKind {
    if shape == id { OccurrenceKind::T2 } else { OccurrenceKind::T3 }
}

/// Of the names stored under a component's shapes, the one that applies: the most recently
/// set (the last writer wins, as for one shape), the one stored under the id on a tie.
pub fn current_meta(stored: impl IntoIterator<Item = (T2Hash, PatternMeta)>, id: T2Hash) -> Option<PatternMeta> {
    stored.into_iter().max_by_key(|(hash, meta)| (meta.named_at.unwrap_or(0), *hash == id, std::cmp::Reverse(*hash))).map(|(_, meta)| meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_shapes_into_components_whatever_their_order() {
        let links = [(T2Hash(5), T2Hash(3)), (T2Hash(9), T2Hash(5)), (T2Hash(20), T2Hash(21)), (T2Hash(7), T2Hash(7))];
        for order in [links.to_vec(), links.iter().rev().copied().collect()] {
            let components = Components::from_links(order);
            assert_eq!(components.shapes_of(T2Hash(9)), vec![T2Hash(3), T2Hash(5), T2Hash(9)]);
            assert_eq!(components.key_of(T2Hash(9)), components.key_of(T2Hash(3)));
            assert_ne!(components.key_of(T2Hash(9)), components.key_of(T2Hash(20)));
            assert_eq!(components.shapes_of(T2Hash(7)), vec![T2Hash(7)], "a link to itself joins nothing");
            assert!(!components.is_linked(T2Hash(7)));
            assert_eq!(components.linked().count(), 2);
            assert_eq!(components.linked_shapes(), 5);
        }
    }

    #[test]
    fn the_id_is_the_most_common_shape_and_the_newest_name_applies() {
        assert_eq!(component_id([(T2Hash(9), 2), (T2Hash(3), 2), (T2Hash(5), 1)]), Some(T2Hash(3)));
        assert_eq!(component_id([(T2Hash(9), 3), (T2Hash(3), 2)]), Some(T2Hash(9)));
        assert_eq!(component_id([]), None);
        let named = |name: &str, at: u64| PatternMeta { name: Some(name.into()), named_at: Some(at), ..PatternMeta::default() };
        let current = current_meta([(T2Hash(3), named("old", 10)), (T2Hash(9), named("new", 20))], T2Hash(3));
        assert_eq!(current.and_then(|meta| meta.name).as_deref(), Some("new"));
        let tie = current_meta([(T2Hash(3), named("under the id", 10)), (T2Hash(9), named("other", 10))], T2Hash(3));
        assert_eq!(tie.and_then(|meta| meta.name).as_deref(), Some("under the id"));
        assert_eq!(occurrence_kind(T2Hash(3), T2Hash(3)), OccurrenceKind::T2);
        assert_eq!(occurrence_kind(T2Hash(9), T2Hash(3)), OccurrenceKind::T3);
    }
}
