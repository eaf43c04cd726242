//! Where the Redis Cluster backend keeps what, and how a stored unit is encoded. Every key of a
//! tenant starts with `pe:2:t:<tenant-hash>:` (`2`: the layout's version, so that data of an
//! earlier layout is never read as this one; the per-tenant prefix: a tenant's data can be
//! listed or dropped by prefix, and tenant names never reach key names). The part in braces is
//! the hash tag, so it alone decides the slot:
//!
//! - `{<t>.p<N>}` — one of [`PARTITIONS`] partitions of the tenant. It holds the unit records
//!   (`recs`), the T2 groups (`groups`: one field per T2, its members each followed by its
//!   repository's 8-byte tag, see [`GROUP_ENTRY_LEN`]; also the exact-match lane of a query),
//!   each group's language and size (`gi`), the pattern ranking and the pattern names of the
//!   units whose structural hash (T2) falls in it, so a whole T2 group lives in one slot and a
//!   Lua script updates records and groups atomically. It also holds the band buckets
//!   (`bands`) whose LSH band value falls in it; see [`BandSlot`].
//! - `{<t>.r.<repo>}` — per repository: key → member locator, applied batch ids, write lock.
//! - `{<t>}` — the tenant's set of repositories.
//! - `{<t>.a}` — the tenant's analysis cache: one key per entry (`ae:<member>`, with a TTL),
//!   the last-use sorted set (`alru`), the entries' charged sizes (`asizes`) and the
//!   tenant's charged total and last-use clock (`ameta`); see `store::redis::analyses`.
//!
//! A member (16 bytes: T2 big-endian, then 8 bytes of blake3(tenant, repo, key)) names one
//! stored unit; its T2 gives its partition, so a member found in a band bucket is fetched
//! from its partition's `recs` without any further lookup.
//!
//! Band buckets are not keys of their own (a key per bucket, most holding one member, cost
//! ~4.7 KB per unit and one command per bucket per unit): a band value picks a partition, one
//! of [`BAND_FIELDS`] fields of that partition's `bands` hash, and a 4-byte tag. A field's
//! value is a string of [`BAND_ENTRY_LEN`]-byte entries (tag, member): the members of every
//! bucket that shares the field, told apart by the tag. Two buckets that share field and tag
//! only add candidates, and every candidate is re-checked against its record's own band values,
//! so that never changes an answer.

use periodic_wire::{Location, SKETCH_LEN, Sketch, T2Hash};

use crate::store::StoreError;

/// Partitions per tenant. Fixed: changing it would move every record.
pub const PARTITIONS: u64 = 64;
/// Fields of a partition's `bands` hash. With 100 k units a field holds ~6 entries (the
/// per-field overhead of a Redis hash, ~70 bytes, is shared by them); with 1 M, ~60 (1.2 KB,
/// read whole by a lookup).
pub const BAND_FIELDS: u64 = 4096;
/// Bytes of one band entry: the bucket's 4-byte tag, then the 16-byte member.
pub const BAND_ENTRY_LEN: usize = 20;
/// Bytes of one group entry: the 16-byte member, then its repository's 8-byte tag.
pub const GROUP_ENTRY_LEN: usize = 24;

pub type Member = [u8; 16];

/// Key names of one tenant.
pub struct Keys {
    tenant: String,
}

fn hash_part(parts: &[&str]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    *hasher.finalize().as_bytes()
}

impl Keys {
    pub fn new(tenant: &str) -> Keys {
        let digest = hash_part(&[tenant]);
        let tenant = digest[..8].iter().map(|byte| format!("{byte:02x}")).collect();
        Keys { tenant }
    }

    fn partition_key(&self, partition: u64, name: &str) -> String {
        format!("pe:2:t:{0}:{{{0}.p{partition}}}:{name}", self.tenant)
    }

    pub fn records(&self, partition: u64) -> String {
        self.partition_key(partition, "recs")
    }
    /// T2 hex → the group's entries ([`GROUP_ENTRY_LEN`] bytes each).
    pub fn groups(&self, partition: u64) -> String {
        self.partition_key(partition, "groups")
    }
    pub fn group_info(&self, partition: u64) -> String {
        self.partition_key(partition, "gi")
    }
    pub fn ranking(&self, partition: u64) -> String {
        self.partition_key(partition, "rank")
    }
    pub fn unit_count(&self, partition: u64) -> String {
        self.partition_key(partition, "n")
    }
    pub fn names(&self, partition: u64) -> String {
        self.partition_key(partition, "names")
    }
    pub fn bands(&self, partition: u64) -> String {
        self.partition_key(partition, "bands")
    }
    /// Near-miss family links of the partition's units (see `store::family`): field = the
    /// unit's T2 then its family, 32 hex characters; value = how many units hold the link.
    pub fn links(&self, partition: u64) -> String {
        self.partition_key(partition, "links")
    }
    /// Repository names are restricted to `[A-Za-z0-9._-]` by the API, so they are safe in a tag.
    fn repo_key(&self, repo: &str, name: &str) -> String {
        format!("pe:2:t:{0}:{{{0}.r.{repo}}}:{name}", self.tenant)
    }
    pub fn locator(&self, repo: &str) -> String {
        self.repo_key(repo, "loc")
    }
    pub fn batches(&self, repo: &str) -> String {
        self.repo_key(repo, "batches")
    }
    pub fn lock(&self, repo: &str) -> String {
        self.repo_key(repo, "lock")
    }
    pub fn repos(&self) -> String {
        format!("pe:2:t:{0}:{{{0}}}:repos", self.tenant)
    }
    /// The analysis cache's slot: every entry and its bookkeeping together, so that one Lua
    /// script call stores, refreshes and evicts atomically.
    fn analysis_key(&self, name: &str) -> String {
        format!("pe:2:t:{0}:{{{0}.a}}:{name}", self.tenant)
    }
    /// Member (see `analyses::analysis_member`) → last use, microseconds since the epoch.
    pub fn analysis_lru(&self) -> String {
        self.analysis_key("alru")
    }
    /// Member → bytes charged to the budget.
    pub fn analysis_sizes(&self) -> String {
        self.analysis_key("asizes")
    }
    /// `bytes` (the tenant's charged total) and `clock` (its last use clock).
    pub fn analysis_meta(&self) -> String {
        self.analysis_key("ameta")
    }
    /// The key holding one entry; with an empty member, the prefix of every entry's key.
    pub fn analysis_entry(&self, member: &str) -> String {
        self.analysis_key(&format!("ae:{member}"))
    }
}

/// Units stored across all tenants: a gauge for `/metrics`.
pub const UNITS_GAUGE_KEY: &str = "pe:units";

pub fn partition_of(t2: T2Hash) -> u64 {
    t2.0 % PARTITIONS
}

/// Where one LSH band bucket lives: band values are avalanche-mixed hashes that include the
/// band index, so their low bits pick the partition, the next 12 the field, the high 32 the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BandSlot {
    pub partition: u64,
    pub field: [u8; 2],
    pub tag: [u8; 4],
}

pub fn band_slot(band_value: u64) -> BandSlot {
    let field = ((band_value / PARTITIONS) % BAND_FIELDS) as u16;
    BandSlot { partition: band_value % PARTITIONS, field: field.to_be_bytes(), tag: ((band_value >> 32) as u32).to_be_bytes() }
}

pub fn band_entry(tag: [u8; 4], member: &Member) -> [u8; BAND_ENTRY_LEN] {
    let mut entry = [0u8; BAND_ENTRY_LEN];
    entry[..4].copy_from_slice(&tag);
    entry[4..].copy_from_slice(member);
    entry
}

/// Members of the bucket tagged `tag` in a `bands` field's value, in stored order.
pub fn bucket_members(field_value: &[u8], tag: [u8; 4]) -> Result<Vec<Member>, StoreError> {
    if !field_value.len().is_multiple_of(BAND_ENTRY_LEN) {
        return Err(StoreError::Corrupt(format!("a band field holds {} bytes, not a multiple of {BAND_ENTRY_LEN}", field_value.len())));
    }
    Ok(field_value
        .chunks_exact(BAND_ENTRY_LEN)
        .filter(|entry| entry[..4] == tag)
        .map(|entry| {
            let mut member = [0u8; 16];
            member.copy_from_slice(&entry[4..]);
            member
        })
        .collect())
}

/// The tag of a repository in group entries: distinct tags count a pattern's repositories.
pub fn repo_tag(tenant: &str, repo: &str) -> [u8; 8] {
    let digest = hash_part(&["repository", tenant, repo]);
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&digest[..8]);
    tag
}

/// Members of a group with their repositories' tags, from its `groups` field value.
pub fn group_entries(field_value: &[u8]) -> Result<Vec<(Member, [u8; 8])>, StoreError> {
    if !field_value.len().is_multiple_of(GROUP_ENTRY_LEN) {
        return Err(StoreError::Corrupt(format!("a group holds {} bytes, not a multiple of {GROUP_ENTRY_LEN}", field_value.len())));
    }
    Ok(field_value
        .chunks_exact(GROUP_ENTRY_LEN)
        .map(|entry| {
            let (mut member, mut tag) = ([0u8; 16], [0u8; 8]);
            member.copy_from_slice(&entry[..16]);
            tag.copy_from_slice(&entry[16..]);
            (member, tag)
        })
        .collect())
}

/// A link field of `links`: the unit's T2 and its family, as hex.
pub fn link_field(t2: T2Hash, family: T2Hash) -> String {
    format!("{}{}", t2.to_hex(), family.to_hex())
}

/// The (T2, family) of a link field.
pub fn parse_link_field(field: &str) -> Result<(T2Hash, T2Hash), StoreError> {
    let parsed = (field.len() == 32).then(|| Some((T2Hash::from_hex(&field[..16])?, T2Hash::from_hex(&field[16..])?))).flatten();
    parsed.ok_or_else(|| StoreError::Corrupt(format!("a family link field {field:?}")))
}

/// Members of a group, from its `groups` field value.
pub fn group_members(field_value: &[u8]) -> Result<Vec<Member>, StoreError> {
    if !field_value.len().is_multiple_of(GROUP_ENTRY_LEN) {
        return Err(StoreError::Corrupt(format!("a group holds {} bytes, not a multiple of {GROUP_ENTRY_LEN}", field_value.len())));
    }
    Ok(field_value
        .chunks_exact(GROUP_ENTRY_LEN)
        .map(|entry| {
            let mut member = [0u8; 16];
            member.copy_from_slice(&entry[..16]);
            member
        })
        .collect())
}

pub fn member(tenant: &str, repo: &str, key: &str, t2: T2Hash) -> Member {
    let digest = hash_part(&[tenant, repo, key]);
    let mut member = [0u8; 16];
    member[..8].copy_from_slice(&t2.0.to_be_bytes());
    member[8..].copy_from_slice(&digest[..8]);
    member
}

pub fn member_t2(member: &Member) -> T2Hash {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&member[..8]);
    T2Hash(u64::from_be_bytes(bytes))
}

pub fn member_from(bytes: &[u8]) -> Result<Member, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt(format!("a stored member has {} bytes, not 16", bytes.len())))
}

/// A stored unit as decoded from its record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub t2_hash: T2Hash,
    pub repo: String,
    pub key: String,
    pub language: String,
    pub tokens: u32,
    pub lines: u32,
    pub nesting: u32,
    pub sketch: Sketch,
    pub location: Option<Location>,
    /// The client's near-miss family (see `store::family`).
    pub family: Option<T2Hash>,
}

/// Record layout: T2 as 16 hex characters, the repository's length as 4 hex characters and
/// the repository (the Lua script reads these two by position), then little-endian binary:
/// key, language, tokens, lines, nesting, the 64 sketch values, and the optional location;
/// then, when the unit has a family, its 16 hex characters (records written before families
/// end after the location, so a record without them reads as having none; the Lua script
/// finds them by walking the lengths, `family_of` in `apply.lua`).
pub fn encode(record: &Record) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, value: &str) {
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    let mut out = Vec::with_capacity(340 + record.key.len());
    out.extend_from_slice(record.t2_hash.to_hex().as_bytes());
    out.extend_from_slice(format!("{:04x}", record.repo.len()).as_bytes());
    out.extend_from_slice(record.repo.as_bytes());
    text(&mut out, &record.key);
    text(&mut out, &record.language);
    for number in [record.tokens, record.lines, record.nesting] {
        out.extend_from_slice(&number.to_le_bytes());
    }
    for value in record.sketch.0 {
        out.extend_from_slice(&value.to_le_bytes());
    }
    match &record.location {
        None => out.push(0),
        Some(location) => {
            out.push(1);
            text(&mut out, &location.path);
            text(&mut out, &location.name);
            out.extend_from_slice(&location.start_line.to_le_bytes());
            out.extend_from_slice(&location.end_line.to_le_bytes());
        }
    }
    if let Some(family) = record.family {
        out.extend_from_slice(family.to_hex().as_bytes());
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < count {
            return Err(StoreError::Corrupt("a stored unit record is truncated".into()));
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(bytes))
    }
    fn utf8(bytes: &[u8]) -> Result<String, StoreError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Corrupt("a stored unit record holds invalid UTF-8".into()))
    }
    fn text_bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let length = self.u32()? as usize;
        self.take(length)
    }
    fn text(&mut self) -> Result<String, StoreError> {
        let bytes = self.text_bytes()?;
        Self::utf8(bytes)
    }
    /// The T2 and the repository, which lead every record.
    fn head(&mut self) -> Result<(T2Hash, &'a str), StoreError> {
        let corrupt = || StoreError::Corrupt("a stored unit record's head (T2 and repository)".into());
        let t2_text = std::str::from_utf8(self.take(16)?).map_err(|_| corrupt())?;
        let t2_hash = T2Hash::from_hex(t2_text).ok_or_else(|| StoreError::Corrupt(format!("stored T2 {t2_text:?}")))?;
        let repo_length = std::str::from_utf8(self.take(4)?).ok().and_then(|text| usize::from_str_radix(text, 16).ok()).ok_or_else(corrupt)?;
        let repo = std::str::from_utf8(self.take(repo_length)?).map_err(|_| corrupt())?;
        Ok((t2_hash, repo))
    }
    fn sketch(&mut self) -> Result<Sketch, StoreError> {
        let bytes = self.take(SKETCH_LEN * 4)?;
        let mut values = [0u32; SKETCH_LEN];
        for (value, chunk) in values.iter_mut().zip(bytes.chunks_exact(4)) {
            *value = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Ok(Sketch(values))
    }
}

/// What a query needs of a record to decide whether it answers: its T2, repository and sketch.
pub struct Peek<'a> {
    pub t2_hash: T2Hash,
    pub repo: &'a str,
    pub sketch: Sketch,
}

/// Reads a record up to its sketch, borrowing the repository's name: a query scores every
/// candidate but decodes only those that answer.
pub fn peek(bytes: &[u8]) -> Result<Peek<'_>, StoreError> {
    let mut reader = Reader { bytes };
    let (t2_hash, repo) = reader.head()?;
    reader.text_bytes()?;
    reader.text_bytes()?;
    reader.take(12)?;
    Ok(Peek { t2_hash, repo, sketch: reader.sketch()? })
}

pub fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
    let mut reader = Reader { bytes };
    let (t2_hash, repo) = reader.head()?;
    let repo = repo.to_string();
    let key = reader.text()?;
    let language = reader.text()?;
    let (tokens, lines, nesting) = (reader.u32()?, reader.u32()?, reader.u32()?);
    let values = reader.sketch()?.0;
    let location = match reader.take(1)?[0] {
        0 => None,
        _ => Some(Location { path: reader.text()?, name: reader.text()?, start_line: reader.u32()?, end_line: reader.u32()? }),
    };
    let family = match reader.bytes.len() {
        0 => None,
        _ => {
            let text = Reader::utf8(reader.take(16)?)?;
            Some(T2Hash::from_hex(&text).ok_or_else(|| StoreError::Corrupt(format!("stored family {text:?}")))?)
        }
    };
    Ok(Record { t2_hash, repo, key, language, tokens, lines, nesting, sketch: Sketch(values), location, family })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::conformance::{sketch_of, t2_of};

    #[test]
    fn records_round_trip_and_members_carry_their_t2() {
        let mut record = Record {
            t2_hash: t2_of(3),
            repo: "billing".into(),
            key: "unit-3".into(),
            language: "rust".into(),
            tokens: 40,
            lines: 8,
            nesting: 2,
            sketch: sketch_of(3),
            location: Some(Location { path: "src/é.rs".into(), name: "f".into(), start_line: 1, end_line: 9 }),
            family: None,
        };
        assert_eq!(decode(&encode(&record)).unwrap(), record);
        record.family = Some(t2_of(4));
        assert_eq!(decode(&encode(&record)).unwrap(), record);
        record.location = None;
        assert_eq!(decode(&encode(&record)).unwrap(), record);
        assert_eq!(parse_link_field(&link_field(t2_of(3), t2_of(4))).unwrap(), (t2_of(3), t2_of(4)));
        assert!(parse_link_field("00").is_err());
        assert!(decode(&encode(&record)[..40]).is_err());
        let encoded = encode(&record);
        let peeked = peek(&encoded).unwrap();
        assert_eq!((peeked.t2_hash, peeked.repo, peeked.sketch), (record.t2_hash, record.repo.as_str(), record.sketch.clone()));
        assert!(peek(&encoded[..100]).is_err());
        let member = member("team", "billing", "unit-3", t2_of(3));
        assert_eq!(member_t2(&member), t2_of(3));
        assert_ne!(member, super::member("other-team", "billing", "unit-3", t2_of(3)));
        // Hash tags: everything of one partition shares one tag.
        let keys = Keys::new("team");
        let tag = |key: &str| key[key.find('{').unwrap()..=key.find('}').unwrap()].to_string();
        assert_eq!(tag(&keys.records(partition_of(t2_of(3)))), tag(&keys.groups(partition_of(t2_of(3)))));
        let mut group = member.to_vec();
        group.extend_from_slice(&repo_tag("team", "billing"));
        assert_eq!(group_members(&group).unwrap(), vec![member]);
        assert!(group_members(&group[..20]).is_err());
        assert_ne!(repo_tag("team", "billing"), repo_tag("team", "payments"));
        // Band entries: found under their own tag only.
        let slot = band_slot(sketch_of(3).band_keys()[0]);
        let other = band_slot(sketch_of(4).band_keys()[0]);
        assert_eq!(tag(&keys.bands(slot.partition)), tag(&keys.records(slot.partition)));
        let mut field_value = band_entry(slot.tag, &member).to_vec();
        field_value.extend_from_slice(&band_entry(other.tag, &super::member("team", "billing", "unit-4", t2_of(4))));
        assert_eq!(bucket_members(&field_value, slot.tag).unwrap(), vec![member]);
        assert!(bucket_members(&field_value[..30], slot.tag).is_err());
    }
}
