//! Analyses shared through a team cache, so that a teammate's scan of the same bytes skips
//! parsing. Two kinds of entry, both opaque bytes addressed by a 32-byte key:
//!
//! - a **file entry**, addressed by the blake3 of the file's bytes: the per-file analysis
//!   (normalised token kinds, unit structure) with every text replaced by its byte range in
//!   the file. It carries no identifier, literal, comment or path; the reader rebuilds the
//!   token texts and unit names from its own copy of the bytes, which the address proves
//!   equal.
//! - a **snapshot**, addressed by a digest of the settings and of every (path, content) of a
//!   tree: the near-miss and block pairs detection found there, by file position. A fresh
//!   clone of the same tree takes them as the previous scan's pairs, so it detects nothing
//!   again. Paths enter only the digest. Snapshots larger than one entry are split into
//!   content-addressed chunks listed by the root entry.
//!
//! An entry that does not decode, or does not fit the file it claims to describe, is refused
//! with a reason; the scan then parses the file itself.

use std::collections::HashMap;

use crate::analysis::{self, Analysis, FileTokens, NameOrigin, TokenSources, Unit};
use crate::lang::Language;
use crate::model::{CloneKind, ClonePair, FileRecord, Instance};
use crate::verify::Evidence;

/// Bumped whenever what [`crate::analysis`] produces for the same bytes changes, so that
/// entries of an older engine are never taken (their key differs, and they age out).
const ANALYSIS_REVISION: u32 = 2;
const FILE_MAGIC: &[u8; 4] = b"PAF1";
const SNAPSHOT_MAGIC: &[u8; 4] = b"PAS1";
const CHUNK_MAGIC: &[u8; 4] = b"PAC1";
/// Largest decompressed entry a reader accepts: a corrupt size prefix must not allocate.
const MAX_DECODED_BYTES: usize = 256 << 20;
/// Snapshot pairs per chunk: about 0.6 MB compressed, well under the edge's entry limit.
const PAIRS_PER_CHUNK: usize = 20_000;

/// The cache a scan asks before parsing and offers what it parsed to. Implemented outside
/// the engine (over HTTP by the command line and the language server).
pub trait TeamCache: Sync {
    /// The entry for each key (`None` for a miss), in order. Must not block longer than a
    /// short timeout: an unreachable cache answers all misses.
    fn lookup(&self, keys: &[[u8; 32]]) -> Vec<Option<Vec<u8>>>;
    /// Whether [`TeamCache::offer`] stores anything (a read-only cache says no, and the scan
    /// then does not spend time encoding entries).
    fn accepts_uploads(&self) -> bool;
    /// Offers an entry to keep for teammates; fire and forget.
    fn offer(&self, key: [u8; 32], entry: Vec<u8>);
}

/// What the team cache did for one scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamCacheStats {
    /// Files whose analysis was asked for (files the index could not vouch for).
    pub looked_up: u64,
    /// Files analysed from an entry instead of parsed.
    pub used: u64,
    /// Entries refused as corrupt or not fitting their file.
    pub refused: u64,
    /// The tree's snapshot was found: detection reused its pairs.
    pub snapshot_used: bool,
    /// Entries offered to the cache (file entries, snapshot and chunks).
    pub offered: u64,
}

/// The `analysis` key of the cache: the engine version and [`ANALYSIS_REVISION`]. Settings
/// are not in it: per-file analysis does not depend on them (snapshots fold them into their
/// own address).
pub fn analysis_key() -> String {
    format!("periodic-{}.a{ANALYSIS_REVISION}", env!("CARGO_PKG_VERSION"))
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("not an entry of this kind or version")]
    Format,
    #[error("truncated or corrupt")]
    Corrupt,
    #[error("describes other bytes than this file's")]
    Mismatch,
}

// ---------------------------------------------------------------------------------------
// File entries.

/// Encodes a file's analysis, given where its token texts come from.
pub fn encode_file(language: Language, content_hash: &[u8; 32], analysis: &Analysis, sources: &TokenSources) -> Vec<u8> {
    let tokens = &analysis.tokens;
    let mut out = Writer::default();
    out.bytes(content_hash);
    out.varint(u64::from(language.name().len() as u32));
    out.bytes(language.name().as_bytes());
    out.varint(u64::from(analysis.has_syntax_errors));
    out.varint(u64::from(analysis.line_count));
    out.varint(tokens.len() as u64);
    for &sym in &tokens.syms {
        out.bytes(&sym.to_le_bytes());
    }
    for &kind in &sources.kinds {
        out.bytes(&kind.to_le_bytes());
    }
    for &named in &sources.named {
        out.varint(u64::from(named));
    }
    // Ranges as gaps from the previous token's end and lengths: small numbers.
    let mut previous_end = 0u32;
    for &(start, end) in &sources.spans {
        out.varint(u64::from(start.wrapping_sub(previous_end)));
        out.varint(u64::from(end - start));
        previous_end = end;
    }
    out.varint(tokens.row_starts.len() as u64);
    let mut previous_row_start = 0u32;
    for &first in &tokens.row_starts {
        out.varint(u64::from(first - previous_row_start));
        previous_row_start = first;
    }
    out.varint(analysis.units.len() as u64);
    let spec = language.spec();
    for unit in &analysis.units {
        let kind_id = spec.grammar.id_for_node_kind(unit.kind, true);
        out.bytes(&kind_id.to_le_bytes());
        match unit.name_origin {
            NameOrigin::Anonymous => out.varint(0),
            NameOrigin::Text { start, end } => {
                out.varint(1);
                out.varint(u64::from(start));
                out.varint(u64::from(end - start));
            }
            NameOrigin::Callee { start, end } => {
                out.varint(2);
                out.varint(u64::from(start));
                out.varint(u64::from(end - start));
            }
        }
        for value in [unit.start_line, unit.end_line, unit.start_byte, unit.end_byte, unit.token_start, unit.token_end, unit.nesting] {
            out.varint(u64::from(value));
        }
        out.varint(unit.parent.map_or(0, |parent| u64::from(parent) + 1));
    }
    // Binding tokens as gaps from the previous one: positions, never names.
    out.varint(analysis.binding_tokens.len() as u64);
    let mut previous_binding = 0u32;
    for &token in &analysis.binding_tokens {
        out.varint(u64::from(token - previous_binding));
        previous_binding = token;
    }
    seal(FILE_MAGIC, out.0)
}

/// Rebuilds the analysis of `source` (the file whose bytes hash to `content_hash`) from its
/// entry, without parsing: token texts and unit names come from `source` itself.
pub fn decode_file(entry: &[u8], language: Language, content_hash: &[u8; 32], source: &str) -> Result<Analysis, EntryError> {
    let payload = unseal(FILE_MAGIC, entry)?;
    let mut input = Reader::new(&payload);
    if input.bytes(32)? != content_hash {
        return Err(EntryError::Mismatch);
    }
    let name_len = input.count(64)?;
    if input.bytes(name_len)? != language.name().as_bytes() {
        return Err(EntryError::Mismatch);
    }
    let has_syntax_errors = input.varint()? != 0;
    let line_count = input.u32()?;
    if line_count != analysis::count_lines(source) {
        return Err(EntryError::Mismatch);
    }
    // Every token takes at least one byte of source.
    let token_count = input.count(source.len())?;
    let mut syms = Vec::with_capacity(token_count);
    for _ in 0..token_count {
        syms.push(input.u16()?);
    }
    let mut kinds = Vec::with_capacity(token_count);
    for _ in 0..token_count {
        kinds.push(input.u16()?);
    }
    let mut named = Vec::with_capacity(token_count);
    for _ in 0..token_count {
        named.push(input.varint()? != 0);
    }
    let bytes = source.as_bytes();
    let mut texts = Vec::with_capacity(token_count);
    let mut previous_end = 0u32;
    for index in 0..token_count {
        let start = previous_end.checked_add(input.u32()?).ok_or(EntryError::Corrupt)?;
        let end = start.checked_add(input.u32()?).ok_or(EntryError::Corrupt)?;
        let text = bytes.get(start as usize..end as usize).ok_or(EntryError::Mismatch)?;
        texts.push(analysis::token_text(kinds[index], named[index], text));
        previous_end = end;
    }
    let row_count = input.count(line_count as usize + 1)?;
    let mut row_starts = Vec::with_capacity(row_count);
    let mut row_start = 0u32;
    for _ in 0..row_count {
        row_start = row_start.checked_add(input.u32()?).ok_or(EntryError::Corrupt)?;
        if row_start as usize > token_count {
            return Err(EntryError::Corrupt);
        }
        row_starts.push(row_start);
    }
    let unit_count = input.count(token_count + 1)?;
    let spec = language.spec();
    let mut units: Vec<Unit> = Vec::with_capacity(unit_count);
    for index in 0..unit_count {
        let kind = spec.grammar.node_kind_for_id(input.u16()?).ok_or(EntryError::Mismatch)?;
        let name_origin = match input.varint()? {
            0 => NameOrigin::Anonymous,
            tag @ (1 | 2) => {
                let start = input.u32()?;
                let end = start.checked_add(input.u32()?).ok_or(EntryError::Corrupt)?;
                if tag == 1 { NameOrigin::Text { start, end } } else { NameOrigin::Callee { start, end } }
            }
            _ => return Err(EntryError::Corrupt),
        };
        let name = name_origin.name_in(source).ok_or(EntryError::Mismatch)?;
        let [start_line, end_line, start_byte, end_byte, token_start, token_end, nesting] = [(); 7].map(|()| input.u32());
        let (start_line, end_line, start_byte, end_byte) = (start_line?, end_line?, start_byte?, end_byte?);
        let (token_start, token_end, nesting) = (token_start?, token_end?, nesting?);
        let parent = match input.varint()? {
            0 => None,
            plus_one => Some(u32::try_from(plus_one - 1).map_err(|_| EntryError::Corrupt)?),
        };
        let fits = start_line >= 1
            && start_line <= end_line
            && end_line <= line_count.max(1)
            && start_byte <= end_byte
            && end_byte as usize <= source.len()
            && token_start <= token_end
            && token_end as usize <= token_count
            && parent.is_none_or(|parent| (parent as usize) < index);
        if !fits {
            return Err(EntryError::Mismatch);
        }
        units.push(Unit { name, name_origin, kind, start_line, end_line, start_byte, end_byte, token_start, token_end, nesting, parent });
    }
    let binding_count = input.varint()? as usize;
    if binding_count > token_count {
        return Err(EntryError::Mismatch);
    }
    let mut binding_tokens = Vec::with_capacity(binding_count);
    let mut previous_binding = 0u32;
    for _ in 0..binding_count {
        let token = previous_binding.checked_add(input.u32()?).ok_or(EntryError::Corrupt)?;
        if token as usize >= token_count || binding_tokens.last().is_some_and(|&last| token <= last) {
            return Err(EntryError::Mismatch);
        }
        binding_tokens.push(token);
        previous_binding = token;
    }
    if !input.is_empty() {
        return Err(EntryError::Corrupt);
    }
    Ok(Analysis { tokens: FileTokens { syms, texts, row_starts }, units, has_syntax_errors, line_count, binding_tokens })
}

// ---------------------------------------------------------------------------------------
// Snapshots.

/// The address of a tree's snapshot: a digest of the settings key and of every file's path
/// and content hash (any order). Equal trees scanned with equal settings meet here.
pub fn snapshot_key<'a>(settings_key: &str, files: impl Iterator<Item = (&'a str, &'a [u8; 32])>) -> [u8; 32] {
    let mut entries: Vec<([u8; 32], [u8; 32])> = files.map(|(path, content)| (path_digest(path), *content)).collect();
    entries.sort_unstable();
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"periodic snapshot\0");
    hasher.update(settings_key.as_bytes());
    hasher.update(&[0]);
    for (path, content) in &entries {
        hasher.update(path);
        hasher.update(content);
    }
    *hasher.finalize().as_bytes()
}

fn path_digest(path: &str) -> [u8; 32] {
    *blake3::hash(path.as_bytes()).as_bytes()
}

/// The entries of a snapshot of `pairs` (those the index stores: near-miss and block pairs)
/// over `files`: the root under `key`, then its chunks under their own digests.
pub fn encode_snapshot(key: [u8; 32], files: &[FileRecord], pairs: &[ClonePair]) -> Vec<([u8; 32], Vec<u8>)> {
    // Files are referred to by their rank in path-digest order, which every reader of the
    // same tree computes alike.
    let rank = path_ranks(files.iter().map(|file| file.path.as_str()));
    let stored: Vec<&ClonePair> = pairs.iter().filter(|pair| pair.kind == CloneKind::T3 || pair.a.unit.is_none()).collect();
    let mut entries = Vec::new();
    let mut root = Writer::default();
    root.bytes(&key);
    root.varint(files.len() as u64);
    root.varint(stored.len() as u64);
    for chunk in stored.chunks(PAIRS_PER_CHUNK) {
        let mut out = Writer::default();
        out.varint(chunk.len() as u64);
        for pair in chunk {
            write_pair(&mut out, pair, &rank);
        }
        let sealed = seal(CHUNK_MAGIC, out.0);
        let digest = *blake3::hash(&sealed).as_bytes();
        root.bytes(&digest);
        entries.push((digest, sealed));
    }
    entries.insert(0, (key, seal(SNAPSHOT_MAGIC, root.0)));
    entries
}

/// The chunk digests a snapshot root lists, checked against the tree it is to describe.
pub fn snapshot_chunks(root: &[u8], key: &[u8; 32], files: &[FileRecord]) -> Result<(u64, Vec<[u8; 32]>), EntryError> {
    let payload = unseal(SNAPSHOT_MAGIC, root)?;
    let mut input = Reader::new(&payload);
    if input.bytes(32)? != key {
        return Err(EntryError::Mismatch);
    }
    if input.count(usize::MAX)? != files.len() {
        return Err(EntryError::Mismatch);
    }
    let pairs = input.varint()?;
    let chunk_count = pairs.div_ceil(PAIRS_PER_CHUNK as u64) as usize;
    let mut chunks = Vec::with_capacity(chunk_count.min(1 << 16));
    for _ in 0..chunk_count {
        let digest: [u8; 32] = input.bytes(32)?.try_into().map_err(|_| EntryError::Corrupt)?;
        chunks.push(digest);
    }
    if !input.is_empty() {
        return Err(EntryError::Corrupt);
    }
    Ok((pairs, chunks))
}

/// The pairs of one snapshot chunk, with `file` set to positions in `files`.
pub fn decode_snapshot_chunk(chunk: &[u8], digest: &[u8; 32], files: &[FileRecord]) -> Result<Vec<ClonePair>, EntryError> {
    if blake3::hash(chunk).as_bytes() != digest {
        return Err(EntryError::Corrupt);
    }
    let payload = unseal(CHUNK_MAGIC, chunk)?;
    let mut input = Reader::new(&payload);
    let count = input.count(PAIRS_PER_CHUNK)?;
    let rank = path_ranks(files.iter().map(|file| file.path.as_str()));
    let mut position_of_rank = vec![0u32; files.len()];
    for (position, &rank) in rank.iter().enumerate() {
        position_of_rank[rank as usize] = position as u32;
    }
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let mut pair = read_pair(&mut input)?;
        for instance in [&mut pair.a, &mut pair.b] {
            let position = *position_of_rank.get(instance.file as usize).ok_or(EntryError::Mismatch)?;
            let file = &files[position as usize];
            let unit_fits = instance.unit.is_none_or(|unit| (unit as usize) < file.units.len());
            if !unit_fits || instance.token_end > file.tokens || instance.token_start > instance.token_end {
                return Err(EntryError::Mismatch);
            }
            instance.file = position;
        }
        pairs.push(pair);
    }
    if !input.is_empty() {
        return Err(EntryError::Corrupt);
    }
    Ok(pairs)
}

/// For each path in order, its rank among all paths sorted by digest.
fn path_ranks<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<u32> {
    let digests: Vec<[u8; 32]> = paths.map(path_digest).collect();
    let mut order: Vec<u32> = (0..digests.len() as u32).collect();
    order.sort_unstable_by_key(|&index| digests[index as usize]);
    let mut rank = vec![0u32; digests.len()];
    for (position, &index) in order.iter().enumerate() {
        rank[index as usize] = position as u32;
    }
    rank
}

fn write_pair(out: &mut Writer, pair: &ClonePair, rank: &[u32]) {
    for instance in [&pair.a, &pair.b] {
        out.varint(u64::from(rank[instance.file as usize]));
        out.varint(u64::from(instance.start_line));
        out.varint(u64::from(instance.end_line));
        out.varint(instance.unit.map_or(0, |unit| u64::from(unit) + 1));
        out.varint(u64::from(instance.token_start));
        out.varint(u64::from(instance.token_end));
    }
    out.varint(match pair.kind {
        CloneKind::T1 => 1,
        CloneKind::T2 => 2,
        CloneKind::T3 => 3,
    });
    out.bytes(&pair.similarity.to_le_bytes());
    out.bytes(&pair.content.to_le_bytes());
    match &pair.evidence {
        None => out.varint(0),
        Some(evidence) => {
            out.varint(1);
            for value in evidence.signals().into_iter().chain([evidence.score]) {
                out.bytes(&value.to_le_bytes());
            }
        }
    }
}

fn read_pair(input: &mut Reader) -> Result<ClonePair, EntryError> {
    let mut instance = || -> Result<Instance, EntryError> {
        let file = input.u32()?;
        let (start_line, end_line) = (input.u32()?, input.u32()?);
        let unit = match input.u32()? {
            0 => None,
            plus_one => Some(plus_one - 1),
        };
        let (token_start, token_end) = (input.u32()?, input.u32()?);
        Ok(Instance { file, start_line, end_line, unit, token_start, token_end })
    };
    let (a, b) = (instance()?, instance()?);
    let kind = match input.varint()? {
        1 => CloneKind::T1,
        2 => CloneKind::T2,
        3 => CloneKind::T3,
        _ => return Err(EntryError::Corrupt),
    };
    let similarity = f64::from_le_bytes(input.bytes(8)?.try_into().map_err(|_| EntryError::Corrupt)?);
    let content = u64::from_le_bytes(input.bytes(8)?.try_into().map_err(|_| EntryError::Corrupt)?);
    let evidence = match input.varint()? {
        0 => None,
        1 => {
            let mut values = [0f32; crate::verify::SIGNALS + 1];
            for value in &mut values {
                *value = f32::from_le_bytes(input.bytes(4)?.try_into().map_err(|_| EntryError::Corrupt)?);
            }
            let [tokens, aligned, runs, names, literals, swaps, size, shape, free_sub, score] = values;
            Some(Evidence { tokens, aligned, runs, names, literals, swaps, size, shape, free_sub, score })
        }
        _ => return Err(EntryError::Corrupt),
    };
    Ok(ClonePair { a, b, kind, similarity, content, evidence })
}

/// Looks up a snapshot of `files` and returns its pairs, or why it could not be used
/// (`Ok(None)`: no snapshot).
pub fn fetch_snapshot(cache: &dyn TeamCache, key: [u8; 32], files: &[FileRecord]) -> Result<Option<Vec<ClonePair>>, EntryError> {
    let Some(Some(root)) = cache.lookup(&[key]).pop() else { return Ok(None) };
    let (count, chunks) = snapshot_chunks(&root, &key, files)?;
    let found = cache.lookup(&chunks);
    let mut pairs = Vec::with_capacity(count.min(1 << 24) as usize);
    for (digest, chunk) in chunks.iter().zip(found) {
        let chunk = chunk.ok_or(EntryError::Corrupt)?;
        pairs.extend(decode_snapshot_chunk(&chunk, digest, files)?);
    }
    if pairs.len() as u64 != count {
        return Err(EntryError::Corrupt);
    }
    Ok(Some(pairs))
}

/// Content hash to entry, for the files of a scan.
pub type FileEntries = HashMap<[u8; 32], Vec<u8>>;

// ---------------------------------------------------------------------------------------
// Framing: magic, then the payload compressed with its size in front.

fn seal(magic: &[u8; 4], payload: Vec<u8>) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend(lz4_flex::compress_prepend_size(&payload));
    out
}

fn unseal(magic: &[u8; 4], entry: &[u8]) -> Result<Vec<u8>, EntryError> {
    let compressed = entry.strip_prefix(magic.as_slice()).ok_or(EntryError::Format)?;
    let size = compressed.first_chunk::<4>().map(|size| u32::from_le_bytes(*size) as usize).ok_or(EntryError::Corrupt)?;
    if size > MAX_DECODED_BYTES {
        return Err(EntryError::Corrupt);
    }
    lz4_flex::decompress_size_prepended(compressed).map_err(|_| EntryError::Corrupt)
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// LEB128.
    fn varint(&mut self, mut value: u64) {
        loop {
            let low = (value & 0x7F) as u8;
            value >>= 7;
            if value == 0 {
                self.0.push(low);
                return;
            }
            self.0.push(low | 0x80);
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], EntryError> {
        if self.rest.len() < len {
            return Err(EntryError::Corrupt);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, EntryError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, tail) = self.rest.split_first().ok_or(EntryError::Corrupt)?;
            self.rest = tail;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(EntryError::Corrupt)
    }

    fn u32(&mut self) -> Result<u32, EntryError> {
        u32::try_from(self.varint()?).map_err(|_| EntryError::Corrupt)
    }

    fn u16(&mut self) -> Result<u16, EntryError> {
        let bytes = self.bytes(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    /// A count that cannot exceed `most` in a valid entry (so a corrupt one allocates
    /// nothing large).
    fn count(&mut self, most: usize) -> Result<usize, EntryError> {
        let value = usize::try_from(self.varint()?).map_err(|_| EntryError::Corrupt)?;
        if value > most { Err(EntryError::Corrupt) } else { Ok(value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Source in several languages with what must never leave the machine: names, string
    /// and number literals, comments; plus suppression markers, non-ASCII text and units
    /// named every way (own name, assigned, callback, anonymous).
    const SAMPLES: [(Language, &str); 5] = [
        (
            Language::Python,
            "# SECRET_COMMENT about payroll\ndef compute_payroll_secret(employee_ledger, bonus_rate):\n    total = 0\n    for entry in employee_ledger:\n        total += entry.amount * bonus_rate + 31337\n    handler = lambda value: value + 1\n    return 'TOP-SECRET-LITERAL' + str(total) + 'é€'\n\n# periodic-ignore\ndef ignored_function(a):\n    return a\n",
        ),
        (
            Language::JavaScript,
            "// SECRET_COMMENT\nconst reconcileSecretAccounts = function (ledgerRows) {\n  return ledgerRows.map(function (row) { return row.balance * 42; });\n};\ndescribe('SECRET_SUITE', () => { it('works', () => { expect(1).toBe(1); }); });\n",
        ),
        (Language::Rust, "/// SECRET_COMMENT\nfn transfer_secret_funds(from_account: &mut Account, amount: u64) -> Result<(), String> {\n    if amount > 99999 { return Err(\"SECRET_ERROR\".to_string()); }\n    from_account.balance -= amount;\n    Ok(())\n}\n"),
        (Language::C, "/* SECRET_COMMENT */\nstatic int secret_checksum(const char *secret_buffer, int length) {\n    int sum = 0;\n    for (int i = 0; i < length; i++) { sum += secret_buffer[i] ^ 0x5A; }\n    return sum; // CPD-OFF\n}\n"),
        (Language::Go, "package vault\n\n// SECRET_COMMENT\nfunc OpenSecretVault(key string) (*Vault, error) {\n\thandler := func(v int) int { return v * 7 }\n\treturn &Vault{Key: key + \"SECRET_SUFFIX\", N: handler(3)}, nil\n}\n"),
    ];

    const SECRETS: [&str; 16] = [
        "SECRET",
        "compute_payroll",
        "employee_ledger",
        "bonus_rate",
        "31337",
        "payroll",
        "reconcile",
        "ledgerRows",
        "balance",
        "transfer_secret",
        "from_account",
        "99999",
        "secret_buffer",
        "checksum",
        "OpenSecretVault",
        "vault",
    ];

    fn round_trip(language: Language, source: &str) -> (Analysis, Analysis, Vec<u8>) {
        let hash = *blake3::hash(source.as_bytes()).as_bytes();
        let (analysis, sources) = analysis::analyze_with_sources(language, source);
        let entry = encode_file(language, &hash, &analysis, &sources.expect("parsed"));
        let decoded = decode_file(&entry, language, &hash, source).expect("decodes against its own file");
        (analysis, decoded, entry)
    }

    #[test]
    fn a_file_entry_gives_back_the_analysis_parsing_gives() {
        for (language, source) in SAMPLES {
            let (parsed, decoded, _) = round_trip(language, source);
            assert!(!parsed.units.is_empty(), "{language:?} sample has units");
            assert_eq!(decoded.tokens.syms, parsed.tokens.syms, "{language:?}");
            assert_eq!(decoded.tokens.texts, parsed.tokens.texts, "{language:?}");
            assert_eq!(decoded.tokens.row_starts, parsed.tokens.row_starts, "{language:?}");
            assert_eq!(decoded.units, parsed.units, "{language:?}");
            assert_eq!((decoded.has_syntax_errors, decoded.line_count), (parsed.has_syntax_errors, parsed.line_count));
        }
    }

    #[test]
    fn a_file_entry_carries_no_name_literal_comment_or_path() {
        for (language, source) in SAMPLES {
            let (_, _, entry) = round_trip(language, source);
            let payload = unseal(FILE_MAGIC, &entry).expect("unseals");
            for bytes in [&entry[..], &payload[..]] {
                let text = String::from_utf8_lossy(bytes).to_lowercase();
                for secret in SECRETS {
                    assert!(!text.contains(&secret.to_lowercase()), "{language:?} entry holds {secret:?}");
                }
            }
        }
    }

    #[test]
    fn an_entry_does_not_fit_other_bytes() {
        let (language, source) = SAMPLES[0];
        let (_, _, entry) = round_trip(language, source);
        let hash = *blake3::hash(source.as_bytes()).as_bytes();
        let other_hash = *blake3::hash(b"other").as_bytes();
        assert_eq!(decode_file(&entry, language, &other_hash, source).err(), Some(EntryError::Mismatch));
        assert_eq!(decode_file(&entry, Language::Ruby, &hash, source).err(), Some(EntryError::Mismatch));
        // Same claimed hash, shorter text: the token ranges no longer fit.
        assert!(decode_file(&entry, language, &hash, &source[..source.len() / 2]).is_err());
    }

    #[test]
    fn corrupt_entries_are_refused_without_panicking() {
        let (language, source) = SAMPLES[2];
        let (_, _, entry) = round_trip(language, source);
        let hash = *blake3::hash(source.as_bytes()).as_bytes();
        assert_eq!(decode_file(b"nonsense", language, &hash, source).err(), Some(EntryError::Format));
        for cut in 0..entry.len() {
            assert!(decode_file(&entry[..cut], language, &hash, source).is_err(), "cut at {cut}");
        }
        // Damage inside the payload, at every position of the decompressed form.
        let payload = unseal(FILE_MAGIC, &entry).expect("unseals");
        for position in 0..payload.len() {
            let mut damaged = payload.clone();
            damaged[position] ^= 0xA5;
            // Some damage still decodes (a changed token kind is a valid entry of other
            // code); none may panic, and none may claim the wrong file.
            let _ = decode_file(&seal(FILE_MAGIC, damaged), language, &hash, source);
        }
        let huge_size = [FILE_MAGIC.as_slice(), &u32::MAX.to_le_bytes(), &[0u8; 16]].concat();
        assert_eq!(decode_file(&huge_size, language, &hash, source).err(), Some(EntryError::Corrupt));
    }

    #[test]
    fn snapshots_depend_on_every_path_and_content_and_on_settings() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let key = snapshot_key("s", [("x.py", &a), ("y.py", &b)].into_iter());
        assert_eq!(key, snapshot_key("s", [("y.py", &b), ("x.py", &a)].into_iter()), "order does not matter");
        assert_ne!(key, snapshot_key("t", [("x.py", &a), ("y.py", &b)].into_iter()));
        assert_ne!(key, snapshot_key("s", [("x.py", &b), ("y.py", &a)].into_iter()));
        assert_ne!(key, snapshot_key("s", [("x.py", &a), ("z.py", &b)].into_iter()));
        assert_ne!(key, snapshot_key("s", [("x.py", &a)].into_iter()));
    }
}
