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
mod shared_versions;
mod site_deletion;
pub mod telemetry;
pub mod transfer;
mod umami_export;

pub use heartbeat_accounts::{password, registry};
pub use jobs::{backup, partitions, retention};

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
    telemetry::prometheus();
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data dir {}",
            config.server.data_dir.display()
        )
    })?;
    let role = config.server.role;
    let engines::Engines {
        store,
        queues,
        meta,
        alerts: alert_store,
        wal,
        shared,
    } = engines::Engines::open(&config).await?;
    let admin_token = admin_token(&config)?;
    let duckdb_store = match &store {
        engines::EventStore::Duckdb(duckdb) => Some(duckdb.clone()),
        engines::EventStore::ClickHouse(_) => None,
    };
    let backup = Arc::new(backup::Backup {
        store: duckdb_store.clone(),
        data_dir: config.server.data_dir.clone(),
        store_path: config.store_path(),
    });
    let metered_queues: Vec<Arc<telemetry::MeteredQueue>> = queues
        .into_iter()
        .map(|queue| Arc::new(telemetry::MeteredQueue::new(queue)))
        .collect();
    let partition_queues: Vec<Arc<dyn EventQueue>> = metered_queues
        .iter()
        .map(|queue| queue.clone() as Arc<dyn EventQueue>)
        .collect();
    let queue = partition_queues[0].clone();
    // The store in its three parts, each taken by what needs it: the processor's writes and
    // the queries' reads timed, data in, out and deleted as they are. With Redis, the data
    // versions cached answers check are the ones every node shares.
    let versions = shared.as_ref().map(|redis| redis.follow_versions());
    let engine_reads = match &versions {
        Some(versions) => Arc::new(shared_versions::SharedVersionReads::new(
            store.reads(),
            versions.clone(),
        )) as Arc<dyn SqlRunner>,
        None => store.reads(),
    };
    let reads: Arc<dyn SqlRunner> = Arc::new(telemetry::MeteredReads::new(engine_reads));
    let with_shared_versions = |writes: Arc<dyn EventWriter>| -> Arc<dyn EventWriter> {
        match &shared {
            Some(redis) => Arc::new(shared_versions::SharedVersionWrites {
                inner: writes,
                shared: redis.clone(),
            }),
            None => writes,
        }
    };
    let data: Arc<dyn EventData> = match &shared {
        Some(redis) => Arc::new(shared_versions::SharedVersionWrites {
            inner: store.data(),
            shared: redis.clone(),
        }),
        None => store.data(),
    };
    // Answers are reused while their site's data version holds: a ClickHouse cluster's
    // writers are other processes, whose changes only shared versions (Redis) tell of.
    let mut query_settings = config.query.clone();
    if matches!(store, engines::EventStore::ClickHouse(_)) && versions.is_none() {
        query_settings.cache_entries = 0;
        tracing::info!("query cache off: the events are in ClickHouse and no cache.engine = \"redis\" shares their versions");
    }
    let shared_meta = config.meta.engine == config::MetaEngine::Postgres;
    let goals = Arc::new(heartbeat_accounts::goals::Goals::load(meta.clone()).await?);
    let registry = Arc::new(registry::Registry::load(meta.clone(), &admin_token).await?);
    let ingestor = Ingestor::new(
        registry.clone(),
        queue.clone(),
        &config.server.data_dir,
        IngestConfig::default(),
    )
    .context("cannot open the salts")?
    .with_partitions(partition_queues.clone());
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
    let site_check: heartbeat_processor::SiteCheck =
        Arc::new(move |site| site_directory.has_site(site));
    // Where nodes share the directory, a site another node just created is read before its
    // events could be taken for a deleted site's.
    let site_refresh: heartbeat_processor::SiteRefresh = {
        let registry = registry.clone();
        Arc::new(move || {
            let registry = registry.clone();
            Box::pin(async move {
                if let Err(err) = registry.reload().await {
                    tracing::warn!(%err, "cannot read the sites again");
                }
            })
        })
    };
    let processor_config = ProcessorConfig {
        max_open_visits: config.processor.max_open_visits,
        dedup_max_bytes: config.processor.dedup_max_bytes,
        max_batch_bytes: config.processor.max_batch_bytes.max(1),
        stop_grace: std::time::Duration::from_millis(config.processor.stop_grace_ms),
        ..ProcessorConfig::default()
    };
    let (stop, mut http_stop) = watch::channel(false);
    // Who stores the events: one processor over the whole queue, or, where the workers of
    // a ClickHouse cluster share the partitions out, this node's share of them.
    let stores_events = matches!(role, config::Role::All | config::Role::Worker);
    let leased = shared_meta
        && config.queue.engine == config::QueueEngine::Amqp
        && matches!(store, engines::EventStore::ClickHouse(_));
    let mut processors = Processors::None;
    let reports = if stores_events && !leased {
        let processor = Processor::start(
            queue.clone(),
            with_shared_versions(Arc::new(telemetry::MeteredWrites::new(store.writes()))),
            &config.server.data_dir,
            processor_config,
        )
        .await?
        .with_site_check(site_check);
        let processor = if shared_meta {
            processor.with_site_refresh(site_refresh)
        } else {
            processor
        };
        let reports = partitions::Reports {
            stats: processor.stats(),
            stored: processor.subscribe(),
            deletions: processor.deletions(),
        };
        processors = Processors::One(partitions::ProcessorThread::spawn(
            "heartbeat-processor".into(),
            processor,
        )?);
        reports
    } else {
        let reports = partitions::Reports {
            stats: Arc::new(heartbeat_processor::ProcessorStats::default()),
            stored: tokio::sync::broadcast::channel(128).0,
            deletions: tokio::sync::broadcast::channel(64).0,
        };
        if let (true, engines::EventStore::ClickHouse(clickhouse)) = (stores_events, &store) {
            let worker = partitions::PartitionWorker {
                settings: config.clone(),
                store: clickhouse.clone(),
                data_dir: config.server.data_dir.clone(),
                processor: ProcessorConfig {
                    drain_on_stop: false,
                    ..processor_config
                },
                site_check,
                site_refresh,
                // The live streams of a node holding some of the partitions read every
                // partition's events back from the store (`live::follow`), not this node's.
                reports: partitions::Reports {
                    stored: tokio::sync::broadcast::channel(1).0,
                    ..reports.clone()
                },
                shared: shared.clone(),
            };
            processors = Processors::Partitions(tokio::spawn(worker.run(stop.subscribe())));
        }
        reports
    };
    let serves_api = matches!(role, config::Role::All | config::Role::Api);
    // Live streams read the events back from the store where this node's processors do not
    // store all of them.
    let follower = (serves_api && (!stores_events || leased)).then(|| {
        tokio::spawn(live::follow::run(
            data.clone(),
            reports.stored.clone(),
            stop.subscribe(),
        ))
    });
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
        queues: partition_queues.clone(),
        done: reports.deletions.clone(),
        // Only a node whose one processor stores the whole queue sees the deletion done.
        wait: if matches!(processors, Processors::One(_)) {
            site_deletion::WAIT
        } else {
            std::time::Duration::ZERO
        },
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
    let limits = limits::Limits::new(config.limits.clone());
    let app = App::new(AppParts {
        backup,
        registry: registry.clone(),
        goals,
        alerting,
        ingestor,
        reads,
        site_deletion,
        data: data.clone(),
        telemetry: telemetry::Telemetry {
            processor: reports.stats.clone(),
            queue: metered_queues[0].clone(),
            duckdb: duckdb_store.clone(),
        },
        trusted_proxies: Arc::new(config.server.trusted_proxies()?),
        max_body_bytes: config.server.max_body_bytes,
        query_cache: Arc::new(query_cache::QueryCache::new(query_settings.cache_entries)),
        queries: Arc::new(
            query_pool::QueryPool::new(query_settings).context("cannot start the query threads")?,
        ),
        live: live::hub::LiveHub {
            stored: reports.stored.clone(),
            shutdown: stop.subscribe(),
        },
        limits: Arc::new(match &shared {
            Some(redis) => limits.with_shared(redis.clone()),
            None => limits,
        }),
        secure_cookies: config.server.secure_cookies,
    });
    if !config.limits.enabled {
        tracing::warn!("rate limits and quotas are off");
    }
    // Alert rules, deliveries, reports and retention: on this node alone, or, where nodes
    // share their metadata, on the one node holding the jobs' lease.
    let start_jobs: jobs::leader::StartJobs = {
        let (app, outbox, registry, data) =
            (app.clone(), outbox.clone(), registry.clone(), data.clone());
        let (alerts_every, retention_every) =
            (config.alerts.interval(), config.retention.interval());
        Box::new(move |stop: watch::Receiver<bool>| {
            vec![
                tokio::spawn(retention::run(
                    registry.clone(),
                    data.clone(),
                    retention_every,
                    stop.clone(),
                )),
                tokio::spawn(outbox.clone().run(stop.clone())),
                tokio::spawn(alerting::evaluator::run(app.clone(), alerts_every, stop)),
            ]
        })
    };
    let jobs_tasks: Vec<tokio::task::JoinHandle<()>> = match (serves_api, shared_meta) {
        (false, _) => Vec::new(),
        (true, false) => start_jobs(stop.subscribe()),
        (true, true) => vec![tokio::spawn(jobs::leader::run(
            config.meta.url.clone(),
            format!("{}.jobs", config.queue.name),
            start_jobs,
            stop.subscribe(),
        ))],
    };
    tracing::info!(addr = %local_addr, role = ?role, data_dir = %config.server.data_dir.display(), "heartbeat is ready");
    if let Some(duckdb) = &duckdb_store {
        // Only now: each day of a rebuild holds the writer, which starting reads from. At
        // the processors' priority: it holds the writer they wait for.
        duckdb
            .start_rollup_rebuild(priority::processor_priority)
            .context("cannot start the rollup rebuild")?;
    }
    let router = router::router(
        app,
        &config.server.cors_origins,
        config.server.request_timeout(),
        role,
    )
    .into_make_service_with_connect_info::<SocketAddr>();
    let done = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .await
            .context("http server failed")?;
        for task in jobs_tasks.into_iter().chain(follower) {
            let _ = task.await;
        }
        for task in shared_tasks.into_iter().flatten() {
            let _ = task.await;
        }
        // The processors stop only after the HTTP server has, so they store every request
        // that was accepted.
        match processors {
            Processors::One(thread) => thread.stop().await?,
            Processors::Partitions(worker) => worker.await.context("partition worker failed")?,
            Processors::None => {}
        }
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

/// The processors a node runs.
enum Processors {
    /// Not a node that stores events.
    None,
    /// One processor over the whole queue.
    One(partitions::ProcessorThread),
    /// This worker's share of the partitions.
    Partitions(tokio::task::JoinHandle<()>),
}
