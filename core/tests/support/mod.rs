//! Test support: fixtures written as one string holding several files (`//- /path` lines
//! start a file), scanned in a temporary folder, and the result shown as stable text.

use std::path::Path;

use periodic_core::config::DetectionSettings;
use periodic_core::{Config, ScanOptions, ScanOutcome, scan};

/// Writes the fixture's files under `root`.
pub fn write_fixture(root: &Path, fixture: &str) {
    let mut current: Option<(String, String)> = None;
    let flush = |current: &mut Option<(String, String)>| {
        if let Some((path, text)) = current.take() {
            let full = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(full.parent().expect("file has a folder")).expect("mkdir");
            std::fs::write(full, text).expect("write fixture file");
        }
    };
    for line in fixture.lines() {
        if let Some(path) = line.strip_prefix("//- ") {
            flush(&mut current);
            current = Some((path.trim().to_string(), String::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    flush(&mut current);
}

/// Small minimums so fixtures stay readable; the defaults are tested separately.
pub fn fixture_config() -> Config {
    Config { detection: DetectionSettings { min_lines: 4, min_tokens: 25, ..DetectionSettings::default() }, ..Config::default() }
}

pub fn scan_fixture(fixture: &str, config: Config) -> ScanOutcome {
    let dir = tempfile::tempdir().expect("tempdir");
    write_fixture(dir.path(), fixture);
    scan(ScanOptions { root: dir.path().to_path_buf(), config, use_index: false, progress: None, team: None }).expect("scan")
}

/// One line per pair: `KIND path:name ~ path:name`, sorted. Blocks show their lines.
pub fn pairs_text(outcome: &ScanOutcome) -> String {
    let side = |instance: &periodic_core::Instance| {
        let file = &outcome.files[instance.file as usize];
        match instance.unit {
            Some(unit) => format!("{}:{}", file.path, file.units[unit as usize].name),
            None => format!("{}:{}-{}", file.path, instance.start_line, instance.end_line),
        }
    };
    let mut lines: Vec<String> = outcome
        .pairs
        .iter()
        .map(|pair| {
            let (a, b) = (side(&pair.a), side(&pair.b));
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            format!("{} {a} ~ {b}", pair.kind.as_str())
        })
        .collect();
    lines.sort();
    lines.join("\n")
}
