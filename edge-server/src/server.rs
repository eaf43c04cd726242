//! Running the server: open storage, build the router, bind (plain or rustls), write the
//! bound address where asked, reload tokens on SIGHUP, and shut down gracefully on SIGTERM or
//! SIGINT (stop accepting, let in-flight requests finish, flush storage, return).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::signal::unix::{SignalKind, signal};

use crate::api::{self, AppState, Limits, SharedState};
use crate::audit::{Actor, AuditLog};
use crate::store::Store;
use crate::store::cached::CachedStore;
use crate::store::embedded::db::SyncMode;
use crate::store::embedded::{EmbeddedOptions, EmbeddedStore};
use crate::store::metered::MeteredStore;
use crate::store::redis::{RedisOptions, RedisStore};
use crate::tokens::{TokenTable, TokensFile};

/// Everything `serve` needs, as parsed from the command line.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tokens_file: PathBuf,
    pub shards: usize,
    pub sync: SyncMode,
    /// Serve from this Redis Cluster instead of the embedded store in `data_dir`.
    pub redis: Option<RedisOptions>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub limits: Limits,
    /// `None`: the backend's default (`store::cached::default_ttl`): short on a shared
    /// Redis Cluster, where it bounds how stale another replica's writes may appear.
    pub cache_ttl: Option<Duration>,
    /// Bytes each cache may hold (estimated from its entries).
    pub cache_bytes: u64,
    pub addr_file: Option<PathBuf>,
    pub shutdown_grace: Duration,
    /// Push statistics to (and ask) the cloud tier; `None` without `--cloud-url`.
    pub uplink: Option<crate::uplink::UplinkConfig>,
    /// The audit log: a file, `-` for stderr, `None` for off (see `audit`).
    pub audit_log: Option<String>,
    /// The analysis cache's per-tenant budget and TTL (budget 0: off).
    pub analysis_cache: crate::store::AnalysisPolicy,
}

/// The process-wide Prometheus recorder (metrics has one global recorder).
pub fn prometheus() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().map_err(|error| error.to_string()))
        .clone()
        .map_err(|error| anyhow::anyhow!("install metrics recorder: {error}"))
}

/// The tokens a server serves with, at start and on SIGHUP: a missing or malformed file is an
/// error naming it (at start the server does not start; on reload the previous tokens stay).
pub(crate) fn load_tokens(path: &Path) -> anyhow::Result<TokenTable> {
    TokenTable::from_file(&TokensFile::load_existing(path)?).with_context(|| format!("tokens file {}", path.display()))
}

pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    // Tokens first: a server that cannot authenticate anyone must not start, and must not
    // create a data directory or connect to storage on its way to failing.
    let table = load_tokens(&config.tokens_file)?;
    if table.is_empty() {
        tracing::warn!(file = %config.tokens_file.display(), "no tokens: every /v1 request will be refused; create one with `periodic-edge token create`");
    }
    let data_dir = config.data_dir.clone();
    let options = EmbeddedOptions { shards: config.shards, sync: config.sync };
    let started = std::time::Instant::now();
    let backend: Arc<dyn Store> = match &config.redis {
        Some(redis) => {
            let store =
                Arc::new(RedisStore::connect(redis.clone()).await.with_context(|| format!("connect to the Redis Cluster at {}", redis.nodes.join(",")))?);
            store.watch();
            store
        }
        None => Arc::new(
            tokio::task::spawn_blocking(move || EmbeddedStore::open(&data_dir, &options))
                .await
                .context("storage loader panicked")?
                .with_context(|| format!("open storage in {}", config.data_dir.display()))?,
        ),
    };
    let units = backend.units_stored().await?;
    let cache_ttl = config.cache_ttl.unwrap_or_else(|| crate::store::cached::default_ttl(config.redis.is_some()));
    tracing::info!(units, shards = config.shards, seconds = started.elapsed().as_secs_f64(), cache_ttl_seconds = cache_ttl.as_secs_f64(), "storage loaded");
    let store: Arc<dyn Store> = Arc::new(CachedStore::new(Arc::new(MeteredStore::new(backend)), config.cache_bytes, cache_ttl));

    let tokens = Arc::new(RwLock::new(Arc::new(table)));
    let audit = Arc::new(match &config.audit_log {
        Some(target) => AuditLog::open(target)?,
        None => AuditLog::off(),
    });
    if audit.is_on() {
        tracing::info!(target = config.audit_log.as_deref().unwrap_or_default(), "audit log on");
    }
    let uplink = match config.uplink.clone() {
        Some(uplink_config) => {
            let url = uplink_config.url.clone();
            let uplink = tokio::task::spawn_blocking(move || crate::uplink::Uplink::open(uplink_config)).await.context("uplink opener panicked")??;
            let uplink = Arc::new(uplink);
            uplink.clone().spawn_drain(store.clone());
            tracing::info!(%url, "pushing statistics to the cloud tier");
            Some(uplink)
        }
        None => None,
    };
    let state = AppState::new(SharedState {
        store: store.clone(),
        tokens: tokens.clone(),
        limiter: Arc::new(api::auth::rate_limiter(config.limits.rate_per_second, config.limits.rate_burst)),
        limits: Arc::new(config.limits.clone()),
        prometheus: prometheus()?,
        uplink,
        audit: audit.clone(),
        analysis_cache: config.analysis_cache,
    });
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();

    tokio::spawn(watch_signals(handle.clone(), tokens, config.tokens_file.clone(), config.shutdown_grace, audit));
    listen_and_serve(app, config.listen, config.tls.as_ref(), config.addr_file.clone(), handle, "team").await?;
    tracing::info!("stopped accepting; flushing storage");
    store.flush().await.context("flush storage at shutdown")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Reloads tokens on SIGHUP (recording in the audit log which token ids came and went);
/// starts a graceful shutdown on SIGTERM or SIGINT. Shared by both roles (team edge and cloud).
pub(crate) async fn watch_signals(handle: axum_server::Handle, tokens: Arc<RwLock<Arc<TokenTable>>>, tokens_file: PathBuf, grace: Duration, audit: Arc<AuditLog>) {
    let (Ok(mut terminate), Ok(mut interrupt), Ok(mut hangup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => match load_tokens(&tokens_file) {
                Ok(table) => {
                    tracing::info!(tokens = table.len(), "tokens reloaded");
                    let now_in_force = table.ids();
                    if let Ok(mut slot) = tokens.write() {
                        let before = slot.ids();
                        let added: Vec<&String> = now_in_force.difference(&before).collect();
                        let removed: Vec<&String> = before.difference(&now_in_force).collect();
                        audit.record("tokens.reload", "ok", Actor::Signal("SIGHUP"), serde_json::json!({ "tokens": table.len(), "added": added, "removed": removed }));
                        *slot = Arc::new(table);
                    }
                }
                Err(error) => {
                    // The whole chain: the top context names the file, the cause gives line and column.
                    tracing::error!(error = %format!("{error:#}"), "tokens not reloaded; the previous ones stay in force");
                    audit.record("tokens.reload", "failed", Actor::Signal("SIGHUP"), serde_json::json!({ "error": format!("{error:#}") }));
                }
            },
        }
    }
    // Shut down first and log after: nothing that happens to the log can keep the process
    // running once it was asked to stop.
    handle.graceful_shutdown(Some(grace));
    tracing::info!("shutdown requested");
}

/// Serves `app` on `listen` (HTTPS with rustls when `tls` holds a certificate and key) until
/// `handle` shuts it down; once bound, logs the address and writes it to `addr_file`.
pub(crate) async fn listen_and_serve(
    app: IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
    listen: SocketAddr,
    tls: Option<&(PathBuf, PathBuf)>,
    addr_file: Option<PathBuf>,
    handle: axum_server::Handle,
    role: &'static str,
) -> anyhow::Result<()> {
    {
        let handle = handle.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        tokio::spawn(async move {
            if let Some(address) = handle.listening().await {
                tracing::info!(%address, scheme, role, "listening");
                if let Some(path) = addr_file
                    && let Err(error) = std::fs::write(&path, address.to_string())
                {
                    tracing::error!(%error, path = %path.display(), "cannot write the address file");
                }
            }
        });
    }
    match tls {
        Some((cert, key)) => {
            // One crypto provider for the process; a second install attempt is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| format!("load TLS certificate {} and key {}", cert.display(), key.display()))?;
            axum_server::bind_rustls(listen, tls).handle(handle).serve(app).await.context("serve https")?;
        }
        None => {
            axum_server::bind(listen).handle(handle).serve(app).await.context("serve http")?;
        }
    }
    Ok(())
}
