//! Token streams of the files a scan parses, held until detection ends: in memory up to a
//! budget, past it written to an unnamed temporary file and read back on demand. A scan's
//! memory then stops growing with the tree's token count (on the Linux tree the streams
//! were 0.8 GB of a 2.4 GB peak), while a tree the size of a large monorepo's service stays
//! entirely in memory and never touches the file. Reading a spilled stream back is a single
//! positioned read of its bytes, from the page cache in practice; detection goes through
//! the scan's token cache (`scan::TokenCache`), so a stream read once serves its file's
//! next candidates too.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::analysis::FileTokens;

/// Tokens a scan holds in memory before it spills: about 100 MB of streams. Every tree
/// up to a few million lines stays in memory.
pub(crate) const IN_MEMORY_TOKENS: u64 = 16_000_000;

/// Source bytes past which a scan holds no stream in memory: such a tree (the Linux tree,
/// 1.1 GB of C) spills most of its streams whatever the budget, and the few that stayed
/// in memory only added their 100 MB to the peak of detection. Verification and block
/// extension read ranges and windows of spilled streams either way.
const SPILL_ALL_PAST_BYTES: u64 = 512 << 20;

/// The tokens a scan of files totalling `source_bytes` holds in memory, of `budget`.
pub(crate) fn in_memory_budget(budget: u64, source_bytes: u64) -> u64 {
    if source_bytes > SPILL_ALL_PAST_BYTES { 0 } else { budget }
}

/// Where one file's stream was written: its byte offset and its lengths, and every
/// `ROW_MARK_EVERY`th line start kept in memory, so the line of a token costs one small
/// read instead of the file's whole line table.
#[derive(Clone, Debug)]
pub(crate) struct SpillSlot {
    offset: u64,
    tokens: u32,
    rows: u32,
    row_marks: Box<[u32]>,
}

/// Line starts between two kept in memory (`SpillSlot::row_marks`).
const ROW_MARK_EVERY: usize = 64;

impl SpillSlot {
    fn bytes(&self) -> usize {
        self.tokens as usize * (2 + 4) + self.rows as usize * 4
    }
}

/// A parsed file's stream, as the scan holds it.
pub(crate) enum HeldTokens {
    Memory(Arc<FileTokens>),
    Spilled(SpillSlot),
}

/// The temporary file and the budget, shared by the threads that parse.
pub(crate) struct TokenSpill {
    budget: u64,
    in_memory: AtomicU64,
    /// Bytes written (and reserved) so far: the next stream's offset.
    end: AtomicU64,
    file: OnceLock<Option<File>>,
    /// Set once writing failed: later streams stay in memory, as before the budget.
    failed: AtomicBool,
}

impl TokenSpill {
    pub(crate) fn new(budget_tokens: u64) -> TokenSpill {
        TokenSpill {
            budget: budget_tokens,
            in_memory: AtomicU64::new(0),
            end: AtomicU64::new(0),
            file: OnceLock::new(),
            failed: AtomicBool::new(false),
        }
    }

    /// Keeps `tokens` in memory while the budget lasts, else writes them out. A stream that
    /// cannot be written stays in memory: spilling saves memory, it never loses a file.
    pub(crate) fn hold(&self, tokens: FileTokens) -> HeldTokens {
        let count = tokens.len() as u64;
        let held = self.in_memory.fetch_add(count, Ordering::Relaxed);
        if held + count <= self.budget || self.failed.load(Ordering::Relaxed) {
            return HeldTokens::Memory(Arc::new(tokens));
        }
        self.in_memory.fetch_sub(count, Ordering::Relaxed);
        match self.write(&tokens) {
            Ok(slot) => HeldTokens::Spilled(slot),
            Err(error) => {
                if !self.failed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "cannot write token streams to a temporary file; keeping them in memory");
                }
                self.in_memory.fetch_add(count, Ordering::Relaxed);
                HeldTokens::Memory(Arc::new(tokens))
            }
        }
    }

    fn spill_file(&self) -> std::io::Result<&File> {
        let file = self.file.get_or_init(|| match tempfile::tempfile() {
            Ok(file) => Some(file),
            Err(error) => {
                tracing::warn!(%error, "cannot create a temporary file for token streams");
                None
            }
        });
        file.as_ref()
            .ok_or_else(|| std::io::Error::other("no temporary file"))
    }

    fn write(&self, tokens: &FileTokens) -> std::io::Result<SpillSlot> {
        let file = self.spill_file()?;
        let slot = SpillSlot {
            offset: 0,
            tokens: tokens.len() as u32,
            rows: tokens.row_starts.len() as u32,
            row_marks: tokens.row_starts.iter().step_by(ROW_MARK_EVERY).copied().collect(),
        };
        let mut bytes = Vec::with_capacity(slot.bytes());
        bytes.extend(tokens.syms.iter().flat_map(|sym| sym.to_le_bytes()));
        bytes.extend(tokens.texts.iter().flat_map(|text| text.to_le_bytes()));
        bytes.extend(tokens.row_starts.iter().flat_map(|row| row.to_le_bytes()));
        // Each writer reserves its own range, so threads write side by side without a lock.
        let offset = self.end.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        write_at(file, &bytes, offset)?;
        Ok(SpillSlot { offset, ..slot })
    }

    /// Tokens `start..end` of the stream written at `slot`, without its rows; `None` if
    /// they cannot be read back.
    pub(crate) fn read_range(&self, slot: &SpillSlot, start: u32, end: u32) -> Option<FileTokens> {
        if start > end || end > slot.tokens {
            return None;
        }
        let file = self.file.get()?.as_ref()?;
        let count = (end - start) as usize;
        let mut syms = vec![0u8; count * 2];
        let mut texts = vec![0u8; count * 4];
        let texts_at = slot.offset + u64::from(slot.tokens) * 2;
        let read = read_at(file, &mut syms, slot.offset + u64::from(start) * 2)
            .and_then(|()| read_at(file, &mut texts, texts_at + u64::from(start) * 4));
        if let Err(error) = read {
            tracing::warn!(%error, "cannot read token streams back from their temporary file");
            return None;
        }
        Some(FileTokens { syms: u16s(&syms), texts: u32s(&texts), row_starts: Vec::new() })
    }

    /// The 1-based line of token `token` of the stream written at `slot` (as
    /// `FileTokens::line`); `None` if it cannot be read back.
    pub(crate) fn line(&self, slot: &SpillSlot, token: u32) -> Option<u32> {
        let file = self.file.get()?.as_ref()?;
        // Rows starting at or before the token: the marks say which run of rows holds the
        // last of them, and that run is read.
        let marked = slot.row_marks.partition_point(|&first| first <= token);
        let from = marked.saturating_sub(1) * ROW_MARK_EVERY;
        let to = (from + ROW_MARK_EVERY).min(slot.rows as usize);
        let mut bytes = vec![0u8; (to - from) * 4];
        let rows_at = slot.offset + u64::from(slot.tokens) * 6;
        read_at(file, &mut bytes, rows_at + from as u64 * 4).ok()?;
        let before = u32s(&bytes).into_iter().take_while(|&first| first <= token).count();
        Some((from + before) as u32)
    }

    /// The stream written at `slot`; `None` if it cannot be read back.
    pub(crate) fn read(&self, slot: &SpillSlot) -> Option<FileTokens> {
        let file = self.file.get()?.as_ref()?;
        let mut bytes = vec![0u8; slot.bytes()];
        if let Err(error) = read_at(file, &mut bytes, slot.offset) {
            tracing::warn!(%error, "cannot read token streams back from their temporary file");
            return None;
        }
        let (syms, rest) = bytes.split_at(slot.tokens as usize * 2);
        let (texts, rows) = rest.split_at(slot.tokens as usize * 4);
        Some(FileTokens { syms: u16s(syms), texts: u32s(texts), row_starts: u32s(rows) })
    }
}

fn u16s(bytes: &[u8]) -> Vec<u16> {
    bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect()
}

fn u32s(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_at(file: &File, bytes: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let written = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        bytes = &bytes[written..];
        offset += written as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(file: &File, mut bytes: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let read = std::os::windows::fs::FileExt::seek_read(file, bytes, offset)?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        bytes = &mut bytes[read..];
        offset += read as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Language;

    fn tokens_of(source: &str) -> FileTokens {
        crate::analysis::analyze(Language::Python, source).tokens
    }

    #[test]
    fn streams_past_the_budget_are_written_and_read_back_unchanged() {
        // The last source has lines enough for several row marks, and blank lines.
        let long: String = (0..300).map(|line| if line % 7 == 3 { "\n".to_string() } else { format!("v{line} = [{line}, 'x']\n") }).collect();
        let sources = [
            "def f(a, b):\n    return a + b\n",
            "x = 1\n\n\ny = [x, 2, 'three']\n",
            "class C:\n    def m(self):\n        pass\n",
            long.as_str(),
        ];
        let first = tokens_of(sources[0]);
        let spill = TokenSpill::new(first.len() as u64);
        let held: Vec<HeldTokens> = sources
            .iter()
            .map(|source| spill.hold(tokens_of(source)))
            .collect();
        assert!(
            matches!(held[0], HeldTokens::Memory(_)),
            "the first stream fits the budget"
        );
        for (source, held) in sources.iter().zip(&held).skip(1) {
            let HeldTokens::Spilled(slot) = held else {
                panic!("past the budget, {source:?} is spilled")
            };
            let back = spill.read(slot).expect("read back");
            let expected = tokens_of(source);
            let (start, end) = (1, expected.len() as u32 - 1);
            let range = spill
                .read_range(slot, start, end)
                .expect("a range read back");
            assert_eq!(
                (&range.syms[..], &range.texts[..]),
                (
                    &expected.syms[1..end as usize],
                    &expected.texts[1..end as usize]
                )
            );
            assert!(
                spill
                    .read_range(slot, 0, expected.len() as u32 + 1)
                    .is_none(),
                "a range past the stream is refused"
            );
            for token in 0..expected.len() as u32 {
                assert_eq!(spill.line(slot, token), Some(expected.line(token as usize)), "line of token {token} of {source:?}");
            }
            assert_eq!(
                (back.syms, back.texts, back.row_starts),
                (expected.syms, expected.texts, expected.row_starts)
            );
        }
    }
}
