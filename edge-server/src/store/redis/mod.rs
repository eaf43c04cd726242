//! The Redis Cluster backend: the second [`Store`], so that any number of stateless
//! `periodic-edge` replicas can serve one team (or many) from a shared Redis Cluster. Key
//! layout and record encoding are in `layout`; the atomic per-partition update is `apply.lua`.
//!
//! Writing a batch: take the repository's write lock (a `SET NX PX` key, so two replicas never
//! interleave batches of one repository), return the first acknowledgement if the batch id is
//! already recorded, read the keys' current members from the repository's locator, run one
//! Lua script per touched partition (records, group sets and pattern counts change together
//! there), update the band buckets and the locator, then `WAIT` until every master has a
//! replica holding all of it, and only then record the batch id (and `WAIT` again). A batch
//! interrupted anywhere is not acknowledged; its retry re-applies it, which converges because
//! every step is an upsert or removal by key. A band bucket may keep a member that is no longer
//! stored or has moved (after a crash between steps); queries re-check every candidate against
//! its record, so such leftovers cost a lookup and never change an answer.
//!
//! Reading: a sketch's 16 band buckets and its T2 group set give candidate members; their
//! records are fetched with one `HMGET` per partition and scored exactly as the embedded
//! backend scores them.

pub mod layout;
mod lock;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use periodic_wire::{
    BANDS, DeltaAck, DeltaBatch, PatternDetail, PatternOccurrence, PatternSummary, PatternUpdate, QuerySketch, SketchResult, Stats, T2Hash, UnitMatch,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use serde::{Deserialize, Serialize};

use self::lock::RepoLock;
use self::layout::{Keys, Member, PARTITIONS, Record, UNITS_GAUGE_KEY, decode, encode, member, member_from, member_t2, partition_of};
use crate::store::embedded::index::MAX_LANE_WALK;
use crate::store::{MAX_PATTERN_OCCURRENCES, QueryOptions, Store, StoreError};

/// How to reach and use the cluster.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Seed nodes as `host:port`; the rest of the cluster is discovered from them.
    pub nodes: Vec<String>,
    pub password: Option<String>,
    /// Connect with TLS (`rediss://`), verifying certificates against the system roots.
    pub tls: bool,
    /// Replicas that must confirm a write before a batch is acknowledged (`WAIT`).
    pub wait_replicas: u32,
    /// How long `WAIT` may block.
    pub wait_timeout: Duration,
    /// Per-command response timeout; retries and redirections stay within twice this.
    pub response_timeout: Duration,
}

impl RedisOptions {
    /// Parses `redis-cluster://host:port,host:port,...` into seed nodes with default settings.
    pub fn from_url(url: &str) -> Result<RedisOptions, StoreError> {
        let rest = url
            .strip_prefix("redis-cluster://")
            .ok_or_else(|| StoreError::Unavailable(format!("{url:?} is not a redis-cluster://host:port,... address")))?;
        let nodes: Vec<String> = rest.trim_end_matches('/').split(',').map(str::trim).filter(|node| !node.is_empty()).map(str::to_string).collect();
        if nodes.is_empty() || nodes.iter().any(|node| node.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_err())) {
            return Err(StoreError::Unavailable(format!("{url:?}: every node must be host:port")));
        }
        Ok(RedisOptions {
            nodes,
            password: None,
            tls: false,
            wait_replicas: 1,
            wait_timeout: Duration::from_millis(1000),
            response_timeout: Duration::from_millis(2000),
        })
    }
}

/// Commands in flight at once for the independent single-key commands of one request.
const CONCURRENT_COMMANDS: usize = 256;
/// Operations per Lua call: bounds how long one script blocks its master.
const OPS_PER_SCRIPT: usize = 400;
/// Fields per HMGET.
const FIELDS_PER_READ: usize = 1000;
/// How often the watchdog checks that every master answers.
const WATCHDOG_INTERVAL: Duration = Duration::from_millis(500);

pub struct RedisStore {
    client: ClusterClient,
    /// Replaced by the watchdog when the cluster stops answering through it.
    connection: Arc<RwLock<ClusterConnection>>,
    apply_script: redis::Script,
    options: RedisOptions,
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {error}"))
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct PatternMeta {
    name: Option<String>,
    note: Option<String>,
}

/// One operation of the partition script.
enum Op {
    Upsert { member: Member, record: Vec<u8>, info: String },
    Remove { member: Member, user_removal: bool },
}

fn group_info(tokens: u32, language: &str) -> String {
    format!("{tokens}\t{language}")
}

fn parse_group_info(info: Option<&[u8]>) -> (u32, String) {
    let text = info.map(String::from_utf8_lossy).unwrap_or_default();
    let (tokens, language) = text.split_once('\t').unwrap_or(("0", ""));
    (tokens.parse().unwrap_or(0), language.to_string())
}

impl RedisStore {
    /// Connects to the cluster (bounded by the connection timeout) and checks it answers.
    pub async fn connect(options: RedisOptions) -> Result<RedisStore, StoreError> {
        let scheme = if options.tls { "rediss" } else { "redis" };
        if options.tls {
            // One crypto provider for the process; a second install attempt is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let urls: Vec<String> = options.nodes.iter().map(|node| format!("{scheme}://{node}")).collect();
        let mut builder = ClusterClient::builder(urls)
            .connection_timeout(Duration::from_millis(1000))
            .response_timeout(options.response_timeout.max(options.wait_timeout + Duration::from_millis(500)))
            .overall_response_timeout(Some(options.response_timeout * 2 + options.wait_timeout))
            .retries(4)
            .min_retry_wait(50)
            .max_retry_wait(500);
        if let Some(password) = &options.password {
            builder = builder.password(password);
        }
        let client = builder.build().map_err(unavailable)?;
        let connection = client.get_async_connection().await.map_err(unavailable)?;
        let store = RedisStore {
            client,
            connection: Arc::new(RwLock::new(connection)),
            apply_script: redis::Script::new(include_str!("apply.lua")),
            options,
        };
        store.check_ready().await?;
        Ok(store)
    }

    /// Starts the watchdog (for as long as the store lives): every half second it pings every
    /// master; when that fails, it opens a new cluster connection, which reads the topology
    /// afresh from the seed nodes. The client's own redirection handling does not always
    /// notice a failed-over master on its own; this bounds how long a stale view can last.
    pub fn watch(self: &Arc<Self>) {
        let store: Weak<RedisStore> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCHDOG_INTERVAL).await;
                let Some(store) = store.upgrade() else { return };
                let pinged = tokio::time::timeout(WATCHDOG_INTERVAL * 2, store.check_ready()).await;
                if matches!(pinged, Ok(Ok(()))) {
                    continue;
                }
                match tokio::time::timeout(WATCHDOG_INTERVAL * 4, store.client.get_async_connection()).await {
                    Ok(Ok(connection)) => {
                        if let Ok(mut slot) = store.connection.write() {
                            *slot = connection;
                        }
                        tracing::warn!("the Redis Cluster stopped answering; reconnected and re-read its topology");
                    }
                    Ok(Err(error)) => tracing::warn!(%error, "the Redis Cluster does not answer; retrying"),
                    Err(_) => tracing::warn!("connecting to the Redis Cluster timed out; retrying"),
                }
            }
        });
    }

    fn conn(&self) -> ClusterConnection {
        match self.connection.read() {
            Ok(connection) => connection.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Blocks until every master has `wait_replicas` replicas holding this connection's writes.
    async fn wait_for_replicas(&self) -> Result<(), StoreError> {
        if self.options.wait_replicas == 0 {
            return Ok(());
        }
        let confirmed: i64 = redis::cmd("WAIT")
            .arg(self.options.wait_replicas)
            .arg(self.options.wait_timeout.as_millis() as u64)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        if confirmed < i64::from(self.options.wait_replicas) {
            return Err(StoreError::Unconfirmed(format!(
                "a shard confirmed the write on {confirmed} of {} replicas within {:?}; not acknowledged",
                self.options.wait_replicas, self.options.wait_timeout
            )));
        }
        Ok(())
    }

    async fn apply_locked(&self, keys: &Keys, tenant: &str, repo: &str, batch: DeltaBatch, lock: &RepoLock) -> Result<DeltaAck, StoreError> {
        let mut conn = self.conn();
        let previous: Option<String> = redis::cmd("HGET").arg(keys.batches(repo)).arg(&batch.batch_id).query_async(&mut conn).await.map_err(unavailable)?;
        if let Some(previous) = previous {
            // Recorded only after its data was confirmed; confirm the record itself too.
            self.wait_for_replicas().await?;
            let (upserted, removed) = previous.split_once(' ').unwrap_or(("0", "0"));
            return Ok(DeltaAck { batch_id: batch.batch_id, duplicate: true, upserted: upserted.parse().unwrap_or(0), removed: removed.parse().unwrap_or(0) });
        }

        // Current member of every key the batch touches.
        let mut touched_keys: Vec<&str> = batch.upserts.iter().map(|u| u.key.as_str()).chain(batch.removals.iter().map(String::as_str)).collect();
        touched_keys.sort_unstable();
        touched_keys.dedup();
        let mut current: HashMap<String, Option<Member>> = HashMap::new();
        for chunk in touched_keys.chunks(FIELDS_PER_READ) {
            let found: Vec<Option<Vec<u8>>> = redis::cmd("HMGET").arg(keys.locator(repo)).arg(chunk).query_async(&mut conn).await.map_err(unavailable)?;
            for (key, member_bytes) in chunk.iter().zip(found) {
                current.insert(key.to_string(), member_bytes.map(|bytes| member_from(&bytes)).transpose()?);
            }
        }
        let initially: HashMap<String, Option<Member>> = current.clone();

        // Upserts first, then removals, as the embedded backend applies them.
        let mut ops: BTreeMap<u64, Vec<Op>> = BTreeMap::new();
        let mut sketches: HashMap<Member, periodic_wire::Sketch> = HashMap::new();
        let upserted = batch.upserts.len() as u32;
        for upsert in batch.upserts {
            let new_member = member(tenant, repo, &upsert.key, upsert.t2_hash);
            let slot = current.entry(upsert.key.clone()).or_insert(None);
            if let Some(old) = *slot
                && old != new_member
            {
                ops.entry(partition_of(member_t2(&old))).or_default().push(Op::Remove { member: old, user_removal: false });
            }
            *slot = Some(new_member);
            let info = group_info(upsert.tokens, &upsert.language);
            sketches.insert(new_member, upsert.sketch.clone());
            let record = encode(&Record {
                t2_hash: upsert.t2_hash,
                repo: repo.to_string(),
                key: upsert.key,
                language: upsert.language,
                tokens: upsert.tokens,
                lines: upsert.lines,
                nesting: upsert.nesting,
                sketch: upsert.sketch,
                location: upsert.location,
            });
            ops.entry(partition_of(upsert.t2_hash)).or_default().push(Op::Upsert { member: new_member, record, info });
        }
        for key in &batch.removals {
            if let Some(old) = current.get_mut(key.as_str()).and_then(Option::take) {
                ops.entry(partition_of(member_t2(&old))).or_default().push(Op::Remove { member: old, user_removal: true });
            }
        }

        // One script call per partition chunk; chunks of one partition in order.
        let partition_results: Vec<(i64, u32, Vec<Member>, Vec<Record>)> = stream::iter(ops)
            .map(|(partition, partition_ops)| self.apply_partition(keys, partition, partition_ops))
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let mut unit_delta = 0i64;
        let mut removed = 0u32;
        let mut removed_records = Vec::new();
        for (delta, user_removed, removed_members, records) in partition_results {
            unit_delta += delta;
            removed += user_removed;
            removed_records.extend(removed_members.into_iter().zip(records));
        }

        // Band buckets: drop removed members, then add every member the batch leaves stored.
        let final_members: HashSet<Member> = current.values().flatten().copied().collect();
        let mut band_commands: Vec<redis::Cmd> = Vec::new();
        for (old_member, record) in &removed_records {
            if final_members.contains(old_member) {
                continue;
            }
            for (band, value) in record.sketch.band_keys().into_iter().enumerate() {
                band_commands.push(redis::cmd("SREM").arg(keys.band(band, value)).arg(&old_member[..]).to_owned());
            }
        }
        for new_member in &final_members {
            if let Some(sketch) = sketches.get(new_member) {
                for (band, value) in sketch.band_keys().into_iter().enumerate() {
                    band_commands.push(redis::cmd("SADD").arg(keys.band(band, value)).arg(&new_member[..]).to_owned());
                }
            }
        }
        self.run_all(band_commands).await?;

        // Locator, repository set and gauge.
        let mut locator = redis::pipe();
        for (key, now) in &current {
            match now {
                Some(now) if initially.get(key) != Some(&Some(*now)) => {
                    locator.cmd("HSET").arg(keys.locator(repo)).arg(key).arg(&now[..]).ignore();
                }
                None if initially.get(key).is_some_and(Option::is_some) => {
                    locator.cmd("HDEL").arg(keys.locator(repo)).arg(key).ignore();
                }
                _ => {}
            }
        }
        locator.cmd("HLEN").arg(keys.locator(repo));
        let (repo_units,): (u64,) = locator.query_async(&mut conn).await.map_err(unavailable)?;
        let repo_set_change = if repo_units == 0 { "SREM" } else { "SADD" };
        let () = redis::cmd(repo_set_change).arg(keys.repos()).arg(repo).query_async::<i64>(&mut conn).await.map(|_| ()).map_err(unavailable)?;
        if unit_delta != 0 {
            let () = redis::cmd("INCRBY").arg(UNITS_GAUGE_KEY).arg(unit_delta).query_async::<i64>(&mut conn).await.map(|_| ()).map_err(unavailable)?;
        }

        // Acknowledge only what a replica holds: data first, then the batch id. A batch that
        // lost its lock on the way may have interleaved with another writer's: its retry,
        // not this attempt, records the id.
        self.wait_for_replicas().await?;
        lock.still_held()?;
        let () = redis::cmd("HSET")
            .arg(keys.batches(repo))
            .arg(&batch.batch_id)
            .arg(format!("{upserted} {removed}"))
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)?;
        self.wait_for_replicas().await?;
        Ok(DeltaAck { batch_id: batch.batch_id, duplicate: false, upserted, removed })
    }

    /// Runs the partition's operations; returns (unit count change, user removals that removed
    /// something, removed members, their records).
    async fn apply_partition(&self, keys: &Keys, partition: u64, ops: Vec<Op>) -> Result<(i64, u32, Vec<Member>, Vec<Record>), StoreError> {
        let mut conn = self.conn();
        let (mut delta, mut user_removed, mut members, mut records) = (0i64, 0u32, Vec::new(), Vec::new());
        for chunk in ops.chunks(OPS_PER_SCRIPT) {
            let mut invocation = self.apply_script.prepare_invoke();
            for key in [
                keys.records(partition),
                keys.group_repo_units(partition),
                keys.group_repos(partition),
                keys.group_info(partition),
                keys.ranking(partition),
                keys.unit_count(partition),
            ] {
                invocation.key(key);
            }
            invocation.arg(keys.group_prefix(partition));
            for op in chunk {
                match op {
                    Op::Upsert { member, record, info } => {
                        invocation.arg("U").arg(&member[..]).arg(record.as_slice()).arg(info);
                    }
                    Op::Remove { member, .. } => {
                        invocation.arg("R").arg(&member[..]);
                    }
                }
            }
            let results: Vec<Vec<u8>> = invocation.invoke_async(&mut conn).await.map_err(unavailable)?;
            if results.len() != chunk.len() {
                return Err(StoreError::Corrupt(format!("partition script answered {} results for {} operations", results.len(), chunk.len())));
            }
            for (op, result) in chunk.iter().zip(results) {
                match op {
                    Op::Upsert { .. } => delta += i64::from(result == b"1"),
                    Op::Remove { member, user_removal } => {
                        if result.is_empty() {
                            continue;
                        }
                        delta -= 1;
                        user_removed += u32::from(*user_removal);
                        members.push(*member);
                        records.push(decode(&result)?);
                    }
                }
            }
        }
        Ok((delta, user_removed, members, records))
    }

    /// Runs independent single-key commands concurrently (pipelined on each node's connection).
    async fn run_all(&self, commands: Vec<redis::Cmd>) -> Result<(), StoreError> {
        stream::iter(commands)
            .map(|command| {
                let mut conn = self.conn();
                async move { command.query_async::<redis::Value>(&mut conn).await.map(|_| ()).map_err(unavailable) }
            })
            .buffer_unordered(CONCURRENT_COMMANDS)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    /// Records of `members`, fetched with one HMGET per partition (chunked); absent ones skipped.
    async fn records(&self, keys: &Keys, members: impl IntoIterator<Item = Member>) -> Result<HashMap<Member, Record>, StoreError> {
        let mut by_partition: BTreeMap<u64, Vec<Member>> = BTreeMap::new();
        for member in members {
            by_partition.entry(partition_of(member_t2(&member))).or_default().push(member);
        }
        let reads: Vec<(u64, Vec<Member>)> =
            by_partition.into_iter().flat_map(|(partition, members)| members.chunks(FIELDS_PER_READ).map(|chunk| (partition, chunk.to_vec())).collect::<Vec<_>>()).collect();
        let fetched: Vec<Vec<(Member, Record)>> = stream::iter(reads)
            .map(|(partition, members)| {
                let mut conn = self.conn();
                let key = keys.records(partition);
                async move {
                    let mut command = redis::cmd("HMGET");
                    command.arg(key);
                    for member in &members {
                        command.arg(&member[..]);
                    }
                    let values: Vec<Option<Vec<u8>>> = command.query_async(&mut conn).await.map_err(unavailable)?;
                    let mut found = Vec::new();
                    for (member, value) in members.into_iter().zip(values) {
                        if let Some(bytes) = value {
                            found.push((member, decode(&bytes)?));
                        }
                    }
                    Ok::<_, StoreError>(found)
                }
            })
            .buffer_unordered(CONCURRENT_COMMANDS)
            .try_collect()
            .await?;
        Ok(fetched.into_iter().flatten().collect())
    }

    async fn pattern_meta(&self, keys: &Keys, id: T2Hash) -> Result<Option<PatternMeta>, StoreError> {
        let stored: Option<String> = redis::cmd("HGET").arg(keys.names(partition_of(id))).arg(id.to_hex()).query_async(&mut self.conn()).await.map_err(unavailable)?;
        stored.map(|text| serde_json::from_str(&text).map_err(|error| StoreError::Corrupt(format!("pattern name of {}: {error}", id.to_hex())))).transpose()
    }

    async fn pattern_detail(&self, keys: &Keys, id: T2Hash) -> Result<Option<PatternDetail>, StoreError> {
        let partition = partition_of(id);
        let (members, info): (Vec<Vec<u8>>, Option<Vec<u8>>) = redis::pipe()
            .cmd("SMEMBERS")
            .arg(keys.group(id))
            .cmd("HGET")
            .arg(keys.group_info(partition))
            .arg(id.to_hex())
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let meta = self.pattern_meta(keys, id).await?;
        let members = members.iter().map(|bytes| member_from(bytes)).collect::<Result<Vec<_>, _>>()?;
        let records = self.records(keys, members).await?;
        if records.is_empty() && meta.is_none() {
            return Ok(None);
        }
        let repos: HashSet<&str> = records.values().map(|record| record.repo.as_str()).collect();
        let (tokens, language) = parse_group_info(info.as_deref());
        let mut occurrences: Vec<PatternOccurrence> =
            records.values().map(|record| PatternOccurrence { repo: record.repo.clone(), key: record.key.clone(), location: record.location.clone() }).collect();
        occurrences.sort_by(|a, b| (&a.repo, &a.key).cmp(&(&b.repo, &b.key)));
        occurrences.truncate(MAX_PATTERN_OCCURRENCES);
        let meta = meta.unwrap_or_default();
        Ok(Some(PatternDetail {
            summary: PatternSummary { id: id.to_hex(), name: meta.name, note: meta.note, units: records.len() as u64, repos: repos.len() as u64, language, tokens },
            occurrences,
        }))
    }
}

/// Lane keys of one query sketch: its 16 band buckets, then its T2 group.
fn lane_keys(keys: &Keys, sketch: &QuerySketch) -> Vec<String> {
    let mut lanes: Vec<String> = sketch.sketch.band_keys().into_iter().enumerate().map(|(band, value)| keys.band(band, value)).collect();
    lanes.push(keys.group(sketch.t2_hash));
    lanes
}

/// Whether a stored unit shares a lane with the query (stale bucket entries do not).
fn shares_a_lane(record: &Record, query_bands: &[u64; BANDS], t2: T2Hash) -> bool {
    record.t2_hash == t2 || record.sketch.band_keys().iter().zip(query_bands).any(|(a, b)| a == b)
}

#[async_trait]
impl Store for RedisStore {
    async fn apply_batch(&self, tenant: &str, repo: &str, batch: DeltaBatch) -> Result<DeltaAck, StoreError> {
        let keys = Keys::new(tenant);
        let lock_key = keys.lock(repo);
        let lock = RepoLock::acquire(&self.connection, &lock_key).await?;
        let result = self.apply_locked(&keys, tenant, repo, batch, &lock).await;
        lock.release().await;
        result
    }

    async fn query(&self, tenant: &str, sketches: &[QuerySketch], options: &QueryOptions) -> Result<Arc<[SketchResult]>, StoreError> {
        let keys = Keys::new(tenant);
        let per_sketch_lanes: Vec<Vec<String>> = sketches.iter().map(|sketch| lane_keys(&keys, sketch)).collect();
        let mut unique_lanes: Vec<String> = per_sketch_lanes.iter().flatten().cloned().collect();
        unique_lanes.sort_unstable();
        unique_lanes.dedup();
        let lane_members: HashMap<String, Vec<Member>> = stream::iter(unique_lanes)
            .map(|lane| {
                let mut conn = self.conn();
                async move {
                    let members: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&lane).query_async(&mut conn).await.map_err(unavailable)?;
                    let members = members.iter().take(MAX_LANE_WALK).map(|bytes| member_from(bytes)).collect::<Result<Vec<_>, _>>()?;
                    Ok::<_, StoreError>((lane, members))
                }
            })
            .buffer_unordered(CONCURRENT_COMMANDS)
            .try_collect()
            .await?;
        let all_members: HashSet<Member> = lane_members.values().flatten().copied().collect();
        let records = self.records(&keys, all_members).await?;

        let mut results = Vec::with_capacity(sketches.len());
        for (sketch, lanes) in sketches.iter().zip(&per_sketch_lanes) {
            let query_bands = sketch.sketch.band_keys();
            let candidates: HashSet<Member> = lanes.iter().filter_map(|lane| lane_members.get(lane)).flatten().copied().collect();
            let mut matches: Vec<UnitMatch> = Vec::new();
            for candidate in candidates {
                let Some(record) = records.get(&candidate) else { continue };
                if options.exclude_repo.as_deref() == Some(record.repo.as_str()) || !shares_a_lane(record, &query_bands, sketch.t2_hash) {
                    continue;
                }
                let exact = record.t2_hash == sketch.t2_hash;
                let similarity = if exact { 1.0 } else { record.sketch.similarity(&sketch.sketch) };
                if similarity < options.min_similarity {
                    continue;
                }
                matches.push(UnitMatch {
                    repo: record.repo.clone(),
                    key: record.key.clone(),
                    similarity,
                    exact,
                    pattern_id: record.t2_hash.to_hex(),
                    language: record.language.clone(),
                    tokens: record.tokens,
                    lines: record.lines,
                    location: record.location.clone(),
                });
            }
            matches.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then_with(|| (&a.repo, &a.key).cmp(&(&b.repo, &b.key))));
            matches.truncate(options.top_k);
            results.push(SketchResult { id: sketch.id.clone(), matches });
        }
        Ok(results.into())
    }

    async fn top_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError> {
        if top == 0 {
            return Ok(Vec::new());
        }
        let keys = &Keys::new(tenant);
        let per_partition: Vec<Vec<PatternSummary>> = stream::iter(0..PARTITIONS)
            .map(|partition| {
                let mut conn = self.conn();
                async move {
                    let ranked: Vec<(String, f64)> =
                        redis::cmd("ZRANGE").arg(keys.ranking(partition)).arg(0).arg(top as i64 - 1).arg("WITHSCORES").query_async(&mut conn).await.map_err(unavailable)?;
                    if ranked.is_empty() {
                        return Ok(Vec::new());
                    }
                    let ids: Vec<&str> = ranked.iter().map(|(id, _)| id.as_str()).collect();
                    let (infos, names): (Vec<Option<Vec<u8>>>, Vec<Option<String>>) = redis::pipe()
                        .cmd("HMGET")
                        .arg(keys.group_info(partition))
                        .arg(&ids)
                        .cmd("HMGET")
                        .arg(keys.names(partition))
                        .arg(&ids)
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    let mut summaries = Vec::new();
                    for (((id, score), info), name) in ranked.into_iter().zip(infos).zip(names) {
                        let rank = (-score) as u64;
                        let (tokens, language) = parse_group_info(info.as_deref());
                        let meta: PatternMeta = match name {
                            Some(text) => serde_json::from_str(&text).map_err(|error| StoreError::Corrupt(format!("pattern name of {id}: {error}")))?,
                            None => PatternMeta::default(),
                        };
                        summaries.push(PatternSummary { id, name: meta.name, note: meta.note, units: rank & 0xffff_ffff, repos: rank >> 32, language, tokens });
                    }
                    Ok::<_, StoreError>(summaries)
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let mut patterns: Vec<PatternSummary> = per_partition.into_iter().flatten().collect();
        patterns.sort_by(|a, b| b.repos.cmp(&a.repos).then(b.units.cmp(&a.units)).then_with(|| a.id.cmp(&b.id)));
        patterns.truncate(top);
        Ok(patterns)
    }

    async fn pattern(&self, tenant: &str, id: T2Hash) -> Result<Option<PatternDetail>, StoreError> {
        self.pattern_detail(&Keys::new(tenant), id).await
    }

    async fn set_pattern_meta(&self, tenant: &str, id: T2Hash, update: PatternUpdate) -> Result<PatternDetail, StoreError> {
        let keys = Keys::new(tenant);
        let meta = serde_json::to_string(&PatternMeta { name: update.name, note: update.note }).map_err(|error| StoreError::Task(error.to_string()))?;
        let () = redis::cmd("HSET")
            .arg(keys.names(partition_of(id)))
            .arg(id.to_hex())
            .arg(meta)
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
            .map_err(unavailable)?;
        self.wait_for_replicas().await?;
        self.pattern_detail(&keys, id).await?.ok_or_else(|| StoreError::Unavailable("pattern vanished after update".into()))
    }

    async fn stats(&self, tenant: &str) -> Result<Stats, StoreError> {
        let keys = &Keys::new(tenant);
        let counts: Vec<(Option<i64>, u64)> = stream::iter(0..PARTITIONS)
            .map(|partition| {
                let mut conn = self.conn();
                async move {
                    redis::pipe()
                        .cmd("GET")
                        .arg(keys.unit_count(partition))
                        .cmd("ZCARD")
                        .arg(keys.ranking(partition))
                        .query_async::<(Option<i64>, u64)>(&mut conn)
                        .await
                        .map_err(unavailable)
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let repos: u64 = redis::cmd("SCARD").arg(keys.repos()).query_async(&mut self.conn()).await.map_err(unavailable)?;
        let units = counts.iter().map(|(units, _)| units.unwrap_or(0).max(0) as u64).sum();
        let patterns = counts.iter().map(|(_, patterns)| patterns).sum();
        Ok(Stats { units, repos, patterns, shards: PARTITIONS as u32 })
    }

    async fn units_stored(&self) -> Result<u64, StoreError> {
        let units: Option<i64> = redis::cmd("GET").arg(UNITS_GAUGE_KEY).query_async(&mut self.conn()).await.map_err(unavailable)?;
        Ok(units.unwrap_or(0).max(0) as u64)
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        // PING goes to every master; one that does not answer makes the cluster not ready.
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await.map_err(unavailable)?;
        Ok(())
    }

    async fn fingerprints(&self, tenant: &str, repo: &str, keys: &[String]) -> Result<Vec<Option<T2Hash>>, StoreError> {
        let layout = Keys::new(tenant);
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(FIELDS_PER_READ) {
            let members: Vec<Option<Vec<u8>>> = redis::cmd("HMGET").arg(layout.locator(repo)).arg(chunk).query_async(&mut self.conn()).await.map_err(unavailable)?;
            for member_bytes in members {
                found.push(member_bytes.map(|bytes| member_from(&bytes).map(|member| member_t2(&member))).transpose()?);
            }
        }
        Ok(found)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Every acknowledged batch already waited for its replica; nothing is buffered here.
        Ok(())
    }
}
