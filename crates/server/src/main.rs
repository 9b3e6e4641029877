//! The `heartbeat` binary: command line, configuration, logging, signals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use heartbeat_model::{OrgId, Role, SiteId};
use heartbeat_server::config::{self, LogFormat, Overrides, Settings};
use heartbeat_server::registry::{new_secret, Registry};
use heartbeat_server::transfer::{self, Format};
use heartbeat_server::ServeConfig;
use heartbeat_store::MetaStore;
use heartbeat_store_duckdb::DuckDbStore;

#[derive(Parser)]
#[command(
    name = "heartbeat",
    version,
    about = "Self-hosted real-time web and product analytics"
)]
struct Cli {
    /// Log format: text (default) or json.
    #[arg(long, global = true, env = "HEARTBEAT_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// A TOML configuration file (see heartbeat.example.toml); flags and HEARTBEAT_*
    /// variables override it.
    #[arg(long, global = true, env = "HEARTBEAT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The server's settings as flags (each also read from its HEARTBEAT_* variable).
#[derive(Args, Default)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:3000; PORT sets the port].
    #[arg(long, env = "HEARTBEAT_LISTEN")]
    listen: Option<SocketAddr>,
    /// Where the write-ahead log, the DuckDB file, salts and the admin token live
    /// [default: ./data].
    #[arg(long, env = "HEARTBEAT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The admin key; generated on first start and kept in the data dir when absent.
    #[arg(long, env = "HEARTBEAT_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Comma-separated CIDRs of proxies whose forwarding headers are believed.
    #[arg(long, env = "HEARTBEAT_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Option<Vec<String>>,
    /// Largest request body accepted, in bytes [default: 1048576].
    #[arg(long, env = "HEARTBEAT_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Bytes the queue may hold unprocessed before ingest answers 503 [default: 1 GiB].
    #[arg(long, env = "HEARTBEAT_MAX_QUEUE_BYTES")]
    max_queue_bytes: Option<u64>,
    /// DuckDB's buffer memory cap (it spills to disk beyond it) [default: 512MB].
    #[arg(long, env = "HEARTBEAT_STORE_MEMORY_LIMIT")]
    store_memory_limit: Option<String>,
    /// Query answers cached until their site's data changes; 0 turns the cache off
    /// [default: 1000].
    #[arg(long, env = "HEARTBEAT_QUERY_CACHE_ENTRIES")]
    query_cache_entries: Option<usize>,
    /// Seconds between runs of the retention job [default: 3600].
    #[arg(long, env = "HEARTBEAT_RETENTION_INTERVAL_S")]
    retention_interval_s: Option<u64>,
    /// A MaxMind-format GeoIP database (.mmdb: GeoLite2 or DB-IP Lite, City or Country).
    #[arg(long, env = "HEARTBEAT_GEOIP_DB")]
    geoip_db: Option<PathBuf>,
    /// Rate limits and quotas: on (default) or off.
    #[arg(long, env = "HEARTBEAT_RATE_LIMITS")]
    rate_limits: Option<Toggle>,
    /// Public ingest requests per client IP per minute [default: 100].
    #[arg(long, env = "HEARTBEAT_INGEST_PER_IP_PER_MINUTE")]
    ingest_per_ip_per_minute: Option<u32>,
    /// Requests per API key or session per minute [default: 6000].
    #[arg(long, env = "HEARTBEAT_PER_KEY_PER_MINUTE")]
    per_key_per_minute: Option<u32>,
    /// Events per site per minute accepted by ingest [default: 600000].
    #[arg(long, env = "HEARTBEAT_SITE_EVENTS_PER_MINUTE")]
    site_events_per_minute: Option<u32>,
    /// Requests per client IP per minute through a public dashboard link [default: 240].
    #[arg(long, env = "HEARTBEAT_SHARE_PER_IP_PER_MINUTE")]
    share_per_ip_per_minute: Option<u32>,
    /// Milliseconds a read may take, waiting included, before it is stopped and answered
    /// 503 [default: 10000].
    #[arg(long, env = "HEARTBEAT_QUERY_TIMEOUT_MS")]
    query_timeout_ms: Option<u64>,
    /// Reads running at once [default: 4].
    #[arg(long, env = "HEARTBEAT_QUERY_MAX_CONCURRENT")]
    query_max_concurrent: Option<usize>,
    /// Reads waiting for a turn; more are answered 503 at once [default: 64].
    #[arg(long, env = "HEARTBEAT_QUERY_MAX_WAITING")]
    query_max_waiting: Option<usize>,
    /// Memory one statement's rows may take; beyond it a read is answered 400
    /// [default: 67108864].
    #[arg(long, env = "HEARTBEAT_QUERY_MAX_MEMORY_BYTES")]
    query_max_memory_bytes: Option<usize>,
    /// The longest date range a read may ask for, in days [default: 36525].
    #[arg(long, env = "HEARTBEAT_QUERY_MAX_RANGE_DAYS")]
    query_max_range_days: Option<u32>,
    /// The most time buckets a read may ask for [default: 10000].
    #[arg(long, env = "HEARTBEAT_QUERY_MAX_TIME_BUCKETS")]
    query_max_time_buckets: Option<u32>,
    /// Seconds a request may take before it is answered 408 [default: 30].
    #[arg(long, env = "HEARTBEAT_REQUEST_TIMEOUT_S")]
    request_timeout_s: Option<u64>,
    /// Comma-separated origins allowed to call the private API with credentials (CORS).
    #[arg(long, env = "HEARTBEAT_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Option<Vec<String>>,
    /// Session cookies only over HTTPS [default: true].
    #[arg(long, env = "HEARTBEAT_SECURE_COOKIES")]
    secure_cookies: Option<bool>,
}

/// A switch given as on/off (true/false, 1/0 too).
#[derive(Clone, Copy)]
struct Toggle(bool);

impl std::str::FromStr for Toggle {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok(Toggle(true)),
            "off" | "false" | "0" | "no" => Ok(Toggle(false)),
            other => Err(format!("{other:?} is neither on nor off")),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: ingest, processing, queries and the dashboard in one process.
    Serve(ServeArgs),
    /// Write a site's stored events (NDJSON or CSV) to a file or stdout. Run it while the
    /// server is stopped (DuckDB lets one process open the data); a running server exports
    /// with GET /api/export.
    Export {
        #[arg(long)]
        site_id: String,
        #[arg(long, value_enum, default_value = "ndjson")]
        format: Format,
        /// The file to write; stdout without it.
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Store an export's events into a site, skipping event ids it has. Run it while the
    /// server is stopped; a running server imports with POST /api/import.
    Import {
        #[arg(long)]
        site_id: String,
        #[arg(long, value_enum, default_value = "ndjson")]
        format: Format,
        /// The export to read.
        input: PathBuf,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Manage dashboard users on a stopped server's data (DuckDB lets one process open it);
    /// a running server adds users with POST /api/users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user (or give an existing one a role) in an organisation.
    Create {
        #[arg(long)]
        email: String,
        /// At least 8 characters; better from the environment than on the command line.
        #[arg(long, env = "HEARTBEAT_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// owner, admin or viewer.
        #[arg(long, default_value = "owner")]
        role: String,
        /// The organisation (owners of `default` own the instance).
        #[arg(long, default_value = "default")]
        org: String,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Set a user's password; its sessions end.
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long, env = "HEARTBEAT_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

/// The registry of a stopped server's data, for the `user` commands.
async fn open_registry(settings: &Settings) -> anyhow::Result<Registry> {
    let path = ServeConfig::from_settings(settings).store_path();
    let store = DuckDbStore::open(&path).with_context(|| {
        format!(
            "cannot open {} (is the server running? stop it first)",
            path.display()
        )
    })?;
    // The admin token plays no part in managing users; a random one matches nothing.
    let registry = Registry::load(Arc::new(store), &new_secret("unused_")).await?;
    Ok(registry)
}

async fn user_command(cli_config: Option<&Path>, action: UserAction) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    match action {
        UserAction::Create {
            email,
            password,
            role,
            org,
            serve,
        } => {
            let role = Role::parse(&role)
                .with_context(|| format!("role {role:?} is not owner, admin or viewer"))?;
            let settings = settings(cli_config, None, serve)?;
            let registry = open_registry(&settings).await?;
            let view = registry
                .create_user(&email, &password, &OrgId(org.clone()), role, now)
                .await?;
            eprintln!("user {} is {} of {org}", view.user.email, role.as_str());
        }
        UserAction::ResetPassword {
            email,
            password,
            serve,
        } => {
            let settings = settings(cli_config, None, serve)?;
            let registry = open_registry(&settings).await?;
            registry.set_password(&email, &password).await?;
            eprintln!("password of {email} changed; its sessions ended");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate the configuration (file, environment, flags) and print the effective settings.
    Check(ServeArgs),
}

/// Reads the file (if any) and resolves it with the flags and the environment.
fn settings(
    cli_config: Option<&Path>,
    log_format: Option<LogFormat>,
    args: ServeArgs,
) -> anyhow::Result<Settings> {
    let file = match cli_config {
        Some(path) => config::read_file(path)?,
        None => config::FileConfig::default(),
    };
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        admin_token: args.admin_token,
        trusted_proxies: args.trusted_proxies,
        max_body_bytes: args.max_body_bytes,
        max_queue_bytes: args.max_queue_bytes,
        store_memory_limit: args.store_memory_limit,
        log_format,
        retention_interval_s: args.retention_interval_s,
        geoip_db: args.geoip_db,
        query_cache_entries: args.query_cache_entries,
        rate_limits: args.rate_limits.map(|t| t.0),
        ingest_per_ip_per_minute: args.ingest_per_ip_per_minute,
        per_key_per_minute: args.per_key_per_minute,
        site_events_per_minute: args.site_events_per_minute,
        share_per_ip_per_minute: args.share_per_ip_per_minute,
        query_timeout_ms: args.query_timeout_ms,
        query_max_concurrent: args.query_max_concurrent,
        query_max_waiting: args.query_max_waiting,
        query_max_memory_bytes: args.query_max_memory_bytes,
        query_max_range_days: args.query_max_range_days,
        query_max_time_buckets: args.query_max_time_buckets,
        request_timeout_s: args.request_timeout_s,
        cors_origins: args.cors_origins,
        secure_cookies: args.secure_cookies,
    };
    Ok(config::resolve(file, overrides, |name| {
        std::env::var(name).ok()
    })?)
}

/// Opens the configured store for a command, checking that the site exists.
async fn open_store(settings: &Settings, site_id: &str) -> anyhow::Result<DuckDbStore> {
    let path = ServeConfig::from_settings(settings).store_path();
    let store = DuckDbStore::open(&path).with_context(|| {
        format!(
            "cannot open {} (is the server running? stop it first)",
            path.display()
        )
    })?;
    if !store
        .sites()
        .await?
        .iter()
        .any(|s| s.id.as_str() == site_id)
    {
        anyhow::bail!("no site {site_id:?} in {}", path.display());
    }
    Ok(store)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEARTBEAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = settings(cli.config.as_deref(), cli.log_format, args)?;
            init_logs(settings.log_format);
            for note in &settings.notes {
                tracing::warn!("{note}");
            }
            let running = heartbeat_server::start(ServeConfig::from_settings(&settings)).await?;
            let stopper = running.stopper();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down: stop accepting, drain, flush");
                let _ = stopper.send(true);
            });
            running.wait().await
        }
        Command::Export {
            site_id,
            format,
            output,
            serve,
        } => {
            let settings = settings(cli.config.as_deref(), cli.log_format, serve)?;
            let store = open_store(&settings, &site_id).await?;
            let site = SiteId(site_id);
            let count = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut out = std::io::BufWriter::new(file);
                    transfer::export_to(&store, &site, format, &mut out).await?
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    transfer::export_to(&store, &site, format, &mut out).await?
                }
            };
            eprintln!("exported {count} events of {site}");
            Ok(())
        }
        Command::Import {
            site_id,
            format,
            input,
            serve,
        } => {
            let settings = settings(cli.config.as_deref(), cli.log_format, serve)?;
            let store = open_store(&settings, &site_id).await?;
            let bytes = std::fs::read(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let site = SiteId(site_id);
            let events = transfer::decode(&bytes, format, &site)?;
            let total = events.len();
            let imported = transfer::import(&store, events).await?;
            eprintln!(
                "imported {imported} of {total} events into {site} ({} already there)",
                total as u64 - imported
            );
            Ok(())
        }
        Command::User { action } => user_command(cli.config.as_deref(), action).await,
        Command::Config {
            action: ConfigAction::Check(args),
        } => {
            let settings = settings(cli.config.as_deref(), cli.log_format, args)?;
            match &cli.config {
                Some(path) => println!("# effective settings; file: {}", path.display()),
                None => println!("# effective settings; no configuration file"),
            }
            for note in &settings.notes {
                println!("# note: {note}");
            }
            print!("{}", settings.to_toml());
            Ok(())
        }
    }
}
