//! The processors of a node, and how the workers of a cluster share the queue's partitions.
//!
//! A node that stores events runs one processor per queue partition it holds, each on its
//! own thread. On one machine (DuckDB, or any store without shared metadata) that is one
//! processor over the whole queue. In a cluster (`store.engine = "clickhouse"` with the
//! metadata in PostgreSQL) the workers share the partitions out through leases
//! ([`heartbeat_meta_postgres::Leases`]): every second each worker counts the members and
//! holds its share, `ceil(partitions / members)`, giving up partitions above its share (its
//! processor ends the step under way first) and taking free ones below it. A worker that
//! dies loses its leases with its PostgreSQL connection, and the others take its partitions
//! over within a second or two: the new holder resumes from the position the store
//! committed, rolling back a half-written insert, so every acknowledged event is stored
//! once.
//!
//! Fencing: each insert of a partition's processor first asks PostgreSQL whether this node
//! still holds the partition's lease, and a worker that takes a partition waits
//! [`TAKEOVER_DELAY`] before its processor starts, so a holder that lost its lease (and not
//! its life, as in a network split) has finished the one insert it may have been in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use heartbeat_meta_postgres::Leases;
use heartbeat_model::SiteId;
use heartbeat_processor::{
    Processor, ProcessorConfig, ProcessorStats, SiteCheck, SiteDeleted, SiteRefresh,
};
use heartbeat_queue::EventQueue;
use heartbeat_store::{Deleted, EventWriter, InsertBatch, StoreError, StoredVisit};
use heartbeat_store_clickhouse::{ClickHouseStore, Partition};
use tokio::sync::{broadcast, watch};

use crate::config::Settings;
use crate::priority;

/// How long a worker waits between taking a partition and starting its processor.
pub const TAKEOVER_DELAY: Duration = Duration::from_secs(2);

/// How often a worker looks at the members and its share.
const BALANCE_EVERY: Duration = Duration::from_secs(1);

/// What the processors of one node report into, whichever partitions they store.
#[derive(Clone)]
pub struct Reports {
    pub stats: Arc<ProcessorStats>,
    pub stored: broadcast::Sender<Arc<InsertBatch>>,
    pub deletions: broadcast::Sender<SiteDeleted>,
}

/// A processor running on its own thread.
pub struct ProcessorThread {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl ProcessorThread {
    /// Runs `processor` on a thread of its own at the processors' priority: it decodes,
    /// deduplicates and sessionizes whole batches, CPU work that must never hold up request
    /// handling.
    pub fn spawn(name: String, processor: Processor) -> anyhow::Result<ProcessorThread> {
        let (stop, stop_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || -> anyhow::Result<()> {
                priority::processor_priority();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .on_thread_start(priority::processor_priority)
                    .enable_all()
                    .build()?;
                Ok(runtime.block_on(processor.run(stop_rx))?)
            })
            .context("cannot start a processor thread")?;
        Ok(ProcessorThread { stop, thread })
    }

    fn has_ended(&self) -> bool {
        self.thread.is_finished()
    }

    /// Asks the processor to stop and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .context("processor join failed")?
            .map_err(|_| anyhow::anyhow!("processor panicked"))?
    }
}

/// A worker's share of the cluster's partitions.
pub struct PartitionWorker {
    pub settings: Settings,
    pub store: ClickHouseStore,
    pub data_dir: PathBuf,
    pub processor: ProcessorConfig,
    pub site_check: SiteCheck,
    pub site_refresh: SiteRefresh,
    pub reports: Reports,
    /// Redis, when the nodes share data versions through it.
    pub shared: Option<heartbeat_shared_redis::RedisShared>,
}

impl PartitionWorker {
    /// Holds this worker's share of partitions until `stop`, then ends their processors.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let partitions = self.settings.queue.partitions;
        let mut held: BTreeMap<u32, ProcessorThread> = BTreeMap::new();
        let mut leases: Option<Arc<Leases>> = None;
        let mut backoff = Duration::from_millis(250);
        while !*stop.borrow() {
            if leases.as_ref().is_none_or(|l| l.is_lost()) {
                if leases.take().is_some() {
                    tracing::warn!("the partition leases are lost: stopping their processors");
                }
                stop_all(&mut held).await;
                match Leases::join(&self.settings.meta.url, &self.settings.queue.name).await {
                    Ok(joined) => {
                        leases = Some(Arc::new(joined));
                        backoff = Duration::from_millis(250);
                    }
                    Err(err) => {
                        tracing::warn!(%err, "cannot join the workers in PostgreSQL; retrying");
                        pause(&mut stop, backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            let lease_set = leases.clone().expect("joined above");
            if let Err(err) = self.balance(&lease_set, &mut held, partitions).await {
                tracing::warn!(%err, "sharing out the queue partitions failed; trying again");
            }
            pause(&mut stop, BALANCE_EVERY).await;
        }
        stop_all(&mut held).await;
        tracing::info!("partition worker stopped");
    }

    /// One look at the members: processors that ended give their partition up, a share
    /// above `ceil(partitions / members)` is given up, one below is filled from free
    /// partitions.
    async fn balance(
        &self,
        leases: &Arc<Leases>,
        held: &mut BTreeMap<u32, ProcessorThread>,
        partitions: u32,
    ) -> anyhow::Result<()> {
        let ended: Vec<u32> = held
            .iter()
            .filter(|(_, thread)| thread.has_ended())
            .map(|(p, _)| *p)
            .collect();
        for partition in ended {
            if let Some(thread) = held.remove(&partition) {
                if let Err(err) = thread.stop().await {
                    tracing::error!(partition, %err, "a partition's processor failed");
                }
            }
            leases.release(partition).await?;
        }
        let members = leases.members().await?;
        let share = partitions.div_ceil(members) as usize;
        while held.len() > share {
            let Some((partition, thread)) = held.pop_last() else {
                break;
            };
            if let Err(err) = thread.stop().await {
                tracing::error!(partition, %err, "a partition's processor failed");
            }
            leases.release(partition).await?;
            tracing::info!(partition, members, "gave a queue partition up");
        }
        let mut taken = Vec::new();
        for partition in 0..partitions {
            if held.len() + taken.len() >= share {
                break;
            }
            if !held.contains_key(&partition) && leases.try_take(partition).await? {
                taken.push(partition);
            }
        }
        if taken.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(TAKEOVER_DELAY).await;
        for partition in taken {
            match self.start(partition, leases.clone()).await {
                Ok(thread) => {
                    tracing::info!(partition, members, "storing a queue partition");
                    held.insert(partition, thread);
                }
                Err(err) => {
                    tracing::warn!(partition, %err, "cannot start a partition's processor");
                    leases.release(partition).await?;
                }
            }
        }
        Ok(())
    }

    async fn start(&self, partition: u32, leases: Arc<Leases>) -> anyhow::Result<ProcessorThread> {
        let count = self.settings.queue.partitions;
        let queue: Arc<dyn EventQueue> =
            Arc::new(crate::engines::open_stream(&self.settings, partition).await?);
        let store = self
            .store
            .partition(Partition {
                index: partition,
                count,
            })
            .await?;
        let writes = LeasedWrites {
            inner: crate::telemetry::MeteredWrites::new(Arc::new(store)),
            leases,
            partition,
        };
        let writes: Arc<dyn EventWriter> = match &self.shared {
            Some(shared) => Arc::new(crate::shared_versions::SharedVersionWrites {
                inner: Arc::new(writes),
                shared: shared.clone(),
            }),
            None => Arc::new(writes),
        };
        let processor = Processor::start(queue, writes, &self.data_dir, self.processor.clone())
            .await?
            .with_site_check(self.site_check.clone())
            .with_site_refresh(self.site_refresh.clone())
            .sharing(
                self.reports.stats.clone(),
                self.reports.stored.clone(),
                self.reports.deletions.clone(),
            );
        ProcessorThread::spawn(format!("heartbeat-processor-{partition}"), processor)
    }
}

async fn pause(stop: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
}

async fn stop_all(held: &mut BTreeMap<u32, ProcessorThread>) {
    while let Some((partition, thread)) = held.pop_first() {
        if let Err(err) = thread.stop().await {
            tracing::error!(partition, %err, "a partition's processor failed");
        }
    }
}

/// A partition's writes, each made only while this node holds the partition's lease.
struct LeasedWrites {
    inner: crate::telemetry::MeteredWrites,
    leases: Arc<Leases>,
    partition: u32,
}

impl LeasedWrites {
    async fn check(&self) -> Result<(), StoreError> {
        if !self.leases.is_lost() && self.leases.holds(self.partition).await? {
            Ok(())
        } else {
            Err(StoreError::Unavailable {
                message: format!(
                    "this worker no longer holds queue partition {}",
                    self.partition
                ),
            })
        }
    }
}

#[async_trait::async_trait]
impl EventWriter for LeasedWrites {
    async fn insert(&self, batch: Arc<InsertBatch>) -> Result<(), StoreError> {
        self.check().await?;
        self.inner.insert(batch).await
    }

    async fn queue_position(&self) -> Result<Option<u64>, StoreError> {
        self.inner.queue_position().await
    }

    async fn open_sessions(&self, since_ms: i64) -> Result<Vec<StoredVisit>, StoreError> {
        self.inner.open_sessions(since_ms).await
    }

    async fn newest_visit_end_ms(&self) -> Result<Option<i64>, StoreError> {
        self.inner.newest_visit_end_ms().await
    }

    async fn imported_visits_until_ms(&self) -> Result<Option<i64>, StoreError> {
        self.inner.imported_visits_until_ms().await
    }

    async fn visits_of(
        &self,
        site: &SiteId,
        visitors: Vec<u64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredVisit>, StoreError> {
        self.inner.visits_of(site, visitors, from_ms, to_ms).await
    }

    async fn client_id_fingerprints(
        &self,
        received_since_ms: i64,
        newest: usize,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        self.inner
            .client_id_fingerprints(received_since_ms, newest)
            .await
    }

    async fn stored_client_ids(
        &self,
        site: &SiteId,
        ids: Vec<String>,
        received_since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.inner
            .stored_client_ids(site, ids, received_since_ms)
            .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }

    async fn delete_site_events(&self, site: &SiteId) -> Result<Deleted, StoreError> {
        self.check().await?;
        self.inner.delete_site_events(site).await
    }
}
