//! Guards that run before any handler, shared by the team edge and the cloud tier: a request
//! whose declared body (`Content-Length`) exceeds the limit is answered 413 as soon as its
//! headers arrive, without reading a byte of the body, and a request that outlasts the
//! request timeout is answered 503 with `Retry-After`. A body without a declared length
//! (chunked) is limited where it is read (`DefaultBodyLimit`, enforced by
//! `error::JsonBody`), which answers 413 as soon as the limit is crossed. One route may have a
//! larger limit than the rest (analysis uploads, `POST /v1/analyses`); the guard finds it by
//! the matched route, and the route sets the same limit for its body where it is read.
//!
//! A client that is still sending when the 413 goes out would see its write fail (the
//! connection is reset under it) and might never read the answer. So, as web servers do with a
//! lingering close, a body that is only moderately over the limit is read and discarded after
//! the answer, bounded in bytes and time; a body declared far above it is never read.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;

/// What the guards need: the body limit and the request timeout.
#[derive(Clone, Copy, Debug)]
pub struct GuardLimits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// A route (as matched, e.g. `/v1/analyses`) with a larger body limit, and that limit.
    pub larger_body_route: Option<(&'static str, usize)>,
}

impl GuardLimits {
    fn body_limit(&self, request: &Request) -> usize {
        match (self.larger_body_route, request.extensions().get::<MatchedPath>()) {
            (Some((route, limit)), Some(matched)) if matched.as_str() == route => limit,
            _ => self.max_body_bytes,
        }
    }
}

/// Seconds a client is told to wait after a timeout.
const TIMEOUT_RETRY_AFTER_SECONDS: u64 = 5;

/// The largest refused body that is drained after the 413 so the client can read the answer.
const LINGER_MAX_BYTES: u64 = 4 << 20;

/// How long a refused body may keep draining before the connection is dropped.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);

/// Refuses a declared oversized body at once; bounds the rest of the request by the timeout.
pub async fn guard(State(limits): State<GuardLimits>, request: Request, next: Next) -> Response {
    let max_body_bytes = limits.body_limit(&request);
    if let Some(declared) = declared_length(&request)
        && declared > max_body_bytes as u64
    {
        if declared <= LINGER_MAX_BYTES {
            drain_in_background(request.into_body());
        }
        return ApiError::too_large(format!("the request declares a body of {declared} bytes; the limit is {max_body_bytes} bytes")).into_response();
    }
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request took longer than {} s and was abandoned; retry later", limits.request_timeout.as_secs_f64()),
            );
            error.retry_after_seconds = Some(TIMEOUT_RETRY_AFTER_SECONDS);
            error.into_response()
        }
    }
}

/// Reads and discards a refused body while the answer is written; gives up after
/// `LINGER_TIMEOUT`, which drops the body and with it the connection.
fn drain_in_background(body: axum::body::Body) {
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let drain = async { while let Some(Ok(_)) = futures::StreamExt::next(&mut stream).await {} };
        let _ = tokio::time::timeout(LINGER_TIMEOUT, drain).await;
    });
}

/// The `Content-Length` the client declared; `None` when absent. A malformed value is left
/// to hyper, which refuses it before a request reaches the router.
fn declared_length(request: &Request) -> Option<u64> {
    request.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}
