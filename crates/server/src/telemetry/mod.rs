//! What the server tells its operators: Prometheus metrics (`GET /metrics`), request ids and
//! the per-request log span.
//!
//! Metric names follow `heartbeat_<area>_<what>_<unit>`; labels are few and of low cardinality
//! (a route template, a method, a status code, a reason), never a URL, a site or a user agent.
//! Every metric is listed in [`METRICS`] with its help text; `deploy/grafana/heartbeat.json`
//! charts them.
//!
//! The recorder is process-wide (the `metrics` facade has one global recorder), so two servers
//! started in one process (as some tests do) share their counters.

pub mod http;
pub mod metered;

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use heartbeat_processor::ProcessorStats;
use heartbeat_queue::EventQueue;
use heartbeat_store_duckdb::DuckDbStore;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use metered::{MeteredQueue, MeteredReads, MeteredWrites};

pub const HTTP_REQUESTS: &str = "heartbeat_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "heartbeat_http_request_duration_seconds";
pub const INGEST_EVENTS_ACCEPTED: &str = "heartbeat_ingest_events_accepted_total";
pub const INGEST_EVENTS_DROPPED: &str = "heartbeat_ingest_events_dropped_total";
pub const INGEST_REQUESTS_REJECTED: &str = "heartbeat_ingest_requests_rejected_total";
pub const QUEUE_APPEND_DURATION: &str = "heartbeat_queue_append_duration_seconds";
pub const QUEUE_PENDING: &str = "heartbeat_queue_pending_bytes";
pub const QUEUE_PENDING_MESSAGES: &str = "heartbeat_queue_pending_messages";
pub const PROCESSOR_LAG: &str = "heartbeat_processor_lag_seconds";
pub const PROCESSOR_EVENTS_STORED: &str = "heartbeat_processor_events_stored_total";
pub const PROCESSOR_EVENTS_DROPPED: &str = "heartbeat_processor_events_dropped_total";
pub const PROCESSOR_BATCHES: &str = "heartbeat_processor_batches_committed_total";
pub const PROCESSOR_STORE_RETRIES: &str = "heartbeat_processor_store_retries_total";
pub const PROCESSOR_OPEN_VISITS: &str = "heartbeat_processor_open_visits";
pub const PROCESSOR_VISITS_REOPENED: &str = "heartbeat_processor_visits_reopened_total";
pub const PROCESSOR_DEDUP_IDS: &str = "heartbeat_processor_dedup_ids";
pub const PROCESSOR_DEDUP_BYTES: &str = "heartbeat_processor_dedup_bytes";
pub const PROCESSOR_DEDUP_FORGOTTEN: &str = "heartbeat_processor_dedup_forgotten_early_total";
pub const STORE_INSERT_DURATION: &str = "heartbeat_store_insert_duration_seconds";
pub const STORE_LOOKUP_DURATION: &str = "heartbeat_store_lookup_duration_seconds";
pub const STORE_QUERY_DURATION: &str = "heartbeat_store_query_duration_seconds";
pub const STORE_QUERY_ERRORS: &str = "heartbeat_store_query_errors_total";
pub const QUERY_CACHE_HITS: &str = "heartbeat_query_cache_hits_total";
pub const QUERY_CACHE_MISSES: &str = "heartbeat_query_cache_misses_total";
pub const RETENTION_EVENTS_DELETED: &str = "heartbeat_retention_events_deleted_total";
pub const HTTP_RATE_LIMITED: &str = "heartbeat_http_rate_limited_total";
pub const SHARED_LIMITS_FALLBACK: &str = "heartbeat_shared_limits_fallback_total";
pub const CLUSTER_JOBS_LEADER: &str = "heartbeat_cluster_jobs_leader";
pub const QUERY_REFUSED: &str = "heartbeat_query_refused_total";
pub const QUERY_INTERRUPTED: &str = "heartbeat_query_interrupted_total";
pub const ALERTS_FIRED: &str = "heartbeat_alerts_fired_total";
pub const ALERT_EVALUATION_ERRORS: &str = "heartbeat_alert_evaluation_errors_total";
pub const ALERT_DELIVERIES: &str = "heartbeat_alert_deliveries_total";
pub const ALERT_DELIVERY_FAILURES: &str = "heartbeat_alert_delivery_failures_total";
pub const MEMORY_ALLOCATED: &str = "heartbeat_memory_allocated_bytes";
pub const MEMORY_RESIDENT: &str = "heartbeat_memory_resident_bytes";
pub const MEMORY_ACTIVE: &str = "heartbeat_memory_active_bytes";
pub const MEMORY_METADATA: &str = "heartbeat_memory_metadata_bytes";
pub const STORE_MEMORY: &str = "heartbeat_store_memory_bytes";
pub const STORE_SPILLED: &str = "heartbeat_store_spilled_bytes";
pub const ROLLUP_REBUILD_DAYS: &str = "heartbeat_rollup_rebuild_days";

/// Every metric with its help text, in the order `/metrics` documents them.
pub const METRICS: &[(&str, &str)] = &[
    (HTTP_REQUESTS, "HTTP requests answered, by route template, method and status."),
    (HTTP_REQUEST_DURATION, "Time to answer an HTTP request, by route template, method and status."),
    (INGEST_EVENTS_ACCEPTED, "Events acknowledged (durable in the queue), by route template."),
    (INGEST_EVENTS_DROPPED, "Events answered 202 but not stored, by reason (bot, headless_browser, missing_user_agent, spam_referrer, do_not_track, hostname_not_allowed, excluded_path, excluded_ip)."),
    (INGEST_REQUESTS_REJECTED, "Ingest requests refused, by reason (invalid, unauthorized, forbidden, unknown_site, too_large, queue_full, unavailable)."),
    (QUEUE_APPEND_DURATION, "Time for a record to become durable in the queue (group commit and fsync)."),
    (QUEUE_PENDING, "Bytes in the queue not yet stored by the processor (queues that count bytes: the write-ahead log)."),
    (QUEUE_PENDING_MESSAGES, "Messages in the queue not yet stored by the processor (queues that count messages: a broker)."),
    (PROCESSOR_LAG, "Age of the oldest record in the queue that is not stored yet; 0 when caught up."),
    (PROCESSOR_EVENTS_STORED, "Events written to the event store."),
    (PROCESSOR_EVENTS_DROPPED, "Events the processor did not store, by reason (duplicate, dead_letter, deleted_site, no_session_for_engagement)."),
    (PROCESSOR_BATCHES, "Processor steps committed to the store."),
    (PROCESSOR_STORE_RETRIES, "Store writes and lookups the processor retried."),
    (PROCESSOR_OPEN_VISITS, "Visits the sessionizer keeps in memory (at most processor.max_open_visits)."),
    (PROCESSOR_VISITS_REOPENED, "Visits loaded back from the store because a late event continued them."),
    (PROCESSOR_DEDUP_IDS, "Client-given event ids the dedup filter remembers (as fingerprints)."),
    (PROCESSOR_DEDUP_BYTES, "Bytes the dedup filter's fingerprints take (at most processor.dedup_max_bytes)."),
    (PROCESSOR_DEDUP_FORGOTTEN, "Client-given ids forgotten before the dedup window ended, to stay within processor.dedup_max_bytes."),
    (STORE_INSERT_DURATION, "Time of one event store insert transaction."),
    (STORE_LOOKUP_DURATION, "Time of one processor lookup in the event store, by lookup (visits: visits of late events no longer in memory; client_ids: the exact check behind a dedup filter hit)."),
    (STORE_QUERY_DURATION, "Time of one event store query (SQL compiled from an API query)."),
    (STORE_QUERY_ERRORS, "Event store queries that failed."),
    (QUERY_CACHE_HITS, "API queries answered from the query cache."),
    (QUERY_CACHE_MISSES, "API queries the query cache did not hold (or held stale)."),
    (RETENTION_EVENTS_DELETED, "Events deleted because they were older than their site's retention."),
    (HTTP_RATE_LIMITED, "Requests answered 429, by limit (client_ip, key, share_viewer, site_quota)."),
    (SHARED_LIMITS_FALLBACK, "Rate-limit checks decided by this node's own limiter because Redis could not be reached."),
    (CLUSTER_JOBS_LEADER, "1 while this node holds the cluster's jobs' lease and runs alerts, reports and retention (nodes sharing PostgreSQL), else 0."),
    (QUERY_REFUSED, "Reads refused, by endpoint and reason (busy: 503, too many running and waiting; too_large: 400, rows over query.max_memory_bytes)."),
    (QUERY_INTERRUPTED, "Reads stopped at their time budget (query.timeout_ms) and answered 503, by endpoint."),
    (ALERTS_FIRED, "Alert rules that fired."),
    (ALERT_EVALUATION_ERRORS, "Evaluations of alert rules (and reports' figures) that failed; the rule is tried again at the next interval."),
    (ALERT_DELIVERIES, "Webhook posts and emails delivered, by kind (alert, report)."),
    (ALERT_DELIVERY_FAILURES, "Deliveries given up on (kept with their reason), by kind."),
    (MEMORY_ALLOCATED, "Bytes the allocator (jemalloc, for Rust and DuckDB's C++) has handed out and not got back."),
    (MEMORY_RESIDENT, "Bytes of the allocator's pages resident in memory: the heap's part of the process's resident memory, its own bookkeeping and freed pages not yet handed back included."),
    (MEMORY_ACTIVE, "Bytes in the allocator's pages that hold allocations: above heartbeat_memory_allocated_bytes by the room left free inside them (fragmentation); heartbeat_memory_resident_bytes above it by freed pages not yet handed back and the allocator's own metadata."),
    (MEMORY_METADATA, "Bytes the allocator uses for its own bookkeeping."),
    (STORE_MEMORY, "Bytes DuckDB's buffer manager accounts for, by what holds them (tag: base_table, hash_table, order_by, ...; duckdb_memory()); store.memory_limit caps their sum. Only with the DuckDB store."),
    (STORE_SPILLED, "Bytes DuckDB has spilled to temporary files, by what spilled them (tag, as heartbeat_store_memory_bytes)."),
    (ROLLUP_REBUILD_DAYS, "Days of rollup cells still to be built again from the events (after an upgrade that asks for it, or on a store from before rollups), a day at a time beside the processor's writes; meanwhile queries read the events only where cells are missing. Only with the DuckDB store."),
];

/// Histogram buckets in seconds, from half a millisecond (an ingest request) to ten seconds (a
/// slow query).
const BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS_SECONDS)
            .expect("buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        for (name, help) in METRICS {
            metrics::describe_counter!(*name, *help);
        }
        // Histograms keep raw samples until upkeep folds them into buckets.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("heartbeat-metrics".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            })
            .expect("cannot start the metrics upkeep thread");
        handle
    })
}

/// What `/metrics` reads at scrape time besides the recorded counters: numbers other parts
/// keep themselves.
#[derive(Clone)]
pub struct Telemetry {
    pub processor: Arc<ProcessorStats>,
    pub queue: Arc<MeteredQueue>,
    /// The DuckDB store, whose memory accounts are read at each scrape; none with another
    /// engine.
    pub duckdb: Option<DuckDbStore>,
}

impl Telemetry {
    /// Publishes the memory figures (the allocator's, and DuckDB's accounts by tag) and the
    /// rollup rebuild's days left. Blocking (a statement on the store's monitoring
    /// connection): called off the async threads.
    pub fn sample_memory(&self) {
        #[cfg(not(feature = "system-allocator"))]
        {
            use tikv_jemalloc_ctl::{epoch, stats};
            // jemalloc's statistics are a snapshot taken when the epoch advances.
            if epoch::advance().is_ok() {
                if let Ok(bytes) = stats::allocated::read() {
                    metrics::gauge!(MEMORY_ALLOCATED).set(bytes as f64);
                }
                if let Ok(bytes) = stats::resident::read() {
                    metrics::gauge!(MEMORY_RESIDENT).set(bytes as f64);
                }
                if let Ok(bytes) = stats::active::read() {
                    metrics::gauge!(MEMORY_ACTIVE).set(bytes as f64);
                }
                if let Ok(bytes) = stats::metadata::read() {
                    metrics::gauge!(MEMORY_METADATA).set(bytes as f64);
                }
            }
        }
        let Some(store) = &self.duckdb else {
            return;
        };
        metrics::gauge!(ROLLUP_REBUILD_DAYS).set(store.rollup_rebuild_days_left() as f64);
        match store.memory() {
            Ok(memory) => {
                for m in &memory {
                    metrics::gauge!(STORE_MEMORY, "tag" => m.tag.clone()).set(m.bytes as f64);
                    metrics::gauge!(STORE_SPILLED, "tag" => m.tag.clone())
                        .set(m.spilled_bytes as f64);
                }
            }
            Err(err) => tracing::warn!(error = %err, "reading DuckDB's memory accounts failed"),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let stats = &self.processor;
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        metrics::counter!(PROCESSOR_EVENTS_STORED).absolute(load(&stats.events_stored));
        metrics::counter!(PROCESSOR_EVENTS_DROPPED, "reason" => "duplicate")
            .absolute(load(&stats.duplicates_dropped));
        metrics::counter!(PROCESSOR_EVENTS_DROPPED, "reason" => "dead_letter")
            .absolute(load(&stats.dead_lettered));
        metrics::counter!(PROCESSOR_EVENTS_DROPPED, "reason" => "deleted_site")
            .absolute(load(&stats.deleted_site_dropped));
        metrics::counter!(PROCESSOR_EVENTS_DROPPED, "reason" => "no_session_for_engagement")
            .absolute(load(&stats.engagements_dropped));
        metrics::counter!(PROCESSOR_BATCHES).absolute(load(&stats.batches_committed));
        metrics::counter!(PROCESSOR_STORE_RETRIES).absolute(load(&stats.store_retries));
        metrics::gauge!(PROCESSOR_OPEN_VISITS).set(load(&stats.open_visits) as f64);
        metrics::counter!(PROCESSOR_VISITS_REOPENED).absolute(load(&stats.visits_reopened));
        metrics::gauge!(PROCESSOR_DEDUP_IDS).set(load(&stats.dedup_ids) as f64);
        metrics::gauge!(PROCESSOR_DEDUP_BYTES).set(load(&stats.dedup_bytes) as f64);
        metrics::counter!(PROCESSOR_DEDUP_FORGOTTEN).absolute(load(&stats.dedup_forgotten_early));
        let backlog = self.queue.backlog();
        if let Some(bytes) = backlog.bytes {
            metrics::gauge!(QUEUE_PENDING).set(bytes as f64);
        }
        if let Some(messages) = backlog.messages {
            metrics::gauge!(QUEUE_PENDING_MESSAGES).set(messages as f64);
        }
        metrics::gauge!(PROCESSOR_LAG).set(self.queue.lag().as_secs_f64());
        let handle = prometheus();
        handle.run_upkeep();
        handle.render()
    }
}
