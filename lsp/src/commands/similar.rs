//! `periodic similar FILE:LINE`: the clones of the function (or block) at a line.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

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
    let report = report::build(&outcome);
    let Some(file_index) = outcome.files.iter().position(|f| f.path == relative) else {
        anyhow::bail!("{relative}: not scanned under {} (unknown language, excluded or skipped)", root.display());
    };
    let line_count = outcome.files[file_index].lines;
    if line > line_count {
        anyhow::bail!("{relative}:{line}: the file has {line_count} lines");
    }
    // The innermost unit at the line, else any clone instance covering it.
    let unit = outcome.files[file_index]
        .units
        .iter()
        .enumerate()
        .filter(|(_, u)| u.start_line <= line && line <= u.end_line)
        .min_by_key(|(_, u)| u.end_line - u.start_line)
        .map(|(index, _)| index as u32);
    let mut similar: Vec<SimilarEntry> = Vec::new();
    let mut target: Option<report::Location> = None;
    for (pair, shown) in outcome.pairs.iter().zip(&report.pairs) {
        let sides = [(&pair.a, &shown.a, &shown.b), (&pair.b, &shown.b, &shown.a)];
        for (mine, mine_shown, other_shown) in sides {
            let here = mine.file as usize == file_index
                && match unit {
                    Some(unit) => mine.unit == Some(unit),
                    None => mine.start_line <= line && line <= mine.end_line,
                };
            if here {
                target.get_or_insert_with(|| mine_shown.clone());
                similar.push(SimilarEntry {
                    location: other_shown.clone(),
                    kind: shown.kind.clone(),
                    similarity: shown.similarity,
                    pattern: shown.pattern.clone(),
                });
            }
        }
    }
    if target.is_none()
        && let Some(unit) = unit
    {
        let record = &outcome.files[file_index];
        let shown = &record.units[unit as usize];
        target = Some(report::Location {
            path: record.path.clone(),
            start_line: shown.start_line,
            end_line: shown.end_line,
            name: shown.name.clone(),
            unit: "function".to_string(),
            language: record.language.family().to_string(),
        });
    }
    similar.sort_by(|x, y| y.similarity.total_cmp(&x.similarity).then(x.location.cmp(&y.location)));
    similar.dedup_by(|x, y| x.location == y.location);
    similar.truncate(args.top);
    let answer = SimilarAnswer { unit: target, similar };
    let mut out = std::io::stdout().lock();
    match args.format {
        ListFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?,
        ListFormat::Text => {
            match &answer.unit {
                Some(unit) if !unit.name.is_empty() => writeln!(out, "{relative}:{}-{} {}:", unit.start_line, unit.end_line, unit.name)?,
                _ => {}
            }
            if answer.similar.is_empty() {
                let what = if unit.is_some() { "no similar code found" } else { "no function or duplicated block at this line" };
                writeln!(out, "{relative}:{line}: {what}")?;
            }
            for entry in &answer.similar {
                writeln!(
                    out,
                    "{}:{}-{}  {}  {} {:.0}%  {}",
                    entry.location.path,
                    entry.location.start_line,
                    entry.location.end_line,
                    if entry.location.name.is_empty() { "(block)" } else { &entry.location.name },
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
