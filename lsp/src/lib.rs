//! The `periodic` command: the command-line scan for people and CI, the language server
//! for editors and the MCP server for coding agents — three front ends on one answers
//! layer (`answers`). This crate turns engine results into reports and protocol answers;
//! all analysis lives in `periodic-core`.

pub mod answers;
pub mod cli;
pub mod commands;
pub mod edge_sync;
pub mod mcp;
pub mod report;
pub mod server;
pub mod trend;
