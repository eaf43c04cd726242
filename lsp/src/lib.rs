//! The `periodic` command: the command-line scan for people and CI, and (next) the
//! language server. This crate turns engine results into reports and protocol answers;
//! all analysis lives in `periodic-core`.

pub mod answers;
pub mod cli;
pub mod commands;
pub mod edge_sync;
pub mod report;
pub mod server;
