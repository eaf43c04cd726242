//! Load generator for `periodic-edge` (used by `scripts/bench-edge`): ingests units in delta
//! batches, or fires similarity queries, over keep-alive HTTP/1.1 connections on loopback,
//! and prints throughput, latency percentiles and counts as one JSON line.
//!
//! With `--units-from INDEX_DB` (a `.periodic/index.db` written by `periodic scan`) the units
//! are real: every unit of the scanned code, keyed, located and fingerprinted as `periodic
//! lsp` sends it, stored as repositories `repo-0`, `repo-1`, ... that are copies of the
//! scanned code (as a team's forks and vendored copies are), enough copies to reach
//! `--units`. In every copy but `repo-0`, a deterministic `--edited-percent` of the units
//! are near-miss edits: 1 to 6 of their 64 MinHash positions and their structural hash
//! changed, path, name and lines kept. Real sketches are skewed (common shapes such as
//! getters and constructors share LSH buckets), which synthetic ones are not. Queries are
//! sketches of the scanned units, the same share of them edited the same way (with other
//! random changes), with the options `periodic lsp` sends (server defaults for `min_similarity`
//! and `top_k`), excluding `repo-0` as the asking repository. Each query request carries
//! fresh sketch ids (unless `--repeat-queries`), so the server's query cache, which keys
//! answers by the whole request, never answers it and every query reaches the index.
//!
//! Without `--units-from` the units are synthetic: every 8 units form a family derived from
//! one base sketch, each member altering 0 to 24 of the 64 MinHash positions, in batches
//! assigned round-robin to 20 repositories; queries are 6-position variants of stored
//! families at `min_similarity` 0.6.
//!
//! Queries go out over plain HTTP/1.1 written by hand on one tokio thread (`--http-client
//! raw`, the default): the generator shares the machine's cores with the server, and reqwest
//! spent about 24 µs of CPU per request (a third to over half a core at the rates measured),
//! which the server then did not have. The requests are the same bytes reqwest sent (method,
//! path, `Authorization`, `Content-Type`, `Content-Length`, the same bodies with fresh ids);
//! `--http-client reqwest` sends them with reqwest as before, to compare.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use periodic_wire::{DeltaBatch, Location, QueryRequest, QuerySketch, SKETCH_LEN, Sketch, T2Hash, UnitUpsert};

#[derive(Clone, Copy, ValueEnum)]
enum HttpClient {
    /// Requests written and responses parsed by hand on keep-alive connections.
    Raw,
    /// reqwest's pooled client.
    Reqwest,
}

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
    /// Real units: the `index.db` of a `periodic scan`, copied into as many repositories as
    /// `--units` needs. Without it the units are synthetic.
    #[arg(long)]
    units_from: Option<PathBuf>,
    /// Share of the units, in percent, edited in each copy but the first (and in queries).
    #[arg(long, default_value_t = 15)]
    edited_percent: u64,
    /// Send the 4096 prepared query bodies as they are, again and again: after the first
    /// round the server answers them from its query cache. By default every request has
    /// fresh sketch ids, so it misses that cache and reaches the index.
    #[arg(long)]
    repeat_queries: bool,
    /// Share of the near-miss units, in percent, sent with a near-miss family (`family`: the
    /// shape they were edited from, or their synthetic family's shared shape), as clients that
    /// cluster them with it would: each such unit links two shapes on the edge.
    #[arg(long, default_value_t = 0)]
    family_percent: u64,
    /// The HTTP client of the query load (ingest always uses reqwest).
    #[arg(long, value_enum, default_value_t = HttpClient::Raw)]
    http_client: HttpClient,
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

fn synthetic_unit(number: u64, family_percent: u64) -> UnitUpsert {
    let family = number / FAMILY_SIZE;
    let changes = splitmix(number) % 25;
    let family_t2 = T2Hash(splitmix(family ^ 0xfeed));
    let t2_hash = if changes == 0 { family_t2 } else { T2Hash(splitmix(number ^ 0xbeef)) };
    let linked = changes != 0 && splitmix(number ^ 0xfa11) % 100 < family_percent;
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
        family: linked.then_some(family_t2),
    }
}

/// Reads every unit of a scan's index, in path and unit order, with the key `periodic lsp`
/// gives it (blake3 of path, name and ordinal among same-named units of the file).
fn read_corpus(index: &std::path::Path) -> Vec<UnitUpsert> {
    let connection = rusqlite::Connection::open_with_flags(index, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT f.path, f.language, u.name, u.start_line, u.end_line, u.token_start, u.token_end, u.nesting, u.t2, u.sketch
             FROM units u JOIN files f ON f.id = u.file_id ORDER BY f.path, u.ordinal",
        )
        .unwrap();
    let mut rows = statement.query([]).unwrap();
    let mut units = Vec::new();
    let mut ordinals: std::collections::HashMap<(String, String), u32> = std::collections::HashMap::new();
    while let Some(row) = rows.next().unwrap() {
        let (path, language, name): (String, String, String) = (row.get(0).unwrap(), row.get(1).unwrap(), row.get(2).unwrap());
        let (start_line, end_line, token_start, token_end, nesting): (u32, u32, u32, u32, u32) =
            (row.get(3).unwrap(), row.get(4).unwrap(), row.get(5).unwrap(), row.get(6).unwrap(), row.get(7).unwrap());
        let t2: i64 = row.get(8).unwrap();
        let blob: Vec<u8> = row.get(9).unwrap();
        let mut sketch = [u32::MAX; SKETCH_LEN];
        for (slot, chunk) in sketch.iter_mut().zip(blob.chunks_exact(4)) {
            *slot = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let ordinal = ordinals.entry((path.clone(), name.clone())).or_insert(0);
        let key = periodic_wire::v1::unit_key(&path, &name, *ordinal);
        *ordinal += 1;
        units.push(UnitUpsert {
            key,
            t2_hash: T2Hash(t2 as u64),
            sketch: Sketch(sketch),
            tokens: token_end - token_start,
            lines: end_line.saturating_sub(start_line) + 1,
            nesting,
            language,
            location: Some(Location { path, name, start_line, end_line }),
            family: None,
        });
    }
    assert!(!units.is_empty(), "no units in {}", index.display());
    units
}

/// Whether `unit` is edited in `copy` (never in copy 0, the original).
fn is_edited(copy: u64, unit: u64, percent: u64) -> bool {
    copy > 0 && splitmix((copy << 32) ^ unit ^ 0x5eed) % 100 < percent
}

/// A near-miss edit: 1 to 6 MinHash positions (chosen by `seed`) and the structural hash
/// changed, as a small change to a statement or two changes them.
fn edit(upsert: &mut UnitUpsert, seed: u64) {
    let changes = 1 + splitmix(seed) % 6;
    for change in 0..changes {
        let random = splitmix(seed ^ ((change + 1) << 48));
        upsert.sketch.0[(random % SKETCH_LEN as u64) as usize] = (random >> 32) as u32;
    }
    upsert.t2_hash = T2Hash(splitmix(upsert.t2_hash.0 ^ seed));
}

/// Unit `unit` of the scanned code as stored in repository `repo-{copy}`; an edited one in
/// the family of the shape it was edited from for `family_percent` % of them.
fn corpus_unit(corpus: &[UnitUpsert], copy: u64, unit: u64, percent: u64, family_percent: u64) -> UnitUpsert {
    let mut upsert = corpus[unit as usize].clone();
    if is_edited(copy, unit, percent) {
        let original = upsert.t2_hash;
        edit(&mut upsert, splitmix((copy << 32) ^ unit));
        if splitmix((copy << 32) ^ unit ^ 0xfa11) % 100 < family_percent {
            upsert.family = Some(original);
        }
    }
    upsert
}

/// A batch of the real-units ingest: `count` units of copy `copy` from unit `first` on.
#[derive(Clone, Copy)]
struct Batch {
    copy: u64,
    first: u64,
    count: u64,
}

/// The batches that store `total` units as copies of the scanned code: copies are filled in
/// order (the last one possibly in part), and batches go round-robin over the copies, as
/// many repositories' clients would send them.
fn corpus_batches(corpus_len: u64, total: u64, batch: u64) -> Vec<Batch> {
    let copies = total.div_ceil(corpus_len);
    let mut batches = Vec::new();
    for chunk in 0..corpus_len.div_ceil(batch) {
        for copy in 0..copies {
            let in_copy = corpus_len.min(total - copy * corpus_len);
            let first = chunk * batch;
            if first < in_copy {
                batches.push(Batch { copy, first, count: batch.min(in_copy - first) });
            }
        }
    }
    batches
}

/// Where the units come from.
enum Source {
    Synthetic,
    Corpus { units: Vec<UnitUpsert>, batches: Vec<Batch> },
}

impl Source {
    fn new(args: &Args) -> Source {
        match &args.units_from {
            None => Source::Synthetic,
            Some(index) => {
                let units = read_corpus(index);
                let batches = corpus_batches(units.len() as u64, args.units, args.batch);
                Source::Corpus { units, batches }
            }
        }
    }

    /// What was stored, for the summary line: units of the scanned code and repositories.
    fn describe(&self, args: &Args) -> serde_json::Value {
        match self {
            Source::Synthetic => serde_json::json!({ "source": "synthetic", "repositories": REPOS.min(self.batch_count(args)) }),
            Source::Corpus { units, .. } => serde_json::json!({
                "source": "corpus", "corpus_units": units.len(), "repositories": args.units.div_ceil(units.len() as u64), "edited_percent": args.edited_percent,
            }),
        }
    }

    fn batch_count(&self, args: &Args) -> u64 {
        match self {
            Source::Synthetic => args.units.div_ceil(args.batch),
            Source::Corpus { batches, .. } => batches.len() as u64,
        }
    }

    /// Batch `number`: its repository, an id and its units. A batch is one request for one
    /// repository, as a client's outbox sends it.
    fn batch(&self, args: &Args, number: u64) -> (String, String, Vec<UnitUpsert>) {
        match self {
            Source::Synthetic => {
                let first = number * args.batch;
                let upserts = (first..(first + args.batch).min(args.units)).map(|number| synthetic_unit(number, args.family_percent)).collect();
                (format!("repo-{}", number % REPOS), format!("load-{first}"), upserts)
            }
            Source::Corpus { units, batches } => {
                let Batch { copy, first, count } = batches[number as usize];
                let upserts = (first..first + count).map(|unit| corpus_unit(units, copy, unit, args.edited_percent, args.family_percent)).collect();
                (format!("repo-{copy}"), format!("load-{copy}-{first}"), upserts)
            }
        }
    }

    /// The query options: the synthetic load's own, or none (the server's defaults) as
    /// `periodic lsp` sends them.
    fn query_options(&self) -> (Option<f32>, Option<u32>) {
        match self {
            Source::Synthetic => (Some(0.6), Some(10)),
            Source::Corpus { .. } => (None, None),
        }
    }

    /// The sketches of query request `request`.
    fn query_sketches(&self, args: &Args, request: u64) -> Vec<QuerySketch> {
        let ids = (0..args.sketches_per_query as u64).map(|index| (format!("{request}-{index}"), splitmix(request * 131 + index)));
        match self {
            Source::Synthetic => ids
                    .map(|(id, random)| {
                        let number = random % args.units;
                        QuerySketch { id, t2_hash: T2Hash(splitmix(number ^ 0xabcd)), sketch: variant(number / FAMILY_SIZE, number ^ 0x77, 6) }
                    })
                    .collect(),
            Source::Corpus { units, .. } => ids
                    .map(|(id, random)| {
                        let mut unit = units[(random % units.len() as u64) as usize].clone();
                        // The asking developer's copy: edited like the stored copies, with
                        // other positions (a seed no stored copy uses).
                        if (random >> 40) % 100 < args.edited_percent {
                            edit(&mut unit, splitmix(random ^ 0x9e3779b9));
                        }
                        QuerySketch { id, t2_hash: unit.t2_hash, sketch: unit.sketch }
                    })
                    .collect(),
        }
    }
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

async fn ingest(args: &Arc<Args>, source: &Arc<Source>, http: reqwest::Client) {
    let next = Arc::new(AtomicU64::new(0));
    let sent_units = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (next, sent_units, http, args, source) = (next.clone(), sent_units.clone(), http.clone(), args.clone(), source.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let number = next.fetch_add(1, Ordering::Relaxed);
                if number >= source.batch_count(&args) {
                    return latencies;
                }
                let (repo, batch_id, upserts) = source.batch(&args, number);
                let count = upserts.len() as u64;
                let body = DeltaBatch { batch_id, upserts, removals: Vec::new() };
                let request_started = Instant::now();
                let response = http.post(format!("{}/v1/repos/{repo}/deltas", args.url)).bearer_auth(&args.token).json(&body).send().await.unwrap();
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
            "stored": source.describe(args),
        })
    );
}

/// Stands for a sketch's id in a prepared query body; replaced per request unless
/// `--repeat-queries`.
const ID_PLACEHOLDER: &[u8; 16] = b"@@@@@@@@@@@@@@@@";

async fn query(args: &Args, source: &Source, http: reqwest::Client) {
    // Bodies are prepared before the clock starts so the generator spends its CPU on HTTP.
    // Each keeps the offsets of its sketch ids: the server caches answers by the whole
    // request, ids included, so a fresh id per request makes every query reach the index.
    let bodies: Arc<Vec<(bytes::Bytes, Vec<usize>)>> = Arc::new(
        (0..4096u64)
            .map(|request| {
                let mut sketches = source.query_sketches(args, request);
                if !args.repeat_queries {
                    for sketch in &mut sketches {
                        sketch.id = String::from_utf8(ID_PLACEHOLDER.to_vec()).unwrap();
                    }
                }
                let (min_similarity, top_k) = source.query_options();
                let body = QueryRequest { sketches, exclude_repo: Some("repo-0".into()), min_similarity, top_k };
                let body = serde_json::to_vec(&body).unwrap();
                let ids = body.windows(ID_PLACEHOLDER.len()).enumerate().filter(|(_, window)| *window == ID_PLACEHOLDER).map(|(offset, _)| offset).collect();
                (bytes::Bytes::from(body), ids)
            })
            .collect(),
    );
    let next_id = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let (matched, matches) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (bodies, http, matched, matches, next_id) = (bodies.clone(), http.clone(), matched.clone(), matches.clone(), next_id.clone());
        let (url, token) = (format!("{}/v1/query", args.url), args.token.clone());
        let client = args.http_client;
        let base = args.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = match client {
                HttpClient::Raw => Some(RawConnection::open(&base, "/v1/query", &token).await),
                HttpClient::Reqwest => None,
            };
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut index = worker as usize * 97;
            while Instant::now() < deadline {
                let (template, ids) = &bodies[index % bodies.len()];
                index += 1;
                let body = if ids.is_empty() {
                    template.clone()
                } else {
                    let mut body = template.to_vec();
                    for &offset in ids {
                        let id = format!("{:016x}", next_id.fetch_add(1, Ordering::Relaxed));
                        body[offset..offset + ID_PLACEHOLDER.len()].copy_from_slice(id.as_bytes());
                    }
                    bytes::Bytes::from(body)
                };
                let request_started = Instant::now();
                let (ok, text) = match &mut connection {
                    Some(connection) => connection.post(&body).await,
                    None => {
                        let response = http.post(&url).bearer_auth(&token).header("content-type", "application/json").body(body).send().await.unwrap();
                        let ok = response.status().is_success();
                        (ok, response.bytes().await.unwrap())
                    }
                };
                latencies.push(request_started.elapsed().as_secs_f64());
                if !ok {
                    errors += 1;
                } else {
                    let found = memchr::memmem::find_iter(&text, b"\"repo\":\"").count() as u64;
                    matches.fetch_add(found, Ordering::Relaxed);
                    if found > 0 {
                        matched.fetch_add(1, Ordering::Relaxed);
                    }
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
            "requests_with_matches": matched.load(Ordering::Relaxed), "matches": matches.load(Ordering::Relaxed),
            "repeated_bodies": args.repeat_queries,
        })
    );
}

/// One keep-alive HTTP/1.1 connection that posts JSON bodies to one path and reads the
/// answers, with nothing the load does not need: the server answers every query with a
/// `Content-Length` body (never chunked), and the load generator itself is not under test.
struct RawConnection {
    stream: tokio::net::TcpStream,
    head: Vec<u8>,
    buffer: Vec<u8>,
}

impl RawConnection {
    async fn open(base: &str, path: &str, token: &str) -> RawConnection {
        let host = base.strip_prefix("http://").expect("--http-client raw speaks plain http; use --http-client reqwest for https").trim_end_matches('/');
        let stream = tokio::net::TcpStream::connect(host).await.unwrap();
        // As reqwest (hyper) does: a request goes out as soon as it is written.
        stream.set_nodelay(true).unwrap();
        let head = format!("POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\naccept: */*\r\ncontent-length: ").into_bytes();
        RawConnection { stream, head, buffer: Vec::with_capacity(16 << 10) }
    }

    /// Sends `body`, returns whether the status was 2xx and the response body.
    async fn post(&mut self, body: &[u8]) -> (bool, bytes::Bytes) {
        use tokio::io::AsyncWriteExt;
        let mut request = Vec::with_capacity(self.head.len() + 16 + body.len());
        request.extend_from_slice(&self.head);
        request.extend_from_slice(body.len().to_string().as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(body);
        self.stream.write_all(&request).await.unwrap();
        self.buffer.clear();
        loop {
            if let Some(end) = memchr::memmem::find(&self.buffer, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buffer[..end]).expect("response head is ASCII");
                let status: u16 = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("status line");
                let length: usize = head
                    .lines()
                    .find_map(|line| line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("content-length")).map(|(_, value)| value.trim()))
                    .and_then(|value| value.parse().ok())
                    .expect("the server answers with a Content-Length");
                let total = end + 4 + length;
                while self.buffer.len() < total {
                    self.fill().await;
                }
                assert_eq!(self.buffer.len(), total, "one request in flight per connection, so nothing follows the answer");
                return ((200..300).contains(&status), bytes::Bytes::copy_from_slice(&self.buffer[end + 4..total]));
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        use tokio::io::AsyncReadExt;
        let read = self.stream.read_buf(&mut self.buffer).await.unwrap();
        assert!(read > 0, "the server closed the connection");
    }
}

fn main() {
    let args = Arc::new(Args::parse());
    let source = Arc::new(Source::new(&args));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build().unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency as usize).no_proxy().build().unwrap();
    runtime.block_on(async {
        match args.mode {
            Mode::Ingest => ingest(&args, &source, http).await,
            Mode::Query => query(&args, &source, http).await,
        }
    });
}
