//! `query`: times the dashboard's queries against `POST /api/v2/query` (Plausible Stats API
//! v2 bodies, `Authorization: Bearer <key>`).
//!
//! [`DASHBOARD_QUERIES`] is the query set, one row per query. Each query runs once to warm up,
//! then `--runs` times on one keep-alive connection, one at a time; the report gives p50 and
//! p95 of the timed runs and the row count of the warm-up answer. A query answered with
//! another status than 200 stops there and is reported with its status and body; the others
//! still run, so the report shows which dimensions the server does not support yet.

use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::client::{Connection, Target};
use crate::report::{latency_histogram, write_json, QueryReport, QueryResult};
use crate::server_memory::MemorySampler;

pub const QUERY_PATH: &str = "/api/v2/query";
/// Characters of an error body kept in the report.
const ERROR_BODY_CHARS: usize = 300;

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Stats API key, sent as a bearer token.
    #[arg(long)]
    api_key: String,
    /// Site to query (its domain).
    #[arg(long)]
    site_id: String,
    /// Timed runs per query, after one warm-up run.
    #[arg(long, default_value_t = 10)]
    runs: u64,
    /// Date range of every query.
    #[arg(long, default_value = "30d")]
    date_range: String,
    /// PID of the server, to report its peak RSS while the queries run (Linux /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also write the report as JSON to this file (with each query's answer, which `raw`
    /// compares with its own).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Only these queries (names, comma-separated); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Whether the query `name` is among those `only` names (all when `only` is empty).
pub fn selected(only: &[String], name: &str) -> bool {
    only.is_empty() || only.iter().any(|wanted| wanted == name)
}

/// How a query groups its answer.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// One row of totals (the top stats).
    Aggregate,
    /// One row per day.
    TimeSeries,
    /// Top 10 values of a dimension by visitors.
    Breakdown(&'static str),
}

/// A `[operator, dimension, values]` filter.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub operator: &'static str,
    pub dimension: &'static str,
    pub values: &'static [&'static str],
}

/// One dashboard query.
#[derive(Debug, Clone, Copy)]
pub struct QuerySpec {
    pub name: &'static str,
    pub metrics: &'static [&'static str],
    pub shape: Shape,
    pub filter: Option<Filter>,
}

pub const TOP_STATS_METRICS: &[&str] = &[
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
];
/// Metrics of breakdowns by an event dimension.
pub const EVENT_METRICS: &[&str] = &["visitors", "pageviews"];
/// Metrics of breakdowns by a visit dimension.
pub const VISIT_METRICS: &[&str] = &["visitors", "visits", "bounce_rate"];
/// Visits from Google. The server names a source by the referrer's host today
/// (`google.com`); Plausible names it `Google`: either matches, so the filter keeps selecting
/// the same visits when source naming lands.
const FROM_GOOGLE: Filter = Filter {
    operator: "is",
    dimension: "visit:source",
    values: &["Google", "google.com"],
};

const fn query(name: &'static str, metrics: &'static [&'static str], shape: Shape) -> QuerySpec {
    QuerySpec {
        name,
        metrics,
        shape,
        filter: None,
    }
}

const fn filtered(query: QuerySpec, name: &'static str, filter: Filter) -> QuerySpec {
    QuerySpec {
        name,
        filter: Some(filter),
        ..query
    }
}

const TOP_STATS: QuerySpec = query("top_stats", TOP_STATS_METRICS, Shape::Aggregate);
const PAGES: QuerySpec = query("pages", EVENT_METRICS, Shape::Breakdown("event:page"));

/// The queries a dashboard load sends.
pub const DASHBOARD_QUERIES: &[QuerySpec] = &[
    TOP_STATS,
    query("timeseries_day", TOP_STATS_METRICS, Shape::TimeSeries),
    PAGES,
    query(
        "entry_pages",
        VISIT_METRICS,
        Shape::Breakdown("visit:entry_page"),
    ),
    query(
        "exit_pages",
        VISIT_METRICS,
        Shape::Breakdown("visit:exit_page"),
    ),
    query("sources", VISIT_METRICS, Shape::Breakdown("visit:source")),
    query("channels", VISIT_METRICS, Shape::Breakdown("visit:channel")),
    query(
        "utm_sources",
        VISIT_METRICS,
        Shape::Breakdown("visit:utm_source"),
    ),
    query(
        "countries",
        VISIT_METRICS,
        Shape::Breakdown("visit:country"),
    ),
    query("browsers", VISIT_METRICS, Shape::Breakdown("visit:browser")),
    query(
        "operating_systems",
        VISIT_METRICS,
        Shape::Breakdown("visit:os"),
    ),
    query("devices", VISIT_METRICS, Shape::Breakdown("visit:device")),
    query("goals", EVENT_METRICS, Shape::Breakdown("event:name")),
    query(
        "prop_plan",
        EVENT_METRICS,
        Shape::Breakdown("event:props:plan"),
    ),
    filtered(TOP_STATS, "top_stats_from_google", FROM_GOOGLE),
    filtered(PAGES, "pages_from_google", FROM_GOOGLE),
];

/// A product analytics query: its own endpoint and request body (site, date range).
#[derive(Debug, Clone, Copy)]
pub struct ProductSpec {
    pub name: &'static str,
    pub path: &'static str,
    pub body: fn(&str, &str) -> Value,
}

/// The page the paths query starts from (the generator's home page).
pub const PATHS_START: &str = "/";
/// Steps of the paths query, and the pages it keeps per step.
pub const PATHS_DEPTH: u32 = 3;
pub const PATHS_LIMIT: u32 = 10;
/// The steps of the funnel query (`("page", pattern)` or `("event", name)`): home, pricing,
/// any docs page, then a signup, over the generator's pages and events; ordered, within one
/// visit (the defaults).
pub const FUNNEL_STEPS: &[(&str, &str)] = &[
    ("page", "/"),
    ("page", "/pricing"),
    ("page", "/docs/**"),
    ("event", "Signup"),
];
/// Weekly periods of the retention query.
pub const RETENTION_WEEKS: u32 = 8;

/// Product analytics queries, after the dashboard's.
pub const PRODUCT_QUERIES: &[ProductSpec] = &[
    ProductSpec {
        name: "funnel_4_steps",
        path: "/api/v2/funnel",
        body: |site_id, date_range| {
            let steps: Vec<Value> = FUNNEL_STEPS
                .iter()
                .map(|(kind, value)| json!({ *kind: value }))
                .collect();
            json!({"site_id": site_id, "date_range": date_range, "steps": steps})
        },
    },
    ProductSpec {
        name: "retention_8_weeks",
        path: "/api/v2/retention",
        body: |site_id, date_range| {
            json!({"site_id": site_id, "date_range": date_range, "period": "week",
                   "periods": RETENTION_WEEKS})
        },
    },
    ProductSpec {
        name: "paths_from_home",
        path: "/api/v2/paths",
        body: |site_id, date_range| {
            json!({"site_id": site_id, "date_range": date_range, "page": PATHS_START,
                   "direction": "forward", "depth": PATHS_DEPTH, "limit": PATHS_LIMIT})
        },
    },
];

impl QuerySpec {
    /// The Stats API v2 request body.
    fn body(&self, site_id: &str, date_range: &str) -> Value {
        let mut body = json!({
            "site_id": site_id,
            "metrics": self.metrics,
            "date_range": date_range,
        });
        match self.shape {
            Shape::Aggregate => {}
            Shape::TimeSeries => body["dimensions"] = json!(["time:day"]),
            Shape::Breakdown(dimension) => {
                body["dimensions"] = json!([dimension]);
                body["order_by"] = json!([["visitors", "desc"]]);
                body["pagination"] = json!({ "limit": 10 });
            }
        }
        if let Some(filter) = self.filter {
            body["filters"] = json!([[filter.operator, filter.dimension, filter.values]]);
        }
        body
    }
}

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let authorization = HeaderValue::from_str(&format!("Bearer {}", args.api_key))
        .context("API key is not a header value")?;
    let mut connection = Connection::new(Target::parse(&args.url)?);
    let sampler = args.server_pid.map(MemorySampler::start);
    let mut queries = Vec::with_capacity(DASHBOARD_QUERIES.len());
    for spec in DASHBOARD_QUERIES
        .iter()
        .filter(|s| selected(&args.only, s.name))
    {
        let body = spec.body(&args.site_id, &args.date_range);
        let result = measure(
            &mut connection,
            &authorization,
            QUERY_PATH,
            spec.name,
            &body,
            args.runs,
        )
        .await;
        report_one(&result);
        queries.push(result);
    }
    for spec in PRODUCT_QUERIES
        .iter()
        .filter(|s| selected(&args.only, s.name))
    {
        let body = (spec.body)(&args.site_id, &args.date_range);
        let result = measure(
            &mut connection,
            &authorization,
            spec.path,
            spec.name,
            &body,
            args.runs,
        )
        .await;
        report_one(&result);
        queries.push(result);
    }
    let server_memory = match sampler {
        Some(sampler) => Some(sampler.finish().await),
        None => None,
    };
    let report = QueryReport {
        url: args.url,
        site_id: args.site_id,
        runs_per_query: args.runs,
        queries,
        server_memory,
    };
    print!("{}", report.to_table());
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(())
}

fn report_one(result: &QueryResult) {
    eprintln!(
        "{}: {}",
        result.name,
        match (&result.error, result.p50_ms) {
            (Some(error), _) => format!("failed: {error}"),
            (None, Some(p50)) => format!("p50 {p50:.2} ms"),
            (None, None) => "no timed runs".to_string(),
        }
    );
}

/// Runs one query (posted to `path`) once to warm up and `runs` times timed, stopping at
/// the first failure. A Stats API answer keeps its `results` and echoed range; a product
/// analytics answer is kept whole, with its `date_range`.
async fn measure(
    connection: &mut Connection,
    authorization: &HeaderValue,
    path: &str,
    name: &str,
    body: &Value,
    runs: u64,
) -> QueryResult {
    let body = Bytes::from(serde_json::to_vec(body).expect("a JSON value serializes"));
    let mut result = QueryResult {
        name: name.to_string(),
        runs: 0,
        p50_ms: None,
        p95_ms: None,
        rows: None,
        error: None,
        answer: None,
        date_range: None,
    };
    let mut latency_us = latency_histogram();
    for run in 0..=runs {
        let request = connection
            .target()
            .post(path)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(AUTHORIZATION, authorization.clone())
            .body(Full::new(body.clone()))
            .expect("request parts are valid");
        let started = Instant::now();
        let answer = connection.send(request).await;
        let elapsed = started.elapsed();
        match answer {
            Ok(response) if response.status == StatusCode::OK => {
                if run == 0 {
                    let answer: Value = serde_json::from_slice(&response.body).unwrap_or_default();
                    let (echoed, kept) = if path == QUERY_PATH {
                        result.rows = answer["results"].as_array().map(Vec::len);
                        (&answer["query"]["date_range"], answer["results"].clone())
                    } else {
                        (&answer["date_range"], answer.clone())
                    };
                    result.date_range = echoed.as_array().and_then(|range| {
                        range.iter().map(|t| t.as_str().map(String::from)).collect()
                    });
                    result.answer = Some(kept);
                } else {
                    latency_us
                        .saturating_record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
                    result.runs += 1;
                }
            }
            Ok(response) => {
                let text = String::from_utf8_lossy(&response.body);
                let excerpt: String = text.chars().take(ERROR_BODY_CHARS).collect();
                result.error = Some(format!("HTTP {}: {}", response.status.as_u16(), excerpt));
                break;
            }
            Err((_, error)) => {
                result.error = Some(format!("{error:#}"));
                break;
            }
        }
    }
    if !latency_us.is_empty() {
        result.p50_ms = Some(latency_us.value_at_quantile(0.50) as f64 / 1000.0);
        result.p95_ms = Some(latency_us.value_at_quantile(0.95) as f64 / 1000.0);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::Ordering;

    use crate::test_server::serve;

    fn check(name: &str, expected: Value) {
        let spec = DASHBOARD_QUERIES
            .iter()
            .find(|spec| spec.name == name)
            .unwrap();
        assert_eq!(spec.body("example.com", "30d"), expected);
    }

    #[test]
    fn top_stats_body() {
        check(
            "top_stats",
            json!({"site_id": "example.com", "date_range": "30d", "metrics":
                ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"]}),
        );
    }

    #[test]
    fn time_series_body() {
        check(
            "timeseries_day",
            json!({"site_id": "example.com", "date_range": "30d", "dimensions": ["time:day"],
                "metrics": ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate",
                    "visit_duration"]}),
        );
    }

    #[test]
    fn visit_breakdown_body() {
        check(
            "sources",
            json!({"site_id": "example.com", "date_range": "30d",
                "metrics": ["visitors", "visits", "bounce_rate"],
                "dimensions": ["visit:source"], "order_by": [["visitors", "desc"]],
                "pagination": {"limit": 10}}),
        );
    }

    #[test]
    fn filtered_page_breakdown_body() {
        check(
            "pages_from_google",
            json!({"site_id": "example.com", "date_range": "30d",
                "metrics": ["visitors", "pageviews"],
                "dimensions": ["event:page"], "order_by": [["visitors", "desc"]],
                "pagination": {"limit": 10},
                "filters": [["is", "visit:source", ["Google", "google.com"]]]}),
        );
    }

    #[test]
    fn query_set_covers_every_dashboard_dimension_once_with_matching_metrics() {
        let names: HashSet<&str> = DASHBOARD_QUERIES.iter().map(|spec| spec.name).collect();
        assert_eq!(names.len(), DASHBOARD_QUERIES.len(), "names are unique");
        let mut dimensions = Vec::new();
        for spec in DASHBOARD_QUERIES
            .iter()
            .filter(|spec| spec.filter.is_none())
        {
            if let Shape::Breakdown(dimension) = spec.shape {
                let expected = if dimension.starts_with("visit:") {
                    VISIT_METRICS
                } else {
                    EVENT_METRICS
                };
                assert_eq!(spec.metrics, expected, "{}", spec.name);
                dimensions.push(dimension);
            }
        }
        assert_eq!(
            dimensions,
            [
                "event:page",
                "visit:entry_page",
                "visit:exit_page",
                "visit:source",
                "visit:channel",
                "visit:utm_source",
                "visit:country",
                "visit:browser",
                "visit:os",
                "visit:device",
                "event:name",
                "event:props:plan",
            ]
        );
    }

    #[tokio::test]
    async fn times_answered_queries_and_reports_refused_ones_with_status_and_body() {
        let server = serve(|parts, body| {
            let query: Value = serde_json::from_slice(body).unwrap();
            let authorized =
                parts.headers[AUTHORIZATION] == "Bearer key" && parts.uri.path() == QUERY_PATH;
            if !authorized {
                (StatusCode::UNAUTHORIZED, Vec::new())
            } else if query["dimensions"] == json!(["visit:channel"]) {
                (
                    StatusCode::BAD_REQUEST,
                    br#"{"error":"unknown dimension visit:channel"}"#.to_vec(),
                )
            } else {
                (
                    StatusCode::OK,
                    br#"{"results":[{"metrics":[1],"dimensions":[]}],"meta":{}}"#.to_vec(),
                )
            }
        })
        .await;
        let mut connection = Connection::new(Target::parse(&server.url()).unwrap());
        let authorization = HeaderValue::from_static("Bearer key");
        let mut results = Vec::new();
        for spec in DASHBOARD_QUERIES {
            let body = spec.body("example.com", "30d");
            results.push(
                measure(
                    &mut connection,
                    &authorization,
                    QUERY_PATH,
                    spec.name,
                    &body,
                    3,
                )
                .await,
            );
        }
        let channels = results.iter().find(|r| r.name == "channels").unwrap();
        assert_eq!(
            channels.error.as_deref(),
            Some(r#"HTTP 400: {"error":"unknown dimension visit:channel"}"#)
        );
        assert_eq!(channels.runs, 0);
        assert_eq!(channels.p50_ms, None);
        for result in results.iter().filter(|r| r.name != "channels") {
            assert_eq!(result.error, None, "{}", result.name);
            assert_eq!(result.runs, 3);
            assert_eq!(result.rows, Some(1));
            assert!(result.p50_ms.unwrap() <= result.p95_ms.unwrap());
        }
        // Everything went over one keep-alive connection.
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    }
}
