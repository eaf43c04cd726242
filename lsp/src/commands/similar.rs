//! `periodic similar FILE:LINE`: the clones of the function (or block) at a line, asked of
//! the answers layer like the language server's `periodic/similar`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::answers::{self, Snapshot};
use crate::cli::{ListFormat, SimilarArgs};
use crate::report;

#[derive(Serialize)]
struct SimilarAnswer {
    unit: Option<report::Location>,
    similar: Vec<SimilarEntry>,
}

#[derive(Serialize)]
struct SimilarEntry {
    #[serde(flatten)]
    location: report::Location,
    kind: String,
    similarity: f64,
    pattern: String,
}

fn split_location(text: &str) -> anyhow::Result<(PathBuf, u32)> {
    let (file, line) = text.rsplit_once(':').with_context(|| format!("`{text}`: expected FILE:LINE"))?;
    let line: u32 = line.parse().ok().filter(|&l| l > 0).with_context(|| format!("`{text}`: LINE must be a positive number"))?;
    Ok((PathBuf::from(file), line))
}

/// The nearest folder above `file` holding `.periodic.toml`, an index (`.periodic/`) or
/// `.git`, else the current folder.
fn find_root(file: &Path) -> PathBuf {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    for folder in absolute.ancestors().skip(1) {
        if folder.join(periodic_core::config::CONFIG_FILE_NAME).exists()
            || folder.join(periodic_core::index::INDEX_DIR).is_dir()
            || folder.join(".git").exists()
        {
            return folder.to_path_buf();
        }
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

pub fn run(args: SimilarArgs) -> anyhow::Result<u8> {
    let (file, line) = split_location(&args.location)?;
    if !file.is_file() {
        anyhow::bail!("{}: no such file", file.display());
    }
    let root = args.root.clone().unwrap_or_else(|| find_root(&file));
    let absolute_root = std::path::absolute(&root).unwrap_or(root.clone());
    let absolute_file = std::path::absolute(&file).unwrap_or(file.clone());
    let relative = periodic_core::walk::relative_path(&absolute_root, &absolute_file);
    let config = super::load_config(&root, &args.detection)?;
    let outcome = super::run_scan(&root, config, &args.detection, true)?;
    let snapshot = Snapshot::of_scan(&outcome);
    let Some(slot) = snapshot.slot(&relative) else {
        anyhow::bail!("{relative}: not scanned under {} (unknown language, excluded or skipped)", root.display());
    };
    let line_count = snapshot.file(slot).map_or(0, |file| file.lines);
    if line > line_count {
        anyhow::bail!("{relative}:{line}: the file has {line_count} lines");
    }
    let found = answers::similar_at(&snapshot, slot, line, |_| true, args.top);
    let answer = SimilarAnswer {
        unit: found.subject.as_ref().map(report::location_of),
        similar: found
            .similar
            .iter()
            .map(|code| SimilarEntry {
                location: report::location_of(&code.place),
                kind: code.kind.as_str().to_string(),
                similarity: report::round(code.similarity),
                pattern: code.pattern.as_ref().map(|pattern| pattern.id.clone()).unwrap_or_default(),
            })
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?,
        ListFormat::Text => {
            match &answer.unit {
                Some(unit) if !unit.name.is_empty() => writeln!(out, "{relative}:{}-{} {}:", unit.start_line, unit.end_line, unit.name)?,
                _ => {}
            }
            if answer.similar.is_empty() {
                let what = if answer.unit.is_some() { "no similar code found" } else { "no function or duplicated block at this line" };
                writeln!(out, "{relative}:{line}: {what}")?;
            }
            for entry in &answer.similar {
                writeln!(
                    out,
                    "{}:{}-{}  {}  {} {:.0}%  {}",
                    entry.location.path,
                    entry.location.start_line,
                    entry.location.end_line,
                    if entry.location.unit == "block" { "(block)" } else { &entry.location.name },
                    entry.kind,
                    entry.similarity * 100.0,
                    entry.pattern
                )?;
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_at_the_last_colon() {
        assert_eq!(split_location("src/a.py:12").ok(), Some((PathBuf::from("src/a.py"), 12)));
        assert!(split_location("src/a.py").is_err());
        assert!(split_location("src/a.py:0").is_err());
    }
}
