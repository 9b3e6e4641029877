//! One configuration: a TOML file, `HEARTBEAT_*` environment variables and command-line flags,
//! resolved once into typed [`Settings`].
//!
//! Every setting is declared once, in the [`settings!`] table below: its section and key (the
//! file's `[section] key`), its type, its default, its flag and its environment variable, and
//! its documentation. From that one declaration come the file's shape (unknown keys rejected,
//! naming the key and its line), the flags (clap, each also read from its variable), the
//! effective settings with their defaults, `heartbeat config check`'s output and the list of
//! every setting ([`SETTINGS`], which a test holds the README and the example file to).
//! Each component receives its own section (`settings.query` for the query pool,
//! `settings.limits` for the limits, `settings.queue` for the queue, ...).
//!
//! Precedence, lowest first: defaults < the file (`--config` / `HEARTBEAT_CONFIG`) <
//! environment < flags.
//!
//! Engines are chosen by a tag per part: `store.engine` (`duckdb` or `clickhouse`),
//! `queue.engine` (`wal` or `amqp`), `meta.engine` (`duckdb` or `postgres`), `cache.engine`
//! (`memory` or `redis`); `server.role` says what a node of a cluster does.
//!
//! Variable names from the seeds' `.env` files are understood where they mean something here:
//! `PORT` sets the listen port (when neither `--listen` nor `HEARTBEAT_LISTEN` is given),
//! `DATABASE_URL` of the form `duckdb:///path/to/file.duckdb` places the DuckDB file and a
//! `postgres://` one keeps the metadata in PostgreSQL, `RABBITMQ_URL` queues on RabbitMQ and
//! `REDIS_URL` keeps the query cache and rate-limit state in Redis (each unless `meta.url`,
//! `queue.url` or `cache.url` is set).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One setting, for documentation: `heartbeat config check` and the README's table.
#[derive(Debug, Clone, Copy)]
pub struct SettingDoc {
    /// `section.key` in the file.
    pub key: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
    pub doc: &'static str,
}

/// Declares every setting once; see the module documentation.
macro_rules! settings {
    ($(
        $(#[doc = $section_doc:literal])*
        [$section:ident] $Section:ident, $Layer:ident {
            $(
                $(#[doc = $doc:literal])*
                $key:ident: $ty:ty = $default:expr; $flag:literal, $env:literal $(, $arg:ident = $value:expr)*;
            )*
        }
    )*) => {
        $(
            $(#[doc = $section_doc])*
            #[derive(Debug, Clone, PartialEq, Serialize)]
            pub struct $Section {
                $( $(#[doc = $doc])* pub $key: $ty, )*
            }

            impl Default for $Section {
                fn default() -> Self {
                    $Section { $( $key: $default, )* }
                }
            }

            /// What one source (the file, or the flags with their variables) says of this
            /// section: `None` where it says nothing.
            #[derive(Debug, Clone, Default, Deserialize, clap::Args)]
            #[serde(deny_unknown_fields)]
            pub struct $Layer {
                $(
                    $(#[doc = $doc])*
                    #[arg(id = concat!(stringify!($section), ".", stringify!($key)), long = $flag, env = $env $(, $arg = $value)*)]
                    pub $key: Option<$ty>,
                )*
            }

            impl $Section {
                /// The flags' value, else the file's, else the default.
                fn layered(flags: $Layer, file: $Layer) -> Self {
                    let defaults = Self::default();
                    $Section { $( $key: flags.$key.or(file.$key).unwrap_or(defaults.$key), )* }
                }
            }
        )*

        /// The effective settings, one section per component.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct Settings {
            $( pub $section: $Section, )*
            /// Things worth telling the operator: variables understood but not used, and why.
            #[serde(skip)]
            pub notes: Vec<String>,
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $section: $Section::default(), )* notes: Vec::new() }
            }
        }

        /// The configuration file's shape: every key optional, unknown keys rejected.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct FileConfig {
            $( #[serde(default)] pub $section: $Layer, )*
        }

        /// The server's settings as flags, each also read from its `HEARTBEAT_*` variable.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct Flags {
            $( #[command(flatten)] pub $section: $Layer, )*
        }

        fn layered(flags: Flags, file: FileConfig) -> Settings {
            Settings {
                $( $section: $Section::layered(flags.$section, file.$section), )*
                notes: Vec::new(),
            }
        }

        /// Every setting, in declaration order.
        pub const SETTINGS: &[SettingDoc] = &[$($(
            SettingDoc {
                key: concat!(stringify!($section), ".", stringify!($key)),
                flag: concat!("--", $flag),
                env: $env,
                doc: concat!($($doc, "\n",)*),
            },
        )*)*];
    };
}

/// `on`/`off` (`true`/`false`, `1`/`0`, `yes`/`no` too).
fn toggle(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        other => Err(format!("{other:?} is neither on nor off")),
    }
}

settings! {
    /// Listening, the data directory, credentials and HTTP limits.
    [server] Server, ServerLayer {
        /// Address to listen on, like `127.0.0.1:3000` (`PORT` sets the port only).
        listen: String = DEFAULT_LISTEN.to_owned(); "listen", "HEARTBEAT_LISTEN";
        /// Where the write-ahead log, the DuckDB file, salts and the admin token live.
        data_dir: PathBuf = PathBuf::from("./data"); "data-dir", "HEARTBEAT_DATA_DIR";
        /// The admin key (empty: generated on first start and kept in the data dir); prefer
        /// the variable to a file.
        admin_token: String = String::new(); "admin-token", "HEARTBEAT_ADMIN_TOKEN", hide_env_values = true;
        /// CIDRs of proxies whose forwarding headers are believed (comma-separated).
        trusted_proxies: Vec<String> = Vec::new(); "trusted-proxies", "HEARTBEAT_TRUSTED_PROXIES", value_delimiter = ',';
        /// Largest request body accepted, in bytes (413 beyond it).
        max_body_bytes: usize = 1024 * 1024; "max-body-bytes", "HEARTBEAT_MAX_BODY_BYTES";
        /// Seconds a request may take before it is answered 408.
        request_timeout_s: u64 = 30; "request-timeout-s", "HEARTBEAT_REQUEST_TIMEOUT_S";
        /// Origins (like `https://admin.example.com`) whose pages may call the private API
        /// with credentials (CORS, comma-separated); none: same origin only.
        cors_origins: Vec<String> = Vec::new(); "cors-origins", "HEARTBEAT_CORS_ORIGINS", value_delimiter = ',';
        /// Whether session cookies carry `Secure` (HTTPS only).
        secure_cookies: bool = true; "secure-cookies", "HEARTBEAT_SECURE_COOKIES";
        /// What this node does: `all` (everything), `ingest` (accepts events into the
        /// queue), `worker` (stores queued events: the processor) or `api` (dashboard, API,
        /// queries). Every role but `all` needs shared engines (`store.engine = clickhouse`,
        /// `queue.engine = amqp`, `meta.engine = postgres`).
        role: Role = Role::All; "role", "HEARTBEAT_ROLE";
    }
    /// Where events, visits and rollups are kept and queried.
    [store] Store, StoreLayer {
        /// The event store's engine: `duckdb` (embedded) or `clickhouse` (a cluster, shared
        /// by every node).
        engine: StoreEngine = StoreEngine::Duckdb; "store", "HEARTBEAT_STORE";
        /// The DuckDB file (empty: `heartbeat.duckdb` in the data dir; also
        /// `DATABASE_URL=duckdb:///path/file.duckdb`).
        path: PathBuf = PathBuf::new(); "store-path", "HEARTBEAT_STORE_PATH";
        /// DuckDB's buffer memory cap, like `512MB` (it spills to disk beyond it).
        memory_limit: String = "512MB".to_owned(); "store-memory-limit", "HEARTBEAT_STORE_MEMORY_LIMIT";
        /// Each ClickHouse shard's HTTP address, like `http://ch1:8123,http://ch2:8123`, in
        /// the order of the cluster's `remote_servers` (`clickhouse`; one address: an
        /// unsharded server).
        urls: Vec<String> = Vec::new(); "store-urls", "HEARTBEAT_STORE_URLS", value_delimiter = ',', hide_env_values = true;
        /// The cluster's name in the servers' `remote_servers` (`clickhouse`).
        cluster: String = "heartbeat".to_owned(); "store-cluster", "HEARTBEAT_STORE_CLUSTER";
        /// The ClickHouse database holding Heartbeat's tables, created if missing
        /// (`clickhouse`).
        database: String = "heartbeat".to_owned(); "store-database", "HEARTBEAT_STORE_DATABASE";
    }
    /// The durable queue between ingest and the processor.
    [queue] Queue, QueueLayer {
        /// The queue's engine: `wal` (the embedded write-ahead log) or `amqp` (a RabbitMQ
        /// stream; also `RABBITMQ_URL`).
        engine: QueueEngine = QueueEngine::Wal; "queue", "HEARTBEAT_QUEUE";
        /// Bytes the queue may hold unprocessed before ingest answers 503 (`wal`).
        max_pending_bytes: u64 = 1024 * 1024 * 1024; "max-queue-bytes", "HEARTBEAT_MAX_QUEUE_BYTES";
        /// Messages (requests) the queue may hold unprocessed before ingest answers 503
        /// (`amqp`).
        max_pending_messages: u64 = 1_000_000; "max-queue-messages", "HEARTBEAT_MAX_QUEUE_MESSAGES";
        /// The broker, like `amqp://user:password@rabbitmq:5672/%2f` (`amqp`).
        url: String = String::new(); "queue-url", "HEARTBEAT_QUEUE_URL", hide_env_values = true;
        /// The stream's name on the broker (`amqp`).
        name: String = "heartbeat.events".to_owned(); "queue-name", "HEARTBEAT_QUEUE_NAME";
        /// Streams the events are spread over by visitor, each stored by one worker at a time
        /// (`amqp` with `store.engine = clickhouse`; more than one needs
        /// `meta.engine = postgres`, where workers share them out). Fixed for a cluster's life.
        partitions: u32 = 1; "queue-partitions", "HEARTBEAT_QUEUE_PARTITIONS";
    }
    /// The processor, between the queue and the store: its memory bounds.
    [processor] ProcessorSettings, ProcessorLayer {
        /// Most visits the sessionizer keeps in memory (about 1 KB each). Visits leave memory
        /// once their site's events are 35 minutes past them; beyond this many, the least
        /// recently active leave too, and a late event loads its visit back from the store.
        max_open_visits: usize = 100_000; "max-open-visits", "HEARTBEAT_MAX_OPEN_VISITS";
        /// Bytes the dedup filter may take: 8 per client-given event id remembered for 24 hours
        /// of arrival; beyond them the oldest ids are forgotten early.
        dedup_max_bytes: usize = 32 * 1024 * 1024; "dedup-max-bytes", "HEARTBEAT_DEDUP_MAX_BYTES";
        /// Queue bytes read into one store transaction (at least one request; a RabbitMQ
        /// receive takes up to 8 MiB whatever this says). The processor holds two such steps
        /// decoded at once (one being written, the next being prepared), several times their
        /// queue size; smaller steps take less memory and rewrite the rollup cells they touch
        /// more often.
        max_batch_bytes: usize = 2 * 1024 * 1024; "max-batch-bytes", "HEARTBEAT_MAX_BATCH_BYTES";
        /// Milliseconds a stop may spend storing what is queued. Past them the server stops
        /// anyway and the rest stays in the queue for the next start (nothing is lost): a
        /// store that keeps failing, or a long backlog, never holds a shutdown for ever.
        stop_grace_ms: u64 = 30_000; "stop-grace-ms", "HEARTBEAT_STOP_GRACE_MS";
    }
    /// Sites, keys, organisations, users, sessions and share links.
    [meta] Meta, MetaLayer {
        /// The metadata store's engine: `duckdb` (beside the events) or `postgres` (also
        /// `DATABASE_URL=postgres://...`).
        engine: MetaEngine = MetaEngine::Duckdb; "meta", "HEARTBEAT_META";
        /// The PostgreSQL server, like `postgres://user:password@db:5432/heartbeat`
        /// (`postgres`).
        url: String = String::new(); "meta-url", "HEARTBEAT_META_URL", hide_env_values = true;
        /// Connections to PostgreSQL this node keeps at most (`postgres`).
        pool_size: usize = 16; "meta-pool-size", "HEARTBEAT_META_POOL_SIZE";
        /// Milliseconds between two readings of sites, keys, accounts, goals and alert rules
        /// from PostgreSQL, so changes made through other nodes reach this one (`postgres`).
        refresh_ms: u64 = 5_000; "meta-refresh-ms", "HEARTBEAT_META_REFRESH_MS";
    }
    /// The query cache and rate-limit state.
    [cache] Cache, CacheLayer {
        /// The cache's engine: `memory` (in the process) or `redis` (shared by every node;
        /// also `REDIS_URL`).
        engine: CacheEngine = CacheEngine::Memory; "cache", "HEARTBEAT_CACHE";
        /// The Redis server, like `redis://redis:6379/` (`redis`).
        url: String = String::new(); "cache-url", "HEARTBEAT_CACHE_URL", hide_env_values = true;
    }
    /// Logging (levels with `HEARTBEAT_LOG`, like `info` or `heartbeat_server=debug`).
    [log] Log, LogLayer {
        /// `text` or `json`.
        format: LogFormat = LogFormat::Text; "log-format", "HEARTBEAT_LOG_FORMAT";
    }
    /// The job that deletes events past their site's retention.
    [retention] Retention, RetentionLayer {
        /// Seconds between runs.
        interval_s: u64 = 3600; "retention-interval-s", "HEARTBEAT_RETENTION_INTERVAL_S";
    }
    /// Locations from IP addresses.
    [geoip] GeoIp, GeoIpLayer {
        /// A MaxMind-format database (.mmdb: GeoLite2 or DB-IP Lite, City or Country) for
        /// regions and cities; empty: the bundled country database (countries only).
        database: PathBuf = PathBuf::new(); "geoip-db", "HEARTBEAT_GEOIP_DB";
    }
    /// Reads: the cache of answers and the query pool's budgets.
    [query] Query, QueryLayer {
        /// Query answers kept until their site's data changes; 0 turns the cache off.
        cache_entries: usize = 1000; "query-cache-entries", "HEARTBEAT_QUERY_CACHE_ENTRIES";
        /// Milliseconds a read may take, waiting for its turn included, before it is stopped
        /// and answered 503.
        timeout_ms: u64 = 10_000; "query-timeout-ms", "HEARTBEAT_QUERY_TIMEOUT_MS";
        /// Reads running at once.
        max_concurrent: usize = 4; "query-max-concurrent", "HEARTBEAT_QUERY_MAX_CONCURRENT";
        /// Reads waiting for a turn; more are answered 503 at once.
        max_waiting: usize = 64; "query-max-waiting", "HEARTBEAT_QUERY_MAX_WAITING";
        /// Memory one statement's rows may take; beyond it a read is answered 400.
        max_memory_bytes: usize = 64 * 1024 * 1024; "query-max-memory-bytes", "HEARTBEAT_QUERY_MAX_MEMORY_BYTES";
        /// The longest date range a read may ask for, in days.
        max_range_days: u32 = heartbeat_query::QueryBounds::default().max_range_days; "query-max-range-days", "HEARTBEAT_QUERY_MAX_RANGE_DAYS";
        /// The most time buckets (points of a time series) a read may ask for.
        max_time_buckets: u32 = heartbeat_query::QueryBounds::default().max_time_buckets; "query-max-time-buckets", "HEARTBEAT_QUERY_MAX_TIME_BUCKETS";
    }
    /// Alert rules, the deliveries of what they say, and scheduled reports.
    [alerts] AlertSettings, AlertsLayer {
        /// Milliseconds between evaluations of every alert rule (and checks for reports due).
        interval_ms: u64 = 60_000; "alerts-interval-ms", "HEARTBEAT_ALERTS_INTERVAL_MS";
        /// Milliseconds before a failed delivery's first retry; each retry waits twice as long.
        retry_base_ms: u64 = 30_000; "alerts-retry-base-ms", "HEARTBEAT_ALERTS_RETRY_BASE_MS";
        /// The longest wait between two attempts of a delivery, in milliseconds.
        retry_max_ms: u64 = 3_600_000; "alerts-retry-max-ms", "HEARTBEAT_ALERTS_RETRY_MAX_MS";
        /// Attempts before a delivery is given up on (it stays listed with its reason).
        max_attempts: u32 = 12; "alerts-max-attempts", "HEARTBEAT_ALERTS_MAX_ATTEMPTS";
        /// Failures in a row after which a webhook (or the mail server) is left alone for
        /// `breaker_open_ms` (its deliveries wait, none is given up on meanwhile).
        breaker_failures: u32 = 5; "alerts-breaker-failures", "HEARTBEAT_ALERTS_BREAKER_FAILURES";
        /// Milliseconds a failing endpoint is left alone.
        breaker_open_ms: u64 = 300_000; "alerts-breaker-open-ms", "HEARTBEAT_ALERTS_BREAKER_OPEN_MS";
        /// Whether webhooks may target loopback, private and link-local addresses (off: such
        /// URLs are refused, against server-side request forgery).
        allow_private_targets: bool = false; "alerts-allow-private-targets", "HEARTBEAT_ALERTS_ALLOW_PRIVATE_TARGETS", value_parser = toggle;
        /// Where users reach this server, like `https://stats.example.com`, for the links in
        /// alerts and reports (empty: `http://` and the listen address).
        public_url: String = String::new(); "public-url", "HEARTBEAT_PUBLIC_URL";
    }
    /// The mail server alerts and reports are sent through (none: no email).
    [smtp] Smtp, SmtpLayer {
        /// The SMTP server's host name (empty: email is off, email recipients are refused).
        host: String = String::new(); "smtp-host", "HEARTBEAT_SMTP_HOST";
        /// Its port.
        port: u16 = 587; "smtp-port", "HEARTBEAT_SMTP_PORT";
        /// `starttls` (upgrade required), `tls` (TLS from the start, port 465) or `none`
        /// (plain text: a relay on the same machine only).
        tls: SmtpTls = SmtpTls::Starttls; "smtp-tls", "HEARTBEAT_SMTP_TLS";
        /// The user name to log in with (empty: no login).
        username: String = String::new(); "smtp-username", "HEARTBEAT_SMTP_USERNAME";
        /// The password; prefer the variable to a file.
        password: String = String::new(); "smtp-password", "HEARTBEAT_SMTP_PASSWORD", hide_env_values = true;
        /// The sender, like `Heartbeat <stats@example.com>`.
        from: String = "Heartbeat <heartbeat@localhost>".to_owned(); "smtp-from", "HEARTBEAT_SMTP_FROM";
    }
    /// Rate limits and quotas (429 with `Retry-After` beyond them).
    [limits] Limits, LimitsLayer {
        /// `false` (`--rate-limits off`) turns every rate limit and quota off (benchmarks on
        /// loopback).
        enabled: bool = true; "rate-limits", "HEARTBEAT_RATE_LIMITS", value_parser = toggle;
        /// Requests per client IP per minute on public ingest (`POST /api/event`,
        /// `POST /events`).
        ingest_per_ip_per_minute: u32 = 100; "ingest-per-ip-per-minute", "HEARTBEAT_INGEST_PER_IP_PER_MINUTE";
        /// Requests per API key or session per minute, ingest and API alike (100 a second: a
        /// backend sending batches of up to 1,000 events).
        per_key_per_minute: u32 = 6_000; "per-key-per-minute", "HEARTBEAT_PER_KEY_PER_MINUTE";
        /// Events per site per minute accepted by ingest (10,000 a second sustained, with a
        /// minute's worth of burst), so a flood on one site cannot starve the others.
        site_events_per_minute: u32 = 600_000; "site-events-per-minute", "HEARTBEAT_SITE_EVENTS_PER_MINUTE";
        /// Requests per client IP per minute through a public dashboard link, on top of the
        /// link's own key budget (ten dashboard loads a minute).
        share_per_ip_per_minute: u32 = 240; "share-per-ip-per-minute", "HEARTBEAT_SHARE_PER_IP_PER_MINUTE";
    }
}

macro_rules! engine {
    ($(#[doc = $doc:literal])* $Engine:ident { $($(#[doc = $vdoc:literal])* $Variant:ident),* $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
        #[serde(rename_all = "lowercase")]
        pub enum $Engine { $($(#[doc = $vdoc])* $Variant),* }
    };
}

engine!(
    /// What a node does.
    Role {
        /// Ingest, processing and the API in one process.
        All,
        /// Accepts events into the queue.
        Ingest,
        /// Stores queued events.
        Worker,
        /// Dashboard, API and queries.
        Api
    }
);
engine!(
    /// Which engine keeps events.
    StoreEngine {
        /// Embedded DuckDB in the data dir.
        Duckdb,
        /// A ClickHouse cluster (`store.urls`).
        Clickhouse
    }
);
engine!(
    /// Which engine queues accepted events.
    QueueEngine {
        /// The embedded write-ahead log in the data dir.
        Wal,
        /// A stream on a RabbitMQ broker (`queue.url`).
        Amqp
    }
);
engine!(
    /// Which engine keeps the metadata.
    MetaEngine {
        /// The DuckDB file of the events.
        Duckdb,
        /// A PostgreSQL database (`meta.url`), shared by every node.
        Postgres
    }
);
engine!(
    /// Which engine keeps caches and limiter state.
    CacheEngine {
        /// In the process.
        Memory,
        /// A Redis server (`cache.url`), shared by every node.
        Redis
    }
);

/// How the connection to the mail server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text.
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
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

/// Resolves the settings from the file, the flags and the seeds' variables (read through
/// `env`, so tests need not touch the process environment), and checks them.
pub fn resolve(
    file: FileConfig,
    flags: Flags,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let listen_given = flags.server.listen.is_some();
    let mut settings = layered(flags, file);
    if !listen_given {
        if let Some(port) = env("PORT").filter(|p| !p.trim().is_empty()) {
            let port: u16 = port
                .trim()
                .parse()
                .map_err(|_| invalid("PORT", format!("{port:?} is not a port number")))?;
            let mut listen = settings.server.listen_addr()?;
            listen.set_port(port);
            settings.server.listen = listen.to_string();
        }
    }
    seed_urls(&mut settings, &env);
    settings.check()?;
    Ok(settings)
}

/// The seeds' variables: `DATABASE_URL` places the DuckDB file (`duckdb:///path`) or, as a
/// PostgreSQL URL, keeps the metadata there; `RABBITMQ_URL` queues on RabbitMQ. Each applies
/// only where the settings name no address of their own (`meta.url`, `queue.url`).
fn seed_urls(settings: &mut Settings, env: &impl Fn(&str) -> Option<String>) {
    let given = |name: &str| {
        env(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if let Some(url) = given("DATABASE_URL") {
        let scheme = url.split(':').next().unwrap_or("?").to_owned();
        match url.strip_prefix("duckdb://") {
            Some(path) if !path.is_empty() => settings.store.path = PathBuf::from(path),
            _ if matches!(scheme.as_str(), "postgres" | "postgresql") => {
                if settings.meta.url.is_empty() {
                    settings.meta.engine = MetaEngine::Postgres;
                    settings.meta.url = url;
                    settings.notes.push(
                        "DATABASE_URL: sites, keys and accounts are kept in PostgreSQL \
                         (events stay in the event store, store.engine)"
                            .to_owned(),
                    );
                }
            }
            _ => settings.notes.push(format!(
                "DATABASE_URL ({scheme}) is ignored: it names neither a DuckDB file \
                 (duckdb:///path/to/file.duckdb) nor a PostgreSQL database (postgres://...)"
            )),
        }
    }
    if let Some(url) = given("RABBITMQ_URL") {
        if settings.queue.url.is_empty() {
            settings.queue.engine = QueueEngine::Amqp;
            settings.queue.url = url;
        }
    }
    if let Some(url) = given("REDIS_URL") {
        if settings.cache.url.is_empty() {
            settings.cache.engine = CacheEngine::Redis;
            settings.cache.url = url;
        }
    }
}

/// `url` with its password, if any, replaced by `***`, for showing.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Settings {
    /// Every value checked, each error naming its setting.
    fn check(&mut self) -> Result<(), ConfigError> {
        self.server.listen_addr()?;
        if self.meta.engine == MetaEngine::Postgres
            && !(self.meta.url.starts_with("postgres://")
                || self.meta.url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "meta.url",
                "the postgres engine needs a URL like postgres://user:password@db:5432/heartbeat",
            ));
        }
        if self.queue.engine == QueueEngine::Amqp
            && !(self.queue.url.starts_with("amqp://") || self.queue.url.starts_with("amqps://"))
        {
            return Err(invalid(
                "queue.url",
                "the amqp engine needs a URL like amqp://user:password@rabbitmq:5672/%2f",
            ));
        }
        if self.queue.name.trim().is_empty() {
            return Err(invalid("queue.name", "must not be empty"));
        }
        if self.cache.engine == CacheEngine::Redis
            && !(self.cache.url.starts_with("redis://") || self.cache.url.starts_with("rediss://"))
        {
            return Err(invalid(
                "cache.url",
                "the redis engine needs a URL like redis://redis:6379/",
            ));
        }
        if self.store.engine == StoreEngine::Clickhouse {
            let urls: Vec<String> = self
                .store
                .urls
                .iter()
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty())
                .collect();
            if urls.is_empty() || urls.iter().any(|u| !u.starts_with("http")) {
                return Err(invalid(
                    "store.urls",
                    "the clickhouse engine needs each shard's HTTP address, like \
                     http://ch1:8123,http://ch2:8123",
                ));
            }
            self.store.urls = urls;
        }
        self.check_cluster()?;
        self.server.trusted_proxies()?;
        let origins: Vec<String> = self
            .server
            .cors_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        for origin in &origins {
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
        self.server.cors_origins = origins;
        for (name, value) in [
            ("server.max_body_bytes", self.server.max_body_bytes as u64),
            ("server.request_timeout_s", self.server.request_timeout_s),
            ("retention.interval_s", self.retention.interval_s),
            ("alerts.interval_ms", self.alerts.interval_ms),
            ("alerts.retry_base_ms", self.alerts.retry_base_ms),
            ("alerts.retry_max_ms", self.alerts.retry_max_ms),
            ("alerts.max_attempts", u64::from(self.alerts.max_attempts)),
            (
                "alerts.breaker_failures",
                u64::from(self.alerts.breaker_failures),
            ),
            ("query.max_concurrent", self.query.max_concurrent as u64),
            ("meta.pool_size", self.meta.pool_size as u64),
            ("meta.refresh_ms", self.meta.refresh_ms),
            (
                "queue.max_pending_messages",
                self.queue.max_pending_messages,
            ),
            ("query.timeout_ms", self.query.timeout_ms),
            ("query.max_memory_bytes", self.query.max_memory_bytes as u64),
            ("query.max_range_days", u64::from(self.query.max_range_days)),
            (
                "query.max_time_buckets",
                u64::from(self.query.max_time_buckets),
            ),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        for (name, value) in [
            (
                "limits.ingest_per_ip_per_minute",
                self.limits.ingest_per_ip_per_minute,
            ),
            ("limits.per_key_per_minute", self.limits.per_key_per_minute),
            (
                "limits.site_events_per_minute",
                self.limits.site_events_per_minute,
            ),
            (
                "limits.share_per_ip_per_minute",
                self.limits.share_per_ip_per_minute,
            ),
        ] {
            if value == 0 {
                return Err(invalid(
                    name,
                    "must be at least 1 (turn limits off with limits.enabled = false)",
                ));
            }
        }
        Ok(())
    }

    /// A node with a role of its own, or more than one queue partition, runs beside others:
    /// every engine it uses must be one they share.
    fn check_cluster(&self) -> Result<(), ConfigError> {
        if self.queue.partitions == 0 {
            return Err(invalid("queue.partitions", "must be at least 1"));
        }
        let clustered = self.server.role != Role::All || self.queue.partitions > 1;
        if !clustered {
            return Ok(());
        }
        let why = if self.server.role != Role::All {
            "a node with a role other than all"
        } else {
            "more than one queue partition"
        };
        if self.store.engine != StoreEngine::Clickhouse {
            return Err(invalid(
                "store.engine",
                format!("{why} needs the events in ClickHouse (clickhouse)"),
            ));
        }
        if self.queue.engine != QueueEngine::Amqp {
            return Err(invalid(
                "queue.engine",
                format!("{why} needs the queue on RabbitMQ (amqp)"),
            ));
        }
        if self.meta.engine != MetaEngine::Postgres {
            return Err(invalid(
                "meta.engine",
                format!("{why} needs the metadata in PostgreSQL (postgres)"),
            ));
        }
        Ok(())
    }

    /// Settings for a server on `listen` over `data_dir`, everything else at its default.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Settings {
        let mut settings = Settings::default();
        settings.server.listen = listen.to_string();
        settings.server.data_dir = data_dir;
        settings
    }

    /// The DuckDB file.
    pub fn store_path(&self) -> PathBuf {
        if self.store.path.as_os_str().is_empty() {
            self.server.data_dir.join("heartbeat.duckdb")
        } else {
            self.store.path.clone()
        }
    }

    /// The GeoIP database, if one is set.
    pub fn geoip_database(&self) -> Option<&Path> {
        Some(self.geoip.database.as_path()).filter(|p| !p.as_os_str().is_empty())
    }

    /// The effective settings as a configuration file (the admin token withheld).
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        let token = if shown.server.admin_token.is_empty() {
            "# server.admin_token: generated on first start, kept in <data_dir>/admin-token"
        } else {
            shown.server.admin_token.clear();
            "# server.admin_token is set (not shown)"
        };
        shown.meta.url = without_password(&shown.meta.url);
        shown.queue.url = without_password(&shown.queue.url);
        shown.cache.url = without_password(&shown.cache.url);
        shown.store.urls = shown
            .store
            .urls
            .iter()
            .map(|u| without_password(u))
            .collect();
        let text = toml::to_string(&shown).unwrap_or_default();
        // An empty token would read back as "generate one"; leave the key out.
        let text = text.replace("admin_token = \"\"\n", "");
        format!("{token}\n{text}")
    }
}

impl Server {
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            invalid(
                "server.listen",
                format!("{:?} is not an address like 127.0.0.1:3000", self.listen),
            )
        })
    }

    pub fn trusted_proxies(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .map_err(|_| invalid("server.trusted_proxies", format!("{s:?} is not a CIDR")))
            })
            .collect()
    }

    /// The admin key, if one is configured.
    pub fn admin_token(&self) -> Option<&str> {
        Some(self.admin_token.as_str()).filter(|t| !t.is_empty())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_s)
    }
}

impl Query {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn bounds(&self) -> heartbeat_query::QueryBounds {
        heartbeat_query::QueryBounds {
            max_range_days: self.max_range_days,
            max_time_buckets: self.max_time_buckets,
        }
    }
}

impl Limits {
    /// Everything off.
    pub fn off() -> Self {
        Limits {
            enabled: false,
            ..Limits::default()
        }
    }
}

impl AlertSettings {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The base of links in alerts and reports: `public_url`, else `http://` and the address
    /// the server listens on.
    pub fn public_url(&self, listening: SocketAddr) -> String {
        match self.public_url.trim().trim_end_matches('/') {
            "" => format!("http://{listening}"),
            url => url.to_owned(),
        }
    }
}

impl Retention {
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_s)
    }
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
        let settings = resolve(FileConfig::default(), Flags::default(), env(&[])).unwrap();
        assert_eq!(settings.server.listen, DEFAULT_LISTEN);
        assert_eq!(settings.server.data_dir, PathBuf::from("./data"));
        assert_eq!(settings.server.max_body_bytes, 1024 * 1024);
        assert_eq!(settings.log.format, LogFormat::Text);
        assert_eq!(settings.store.engine, StoreEngine::Duckdb);
        assert_eq!(settings.queue.engine, QueueEngine::Wal);
        assert!(settings.notes.is_empty());
    }

    #[test]
    fn flags_and_env_beat_the_file() {
        let from_file = file(
            "[server]\nlisten = \"0.0.0.0:8080\"\ndata_dir = \"/srv/hb\"\nmax_body_bytes = 10\n\
             [log]\nformat = \"json\"\n",
        );
        let settings = resolve(from_file.clone(), Flags::default(), env(&[])).unwrap();
        assert_eq!(settings.server.listen, "0.0.0.0:8080");
        assert_eq!(settings.server.data_dir, PathBuf::from("/srv/hb"));
        assert_eq!(settings.server.max_body_bytes, 10);
        assert_eq!(settings.log.format, LogFormat::Json);
        let mut overrides = Flags::default();
        overrides.server.listen = Some("127.0.0.1:9000".into());
        overrides.server.max_body_bytes = Some(20);
        let settings = resolve(from_file, overrides, env(&[("PORT", "7000")])).unwrap();
        assert_eq!(settings.server.listen, "127.0.0.1:9000");
        assert_eq!(settings.server.max_body_bytes, 20);
        assert_eq!(settings.server.data_dir, PathBuf::from("/srv/hb"));
    }

    #[test]
    fn seed_port_sets_the_port_of_the_configured_address() {
        let from_file = file("[server]\nlisten = \"0.0.0.0:8080\"\n");
        let settings = resolve(from_file, Flags::default(), env(&[("PORT", "4000")])).unwrap();
        assert_eq!(settings.server.listen, "0.0.0.0:4000");
        let bad = resolve(
            FileConfig::default(),
            Flags::default(),
            env(&[("PORT", "x")]),
        );
        assert!(bad.unwrap_err().to_string().starts_with("PORT:"));
    }

    #[test]
    fn roles_need_shared_engines() {
        let cluster = |file: &str| {
            resolve(
                parse_file(Path::new("t.toml"), file).unwrap(),
                Flags::default(),
                env(&[]),
            )
        };
        let err = cluster("[server]\nrole = \"worker\"\n").unwrap_err();
        assert!(err.to_string().starts_with("store.engine:"), "{err}");
        let shared = "[store]\nengine = \"clickhouse\"\nurls = [\"http://ch1:8123/\", \
                      \"http://ch2:8123\"]\n[queue]\nengine = \"amqp\"\n\
                      url = \"amqp://rabbit\"\n[meta]\nengine = \"postgres\"\n\
                      url = \"postgres://pg/hb\"\n";
        let worker = cluster(&format!("{shared}[server]\nrole = \"worker\"\n")).unwrap();
        assert_eq!(worker.server.role, Role::Worker);
        assert_eq!(worker.store.urls, ["http://ch1:8123", "http://ch2:8123"]);
        let none = shared.replace(
            "url = \"amqp://rabbit\"\n",
            "url = \"amqp://rabbit\"\npartitions = 0\n",
        );
        let err = cluster(&none).unwrap_err();
        assert!(err.to_string().starts_with("queue.partitions:"), "{err}");
        let err = cluster("[queue]\npartitions = 4\n").unwrap_err();
        assert!(
            err.to_string().contains("more than one queue partition"),
            "{err}"
        );
        let err = cluster("[store]\nengine = \"clickhouse\"\n").unwrap_err();
        assert!(err.to_string().starts_with("store.urls:"), "{err}");
        let err = cluster("[cache]\nengine = \"redis\"\n").unwrap_err();
        assert!(err.to_string().starts_with("cache.url:"), "{err}");
    }

    #[test]
    fn seed_urls() {
        let settings = resolve(
            FileConfig::default(),
            Flags::default(),
            env(&[
                ("DATABASE_URL", "duckdb:///var/lib/hb/events.duckdb"),
                ("REDIS_URL", "redis://localhost:6379"),
            ]),
        )
        .unwrap();
        assert_eq!(
            settings.store_path(),
            PathBuf::from("/var/lib/hb/events.duckdb")
        );
        assert_eq!(settings.meta.engine, MetaEngine::Duckdb);
        assert!(settings.notes.is_empty(), "{:?}", settings.notes);
        // Seeds 001 to 004 point REDIS_URL at their Redis: the cache and limits go there.
        assert_eq!(settings.cache.engine, CacheEngine::Redis);
        assert_eq!(settings.cache.url, "redis://localhost:6379");

        // Seeds 000 and 004 point DATABASE_URL at PostgreSQL, 000 and 001 RABBITMQ_URL at
        // their broker: the metadata and the queue go there.
        let seeds = resolve(
            FileConfig::default(),
            Flags::default(),
            env(&[
                (
                    "DATABASE_URL",
                    "postgresql://postgres:secret@db:5432/heartbeat",
                ),
                ("RABBITMQ_URL", "amqp://guest:guest@rabbitmq:5672"),
            ]),
        )
        .unwrap();
        assert_eq!(seeds.store_path(), PathBuf::from("./data/heartbeat.duckdb"));
        assert_eq!(seeds.meta.engine, MetaEngine::Postgres);
        assert_eq!(
            seeds.meta.url,
            "postgresql://postgres:secret@db:5432/heartbeat"
        );
        assert_eq!(seeds.queue.engine, QueueEngine::Amqp);
        assert_eq!(seeds.queue.url, "amqp://guest:guest@rabbitmq:5672");
        assert!(!seeds.notes.iter().any(|n| n.contains("secret")));
        let shown = seeds.to_toml();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("postgresql://postgres:***@db:5432/heartbeat"));

        // A URL of the settings' own wins over the seed's variable.
        let own = resolve(
            parse_file(
                Path::new("t.toml"),
                "[meta]\nengine = \"postgres\"\nurl = \"postgres://meta@pg/hb\"\n",
            )
            .unwrap(),
            Flags::default(),
            env(&[("DATABASE_URL", "postgres://other@pg/other")]),
        )
        .unwrap();
        assert_eq!(own.meta.url, "postgres://meta@pg/hb");

        let unknown = resolve(
            FileConfig::default(),
            Flags::default(),
            env(&[("DATABASE_URL", "mysql://root:secret@db/heartbeat")]),
        )
        .unwrap();
        assert_eq!(unknown.meta.engine, MetaEngine::Duckdb);
        assert!(unknown.notes[0].contains("DATABASE_URL (mysql) is ignored"));
        assert!(!unknown.notes[0].contains("secret"));
    }

    #[test]
    fn engines_need_their_urls() {
        for (file, field) in [
            ("[meta]\nengine = \"postgres\"\n", "meta.url"),
            ("[queue]\nengine = \"amqp\"\n", "queue.url"),
            (
                "[queue]\nengine = \"amqp\"\nurl = \"http://rabbit\"\n",
                "queue.url",
            ),
        ] {
            let err = resolve(
                parse_file(Path::new("t.toml"), file).unwrap(),
                Flags::default(),
                env(&[]),
            )
            .unwrap_err();
            assert!(err.to_string().starts_with(field), "{file}: {err}");
        }
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
            Flags::default(),
            env(&[]),
        );
        assert!(bad_listen
            .unwrap_err()
            .to_string()
            .starts_with("server.listen:"));
        let bad_cidr = resolve(
            file("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"nope\"]\n"),
            Flags::default(),
            env(&[]),
        );
        assert!(bad_cidr.unwrap_err().to_string().contains("\"nope\""));
    }

    #[test]
    fn the_example_file_is_valid_and_check_output_parses_back() {
        let example = include_str!("../../../heartbeat.example.toml");
        let settings = resolve(file(example), Flags::default(), env(&[])).unwrap();
        let printed = settings.to_toml();
        let again = resolve(file(&printed), Flags::default(), env(&[])).unwrap();
        assert_eq!(again, settings);
        let mut with_token = settings.clone();
        with_token.server.admin_token = "hb_admin_secret".into();
        assert!(!with_token.to_toml().contains("hb_admin_secret"));
    }

    #[test]
    fn query_budgets_from_file_and_flags() {
        let from_file = file(
            "[query]\ntimeout_ms = 2500\nmax_concurrent = 2\nmax_range_days = 400\n\
             [limits]\nshare_per_ip_per_minute = 30\n",
        );
        let settings = resolve(from_file.clone(), Flags::default(), env(&[])).unwrap();
        assert_eq!(settings.query.timeout(), Duration::from_millis(2500));
        assert_eq!(settings.query.max_concurrent, 2);
        assert_eq!(settings.query.bounds().max_range_days, 400);
        assert_eq!(settings.query.bounds().max_time_buckets, 10_000);
        assert_eq!(settings.limits.share_per_ip_per_minute, 30);
        let mut flags = Flags::default();
        flags.query.timeout_ms = Some(100);
        flags.query.max_time_buckets = Some(500);
        let settings = resolve(from_file, flags, env(&[])).unwrap();
        assert_eq!(settings.query.timeout(), Duration::from_millis(100));
        assert_eq!(settings.query.bounds().max_time_buckets, 500);
        let zero = resolve(
            file("[query]\ntimeout_ms = 0\n"),
            Flags::default(),
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
        let settings = resolve(from_file.clone(), Flags::default(), env(&[])).unwrap();
        assert!(settings.limits.enabled);
        assert_eq!(settings.limits.ingest_per_ip_per_minute, 5);
        let mut off = Flags::default();
        off.limits.enabled = Some(false);
        assert!(!resolve(from_file, off, env(&[])).unwrap().limits.enabled);
        let zero = resolve(
            file("[limits]\nper_key_per_minute = 0\n"),
            Flags::default(),
            env(&[]),
        );
        assert!(zero
            .unwrap_err()
            .to_string()
            .starts_with("limits.per_key_per_minute"));
        let bad_origin = resolve(
            file("[server]\ncors_origins = [\"*\"]\n"),
            Flags::default(),
            env(&[]),
        );
        assert!(bad_origin.is_err());
    }
}

#[cfg(test)]
mod declared_once {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: Flags,
    }

    /// Flags and variables reach the same settings as file keys, each from its one declaration.
    #[test]
    fn flags_variables_and_keys_of_every_setting() {
        let cli = Cli::try_parse_from([
            "heartbeat",
            "--rate-limits",
            "off",
            "--query-max-waiting",
            "7",
            "--trusted-proxies",
            "10.0.0.0/8,192.168.0.0/16",
            "--store",
            "duckdb",
            "--queue",
            "wal",
        ])
        .unwrap();
        let settings = resolve(FileConfig::default(), cli.flags, |_| None).unwrap();
        assert!(!settings.limits.enabled);
        assert_eq!(settings.query.max_waiting, 7);
        assert_eq!(settings.server.trusted_proxies().unwrap().len(), 2);
        let unknown = Cli::try_parse_from(["heartbeat", "--queue", "kafka"]);
        assert!(unknown.is_err(), "engines are checked by tag");
        let from_file = parse_file(
            Path::new("t.toml"),
            "[queue]\nengine = \"wal\"\n[cache]\nengine = \"memory\"\n",
        )
        .unwrap();
        assert_eq!(from_file.queue.engine, Some(QueueEngine::Wal));
        assert!(parse_file(Path::new("t.toml"), "[store]\nengine = \"oracle\"\n").is_err());
    }

    /// The README's table and the example file name every setting.
    #[test]
    fn every_setting_is_documented() {
        let readme = include_str!("../../../README.md");
        let example = include_str!("../../../heartbeat.example.toml");
        for setting in SETTINGS {
            assert!(
                readme.contains(&format!("`{}`", setting.flag))
                    || readme.contains(&format!("`{} ", setting.flag)),
                "README lacks {}",
                setting.flag
            );
            assert!(readme.contains(setting.env), "README lacks {}", setting.env);
            assert!(
                example.contains(setting.key),
                "heartbeat.example.toml lacks {}",
                setting.key
            );
            assert!(
                !setting.doc.is_empty(),
                "{} has no documentation",
                setting.key
            );
        }
    }
}
