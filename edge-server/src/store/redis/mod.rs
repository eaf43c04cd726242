//! The Redis Cluster backend: the second [`Store`], so that any number of stateless
//! `periodic-edge` replicas can serve one team (or many) from a shared Redis Cluster. Key
//! layout and record encoding are in `layout`; the atomic per-partition update is `apply.lua`.
//!
//! Writing a batch: take the repository's write lock (a `SET NX PX` key, so two replicas never
//! interleave batches of one repository), return the first acknowledgement if the batch id is
//! already recorded, read the keys' current members from the repository's locator, then run
//! one Lua script call per touched partition, all partitions at once: records, group sets and
//! pattern counts of the units whose T2 falls there, and the band entries of the stored
//! members whose band values fall there, change together. When the batch removed or replaced
//! units, a second round of script calls drops their band entries (their band values are read
//! from the removed records). Then the locator is written (one `HSET`), `WAIT` blocks until
//! every master has a replica holding all of it, and only then is the batch id recorded (and
//! `WAIT` again). A batch of 1,000 units is therefore about ten round trips in sequence plus
//! one script call per partition in parallel, whatever its size. A batch interrupted anywhere
//! is not acknowledged; its retry re-applies it, which converges because every step is an
//! upsert or removal by key (a band entry is added only if absent). A band bucket may keep a
//! member that is no longer stored or has moved (after a crash between steps, or a unit
//! re-upserted with the same key and structure but another sketch); queries re-check every
//! candidate against its record, so such leftovers cost a lookup and never change an answer.
//!
//! Reading: a sketch's 16 band buckets and its T2 group set give candidate members, read with
//! one pipeline per partition (an `HMGET` of the band fields and the group sets); their
//! records are fetched with one `HMGET` per partition and scored exactly as the embedded
//! backend scores them.
//!
//! The team analysis cache (`analyses`) keeps each tenant's entries in one slot of their own.

pub mod analyses;
pub mod layout;
mod lock;
pub mod progress;
pub mod reads;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use periodic_wire::{
    BANDS, DeltaAck, DeltaBatch, PatternDetail, PatternOccurrence, PatternSummary, QuerySketch, SketchResult, Stats, T2Hash, UnitMatch,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use self::lock::RepoLock;
use self::reads::{HashRead, ReadCoalescer};
use self::layout::{
    BAND_ENTRY_LEN, BandSlot, Keys, Member, PARTITIONS, Record, UNITS_GAUGE_KEY, band_entry, band_slot, bucket_members, decode, encode, group_entries, group_members, member, member_from,
    member_t2, parse_link_field, partition_of, peek, repo_tag,
};
use rustc_hash::{FxHashMap, FxHashSet};
use crate::store::embedded::index::MAX_LANE_WALK;
use crate::store::cached::SHARED_BACKEND_TTL;
use crate::store::family::{self, Components, FamilyIds};
use crate::store::{AnalysisEntries, AnalysisPolicy, ContentHash, MAX_PATTERN_OCCURRENCES, PatternMeta, QueryOptions, Store, StoreError};

/// How to reach and use the cluster.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Seed nodes as `host:port`; the rest of the cluster is discovered from them.
    pub nodes: Vec<String>,
    pub password: Option<String>,
    /// Connect with TLS (`rediss://`), verifying certificates against the system roots, or
    /// against `root_cert_pem` when given.
    pub tls: bool,
    /// The CA certificate (PEM) that signed the nodes' certificates (`--redis-ca-file`).
    pub root_cert_pem: Option<Vec<u8>>,
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
            root_cert_pem: None,
            wait_replicas: 1,
            wait_timeout: Duration::from_millis(1000),
            response_timeout: Duration::from_millis(2000),
        })
    }
}

/// Operations per Lua call: bounds how long one script blocks its master (and keeps the
/// script's `HMGET`/`HSET` of band fields within Lua's argument limit).
const OPS_PER_SCRIPT: usize = 1000;
/// Partition script calls of one batch in flight at once (every partition of a batch).
const CONCURRENT_SCRIPTS: usize = PARTITIONS as usize;
/// Fields per HMGET.
const FIELDS_PER_READ: usize = 1000;
/// How often the watchdog checks that every master answers.
const WATCHDOG_INTERVAL: Duration = Duration::from_millis(500);

pub struct RedisStore {
    client: ClusterClient,
    /// Replaced by the watchdog when the cluster stops answering through it.
    connection: Arc<RwLock<ClusterConnection>>,
    apply_script: redis::Script,
    /// Query-time reads, merged across concurrent queries.
    reads: ReadCoalescer,
    options: RedisOptions,
    /// Per tenant, the team pattern id of each linked shape, for query answers; dropped by a
    /// write through this replica, otherwise as stale as the replica's caches may be.
    family_ids: moka::future::Cache<String, Arc<FamilyIds>>,
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {error}"))
}

/// One unit operation of the partition script.
enum Op {
    /// `link`: the unit's family link field (T2 then family, hex), empty when it has none.
    Upsert { member: Member, record: Vec<u8>, info: String, repo_tag: [u8; 8], link: String },
    Remove { member: Member, user_removal: bool },
}

/// What one batch changes in one partition: unit operations in order, and band entries (tag
/// and member) to add to and remove from each field of `bands`.
#[derive(Default)]
struct PartitionOps {
    units: Vec<Op>,
    bands: BTreeMap<[u8; 2], (Vec<u8>, Vec<u8>)>,
}

/// What applying operations did: unit count change, user removals that removed something,
/// and the removed members with their records.
type Applied = (i64, u32, Vec<(Member, Record)>);

fn add_band_entries(changes: &mut BTreeMap<u64, PartitionOps>, sketch: &periodic_wire::Sketch, member: &Member, removing: bool) {
    for value in sketch.band_keys() {
        let BandSlot { partition, field, tag } = band_slot(value);
        let (adds, removes) = changes.entry(partition).or_default().bands.entry(field).or_default();
        let entries = if removing { removes } else { adds };
        entries.extend_from_slice(&band_entry(tag, member));
    }
}

/// The script's form of band entries: runs of (field, entry count as 2 bytes big-endian,
/// the entries); a field with more entries than a count holds takes several runs.
fn band_pack<'a>(fields: impl Iterator<Item = (&'a [u8; 2], &'a Vec<u8>)>) -> Vec<u8> {
    let mut pack = Vec::new();
    for (field, entries) in fields {
        for run in entries.chunks(usize::from(u16::MAX) * BAND_ENTRY_LEN) {
            pack.extend_from_slice(field);
            pack.extend_from_slice(&((run.len() / BAND_ENTRY_LEN) as u16).to_be_bytes());
            pack.extend_from_slice(run);
        }
    }
    pack
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
        if options.tls
            && let Some(pem) = &options.root_cert_pem
        {
            builder = builder.certs(redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) });
        }
        let client = builder.build().map_err(unavailable)?;
        let connection = Arc::new(RwLock::new(client.get_async_connection().await.map_err(unavailable)?));
        let store = RedisStore {
            client,
            reads: ReadCoalescer::start(connection.clone()),
            connection,
            apply_script: redis::Script::new(include_str!("apply.lua")),
            options,
            family_ids: moka::future::Cache::builder().max_capacity(10_000).time_to_live(SHARED_BACKEND_TTL).build(),
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
        let mut ops: BTreeMap<u64, PartitionOps> = BTreeMap::new();
        let mut sketches: HashMap<Member, periodic_wire::Sketch> = HashMap::new();
        let upserted = batch.upserts.len() as u32;
        let repo_tag = repo_tag(tenant, repo);
        for upsert in batch.upserts {
            let new_member = member(tenant, repo, &upsert.key, upsert.t2_hash);
            let slot = current.entry(upsert.key.clone()).or_insert(None);
            if let Some(old) = *slot
                && old != new_member
            {
                ops.entry(partition_of(member_t2(&old))).or_default().units.push(Op::Remove { member: old, user_removal: false });
            }
            *slot = Some(new_member);
            let info = group_info(upsert.tokens, &upsert.language);
            let link = match upsert.family {
                Some(family) if family != upsert.t2_hash => format!("{}{}", upsert.t2_hash.to_hex(), family.to_hex()),
                _ => String::new(),
            };
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
                family: upsert.family,
            });
            ops.entry(partition_of(upsert.t2_hash)).or_default().units.push(Op::Upsert { member: new_member, record, info, repo_tag, link });
        }
        for key in &batch.removals {
            if let Some(old) = current.get_mut(key.as_str()).and_then(Option::take) {
                ops.entry(partition_of(member_t2(&old))).or_default().units.push(Op::Remove { member: old, user_removal: true });
            }
        }

        // Every member the batch leaves stored gets its band entries, in the same script call
        // as the records of its partition.
        let final_members: HashSet<Member> = current.values().flatten().copied().collect();
        for new_member in &final_members {
            if let Some(sketch) = sketches.get(new_member) {
                add_band_entries(&mut ops, sketch, new_member, false);
            }
        }
        let (unit_delta, removed, removed_records) = self.apply_partitions(keys, ops).await?;

        // Removed and replaced members leave their band buckets (their band values come from
        // the records the scripts removed).
        let mut removals: BTreeMap<u64, PartitionOps> = BTreeMap::new();
        for (old_member, record) in &removed_records {
            if !final_members.contains(old_member) {
                add_band_entries(&mut removals, &record.sketch, old_member, true);
            }
        }
        if !removals.is_empty() {
            self.apply_partitions(keys, removals).await?;
        }

        // Locator (one HSET and one HDEL per thousand keys), repository set and gauge.
        let mut locator = redis::pipe();
        let mut changed: Vec<(&str, &Member)> = Vec::new();
        let mut gone: Vec<&str> = Vec::new();
        for (key, now) in &current {
            match now {
                Some(now) if initially.get(key) != Some(&Some(*now)) => changed.push((key, now)),
                None if initially.get(key).is_some_and(Option::is_some) => gone.push(key),
                _ => {}
            }
        }
        for chunk in changed.chunks(FIELDS_PER_READ) {
            let command = locator.cmd("HSET").arg(keys.locator(repo));
            for (key, now) in chunk {
                command.arg(*key).arg(&now[..]);
            }
            command.ignore();
        }
        for chunk in gone.chunks(FIELDS_PER_READ) {
            locator.cmd("HDEL").arg(keys.locator(repo)).arg(chunk).ignore();
        }
        locator.cmd("HLEN").arg(keys.locator(repo));
        let (repo_units,): (u64,) = locator.query_async(&mut conn).await.map_err(unavailable)?;
        let repo_set_change = if repo_units == 0 { "SREM" } else { "SADD" };
        let repo_set = async { redis::cmd(repo_set_change).arg(keys.repos()).arg(repo).query_async::<i64>(&mut self.conn()).await };
        let gauge = async {
            if unit_delta == 0 {
                return Ok(0);
            }
            redis::cmd("INCRBY").arg(UNITS_GAUGE_KEY).arg(unit_delta).query_async::<i64>(&mut self.conn()).await
        };
        futures::try_join!(repo_set, gauge).map_err(unavailable)?;

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

    /// Runs every partition's operations, all partitions at once; returns (unit count change,
    /// user removals that removed something, removed members with their records).
    async fn apply_partitions(&self, keys: &Keys, ops: BTreeMap<u64, PartitionOps>) -> Result<Applied, StoreError> {
        let partition_results: Vec<Applied> = stream::iter(ops)
            .map(|(partition, partition_ops)| self.apply_partition(keys, partition, partition_ops))
            .buffer_unordered(CONCURRENT_SCRIPTS)
            .try_collect()
            .await?;
        let (mut unit_delta, mut removed, mut removed_records) = (0i64, 0u32, Vec::new());
        for (delta, user_removed, records) in partition_results {
            unit_delta += delta;
            removed += user_removed;
            removed_records.extend(records);
        }
        Ok((unit_delta, removed, removed_records))
    }

    /// Runs one partition's operations, chunks in order; the first call carries the band entries.
    async fn apply_partition(&self, keys: &Keys, partition: u64, ops: PartitionOps) -> Result<Applied, StoreError> {
        let mut conn = self.conn();
        let (mut delta, mut user_removed, mut removed_records) = (0i64, 0u32, Vec::new());
        let mut band_adds = band_pack(ops.bands.iter().map(|(field, (adds, _))| (field, adds)));
        let mut band_removes = band_pack(ops.bands.iter().map(|(field, (_, removes))| (field, removes)));
        let chunks: Vec<&[Op]> = if ops.units.is_empty() { vec![&[]] } else { ops.units.chunks(OPS_PER_SCRIPT).collect() };
        for chunk in chunks {
            let mut invocation = self.apply_script.prepare_invoke();
            for key in [
                keys.records(partition),
                keys.groups(partition),
                keys.group_info(partition),
                keys.ranking(partition),
                keys.unit_count(partition),
                keys.bands(partition),
                keys.links(partition),
            ] {
                invocation.key(key);
            }
            invocation.arg(std::mem::take(&mut band_adds)).arg(std::mem::take(&mut band_removes));
            for op in chunk {
                match op {
                    Op::Upsert { member, record, info, repo_tag, link } => {
                        invocation.arg("U").arg(&member[..]).arg(record.as_slice()).arg(info).arg(&repo_tag[..]).arg(link);
                    }
                    Op::Remove { member, .. } => {
                        invocation.arg("R").arg(&member[..]).arg(member_t2(member).to_hex());
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
                        removed_records.push((*member, decode(&result)?));
                    }
                }
            }
        }
        Ok((delta, user_removed, removed_records))
    }

    /// Reads every band field and group the sketches need: one pipeline per partition (an
    /// `HMGET` of its band fields, one of its groups), all partitions at once.
    async fn lane_contents(&self, keys: &Keys, sketches: &[QuerySketch]) -> Result<LaneContents, StoreError> {
        let mut by_partition: BTreeMap<u64, PartitionLanes> = BTreeMap::new();
        for sketch in sketches {
            for value in sketch.sketch.band_keys() {
                let slot = band_slot(value);
                by_partition.entry(slot.partition).or_default().fields.insert(slot.field);
            }
            by_partition.entry(partition_of(sketch.t2_hash)).or_default().groups.insert(sketch.t2_hash);
        }
        let mut reads = Vec::new();
        let mut meaning: Vec<(u64, Vec<[u8; 2]>, Vec<T2Hash>)> = Vec::new();
        for (partition, lanes) in by_partition {
            let fields: Vec<[u8; 2]> = lanes.fields.into_iter().collect();
            let groups: Vec<T2Hash> = lanes.groups.into_iter().collect();
            if !fields.is_empty() {
                reads.push(HashRead { key: keys.bands(partition), fields: fields.iter().map(|field| field.to_vec()).collect() });
            }
            if !groups.is_empty() {
                reads.push(HashRead { key: keys.groups(partition), fields: groups.iter().map(|t2| t2.to_hex().into_bytes()).collect() });
            }
            meaning.push((partition, fields, groups));
        }
        let mut values = self.reads.read(reads).await?.into_iter();
        let mut contents = LaneContents::default();
        for (partition, fields, groups) in meaning {
            if !fields.is_empty() {
                for (field, value) in fields.into_iter().zip(values.next().unwrap_or_default()) {
                    if let Some(value) = value {
                        contents.fields.insert((partition, field), value);
                    }
                }
            }
            if !groups.is_empty() {
                for (t2, value) in groups.into_iter().zip(values.next().unwrap_or_default()) {
                    if let Some(value) = value {
                        contents.groups.insert(t2, group_members(&value)?);
                    }
                }
            }
        }
        Ok(contents)
    }

    /// Records of `members`, fetched with one HMGET per partition (merged with concurrent
    /// queries' reads); absent ones skipped.
    async fn records(&self, keys: &Keys, members: impl IntoIterator<Item = Member>) -> Result<HashMap<Member, Record>, StoreError> {
        self.raw_records(keys, members).await?.into_iter().map(|(member, bytes)| Ok((member, decode(&bytes)?))).collect()
    }

    /// [`RedisStore::records`] as stored, not decoded.
    async fn raw_records(&self, keys: &Keys, members: impl IntoIterator<Item = Member>) -> Result<FxHashMap<Member, Vec<u8>>, StoreError> {
        let mut by_partition: BTreeMap<u64, Vec<Member>> = BTreeMap::new();
        for member in members {
            by_partition.entry(partition_of(member_t2(&member))).or_default().push(member);
        }
        let reads: Vec<HashRead> =
            by_partition.iter().map(|(partition, members)| HashRead { key: keys.records(*partition), fields: members.iter().map(|member| member.to_vec()).collect() }).collect();
        let values = self.reads.read(reads).await?;
        let mut found = FxHashMap::default();
        for (members, values) in by_partition.into_values().zip(values) {
            for (member, value) in members.into_iter().zip(values) {
                if let Some(bytes) = value {
                    found.insert(member, bytes);
                }
            }
        }
        Ok(found)
    }

    /// The tenant's near-miss family components, from the links of every partition.
    async fn components(&self, keys: &Keys) -> Result<Components, StoreError> {
        let per_partition: Vec<Vec<(T2Hash, T2Hash)>> = stream::iter(0..PARTITIONS)
            .map(|partition| {
                let mut conn = self.conn();
                async move {
                    let fields: Vec<String> = redis::cmd("HKEYS").arg(keys.links(partition)).query_async(&mut conn).await.map_err(unavailable)?;
                    fields.iter().map(|field| parse_link_field(field)).collect::<Result<Vec<_>, StoreError>>()
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        Ok(Components::from_links(per_partition.into_iter().flatten()))
    }

    /// The tenant's [`FamilyIds`], read (links and the groups of linked shapes) when not kept.
    /// Concurrent queries that miss wait for one read rather than each reading.
    async fn family_ids(&self, keys: &Keys, tenant: &str) -> Result<Arc<FamilyIds>, StoreError> {
        let read = async {
            let components = self.components(keys).await?;
            let shapes: Vec<T2Hash> = components.linked().flatten().copied().collect();
            let groups = self.groups(keys, &shapes).await?;
            Ok::<_, StoreError>(Arc::new(family::linked_ids(&components, |shape| groups.get(&shape).map_or(0, |group| group.entries.len() as u64))))
        };
        self.family_ids.try_get_with(tenant.to_string(), read).await.map_err(|error| match &*error {
            StoreError::Corrupt(message) => StoreError::Corrupt(message.clone()),
            other => StoreError::Unavailable(other.to_string()),
        })
    }

    /// The groups of `shapes` (members with their repositories' tags) and their size and
    /// language, with one `HMGET` of groups and one of group info per partition (merged with
    /// concurrent reads). Shapes without units are left out.
    async fn groups(&self, keys: &Keys, shapes: &[T2Hash]) -> Result<HashMap<T2Hash, Group>, StoreError> {
        let mut by_partition: BTreeMap<u64, Vec<T2Hash>> = BTreeMap::new();
        for &shape in shapes {
            by_partition.entry(partition_of(shape)).or_default().push(shape);
        }
        let mut reads = Vec::new();
        for (partition, shapes) in &by_partition {
            let fields: Vec<Vec<u8>> = shapes.iter().map(|shape| shape.to_hex().into_bytes()).collect();
            reads.push(HashRead { key: keys.groups(*partition), fields: fields.clone() });
            reads.push(HashRead { key: keys.group_info(*partition), fields });
        }
        let mut values = self.reads.read(reads).await?.into_iter();
        let mut groups = HashMap::new();
        for shapes in by_partition.into_values() {
            let (members, infos) = (values.next().unwrap_or_default(), values.next().unwrap_or_default());
            for ((shape, members), info) in shapes.into_iter().zip(members).zip(infos) {
                let Some(members) = members else { continue };
                let (tokens, language) = parse_group_info(info.as_deref());
                groups.insert(shape, Group { entries: group_entries(&members)?, tokens, language });
            }
        }
        Ok(groups)
    }

    /// The names stored under `shapes`, by shape.
    async fn metas(&self, keys: &Keys, shapes: &[T2Hash]) -> Result<Vec<(T2Hash, PatternMeta)>, StoreError> {
        let mut by_partition: BTreeMap<u64, Vec<T2Hash>> = BTreeMap::new();
        for &shape in shapes {
            by_partition.entry(partition_of(shape)).or_default().push(shape);
        }
        let reads: Vec<HashRead> = by_partition
            .iter()
            .map(|(partition, shapes)| HashRead { key: keys.names(*partition), fields: shapes.iter().map(|shape| shape.to_hex().into_bytes()).collect() })
            .collect();
        let values = self.reads.read(reads).await?;
        let mut metas = Vec::new();
        for (shapes, values) in by_partition.into_values().zip(values) {
            for (shape, value) in shapes.into_iter().zip(values) {
                if let Some(text) = value {
                    let meta = serde_json::from_slice(&text).map_err(|error| StoreError::Corrupt(format!("pattern name of {}: {error}", shape.to_hex())))?;
                    metas.push((shape, meta));
                }
            }
        }
        Ok(metas)
    }

    /// The pattern holding shape `id`: every unit of its component's shapes.
    async fn pattern_detail(&self, keys: &Keys, components: &Components, id: T2Hash) -> Result<Option<PatternDetail>, StoreError> {
        let shapes = components.shapes_of(id);
        let (groups, metas) = futures::try_join!(self.groups(keys, &shapes), self.metas(keys, &shapes))?;
        let pattern = family::component_id(shapes.iter().map(|shape| (*shape, groups.get(shape).map_or(0, |group| group.entries.len() as u64)))).unwrap_or(id);
        let meta = family::current_meta(metas, pattern);
        let members: Vec<Member> = groups.values().flat_map(|group| group.entries.iter().map(|(member, _)| *member)).collect();
        let records = self.records(keys, members).await?;
        if records.is_empty() && meta.is_none() {
            return Ok(None);
        }
        let repos: HashSet<&str> = records.values().map(|record| record.repo.as_str()).collect();
        let (tokens, language) = groups.get(&pattern).map_or((0, String::new()), |group| (group.tokens, group.language.clone()));
        let mut occurrences: Vec<PatternOccurrence> = records
            .values()
            .map(|record| PatternOccurrence {
                repo: record.repo.clone(),
                key: record.key.clone(),
                location: record.location.clone(),
                kind: Some(family::occurrence_kind(record.t2_hash, pattern)),
            })
            .collect();
        occurrences.sort_by(|a, b| (&a.repo, &a.key).cmp(&(&b.repo, &b.key)));
        occurrences.truncate(MAX_PATTERN_OCCURRENCES);
        let meta = meta.unwrap_or_default();
        Ok(Some(PatternDetail {
            summary: PatternSummary {
                id: pattern.pattern_id(),
                name: meta.name,
                note: meta.note,
                units: records.len() as u64,
                repos: repos.len() as u64,
                language,
                tokens,
                named_by: meta.named_by,
                named_at: meta.named_at,
            },
            occurrences,
        }))
    }

    /// The patterns of more than one shape (near-miss families linked), with at least two
    /// units, names not filled in, with the shapes of each; and how many of those shapes are
    /// patterns of their own in the partitions' rankings (two units or more).
    async fn linked_patterns(&self, keys: &Keys, components: &Components) -> Result<(Vec<(Vec<T2Hash>, PatternSummary)>, u64), StoreError> {
        let shapes: Vec<T2Hash> = components.linked().flatten().copied().collect();
        let groups = self.groups(keys, &shapes).await?;
        let ranked = groups.values().filter(|group| group.entries.len() >= 2).count() as u64;
        let mut patterns = Vec::new();
        for shapes in components.linked() {
            let units: u64 = shapes.iter().filter_map(|shape| groups.get(shape)).map(|group| group.entries.len() as u64).sum();
            if units < 2 {
                continue;
            }
            let Some(id) = family::component_id(shapes.iter().map(|shape| (*shape, groups.get(shape).map_or(0, |group| group.entries.len() as u64)))) else { continue };
            let repos: HashSet<[u8; 8]> = shapes.iter().filter_map(|shape| groups.get(shape)).flat_map(|group| group.entries.iter().map(|(_, tag)| *tag)).collect();
            let (tokens, language) = groups.get(&id).map_or((0, String::new()), |group| (group.tokens, group.language.clone()));
            let summary = PatternSummary { id: id.pattern_id(), name: None, note: None, units, repos: repos.len() as u64, language, tokens, named_by: None, named_at: None };
            patterns.push((shapes.to_vec(), summary));
        }
        Ok((patterns, ranked))
    }
}

/// One exact-structure group as read for a pattern answer.
struct Group {
    entries: Vec<(Member, [u8; 8])>,
    tokens: u32,
    language: String,
}

/// The reads of one partition that a query needs: band fields and group sets.
#[derive(Default)]
struct PartitionLanes {
    fields: BTreeSet<[u8; 2]>,
    groups: BTreeSet<T2Hash>,
}

/// What a query's first round read: band field values by (partition, field), group members by T2.
#[derive(Default)]
struct LaneContents {
    fields: FxHashMap<(u64, [u8; 2]), Vec<u8>>,
    groups: FxHashMap<T2Hash, Vec<Member>>,
}

impl LaneContents {
    /// Candidate members of one sketch: its 16 band buckets and its T2 group, each cut at
    /// [`MAX_LANE_WALK`] as the embedded index cuts its lanes.
    fn candidates(&self, sketch: &QuerySketch) -> Result<FxHashSet<Member>, StoreError> {
        let mut candidates = FxHashSet::default();
        for value in sketch.sketch.band_keys() {
            let slot = band_slot(value);
            if let Some(field_value) = self.fields.get(&(slot.partition, slot.field)) {
                candidates.extend(bucket_members(field_value, slot.tag)?.into_iter().take(MAX_LANE_WALK));
            }
        }
        if let Some(group) = self.groups.get(&sketch.t2_hash) {
            candidates.extend(group.iter().take(MAX_LANE_WALK).copied());
        }
        Ok(candidates)
    }
}

/// Whether a stored unit shares a lane with the query (stale bucket entries do not).
fn shares_a_lane(stored_t2: T2Hash, stored_sketch: &periodic_wire::Sketch, query_bands: &[u64; BANDS], t2: T2Hash) -> bool {
    stored_t2 == t2 || stored_sketch.band_keys().iter().zip(query_bands).any(|(a, b)| a == b)
}

#[async_trait]
impl Store for RedisStore {
    async fn apply_batch(&self, tenant: &str, repo: &str, batch: DeltaBatch) -> Result<DeltaAck, StoreError> {
        let keys = Keys::new(tenant);
        let lock_key = keys.lock(repo);
        let lock = RepoLock::acquire(&self.connection, &lock_key).await?;
        let result = self.apply_locked(&keys, tenant, repo, batch, &lock).await;
        lock.release().await;
        self.family_ids.invalidate(tenant).await;
        result
    }

    async fn query(&self, tenant: &str, sketches: &[QuerySketch], options: &QueryOptions) -> Result<Arc<[SketchResult]>, StoreError> {
        let keys = Keys::new(tenant);
        let lanes = self.lane_contents(&keys, sketches).await?;
        let per_sketch_candidates: Vec<FxHashSet<Member>> = sketches.iter().map(|sketch| lanes.candidates(sketch)).collect::<Result<_, _>>()?;
        let records = self.raw_records(&keys, per_sketch_candidates.iter().flatten().copied().collect::<FxHashSet<Member>>()).await?;
        let ids = self.family_ids(&keys, tenant).await?;

        let mut results = Vec::with_capacity(sketches.len());
        for (sketch, candidates) in sketches.iter().zip(per_sketch_candidates) {
            let query_bands = sketch.sketch.band_keys();
            let mut matches: Vec<UnitMatch> = Vec::new();
            for candidate in candidates {
                let Some(bytes) = records.get(&candidate) else { continue };
                // Scored from the record's head; decoded whole only when it answers.
                let peeked = peek(bytes)?;
                if options.exclude_repo.as_deref() == Some(peeked.repo) || !shares_a_lane(peeked.t2_hash, &peeked.sketch, &query_bands, sketch.t2_hash) {
                    continue;
                }
                let exact = peeked.t2_hash == sketch.t2_hash;
                let similarity = if exact { 1.0 } else { peeked.sketch.similarity(&sketch.sketch) };
                if similarity < options.min_similarity {
                    continue;
                }
                let record = decode(bytes)?;
                matches.push(UnitMatch {
                    pattern_id: family::pattern_id_of(&ids, record.t2_hash),
                    repo: record.repo,
                    key: record.key,
                    similarity,
                    exact,
                    language: record.language,
                    tokens: record.tokens,
                    lines: record.lines,
                    location: record.location,
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
        let components = &self.components(keys).await?;
        // A linked shape is ranked in its partition as a group of its own: it is skipped there,
        // and each partition's ranking is read that much further so `top` others remain.
        let mut linked_in: HashMap<u64, usize> = HashMap::new();
        for shape in components.linked().flatten() {
            *linked_in.entry(partition_of(*shape)).or_insert(0) += 1;
        }
        let linked_in = &linked_in;
        let per_partition: Vec<Vec<PatternSummary>> = stream::iter(0..PARTITIONS)
            .map(|partition| {
                let mut conn = self.conn();
                async move {
                    let last = (top + linked_in.get(&partition).copied().unwrap_or(0)) as i64 - 1;
                    let ranked: Vec<(String, f64)> =
                        redis::cmd("ZRANGE").arg(keys.ranking(partition)).arg(0).arg(last).arg("WITHSCORES").query_async(&mut conn).await.map_err(unavailable)?;
                    let ranked: Vec<(String, f64)> = ranked.into_iter().filter(|(id, _)| T2Hash::from_hex(id).is_none_or(|shape| !components.is_linked(shape))).collect();
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
                        summaries.push(PatternSummary {
                            id: format!("P-{id}"),
                            name: meta.name,
                            note: meta.note,
                            units: rank & 0xffff_ffff,
                            repos: rank >> 32,
                            language,
                            tokens,
                            named_by: meta.named_by,
                            named_at: meta.named_at,
                        });
                    }
                    Ok::<_, StoreError>(summaries)
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        // Families are ranked with the rest first; only the names of those listed are read.
        let (linked, _) = self.linked_patterns(keys, components).await?;
        let mut shapes_of: HashMap<String, Vec<T2Hash>> = HashMap::new();
        let mut patterns: Vec<PatternSummary> = per_partition.into_iter().flatten().collect();
        for (shapes, summary) in linked {
            shapes_of.insert(summary.id.clone(), shapes);
            patterns.push(summary);
        }
        patterns.sort_by(|a, b| b.repos.cmp(&a.repos).then(b.units.cmp(&a.units)).then_with(|| a.id.cmp(&b.id)));
        patterns.truncate(top);
        let listed_shapes: Vec<T2Hash> = patterns.iter().filter_map(|summary| shapes_of.get(&summary.id)).flatten().copied().collect();
        let mut metas: HashMap<T2Hash, PatternMeta> = self.metas(keys, &listed_shapes).await?.into_iter().collect();
        for summary in &mut patterns {
            let (Some(shapes), Some(id)) = (shapes_of.get(&summary.id), T2Hash::from_pattern_id(&summary.id)) else { continue };
            if let Some(meta) = family::current_meta(shapes.iter().filter_map(|shape| Some((*shape, metas.remove(shape)?))), id) {
                (summary.name, summary.note, summary.named_by, summary.named_at) = (meta.name, meta.note, meta.named_by, meta.named_at);
            }
        }
        Ok(patterns)
    }

    async fn pattern(&self, tenant: &str, id: T2Hash) -> Result<Option<PatternDetail>, StoreError> {
        let keys = Keys::new(tenant);
        let components = self.components(&keys).await?;
        self.pattern_detail(&keys, &components, id).await
    }

    async fn named_patterns(&self, tenant: &str, top: usize) -> Result<Vec<PatternSummary>, StoreError> {
        let keys = &Keys::new(tenant);
        let per_partition: Vec<Vec<(Option<u64>, T2Hash)>> = stream::iter(0..PARTITIONS)
            .map(|partition| {
                let mut conn = self.conn();
                async move {
                    let stored: HashMap<String, String> = redis::cmd("HGETALL").arg(keys.names(partition)).query_async(&mut conn).await.map_err(unavailable)?;
                    let mut named = Vec::new();
                    for (id, text) in stored {
                        let meta: PatternMeta = serde_json::from_str(&text).map_err(|error| StoreError::Corrupt(format!("pattern name of {id}: {error}")))?;
                        if let (Some(hash), Some(_)) = (T2Hash::from_hex(&id), &meta.name) {
                            named.push((meta.named_at, hash));
                        }
                    }
                    Ok::<_, StoreError>(named)
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let mut named: Vec<(Option<u64>, T2Hash)> = per_partition.into_iter().flatten().collect();
        named.sort_by(|a, b| b.cmp(a));
        let components = &self.components(keys).await?;
        // A family whose shapes carry several names is listed once, with the name that
        // applies; the details are read in order, 16 at a time, until `top` are listed.
        let mut listed = HashSet::new();
        let mut summaries = Vec::new();
        for chunk in named.chunks(16) {
            let ids: Vec<T2Hash> = chunk.iter().map(|(_, id)| *id).collect();
            let details: Vec<Option<PatternDetail>> = stream::iter(ids).map(|id| self.pattern_detail(keys, components, id)).buffered(16).try_collect().await?;
            for detail in details.into_iter().flatten() {
                if summaries.len() < top && detail.summary.name.is_some() && listed.insert(detail.summary.id.clone()) {
                    summaries.push(detail.summary);
                }
            }
            if summaries.len() >= top {
                break;
            }
        }
        Ok(summaries)
    }

    async fn set_pattern_meta(&self, tenant: &str, id: T2Hash, meta: PatternMeta) -> Result<PatternDetail, StoreError> {
        let keys = Keys::new(tenant);
        // Stored under the id of the pattern holding `id` now, so a name given through any of
        // its shapes names the whole family.
        let components = self.components(&keys).await?;
        let target = match self.pattern_detail(&keys, &components, id).await? {
            Some(detail) if detail.summary.units > 0 => T2Hash::from_pattern_id(&detail.summary.id).unwrap_or(id),
            _ => id,
        };
        let meta = serde_json::to_string(&meta).map_err(|error| StoreError::Task(error.to_string()))?;
        let () = redis::cmd("HSET")
            .arg(keys.names(partition_of(target)))
            .arg(target.to_hex())
            .arg(meta)
            .query_async::<i64>(&mut self.conn())
            .await
            .map(|_| ())
            .map_err(unavailable)?;
        self.wait_for_replicas().await?;
        self.pattern_detail(&keys, &components, target).await?.ok_or_else(|| StoreError::Unavailable("pattern vanished after update".into()))
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
        // The rankings count shapes; a family of linked shapes is one pattern.
        let (linked, ranked_linked) = self.linked_patterns(keys, &self.components(keys).await?).await?;
        let ranked: u64 = counts.iter().map(|(_, patterns)| patterns).sum();
        let patterns = ranked.saturating_sub(ranked_linked) + linked.len() as u64;
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

    async fn repo_keys(&self, tenant: &str, repo: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        // HSCAN of the locator (key -> member), from the start each time: the caller removes
        // what it got before asking again. A scan step may return fewer fields than asked,
        // even none while the cursor goes on, and a small hash returns all its fields at once.
        let locator = Keys::new(tenant).locator(repo);
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, fields): (u64, Vec<Vec<u8>>) = redis::cmd("HSCAN")
                .arg(&locator)
                .arg(cursor)
                .arg("COUNT")
                .arg(limit.clamp(1, FIELDS_PER_READ))
                .query_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            for field in fields.chunks(2).filter_map(|pair| pair.first()) {
                keys.push(String::from_utf8(field.clone()).map_err(|_| StoreError::Corrupt(format!("a key of repository {repo} is not UTF-8")))?);
            }
            cursor = next;
            if cursor == 0 || keys.len() >= limit {
                keys.truncate(limit);
                return Ok(keys);
            }
        }
    }

    async fn forget_repo_batches(&self, tenant: &str, repo: &str) -> Result<u64, StoreError> {
        // Under the repository's lock, so that no batch is between its duplicate check and its
        // record meanwhile. UNLINK frees a large hash off Redis's main thread, so this is one
        // bounded step however many batch ids the repository collected.
        let keys = Keys::new(tenant);
        let lock = RepoLock::acquire(&self.connection, &keys.lock(repo)).await?;
        let result = async {
            let mut pipe = redis::pipe();
            pipe.cmd("HLEN").arg(keys.batches(repo)).cmd("UNLINK").arg(keys.batches(repo)).ignore();
            let (forgotten,): (u64,) = pipe.query_async(&mut self.conn()).await.map_err(unavailable)?;
            // A repository without units leaves the team's set (a batch that removed the last
            // unit already did; this covers one interrupted in between).
            let units: u64 = redis::cmd("HLEN").arg(keys.locator(repo)).query_async(&mut self.conn()).await.map_err(unavailable)?;
            if units == 0 {
                let _: i64 = redis::cmd("SREM").arg(keys.repos()).arg(repo).query_async(&mut self.conn()).await.map_err(unavailable)?;
            }
            self.wait_for_replicas().await?;
            lock.still_held()?;
            Ok(forgotten)
        }
        .await;
        lock.release().await;
        result
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Every acknowledged batch already waited for its replica; nothing is buffered here.
        Ok(())
    }

    async fn analyses(&self, tenant: &str, analysis: &str, hashes: &[ContentHash], policy: &AnalysisPolicy) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.lookup_analyses(tenant, analysis, hashes, policy).await
    }

    async fn store_analyses(&self, tenant: &str, analysis: &str, entries: AnalysisEntries, policy: &AnalysisPolicy) -> Result<u32, StoreError> {
        self.store_analysis_entries(tenant, analysis, entries, policy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a pack back into (field, entries) runs, as `apply.lua` reads it.
    fn runs(pack: &[u8]) -> Vec<([u8; 2], usize)> {
        let mut runs = Vec::new();
        let mut rest = pack;
        while !rest.is_empty() {
            let count = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            runs.push(([rest[0], rest[1]], count));
            rest = &rest[4 + count * BAND_ENTRY_LEN..];
        }
        runs
    }

    #[test]
    fn a_band_pack_holds_every_entry_and_splits_fields_beyond_a_count() {
        let many = vec![7u8; (usize::from(u16::MAX) + 3) * BAND_ENTRY_LEN];
        let few = vec![9u8; 2 * BAND_ENTRY_LEN];
        let empty = Vec::new();
        let fields = [([0u8, 1], &many), ([0u8, 2], &few), ([0u8, 3], &empty)];
        let pack = band_pack(fields.iter().map(|(field, entries)| (field, *entries)));
        assert_eq!(runs(&pack), vec![([0, 1], usize::from(u16::MAX)), ([0, 1], 3), ([0, 2], 2)]);
        assert_eq!(pack.len(), 3 * 4 + many.len() + few.len());
    }
}
