//! The floor for scan benchmarks: read and tree-sitter-parse every source file under a
//! folder on N threads, with nothing else a scan does (no units, no fingerprints, no index).
//!
//! `scripts/bench-scan` compares `periodic scan` against this program, so it walks the same
//! files the scanner would (the `ignore` crate, hidden files and `.gitignore`d files skipped),
//! picks grammars from the same registry (`periodic_core::lang`), and keeps one parser per
//! thread, reused, as the engine does. With `--walk` it also visits every node of each tree
//! once with a `TreeCursor`, the least any analysis of the tree must pay.
//!
//! Usage: `bare_parse DIR [--threads N] [--walk]`; prints one line:
//! `files=… lines=… bytes=… seconds=…`.

#![allow(clippy::print_stdout, reason = "the result line on stdout is this program's output")]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use periodic_core::lang::Language;
use rayon::prelude::*;

struct Arguments {
    root: PathBuf,
    threads: usize,
    walk_trees: bool,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut root = None;
    let mut threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut walk_trees = false;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--walk" => walk_trees = true,
            "--threads" => {
                let value = arguments.next().ok_or("--threads needs a number")?;
                threads = value.parse().map_err(|_| format!("--threads: not a number: {value}"))?;
                if threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            path if root.is_none() => root = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    let root = root.ok_or("usage: bare_parse DIR [--threads N] [--walk]")?;
    Ok(Arguments { root, threads, walk_trees })
}

/// Files with a registered language, in walk order. The walk is part of the measured time,
/// as it is for a scan.
fn source_files(root: &Path) -> Vec<(PathBuf, Language)> {
    ignore::WalkBuilder::new(root)
        .build()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_file()))
        .filter_map(|entry| {
            let extension = entry.path().extension()?.to_str()?;
            let language = Language::from_extension(extension)?;
            Some((entry.into_path(), language))
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Totals {
    files: u64,
    lines: u64,
    bytes: u64,
    nodes: u64,
}

impl Totals {
    fn add(self, other: Totals) -> Totals {
        Totals {
            files: self.files + other.files,
            lines: self.lines + other.lines,
            bytes: self.bytes + other.bytes,
            nodes: self.nodes + other.nodes,
        }
    }
}

thread_local! {
    // One parser per worker thread, reused across files; only the grammar is swapped.
    static PARSER: RefCell<tree_sitter::Parser> = RefCell::new(tree_sitter::Parser::new());
}

/// Visits every node once, depth first; returns how many there were.
fn count_nodes(tree: &tree_sitter::Tree) -> u64 {
    let mut cursor = tree.walk();
    let mut nodes = 1;
    loop {
        if cursor.goto_first_child() || cursor.goto_next_sibling() {
            nodes += 1;
            continue;
        }
        loop {
            if !cursor.goto_parent() {
                return nodes;
            }
            if cursor.goto_next_sibling() {
                nodes += 1;
                break;
            }
        }
    }
}

fn parse_file(path: &Path, language: Language, walk_trees: bool) -> Totals {
    // Unreadable or vanished files are skipped, as a scan skips them with a warning.
    let Ok(source) = std::fs::read(path) else { return Totals::default() };
    let tree = PARSER.with_borrow_mut(|parser| {
        parser.set_language(&language.spec().grammar).ok()?;
        parser.parse(&source, None)
    });
    let nodes = match (&tree, walk_trees) {
        (Some(tree), true) => count_nodes(tree),
        _ => 0,
    };
    Totals {
        files: 1,
        lines: source.iter().filter(|&&byte| byte == b'\n').count() as u64,
        bytes: source.len() as u64,
        nodes,
    }
}

fn main() -> ExitCode {
    let arguments = match parse_arguments() {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("bare_parse: {message}");
            return ExitCode::from(2);
        }
    };
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(arguments.threads).build() {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("bare_parse: cannot start {} threads: {error}", arguments.threads);
            return ExitCode::from(2);
        }
    };
    // Grammars and kind tables load outside the timed region, as they load once per process.
    for language in Language::ALL {
        let _ = language.spec();
    }

    let started = Instant::now();
    let files = source_files(&arguments.root);
    let totals = pool.install(|| {
        files
            .par_iter()
            .map(|(path, language)| parse_file(path, *language, arguments.walk_trees))
            .reduce(Totals::default, Totals::add)
    });
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(totals.nodes);

    println!(
        "files={} lines={} bytes={} seconds={seconds:.3}",
        totals.files, totals.lines, totals.bytes
    );
    ExitCode::SUCCESS
}
