//! `.periodic.toml`: detection settings, file selection, per-language overrides, pattern
//! names and failure thresholds. Every key is documented in `docs/configuration.md`.
//!
//! Parsing is strict: an unknown key or a bad value is an error naming the file, the line
//! and the key, so a typo never silently changes what a CI gate checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::lang::Language;

pub const CONFIG_FILE_NAME: &str = ".periodic.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}:{line}: {message}")]
    Invalid { path: PathBuf, line: usize, message: String },
    /// The I/O error is shown in the message, not chained as a source: error reports print a
    /// source after the message, and the reason came out twice.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
}

/// Detection settings, after defaults, the file and the command line were applied.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionSettings {
    pub min_lines: u32,
    pub min_tokens: u32,
    pub similarity: f64,
    pub blocks: bool,
}

impl Default for DetectionSettings {
    fn default() -> Self {
        DetectionSettings { min_lines: 6, min_tokens: 50, similarity: 0.7, blocks: true }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatternSetting {
    pub name: Option<String>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailSettings {
    /// Fail when duplicated lines exceed this percentage of all lines.
    pub duplication_percent: Option<f64>,
    /// Fail when more clone pairs than this are found.
    pub max_pairs: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub detection: DetectionSettings,
    /// Per-language overrides of the detection settings.
    pub per_language: BTreeMap<Language, DetectionSettings>,
    /// Languages to scan; empty means all.
    pub languages: Vec<Language>,
    /// Extension (without dot, lower case) -> language, overriding the built-in mapping.
    pub extensions: BTreeMap<String, Language>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Read no `.gitignore`, `.ignore`, `.git/info/exclude` or global git excludes (source
    /// tarballs may ship a `.gitignore` that hides everything); `exclude` and
    /// `.periodicignore` still apply.
    pub no_ignore: bool,
    pub max_file_bytes: u64,
    pub patterns: BTreeMap<String, PatternSetting>,
    pub fail: FailSettings,
    /// `[edge]` and `[lsp]` tables, validated by the components that read them.
    pub sections: BTreeMap<String, toml::Value>,
    /// Where the configuration came from, for messages.
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            detection: DetectionSettings::default(),
            per_language: BTreeMap::new(),
            languages: Vec::new(),
            extensions: BTreeMap::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            no_ignore: false,
            max_file_bytes: 2 * 1024 * 1024,
            patterns: BTreeMap::new(),
            fail: FailSettings::default(),
            sections: BTreeMap::new(),
            source: None,
        }
    }
}

impl Config {
    /// Settings for one language: its override if any, else the global ones.
    pub fn detection_for(&self, language: Language) -> &DetectionSettings {
        let key = if language == Language::Tsx { Language::TypeScript } else { language };
        self.per_language.get(&key).unwrap_or(&self.detection)
    }

    /// Overrides the size and similarity thresholds everywhere (global and per language),
    /// for values given on the command line or by the editor.
    pub fn override_thresholds(&mut self, min_lines: Option<u32>, min_tokens: Option<u32>, similarity: Option<f64>) {
        let overrides = |settings: &mut DetectionSettings| {
            if let Some(value) = min_lines {
                settings.min_lines = value;
            }
            if let Some(value) = min_tokens {
                settings.min_tokens = value;
            }
            if let Some(value) = similarity {
                settings.similarity = value;
            }
        };
        overrides(&mut self.detection);
        self.per_language.values_mut().for_each(overrides);
    }

    pub fn language_for_extension(&self, extension: &str) -> Option<Language> {
        let lowered = extension.to_ascii_lowercase();
        self.extensions.get(&lowered).copied().or_else(|| Language::from_extension(&lowered))
    }

    pub fn language_enabled(&self, language: Language) -> bool {
        let family = Language::from_name(language.family()).unwrap_or(language);
        self.languages.is_empty() || self.languages.contains(&language) || self.languages.contains(&family)
    }

    /// Loads `.periodic.toml` from `root` if present, else the defaults.
    pub fn load_from_root(root: &Path) -> Result<Config, ConfigError> {
        let path = root.join(CONFIG_FILE_NAME);
        if path.is_file() { Config::load(&path) } else { Ok(Config::default()) }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io { path: path.to_path_buf(), error })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text; `path` is only used in error messages.
    ///
    /// Type errors name the kind of value expected as the documentation does ("a whole
    /// number"), not Rust's type (`i64`).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |offset: Option<usize>, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: offset.map_or(1, |offset| line_of(text, offset)),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let mut message = plain_types(error.message().trim_end());
            let offset = error.span().map(|span| span.start);
            // Type errors do not name their key: take it from the line (`key = value`).
            if !message.contains('`')
                && let Some(key) = offset.and_then(|offset| key_on_line(text, offset))
            {
                message = format!("`{key}`: {message}");
            }
            invalid(offset, message)
        })?;
        let mut config = Config { source: Some(path.to_path_buf()), ..Config::default() };
        let top_level = RawDetection {
            min_lines: raw.min_lines,
            min_tokens: raw.min_tokens,
            similarity: raw.similarity,
            blocks: raw.blocks,
        };
        top_level.apply(&mut config.detection, &invalid)?;
        for (name, raw_language) in raw.language {
            let language = Language::from_name(name.get_ref())
                .ok_or_else(|| invalid(Some(name.span().start), format!("unknown language `{}` in [language]", name.get_ref())))?;
            let mut settings = config.detection.clone();
            raw_language.apply(&mut settings, &invalid)?;
            config.per_language.insert(language, settings);
        }
        for name in raw.languages {
            let language = Language::from_name(name.get_ref())
                .ok_or_else(|| invalid(Some(name.span().start), format!("unknown language `{}` in `languages`", name.get_ref())))?;
            config.languages.push(language);
        }
        for (extension, name) in raw.extensions {
            let language = Language::from_name(name.get_ref()).ok_or_else(|| {
                invalid(Some(name.span().start), format!("unknown language `{}` for extension `{extension}`", name.get_ref()))
            })?;
            config.extensions.insert(extension.trim_start_matches('.').to_ascii_lowercase(), language);
        }
        for glob in raw.include.iter().chain(raw.exclude.iter()) {
            globset::Glob::new(glob.get_ref())
                .map_err(|error| invalid(Some(glob.span().start), format!("bad glob `{}`: {error}", glob.get_ref())))?;
        }
        config.include = raw.include.into_iter().map(|g| g.into_inner()).collect();
        config.exclude = raw.exclude.into_iter().map(|g| g.into_inner()).collect();
        config.no_ignore = raw.no_ignore.unwrap_or(false);
        if let Some(size) = raw.max_file_size {
            config.max_file_bytes = parse_size(size.get_ref())
                .ok_or_else(|| invalid(Some(size.span().start), format!("`max_file_size`: cannot read `{}` as a size (e.g. 2MB, 500KB, 100000)", size.get_ref())))?;
        }
        for (id, pattern) in raw.patterns {
            // An id of neither form can never name a pattern: say so rather than ignore it.
            if crate::pattern::parse_shape_id(&id).is_none() && !crate::pattern::is_legacy_id(&id) {
                return Err(invalid(
                    text.find(&format!("patterns.\"{id}\"")).or_else(|| text.find(&format!("patterns.{id}"))),
                    format!("`[patterns.\"{id}\"]`: a pattern id is `P-` and 16 hex digits, as `periodic patterns` lists them"),
                ));
            }
            config.patterns.insert(id, PatternSetting { name: pattern.name, note: pattern.note });
        }
        if let Some(fail) = raw.fail {
            if let Some(percent) = fail.duplication_percent {
                let value = *percent.get_ref();
                if !(0.0..=100.0).contains(&value) {
                    return Err(invalid(Some(percent.span().start), format!("`fail.duplication_percent` must be between 0 and 100, not {value}")));
                }
                config.fail.duplication_percent = Some(value);
            }
            config.fail.max_pairs = fail.max_pairs;
        }
        for (name, section) in [("edge", raw.edge), ("lsp", raw.lsp)] {
            if let Some(section) = section {
                config.sections.insert(name.to_string(), section);
            }
        }
        Ok(config)
    }
}

/// The key of the `key = value` line holding `offset`, if that line has one.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |newline| newline + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty()).then(|| key.to_string())
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Reads `2MB`, `500 KB`, `1048576`, `1mib` as a byte count.
pub fn parse_size(text: &str) -> Option<u64> {
    let trimmed = text.trim().to_ascii_lowercase();
    let split = trimmed.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().ok()?;
    let multiplier = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((value * multiplier) as u64)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDetection {
    min_lines: Option<toml::Spanned<i64>>,
    min_tokens: Option<toml::Spanned<i64>>,
    similarity: Option<toml::Spanned<f64>>,
    blocks: Option<bool>,
}

impl RawDetection {
    fn apply(
        &self,
        settings: &mut DetectionSettings,
        invalid: &dyn Fn(Option<usize>, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        if let Some(value) = &self.min_lines {
            settings.min_lines = positive(value, "min_lines", invalid)?;
        }
        if let Some(value) = &self.min_tokens {
            settings.min_tokens = positive(value, "min_tokens", invalid)?;
        }
        if let Some(value) = &self.similarity {
            let similarity = *value.get_ref();
            if !(0.0..=1.0).contains(&similarity) || similarity == 0.0 {
                return Err(invalid(Some(value.span().start), format!("`similarity` must be in (0, 1], not {similarity}")));
            }
            settings.similarity = similarity;
        }
        if let Some(blocks) = self.blocks {
            settings.blocks = blocks;
        }
        Ok(())
    }
}

fn positive(
    value: &toml::Spanned<i64>,
    key: &str,
    invalid: &dyn Fn(Option<usize>, String) -> ConfigError,
) -> Result<u32, ConfigError> {
    let number = *value.get_ref();
    if !(1..=1_000_000).contains(&number) {
        return Err(invalid(Some(value.span().start), format!("`{key}` must be a positive whole number, not {number}")));
    }
    Ok(number as u32)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    name: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFail {
    duplication_percent: Option<toml::Spanned<f64>>,
    max_pairs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    min_lines: Option<toml::Spanned<i64>>,
    min_tokens: Option<toml::Spanned<i64>>,
    similarity: Option<toml::Spanned<f64>>,
    blocks: Option<bool>,
    #[serde(default)]
    languages: Vec<toml::Spanned<String>>,
    #[serde(default)]
    extensions: BTreeMap<String, toml::Spanned<String>>,
    #[serde(default)]
    include: Vec<toml::Spanned<String>>,
    #[serde(default)]
    exclude: Vec<toml::Spanned<String>>,
    no_ignore: Option<bool>,
    max_file_size: Option<toml::Spanned<String>>,
    #[serde(default)]
    language: BTreeMap<toml::Spanned<String>, RawDetection>,
    #[serde(default)]
    patterns: BTreeMap<String, RawPattern>,
    fail: Option<RawFail>,
    /// Read by the language server and sync (documented there); accepted here so one file
    /// serves every tool.
    #[serde(default)]
    edge: Option<toml::Value>,
    #[serde(default)]
    lsp: Option<toml::Value>,
}

/// A deserialiser's message with Rust type names spelled as the documentation does.
fn plain_types(message: &str) -> String {
    let mut plain = message.to_string();
    for (rust, shown) in [
        ("expected i64", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        plain = plain.replace(rust, shown);
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new(".periodic.toml"))
    }

    #[test]
    fn a_full_file_is_read() {
        let config = parse(
            r#"
min_lines = 8
similarity = 0.8
languages = ["python", "ts"]
exclude = ["**/vendor/**"]
max_file_size = "500KB"
[extensions]
".inc" = "c"
[language.python]
min_tokens = 70
[patterns."P-00000001"]
name = "retry-loop"
[fail]
duplication_percent = 5
"#,
        )
        .expect("valid");
        assert_eq!(config.detection.min_lines, 8);
        assert_eq!(config.detection_for(Language::Python).min_tokens, 70);
        assert_eq!(config.detection_for(Language::Python).min_lines, 8);
        assert_eq!(config.detection_for(Language::Go).min_tokens, 50);
        assert_eq!(config.language_for_extension("INC"), Some(Language::C));
        assert!(config.language_enabled(Language::Tsx));
        assert!(!config.language_enabled(Language::Go));
        assert_eq!(config.max_file_bytes, 500 * 1024);
        assert_eq!(config.patterns["P-00000001"].name.as_deref(), Some("retry-loop"));
        assert_eq!(config.fail.duplication_percent, Some(5.0));
    }

    #[test]
    fn an_unknown_key_names_file_line_and_key() {
        let error = parse("min_lines = 3\nsimilarty = 0.8\n").expect_err("typo");
        let message = error.to_string();
        assert!(message.starts_with(".periodic.toml:2:"), "{message}");
        assert!(message.contains("similarty"), "{message}");
    }

    #[test]
    fn bad_values_name_their_line() {
        let message = parse("\n\nsimilarity = 1.5\n").expect_err("range").to_string();
        assert!(message.starts_with(".periodic.toml:3:") && message.contains("similarity"), "{message}");
        let message = parse("min_tokens = -4\n").expect_err("negative").to_string();
        assert!(message.contains("min_tokens"), "{message}");
        let message = parse("[language.cobol]\nmin_lines = 3\n").expect_err("language").to_string();
        assert!(message.contains("cobol"), "{message}");
        let message = parse("min_lines = \"six\"\n").expect_err("type").to_string();
        assert!(message.starts_with(".periodic.toml:1:") && message.contains("`min_lines`"), "{message}");
        assert!(message.contains("expected a whole number") && !message.contains("i64"), "the documentation's words: {message}");
        let message = parse("blocks = \"yes\"\n").expect_err("type").to_string();
        assert!(message.contains("expected true or false"), "{message}");
        let message = parse("min_lines = 3\n\n[patterns.\"P-123\"]\nname = \"x\"\n").expect_err("pattern id").to_string();
        assert!(message.starts_with(".periodic.toml:3:") && message.contains("P-123") && message.contains("16 hex digits"), "{message}");
        assert!(parse("[patterns.\"P-00c0ffee00c0ffee\"]\nname = \"x\"\n[patterns.\"P-00000001\"]\nname = \"y\"\n").is_ok(), "current and former ids");
    }

    #[test]
    fn a_missing_file_gives_its_reason_once() {
        let error = Config::load(Path::new("/no/such/dir/periodic.toml")).expect_err("missing");
        // Reports print the message and then each source: the reason is in the message only.
        assert!(std::error::Error::source(&error).is_none());
        let message = error.to_string();
        assert!(message.starts_with("/no/such/dir/periodic.toml:") && message.contains("No such file or directory"), "{message}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2MB"), Some(2 * 1024 * 1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1.5 kb"), Some(1536));
        assert_eq!(parse_size("lots"), None);
    }
}
