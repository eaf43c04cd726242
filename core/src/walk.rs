//! Finding the files to scan: the `ignore` crate's walker (`.gitignore`, `.ignore`,
//! `.git/info/exclude`, global git excludes and `.periodicignore`, inside or outside a git
//! repository; with `no_ignore`, only `.periodicignore`), the configuration's include/exclude
//! globs, and the checks that leave out binary, minified, generated and oversized files.
//! Problems are warnings; the walk goes on.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::config::Config;
use crate::lang::Language;

pub const IGNORE_FILE_NAME: &str = ".periodicignore";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    Binary,
    Minified,
    Generated,
    TooLarge,
    Unreadable,
    UnknownLanguage,
    Excluded,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Binary => "binary",
            SkipReason::Minified => "minified",
            SkipReason::Generated => "generated",
            SkipReason::TooLarge => "too_large",
            SkipReason::Unreadable => "unreadable",
            SkipReason::UnknownLanguage => "unknown_language",
            SkipReason::Excluded => "excluded",
        }
    }
}

/// A file found by the walk, before it is read.
#[derive(Clone, Debug)]
pub struct FoundFile {
    pub path: PathBuf,
    /// Relative to the scan root, `/`-separated.
    pub relative: String,
    pub size: u64,
    pub mtime_ns: i64,
    /// `None` when no language claims the extension (counted as skipped).
    pub language: Option<Language>,
}

#[derive(Debug, Default)]
pub struct WalkOutcome {
    pub files: Vec<FoundFile>,
    pub skipped: Vec<(String, SkipReason)>,
    pub warnings: Vec<String>,
}

/// Walks `root` (a directory, or a single file). Deterministic order: sorted by relative path.
pub fn discover(root: &Path, config: &Config) -> WalkOutcome {
    let mut outcome = WalkOutcome::default();
    let include = build_globs(&config.include);
    let exclude = build_globs(&config.exclude);
    let walk_root = root.to_path_buf();
    let honour_ignore_files = !config.no_ignore;
    let walker = ignore::WalkBuilder::new(&walk_root)
        .require_git(false)
        .git_ignore(honour_ignore_files)
        .git_exclude(honour_ignore_files)
        .git_global(honour_ignore_files)
        .ignore(honour_ignore_files)
        .follow_links(true)
        .add_custom_ignore_filename(IGNORE_FILE_NAME)
        .filter_entry(|entry| entry.file_name() != ".periodic")
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                outcome.warnings.push(format!("walk: {error}"));
                continue;
            }
        };
        if !entry.file_type().is_some_and(|kind| kind.is_file()) {
            continue;
        }
        let path = entry.path().to_path_buf();
        let relative = relative_path(root, &path);
        if include.as_ref().is_some_and(|globs| !globs.is_match(&relative))
            || exclude.as_ref().is_some_and(|globs| globs.is_match(&relative))
        {
            outcome.skipped.push((relative, SkipReason::Excluded));
            continue;
        }
        let language = path
            .extension()
            .and_then(|extension| extension.to_str())
            .and_then(|extension| config.language_for_extension(extension))
            .filter(|&language| config.language_enabled(language));
        let Some(language) = language else {
            outcome.skipped.push((relative, SkipReason::UnknownLanguage));
            continue;
        };
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            Err(error) => {
                outcome.warnings.push(format!("{relative}: {error}"));
                outcome.skipped.push((relative, SkipReason::Unreadable));
                continue;
            }
        };
        let mtime_ns = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |duration| duration.as_nanos() as i64);
        outcome.files.push(FoundFile { path, relative, size: metadata.len(), mtime_ns, language: Some(language) });
    }
    outcome.files.sort_by(|a, b| a.relative.cmp(&b.relative));
    outcome.files.dedup_by(|a, b| a.relative == b.relative);
    outcome
}

/// How many files with a language the walk would find if ignore files were not read: asked
/// when a walk found none, to tell the user what the ignore files hid.
pub fn count_hidden_by_ignore_files(root: &Path, config: &Config) -> usize {
    if config.no_ignore {
        return 0;
    }
    let unignored = Config { no_ignore: true, ..config.clone() };
    discover(root, &unignored).files.len().saturating_sub(discover(root, config).files.len())
}

fn build_globs(patterns: &[String]) -> Option<globset::GlobSet> {
    if patterns.is_empty() {
        return None;
    }
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        // Validated when the configuration was parsed.
        if let Ok(glob) = globset::Glob::new(pattern) {
            builder.add(glob);
        }
    }
    builder.build().ok()
}

/// `path` relative to `root` with `/` separators; a single-file root gives the file name.
/// The folder a scan of `path` walks: `path` itself, or a file's folder — `.` for a bare
/// file name, whose parent is the empty path no walk can read.
pub fn scan_folder(path: &Path) -> PathBuf {
    if !path.is_file() {
        return path.to_path_buf();
    }
    path.parent().filter(|parent| !parent.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).ok().filter(|r| !r.as_os_str().is_empty());
    let shown = match relative {
        Some(relative) => relative.to_path_buf(),
        None => PathBuf::from(path.file_name().unwrap_or(path.as_os_str())),
    };
    shown.to_string_lossy().replace('\\', "/")
}

const GENERATED_MARKERS: [&str; 3] = ["@generated", "DO NOT EDIT", "do not edit"];

/// Checks the content of a file that passed the walk. `Err` says why it is left out.
pub fn classify(relative: &str, content: &[u8], max_bytes: u64) -> Result<(), SkipReason> {
    if content.len() as u64 > max_bytes {
        return Err(SkipReason::TooLarge);
    }
    let head = &content[..content.len().min(8192)];
    if head.contains(&0) {
        return Err(SkipReason::Binary);
    }
    // Generated-code markers conventionally sit in the first comment block.
    let first_lines: Vec<&[u8]> = head.split(|&b| b == b'\n').take(5).collect();
    if first_lines.iter().any(|line| {
        let text = String::from_utf8_lossy(line);
        GENERATED_MARKERS.iter().any(|marker| text.contains(marker))
    }) {
        return Err(SkipReason::Generated);
    }
    if relative.contains(".min.") || looks_minified(content) {
        return Err(SkipReason::Minified);
    }
    Ok(())
}

/// Minified code: few, very long lines. One vectorised pass over the newlines: every
/// file is classified, so this runs over every byte a scan reads.
fn looks_minified(content: &[u8]) -> bool {
    if content.len() < 2048 {
        return false;
    }
    let (mut lines, mut longest, mut line_start) = (1usize, 0usize, 0usize);
    for newline in memchr::memchr_iter(b'\n', content) {
        lines += 1;
        longest = longest.max(newline - line_start);
        line_start = newline + 1;
    }
    longest = longest.max(content.len() - line_start);
    content.len() / lines > 300 || longest > 10_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify("a.py", b"x = 1\n", 100), Ok(()));
        assert_eq!(classify("a.py", &[b'x'; 200], 100), Err(SkipReason::TooLarge));
        assert_eq!(classify("a.py", b"ab\0cd", 100), Err(SkipReason::Binary));
        assert_eq!(classify("a.go", b"// Code generated by x. DO NOT EDIT.\npackage a\n", 1000), Err(SkipReason::Generated));
        assert_eq!(classify("a.min.js", b"var a=1;", 1000), Err(SkipReason::Minified));
        let long_line = vec![b'a'; 20_000];
        assert_eq!(classify("b.js", &long_line, 100_000), Err(SkipReason::Minified));
        let wide_lines = format!("{}\n", "x".repeat(400)).repeat(10);
        assert_eq!(classify("c.js", wide_lines.as_bytes(), 100_000), Err(SkipReason::Minified));
        let code = "let total = items.map((item) => item.price).reduce(add, 0);\n".repeat(100);
        assert_eq!(classify("d.js", code.as_bytes(), 100_000), Ok(()));
        let long_last_line = format!("{}{}", "x = 1\n".repeat(500), "y".repeat(10_001));
        assert_eq!(classify("e.js", long_last_line.as_bytes(), 100_000), Err(SkipReason::Minified));
    }

    #[test]
    fn walk_honours_ignore_files_outside_git() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::create_dir_all(root.join("build")).expect("mkdir");
        std::fs::write(root.join("src/a.py"), "x = 1\n").expect("write");
        std::fs::write(root.join("build/b.py"), "x = 1\n").expect("write");
        std::fs::write(root.join("src/skip.py"), "x = 1\n").expect("write");
        std::fs::write(root.join("notes.txt"), "hello\n").expect("write");
        std::fs::write(root.join(".gitignore"), "build/\n").expect("write");
        std::fs::write(root.join(IGNORE_FILE_NAME), "src/skip.py\n").expect("write");
        let outcome = discover(root, &Config::default());
        let found: Vec<_> = outcome.files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(found, vec!["src/a.py"]);
        assert!(outcome.skipped.contains(&("notes.txt".to_string(), SkipReason::UnknownLanguage)));
    }

    #[test]
    fn no_ignore_reads_past_a_gitignore_that_hides_everything_but_keeps_excludes_and_periodicignore() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/vendor")).expect("mkdir");
        for file in ["src/a.py", "src/b.py", "src/vendor/c.py", "src/skip.py", "top.py"] {
            std::fs::write(root.join(file), "x = 1\n").expect("write");
        }
        // Debian's linux-source ships a `.gitignore` of `/*`.
        std::fs::write(root.join(".gitignore"), "/*\n").expect("write");
        std::fs::write(root.join(".ignore"), "top.py\n").expect("write");
        std::fs::write(root.join(IGNORE_FILE_NAME), "src/skip.py\n").expect("write");
        let honoured = discover(root, &Config::default());
        assert!(honoured.files.is_empty(), "{:?}", honoured.files);
        let config = Config { no_ignore: true, exclude: vec!["**/vendor/**".into()], ..Config::default() };
        let found: Vec<String> = discover(root, &config).files.into_iter().map(|f| f.relative).collect();
        assert_eq!(found, vec!["src/a.py", "src/b.py", "top.py"]);
        assert_eq!(count_hidden_by_ignore_files(root, &Config::default()), 4);
        assert_eq!(count_hidden_by_ignore_files(root, &config), 0);
    }
}
