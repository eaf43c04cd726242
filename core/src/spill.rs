//! Token streams of the files a scan parsed, kept within a memory budget. Detection needs a
//! file's tokens long after it was parsed (to verify candidates and extend block seeds), and
//! on a tree the size of Linux the streams of every file would be most of the process's
//! memory. Streams up to the budget stay in memory; the rest are written to an anonymous
//! temporary file (in `TMPDIR`, removed when the scan ends) and read back on demand through
//! the scan's token cache. What detection sees is the same either way, so results do not
//! depend on the budget.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::analysis::FileTokens;

/// Tokens of parsed files kept in memory during a scan (10 bytes each): 200 MB.
pub const DEFAULT_IN_MEMORY_TOKENS: u64 = 20_000_000;

/// Where one parsed file's tokens are.
pub(crate) enum FreshTokens {
    InMemory(Arc<FileTokens>),
    Spilled(SpillRef),
}

/// A stream written to the spill file: its offset and its column lengths.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpillRef {
    offset: u64,
    tokens: u32,
    rows: u32,
}

pub(crate) struct TokenSpill {
    in_memory_budget: u64,
    in_memory: AtomicU64,
    /// Created on the first spill; `Err` when no temporary file can be made, in which case
    /// every stream stays in memory (slower to run out of memory than to lose results).
    file: OnceLock<Result<File, String>>,
    end: AtomicU64,
}

impl TokenSpill {
    pub fn new(in_memory_budget: u64) -> Self {
        TokenSpill { in_memory_budget, in_memory: AtomicU64::new(0), file: OnceLock::new(), end: AtomicU64::new(0) }
    }

    /// Keeps a parsed file's tokens: in memory while the budget lasts, else in the file.
    pub fn keep(&self, tokens: FileTokens) -> FreshTokens {
        let count = tokens.len() as u64;
        let before = self.in_memory.fetch_add(count, Ordering::Relaxed);
        if before + count <= self.in_memory_budget {
            return FreshTokens::InMemory(Arc::new(tokens));
        }
        self.in_memory.fetch_sub(count, Ordering::Relaxed);
        match self.write(&tokens) {
            Ok(spilled) => FreshTokens::Spilled(spilled),
            Err(error) => {
                tracing::warn!(%error, "cannot spill token streams to a temporary file; keeping them in memory");
                FreshTokens::InMemory(Arc::new(tokens))
            }
        }
    }

    /// Bytes written to the spill file so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.end.load(Ordering::Relaxed)
    }

    fn spill_file(&self) -> io::Result<&File> {
        match self.file.get_or_init(|| tempfile::tempfile().map_err(|error| error.to_string())) {
            Ok(file) => Ok(file),
            Err(error) => Err(io::Error::other(error.clone())),
        }
    }

    fn write(&self, tokens: &FileTokens) -> io::Result<SpillRef> {
        let file = self.spill_file()?;
        let mut bytes = Vec::with_capacity(tokens.syms.len() * 6 + tokens.row_starts.len() * 4);
        bytes.extend(tokens.syms.iter().flat_map(|sym| sym.to_le_bytes()));
        bytes.extend(tokens.texts.iter().flat_map(|text| text.to_le_bytes()));
        bytes.extend(tokens.row_starts.iter().flat_map(|row| row.to_le_bytes()));
        let offset = self.end.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        write_all_at(file, &bytes, offset)?;
        Ok(SpillRef { offset, tokens: tokens.syms.len() as u32, rows: tokens.row_starts.len() as u32 })
    }

    /// Reads a spilled stream back.
    pub fn read(&self, at: SpillRef) -> io::Result<FileTokens> {
        let file = self.spill_file()?;
        let (tokens, rows) = (at.tokens as usize, at.rows as usize);
        let mut bytes = vec![0u8; tokens * 6 + rows * 4];
        read_exact_at(file, &mut bytes, at.offset)?;
        let (syms, rest) = bytes.split_at(tokens * 2);
        let (texts, row_starts) = rest.split_at(tokens * 4);
        Ok(FileTokens {
            syms: syms.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect(),
            texts: texts.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            row_starts: row_starts.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        })
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &File, bytes: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        let written = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written..];
        offset += written as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut bytes: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        let read = std::os::windows::fs::FileExt::seek_read(file, bytes, offset)?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
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

    fn parsed(source: &str) -> FileTokens {
        crate::analysis::analyze(Language::Python, source).tokens
    }

    #[test]
    fn a_spilled_stream_reads_back_equal_and_the_budget_decides_what_is_spilled() {
        let first = parsed("def a(x):\n    return x + 1\n");
        let second = parsed("def b(items):\n    total = 0\n    for item in items:\n        total += item\n    return total\n");
        let spill = TokenSpill::new(first.len() as u64);
        let kept = spill.keep(first.clone());
        assert!(matches!(kept, FreshTokens::InMemory(_)), "the first stream fits the budget");
        assert_eq!(spill.spilled_bytes(), 0);
        let FreshTokens::Spilled(at) = spill.keep(second.clone()) else { panic!("the second stream is over the budget") };
        assert!(spill.spilled_bytes() > 0);
        let back = spill.read(at).expect("read back");
        assert_eq!((back.syms, back.texts, back.row_starts), (second.syms, second.texts, second.row_starts));
    }
}
