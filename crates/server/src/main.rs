//! The `heartbeat` binary: command line, configuration, logging, signals.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use heartbeat_model::{OrgId, Role, SiteId};
use heartbeat_server::config::{self, Flags, LogFormat, Settings};
use heartbeat_server::registry::{new_secret, Registry};
use heartbeat_server::transfer::{self, Format};
use heartbeat_store::MetaStore;
use heartbeat_store_duckdb::DuckDbStore;

#[derive(Parser)]
#[command(
    name = "heartbeat",
    version,
    about = "Self-hosted real-time web and product analytics"
)]
struct Cli {
    /// A TOML configuration file (see heartbeat.example.toml); flags and HEARTBEAT_*
    /// variables override it.
    #[arg(long, global = true, env = "HEARTBEAT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: ingest, processing, queries and the dashboard in one process.
    Serve(Flags),
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
        serve: Flags,
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
        serve: Flags,
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
        serve: Flags,
    },
    /// Set a user's password; its sessions end.
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long, env = "HEARTBEAT_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        serve: Flags,
    },
}

/// The registry of a stopped server's data, for the `user` commands.
async fn open_registry(settings: &Settings) -> anyhow::Result<Registry> {
    let path = settings.store_path();
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
            let settings = settings(cli_config, serve)?;
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
            let settings = settings(cli_config, serve)?;
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
    Check(Flags),
}

/// Reads the file (if any) and resolves it with the flags and the environment.
fn settings(cli_config: Option<&Path>, flags: Flags) -> anyhow::Result<Settings> {
    let file = match cli_config {
        Some(path) => config::read_file(path)?,
        None => config::FileConfig::default(),
    };
    Ok(config::resolve(file, flags, |name| {
        std::env::var(name).ok()
    })?)
}

/// Opens the configured store for a command, checking that the site exists.
async fn open_store(settings: &Settings, site_id: &str) -> anyhow::Result<DuckDbStore> {
    let path = settings.store_path();
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

/// SIGTERM or SIGINT, caught from the moment this is called (not when the future is first
/// polled): one that arrives while the server starts, or just after it said it is ready,
/// still stops it in order instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = settings(cli.config.as_deref(), args)?;
            init_logs(settings.log.format);
            for note in &settings.notes {
                tracing::warn!("{note}");
            }
            let signalled = shutdown_signal();
            let running = heartbeat_server::start(settings).await?;
            let stopper = running.stopper();
            tokio::spawn(async move {
                signalled.await;
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
            let settings = settings(cli.config.as_deref(), serve)?;
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
            let settings = settings(cli.config.as_deref(), serve)?;
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
            let settings = settings(cli.config.as_deref(), args)?;
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
