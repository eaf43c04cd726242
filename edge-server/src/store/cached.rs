//! A read cache in front of any [`Store`]: moka TTL caches for similarity queries and for the
//! pattern table (top lists and single patterns). Writes invalidate by bumping the tenant's
//! generation, which is part of every cache key, so a cached answer is never served after a
//! write through this process; entries of old generations simply age out. Across several
//! replicas on one shared backend, answers may be stale by at most the TTL.
//!
//! A query answer is only cached when computing it took at least [`QUERY_CACHE_MIN_COST`]:
//! the embedded index answers a one-sketch query in tens of microseconds, less than a cache
//! insertion (with eviction) costs, so caching such answers would only slow the server down
//! (measured: about a quarter of its query throughput). Redis Cluster answers and large
//! multi-sketch queries cost more and are cached.
//!
//! The analysis cache passes through uncached: its entries are large, each hit must refresh
//! the entry's last use in the backend, and the backend is itself the cache.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use periodic_wire::{DeltaAck, DeltaBatch, PatternDetail, PatternSummary, QuerySketch, SketchResult, Stats, T2Hash};

use crate::store::{AnalysisEntries, AnalysisPolicy, ContentHash, PatternMeta, QueryOptions, Store, StoreError};

/// Default TTL in front of a backend only this process writes (the embedded store): every
/// write goes through this cache and invalidates it, so the TTL bounds nothing but memory.
pub const PRIVATE_BACKEND_TTL: Duration = Duration::from_secs(30);
/// Default TTL in front of a backend several replicas share (Redis Cluster): a write through
/// another replica is not seen here, so the TTL is how stale an answer may be.
pub const SHARED_BACKEND_TTL: Duration = Duration::from_secs(2);

/// Query answers computed faster than this are not worth caching.
pub const QUERY_CACHE_MIN_COST: Duration = Duration::from_micros(250);

/// The cache TTL when `--cache-ttl` is not given.
pub fn default_ttl(backend_is_shared: bool) -> Duration {
    if backend_is_shared { SHARED_BACKEND_TTL } else { PRIVATE_BACKEND_TTL }
}

pub struct CachedStore {
    inner: Arc<dyn Store>,
    generations: RwLock<HashMap<String, u64>>,
    queries: Cache<[u8; 32], Arc<[SketchResult]>>,
    top_patterns: Cache<[u8; 32], Arc<Vec<PatternSummary>>>,
    patterns: Cache<[u8; 32], Arc<Option<PatternDetail>>>,
}

impl CachedStore {
    /// Each of the three caches holds at most `bytes` (by [`answer_bytes`] and the like: an
    /// entry count would not bound memory, as one answer may hold 1 or 2,560 matches).
    pub fn new(inner: Arc<dyn Store>, bytes: u64, ttl: Duration) -> CachedStore {
        CachedStore {
            inner,
            generations: RwLock::new(HashMap::new()),
            queries: Cache::builder().max_capacity(bytes).weigher(|_, answer: &Arc<[SketchResult]>| answer_bytes(answer)).time_to_live(ttl).build(),
            top_patterns: Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, patterns: &Arc<Vec<PatternSummary>>| weight(patterns.iter().map(summary_bytes).sum()))
                .time_to_live(ttl)
                .build(),
            patterns: Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, detail: &Arc<Option<PatternDetail>>| weight(detail.as_ref().as_ref().map_or(0, detail_bytes)))
                .time_to_live(ttl)
                .build(),
        }
    }

    fn generation(&self, tenant: &str) -> u64 {
        self.generations.read().map(|map| map.get(tenant).copied().unwrap_or(0)).unwrap_or(0)
    }

    fn invalidate(&self, tenant: &str) {
        if let Ok(mut map) = self.generations.write() {
            *map.entry(tenant.to_string()).or_insert(0) += 1;
        }
    }

    fn key(&self, tenant: &str, kind: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        for part in [tenant.as_bytes(), &self.generation(tenant).to_le_bytes(), kind.as_bytes()].into_iter().chain(parts.iter().copied()) {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }
}

/// Bytes of a cache entry: its key and bookkeeping, plus what the value holds.
fn weight(value_bytes: usize) -> u32 {
    u32::try_from(value_bytes + 128).unwrap_or(u32::MAX)
}

/// Estimated heap size of a string (the allocator rounds up and keeps a header).
fn text_bytes(text: &str) -> usize {
    text.len().next_multiple_of(16) + 16
}

fn location_bytes(location: &Option<periodic_wire::Location>) -> usize {
    location.as_ref().map_or(0, |location| text_bytes(&location.path) + text_bytes(&location.name))
}

fn answer_bytes(answer: &[SketchResult]) -> u32 {
    let matches = |result: &SketchResult| -> usize {
        result
            .matches
            .iter()
            .map(|found| {
                std::mem::size_of_val(found)
                    + text_bytes(&found.repo)
                    + text_bytes(&found.key)
                    + text_bytes(&found.pattern_id)
                    + text_bytes(&found.language)
                    + location_bytes(&found.location)
            })
            .sum()
    };
    weight(answer.iter().map(|result| std::mem::size_of_val(result) + text_bytes(&result.id) + matches(result)).sum())
}

fn summary_bytes(summary: &PatternSummary) -> usize {
    std::mem::size_of_val(summary)
        + text_bytes(&summary.id)
        + text_bytes(&summary.language)
        + summary.name.as_deref().map_or(0, text_bytes)
        + summary.note.as_deref().map_or(0, text_bytes)
}

fn detail_bytes(detail: &PatternDetail) -> usize {
    let occurrence_bytes = |occurrence: &periodic_wire::PatternOccurrence| {
        std::mem::size_of_val(occurrence) + text_bytes(&occurrence.repo) + text_bytes(&occurrence.key) + location_bytes(&occurrence.location)
    };
    summary_bytes(&detail.summary) + detail.occurrences.iter().map(occurrence_bytes).sum::<usize>()
}

fn record(kind: &'static str, hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    metrics::counter!("edge_cache_requests_total", "cache" => kind, "outcome" => outcome).increment(1);
}

#[async_trait]
impl Store for CachedStore {
    async fn apply_batch(&self, tenant: &str, repo: &str, batch: DeltaBatch) -> Result<DeltaAck, StoreError> {
        let result = self.inner.apply_batch(tenant, repo, batch).await;
        // Also on failure: part of the batch may have been applied.
        self.invalidate(tenant);
        result
    }

    async fn query(&self, tenant: &str, sketches: &[QuerySketch], options: &QueryOptions) -> Result<Arc<[SketchResult]>, StoreError> {
        let mut encoded = Vec::with_capacity(sketches.len() * 280 + 64);
        for sketch in sketches {
            encoded.extend_from_slice(&(sketch.id.len() as u64).to_le_bytes());
            encoded.extend_from_slice(sketch.id.as_bytes());
            encoded.extend_from_slice(&sketch.t2_hash.0.to_le_bytes());
            for value in sketch.sketch.0 {
                encoded.extend_from_slice(&value.to_le_bytes());
            }
        }
        let exclude = options.exclude_repo.as_deref().unwrap_or("\u{0}none");
        let key = self.key(tenant, "query", &[&encoded, exclude.as_bytes(), &options.min_similarity.to_le_bytes(), &(options.top_k as u64).to_le_bytes()]);
        if let Some(found) = self.queries.get(&key).await {
            record("query", true);
            return Ok(found);
        }
        record("query", false);
        let started = std::time::Instant::now();
        let results = self.inner.query(tenant, sketches, options).await?;
        if started.elapsed() >= QUERY_CACHE_MIN_COST {
            self.queries.insert(key, results.clone()).await;
        }
        Ok(results)
    }

    async fn top_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError> {
        let key = self.key(tenant, "top", &[&(top as u64).to_le_bytes()]);
        if let Some(found) = self.top_patterns.get(&key).await {
            record("patterns", true);
            return Ok(found.as_ref().clone());
        }
        record("patterns", false);
        let patterns = self.inner.top_patterns(tenant, top).await?;
        self.top_patterns.insert(key, Arc::new(patterns.clone())).await;
        Ok(patterns)
    }

    async fn pattern(&self, tenant: &str, id: T2Hash) -> Result<Option<PatternDetail>, StoreError> {
        let key = self.key(tenant, "pattern", &[&id.0.to_le_bytes()]);
        if let Some(found) = self.patterns.get(&key).await {
            record("pattern", true);
            return Ok(found.as_ref().clone());
        }
        record("pattern", false);
        let detail = self.inner.pattern(tenant, id).await?;
        self.patterns.insert(key, Arc::new(detail.clone())).await;
        Ok(detail)
    }

    async fn set_pattern_meta(&self, tenant: &str, id: T2Hash, meta: PatternMeta) -> Result<PatternDetail, StoreError> {
        let result = self.inner.set_pattern_meta(tenant, id, meta).await;
        self.invalidate(tenant);
        result
    }

    async fn named_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError> {
        // Not cached: clients poll it to see a teammate's new name, which must not wait
        // for a cache entry to expire on another replica.
        self.inner.named_patterns(tenant, top).await
    }

    async fn stats(&self, tenant: &str) -> Result<Stats, StoreError> {
        self.inner.stats(tenant).await
    }

    async fn units_stored(&self) -> Result<u64, StoreError> {
        self.inner.units_stored().await
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        self.inner.check_ready().await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }

    async fn fingerprints(&self, tenant: &str, repo: &str, keys: &[String]) -> Result<Vec<Option<T2Hash>>, StoreError> {
        self.inner.fingerprints(tenant, repo, keys).await
    }

    async fn repo_keys(&self, tenant: &str, repo: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.inner.repo_keys(tenant, repo, limit).await
    }

    async fn forget_repo_batches(&self, tenant: &str, repo: &str) -> Result<u64, StoreError> {
        // No cached answer depends on batch ids: the units went through `apply_batch`.
        self.inner.forget_repo_batches(tenant, repo).await
    }

    async fn analyses(&self, tenant: &str, analysis: &str, hashes: &[ContentHash], policy: &AnalysisPolicy) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.inner.analyses(tenant, analysis, hashes, policy).await
    }

    async fn store_analyses(&self, tenant: &str, analysis: &str, entries: AnalysisEntries, policy: &AnalysisPolicy) -> Result<u32, StoreError> {
        self.inner.store_analyses(tenant, analysis, entries, policy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;
    use crate::store::embedded::db::SyncMode;
    use crate::store::embedded::{EmbeddedOptions, EmbeddedStore};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_store_passes_the_conformance_suite() {
        // The suite writes and then reads back at every step, so a cache that served a
        // stale answer after a write would fail it.
        let dir = tempfile::tempdir().expect("tempdir");
        let embedded = EmbeddedStore::open(dir.path(), &EmbeddedOptions { shards: 2, sync: SyncMode::Normal }).expect("open");
        let store: Arc<dyn Store> = Arc::new(CachedStore::new(Arc::new(embedded), 1 << 20, Duration::from_secs(60)));
        conformance::run_all(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_query_cache_is_bounded_by_bytes_not_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let embedded = EmbeddedStore::open(dir.path(), &EmbeddedOptions { shards: 1, sync: SyncMode::Normal }).expect("open");
        const BYTES: u64 = 256 << 10;
        let store = CachedStore::new(Arc::new(embedded), BYTES, Duration::from_secs(60));
        let found = periodic_wire::UnitMatch {
            repo: "billing".into(),
            key: "k".repeat(64),
            similarity: 0.9,
            exact: false,
            pattern_id: "00000000000000ff".into(),
            language: "rust".into(),
            tokens: 60,
            lines: 9,
            location: Some(periodic_wire::Location { path: "src/money/ledger.rs".into(), name: "post".into(), start_line: 1, end_line: 9 }),
        };
        // 16 sketches of 10 matches each: one answer is tens of kilobytes.
        let answer: Arc<[SketchResult]> = (0..16).map(|n| SketchResult { id: n.to_string(), matches: vec![found.clone(); 10] }).collect::<Vec<_>>().into();
        let one = u64::from(answer_bytes(&answer));
        assert!(one > 16 * 10 * 200, "an answer of 160 matches weighs {one} bytes");
        for number in 0..200u64 {
            store.queries.insert(store.key("team", "query", &[&number.to_le_bytes()]), answer.clone()).await;
        }
        store.queries.run_pending_tasks().await;
        assert!(store.queries.weighted_size() <= BYTES, "{} bytes held", store.queries.weighted_size());
        assert!(store.queries.entry_count() <= BYTES / one, "{} answers held", store.queries.entry_count());
        assert!(store.queries.entry_count() > 0);
    }
}
