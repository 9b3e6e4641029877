//! One configuration: a TOML file, `HEARTBEAT_*` environment variables and command-line flags,
//! resolved once into typed [`Settings`].
//!
//! Precedence, lowest first: built-in defaults < the file (`--config` / `HEARTBEAT_CONFIG`) <
//! environment < flags. Clap reads a flag or its `HEARTBEAT_*` variable (the flag wins) into
//! [`Overrides`]; the file is parsed with unknown keys rejected, naming the key and its line.
//!
//! Variable names from the seeds' `.env` files are understood where they mean something here:
//! `PORT` sets the listen port (when neither `--listen` nor `HEARTBEAT_LISTEN` is given) and
//! `DATABASE_URL` of the form `duckdb:///path/to/file.duckdb` places the DuckDB file. Other
//! values of `DATABASE_URL`, and `RABBITMQ_URL` and `REDIS_URL`, name engines this build does
//! not run (it embeds its queue and store); they are reported by `heartbeat config check` and
//! at start, and ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// The file's shape: every key optional, unknown keys rejected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub queue: QueueSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub retention: RetentionSection,
    #[serde(default)]
    pub geoip: GeoIpSection,
    #[serde(default)]
    pub query: QuerySection,
    #[serde(default)]
    pub limits: LimitsSection,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySection {
    /// Query answers kept until their site's data changes; 0 turns the cache off.
    pub cache_entries: Option<usize>,
    /// Milliseconds a read may take (waiting for its turn included) before it is stopped
    /// and answered 503.
    pub timeout_ms: Option<u64>,
    /// Reads running at once.
    pub max_concurrent: Option<usize>,
    /// Reads waiting for a turn; more are answered 503 at once.
    pub max_waiting: Option<usize>,
    /// Memory one statement's rows may take; beyond it a read is answered 400.
    pub max_memory_bytes: Option<usize>,
    /// The longest date range a read may ask for, in days.
    pub max_range_days: Option<u32>,
    /// The most time buckets (points of a time series) a read may ask for.
    pub max_time_buckets: Option<u32>,
}

/// Rate limits and quotas (`crates/server/src/limits.rs`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// `false` turns every rate limit and quota off (benchmarks on loopback).
    pub enabled: Option<bool>,
    /// Requests per client IP per minute on public ingest (`POST /api/event`, `POST /events`).
    pub ingest_per_ip_per_minute: Option<u32>,
    /// Requests per API key or session per minute, ingest and API alike.
    pub per_key_per_minute: Option<u32>,
    /// Events per site per minute accepted by ingest.
    pub site_events_per_minute: Option<u32>,
    /// Requests per client IP per minute through a public dashboard link.
    pub share_per_ip_per_minute: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpSection {
    /// A MaxMind-format database (.mmdb: GeoLite2 or DB-IP Lite, City or Country); without
    /// one, country, region and city stay empty.
    pub database: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on, like `127.0.0.1:3000`.
    pub listen: Option<String>,
    /// Where the write-ahead log, the DuckDB file, salts and the admin token live.
    pub data_dir: Option<PathBuf>,
    /// The admin key; prefer `HEARTBEAT_ADMIN_TOKEN` to keep it out of files.
    pub admin_token: Option<String>,
    /// CIDRs of proxies whose forwarding headers are believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: Option<usize>,
    /// Seconds a handler may take before the request is answered 408.
    pub request_timeout_s: Option<u64>,
    /// Origins (like `https://admin.example.com`) whose pages may call the private API with
    /// credentials; none by default (same origin only). Ingest accepts every origin.
    pub cors_origins: Option<Vec<String>>,
    /// Whether session cookies carry `Secure` (HTTPS only); turn off only for plain HTTP on a
    /// trusted network.
    pub secure_cookies: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The DuckDB file; default `heartbeat.duckdb` in the data dir.
    pub path: Option<PathBuf>,
    /// DuckDB's buffer memory cap, like `512MB`.
    pub memory_limit: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSection {
    /// Bytes the queue may hold unprocessed before ingest answers 503.
    pub max_pending_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `text` or `json`.
    pub format: Option<LogFormat>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// How often the retention job deletes expired events, in seconds.
    pub interval_s: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What flags and `HEARTBEAT_*` variables said; `None` where neither was given.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub admin_token: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
    pub max_queue_bytes: Option<u64>,
    pub store_memory_limit: Option<String>,
    pub log_format: Option<LogFormat>,
    pub retention_interval_s: Option<u64>,
    pub geoip_db: Option<PathBuf>,
    pub query_cache_entries: Option<usize>,
    pub rate_limits: Option<bool>,
    pub ingest_per_ip_per_minute: Option<u32>,
    pub per_key_per_minute: Option<u32>,
    pub site_events_per_minute: Option<u32>,
    pub share_per_ip_per_minute: Option<u32>,
    pub query_timeout_ms: Option<u64>,
    pub query_max_concurrent: Option<usize>,
    pub query_max_waiting: Option<usize>,
    pub query_max_memory_bytes: Option<usize>,
    pub query_max_range_days: Option<u32>,
    pub query_max_time_buckets: Option<u32>,
    pub request_timeout_s: Option<u64>,
    pub cors_origins: Option<Vec<String>>,
    pub secure_cookies: Option<bool>,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub admin_token: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub max_body_bytes: usize,
    pub max_queue_bytes: u64,
    /// `None`: `heartbeat.duckdb` in the data dir.
    pub store_path: Option<PathBuf>,
    pub store_memory_limit: String,
    pub log_format: LogFormat,
    pub retention_interval_s: u64,
    pub geoip_db: Option<PathBuf>,
    pub query_cache_entries: usize,
    pub query: crate::query_pool::QuerySettings,
    pub limits: crate::limits::LimitSettings,
    pub request_timeout_s: u64,
    pub cors_origins: Vec<String>,
    pub secure_cookies: bool,
    /// Things worth telling the operator: variables understood but not used, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Parses a configuration file's text.
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|err| ConfigError::Parse {
        path: path.to_owned(),
        message: err.to_string(),
    })
}

/// Reads and parses a configuration file.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_file(path, &text)
}

/// Resolves the settings from the file, the overrides and the seeds' variables (read through
/// `env`, so tests need not touch the process environment).
pub fn resolve(
    file: FileConfig,
    overrides: Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let mut notes = Vec::new();
    let query = query_settings(&file.query, &overrides)?;
    let listen = match overrides.listen {
        Some(listen) => listen,
        None => {
            let text = file.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
            let mut listen: SocketAddr = text.parse().map_err(|_| {
                invalid(
                    "server.listen",
                    format!("{text:?} is not an address like 127.0.0.1:3000"),
                )
            })?;
            if let Some(port) = env("PORT").filter(|p| !p.trim().is_empty()) {
                let port: u16 = port
                    .trim()
                    .parse()
                    .map_err(|_| invalid("PORT", format!("{port:?} is not a port number")))?;
                listen.set_port(port);
            }
            listen
        }
    };
    let trusted_proxies = overrides
        .trusted_proxies
        .or(file.server.trusted_proxies)
        .unwrap_or_default()
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .map_err(|_| invalid("trusted_proxies", format!("{s:?} is not a CIDR")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut store_path = file.store.path;
    if let Some(url) = env("DATABASE_URL").filter(|u| !u.trim().is_empty()) {
        match url.trim().strip_prefix("duckdb://") {
            Some(path) if !path.is_empty() => store_path = Some(PathBuf::from(path)),
            _ => notes.push(format!(
                "DATABASE_URL ({}) is ignored: this build keeps events and metadata in DuckDB \
                 (set DATABASE_URL=duckdb:///path/to/file.duckdb to place the file)",
                url.split(':').next().unwrap_or("?")
            )),
        }
    }
    for (name, what) in [
        ("RABBITMQ_URL", "the queue is the embedded write-ahead log"),
        ("REDIS_URL", "rate-limit state is kept in the process"),
    ] {
        if env(name).is_some_and(|v| !v.trim().is_empty()) {
            notes.push(format!("{name} is ignored: {what}"));
        }
    }
    let max_body_bytes = overrides
        .max_body_bytes
        .or(file.server.max_body_bytes)
        .unwrap_or(1024 * 1024);
    if max_body_bytes == 0 {
        return Err(invalid("max_body_bytes", "must be at least 1"));
    }
    let max_queue_bytes = overrides
        .max_queue_bytes
        .or(file.queue.max_pending_bytes)
        .unwrap_or(1024 * 1024 * 1024);
    let retention_interval_s = overrides
        .retention_interval_s
        .or(file.retention.interval_s)
        .unwrap_or(3600);
    if retention_interval_s == 0 {
        return Err(invalid("retention.interval_s", "must be at least 1"));
    }
    let defaults = crate::limits::LimitSettings::default();
    let limits = crate::limits::LimitSettings {
        enabled: overrides
            .rate_limits
            .or(file.limits.enabled)
            .unwrap_or(true),
        ingest_per_ip_per_minute: overrides
            .ingest_per_ip_per_minute
            .or(file.limits.ingest_per_ip_per_minute)
            .unwrap_or(defaults.ingest_per_ip_per_minute),
        per_key_per_minute: overrides
            .per_key_per_minute
            .or(file.limits.per_key_per_minute)
            .unwrap_or(defaults.per_key_per_minute),
        site_events_per_minute: overrides
            .site_events_per_minute
            .or(file.limits.site_events_per_minute)
            .unwrap_or(defaults.site_events_per_minute),
        share_per_ip_per_minute: overrides
            .share_per_ip_per_minute
            .or(file.limits.share_per_ip_per_minute)
            .unwrap_or(defaults.share_per_ip_per_minute),
    };
    for (name, value) in [
        (
            "limits.ingest_per_ip_per_minute",
            limits.ingest_per_ip_per_minute,
        ),
        ("limits.per_key_per_minute", limits.per_key_per_minute),
        (
            "limits.site_events_per_minute",
            limits.site_events_per_minute,
        ),
        (
            "limits.share_per_ip_per_minute",
            limits.share_per_ip_per_minute,
        ),
    ] {
        if value == 0 {
            return Err(invalid(
                name,
                "must be at least 1 (turn limits off with limits.enabled = false)",
            ));
        }
    }
    let request_timeout_s = overrides
        .request_timeout_s
        .or(file.server.request_timeout_s)
        .unwrap_or(30);
    if request_timeout_s == 0 {
        return Err(invalid("server.request_timeout_s", "must be at least 1"));
    }
    let cors_origins: Vec<String> = overrides
        .cors_origins
        .or(file.server.cors_origins)
        .unwrap_or_default()
        .into_iter()
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    for origin in &cors_origins {
        let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
            && !origin.contains(['*', ' ', ','])
            && origin.matches('/').count() == 2;
        if !valid {
            return Err(invalid(
                "server.cors_origins",
                format!("{origin:?} is not an origin like https://admin.example.com"),
            ));
        }
    }
    Ok(Settings {
        query,
        limits,
        request_timeout_s,
        cors_origins,
        secure_cookies: overrides
            .secure_cookies
            .or(file.server.secure_cookies)
            .unwrap_or(true),
        listen,
        data_dir: overrides
            .data_dir
            .or(file.server.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data")),
        admin_token: overrides
            .admin_token
            .or(file.server.admin_token)
            .filter(|t| !t.is_empty()),
        trusted_proxies,
        max_body_bytes,
        max_queue_bytes,
        store_path,
        store_memory_limit: overrides
            .store_memory_limit
            .or(file.store.memory_limit)
            .unwrap_or_else(|| "512MB".to_owned()),
        log_format: overrides
            .log_format
            .or(file.log.format)
            .unwrap_or(LogFormat::Text),
        retention_interval_s,
        geoip_db: overrides.geoip_db.or(file.geoip.database),
        query_cache_entries: overrides
            .query_cache_entries
            .or(file.query.cache_entries)
            .unwrap_or(1000),
        notes,
    })
}

/// The settings of reads: the file's `[query]` section under the flags.
fn query_settings(
    file: &QuerySection,
    overrides: &Overrides,
) -> Result<crate::query_pool::QuerySettings, ConfigError> {
    let defaults = crate::query_pool::QuerySettings::default();
    let settings = crate::query_pool::QuerySettings {
        max_concurrent: overrides
            .query_max_concurrent
            .or(file.max_concurrent)
            .unwrap_or(defaults.max_concurrent),
        max_waiting: overrides
            .query_max_waiting
            .or(file.max_waiting)
            .unwrap_or(defaults.max_waiting),
        timeout: overrides
            .query_timeout_ms
            .or(file.timeout_ms)
            .map_or(defaults.timeout, std::time::Duration::from_millis),
        max_memory_bytes: overrides
            .query_max_memory_bytes
            .or(file.max_memory_bytes)
            .unwrap_or(defaults.max_memory_bytes),
        bounds: heartbeat_query::QueryBounds {
            max_range_days: overrides
                .query_max_range_days
                .or(file.max_range_days)
                .unwrap_or(defaults.bounds.max_range_days),
            max_time_buckets: overrides
                .query_max_time_buckets
                .or(file.max_time_buckets)
                .unwrap_or(defaults.bounds.max_time_buckets),
        },
    };
    for (name, value) in [
        ("query.max_concurrent", settings.max_concurrent as u64),
        ("query.timeout_ms", settings.timeout.as_millis() as u64),
        ("query.max_memory_bytes", settings.max_memory_bytes as u64),
        (
            "query.max_range_days",
            u64::from(settings.bounds.max_range_days),
        ),
        (
            "query.max_time_buckets",
            u64::from(settings.bounds.max_time_buckets),
        ),
    ] {
        if value == 0 {
            return Err(invalid(name, "must be at least 1"));
        }
    }
    Ok(settings)
}

impl Settings {
    /// The effective settings as a configuration file (the admin token withheld).
    pub fn to_toml(&self) -> String {
        let token = match &self.admin_token {
            Some(_) => "# admin_token is set (not shown)",
            None => "# admin_token: generated on first start, kept in <data_dir>/admin-token",
        };
        let proxies: Vec<String> = self.trusted_proxies.iter().map(|n| n.to_string()).collect();
        let store_path = match &self.store_path {
            Some(path) => format!("path = {}\n", toml_string(&path.display().to_string())),
            None => "# path: heartbeat.duckdb in the data dir\n".to_owned(),
        };
        format!(
            "[server]\nlisten = {}\ndata_dir = {}\n{token}\ntrusted_proxies = {}\nmax_body_bytes = {}\n\
             request_timeout_s = {}\ncors_origins = {}\nsecure_cookies = {}\n\n\
             [limits]\nenabled = {}\ningest_per_ip_per_minute = {}\nper_key_per_minute = {}\n\
             site_events_per_minute = {}\nshare_per_ip_per_minute = {}\n\n\
             [store]\n{store_path}memory_limit = {}\n\n\
             [queue]\nmax_pending_bytes = {}\n\n\
             [log]\nformat = {}\n\n\
             [retention]\ninterval_s = {}\n\n\
             [geoip]\n{}\n\n\
             [query]\ncache_entries = {}\ntimeout_ms = {}\nmax_concurrent = {}\nmax_waiting = {}\n\
             max_memory_bytes = {}\nmax_range_days = {}\nmax_time_buckets = {}\n",
            toml_string(&self.listen.to_string()),
            toml_string(&self.data_dir.display().to_string()),
            toml::Value::Array(proxies.into_iter().map(toml::Value::String).collect()),
            self.max_body_bytes,
            self.request_timeout_s,
            toml::Value::Array(
                self.cors_origins
                    .iter()
                    .cloned()
                    .map(toml::Value::String)
                    .collect()
            ),
            self.secure_cookies,
            self.limits.enabled,
            self.limits.ingest_per_ip_per_minute,
            self.limits.per_key_per_minute,
            self.limits.site_events_per_minute,
            self.limits.share_per_ip_per_minute,
            toml_string(&self.store_memory_limit),
            self.max_queue_bytes,
            toml_string(match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }),
            self.retention_interval_s,
            match &self.geoip_db {
                Some(path) => format!("database = {}", toml_string(&path.display().to_string())),
                None => "# database: none, locations stay empty".to_owned(),
            },
            self.query_cache_entries,
            self.query.timeout.as_millis(),
            self.query.max_concurrent,
            self.query.max_waiting,
            self.query.max_memory_bytes,
            self.query.bounds.max_range_days,
            self.query.bounds.max_time_buckets,
        )
    }
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn file(text: &str) -> FileConfig {
        parse_file(Path::new("test.toml"), text).unwrap()
    }

    #[test]
    fn defaults() {
        let settings = resolve(FileConfig::default(), Overrides::default(), env(&[])).unwrap();
        assert_eq!(settings.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(settings.data_dir, PathBuf::from("./data"));
        assert_eq!(settings.max_body_bytes, 1024 * 1024);
        assert_eq!(settings.log_format, LogFormat::Text);
        assert!(settings.notes.is_empty());
    }

    #[test]
    fn flags_and_env_beat_the_file() {
        let from_file = file(
            "[server]\nlisten = \"0.0.0.0:8080\"\ndata_dir = \"/srv/hb\"\nmax_body_bytes = 10\n\
             [log]\nformat = \"json\"\n",
        );
        let settings = resolve(from_file.clone(), Overrides::default(), env(&[])).unwrap();
        assert_eq!(settings.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(settings.data_dir, PathBuf::from("/srv/hb"));
        assert_eq!(settings.max_body_bytes, 10);
        assert_eq!(settings.log_format, LogFormat::Json);
        let overrides = Overrides {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            max_body_bytes: Some(20),
            ..Overrides::default()
        };
        let settings = resolve(from_file, overrides, env(&[("PORT", "7000")])).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(settings.max_body_bytes, 20);
        assert_eq!(settings.data_dir, PathBuf::from("/srv/hb"));
    }

    #[test]
    fn seed_port_sets_the_port_of_the_configured_address() {
        let from_file = file("[server]\nlisten = \"0.0.0.0:8080\"\n");
        let settings = resolve(from_file, Overrides::default(), env(&[("PORT", "4000")])).unwrap();
        assert_eq!(settings.listen, "0.0.0.0:4000".parse().unwrap());
        let bad = resolve(
            FileConfig::default(),
            Overrides::default(),
            env(&[("PORT", "x")]),
        );
        assert!(bad.unwrap_err().to_string().starts_with("PORT:"));
    }

    #[test]
    fn seed_urls() {
        let settings = resolve(
            FileConfig::default(),
            Overrides::default(),
            env(&[
                ("DATABASE_URL", "duckdb:///var/lib/hb/events.duckdb"),
                ("REDIS_URL", "redis://localhost:6379"),
            ]),
        )
        .unwrap();
        assert_eq!(
            settings.store_path,
            Some(PathBuf::from("/var/lib/hb/events.duckdb"))
        );
        assert_eq!(settings.notes.len(), 1);
        assert!(settings.notes[0].starts_with("REDIS_URL is ignored"));
        let postgres = resolve(
            FileConfig::default(),
            Overrides::default(),
            env(&[(
                "DATABASE_URL",
                "postgresql://postgres:secret@db:5432/heartbeat",
            )]),
        )
        .unwrap();
        assert_eq!(postgres.store_path, None);
        assert!(postgres.notes[0].contains("DATABASE_URL (postgresql) is ignored"));
        assert!(!postgres.notes[0].contains("secret"));
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        for (text, key) in [
            ("[server]\nlisten_port = 3000\n", "listen_port"),
            ("[servr]\nlisten = \"127.0.0.1:1\"\n", "servr"),
            ("[store]\nmemory = \"1GB\"\n", "memory"),
        ] {
            let err = parse_file(Path::new("hb.toml"), text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("unknown field `{key}`")), "{err}");
            assert!(err.contains("hb.toml"), "{err}");
        }
        let err = parse_file(Path::new("hb.toml"), "[log]\nformat = \"xml\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("xml"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let bad_listen = resolve(
            file("[server]\nlisten = \"localhost\"\n"),
            Overrides::default(),
            env(&[]),
        );
        assert!(bad_listen
            .unwrap_err()
            .to_string()
            .starts_with("server.listen:"));
        let bad_cidr = resolve(
            file("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"nope\"]\n"),
            Overrides::default(),
            env(&[]),
        );
        assert!(bad_cidr.unwrap_err().to_string().contains("\"nope\""));
    }

    #[test]
    fn the_example_file_is_valid_and_check_output_parses_back() {
        let example = include_str!("../../../heartbeat.example.toml");
        let settings = resolve(file(example), Overrides::default(), env(&[])).unwrap();
        let printed = settings.to_toml();
        let again = resolve(file(&printed), Overrides::default(), env(&[])).unwrap();
        assert_eq!(again.listen, settings.listen);
        assert_eq!(again.trusted_proxies, settings.trusted_proxies);
        assert_eq!(again.store_memory_limit, settings.store_memory_limit);
        assert_eq!(again.max_queue_bytes, settings.max_queue_bytes);
        assert_eq!(again.limits, settings.limits);
        assert_eq!(again.cors_origins, settings.cors_origins);
        assert_eq!(again.query, settings.query);
    }

    #[test]
    fn query_budgets_from_file_and_flags() {
        let from_file = file(
            "[query]\ntimeout_ms = 2500\nmax_concurrent = 2\nmax_range_days = 400\n\
             [limits]\nshare_per_ip_per_minute = 30\n",
        );
        let settings = resolve(from_file.clone(), Overrides::default(), env(&[])).unwrap();
        assert_eq!(
            settings.query.timeout,
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(settings.query.max_concurrent, 2);
        assert_eq!(settings.query.bounds.max_range_days, 400);
        assert_eq!(settings.query.bounds.max_time_buckets, 10_000);
        assert_eq!(settings.limits.share_per_ip_per_minute, 30);
        let flags = Overrides {
            query_timeout_ms: Some(100),
            query_max_time_buckets: Some(500),
            ..Overrides::default()
        };
        let settings = resolve(from_file, flags, env(&[])).unwrap();
        assert_eq!(
            settings.query.timeout,
            std::time::Duration::from_millis(100)
        );
        assert_eq!(settings.query.bounds.max_time_buckets, 500);
        let zero = resolve(
            file("[query]\ntimeout_ms = 0\n"),
            Overrides::default(),
            env(&[]),
        );
        assert!(zero
            .unwrap_err()
            .to_string()
            .starts_with("query.timeout_ms"));
    }

    #[test]
    fn limits_from_file_env_and_off() {
        let from_file = file("[limits]\ningest_per_ip_per_minute = 5\n");
        let settings = resolve(from_file.clone(), Overrides::default(), env(&[])).unwrap();
        assert!(settings.limits.enabled);
        assert_eq!(settings.limits.ingest_per_ip_per_minute, 5);
        let off = Overrides {
            rate_limits: Some(false),
            ..Overrides::default()
        };
        assert!(!resolve(from_file, off, env(&[])).unwrap().limits.enabled);
        let zero = resolve(
            file("[limits]\nper_key_per_minute = 0\n"),
            Overrides::default(),
            env(&[]),
        );
        assert!(zero
            .unwrap_err()
            .to_string()
            .starts_with("limits.per_key_per_minute"));
        let bad_origin = resolve(
            file("[server]\ncors_origins = [\"*\"]\n"),
            Overrides::default(),
            env(&[]),
        );
        assert!(bad_origin.is_err());
    }
}
