//! `GET /v1/stats`: counts for the caller's team.

use axum::Json;
use axum::extract::{Extension, State};
use periodic_wire::Stats;

use crate::api::AppState;
use crate::api::auth::require;
use crate::api::error::ApiError;
use crate::tokens::{Caller, Role};

pub async fn get_stats(State(state): State<AppState>, Extension(caller): Extension<Caller>) -> Result<Json<Stats>, ApiError> {
    require(&caller, Role::Read)?;
    Ok(Json(state.store.stats(&caller.tenant).await?))
}
