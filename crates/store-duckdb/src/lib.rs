//! `DuckDbStore`: the embedded event store and metadata store, one DuckDB file in the data
//! dir.
//!
//! DuckDB calls block, so every call runs on tokio's blocking pool. Writes go through one
//! writer connection (DuckDB allows one writer; the processor is the only caller of
//! `insert`), queries through a small pool of reader connections to the same database, so a
//! long query never holds up inserts.

mod alerts;
mod imported;
mod rollups;
mod schema;
mod stream;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use duckdb::types::{TimeUnit, Value, ValueRef};
use duckdb::{params, params_from_iter, Connection};
use heartbeat_model::{
    ApiKey, ApiKeyScope, Event, Funnel, Goal, GoalKind, ImportedRow, ImportedTable, Membership,
    NamedShareLink, Org, OrgId, Revenue, Role, Session, ShareLink, Site, SiteId, SiteImport, User,
    UserSession, VisitAttributes,
};
use heartbeat_query::{Dialect, Row, RunError, Sql, SqlRunner, SqlValue};
use heartbeat_rollup::{Rollups, Span};
use heartbeat_store::{
    client_id_fingerprint, Deleted, EventData, EventWriter, Extent, ExtentReads, InsertBatch,
    MetaStore, StoreError, StoredVisit,
};
use stream::{collect_rows, for_each_row, StreamRow};

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct DuckDbStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    /// Per site, a count of committed writes: the data version cached answers check.
    versions: Mutex<HashMap<SiteId, u64>>,
    /// Recently written rollup hours (`rollups.rs`); used under the writer lock.
    rollups: Mutex<rollups::RollupCache>,
    /// Idle reader connections; a query takes one or opens a new one.
    readers: Mutex<Vec<Connection>>,
    /// The most bytes one statement's rows may take ([`DuckDbStore::with_max_result_bytes`]).
    max_result_bytes: std::sync::atomic::AtomicUsize,
    /// The latest end of the visits imported since the store was opened (`i64::MIN`: none).
    imported_visits_until: std::sync::atomic::AtomicI64,
    /// The connection [`DuckDbStore::memory`] reads DuckDB's accounts on.
    monitor: Mutex<Connection>,
    /// Days of the rollup rebuild under way still to build (`rebuild_rollups`); 0: none.
    rebuild_days_left: AtomicU64,
    /// Whether the cells there are answer queries while it runs.
    rebuild_cells_usable: AtomicBool,
    /// Whether [`DuckDbStore::start_rollup_rebuild`] was called.
    rebuild_started: AtomicBool,
    /// Days a rollup rebuild has built since the store was opened: part of every site's data
    /// version, so no answer cached before a day was built is served after it.
    rebuilt_days: AtomicU64,
    /// Writes waiting for the writer connection, and writes begun: a rollup rebuild lets
    /// them go first between its days.
    writers_waiting: AtomicU64,
    writes: AtomicU64,
}

/// One entry of [`DuckDbStore::memory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMemory {
    /// What holds it, in lower case (`base_table`, `hash_table`, `order_by`, ...).
    pub tag: String,
    /// Bytes in memory.
    pub bytes: u64,
    /// Bytes spilled to temporary files.
    pub spilled_bytes: u64,
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        message: err.to_string(),
    }
}

fn rejected(err: impl std::fmt::Display) -> StoreError {
    StoreError::Rejected {
        message: err.to_string(),
    }
}

impl Inner {
    /// Marks the data of `sites` changed, after a commit.
    fn changed<'a>(&self, sites: impl IntoIterator<Item = &'a SiteId>) {
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        for site in sites {
            *versions.entry(site.clone()).or_default() += 1;
        }
    }
}

impl DuckDbStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_memory_limit(path, None)
    }

    /// Like [`open`](Self::open), capping DuckDB's buffer memory (for example `"512MB"`);
    /// DuckDB spills to disk beyond it. Without a limit DuckDB takes up to 80 % of RAM.
    pub fn open_with_memory_limit(
        path: &Path,
        memory_limit: Option<&str>,
    ) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(unavailable)?;
        if let Some(limit) = memory_limit {
            // A size like "512MB": digits, a dot, letters and spaces only, so it can be
            // written into the statement (SET takes no parameters).
            if limit.is_empty()
                || !limit
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == ' ')
            {
                return Err(StoreError::Rejected {
                    message: format!("memory limit {limit:?} is not a size like 512MB"),
                });
            }
            conn.execute_batch(&format!("SET memory_limit = '{limit}'"))
                .map_err(unavailable)?;
        }
        // DuckDB checkpoints (re-compressing row groups) after 16 MB of its own WAL by default;
        // 128 MB took the processor from about 43k to 60k events/s at the same peak memory
        // (docs/benchmarks.md).
        conn.execute_batch("SET checkpoint_threshold = '128MB'")
            .map_err(unavailable)?;
        migrate(&conn)?;
        Self::from_connection(conn)
    }

    /// An in-memory database, for tests and tools.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(unavailable)?;
        migrate(&conn)?;
        Self::from_connection(conn)
    }

    fn from_connection(conn: Connection) -> Result<Self, StoreError> {
        let monitor = conn.try_clone().map_err(unavailable)?;
        let rebuild = rollups::pending_rebuild(&conn).map_err(unavailable)?;
        let (rebuild_days_left, rebuild_cells_usable) = rebuild
            .map(|pending| (pending.days_left(), pending.cells_usable))
            .unwrap_or((0, true));
        Ok(DuckDbStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(conn),
                versions: Mutex::new(HashMap::new()),
                rollups: Mutex::new(rollups::RollupCache::default()),
                readers: Mutex::new(Vec::new()),
                max_result_bytes: std::sync::atomic::AtomicUsize::new(usize::MAX),
                imported_visits_until: std::sync::atomic::AtomicI64::new(i64::MIN),
                monitor: Mutex::new(monitor),
                rebuild_days_left: AtomicU64::new(rebuild_days_left),
                rebuild_cells_usable: AtomicBool::new(rebuild_cells_usable),
                rebuild_started: AtomicBool::new(false),
                rebuilt_days: AtomicU64::new(0),
                writers_waiting: AtomicU64::new(0),
                writes: AtomicU64::new(0),
            }),
        })
    }

    /// Starts building the cells of a rollup rebuild that a migration (or a store from before
    /// rollups) scheduled, on a thread of its own, a day at a time between the writes; it
    /// stops when the store is dropped, and the next store opened on the file resumes it.
    /// Called by the server once it is serving, so its start does not wait for a day's
    /// rebuild; a store that never calls it answers from the events where cells are missing.
    /// `on_thread` runs first on the new thread (the server sets its CPU priority there).
    pub fn start_rollup_rebuild(&self, on_thread: fn()) -> Result<(), StoreError> {
        let starting = !self.inner.rebuild_started.swap(true, Ordering::Relaxed);
        if starting && self.rollup_rebuild_days_left() > 0 {
            let weak = Arc::downgrade(&self.inner);
            std::thread::Builder::new()
                .name("rollup-rebuild".into())
                .spawn(move || {
                    on_thread();
                    rebuild_rollups(weak)
                })
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Days of a rollup rebuild still to do (at most: days without data are skipped); 0
    /// when none is under way.
    pub fn rollup_rebuild_days_left(&self) -> u64 {
        self.inner.rebuild_days_left.load(Ordering::Relaxed)
    }

    /// Runs `copy` (on the blocking pool) with every committed transaction checkpointed into
    /// the database file and writes paused until it returns: a consistent moment to copy the
    /// file, for online backups. Queries go on meanwhile; the processor's inserts wait.
    pub async fn with_writes_paused<T: Send + 'static>(
        &self,
        copy: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.with_writer(move |conn| {
            conn.execute_batch("CHECKPOINT").map_err(unavailable)?;
            copy().map_err(unavailable)
        })
        .await
    }

    /// Runs `work` with the writer connection on the blocking pool.
    async fn with_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner.writers_waiting.fetch_add(1, Ordering::Relaxed);
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            inner.writers_waiting.fetch_sub(1, Ordering::Relaxed);
            inner.writes.fetch_add(1, Ordering::Relaxed);
            work(&mut conn)
        })
        .await
        .map_err(unavailable)?
    }

    /// Runs `work` with a reader connection on the blocking pool. Dropping the returned
    /// future (its caller gave up: a query's time budget ran out, a client went away)
    /// interrupts the statement in DuckDB, so no work goes on for nobody.
    async fn with_reader<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        let watch = Arc::new(Watch::default());
        let _interrupt_when_dropped = InterruptOnDrop(watch.clone());
        tokio::task::spawn_blocking(move || {
            let conn = inner.take_reader()?;
            if !watch.start(&conn) {
                inner.return_reader(conn);
                return Err(unavailable(
                    "the caller gave up before the statement started",
                ));
            }
            let result = work(&conn);
            // An interrupted connection is dropped: its interrupt may still be pending.
            if watch.finish() {
                inner.return_reader(conn);
            }
            result
        })
        .await
        .map_err(unavailable)?
    }

    /// What DuckDB's buffer manager accounts for now, by what holds it (`duckdb_memory()`:
    /// base tables, hash tables, sorts, the WAL, ...; every tag, holding something or not):
    /// the part of the process's memory that `memory_limit` caps. On a connection of its
    /// own, so it answers at once whatever the queries and the writer are doing.
    pub fn memory(&self) -> Result<Vec<StoreMemory>, StoreError> {
        let monitor = self.inner.monitor.lock().unwrap_or_else(|p| p.into_inner());
        let mut statement = monitor
            .prepare(
                "SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory() \
                 ORDER BY tag",
            )
            .map_err(unavailable)?;
        let rows = statement
            .query_map([], |row| {
                Ok(StoreMemory {
                    tag: row.get::<_, String>(0)?.to_ascii_lowercase(),
                    bytes: row.get::<_, i64>(1)?.max(0) as u64,
                    spilled_bytes: row.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)
    }

    /// Caps the memory of one statement's rows read through [`SqlRunner::run`]: a statement
    /// whose rows need more fails with [`RunError::TooLarge`] (DuckDB's own memory is capped
    /// by its `memory_limit`).
    pub fn with_max_result_bytes(self, bytes: usize) -> Self {
        self.inner
            .max_result_bytes
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
        self
    }
}

impl Inner {
    /// An idle reader connection, or a new one.
    fn take_reader(&self) -> Result<Connection, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => {
                // Cloned from the monitoring connection, not the writer: a read never waits
                // for a write (a batch, a day of a rollup rebuild, a backup's checkpoint).
                let monitor = self.monitor.lock().unwrap_or_else(|p| p.into_inner());
                monitor.try_clone().map_err(unavailable)
            }
        }
    }

    fn return_reader(&self, conn: Connection) {
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }
}

/// Where a reader statement is, shared by the blocking thread that runs it and the future
/// that waits for it.
#[derive(Default)]
struct Watch {
    stage: Mutex<Stage>,
}

#[derive(Default)]
enum Stage {
    #[default]
    Waiting,
    Running(Arc<duckdb::InterruptHandle>),
    Finished,
    /// The waiting future was dropped.
    Abandoned,
}

impl Watch {
    fn stage(&self) -> std::sync::MutexGuard<'_, Stage> {
        self.stage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The statement starts on `conn`; false when its caller has given up already.
    fn start(&self, conn: &Connection) -> bool {
        let mut stage = self.stage();
        if matches!(*stage, Stage::Abandoned) {
            return false;
        }
        *stage = Stage::Running(conn.interrupt_handle());
        true
    }

    /// The statement is over; false when it was interrupted on the way.
    fn finish(&self) -> bool {
        let mut stage = self.stage();
        if matches!(*stage, Stage::Abandoned) {
            return false;
        }
        *stage = Stage::Finished;
        true
    }

    /// The caller gave up: interrupts a running statement (under the lock, so the
    /// connection cannot go back to the pool meanwhile).
    fn abandon(&self) {
        let mut stage = self.stage();
        match &*stage {
            Stage::Running(handle) => handle.interrupt(),
            Stage::Finished => return,
            Stage::Waiting | Stage::Abandoned => {}
        }
        *stage = Stage::Abandoned;
    }
}

/// Abandons its statement when dropped before the statement finished.
struct InterruptOnDrop(Arc<Watch>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(unavailable)?;
    let applied: i64 = conn
        .query_row("SELECT count(*) FROM schema_version", [], |row| row.get(0))
        .map_err(unavailable)?;
    for (index, migration) in schema::MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let version = index + 1;
        let mut conn = conn.try_clone().map_err(unavailable)?;
        let tx = conn.transaction().map_err(unavailable)?;
        tx.execute_batch(migration).map_err(unavailable)?;
        if version == schema::VISIT_PAGE_VISITORS {
            // In the migration's transaction: a crash leaves the version before it.
            rollups::rebuild_visit_pages(&tx).map_err(unavailable)?;
        }
        if version == schema::REBUILD_CELLS {
            rollups::schedule_rebuild(&tx, true).map_err(unavailable)?;
        }
        tx.execute(
            "INSERT INTO schema_version VALUES (?)",
            params![version as i64],
        )
        .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        tracing::info!(version, "applied duckdb migration");
    }
    // A store from before rollups (or whose rollups were cleared) gets them built from its
    // events, once: it has events but no cell of their totals, and no rebuild under way.
    let missing: bool = conn
        .query_row(
            "SELECT (NOT EXISTS (SELECT 1 FROM rollups_hourly WHERE dim = '') \
             OR NOT EXISTS (SELECT 1 FROM rollups_daily WHERE dim = '')) \
             AND EXISTS (SELECT 1 FROM events) AND NOT EXISTS (SELECT 1 FROM rollup_rebuild)",
            [],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    if missing {
        let mut conn = conn.try_clone().map_err(unavailable)?;
        let tx = conn.transaction().map_err(unavailable)?;
        rollups::schedule_rebuild(&tx, false).map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        tracing::info!("the rollups of the stored events will be built");
    }
    Ok(())
}

/// Builds the cells of a scheduled rollup rebuild (`rollups::rebuild_next_day`) a day per
/// transaction under the writer lock, so the processor's batches go on between days. Until
/// it is done, queries read the events when cells are missing (`SqlRunner::has_rollups`),
/// else the cells as they are, each day's replaced at once. A failed day is tried again
/// with backoff. Stops when the store is dropped.
fn rebuild_rollups(store: std::sync::Weak<Inner>) {
    let mut delay = REBUILD_RETRY_FIRST;
    loop {
        let Some(inner) = store.upgrade() else {
            return;
        };
        let started = std::time::Instant::now();
        let step = {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            let mut cache = inner.rollups.lock().unwrap_or_else(|p| p.into_inner());
            // Rows appended since the last checkpoint are held in memory until one (up to
            // `checkpoint_threshold`): the processor's are written out before the day, to
            // leave it room under the memory limit, and the day's cells after it, to leave
            // the processor room. Skipped when a read holds it off.
            let checkpoint = |conn: &Connection| {
                if let Err(err) = conn.execute_batch("CHECKPOINT") {
                    tracing::debug!(error = %err, "no checkpoint beside a day of rollups");
                }
            };
            checkpoint(&conn);
            let step = conn.transaction().and_then(|tx| {
                let (day, left) = rollups::rebuild_next_day(&tx)?;
                tx.commit()?;
                // The day's cells were rewritten behind the cache's back; the periods of
                // other days the processor keeps there stay.
                if let Some(day) = day {
                    cache.forget_day(day);
                }
                Ok(left)
            });
            checkpoint(&conn);
            step
        };
        match step {
            Ok(left) => {
                inner.rebuilt_days.fetch_add(1, Ordering::Relaxed);
                inner.rebuild_days_left.store(left, Ordering::Relaxed);
                tracing::info!(
                    days_left = left,
                    ms = started.elapsed().as_millis() as u64,
                    "built a day of rollups again"
                );
                if left == 0 {
                    tracing::info!("the rollups are built");
                    return;
                }
                delay = REBUILD_RETRY_FIRST;
                drop(inner);
                yield_to_writes(&store, started.elapsed());
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "building a day of rollups failed");
                drop(inner);
                std::thread::sleep(delay);
                delay = (delay * 2).min(REBUILD_RETRY_MAX);
            }
        }
    }
}

/// Between two days of a rollup rebuild: lets the writes that wait or keep coming (a
/// processor's step takes the writer a few times, with its own work between) go first,
/// until the writer has been idle for [`REBUILD_IDLE`], or for at most `most` (the time the
/// day took), so under steady writes the rebuild takes about half the writer's time.
fn yield_to_writes(store: &std::sync::Weak<Inner>, most: std::time::Duration) {
    let started = std::time::Instant::now();
    let mut quiet_since = started;
    let Some(mut seen) = store
        .upgrade()
        .map(|inner| inner.writes.load(Ordering::Relaxed))
    else {
        return;
    };
    loop {
        std::thread::sleep(REBUILD_TICK);
        let Some(inner) = store.upgrade() else {
            return;
        };
        let writes = inner.writes.load(Ordering::Relaxed);
        if writes != seen || inner.writers_waiting.load(Ordering::Relaxed) > 0 {
            quiet_since = std::time::Instant::now();
            seen = writes;
        }
        if quiet_since.elapsed() >= REBUILD_IDLE || started.elapsed() >= most {
            return;
        }
    }
}

const REBUILD_TICK: std::time::Duration = std::time::Duration::from_millis(100);
const REBUILD_IDLE: std::time::Duration = std::time::Duration::from_secs(2);
const REBUILD_RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
const REBUILD_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);

fn timestamp(ms: i64) -> Value {
    Value::Timestamp(TimeUnit::Millisecond, ms)
}

fn now_timestamp() -> Value {
    timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    )
}

/// Appends events and their properties (inside the caller's transaction).
fn append_events(
    tx: &duckdb::Transaction<'_>,
    events: &[Event],
    received_at: &Value,
) -> duckdb::Result<()> {
    let mut appender = tx.appender("events")?;
    for e in events {
        let props_json = if e.props.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&e.props).unwrap_or_default()
        };
        appender.append_row(params![
            e.site_id.as_str(),
            e.event_id,
            e.event_id_from_client,
            e.name,
            timestamp(e.timestamp_ms),
            e.visitor_id,
            e.session_id,
            e.user_id,
            e.client_session_id,
            e.hostname,
            e.pathname,
            e.visit.referrer,
            e.visit.referrer_source,
            e.visit.channel,
            e.visit.utm_source,
            e.visit.utm_medium,
            e.visit.utm_campaign,
            e.visit.utm_content,
            e.visit.utm_term,
            e.visit.country,
            e.visit.region,
            e.visit.city,
            e.visit.browser,
            e.visit.browser_version,
            e.visit.os,
            e.visit.os_version,
            e.visit.device,
            e.visit.screen,
            props_json,
            e.revenue.as_ref().map(|r| r.amount_micros),
            e.revenue.as_ref().map(|r| r.currency.as_str()),
            e.interactive,
            received_at,
            e.scroll_depth,
            e.engagement_time_ms,
        ])?;
    }
    appender.flush()?;
    let mut props = tx.appender("event_props")?;
    for e in events.iter().filter(|e| !e.props.is_empty()) {
        for (key, value) in &e.props {
            props.append_row(params![
                e.site_id.as_str(),
                timestamp(e.timestamp_ms),
                e.name,
                e.visitor_id,
                e.session_id,
                e.pathname,
                key,
                value,
                e.event_id,
            ])?;
        }
    }
    props.flush()?;
    Ok(())
}

fn insert_all(
    conn: &mut Connection,
    batch: &InsertBatch,
    cache: &Mutex<rollups::RollupCache>,
) -> duckdb::Result<()> {
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    let result = insert_with_rollups(conn, batch, &mut cache);
    if result.is_err() {
        cache.clear();
    }
    result
}

/// The batch's rollup changes, counted on another core while this one appends the rows.
fn rollup_changes(batch: &InsertBatch) -> Rollups {
    let mut changes = Rollups::default();
    for event in &batch.events {
        changes.add_event(event);
    }
    for row in &batch.sessions {
        changes.add_visit(&row.session, row.sign);
    }
    changes
}

fn insert_with_rollups(
    conn: &mut Connection,
    batch: &InsertBatch,
    cache: &mut rollups::RollupCache,
) -> duckdb::Result<()> {
    let received_at = now_timestamp();
    let tx = conn.transaction()?;
    let (appended, changes) = std::thread::scope(|scope| {
        let changes = scope.spawn(|| rollup_changes(batch));
        let appended = append_rows(&tx, batch, &received_at);
        (appended, changes.join())
    });
    appended?;
    let changes = changes.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    tx.execute(
        "INSERT OR REPLACE INTO queue_checkpoint VALUES (1, ?)",
        params![batch.queue_position],
    )?;
    rollups::apply(&tx, cache, changes)?;
    tx.commit()
}

/// Appends the batch's events, their properties and its visit rows.
fn append_rows(
    tx: &duckdb::Transaction<'_>,
    batch: &InsertBatch,
    received_at: &Value,
) -> duckdb::Result<()> {
    append_events(tx, &batch.events, received_at)?;
    {
        let mut sessions = tx.appender("sessions")?;
        for row in &batch.sessions {
            let s = &row.session;
            sessions.append_row(params![
                s.site_id.as_str(),
                s.session_id,
                s.visitor_id,
                row.sign,
                s.version,
                timestamp(s.start_ms),
                timestamp(s.end_ms),
                s.duration_s(),
                s.pageviews,
                s.events,
                s.engagements,
                i8::from(s.is_bounce()),
                s.entry_page,
                s.exit_page,
                s.hostname,
                s.visit.referrer,
                s.visit.referrer_source,
                s.visit.channel,
                s.visit.utm_source,
                s.visit.utm_medium,
                s.visit.utm_campaign,
                s.visit.utm_content,
                s.visit.utm_term,
                s.visit.country,
                s.visit.region,
                s.visit.city,
                s.visit.browser,
                s.visit.browser_version,
                s.visit.os,
                s.visit.os_version,
                s.visit.device,
                s.visit.screen,
                s.user_id,
            ])?;
        }
        sessions.flush()?;
    }
    Ok(())
}

/// Classifies a DuckDB error: conversion and constraint failures are about the data.
fn classify(err: duckdb::Error) -> StoreError {
    let message = err.to_string();
    let about_data = matches!(
        err,
        duckdb::Error::AppendError
            | duckdb::Error::ToSqlConversionFailure(_)
            | duckdb::Error::InvalidParameterName(_)
    ) || message.contains("Constraint Error")
        || message.contains("Conversion Error")
        || message.contains("Invalid Input Error");
    if about_data {
        rejected(message)
    } else {
        unavailable(message)
    }
}

/// The visit attributes in `row`'s columns from `first` on, in the schema's order
/// (`visit_columns!`).
fn visit_attributes(row: &StreamRow<'_>, first: usize) -> duckdb::Result<VisitAttributes> {
    Ok(VisitAttributes {
        referrer: row.get(first)?,
        referrer_source: row.get(first + 1)?,
        channel: row.get(first + 2)?,
        utm_source: row.get(first + 3)?,
        utm_medium: row.get(first + 4)?,
        utm_campaign: row.get(first + 5)?,
        utm_content: row.get(first + 6)?,
        utm_term: row.get(first + 7)?,
        country: row.get(first + 8)?,
        region: row.get(first + 9)?,
        city: row.get(first + 10)?,
        browser: row.get(first + 11)?,
        browser_version: row.get(first + 12)?,
        os: row.get(first + 13)?,
        os_version: row.get(first + 14)?,
        device: row.get(first + 15)?,
        screen: row.get(first + 16)?,
    })
}

/// Most values listed in one lookup statement.
const LOOKUP_CHUNK: usize = 1000;

const SESSION_COLUMNS: &str = "site_id, session_id, visitor_id, user_id, version, \
    epoch_ms(start_ts), epoch_ms(end_ts), pageviews, events, engagements, entry_page, \
    exit_page, hostname, referrer, referrer_source, channel, utm_source, utm_medium, \
    utm_campaign, utm_content, utm_term, country, region, city, browser, browser_version, os, \
    os_version, device, screen";

fn session_from_row(row: &StreamRow<'_>) -> duckdb::Result<Session> {
    Ok(Session {
        site_id: SiteId(row.get(0)?),
        session_id: row.get(1)?,
        visitor_id: row.get(2)?,
        user_id: row.get(3)?,
        version: row.get(4)?,
        start_ms: row.get(5)?,
        end_ms: row.get(6)?,
        pageviews: row.get(7)?,
        events: row.get(8)?,
        engagements: row.get(9)?,
        entry_page: row.get(10)?,
        exit_page: row.get(11)?,
        hostname: row.get(12)?,
        visit: visit_attributes(row, 13)?,
    })
}

/// Ids (visitor or visit ids, numbers) as a list written into a statement: they cannot carry
/// SQL, and a bound parameter per id would cost more than the lookup.
fn numbers(ids: impl Iterator<Item = u64>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

/// `sessions` with the times of their first and last page views and latest event, read from
/// their events: per site, chunks of visits in time order, each read as [`ExtentReads`]
/// says (over the chunk's span and a little after, then farther only for the visits whose
/// events may go on).
fn with_extents(conn: &Connection, sessions: Vec<Session>) -> duckdb::Result<Vec<StoredVisit>> {
    let mut by_site: HashMap<String, Vec<Session>> = HashMap::new();
    for session in sessions {
        by_site
            .entry(session.site_id.as_str().to_owned())
            .or_default()
            .push(session);
    }
    let mut visits = Vec::new();
    for (site, mut sessions) in by_site {
        // In time order, so each chunk's range is narrow.
        sessions.sort_unstable_by_key(|s| s.start_ms);
        for chunk in sessions.chunks(LOOKUP_CHUNK) {
            let mut reads = ExtentReads::new(chunk);
            while let Some((from, to)) = reads.next_range() {
                let listed = numbers(reads.pending_ids());
                let mut stmt = conn.prepare(&format!(
                    "SELECT session_id, epoch_ms(min(ts) FILTER (WHERE name = 'pageview')), \
                     epoch_ms(max(ts) FILTER (WHERE name = 'pageview')), epoch_ms(max(ts)) \
                     FROM events WHERE site_id = ? AND ts >= ? AND ts <= ? \
                     AND session_id IN ({listed}) GROUP BY session_id"
                ))?;
                let extents = stmt
                    .query_map(params![site, timestamp(from), timestamp(to)], |row| {
                        Ok((
                            row.get(0)?,
                            Extent {
                                first_pageview_ms: row.get(1)?,
                                last_pageview_ms: row.get(2)?,
                                last_event_ms: row.get(3)?,
                            },
                        ))
                    })?
                    .collect::<duckdb::Result<_>>()?;
                reads.record(extents);
            }
            visits.extend(reads.into_visits());
        }
    }
    Ok(visits)
}

#[async_trait::async_trait]
impl EventWriter for DuckDbStore {
    async fn insert(&self, batch: Arc<InsertBatch>) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        self.with_writer(move |conn| {
            insert_all(conn, &batch, &inner.rollups).map_err(classify)?;
            inner.changed(
                batch
                    .events
                    .iter()
                    .map(|e| &e.site_id)
                    .chain(batch.sessions.iter().map(|row| &row.session.site_id)),
            );
            Ok(())
        })
        .await
    }

    async fn queue_position(&self) -> Result<Option<u64>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare("SELECT position FROM queue_checkpoint WHERE id = 1")
                .map_err(unavailable)?;
            let mut rows = stmt.query([]).map_err(unavailable)?;
            match rows.next().map_err(unavailable)? {
                Some(row) => Ok(Some(row.get(0).map_err(unavailable)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn newest_visit_end_ms(&self) -> Result<Option<i64>, StoreError> {
        self.with_reader(|conn| {
            conn.query_row("SELECT epoch_ms(max(end_ts)) FROM sessions", [], |row| {
                row.get(0)
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn imported_visits_until_ms(&self) -> Result<Option<i64>, StoreError> {
        let until = self
            .inner
            .imported_visits_until
            .load(std::sync::atomic::Ordering::Acquire);
        Ok((until != i64::MIN).then_some(until))
    }

    async fn open_sessions(&self, since_ms: i64) -> Result<Vec<StoredVisit>, StoreError> {
        self.with_reader(move |conn| {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE sign = 1 AND end_ts >= ? \
                 QUALIFY row_number() OVER (PARTITION BY site_id, session_id ORDER BY version DESC) = 1"
            );
            let sessions =
                collect_rows(conn, &sql, params![timestamp(since_ms)], session_from_row)
                    .map_err(unavailable)?;
            with_extents(conn, sessions).map_err(unavailable)
        })
        .await
    }

    async fn visits_of(
        &self,
        site: &SiteId,
        visitors: Vec<u64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredVisit>, StoreError> {
        let site = site.as_str().to_owned();
        self.with_reader(move |conn| {
            let mut sessions = Vec::new();
            for chunk in visitors.chunks(LOOKUP_CHUNK) {
                let listed = numbers(chunk.iter().copied());
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE site_id = ? \
                     AND visitor_id IN ({listed}) AND sign = 1 AND end_ts >= ? AND start_ts <= ? \
                     QUALIFY row_number() OVER (PARTITION BY session_id ORDER BY version DESC) = 1"
                );
                let found = collect_rows(
                    conn,
                    &sql,
                    params![site, timestamp(from_ms), timestamp(to_ms)],
                    session_from_row,
                )
                .map_err(unavailable)?;
                sessions.extend(found);
            }
            with_extents(conn, sessions).map_err(unavailable)
        })
        .await
    }

    async fn client_id_fingerprints(
        &self,
        received_since_ms: i64,
        newest: usize,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        if newest == 0 {
            return Ok(Vec::new());
        }
        self.with_reader(move |conn| {
            let since = timestamp(received_since_ms);
            // Ids received per second, newest first (a day is at most 86,400 rows): the
            // second from which on the newest `newest` were received. Only ids from then on
            // are read. None: fewer were stored.
            let per_second = collect_rows(
                conn,
                "SELECT epoch_ms(date_trunc('second', received_at)) AS second, count(*) \
                 FROM events WHERE client_event_id AND received_at >= ? \
                 GROUP BY second ORDER BY second DESC",
                params![since],
                |row| Ok((row.get::<i64>(0)?, row.get::<u64>(1)?)),
            )
            .map_err(unavailable)?;
            let mut counted = 0u64;
            let cutoff = per_second.into_iter().find_map(|(second, count)| {
                counted += count;
                (counted >= newest as u64).then_some(second)
            });
            let from = cutoff.map_or(since, |second| timestamp(second.max(received_since_ms)));
            // Rows are hashed as they are streamed: the ids themselves are never all in
            // memory, nor more fingerprints than asked for (and the ties at the cutoff), and
            // the vector is sized for them at once (grown by doubling, millions of
            // fingerprints briefly took twice their bytes while starting).
            let mut fingerprints = Vec::with_capacity(usize::try_from(counted).unwrap_or(0));
            for_each_row(
                conn,
                "SELECT epoch_ms(received_at), site_id, event_id FROM events \
                 WHERE client_event_id AND received_at >= ?",
                params![from],
                |row| {
                    let site = SiteId(row.get(1)?);
                    let id: String = row.get(2)?;
                    fingerprints.push((row.get(0)?, client_id_fingerprint(&site, &id)));
                    Ok(())
                },
            )
            .map_err(unavailable)?;
            Ok(fingerprints)
        })
        .await
    }

    async fn stored_client_ids(
        &self,
        site: &SiteId,
        ids: Vec<String>,
        received_since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let site = site.as_str().to_owned();
        self.with_reader(move |conn| {
            let mut stored = Vec::new();
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!(
                    "SELECT event_id FROM events WHERE site_id = ? AND client_event_id \
                     AND received_at >= ? AND event_id IN ({marks})"
                );
                let mut values: Vec<Value> =
                    vec![site.clone().into(), timestamp(received_since_ms)];
                values.extend(chunk.iter().cloned().map(Value::from));
                let mut stmt = conn.prepare(&sql).map_err(unavailable)?;
                let found = stmt
                    .query_map(duckdb::params_from_iter(values), |row| row.get(0))
                    .map_err(unavailable)?;
                for id in found {
                    stored.push(id.map_err(unavailable)?);
                }
            }
            Ok(stored)
        })
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.with_writer(|conn| conn.execute_batch("CHECKPOINT").map_err(unavailable))
            .await
    }

    async fn delete_site_events(&self, site: &SiteId) -> Result<Deleted, StoreError> {
        let site_id = site.as_str().to_owned();
        let inner = self.inner.clone();
        self.with_writer(move |conn| {
            inner
                .rollups
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            let tx = conn.transaction().map_err(unavailable)?;
            let events = tx
                .execute("DELETE FROM events WHERE site_id = ?", params![site_id])
                .map_err(unavailable)?;
            rollups::delete(&tx, &SiteId(site_id.clone()), i64::MAX).map_err(unavailable)?;
            tx.execute(
                "DELETE FROM event_props WHERE site_id = ?",
                params![site_id],
            )
            .map_err(unavailable)?;
            let visits: i64 = tx
                .query_row(
                    "SELECT count(DISTINCT session_id) FROM sessions WHERE site_id = ?",
                    params![site_id],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            tx.execute("DELETE FROM sessions WHERE site_id = ?", params![site_id])
                .map_err(unavailable)?;
            imported::delete(&tx, &SiteId(site_id.clone()), None).map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            inner.changed([&SiteId(site_id.clone())]);
            Ok(Deleted {
                events: events as u64,
                visits: visits as u64,
            })
        })
        .await
    }
}

#[async_trait::async_trait]
impl EventData for DuckDbStore {
    async fn delete_before(&self, site: &SiteId, before_ms: i64) -> Result<Deleted, StoreError> {
        let site_id = site.as_str().to_owned();
        let oldest = self
            .with_reader({
                let site_id = site_id.clone();
                move |conn| {
                    conn.query_row(
                        "SELECT least((SELECT epoch_ms(min(ts)) FROM events WHERE site_id = ?1), \
                         (SELECT epoch_ms(min(start_ts)) FROM sessions WHERE site_id = ?1))",
                        params![site_id],
                        |row| row.get::<_, Option<i64>>(0),
                    )
                    .map_err(unavailable)
                }
            })
            .await?;
        let mut deleted = Deleted::default();
        let Some(mut lower) = oldest else {
            return Ok(deleted);
        };
        // One day of data per transaction, oldest first: each step holds the writer briefly,
        // and an interrupted run leaves no gap (everything older than its bound is gone).
        while lower < before_ms {
            let upper = (lower + RETENTION_STEP_MS).min(before_ms);
            let site_id = site_id.clone();
            let inner = self.inner.clone();
            let step = self
                .with_writer(move |conn| {
                    inner
                        .rollups
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                    let tx = conn.transaction().map_err(unavailable)?;
                    let events = tx
                        .execute(
                            "DELETE FROM events WHERE site_id = ? AND ts < ?",
                            params![site_id, timestamp(upper)],
                        )
                        .map_err(unavailable)?;
                    tx.execute(
                        "DELETE FROM event_props WHERE site_id = ? AND ts < ?",
                        params![site_id, timestamp(upper)],
                    )
                    .map_err(unavailable)?;
                    let visits: i64 = tx
                        .query_row(
                            "SELECT count(DISTINCT session_id) FROM sessions \
                             WHERE site_id = ? AND start_ts < ?",
                            params![site_id, timestamp(upper)],
                            |row| row.get(0),
                        )
                        .map_err(unavailable)?;
                    tx.execute(
                        "DELETE FROM sessions WHERE site_id = ? AND start_ts < ?",
                        params![site_id, timestamp(upper)],
                    )
                    .map_err(unavailable)?;
                    // Whole days before the bound go; the day it cuts is recounted.
                    let site = SiteId(site_id.clone());
                    rollups::delete(&tx, &site, Span::Day.start_of(upper)).map_err(unavailable)?;
                    rollups::rebuild(&tx, Some(&site), upper, upper + 1).map_err(unavailable)?;
                    tx.commit().map_err(unavailable)?;
                    inner.changed([&site]);
                    Ok(Deleted {
                        events: events as u64,
                        visits: visits as u64,
                    })
                })
                .await?;
            deleted.events += step.events;
            deleted.visits += step.visits;
            lower = upper;
        }
        Ok(deleted)
    }

    async fn stored_since(
        &self,
        stored_since_ms: i64,
        events_since_ms: i64,
        limit: usize,
    ) -> Result<Vec<(Event, i64)>, StoreError> {
        self.with_reader(move |conn| {
            let stored_at = EVENT_COLUMNS.split(',').count();
            let sql = format!(
                "SELECT {EVENT_COLUMNS}, epoch_ms(received_at) FROM events \
                 WHERE ts >= ? AND received_at >= ? ORDER BY received_at, event_id LIMIT ?"
            );
            collect_rows(
                conn,
                &sql,
                params![
                    timestamp(events_since_ms),
                    timestamp(stored_since_ms),
                    limit as i64
                ],
                |row| Ok((event_from_row(row)?, row.get::<i64>(stored_at)?)),
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn export_events(
        &self,
        site: &SiteId,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let site_id = site.as_str().to_owned();
        self.with_reader(move |conn| {
            let (after_ms, after_id) = after.unwrap_or((i64::MIN, String::new()));
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = ? \
                 AND (epoch_ms(ts) > ? OR (epoch_ms(ts) = ? AND event_id > ?)) \
                 ORDER BY ts, event_id LIMIT ?"
            );
            collect_rows(
                conn,
                &sql,
                params![site_id, after_ms, after_ms, after_id, limit as i64],
                event_from_row,
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn import_events(&self, events: Vec<Event>) -> Result<u64, StoreError> {
        let inner = self.inner.clone();
        self.with_writer(move |conn| {
            let sites: std::collections::HashSet<SiteId> =
                events.iter().map(|e| e.site_id.clone()).collect();
            // An imported visit ends at its last event at the latest (one it continues
            // ended before).
            let newest = events.iter().map(|e| e.timestamp_ms).max();
            let imported = import_all(conn, events, &inner.rollups).map_err(classify)?;
            if let (Some(newest), true) = (newest, imported > 0) {
                inner
                    .imported_visits_until
                    .fetch_max(newest, std::sync::atomic::Ordering::AcqRel);
            }
            inner.changed(&sites);
            Ok(imported)
        })
        .await
    }

    async fn import_aggregates(
        &self,
        site: &SiteId,
        source: &str,
        range: (String, String),
        tables: Vec<(ImportedTable, Vec<ImportedRow>)>,
    ) -> Result<SiteImport, StoreError> {
        let (site, source, inner) = (site.clone(), source.to_owned(), self.inner.clone());
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.with_writer(move |conn| {
            let import =
                imported::insert(conn, &site, &source, range, now_ms, tables).map_err(classify)?;
            inner.changed([&site]);
            Ok(import)
        })
        .await
    }

    async fn site_imports(&self, site: &SiteId) -> Result<Vec<SiteImport>, StoreError> {
        let site = site.clone();
        self.with_reader(move |conn| imported::list(conn, &site).map_err(unavailable))
            .await
    }

    async fn delete_import(&self, site: &SiteId, id: u64) -> Result<bool, StoreError> {
        let (site, inner) = (site.clone(), self.inner.clone());
        self.with_writer(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            let deleted = imported::delete(&tx, &site, Some(id)).map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            inner.changed([&site]);
            Ok(deleted > 0)
        })
        .await
    }
}

const EVENT_COLUMNS: &str = "site_id, event_id, client_event_id, name, epoch_ms(ts), visitor_id, \
    session_id, user_id, client_session_id, hostname, pathname, referrer, referrer_source, \
    channel, utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, region, city, \
    browser, browser_version, os, os_version, device, screen, props_json, revenue_micros, \
    revenue_currency, interactive, scroll_depth, engagement_time_ms";

fn event_from_row(row: &StreamRow<'_>) -> duckdb::Result<Event> {
    let props_json: String = row.get(28)?;
    let micros: Option<i64> = row.get(29)?;
    let currency: Option<String> = row.get(30)?;
    Ok(Event {
        site_id: SiteId(row.get(0)?),
        event_id: row.get(1)?,
        event_id_from_client: row.get(2)?,
        name: row.get(3)?,
        timestamp_ms: row.get(4)?,
        visitor_id: row.get(5)?,
        previous_visitor_id: None,
        session_id: row.get(6)?,
        user_id: row.get(7)?,
        client_session_id: row.get(8)?,
        hostname: row.get(9)?,
        pathname: row.get(10)?,
        visit: visit_attributes(row, 11)?,
        props: if props_json.is_empty() {
            Default::default()
        } else {
            serde_json::from_str(&props_json).unwrap_or_default()
        },
        revenue: micros
            .zip(currency)
            .map(|(amount_micros, currency)| Revenue {
                amount_micros,
                currency,
            }),
        interactive: row.get(31)?,
        scroll_depth: row.get(32)?,
        engagement_time_ms: row.get::<Option<u32>>(33)?.unwrap_or(0),
    })
}

/// Rebuilds, from their stored events, the visits listed in `import_sessions`: one state
/// each (`sign = 1`, version 1), with the sessionizer's rules (entry and exit pages are the
/// first and last page views, else the first event's page; attributes of the first event;
/// engagement events shape no visit).
const REBUILD_SESSIONS: &str = "
DELETE FROM sessions WHERE (site_id, session_id) IN (SELECT site_id, session_id FROM import_sessions);
INSERT INTO sessions
SELECT e.site_id, e.session_id, arg_min(visitor_id, ts), 1, 1, min(ts), max(ts),
    (epoch_ms(max(ts)) - epoch_ms(min(ts))) // 1000,
    count(*) FILTER (WHERE name = 'pageview'), count(*),
    count(*) FILTER (WHERE name = 'pageview' OR interactive),
    CASE WHEN count(*) FILTER (WHERE name = 'pageview' OR interactive) <= 1 THEN 1 ELSE 0 END,
    coalesce(arg_min(pathname, ts) FILTER (WHERE name = 'pageview'), arg_min(pathname, ts)),
    coalesce(arg_max(pathname, ts) FILTER (WHERE name = 'pageview'), arg_min(pathname, ts)),
    arg_min(hostname, ts), arg_min(referrer, ts), arg_min(referrer_source, ts),
    arg_min(channel, ts), arg_min(utm_source, ts), arg_min(utm_medium, ts),
    arg_min(utm_campaign, ts), arg_min(utm_content, ts), arg_min(utm_term, ts),
    arg_min(country, ts), arg_min(region, ts), arg_min(city, ts), arg_min(browser, ts),
    arg_min(browser_version, ts), arg_min(os, ts), arg_min(os_version, ts),
    arg_min(device, ts), arg_min(screen, ts),
    arg_min(user_id, ts) FILTER (WHERE user_id IS NOT NULL)
FROM events e JOIN import_sessions s ON e.site_id = s.site_id AND e.session_id = s.session_id
WHERE e.name <> 'engagement'
GROUP BY e.site_id, e.session_id;
";

fn import_all(
    conn: &mut Connection,
    events: Vec<Event>,
    cache: &Mutex<rollups::RollupCache>,
) -> duckdb::Result<u64> {
    // The rebuild below rewrites rollup hours behind the cache's back.
    cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS import_ids (site_id VARCHAR, event_id VARCHAR);
         CREATE TEMP TABLE IF NOT EXISTS import_sessions (site_id VARCHAR, session_id UBIGINT);
         DELETE FROM import_ids; DELETE FROM import_sessions;",
    )?;
    {
        let mut ids = tx.appender("import_ids")?;
        for e in &events {
            ids.append_row(params![e.site_id.as_str(), e.event_id])?;
        }
        ids.flush()?;
    }
    let stored: std::collections::HashSet<(String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT DISTINCT i.site_id, i.event_id FROM import_ids i \
             JOIN events e ON e.site_id = i.site_id AND e.event_id = i.event_id",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut seen = std::collections::HashSet::new();
    let fresh: Vec<Event> = events
        .into_iter()
        .filter(|e| {
            let key = (e.site_id.as_str().to_owned(), e.event_id.clone());
            !stored.contains(&key) && seen.insert(key)
        })
        .collect();
    if !fresh.is_empty() {
        append_events(&tx, &fresh, &now_timestamp())?;
        let visits: std::collections::HashSet<(&str, u64)> = fresh
            .iter()
            .map(|e| (e.site_id.as_str(), e.session_id))
            .collect();
        {
            let mut sessions = tx.appender("import_sessions")?;
            for (site, session) in visits {
                sessions.append_row(params![site, session])?;
            }
            sessions.flush()?;
        }
        // Imported events, and the visits rebuilt from them, are recounted by whole days:
        // the days of the events, and the days the visits started on before and after
        // (a visit of an earlier page that goes on in this one starts on an earlier day).
        let mut spans: HashMap<String, (i64, i64)> = HashMap::new();
        let mut widen = |site: &str, from: i64, to: i64| {
            let span = spans.entry(site.to_owned()).or_insert((i64::MAX, i64::MIN));
            *span = (span.0.min(from), span.1.max(to));
        };
        for e in &fresh {
            widen(e.site_id.as_str(), e.timestamp_ms, e.timestamp_ms);
        }
        let before = import_visit_starts(&tx)?;
        tx.execute_batch(REBUILD_SESSIONS)?;
        for (site, from, to) in before.into_iter().chain(import_visit_starts(&tx)?) {
            widen(&site, from, to);
        }
        for (site, (from, to)) in spans {
            rollups::rebuild(&tx, Some(&SiteId(site)), from, to + 1)?;
        }
    }
    tx.commit()?;
    Ok(fresh.len() as u64)
}

/// Per site, the earliest and latest start of the visits an import rebuilds
/// (`import_sessions`), as the visit log holds them now.
fn import_visit_starts(tx: &duckdb::Transaction<'_>) -> duckdb::Result<Vec<(String, i64, i64)>> {
    collect_rows(
        tx,
        "SELECT site_id, epoch_ms(min(start_ts)), epoch_ms(max(start_ts)) FROM sessions \
         WHERE (site_id, session_id) IN (SELECT site_id, session_id FROM import_sessions) \
         GROUP BY site_id",
        params![],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
}

/// How much event time one retention step deletes.
const RETENTION_STEP_MS: i64 = 86_400_000;

fn to_duckdb(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Bool(v) => Value::Boolean(*v),
        SqlValue::Int(v) => Value::BigInt(*v),
        SqlValue::UInt(v) => Value::UBigInt(*v),
        SqlValue::Float(v) => Value::Double(*v),
        SqlValue::Text(v) => Value::Text(v.clone()),
        SqlValue::TimestampMs(v) => timestamp(*v),
        SqlValue::Blob(v) => Value::Blob(v.clone()),
    }
}

fn from_duckdb(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Boolean(v) => SqlValue::Bool(v),
        ValueRef::TinyInt(v) => SqlValue::Int(v.into()),
        ValueRef::SmallInt(v) => SqlValue::Int(v.into()),
        ValueRef::Int(v) => SqlValue::Int(v.into()),
        ValueRef::BigInt(v) => SqlValue::Int(v),
        ValueRef::HugeInt(v) => SqlValue::Int(v.clamp(i64::MIN.into(), i64::MAX.into()) as i64),
        ValueRef::UTinyInt(v) => SqlValue::UInt(v.into()),
        ValueRef::USmallInt(v) => SqlValue::UInt(v.into()),
        ValueRef::UInt(v) => SqlValue::UInt(v.into()),
        ValueRef::UBigInt(v) => SqlValue::UInt(v),
        ValueRef::Float(v) => SqlValue::Float(v.into()),
        ValueRef::Double(v) => SqlValue::Float(v),
        ValueRef::Decimal(v) => SqlValue::Float(v.to_string().parse().unwrap_or(0.0)),
        ValueRef::Timestamp(unit, v) => SqlValue::TimestampMs(unit.to_micros(v) / 1000),
        ValueRef::Date32(days) => SqlValue::TimestampMs(i64::from(days) * 86_400_000),
        ValueRef::Text(bytes) => SqlValue::Text(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => SqlValue::Blob(bytes.to_vec()),
        other => SqlValue::Text(format!("{other:?}")),
    }
}

#[async_trait::async_trait]
impl SqlRunner for DuckDbStore {
    fn dialect(&self) -> Dialect {
        Dialect::DuckDb
    }

    fn has_rollups(&self) -> bool {
        // While missing cells are being built, the events answer.
        self.rollup_rebuild_days_left() == 0
            || self.inner.rebuild_cells_usable.load(Ordering::Relaxed)
    }

    fn data_version(&self, site: &SiteId) -> u64 {
        let versions = self
            .inner
            .versions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Every day a rollup rebuild writes changes cells of every site.
        versions.get(site).copied().unwrap_or(0) + self.inner.rebuilt_days.load(Ordering::Relaxed)
    }

    async fn run(&self, sql: Sql) -> Result<Vec<Row>, RunError> {
        let limit_bytes = self
            .inner
            .max_result_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        let rows = self
            .with_reader(move |conn| {
                let mut stmt = conn.prepare(&sql.text).map_err(unavailable)?;
                let params: Vec<Value> = sql.params.iter().map(to_duckdb).collect();
                let mut rows = stmt.query(params_from_iter(params)).map_err(unavailable)?;
                let mut out = Vec::new();
                let mut bytes = 0usize;
                while let Some(row) = rows.next().map_err(unavailable)? {
                    let width = row.as_ref().column_count();
                    let mut cells = Vec::with_capacity(width);
                    for index in 0..width {
                        let cell = from_duckdb(row.get_ref(index).map_err(unavailable)?);
                        bytes += cell_bytes(&cell);
                        cells.push(cell);
                    }
                    if bytes > limit_bytes {
                        return Ok(Err(RunError::TooLarge { limit_bytes }));
                    }
                    out.push(cells);
                }
                Ok(Ok(out))
            })
            .await;
        match rows {
            Ok(rows) => rows,
            Err(err) if err.to_string().contains("Out of Memory") => Err(RunError::OutOfMemory {
                message: err.to_string(),
            }),
            Err(err) if err.to_string().contains("INTERRUPT") => Err(RunError::Interrupted),
            Err(err) => Err(RunError::failed(err)),
        }
    }
}

/// What a cell takes in memory, roughly: the value and the text or bytes it owns.
fn cell_bytes(cell: &SqlValue) -> usize {
    std::mem::size_of::<SqlValue>()
        + match cell {
            SqlValue::Text(text) => text.len(),
            SqlValue::Blob(bytes) => bytes.len(),
            _ => 0,
        }
}

fn scope_name(scope: ApiKeyScope) -> &'static str {
    match scope {
        ApiKeyScope::Ingest => "ingest",
        ApiKeyScope::Read => "read",
        ApiKeyScope::Admin => "admin",
    }
}

fn scope_from_name(name: &str) -> ApiKeyScope {
    match name {
        "ingest" => ApiKeyScope::Ingest,
        "admin" => ApiKeyScope::Admin,
        _ => ApiKeyScope::Read,
    }
}

impl DuckDbStore {
    /// Every row of one metadata statement, read with `row`.
    async fn read_all<T: Send + 'static>(
        &self,
        sql: &'static str,
        row: fn(&duckdb::Row<'_>) -> duckdb::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare(sql).map_err(unavailable)?;
            let rows = stmt
                .query_map([], row)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok(rows)
        })
        .await
    }

    /// Runs metadata statements that take one parameter, `id`, in one transaction.
    async fn execute_each(
        &self,
        statements: &'static [&'static str],
        id: String,
    ) -> Result<(), StoreError> {
        self.with_writer(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            for sql in statements {
                tx.execute(sql, params![id]).map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    /// Runs one metadata statement on the writer.
    async fn execute(&self, sql: &'static str, values: Vec<Value>) -> Result<(), StoreError> {
        self.with_writer(move |conn| {
            conn.execute(sql, params_from_iter(values))
                .map_err(|err| conflict_or_unavailable(err, "row"))?;
            Ok(())
        })
        .await
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn conflict_or_unavailable(err: duckdb::Error, what: &str) -> StoreError {
    if err.to_string().contains("Constraint Error") {
        StoreError::Conflict { what: what.into() }
    } else {
        unavailable(err)
    }
}

fn rules_json(site: &Site) -> Result<String, StoreError> {
    serde_json::to_string(&site.rules).map_err(|err| StoreError::Rejected {
        message: err.to_string(),
    })
}

#[async_trait::async_trait]
impl MetaStore for DuckDbStore {
    async fn sites(&self) -> Result<Vec<Site>, StoreError> {
        self.read_all(
            "SELECT id, name, domain, timezone, created_at_ms, retention_days, \
                     coalesce(rules_json, '{}') FROM sites ORDER BY id",
            |row| {
                let rules: String = row.get(6)?;
                Ok(Site {
                    id: SiteId(row.get(0)?),
                    name: row.get(1)?,
                    domain: row.get(2)?,
                    timezone: row.get(3)?,
                    created_at_ms: row.get(4)?,
                    retention_days: row.get(5)?,
                    // Written by `rules_json` below; a damaged value means no rules
                    // rather than a server that cannot start.
                    rules: serde_json::from_str(&rules).unwrap_or_else(|err| {
                        tracing::error!(error = %err, "unreadable site rules; ignoring them");
                        Default::default()
                    }),
                })
            },
        )
        .await
    }

    async fn insert_site(&self, site: &Site) -> Result<(), StoreError> {
        let site = site.clone();
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO sites (id, name, domain, timezone, created_at_ms, retention_days, rules_json) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![
                    site.id.as_str(),
                    site.name,
                    site.domain,
                    site.timezone,
                    site.created_at_ms,
                    site.retention_days,
                    rules_json(&site)?,
                ],
            )
            .map_err(|err| conflict_or_unavailable(err, "site"))?;
            Ok(())
        })
        .await
    }

    async fn update_site(&self, site: &Site) -> Result<(), StoreError> {
        let site = site.clone();
        self.with_writer(move |conn| {
            let updated = conn
                .execute(
                    "UPDATE sites SET name = ?, timezone = ?, retention_days = ?, rules_json = ? WHERE id = ?",
                    params![
                        site.name,
                        site.timezone,
                        site.retention_days,
                        rules_json(&site)?,
                        site.id.as_str()
                    ],
                )
                .map_err(unavailable)?;
            if updated == 0 {
                return Err(StoreError::Rejected {
                    message: format!("no site {}", site.id),
                });
            }
            Ok(())
        })
        .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.read_all(
            "SELECT id, site_id, scope, secret_sha256, created_at_ms, revoked, org_id, \
                     coalesce(name, ''), last_used_at_ms FROM api_keys ORDER BY created_at_ms, id",
            |row| {
                let scope: String = row.get(2)?;
                Ok(ApiKey {
                    id: row.get(0)?,
                    site_id: row.get::<_, Option<String>>(1)?.map(SiteId),
                    scope: scope_from_name(&scope),
                    secret_sha256: row.get(3)?,
                    created_at_ms: row.get(4)?,
                    revoked: row.get(5)?,
                    org_id: row.get::<_, Option<String>>(6)?.map(OrgId),
                    name: row.get(7)?,
                    last_used_at_ms: row.get(8)?,
                })
            },
        )
        .await
    }

    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO api_keys (id, site_id, scope, secret_sha256, created_at_ms, revoked, \
                 org_id, name, last_used_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    key.id,
                    key.site_id.as_ref().map(|s| s.as_str()),
                    scope_name(key.scope),
                    key.secret_sha256,
                    key.created_at_ms,
                    key.revoked,
                    key.org_id.as_ref().map(|o| o.as_str()),
                    key.name,
                    key.last_used_at_ms,
                ],
            )
            .map_err(|err| conflict_or_unavailable(err, "api key"))?;
            Ok(())
        })
        .await
    }

    async fn revoke_api_key(&self, id: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE api_keys SET revoked = true WHERE id = ?",
            vec![text(id)],
        )
        .await
    }

    async fn touch_api_key(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE api_keys SET last_used_at_ms = ? WHERE id = ?",
            vec![at_ms.into(), text(id)],
        )
        .await
    }

    async fn delete_site(&self, site: &SiteId) -> Result<(), StoreError> {
        self.execute_each(
            &[
                "DELETE FROM share_links WHERE site_id = ?",
                "DELETE FROM named_share_links WHERE site_id = ?",
                "DELETE FROM goals WHERE site_id = ?",
                "DELETE FROM funnels WHERE site_id = ?",
                "DELETE FROM api_keys WHERE site_id = ?",
                "DELETE FROM sites WHERE id = ?",
            ],
            site.as_str().to_owned(),
        )
        .await
    }

    async fn orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.read_all(
            "SELECT id, name, created_at_ms FROM orgs ORDER BY id",
            |row| {
                Ok(Org {
                    id: OrgId(row.get(0)?),
                    name: row.get(1)?,
                    created_at_ms: row.get(2)?,
                })
            },
        )
        .await
    }

    async fn insert_org(&self, org: &Org) -> Result<(), StoreError> {
        let org = org.clone();
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO orgs VALUES (?, ?, ?)",
                params![org.id.as_str(), org.name, org.created_at_ms],
            )
            .map_err(|err| conflict_or_unavailable(err, "organisation"))?;
            Ok(())
        })
        .await
    }

    async fn site_orgs(&self) -> Result<Vec<(SiteId, OrgId)>, StoreError> {
        self.read_all("SELECT id, coalesce(org_id, 'default') FROM sites", |row| {
            Ok((SiteId(row.get(0)?), OrgId(row.get(1)?)))
        })
        .await
    }

    async fn set_site_org(&self, site: &SiteId, org: &OrgId) -> Result<(), StoreError> {
        self.execute(
            "UPDATE sites SET org_id = ? WHERE id = ?",
            vec![text(org.as_str()), text(site.as_str())],
        )
        .await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read_all(
            "SELECT id, email, password_hash, created_at_ms FROM users ORDER BY email",
            |row| {
                Ok(User {
                    id: row.get(0)?,
                    email: row.get(1)?,
                    password_hash: row.get(2)?,
                    created_at_ms: row.get(3)?,
                })
            },
        )
        .await
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let user = user.clone();
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?)",
                params![user.id, user.email, user.password_hash, user.created_at_ms],
            )
            .map_err(|err| conflict_or_unavailable(err, "user"))?;
            Ok(())
        })
        .await
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?",
            vec![text(password_hash), text(user_id)],
        )
        .await
    }

    async fn delete_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.execute_each(
            &[
                "DELETE FROM user_sessions WHERE user_id = ?",
                "DELETE FROM memberships WHERE user_id = ?",
                "DELETE FROM users WHERE id = ?",
            ],
            user_id.to_owned(),
        )
        .await
    }

    async fn memberships(&self) -> Result<Vec<Membership>, StoreError> {
        self.read_all("SELECT user_id, org_id, role FROM memberships", |row| {
            let role: String = row.get(2)?;
            Ok(Membership {
                user_id: row.get(0)?,
                org_id: OrgId(row.get(1)?),
                role: Role::parse(&role).unwrap_or(Role::Viewer),
            })
        })
        .await
    }

    async fn put_membership(&self, membership: &Membership) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO memberships VALUES (?, ?, ?)",
            vec![
                text(&membership.user_id),
                text(membership.org_id.as_str()),
                text(membership.role.as_str()),
            ],
        )
        .await
    }

    async fn user_sessions(&self) -> Result<Vec<UserSession>, StoreError> {
        let sql = "SELECT token_sha256, user_id, created_at_ms, expires_at_ms FROM user_sessions";
        let rows = self
            .read_all(sql, |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(token_sha256, user_id, created_at_ms, expires_at_ms)| UserSession {
                    token_sha256,
                    user_id,
                    created_at_ms,
                    expires_at_ms,
                },
            )
            .collect())
    }

    async fn insert_user_session(&self, session: &UserSession) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO user_sessions VALUES (?, ?, ?, ?)",
            vec![
                text(&session.token_sha256),
                text(&session.user_id),
                session.created_at_ms.into(),
                session.expires_at_ms.into(),
            ],
        )
        .await
    }

    async fn delete_user_sessions(
        &self,
        token_sha256: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(token) = token_sha256 {
            self.execute(
                "DELETE FROM user_sessions WHERE token_sha256 = ?",
                vec![text(token)],
            )
            .await?;
        }
        if let Some(user) = user_id {
            self.execute(
                "DELETE FROM user_sessions WHERE user_id = ?",
                vec![text(user)],
            )
            .await?;
        }
        Ok(())
    }

    async fn share_links(&self) -> Result<Vec<ShareLink>, StoreError> {
        self.read_all(
            "SELECT site_id, token_sha256, password_hash, created_at_ms FROM share_links",
            |row| {
                Ok(ShareLink {
                    site_id: SiteId(row.get(0)?),
                    token_sha256: row.get(1)?,
                    password_hash: row.get(2)?,
                    created_at_ms: row.get(3)?,
                })
            },
        )
        .await
    }

    async fn put_share_link(&self, link: &ShareLink) -> Result<(), StoreError> {
        let link = link.clone();
        self.with_writer(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            tx.execute(
                "DELETE FROM share_links WHERE site_id = ?",
                params![link.site_id.as_str()],
            )
            .map_err(unavailable)?;
            tx.execute(
                "INSERT INTO share_links VALUES (?, ?, ?, ?)",
                params![
                    link.site_id.as_str(),
                    link.token_sha256,
                    link.password_hash,
                    link.created_at_ms
                ],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn delete_share_link(&self, site: &SiteId) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM share_links WHERE site_id = ?",
            vec![text(site.as_str())],
        )
        .await
    }

    async fn set_site_domain(&self, site: &SiteId, domain: &str) -> Result<(), StoreError> {
        let (site, domain) = (site.clone(), domain.to_owned());
        self.with_writer(move |conn| {
            let updated = conn
                .execute(
                    "UPDATE sites SET domain = ? WHERE id = ?",
                    params![domain, site.as_str()],
                )
                .map_err(|err| conflict_or_unavailable(err, "domain"))?;
            if updated == 0 {
                return Err(StoreError::Rejected {
                    message: format!("no site {site}"),
                });
            }
            Ok(())
        })
        .await
    }

    async fn custom_props(&self) -> Result<Vec<(SiteId, Vec<String>)>, StoreError> {
        let rows = self
            .read_all(
                "SELECT id, custom_props_json FROM sites WHERE custom_props_json IS NOT NULL",
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, json)| {
                // Written by `set_custom_props` below; a damaged value means none declared
                // rather than a server that cannot start.
                let props = serde_json::from_str(&json).unwrap_or_else(|err| {
                    tracing::error!(site = %id, error = %err, "unreadable custom properties");
                    Vec::new()
                });
                (SiteId(id), props)
            })
            .collect())
    }

    async fn set_custom_props(&self, site: &SiteId, props: &[String]) -> Result<(), StoreError> {
        let json = serde_json::to_string(props).map_err(|err| StoreError::Rejected {
            message: err.to_string(),
        })?;
        self.execute(
            "UPDATE sites SET custom_props_json = ? WHERE id = ?",
            vec![text(&json), text(site.as_str())],
        )
        .await
    }

    async fn named_share_links(&self) -> Result<Vec<NamedShareLink>, StoreError> {
        self.read_all(
            "SELECT site_id, name, token_sha256, created_at_ms FROM named_share_links \
             ORDER BY site_id, name",
            |row| {
                Ok(NamedShareLink {
                    site_id: SiteId(row.get(0)?),
                    name: row.get(1)?,
                    token_sha256: row.get(2)?,
                    created_at_ms: row.get(3)?,
                })
            },
        )
        .await
    }

    async fn put_named_share_link(&self, link: &NamedShareLink) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO named_share_links VALUES (?, ?, ?, ?)",
            vec![
                text(link.site_id.as_str()),
                text(&link.name),
                text(&link.token_sha256),
                link.created_at_ms.into(),
            ],
        )
        .await
    }

    async fn goals(&self) -> Result<Vec<Goal>, StoreError> {
        let rows = self
            .read_all(
                "SELECT id, site_id, display_name, kind_json, currency, created_at_ms FROM goals \
                 ORDER BY id",
                |row| {
                    Ok((
                        row.get::<_, u64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, i64>(5)?,
                    ))
                },
            )
            .await?;
        let mut goals = Vec::with_capacity(rows.len());
        for (id, site, display_name, kind, currency, created_at_ms) in rows {
            // Written by `insert_goal` below; a damaged row is left out, not a server that
            // cannot start.
            match serde_json::from_str::<GoalKind>(&kind) {
                Ok(kind) => goals.push(Goal {
                    id,
                    site_id: SiteId(site),
                    kind,
                    display_name,
                    currency,
                    created_at_ms,
                }),
                Err(err) => tracing::error!(goal = id, error = %err, "unreadable goal"),
            }
        }
        Ok(goals)
    }

    async fn insert_goal(&self, goal: &Goal) -> Result<(), StoreError> {
        let kind = serde_json::to_string(&goal.kind).map_err(|err| StoreError::Rejected {
            message: err.to_string(),
        })?;
        let goal = goal.clone();
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO goals VALUES (?, ?, ?, ?, ?, ?)",
                params![
                    goal.id,
                    goal.site_id.as_str(),
                    goal.display_name,
                    kind,
                    goal.currency,
                    goal.created_at_ms
                ],
            )
            .map_err(|err| conflict_or_unavailable(err, "goal"))?;
            Ok(())
        })
        .await
    }

    async fn delete_goal(&self, site: &SiteId, id: u64) -> Result<bool, StoreError> {
        let site = site.as_str().to_owned();
        self.with_writer(move |conn| {
            let deleted = conn
                .execute(
                    "DELETE FROM goals WHERE site_id = ? AND id = ?",
                    params![site, id],
                )
                .map_err(unavailable)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn funnels(&self) -> Result<Vec<Funnel>, StoreError> {
        let rows = self
            .read_all(
                "SELECT id, site_id, name, definition_json, created_at_ms FROM funnels \
                 ORDER BY site_id, created_at_ms, id",
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                },
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, site, name, json, created_at_ms)| {
                // Written by `insert_funnel` below; a damaged one is left out rather than
                // keeping the server from starting.
                match serde_json::from_str(&json) {
                    Ok(definition) => Some(Funnel {
                        id,
                        site_id: SiteId(site),
                        name,
                        definition,
                        created_at_ms,
                    }),
                    Err(err) => {
                        tracing::error!(funnel = %id, error = %err, "unreadable funnel");
                        None
                    }
                }
            })
            .collect())
    }

    async fn insert_funnel(&self, funnel: &Funnel) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(&funnel.definition).map_err(|err| StoreError::Rejected {
                message: err.to_string(),
            })?;
        let funnel = funnel.clone();
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO funnels VALUES (?, ?, ?, ?, ?)",
                params![
                    funnel.id,
                    funnel.site_id.as_str(),
                    funnel.name,
                    json,
                    funnel.created_at_ms
                ],
            )
            .map_err(|err| conflict_or_unavailable(err, "funnel"))?;
            Ok(())
        })
        .await
    }

    async fn delete_funnel(&self, id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM funnels WHERE id = ?", vec![text(id)])
            .await
    }

    async fn day_salt(&self, day: i64, proposed: [u8; 16]) -> Result<[u8; 16], StoreError> {
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO day_salts VALUES (?, ?) ON CONFLICT DO NOTHING",
                params![day, proposed.to_vec()],
            )
            .map_err(unavailable)?;
            let stored: Vec<u8> = conn
                .query_row(
                    "SELECT salt FROM day_salts WHERE day = ?",
                    params![day],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            stored.try_into().map_err(|_| StoreError::Rejected {
                message: format!("the stored salt of day {day} is not 16 bytes"),
            })
        })
        .await
    }

    async fn forget_salts_before(&self, day: i64) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM day_salts WHERE day < ?",
            vec![Value::BigInt(day)],
        )
        .await
    }
}
