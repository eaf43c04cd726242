//! `textDocument/codeLens` and `codeLens/resolve`: "3 similar · pattern P" above each
//! unit with copies, resolved lazily.

use serde_json::json;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::server::backend::{Backend, invalid};
use crate::server::to_proto;

pub async fn code_lens(backend: &Backend, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
    let context = backend.context(&params.text_document.uri)?;
    let groups = context.groups(|_| true);
    Ok(Some(to_proto::code_lenses(&groups, &params.text_document.uri)))
}

pub async fn code_lens_resolve(backend: &Backend, mut lens: CodeLens) -> Result<CodeLens> {
    let data: to_proto::LensData =
        lens.data.clone().and_then(|data| serde_json::from_value(data).ok()).ok_or_else(|| invalid("this code lens was not made by periodic"))?;
    let context = backend.context(&data.uri)?;
    let groups = context.groups(|_| true);
    let group = groups.iter().find(|group| group.local.unit.is_some() && group.local.start_line == data.line);
    lens.command = Some(match group {
        Some(group) => to_proto::lens_command(&context.snapshot, group, &data.uri, &context.addresses()),
        None => Command { title: "no similar code".into(), command: to_proto::SHOW_REFERENCES.into(), arguments: Some(vec![json!(data.uri), json!(lens.range.start), json!([])]) },
    });
    Ok(lens)
}
