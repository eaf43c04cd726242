//! Store latency and failure metrics around any [`Store`]: a histogram
//! `edge_store_seconds{op}` and a counter `edge_store_errors_total{op}`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use periodic_wire::{DeltaAck, DeltaBatch, PatternDetail, PatternSummary, PatternUpdate, QuerySketch, SketchResult, Stats, T2Hash};

use crate::store::{QueryOptions, Store, StoreError};

pub struct MeteredStore {
    inner: Arc<dyn Store>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>) -> MeteredStore {
        MeteredStore { inner }
    }
}

async fn timed<T>(op: &'static str, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = work.await;
    metrics::histogram!("edge_store_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    if let Err(error) = &result {
        metrics::counter!("edge_store_errors_total", "op" => op).increment(1);
        tracing::error!(op, %error, "storage operation failed");
    }
    result
}

#[async_trait]
impl Store for MeteredStore {
    async fn apply_batch(&self, tenant: &str, repo: &str, batch: DeltaBatch) -> Result<DeltaAck, StoreError> {
        timed("apply_batch", self.inner.apply_batch(tenant, repo, batch)).await
    }
    async fn query(&self, tenant: &str, sketches: &[QuerySketch], options: &QueryOptions) -> Result<Arc<[SketchResult]>, StoreError> {
        timed("query", self.inner.query(tenant, sketches, options)).await
    }
    async fn top_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError> {
        timed("top_patterns", self.inner.top_patterns(tenant, top)).await
    }
    async fn pattern(&self, tenant: &str, id: T2Hash) -> Result<Option<PatternDetail>, StoreError> {
        timed("pattern", self.inner.pattern(tenant, id)).await
    }
    async fn set_pattern_meta(&self, tenant: &str, id: T2Hash, update: PatternUpdate) -> Result<PatternDetail, StoreError> {
        timed("set_pattern_meta", self.inner.set_pattern_meta(tenant, id, update)).await
    }
    async fn stats(&self, tenant: &str) -> Result<Stats, StoreError> {
        timed("stats", self.inner.stats(tenant)).await
    }
    async fn units_stored(&self) -> Result<u64, StoreError> {
        timed("units_stored", self.inner.units_stored()).await
    }
    async fn check_ready(&self) -> Result<(), StoreError> {
        timed("check_ready", self.inner.check_ready()).await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        timed("flush", self.inner.flush()).await
    }

    async fn fingerprints(&self, tenant: &str, repo: &str, keys: &[String]) -> Result<Vec<Option<T2Hash>>, StoreError> {
        timed("fingerprints", self.inner.fingerprints(tenant, repo, keys)).await
    }
}
