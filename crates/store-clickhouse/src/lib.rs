//! `ClickHouseStore`: Heartbeat's event store on a ClickHouse cluster (18.16 and later),
//! spoken to over HTTP. It implements `EventWriter`, `EventData` and `SqlRunner` of
//! `heartbeat-store`; metadata (`MetaStore`) lives elsewhere (DuckDB or PostgreSQL).
//!
//! # Tables and sharding
//!
//! Each shard holds local tables (`events_local`, `event_props_local`, `sessions_local`, a
//! `CollapsingMergeTree(sign)`, `site_imports_local`, `imported_*_local`), and on every shard
//! a `Distributed` table over them carries the name the query crate uses (`events`,
//! `event_props`, `sessions`, `site_imports`, `imported_*`), with DuckDB's columns (plus
//! exact milliseconds beside each timestamp, and `batch_position`), so compiled queries read
//! the whole cluster from any shard. Events, their properties and visit states are sharded
//! by `visitor_id` (a visitor's events and visits on one shard), an import's rows by its id.
//! `visit_states_local` holds the visit states again, sorted by (site, end) and fed by a
//! materialized view of `sessions_local`: the processor's lookups (the visits an event batch
//! may continue, the visits still open) ask for a range of ends, which `sessions`' order
//! (by visit) could only answer by scanning all of a site's visits.
//! `queue_positions` and `schema_migrations` are plain tables; only the first shard's
//! `queue_positions` is used. The schema is applied to each shard's URL in turn at
//! [`ClickHouseStore::open`] (`schema.rs`).
//!
//! Writes go through the `Distributed` tables with `insert_distributed_sync=1`: an insert
//! returns once every shard stored its part. Deletes are mutations
//! (`ALTER TABLE ... DELETE`) on each shard's local tables, waited for in
//! `system.mutations` (18.16 has no `mutations_sync`), so a read after a delete sees it.
//!
//! # Exactly once
//!
//! ClickHouse has no transaction across tables (or shards). An insert writes visit rows,
//! event properties and events, in that order (a reader that sees a batch's events sees its
//! visits), each row tagged with the batch's queue position (`batch_position`), and the
//! queue position last: the position is the commit. Rows whose
//! `batch_position` is above the committed position belong to an insert that never
//! committed (a crash, a failed write); before its first write or read of the processor's
//! state, and after any failed insert, the store deletes them (a mutation, waited for) and
//! only then goes on, so the processor's retry, or its replay from the committed position,
//! writes them once. A merge may already have collapsed a committed visit state with the
//! uncommitted row cancelling it; a visit the rollback leaves without a live state is built
//! again from its committed events (and `visit_states` gets `sessions`' live state where it
//! lost it). The cost: one `UInt64` column per row, one count over it when the
//! processor starts, and a mutation only when something was left half written. Only the
//! processor may call [`heartbeat_store::EventWriter`]'s methods: that rollback would
//! otherwise delete another writer's insert in progress. Queries may see an uncommitted
//! insert's rows for the moment it takes to commit or roll back.
//!
//! `import_events` skips events whose (site, event id) is stored (one lookup per site and
//! 1,000 ids), stores the new ones, and rebuilds their visits from all their stored events
//! by cancelling the visits' live states (`sign = -1`) and writing the rebuilt ones: two
//! inserts, not atomic (a failure between them leaves the events without rebuilt visits).
//! An aggregates import writes its rows first and its `site_imports` row last.
//!
//! # Queries
//!
//! [`SqlRunner::run`] writes each `?` as its value's literal, runs the statement on the first
//! shard (its `Distributed` tables fan out) with a query id, `readonly=2` and
//! `max_execution_time`, and reads `JSONCompact` rows. Two settings make the query crate's
//! SQL mean what it means on DuckDB: `distributed_product_mode = 'local'` (a subquery of
//! `IN` or `JOIN` over a `Distributed` table, inside a query that fans out, reads each
//! shard's own rows: right for the per-visit and per-visitor subqueries the query crate
//! writes, since a visitor's rows share a shard; a subquery over several visitors' rows,
//! as a user's journey, says `GLOBAL IN` through the dialect) and `join_use_nulls = 1`
//! (an outer join's missing side is NULL, not its type's default). Two more keep a wide
//! grouping (a funnel's or paths' per-visit arrays over millions of visits) inside the
//! memory a query may use: `distributed_aggregation_memory_efficient` (the shards' groups
//! merged a bucket at a time) and, at half the server's `max_memory_usage` (read at open),
//! `max_bytes_before_external_group_by` and `_sort` (grouping and sorting go on on disk).
//! Dropping the future before the
//! answer is read sends `KILL QUERY` for that id (18.16 goes on with a query whose HTTP
//! client went away); an answer above `max_result_bytes` is refused and killed. No rollups
//! yet (`has_rollups` is false: queries read events). `data_version` is a counter in this
//! process, bumped on each change of a site's data: several API nodes over one cluster will
//! need a shared one.
//!
//! # What ClickHouse 18.16 lacks
//!
//! A newer ClickHouse would do better with: `DateTime64` (timestamps here are whole
//! seconds for queries, exact milliseconds only in the store's own `*_ms` columns); query
//! parameters (values are escaped literals here, `bind.rs`); `mutations_sync` and
//! lightweight `DELETE` (deletes here poll `system.mutations`); `ON CLUSTER` DDL with
//! Keeper (the schema is applied shard by shard); `TTL` (retention is `delete_before`'s
//! mutations); window functions and table CTEs (the newest visit state is `argMax` by
//! version; funnels and paths walk each visit's or person's events as one sorted array, and
//! read a named subquery by writing it again, `compile/funnel/arrays.rs` and
//! `compile/paths/arrays.rs` of the query crate); `fsync_after_insert` (see [`ClickHouseStore`]'s `flush`);
//! `insert_deduplication_token` for idempotent retries.
//!
//! # Tests
//!
//! The tests run against the two-shard cluster of `scripts/services`:
//!
//! ```text
//! scripts/services start
//! source "$(scripts/services env)"
//! cargo test -p heartbeat-store-clickhouse
//! ```
//!
//! Each test store gets a new database (`heartbeat_test_<random>`); the tests fail, never
//! skip, without `HEARTBEAT_TEST_CLICKHOUSE_URLS` and `HEARTBEAT_TEST_CLICKHOUSE_CLUSTER`.

mod bind;
mod http;
mod schema;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heartbeat_model::SiteId;
use heartbeat_query::{Dialect, Row, RunError, Sql, SqlRunner, SqlValue};
use heartbeat_store::StoreError;
use serde_json::Value;

use crate::http::{parse_json_compact, ChError, Http, Request};

/// Where the cluster is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct ClickHouseOptions {
    /// Each shard's HTTP address (`http://host:8123`), in the order of the cluster's
    /// `remote_servers` configuration; one address: an unsharded server.
    pub shard_urls: Vec<String>,
    /// The cluster's name in the servers' `remote_servers` configuration.
    pub cluster: String,
    /// The database holding Heartbeat's tables (created if missing); letters, digits and
    /// `_`.
    pub database: String,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long one of the store's own statements may take.
    pub request_timeout: Duration,
    /// How long a query ([`SqlRunner::run`]) may run (also ClickHouse's
    /// `max_execution_time`).
    pub query_timeout: Duration,
    /// How long a delete waits for its mutations.
    pub mutation_timeout: Duration,
    /// The most bytes one query's rows may take ([`RunError::TooLarge`] beyond).
    pub max_result_bytes: usize,
}

impl ClickHouseOptions {
    /// Options with default timeouts (5 s to connect, 60 s per statement, 120 s per query,
    /// 300 s per delete) and a 256 MiB limit on a query's rows.
    pub fn new(shard_urls: Vec<String>, cluster: &str, database: &str) -> Self {
        ClickHouseOptions {
            shard_urls,
            cluster: cluster.to_owned(),
            database: database.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            query_timeout: Duration::from_secs(120),
            mutation_timeout: Duration::from_secs(300),
            max_result_bytes: 256 << 20,
        }
    }
}

/// The event store on a ClickHouse cluster. Cheap to clone.
///
/// `flush` does nothing, because there is nothing a client of 18.16 can do: every insert
/// has returned only once each shard wrote its part (`insert_distributed_sync`), and 18.16
/// has no statement or setting that makes a server fsync its parts (a newer ClickHouse has
/// the `fsync_after_insert` table setting); durability across a power loss is the
/// servers' (replicas, the page cache's writeback).
#[derive(Clone)]
pub struct ClickHouseStore {
    inner: Arc<Inner>,
    writer: Arc<Writer>,
}

struct Inner {
    http: Http,
    options: ClickHouseOptions,
    /// Per site, a count of changes: the data version cached answers check. In this
    /// process only: several API nodes over one cluster need a shared one (a counter in
    /// the cluster or the cache).
    versions: Mutex<HashMap<SiteId, u64>>,
    /// Half the memory the first shard lets one query use (`max_memory_usage`), where a
    /// query's grouping and sorting go to disk instead of failing; `None` when unlimited.
    spill_bytes: Option<u64>,
}

/// One queue partition's writer: the processor of that partition is its only user.
struct Writer {
    partition: Partition,
    /// Whether rows of an uncommitted insert may be stored (at start, after a failed
    /// insert): checked and rolled back before the processor's next write or read.
    needs_recovery: AtomicBool,
    /// One recovery, insert or import id at a time.
    write_lock: tokio::sync::Mutex<()>,
    /// The `seq` of the last queue position written.
    last_seq: AtomicU64,
}

/// Which part of the events a store's writer stores: the visitors with
/// [`heartbeat_model::partition_of`]`(visitor_id, count) == index`, read from that queue
/// partition by one processor at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// Every visitor: one queue, one processor.
    pub const WHOLE: Partition = Partition { index: 0, count: 1 };

    /// The rows of this partition's visitors, as a condition on `visitor_id`.
    fn condition(self) -> String {
        if self.count <= 1 {
            "1".to_owned()
        } else {
            format!("visitor_id % {} = {}", self.count, self.index)
        }
    }

    /// The `batch_position` of rows stored from this partition's queue `position`: the
    /// partition in the high bits, so each partition rolls back only its own rows (the
    /// whole store's partition 0 writes plain positions).
    fn tag(self, position: u64) -> u64 {
        (u64::from(self.index) << PARTITION_SHIFT) | position
    }

    /// The rows this partition stored past its committed `position`.
    fn uncommitted(self, position: u64) -> String {
        format!(
            "batch_position > {} AND batch_position < {}",
            self.tag(position),
            (u64::from(self.index) + 1) << PARTITION_SHIFT
        )
    }
}

/// Queue positions stay below 2^40 (a trillion messages); the partition takes the bits above.
const PARTITION_SHIFT: u32 = 40;

/// Half the first shard's `max_memory_usage` for this user, `None` when it is unlimited (0).
async fn spill_bytes(http: &Http, options: &ClickHouseOptions) -> Result<Option<u64>, StoreError> {
    let rows = http
        .rows(
            &options.shard_urls[0],
            "system",
            "SELECT value FROM system.settings WHERE name = 'max_memory_usage'".into(),
        )
        .await?;
    let limit = match rows.first().and_then(|row| row.first()) {
        Some(Value::String(text)) => text.parse::<u64>().unwrap_or(0),
        Some(other) => http::cell::u64(other)?,
        None => 0,
    };
    Ok((limit > 0).then_some(limit / 2))
}

/// Creates the database and applies the migrations `url`'s shard has not applied.
async fn migrate(inner: &Inner, url: &str) -> Result<(), StoreError> {
    let db = &inner.options.database;
    let http = &inner.http;
    http.execute(url, None, format!("CREATE DATABASE IF NOT EXISTS {db}"))
        .await?;
    http.execute(
        url,
        None,
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, \
             applied_at DateTime) ENGINE = TinyLog"
        ),
    )
    .await?;
    let applied = http
        .rows(
            url,
            db,
            "SELECT count(), max(version) FROM schema_migrations".into(),
        )
        .await?;
    let applied = match applied.first() {
        Some(row) if http::cell::u64(&row[0])? > 0 => http::cell::u64(&row[1])?,
        _ => 0,
    };
    let migrations = schema::migrations(db, &inner.options.cluster);
    for (index, statements) in migrations.iter().enumerate() {
        let version = index as u64 + 1;
        if version <= applied {
            continue;
        }
        for statement in statements {
            http.execute(url, None, statement.clone()).await?;
        }
        http.execute(
            url,
            None,
            format!("INSERT INTO {db}.schema_migrations VALUES ({version}, now())"),
        )
        .await?;
    }
    Ok(())
}

fn plain_name(name: &str, what: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Rejected {
            message: format!("the {what} {name:?} is not a plain name (letters, digits, _)"),
        })
    }
}

impl ClickHouseStore {
    /// Connects to every shard, creates the database and applies pending migrations on
    /// each.
    pub async fn open(options: ClickHouseOptions) -> Result<Self, StoreError> {
        plain_name(&options.database, "database")?;
        plain_name(&options.cluster, "cluster")?;
        if options.shard_urls.is_empty() {
            return Err(StoreError::Rejected {
                message: "no ClickHouse shard URL".into(),
            });
        }
        let http = Http::new(options.connect_timeout, options.request_timeout)?;
        let spill_bytes = spill_bytes(&http, &options).await?;
        let inner = Arc::new(Inner {
            http,
            options,
            versions: Mutex::new(HashMap::new()),
            spill_bytes,
        });
        for url in &inner.options.shard_urls {
            migrate(&inner, url).await?;
        }
        ClickHouseStore::with_writer(inner, Partition::WHOLE).await
    }

    /// The same store whose writer stores queue partition `partition`: its own queue
    /// position, rollback and `open_sessions` (this partition's visitors only). Queries and
    /// [`heartbeat_store::EventData`] are the whole store's either way.
    pub async fn partition(&self, partition: Partition) -> Result<Self, StoreError> {
        if partition.count == 0 || partition.index >= partition.count {
            return Err(StoreError::Rejected {
                message: format!(
                    "partition {} of {} does not exist",
                    partition.index, partition.count
                ),
            });
        }
        ClickHouseStore::with_writer(self.inner.clone(), partition).await
    }

    async fn with_writer(inner: Arc<Inner>, partition: Partition) -> Result<Self, StoreError> {
        let store = ClickHouseStore {
            inner,
            writer: Arc::new(Writer {
                partition,
                needs_recovery: AtomicBool::new(true),
                write_lock: tokio::sync::Mutex::new(()),
                last_seq: AtomicU64::new(0),
            }),
        };
        let seq = store
            .first_rows(format!(
                "SELECT max(seq) FROM queue_positions WHERE partition = {}",
                partition.index
            ))
            .await?;
        let seq = seq
            .first()
            .and_then(|row| row.first())
            .map(http::cell::u64)
            .transpose()?
            .unwrap_or(0);
        store.writer.last_seq.store(seq, Ordering::SeqCst);
        Ok(store)
    }

    /// The first shard's URL: where queries and reads of `Distributed` tables go.
    fn first_url(&self) -> &str {
        &self.inner.options.shard_urls[0]
    }

    fn db(&self) -> &str {
        &self.inner.options.database
    }

    /// The rows of one of the store's own `SELECT`s, on the first shard.
    async fn first_rows(&self, sql: String) -> Result<Vec<Vec<Value>>, ChError> {
        self.inner.http.rows(self.first_url(), self.db(), sql).await
    }

    /// Inserts JSON rows into a table through the first shard.
    async fn insert_rows(
        &self,
        table: &str,
        rows: &[serde_json::Map<String, Value>],
    ) -> Result<(), ChError> {
        self.inner
            .http
            .insert(self.first_url(), self.db(), table, rows)
            .await
    }

    /// Runs `ALTER TABLE <table>_local DELETE WHERE <condition>` for each of `tables` on
    /// every shard, then waits until every shard's `system.mutations` shows them done.
    async fn delete_where(&self, tables: &[&str], condition: &str) -> Result<(), StoreError> {
        let db = self.db();
        for url in &self.inner.options.shard_urls {
            for table in tables {
                self.inner
                    .http
                    .execute(
                        url,
                        Some(db),
                        format!("ALTER TABLE {db}.{table}_local DELETE WHERE {condition}"),
                    )
                    .await?;
            }
        }
        let deadline = tokio::time::Instant::now() + self.inner.options.mutation_timeout;
        for url in &self.inner.options.shard_urls {
            loop {
                let pending = self
                    .inner
                    .http
                    .rows(
                        url,
                        db,
                        format!(
                            "SELECT count() FROM system.mutations WHERE database = {} \
                             AND is_done = 0",
                            http::quote(db)
                        ),
                    )
                    .await?;
                let pending = pending
                    .first()
                    .and_then(|row| row.first())
                    .map(http::cell::u64)
                    .transpose()?
                    .unwrap_or(0);
                if pending == 0 {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(StoreError::Unavailable {
                        message: format!(
                            "{pending} mutations of {db} on {url} still running after {:?}",
                            self.inner.options.mutation_timeout
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Marks the data of `sites` changed.
    fn changed<'a>(&self, sites: impl IntoIterator<Item = &'a SiteId>) {
        let mut versions = self
            .inner
            .versions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for site in sites {
            *versions.entry(site.clone()).or_default() += 1;
        }
    }
}

/// A running query's id on its server: dropping it before [`KillOnDrop::disarm`] asks the
/// server to kill the query (a caller that gave up leaves no work behind).
struct KillOnDrop {
    http: Http,
    url: String,
    query_id: String,
    armed: bool,
}

impl KillOnDrop {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (http, url, query_id) = (
            self.http.clone(),
            std::mem::take(&mut self.url),
            std::mem::take(&mut self.query_id),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = http.kill(&url, &query_id).await {
                    tracing::warn!(%query_id, %err, "could not kill an abandoned query");
                }
            });
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

/// A `JSONCompact` cell as a [`SqlValue`], by its column's ClickHouse type.
fn sql_value(ty: &str, cell: Value) -> SqlValue {
    let ty = ty
        .strip_prefix("LowCardinality(")
        .map_or(ty, |t| t.trim_end_matches(')'));
    let ty = ty
        .strip_prefix("Nullable(")
        .map_or(ty, |t| t.trim_end_matches(')'));
    if cell.is_null() {
        return SqlValue::Null;
    }
    let text = |cell: &Value| match cell {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if ty.starts_with("UInt") {
        match cell.as_u64().or_else(|| text(&cell).parse().ok()) {
            Some(v) => SqlValue::UInt(v),
            None => SqlValue::Text(text(&cell)),
        }
    } else if ty.starts_with("Int") {
        match cell.as_i64().or_else(|| text(&cell).parse().ok()) {
            Some(v) => SqlValue::Int(v),
            None => SqlValue::Text(text(&cell)),
        }
    } else if ty.starts_with("Float") || ty.starts_with("Decimal") {
        match cell.as_f64().or_else(|| text(&cell).parse().ok()) {
            Some(v) => SqlValue::Float(v),
            None => SqlValue::Float(f64::NAN),
        }
    } else if ty.starts_with("DateTime") {
        let text = text(&cell);
        match chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S") {
            Ok(at) => SqlValue::TimestampMs(at.and_utc().timestamp_millis()),
            Err(_) => SqlValue::Text(text),
        }
    } else if ty == "Date" {
        let text = text(&cell);
        match chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
            Ok(day) => SqlValue::TimestampMs(
                day.and_hms_opt(0, 0, 0)
                    .map_or(0, |at| at.and_utc().timestamp_millis()),
            ),
            Err(_) => SqlValue::Text(text),
        }
    } else {
        // String, FixedString, Enum, UUID; arrays and tuples as their JSON.
        SqlValue::Text(text(&cell))
    }
}

#[async_trait::async_trait]
impl SqlRunner for ClickHouseStore {
    fn dialect(&self) -> Dialect {
        Dialect::ClickHouse
    }

    fn has_rollups(&self) -> bool {
        false
    }

    fn data_version(&self, site: &SiteId) -> u64 {
        let versions = self
            .inner
            .versions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        versions.get(site).copied().unwrap_or(0)
    }

    async fn run(&self, sql: Sql) -> Result<Vec<Row>, RunError> {
        let text = bind::bind(&sql)?;
        let options = &self.inner.options;
        let limit_bytes = options.max_result_bytes;
        let query_id = uuid::Uuid::new_v4().simple().to_string();
        let guard = KillOnDrop {
            http: self.inner.http.clone(),
            url: self.first_url().to_owned(),
            query_id: query_id.clone(),
            armed: true,
        };
        let mut request = Request::new(
            self.first_url(),
            Some(self.db()),
            format!("{text}\nFORMAT JSONCompact"),
        );
        request.query_id = Some(&query_id);
        request.timeout = Some(options.query_timeout + Duration::from_secs(5));
        request.settings = vec![
            (
                "max_execution_time",
                options.query_timeout.as_secs().max(1).to_string(),
            ),
            ("readonly", "2".to_owned()),
            // A subquery of `IN` or `JOIN` over a `Distributed` table reads each shard's
            // local table on that shard: a visitor's events, properties and visits are on
            // one shard, so the per-visitor conditions the query crate writes are right
            // there (and no set is shipped between shards, as `GLOBAL` would).
            ("distributed_product_mode", "local".to_owned()),
            // Rows an outer join finds no match for get NULLs, as in standard SQL (not
            // their types' defaults).
            ("join_use_nulls", "1".to_owned()),
            // The shards' partial groups are merged a bucket at a time, not all at once:
            // a per-visit grouping (funnels, paths) of millions of visits fits.
            ("distributed_aggregation_memory_efficient", "1".to_owned()),
        ];
        if let Some(bytes) = self.inner.spill_bytes {
            // Past half the query's memory, grouping and sorting go on on disk.
            for name in [
                "max_bytes_before_external_group_by",
                "max_bytes_before_external_sort",
            ] {
                request.settings.push((name, bytes.to_string()));
            }
        }
        let mut response = self.inner.http.send(request).await?;
        // The answer's text is read only up to a bound, so a huge answer is refused before
        // it is all in memory (JSON takes a few times less than the cells it becomes at
        // most, so this bound never refuses an answer that fits).
        let body_limit = limit_bytes.saturating_mul(4).saturating_add(64 << 10);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| RunError::failed(format!("ClickHouse unreachable: {err}")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > body_limit {
                // `guard` kills the query as it drops.
                return Err(RunError::TooLarge { limit_bytes });
            }
        }
        guard.disarm();
        let text = String::from_utf8_lossy(&body);
        let (types, data) = parse_json_compact(&text)?;
        let mut bytes = 0usize;
        let mut rows = Vec::with_capacity(data.len());
        for cells in data {
            let row: Row = cells
                .into_iter()
                .zip(&types)
                .map(|(cell, ty)| sql_value(ty, cell))
                .collect();
            bytes += row.iter().map(cell_bytes).sum::<usize>();
            if bytes > limit_bytes {
                return Err(RunError::TooLarge { limit_bytes });
            }
            rows.push(row);
        }
        Ok(rows)
    }
}
