//! `workspace/executeCommand`: `periodic.namePattern` (stores a pattern's name in the
//! index and, with a team edge, shares it: `PUT /v1/patterns/{id}`), `periodic.showSimilar`
//! and `periodic.goToSimilar`.

use periodic_core::pattern::PatternLabel;
use serde_json::{Value, json};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;

use crate::edge_sync::names::NameError;
use crate::server::backend::{Backend, invalid};
use crate::server::to_proto;

pub async fn execute_command(backend: &Backend, params: ExecuteCommandParams) -> Result<Option<Value>> {
    match params.command.as_str() {
        to_proto::NAME_PATTERN => name_pattern(backend, &params.arguments).await,
        to_proto::SHOW_SIMILAR => show_similar(backend, &params.arguments, false).await,
        to_proto::GO_TO_SIMILAR => show_similar(backend, &params.arguments, true).await,
        other => Err(invalid(format!("unknown command {other}"))),
    }
}

async fn name_pattern(backend: &Backend, arguments: &[Value]) -> Result<Option<Value>> {
    let (Some(Value::String(id)), Some(Value::String(name))) = (arguments.first(), arguments.get(1)) else {
        return Err(invalid("periodic.namePattern expects [patternId, name]"));
    };
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 120 || name.contains('\n') {
        return Err(invalid("a pattern name must be one line of 1 to 120 characters"));
    }
    let workspace = backend
        .workspaces()
        .into_iter()
        .find(|workspace| workspace.snapshot().patterns.iter().any(|pattern| &pattern.id == id))
        .ok_or_else(|| invalid(format!("no pattern {id} in this workspace")))?;
    let note = workspace.inspect(|engine| engine.label(id).and_then(|label| label.note.clone())).flatten();
    let label = PatternLabel { name: Some(name.clone()), note };
    let (saving, saved_id, saved_label) = (workspace.clone(), id.clone(), label.clone());
    let saved = tokio::task::spawn_blocking(move || {
        periodic_core::scan::save_label(&saving.root, &saved_id, &saved_label)?;
        saving.change(|engine| engine.set_label(&saved_id, saved_label));
        Ok::<(), periodic_core::scan::ScanError>(())
    })
    .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(Error { code: ErrorCode::InternalError, message: format!("could not store the name: {error}").into(), data: None }),
        Err(error) => return Err(Error { code: ErrorCode::InternalError, message: format!("could not store the name: {error}").into(), data: None }),
    }
    let shared = share_name(backend, &workspace, id, &label).await;
    backend.refresh_all(&workspace).await;
    Ok(Some(json!({"id": id, "name": name, "team": shared})))
}

/// How long naming a pattern waits for the edge before saying the name stayed local.
const SHARE_NAME_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Shares a name just stored locally with the team, when an edge is configured. Returns
/// `"shared"`, `"local"` (no edge) or `"refused"`/`"failed"`; in the last two cases the user
/// is told why and that the name stays in this workspace.
async fn share_name(backend: &Backend, workspace: &std::sync::Arc<crate::answers::workspace::Workspace>, id: &str, label: &PatternLabel) -> &'static str {
    let edge = workspace.edge();
    let answer = match edge.name_pattern(id, label.name.clone(), label.note.clone()) {
        Ok(answer) => answer,
        Err(_) => return "local",
    };
    let outcome = match tokio::time::timeout(SHARE_NAME_WAIT, answer).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Err(NameError::Failed("the team sync stopped".into())),
        Err(_) => Err(NameError::Failed(format!("no answer within {} s", SHARE_NAME_WAIT.as_secs()))),
    };
    match outcome {
        Ok(_) => {
            // The edge's attribution (who, when) shows at once, not at the next read.
            let target = workspace.clone();
            let _ = tokio::task::spawn_blocking(move || target.change(|engine| engine.set_team_names(&edge))).await;
            "shared"
        }
        Err(NameError::ReadOnly(reason)) => {
            let message = format!("Pattern {id} is named in this workspace only: the team edge token may not write ({reason}).");
            backend.client.show_message(MessageType::WARNING, message).await;
            "refused"
        }
        Err(error) => {
            let message = format!("Pattern {id} is named in this workspace only: the team edge did not take the name ({error}).");
            backend.client.show_message(MessageType::WARNING, message).await;
            "failed"
        }
    }
}

fn position_arguments(arguments: &[Value], command: &str) -> Result<(Uri, Position)> {
    let uri = arguments.first().cloned().and_then(|value| serde_json::from_value::<Uri>(value).ok());
    let position = arguments.get(1).cloned().and_then(|value| serde_json::from_value::<Position>(value).ok());
    match (uri, position) {
        (Some(uri), Some(position)) => Ok((uri, position)),
        _ => Err(invalid(format!("{command} expects [uri, position]"))),
    }
}

async fn show_similar(backend: &Backend, arguments: &[Value], go_to_best: bool) -> Result<Option<Value>> {
    let command = if go_to_best { to_proto::GO_TO_SIMILAR } else { to_proto::SHOW_SIMILAR };
    let (uri, position) = position_arguments(arguments, command)?;
    let (context, group) = backend.answer_group(&uri, position)?;
    let Some(group) = group else { return Ok(Some(json!([]))) };
    let addresses = context.addresses();
    let locations: Vec<Location> = group.copies.iter().filter_map(|copy| addresses.location(&context.snapshot, &copy.instance)).collect();
    let shown = if go_to_best { locations.first().cloned().into_iter().collect() } else { locations.clone() };
    if shown.len() == 1 && backend.support().show_document {
        let target = &shown[0];
        let _ = backend
            .client
            .show_document(ShowDocumentParams { uri: target.uri.clone(), external: Some(false), take_focus: Some(true), selection: Some(Range::new(target.range.start, target.range.start)) })
            .await;
    }
    Ok(Some(json!(shown)))
}
