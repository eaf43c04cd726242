//! `POST /v1/repos/{repo}/deltas`: apply one batch of unit upserts and removals, durably and
//! at most once per batch id. Every batch a write token sends, and every one refused for its
//! role, is recorded in the audit log (repository, batch id, counts; never its units).

use axum::Json;
use axum::extract::{Extension, Path, State};
use periodic_wire::{DeltaAck, DeltaBatch};
use serde_json::json;

use crate::api::AppState;
use crate::api::auth::{ClientAddress, require};
use crate::audit::Actor;
use crate::api::error::{ApiError, JsonBody};
use crate::api::validate;
use crate::tokens::{Caller, Role};

pub async fn post_deltas(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(ClientAddress(remote)): Extension<ClientAddress>,
    Path(repo): Path<String>,
    body: Result<JsonBody<DeltaBatch>, ApiError>,
) -> Result<Json<DeltaAck>, ApiError> {
    let actor = || Actor::Token { caller: &caller, remote };
    // The role is checked before the body so a read-only token learns 403 whatever it sent.
    if let Err(error) = require(&caller, Role::Write) {
        let repo = validate::repo_name("path `repo`", &repo).is_ok().then_some(repo.as_str());
        state.audit.record("batch.apply", "denied", actor(), json!({ "repo": repo }));
        return Err(error);
    }
    validate::repo_name("path `repo`", &repo)?;
    let JsonBody(batch) = body?;
    validate::delta_batch(&batch, &state.limits)?;
    let batch_id = batch.batch_id.clone();
    let (upserts, removals) = (batch.upserts.len(), batch.removals.len());
    let applied = apply(&state, &caller, &repo, batch).await;
    let (outcome, error) = match &applied {
        Ok(ack) if ack.duplicate => ("duplicate", None),
        Ok(_) => ("ok", None),
        Err(error) => ("failed", Some(error.kind)),
    };
    state.audit.record(
        "batch.apply",
        outcome,
        actor(),
        json!({ "repo": repo, "batch_id": batch_id, "upserts": upserts, "removals": removals, "error": error }),
    );
    applied.map(Json)
}

/// Applies a validated batch (and tells the cloud uplink what it touches). Repository
/// deletion (`repos.rs`) sends its removal batches through here too.
pub(crate) async fn apply(state: &AppState, caller: &Caller, repo: &str, batch: DeltaBatch) -> Result<DeltaAck, ApiError> {
    let units = batch.upserts.len() as u64;
    // With a cloud uplink, the fingerprints the batch touches are queued before it is applied
    // (a crash in between leaves them queued, and their counts are read when sent) and again
    // after (so a statistics batch formed while this one was being applied is followed by
    // another with the new counts).
    let touched = match &state.uplink {
        Some(uplink) => {
            let touched = uplink.fingerprints_touched(state.store.as_ref(), &caller.tenant, repo, &batch).await;
            uplink.mark(&caller.tenant, touched.clone()).await?;
            Some((uplink, touched))
        }
        None => None,
    };
    let ack = state.store.apply_batch(&caller.tenant, repo, batch).await?;
    if let Some((uplink, touched)) = touched {
        uplink.mark(&caller.tenant, touched).await?;
    }
    if !ack.duplicate {
        metrics::counter!("edge_units_ingested_total").increment(units);
    }
    Ok(ack)
}
