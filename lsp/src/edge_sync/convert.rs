//! Conversion of the engine's units into the edge's wire form: stable unit keys, upserts with
//! or without a location (by share level) and with their near-miss family (from the local
//! patterns, see [`Families`]), query sketches, and the digest that tells whether a unit
//! changed since it was last queued.

use std::collections::{HashMap, HashSet};

use periodic_core::{FileRecord, Pattern, UnitRecord};
use periodic_wire::v1::{Location, QuerySketch, ShareLevel, Sketch, T2Hash, UnitUpsert, unit_key};

// The engine's MinHash signature is sent as is: both sides must agree on its length.
const _: () = assert!(periodic_core::fingerprint::SKETCH_LEN == periodic_wire::v1::SKETCH_LEN);

/// A unit as it will be sent: its key, the file it belongs to, the upsert and its digest.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedUnit {
    pub key: String,
    pub path: String,
    pub upsert: UnitUpsert,
    pub digest: [u8; 16],
}

/// The keys of a file's units, in unit order.
pub fn unit_keys(file: &FileRecord) -> Vec<String> {
    let mut seen: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    file.units
        .iter()
        .map(|unit| {
            let ordinal = seen.entry(unit.name.as_str()).or_insert(0);
            let key = unit_key(&file.path, &unit.name, *ordinal);
            *ordinal += 1;
            key
        })
        .collect()
}

/// The near-miss family of each shape the local patterns hold under another shape's id:
/// shape (`t2`) → the shape hash of that pattern's id. What `UnitUpsert::family` carries, so
/// the edge can join the shapes of one family across repositories (`docs/edge.md`).
///
/// Keyed by shape rather than by unit: units of one shape in one repository are exact copies
/// of each other and belong to one family, and an edited unit keeps the family of its shape
/// until patterns are clustered again (when [`Families::changed_shapes`] tells which units to
/// send again).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Families(HashMap<u64, u64>);

impl Families {
    /// The families of `patterns`, built over `files` (their members index into it).
    pub fn of_patterns(files: &[FileRecord], patterns: &[Pattern]) -> Families {
        let mut families: HashMap<u64, u64> = HashMap::new();
        for pattern in patterns {
            // Only unit members are sent; a pattern of blocks only (named by a content hash) has none.
            let Some(id) = periodic_core::pattern::parse_shape_id(&pattern.id) else { continue };
            for member in &pattern.members {
                let Some(unit) = member.unit.and_then(|unit| files.get(member.file as usize)?.units.get(unit as usize)) else { continue };
                if unit.hashes.t2 != id {
                    // A shape split between two patterns takes the smaller id, whatever their order.
                    families.entry(unit.hashes.t2).and_modify(|family| *family = (*family).min(id)).or_insert(id);
                }
            }
        }
        Families(families)
    }

    /// The family sent with units of shape `t2`.
    pub fn get(&self, t2: u64) -> Option<T2Hash> {
        self.0.get(&t2).map(|&family| T2Hash(family))
    }

    /// The shapes whose family differs between `self` and `other`.
    pub fn changed_shapes(&self, other: &Families) -> HashSet<u64> {
        let mut changed: HashSet<u64> = self.0.iter().filter(|(shape, family)| other.0.get(shape) != Some(family)).map(|(shape, _)| *shape).collect();
        changed.extend(other.0.keys().filter(|shape| !self.0.contains_key(shape)));
        changed
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The upsert of one unit; the location only at share level `locations`.
pub fn upsert(file: &FileRecord, unit: &UnitRecord, key: String, share: ShareLevel, families: &Families) -> UnitUpsert {
    UnitUpsert {
        key,
        t2_hash: T2Hash(unit.hashes.t2),
        sketch: Sketch(sketch_of(unit)),
        tokens: unit.token_count(),
        lines: unit.end_line.saturating_sub(unit.start_line) + 1,
        nesting: unit.nesting,
        language: file.language.name().to_string(),
        location: (share == ShareLevel::Locations).then(|| Location {
            path: file.path.clone(),
            name: unit.name.clone(),
            start_line: unit.start_line,
            end_line: unit.end_line,
        }),
        family: families.get(unit.hashes.t2),
    }
}

/// Every unit of a file, prepared for sending.
pub fn prepare_file(file: &FileRecord, share: ShareLevel, families: &Families) -> Vec<PreparedUnit> {
    unit_keys(file)
        .into_iter()
        .zip(&file.units)
        .map(|(key, unit)| {
            let upsert = upsert(file, unit, key.clone(), share, families);
            PreparedUnit { digest: digest(&upsert), key, path: file.path.clone(), upsert }
        })
        .collect()
}

/// Digest of everything an upsert carries, so that a unit whose fingerprint, metrics,
/// location or family did not change is not sent again (and a change of share level or of
/// family is). A unit in no family, or in the one its shape names, carries none, so its
/// digest is the one earlier versions computed and upgrading sends nothing again.
pub fn digest(upsert: &UnitUpsert) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    // The JSON form is canonical here: fields serialize in declaration order.
    if let Ok(bytes) = serde_json::to_vec(upsert) {
        hasher.update(&bytes);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    out
}

/// Identity of a unit's fingerprint for the team-answer cache: two units with the same exact
/// hash and sketch get the same answer.
pub fn fingerprint_id(unit: &UnitRecord) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&unit.hashes.t2.to_le_bytes());
    for value in sketch_of(unit).iter() {
        hasher.update(&value.to_le_bytes());
    }
    hasher.finalize().to_hex()[..32].to_string()
}

pub fn query_sketch(unit: &UnitRecord) -> QuerySketch {
    QuerySketch { id: fingerprint_id(unit), t2_hash: T2Hash(unit.hashes.t2), sketch: Sketch(sketch_of(unit)) }
}

/// A unit's sketch. A workspace syncing with an edge holds every sketch
/// (`Workspace::set_edge`); a unit whose file changed since the index was read may still
/// lack one until the file is read again, and goes as the sketch of no tokens meanwhile.
fn sketch_of(unit: &UnitRecord) -> [u32; periodic_core::fingerprint::SKETCH_LEN] {
    unit.sketch.as_deref().copied().unwrap_or([u32::MAX; periodic_core::fingerprint::SKETCH_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;
    use periodic_core::Language;
    use periodic_core::config::DetectionSettings;

    fn record(path: &str, source: &str) -> FileRecord {
        let analysis = periodic_core::analysis::analyze(Language::Python, source);
        let settings = DetectionSettings { min_lines: 2, min_tokens: 5, similarity: 0.7, blocks: false };
        FileRecord::from_analysis(path.to_string(), Language::Python, [0; 32], source.len() as u64, 0, &analysis, &settings)
    }

    const SOURCE: &str = "def total(items):\n    s = 0\n    for i in items:\n        s += i\n    return s\n\nclass A:\n    def total(self, xs):\n        n = 0\n        for x in xs:\n            n += x\n        return n\n";

    #[test]
    fn keys_are_stable_and_tell_same_named_units_apart() {
        let file = record("src/a.py", SOURCE);
        let keys = unit_keys(&file);
        assert!(file.units.len() >= 2, "two functions named `total`");
        let unique: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "every unit has its own key");
        assert!(keys.iter().all(|key| key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit())));
        // Moving code down keeps the keys; another path changes them.
        let moved = record("src/a.py", &format!("\n\n\n{SOURCE}"));
        assert_eq!(unit_keys(&moved), keys);
        assert_ne!(unit_keys(&record("src/b.py", SOURCE)), keys);
        assert_eq!(unit_key("p", "f", 0), unit_key("p", "f", 0));
        assert_ne!(unit_key("p", "f", 0), unit_key("p", "f", 1));
    }

    #[test]
    fn locations_are_sent_only_at_share_level_locations() {
        let file = record("src/a.py", SOURCE);
        let with = prepare_file(&file, ShareLevel::Locations, &Families::default());
        let without = prepare_file(&file, ShareLevel::Fingerprints, &Families::default());
        assert!(!with.is_empty());
        let location = with[0].upsert.location.as_ref().expect("location");
        assert_eq!(location.path, "src/a.py");
        assert_eq!((location.start_line, location.end_line), (file.units[0].start_line, file.units[0].end_line));
        assert!(without.iter().all(|unit| unit.upsert.location.is_none()));
        let json = serde_json::to_string(&without[0].upsert).expect("json");
        assert!(!json.contains("src/a.py") && !json.contains("total"), "{json}");
        // The sketch travels in the compact form (base64 of its 256 bytes), not as 64 numbers.
        let sent: serde_json::Value = serde_json::from_str(&json).expect("parse");
        assert_eq!(sent["sketch"].as_str().map(str::len), Some(periodic_wire::v1::SKETCH_BASE64_LEN), "{json}");
        // The digest follows the share level, so switching level resends every unit.
        assert_ne!(with[0].digest, without[0].digest);
        assert_eq!(with[0].upsert.t2_hash, T2Hash(file.units[0].hashes.t2));
        assert_eq!(Some(&with[0].upsert.sketch.0), file.units[0].sketch.as_deref());
        assert_eq!(with[0].upsert.language, "python");
    }

    #[test]
    fn the_digest_changes_with_the_code_and_not_otherwise() {
        let a = prepare_file(&record("a.py", SOURCE), ShareLevel::Fingerprints, &Families::default());
        let again = prepare_file(&record("a.py", SOURCE), ShareLevel::Fingerprints, &Families::default());
        assert_eq!(a, again);
        let changed = prepare_file(&record("a.py", &SOURCE.replace("s += i", "s += i * 2")), ShareLevel::Fingerprints, &Families::default());
        assert_ne!(a[0].digest, changed[0].digest);
        assert_eq!(a[0].key, changed[0].key);
    }

    #[test]
    fn a_unit_carries_the_family_of_its_shape_and_a_new_family_changes_its_digest() {
        let file = record("a.py", SOURCE);
        let shape = file.units[0].hashes.t2;
        let none = prepare_file(&file, ShareLevel::Fingerprints, &Families::default());
        let families = Families([(shape, 0xabc)].into_iter().collect());
        let sent = prepare_file(&file, ShareLevel::Fingerprints, &families);
        assert_eq!(sent[0].upsert.family, Some(T2Hash(0xabc)));
        assert_ne!(sent[0].digest, none[0].digest, "a unit whose family changes is sent again");
        assert!(none.iter().all(|unit| unit.upsert.family.is_none()));
        assert!(!serde_json::to_string(&none[0].upsert).expect("json").contains("family"), "no family: the upsert of earlier versions");
        let moved = Families([(shape, 0xdef), (7, 8)].into_iter().collect());
        assert_eq!(families.changed_shapes(&moved), [shape, 7].into_iter().collect());
        assert!(families.changed_shapes(&families.clone()).is_empty());
    }
}
