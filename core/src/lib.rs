//! Periodic's engine: it parses source files with tree-sitter, fingerprints every function
//! and duplicated block, finds Type-1/2/3 clones, clusters them into named patterns, and
//! keeps a local SQLite index so re-scans only re-parse what changed. It knows nothing of
//! LSP, HTTP or Redis; the `periodic` binary and the edge server build on it.

pub mod analysis;
pub mod candidates;
pub mod config;
pub mod detect;
pub mod fingerprint;
pub mod index;
pub mod lang;
pub mod live;
pub mod model;
pub mod names;
pub mod pattern;
pub mod pattern_names;
pub mod pattern_store;
pub mod scan;
pub mod similarity;
mod spill;
pub mod team_cache;
pub mod trace;
pub mod verify;
mod verify_trees;
pub mod walk;

pub use config::Config;
pub use lang::Language;
pub use model::{ClonePair, CloneKind, FileRecord, Instance, UnitRecord};
pub use pattern::Pattern;
pub use scan::{ScanOptions, ScanOutcome, ScanProgress, scan, scan_then};
