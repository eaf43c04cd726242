//! Store latency and failure metrics around any [`Store`]: a histogram
//! `edge_store_seconds{op}`, a counter `edge_store_errors_total{op}` of every failure, a
//! counter `edge_store_unavailable_total{op}` of the transient ones (answered 503) and a gauge
//! `edge_store_degraded{kind}` (1 while writes, or reads, fail that way).
//!
//! A transient failure is logged once per episode, not once per request: the first one with
//! its cause, and the end of the episode (the next success) with its length and the number of
//! operations that failed in it. Every other failure is logged each time it happens.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use periodic_wire::{DeltaAck, DeltaBatch, PatternDetail, PatternSummary, QuerySketch, SketchResult, Stats, T2Hash};

use crate::store::{AnalysisEntries, AnalysisPolicy, ContentHash, PatternMeta, QueryOptions, Store, StoreError};

pub struct MeteredStore {
    inner: Arc<dyn Store>,
    /// Writes and reads have separate episodes: a store that serves reads but cannot confirm
    /// writes (too few replicas) would otherwise start a new episode at every write.
    writes: Episode,
    reads: Episode,
}

/// An ongoing stretch of transient failures.
struct Episode {
    kind: &'static str,
    ongoing: AtomicBool,
    started: Mutex<Option<Instant>>,
    failures: AtomicU64,
}

impl Episode {
    fn new(kind: &'static str) -> Episode {
        Episode { kind, ongoing: AtomicBool::new(false), started: Mutex::new(None), failures: AtomicU64::new(0) }
    }

    fn failed(&self, op: &'static str, error: &StoreError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.ongoing.swap(true, Ordering::AcqRel) {
            tracing::debug!(op, %error, "storage still unavailable");
            return;
        }
        if let Ok(mut started) = self.started.lock() {
            *started = Some(Instant::now());
        }
        metrics::gauge!("edge_store_degraded", "kind" => self.kind).set(1.0);
        tracing::warn!(op, %error, "storage unavailable or degraded for {}: answering 503 with Retry-After until it recovers (logged once per episode)", self.kind);
    }

    fn succeeded(&self) {
        // The common case costs one atomic load.
        if !self.ongoing.load(Ordering::Acquire) || !self.ongoing.swap(false, Ordering::AcqRel) {
            return;
        }
        let seconds = self.started.lock().ok().and_then(|mut started| started.take()).map_or(0.0, |started| started.elapsed().as_secs_f64());
        let failures = self.failures.swap(0, Ordering::Relaxed);
        metrics::gauge!("edge_store_degraded", "kind" => self.kind).set(0.0);
        tracing::warn!(seconds, failures, "storage available again for {}", self.kind);
    }
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>) -> MeteredStore {
        MeteredStore { inner, writes: Episode::new("writes"), reads: Episode::new("reads") }
    }

    async fn timed<T>(&self, op: &'static str, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let episode = if matches!(op, "apply_batch" | "set_pattern_meta" | "store_analyses" | "flush") { &self.writes } else { &self.reads };
        let started = Instant::now();
        let result = work.await;
        metrics::histogram!("edge_store_seconds", "op" => op).record(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => episode.succeeded(),
            Err(error) => {
                metrics::counter!("edge_store_errors_total", "op" => op).increment(1);
                if error.is_transient() {
                    metrics::counter!("edge_store_unavailable_total", "op" => op).increment(1);
                    episode.failed(op, error);
                } else {
                    tracing::error!(op, %error, "storage operation failed");
                }
            }
        }
        result
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn apply_batch(&self, tenant: &str, repo: &str, batch: DeltaBatch) -> Result<DeltaAck, StoreError> {
        self.timed("apply_batch", self.inner.apply_batch(tenant, repo, batch)).await
    }
    async fn query(&self, tenant: &str, sketches: &[QuerySketch], options: &QueryOptions) -> Result<Arc<[SketchResult]>, StoreError> {
        self.timed("query", self.inner.query(tenant, sketches, options)).await
    }
    async fn top_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError> {
        self.timed("top_patterns", self.inner.top_patterns(tenant, top)).await
    }
    async fn pattern(&self, tenant: &str, id: T2Hash) -> Result<Option<PatternDetail>, StoreError> {
        self.timed("pattern", self.inner.pattern(tenant, id)).await
    }
    async fn set_pattern_meta(&self, tenant: &str, id: T2Hash, meta: PatternMeta) -> Result<PatternDetail, StoreError> {
        self.timed("set_pattern_meta", self.inner.set_pattern_meta(tenant, id, meta)).await
    }
    async fn named_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError> {
        self.timed("named_patterns", self.inner.named_patterns(tenant, top)).await
    }
    async fn stats(&self, tenant: &str) -> Result<Stats, StoreError> {
        self.timed("stats", self.inner.stats(tenant)).await
    }
    async fn units_stored(&self) -> Result<u64, StoreError> {
        self.timed("units_stored", self.inner.units_stored()).await
    }
    async fn check_ready(&self) -> Result<(), StoreError> {
        self.timed("check_ready", self.inner.check_ready()).await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        self.timed("flush", self.inner.flush()).await
    }

    async fn fingerprints(&self, tenant: &str, repo: &str, keys: &[String]) -> Result<Vec<Option<T2Hash>>, StoreError> {
        self.timed("fingerprints", self.inner.fingerprints(tenant, repo, keys)).await
    }

    async fn repo_keys(&self, tenant: &str, repo: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.timed("repo_keys", self.inner.repo_keys(tenant, repo, limit)).await
    }

    async fn forget_repo_batches(&self, tenant: &str, repo: &str) -> Result<u64, StoreError> {
        self.timed("forget_repo_batches", self.inner.forget_repo_batches(tenant, repo)).await
    }

    async fn analyses(&self, tenant: &str, analysis: &str, hashes: &[ContentHash], policy: &AnalysisPolicy) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.timed("analyses", self.inner.analyses(tenant, analysis, hashes, policy)).await
    }

    async fn store_analyses(&self, tenant: &str, analysis: &str, entries: AnalysisEntries, policy: &AnalysisPolicy) -> Result<u32, StoreError> {
        self.timed("store_analyses", self.inner.store_analyses(tenant, analysis, entries, policy)).await
    }
}
