//! `periodic lsp`: the language server, over stdio. Standard output carries only the
//! protocol; logs go to standard error.
//!
//! `backend` holds the protocol handlers, `workspace` the engine state of each folder and
//! the snapshots requests read, `answers` turns snapshots into LSP answers, `document` keeps
//! open documents (rope + incrementally edited syntax tree), `position` converts positions
//! in the negotiated encoding, `settings` reads the editor's options, `watch` reports file
//! changes made outside the editor.

mod answers;
mod backend;
mod document;
mod position;
mod settings;
mod watch;
mod workspace;

use tower_lsp_server::{LspService, Server};

use backend::Backend;

/// Serves one client on stdin/stdout until it sends `exit` or closes the pipe.
pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (service, socket) = LspService::build(Backend::new)
            .custom_method("periodic/similar", Backend::similar)
            .custom_method("periodic/patterns", Backend::patterns)
            .finish();
        Server::new(tokio::io::stdin(), tokio::io::stdout(), socket).serve(service).await;
    });
    // Background scans may still be running on blocking threads: do not wait for them.
    runtime.shutdown_background();
    Ok(())
}
