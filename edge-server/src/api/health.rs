//! `GET /health/live` (the process answers) and `GET /health/ready` (storage answers too).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::api::AppState;
use crate::api::error::ApiError;

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store.check_ready().await {
        Ok(()) => Ok(Json(json!({ "status": "ready" }))),
        Err(error) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", format!("storage does not answer: {error}"))),
    }
}
