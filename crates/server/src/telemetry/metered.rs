//! Decorators that time the queue and the store once, whatever the engine behind them.
//!
//! `MeteredQueue` also measures processing lag: it remembers when records were appended
//! (one sample per [`LAG_SAMPLE_INTERVAL`] at most, so memory stays small however far
//! behind the processor is) and forgets them as the processor checkpoints past them. The
//! lag is the age of the oldest remembered record.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heartbeat_model::SiteId;
use heartbeat_query::{Dialect, Row, RunError, Sql, SqlRunner};
use heartbeat_queue::{Backlog, Cursor, Delivery, EventQueue, QueueError};
use heartbeat_store::{Deleted, EventWriter, InsertBatch, StoreError, StoredVisit};

use super::{
    QUEUE_APPEND_DURATION, STORE_INSERT_DURATION, STORE_LOOKUP_DURATION, STORE_QUERY_DURATION,
    STORE_QUERY_ERRORS,
};

/// Appends closer together than this share one lag sample.
const LAG_SAMPLE_INTERVAL: Duration = Duration::from_millis(50);
/// At most this many samples are kept (about 100 minutes of backlog at one per 50 ms); beyond
/// it the newest samples are skipped, which only makes the lag read a little low.
const LAG_SAMPLES_MAX: usize = 120_000;

/// An [`EventQueue`] that times appends and tracks processing lag.
pub struct MeteredQueue {
    inner: Arc<dyn EventQueue>,
    /// (the appended message's cursor, when its append was acknowledged), oldest first.
    appended: Mutex<VecDeque<(Cursor, Instant)>>,
}

impl MeteredQueue {
    pub fn new(inner: Arc<dyn EventQueue>) -> Self {
        MeteredQueue {
            inner,
            appended: Mutex::new(VecDeque::new()),
        }
    }

    /// How long the oldest unstored record has waited; zero when the queue is caught up.
    pub fn lag(&self) -> Duration {
        let mut appended = self.appended.lock().unwrap_or_else(|p| p.into_inner());
        if self.inner.backlog().is_empty() {
            appended.clear();
            return Duration::ZERO;
        }
        appended
            .front()
            .map(|(_, at)| at.elapsed())
            .unwrap_or(Duration::ZERO)
    }
}

/// Awaits `work`, recording how long it took in `histogram`.
async fn timed<T>(histogram: metrics::Histogram, work: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let result = work.await;
    histogram.record(started.elapsed());
    result
}

#[async_trait::async_trait]
impl EventQueue for MeteredQueue {
    async fn append(&self, payload: Vec<u8>) -> Result<Cursor, QueueError> {
        let started = Instant::now();
        let cursor = self.inner.append(payload).await?;
        let now = Instant::now();
        metrics::histogram!(QUEUE_APPEND_DURATION).record(now - started);
        let mut appended = self.appended.lock().unwrap_or_else(|p| p.into_inner());
        let recent = appended
            .back()
            .is_some_and(|(_, at)| now.duration_since(*at) < LAG_SAMPLE_INTERVAL);
        if !recent && appended.len() < LAG_SAMPLES_MAX {
            appended.push_back((cursor, now));
        }
        Ok(cursor)
    }

    async fn receive(
        &self,
        after: Cursor,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        self.inner.receive(after, max, wait).await
    }

    async fn ack(&self, upto: Cursor) -> Result<(), QueueError> {
        self.inner.ack(upto).await?;
        let mut appended = self.appended.lock().unwrap_or_else(|p| p.into_inner());
        while appended.front().is_some_and(|(cursor, _)| *cursor <= upto) {
            appended.pop_front();
        }
        Ok(())
    }

    fn acked(&self) -> Cursor {
        self.inner.acked()
    }

    fn backlog(&self) -> Backlog {
        self.inner.backlog()
    }
}

/// Queries, timed: a [`SqlRunner`] decorator.
pub struct MeteredReads {
    inner: Arc<dyn SqlRunner>,
}

impl MeteredReads {
    pub fn new(inner: Arc<dyn SqlRunner>) -> Self {
        MeteredReads { inner }
    }
}

#[async_trait::async_trait]
impl SqlRunner for MeteredReads {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
    fn has_rollups(&self) -> bool {
        self.inner.has_rollups()
    }
    fn data_version(&self, site: &SiteId) -> u64 {
        self.inner.data_version(site)
    }

    async fn run(&self, sql: Sql) -> Result<Vec<Row>, RunError> {
        let result = timed(
            metrics::histogram!(STORE_QUERY_DURATION),
            self.inner.run(sql),
        )
        .await;
        if result.is_err() {
            metrics::counter!(STORE_QUERY_ERRORS).increment(1);
        }
        result
    }
}

/// The processor's writes, with inserts timed: an [`EventWriter`] decorator.
pub struct MeteredWrites {
    inner: Arc<dyn EventWriter>,
}

impl MeteredWrites {
    pub fn new(inner: Arc<dyn EventWriter>) -> Self {
        MeteredWrites { inner }
    }
}

#[async_trait::async_trait]
impl EventWriter for MeteredWrites {
    async fn insert(&self, batch: Arc<InsertBatch>) -> Result<(), StoreError> {
        timed(
            metrics::histogram!(STORE_INSERT_DURATION),
            self.inner.insert(batch),
        )
        .await
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
        timed(
            metrics::histogram!(STORE_LOOKUP_DURATION, "lookup" => "visits"),
            self.inner.visits_of(site, visitors, from_ms, to_ms),
        )
        .await
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
        timed(
            metrics::histogram!(STORE_LOOKUP_DURATION, "lookup" => "client_ids"),
            self.inner.stored_client_ids(site, ids, received_since_ms),
        )
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }

    async fn delete_site_events(&self, site: &SiteId) -> Result<Deleted, StoreError> {
        self.inner.delete_site_events(site).await
    }
}
