//! Load generator for `periodic-edge` (used by `scripts/bench-edge`): ingests synthetic units
//! in delta batches, or fires similarity queries, over keep-alive HTTP/1.1 connections on
//! loopback, and prints throughput, latency percentiles and counts as one JSON line.
//!
//! The units are synthetic but shaped like real ones: every 8 units form a family derived
//! from one base sketch, each member altering 0 to 24 of the 64 MinHash positions (so
//! near-miss clones at similarity 0.6 to 1.0 exist, and a 0-change member is an exact clone
//! with the family's structural hash), in batches assigned round-robin to 20 repositories.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use periodic_wire::{DeltaBatch, Location, QueryRequest, QuerySketch, SKETCH_LEN, Sketch, T2Hash, UnitUpsert};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Ingest,
    Query,
}

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    token: String,
    #[arg(long, value_enum)]
    mode: Mode,
    /// Units to ingest (ingest), or the population queries are drawn from (query).
    #[arg(long, default_value_t = 1_000_000)]
    units: u64,
    /// Units per delta batch.
    #[arg(long, default_value_t = 2000)]
    batch: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: u64,
    /// Seconds of query load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Sketches per query request.
    #[arg(long, default_value_t = 1)]
    sketches_per_query: usize,
    /// Worker threads of this generator (the rest of the machine is the server's).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

const FAMILY_SIZE: u64 = 8;
const REPOS: u64 = 20;

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn family_sketch(family: u64) -> Sketch {
    let mut values = [0u32; SKETCH_LEN];
    for (position, value) in values.iter_mut().enumerate() {
        *value = splitmix(family * 1000 + position as u64) as u32;
    }
    Sketch(values)
}

/// A family member: `changes` positions (chosen by `seed`) replaced.
fn variant(family: u64, seed: u64, changes: u64) -> Sketch {
    let mut sketch = family_sketch(family);
    for change in 0..changes {
        let random = splitmix(seed ^ (change << 40));
        sketch.0[(random % SKETCH_LEN as u64) as usize] = (random >> 32) as u32;
    }
    sketch
}

fn synthetic_unit(number: u64) -> UnitUpsert {
    let family = number / FAMILY_SIZE;
    let changes = splitmix(number) % 25;
    let t2_hash = if changes == 0 { T2Hash(splitmix(family ^ 0xfeed)) } else { T2Hash(splitmix(number ^ 0xbeef)) };
    UnitUpsert {
        key: format!("{:032x}", u128::from(splitmix(number)) << 64 | u128::from(splitmix(!number))),
        t2_hash,
        sketch: variant(family, number, changes),
        tokens: 30 + (splitmix(number ^ 7) % 400) as u32,
        lines: 5 + (splitmix(number ^ 9) % 60) as u32,
        nesting: 1 + (splitmix(number ^ 11) % 5) as u32,
        language: ["rust", "python", "typescript", "go", "java"][(family % 5) as usize].to_string(),
        location: Some(Location {
            path: format!("src/module_{}/file_{}.rs", number % 500, number % 37),
            name: format!("function_{number}"),
            start_line: (number % 900) as u32 + 1,
            end_line: (number % 900) as u32 + 30,
        }),
    }
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

async fn ingest(args: &Args, http: reqwest::Client) {
    let next = Arc::new(AtomicU64::new(0));
    let sent_units = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (next, sent_units, http) = (next.clone(), sent_units.clone(), http.clone());
        let (url, token, total, batch) = (args.url.clone(), args.token.clone(), args.units, args.batch);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= total {
                    return latencies;
                }
                // A batch is one request for one repository, as a client's outbox sends it.
                let repo = (first / batch) % REPOS;
                let upserts: Vec<UnitUpsert> = (first..(first + batch).min(total)).map(synthetic_unit).collect();
                let count = upserts.len() as u64;
                let body = DeltaBatch { batch_id: format!("load-{first}"), upserts, removals: Vec::new() };
                let request_started = Instant::now();
                let response = http.post(format!("{url}/v1/repos/repo-{repo}/deltas")).bearer_auth(&token).json(&body).send().await.unwrap();
                assert!(response.status().is_success(), "ingest failed: {}", response.status());
                let _ = response.bytes().await.unwrap();
                latencies.push(request_started.elapsed().as_secs_f64());
                sent_units.fetch_add(count, Ordering::Relaxed);
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let units = sent_units.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "mode": "ingest", "units": units, "seconds": seconds, "units_per_second": units as f64 / seconds,
            "requests": latencies.len(), "request_p50_ms": percentile(&latencies, 0.5) * 1e3, "request_p99_ms": percentile(&latencies, 0.99) * 1e3,
        })
    );
}

async fn query(args: &Args, http: reqwest::Client) {
    // Bodies are prepared before the clock starts so the generator spends its CPU on HTTP.
    let bodies: Arc<Vec<bytes::Bytes>> = Arc::new(
        (0..4096u64)
            .map(|request| {
                let sketches = (0..args.sketches_per_query as u64)
                    .map(|index| {
                        let number = splitmix(request * 131 + index) % args.units;
                        let family = number / FAMILY_SIZE;
                        QuerySketch { id: format!("{request}-{index}"), t2_hash: T2Hash(splitmix(number ^ 0xabcd)), sketch: variant(family, number ^ 0x77, 6) }
                    })
                    .collect();
                let body = QueryRequest { sketches, exclude_repo: Some("repo-0".into()), min_similarity: Some(0.6), top_k: Some(10) };
                bytes::Bytes::from(serde_json::to_vec(&body).unwrap())
            })
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let matched = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (bodies, http, matched) = (bodies.clone(), http.clone(), matched.clone());
        let (url, token) = (format!("{}/v1/query", args.url), args.token.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut index = worker as usize * 97;
            while Instant::now() < deadline {
                let body = bodies[index % bodies.len()].clone();
                index += 1;
                let request_started = Instant::now();
                let response = http.post(&url).bearer_auth(&token).header("content-type", "application/json").body(body).send().await.unwrap();
                let ok = response.status().is_success();
                let text = response.bytes().await.unwrap();
                latencies.push(request_started.elapsed().as_secs_f64());
                if !ok {
                    errors += 1;
                } else if text.windows(9).any(|w| w == b"\"repo\":\"r") {
                    matched.fetch_add(1, Ordering::Relaxed);
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (worker_latencies, worker_errors) = task.await.unwrap();
        latencies.extend(worker_latencies);
        errors += worker_errors;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "mode": "query", "requests": latencies.len(), "errors": errors, "seconds": seconds,
            "requests_per_second": latencies.len() as f64 / seconds, "sketches_per_request": args.sketches_per_query,
            "p50_ms": percentile(&latencies, 0.5) * 1e3, "p99_ms": percentile(&latencies, 0.99) * 1e3, "max_ms": latencies.last().copied().unwrap_or(0.0) * 1e3,
            "requests_with_matches": matched.load(Ordering::Relaxed),
        })
    );
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build().unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency as usize).no_proxy().build().unwrap();
    runtime.block_on(async {
        match args.mode {
            Mode::Ingest => ingest(&args, http).await,
            Mode::Query => query(&args, http).await,
        }
    });
}
