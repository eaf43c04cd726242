//! Observability routes and middleware: `GET /metrics` (Prometheus text), `GET
//! /v1/openapi.json`, and the per-route request counter and latency histogram.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::{AppState, OPENAPI_JSON};

pub async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(request.extensions().get::<MatchedPath>());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = status_label(response.status());
    metrics::counter!("edge_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!("edge_http_request_duration_seconds", "route" => route, "method" => method).record(started.elapsed().as_secs_f64());
    response
}

// The labels below borrow static text where they can: a metric label made from a `String`
// is one more allocation (and a copy for each metric it is used in) on every request.

/// The route template as a label: the static text of the routing tables (team edge and cloud
/// tier), else a copy.
fn route_label(matched: Option<&MatchedPath>) -> metrics::SharedString {
    route_text(matched.map(MatchedPath::as_str))
}

fn route_text(matched: Option<&str>) -> metrics::SharedString {
    let Some(path) = matched else { return metrics::SharedString::const_str("unmatched") };
    match crate::api::ROUTES.iter().chain(crate::cloud::api::CLOUD_ROUTES).find(|(_, route)| *route == path) {
        Some((_, route)) => metrics::SharedString::const_str(route),
        None => path.to_string().into(),
    }
}

fn method_label(method: &Method) -> metrics::SharedString {
    let known = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::HEAD, Method::OPTIONS, Method::PATCH];
    const NAMES: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];
    match known.iter().position(|candidate| candidate == method) {
        Some(index) => metrics::SharedString::const_str(NAMES[index]),
        None => method.as_str().to_string().into(),
    }
}

fn status_label(status: StatusCode) -> metrics::SharedString {
    const NAMES: [(u16, &str); 16] = [
        (200, "200"), (201, "201"), (204, "204"), (400, "400"), (401, "401"), (403, "403"), (404, "404"), (405, "405"),
        (409, "409"), (413, "413"), (415, "415"), (422, "422"), (429, "429"), (500, "500"), (503, "503"), (504, "504"),
    ];
    match NAMES.iter().find(|(code, _)| *code == status.as_u16()) {
        Some((_, name)) => metrics::SharedString::const_str(name),
        None => status.as_u16().to_string().into(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.store.units_stored().await {
        Ok(units) => metrics::gauge!("edge_units_stored").set(units as f64),
        Err(error) => tracing::warn!(%error, "units_stored unavailable for /metrics"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.prometheus.render()).into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_the_route_method_and_status_they_stand_for() {
        // Routes of both tables, one of neither (copied), and none.
        for path in ["/v1/query", "/v1/patterns/{id}", "/v1/statistics", "/somewhere/else"] {
            assert_eq!(route_text(Some(path)).as_ref(), path);
        }
        assert_eq!(route_text(None).as_ref(), "unmatched");
        assert_eq!(method_label(&Method::POST).as_ref(), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"PROPFIND").expect("method")).as_ref(), "PROPFIND");
        assert_eq!(status_label(StatusCode::OK).as_ref(), "200");
        assert_eq!(status_label(StatusCode::TOO_MANY_REQUESTS).as_ref(), "429");
        assert_eq!(status_label(StatusCode::IM_A_TEAPOT).as_ref(), "418");
    }
}
