//! `POST /v1/query`: similar units of the caller's team for each given sketch, plus how common
//! each queried hash is across the organisation when the cloud uplink knows it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use periodic_wire::{Organisation, QueryRequest, SketchResult};
use serde::Serialize;

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
) -> Result<Response, ApiError> {
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
    Ok(json_response(&QueryAnswer { results, organisation }))
}

/// The answer as `axum::Json` sends it (same bytes, same `Content-Type`), written into a
/// buffer sized for it at once: `Json` starts from 128 bytes and grows by doubling, which for
/// the usual answer of ten matches (2-3 KB) is five reallocations and copies per request.
fn json_response(answer: &QueryAnswer) -> Response {
    let matches: usize = answer.results.iter().map(|result| result.matches.len()).sum();
    let mut body = Vec::with_capacity(64 + 48 * answer.results.len() + 320 * matches);
    match serde_json::to_writer(&mut body, answer) {
        Ok(()) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
        // As `Json` answers a value it cannot serialise (these types always serialise).
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], error.to_string()).into_response(),
    }
}

/// [`periodic_wire::QueryResponse`] as it is sent: the results shared with the query cache
/// instead of copied out of it. Serialises exactly as the wire type (tested below).
#[derive(Serialize)]
pub struct QueryAnswer {
    #[serde(serialize_with = "as_slice")]
    results: Arc<[SketchResult]>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    organisation: BTreeMap<String, Organisation>,
}

fn as_slice<S: serde::Serializer>(results: &Arc<[SketchResult]>, serializer: S) -> Result<S::Ok, S::Error> {
    results.as_ref().serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use periodic_wire::{QueryResponse, UnitMatch};

    fn unit_match(key: &str) -> UnitMatch {
        UnitMatch {
            repo: "billing".into(),
            key: key.into(),
            similarity: 0.875,
            exact: false,
            pattern_id: "00000000000000ff".into(),
            language: "rust".into(),
            tokens: 60,
            lines: 9,
            location: None,
        }
    }

    #[test]
    fn the_answer_serialises_as_the_wire_response() {
        let unit = unit_match("k");
        let results = vec![SketchResult { id: "a".into(), matches: vec![unit] }, SketchResult { id: "b".into(), matches: vec![] }];
        for organisation in [BTreeMap::new(), BTreeMap::from([("00000000000000ff".to_string(), Organisation::default())])] {
            let sent = serde_json::to_value(QueryAnswer { results: results.clone().into(), organisation: organisation.clone() }).expect("answer");
            let wire = serde_json::to_value(QueryResponse { results: results.clone(), organisation }).expect("wire");
            assert_eq!(sent, wire);
            let parsed: QueryResponse = serde_json::from_value(sent).expect("clients parse it");
            assert_eq!(parsed.results, results);
        }
    }

    #[tokio::test]
    async fn the_response_is_what_axum_json_would_send() {
        let unit = unit_match("k\"quoted\"");
        let answer = || QueryAnswer { results: vec![SketchResult { id: "a".into(), matches: vec![unit.clone(); 3] }].into(), organisation: BTreeMap::new() };
        let ours = json_response(&answer());
        let axums = axum::Json(answer()).into_response();
        assert_eq!(ours.status(), axums.status());
        assert_eq!(ours.headers(), axums.headers());
        let ours = axum::body::to_bytes(ours.into_body(), usize::MAX).await.expect("body");
        let axums = axum::body::to_bytes(axums.into_body(), usize::MAX).await.expect("body");
        assert_eq!(ours, axums);
    }
}
