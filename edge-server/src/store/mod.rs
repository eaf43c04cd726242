//! The storage seam of the edge server: one narrow async trait, [`Store`], used everywhere as
//! `Arc<dyn Store>`. Backends implement it (`embedded`: SQLite shards plus an in-memory band
//! index; `redis`: a shared Redis Cluster, for stateless replicas); wrappers compose around it
//! (`cached`: a moka TTL cache, `metered`: store latency metrics) instead of growing flags.
//! `conformance` is the behaviour every backend must show.
//!
//! Every method takes the caller's tenant and may only see or change that tenant's rows.
//! A failing backend returns `Err`; an empty `Ok` always means "nothing there".

pub mod analyses;
pub mod cached;
pub mod conformance;
pub mod embedded;
pub mod family;
pub mod metered;
pub mod redis;
pub mod repo_delete;

use std::sync::Arc;

use async_trait::async_trait;
use periodic_wire::{DeltaAck, DeltaBatch, PatternDetail, PatternSummary, QuerySketch, SketchResult, Stats, T2Hash};
use serde::{Deserialize, Serialize};

pub use self::analyses::{AnalysisEntries, AnalysisPolicy, ContentHash};

/// Why a storage operation failed. Every variant becomes a 5xx at the HTTP boundary: 503
/// with `Retry-After` when the store is (for now) unreachable or cannot confirm a write
/// durably ([`StoreError::is_transient`]), 500 only for a fault of this server or its data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("storage task failed: {0}")]
    Task(String),
    #[error("corrupt stored row: {0}")]
    Corrupt(String),
    /// The store does not answer, or answers too slowly; the same request may succeed later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store took the write but cannot confirm it as durably as configured (e.g. a shard
    /// has fewer replicas than `--redis-wait-replicas` right after a failover). Nothing is
    /// acknowledged; the retry of the same batch converges.
    #[error("storage degraded: {0}")]
    Unconfirmed(String),
}

impl StoreError {
    /// Whether the failure is a condition of the store that passes (unreachable, busy, full,
    /// under-replicated) rather than a fault of this server or of stored data.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Unconfirmed(_) => true,
            StoreError::Sqlite(error) => matches!(
                error.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::CannotOpen
                        | rusqlite::ErrorCode::ReadOnly
                        | rusqlite::ErrorCode::OutOfMemory
                )
            ),
            StoreError::Task(_) | StoreError::Corrupt(_) => false,
        }
    }
}

/// Resolved options of a similarity query (defaults already applied by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOptions {
    pub exclude_repo: Option<String>,
    pub min_similarity: f32,
    pub top_k: usize,
}

/// A pattern's team-shared name and note as stored, with who set them and when (both absent
/// in entries written before names were attributed). Serialized as is by the Redis backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternMeta {
    pub name: Option<String>,
    pub note: Option<String>,
    /// Id of the token that wrote it.
    #[serde(default)]
    pub named_by: Option<String>,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub named_at: Option<u64>,
}

/// Most occurrences listed in a pattern's detail.
pub const MAX_PATTERN_OCCURRENCES: usize = 100;

/// The operations the HTTP API needs from storage, and nothing more.
#[async_trait]
pub trait Store: Send + Sync {
    /// Applies one batch of upserts and removals for `repo`, durably, before returning.
    /// A batch id already applied for this tenant and repo is not applied again: the first
    /// acknowledgement is returned with `duplicate = true`.
    async fn apply_batch(&self, tenant: &str, repo: &str, batch: DeltaBatch) -> Result<DeltaAck, StoreError>;

    /// Similar units of the tenant for each sketch, best first, one result per sketch in order.
    /// Shared, so that a cached answer is served without copying it.
    async fn query(&self, tenant: &str, sketches: &[QuerySketch], options: &QueryOptions) -> Result<Arc<[SketchResult]>, StoreError>;

    /// The tenant's patterns (the shapes each component of the near-miss family links joins,
    /// see [`family`], with at least two units), most widespread first.
    async fn top_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError>;

    /// The pattern holding shape `id` (any shape of the component, not only its id) with its
    /// occurrences; `None` when it has neither units nor a name.
    async fn pattern(&self, tenant: &str, id: T2Hash) -> Result<Option<PatternDetail>, StoreError>;

    /// Stores the team-shared name and note of the pattern holding shape `id`, under that
    /// pattern's id (replacing the previous ones whole), and returns its detail.
    async fn set_pattern_meta(&self, tenant: &str, id: T2Hash, meta: PatternMeta) -> Result<PatternDetail, StoreError>;

    /// The tenant's patterns that have a team name, whatever their unit count, most
    /// recently named first: what a client needs to show teammates' names.
    async fn named_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError>;

    /// Counts for the tenant.
    async fn stats(&self, tenant: &str) -> Result<Stats, StoreError>;

    /// Units stored across all tenants (for the metrics gauge).
    async fn units_stored(&self) -> Result<u64, StoreError>;

    /// `Ok` only when every part of the backend answers.
    async fn check_ready(&self) -> Result<(), StoreError>;

    /// Makes everything acknowledged so far durable and compact (called at shutdown).
    async fn flush(&self) -> Result<(), StoreError>;
    /// The stored `t2_hash` of each of `keys` in `repo` (`None` for a key not stored), in
    /// order. The cloud uplink uses it to learn which fingerprints a batch's removals and
    /// replacements take away. Backends that cannot answer keep this default, and the uplink
    /// then tracks only the fingerprints a batch adds.
    async fn fingerprints(&self, tenant: &str, repo: &str, keys: &[String]) -> Result<Vec<Option<T2Hash>>, StoreError> {
        let _ = (tenant, repo, keys);
        Err(StoreError::Unavailable("this backend cannot look units up by key".into()))
    }

    /// Up to `limit` keys of units stored in `repo` (any `limit` of them, in no set order;
    /// empty when the repository holds none). A repository is deleted by listing some keys,
    /// removing them with [`Store::apply_batch`] (the path delta removals take), and listing
    /// again, so each step is bounded however large the repository is.
    async fn repo_keys(&self, tenant: &str, repo: &str, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Drops the record of every batch id applied to `repo` (the last step of deleting a
    /// repository, so that a later push of it starts clean, even with batch ids used before).
    /// Returns how many records were dropped, when the backend can tell (else 0). Done in
    /// bounded steps, durably as a batch is.
    async fn forget_repo_batches(&self, tenant: &str, repo: &str) -> Result<u64, StoreError>;

    /// The analysis cache: the tenant's entry stored under `analysis` for each content hash
    /// (`None` for a miss), in order. A hit counts as a use (it moves to the back of the
    /// eviction order and its TTL starts again). Entries of another tenant or another
    /// `analysis` key are misses; an entry unused for `policy.ttl` is a miss.
    async fn analyses(&self, tenant: &str, analysis: &str, hashes: &[ContentHash], policy: &AnalysisPolicy) -> Result<Vec<Option<Vec<u8>>>, StoreError>;

    /// Keeps `entries` (content hash, opaque bytes) under `analysis` for the tenant, then
    /// evicts the tenant's least recently used entries while it holds more than
    /// `policy.budget_bytes` (see [`analyses::charged_bytes`]). An entry already held is only
    /// refreshed, never replaced. Returns how many entries were stored or refreshed (an entry
    /// larger than the whole budget is not stored).
    async fn store_analyses(&self, tenant: &str, analysis: &str, entries: AnalysisEntries, policy: &AnalysisPolicy) -> Result<u32, StoreError>;
}
