//! The `heartbeat` binary: command line, logging, signals.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use heartbeat_server::ServeConfig;

#[derive(Parser)]
#[command(
    name = "heartbeat",
    version,
    about = "Self-hosted real-time web and product analytics"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "HEARTBEAT_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: ingest, processing, queries and the dashboard in one process.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "HEARTBEAT_LISTEN", default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Where the write-ahead log, the DuckDB file, salts and the admin token live.
        #[arg(long, env = "HEARTBEAT_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The admin key; generated on first start and kept in the data dir when absent.
        #[arg(long, env = "HEARTBEAT_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Comma-separated CIDRs of proxies whose forwarding headers are believed.
        #[arg(
            long,
            env = "HEARTBEAT_TRUSTED_PROXIES",
            value_delimiter = ',',
            default_value = ""
        )]
        trusted_proxies: Vec<String>,
        /// Largest request body accepted, in bytes.
        #[arg(long, env = "HEARTBEAT_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
        max_body_bytes: usize,
        /// Bytes the queue may hold unprocessed before ingest answers 503.
        #[arg(long, env = "HEARTBEAT_MAX_QUEUE_BYTES", default_value_t = 1024 * 1024 * 1024)]
        max_queue_bytes: u64,
        /// DuckDB's buffer memory cap (it spills to disk beyond it), like 512MB.
        #[arg(long, env = "HEARTBEAT_STORE_MEMORY_LIMIT", default_value = "512MB")]
        store_memory_limit: String,
        /// A MaxMind-format GeoIP database (.mmdb: GeoLite2 or DB-IP Lite, City or Country).
        #[arg(long, env = "HEARTBEAT_GEOIP_DB")]
        geoip_db: Option<PathBuf>,
    },
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
    init_logs(cli.log_format);
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            admin_token,
            trusted_proxies,
            max_body_bytes,
            max_queue_bytes,
            store_memory_limit,
            geoip_db,
        } => {
            let trusted_proxies = trusted_proxies
                .iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    s.trim()
                        .parse()
                        .with_context(|| format!("--trusted-proxies: {s:?} is not a CIDR"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let config = ServeConfig {
                admin_token,
                trusted_proxies,
                max_body_bytes,
                max_queue_bytes,
                store_memory_limit: Some(store_memory_limit),
                geoip_db,
                ..ServeConfig::new(listen, data_dir)
            };
            let running = heartbeat_server::start(config).await?;
            let stopper = running.stopper();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down: stop accepting, drain, flush");
                let _ = stopper.send(true);
            });
            running.wait().await
        }
    }
}
