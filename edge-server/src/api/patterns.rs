//! `GET /v1/patterns?top=N`, `GET /v1/patterns?named=true`, `GET /v1/patterns/{id}`, `PUT
//! /v1/patterns/{id}`: the team's periodic table and its shared names and notes. A name is
//! stored with the id of the token that set it and the time (the last writer wins, and
//! clients show who it was). Setting a name or note is recorded in the audit log with the
//! new name and the note's length; not the pattern id, which is the structural hash of the
//! code, nor the note's text, which may quote code.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use periodic_wire::{PatternDetail, PatternList, PatternUpdate};
use serde::Deserialize;
use serde_json::json;

use crate::api::AppState;
use crate::api::auth::{ClientAddress, require};
use crate::audit::Actor;
use crate::api::error::{ApiError, JsonBody};
use crate::api::validate;
use crate::store::PatternMeta;
use crate::tokens::{Caller, Role};

pub const DEFAULT_TOP: usize = 20;
pub const MAX_TOP: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    top: Option<usize>,
    /// Only patterns with a team name (whatever their unit count), most recently named first.
    named: Option<bool>,
}

pub async fn list_patterns(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<PatternList>, ApiError> {
    require(&caller, Role::Read)?;
    let Query(params) = params.map_err(|rejection| ApiError::bad_request(format!("query: {}", rejection.body_text())))?;
    let top = params.top.unwrap_or(DEFAULT_TOP);
    if top == 0 || top > MAX_TOP {
        return Err(ApiError::bad_request(format!("query `top`: must be within 1..={MAX_TOP}")));
    }
    let patterns = if params.named == Some(true) {
        state.store.named_patterns(&caller.tenant, top).await?
    } else {
        state.store.top_patterns(&caller.tenant, top).await?
    };
    Ok(Json(PatternList { patterns }))
}

pub async fn get_pattern(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<PatternDetail>, ApiError> {
    require(&caller, Role::Read)?;
    let id = validate::pattern_id(&id)?;
    let detail = state.store.pattern(&caller.tenant, id).await?;
    detail.map(Json).ok_or_else(|| ApiError::not_found("no units and no name for this pattern"))
}

pub async fn put_pattern(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(ClientAddress(remote)): Extension<ClientAddress>,
    Path(id): Path<String>,
    body: Result<JsonBody<PatternUpdate>, ApiError>,
) -> Result<Json<PatternDetail>, ApiError> {
    let actor = || Actor::Token { caller: &caller, remote };
    if let Err(error) = require(&caller, Role::Write) {
        state.audit.record("pattern.update", "denied", actor(), json!({}));
        return Err(error);
    }
    let id = validate::pattern_id(&id)?;
    let JsonBody(update) = body?;
    validate::pattern_update(&update)?;
    let name = update.name.clone();
    let note_chars = update.note.as_ref().map(|note| note.chars().count());
    let meta = PatternMeta { name: update.name, note: update.note, named_by: Some(caller.token_id.clone()), named_at: Some(crate::clock::now_unix()) };
    let updated = state.store.set_pattern_meta(&caller.tenant, id, meta).await.map_err(ApiError::from);
    let (outcome, error) = match &updated {
        Ok(_) => ("ok", None),
        Err(error) => ("failed", Some(error.kind)),
    };
    state.audit.record("pattern.update", outcome, actor(), json!({ "name": name, "note_chars": note_chars, "error": error }));
    let mut updated = updated?;
    // Language servers from before near-miss families read this answer and reject fields they
    // do not know; the occurrences' kinds are for `GET`, so they are left out here.
    for occurrence in &mut updated.occurrences {
        occurrence.kind = None;
    }
    Ok(Json(updated))
}
