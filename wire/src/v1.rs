//! Version 1 of the edge wire format (served under `/v1/...`). Every request body rejects
//! unknown fields, so a client that sends something the server would silently ignore learns
//! about it at once (HTTP 400 naming the field).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// The URL prefix of this version.
pub const API_PREFIX: &str = "/v1";

/// Number of MinHash values in a unit's similarity sketch.
pub const SKETCH_LEN: usize = 64;
/// Sketch positions per LSH band. Two units become candidates when any band matches exactly.
pub const BAND_ROWS: usize = 4;
/// Number of LSH bands (`SKETCH_LEN / BAND_ROWS`).
pub const BANDS: usize = SKETCH_LEN / BAND_ROWS;

/// How much a client shares about its units. `Off` never reaches the server; it is listed so
/// that both sides spell the setting the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareLevel {
    /// Fingerprints plus path, name and line range.
    Locations,
    /// Fingerprints and metrics only.
    Fingerprints,
    /// Nothing is sent.
    Off,
}

/// Exact structural hash of a unit (Type-1/Type-2 clones share it), written as 16 lowercase
/// hex characters because JSON numbers lose precision above 2^53.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct T2Hash(pub u64);

impl T2Hash {
    /// The 16-character lowercase hex form used on the wire and as a pattern id.
    pub fn to_hex(self) -> String {
        // Spelled out: this runs for every match of every answer, and the formatting
        // machinery costs several times as much.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        (0..16).rev().map(|nibble| char::from(DIGITS[((self.0 >> (nibble * 4)) & 0xf) as usize])).collect()
    }

    /// The pattern id of the units sharing this hash: `P-` and the 16 hex characters, the
    /// same id `periodic` computes locally for the family whose most shared shape this is.
    pub fn pattern_id(self) -> String {
        format!("P-{}", self.to_hex())
    }

    /// Parses a pattern id: `P-` and 16 hex characters (any case), or the bare 16 lowercase
    /// hex characters that earlier versions of the edge used as pattern ids.
    pub fn from_pattern_id(text: &str) -> Option<T2Hash> {
        match text.strip_prefix("P-") {
            Some(hex) => T2Hash::from_hex(&hex.to_ascii_lowercase()),
            None => T2Hash::from_hex(text),
        }
    }

    /// Parses exactly 16 lowercase hex characters (the only spelling of a hash on the wire).
    pub fn from_hex(text: &str) -> Option<T2Hash> {
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(T2Hash)
    }
}

impl Serialize for T2Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for T2Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl Visitor<'_> for HexVisitor {
            type Value = T2Hash;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string of exactly 16 lowercase hex characters")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<T2Hash, E> {
                T2Hash::from_hex(value).ok_or_else(|| E::invalid_value(de::Unexpected::Str(value), &self))
            }
        }
        deserializer.deserialize_str(HexVisitor)
    }
}

/// Characters of a sketch in its compact wire form: standard base64, with padding, of the
/// [`SKETCH_LEN`] values as little-endian u32 (256 bytes).
pub const SKETCH_BASE64_LEN: usize = (SKETCH_LEN * 4).div_ceil(3) * 4;

/// A MinHash signature: exactly [`SKETCH_LEN`] values.
///
/// On the wire it has two spellings, both accepted everywhere a sketch is read: the compact
/// form, a string of [`SKETCH_BASE64_LEN`] base64 characters (see [`Sketch::to_base64`]),
/// which is what this crate writes; and a JSON array of [`SKETCH_LEN`] integers, the form of
/// the first v1 clients. The compact form is about a third of the size and parses without
/// 64 integer conversions, which is most of the cost of a delta batch on both sides.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sketch(pub [u32; SKETCH_LEN]);

impl fmt::Debug for Sketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sketch({:08x}..)", self.0[0])
    }
}

/// Why a string is not a compact sketch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SketchDecodeError {
    /// Not [`SKETCH_BASE64_LEN`] characters long.
    Length(usize),
    /// The right length, but not canonical standard base64 (alphabet `A-Z a-z 0-9 + /`,
    /// `==` padding, unused bits zero).
    Base64,
}

impl fmt::Display for SketchDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SketchDecodeError::Length(found) => write!(
                f,
                "a base64 sketch is exactly {SKETCH_BASE64_LEN} characters (the {SKETCH_LEN} values as little-endian u32), got {found}"
            ),
            SketchDecodeError::Base64 => {
                write!(f, "a base64 sketch must be standard base64 with padding (A-Z, a-z, 0-9, '+', '/', '=') of {} bytes", SKETCH_LEN * 4)
            }
        }
    }
}

impl std::error::Error for SketchDecodeError {}

impl Sketch {
    /// The compact wire form: standard base64 (padded) of the values as little-endian u32.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.to_le_bytes())
    }

    /// Parses the compact wire form written by [`Sketch::to_base64`].
    pub fn from_base64(text: &str) -> Result<Sketch, SketchDecodeError> {
        use base64::Engine as _;
        if text.len() != SKETCH_BASE64_LEN {
            let characters = text.chars().count();
            // Right count but multi-byte characters: a character outside the alphabet.
            return Err(if characters == SKETCH_BASE64_LEN { SketchDecodeError::Base64 } else { SketchDecodeError::Length(characters) });
        }
        let mut bytes = [0u8; SKETCH_LEN * 4];
        // The decoder wants room for whole 3-byte groups; 256 bytes end in a partial one.
        let mut buffer = [0u8; SKETCH_BASE64_LEN / 4 * 3];
        let written = base64::engine::general_purpose::STANDARD.decode_slice(text, &mut buffer).map_err(|_| SketchDecodeError::Base64)?;
        if written != bytes.len() {
            return Err(SketchDecodeError::Base64);
        }
        bytes.copy_from_slice(&buffer[..written]);
        Ok(Sketch::from_le_bytes(&bytes))
    }

    /// The values as little-endian bytes (the compact wire form before base64, and the stored
    /// form of the embedded store).
    pub fn to_le_bytes(&self) -> [u8; SKETCH_LEN * 4] {
        let mut bytes = [0u8; SKETCH_LEN * 4];
        for (chunk, value) in bytes.chunks_exact_mut(4).zip(self.0) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    /// The inverse of [`Sketch::to_le_bytes`].
    pub fn from_le_bytes(bytes: &[u8; SKETCH_LEN * 4]) -> Sketch {
        let mut values = [0u32; SKETCH_LEN];
        for (value, chunk) in values.iter_mut().zip(bytes.chunks_exact(4)) {
            *value = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Sketch(values)
    }
}

impl Serialize for Sketch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Sketch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SketchVisitor;
        impl<'de> Visitor<'de> for SketchVisitor {
            type Value = Sketch;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a string of {SKETCH_BASE64_LEN} base64 characters or an array of exactly {SKETCH_LEN} unsigned 32-bit integers")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Sketch, E> {
                Sketch::from_base64(value).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sketch, A::Error> {
                let mut values = [0u32; SKETCH_LEN];
                for (index, slot) in values.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(index, &self))?;
                }
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(SKETCH_LEN + 1, &self));
                }
                Ok(Sketch(values))
            }
        }
        // Self-describing formats (JSON) pick the visitor method from what they find.
        deserializer.deserialize_any(SketchVisitor)
    }
}

impl Sketch {
    /// The LSH band keys of this sketch, one per band.
    pub fn band_keys(&self) -> [u64; BANDS] {
        let mut keys = [0u64; BANDS];
        for (band_index, key) in keys.iter_mut().enumerate() {
            let rows = &self.0[band_index * BAND_ROWS..(band_index + 1) * BAND_ROWS];
            *key = band_key(band_index, rows);
        }
        keys
    }

    /// Jaccard estimate: the fraction of positions where both signatures hold the same value.
    pub fn similarity(&self, other: &Sketch) -> f32 {
        let equal = self.0.iter().zip(other.0.iter()).filter(|(a, b)| a == b).count();
        equal as f32 / SKETCH_LEN as f32
    }
}

/// Hash of (band index, the band's rows): FNV-1a 64 over the little-endian bytes of the band
/// index (as u32) followed by each row, then a final avalanche so nearby inputs spread.
/// Spelled out here, with no hashing dependency, so every implementation computes the same key.
pub fn band_key(band_index: usize, rows: &[u32]) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    let mut feed = |word: u32| {
        for byte in word.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    };
    feed(band_index as u32);
    for &row in rows {
        feed(row);
    }
    // splitmix64 finaliser
    let mut z = hash;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Similarity the edge reports: 1.0 for an exact structural match, otherwise the sketch
/// estimate.
pub fn unit_similarity(a_hash: T2Hash, a_sketch: &Sketch, b_hash: T2Hash, b_sketch: &Sketch) -> f32 {
    if a_hash == b_hash { 1.0 } else { a_sketch.similarity(b_sketch) }
}

/// Where a unit lives; sent only at share level `locations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub path: String,
    pub name: String,
    pub start_line: u32,
    pub end_line: u32,
}

/// The fingerprint of one unit as the client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitUpsert {
    /// Stable key of the unit inside its repository (e.g. blake3 of path, name, ordinal).
    pub key: String,
    pub t2_hash: T2Hash,
    pub sketch: Sketch,
    pub tokens: u32,
    pub lines: u32,
    pub nesting: u32,
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The unit's near-miss family as its repository sees it: the hash of the id of the local
    /// pattern holding units of this shape (`P-` and these 16 hex characters), sent only when
    /// it differs from `t2_hash` (a unit in no pattern, or in the pattern named by its own
    /// shape, leaves it out). A structural hash like `t2_hash`, so it is sent at every share
    /// level. The edge joins the shapes it links into one team pattern (see `docs/edge.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<T2Hash>,
}

/// Body of `POST /v1/repos/{repo}/deltas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaBatch {
    /// Chosen by the client, unique per repository; a retried batch with the same id is
    /// applied once.
    pub batch_id: String,
    #[serde(default)]
    pub upserts: Vec<UnitUpsert>,
    /// Keys of units that no longer exist.
    #[serde(default)]
    pub removals: Vec<String>,
}

/// Answer to a delta batch. `duplicate` is true when the batch id had already been applied;
/// the counts are then those of the first application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaAck {
    pub batch_id: String,
    pub duplicate: bool,
    pub upserted: u32,
    pub removed: u32,
}

/// Answer to `DELETE /v1/repos/{repo}`: every unit of the repository in the caller's team was
/// removed (with its index entries, pattern counts and family links, and the repository's
/// applied batch ids); `removed` counts the units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoDeleted {
    pub repo: String,
    pub removed: u64,
}

/// One sketch to look up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySketch {
    /// The client's own correlation id, echoed in the result.
    pub id: String,
    pub t2_hash: T2Hash,
    pub sketch: Sketch,
}

/// Body of `POST /v1/query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    pub sketches: Vec<QuerySketch>,
    /// Leave out units of this repository (usually the asking one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_repo: Option<String>,
    /// Smallest similarity returned, 0..=1; the server's default applies when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_similarity: Option<f32>,
    /// Largest number of matches per sketch; the server's default applies when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
}

/// A stored unit similar to a queried sketch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitMatch {
    pub repo: String,
    pub key: String,
    pub similarity: f32,
    /// The structural hash matched exactly.
    pub exact: bool,
    /// Id of the team pattern holding the unit: `P-` and the unit's `t2_hash` (see
    /// [`T2Hash::pattern_id`]), or the id of the near-miss family its shape is linked into.
    pub pattern_id: String,
    pub language: String,
    pub tokens: u32,
    pub lines: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// Matches for one queried sketch, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SketchResult {
    pub id: String,
    pub matches: Vec<UnitMatch>,
}

/// Answer to `POST /v1/query`, one entry per queried sketch in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryResponse {
    pub results: Vec<SketchResult>,
    /// How common each queried `t2_hash` (16 hex characters) is across the organisation, as
    /// the cloud tier last reported it. Only for hashes whose answer the team edge has cached:
    /// a query never waits on the cloud, so an absent entry means "not known yet".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub organisation: BTreeMap<String, Organisation>,
}

/// Organisation-wide counts of one exact structural hash, summed over every team that pushes
/// statistics to the cloud tier (the asking team included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    /// Teams with at least one unit of this hash.
    pub teams: u64,
    /// Repositories (over all those teams) with at least one unit of this hash.
    pub repos: u64,
    /// Units with this hash.
    pub units: u64,
}

/// A pattern of the team's periodic table: the units of the shapes one near-miss family links
/// (a single exact structural hash when no family links it to another).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternSummary {
    /// `P-` and the `t2_hash` most of its units share, smallest on ties (see
    /// [`T2Hash::pattern_id`]).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub units: u64,
    pub repos: u64,
    pub language: String,
    pub tokens: u32,
    /// Id of the token that last set the name or note (absent before names were attributed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_by: Option<String>,
    /// When the name or note was last set, in seconds since the Unix epoch: the last writer
    /// wins, here and against a name given locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_at: Option<u64>,
}

/// Answer to `GET /v1/patterns?top=N` (most widespread first) and `GET
/// /v1/patterns?named=true&top=N` (every pattern with a team name, most recently named first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternList {
    pub patterns: Vec<PatternSummary>,
}

/// How an occurrence relates to its pattern's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OccurrenceKind {
    /// Same shape as the pattern's id (an exact or renamed copy: T1 or T2; the edge holds no
    /// exact-text hash, so it does not tell the two apart).
    T2,
    /// Another shape of the same family: a near miss (T3).
    T3,
}

/// One occurrence of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternOccurrence {
    pub repo: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// `t2` when the unit has the pattern id's shape, `t3` when it joined through a near-miss
    /// family. Absent from edges before families, and from the answer to `PUT` (which
    /// language servers before families read, rejecting unknown fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<OccurrenceKind>,
}

/// Answer to `GET /v1/patterns/{id}` and `PUT /v1/patterns/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternDetail {
    pub summary: PatternSummary,
    /// Up to a server-chosen number of occurrences.
    pub occurrences: Vec<PatternOccurrence>,
}

/// Body of `PUT /v1/patterns/{id}`: the team-shared name and note. Absent fields are cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Answer to `GET /v1/stats`, for the caller's tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub units: u64,
    pub repos: u64,
    pub patterns: u64,
    pub shards: u32,
}

/// Body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Machine-readable kind, e.g. `bad_request`, `unauthorized`, `rate_limited`.
    pub error: String,
    /// Human-readable detail; for bad input it names the offending field.
    pub message: String,
}

/// Longest `analysis` key of the analysis cache.
pub const MAX_ANALYSIS_KEY_CHARS: usize = 128;
/// Most content hashes in one `POST /v1/analyses/lookup`.
pub const MAX_ANALYSIS_LOOKUP: usize = 1000;
/// Most entries in one `POST /v1/analyses`.
pub const MAX_ANALYSIS_UPLOAD: usize = 500;
/// Largest entry (decoded bytes) the analysis cache takes.
pub const MAX_ANALYSIS_ENTRY_BYTES: usize = 4 << 20;

/// Body of `POST /v1/analyses/lookup`: which of these files has the team analysed already?
/// A content hash another tenant holds is a miss like any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisLookup {
    /// What produced the entries: the engine's per-file analysis version and a digest of the
    /// settings that change per-file analysis. Opaque to the edge (1 to
    /// [`MAX_ANALYSIS_KEY_CHARS`] characters of `A-Za-z0-9._:-`); entries stored under any
    /// other key are never returned, which is how a new engine version invalidates them.
    pub analysis: String,
    /// blake3 of each file's bytes, 64 lowercase hex characters; at most
    /// [`MAX_ANALYSIS_LOOKUP`].
    pub hashes: Vec<String>,
}

/// One stored analysis: a file's content hash and the client-encoded entry. The entry is
/// opaque to the edge; clients encode it so that it carries no identifier, literal, comment
/// or path (see `docs/edge.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisEntry {
    /// blake3 of the file's bytes, 64 lowercase hex characters.
    pub hash: String,
    /// The entry, base64 (standard alphabet, padded); at most [`MAX_ANALYSIS_ENTRY_BYTES`]
    /// once decoded.
    pub entry: String,
}

/// One line of the answer to `POST /v1/analyses/lookup`, sent as `application/x-ndjson`:
/// a line per hit as soon as it is read (in any order; misses are left out), then one last
/// line `{"done": true, "hits": N}`. An answer without that last line was cut short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnalysisLookupLine {
    Hit(AnalysisEntry),
    Done { done: bool, hits: u32 },
}

/// Body of `POST /v1/analyses` (write role): entries to keep for teammates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisUpload {
    /// As in [`AnalysisLookup::analysis`].
    pub analysis: String,
    /// At most [`MAX_ANALYSIS_UPLOAD`].
    pub entries: Vec<AnalysisEntry>,
}

/// Answer to `POST /v1/analyses`. Storing an entry already held only refreshes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisUploadAck {
    pub stored: u32,
}

/// Stable key of a unit inside its repository, as `periodic` clients send it: blake3 of the
/// path, the name and the ordinal among units of the same name in that file, as 32 hex
/// characters. Edits that move a function keep its key; renaming the function or the file
/// gives a new one. The server treats keys as opaque; this is the one definition clients use.
pub fn unit_key(path: &str, name: &str, ordinal: u32) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(path.as_bytes());
    hasher.update(&[0]);
    hasher.update(name.as_bytes());
    hasher.update(&[0]);
    hasher.update(&ordinal.to_le_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_from(seed: u32) -> Sketch {
        let mut values = [0u32; SKETCH_LEN];
        for (index, value) in values.iter_mut().enumerate() {
            *value = seed.wrapping_mul(2_654_435_761).wrapping_add(index as u32);
        }
        Sketch(values)
    }

    #[test]
    fn pattern_ids_are_sixteen_lowercase_hex_digits_and_parse_back() {
        for value in [0u64, 1, 0xff, 0x0123_4567_89ab_cdef, u64::MAX, 0xfedc_ba98_7654_3210] {
            let hex = T2Hash(value).to_hex();
            assert_eq!(hex, format!("{value:016x}"));
            assert_eq!(T2Hash::from_hex(&hex), Some(T2Hash(value)));
        }
    }

    #[test]
    fn pattern_ids_carry_the_prefix_and_parse_in_both_forms() {
        let hash = T2Hash(0x00ab_cdef_0123_4567);
        assert_eq!(hash.pattern_id(), "P-00abcdef01234567");
        assert_eq!(T2Hash::from_pattern_id("P-00abcdef01234567"), Some(hash));
        assert_eq!(T2Hash::from_pattern_id("P-00ABCDEF01234567"), Some(hash));
        assert_eq!(T2Hash::from_pattern_id("00abcdef01234567"), Some(hash));
        assert_eq!(T2Hash::from_pattern_id("P-00abcdef"), None);
        assert_eq!(T2Hash::from_pattern_id("Q-00abcdef01234567"), None);
    }

    #[test]
    fn constants_divide_evenly() {
        assert_eq!(BANDS * BAND_ROWS, SKETCH_LEN);
        assert_eq!(BANDS, 16);
    }

    #[test]
    fn t2_hash_round_trips_as_sixteen_hex_chars() {
        let hash = T2Hash(0x00ab_cdef_0123_4567);
        let json = serde_json::to_string(&hash).expect("serialize");
        assert_eq!(json, "\"00abcdef01234567\"");
        let back: T2Hash = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, hash);
        assert!(serde_json::from_str::<T2Hash>("\"abc\"").is_err());
        assert!(serde_json::from_str::<T2Hash>("\"zzzzzzzzzzzzzzzz\"").is_err());
        assert!(serde_json::from_str::<T2Hash>("\"00ABCDEF01234567\"").is_err());
        assert!(serde_json::from_str::<T2Hash>("12").is_err());
    }

    #[test]
    fn sketch_requires_exact_length() {
        let sketch = sketch_from(7);
        let array = format!("[{}]", sketch.0.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
        let back: Sketch = serde_json::from_str(&array).expect("parse");
        assert_eq!(back, sketch);
        let short = format!("[{}]", vec!["1"; SKETCH_LEN - 1].join(","));
        let long = format!("[{}]", vec!["1"; SKETCH_LEN + 1].join(","));
        assert!(serde_json::from_str::<Sketch>(&short).is_err());
        assert!(serde_json::from_str::<Sketch>(&long).is_err());
        assert!(serde_json::from_str::<Sketch>("[-1]").is_err());
    }

    #[test]
    fn sketch_is_written_compact_and_read_in_both_forms() {
        let sketch = sketch_from(11);
        let json = serde_json::to_string(&sketch).expect("serialize");
        assert_eq!(json.len(), SKETCH_BASE64_LEN + 2, "{json}");
        assert_eq!(SKETCH_BASE64_LEN, 344);
        assert!(json.ends_with("==\""), "{json}");
        let back: Sketch = serde_json::from_str(&json).expect("parse compact");
        assert_eq!(back, sketch);
        let array = format!("[{}]", sketch.0.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
        assert_eq!(serde_json::from_str::<Sketch>(&array).expect("parse array"), sketch);
        // The byte order is little-endian u32, so another implementation can produce it.
        let mut ordered = [0u32; SKETCH_LEN];
        ordered[0] = 0x0403_0201;
        let encoded = Sketch(ordered).to_base64();
        assert!(encoded.starts_with("AQIDBAAA"), "{encoded}");
        // Pinned: the last quantum carries one byte, so its second character ends in zero bits.
        assert_eq!(Sketch([u32::MAX; SKETCH_LEN]).to_base64(), format!("{}/w==", "/".repeat(340)));
    }

    #[test]
    fn bad_compact_sketches_are_rejected_with_the_reason() {
        let good = sketch_from(5).to_base64();
        let reason = |text: &str| serde_json::from_str::<Sketch>(&format!("\"{text}\"")).expect_err(text).to_string();
        assert!(reason(&good[..100]).contains("exactly 344 characters"), "{}", reason(&good[..100]));
        assert!(reason(&format!("{good}AAAA")).contains("got 348"));
        let outside_alphabet = format!("{}*{}", &good[..10], &good[11..]);
        assert!(reason(&outside_alphabet).contains("standard base64"), "{}", reason(&outside_alphabet));
        let url_safe = format!("{}_{}", &good[..10], &good[11..]);
        assert!(reason(&url_safe).contains("standard base64"));
        // Non-zero unused bits in the last character: not the canonical encoding.
        let noncanonical = format!("{}B==", &good[..341]);
        assert!(reason(&noncanonical).contains("standard base64"));
        let unpadded = format!("{}AAA", &good[..341]);
        assert!(reason(&unpadded).contains("standard base64"));
        let multibyte = format!("é{}", &good[2..]);
        assert!(reason(&multibyte).contains("standard base64"), "{}", reason(&multibyte));
        assert!(serde_json::from_str::<Sketch>("{}").is_err());
        assert!(serde_json::from_str::<Sketch>("7").is_err());
    }

    #[test]
    fn similarity_counts_equal_positions() {
        let a = sketch_from(1);
        let mut b = a.clone();
        for value in b.0.iter_mut().take(16) {
            *value ^= 1;
        }
        assert_eq!(a.similarity(&a), 1.0);
        assert_eq!(a.similarity(&b), 0.75);
        assert_eq!(unit_similarity(T2Hash(5), &a, T2Hash(5), &b), 1.0);
        assert_eq!(unit_similarity(T2Hash(5), &a, T2Hash(6), &b), 0.75);
    }

    #[test]
    fn band_keys_follow_band_contents() {
        let a = sketch_from(3);
        let mut b = a.clone();
        b.0[0] ^= 1; // only band 0 differs
        let keys_a = a.band_keys();
        let keys_b = b.band_keys();
        assert_ne!(keys_a[0], keys_b[0]);
        assert_eq!(keys_a[1..], keys_b[1..]);
        // The band index is part of the key: equal rows in different bands give different keys.
        assert_ne!(band_key(0, &[1, 2, 3, 4]), band_key(1, &[1, 2, 3, 4]));
        // Pinned value (also computed by an independent Python transcription of the
        // algorithm) so that other implementations can check themselves against it.
        assert_eq!(band_key(0, &[1, 2, 3, 4]), 0xd49c_2bab_5397_6226);
    }

    #[test]
    fn family_is_optional_and_left_out_when_absent() {
        let mut upsert = UnitUpsert {
            key: "k".into(),
            t2_hash: T2Hash(1),
            sketch: sketch_from(1),
            tokens: 10,
            lines: 3,
            nesting: 1,
            language: "rust".into(),
            location: None,
            family: None,
        };
        let json = serde_json::to_string(&upsert).expect("serialize");
        assert!(!json.contains("family"), "an old edge never sees the field: {json}");
        assert_eq!(serde_json::from_str::<UnitUpsert>(&json).expect("an old client's upsert parses"), upsert);
        upsert.family = Some(T2Hash(0xab));
        let json = serde_json::to_string(&upsert).expect("serialize");
        assert!(json.contains(r#""family":"00000000000000ab""#), "{json}");
        assert_eq!(serde_json::from_str::<UnitUpsert>(&json).expect("parse"), upsert);
        let occurrence = PatternOccurrence { repo: "r".into(), key: "k".into(), location: None, kind: Some(OccurrenceKind::T3) };
        assert_eq!(serde_json::to_string(&occurrence).expect("serialize"), r#"{"repo":"r","key":"k","kind":"t3"}"#);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let body = r#"{"batch_id":"b1","upserts":[],"removals":[],"extra":1}"#;
        let error = serde_json::from_str::<DeltaBatch>(body).expect_err("unknown field");
        assert!(error.to_string().contains("extra"), "{error}");
    }
}
