//! The cloud tier's HTTP API (v1): push statistics, ask how common fingerprints are, a
//! summary for monitoring, plus the same public routes as a team edge (OpenAPI document,
//! health probes, metrics). Errors, body parsing, request metrics and the bearer-token check
//! are the team edge's (`crate::api`), with the tier set to `Cloud` so team tokens are refused.

use std::sync::{Arc, RwLock};

use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use periodic_wire::cloud::{
    CloudSummary, CommonnessRequest, CommonnessResponse, FingerprintCommonness, MAX_COMMONNESS_FINGERPRINTS, MAX_STATISTICS_ENTRIES,
    StatisticsAck, StatisticsBatch, is_team_pseudonym,
};
use serde_json::{Value, json};

use crate::api::Limits;
use crate::api::auth::{TokenRateLimiter, caller_of, require};
use crate::api::error::{self, ApiError, JsonBody};
use crate::api::{guard, observe};
use crate::cloud::store::CloudStore;
use crate::tokens::{Caller, Role, Tier, TokenTable};

/// The OpenAPI 3 document the cloud serves at `/v1/openapi.json`.
pub const CLOUD_OPENAPI_JSON: &str = include_str!("openapi.json");

/// Every route the cloud answers, as (method, path template); a test checks the OpenAPI
/// document against it and every entry against the running server.
pub const CLOUD_ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/statistics"),
    ("post", "/v1/commonness"),
    ("get", "/v1/summary"),
    ("get", "/v1/openapi.json"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
];

/// Longest batch id (letters, digits, `.`, `_`, `-`).
pub const MAX_BATCH_ID_LEN: usize = 128;

#[derive(Clone)]
pub struct CloudState {
    pub store: Arc<CloudStore>,
    pub tokens: Arc<RwLock<Arc<TokenTable>>>,
    pub limiter: Arc<TokenRateLimiter>,
    pub limits: Arc<Limits>,
    pub prometheus: PrometheusHandle,
}

pub fn router(state: CloudState) -> Router {
    let limits = state.limits.clone();
    let authenticated = Router::new()
        .route("/v1/statistics", post(post_statistics))
        .route("/v1/commonness", post(post_commonness))
        .route("/v1/summary", get(get_summary))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authenticate));
    let public = Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics));
    authenticated
        .merge(public)
        .fallback(error::not_found)
        // Inside the request metrics, so that early 413s and timeouts are counted per route.
        .route_layer(axum::middleware::from_fn_with_state(limits.guard(), guard::guard))
        .route_layer(axum::middleware::from_fn(observe::record_request))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(crate::api::trace_layer())
        .with_state(state)
}

async fn authenticate(State(state): State<CloudState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let caller = caller_of(&request, &state.tokens, &state.limiter, Tier::Cloud)?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

fn validate_batch(batch: &StatisticsBatch, limits: &Limits) -> Result<(), ApiError> {
    let id = &batch.batch_id;
    if id.is_empty() || id.len() > MAX_BATCH_ID_LEN || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(ApiError::bad_request(format!(
            "field `batch_id`: 1-{MAX_BATCH_ID_LEN} characters among letters, digits, '.', '_' and '-'"
        )));
    }
    if batch.entries.len() > MAX_STATISTICS_ENTRIES {
        return Err(ApiError::bad_request(format!("field `entries`: at most {MAX_STATISTICS_ENTRIES} items, got {}", batch.entries.len())));
    }
    for (index, entry) in batch.entries.iter().enumerate() {
        if !is_team_pseudonym(&entry.team) {
            return Err(ApiError::bad_request(format!("field `entries[{index}].team`: a team pseudonym is 32 lowercase hex characters")));
        }
        if entry.repos > entry.units {
            return Err(ApiError::bad_request(format!("field `entries[{index}].repos`: more repositories than units")));
        }
        // SQLite stores the bit pattern; above i64::MAX the version order would flip.
        if entry.version > i64::MAX as u64 || entry.units > i64::MAX as u64 {
            return Err(ApiError::bad_request(format!("field `entries[{index}]`: version and units must be below 2^63")));
        }
    }
    if batch.entries.len() > limits.max_batch_units {
        return Err(ApiError::too_large(format!("batch has {} entries; at most {} are accepted", batch.entries.len(), limits.max_batch_units)));
    }
    Ok(())
}

async fn post_statistics(
    State(state): State<CloudState>,
    Extension(caller): Extension<Caller>,
    body: Result<JsonBody<StatisticsBatch>, ApiError>,
) -> Result<Json<StatisticsAck>, ApiError> {
    require(&caller, Role::CloudPush)?;
    let JsonBody(batch) = body?;
    validate_batch(&batch, &state.limits)?;
    let ack = state.store.apply(&caller.tenant, batch).await.inspect_err(|error| tracing::error!(%error, "statistics not stored"))?;
    if !ack.duplicate {
        metrics::counter!("cloud_statistics_entries_total", "outcome" => "applied").increment(u64::from(ack.applied));
        metrics::counter!("cloud_statistics_entries_total", "outcome" => "stale").increment(u64::from(ack.stale));
    }
    Ok(Json(ack))
}

async fn post_commonness(
    State(state): State<CloudState>,
    Extension(caller): Extension<Caller>,
    body: Result<JsonBody<CommonnessRequest>, ApiError>,
) -> Result<Json<CommonnessResponse>, ApiError> {
    require(&caller, Role::CloudRead)?;
    let JsonBody(request) = body?;
    let asked = request.fingerprints.len();
    if asked == 0 || asked > MAX_COMMONNESS_FINGERPRINTS {
        return Err(ApiError::bad_request(format!("field `fingerprints`: between 1 and {MAX_COMMONNESS_FINGERPRINTS} fingerprints, got {asked}")));
    }
    let counts = state.store.commonness(request.fingerprints.clone()).await.inspect_err(|error| tracing::error!(%error, "commonness lookup failed"))?;
    let results = request
        .fingerprints
        .into_iter()
        .zip(counts)
        .map(|(fingerprint, organisation)| FingerprintCommonness { fingerprint, organisation })
        .collect();
    Ok(Json(CommonnessResponse { results }))
}

async fn get_summary(State(state): State<CloudState>, Extension(caller): Extension<Caller>) -> Result<Json<CloudSummary>, ApiError> {
    require(&caller, Role::CloudRead)?;
    Ok(Json(state.store.summary().await?))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], CLOUD_OPENAPI_JSON).into_response()
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

async fn ready(State(state): State<CloudState>) -> Result<Json<Value>, ApiError> {
    match state.store.check_ready().await {
        Ok(()) => Ok(Json(json!({ "status": "ready" }))),
        Err(error) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", format!("storage does not answer: {error}"))),
    }
}

async fn metrics(State(state): State<CloudState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.prometheus.render()).into_response()
}
