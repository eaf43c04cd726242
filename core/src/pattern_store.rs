//! The patterns of the last scan, kept in the index beside its pairs: a long-running process
//! starting from the index shows them at once instead of clustering and naming every pair
//! again (on the Linux tree, most of the time before its first answer). They are kept with
//! a digest of what they were built from (every file's path and content, every pair, the
//! names given) and used only when what is loaded has the same digest. A pattern's pairs
//! are kept by the instances they join, not by their place in a list: a scan and a load
//! list their pairs in different orders.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::fingerprint::mix64;
use crate::model::{ClonePair, CloneKind, FileRecord, Instance};
use crate::pattern::{Pattern, PatternLabel};

/// Patterns as the index keeps them, with the digest of what they were built from.
pub struct StoredPatterns {
    pub digest: [u8; 32],
    pub bytes: Vec<u8>,
}

impl StoredPatterns {
    /// The kept patterns, when they were built from these `files`, `pairs` (the complete
    /// list, exact pairs included) and `labels`; `None` when anything differs.
    pub fn restore(&self, files: &[FileRecord], pairs: &[ClonePair], labels: &BTreeMap<String, PatternLabel>) -> Option<Vec<Pattern>> {
        // Both take a few tenths of a second on the Linux tree, before the first answer.
        let (digest, patterns) = rayon::join(|| digest(files, pairs, labels), || decode(&self.bytes, files, pairs));
        if digest != self.digest {
            return None;
        }
        patterns
    }
}

/// What a pattern build depends on: the files (path and content hash; a unit's fields follow
/// from them under the index's settings), the pairs and the names given. Independent of the
/// order of files and pairs. Each file and pair is reduced to 128 bits by a mix (blake3 per
/// pair took a third of a second on the Linux tree, before the first answer), and the
/// sorted keys are hashed with blake3.
pub fn digest(files: &[FileRecord], pairs: &[ClonePair], labels: &BTreeMap<String, PatternLabel>) -> [u8; 32] {
    let path_keys: Vec<u64> = files.iter().map(|file| fold(0x5041_5448, file.path.as_bytes())).collect();
    let mut file_keys: Vec<(u64, u64)> =
        files.iter().zip(&path_keys).map(|(file, &path)| (path, fold(path, &file.content_hash))).collect();
    file_keys.sort_unstable();
    let mut pair_keys: Vec<(u64, u64)> = pairs
        .par_iter()
        .map(|pair| {
            let mut values = [0u64; 27];
            for (side, instance) in [&pair.a, &pair.b].into_iter().enumerate() {
                values[side * 7] = path_keys[instance.file as usize];
                for (slot, value) in values[side * 7 + 1..side * 7 + 7].iter_mut().zip(instance_values(instance)) {
                    *slot = u64::from(value);
                }
            }
            values[14] = u64::from(kind_byte(pair.kind));
            values[15] = pair.similarity.to_bits();
            values[16] = pair.content;
            if let Some(evidence) = &pair.evidence {
                for (slot, value) in values[17..].iter_mut().zip(evidence.signals().iter().chain([&evidence.score])) {
                    *slot = u64::from(value.to_bits()) | 1 << 32;
                }
            }
            values.iter().fold((0x7061_6972_u64, 0x6b65_7973_u64), |(x, y), &value| (mix64(x ^ value), mix64(y.wrapping_add(value).rotate_left(23))))
        })
        .collect();
    pair_keys.par_sort_unstable();
    let mut hasher = blake3::Hasher::new();
    for keys in [&file_keys, &pair_keys] {
        hasher.update(&(keys.len() as u64).to_le_bytes());
        for (x, y) in keys.iter() {
            hasher.update(&x.to_le_bytes());
            hasher.update(&y.to_le_bytes());
        }
    }
    for (id, label) in labels {
        for text in [Some(id.as_str()), label.name.as_deref(), label.note.as_deref()] {
            match text {
                Some(text) => hasher.update(&[1]).update(&(text.len() as u64).to_le_bytes()).update(text.as_bytes()),
                None => hasher.update(&[0]),
            };
        }
    }
    *hasher.finalize().as_bytes()
}

/// Bytes folded into 64 bits from `seed`, eight at a time.
fn fold(seed: u64, bytes: &[u8]) -> u64 {
    let mut state = mix64(seed ^ bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        state = mix64(state ^ u64::from_le_bytes(word));
    }
    state
}

/// The bytes kept for `patterns`, built from `pairs` between `files`.
pub fn encode(files: &[FileRecord], pairs: &[ClonePair], patterns: &[Pattern]) -> Vec<u8> {
    let mut paths: HashMap<u32, u32> = HashMap::new();
    let mut path_list: Vec<&str> = Vec::new();
    let mut path_of = |file: u32| -> u32 {
        *paths.entry(file).or_insert_with(|| {
            path_list.push(&files[file as usize].path);
            (path_list.len() - 1) as u32
        })
    };
    let mut body = Writer::default();
    body.u32(patterns.len() as u32);
    for pattern in patterns {
        for text in [&pattern.id, &pattern.legacy_id, &pattern.auto_name] {
            body.text(text);
        }
        body.optional_text(pattern.user_name.as_deref());
        body.optional_text(pattern.note.as_deref());
        body.0.push(kind_byte(pattern.kind));
        body.u64(pattern.similarity.to_bits());
        body.u64(pattern.duplicated_lines);
        body.u32(pattern.languages.len() as u32);
        pattern.languages.iter().for_each(|language| body.text(language));
        body.u32(pattern.members.len() as u32);
        for member in &pattern.members {
            body.instance(path_of(member.file), member);
        }
        body.u32(pattern.pairs.len() as u32);
        for &index in &pattern.pairs {
            let pair = &pairs[index];
            body.instance(path_of(pair.a.file), &pair.a);
            body.instance(path_of(pair.b.file), &pair.b);
            body.0.push(kind_byte(pair.kind));
        }
    }
    let mut out = Writer::default();
    out.u32(path_list.len() as u32);
    path_list.iter().for_each(|path| out.text(path));
    out.0.extend_from_slice(&body.0);
    out.0
}

/// The patterns kept in `bytes`, their members and pairs mapped to `files` and `pairs`
/// (the complete pair list they were built from: [`digest`] says so). `None` when any
/// member's file or any pair is not there, or the bytes are damaged: the caller builds them.
pub fn decode(bytes: &[u8], files: &[FileRecord], pairs: &[ClonePair]) -> Option<Vec<Pattern>> {
    let slots: FxHashMap<&str, u32> = files.iter().enumerate().map(|(slot, file)| (file.path.as_str(), slot as u32)).collect();
    let index_of: FxHashMap<(Instance, Instance, CloneKind), usize> = pairs.iter().enumerate().map(|(index, pair)| ((pair.a, pair.b, pair.kind), index)).collect();
    let mut reader = Reader(bytes);
    let path_count = reader.u32()?;
    let mut path_slots = Vec::with_capacity(path_count as usize);
    for _ in 0..path_count {
        path_slots.push(*slots.get(reader.text()?)?);
    }
    let count = reader.u32()? as usize;
    let mut patterns = Vec::with_capacity(count.min(bytes.len()));
    for _ in 0..count {
        let (id, legacy_id, auto_name) = (reader.text()?.to_string(), reader.text()?.to_string(), reader.text()?.to_string());
        let (user_name, note) = (reader.optional_text()?, reader.optional_text()?);
        let kind = kind_of(reader.byte()?)?;
        let similarity = f64::from_bits(reader.u64()?);
        let duplicated_lines = reader.u64()?;
        let language_count = reader.u32()? as usize;
        let languages = (0..language_count).map(|_| reader.text().map(str::to_string)).collect::<Option<Vec<String>>>()?;
        let member_count = reader.u32()? as usize;
        let members = (0..member_count).map(|_| reader.instance(&path_slots)).collect::<Option<Vec<Instance>>>()?;
        let pair_count = reader.u32()? as usize;
        let mut pair_indices = Vec::with_capacity(pair_count.min(pairs.len()));
        for _ in 0..pair_count {
            let (a, b) = (reader.instance(&path_slots)?, reader.instance(&path_slots)?);
            let pair_kind = kind_of(reader.byte()?)?;
            pair_indices.push(*index_of.get(&(a, b, pair_kind))?);
        }
        // A build lists a pattern's pairs in the order of the pair list it was given.
        pair_indices.sort_unstable();
        patterns.push(Pattern { id, legacy_id, auto_name, user_name, note, kind, similarity, members, languages, duplicated_lines, pairs: pair_indices });
    }
    reader.0.is_empty().then_some(patterns)
}

/// An instance's fields but its file, the unit as a value and a flag.
fn instance_values(instance: &Instance) -> [u32; 6] {
    [instance.start_line, instance.end_line, instance.unit.unwrap_or(u32::MAX), instance.token_start, instance.token_end, u32::from(instance.unit.is_some())]
}

fn instance_bytes(instance: &Instance) -> [u8; 24] {
    let mut bytes = [0u8; 24];
    for (chunk, value) in bytes.chunks_exact_mut(4).zip(instance_values(instance)) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    bytes
}

fn kind_byte(kind: CloneKind) -> u8 {
    match kind {
        CloneKind::T1 => 1,
        CloneKind::T2 => 2,
        CloneKind::T3 => 3,
    }
}

fn kind_of(byte: u8) -> Option<CloneKind> {
    match byte {
        1 => Some(CloneKind::T1),
        2 => Some(CloneKind::T2),
        3 => Some(CloneKind::T3),
        _ => None,
    }
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn text(&mut self, text: &str) {
        self.u32(text.len() as u32);
        self.0.extend_from_slice(text.as_bytes());
    }

    fn optional_text(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.0.push(1);
                self.text(text);
            }
            None => self.0.push(0),
        }
    }

    fn instance(&mut self, path: u32, instance: &Instance) {
        self.u32(path);
        self.0.extend_from_slice(&instance_bytes(instance));
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        if self.0.len() < length {
            return None;
        }
        let (taken, rest) = self.0.split_at(length);
        self.0 = rest;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let bytes = self.take(8)?;
        Some(u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]))
    }

    fn text(&mut self) -> Option<&'a str> {
        let length = self.u32()? as usize;
        std::str::from_utf8(self.take(length)?).ok()
    }

    fn optional_text(&mut self) -> Option<Option<String>> {
        match self.byte()? {
            0 => Some(None),
            1 => Some(Some(self.text()?.to_string())),
            _ => None,
        }
    }

    fn instance(&mut self, path_slots: &[u32]) -> Option<Instance> {
        let file = *path_slots.get(self.u32()? as usize)?;
        let values: Vec<u32> = (0..6).map(|_| self.u32()).collect::<Option<Vec<u32>>>()?;
        let unit = match values[5] {
            0 => None,
            1 => Some(values[2]),
            _ => return None,
        };
        Some(Instance { file, start_line: values[0], end_line: values[1], unit, token_start: values[3], token_end: values[4] })
    }
}
