//! `POST /v1/analyses/lookup` and `POST /v1/analyses`: the team analysis cache. Clients ask
//! for per-file analysis results by content hash before parsing, and upload what they parsed.
//! Entries are opaque to the edge. A lookup is answered as NDJSON, one line per hit as each
//! step of hashes is read from the store, then `{"done":true,"hits":N}`; an upload is
//! recorded in the audit log with its counts and bytes only (never a hash or a key).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::StreamExt;
use periodic_wire::{AnalysisEntry, AnalysisLookup, AnalysisLookupLine, AnalysisUpload, AnalysisUploadAck};
use serde_json::json;

use crate::api::AppState;
use crate::api::auth::{ClientAddress, require};
use crate::api::error::{ApiError, JsonBody};
use crate::api::validate;
use crate::audit::Actor;
/// Hashes asked of the store per streamed step: each store reads them in its own steps (one
/// SQLite read, Redis script calls of `LOOKUP_STEP`); a step's hits are written before the
/// next step is read. Larger steps cost fewer store round trips (and, embedded, fewer
/// last-use transactions); on `medium` (901 files) the lookup took 0.1–0.25 s either way.
const STREAM_STEP: usize = 256;
use crate::store::{AnalysisPolicy, ContentHash, Store, StoreError};
use crate::tokens::{Caller, Role};

/// The media type of a lookup's answer.
pub const NDJSON: &str = "application/x-ndjson";

pub async fn post_lookup(State(state): State<AppState>, Extension(caller): Extension<Caller>, JsonBody(request): JsonBody<AnalysisLookup>) -> Result<Response, ApiError> {
    require(&caller, Role::Read)?;
    let hashes = validate::analysis_lookup(&request)?;
    let policy = state.analysis_cache;
    if !policy.enabled() {
        return Ok(ndjson(Body::from(done_line(0))));
    }
    let mut steps: Vec<Vec<ContentHash>> = hashes.chunks(STREAM_STEP).map(<[ContentHash]>::to_vec).collect();
    steps.reverse();
    let mut lookup = Lookup { store: state.store.clone(), tenant: caller.tenant, analysis: request.analysis, policy, steps, hits: 0 };
    // The first step is read before the answer starts, so that a store that fails at once is
    // a 503 like on every other route, not an answer cut short.
    let first = lookup.next_step().await?.unwrap_or_default();
    let rest = futures::stream::unfold(Some(lookup), |state| async move {
        let mut lookup = state?;
        match lookup.next_step().await {
            Ok(Some(lines)) => Some((Ok(lines), Some(lookup))),
            Ok(None) => Some((Ok(done_line(lookup.hits)), None)),
            // Ends the body without its last line (the connection is closed mid-answer): the
            // client knows the answer was cut short. The cause is logged by store::metered.
            Err(error) => Some((Err(std::io::Error::other(error.to_string())), None)),
        }
    });
    let body = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(first) }).chain(rest);
    Ok(ndjson(Body::from_stream(body)))
}

fn ndjson(body: Body) -> Response {
    ([(header::CONTENT_TYPE, NDJSON)], body).into_response()
}

fn done_line(hits: u32) -> Bytes {
    line(&AnalysisLookupLine::Done { done: true, hits })
}

fn line(value: &AnalysisLookupLine) -> Bytes {
    // Serialising plain strings and numbers cannot fail.
    let mut text = serde_json::to_vec(value).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}

fn hex(hash: &ContentHash) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A lookup in progress: the steps not read yet (last first) and the hits so far.
struct Lookup {
    store: Arc<dyn Store>,
    tenant: String,
    analysis: String,
    policy: AnalysisPolicy,
    steps: Vec<Vec<ContentHash>>,
    hits: u32,
}

impl Lookup {
    /// The lines of the next step's hits (possibly none), or `None` when every step was read.
    async fn next_step(&mut self) -> Result<Option<Bytes>, StoreError> {
        let Some(step) = self.steps.pop() else { return Ok(None) };
        let found = self.store.analyses(&self.tenant, &self.analysis, &step, &self.policy).await?;
        let mut lines = Vec::new();
        let (mut hits, mut bytes) = (0u64, 0u64);
        for (hash, entry) in step.iter().zip(found) {
            let Some(entry) = entry else { continue };
            hits += 1;
            bytes += entry.len() as u64;
            let hit = AnalysisEntry { hash: hex(hash), entry: base64::engine::general_purpose::STANDARD.encode(&entry) };
            lines.extend_from_slice(&line(&AnalysisLookupLine::Hit(hit)));
        }
        self.hits += hits as u32;
        metrics::counter!("edge_analysis_hashes_total", "outcome" => "hit").increment(hits);
        metrics::counter!("edge_analysis_hashes_total", "outcome" => "miss").increment(step.len() as u64 - hits);
        metrics::counter!("edge_analysis_bytes_total", "direction" => "served").increment(bytes);
        Ok(Some(Bytes::from(lines)))
    }
}

pub async fn post_upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(ClientAddress(remote)): Extension<ClientAddress>,
    body: Result<JsonBody<AnalysisUpload>, ApiError>,
) -> Result<Json<AnalysisUploadAck>, ApiError> {
    let actor = || Actor::Token { caller: &caller, remote };
    // The role is checked before the body so a read-only token learns 403 whatever it sent.
    if let Err(error) = require(&caller, Role::Write) {
        state.audit.record("analysis.upload", "denied", actor(), json!({}));
        return Err(error);
    }
    let JsonBody(upload) = body?;
    let (analysis, entries) = validate::analysis_upload(upload)?;
    let (count, bytes) = (entries.len(), entries.iter().map(|(_, entry)| entry.len() as u64).sum::<u64>());
    let policy = state.analysis_cache;
    if !policy.enabled() {
        state.audit.record("analysis.upload", "disabled", actor(), json!({ "entries": count, "bytes": bytes, "stored": 0 }));
        return Ok(Json(AnalysisUploadAck { stored: 0 }));
    }
    let stored = state.store.store_analyses(&caller.tenant, &analysis, entries, &policy).await.map_err(ApiError::from);
    let (outcome, error) = match &stored {
        Ok(_) => ("ok", None),
        Err(error) => ("failed", Some(error.kind)),
    };
    state.audit.record(
        "analysis.upload",
        outcome,
        actor(),
        json!({ "entries": count, "bytes": bytes, "stored": stored.as_ref().ok(), "error": error }),
    );
    let stored = stored?;
    metrics::counter!("edge_analysis_entries_stored_total").increment(u64::from(stored));
    metrics::counter!("edge_analysis_bytes_total", "direction" => "uploaded").increment(bytes);
    Ok(Json(AnalysisUploadAck { stored }))
}
