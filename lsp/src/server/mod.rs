//! `periodic lsp`: the language server, over stdio. Standard output carries only the
//! protocol; logs go to standard error.
//!
//! `backend` holds the server's state and dispatches each request to its handler in
//! `handlers/`; `scheduling`, `indexing` and `team` hold the work handlers start; the
//! questions themselves are answered by `crate::answers` and converted by `to_proto`.
//! `document` keeps open documents (rope + incrementally edited syntax tree), `position`
//! converts positions in the negotiated encoding, `settings` reads the editor's options,
//! `capabilities` negotiates, `watch` reports file changes made outside the editor.

mod backend;
mod capabilities;
mod document;
mod framing;
mod handlers;
mod indexing;
mod memory;
mod position;
mod scheduling;
mod settings;
mod team;
mod to_proto;
mod watch;

use tokio::io::AsyncWriteExt;
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
        // The handlers talk through in-memory pipes; `framing` sits between them and stdio.
        let (handlers_input, client_side_input) = tokio::io::duplex(1 << 16);
        let (client_side_output, handlers_output) = tokio::io::duplex(1 << 16);
        let (frames, mut to_write) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(framing::pump_input(tokio::io::stdin(), client_side_input, frames.clone()));
        let end_of_output = frames.clone();
        let output = tokio::spawn(framing::pump_output(client_side_output, frames));
        let writer = tokio::spawn(async move {
            let mut stdout = tokio::io::stdout();
            // An empty frame marks the end of the handlers' output.
            while let Some(frame) = to_write.recv().await.filter(|frame| !frame.is_empty()) {
                if stdout.write_all(&frame).await.is_err() || stdout.flush().await.is_err() {
                    break;
                }
            }
        });
        Server::new(handlers_input, handlers_output, socket).serve(service).await;
        // Everything the handlers wrote reaches the client before the process ends.
        let _ = output.await;
        let _ = end_of_output.send(Vec::new());
        let _ = writer.await;
    });
    // Background scans may still be running on blocking threads: do not wait for them.
    runtime.shutdown_background();
    Ok(())
}
