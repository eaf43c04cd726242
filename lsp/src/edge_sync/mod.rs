//! Sync with a team edge server (`periodic-edge`): the language server and `periodic scan
//! --edge` record unit changes here; a background thread sends them from a durable outbox
//! in `.periodic/index.db`, asks the edge for similar units in the team's other
//! repositories, caching the answers with a TTL, reads the team's pattern names at the
//! same pace, and shares a name given in the editor. Answers and names are also kept in the
//! index with the time they were fetched (`memory`), so a restart without the edge shows
//! them, marked stale.
//!
//! Every method of [`EdgeSync`] returns at once: it never waits on the network, and when the
//! edge is down or not configured it does nothing and returns nothing. The client protocol
//! (batches, ids, retries) is described in `docs/edge.md`.

pub mod analyses;
mod client;
pub mod convert;
mod memory;
pub mod names;
pub mod outbox;
pub mod settings;
pub mod push;
mod worker;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use periodic_core::{FileRecord, UnitRecord};
pub use periodic_wire::v1::{Organisation, UnitMatch};
use tokio::sync::{mpsc, watch};

use convert::Families;
use names::{NameError, TeamName, TeamNames};
use outbox::FileChanges;
pub use settings::{EdgeConfigError, EdgeOptions, EdgeSettings, RetryPolicy, ShareLevel};

/// What the sync is doing, for logs and health output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeStatus {
    /// Sync is configured and on (a URL, a share level other than `off`).
    pub enabled: bool,
    /// The last request reached the edge.
    pub connected: bool,
    /// Unit changes in the outbox, not yet acknowledged (all repositories).
    pub pending_units: u64,
    /// Unit changes queued since start (after dropping unchanged units).
    pub queued_units: u64,
    /// Unit changes acknowledged by the edge since start.
    pub units_sent: u64,
    pub batches_sent: u64,
    /// Batches the edge had already applied (a retry after a lost answer).
    pub duplicate_batches: u64,
    /// Batches the edge refused as malformed (dropped).
    pub rejected_batches: u64,
    /// The edge refused the token (401/403): nothing more is sent until restarted with a
    /// new configuration.
    pub halted: bool,
    pub last_error: Option<String>,
}

/// Handle of the sync. Cheap to call from any thread, inside or outside a tokio runtime;
/// dropping it stops the background thread (the outbox keeps what was not sent).
pub struct EdgeSync {
    shared: Arc<Shared>,
    records: Option<mpsc::UnboundedSender<FileChanges>>,
    queries: Option<mpsc::UnboundedSender<periodic_wire::v1::QuerySketch>>,
    names: Option<mpsc::UnboundedSender<worker::NameRequest>>,
    thread: Option<std::thread::JoinHandle<()>>,
    sent_records: AtomicU64,
    /// The near-miss family of each shape, from the workspace's last pattern build: sent
    /// with every unit recorded from now on.
    families: std::sync::RwLock<Arc<Families>>,
}

/// Team answers by fingerprint id, with the time each was fetched (seconds since the epoch).
type KeptAnswers = std::collections::HashMap<String, (Arc<Vec<UnitMatch>>, u64)>;

/// State shared between the handle and the background thread.
pub(crate) struct Shared {
    settings: EdgeSettings,
    /// Whether this handle sends the workspace's units (`EdgeSync::start`) or only asks
    /// (`EdgeSync::start_asking`).
    pushes: bool,
    cache: moka::sync::Cache<String, Arc<Vec<UnitMatch>>>,
    /// Organisation-wide counts per exact structural hash, when the edge reported them.
    organisation: moka::sync::Cache<u64, Organisation>,
    /// Every answer known with the time it was fetched (seconds since the Unix epoch): those
    /// kept in the index at start, then each one received. Consulted when `cache` (the fresh
    /// ones) misses, so answers outlive the TTL as stale ones rather than vanish.
    kept: Mutex<KeptAnswers>,
    /// The team's pattern names as last read (replaced whole, so readers keep a consistent set).
    team_names: std::sync::RwLock<Arc<TeamNames>>,
    in_flight: Mutex<HashSet<String>>,
    queries_paused_until: Mutex<Option<Instant>>,
    status: Mutex<EdgeStatus>,
    /// Record commands applied to the outbox.
    recorded: AtomicU64,
    /// The outbox is open and `status.pending_units` counts it.
    opened: AtomicBool,
    halted: AtomicBool,
    wake_drain: tokio::sync::Notify,
    shutdown: watch::Sender<bool>,
    updates: watch::Sender<u64>,
}

impl Shared {
    fn team_names(&self) -> Arc<TeamNames> {
        self.team_names.read().map(|names| names.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn set_team_names(&self, names: Arc<TeamNames>) {
        match self.team_names.write() {
            Ok(mut current) => *current = names,
            Err(poisoned) => *poisoned.into_inner() = names,
        }
    }

    fn set_error(&self, message: String) {
        tracing::warn!("edge sync: {message}");
        lock(&self.status).last_error = Some(message);
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    async fn stopped(&self) {
        let mut receiver = self.shutdown.subscribe();
        let _ = receiver.wait_for(|stop| *stop).await;
    }
}

/// A poisoned lock only means another thread panicked while holding it; the data (counters,
/// caches) is still usable, and the sync must not take the language server down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EdgeSync {
    /// Starts syncing the workspace at `root` (whose `.periodic/index.db` holds the outbox).
    /// Returns at once; opening the outbox and every request happen on a background thread.
    /// With sync off (`settings.enabled()` false) nothing is started.
    pub fn start(root: &Path, settings: EdgeSettings) -> EdgeSync {
        EdgeSync::start_with(root, settings, true)
    }

    /// Like [`EdgeSync::start`], but asking only: team answers and names are read, nothing is
    /// recorded or sent (the MCP server, which answers agents and does not push).
    pub fn start_asking(root: &Path, settings: EdgeSettings) -> EdgeSync {
        EdgeSync::start_with(root, settings, false)
    }

    fn start_with(root: &Path, settings: EdgeSettings, pushes: bool) -> EdgeSync {
        let enabled = settings.enabled();
        let cache = moka::sync::Cache::builder().max_capacity(50_000).time_to_live(settings.query_ttl).build();
        let organisation = moka::sync::Cache::builder().max_capacity(50_000).time_to_live(settings.query_ttl).build();
        let shared = Arc::new(Shared {
            settings,
            pushes,
            cache,
            organisation,
            team_names: std::sync::RwLock::new(Arc::new(TeamNames::new())),
            kept: Mutex::new(std::collections::HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
            queries_paused_until: Mutex::new(None),
            status: Mutex::new(EdgeStatus { enabled, ..EdgeStatus::default() }),
            recorded: AtomicU64::new(0),
            opened: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            wake_drain: tokio::sync::Notify::new(),
            shutdown: watch::Sender::new(false),
            updates: watch::Sender::new(0),
        });
        let mut sync = EdgeSync {
            shared: shared.clone(),
            records: None,
            queries: None,
            names: None,
            thread: None,
            sent_records: AtomicU64::new(0),
            families: std::sync::RwLock::new(Arc::default()),
        };
        if !enabled {
            return sync;
        }
        let (records_tx, records_rx) = mpsc::unbounded_channel();
        let (queries_tx, queries_rx) = mpsc::unbounded_channel();
        let (names_tx, names_rx) = mpsc::unbounded_channel();
        let channels = worker::Channels { records: records_rx, queries: queries_rx, names: names_rx };
        let root = root.to_path_buf();
        let spawned = std::thread::Builder::new().name("periodic-edge-sync".to_string()).spawn(move || worker::run(shared, root, channels));
        match spawned {
            Ok(thread) => {
                sync.thread = Some(thread);
                sync.records = Some(records_tx);
                sync.queries = Some(queries_tx);
                sync.names = Some(names_tx);
            }
            Err(error) => sync.shared.set_error(format!("cannot start the edge sync thread: {error}")),
        }
        sync
    }

    /// A handle that does nothing (sync not configured).
    pub fn disabled() -> EdgeSync {
        EdgeSync::start(Path::new("."), EdgeSettings::disabled())
    }

    pub fn settings(&self) -> &EdgeSettings {
        &self.shared.settings
    }

    pub fn enabled(&self) -> bool {
        self.records.is_some()
    }

    /// Records that `changed` files were re-analysed (each record holds all the file's units)
    /// and that `removed` paths (relative to the root, `/`-separated) are gone. Units whose
    /// fingerprint and location did not change since they were last queued are not sent
    /// again. Returns at once; the diff and the outbox write run in the background.
    pub fn record_files(&self, changed: &[FileRecord], removed: &[String]) {
        let share = self.shared.settings.share;
        self.send_record(|families| FileChanges {
            files: changed.iter().map(|file| (file.path.clone(), convert::prepare_file(file, share, families))).collect(),
            removed_paths: removed.to_vec(),
            complete: false,
            force: false,
        });
    }

    /// Records the complete set of files of the repository (e.g. after the first scan of a
    /// session): besides changed units, every unit of a file not in `files` is removed.
    pub fn record_snapshot(&self, files: &[FileRecord]) {
        let share = self.shared.settings.share;
        self.send_record(|families| FileChanges {
            files: files.iter().map(|file| (file.path.clone(), convert::prepare_file(file, share, families))).collect(),
            removed_paths: Vec::new(),
            complete: true,
            force: false,
        });
    }

    /// Like [`EdgeSync::record_snapshot`], but queues every unit even when unchanged: a full
    /// push (`periodic scan --edge`), e.g. to an edge that lost data.
    pub fn push_all(&self, files: &[FileRecord]) {
        let share = self.shared.settings.share;
        self.send_record(|families| FileChanges {
            files: files.iter().map(|file| (file.path.clone(), convert::prepare_file(file, share, families))).collect(),
            removed_paths: Vec::new(),
            complete: true,
            force: true,
        });
    }

    /// Sets the near-miss families units are sent with from now on (see
    /// [`convert::Families`]); returns the shapes whose family changed.
    pub fn set_families(&self, families: Families) -> HashSet<u64> {
        let mut current = self.families.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = current.changed_shapes(&families);
        if !changed.is_empty() {
            *current = Arc::new(families);
        }
        changed
    }

    /// [`EdgeSync::set_families`] after patterns were clustered again, and records again the
    /// files of `files` (the whole workspace) holding a unit whose family changed, so the
    /// edge regroups them. Units of unchanged families are not looked at again.
    pub fn update_families(&self, files: &[FileRecord], families: Families) {
        if !self.enabled() {
            return;
        }
        let changed = self.set_families(families);
        if changed.is_empty() {
            return;
        }
        let share = self.shared.settings.share;
        self.send_record(|families| FileChanges {
            files: files
                .iter()
                .filter(|file| file.units.iter().any(|unit| changed.contains(&unit.hashes.t2)))
                .map(|file| (file.path.clone(), convert::prepare_file(file, share, families)))
                .collect(),
            removed_paths: Vec::new(),
            complete: false,
            force: false,
        });
    }

    fn send_record(&self, changes: impl FnOnce(&Families) -> FileChanges) {
        let Some(records) = self.records.as_ref().filter(|_| self.shared.pushes) else { return };
        if self.shared.halted.load(Ordering::SeqCst) {
            return;
        }
        let families = self.families.read().map(|families| families.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        // Counted before sending, so `is_drained` never sees a change the worker took but
        // the count does not hold yet.
        self.sent_records.fetch_add(1, Ordering::SeqCst);
        if records.send(changes(&families)).is_err() {
            self.sent_records.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The team's units similar to each of `units`, from the local cache: `Some(matches)`
    /// (possibly empty) when the edge answered within the TTL, `None` when not known (yet).
    /// Unknown units are asked in the background; when answers arrive, [`EdgeSync::subscribe`]
    /// ticks and a second call returns them. Units of this repository are never returned.
    pub fn team_matches(&self, units: &[&UnitRecord]) -> Vec<Option<Arc<Vec<UnitMatch>>>> {
        let Some(queries) = &self.queries else { return vec![None; units.len()] };
        let paused = lock(&self.shared.queries_paused_until).is_some_and(|until| Instant::now() < until);
        units
            .iter()
            .map(|unit| {
                let id = convert::fingerprint_id(unit);
                if let Some(matches) = self.shared.cache.get(&id) {
                    return Some(matches);
                }
                let kept = lock(&self.shared.kept).get(&id).map(|(matches, _)| matches.clone());
                if !paused && lock(&self.shared.in_flight).insert(id) {
                    let _ = queries.send(convert::query_sketch(unit));
                }
                kept
            })
            .collect()
    }

    /// How old, in seconds, the answer [`EdgeSync::team_matches`] gives for `unit` is when
    /// it is past the query TTL (kept from an earlier session, or the edge has not answered
    /// since); `None` when it is fresh or unknown.
    pub fn stale_age(&self, unit: &UnitRecord) -> Option<u64> {
        let id = convert::fingerprint_id(unit);
        if self.shared.cache.contains_key(&id) {
            return None;
        }
        lock(&self.shared.kept).get(&id).map(|(_, fetched_at)| names::now_unix().saturating_sub(*fetched_at))
    }

    /// How common `unit`'s exact structure is across the organisation (from the cloud tier,
    /// through the edge), when an answer about it carried the counts.
    pub fn organisation(&self, unit: &UnitRecord) -> Option<Organisation> {
        self.shared.organisation.get(&unit.hashes.t2)
    }

    /// The team's pattern names as last read from the edge (empty before the first answer).
    pub fn team_names(&self) -> Arc<TeamNames> {
        self.shared.team_names()
    }

    /// Shares a pattern's name and note with the team (`PUT /v1/patterns/{id}`). The
    /// answer comes through the returned receiver; the caller decides how long to wait.
    pub fn name_pattern(&self, id: &str, name: Option<String>, note: Option<String>) -> Result<tokio::sync::oneshot::Receiver<Result<TeamName, NameError>>, NameError> {
        let Some(names) = &self.names else { return Err(NameError::Disabled) };
        let (reply, answer) = tokio::sync::oneshot::channel();
        names.send(worker::NameRequest { id: id.to_string(), name, note, reply }).map_err(|_| NameError::Failed("the team sync has stopped".into()))?;
        Ok(answer)
    }

    /// A receiver whose value increases each time new team answers are cached: the server
    /// waits on `changed()` and refreshes hover, code lens and diagnostics.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.updates.subscribe()
    }

    pub fn status(&self) -> EdgeStatus {
        lock(&self.shared.status).clone()
    }

    /// Every recorded change has reached the outbox and the outbox is empty.
    pub fn is_drained(&self) -> bool {
        self.shared.opened.load(Ordering::SeqCst)
            && self.shared.recorded.load(Ordering::SeqCst) >= self.sent_records.load(Ordering::SeqCst)
            && self.status().pending_units == 0
    }

    /// Blocks the calling thread until [`EdgeSync::is_drained`], the sync halts, or no unit
    /// was acknowledged for `stall` (edge unreachable). For the command line and tests; the
    /// language server never calls it. `on_progress` gets the status every 50 ms.
    pub fn wait_drained(&self, stall: Duration, mut on_progress: impl FnMut(&EdgeStatus)) -> Result<EdgeStatus, EdgeStatus> {
        if !self.enabled() {
            return Err(self.status());
        }
        let mut last_sent = u64::MAX;
        let mut last_progress = Instant::now();
        loop {
            let status = self.status();
            on_progress(&status);
            if self.is_drained() {
                return Ok(status);
            }
            if status.halted || self.thread.as_ref().is_none_or(|thread| thread.is_finished()) {
                return Err(status);
            }
            if status.units_sent != last_sent {
                last_sent = status.units_sent;
                last_progress = Instant::now();
            } else if last_progress.elapsed() >= stall {
                return Err(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the background thread, waiting up to `grace` for the request in flight.
    pub fn shutdown(mut self, grace: Duration) {
        self.shared.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + grace;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for EdgeSync {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}
