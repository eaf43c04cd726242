//! `POST /v1/repos/{repo}/deltas`: apply one batch of unit upserts and removals, durably and
//! at most once per batch id.

use axum::Json;
use axum::extract::{Extension, Path, State};
use periodic_wire::{DeltaAck, DeltaBatch};

use crate::api::AppState;
use crate::api::auth::require;
use crate::api::error::{ApiError, JsonBody};
use crate::api::validate;
use crate::tokens::{Caller, Role};

pub async fn post_deltas(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(repo): Path<String>,
    body: Result<JsonBody<DeltaBatch>, ApiError>,
) -> Result<Json<DeltaAck>, ApiError> {
    // The role is checked before the body so a read-only token learns 403 whatever it sent.
    require(&caller, Role::Write)?;
    validate::repo_name("path `repo`", &repo)?;
    let JsonBody(batch) = body?;
    validate::delta_batch(&batch, &state.limits)?;
    let units = batch.upserts.len() as u64;
    // With a cloud uplink, the fingerprints the batch touches are queued before it is applied
    // (a crash in between leaves them queued, and their counts are read when sent) and again
    // after (so a statistics batch formed while this one was being applied is followed by
    // another with the new counts).
    let touched = match &state.uplink {
        Some(uplink) => {
            let touched = uplink.fingerprints_touched(state.store.as_ref(), &caller.tenant, &repo, &batch).await;
            uplink.mark(&caller.tenant, touched.clone()).await?;
            Some((uplink, touched))
        }
        None => None,
    };
    let ack = state.store.apply_batch(&caller.tenant, &repo, batch).await?;
    if let Some((uplink, touched)) = touched {
        uplink.mark(&caller.tenant, touched).await?;
    }
    if !ack.duplicate {
        metrics::counter!("edge_units_ingested_total").increment(units);
    }
    Ok(Json(ack))
}
