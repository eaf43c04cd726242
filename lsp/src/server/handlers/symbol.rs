//! `workspace/symbol`: pattern members, found by pattern name or id.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::server::backend::Backend;
use crate::server::to_proto::{self, Addresses};

/// Most workspace symbols in one answer.
const MAX_SYMBOLS: usize = 500;

pub async fn symbol(backend: &Backend, params: WorkspaceSymbolParams) -> Result<Option<WorkspaceSymbolResponse>> {
    let mut symbols = Vec::new();
    for workspace in backend.workspaces() {
        let snapshot = workspace.snapshot();
        let addresses = Addresses { root: &workspace.root };
        symbols.extend(to_proto::workspace_symbols(&snapshot, &params.query, &addresses, MAX_SYMBOLS - symbols.len()));
    }
    Ok(Some(WorkspaceSymbolResponse::Nested(symbols)))
}
