//! Benchmark results: latency summaries from HDR histograms, the load and query reports, their
//! human-readable tables and their JSON files.
//!
//! Latencies are recorded in microseconds with three significant digits and reported in
//! milliseconds. The JSON file holds the same figures as the table, field names carry units.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A latency histogram in microseconds, up to one hour, three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    pub fn from_histogram(micros: &Histogram<u64>) -> Self {
        let ms = |value: u64| value as f64 / 1000.0;
        Self {
            samples: micros.len(),
            mean_ms: micros.mean() / 1000.0,
            p50_ms: ms(micros.value_at_quantile(0.50)),
            p95_ms: ms(micros.value_at_quantile(0.95)),
            p99_ms: ms(micros.value_at_quantile(0.99)),
            p999_ms: ms(micros.value_at_quantile(0.999)),
            max_ms: ms(micros.max()),
        }
    }
}

/// Requests that got no 202, by cause.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ErrorCounts {
    /// Answers with another status than 202, by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no answer: connect, write or read failed.
    pub connection: u64,
    /// Requests with no answer within the client's timeout.
    pub timeout: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.connection + self.timeout
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for (status, count) in &other.by_status {
            *self.by_status.entry(*status).or_default() += count;
        }
        self.connection += other.connection;
        self.timeout += other.timeout;
    }
}

/// Memory of the server process during the run, from `/proc/PID/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMemory {
    pub pid: u32,
    /// Highest VmRSS seen by sampling every 100 ms.
    pub peak_rss_kib: u64,
    /// VmHWM (the kernel's resident peak over the process lifetime) at the end of the run.
    pub vm_hwm_kib: Option<u64>,
    pub samples: u64,
}

/// Everything a `load` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub mode: String,
    pub url: String,
    pub concurrency: usize,
    /// Target request rate of an open-loop run; absent for a closed loop.
    pub rate_per_s: Option<f64>,
    pub batch_size: Option<usize>,
    pub elapsed_s: f64,
    pub requests_sent: u64,
    pub requests_accepted: u64,
    pub events_accepted: u64,
    pub requests_per_s: f64,
    pub accepted_events_per_s: f64,
    /// Closed loop: from sending to the end of the answer. Open loop: from the intended send
    /// time, so that a stalled server is not hidden by requests it delayed.
    pub latency: LatencySummary,
    pub errors: ErrorCounts,
    /// The first few error messages or bodies, to tell what went wrong.
    pub error_samples: Vec<String>,
    pub server_memory: Option<ServerMemory>,
}

impl LoadReport {
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let mut row = |label: &str, value: String| {
            let _ = writeln!(out, "{label:<22} {value}");
        };
        row("mode", self.mode.clone());
        row("url", self.url.clone());
        row(
            "loop",
            match self.rate_per_s {
                Some(rate) => format!("open, {rate} requests/s target"),
                None => "closed".to_string(),
            },
        );
        row("concurrency", self.concurrency.to_string());
        if let Some(batch_size) = self.batch_size {
            row("batch size", batch_size.to_string());
        }
        row("elapsed", format!("{:.2} s", self.elapsed_s));
        row("requests sent", self.requests_sent.to_string());
        row("requests accepted", self.requests_accepted.to_string());
        row("events accepted", self.events_accepted.to_string());
        row("requests/s", format!("{:.0}", self.requests_per_s));
        row(
            "accepted events/s",
            format!("{:.0}", self.accepted_events_per_s),
        );
        let latency = &self.latency;
        row("latency p50", format!("{:.3} ms", latency.p50_ms));
        row("latency p95", format!("{:.3} ms", latency.p95_ms));
        row("latency p99", format!("{:.3} ms", latency.p99_ms));
        row("latency p99.9", format!("{:.3} ms", latency.p999_ms));
        row("latency max", format!("{:.3} ms", latency.max_ms));
        row("latency mean", format!("{:.3} ms", latency.mean_ms));
        row("errors", self.errors.total().to_string());
        for (status, count) in &self.errors.by_status {
            row(&format!("  HTTP {status}"), count.to_string());
        }
        if self.errors.connection > 0 {
            row("  connection", self.errors.connection.to_string());
        }
        if self.errors.timeout > 0 {
            row("  timeout", self.errors.timeout.to_string());
        }
        for sample in &self.error_samples {
            row("  sample", sample.clone());
        }
        if let Some(memory) = &self.server_memory {
            row("server pid", memory.pid.to_string());
            row(
                "server peak RSS",
                format!("{:.1} MiB", memory.peak_rss_kib as f64 / 1024.0),
            );
            if let Some(hwm) = memory.vm_hwm_kib {
                row("server VmHWM", format!("{:.1} MiB", hwm as f64 / 1024.0));
            }
        }
        out
    }
}

/// The outcome of one dashboard query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryResult {
    pub name: String,
    /// Timed runs that completed (the warm-up is not counted).
    pub runs: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Rows in the warm-up answer's `results`, to spot empty answers.
    pub rows: Option<usize>,
    /// Why the query stopped: HTTP status and body, or a connection failure.
    pub error: Option<String>,
    /// The warm-up answer's `results`, for `raw` to compare with the raw engine's.
    pub answer: Option<serde_json::Value>,
    /// The range the server resolved the query to, as it echoes it (`query.date_range`):
    /// first and last instant, RFC 3339 in the site's time zone.
    pub date_range: Option<Vec<String>>,
}

/// Everything a `query` run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryReport {
    pub url: String,
    pub site_id: String,
    pub runs_per_query: u64,
    pub queries: Vec<QueryResult>,
    /// Memory of the server while the queries ran.
    pub server_memory: Option<ServerMemory>,
}

impl QueryReport {
    pub fn to_table(&self) -> String {
        let width = self
            .queries
            .iter()
            .map(|query| query.name.len())
            .max()
            .unwrap_or(5);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>10}  {:>10}  {:>6}  {:>5}  error",
            "query", "p50 ms", "p95 ms", "rows", "runs"
        );
        let ms = |value: Option<f64>| value.map_or("-".to_string(), |v| format!("{v:.2}"));
        for query in &self.queries {
            let _ = writeln!(
                out,
                "{:<width$}  {:>10}  {:>10}  {:>6}  {:>5}  {}",
                query.name,
                ms(query.p50_ms),
                ms(query.p95_ms),
                query.rows.map_or("-".to_string(), |rows| rows.to_string()),
                query.runs,
                query.error.as_deref().unwrap_or("")
            );
        }
        let failed = self.queries.iter().filter(|q| q.error.is_some()).count();
        let _ = writeln!(out, "{} queries, {failed} failed", self.queries.len());
        out
    }
}

/// Writes `report` as pretty JSON to `path`.
pub fn write_json(path: &Path, report: &impl Serialize) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json + "\n").with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64) {
        // Three significant digits: within 0.1 %.
        assert!(
            (actual - expected).abs() <= expected * 0.001,
            "{actual} is not {expected}"
        );
    }

    #[test]
    fn percentiles_of_a_known_latency_set() {
        let mut histogram = latency_histogram();
        // 1 ms, 2 ms, ..., 1000 ms, each once.
        for ms in 1..=1000u64 {
            histogram.record(ms * 1000).unwrap();
        }
        let summary = LatencySummary::from_histogram(&histogram);
        assert_eq!(summary.samples, 1000);
        assert_close(summary.p50_ms, 500.0);
        assert_close(summary.p95_ms, 950.0);
        assert_close(summary.p99_ms, 990.0);
        assert_close(summary.p999_ms, 999.0);
        assert_close(summary.max_ms, 1000.0);
        assert_close(summary.mean_ms, 500.5);
    }

    #[test]
    fn a_slow_tail_shows_in_p99_but_not_p50() {
        let mut histogram = latency_histogram();
        for _ in 0..980 {
            histogram.record(1_000).unwrap();
        }
        for _ in 0..20 {
            histogram.record(250_000).unwrap();
        }
        let summary = LatencySummary::from_histogram(&histogram);
        assert_close(summary.p50_ms, 1.0);
        assert_close(summary.p99_ms, 250.0);
    }

    #[test]
    fn error_counts_merge_and_total() {
        let mut counts = ErrorCounts {
            by_status: BTreeMap::from([(500, 2)]),
            connection: 1,
            timeout: 0,
        };
        counts.merge(&ErrorCounts {
            by_status: BTreeMap::from([(500, 1), (429, 4)]),
            connection: 0,
            timeout: 3,
        });
        assert_eq!(counts.by_status, BTreeMap::from([(429, 4), (500, 3)]));
        assert_eq!(counts.total(), 11);
    }
}
