//! The background side of [`super::EdgeSync`]: one thread with its own small tokio runtime,
//! running four loops: applying recorded changes to the outbox, draining the outbox to the
//! edge one batch at a time (backoff with full jitter, ids fixed per batch), answering
//! team queries into the cache, and reading the team's pattern names (every query TTL)
//! and writing the names given here. Nothing here is ever awaited by the caller, except a
//! name given in the editor, whose answer the language server waits for (bounded).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use periodic_wire::v1::{PatternUpdate, QueryRequest, QuerySketch, ShareLevel};
use tokio::sync::mpsc;

use super::client::{EdgeClient, SendError};
use super::memory::TeamMemory;
use super::names::{MAX_NAMED, NameError, TeamName, TeamNames, now_unix};
use super::outbox::{FileChanges, Outbox};
use super::{Shared, lock};

/// Largest batch the client forms; the edge's default limit is 5000 upserts + removals.
pub const MAX_BATCH_ENTRIES: usize = 2000;
/// The edge answers at most this many sketches per query.
const MAX_QUERY_SKETCHES: usize = 256;

pub struct Channels {
    pub records: mpsc::UnboundedReceiver<FileChanges>,
    pub queries: mpsc::UnboundedReceiver<QuerySketch>,
    pub names: mpsc::UnboundedReceiver<NameRequest>,
}

/// A name given in the editor, to share with the team.
pub struct NameRequest {
    pub id: String,
    pub name: Option<String>,
    pub note: Option<String>,
    pub reply: tokio::sync::oneshot::Sender<Result<TeamName, NameError>>,
}

/// Runs until shutdown. `root` holds the outbox.
pub fn run(shared: Arc<Shared>, root: std::path::PathBuf, channels: Channels) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            shared.set_error(format!("cannot start the edge sync runtime: {error}"));
            return;
        }
    };
    runtime.block_on(async move {
        let Some(url) = shared.settings.url.clone() else { return };
        let client = match EdgeClient::new(&url, shared.settings.token.clone()) {
            Ok(client) => client,
            Err(message) => {
                shared.set_error(message);
                return;
            }
        };
        let root_for_memory = root.clone();
        let Channels { records, queries, names } = channels;
        if !shared.pushes {
            // Asking only (the MCP server): no outbox is opened, nothing queued is sent.
            let memory = open_memory(&shared, root_for_memory).await;
            tokio::join!(query_loop(shared.clone(), client.clone(), queries, memory.clone()), names_loop(shared.clone(), client, names, memory));
            return;
        }
        let outbox = {
            let share = shared.settings.share;
            let repo = shared.settings.repo.clone();
            let opened = tokio::task::spawn_blocking(move || {
                let mut outbox = Outbox::open(&root)?;
                if share != ShareLevel::Locations {
                    outbox.strip_locations()?;
                }
                let pending = outbox.pending(&repo)?;
                Ok::<_, super::outbox::OutboxError>((outbox, pending))
            })
            .await;
            match opened {
                Ok(Ok((outbox, pending))) => {
                    lock(&shared.status).pending_units = pending;
                    shared.opened.store(true, Ordering::SeqCst);
                    Arc::new(Mutex::new(outbox))
                }
                Ok(Err(error)) => {
                    shared.set_error(error.to_string());
                    return;
                }
                Err(error) => {
                    shared.set_error(format!("edge outbox: {error}"));
                    return;
                }
            }
        };
        let memory = open_memory(&shared, root_for_memory).await;
        tokio::join!(
            record_loop(shared.clone(), outbox.clone(), records),
            drain_loop(shared.clone(), outbox, client.clone()),
            query_loop(shared.clone(), client.clone(), queries, memory.clone()),
            names_loop(shared.clone(), client, names, memory),
        );
    });
}

/// The team's answers and names kept in the index: loaded into the sync's state (so the
/// editor shows them before the edge answers, or when it never does) and shared with the
/// loops that keep them current. `None`, logged, when the index cannot hold them.
async fn open_memory(shared: &Arc<Shared>, root: std::path::PathBuf) -> Option<Arc<Mutex<TeamMemory>>> {
    let repo = shared.settings.repo.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let memory = TeamMemory::open(&root, &repo, now_unix())?;
        let answers = memory.answers()?;
        let names = memory.names()?;
        Ok::<_, String>((memory, answers, names))
    })
    .await;
    match opened {
        Ok(Ok((memory, answers, names))) => {
            {
                let mut kept = lock(&shared.kept);
                for (id, matches, fetched_at) in answers {
                    kept.insert(id, (Arc::new(matches), fetched_at));
                }
            }
            if !names.is_empty() && shared.team_names().is_empty() {
                shared.set_team_names(Arc::new(names));
            }
            shared.updates.send_modify(|generation| *generation += 1);
            Some(Arc::new(Mutex::new(memory)))
        }
        Ok(Err(message)) => {
            shared.set_error(message);
            None
        }
        Err(error) => {
            shared.set_error(format!("team answers in the index: {error}"));
            None
        }
    }
}

/// Writes to the kept answers on the blocking pool; a failure is logged, never fatal.
async fn keep(memory: &Option<Arc<Mutex<TeamMemory>>>, work: impl FnOnce(&mut TeamMemory) -> Result<(), String> + Send + 'static) {
    let Some(memory) = memory.clone() else { return };
    match tokio::task::spawn_blocking(move || work(&mut lock(&memory))).await {
        Ok(Ok(())) => {}
        Ok(Err(message)) => tracing::warn!("edge: {message}"),
        Err(error) => tracing::warn!("edge: keeping team answers failed: {error}"),
    }
}

/// Runs blocking outbox work on the runtime's blocking pool.
async fn with_outbox<T: Send + 'static>(
    outbox: &Arc<Mutex<Outbox>>,
    work: impl FnOnce(&mut Outbox) -> Result<T, super::outbox::OutboxError> + Send + 'static,
) -> Result<T, String> {
    let outbox = outbox.clone();
    match tokio::task::spawn_blocking(move || work(&mut lock(&outbox))).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(error) => Err(format!("edge outbox task failed: {error}")),
    }
}

async fn record_loop(shared: Arc<Shared>, outbox: Arc<Mutex<Outbox>>, mut records: mpsc::UnboundedReceiver<FileChanges>) {
    let repo = shared.settings.repo.clone();
    loop {
        let changes = tokio::select! {
            changes = records.recv() => changes,
            () = shared.stopped() => None,
        };
        let Some(changes) = changes else { break };
        let repo = repo.clone();
        let started = Instant::now();
        let result = with_outbox(&outbox, move |outbox| {
            let queued = outbox.record(&repo, &changes)?;
            Ok((queued, outbox.pending(&repo)?))
        })
        .await;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "edge: changes recorded in the outbox");
        match result {
            Ok((queued, pending)) => {
                let mut status = lock(&shared.status);
                status.queued_units += queued;
                status.pending_units = pending;
            }
            Err(message) => shared.set_error(message),
        }
        shared.recorded.fetch_add(1, Ordering::SeqCst);
        shared.wake_drain.notify_one();
    }
}

async fn drain_loop(shared: Arc<Shared>, outbox: Arc<Mutex<Outbox>>, client: EdgeClient) {
    let retry = shared.settings.retry;
    let mut bound = retry.initial;
    let mut limit = MAX_BATCH_ENTRIES;
    loop {
        if shared.stopping() {
            return;
        }
        let repo = shared.settings.repo.clone();
        let next = with_outbox(&outbox, move |outbox| outbox.next_batch(&repo, limit)).await;
        let pending = match next {
            Ok(pending) => pending,
            Err(message) => {
                shared.set_error(message);
                if !sleep_or_shutdown(&shared, full_jitter(bound)).await {
                    return;
                }
                bound = (bound * 2).min(retry.max);
                continue;
            }
        };
        let Some(pending) = pending else {
            // Idle until something is recorded.
            tokio::select! {
                () = shared.wake_drain.notified() => {}
                () = shared.stopped() => return,
            }
            continue;
        };
        let entries = pending.entries() as u64;
        let result = client.send_batch(&pending.repo, &pending.batch, shared.settings.batch_timeout).await;
        let (repo, batch_id) = (pending.repo.clone(), pending.batch.batch_id.clone());
        match result {
            Ok(ack) => {
                let acknowledged = with_outbox(&outbox, move |outbox| {
                    outbox.acknowledge(&repo, &batch_id)?;
                    outbox.pending(&repo)
                })
                .await;
                let mut status = lock(&shared.status);
                status.connected = true;
                status.batches_sent += 1;
                status.units_sent += entries;
                if ack.duplicate {
                    status.duplicate_batches += 1;
                }
                match acknowledged {
                    Ok(pending) => {
                        status.pending_units = pending;
                        status.last_error = None;
                    }
                    Err(message) => status.last_error = Some(message),
                }
                bound = retry.initial;
                tracing::debug!(entries, duplicate = ack.duplicate, "edge: batch acknowledged");
            }
            Err(SendError::Retry { message, retry_after }) => {
                {
                    let mut status = lock(&shared.status);
                    status.connected = false;
                    status.last_error = Some(message.clone());
                }
                let delay = full_jitter(bound).max(retry_after.unwrap_or(Duration::ZERO));
                tracing::debug!(delay_ms = delay.as_millis() as u64, "edge: batch not sent ({message}); retrying");
                bound = (bound * 2).min(retry.max);
                if !sleep_or_shutdown(&shared, delay).await {
                    return;
                }
            }
            Err(SendError::TooLarge { message }) => {
                tracing::info!(entries, "edge: batch too large ({message}); splitting");
                lock(&shared.status).connected = true;
                limit = (pending.entries() / 2).max(1);
                if let Err(message) = with_outbox(&outbox, move |outbox| outbox.release(&repo, &batch_id)).await {
                    shared.set_error(message);
                }
            }
            Err(SendError::Rejected { message }) => {
                tracing::warn!(entries, "edge: batch rejected, dropped: {message}");
                {
                    let mut status = lock(&shared.status);
                    status.connected = true;
                    status.rejected_batches += 1;
                    status.last_error = Some(format!("batch rejected: {message}"));
                }
                if let Err(message) = with_outbox(&outbox, move |outbox| outbox.reject(&repo, &batch_id)).await {
                    shared.set_error(message);
                }
            }
            Err(SendError::Unauthorized { message }) => {
                tracing::warn!("edge: sync stopped until the configuration changes: {message}");
                {
                    let mut status = lock(&shared.status);
                    status.connected = true;
                    status.halted = true;
                    status.last_error = Some(message);
                }
                shared.halted.store(true, Ordering::SeqCst);
                // The outbox keeps its entries for a later run with a valid token.
                shared.stopped().await;
                return;
            }
        }
    }
}

async fn query_loop(shared: Arc<Shared>, client: EdgeClient, mut queries: mpsc::UnboundedReceiver<QuerySketch>, memory: Option<Arc<Mutex<TeamMemory>>>) {
    let retry = shared.settings.retry;
    let mut bound = retry.initial;
    loop {
        let first = tokio::select! {
            sketch = queries.recv() => sketch,
            () = shared.stopped() => None,
        };
        let Some(first) = first else { return };
        // Units looked at together (a file opened, a hover burst) go in one request.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut sketches = vec![first];
        while sketches.len() < MAX_QUERY_SKETCHES {
            match queries.try_recv() {
                Ok(sketch) => sketches.push(sketch),
                Err(_) => break,
            }
        }
        let ids: Vec<String> = sketches.iter().map(|sketch| sketch.id.clone()).collect();
        let request = QueryRequest { sketches, exclude_repo: Some(shared.settings.repo.clone()), min_similarity: None, top_k: None };
        let result = client.query(&request, shared.settings.query_timeout).await;
        match result {
            Ok(response) => {
                let now = now_unix();
                let mut answered = Vec::with_capacity(response.results.len());
                for answer in response.results {
                    let matches = Arc::new(answer.matches);
                    shared.cache.insert(answer.id.clone(), matches.clone());
                    lock(&shared.kept).insert(answer.id.clone(), (matches.clone(), now));
                    answered.push((answer.id, matches));
                }
                keep(&memory, move |memory| memory.save_answers(&answered, now)).await;
                for (hash, counts) in response.organisation {
                    if let Some(hash) = periodic_wire::v1::T2Hash::from_hex(&hash) {
                        shared.organisation.insert(hash.0, counts);
                    }
                }
                bound = retry.initial;
                *lock(&shared.queries_paused_until) = None;
                lock(&shared.status).connected = true;
                shared.updates.send_modify(|generation| *generation += 1);
            }
            Err(error) => {
                tracing::debug!("edge: team query failed: {}", error.message());
                let mut status = lock(&shared.status);
                if error.is_connection_problem() {
                    status.connected = false;
                }
                status.last_error = Some(format!("query: {}", error.message()));
                drop(status);
                // Misses are not asked again until the pause ends, so an unreachable edge
                // costs one failed request per pause, not one per hover.
                *lock(&shared.queries_paused_until) = Some(Instant::now() + full_jitter(bound).max(retry.initial / 2));
                bound = (bound * 2).min(retry.max);
            }
        }
        let mut in_flight = lock(&shared.in_flight);
        for id in &ids {
            in_flight.remove(id);
        }
    }
}

/// Reads the team's names at once and then every query TTL, and writes the names given
/// here as they come. A failed read keeps the names known; a refused write is answered.
async fn names_loop(shared: Arc<Shared>, client: EdgeClient, mut requests: mpsc::UnboundedReceiver<NameRequest>, memory: Option<Arc<Mutex<TeamMemory>>>) {
    let every = shared.settings.query_ttl.max(Duration::from_secs(1));
    let timeout = shared.settings.query_timeout.max(Duration::from_secs(5));
    let mut next_read = tokio::time::Instant::now();
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { return };
                let update = PatternUpdate { name: request.name, note: request.note };
                let answer = match client.put_pattern(&request.id, &update, timeout).await {
                    Ok(detail) => {
                        let named = TeamName::of_summary(&detail.summary, now_unix());
                        let mut names = (*shared.team_names()).clone();
                        names.insert(request.id.clone(), named.clone());
                        let names = Arc::new(names);
                        shared.set_team_names(names.clone());
                        keep(&memory, move |memory| memory.replace_names(&names)).await;
                        shared.updates.send_modify(|generation| *generation += 1);
                        Ok(named)
                    }
                    Err(error) if error.is_forbidden() => Err(NameError::ReadOnly(error.message().to_string())),
                    Err(error) => Err(NameError::Failed(error.message().to_string())),
                };
                let _ = request.reply.send(answer);
            }
            () = tokio::time::sleep_until(next_read) => {
                next_read = tokio::time::Instant::now() + every;
                match client.named_patterns(MAX_NAMED, timeout).await {
                    Ok(list) => {
                        let now = now_unix();
                        let names: TeamNames = list.patterns.iter().map(|summary| (summary.id.clone(), TeamName::of_summary(summary, now))).collect();
                        let current = shared.team_names();
                        let changed = names.len() != current.len()
                            || names.iter().any(|(id, name)| current.get(id).is_none_or(|known| (&known.name, &known.note, known.named_at) != (&name.name, &name.note, name.named_at)));
                        let names = Arc::new(names);
                        shared.set_team_names(names.clone());
                        keep(&memory, move |memory| memory.replace_names(&names)).await;
                        if changed {
                            shared.updates.send_modify(|generation| *generation += 1);
                        }
                    }
                    Err(error) => tracing::debug!("edge: reading the team's pattern names failed: {}", error.message()),
                }
            }
            () = shared.stopped() => return,
        }
    }
}

/// Sleeps for `delay`; false when shutdown came first.
async fn sleep_or_shutdown(shared: &Shared, delay: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => !shared.stopping(),
        () = shared.stopped() => false,
    }
}

/// A random duration between 0 and `bound` ("full jitter"): clients that failed together do
/// not retry together.
pub fn full_jitter(bound: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    let random = if getrandom::fill(&mut bytes).is_ok() {
        u64::from_le_bytes(bytes)
    } else {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos() as u64).unwrap_or(0)
    };
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    bound.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bound_and_varies() {
        let bound = Duration::from_millis(1000);
        let samples: Vec<Duration> = (0..200).map(|_| full_jitter(bound)).collect();
        assert!(samples.iter().all(|sample| *sample <= bound));
        let distinct: std::collections::HashSet<Duration> = samples.iter().copied().collect();
        assert!(distinct.len() > 100, "jitter is random: {} distinct values", distinct.len());
        assert!(samples.iter().any(|s| *s < bound / 2) && samples.iter().any(|s| *s > bound / 2));
    }
}
