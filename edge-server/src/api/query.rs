//! `POST /v1/query`: similar units of the caller's team for each given sketch, plus how common
//! each queried hash is across the organisation when the cloud uplink knows it.

use axum::Json;
use axum::extract::{Extension, State};
use periodic_wire::{QueryRequest, QueryResponse};

use crate::api::AppState;
use crate::api::auth::require;
use crate::api::error::{ApiError, JsonBody};
use crate::api::validate;
use crate::store::QueryOptions;
use crate::tokens::{Caller, Role};

pub async fn post_query(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<QueryRequest>,
) -> Result<Json<QueryResponse>, ApiError> {
    require(&caller, Role::Read)?;
    validate::query(&request, &state.limits)?;
    let options = QueryOptions {
        exclude_repo: request.exclude_repo,
        min_similarity: request.min_similarity.unwrap_or(state.limits.default_min_similarity),
        top_k: request.top_k.map_or(state.limits.default_top_k, |k| k as usize),
    };
    let results = state.store.query(&caller.tenant, &request.sketches, &options).await?;
    // Organisation counts come from the uplink's cache only; a query never waits on the cloud.
    let organisation = match &state.uplink {
        Some(uplink) => uplink.organisation_of(&request.sketches.iter().map(|sketch| sketch.t2_hash).collect::<Vec<_>>()).await,
        None => Default::default(),
    };
    Ok(Json(QueryResponse { results, organisation }))
}
