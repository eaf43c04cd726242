//! A team edge's link to the cloud tier (`--cloud-url`, `--cloud-token-file`): it queues the
//! fingerprints that delta batches change in a durable outbox (`outbox`), drains it in the
//! background in batches (exponential backoff with full jitter, idempotent batch ids), and
//! keeps a TTL cache of "how common is this fingerprint across the organisation?".
//!
//! Nothing here is on a request's critical path to the cloud: marking the outbox is a local
//! SQLite commit, and organisation counts are served only from the cache while misses are
//! fetched in the background. With the cloud down, the team edge answers as before and the
//! outbox grows; it drains when the cloud returns.
//!
//! What leaves the edge: per (team pseudonym, exact structural hash) the team's unit and
//! repository counts. The pseudonym is a hash of the tenant name (see [`team_pseudonym`]).

pub mod outbox;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use moka::future::Cache;
use periodic_wire::cloud::{CommonnessRequest, CommonnessResponse, MAX_COMMONNESS_FINGERPRINTS, StatisticsAck};
use periodic_wire::{DeltaBatch, Organisation, T2Hash};
use reqwest::StatusCode;

use self::outbox::{Counts, Outbox, PendingBatch};
use crate::store::{Store, StoreError};

/// How a team edge reaches the cloud, as parsed from the command line.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// Base URL of the cloud tier, e.g. `https://periodic-cloud.internal:7800`.
    pub url: String,
    /// A cloud token with role `cloud-push`.
    pub token: String,
    pub outbox_path: PathBuf,
    /// Most fingerprints per statistics batch.
    pub batch_size: usize,
    /// Pause between drains when the outbox is empty.
    pub push_interval: Duration,
    /// First retry delay bound; doubles per failure up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long an organisation count is served from the cache.
    pub cache_ttl: Duration,
    /// A CA certificate (PEM) trusted for the cloud's HTTPS besides the web PKI roots, for a
    /// cloud serving a certificate of a private CA (`--cloud-ca-file`).
    pub root_cert_pem: Option<Vec<u8>>,
}

pub struct Uplink {
    config: UplinkConfig,
    outbox: Arc<Outbox>,
    http: reqwest::Client,
    organisation: Cache<u64, Organisation>,
    fetching: Mutex<HashSet<u64>>,
    /// Unix milliseconds before which no lookup is tried (set after a failed lookup, so a
    /// dead cloud costs one connection attempt per few seconds, not one per query).
    lookups_paused_until: AtomicU64,
    warned_lookup: AtomicBool,
}

/// After a failed commonness lookup, lookups pause this long.
const LOOKUP_PAUSE: Duration = Duration::from_secs(5);

/// The team's pseudonym as the cloud sees it: the first 128 bits of a blake3 key derivation
/// from the tenant name. Stable (the same team pushed by several replicas is one team) but
/// not secret: whoever can guess a team name can confirm it.
pub fn team_pseudonym(tenant: &str) -> String {
    let derived = blake3::derive_key("periodic-edge cloud team pseudonym v1", tenant.as_bytes());
    derived[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// A uniformly random duration in `0..=bound` (full jitter).
fn jitter(bound: Duration) -> Duration {
    let mut random = [0u8; 8];
    if getrandom::fill(&mut random).is_err() {
        return bound / 2;
    }
    let fraction = u64::from_le_bytes(random) as f64 / u64::MAX as f64;
    bound.mul_f64(fraction)
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| StoreError::Task(error.to_string()))?
}

/// What one drain step achieved.
enum Step {
    /// A batch was acknowledged (or refused for good); more may be waiting.
    Sent,
    /// Nothing queued.
    Idle,
    /// Try again later, not before `at_least`.
    Retry { at_least: Duration },
}

impl Uplink {
    /// Opens the outbox and builds the HTTP client. Blocking.
    pub fn open(config: UplinkConfig) -> anyhow::Result<Uplink> {
        let outbox = Outbox::open(&config.outbox_path).with_context(|| format!("open the cloud outbox {}", config.outbox_path.display()))?;
        let mut http = reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(15));
        if let Some(pem) = &config.root_cert_pem {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(pem).context("--cloud-ca-file is not a PEM certificate")?);
        }
        let http = http.build().context("build the cloud HTTP client")?;
        let organisation = Cache::builder().max_capacity(200_000).time_to_live(config.cache_ttl).build();
        let config = UplinkConfig { url: config.url.trim_end_matches('/').to_string(), ..config };
        Ok(Uplink { config, outbox: Arc::new(outbox), http, organisation, fetching: Mutex::new(HashSet::new()), lookups_paused_until: AtomicU64::new(0), warned_lookup: AtomicBool::new(false) })
    }

    /// Every fingerprint a batch may change for `tenant`: those it upserts, and those its
    /// upserted and removed keys hold now (which the batch replaces or removes).
    pub async fn fingerprints_touched(&self, store: &dyn Store, tenant: &str, repo: &str, batch: &DeltaBatch) -> Vec<T2Hash> {
        let mut touched: BTreeSet<T2Hash> = batch.upserts.iter().map(|upsert| upsert.t2_hash).collect();
        let keys: Vec<String> = batch.upserts.iter().map(|upsert| upsert.key.clone()).chain(batch.removals.iter().cloned()).collect();
        if !keys.is_empty() {
            match store.fingerprints(tenant, repo, &keys).await {
                Ok(previous) => touched.extend(previous.into_iter().flatten()),
                Err(error) => {
                    // Counts of removed or replaced fingerprints then lag until they change again.
                    metrics::counter!("edge_cloud_lookup_by_key_failures_total").increment(1);
                    if !self.warned_lookup.swap(true, Ordering::Relaxed) {
                        tracing::warn!(%error, "cannot learn the fingerprints a batch removes; the cloud gets only those it adds (logged once)");
                    }
                }
            }
        }
        touched.into_iter().collect()
    }

    /// Queues `fingerprints` of `tenant` for the cloud, durably.
    pub async fn mark(&self, tenant: &str, fingerprints: Vec<T2Hash>) -> Result<(), StoreError> {
        let outbox = self.outbox.clone();
        let tenant = tenant.to_string();
        blocking(move || outbox.mark(&tenant, &fingerprints)).await
    }

    /// Organisation counts of `fingerprints` that are in the cache, keyed by 16-hex id; the
    /// others are fetched in the background for later requests.
    pub async fn organisation_of(self: &Arc<Self>, fingerprints: &[T2Hash]) -> BTreeMap<String, Organisation> {
        let mut known = BTreeMap::new();
        let mut missing = Vec::new();
        for fingerprint in fingerprints {
            match self.organisation.get(&fingerprint.0).await {
                Some(counts) => {
                    known.insert(fingerprint.to_hex(), counts);
                }
                None => missing.push(*fingerprint),
            }
        }
        metrics::counter!("edge_cloud_cache_requests_total", "outcome" => "hit").increment(known.len() as u64);
        metrics::counter!("edge_cloud_cache_requests_total", "outcome" => "miss").increment(missing.len() as u64);
        if !missing.is_empty() && now_millis() >= self.lookups_paused_until.load(Ordering::Relaxed) {
            let claimed: Vec<T2Hash> = match self.fetching.lock() {
                Ok(mut fetching) => missing.into_iter().filter(|fingerprint| fetching.insert(fingerprint.0)).collect(),
                Err(_) => Vec::new(),
            };
            if !claimed.is_empty() {
                let uplink = self.clone();
                tokio::spawn(async move { uplink.fetch_organisation(claimed).await });
            }
        }
        known
    }

    async fn fetch_organisation(&self, fingerprints: Vec<T2Hash>) {
        for chunk in fingerprints.chunks(MAX_COMMONNESS_FINGERPRINTS) {
            let request = CommonnessRequest { fingerprints: chunk.to_vec() };
            let answer = async {
                let response = self.http.post(format!("{}/v1/commonness", self.config.url)).bearer_auth(&self.config.token).json(&request).send().await?;
                response.error_for_status()?.json::<CommonnessResponse>().await
            }
            .await;
            match answer {
                Ok(answer) => {
                    metrics::counter!("edge_cloud_lookups_total", "outcome" => "ok").increment(1);
                    for result in answer.results {
                        self.organisation.insert(result.fingerprint.0, result.organisation).await;
                    }
                }
                Err(error) => {
                    metrics::counter!("edge_cloud_lookups_total", "outcome" => "failed").increment(1);
                    tracing::debug!(%error, "organisation lookup failed; answers go without organisation counts");
                    self.lookups_paused_until.store(now_millis() + LOOKUP_PAUSE.as_millis() as u64, Ordering::Relaxed);
                }
            }
        }
        if let Ok(mut fetching) = self.fetching.lock() {
            for fingerprint in &fingerprints {
                fetching.remove(&fingerprint.0);
            }
        }
    }

    /// Drains the outbox until the process ends. Counts are read through `store`.
    pub fn spawn_drain(self: Arc<Self>, store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                match self.drain_step(store.as_ref()).await {
                    Step::Sent => failures = 0,
                    Step::Idle => {
                        failures = 0;
                        tokio::time::sleep(self.config.push_interval).await;
                    }
                    Step::Retry { at_least } => {
                        failures = failures.saturating_add(1);
                        let bound = self.config.retry_base.saturating_mul(1u32 << (failures - 1).min(20)).min(self.config.retry_max);
                        let delay = jitter(bound).max(at_least);
                        metrics::counter!("edge_cloud_retries_total").increment(1);
                        tracing::debug!(failures, delay_ms = delay.as_millis() as u64, "cloud push retry scheduled");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        })
    }

    async fn drain_step(&self, store: &dyn Store) -> Step {
        let pending = match self.next_batch(store).await {
            Ok(Some(pending)) => pending,
            Ok(None) => return Step::Idle,
            Err(error) => {
                tracing::warn!(%error, "cannot form a statistics batch");
                return Step::Retry { at_least: Duration::ZERO };
            }
        };
        let started = Instant::now();
        let sent = self.http.post(format!("{}/v1/statistics", self.config.url)).bearer_auth(&self.config.token).json(&pending.batch).send().await;
        metrics::histogram!("edge_cloud_push_seconds").record(started.elapsed().as_secs_f64());
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                metrics::counter!("edge_cloud_batches_total", "outcome" => "unreachable").increment(1);
                tracing::debug!(%error, batch = %pending.batch.batch_id, "cloud unreachable; the batch stays queued");
                return Step::Retry { at_least: Duration::ZERO };
            }
        };
        let status = response.status();
        if status.is_success() {
            match response.json::<StatisticsAck>().await {
                Ok(ack) if ack.batch_id == pending.batch.batch_id => {
                    metrics::counter!("edge_cloud_batches_total", "outcome" => if ack.duplicate { "duplicate" } else { "acknowledged" }).increment(1);
                    self.complete(pending).await
                }
                Ok(ack) => {
                    tracing::error!(expected = %pending.batch.batch_id, got = %ack.batch_id, "the cloud acknowledged another batch id");
                    Step::Retry { at_least: Duration::ZERO }
                }
                Err(error) => {
                    tracing::warn!(%error, "unreadable acknowledgement from the cloud");
                    Step::Retry { at_least: Duration::ZERO }
                }
            }
        } else if status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE {
            // Sending the same bytes again cannot succeed; keeping the batch would block the
            // outbox for good. Its fingerprints are sent again when they next change.
            let message = response.text().await.unwrap_or_default();
            metrics::counter!("edge_cloud_batches_total", "outcome" => "rejected").increment(1);
            tracing::error!(%status, %message, batch = %pending.batch.batch_id, "the cloud refused a statistics batch; it is dropped");
            self.complete(pending).await
        } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            metrics::counter!("edge_cloud_batches_total", "outcome" => "unauthorized").increment(1);
            tracing::error!(%status, "the cloud refuses this edge's token (needs role cloud-push); retrying slowly");
            Step::Retry { at_least: self.config.retry_max }
        } else {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| text.parse::<u64>().ok())
                .map_or(Duration::ZERO, Duration::from_secs);
            metrics::counter!("edge_cloud_batches_total", "outcome" => "failed").increment(1);
            tracing::debug!(%status, "the cloud did not take the batch; it stays queued");
            Step::Retry { at_least: retry_after }
        }
    }

    async fn complete(&self, pending: PendingBatch) -> Step {
        let outbox = self.outbox.clone();
        match blocking(move || {
            outbox.complete(&pending)?;
            outbox.backlog()
        })
        .await
        {
            Ok(backlog) => {
                metrics::gauge!("edge_cloud_outbox_fingerprints").set(backlog as f64);
                Step::Sent
            }
            Err(error) => {
                tracing::error!(%error, "cannot update the cloud outbox");
                Step::Retry { at_least: Duration::ZERO }
            }
        }
    }

    /// The pending batch, or a new one formed from the oldest queued fingerprints with their
    /// current counts; `None` when nothing is queued.
    async fn next_batch(&self, store: &dyn Store) -> Result<Option<PendingBatch>, StoreError> {
        let outbox = self.outbox.clone();
        if let Some(pending) = blocking(move || outbox.pending()).await? {
            return Ok(Some(pending));
        }
        let outbox = self.outbox.clone();
        let limit = self.config.batch_size;
        let claims = blocking(move || outbox.claim(limit)).await?;
        if claims.is_empty() {
            return Ok(None);
        }
        let mut counts = Vec::with_capacity(claims.len());
        for claim in &claims {
            let detail = store.pattern(&claim.tenant, claim.fingerprint).await?;
            counts.push(detail.map_or(Counts { units: 0, repos: 0 }, |detail| Counts { units: detail.summary.units, repos: detail.summary.repos }));
        }
        let outbox = self.outbox.clone();
        let pending = blocking(move || outbox.form(claims, &counts, team_pseudonym)).await?;
        Ok(Some(pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_hex_and_hide_the_name() {
        let pseudonym = team_pseudonym("payments");
        assert_eq!(pseudonym, team_pseudonym("payments"));
        assert_ne!(pseudonym, team_pseudonym("billing"));
        assert!(periodic_wire::cloud::is_team_pseudonym(&pseudonym), "{pseudonym}");
        assert!(!pseudonym.contains("payments"));
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let bound = Duration::from_millis(100);
        for _ in 0..100 {
            assert!(jitter(bound) <= bound);
        }
    }
}
