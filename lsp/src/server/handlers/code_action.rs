//! `textDocument/codeAction`: go to the closest copy, show all copies, ignore this
//! duplicate, name the pattern.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::server::backend::Backend;
use crate::server::to_proto;

pub async fn code_action(backend: &Backend, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
    let (context, group) = backend.answer_group(&params.text_document.uri, params.range.start)?;
    let (Some(group), Some(language)) = (group, context.language) else { return Ok(Some(Vec::new())) };
    let ours: Vec<Diagnostic> = params.context.diagnostics.into_iter().filter(|diagnostic| diagnostic.source.as_deref() == Some(to_proto::SOURCE)).collect();
    Ok(Some(to_proto::code_actions(&context.snapshot, &group, &params.text_document.uri, language, &context.text(), &context.addresses(), ours)))
}
