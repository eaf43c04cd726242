//! The HTTP API (v1): router, shared state, limits, and the table of routes that the OpenAPI
//! document must match. One file per handler; errors become HTTP statuses only in `error.rs`;
//! authentication and rate limiting happen once, in `auth.rs`.

pub mod analyses;
pub mod auth;
pub mod deltas;
pub mod error;
pub mod guard;
pub mod health;
pub mod observe;
pub mod patterns;
pub mod query;
pub mod repos;
pub mod stats;
pub mod validate;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::trace::TraceLayer;

use crate::store::Store;
use crate::tokens::TokenTable;

/// The OpenAPI 3 document served at `/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Every route the server answers, as (method, path template). A test checks the OpenAPI
/// document against this table and every entry against the running server.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/repos/{repo}/deltas"),
    ("delete", "/v1/repos/{repo}"),
    ("post", "/v1/query"),
    ("get", "/v1/patterns"),
    ("get", "/v1/patterns/{id}"),
    ("put", "/v1/patterns/{id}"),
    ("get", "/v1/stats"),
    ("post", "/v1/analyses/lookup"),
    ("post", "/v1/analyses"),
    ("get", "/v1/openapi.json"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
];

/// The one route with a larger body limit than the others.
pub const ANALYSIS_UPLOAD_ROUTE: &str = "/v1/analyses";

/// Request limits and query defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// The body limit of `POST /v1/analyses` alone (or `max_body_bytes`, if that is larger):
    /// an upload of hundreds of parsed files is far larger than any other request.
    pub max_analysis_body_bytes: usize,
    pub max_batch_units: usize,
    pub max_query_sketches: usize,
    pub request_timeout: Duration,
    pub rate_per_second: u32,
    pub rate_burst: u32,
    pub default_min_similarity: f32,
    pub default_top_k: usize,
    pub max_top_k: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_analysis_body_bytes: 64 * 1024 * 1024,
            max_batch_units: 5000,
            max_query_sketches: 256,
            request_timeout: Duration::from_secs(30),
            rate_per_second: 1000,
            rate_burst: 2000,
            default_min_similarity: 0.7,
            default_top_k: 10,
            max_top_k: 100,
        }
    }
}

impl Limits {
    /// The part of the limits checked before any handler runs.
    pub fn guard(&self) -> guard::GuardLimits {
        guard::GuardLimits {
            max_body_bytes: self.max_body_bytes,
            request_timeout: self.request_timeout,
            larger_body_route: Some((ANALYSIS_UPLOAD_ROUTE, self.analysis_body_bytes())),
        }
    }

    pub fn analysis_body_bytes(&self) -> usize {
        self.max_analysis_body_bytes.max(self.max_body_bytes)
    }
}

/// Shared by every handler, behind one `Arc`: axum clones the state for every request (the
/// handler's and each middleware's `State` extractor), and cloning the fields one by one cost
/// about eight reference-count updates and as many releases per request, on counters both
/// worker threads write (about 2 % of the server's time under query load).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    pub fn new(shared: SharedState) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct SharedState {
    pub store: Arc<dyn Store>,
    /// Replaced as a whole on SIGHUP.
    pub tokens: Arc<RwLock<Arc<TokenTable>>>,
    pub limiter: Arc<auth::TokenRateLimiter>,
    pub limits: Arc<Limits>,
    pub prometheus: PrometheusHandle,
    /// The link to the cloud tier, when `--cloud-url` is given.
    pub uplink: Option<Arc<crate::uplink::Uplink>>,
    /// Where administrative and write actions are recorded (`--audit-log`; may be off).
    pub audit: Arc<crate::audit::AuditLog>,
    /// The analysis cache's budget and TTL (`--analysis-cache-mib`, `--analysis-cache-ttl`).
    pub analysis_cache: crate::store::AnalysisPolicy,
}

/// Request spans and events for `PERIODIC_EDGE_LOG=debug`. Failed responses are not logged
/// one by one at error level: the cause is logged where it is known (a storage episode once,
/// in `store::metered`), and every answer is counted in `edge_http_requests_total`.
pub fn trace_layer() -> TraceLayer<tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>, tower_http::trace::DefaultMakeSpan, tower_http::trace::DefaultOnRequest, tower_http::trace::DefaultOnResponse, tower_http::trace::DefaultOnBodyChunk, tower_http::trace::DefaultOnEos, tower_http::trace::DefaultOnFailure> {
    TraceLayer::new_for_http().on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG))
}

pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let authenticated = Router::new()
        .route("/v1/repos/{repo}/deltas", post(deltas::post_deltas))
        .route("/v1/repos/{repo}", delete(repos::delete_repo))
        .route("/v1/query", post(query::post_query))
        .route("/v1/patterns", get(patterns::list_patterns))
        .route("/v1/patterns/{id}", get(patterns::get_pattern).put(patterns::put_pattern))
        .route("/v1/stats", get(stats::get_stats))
        .route("/v1/analyses/lookup", post(analyses::post_lookup))
        // Set after (inside) the router-wide limit below, so it wins for this route alone; the
        // guard refuses a declared length by the same per-route limit.
        .route(ANALYSIS_UPLOAD_ROUTE, post(analyses::post_upload).layer(DefaultBodyLimit::max(limits.analysis_body_bytes())))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate));
    let public = Router::new()
        .route("/v1/openapi.json", get(observe::openapi))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(observe::metrics));
    authenticated
        .merge(public)
        .fallback(error::not_found)
        // Inside the request metrics, so that early 413s and timeouts are counted per route.
        .route_layer(axum::middleware::from_fn_with_state(limits.guard(), guard::guard))
        .route_layer(axum::middleware::from_fn(observe::record_request))
        // Enforced where the body is read (api::error::JsonBody), so a 413 is JSON like every error.
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(trace_layer())
        .with_state(state)
}
