//! The `periodic-edge` command line: `periodic-edge [serve options]` runs the server;
//! `periodic-edge token create|list|revoke` manages the tokens file; `periodic-edge migrate`
//! moves an embedded edge's data into a Redis Cluster. Logs go to stderr;
//! stdout carries only what a command is asked to print (a new token, the token list).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use periodic_edge::api::Limits;
use periodic_edge::audit::{Actor, AuditLog};
use periodic_edge::server::{self, ServeConfig};
use periodic_edge::store::AnalysisPolicy;
use periodic_edge::store::embedded::db::SyncMode;
use periodic_edge::store::redis::RedisOptions;
use periodic_edge::tokens::{Role, TokensFile};
use periodic_edge::cloud::CloudConfig;
use periodic_edge::uplink::UplinkConfig;
use serde_json::json;

/// mimalloc instead of glibc malloc: under query load on a Redis Cluster the server spent a
/// third of its CPU in malloc and free (arena lock contention, fastbin consolidation).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "periodic-edge", version = env!("PERIODIC_LONG_VERSION"), about = "Periodic's team edge server", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Move an embedded edge's data (units, pattern names and notes) into a Redis Cluster,
    /// print the counts before and after, and verify them. Stop the embedded edge first. An
    /// interrupted run is resumed by running the same command again. Exit status: 0 when
    /// verified, 3 when paused by --max-batches, 1 on an error or a failed verification.
    Migrate(MigrateArgs),
}

#[derive(Args)]
struct MigrateArgs {
    /// Data directory of the embedded edge (its --data).
    #[arg(long, value_name = "DATA_DIR")]
    from: PathBuf,
    /// The cluster: `redis-cluster://host:port,host:port,...`.
    #[arg(long, value_name = "URL")]
    to: String,
    #[command(flatten)]
    redis: RedisArgs,
    /// Units per batch (each batch holds units of one repository).
    #[arg(long, default_value_t = 1000)]
    batch_units: usize,
    /// Stop after this many batches (exit status 3); the next run continues from there.
    #[arg(long)]
    max_batches: Option<u64>,
}

/// How to reach a Redis Cluster store (serving from it, or migrating into it).
#[derive(Args)]
struct RedisArgs {
    /// Redis password; prefer the environment variable PERIODIC_EDGE_REDIS_PASSWORD, which
    /// process listings do not show.
    #[arg(long)]
    redis_password: Option<String>,
    /// Connect to Redis with TLS, verifying the nodes' certificates against the system roots.
    #[arg(long)]
    redis_tls: bool,
    /// PEM file of the CA that signed the Redis nodes' certificates, trusted instead of the
    /// system roots (implies --redis-tls).
    #[arg(long, value_name = "PEM")]
    redis_ca_file: Option<PathBuf>,
    /// Replicas that must hold a batch (Redis WAIT) before it is acknowledged (and, when
    /// migrating, before the next is sent); 0: once the masters have it.
    #[arg(long, default_value_t = 1)]
    redis_wait_replicas: u32,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; prints it once on stdout and stores only its hash.
    Create {
        #[arg(long)]
        tokens: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Refuse the token from this time on: a duration from now (`90d`, `12h`, `30m`, `2s`)
        /// or an RFC 3339 time (`2027-03-01T00:00:00Z`). Default: it never expires.
        #[arg(long, value_name = "DURATION|TIME")]
        expires: Option<String>,
        /// Record the creation in this audit log (`-`: stderr); default: PERIODIC_EDGE_AUDIT_LOG.
        #[arg(long, value_name = "PATH|-")]
        audit_log: Option<String>,
    },
    /// List tokens (id, tenant, role, created, expires, state: active or expired); never the
    /// tokens themselves.
    List {
        #[arg(long)]
        tokens: PathBuf,
    },
    /// Revoke a token by its id (as shown by `token list`). Send SIGHUP to a running server.
    Revoke {
        #[arg(long)]
        tokens: PathBuf,
        #[arg(long)]
        id: String,
        /// Record the revocation in this audit log (`-`: stderr); default: PERIODIC_EDGE_AUDIT_LOG.
        #[arg(long, value_name = "PATH|-")]
        audit_log: Option<String>,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Directory of the embedded store (created if missing).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Tokens file (see `token create`); reloaded on SIGHUP.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Storage: `embedded` (SQLite shards under --data) or `redis-cluster://host:port,host:port,...`
    /// (a shared Redis Cluster; any number of replicas may serve from it).
    #[arg(long, default_value = "embedded")]
    store: String,
    #[command(flatten)]
    redis: RedisArgs,
    /// Number of SQLite shards; fixed when the data directory is created.
    #[arg(long, default_value_t = 16)]
    shards: usize,
    /// `full`: fsync every commit (survives power loss); `normal`: survives process crashes only.
    #[arg(long, value_enum, default_value = "full")]
    sync: SyncMode,
    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Most upserts plus removals in one batch (413 beyond).
    #[arg(long, default_value_t = 5000)]
    max_batch_units: usize,
    /// Requests per second allowed per token (429 with Retry-After beyond).
    #[arg(long, default_value_t = 1000)]
    rate_limit: u32,
    /// Burst allowed per token above the steady rate.
    #[arg(long, default_value_t = 2000)]
    rate_burst: u32,
    /// Seconds before a request is abandoned with 503.
    #[arg(long, default_value_t = 30)]
    request_timeout: u64,
    /// Seconds a cached query or pattern answer may be served. Default: 30 with the embedded
    /// store (every write passes through this process and clears its cache); 2 with
    /// redis-cluster, where it bounds how late another replica's writes are seen.
    #[arg(long)]
    cache_ttl: Option<u64>,
    /// Memory each cache (query answers, pattern lists, pattern details) may hold, in MiB,
    /// by an estimate of its entries' sizes.
    #[arg(long, default_value_t = 64)]
    cache_mib: u64,
    /// Write the bound address (useful with port 0) to this file once listening.
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, default_value_t = 20)]
    shutdown_grace: u64,
    /// Append one JSON line per administrative or write action (token reloads, delta batches,
    /// pattern names) to this file, or to stderr with `-`. Default: PERIODIC_EDGE_AUDIT_LOG,
    /// else off.
    #[arg(long, value_name = "PATH|-")]
    audit_log: Option<String>,
    /// Analysis cache: MiB of entries each tenant may keep (least recently used evicted
    /// beyond it); 0 turns the cache off. Default: PERIODIC_EDGE_ANALYSIS_CACHE_MIB, else 1024.
    #[arg(long, value_name = "MIB")]
    analysis_cache_mib: Option<u64>,
    /// Analysis cache: an entry neither looked up nor uploaded for this long is dropped
    /// (`30d`, `12h`, `2s`: a whole number and one of s m h d w). Default:
    /// PERIODIC_EDGE_ANALYSIS_CACHE_TTL, else 30d.
    #[arg(long, value_name = "DURATION")]
    analysis_cache_ttl: Option<String>,
    #[command(flatten)]
    cloud: CloudArgs,
}

/// The environment variable equivalents of `--analysis-cache-mib` and `--analysis-cache-ttl`.
const ANALYSIS_CACHE_MIB_ENV: &str = "PERIODIC_EDGE_ANALYSIS_CACHE_MIB";
const ANALYSIS_CACHE_TTL_ENV: &str = "PERIODIC_EDGE_ANALYSIS_CACHE_TTL";

/// The analysis cache's policy from its options, else their environment variables, else the
/// defaults (1 GiB per tenant, 30 days).
fn analysis_policy(mib: Option<u64>, ttl: Option<String>) -> anyhow::Result<AnalysisPolicy> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let budget_bytes = match mib {
        Some(mib) => mib.saturating_mul(1 << 20),
        None => match from_env(ANALYSIS_CACHE_MIB_ENV) {
            Some(text) => text.trim().parse::<u64>().map_err(|_| anyhow::anyhow!("{ANALYSIS_CACHE_MIB_ENV}: {text:?} is not a whole number of MiB"))?.saturating_mul(1 << 20),
            None => AnalysisPolicy::default().budget_bytes,
        },
    };
    let ttl = match ttl.map(|text| ("--analysis-cache-ttl", text)).or_else(|| from_env(ANALYSIS_CACHE_TTL_ENV).map(|text| (ANALYSIS_CACHE_TTL_ENV, text))) {
        Some((source, text)) => Duration::from_secs(periodic_edge::clock::parse_duration(text.trim()).map_err(|error| anyhow::anyhow!("{source}: {error}"))?),
        None => AnalysisPolicy::default().ttl,
    };
    Ok(AnalysisPolicy { budget_bytes, ttl })
}

/// Which server this process is: a team edge (default) or the organisation-wide cloud tier.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ServerRole {
    Team,
    Cloud,
}

#[derive(Args)]
struct CloudArgs {
    /// `team`: a team edge; `cloud`: the organisation-wide tier that team edges push
    /// statistics to (uses --listen, --data, --tokens, TLS and limit options; tokens need role
    /// cloud-read or cloud-push).
    #[arg(long, value_enum, default_value = "team")]
    role: ServerRole,
    /// Team edge: base URL of the cloud tier to push statistics to and ask organisation counts.
    #[arg(long, requires = "cloud_token_file")]
    cloud_url: Option<String>,
    /// Team edge: file holding the cloud token (role cloud-push), alone on its first line.
    #[arg(long, requires = "cloud_url")]
    cloud_token_file: Option<PathBuf>,
    /// Team edge: PEM file of a CA to trust, besides the web PKI roots, for an https://
    /// --cloud-url (e.g. one made by deploy/gen-certs.sh).
    #[arg(long, value_name = "PEM", requires = "cloud_url")]
    cloud_ca_file: Option<PathBuf>,
    /// Team edge: most fingerprints per statistics batch.
    #[arg(long, default_value_t = 1000)]
    cloud_batch_size: usize,
    /// Team edge: milliseconds between outbox drains when it is empty.
    #[arg(long, default_value_t = 2000)]
    cloud_push_interval_ms: u64,
    /// Team edge: largest retry delay in milliseconds (backoff doubles from 500 ms, full jitter).
    #[arg(long, default_value_t = 300_000)]
    cloud_retry_max_ms: u64,
    /// Team edge: seconds an organisation count is cached.
    #[arg(long, default_value_t = 600)]
    cloud_cache_ttl: u64,
}

/// The uplink configuration, when a cloud URL is given.
fn uplink_config(cloud: &CloudArgs, data_dir: &std::path::Path) -> anyhow::Result<Option<UplinkConfig>> {
    let (Some(url), Some(token_file)) = (&cloud.cloud_url, &cloud.cloud_token_file) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(token_file).with_context(|| format!("read the cloud token file {}", token_file.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.is_empty() {
        bail!("the cloud token file {} is empty", token_file.display());
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("--cloud-url must start with http:// or https://");
    }
    let root_cert_pem = match &cloud.cloud_ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("read --cloud-ca-file {}", path.display()))?),
        None => None,
    };
    Ok(Some(UplinkConfig {
        url: url.clone(),
        token,
        outbox_path: data_dir.join("cloud-outbox.db"),
        batch_size: cloud.cloud_batch_size.clamp(1, periodic_wire::cloud::MAX_STATISTICS_ENTRIES),
        push_interval: Duration::from_millis(cloud.cloud_push_interval_ms),
        retry_base: Duration::from_millis(500).min(Duration::from_millis(cloud.cloud_retry_max_ms.max(1))),
        retry_max: Duration::from_millis(cloud.cloud_retry_max_ms.max(1)),
        cache_ttl: Duration::from_secs(cloud.cloud_cache_ttl.max(1)),
        root_cert_pem,
    }))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or journald shows escape codes as text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A log line that cannot be written (stderr a closed pipe, a full disk) is dropped.
        // By default the subscriber reports that failure with `eprintln!`, which panics when
        // stderr is the thing failing; the panic killed whichever task was logging, the
        // signal watcher included, and the server then ignored SIGTERM and SIGINT.
        .log_internal_errors(false)
        // The Redis client warns at every reconnection attempt (several a second while a node
        // is down); the store logs each outage once (store::metered), so only its errors show.
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PERIODIC_EDGE_LOG").unwrap_or_else(|_| "info,redis=error".into()))
        .init();
    match cli.command {
        Some(Command::Token(command)) => run_token_command(command),
        Some(Command::Migrate(args)) => {
            let Some(to) = redis_options(&args.to, &args.redis)? else {
                bail!("--to must name a Redis Cluster: redis-cluster://host:port,...");
            };
            let options = periodic_edge::migrate::MigrateOptions { from: args.from, to, batch_units: args.batch_units, max_batches: args.max_batches };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the async runtime")?;
            let outcome = runtime.block_on(periodic_edge::migrate::migrate(options, &mut std::io::stdout().lock()))?;
            if outcome == periodic_edge::migrate::Outcome::Paused {
                std::io::stdout().flush()?;
                std::process::exit(3);
            }
            Ok(())
        }
        None => {
            let args = cli.serve;
            let (Some(data_dir), Some(tokens_file)) = (args.data, args.tokens) else {
                bail!("serving needs --data DIR and --tokens FILE");
            };
            let limits = Limits {
                max_body_bytes: args.max_body_bytes,
                max_batch_units: args.max_batch_units,
                request_timeout: Duration::from_secs(args.request_timeout),
                rate_per_second: args.rate_limit,
                rate_burst: args.rate_burst,
                ..Limits::default()
            };
            if args.cloud.role == ServerRole::Cloud {
                if args.cloud.cloud_url.is_some() {
                    bail!("--cloud-url is for team edges; the cloud tier does not push anywhere");
                }
                if args.audit_log.is_some() {
                    bail!("--audit-log is for team edges; the cloud tier keeps no audit log");
                }
                let config = CloudConfig {
                    listen: args.listen,
                    data_dir,
                    tokens_file,
                    tls: args.tls_cert.zip(args.tls_key),
                    limits,
                    addr_file: args.addr_file,
                    shutdown_grace: Duration::from_secs(args.shutdown_grace),
                };
                let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the async runtime")?;
                return runtime.block_on(periodic_edge::cloud::serve(config));
            }
            let uplink = uplink_config(&args.cloud, &data_dir)?;
            let analysis_cache = analysis_policy(args.analysis_cache_mib, args.analysis_cache_ttl)?;
            let config = ServeConfig {
                listen: args.listen,
                data_dir,
                tokens_file,
                shards: args.shards,
                sync: args.sync,
                redis: redis_options(&args.store, &args.redis)?,
                tls: args.tls_cert.zip(args.tls_key),
                limits,
                cache_ttl: args.cache_ttl.map(Duration::from_secs),
                cache_bytes: args.cache_mib.saturating_mul(1 << 20),
                addr_file: args.addr_file,
                shutdown_grace: Duration::from_secs(args.shutdown_grace),
                uplink,
                audit_log: periodic_edge::audit::target(args.audit_log),
                analysis_cache,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the async runtime")?;
            runtime.block_on(server::serve(config))
        }
    }
}

/// Redis options when `--store` names a cluster; `None` for the embedded store.
fn redis_options(store: &str, redis: &RedisArgs) -> anyhow::Result<Option<RedisOptions>> {
    if store == "embedded" {
        return Ok(None);
    }
    let mut options = RedisOptions::from_url(store).map_err(|error| anyhow::anyhow!("--store: {error}"))?;
    options.password =
        redis.redis_password.clone().or_else(|| std::env::var("PERIODIC_EDGE_REDIS_PASSWORD").ok().filter(|value| !value.is_empty()));
    options.tls = redis.redis_tls || redis.redis_ca_file.is_some();
    if let Some(path) = &redis.redis_ca_file {
        options.root_cert_pem = Some(std::fs::read(path).with_context(|| format!("read --redis-ca-file {}", path.display()))?);
    }
    options.wait_replicas = redis.redis_wait_replicas;
    Ok(Some(options))
}

fn run_token_command(command: TokenCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match command {
        TokenCommand::Create { tokens, tenant, role, expires, audit_log } => {
            let audit = AuditLog::from_option(audit_log)?;
            let expires_unix = match expires {
                Some(text) => Some(periodic_edge::clock::parse_expiry(&text, periodic_edge::clock::now_unix()).map_err(|error| anyhow::anyhow!("--expires: {error}"))?),
                None => None,
            };
            let mut file = TokensFile::load(&tokens)?;
            let token = file.create(&tenant, role, expires_unix)?;
            file.save(&tokens)?;
            let token_id = file.tokens.last().map(|entry| entry.id.clone());
            let expires = expires_unix.map(periodic_edge::clock::format_rfc3339);
            let details = json!({ "token_id": token_id, "tenant": tenant, "role": role.as_str(), "expires": expires, "tokens_file": tokens.display().to_string() });
            audit.record("token.create", "ok", Actor::Operator, details);
            writeln!(stdout, "{token}")?;
        }
        TokenCommand::List { tokens } => {
            let now = periodic_edge::clock::now_unix();
            for entry in TokensFile::load(&tokens)?.tokens {
                let expires = entry.expires_unix.map_or_else(|| "never".to_string(), periodic_edge::clock::format_rfc3339);
                let state = if entry.expired_at(now) { "expired" } else { "active" };
                let created = periodic_edge::clock::format_rfc3339(entry.created_unix);
                writeln!(stdout, "{}\t{}\t{}\t{created}\t{expires}\t{state}", entry.id, entry.tenant, entry.role.as_str())?;
            }
        }
        TokenCommand::Revoke { tokens, id, audit_log } => {
            let audit = AuditLog::from_option(audit_log)?;
            let mut file = TokensFile::load(&tokens)?;
            let revoked = file.tokens.iter().find(|entry| entry.id == id).map(|entry| (entry.tenant.clone(), entry.role.as_str()));
            let tokens_file = tokens.display().to_string();
            if !file.revoke(&id) {
                audit.record("token.revoke", "failed", Actor::Operator, json!({ "token_id": id, "error": "no token with this id", "tokens_file": tokens_file }));
                bail!("no token with id {id}");
            }
            file.save(&tokens)?;
            let (tenant, role) = revoked.unzip();
            audit.record("token.revoke", "ok", Actor::Operator, json!({ "token_id": id, "tenant": tenant, "role": role, "tokens_file": tokens_file }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_cache_options_give_the_policy() {
        // Explicit options win over the environment, which the tests leave unset.
        let policy = analysis_policy(Some(0), Some("2s".into())).expect("valid");
        assert_eq!((policy.budget_bytes, policy.ttl), (0, Duration::from_secs(2)));
        assert!(!policy.enabled());
        let policy = analysis_policy(Some(3), Some("12h".into())).expect("valid");
        assert_eq!((policy.budget_bytes, policy.ttl), (3 << 20, Duration::from_secs(12 * 3600)));
        let error = analysis_policy(Some(1), Some("soon".into())).expect_err("not a duration");
        assert!(error.to_string().contains("--analysis-cache-ttl"), "{error}");
    }
}
