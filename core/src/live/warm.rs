//! Warming the token cache for a file about to be edited. An edit verifies the file's
//! candidates on tokens, and the tokens of unchanged files come from a cache that is empty
//! for a file's neighbours until its first edit: that first edit parsed them all again from
//! disk (150 ms for the first edit of a 1,359-line file on `medium`, against 4 ms for the
//! next). Opening a file asks which files an edit of it reads, under the engine, and loads
//! them after, off the edit path and without holding the engine.
//!
//! Which files: a detection of the file as if edited, over a token source that hands out
//! the file's own tokens and only notes every other file asked for (a verification asks
//! for both sides first, a block extension for both windows).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashSet;

use super::LiveIndex;
use crate::analysis::FileTokens;
use crate::detect::{Detector, RangeTokens, TokenSource};
use crate::lang::Language;
use crate::scan::{ReparsingSource, TokenCache, reparse_tokens};

/// The files whose tokens an edit of one file would read, to load into the live index's
/// cache with [`TokenWarmup::run`].
pub struct TokenWarmup {
    root: PathBuf,
    /// Slot, path, language and blake3 of each file, as recorded when the warm-up was taken.
    files: Vec<(u32, String, Language, [u8; 32])>,
    cache: TokenCache,
}

impl TokenWarmup {
    /// Parses the files not cached yet into the cache; returns how many were parsed. A slot
    /// edited meanwhile is harmless: an edited file's tokens are read from the editor's
    /// text, never from this cache, and a file changed on disk fails the blake3 check.
    pub fn run(self) -> usize {
        let mut parsed = 0;
        for (slot, path, language, content_hash) in &self.files {
            if self.cache.contains_key(slot) {
                continue;
            }
            let loaded = self.cache.try_get_with(*slot, || {
                parsed += 1;
                reparse_tokens(&self.root, path, *language, content_hash)
            });
            if loaded.is_err() {
                tracing::trace!(path, "not warmed: the file changed on disk");
            }
        }
        parsed
    }

    /// How many files the warm-up covers.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Hands out the tokens of `own` and notes every other file asked for.
struct NotingSource<'a> {
    inner: &'a ReparsingSource<'a>,
    own: u32,
    asked: Mutex<FxHashSet<u32>>,
}

impl NotingSource<'_> {
    fn note(&self, file: u32) {
        self.asked.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(file);
    }
}

impl TokenSource for NotingSource<'_> {
    fn tokens(&self, file: u32) -> Option<Arc<FileTokens>> {
        if file == self.own {
            return self.inner.tokens(file);
        }
        self.note(file);
        None
    }

    fn range(&self, file: u32, start: u32, end: u32) -> Option<RangeTokens> {
        if file == self.own {
            return self.inner.range(file, start, end);
        }
        self.note(file);
        None
    }

    fn line(&self, file: u32, token: u32) -> Option<u32> {
        if file == self.own {
            return self.inner.line(file, token);
        }
        self.note(file);
        None
    }
}

impl LiveIndex {
    /// The files an edit of `path` would read tokens of, not yet cached (see the module
    /// doc). Builds the candidate tables first if they were not yet, as the edit would.
    pub fn token_warmup(&mut self, path: &str) -> Option<TokenWarmup> {
        let slot = self.slot(path)?;
        // Built here when not yet; an index already built is left as it is (and so are the
        // memos of edited files).
        if !self.candidate_tables_built() {
            self.index_mut();
        }
        let mut dirty = vec![false; self.files.len()];
        dirty[slot as usize] = true;
        let inner = ReparsingSource { root: &self.root, files: &self.files, fresh: &self.edited, spilled: None, cache: self.disk_tokens.clone() };
        let source = NotingSource { inner: &inner, own: slot, asked: Mutex::new(FxHashSet::default()) };
        let detector = Detector { files: &self.files, dirty: &dirty, config: &self.config, tokens: &source, index: self.index() };
        detector.detect_dirty();
        let mut asked: Vec<u32> = source.asked.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()).into_iter().collect();
        asked.sort_unstable();
        let files = asked
            .into_iter()
            .filter(|file| !self.edited.contains_key(file) && !self.disk_tokens.contains_key(file))
            .filter_map(|file| {
                let record = self.files.get(file as usize)?;
                Some((file, record.path.clone(), record.language, record.content_hash))
            })
            .collect();
        Some(TokenWarmup { root: self.root.clone(), files, cache: self.disk_tokens.clone() })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, DetectionSettings};
    use crate::scan::{ScanOptions, scan};

    const ORDERS: &str = "def summarize_orders(orders, tax_rate):\n    total = 0\n    count = 0\n    for order in orders:\n        if order.status == \"paid\":\n            total += order.amount * (1 + tax_rate)\n            count += 1\n    average = total / count if count else 0\n    return {\"total\": round(total, 2), \"count\": count, \"average\": average}\n";

    fn config() -> Config {
        Config { detection: DetectionSettings { min_lines: 5, min_tokens: 30, ..DetectionSettings::default() }, ..Config::default() }
    }

    /// `orders.py`, a near-miss copy of it in `copy.py`, loaded as after a warm start.
    fn live_index(dir: &Path) -> LiveIndex {
        std::fs::write(dir.join("orders.py"), ORDERS).expect("write");
        std::fs::write(dir.join("copy.py"), ORDERS.replace("count += 1", "count += 1\n            print(order)")).expect("write");
        let outcome = scan(ScanOptions { root: dir.to_path_buf(), config: config(), use_index: true, progress: None, team: None }).expect("scan");
        LiveIndex::from_stored(dir, config(), outcome.files)
    }

    #[test]
    fn opening_a_file_caches_the_tokens_its_edit_verifies_against_and_changes_no_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let edited = ORDERS.replace("total = 0", "total = 0.0");
        let mut cold = live_index(dir.path());
        cold.update_text("orders.py", Language::Python, &edited);
        let expected = cold.clones_of("orders.py");
        assert_eq!(expected.len(), 1, "the near-miss copy is found: {expected:?}");

        let mut live = live_index(dir.path());
        let copy = live.slot("copy.py").expect("slot");
        let warmup = live.token_warmup("orders.py").expect("a file of the index");
        assert_eq!(warmup.files.iter().map(|file| file.0).collect::<Vec<_>>(), vec![copy], "the copy is read by an edit");
        assert_eq!(warmup.run(), 1);
        assert!(live.disk_tokens.contains_key(&copy));
        assert!(live.token_warmup("orders.py").expect("warm-up").is_empty(), "nothing is left to load");
        live.update_text("orders.py", Language::Python, &edited);
        assert_eq!(live.clones_of("orders.py"), expected);
    }

    #[test]
    fn a_file_changed_on_disk_since_it_was_indexed_is_not_cached() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut live = live_index(dir.path());
        std::fs::write(dir.path().join("copy.py"), "x = 1\n").expect("write");
        let warmup = live.token_warmup("orders.py").expect("warm-up");
        assert_eq!(warmup.len(), 1);
        warmup.run();
        assert!(!live.disk_tokens.contains_key(&live.slot("copy.py").expect("slot")));
    }
}
