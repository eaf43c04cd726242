//! The team analysis cache over HTTP: the engine's [`TeamCache`] answered by the edge's
//! `POST /v1/analyses/lookup` and fed through `POST /v1/analyses` (docs/edge.md). A scan asks
//! once for every file it would parse; a slow or unreachable edge costs at most
//! [`FIRST_ANSWER_WAIT`], after which every file is parsed here as without an edge.
//!
//! All HTTP runs on one thread of its own with its own runtime, so the engine may call in
//! from any thread (rayon workers, the language server's blocking tasks) without meeting a
//! runtime it must not block.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use periodic_core::team_cache::{self, TeamCache};
use periodic_wire::v1::{AnalysisEntry, AnalysisLookup, AnalysisLookupLine, AnalysisUpload, AnalysisUploadAck, MAX_ANALYSIS_LOOKUP, MAX_ANALYSIS_UPLOAD};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::client::{EdgeClient, SendError};

/// How long the first answer of the edge may take before the scan goes on without it.
pub const FIRST_ANSWER_WAIT: Duration = Duration::from_secs(3);
/// Limit of each later lookup request (at most 1000 files): an edge slower than this is
/// left for the rest of the scan, whose files are then parsed here.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit of each upload request; uploads run beside the scan.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Upload batches in flight at once; a scan that parses faster than the edge takes entries
/// waits for a slot rather than holding them all.
const UPLOADS_IN_FLIGHT: usize = 2;
/// Entry bytes per upload request (before base64), besides the count limit.
const UPLOAD_BATCH_BYTES: usize = 8 << 20;
/// How long a command waits at the end for uploads still in flight.
pub const UPLOAD_FINISH_WAIT: Duration = Duration::from_secs(60);

/// Counters of one cache client, for the closing summary and the benchmark.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub asked: AtomicU64,
    pub hits: AtomicU64,
    pub hit_bytes: AtomicU64,
    pub uploaded: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    pub upload_failures: AtomicU64,
}

/// Entries by key, as offered.
type Entries = Vec<([u8; 32], Vec<u8>)>;

/// Entries waiting for a full batch, and their bytes.
#[derive(Default)]
struct Pending {
    entries: Entries,
    bytes: usize,
}

enum Job {
    Lookup { hashes: Vec<[u8; 32]>, reply: oneshot::Sender<Vec<Option<Vec<u8>>>> },
    Upload(Entries),
    /// Answered once every upload sent before it has ended.
    Finish { reply: std::sync::mpsc::SyncSender<()> },
}

/// The team analysis cache of one edge.
pub struct EdgeTeamCache {
    jobs: mpsc::Sender<Job>,
    pending: Mutex<Pending>,
    /// Set once the edge failed to answer in time: everything is a miss from then on, and
    /// nothing is uploaded.
    unreachable: Arc<AtomicBool>,
    writable: bool,
    counters: Arc<CacheCounters>,
    /// The first problem met, for the closing summary.
    problem: Arc<Mutex<Option<String>>>,
}

impl EdgeTeamCache {
    /// Connects to the edge at `url`. Asks at once whether the token may upload (an empty
    /// upload: 403 for a read-only token), waiting at most [`FIRST_ANSWER_WAIT`]; an edge that
    /// does not answer gives a cache that misses everything.
    pub fn connect(url: &str, token: Option<String>) -> Result<EdgeTeamCache, String> {
        let client = EdgeClient::new(url, token)?;
        let (jobs, receiver) = mpsc::channel::<Job>(UPLOADS_IN_FLIGHT);
        let counters = Arc::new(CacheCounters::default());
        let problem = Arc::new(Mutex::new(None));
        let unreachable = Arc::new(AtomicBool::new(false));
        let (probe_reply, probe) = std::sync::mpsc::channel::<Result<bool, String>>();
        let worker = Worker { client, counters: Arc::clone(&counters), problem: Arc::clone(&problem), unreachable: Arc::clone(&unreachable) };
        std::thread::Builder::new()
            .name("team-cache".into())
            .spawn(move || worker.run(receiver, probe_reply))
            .map_err(|error| format!("cannot start the team cache thread: {error}"))?;
        let writable = match probe.recv_timeout(FIRST_ANSWER_WAIT + Duration::from_millis(200)) {
            Ok(Ok(writable)) => writable,
            Ok(Err(reason)) => {
                unreachable.store(true, Ordering::Relaxed);
                note(&problem, reason);
                false
            }
            Err(_) => {
                unreachable.store(true, Ordering::Relaxed);
                note(&problem, format!("no answer within {} s", FIRST_ANSWER_WAIT.as_secs()));
                false
            }
        };
        Ok(EdgeTeamCache { jobs, pending: Mutex::new(Pending::default()), unreachable, writable, counters, problem })
    }

    /// The cache of the edge `settings` name, when sync is on; `None` too when the client
    /// cannot be built (the scan then simply parses).
    pub fn for_settings(settings: &super::EdgeSettings) -> Option<EdgeTeamCache> {
        let url = settings.url.as_deref().filter(|_| settings.enabled())?;
        EdgeTeamCache::connect(url, settings.token.clone()).ok()
    }

    pub fn counters(&self) -> &CacheCounters {
        &self.counters
    }

    /// The first problem met (unreachable edge, refused request), if any.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().ok().and_then(|problem| problem.clone())
    }

    /// Whether the edge answered at all.
    pub fn reachable(&self) -> bool {
        !self.unreachable.load(Ordering::Relaxed)
    }

    /// Sends what is still buffered and waits up to `wait` for every upload to end.
    pub fn finish(&self, wait: Duration) {
        self.flush_pending();
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        if self.jobs.blocking_send(Job::Finish { reply }).is_ok() {
            match done.recv_timeout(wait) {
                Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    note(&self.problem, format!("uploads still running after {} s were left", wait.as_secs()));
                }
            }
        }
    }

    fn flush_pending(&self) {
        let batch = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending).entries,
            Err(_) => return,
        };
        if !batch.is_empty() {
            let _ = self.jobs.blocking_send(Job::Upload(batch));
        }
    }
}

impl TeamCache for EdgeTeamCache {
    fn lookup(&self, keys: &[[u8; 32]]) -> Vec<Option<Vec<u8>>> {
        if keys.is_empty() || !self.reachable() {
            return vec![None; keys.len()];
        }
        let (reply, answer) = oneshot::channel();
        if self.jobs.blocking_send(Job::Lookup { hashes: keys.to_vec(), reply }).is_err() {
            return vec![None; keys.len()];
        }
        answer.blocking_recv().unwrap_or_else(|_| vec![None; keys.len()])
    }

    fn accepts_uploads(&self) -> bool {
        self.writable && self.reachable()
    }

    fn offer(&self, key: [u8; 32], entry: Vec<u8>) {
        if !self.accepts_uploads() {
            return;
        }
        let full = match self.pending.lock() {
            Ok(mut pending) => {
                pending.bytes += entry.len();
                pending.entries.push((key, entry));
                (pending.entries.len() >= MAX_ANALYSIS_UPLOAD || pending.bytes >= UPLOAD_BATCH_BYTES)
                    .then(|| std::mem::take(&mut *pending).entries)
            }
            Err(_) => None,
        };
        if let Some(batch) = full {
            let _ = self.jobs.blocking_send(Job::Upload(batch));
        }
    }
}

impl Drop for EdgeTeamCache {
    fn drop(&mut self) {
        self.flush_pending();
    }
}

fn note(problem: &Mutex<Option<String>>, message: String) {
    tracing::info!(%message, "team cache");
    if let Ok(mut problem) = problem.lock() {
        problem.get_or_insert(message);
    }
}

struct Worker {
    client: EdgeClient,
    counters: Arc<CacheCounters>,
    problem: Arc<Mutex<Option<String>>>,
    unreachable: Arc<AtomicBool>,
}

impl Worker {
    fn run(self, mut jobs: mpsc::Receiver<Job>, probe_reply: std::sync::mpsc::Sender<Result<bool, String>>) {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = probe_reply.send(Err(format!("cannot start a runtime: {error}")));
                return;
            }
        };
        let worker = Arc::new(self);
        runtime.block_on(async move {
            let probe = AnalysisUpload { analysis: team_cache::analysis_key(), entries: Vec::new() };
            let writable = match worker.client.upload_analyses(&probe, FIRST_ANSWER_WAIT).await {
                Ok(_) => Ok(true),
                Err(error) if error.is_forbidden() => Ok(false),
                Err(error) => Err(error.message().to_string()),
            };
            let _ = probe_reply.send(writable);
            let slots = Arc::new(Semaphore::new(UPLOADS_IN_FLIGHT));
            while let Some(job) = jobs.recv().await {
                match job {
                    Job::Lookup { hashes, reply } => {
                        let worker = Arc::clone(&worker);
                        tokio::spawn(async move {
                            let _ = reply.send(worker.lookup(&hashes).await);
                        });
                    }
                    Job::Upload(batch) => {
                        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { continue };
                        let worker = Arc::clone(&worker);
                        tokio::spawn(async move {
                            worker.upload(batch).await;
                            drop(slot);
                        });
                    }
                    Job::Finish { reply } => {
                        // Every slot free means every upload sent so far has ended.
                        let _all = slots.acquire_many(UPLOADS_IN_FLIGHT as u32).await;
                        let _ = reply.send(());
                    }
                }
            }
            // The cache was dropped: uploads under way still end (the runtime would cancel
            // them), on this thread, without holding up whoever dropped it.
            let _all = slots.acquire_many(UPLOADS_IN_FLIGHT as u32).await;
        });
    }

    /// Looks `hashes` up in chunks the edge accepts, one after another; a failed chunk is
    /// a miss for its files.
    async fn lookup(&self, hashes: &[[u8; 32]]) -> Vec<Option<Vec<u8>>> {
        let mut found = vec![None; hashes.len()];
        let position: std::collections::HashMap<String, usize> =
            hashes.iter().enumerate().map(|(index, hash)| (hex(hash), index)).collect();
        for chunk in hashes.chunks(MAX_ANALYSIS_LOOKUP) {
            if self.unreachable.load(Ordering::Relaxed) {
                break;
            }
            let request = AnalysisLookup { analysis: team_cache::analysis_key(), hashes: chunk.iter().map(hex).collect() };
            match self.client.lookup_analyses(&request, LOOKUP_TIMEOUT).await {
                Ok(entries) => {
                    for entry in entries {
                        let (Some(&index), Ok(bytes)) =
                            (position.get(&entry.hash), base64::engine::general_purpose::STANDARD.decode(&entry.entry))
                        else {
                            note(&self.problem, "the edge answered an entry it was not asked for, or not in base64".into());
                            continue;
                        };
                        self.counters.hits.fetch_add(1, Ordering::Relaxed);
                        self.counters.hit_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        found[index] = Some(bytes);
                    }
                }
                Err(error) => {
                    if error.is_connection_problem() {
                        self.unreachable.store(true, Ordering::Relaxed);
                    }
                    note(&self.problem, format!("lookup failed: {}", error.message()));
                }
            }
            self.counters.asked.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        found
    }

    async fn upload(&self, batch: Entries) {
        let bytes: usize = batch.iter().map(|(_, entry)| entry.len()).sum();
        let count = batch.len() as u64;
        let request = AnalysisUpload {
            analysis: team_cache::analysis_key(),
            entries: batch
                .into_iter()
                .map(|(hash, entry)| AnalysisEntry { hash: hex(&hash), entry: base64::engine::general_purpose::STANDARD.encode(entry) })
                .collect(),
        };
        match self.client.upload_analyses(&request, UPLOAD_TIMEOUT).await {
            Ok(_) => {
                self.counters.uploaded.fetch_add(count, Ordering::Relaxed);
                self.counters.uploaded_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            Err(error) => {
                self.counters.upload_failures.fetch_add(1, Ordering::Relaxed);
                note(&self.problem, format!("upload failed: {}", error.message()));
            }
        }
    }
}

fn hex(hash: &[u8; 32]) -> String {
    blake3::Hash::from_bytes(*hash).to_hex().to_string()
}

impl EdgeClient {
    /// `POST /v1/analyses/lookup`: the hits, read line by line as the edge streams them.
    /// An answer without its closing line was cut short and counts as failed.
    pub async fn lookup_analyses(&self, request: &AnalysisLookup, timeout: Duration) -> Result<Vec<AnalysisEntry>, SendError> {
        let mut response = self.post_json("/v1/analyses/lookup", request, timeout).await?;
        let mut entries = Vec::new();
        let mut buffer: Vec<u8> = Vec::new();
        let mut done = false;
        let mut take_line = |line: &[u8], entries: &mut Vec<AnalysisEntry>| -> Result<(), SendError> {
            if line.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            match serde_json::from_slice::<AnalysisLookupLine>(line) {
                Ok(AnalysisLookupLine::Hit(entry)) => entries.push(entry),
                Ok(AnalysisLookupLine::Done { .. }) => done = true,
                Err(error) => return Err(SendError::Rejected { message: format!("unreadable lookup line from the edge: {error}") }),
            }
            Ok(())
        };
        while let Some(chunk) = response.chunk().await.map_err(super::client::transport_error)? {
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                take_line(&line, &mut entries)?;
            }
        }
        take_line(&buffer, &mut entries)?;
        if !done {
            return Err(SendError::Retry { message: "the lookup answer was cut short".into(), retry_after: None });
        }
        Ok(entries)
    }

    /// `POST /v1/analyses`.
    pub async fn upload_analyses(&self, request: &AnalysisUpload, timeout: Duration) -> Result<AnalysisUploadAck, SendError> {
        let response = self.post_json("/v1/analyses", request, timeout).await?;
        super::client::read_answer(response).await
    }
}
