//! The Heartbeat server: wires the queue, the store, the processor and the HTTP routes into
//! one process, and shuts them down in order (stop accepting, drain the queue, flush the
//! store).

mod alerting;
mod allocator;
mod api;
mod compat;
pub mod config;
mod csv_file;
mod engines;
mod event_json;
mod goal_json;
mod http;
mod jobs;
pub mod limits;
mod live;
mod plausible_export;
mod priority;
mod query_cache;
pub mod query_pool;
mod router;
mod site_deletion;
pub mod telemetry;
pub mod transfer;
mod umami_export;

pub use heartbeat_accounts::{password, registry};
pub use jobs::{backup, retention};

/// The country database the web build brings, when it ran before this build (see
/// `build.rs`).
mod bundled_geoip {
    include!(concat!(env!("OUT_DIR"), "/bundled_geoip.rs"));
}

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use heartbeat_ingest::{enrich::geo::GeoIp, IngestConfig, Ingestor};
use heartbeat_processor::{Processor, ProcessorConfig};
use heartbeat_query::SqlRunner;
use heartbeat_queue::EventQueue;
use heartbeat_store::{EventData, EventWriter};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Settings;
pub use http::state::{App, AppParts};

/// The CPU priority (`nice`) of the processor's threads: below the request threads (0),
/// above the reads (`SCHED_IDLE`, [`priority::idle_priority`]).
const PROCESSOR_NICE: i32 = 5;

/// The admin token: from the config, else from `admin-token` in the data dir, else a new
/// one written there and printed once.
fn admin_token(config: &Settings) -> anyhow::Result<String> {
    if let Some(token) = config.server.admin_token() {
        return Ok(token.to_owned());
    }
    let path = config.server.data_dir.join("admin-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_owned());
    }
    let token = registry::new_secret("hb_admin_");
    std::fs::write(&path, &token).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    println!(
        "Generated admin token (kept in {}): {token}",
        path.display()
    );
    Ok(token)
}

/// A started server.
pub struct Running {
    pub local_addr: SocketAddr,
    pub admin_token: String,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, drains the queue, flushes the store and waits for all of it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.done.await.context("server task panicked")?
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("server task panicked")?
    }

    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Opens the data dir, recovers, binds and serves in the background.
pub async fn start(config: Settings) -> anyhow::Result<Running> {
    allocator::spawn_trimmer();
    telemetry::prometheus();
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data dir {}",
            config.server.data_dir.display()
        )
    })?;
    let engines::Engines {
        store,
        queue: engine_queue,
        meta,
        alerts: alert_store,
        wal,
    } = engines::Engines::open(&config).await?;
    let admin_token = admin_token(&config)?;
    let backup = Arc::new(backup::Backup {
        store: store.clone(),
        data_dir: config.server.data_dir.clone(),
        store_path: config.store_path(),
    });
    let metered_queue = Arc::new(telemetry::MeteredQueue::new(engine_queue));
    let queue: Arc<dyn EventQueue> = metered_queue.clone();
    // The store in its three parts, each taken by what needs it: the processor's writes and
    // the queries' reads timed, data in, out and deleted as they are.
    let engine = Arc::new(store.clone());
    let writes: Arc<dyn EventWriter> = Arc::new(telemetry::MeteredWrites::new(engine.clone()));
    let reads: Arc<dyn SqlRunner> = Arc::new(telemetry::MeteredReads::new(engine.clone()));
    let data: Arc<dyn EventData> = engine;
    let shared_meta = config.meta.engine == config::MetaEngine::Postgres;
    let goals = Arc::new(heartbeat_accounts::goals::Goals::load(meta.clone()).await?);
    let registry = Arc::new(registry::Registry::load(meta.clone(), &admin_token).await?);
    let ingestor = Ingestor::new(
        registry.clone(),
        queue.clone(),
        &config.server.data_dir,
        IngestConfig::default(),
    )
    .context("cannot open the salts")?;
    let ingestor = match config.geoip_database() {
        Some(path) => {
            let geoip = GeoIp::open(path)?;
            tracing::info!(path = %path.display(), kind = geoip.database_type(), "GeoIP database loaded");
            ingestor.with_geoip(geoip)
        }
        // Countries out of the box: the country database the web build bundles.
        None => match bundled_geoip::BUNDLED_COUNTRY_DB {
            Some(bytes) => {
                let geoip = GeoIp::embedded("the bundled country database", bytes)?;
                tracing::info!(
                    kind = geoip.database_type(),
                    "GeoIP: the bundled country database (ip-location-db, CC BY 4.0 by the NRO); \
                     --geoip-db takes a city database"
                );
                ingestor.with_geoip(geoip)
            }
            None => {
                tracing::info!("no GeoIP database (--geoip-db): locations stay empty");
                ingestor
            }
        },
    };
    // Nodes sharing their metadata share the visitor-id salts too, agreed on before the
    // first request is served.
    let ingestor = Arc::new(if shared_meta {
        let ingestor = ingestor.with_shared_salts();
        jobs::salts::agree(meta.as_ref(), &ingestor)
            .await
            .context("cannot agree on the visitor-id salts in the metadata store")?;
        ingestor
    } else {
        ingestor
    });
    let site_directory = registry.clone();
    let processor = Processor::start(
        queue.clone(),
        writes,
        &config.server.data_dir,
        ProcessorConfig {
            max_open_visits: config.processor.max_open_visits,
            dedup_max_bytes: config.processor.dedup_max_bytes,
            ..ProcessorConfig::default()
        },
    )
    .await?
    .with_site_check(Arc::new(move |site| site_directory.has_site(site)));
    let (stop, mut http_stop) = watch::channel(false);
    let retention_task = tokio::spawn(retention::run(
        registry.clone(),
        data.clone(),
        config.retention.interval(),
        stop.subscribe(),
    ));
    let alert_directory = Arc::new(alerting::Directory::load(alert_store.clone()).await?);
    // Metadata other nodes write too is read again now and then, and the salts agreed on.
    let shared_tasks = shared_meta.then(|| {
        [
            tokio::spawn(jobs::refresh::run(
                jobs::refresh::Directories {
                    registry: registry.clone(),
                    goals: goals.clone(),
                    alerts: alert_directory.clone(),
                },
                std::time::Duration::from_millis(config.meta.refresh_ms),
                stop.subscribe(),
            )),
            tokio::spawn(jobs::salts::run(
                meta.clone(),
                ingestor.clone(),
                stop.subscribe(),
            )),
        ]
    });
    let site_deletion = site_deletion::SiteDeletion {
        registry: registry.clone(),
        goals: goals.clone(),
        alerts: alert_directory.clone(),
        queue: queue.clone(),
        done: processor.deletions(),
    };
    let listen = config.server.listen_addr()?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local_addr = listener.local_addr()?;
    let outbox = Arc::new(alerting::Outbox::new(
        alert_directory.clone(),
        alert_store,
        alerting::email::Mailer::new(&config.smtp)?,
        config.alerts.clone(),
    )?);
    let alerting = Arc::new(alerting::Alerting {
        directory: alert_directory,
        outbox: outbox.clone(),
        public_url: config.alerts.public_url(local_addr),
        allow_private_targets: config.alerts.allow_private_targets,
    });
    let app = App::new(AppParts {
        backup,
        registry,
        goals,
        alerting,
        ingestor,
        reads,
        site_deletion,
        data,
        telemetry: telemetry::Telemetry {
            processor: processor.stats(),
            queue: metered_queue,
        },
        trusted_proxies: Arc::new(config.server.trusted_proxies()?),
        max_body_bytes: config.server.max_body_bytes,
        query_cache: Arc::new(query_cache::QueryCache::new(config.query.cache_entries)),
        queries: Arc::new(
            query_pool::QueryPool::new(config.query.clone())
                .context("cannot start the query threads")?,
        ),
        live: live::hub::LiveHub {
            stored: processor.subscribe(),
            shutdown: stop.subscribe(),
        },
        limits: Arc::new(limits::Limits::new(config.limits.clone())),
        secure_cookies: config.server.secure_cookies,
    });
    if !config.limits.enabled {
        tracing::warn!("rate limits and quotas are off");
    }
    // The processor stops only after the HTTP server has, so it drains every request that
    // was accepted.
    let (processor_stop, processor_stop_rx) = watch::channel(false);
    // The processor decodes, deduplicates and sessionizes whole batches: CPU work that gets
    // its own thread and runtime so it never holds up request handling. It runs (with the
    // blocking threads its store calls take) between the request threads and the reads in
    // CPU priority: acknowledged events are durable already, storing them can wait a moment.
    let processor_task = std::thread::Builder::new()
        .name("heartbeat-processor".into())
        .spawn(move || -> anyhow::Result<()> {
            priority::lower_priority(PROCESSOR_NICE);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .on_thread_start(|| priority::lower_priority(PROCESSOR_NICE))
                .enable_all()
                .build()?;
            Ok(runtime.block_on(processor.run(processor_stop_rx))?)
        })
        .context("cannot start the processor thread")?;
    let outbox_task = tokio::spawn(outbox.run(stop.subscribe()));
    let alerts_task = tokio::spawn(alerting::evaluator::run(
        app.clone(),
        config.alerts.interval(),
        stop.subscribe(),
    ));
    tracing::info!(addr = %local_addr, data_dir = %config.server.data_dir.display(), "heartbeat is ready");
    let router = router::router(
        app,
        &config.server.cors_origins,
        config.server.request_timeout(),
    )
    .into_make_service_with_connect_info::<SocketAddr>();
    let done = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .await
            .context("http server failed")?;
        let _ = retention_task.await;
        for task in shared_tasks.into_iter().flatten() {
            let _ = task.await;
        }
        let _ = alerts_task.await;
        let _ = outbox_task.await;
        let _ = processor_stop.send(true);
        tokio::task::spawn_blocking(move || processor_task.join())
            .await
            .context("processor join failed")?
            .map_err(|_| anyhow::anyhow!("processor panicked"))??;
        if let Some(wal) = wal {
            tokio::task::spawn_blocking(move || wal.close())
                .await
                .context("closing the log panicked")?;
        }
        tracing::info!("heartbeat stopped");
        Ok(())
    });
    Ok(Running {
        local_addr,
        admin_token,
        stop,
        done,
    })
}
