//! The Redis Cluster backend against a real 6-node cluster on loopback: the storage
//! conformance suite (the analysis cache included, with its key layout and memory per entry),
//! two `periodic-edge` replicas serving one cluster (and how late one sees the other's writes
//! with the default cache TTL; an analysis uploaded through one found through the other),
//! `kill -9` of a master under a write and query load through both replicas, losing an edge
//! replica, and a restart of the whole cluster from its data. Loads are bounded in count and
//! time.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Edge, client, create_token};
use periodic_edge::store::conformance::{self, batch, sketch_of, t2_of};
use periodic_edge::store::analyses::{ENTRY_OVERHEAD_BYTES, charged_bytes};
use periodic_edge::store::redis::analyses::analysis_member;
use periodic_edge::store::redis::{RedisOptions, RedisStore, layout, reads};
use periodic_edge::store::{AnalysisPolicy, QueryOptions, Store};
use periodic_edge::uplink::{Uplink, UplinkConfig};
use periodic_wire::{AnalysisEntry, AnalysisLookup, AnalysisLookupLine, AnalysisUpload, AnalysisUploadAck, DeltaAck, DeltaBatch, QueryRequest, QueryResponse, QuerySketch, Stats};
use redis_cluster::RedisCluster;

/// The tests of this file run one at a time: each runs its own six Redis nodes and edge
/// replicas, and on a small machine parallel clusters would only slow each other's failovers.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn edge_on(cluster: &RedisCluster, dir: &std::path::Path, name: &str, tokens: &std::path::Path) -> Edge {
    let url = cluster.url();
    Edge::start(&dir.join(name), tokens, &["--store", &url, "--cache-ttl", "1", "--request-timeout", "20", "--rate-limit", "100000", "--rate-burst", "100000"])
}

/// An edge on `cluster` with the cache TTL the server picks for a shared store by itself.
fn edge_with_default_cache_ttl(cluster: &RedisCluster, dir: &std::path::Path, name: &str, tokens: &std::path::Path) -> Edge {
    let url = cluster.url();
    Edge::start(&dir.join(name), tokens, &["--store", &url, "--request-timeout", "20", "--rate-limit", "100000", "--rate-burst", "100000"])
}

async fn post_batch(edge: &Edge, token: &str, repo: &str, numbers: std::ops::Range<u64>, id: &str) -> Result<DeltaAck, String> {
    let response = client()
        .post(edge.url(&format!("/v1/repos/{repo}/deltas")))
        .bearer_auth(token)
        .timeout(Duration::from_secs(25))
        .json(&batch(id, numbers))
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{status}: {}", response.text().await.unwrap_or_default()));
    }
    response.json().await.map_err(|error| error.to_string())
}

/// Exact matches of `numbers` in `repo` found through `edge`; `top_k` keeps the cache keys of
/// this check apart from those of the load.
async fn missing_units(edge: &Edge, token: &str, repo: &str, numbers: &[u64], top_k: usize) -> Vec<u64> {
    let mut missing = Vec::new();
    for chunk in numbers.chunks(100) {
        let request = QueryRequest {
            sketches: chunk.iter().map(|&n| QuerySketch { id: n.to_string(), t2_hash: t2_of(n), sketch: sketch_of(n) }).collect(),
            exclude_repo: None,
            min_similarity: Some(1.0),
            top_k: Some(top_k as u32),
        };
        let response = client().post(edge.url("/v1/query")).bearer_auth(token).json(&request).send().await.unwrap();
        assert_eq!(response.status(), 200, "query through {}", edge.base);
        let response: QueryResponse = response.json().await.unwrap();
        for (result, &number) in response.results.iter().zip(chunk) {
            if !result.matches.iter().any(|m| m.repo == repo && m.exact && m.key == format!("unit-{number}")) {
                missing.push(number);
            }
        }
    }
    missing
}

async fn stats(edge: &Edge, token: &str) -> Stats {
    client().get(edge.url("/v1/stats")).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_on_a_real_redis_cluster() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = RedisCluster::start(false);
    let store = Arc::new(RedisStore::connect(RedisOptions::from_url(&cluster.url()).unwrap()).await.unwrap());
    store.watch();
    let store: Arc<dyn Store> = store;
    conformance::run_all(store.clone()).await;
    // A member left in a band bucket (as an interrupted batch can leave one) never reaches an
    // answer: candidates are re-checked against their records.
    let tenant = "leftover-check";
    store.apply_batch(tenant, "r", batch("b1", 0..3)).await.unwrap();
    let stray = layout::member(tenant, "r", "unit-2", t2_of(2));
    let slot = layout::band_slot(sketch_of(1).band_keys()[0]);
    let bands = layout::Keys::new(tenant).bands(slot.partition);
    let client = redis::cluster::ClusterClient::new(vec![cluster.url().replace("redis-cluster://", "redis://").split(',').next().unwrap().to_string()]).unwrap();
    let mut connection = client.get_async_connection().await.unwrap();
    let field_value: Option<Vec<u8>> = redis::cmd("HGET").arg(&bands).arg(&slot.field[..]).query_async(&mut connection).await.unwrap();
    let mut field_value = field_value.expect("unit-1's band bucket is stored");
    assert_eq!(layout::bucket_members(&field_value, slot.tag).unwrap(), vec![layout::member(tenant, "r", "unit-1", t2_of(1))]);
    field_value.extend_from_slice(&layout::band_entry(slot.tag, &stray));
    let () = redis::cmd("HSET").arg(&bands).arg(&slot.field[..]).arg(&field_value).query_async::<i64>(&mut connection).await.map(|_| ()).unwrap();
    let options = QueryOptions { exclude_repo: None, min_similarity: 0.0, top_k: 10 };
    let found = store.query(tenant, &[QuerySketch { id: "q".into(), t2_hash: t2_of(1), sketch: sketch_of(1) }], &options).await.unwrap();
    assert_eq!(found[0].matches.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), vec!["unit-1"]);
    // The cloud uplink learns through this store which fingerprints a batch takes away.
    uplink_sees_what_a_batch_removes_or_replaces(&*store).await;
    a_reapplied_batch_leaves_the_partitions_as_one_application_did(&cluster, &*store).await;
    concurrent_queries_each_get_their_own_answer(store.clone()).await;
    analysis_cache_lives_in_one_slot_and_evicted_entries_leave_nothing(&cluster, &*store).await;
    reads_group_keys_by_the_master_redis_assigns_them(&cluster).await;
    assert!(RedisOptions::from_url("redis://127.0.0.1:1").is_err());
    assert!(RedisOptions::from_url("redis-cluster://127.0.0.1").is_err());
}

/// Every record, group, group info, unit count and band field of `tenant`, partition by partition.
async fn partition_contents(cluster: &RedisCluster, tenant: &str) -> Vec<(String, std::collections::BTreeMap<Vec<u8>, Vec<u8>>)> {
    let client = redis::cluster::ClusterClient::new(vec![cluster.url().replace("redis-cluster://", "redis://").split(',').next().expect("a seed node").to_string()])
        .expect("a cluster client");
    let mut connection = client.get_async_connection().await.expect("a cluster connection");
    let keys = layout::Keys::new(tenant);
    let mut contents = Vec::new();
    for partition in 0..layout::PARTITIONS {
        for key in [keys.records(partition), keys.groups(partition), keys.group_info(partition), keys.bands(partition)] {
            let fields: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL").arg(&key).query_async(&mut connection).await.expect("HGETALL");
            contents.push((key, fields));
        }
        let count: Option<Vec<u8>> = redis::cmd("GET").arg(keys.unit_count(partition)).query_async(&mut connection).await.expect("GET");
        contents.push((keys.unit_count(partition), count.map(|count| (b"count".to_vec(), count)).into_iter().collect()));
    }
    contents
}

/// A batch applied again before its id was recorded (the retry of a batch interrupted after
/// its scripts ran) leaves every partition as one application did: a band entry a field holds
/// is not added again, whether an earlier batch or this one put it there, and units with one
/// sketch share its buckets.
async fn a_reapplied_batch_leaves_the_partitions_as_one_application_did(cluster: &RedisCluster, store: &dyn Store) {
    let tenant = "reapply-check";
    store.apply_batch(tenant, "r", batch("b1", 0..200)).await.expect("the first batch is applied");
    // Units 200..400 have the sketches of units 0..100, two units each.
    let mut second = batch("b2", 200..400);
    for (number, upsert) in (200u64..).zip(second.upserts.iter_mut()) {
        upsert.sketch = sketch_of(number % 100);
    }
    store.apply_batch(tenant, "r", second.clone()).await.expect("the second batch is applied");
    let once = partition_contents(cluster, tenant).await;
    let client = redis::cluster::ClusterClient::new(vec![cluster.url().replace("redis-cluster://", "redis://").split(',').next().expect("a seed node").to_string()])
        .expect("a cluster client");
    let mut connection = client.get_async_connection().await.expect("a cluster connection");
    let keys = layout::Keys::new(tenant);
    let () = redis::cmd("HDEL").arg(keys.batches("r")).arg("b2").query_async::<i64>(&mut connection).await.map(|_| ()).expect("HDEL");
    let again = store.apply_batch(tenant, "r", second).await.expect("the batch is applied again");
    assert!(!again.duplicate, "the batch id was forgotten, so the batch ran again");
    assert_eq!(partition_contents(cluster, tenant).await, once);
    let slot = layout::band_slot(sketch_of(0).band_keys()[0]);
    let field_value: Vec<u8> = redis::cmd("HGET").arg(keys.bands(slot.partition)).arg(&slot.field[..]).query_async(&mut connection).await.expect("HGET");
    let mut members = layout::bucket_members(&field_value, slot.tag).expect("a band field");
    members.sort_unstable();
    let mut expected: Vec<layout::Member> = [0u64, 200, 300].iter().map(|&number| layout::member(tenant, "r", &format!("unit-{number}"), t2_of(number))).collect();
    expected.sort_unstable();
    assert_eq!(members, expected);
}

/// Query reads are sent as one pipeline per master, grouped by the slot the edge computes for
/// each key and the masters `CLUSTER SLOTS` names: both must agree with the cluster's own.
async fn reads_group_keys_by_the_master_redis_assigns_them(cluster: &RedisCluster) {
    let client = redis::cluster::ClusterClient::new(vec![cluster.url().replace("redis-cluster://", "redis://").split(',').next().unwrap().to_string()]).unwrap();
    let mut connection = client.get_async_connection().await.unwrap();
    let keys = layout::Keys::new("slot-check");
    let mut names: Vec<String> = (0..layout::PARTITIONS).flat_map(|partition| [keys.bands(partition), keys.records(partition), keys.groups(partition)]).collect();
    names.extend([keys.locator("billing"), keys.repos(), keys.analysis_lru(), "foo".into(), "{}x".into(), "a{}b{c}".into(), "{user1000}.following".into()]);
    for name in &names {
        let expected: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(name).query_async(&mut connection).await.unwrap();
        assert_eq!(i64::from(reads::key_slot(name.as_bytes())), expected, "slot of {name}");
    }
    let reply: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut connection).await.unwrap();
    let owners = reads::SlotOwners::from_cluster_slots(reply).expect("CLUSTER SLOTS parses");
    let masters: std::collections::HashSet<u16> = (0..16_384u16).map(|slot| owners.of(slot).expect("every slot has a master")).collect();
    assert_eq!(masters.len(), cluster.masters().len());
}

/// The analysis cache on the cluster: a tenant's entry keys and bookkeeping share one slot,
/// an evicted entry's key and bookkeeping are gone (not only unreachable), and what an entry
/// costs beyond its own bytes (printed; docs/scaling.md quotes it) stays near what the
/// budget charges for it.
async fn analysis_cache_lives_in_one_slot_and_evicted_entries_leave_nothing(cluster: &RedisCluster, store: &dyn Store) {
    let tenant = "analysis-layout";
    let keys = layout::Keys::new(tenant);
    let entry_key = |number: u64| keys.analysis_entry(&analysis_member("engine-1", &conformance::content_hash(number)));
    let client = redis::cluster::ClusterClient::new(vec![cluster.url().replace("redis-cluster://", "redis://").split(',').next().unwrap().to_string()]).unwrap();
    let mut connection = client.get_async_connection().await.unwrap();
    let slot_of = |key: String| redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).clone();
    let slot: i64 = slot_of(keys.analysis_lru()).query_async(&mut connection).await.unwrap();
    for key in [keys.analysis_sizes(), keys.analysis_meta(), entry_key(1), entry_key(2)] {
        let other: i64 = slot_of(key.clone()).query_async(&mut connection).await.unwrap();
        assert_eq!(other, slot, "{key} is in the tenant's analysis slot");
    }

    const ENTRIES: u64 = 1000;
    const LEN: usize = 1000;
    let roomy = AnalysisPolicy { budget_bytes: 1 << 30, ttl: Duration::from_secs(3600) };
    let entries: Vec<([u8; 32], Vec<u8>)> = (0..ENTRIES).map(|n| (conformance::content_hash(n), conformance::analysis_entry(n, 0, LEN))).collect();
    assert_eq!(store.store_analyses(tenant, "engine-1", entries, &roomy).await.unwrap(), ENTRIES as u32);
    let mut usage = async |key: String| -> u64 { redis::cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0).query_async::<Option<u64>>(&mut connection).await.unwrap().unwrap_or(0) };
    let mut entry_keys = 0;
    for number in 0..ENTRIES {
        entry_keys += usage(entry_key(number)).await;
    }
    let bookkeeping = usage(keys.analysis_lru()).await + usage(keys.analysis_sizes()).await + usage(keys.analysis_meta()).await;
    let per_entry_overhead = (entry_keys + bookkeeping) as f64 / ENTRIES as f64 - LEN as f64;
    // A large entry also pays the allocator's size class (jemalloc: up to a quarter above).
    store.store_analyses(tenant, "engine-large", vec![(conformance::content_hash(0), vec![7; 300_000])], &roomy).await.unwrap();
    let large = usage(keys.analysis_entry(&analysis_member("engine-large", &conformance::content_hash(0)))).await;
    eprintln!(
        "analysis cache on Redis: {ENTRIES} entries of {LEN} B: entry keys {entry_keys} B, bookkeeping {bookkeeping} B: {per_entry_overhead:.0} B per entry beyond its bytes (one copy); a 300,000 B entry's key: {large} B"
    );
    assert!(per_entry_overhead < 2.0 * ENTRY_OVERHEAD_BYTES as f64, "{per_entry_overhead:.0} B per entry");

    // Lower the budget to half (an upload of nothing evicts): half the entries go, keys and
    // bookkeeping alike. The large entry, the most recently used, stays.
    let half = AnalysisPolicy { budget_bytes: ENTRIES / 2 * charged_bytes(LEN) + charged_bytes(300_000), ..roomy };
    store.store_analyses(tenant, "engine-1", Vec::new(), &half).await.unwrap();
    let (held, sized, total): (u64, u64, u64) = redis::pipe()
        .cmd("ZCARD")
        .arg(keys.analysis_lru())
        .cmd("HLEN")
        .arg(keys.analysis_sizes())
        .cmd("HGET")
        .arg(keys.analysis_meta())
        .arg("bytes")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!((held, sized, total), (ENTRIES / 2 + 1, ENTRIES / 2 + 1, half.budget_bytes));
    let existing: u64 = redis::cmd("EXISTS").arg((0..ENTRIES).map(entry_key).collect::<Vec<_>>()).query_async(&mut connection).await.unwrap();
    assert_eq!(existing, ENTRIES / 2, "an evicted entry's key is deleted");
    // Every key of the cache carries the TTL.
    for key in [keys.analysis_lru(), keys.analysis_sizes(), keys.analysis_meta(), keys.analysis_entry(&analysis_member("engine-large", &conformance::content_hash(0)))] {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut connection).await.unwrap();
        assert!(ttl > 0 && ttl <= 3_600_000, "{key}: PTTL {ttl}");
    }
}

/// Concurrent queries' reads are merged into shared commands (store::redis::reads): every
/// query must still get exactly its own answer, in its own order, and no other query's.
async fn concurrent_queries_each_get_their_own_answer(store: Arc<dyn Store>) {
    let tenant = "coalesced-reads";
    store.apply_batch(tenant, "r", batch("b1", 0..300)).await.unwrap();
    let options = QueryOptions { exclude_repo: None, min_similarity: 0.9, top_k: 5 };
    let queries = (0..200u64).map(|n| {
        let store = store.clone();
        let options = options.clone();
        tokio::spawn(async move {
            // Units 0..300 are stored; 300.. are not, so every fourth query must find nothing.
            let number = if n % 4 == 3 { 1000 + n } else { n };
            let sketches = [QuerySketch { id: format!("q{n}"), t2_hash: t2_of(number), sketch: sketch_of(number) }];
            (number, store.query(tenant, &sketches, &options).await.unwrap())
        })
    });
    for query in queries.collect::<Vec<_>>() {
        let (number, results) = query.await.unwrap();
        assert_eq!(results.len(), 1);
        let keys: Vec<&str> = results[0].matches.iter().map(|m| m.key.as_str()).collect();
        if number < 300 {
            assert_eq!(keys, vec![format!("unit-{number}")], "query for unit {number}");
        } else {
            assert!(keys.is_empty(), "query for unstored unit {number} found {keys:?}");
        }
    }
}

/// The uplink's view of a batch on this backend: the fingerprints it adds, and those its
/// removed and replaced keys held before it (so that the cloud's counts of them drop).
async fn uplink_sees_what_a_batch_removes_or_replaces(store: &dyn Store) {
    let dir = tempfile::tempdir().unwrap();
    let uplink = Uplink::open(UplinkConfig {
        // Never contacted: only the lookup of touched fingerprints is exercised here.
        url: "http://127.0.0.1:9".into(),
        token: "unused".into(),
        outbox_path: dir.path().join("outbox.db"),
        batch_size: 1000,
        push_interval: Duration::from_secs(60),
        retry_base: Duration::from_millis(500),
        retry_max: Duration::from_secs(60),
        cache_ttl: Duration::from_secs(60),
        root_cert_pem: None,
    })
    .unwrap();
    let tenant = "uplink-check";
    store.apply_batch(tenant, "r", batch("b1", 0..5)).await.unwrap();
    let mut reshaped = conformance::unit(77);
    reshaped.key = "unit-1".into();
    let change = DeltaBatch { batch_id: "b2".into(), upserts: vec![reshaped], removals: vec!["unit-3".into(), "never-stored".into()] };
    let touched = uplink.fingerprints_touched(store, tenant, "r", &change).await;
    let mut expected = vec![t2_of(1), t2_of(3), t2_of(77)];
    expected.sort();
    assert_eq!(touched, expected, "added, replaced and removed fingerprints");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_edge_replicas_serve_the_same_data_and_one_survives_the_other() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = RedisCluster::start(false);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let token = create_token(&tokens, "team", "write");
    let mut first = edge_on(&cluster, dir.path(), "first", &tokens);
    let second = edge_with_default_cache_ttl(&cluster, dir.path(), "second", &tokens);

    post_batch(&first, &token, "billing", 0..50, "b1").await.unwrap();
    post_batch(&first, &token, "ledger", 0..5, "b1").await.unwrap();
    assert!(missing_units(&second, &token, "billing", &(0..50).collect::<Vec<_>>(), 5).await.is_empty());
    let through_second = stats(&second, &token).await;
    assert_eq!((through_second.units, through_second.repos, through_second.patterns), (55, 2, 5));
    // A retry through the other replica is recognised as the same batch.
    let retry = post_batch(&second, &token, "billing", 0..50, "b1").await.unwrap();
    assert!(retry.duplicate);
    // A pattern named through one replica is named for the other.
    let path = format!("/v1/patterns/{}", t2_of(3).to_hex());
    client().put(second.url(&path)).bearer_auth(&token).json(&serde_json::json!({"name": "money"})).send().await.unwrap().error_for_status().unwrap();
    let detail: serde_json::Value = client().get(first.url(&path)).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(detail["summary"]["name"], "money");
    assert_eq!(detail["summary"]["units"], 2);
    // An analysis uploaded through one replica is a hit through the other (the analysis cache
    // is not cached per replica), answered as NDJSON ending with the done line.
    analysis_uploaded_through_one_replica_is_found_through_the_other(&first, &second, &token).await;

    // Staleness bound: `second` has cached an answer without units 60..70; once they are
    // written through `first`, `second` finds them within its default TTL on a shared store
    // (2 s; the embedded store's 30 s would fail this), plus the time the requests take.
    let late: Vec<u64> = (60..70).collect();
    assert_eq!(missing_units(&second, &token, "billing", &late, 8).await, late);
    post_batch(&first, &token, "billing", 60..70, "b-late").await.unwrap();
    let written = Instant::now();
    while !missing_units(&second, &token, "billing", &late, 8).await.is_empty() {
        assert!(written.elapsed() < Duration::from_secs(10), "another replica's write still unseen 10 s later");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Losing one replica: the other keeps reading and writing.
    first.kill9();
    post_batch(&second, &token, "billing", 50..60, "b2").await.unwrap();
    assert!(missing_units(&second, &token, "billing", &(0..70).collect::<Vec<_>>(), 6).await.is_empty());
    let ready = client().get(second.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

async fn analysis_uploaded_through_one_replica_is_found_through_the_other(first: &Edge, second: &Edge, token: &str) {
    use base64::Engine as _;
    let hex = |hash: [u8; 32]| hash.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
    let entry = conformance::analysis_entry(1, 3, 250_000);
    let upload = AnalysisUpload {
        analysis: "engine-1:abc".into(),
        entries: vec![AnalysisEntry { hash: hex(conformance::content_hash(1)), entry: base64::engine::general_purpose::STANDARD.encode(&entry) }],
    };
    let ack: AnalysisUploadAck = client().post(first.url("/v1/analyses")).bearer_auth(token).json(&upload).send().await.unwrap().json().await.unwrap();
    assert_eq!(ack.stored, 1);
    let lookup = AnalysisLookup { analysis: "engine-1:abc".into(), hashes: vec![hex(conformance::content_hash(2)), hex(conformance::content_hash(1))] };
    let answer = client().post(second.url("/v1/analyses/lookup")).bearer_auth(token).json(&lookup).send().await.unwrap();
    assert_eq!(answer.headers()["content-type"], "application/x-ndjson");
    let text = answer.text().await.unwrap();
    let lines: Vec<AnalysisLookupLine> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let hit = AnalysisLookupLine::Hit(upload.entries[0].clone());
    assert_eq!(lines, vec![hit, AnalysisLookupLine::Done { done: true, hits: 1 }]);
}

/// One request of the load, timed in seconds from the start of the load. A request that
/// ended before the kill must have succeeded; one in flight at the kill may fail; one sent
/// after the service recovered must succeed.
struct Outcome {
    sent_at: f64,
    ended_at: f64,
    ok: bool,
}

#[derive(Default)]
struct LoadLog {
    /// Every request of the load.
    outcomes: Vec<Outcome>,
    acknowledged: Vec<(String, std::ops::Range<u64>)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_master_under_load_loses_no_acknowledged_batch() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let mut cluster = RedisCluster::start(false);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let token = create_token(&tokens, "team", "write");
    let edges = Arc::new([edge_on(&cluster, dir.path(), "first", &tokens), edge_on(&cluster, dir.path(), "second", &tokens)]);
    let log = Arc::new(Mutex::new(LoadLog::default()));
    let started = Instant::now();
    // The load: 4 writers (each its own repository, batches of 40 units, alternating
    // replicas, each batch retried until acknowledged) and 2 readers, for 25 s at most.
    const LOAD_SECONDS: f64 = 25.0;
    let mut tasks = Vec::new();
    for writer in 0..4u64 {
        let (edges, log, token) = (edges.clone(), log.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let repo = format!("repo{writer}");
            for number in 0..400u64 {
                let first_unit = writer * 1_000_000 + number * 40;
                let (id, range) = (format!("w{writer}-{number}"), first_unit..first_unit + 40);
                loop {
                    let elapsed = started.elapsed().as_secs_f64();
                    if elapsed > LOAD_SECONDS {
                        return;
                    }
                    let edge = &edges[(number % 2) as usize];
                    let sent_at = started.elapsed().as_secs_f64();
                    let result = post_batch(edge, &token, &repo, range.clone(), &id).await;
                    {
                        let mut log = log.lock().unwrap();
                        log.outcomes.push(Outcome { sent_at, ended_at: started.elapsed().as_secs_f64(), ok: result.is_ok() });
                        if result.is_ok() {
                            log.acknowledged.push((repo.clone(), range.clone()));
                        }
                    }
                    if result.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    for reader in 0..2usize {
        let (edges, log, token) = (edges.clone(), log.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut round = 0u64;
            while started.elapsed().as_secs_f64() < LOAD_SECONDS {
                round += 1;
                let request = QueryRequest {
                    sketches: (0..20).map(|n| QuerySketch { id: n.to_string(), t2_hash: t2_of(round * 20 + n), sketch: sketch_of(round * 20 + n) }).collect(),
                    exclude_repo: None,
                    min_similarity: Some(0.5),
                    top_k: Some(5),
                };
                let sent_at = started.elapsed().as_secs_f64();
                let response = client().post(edges[reader].url("/v1/query")).bearer_auth(&token).timeout(Duration::from_secs(25)).json(&request).send().await;
                let ok = response.is_ok_and(|response| response.status().is_success());
                log.lock().unwrap().outcomes.push(Outcome { sent_at, ended_at: started.elapsed().as_secs_f64(), ok });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    // Kill a master once the load runs; a supervisor would start it again a second later
    // (it rejoins as a replica of the promoted one). The harness waits on processes, so it
    // runs off the two runtime threads that carry the load.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (cluster, killed_at) = tokio::task::spawn_blocking(move || {
        let victim = cluster.masters()[0];
        let killed_at = started.elapsed().as_secs_f64();
        cluster.kill9(victim);
        std::thread::sleep(Duration::from_secs(1));
        cluster.restart(victim);
        (cluster, killed_at)
    })
    .await
    .unwrap();
    for task in tasks {
        task.await.unwrap();
    }

    let log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();
    let failures_after_kill: Vec<f64> = log.outcomes.iter().filter(|outcome| !outcome.ok && outcome.ended_at >= killed_at).map(|outcome| outcome.sent_at).collect();
    let last_failure = failures_after_kill.iter().copied().fold(killed_at, f64::max);
    eprintln!(
        "master killed at {killed_at:.1} s; {} requests failed after it, the last of them sent at {last_failure:.1} s; {} requests, {} batches acknowledged",
        failures_after_kill.len(),
        log.outcomes.len(),
        log.acknowledged.len()
    );
    assert!(log.outcomes.iter().all(|outcome| outcome.ok || outcome.ended_at >= killed_at), "requests failed before the kill");
    assert!(
        last_failure - killed_at < 10.0,
        "service not recovered within 10 s of the kill (a request sent {:.1} s after it failed)",
        last_failure - killed_at
    );
    let after_recovery = log.outcomes.iter().filter(|outcome| outcome.ok && outcome.sent_at > last_failure).count();
    assert!(after_recovery >= 20, "too little load after recovery to show it: {after_recovery} requests");

    cluster.wait_healthy(Duration::from_secs(30));
    for (index, edge) in edges.iter().enumerate() {
        for writer in 0..4u64 {
            let repo = format!("repo{writer}");
            let numbers: Vec<u64> = log.acknowledged.iter().filter(|(r, _)| *r == repo).flat_map(|(_, range)| range.clone()).collect();
            let missing = missing_units(edge, &token, &repo, &numbers, 7 + index).await;
            assert!(missing.is_empty(), "acknowledged units missing in {repo}: {} of {}, e.g. {:?}", missing.len(), numbers.len(), &missing[..missing.len().min(5)]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_whole_cluster_from_its_data_loses_nothing_acknowledged() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let mut cluster = RedisCluster::start(true);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let token = create_token(&tokens, "team", "write");
    let edge = edge_on(&cluster, dir.path(), "edge", &tokens);
    for number in 0..10u64 {
        post_batch(&edge, &token, "kept", number * 30..number * 30 + 30, &format!("b{number}")).await.unwrap();
    }
    client()
        .put(edge.url(&format!("/v1/patterns/{}", t2_of(7).to_hex())))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "kept name"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let before = stats(&edge, &token).await;

    // Every node dies at once, then starts again from its directory.
    cluster.kill_all();
    cluster.restart_all();
    cluster.wait_healthy(Duration::from_secs(60));

    // The same edge process reconnects by itself (bounded wait for readiness).
    let deadline = Instant::now() + Duration::from_secs(30);
    while client().get(edge.url("/health/ready")).send().await.map(|r| r.status()).ok() != Some(reqwest::StatusCode::OK) {
        assert!(Instant::now() < deadline, "edge not ready within 30 s of the cluster's return");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stats(&edge, &token).await, before);
    assert!(missing_units(&edge, &token, "kept", &(0..300).collect::<Vec<_>>(), 9).await.is_empty());
    let detail: serde_json::Value = client().get(edge.url(&format!("/v1/patterns/{}", t2_of(7).to_hex()))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(detail["summary"]["name"], "kept name");
    let retry = post_batch(&edge, &token, "kept", 0..30, "b0").await.unwrap();
    assert!(retry.duplicate, "the batch log survived the restart");
}

/// One answer to a push: status, `Retry-After` seconds, error kind.
struct PushAnswer {
    status: reqwest::StatusCode,
    retry_after: Option<u64>,
    kind: String,
}

async fn push_once(edge: &Edge, token: &str, repo: &str, batch: &DeltaBatch) -> PushAnswer {
    let response = client()
        .post(edge.url(&format!("/v1/repos/{repo}/deltas")))
        .bearer_auth(token)
        .timeout(Duration::from_secs(25))
        .json(batch)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response.headers().get("retry-after").and_then(|value| value.to_str().ok()?.parse().ok());
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    PushAnswer { status, retry_after, kind: body["error"].as_str().unwrap_or_default().to_string() }
}

/// The layout docs/deploy.md describes (one replica per master) with the default
/// `--redis-wait-replicas 1`: a master dies and stays dead, so its promoted replica has no
/// replica of its own. Writes answer 503 with Retry-After (the store cannot confirm them),
/// never 500; the episode is logged once; nothing is acknowledged. Once the node is back, the
/// same batch (the client's retry) goes through within seconds, and its units are there: the
/// failed attempts left no repository lock behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_lost_for_good_answers_503_and_the_same_push_succeeds_once_it_is_back() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = RedisCluster::start(false);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let token = create_token(&tokens, "team", "write");
    let log = dir.path().join("edge.log");
    let url = cluster.url();
    let edge = Edge::start_logging_to(
        &dir.path().join("edge"),
        &tokens,
        &["--store", &url, "--cache-ttl", "1", "--request-timeout", "20", "--rate-limit", "100000", "--rate-burst", "100000"],
        &log,
    );
    post_batch(&edge, &token, "billing", 0..50, "b0").await.unwrap();

    // The master holding the repository's lock and batch log: the worst one to lose.
    let victim = cluster.master_of(&layout::Keys::new("team").lock("billing"));
    let mut cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.kill9(victim);
        cluster
    })
    .await
    .unwrap();
    let killed_at = Instant::now();

    // The client's view: the same batch retried (as `periodic lsp` and `scan --edge` do), for
    // 12 s, through the failover and the degraded state after it.
    let retried = batch("b1", 50..100);
    let mut answers = Vec::new();
    while killed_at.elapsed() < Duration::from_secs(12) {
        let answer = push_once(&edge, &token, "billing", &retried).await;
        answers.push(answer);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let summary: Vec<String> = answers.iter().map(|answer| format!("{} {}", answer.status.as_u16(), answer.kind)).collect();
    eprintln!("answers while the master was gone: {summary:?}");
    assert!(answers.iter().all(|answer| answer.status != reqwest::StatusCode::INTERNAL_SERVER_ERROR), "a 500 while the store was degraded: {summary:?}");
    assert!(answers.iter().all(|answer| !answer.status.is_success()), "a write acknowledged without its replica: {summary:?}");
    let unavailable: Vec<&PushAnswer> = answers.iter().filter(|answer| answer.status == reqwest::StatusCode::SERVICE_UNAVAILABLE).collect();
    assert!(unavailable.len() >= 3, "{summary:?}");
    assert!(unavailable.iter().all(|answer| answer.retry_after.is_some_and(|seconds| seconds >= 1) && answer.kind == "storage_unavailable"), "{summary:?}");
    let metrics = client().get(edge.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("edge_store_unavailable_total{op=\"apply_batch\"}"), "unavailable writes are counted:\n{metrics}");

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart(victim);
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    })
    .await
    .unwrap();
    let healthy_at = Instant::now();
    let acknowledged = loop {
        let answer = push_once(&edge, &token, "billing", &retried).await;
        if answer.status.is_success() {
            break healthy_at.elapsed();
        }
        assert_ne!(answer.status, reqwest::StatusCode::INTERNAL_SERVER_ERROR, "a 500 after the node came back");
        assert!(healthy_at.elapsed() < Duration::from_secs(5), "the push still fails {:?} after the cluster is healthy: {} {}", healthy_at.elapsed(), answer.status, answer.kind);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("the retried push succeeded {:.2} s after the cluster was healthy again", acknowledged.as_secs_f64());
    assert!(missing_units(&edge, &token, "billing", &(0..100).collect::<Vec<_>>(), 5).await.is_empty());
    drop(edge);
    drop(cluster);

    let log = std::fs::read_to_string(&log).unwrap();
    let episodes = log.lines().filter(|line| line.contains("storage unavailable or degraded for writes")).count();
    assert!((1..=2).contains(&episodes), "the degraded state is logged once per episode, not per request ({} requests):\n{log}", answers.len());
    let complaints = log.lines().filter(|line| line.contains("WARN") || line.contains("ERROR")).count();
    assert!(complaints <= 8, "{complaints} warnings and errors for one outage of {} requests:\n{log}", answers.len());
}

/// An edge replica killed (`kill -9`) in the middle of a batch leaves its repository's lock
/// behind; the repository's next writer, through another replica, waits one short lease
/// (renewed only while a batch runs), not the length of the longest batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_holding_the_lock_stalls_its_repository_for_one_short_lease() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = RedisCluster::start(false);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let token = create_token(&tokens, "team", "write");
    let mut dying = edge_on(&cluster, dir.path(), "dying", &tokens);
    let surviving = edge_on(&cluster, dir.path(), "surviving", &tokens);
    let lock_key = layout::Keys::new("team").lock("billing");
    let lock_port = cluster.nodes[cluster.master_of(&lock_key)].port;

    let big = {
        let url = dying.url("/v1/repos/billing/deltas");
        let token = token.clone();
        tokio::spawn(async move { client().post(url).bearer_auth(token).json(&batch("big", 0..5000)).send().await.map(|response| response.status()) })
    };
    let lock_seen = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if redis_cluster::cli(lock_port, &["GET", &lock_key]).is_some_and(|value| !value.trim().is_empty()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    })
    .await
    .unwrap();
    assert!(lock_seen, "the big batch never took the repository's lock");
    dying.kill9();
    let killed_at = Instant::now();
    assert!(big.await.unwrap().is_err(), "the killed edge answered");

    let acknowledged = loop {
        match post_batch(&surviving, &token, "billing", 10_000..10_010, "after").await {
            Ok(_) => break killed_at.elapsed(),
            Err(error) => assert!(killed_at.elapsed() < Duration::from_secs(12), "the repository is still locked {:?} after its writer died: {error}", killed_at.elapsed()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("the repository took writes again {:.2} s after its writer was killed", acknowledged.as_secs_f64());
    assert!(missing_units(&surviving, &token, "billing", &(10_000..10_010).collect::<Vec<_>>(), 5).await.is_empty());
}

/// `DELETE /v1/repos/{repo}` on the cluster, in removal batches smaller than the repository:
/// afterwards no key of the repository is left on any master (locator, batch ids, lock), and
/// no record, group entry, band entry, family link or unit count of its units is left in the
/// tenant's partitions; the tenant's other repository and another tenant's repository of the
/// same name keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_repository_leaves_nothing_of_it_on_the_cluster() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = RedisCluster::start(false);
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.json");
    let writer = create_token(&tokens, "team-a", "write");
    let admin = create_token(&tokens, "team-a", "admin");
    let other = create_token(&tokens, "team-b", "admin");
    let url = cluster.url();
    let edge = Edge::start(&dir.path().join("edge"), &tokens, &["--store", &url, "--cache-ttl", "1", "--request-timeout", "20", "--max-batch-units", "500"]);

    for (step, start) in (0..1200u64).step_by(400).enumerate() {
        post_batch(&edge, &writer, "doomed", start..start + 400, &format!("b{step}")).await.expect("push");
    }
    // A near-miss family link held by a unit of the doomed repository only.
    let (x, y) = (9000u64, 9001u64);
    let linked = DeltaBatch {
        batch_id: "family".into(),
        upserts: vec![periodic_wire::UnitUpsert { key: "d-y".into(), family: Some(t2_of(x)), ..conformance::unit(y) }, conformance::unit(x)],
        removals: Vec::new(),
    };
    let response = client().post(edge.url("/v1/repos/doomed/deltas")).bearer_auth(&writer).json(&linked).send().await.expect("push the family");
    assert_eq!(response.status(), 200);
    post_batch(&edge, &writer, "kept", 0..5, "k1").await.expect("push kept");
    post_batch(&edge, &other, "doomed", 0..5, "b0").await.expect("push the other team's");
    assert_eq!(stats(&edge, &writer).await.units, 1207);

    let response = client().delete(edge.url("/v1/repos/doomed")).bearer_auth(&admin).timeout(Duration::from_secs(60)).send().await.expect("delete");
    assert_eq!(response.status(), 200);
    let deleted: periodic_wire::RepoDeleted = response.json().await.expect("answer");
    assert_eq!((deleted.repo.as_str(), deleted.removed), ("doomed", 1202));
    let after = stats(&edge, &writer).await;
    assert_eq!((after.units, after.repos, after.patterns), (5, 1, 0));

    // No key of the repository on any master.
    let keys = layout::Keys::new("team-a");
    let repos_key = keys.repos();
    let prefix = repos_key.split(":{").next().expect("a tenant prefix");
    let mut tenant_keys = Vec::new();
    for master in cluster.masters() {
        let listed = redis_cluster::cli(cluster.nodes[master].port, &["--scan", "--pattern", &format!("{prefix}:*")]).expect("scan a master");
        tenant_keys.extend(listed.lines().map(str::to_string));
    }
    assert!(tenant_keys.iter().any(|key| key.contains(".r.kept}")), "the scan sees the tenant's keys: {tenant_keys:?}");
    let left: Vec<&String> = tenant_keys.iter().filter(|key| key.contains(".r.doomed}")).collect();
    assert!(left.is_empty(), "keys of the deleted repository left: {left:?}");

    // Nothing of its units in the partitions: only `kept`'s five units are there.
    let client = redis::cluster::ClusterClient::new(vec![url.replace("redis-cluster://", "redis://").split(',').next().expect("a node").to_string()]).expect("cluster client");
    let mut connection = client.get_async_connection().await.expect("cluster connection");
    let is_member: bool = redis::cmd("SISMEMBER").arg(&repos_key).arg("doomed").query_async(&mut connection).await.expect("a redis command");
    assert!(!is_member, "the repository left the team's set");
    let kept: std::collections::HashSet<layout::Member> = (0..5).map(|n| layout::member("team-a", "kept", &format!("unit-{n}"), t2_of(n))).collect();
    let doomed_tag = layout::repo_tag("team-a", "doomed");
    let (mut records, mut counted) = (0usize, 0i64);
    for partition in 0..layout::PARTITIONS {
        let stored: std::collections::HashMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL").arg(keys.records(partition)).query_async(&mut connection).await.expect("a redis command");
        for record in stored.values() {
            assert_eq!(layout::decode(record).expect("a record").repo, "kept");
        }
        records += stored.len();
        let groups: std::collections::HashMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL").arg(keys.groups(partition)).query_async(&mut connection).await.expect("a redis command");
        for entries in groups.values() {
            assert!(layout::group_entries(entries).expect("group entries").iter().all(|(member, tag)| *tag != doomed_tag && kept.contains(member)));
        }
        let bands: std::collections::HashMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL").arg(keys.bands(partition)).query_async(&mut connection).await.expect("a redis command");
        for entries in bands.values() {
            assert!(entries.chunks_exact(layout::BAND_ENTRY_LEN).all(|entry| kept.contains(&layout::member_from(&entry[4..]).expect("a member"))), "a band entry of a deleted unit");
        }
        let links: i64 = redis::cmd("HLEN").arg(keys.links(partition)).query_async(&mut connection).await.expect("a redis command");
        assert_eq!(links, 0, "family links of partition {partition}");
        let units: Option<i64> = redis::cmd("GET").arg(keys.unit_count(partition)).query_async(&mut connection).await.expect("a redis command");
        counted += units.unwrap_or(0);
    }
    assert_eq!((records, counted), (5, 5));

    // The other tenant's repository of the same name keeps its units and batch ids.
    let other_keys = layout::Keys::new("team-b");
    let other_units: i64 = redis::cmd("HLEN").arg(other_keys.locator("doomed")).query_async(&mut connection).await.expect("a redis command");
    let other_batches: i64 = redis::cmd("HLEN").arg(other_keys.batches("doomed")).query_async(&mut connection).await.expect("a redis command");
    assert_eq!((other_units, other_batches), (5, 1));
}
