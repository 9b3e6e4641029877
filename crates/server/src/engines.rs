//! Opening the engines the settings name, each behind its trait, so that nothing after
//! start-up knows which engine it talks to: the event store (DuckDB or a ClickHouse
//! cluster), the queue (the embedded write-ahead log, or RabbitMQ streams: one per
//! partition), the metadata with the alerting data (beside the events in DuckDB, or in
//! PostgreSQL) and the cache (in the process, or Redis).

use std::sync::Arc;

use anyhow::Context;
use heartbeat_meta_postgres::{PostgresMetaStore, PostgresOptions};
use heartbeat_query::SqlRunner;
use heartbeat_queue::{EventQueue, WalConfig, WalQueue};
use heartbeat_queue_amqp::{AmqpOptions, AmqpQueue};
use heartbeat_shared_redis::{RedisOptions, RedisShared};
use heartbeat_store::{AlertStore, EventData, EventWriter, MetaStore};
use heartbeat_store_clickhouse::{ClickHouseOptions, ClickHouseStore};
use heartbeat_store_duckdb::DuckDbStore;

use crate::config::{CacheEngine, MetaEngine, QueueEngine, Settings, StoreEngine};
use crate::priority;

/// The event store, open.
#[derive(Clone)]
pub enum EventStore {
    Duckdb(DuckDbStore),
    ClickHouse(ClickHouseStore),
}

impl EventStore {
    /// The queries' side.
    pub fn reads(&self) -> Arc<dyn SqlRunner> {
        match self {
            EventStore::Duckdb(store) => Arc::new(store.clone()),
            EventStore::ClickHouse(store) => Arc::new(store.clone()),
        }
    }

    /// The processor's side, for the whole queue (one partition).
    pub fn writes(&self) -> Arc<dyn EventWriter> {
        match self {
            EventStore::Duckdb(store) => Arc::new(store.clone()),
            EventStore::ClickHouse(store) => Arc::new(store.clone()),
        }
    }

    /// Data in, out and deleted.
    pub fn data(&self) -> Arc<dyn EventData> {
        match self {
            EventStore::Duckdb(store) => Arc::new(store.clone()),
            EventStore::ClickHouse(store) => Arc::new(store.clone()),
        }
    }
}

/// The engines of one node, open.
pub struct Engines {
    /// The event store (events, visits, rollups, imports).
    pub store: EventStore,
    /// The queue: one per partition (`queue.partitions`), in partition order.
    pub queues: Vec<Arc<dyn EventQueue>>,
    pub meta: Arc<dyn MetaStore>,
    pub alerts: Arc<dyn AlertStore>,
    /// The write-ahead log, when it is the queue: closed last, once the processor stopped
    /// (a broker's queue needs nothing).
    pub wal: Option<Arc<WalQueue>>,
    /// Redis, when it keeps the cache and the limits' state.
    pub shared: Option<RedisShared>,
}

/// The RabbitMQ stream of partition `index`: the queue's own name when there is one.
pub fn stream_name(config: &Settings, index: u32) -> String {
    if config.queue.partitions <= 1 {
        config.queue.name.clone()
    } else {
        format!("{}.{index}", config.queue.name)
    }
}

/// Opens the RabbitMQ stream of partition `index`.
pub async fn open_stream(config: &Settings, index: u32) -> anyhow::Result<AmqpQueue> {
    let options = AmqpOptions {
        max_pending_messages: Some(config.queue.max_pending_messages),
        max_message_bytes: config.server.max_body_bytes.max(1024 * 1024) * 4,
        ..AmqpOptions::default()
    };
    let name = stream_name(config, index);
    AmqpQueue::open(&config.queue.url, &name, options)
        .await
        .with_context(|| format!("cannot open the queue {name:?} on RabbitMQ"))
}

impl Engines {
    pub async fn open(config: &Settings) -> anyhow::Result<Engines> {
        let store = match config.store.engine {
            StoreEngine::Duckdb => {
                let store = open_duckdb(config)?;
                check_queue_identity(config, &store).await?;
                EventStore::Duckdb(store)
            }
            StoreEngine::Clickhouse => EventStore::ClickHouse(open_clickhouse(config).await?),
        };
        let (queues, wal): (Vec<Arc<dyn EventQueue>>, _) = match config.queue.engine {
            QueueEngine::Wal => {
                let mut wal_config = WalConfig::new(config.server.data_dir.join("wal"));
                wal_config.max_pending_bytes = config.queue.max_pending_bytes;
                // One read is one processor step.
                wal_config.max_read_bytes = config.processor.max_batch_bytes as u64;
                let wal = Arc::new(
                    WalQueue::open(wal_config).context("cannot open the write-ahead log")?,
                );
                (vec![wal.clone()], Some(wal))
            }
            QueueEngine::Amqp => {
                let mut queues: Vec<Arc<dyn EventQueue>> = Vec::new();
                for index in 0..config.queue.partitions {
                    queues.push(Arc::new(open_stream(config, index).await?));
                }
                tracing::info!(
                    stream = %config.queue.name,
                    partitions = config.queue.partitions,
                    "queue: RabbitMQ streams"
                );
                (queues, None)
            }
        };
        let (meta, alerts): (Arc<dyn MetaStore>, Arc<dyn AlertStore>) = match config.meta.engine {
            MetaEngine::Duckdb => {
                let EventStore::Duckdb(store) = &store else {
                    anyhow::bail!(
                        "meta.engine = \"duckdb\" keeps the metadata beside DuckDB's events: \
                         with the events in ClickHouse, keep it in PostgreSQL \
                         (meta.engine = \"postgres\")"
                    );
                };
                (Arc::new(store.clone()), Arc::new(store.clone()))
            }
            MetaEngine::Postgres => {
                let options = PostgresOptions {
                    pool_size: config.meta.pool_size,
                    ..PostgresOptions::default()
                };
                let postgres = Arc::new(
                    PostgresMetaStore::connect(&config.meta.url, options)
                        .await
                        .context("cannot open the metadata store in PostgreSQL")?,
                );
                tracing::info!("metadata: PostgreSQL");
                (postgres.clone(), postgres)
            }
        };
        let shared = match config.cache.engine {
            CacheEngine::Memory => None,
            CacheEngine::Redis => {
                let redis = RedisShared::connect(&config.cache.url, RedisOptions::default())
                    .await
                    .context("cannot reach the cache on Redis")?;
                tracing::info!("cache and limits: Redis");
                Some(redis)
            }
        };
        Ok(Engines {
            store,
            queues,
            meta,
            alerts,
            wal,
            shared,
        })
    }
}

async fn open_clickhouse(config: &Settings) -> anyhow::Result<ClickHouseStore> {
    let mut options = ClickHouseOptions::new(
        config.store.urls.clone(),
        &config.store.cluster,
        &config.store.database,
    );
    options.query_timeout = config.query.timeout();
    options.max_result_bytes = config.query.max_memory_bytes;
    let store = ClickHouseStore::open(options).await.with_context(|| {
        format!(
            "cannot open the event store in ClickHouse (cluster {:?}, database {:?})",
            config.store.cluster, config.store.database
        )
    })?;
    tracing::info!(shards = config.store.urls.len(), "events: ClickHouse");
    Ok(store)
}

fn open_duckdb(config: &Settings) -> anyhow::Result<DuckDbStore> {
    let store_path = config.store_path();
    // DuckDB starts its worker threads when the database opens, and a thread inherits its
    // creator's priority: opened from a thread at the processors' priority, its workers sit
    // below the threads that serve ingest and /health, and level with the processor's writer.
    // A checkpoint in the writer's commit busy-waits for the tasks workers took
    // (`TaskExecutor::WorkOnTasks` in DuckDB 1.4); workers at the idle priority barely ran
    // while other threads kept the cores busy: beside one busy core the processor stored
    // 5.7 k events/s with them, 25.8 k with workers at nice 5 (docs/benchmarks.md, 2026-12-07).
    let store = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                priority::processor_priority();
                DuckDbStore::open_with_memory_limit(
                    &store_path,
                    Some(config.store.memory_limit.as_str()).filter(|m| !m.is_empty()),
                )
            })
            .join()
            .map_err(|_| anyhow::anyhow!("opening the event store panicked"))
    })?
    .with_context(|| format!("cannot open the event store {}", store_path.display()))?;
    Ok(store.with_max_result_bytes(config.query.max_memory_bytes))
}

/// Which queue the store's queue position counts in: `wal`, or `amqp:` and the stream's name.
fn queue_identity(config: &Settings) -> String {
    match config.queue.engine {
        QueueEngine::Wal => "wal".to_owned(),
        QueueEngine::Amqp => format!("amqp:{}", config.queue.name),
    }
}

/// The store keeps the position of the last queue message it stored, in that queue's own
/// numbers: read against another queue it would skip or repeat messages. The data dir
/// remembers which queue the store follows (`queue-identity`; a store from before this file
/// has followed the write-ahead log), and a node configured with another queue does not
/// start.
async fn check_queue_identity(config: &Settings, store: &DuckDbStore) -> anyhow::Result<()> {
    use heartbeat_store::EventWriter;
    let path = config.server.data_dir.join("queue-identity");
    let wanted = queue_identity(config);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let followed = match recorded {
        Some(recorded) => Some(recorded),
        None => store
            .queue_position()
            .await
            .context("cannot read the store's queue position")?
            .map(|_| "wal".to_owned()),
    };
    match followed {
        Some(followed) if followed != wanted => anyhow::bail!(
            "the event store in {} follows the queue {followed:?}, not {wanted:?}: its queue \
             position means nothing in another queue. A store follows one queue for life: \
             start a node with the new queue on a new data dir and move the events with \
             `heartbeat export` and `heartbeat import`",
            config.server.data_dir.display()
        ),
        Some(_) => Ok(()),
        None => std::fs::write(&path, format!("{wanted}\n"))
            .with_context(|| format!("cannot write {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_of_the_write_ahead_log_is_one_processor_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Settings::new("127.0.0.1:0".parse().unwrap(), dir.path().to_owned());
        config.processor.max_batch_bytes = 123_456;
        let engines = Engines::open(&config).await.unwrap();
        let wal = engines
            .wal
            .expect("the write-ahead log is the default queue");
        assert_eq!(wal.config().max_read_bytes, 123_456);
    }
}
