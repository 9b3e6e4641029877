//! Where the work of every read runs: parsing, DuckDB calls, merging, sorting and building
//! the JSON answer of `/api/v2/query`, the seeds' reads, exports and the live stream's
//! counts. None of it runs on the runtime that serves ingest and `/health`.
//!
//! - **Its own runtime.** Reads run on a runtime of their own, whose threads (and the
//!   blocking threads DuckDB calls run on) run at the idle CPU priority (`SCHED_IDLE`,
//!   `priority.rs`), so
//!   under a flood of reads the request threads still get the cores first.
//! - **Bounded concurrency.** At most `max_concurrent` reads run at once; up to
//!   `max_waiting` more wait for a turn. Beyond that a read is refused at once: 503 with
//!   `Retry-After`, counted in `heartbeat_query_refused_total{endpoint, reason="busy"}`.
//! - **A time budget.** A read that has not answered within `timeout` (waiting included) is
//!   answered 503 and stopped: dropping its task drops the store's statement futures, which
//!   interrupt DuckDB (`crates/store-duckdb`, `InterruptOnDrop`). Counted in
//!   `heartbeat_query_interrupted_total{endpoint}`. A client that goes away stops its read
//!   the same way.
//! - **A memory budget.** One statement's rows may take at most `max_memory_bytes`
//!   (`DuckDbStore::with_max_result_bytes`); beyond it the read answers 400 naming the
//!   setting. DuckDB's own memory is capped by `store.memory_limit`; work that needs more
//!   (and cannot spill to disk) answers the same 400, naming that setting.
//! - **Bounded width.** Ranges and time buckets are checked by `QueryBounds` before any
//!   work is done; rows per answer by pagination's limit.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::http::error::ApiError;
use crate::telemetry::{QUERY_INTERRUPTED, QUERY_REFUSED};

/// The settings of reads (`[query]` in the config file).
pub use crate::config::Query as QuerySettings;

/// The runtime reads run on, with their admission control.
pub struct QueryPool {
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    pub settings: QuerySettings,
}

impl QueryPool {
    pub fn new(settings: QuerySettings) -> std::io::Result<Self> {
        let max_concurrent = settings.max_concurrent.max(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("heartbeat-query")
            .worker_threads(max_concurrent.min(cores))
            // A query runs up to three statements at once, each on a blocking thread.
            .max_blocking_threads(max_concurrent * 3 + 2)
            .on_thread_start(crate::priority::idle_priority)
            .enable_all()
            .build()?;
        Ok(QueryPool {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            permits: Arc::new(Semaphore::new(max_concurrent)),
            waiting: AtomicUsize::new(0),
            settings,
        })
    }

    /// Runs `work` (a read's whole work, its answer serialized too) on the query runtime
    /// within the read's budget. `endpoint` labels the metrics (a route template).
    pub async fn run<T, F>(&self, endpoint: &str, work: F) -> Result<Response, ApiError>
    where
        T: IntoResponse,
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        self.compute(endpoint, async move {
            work.await.map(IntoResponse::into_response)
        })
        .await
    }

    /// Like [`run`](Self::run) for work whose result is not an answer yet (a page of an
    /// export, a count for the live stream).
    pub async fn compute<T, F>(&self, endpoint: &str, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let deadline = Instant::now() + self.settings.timeout();
        let permit = self.admit(endpoint, deadline).await?;
        let mut task = AbortOnDrop(self.handle.spawn(async move {
            let _permit = permit;
            work.await
        }));
        match tokio::time::timeout_at(deadline, &mut task.0).await {
            Ok(Ok(Err(err))) if err.error == crate::http::error::QUERY_TOO_LARGE => {
                metrics::counter!(QUERY_REFUSED, "endpoint" => endpoint.to_owned(), "reason" => "too_large")
                    .increment(1);
                Err(err)
            }
            Ok(Ok(answer)) => answer,
            Ok(Err(err)) => {
                tracing::error!(endpoint, error = %err, "query task failed");
                Err(ApiError::internal())
            }
            Err(_) => {
                // Dropping `task` aborts it; its store statements are interrupted.
                metrics::counter!(QUERY_INTERRUPTED, "endpoint" => endpoint.to_owned())
                    .increment(1);
                tracing::warn!(
                    endpoint,
                    timeout_ms = self.settings.timeout_ms,
                    "query interrupted"
                );
                Err(ApiError {
                    retry_after_s: Some(5),
                    ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Query timed out").with_detail(
                        "query",
                        format!(
                            "took longer than the {} ms a query may take (setting query.timeout_ms); \
                             narrow the date range or add filters",
                            self.settings.timeout_ms
                        ),
                    )
                })
            }
        }
    }

    /// A turn to run: at once, or after waiting (until `deadline`) among at most
    /// `max_waiting` others.
    async fn admit(
        &self,
        endpoint: &str,
        deadline: Instant,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let refuse = || {
            metrics::counter!(QUERY_REFUSED, "endpoint" => endpoint.to_owned(), "reason" => "busy")
                .increment(1);
            ApiError {
                retry_after_s: Some(1),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Too many queries").with_detail(
                    "query",
                    format!(
                        "{} queries are running and {} waiting (settings query.max_concurrent, \
                         query.max_waiting); retry shortly",
                        self.settings.max_concurrent, self.settings.max_waiting
                    ),
                )
            }
        };
        let Some(_waiting) = Waiting::enter(&self.waiting, self.settings.max_waiting) else {
            return Err(refuse());
        };
        match tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(refuse()),
        }
    }

    /// Reads running now.
    pub fn running(&self) -> usize {
        self.settings.max_concurrent.max(1) - self.permits.available_permits()
    }
}

impl Drop for QueryPool {
    fn drop(&mut self) {
        // Dropping a runtime blocks; this may run inside the serving runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A task aborted when its handle is dropped (the client went away, or the budget ran
/// out).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One place in the waiting line, left when dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(line: &'a AtomicUsize, most: usize) -> Option<Self> {
        line.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < most).then_some(n + 1)
        })
        .ok()
        .map(|_| Waiting(line))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;

    fn pool(max_concurrent: usize, max_waiting: usize, timeout_ms: u64) -> Arc<QueryPool> {
        Arc::new(
            QueryPool::new(QuerySettings {
                max_concurrent,
                max_waiting,
                timeout_ms,
                ..QuerySettings::default()
            })
            .unwrap(),
        )
    }

    /// A read that runs until `release` is notified.
    async fn held(release: Arc<tokio::sync::Notify>) -> Result<&'static str, ApiError> {
        release.notified().await;
        Ok("done")
    }

    #[tokio::test]
    async fn reads_beyond_the_running_and_waiting_ones_are_refused_at_once() {
        let pool = pool(1, 1, 10_000);
        let release = Arc::new(tokio::sync::Notify::new());
        let running = tokio::spawn({
            let (pool, release) = (pool.clone(), release.clone());
            async move { pool.run("/test", held(release)).await }
        });
        while pool.running() < 1 {
            tokio::task::yield_now().await;
        }
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run("/test", async { Ok("waited") }).await }
        });
        while pool.waiting.load(Ordering::Acquire) < 1 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run("/test", async { Ok("never") }).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.retry_after_s, Some(1));
        assert_eq!(refused.details[0].field, "query");
        release.notify_one();
        assert_eq!(running.await.unwrap().unwrap().status(), StatusCode::OK);
        assert_eq!(waiting.await.unwrap().unwrap().status(), StatusCode::OK);
        assert_eq!(pool.waiting.load(Ordering::Acquire), 0);
        assert_eq!(pool.running(), 0);
    }

    #[tokio::test]
    async fn a_read_over_its_time_is_answered_503_and_stopped() {
        let pool = pool(2, 2, 100);
        let dropped = Arc::new(AtomicBool::new(false));
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let guard = SetOnDrop(dropped.clone());
        let err = pool
            .run("/test", async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok("never")
            })
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.error, "Query timed out");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !dropped.load(Ordering::Acquire) {
            assert!(std::time::Instant::now() < deadline, "the read went on");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Its turn is free again.
        while pool.running() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the turn was not given back"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_read_runs_on_the_query_threads_at_a_lower_priority() {
        let pool = pool(1, 0, 10_000);
        let answer = pool
            .run("/test", async {
                let name = std::thread::current().name().map(str::to_owned);
                Ok(name.unwrap_or_default())
            })
            .await
            .unwrap();
        let body = axum::body::to_bytes(answer.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"heartbeat-query");
        #[cfg(target_os = "linux")]
        {
            let policy = pool
                .run("/test", async {
                    // SAFETY: sched_getscheduler reads the calling thread's policy.
                    Ok(unsafe { libc::sched_getscheduler(0) }.to_string())
                })
                .await
                .unwrap();
            let body = axum::body::to_bytes(policy.into_body(), 1024)
                .await
                .unwrap();
            assert_eq!(body, libc::SCHED_IDLE.to_string());
        }
    }
}
