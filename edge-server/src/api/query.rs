//! `POST /v1/query`: similar units of the caller's team for each given sketch, plus how common
//! each queried hash is across the organisation when the cloud uplink knows it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
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
) -> Result<Json<QueryAnswer>, ApiError> {
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
    Ok(Json(QueryAnswer { results, organisation }))
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

    #[test]
    fn the_answer_serialises_as_the_wire_response() {
        let unit = UnitMatch {
            repo: "billing".into(),
            key: "k".into(),
            similarity: 0.875,
            exact: false,
            pattern_id: "00000000000000ff".into(),
            language: "rust".into(),
            tokens: 60,
            lines: 9,
            location: None,
        };
        let results = vec![SketchResult { id: "a".into(), matches: vec![unit] }, SketchResult { id: "b".into(), matches: vec![] }];
        for organisation in [BTreeMap::new(), BTreeMap::from([("00000000000000ff".to_string(), Organisation::default())])] {
            let sent = serde_json::to_value(QueryAnswer { results: results.clone().into(), organisation: organisation.clone() }).expect("answer");
            let wire = serde_json::to_value(QueryResponse { results: results.clone(), organisation }).expect("wire");
            assert_eq!(sent, wire);
            let parsed: QueryResponse = serde_json::from_value(sent).expect("clients parse it");
            assert_eq!(parsed.results, results);
        }
    }
}
