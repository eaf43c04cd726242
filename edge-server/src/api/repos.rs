//! `DELETE /v1/repos/{repo}` (admin): removes every unit of one repository of the caller's
//! team, with everything derived from them, as removal batches through the path delta batches
//! take (see `store::repo_delete`), and its batch-id records. Every attempt is recorded in the
//! audit log (`repo.delete`: repository, units removed; never a key).

use axum::Json;
use axum::extract::{Extension, Path, State};
use periodic_wire::RepoDeleted;
use serde_json::json;

use crate::api::AppState;
use crate::api::auth::{ClientAddress, require};
use crate::api::deltas;
use crate::api::error::ApiError;
use crate::api::validate;
use crate::audit::Actor;
use crate::store::repo_delete;
use crate::tokens::{Caller, Role};

pub async fn delete_repo(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(ClientAddress(remote)): Extension<ClientAddress>,
    Path(repo): Path<String>,
) -> Result<Json<RepoDeleted>, ApiError> {
    if let Err(error) = require(&caller, Role::Admin) {
        let repo = validate::repo_name("path `repo`", &repo).is_ok().then_some(repo.as_str());
        state.audit.record("repo.delete", "denied", Actor::Token { caller: &caller, remote }, json!({ "repo": repo }));
        return Err(error);
    }
    validate::repo_name("path `repo`", &repo)?;
    // In a task of its own: a deletion outlasting `--request-timeout` is answered 503 but
    // still runs to its end and is audited, rather than being dropped between two batches.
    let task = tokio::spawn(async move {
        let chunk_units = state.limits.max_batch_units;
        let (removed, deleted) = repo_delete::delete_repository(state.store.as_ref(), &caller.tenant, &repo, chunk_units, |batch| {
            let (state, caller, repo) = (state.clone(), caller.clone(), repo.clone());
            async move { deltas::apply(&state, &caller, &repo, batch).await }
        })
        .await;
        let (outcome, error) = match &deleted {
            Ok(()) if removed == 0 => ("not_found", None),
            Ok(()) => ("ok", None),
            Err(error) => ("failed", Some(error.kind)),
        };
        state.audit.record("repo.delete", outcome, Actor::Token { caller: &caller, remote }, json!({ "repo": repo, "removed": removed, "error": error }));
        deleted?;
        if removed == 0 {
            return Err(ApiError::not_found(format!("repository `{repo}` has no units in this team")));
        }
        Ok(Json(RepoDeleted { repo, removed }))
    });
    task.await.map_err(|error| ApiError::from(crate::store::StoreError::Task(error.to_string())))?
}
