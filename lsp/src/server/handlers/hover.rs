//! `textDocument/hover`: the closest copies of the code under the cursor, its pattern, a
//! diff against the closest copy, and its copies in the team's other repositories.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::answers;
use crate::server::backend::Backend;
use crate::server::to_proto;

pub async fn hover(backend: &Backend, params: HoverParams) -> Result<Option<Hover>> {
    let position = params.text_document_position_params;
    let (context, group) = backend.answer_group(&position.text_document.uri, position.position)?;
    let Some(group) = group else {
        // Code with copies only in the team's other repositories.
        let team = context.slot.and_then(|slot| {
            let unit = answers::innermost_unit(&context.snapshot, slot, position.position.line + 1)?;
            context.snapshot.team_of(slot, unit)
        });
        return Ok(team.map(|team| Hover {
            contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: format!("**Beyond this workspace**\n{}", to_proto::team_markdown(team, &context.snapshot.team_names)) }),
            range: None,
        }));
    };
    let closest = group.best().and_then(|best| backend.copy_text(&context.workspace.root, &context.snapshot, &best.instance));
    let markdown = to_proto::hover_markdown(&context.snapshot, &group, &context.text(), &context.addresses(), closest);
    Ok(Some(Hover { contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: markdown }), range: None }))
}
