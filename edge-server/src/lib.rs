//! `periodic-edge`: Periodic's team edge server. It stores the fingerprints that developers'
//! language servers send, answers "what in the team looks like this?", and keeps the team's
//! periodic table of recurring code shapes. This library holds everything; `main.rs` only
//! parses the command line.
//!
//! Layout: `api` (HTTP, the only module that knows axum), `audit` (the audit log of
//! administrative and write actions), `store` (the storage trait, its
//! backends, wrappers and conformance suite), `tokens` (API tokens), `clock` (RFC 3339 times
//! and durations as operators write them), `migrate` (embedded data into a Redis Cluster),
//! `server` (binding, TLS,
//! signals, shutdown), `cloud` (the organisation-wide tier, `--role cloud`), `uplink` (a team
//! edge's outbox to the cloud and its cache of organisation counts).

pub mod api;
pub mod audit;
pub mod clock;
pub mod migrate;
pub mod cloud;
pub mod server;
pub mod store;
pub mod tokens;
pub mod uplink;
