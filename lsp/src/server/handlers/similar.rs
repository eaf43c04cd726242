//! `periodic/similar`: the units similar to the one at a position, here and in the team's
//! other repositories.

use serde::Deserialize;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{Position, TextDocumentIdentifier};

use crate::answers;
use crate::server::backend::Backend;
use crate::server::to_proto::{self, SimilarAnswer};

/// `periodic/similar` parameters.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SimilarParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
}

pub async fn similar(backend: &Backend, params: SimilarParams) -> Result<SimilarAnswer> {
    let context = backend.context(&params.text_document.uri)?;
    let line = context.line_of(params.position)?;
    let answer = match context.slot {
        Some(slot) => answers::similar_at(&context.snapshot, slot, line, |_| true, usize::MAX),
        None => answers::SimilarAt::default(),
    };
    Ok(to_proto::similar_answer(&answer, &context.addresses()))
}
