//! The processor: reads the queue in batches, drops duplicates, assigns visits and writes
//! events, visit rows and the queue position to the store in one transaction.
//!
//! Exactly once: the queue position is committed with the data, and a restart resumes from
//! the store's position (or the queue's checkpoint, whichever is further). The queue's own
//! checkpoint only moves after the store committed, so the queue frees nothing unstored.
//!
//! Overlap: a batch is written on a task of its own (`writer.rs`) while the next is read,
//! deduplicated and sessionized. Whatever reads the store for the next batch (the exact
//! check of a dedup hit, the visits of late events) waits for the write first, and the next
//! write starts only after it, so the store sees batches one at a time and in queue order.
//!
//! Faults: a store that is unavailable is retried with exponential backoff for as long as it
//! takes (the queue keeps accepting until it is full, then ingest answers 503). Data the
//! store rejects is split in halves until the events it cannot take are found; those go to
//! the dead-letter file with the reason, and everything else is stored.

mod dead_letter;
mod dedup;
mod sessionizer;
mod stats;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use heartbeat_model::{decode_record, Event, QueueRecord, SiteId};
use heartbeat_queue::{Cursor, EventQueue, QueueError};
use heartbeat_store::{Deleted, EventWriter, InsertBatch, StoreError};
use tokio::sync::{broadcast, watch};
use writer::{Retry, Write, Writer};

pub use dead_letter::DeadLetters;
pub use dedup::Deduplicator;
pub use sessionizer::{Sessionizer, VISIT_TIMEOUT_MS};
pub use stats::ProcessorStats;

#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot write the dead-letter file")]
    DeadLetter(#[source] std::io::Error),
}

/// The first and the longest pause before reading an unavailable queue again.
const QUEUE_BACKOFF_MIN: Duration = Duration::from_millis(100);
const QUEUE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How far back (event time) the events published for the live stream go.
pub const LIVE_WINDOW_MS: i64 = 30 * 60 * 1000;

/// Batches the live feed holds for a listener that is behind; one further behind gets a
/// resync. Only recent events are in them, so a backfill holds no memory here.
const LIVE_BATCHES: usize = 128;

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Most queue records (requests) read at once.
    pub max_records_per_batch: usize,
    /// Most record bytes per store transaction (at least one record), which bounds the
    /// processor's memory whatever the mix of single events and 1,000-event batches.
    pub max_batch_bytes: usize,
    /// How long a read waits for new records before the processor does housekeeping.
    pub idle_wait: Duration,
    /// Shortest time from one store transaction's start to the next while the processor has
    /// caught up with the queue (its last read was not full, and the queue's backlog is less
    /// than a full read). A transaction rewrites every
    /// rollup cell its events touch, so under a stream of single events a transaction per
    /// few events would spend the cores on rewriting the same cells that ingest needs for
    /// its requests; waiting gathers them (events reach the store and the live feed at most
    /// this much later). A backlog is read back to back.
    pub min_step_interval: Duration,
    /// How long (arrival time) client-given ids are remembered for deduplication.
    pub dedup_window_ms: i64,
    /// Bytes the dedup filter's fingerprints may take (8 an id); beyond them the oldest are
    /// forgotten before the window ends.
    pub dedup_max_bytes: usize,
    /// Most visits kept in memory; the least recently active beyond it are let go (the
    /// store keeps them; a late event loads its visit back).
    pub max_open_visits: usize,
    /// How long after a visit can no longer grow, in its site's event time, it stays in
    /// memory for late events.
    pub visit_lateness_ms: i64,
    /// First and longest wait between store retries.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Attempts at data the store rejects before splitting it.
    pub rejected_attempts: u32,
    /// Whether a stop first stores everything queued (a node shutting down), or only ends
    /// the step under way (a worker handing its queue partition to another).
    pub drain_on_stop: bool,
    /// How long a stop may take: past it the processor ends wherever it is (a write being
    /// retried, a long backlog), and what it has not stored stays in the queue for the next
    /// start, as after a crash. A store that keeps failing would otherwise hold a shutdown
    /// for ever.
    pub stop_grace: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            max_records_per_batch: 4096,
            max_batch_bytes: 2 * 1024 * 1024,
            idle_wait: Duration::from_millis(100),
            min_step_interval: Duration::from_millis(250),
            dedup_window_ms: 24 * 3_600_000,
            dedup_max_bytes: 32 * 1024 * 1024,
            max_open_visits: 100_000,
            visit_lateness_ms: sessionizer::LATENESS_MS,
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_secs(5),
            rejected_attempts: 3,
            drain_on_stop: true,
            stop_grace: Duration::from_secs(30),
        }
    }
}

/// Whether a site still exists; the processor drops queued events of sites that do not
/// (deleted after their events were accepted).
pub type SiteCheck = Arc<dyn Fn(&SiteId) -> bool + Send + Sync>;

/// Reads the site directory again (another node may have created a site this node has not
/// read yet), before events of a site it does not know are dropped as a deleted site's.
pub type SiteRefresh =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// A site's deletion, done: what the processor deleted when it reached the site's deletion
/// record in the queue.
#[derive(Debug, Clone)]
pub struct SiteDeleted {
    pub site: SiteId,
    pub deleted: Deleted,
}

pub struct Processor {
    queue: Arc<dyn EventQueue>,
    store: Arc<dyn EventWriter>,
    sessionizer: Sessionizer,
    dedup: Deduplicator,
    dead_letters: Arc<Mutex<DeadLetters>>,
    /// The batch being written, if any.
    pending: Option<Pending>,
    config: ProcessorConfig,
    stats: Arc<ProcessorStats>,
    /// The cursor of the last committed delivery: the store holds everything up to it.
    position: Cursor,
    /// The cursor of the last delivery read, after which the next read starts: ahead of
    /// `position` while a batch is being written.
    read_position: Cursor,
    stored: broadcast::Sender<Arc<InsertBatch>>,
    site_exists: SiteCheck,
    refresh_sites: Option<SiteRefresh>,
    deletions: broadcast::Sender<SiteDeleted>,
    /// Events dropped because their site was gone, per site, until the site's deletion
    /// record reports them with what it deleted.
    dropped_of_gone_sites: HashMap<SiteId, u64>,
}

/// A batch being written, with what is done once it is stored.
struct Pending {
    write: Write,
    batch: Arc<InsertBatch>,
    /// The cursor of the batch's last delivery.
    end: Cursor,
    /// Duplicates dropped from the batch.
    duplicates: usize,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Processor {
    /// Recovers the position, open visits and dedup window from the store.
    pub async fn start(
        queue: Arc<dyn EventQueue>,
        store: Arc<dyn EventWriter>,
        data_dir: &Path,
        config: ProcessorConfig,
    ) -> Result<Self, ProcessorError> {
        let now = now_ms();
        let stored_position = Cursor::from_stored(store.queue_position().await?.unwrap_or(0));
        let position = stored_position.max(queue.acked());
        let mut sessionizer = Sessionizer::new(config.max_open_visits, config.visit_lateness_ms);
        let since = now - VISIT_TIMEOUT_MS;
        // Visits that ended before `since` were closed; events a timeout after the newest of
        // them (and the engagements that may have kept it open) need no lookup.
        let stored_before = store.newest_visit_end_ms().await?.map_or(i64::MIN, |end| {
            since.min(end.saturating_add(sessionizer::ENGAGED_AFTER_MS))
        });
        sessionizer.restore(store.open_sessions(since).await?, stored_before, now);
        let mut dedup = Deduplicator::new(config.dedup_window_ms, config.dedup_max_bytes);
        dedup.restore(store.as_ref(), now).await?;
        tracing::info!(
            position = position.to_stored(),
            open_visits = sessionizer.open_visits(),
            remembered_ids = dedup.remembered(),
            "processor recovered"
        );
        let (stored, _) = broadcast::channel(LIVE_BATCHES);
        let (deletions, _) = broadcast::channel(64);
        Ok(Processor {
            queue,
            store,
            sessionizer,
            dedup,
            dead_letters: Arc::new(Mutex::new(DeadLetters::new(data_dir))),
            pending: None,
            config,
            stats: Arc::new(ProcessorStats::default()),
            position,
            read_position: position,
            stored,
            site_exists: Arc::new(|_| true),
            refresh_sites: None,
            deletions,
            dropped_of_gone_sites: HashMap::new(),
        })
    }

    /// Reads the site directory again through `refresh` before dropping events of a site
    /// [`Processor::with_site_check`]'s check does not know: where several nodes share the
    /// directory, a site created through another node may be newer than this node's copy.
    pub fn with_site_refresh(mut self, refresh: SiteRefresh) -> Self {
        self.refresh_sites = Some(refresh);
        self
    }

    /// Counts into `stats`, reports stored batches to `stored` and deletions to `deletions`
    /// (instead of its own): several processors of one node, each on a queue partition,
    /// seen as one.
    pub fn sharing(
        mut self,
        stats: Arc<ProcessorStats>,
        stored: broadcast::Sender<Arc<InsertBatch>>,
        deletions: broadcast::Sender<SiteDeleted>,
    ) -> Self {
        self.stats = stats;
        self.stored = stored;
        self.deletions = deletions;
        self
    }

    /// Drops queued events of sites `check` says are gone (every site exists by default).
    pub fn with_site_check(mut self, check: SiteCheck) -> Self {
        self.site_exists = check;
        self
    }

    /// Every site deletion once it is done (for whoever asked for it).
    pub fn deletions(&self) -> broadcast::Sender<SiteDeleted> {
        self.deletions.clone()
    }

    pub fn stats(&self) -> Arc<ProcessorStats> {
        self.stats.clone()
    }

    /// Every committed batch's events of the last [`LIVE_WINDOW_MS`] (event time), for the
    /// live stream; batches of older events only (a backfill, an import) are not sent.
    pub fn subscribe(&self) -> broadcast::Sender<Arc<InsertBatch>> {
        self.stored.clone()
    }

    /// Runs until `shutdown` turns true, then drains the queue and flushes the store, for at
    /// most [`ProcessorConfig::stop_grace`] after the stop. Past it, the step under way is
    /// dropped where it is: what the store committed holds its queue position, so the next
    /// start reads the rest again, as after a crash (a write already running finishes its
    /// attempt on its thread; none is retried).
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), ProcessorError> {
        let grace = self.config.stop_grace;
        let mut stopped = shutdown.clone();
        let stats = self.stats.clone();
        let work = self.run_until_drained(shutdown);
        tokio::select! {
            ended = work => ended,
            () = async {
                if stopped.wait_for(|stop| *stop).await.is_err() {
                    // No one can ask for a stop any more: no grace to count.
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(
                    grace_ms = grace.as_millis() as u64,
                    store_retries = stats.store_retries.load(Ordering::Relaxed),
                    "stopped before the queue was stored: the store still fails or the backlog \
                     is long; the next start stores the rest"
                );
                Ok(())
            }
        }
    }

    async fn run_until_drained(
        mut self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ProcessorError> {
        let mut last_housekeeping = now_ms();
        let mut queue_backoff = QUEUE_BACKOFF_MIN;
        loop {
            // A step is never cancelled half way (its insert may already have committed);
            // it returns within the idle wait when the queue is empty, so the flag is read
            // often enough.
            let stopping = *shutdown.borrow_and_update();
            let started = tokio::time::Instant::now();
            let processed = match self.step_overlapped().await {
                Ok(processed) => {
                    queue_backoff = QUEUE_BACKOFF_MIN;
                    processed
                }
                // A broker away (restarting, unreachable): nothing is lost, the queue keeps
                // what is not acknowledged. Wait and read again from the same cursor.
                Err(ProcessorError::Queue(QueueError::Unavailable { message })) => {
                    tracing::warn!(
                        error = %message,
                        retry_in_ms = queue_backoff.as_millis() as u64,
                        "the queue is unavailable; reading again after a pause"
                    );
                    if stopping {
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(queue_backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    queue_backoff = (queue_backoff * 2).min(QUEUE_BACKOFF_MAX);
                    continue;
                }
                Err(err) => return Err(err),
            };
            if stopping && (processed == 0 || !self.config.drain_on_stop) {
                break;
            }
            // Caught up: the last read was not full and less than a full read waits (a
            // broker hands out at most its prefetch at once, so a short read alone does not
            // tell that nothing more is waiting).
            let backlog = self.queue.backlog();
            let more_waiting = backlog
                .messages
                .is_some_and(|n| n >= self.config.max_records_per_batch as u64)
                || backlog
                    .bytes
                    .is_some_and(|n| n >= self.config.max_batch_bytes as u64);
            let caught_up =
                processed > 0 && processed < self.config.max_records_per_batch && !more_waiting;
            // While a backlog is read back to back, the batch just read is written while the
            // next is prepared; otherwise it is stored before the pause.
            if stopping || processed < self.config.max_records_per_batch && !more_waiting {
                self.finish_write().await?;
            }
            if caught_up && !stopping {
                // Gather the next events (see `min_step_interval`); a shutdown cuts it short.
                let next = started + self.config.min_step_interval;
                tokio::select! {
                    () = tokio::time::sleep_until(next) => {}
                    _ = shutdown.changed() => {}
                }
            }
            let now = now_ms();
            if processed == 0 || now - last_housekeeping > 10_000 {
                self.sessionizer.evict(now);
                self.dedup.prune(now);
                self.report_memory();
                last_housekeeping = now;
            }
        }
        self.finish_write().await?;
        self.store.flush().await?;
        tracing::info!(
            position = self.position.to_stored(),
            "processor drained and flushed"
        );
        Ok(())
    }

    /// Reads one batch from the queue and stores it. Returns the number of queue records
    /// processed (0 when none arrived within the idle wait).
    pub async fn step(&mut self) -> Result<usize, ProcessorError> {
        let received = self.step_overlapped().await?;
        self.finish_write().await?;
        Ok(received)
    }

    /// Reads one batch from the queue, prepares it and starts writing it, while the
    /// previous batch's write may still be under way; the new write stays in flight
    /// (`finish_write` waits for it).
    async fn step_overlapped(&mut self) -> Result<usize, ProcessorError> {
        let deliveries = self
            .queue
            .receive(
                self.read_position,
                self.config.max_records_per_batch,
                self.config.idle_wait,
            )
            .await?;
        let received = deliveries.len();
        let now = now_ms();
        // Events are stored in one transaction up to a site's deletion, which runs in its
        // place in the queue; then the next run of events.
        let mut events = Vec::new();
        let mut end = None;
        for delivery in deliveries {
            match decode_record(&delivery.payload) {
                Ok(QueueRecord::Events(batch)) => events.extend(batch),
                Ok(QueueRecord::DeleteSite(site)) => {
                    if let Some(end) = end.take() {
                        self.store(std::mem::take(&mut events), end, now).await?;
                    }
                    self.delete_site(site, delivery.cursor).await?;
                    continue;
                }
                Err(err) => {
                    self.dead_letters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .record(&delivery.payload, &err.to_string())
                        .map_err(ProcessorError::DeadLetter)?;
                    self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                }
            }
            end = Some(delivery.cursor);
        }
        if let Some(end) = end {
            self.store(events, end, now).await?;
        }
        Ok(received)
    }

    /// Deduplicates, sessionizes and stores the events of the deliveries up to `end`, then
    /// acknowledges `end`.
    async fn store(
        &mut self,
        mut events: Vec<Event>,
        end: Cursor,
        now: i64,
    ) -> Result<(), ProcessorError> {
        let queued = events.len();
        let mut exists: HashMap<SiteId, bool> = HashMap::new();
        for event in &events {
            // `entry` would clone every event's site id; only a new one is cloned here.
            match exists.get(&event.site_id) {
                Some(_) => {}
                None => {
                    exists.insert(event.site_id.clone(), (self.site_exists)(&event.site_id));
                }
            }
        }
        if let (Some(refresh), true) = (&self.refresh_sites, exists.values().any(|k| !k)) {
            refresh().await;
            for (site, known) in exists.iter_mut() {
                *known = *known || (self.site_exists)(site);
            }
        }
        let dropped = &mut self.dropped_of_gone_sites;
        events.retain(|event| {
            let known = exists.get(&event.site_id).copied().unwrap_or(false);
            if !known {
                *dropped.entry(event.site_id.clone()).or_default() += 1;
            }
            known
        });
        self.stats
            .deleted_site_dropped
            .fetch_add((queued - events.len()) as u64, Ordering::Relaxed);
        // The exact check of a dedup hit reads the store, which must hold the batch before.
        if self.dedup.has_suspects(&events) {
            self.finish_write().await?;
        }
        let mut delay = self.config.retry_initial;
        let duplicates = loop {
            match self
                .dedup
                .filter(self.store.as_ref(), &mut events, now)
                .await
            {
                Ok(duplicates) => break duplicates,
                Err(err) => self.wait_to_retry("dedup check", &err, &mut delay).await,
            }
        };
        let mut delay = self.config.retry_initial;
        loop {
            match self.store.imported_visits_until_ms().await {
                Ok(imported) => {
                    if let Some(until) = imported {
                        self.sessionizer
                            .cover_stored(until.saturating_add(sessionizer::ENGAGED_AFTER_MS));
                    }
                    break;
                }
                Err(err) => self.wait_to_retry("import check", &err, &mut delay).await,
            }
        }
        let lookups = self.sessionizer.lookups(&events);
        if !lookups.is_empty() {
            // The visits looked up may be the previous batch's.
            self.finish_write().await?;
        }
        for lookup in lookups {
            let mut delay = self.config.retry_initial;
            let visits = loop {
                let visitors = lookup.visitors.clone();
                match (self.store)
                    .visits_of(&lookup.site, visitors, lookup.from_ms, lookup.to_ms)
                    .await
                {
                    Ok(visits) => break visits,
                    Err(err) => self.wait_to_retry("visit lookup", &err, &mut delay).await,
                }
            };
            self.stats.visit_lookups.fetch_add(1, Ordering::Relaxed);
            self.sessionizer.reopen(visits, now);
        }
        let assigned = events.len();
        let sessions = self.sessionizer.assign(&mut events, now);
        // Engagement events of no open visit, dropped as Plausible drops them.
        self.stats
            .engagements_dropped
            .fetch_add((assigned - events.len()) as u64, Ordering::Relaxed);
        let batch = Arc::new(InsertBatch {
            events,
            sessions,
            queue_position: end.to_stored(),
        });
        // One write at a time, in queue order.
        self.finish_write().await?;
        self.read_position = end;
        self.pending = Some(Pending {
            write: self
                .writer()
                .spawn(batch.clone(), self.position.to_stored()),
            batch,
            end,
            duplicates,
        });
        // On a current-thread runtime (the server's processors) the write starts only when
        // this task yields: let it reach the store before the next batch is prepared.
        tokio::task::yield_now().await;
        Ok(())
    }

    /// What the next batch is written with.
    fn writer(&self) -> Writer {
        Writer {
            store: self.store.clone(),
            dead_letters: self.dead_letters.clone(),
            stats: self.stats.clone(),
            retry: Retry {
                initial: self.config.retry_initial,
                max: self.config.retry_max,
                rejected_attempts: self.config.rejected_attempts,
            },
        }
    }

    /// Waits for the batch being written, if any, then moves the position past it,
    /// acknowledges it to the queue, counts it and publishes it to the live stream.
    async fn finish_write(&mut self) -> Result<(), ProcessorError> {
        let Some(Pending {
            write,
            batch,
            end,
            duplicates,
        }) = self.pending.take()
        else {
            return Ok(());
        };
        let dead = match write.await {
            Ok(written) => written.map_err(ProcessorError::DeadLetter)?,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => {
                return Err(ProcessorError::Store(StoreError::Unavailable {
                    message: format!("the write was cancelled: {err}"),
                }))
            }
        };
        // Stored: the store holds the position now, whatever becomes of the acknowledgement.
        self.position = end;
        self.acknowledge(end).await;
        self.stats
            .events_stored
            .fetch_add(batch.events.len() as u64 - dead, Ordering::Relaxed);
        self.stats
            .duplicates_dropped
            .fetch_add(duplicates as u64, Ordering::Relaxed);
        self.stats.batches_committed.fetch_add(1, Ordering::Relaxed);
        self.sessionizer.maintain(now_ms());
        self.report_memory();
        if let Some(newest) = batch.events.iter().map(|e| e.timestamp_ms).max() {
            self.stats
                .last_event_ms
                .fetch_max(newest.max(0) as u64, Ordering::Relaxed);
        }
        // Only a batch stored whole is published: which events of a split batch went to the
        // dead-letter file is not tracked here, and live listeners resync from queries.
        if dead == 0 && self.stored.receiver_count() > 0 {
            let recent = now_ms() - LIVE_WINDOW_MS;
            let events: Vec<Event> = batch
                .events
                .iter()
                .filter(|e| e.timestamp_ms >= recent)
                .cloned()
                .collect();
            if !events.is_empty() {
                let _ = self.stored.send(Arc::new(InsertBatch {
                    events,
                    sessions: Vec::new(),
                    queue_position: batch.queue_position,
                }));
            }
        }
        Ok(())
    }

    /// Waits before retrying a store read that failed, doubling the wait up to the longest.
    async fn wait_to_retry(&self, what: &str, err: &StoreError, delay: &mut Duration) {
        tracing::warn!(error = %err, "{what} failed, retrying");
        self.stats.store_retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(*delay).await;
        *delay = (*delay * 2).min(self.config.retry_max);
    }

    /// Publishes what the sessionizer and the dedup filter hold.
    fn report_memory(&self) {
        let stats = &self.stats;
        let set = |gauge: &AtomicU64, value: u64| gauge.store(value, Ordering::Relaxed);
        set(&stats.open_visits, self.sessionizer.open_visits() as u64);
        set(&stats.visits_reopened, self.sessionizer.reopened());
        set(&stats.dedup_ids, self.dedup.remembered() as u64);
        set(&stats.dedup_bytes, self.dedup.bytes() as u64);
        set(&stats.dedup_forgotten_early, self.dedup.forgotten_early());
    }

    /// Deletes everything stored of `site` (retrying while the store is unavailable) and
    /// forgets its open visits, then acknowledges the deletion's record. Deleting again after
    /// a restart deletes nothing more, so a crash before the acknowledgement is harmless.
    async fn delete_site(&mut self, site: SiteId, cursor: Cursor) -> Result<(), ProcessorError> {
        self.finish_write().await?;
        let mut delay = self.config.retry_initial;
        let deleted = loop {
            match self.store.delete_site_events(&site).await {
                Ok(deleted) => break deleted,
                Err(err) => {
                    tracing::warn!(error = %err, site = %site, "site deletion failed, retrying")
                }
            }
            self.stats.store_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.config.retry_max);
        };
        self.sessionizer.forget_site(&site);
        let mut deleted = deleted;
        // Events of the site still queued when it was deleted were dropped, not stored: they
        // are deleted all the same.
        deleted.events += self.dropped_of_gone_sites.remove(&site).unwrap_or(0);
        self.position = cursor;
        self.read_position = cursor;
        self.acknowledge(cursor).await;
        tracing::info!(site = %site, events = deleted.events, "site data deleted");
        let _ = self.deletions.send(SiteDeleted { site, deleted });
        Ok(())
    }

    /// Tells the queue that everything up to `cursor` is stored. A failure (a broker away)
    /// loses nothing: acknowledgements are cumulative, so the next one covers this one, and
    /// a restarted processor resumes after the store's own position. It is logged, and the
    /// processor goes on from `cursor`, never reading the stored messages again.
    async fn acknowledge(&self, cursor: Cursor) {
        if let Err(err) = self.queue.ack(cursor).await {
            tracing::warn!(
                error = %err,
                cursor = cursor.to_stored(),
                "cannot acknowledge stored messages to the queue; the next acknowledgement covers them"
            );
        }
    }
}
