//! The organisation-wide cloud tier, `periodic-edge --role cloud`: the same binary as a team
//! edge, serving a different API. Team edges push de-identified statistics (per team
//! pseudonym and exact structural hash: how many units and repositories) and ask how common a
//! fingerprint is across the organisation. It never receives paths, names or code.
//!
//! `store` holds the statistics (SQLite); `api` the routes. Binding, TLS, token reload and
//! graceful shutdown work as on a team edge.

pub mod api;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;

use crate::api::Limits;
use crate::server::{listen_and_serve, load_tokens, prometheus, watch_signals};

/// Everything the cloud needs, as parsed from the command line.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tokens_file: PathBuf,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub limits: Limits,
    pub addr_file: Option<PathBuf>,
    pub shutdown_grace: Duration,
}

pub async fn serve(config: CloudConfig) -> anyhow::Result<()> {
    // Tokens first, as on a team edge: a missing or malformed file stops the start.
    let table = load_tokens(&config.tokens_file)?;
    if table.is_empty() {
        tracing::warn!(file = %config.tokens_file.display(), "no tokens: every /v1 request will be refused; create one with `periodic-edge token create --role cloud-push`");
    }
    let data_dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || store::CloudStore::open(&data_dir))
        .await
        .context("storage loader panicked")?
        .with_context(|| format!("open the cloud store in {}", config.data_dir.display()))?;
    let store = Arc::new(store);
    let tokens = Arc::new(RwLock::new(Arc::new(table)));
    let state = api::CloudState {
        store: store.clone(),
        tokens: tokens.clone(),
        limiter: Arc::new(crate::api::auth::rate_limiter(config.limits.rate_per_second, config.limits.rate_burst)),
        limits: Arc::new(config.limits.clone()),
        prometheus: prometheus()?,
    };
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    // The cloud tier keeps no audit log of its own yet: its writes are statistics pushed by
    // team edges, whose own batches are audited there.
    tokio::spawn(watch_signals(handle.clone(), tokens, config.tokens_file.clone(), config.shutdown_grace, Arc::new(crate::audit::AuditLog::off())));
    listen_and_serve(app, config.listen, config.tls.as_ref(), config.addr_file.clone(), handle, "cloud").await?;
    store.flush().await.context("flush the cloud store at shutdown")?;
    tracing::info!("shut down cleanly");
    Ok(())
}
