//! The versioned (v1) JSON wire format between a language server's sync client and the team
//! edge server: request and response bodies, the fingerprint of a unit as it travels, the
//! MinHash/LSH parameters both sides must agree on, and the few pure functions (band keys,
//! sketch similarity) whose results must be identical on both sides.
//!
//! `cloud` holds the (also v1) format between team edges and the organisation-wide cloud
//! tier; it carries fingerprint statistics only. `time` turns Unix times into the UTC
//! dates both sides show.
//!
//! This crate depends on serde (base64 for the compact sketch, blake3 for unit keys) and imports neither the language server nor the edge
//! server, so either side can change its internals without touching the other. Any change
//! that is not backwards compatible gets a new module (`v2`) and a new URL prefix.

pub mod cloud;
pub mod time;
pub mod v1;

pub use v1::*;
