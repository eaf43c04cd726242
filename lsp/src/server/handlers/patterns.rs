//! `periodic/patterns`: the periodic table of every workspace folder, largest first.

use serde::Deserialize;
use tower_lsp_server::jsonrpc::Result;

use crate::answers::{self, PatternFilter};
use crate::server::backend::Backend;
use crate::server::to_proto::{self, Addresses, PatternEntry};

/// `periodic/patterns` parameters; `{}` and `[]` mean all patterns.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub struct PatternsParams {
    pub top: Option<usize>,
    pub query: Option<String>,
}

pub async fn patterns(backend: &Backend, params: PatternsParams) -> Result<Vec<PatternEntry>> {
    let filter = PatternFilter { text: params.query, ..PatternFilter::default() };
    let top = params.top.unwrap_or(usize::MAX);
    let mut entries = Vec::new();
    for workspace in backend.workspaces() {
        let snapshot = workspace.snapshot();
        let addresses = Addresses { root: &workspace.root };
        entries.extend(answers::patterns(&snapshot, &filter, top).iter().map(|pattern| to_proto::pattern_entry(pattern, &addresses)));
    }
    // Folders are merged by the same order each one uses.
    entries.sort_by(|a, b| b.duplicated_lines.cmp(&a.duplicated_lines).then(b.member_count.cmp(&a.member_count)).then(a.id.cmp(&b.id)));
    entries.truncate(top);
    Ok(entries)
}
