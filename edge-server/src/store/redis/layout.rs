//! Where the Redis Cluster backend keeps what, and how a stored unit is encoded. Every key of a
//! tenant starts with `pe:t:<tenant-hash>:` (the per-tenant prefix: a tenant's data can be
//! listed or dropped by prefix, and tenant names never reach key names). The part in braces is
//! the hash tag, so it alone decides the slot:
//!
//! - `{<t>.p<N>}` — one of [`PARTITIONS`] partitions of the tenant, chosen by the unit's
//!   structural hash (T2). It holds the unit records (`recs`), each T2 group's member set
//!   (`g:<t2>`, also the exact-match lane of a query), the group counters, the pattern ranking
//!   and the pattern names. A whole T2 group therefore lives in one slot, and a Lua script
//!   updates records and group counts atomically.
//! - `{<t>.b<band>.<value>}` — one set per LSH band value: the band buckets. Each bucket is its
//!   own slot; a sketch lookup reads 16 of them plus one group set.
//! - `{<t>.r.<repo>}` — per repository: key → member locator, applied batch ids, write lock.
//! - `{<t>}` — the tenant's set of repositories.
//!
//! A member (16 bytes: T2 big-endian, then 8 bytes of blake3(tenant, repo, key)) names one
//! stored unit; its T2 gives its partition, so a member found in a band bucket is fetched
//! from its partition's `recs` without any further lookup.

use periodic_wire::{Location, SKETCH_LEN, Sketch, T2Hash};

use crate::store::StoreError;

/// Partitions per tenant. Fixed: changing it would move every record.
pub const PARTITIONS: u64 = 64;

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
        format!("pe:t:{0}:{{{0}.p{partition}}}:{name}", self.tenant)
    }

    pub fn records(&self, partition: u64) -> String {
        self.partition_key(partition, "recs")
    }
    /// Prefix of the group member sets of a partition; the T2 hex follows.
    pub fn group_prefix(&self, partition: u64) -> String {
        self.partition_key(partition, "g:")
    }
    pub fn group(&self, t2: T2Hash) -> String {
        format!("{}{}", self.group_prefix(partition_of(t2)), t2.to_hex())
    }
    pub fn group_repo_units(&self, partition: u64) -> String {
        self.partition_key(partition, "gr")
    }
    pub fn group_repos(&self, partition: u64) -> String {
        self.partition_key(partition, "grn")
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
    pub fn band(&self, band: usize, value: u64) -> String {
        format!("pe:t:{0}:{{{0}.b{band}.{value:016x}}}", self.tenant)
    }
    /// Repository names are restricted to `[A-Za-z0-9._-]` by the API, so they are safe in a tag.
    fn repo_key(&self, repo: &str, name: &str) -> String {
        format!("pe:t:{0}:{{{0}.r.{repo}}}:{name}", self.tenant)
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
        format!("pe:t:{0}:{{{0}}}:repos", self.tenant)
    }
}

/// Units stored across all tenants: a gauge for `/metrics`.
pub const UNITS_GAUGE_KEY: &str = "pe:units";

pub fn partition_of(t2: T2Hash) -> u64 {
    t2.0 % PARTITIONS
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
}

/// Record layout: T2 as 16 hex characters, the repository's length as 4 hex characters and
/// the repository (the Lua script reads these two by position), then little-endian binary:
/// key, language, tokens, lines, nesting, the 64 sketch values, and the optional location.
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
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Result<&[u8], StoreError> {
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
    fn text(&mut self) -> Result<String, StoreError> {
        let length = self.u32()? as usize;
        Self::utf8(self.take(length)?)
    }
}

pub fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
    let mut reader = Reader { bytes };
    let t2_text = Reader::utf8(reader.take(16)?)?;
    let t2_hash = T2Hash::from_hex(&t2_text).ok_or_else(|| StoreError::Corrupt(format!("stored T2 {t2_text:?}")))?;
    let repo_length = usize::from_str_radix(&Reader::utf8(reader.take(4)?)?, 16).map_err(|_| StoreError::Corrupt("stored repository length".into()))?;
    let repo = Reader::utf8(reader.take(repo_length)?)?;
    let key = reader.text()?;
    let language = reader.text()?;
    let (tokens, lines, nesting) = (reader.u32()?, reader.u32()?, reader.u32()?);
    let mut values = [0u32; SKETCH_LEN];
    for value in values.iter_mut() {
        *value = reader.u32()?;
    }
    let location = match reader.take(1)?[0] {
        0 => None,
        _ => Some(Location { path: reader.text()?, name: reader.text()?, start_line: reader.u32()?, end_line: reader.u32()? }),
    };
    Ok(Record { t2_hash, repo, key, language, tokens, lines, nesting, sketch: Sketch(values), location })
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
        };
        assert_eq!(decode(&encode(&record)).unwrap(), record);
        record.location = None;
        assert_eq!(decode(&encode(&record)).unwrap(), record);
        assert!(decode(&encode(&record)[..40]).is_err());
        let member = member("team", "billing", "unit-3", t2_of(3));
        assert_eq!(member_t2(&member), t2_of(3));
        assert_ne!(member, super::member("other-team", "billing", "unit-3", t2_of(3)));
        // Hash tags: everything of one partition shares one tag.
        let keys = Keys::new("team");
        let tag = |key: &str| key[key.find('{').unwrap()..=key.find('}').unwrap()].to_string();
        assert_eq!(tag(&keys.records(partition_of(t2_of(3)))), tag(&keys.group(t2_of(3))));
        assert_ne!(tag(&keys.band(0, 1)), tag(&keys.band(1, 1)));
    }
}
