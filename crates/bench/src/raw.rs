//! `raw`: the raw engine beside the API. Each dashboard query of [`DASHBOARD_QUERIES`] has a
//! hand-written DuckDB statement over the store's schema (`crates/store-duckdb/src/schema.rs`)
//! that gives the same answer; `raw` times it over a stopped server's database and compares
//! its answer with the one the API gave in a `query` run over the same data.
//!
//! DuckDB lets one process open a database file for writing, so the server must be stopped
//! (SIGTERM flushes it) before the file is opened here, read-only. Every statement reads the
//! range the server resolved (the `query.date_range` it echoed), runs once to warm up and then
//! `--runs` times; the report gives p50 and p95 and the ratio of the API's p50 to the raw one.
//!
//! The statements are what someone who knows the schema would write by hand, not a copy of
//! the query compiler, for the metrics as the API defines them: visitors are distinct
//! visitors with an event in the range (by the visit's attributes, which every event carries),
//! except for entry and exit pages (visitors of the visits that started in the range); visits
//! are those that started in the range. Visit metrics are sign-weighted sums over the
//! collapsing `sessions` log (docs/decisions/0002), without collapsing per visit where the
//! attribute is the visit's first event's; entry and exit pages, which can change as a visit
//! grows, come from each visit's latest state (`arg_max(.., version)` over `sign = 1` rows).
//! Days are UTC dates. An answer that differs from the API's is a finding about one of the
//! two: the table says so loudly.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use chrono::{DateTime, Duration, Utc};
use duckdb::types::Value as DbValue;
use duckdb::{AccessMode, Config, Connection};
use serde::Serialize;
use serde_json::Value;

use crate::query::{
    selected, Filter, ProductSpec, QuerySpec, Shape, DASHBOARD_QUERIES, FUNNEL_STEPS, PATHS_DEPTH,
    PATHS_LIMIT, PATHS_START, PRODUCT_QUERIES, RETENTION_WEEKS,
};
use crate::report::{latency_histogram, write_json, QueryReport, QueryResult};

/// Rows of a breakdown: the dashboard's top 10.
const BREAKDOWN_LIMIT: usize = 10;
/// Differences listed per mismatching query.
const MAX_DIFFERENCES: usize = 3;

/// Arguments of `sql`: one statement over a stopped server's database, for profiling.
#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The stopped server's database, `<data-dir>/heartbeat.duckdb`; opened read-only.
    #[arg(long)]
    db: PathBuf,
    /// DuckDB's memory limit, as the server's `--store-memory-limit`.
    #[arg(long, default_value = "512MB")]
    memory_limit: String,
    /// Run it under EXPLAIN ANALYZE and print DuckDB's profile instead of the rows.
    #[arg(long)]
    explain: bool,
    /// The statement (no parameters).
    statement: String,
}

/// Runs one statement read-only and prints its rows tab-separated (or its profile).
pub fn run_sql(args: SqlArgs) -> anyhow::Result<()> {
    let connection = open_read_only(&args.db, &args.memory_limit)?;
    let statement = match args.explain {
        true => format!("EXPLAIN ANALYZE {}", args.statement),
        false => args.statement,
    };
    let started = Instant::now();
    let mut prepared = connection.prepare(&statement)?;
    let mut rows = prepared.query([])?;
    let mut lines = Vec::new();
    while let Some(row) = rows.next()? {
        let columns = row.as_ref().column_count();
        let cells = (0..columns)
            .map(|index| Ok(text_of(row.get::<_, DbValue>(index)?)))
            .collect::<duckdb::Result<Vec<_>>>()?;
        lines.push(match args.explain {
            true => cells.last().cloned().unwrap_or_default(),
            false => cells.join("\t"),
        });
    }
    let elapsed = started.elapsed();
    for line in lines {
        println!("{line}");
    }
    eprintln!("{:.1} ms", elapsed.as_secs_f64() * 1000.0);
    Ok(())
}

fn text_of(value: DbValue) -> String {
    match value {
        DbValue::Text(text) => text,
        DbValue::Null => "NULL".to_string(),
        other => number(other.clone()).map_or_else(|_| format!("{other:?}"), |v| v.to_string()),
    }
}

#[derive(Debug, clap::Args)]
pub struct RawArgs {
    /// The stopped server's database, `<data-dir>/heartbeat.duckdb`; opened read-only.
    #[arg(long)]
    db: PathBuf,
    /// JSON report of a `query --json` run over the same data: the API's timings, answers
    /// and resolved date ranges.
    #[arg(long)]
    api_report: PathBuf,
    /// Timed runs per statement, after one warm-up run.
    #[arg(long, default_value_t = 10)]
    runs: u64,
    /// DuckDB's memory limit, as the server's `--store-memory-limit`.
    #[arg(long, default_value = "512MB")]
    memory_limit: String,
    /// Print DuckDB's EXPLAIN ANALYZE of this query's raw statement (a query name).
    #[arg(long)]
    explain: Option<String>,
    /// Only these queries (names, comma-separated); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the comparison as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// How the raw answer compares with the API's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Agreement {
    /// Same rows, same order, same values.
    Match { rows: usize },
    /// Every count and sum the same; visitors (and percentages of them) within the
    /// rollups' sketch error, which may also swap rows whose visitors are nearly tied.
    Approximate {
        rows: usize,
        /// Largest relative difference of visitors, percent.
        max_visitors_error_pct: f64,
    },
    /// The answers differ: the first differences.
    Mismatch { differences: Vec<String> },
    /// The API gave no answer to compare with.
    NoApiAnswer,
    /// The raw statement failed.
    NoRawAnswer,
}

/// One query: the API's figures from the `query` report, the raw engine's, and whether the
/// answers agree.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub name: String,
    pub api_p50_ms: Option<f64>,
    pub api_p95_ms: Option<f64>,
    pub api_error: Option<String>,
    pub raw_runs: u64,
    pub raw_p50_ms: Option<f64>,
    pub raw_p95_ms: Option<f64>,
    pub raw_error: Option<String>,
    /// API p50 / raw p50.
    pub ratio_p50: Option<f64>,
    pub agreement: Agreement,
    pub sql: String,
}

/// Everything a `raw` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RawReport {
    pub db: String,
    pub site_id: String,
    /// Rows of `events` for the site (all time).
    pub events_stored: u64,
    /// Rows of the `sessions` log for the site, and the visits they collapse to.
    pub session_log_rows: u64,
    pub visits: u64,
    pub api_runs_per_query: u64,
    pub raw_runs_per_query: u64,
    pub queries: Vec<Comparison>,
    pub mismatches: usize,
}

/// A query of the API report: a dashboard query or a product analytics one.
enum Timed<'a> {
    Dashboard(&'a QuerySpec),
    Product(&'a ProductSpec),
}

pub fn run(args: RawArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.api_report)
        .with_context(|| format!("read {}", args.api_report.display()))?;
    let api: QueryReport = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a `query` report", args.api_report.display()))?;
    let connection = open_read_only(&args.db, &args.memory_limit)?;
    let site = store_site_id(&connection, &api.site_id)?;
    let fallback_range = api
        .queries
        .iter()
        .find_map(|query| query.date_range.clone())
        .context("no query of the API report has a date range")?;
    let (events_stored, session_log_rows, visits) = store_counts(&connection, &site)?;
    eprintln!("store: {events_stored} events, {session_log_rows} visit-log rows, {visits} visits");

    // The dashboard's queries, then product analytics, each beside its own statement.
    let dashboard = DASHBOARD_QUERIES
        .iter()
        .map(|s| (s.name, Timed::Dashboard(s)));
    let product = PRODUCT_QUERIES.iter().map(|s| (s.name, Timed::Product(s)));
    let mut queries = Vec::new();
    for (name, timed) in dashboard
        .chain(product)
        .filter(|(name, _)| selected(&args.only, name))
    {
        let api_result = api.queries.iter().find(|query| query.name == name);
        let range = api_result
            .and_then(|query| query.date_range.clone())
            .unwrap_or_else(|| fallback_range.clone());
        let comparison = match timed {
            Timed::Dashboard(spec) => {
                compare_one(&connection, spec, api_result, &site, &range, args.runs)?
            }
            Timed::Product(spec) => {
                compare_product(&connection, spec, api_result, &site, &range, args.runs)?
            }
        };
        if args.explain.as_deref() == Some(name) {
            explain(&connection, &comparison.sql, &site, &range)?;
        }
        if let Agreement::Mismatch { differences } = &comparison.agreement {
            eprintln!("MISMATCH in {name}: raw SQL and API disagree");
            for difference in differences {
                eprintln!("  {difference}");
            }
        }
        queries.push(comparison);
    }
    let mismatches = queries
        .iter()
        .filter(|query| matches!(query.agreement, Agreement::Mismatch { .. }))
        .count();
    let report = RawReport {
        db: args.db.display().to_string(),
        site_id: api.site_id,
        events_stored,
        session_log_rows,
        visits,
        api_runs_per_query: api.runs_per_query,
        raw_runs_per_query: args.runs,
        queries,
        mismatches,
    };
    print!("{}", report.to_markdown());
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    if mismatches > 0 {
        eprintln!("{mismatches} queries: the raw SQL's answer differs from the API's (see above)");
    }
    Ok(())
}

pub(crate) fn open_read_only(path: &Path, memory_limit: &str) -> anyhow::Result<Connection> {
    ensure!(path.exists(), "{} does not exist", path.display());
    let config = Config::default()
        .access_mode(AccessMode::ReadOnly)?
        .max_memory(memory_limit)?;
    Connection::open_with_flags(path, config).with_context(|| {
        format!(
            "open {} read-only (is the server still running?)",
            path.display()
        )
    })
}

/// The `site_id` stored on the site's rows, from its domain or id; fails unless the site's
/// time zone is UTC, since the raw statements bucket days in UTC.
fn store_site_id(connection: &Connection, site: &str) -> anyhow::Result<String> {
    let (id, timezone): (String, String) = connection
        .query_row(
            "SELECT id, timezone FROM sites WHERE domain = ? OR id = ?",
            [site, site],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .with_context(|| format!("no site {site:?} in the database"))?;
    ensure!(
        timezone == "UTC",
        "site {site} is in time zone {timezone}: the raw statements bucket days in UTC"
    );
    Ok(id)
}

fn store_counts(connection: &Connection, site: &str) -> anyhow::Result<(u64, u64, u64)> {
    let count = |sql: &str| -> anyhow::Result<u64> {
        let value: i64 = connection.query_row(sql, [site], |row| row.get(0))?;
        Ok(u64::try_from(value).unwrap_or(0))
    };
    Ok((
        count("SELECT count(*) FROM events WHERE site_id = ?")?,
        count("SELECT count(*) FROM sessions WHERE site_id = ?")?,
        count("SELECT coalesce(sum(sign), 0)::BIGINT FROM sessions WHERE site_id = ?")?,
    ))
}

/// The statement's parameters: site id, and the range as UTC timestamps `[start, end)`.
fn parameters(site: &str, range: &[String]) -> anyhow::Result<[String; 3]> {
    ensure!(range.len() == 2, "a date range has two ends, not {range:?}");
    let parse = |text: &str| -> anyhow::Result<DateTime<Utc>> {
        Ok(DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("{text:?} is not an RFC 3339 time"))?
            .with_timezone(&Utc))
    };
    let format = |time: DateTime<Utc>| time.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    // The API echoes the last instant of the range (its end minus 1 ms).
    let start = parse(&range[0])?;
    let end = parse(&range[1])? + Duration::milliseconds(1);
    Ok([site.to_string(), format(start), format(end)])
}

fn compare_one(
    connection: &Connection,
    spec: &QuerySpec,
    api: Option<&QueryResult>,
    site: &str,
    range: &[String],
    runs: u64,
) -> anyhow::Result<Comparison> {
    let api_answer = api
        .filter(|a| a.error.is_none())
        .and_then(|a| a.answer.as_ref())
        .map(answer_rows)
        .transpose()?;
    let statement = Statement {
        name: spec.name,
        sql: raw_sql(spec)?,
        dimensions: dimension_count(spec),
        metrics: spec.metrics,
        sorted: false,
    };
    compare_statement(connection, &statement, api, api_answer, site, range, runs)
}

/// A raw statement and how to read its rows.
struct Statement<'a> {
    name: &'a str,
    sql: String,
    /// Text columns before the metric columns.
    dimensions: usize,
    /// The metric columns' names (visitors may be approximate in the API's answer).
    metrics: &'a [&'a str],
    /// Compare the rows sorted by their dimensions (answers of several parts).
    sorted: bool,
}

/// Times `statement` and compares its answer with the API's (`api_answer`, its rows).
fn compare_statement(
    connection: &Connection,
    statement: &Statement,
    api: Option<&QueryResult>,
    api_answer: Option<Vec<AnswerRow>>,
    site: &str,
    range: &[String],
    runs: u64,
) -> anyhow::Result<Comparison> {
    let sql = &statement.sql;
    let params = parameters(site, range)?;
    let mut comparison = Comparison {
        name: statement.name.to_string(),
        api_p50_ms: api.and_then(|a| a.p50_ms),
        api_p95_ms: api.and_then(|a| a.p95_ms),
        api_error: api.map_or(Some("not in the API report".into()), |a| a.error.clone()),
        raw_runs: 0,
        raw_p50_ms: None,
        raw_p95_ms: None,
        raw_error: None,
        ratio_p50: None,
        agreement: Agreement::NoRawAnswer,
        sql: sql.clone(),
    };
    let mut latency_us = latency_histogram();
    let mut raw_answer = None;
    for run in 0..=runs {
        let started = Instant::now();
        match run_statement(connection, sql, &params, statement.dimensions) {
            Ok(rows) => {
                let elapsed = started.elapsed();
                if run == 0 {
                    raw_answer = Some(rows);
                } else {
                    latency_us
                        .saturating_record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
                    comparison.raw_runs += 1;
                }
            }
            Err(error) => {
                comparison.raw_error = Some(format!("{error:#}"));
                break;
            }
        }
    }
    if !latency_us.is_empty() {
        let p50 = latency_us.value_at_quantile(0.50) as f64 / 1000.0;
        comparison.raw_p50_ms = Some(p50);
        comparison.raw_p95_ms = Some(latency_us.value_at_quantile(0.95) as f64 / 1000.0);
        comparison.ratio_p50 = comparison.api_p50_ms.map(|api| api / p50);
    }
    let sort = |mut rows: Vec<AnswerRow>| {
        if statement.sorted {
            rows.sort_by(|a, b| a.dimensions.cmp(&b.dimensions));
        }
        rows
    };
    comparison.agreement = match (api_answer.map(sort), raw_answer.map(sort)) {
        (_, None) => Agreement::NoRawAnswer,
        (None, Some(_)) => Agreement::NoApiAnswer,
        (Some(api), Some(raw)) => agreement(&api, &raw, statement.metrics),
    };
    Ok(comparison)
}

/// Compares a product analytics query of the API report with its raw statement.
fn compare_product(
    connection: &Connection,
    spec: &ProductSpec,
    api: Option<&QueryResult>,
    site: &str,
    range: &[String],
    runs: u64,
) -> anyhow::Result<Comparison> {
    let api_answer = api
        .filter(|a| a.error.is_none())
        .and_then(|a| a.answer.as_ref())
        .map(|answer| product_rows(spec, answer))
        .transpose()?;
    let (sql, dimensions, metrics) = product_sql(spec)?;
    let statement = Statement {
        name: spec.name,
        sql,
        dimensions,
        metrics,
        sorted: true,
    };
    compare_statement(connection, &statement, api, api_answer, site, range, runs)
}

fn dimension_count(spec: &QuerySpec) -> usize {
    match spec.shape {
        Shape::Aggregate => 0,
        Shape::TimeSeries | Shape::Breakdown(_) => 1,
    }
}

fn explain(connection: &Connection, sql: &str, site: &str, range: &[String]) -> anyhow::Result<()> {
    let params = parameters(site, range)?;
    let mut statement = connection.prepare(&format!("EXPLAIN ANALYZE {sql}"))?;
    let mut rows = statement.query(duckdb::params![params[0], params[1], params[2]])?;
    while let Some(row) = rows.next()? {
        let plan: String = row.get(1)?;
        println!("{plan}");
    }
    Ok(())
}

/// One row of an answer: dimension values, then metric values in the query's order.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRow {
    pub dimensions: Vec<String>,
    pub metrics: Vec<f64>,
}

impl std::fmt::Display for AnswerRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {:?}", self.dimensions, self.metrics)
    }
}

/// The rows of a Stats API answer's `results`.
fn answer_rows(results: &Value) -> anyhow::Result<Vec<AnswerRow>> {
    let rows = results.as_array().context("`results` is not an array")?;
    rows.iter()
        .map(|row| {
            let dimensions = row["dimensions"]
                .as_array()
                .context("a result row has no `dimensions`")?
                .iter()
                .map(|value| match value {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect();
            let metrics = row["metrics"]
                .as_array()
                .context("a result row has no `metrics`")?
                .iter()
                .map(|value| value.as_f64().unwrap_or(f64::NAN))
                .collect();
            Ok(AnswerRow {
                dimensions,
                metrics,
            })
        })
        .collect()
}

fn agreement(api: &[AnswerRow], raw: &[AnswerRow], metrics: &[&str]) -> Agreement {
    let mut differences = Vec::new();
    if api.len() != raw.len() {
        differences.push(format!("API {} rows, raw {} rows", api.len(), raw.len()));
    }
    for (index, (a, r)) in api.iter().zip(raw).enumerate() {
        let same_metrics = a.metrics.len() == r.metrics.len()
            && a.metrics
                .iter()
                .zip(&r.metrics)
                .all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(1.0));
        if a.dimensions != r.dimensions || !same_metrics {
            differences.push(format!("row {index}: API {a}, raw {r}"));
        }
    }
    if differences.is_empty() {
        return Agreement::Match { rows: api.len() };
    }
    approximate(api, raw, metrics).unwrap_or_else(|| {
        differences.truncate(MAX_DIFFERENCES);
        Agreement::Mismatch { differences }
    })
}

/// Relative error of visitors the sketch may show (precision 12: 1.6 % standard error).
const VISITORS_TOLERANCE: f64 = 0.05;

/// The answers agree as rollups can: rows matched by dimensions, counts and sums equal,
/// visitors and percentages within [`VISITORS_TOLERANCE`], and rows missing on one side
/// only among the last two of a long answer (a near tie ordered the other way at the limit).
fn approximate(api: &[AnswerRow], raw: &[AnswerRow], metrics: &[&str]) -> Option<Agreement> {
    if api.len() != raw.len() {
        return None;
    }
    let by_dimensions: std::collections::HashMap<&[String], &AnswerRow> =
        raw.iter().map(|r| (r.dimensions.as_slice(), r)).collect();
    let mut worst: f64 = 0.0;
    for (index, a) in api.iter().enumerate() {
        let Some(r) = by_dimensions.get(a.dimensions.as_slice()) else {
            if api.len() >= 5 && index + 2 >= api.len() {
                continue;
            }
            return None;
        };
        for ((name, x), y) in metrics.iter().zip(&a.metrics).zip(&r.metrics) {
            let error = (x - y).abs() / y.abs().max(1.0);
            match *name {
                "visitors" => worst = worst.max(error),
                "percentage" if (x - y).abs() <= 0.1 + VISITORS_TOLERANCE * y.abs() => continue,
                _ if (x - y).abs() <= 1e-9 * x.abs().max(1.0) => continue,
                _ => return None,
            }
            if error > VISITORS_TOLERANCE {
                return None;
            }
        }
    }
    Some(Agreement::Approximate {
        rows: api.len(),
        max_visitors_error_pct: worst * 100.0,
    })
}

/// Runs a statement with the site and range parameters and reads its rows: `dimensions`
/// text columns, then numeric metric columns.
fn run_statement(
    connection: &Connection,
    sql: &str,
    params: &[String; 3],
    dimensions: usize,
) -> anyhow::Result<Vec<AnswerRow>> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(duckdb::params![params[0], params[1], params[2]])?;
    let mut answer = Vec::new();
    while let Some(row) = rows.next()? {
        // Known once the statement has run.
        let columns = row.as_ref().column_count();
        let mut answer_row = AnswerRow {
            dimensions: Vec::with_capacity(dimensions),
            metrics: Vec::with_capacity(columns.saturating_sub(dimensions)),
        };
        for index in 0..columns {
            let value: DbValue = row.get(index)?;
            if index < dimensions {
                answer_row.dimensions.push(text(value));
            } else {
                answer_row.metrics.push(number(value)?);
            }
        }
        answer.push(answer_row);
    }
    Ok(answer)
}

fn text(value: DbValue) -> String {
    match value {
        DbValue::Null => String::new(),
        DbValue::Text(text) => text,
        other => format!("{other:?}"),
    }
}

fn number(value: DbValue) -> anyhow::Result<f64> {
    Ok(match value {
        DbValue::Null => 0.0,
        DbValue::TinyInt(v) => v.into(),
        DbValue::SmallInt(v) => v.into(),
        DbValue::Int(v) => v.into(),
        DbValue::BigInt(v) => v as f64,
        DbValue::HugeInt(v) => v as f64,
        DbValue::UTinyInt(v) => v.into(),
        DbValue::USmallInt(v) => v.into(),
        DbValue::UInt(v) => v.into(),
        DbValue::UBigInt(v) => v as f64,
        DbValue::Float(v) => v.into(),
        DbValue::Double(v) => v,
        other => bail!("a metric column holds {other:?}"),
    })
}

// The raw statements. Parameters: $1 site id, $2 and $3 the UTC range [start, end).

const EVENTS_IN_RANGE: &str = "site_id = $1 AND ts >= $2::TIMESTAMP AND ts < $3::TIMESTAMP";
const VISITS_IN_RANGE: &str =
    "site_id = $1 AND start_ts >= $2::TIMESTAMP AND start_ts < $3::TIMESTAMP";
/// Sign-weighted sums over the visit log: exact totals without collapsing per visit.
const VISIT_SUMS: &str = "sum(sign)::DOUBLE AS visits, sum(sign * bounce)::DOUBLE AS bounces, \
     sum(sign * duration_s)::DOUBLE AS duration_s, sum(sign * pageviews)::DOUBLE AS pageviews";
const EVENT_COUNTS: &str = "count(DISTINCT visitor_id) AS visitors, \
     count(*) FILTER (WHERE name = 'pageview') AS pageviews, count(*) AS events";

/// The hand-written statement answering `spec`.
pub fn raw_sql(spec: &QuerySpec) -> anyhow::Result<String> {
    let filter = filter_sql(spec.filter)?;
    match spec.shape {
        Shape::Aggregate => {
            let metrics = totals_metrics(spec)?;
            Ok(format!(
                "WITH e AS (SELECT {EVENT_COUNTS} FROM events WHERE {EVENTS_IN_RANGE}{filter}), \
                 s AS (SELECT {VISIT_SUMS} FROM sessions WHERE {VISITS_IN_RANGE}{filter}) \
                 SELECT {metrics} FROM e, s"
            ))
        }
        Shape::TimeSeries => {
            let metrics = totals_metrics(spec)?;
            Ok(format!(
                "WITH e AS (SELECT ts::DATE AS day, {EVENT_COUNTS} FROM events \
                 WHERE {EVENTS_IN_RANGE}{filter} GROUP BY day), \
                 s AS (SELECT start_ts::DATE AS day, {VISIT_SUMS} FROM sessions \
                 WHERE {VISITS_IN_RANGE}{filter} GROUP BY day) \
                 SELECT strftime(coalesce(e.day, s.day), '%Y-%m-%d') AS day, {metrics} \
                 FROM e FULL JOIN s ON e.day = s.day ORDER BY day"
            ))
        }
        Shape::Breakdown(dimension) => breakdown_sql(spec, dimension, &filter),
    }
}

/// Metric columns of the top stats and the time series over `e` (event counts) and `s`
/// (visit sums), as the dashboard rounds them.
fn totals_metrics(spec: &QuerySpec) -> anyhow::Result<String> {
    let columns = spec
        .metrics
        .iter()
        .map(|metric| {
            Ok(match *metric {
                "visitors" => "coalesce(e.visitors, 0)",
                "pageviews" => "coalesce(e.pageviews, 0)",
                "events" => "coalesce(e.events, 0)",
                "visits" => "coalesce(s.visits, 0)",
                "views_per_visit" => "coalesce(round(s.pageviews / nullif(s.visits, 0), 2), 0)",
                "bounce_rate" => "coalesce(round(100 * s.bounces / nullif(s.visits, 0)), 0)",
                "visit_duration" => "coalesce(round(s.duration_s / nullif(s.visits, 0)), 0)",
                other => bail!("no raw SQL for metric {other} in {}", spec.name),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(columns.join(", "))
}

fn breakdown_sql(spec: &QuerySpec, dimension: &str, filter: &str) -> anyhow::Result<String> {
    let order = spec
        .metrics
        .iter()
        .position(|metric| *metric == "visitors")
        .with_context(|| format!("{}: breakdowns are ordered by visitors", spec.name))?;
    let tail = format!("GROUP BY d ORDER BY m{order} DESC, d LIMIT {BREAKDOWN_LIMIT}");
    let metrics = |column: &dyn Fn(&str) -> anyhow::Result<&'static str>| {
        spec.metrics
            .iter()
            .enumerate()
            .map(|(index, metric)| Ok(format!("{} AS m{index}", column(metric)?)))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(|columns| columns.join(", "))
    };
    let unsupported = |metric: &str| anyhow::anyhow!("no raw SQL for {metric} in {}", spec.name);
    let event_metric = |metric: &str| -> anyhow::Result<&'static str> {
        Ok(match metric {
            "visitors" => "count(DISTINCT visitor_id)",
            "pageviews" => "count(*) FILTER (WHERE name = 'pageview')",
            "events" => "count(*)",
            other => return Err(unsupported(other)),
        })
    };
    if let Some(key) = dimension.strip_prefix("event:props:") {
        ensure!(
            filter.is_empty(),
            "{}: no raw SQL for filtered props",
            spec.name
        );
        // Every event of the range, under its value of the property or `(none)`, as the
        // API (and Plausible) break it down.
        return Ok(format!(
            "SELECT coalesce(p.value, '(none)') AS d, {} FROM events \
             LEFT JOIN (SELECT event_id AS prop_event_id, any_value(value) AS value FROM event_props \
             WHERE site_id = $1 AND key = {} GROUP BY event_id) p ON p.prop_event_id = events.event_id \
             WHERE {EVENTS_IN_RANGE} {tail}",
            metrics(&event_metric)?,
            quote(key)
        ));
    }
    match dimension {
        // A page breakdown counts page views only.
        "event:page" => Ok(format!(
            "SELECT pathname AS d, {} FROM events WHERE {EVENTS_IN_RANGE} AND name = 'pageview'{filter} {tail}",
            metrics(&event_metric)?
        )),
        "event:name" => Ok(format!(
            "SELECT name AS d, {} FROM events WHERE {EVENTS_IN_RANGE}{filter} {tail}",
            metrics(&event_metric)?
        )),
        // Entry and exit pages can change as a visit grows (a late event that is earlier
        // than the visit's first one changes its entry page): each visit's latest state.
        "visit:entry_page" | "visit:exit_page" => {
            let column = &dimension["visit:".len()..];
            let latest_metric = |metric: &str| -> anyhow::Result<&'static str> {
                Ok(match metric {
                    "visitors" => "count(DISTINCT visitor_id)",
                    "visits" => "count(*)",
                    "bounce_rate" => "round(100 * sum(bounce) / count(*))",
                    "visit_duration" => "round(avg(duration_s))",
                    other => return Err(unsupported(other)),
                })
            };
            Ok(format!(
                "WITH latest AS (SELECT session_id, arg_max(visitor_id, version) AS visitor_id, \
                 arg_max({column}, version) AS d, arg_max(bounce, version) AS bounce, \
                 arg_max(duration_s, version) AS duration_s FROM sessions \
                 WHERE {VISITS_IN_RANGE} AND sign = 1{filter} GROUP BY session_id) \
                 SELECT d, {} FROM latest {tail}",
                metrics(&latest_metric)?
            ))
        }
        _ => {
            // Attributes of the visit's first event, stamped on all its events: visitors are
            // those with an event in the range (from `events`), visits those that started in
            // it, with sign-weighted sums over the visit log (no collapsing per visit).
            let column = visit_column(dimension)
                .with_context(|| format!("no raw SQL for dimension {dimension}"))?;
            let visit_metric = |metric: &str| -> anyhow::Result<&'static str> {
                Ok(match metric {
                    "visitors" => "coalesce(e.visitors, 0)",
                    "visits" => "coalesce(s.visits, 0)",
                    "bounce_rate" => "coalesce(round(100 * s.bounces / nullif(s.visits, 0)), 0)",
                    "visit_duration" => {
                        "coalesce(round(s.duration_s / nullif(s.visits, 0)), 0)"
                    }
                    other => return Err(unsupported(other)),
                })
            };
            Ok(format!(
                "WITH e AS (SELECT {column} AS d, count(DISTINCT visitor_id) AS visitors FROM events \
                 WHERE {EVENTS_IN_RANGE}{filter} GROUP BY d), \
                 s AS (SELECT {column} AS d, {VISIT_SUMS} FROM sessions \
                 WHERE {VISITS_IN_RANGE}{filter} GROUP BY d HAVING sum(sign) > 0) \
                 SELECT coalesce(e.d, s.d) AS d, {} FROM e FULL JOIN s ON e.d = s.d \
                 ORDER BY m{order} DESC, d LIMIT {BREAKDOWN_LIMIT}",
                metrics(&visit_metric)?
            ))
        }
    }
}

/// The column of a visit attribute that both `events` and `sessions` have.
fn visit_column(dimension: &str) -> Option<&'static str> {
    Some(match dimension {
        "visit:source" => "referrer_source",
        "visit:channel" => "channel",
        "visit:utm_source" => "utm_source",
        "visit:country" => "country",
        "visit:browser" => "browser",
        "visit:os" => "os",
        "visit:device" => "device",
        _ => return None,
    })
}

/// `AND <column> IN (...)` for an `is` filter on a visit attribute (the same column on both
/// tables), or nothing.
fn filter_sql(filter: Option<Filter>) -> anyhow::Result<String> {
    let Some(filter) = filter else {
        return Ok(String::new());
    };
    let column = visit_column(filter.dimension)
        .with_context(|| format!("no raw SQL for a filter on {}", filter.dimension))?;
    ensure!(
        filter.operator == "is",
        "no raw SQL for filter operator {}",
        filter.operator
    );
    let values: Vec<String> = filter.values.iter().map(|value| quote(value)).collect();
    Ok(format!(" AND {column} IN ({})", values.join(", ")))
}

/// Metric columns of the retention statement: the cohort's size, then people back in each
/// week.
const RETENTION_METRICS: &[&str] = &[
    "size", "week_1", "week_2", "week_3", "week_4", "week_5", "week_6", "week_7", "week_8",
];
/// Events in time order, those of the same millisecond by a hash of their ids, as the API
/// orders them (the query crate's `order_key`).
const ORDER_KEY: &str = "(epoch_ms(ts) * 1048576 + CAST(hash(event_id) % 1048576 AS BIGINT))";

/// Metric columns of the funnel statement: per step, people and the median and 90th
/// percentile of seconds to the next step (-1 where nobody went on).
const FUNNEL_METRICS: &[&str] = &["people", "median_s", "p90_s"];
/// Metric columns of the paths statement's rows (nodes, edges, full paths).
const PATHS_METRICS: &[&str] = &["visitors", "dropoffs"];

/// The hand-written statement of a product analytics query, its dimension columns and
/// metric names.
pub fn product_sql(spec: &ProductSpec) -> anyhow::Result<(String, usize, &'static [&'static str])> {
    match spec.name {
        "funnel_4_steps" => Ok((funnel_sql(FUNNEL_STEPS)?, 1, FUNNEL_METRICS)),
        // Weekly cohorts of people (visitor ids) first seen in the range, and how many had
        // an event in each of the next weeks. UTC weeks from Monday.
        "retention_8_weeks" => {
            let weeks: String = (1..=RETENTION_WEEKS)
                .map(|week| {
                    format!(
                        ", count(DISTINCT w.visitor_id) FILTER (WHERE w.week = c.cohort + INTERVAL {week} WEEK)"
                    )
                })
                .collect();
            Ok((
                format!(
                    "WITH first_seen AS (SELECT visitor_id, min(ts) AS entered FROM events \
                     WHERE site_id = $1 AND ts < $3::TIMESTAMP AND name <> 'engagement' GROUP BY visitor_id), \
                     cohorts AS (SELECT visitor_id, date_trunc('week', entered) AS cohort FROM first_seen \
                     WHERE entered >= $2::TIMESTAMP), \
                     weeks AS (SELECT DISTINCT visitor_id, date_trunc('week', ts) AS week FROM events \
                     WHERE site_id = $1 AND ts >= $2::TIMESTAMP AND name <> 'engagement') \
                     SELECT strftime(c.cohort, '%Y-%m-%d') AS d, count(DISTINCT c.visitor_id){weeks} \
                     FROM cohorts c LEFT JOIN weeks w ON w.visitor_id = c.visitor_id \
                     AND w.week > c.cohort AND w.week <= c.cohort + INTERVAL {RETENTION_WEEKS} WEEK \
                     GROUP BY c.cohort ORDER BY c.cohort"
                ),
                1,
                RETENTION_METRICS,
            ))
        }
        // Each visit's page views with reloads collapsed, from its first view of the start
        // page, PATHS_DEPTH steps; per step the PATHS_LIMIT most visited pages, the rest
        // `(other)`. Rows: kind, step, up to four pages; visitors, drop-offs.
        "paths_from_home" => {
            let pages: String = (0..=PATHS_DEPTH)
                .map(|step| format!(", max(page) FILTER (WHERE step = {step}) AS p{step}"))
                .collect();
            let columns: Vec<String> = (0..=PATHS_DEPTH).map(|step| format!("p{step}")).collect();
            let columns = columns.join(", ");
            let start = quote(PATHS_START);
            Ok((
                format!(
                    "WITH views AS (SELECT session_id, visitor_id, pathname, ts, event_id, \
                     lag(pathname) OVER (PARTITION BY session_id ORDER BY {ORDER_KEY}) AS previous \
                     FROM events WHERE {EVENTS_IN_RANGE} AND name = 'pageview' AND session_id IN \
                     (SELECT session_id FROM events WHERE {EVENTS_IN_RANGE} AND name = 'pageview' AND pathname = {start})), \
                     seq AS (SELECT session_id, visitor_id, pathname, \
                     row_number() OVER (PARTITION BY session_id ORDER BY {ORDER_KEY}) AS pos \
                     FROM views WHERE previous IS DISTINCT FROM pathname), \
                     starts AS (SELECT session_id, min(pos) AS first_pos FROM seq WHERE pathname = {start} GROUP BY session_id), \
                     walk AS (SELECT seq.session_id, seq.visitor_id, seq.pos - starts.first_pos AS step, seq.pathname AS page \
                     FROM seq JOIN starts ON starts.session_id = seq.session_id \
                     WHERE seq.pos BETWEEN starts.first_pos AND starts.first_pos + {PATHS_DEPTH}), \
                     top AS (SELECT step, page FROM (SELECT step, page, row_number() OVER (PARTITION BY step \
                     ORDER BY count(DISTINCT visitor_id) DESC, page) AS r FROM walk GROUP BY step, page) WHERE r <= {PATHS_LIMIT}), \
                     folded AS (SELECT w.session_id, w.visitor_id, w.step, coalesce(top.page, '(other)') AS node, \
                     w.step = max(w.step) OVER (PARTITION BY w.session_id) AS last \
                     FROM walk w LEFT JOIN top ON top.step = w.step AND top.page = w.page) \
                     SELECT 'node', step::VARCHAR, node, '', '', '', count(DISTINCT visitor_id), \
                     count(DISTINCT visitor_id) FILTER (WHERE last AND step < {PATHS_DEPTH}) FROM folded GROUP BY step, node \
                     UNION ALL SELECT 'edge', b.step::VARCHAR, a.node, b.node, '', '', count(DISTINCT a.visitor_id), 0 \
                     FROM folded a JOIN folded b ON b.session_id = a.session_id AND b.step = a.step + 1 \
                     GROUP BY b.step, a.node, b.node \
                     UNION ALL SELECT * FROM (SELECT 'path', '', {columns}, count(DISTINCT visitor_id) AS visitors, 0 \
                     FROM (SELECT session_id, min(visitor_id) AS visitor_id{pages} FROM walk GROUP BY session_id \
                     HAVING max(step) = {PATHS_DEPTH}) GROUP BY {columns} ORDER BY visitors DESC, {columns} LIMIT {PATHS_LIMIT})"
                ),
                6,
                PATHS_METRICS,
            ))
        }
        other => bail!("no raw SQL for {other}"),
    }
}

/// A funnel step's condition on an `events` row, written by hand: a page (exactly, or a
/// prefix for a pattern ending in `/**`) or an event name.
fn funnel_step_sql(kind: &str, value: &str) -> anyhow::Result<String> {
    Ok(match (kind, value.strip_suffix("/**")) {
        ("page", Some(prefix)) if !prefix.contains('*') => format!(
            "name = 'pageview' AND starts_with(pathname, {})",
            quote(&format!("{prefix}/"))
        ),
        ("page", None) if !value.contains('*') => {
            format!("name = 'pageview' AND pathname = {}", quote(value))
        }
        ("event", _) => format!("name = {}", quote(value)),
        _ => bail!("no hand-written SQL for step {kind} {value:?}"),
    })
}

/// An ordered funnel within one visit, by hand: each first-step event chained to the nearest
/// later event of each next step in its visit with DuckDB's ASOF joins; each person's best
/// attempt (most steps, then the earliest); per step the people who reached it and the
/// median and p90 seconds to the next (-1 where none), rounded to the millisecond as the
/// API answers.
fn funnel_sql(steps: &[(&str, &str)]) -> anyhow::Result<String> {
    let n = steps.len();
    ensure!(n >= 2, "a funnel has two steps or more");
    let mut sql = format!(
        "WITH e AS (SELECT session_id AS s, visitor_id AS v, epoch_ms(ts) AS t, \
         row_number() OVER (PARTITION BY session_id ORDER BY {ORDER_KEY}) AS q"
    );
    for (k, (kind, value)) in steps.iter().enumerate() {
        write!(sql, ", {} AS s{}", funnel_step_sql(kind, value)?, k + 1)?;
    }
    write!(
        sql,
        " FROM events WHERE {EVENTS_IN_RANGE} AND name <> 'engagement'), \
         c1 AS (SELECT s, v, q AS q1, t AS t1 FROM e WHERE s1)"
    )?;
    for k in 2..=n {
        let p = k - 1;
        write!(
            sql,
            // An attempt that missed step k-1 reaches no later step.
            ", c{k} AS (SELECT c{p}.*, CASE WHEN c{p}.q{p} IS NOT NULL THEN x.q END AS q{k}, \
             CASE WHEN c{p}.q{p} IS NOT NULL THEN x.t END AS t{k} FROM c{p} ASOF LEFT JOIN \
             (SELECT s, q, t FROM e WHERE s{k}) AS x ON c{p}.s = x.s AND c{p}.q{p} < x.q)"
        )?;
    }
    let reached: Vec<String> = (2..=n)
        .map(|k| format!("(t{k} IS NOT NULL)::INT"))
        .collect();
    write!(
        sql,
        ", best AS (SELECT * FROM c{n} QUALIFY row_number() OVER \
         (PARTITION BY v ORDER BY {} DESC, t1, q1) = 1) ",
        reached.join(" + ")
    )?;
    let parts: Vec<String> = (1..=n)
        .map(|k| {
            let gap = |q: f64| {
                if k < n {
                    format!(
                        "coalesce(round(quantile_cont(t{} - t{k}, {q}) / 1000.0, 3), -1)",
                        k + 1
                    )
                } else {
                    "-1".to_owned()
                }
            };
            format!(
                "SELECT '{k}' AS step, count(t{k})::DOUBLE AS people, {} AS median_s, {} AS p90_s FROM best",
                gap(0.5),
                gap(0.9)
            )
        })
        .collect();
    write!(sql, "{} ORDER BY step", parts.join(" UNION ALL "))?;
    Ok(sql)
}

/// The API's answer to a product analytics query as rows like its raw statement's.
fn product_rows(spec: &ProductSpec, answer: &Value) -> anyhow::Result<Vec<AnswerRow>> {
    let number = |value: &Value| value.as_f64().unwrap_or(0.0);
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let list = |value: &Value, what: &str| -> anyhow::Result<Vec<Value>> {
        Ok(value
            .as_array()
            .with_context(|| format!("the answer has no `{what}`"))?
            .clone())
    };
    let mut rows = Vec::new();
    match spec.name {
        "funnel_4_steps" => {
            // One series (no breakdown): step number, people, median and p90 seconds to the
            // next step (-1 for none).
            let steps = list(&answer["results"][0]["steps"], "results[0].steps")?;
            for (index, step) in steps.iter().enumerate() {
                rows.push(AnswerRow {
                    dimensions: vec![(index + 1).to_string()],
                    metrics: vec![
                        step["visitors"].as_f64().unwrap_or(f64::NAN),
                        step["median_seconds_to_next"].as_f64().unwrap_or(-1.0),
                        step["p90_seconds_to_next"].as_f64().unwrap_or(-1.0),
                    ],
                });
            }
        }
        "retention_8_weeks" => {
            // Cohorts nobody entered are not rows of the raw statement; weeks that have not
            // started (null) had nobody back.
            for cohort in list(&answer["cohorts"], "cohorts")? {
                let size = number(&cohort["size"]);
                if size == 0.0 {
                    continue;
                }
                let mut metrics = vec![size];
                metrics.extend(
                    list(&cohort["returning"], "returning")?
                        .iter()
                        .skip(1)
                        .map(number),
                );
                rows.push(AnswerRow {
                    dimensions: vec![text(&cohort["cohort"])],
                    metrics,
                });
            }
        }
        "paths_from_home" => {
            let row = |dimensions: Vec<String>, metrics: Vec<f64>| {
                let mut dimensions = dimensions;
                dimensions.resize(6, String::new());
                AnswerRow {
                    dimensions,
                    metrics,
                }
            };
            for node in list(&answer["nodes"], "nodes")? {
                rows.push(row(
                    vec!["node".into(), node["step"].to_string(), text(&node["name"])],
                    vec![number(&node["visitors"]), number(&node["dropoffs"])],
                ));
            }
            for edge in list(&answer["edges"], "edges")? {
                rows.push(row(
                    vec![
                        "edge".into(),
                        edge["step"].to_string(),
                        text(&edge["from"]),
                        text(&edge["to"]),
                    ],
                    vec![number(&edge["visitors"]), 0.0],
                ));
            }
            for path in list(&answer["paths"], "paths")? {
                let mut dimensions = vec!["path".to_string(), String::new()];
                dimensions.extend(list(&path["pages"], "pages")?.iter().map(text));
                rows.push(row(dimensions, vec![number(&path["visitors"]), 0.0]));
            }
        }
        other => bail!("no rows for {other}"),
    }
    Ok(rows)
}

/// A SQL string literal.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl RawReport {
    /// The comparison as a markdown table.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} events stored, {} visits ({} visit-log rows); API {} runs, raw {} runs per query\n",
            self.events_stored,
            self.visits,
            self.session_log_rows,
            self.api_runs_per_query,
            self.raw_runs_per_query
        );
        let _ = writeln!(
            out,
            "| query | API p50 ms | API p95 ms | raw p50 ms | raw p95 ms | API/raw | answers |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        let ms = |value: Option<f64>| value.map_or("-".to_string(), |v| format!("{v:.1}"));
        for query in &self.queries {
            let api = match (&query.api_error, query.api_p50_ms) {
                (Some(error), _) => {
                    let status = error.split(':').next().unwrap_or(error);
                    (format!("{status} (unsupported)"), "-".to_string())
                }
                (None, p50) => (ms(p50), ms(query.api_p95_ms)),
            };
            let raw = match &query.raw_error {
                Some(_) => ("failed".to_string(), "-".to_string()),
                None => (ms(query.raw_p50_ms), ms(query.raw_p95_ms)),
            };
            let ratio = query
                .ratio_p50
                .map_or("-".to_string(), |ratio| format!("{ratio:.1}×"));
            let answers = match &query.agreement {
                Agreement::Match { rows } => format!("same ({rows} rows)"),
                Agreement::Approximate {
                    rows,
                    max_visitors_error_pct,
                } => {
                    format!("same but visitors within {max_visitors_error_pct:.2} % ({rows} rows)")
                }
                Agreement::Mismatch { differences } => {
                    format!("**MISMATCH**: {}", differences.join("; "))
                }
                Agreement::NoApiAnswer => "no API answer".to_string(),
                Agreement::NoRawAnswer => format!(
                    "raw failed: {}",
                    query.raw_error.as_deref().unwrap_or("no answer")
                ),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {ratio} | {answers} |",
                query.name, api.0, api.1, raw.0, raw.1
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables and columns the raw statements read, as in the store's schema.
    const SCHEMA: &str = "
        CREATE TABLE sites (id VARCHAR, domain VARCHAR, timezone VARCHAR);
        CREATE TABLE events (site_id VARCHAR, name VARCHAR, ts TIMESTAMP, visitor_id UBIGINT,
            session_id UBIGINT, pathname VARCHAR, referrer_source VARCHAR, channel VARCHAR,
            utm_source VARCHAR, country VARCHAR, browser VARCHAR, os VARCHAR, device VARCHAR,
            event_id VARCHAR);
        CREATE TABLE event_props (site_id VARCHAR, ts TIMESTAMP, name VARCHAR,
            visitor_id UBIGINT, session_id UBIGINT, pathname VARCHAR, key VARCHAR, value VARCHAR,
            event_id VARCHAR);
        CREATE TABLE sessions (site_id VARCHAR, session_id UBIGINT, visitor_id UBIGINT,
            sign TINYINT, version UINTEGER, start_ts TIMESTAMP, duration_s BIGINT,
            pageviews UINTEGER, bounce TINYINT, entry_page VARCHAR, exit_page VARCHAR,
            referrer_source VARCHAR, channel VARCHAR, utm_source VARCHAR, country VARCHAR,
            browser VARCHAR, os VARCHAR, device VARCHAR);
        INSERT INTO sites VALUES ('s1', 'example.com', 'UTC');
        -- Visit 1 (visitor 7, from Google): /a then /b, stored in two batches, so its first
        -- state (a bounce on /a) is cancelled. Visit 2 (visitor 8, direct): /a, a bounce, on
        -- the next day. An event of another site and one outside the range.
        INSERT INTO events VALUES
            ('s1', 'pageview', '2024-01-01 10:00:00', 7, 1, '/a', 'Google', 'Organic Search', '', '', 'Chrome', 'Linux', 'Desktop', 'e1'),
            ('s1', 'pageview', '2024-01-01 10:01:00', 7, 1, '/b', 'Google', 'Organic Search', '', '', 'Chrome', 'Linux', 'Desktop', 'e2'),
            ('s1', 'Signup', '2024-01-01 10:01:30', 7, 1, '/b', 'Google', 'Organic Search', '', '', 'Chrome', 'Linux', 'Desktop', 'e3'),
            ('s1', 'pageview', '2024-01-02 09:00:00', 8, 2, '/a', 'Direct / None', 'Direct', '', '', 'Safari', 'iOS', 'Mobile', 'e4'),
            ('s2', 'pageview', '2024-01-02 09:00:00', 9, 3, '/a', 'Direct / None', 'Direct', '', '', 'Safari', 'iOS', 'Mobile', 'e5'),
            ('s1', 'pageview', '2024-02-01 09:00:00', 8, 4, '/z', 'Direct / None', 'Direct', '', '', 'Safari', 'iOS', 'Mobile', 'e6');
        INSERT INTO event_props VALUES
            ('s1', '2024-01-01 10:01:30', 'Signup', 7, 1, '/b', 'plan', 'pro', 'e3');
        INSERT INTO sessions VALUES
            ('s1', 1, 7, 1, 1, '2024-01-01 10:00:00', 0, 1, 1, '/a', '/a', 'Google', 'Organic Search', '', '', 'Chrome', 'Linux', 'Desktop'),
            ('s1', 1, 7, -1, 1, '2024-01-01 10:00:00', 0, 1, 1, '/a', '/a', 'Google', 'Organic Search', '', '', 'Chrome', 'Linux', 'Desktop'),
            ('s1', 1, 7, 1, 2, '2024-01-01 10:00:00', 90, 2, 0, '/a', '/b', 'Google', 'Organic Search', '', '', 'Chrome', 'Linux', 'Desktop'),
            ('s1', 2, 8, 1, 1, '2024-01-02 09:00:00', 0, 1, 1, '/a', '/a', 'Direct / None', 'Direct', '', '', 'Safari', 'iOS', 'Mobile'),
            ('s2', 3, 9, 1, 1, '2024-01-02 09:00:00', 0, 1, 1, '/a', '/a', 'Direct / None', 'Direct', '', '', 'Safari', 'iOS', 'Mobile');
    ";
    const RANGE: [&str; 2] = ["2024-01-01T00:00:00+00:00", "2024-01-31T23:59:59.999+00:00"];

    fn database() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        connection
    }

    fn answer(name: &str) -> Vec<AnswerRow> {
        answer_with("", name)
    }

    /// The answer to `name` after running `extra` statements on the test database.
    fn answer_with(extra: &str, name: &str) -> Vec<AnswerRow> {
        let connection = database();
        connection.execute_batch(extra).unwrap();
        let spec = DASHBOARD_QUERIES.iter().find(|s| s.name == name).unwrap();
        let site = store_site_id(&connection, "example.com").unwrap();
        let range: Vec<String> = RANGE.iter().map(|t| t.to_string()).collect();
        let params = parameters(&site, &range).unwrap();
        run_statement(
            &connection,
            &raw_sql(spec).unwrap(),
            &params,
            dimension_count(spec),
        )
        .unwrap()
    }

    fn row(dimensions: &[&str], metrics: &[f64]) -> AnswerRow {
        AnswerRow {
            dimensions: dimensions.iter().map(|d| d.to_string()).collect(),
            metrics: metrics.to_vec(),
        }
    }

    #[test]
    fn every_dashboard_query_has_a_raw_statement_that_runs() {
        for spec in DASHBOARD_QUERIES {
            answer(spec.name);
        }
    }

    #[test]
    fn top_stats_collapse_the_visit_log() {
        // visitors, visits, pageviews, views per visit, bounce rate, visit duration.
        assert_eq!(
            answer("top_stats"),
            [row(&[], &[2.0, 2.0, 3.0, 1.5, 50.0, 45.0])]
        );
        assert_eq!(
            answer("top_stats_from_google"),
            [row(&[], &[1.0, 1.0, 2.0, 2.0, 0.0, 90.0])]
        );
    }

    #[test]
    fn time_series_has_a_row_per_utc_day() {
        assert_eq!(
            answer("timeseries_day"),
            [
                row(&["2024-01-01"], &[1.0, 1.0, 2.0, 2.0, 0.0, 90.0]),
                row(&["2024-01-02"], &[1.0, 1.0, 1.0, 1.0, 100.0, 0.0]),
            ]
        );
    }

    #[test]
    fn breakdowns_order_by_visitors_then_value() {
        assert_eq!(
            answer("pages"),
            [row(&["/a"], &[2.0, 2.0]), row(&["/b"], &[1.0, 1.0])]
        );
        assert_eq!(
            answer("goals"),
            [
                row(&["pageview"], &[2.0, 3.0]),
                row(&["Signup"], &[1.0, 0.0])
            ]
        );
        assert_eq!(
            answer("sources"),
            [
                row(&["Direct / None"], &[1.0, 1.0, 100.0]),
                row(&["Google"], &[1.0, 1.0, 0.0])
            ]
        );
        assert_eq!(
            answer("prop_plan"),
            [row(&["(none)"], &[2.0, 3.0]), row(&["pro"], &[1.0, 0.0])]
        );
        assert_eq!(answer("countries"), [row(&[""], &[2.0, 2.0, 50.0])]);
    }

    #[test]
    fn visitors_of_a_source_are_those_with_events_in_the_range() {
        // Visitor 10's visit from bing.com started before the range and goes on inside it:
        // a visitor of bing.com in the range, but not a visit that started in it.
        let extra = "
            INSERT INTO events VALUES
                ('s1', 'pageview', '2023-12-31 23:50:00', 10, 5, '/a', 'bing.com', 'Referral', '', '', '', '', '', 'e7'),
                ('s1', 'pageview', '2024-01-01 00:05:00', 10, 5, '/b', 'bing.com', 'Referral', '', '', '', '', '', 'e8');
            INSERT INTO sessions VALUES
                ('s1', 5, 10, 1, 1, '2023-12-31 23:50:00', 900, 2, 0, '/a', '/b', 'bing.com', 'Referral', '', '', '', '', '');
        ";
        assert_eq!(
            answer_with(extra, "sources"),
            [
                row(&["Direct / None"], &[1.0, 1.0, 100.0]),
                row(&["Google"], &[1.0, 1.0, 0.0]),
                row(&["bing.com"], &[1.0, 0.0, 0.0])
            ]
        );
        assert_eq!(answer_with(extra, "entry_pages"), answer("entry_pages"));
    }

    #[test]
    fn entry_pages_follow_a_late_event_that_moves_the_start() {
        // A late event before visit 2's first one makes /z its entry page.
        let extra = "
            INSERT INTO sessions VALUES
                ('s1', 2, 8, -1, 1, '2024-01-02 09:00:00', 0, 1, 1, '/a', '/a', 'Direct / None', 'Direct', '', '', 'Safari', 'iOS', 'Mobile'),
                ('s1', 2, 8, 1, 2, '2024-01-02 08:59:00', 60, 2, 0, '/z', '/a', 'Direct / None', 'Direct', '', '', 'Safari', 'iOS', 'Mobile');
        ";
        assert_eq!(
            answer_with(extra, "entry_pages"),
            [
                row(&["/a"], &[1.0, 1.0, 0.0]),
                row(&["/z"], &[1.0, 1.0, 0.0])
            ]
        );
    }

    #[test]
    fn exit_pages_use_each_visits_latest_state() {
        assert_eq!(
            answer("exit_pages"),
            [
                row(&["/a"], &[1.0, 1.0, 100.0]),
                row(&["/b"], &[1.0, 1.0, 0.0])
            ]
        );
        assert_eq!(answer("entry_pages"), [row(&["/a"], &[2.0, 2.0, 50.0])]);
    }

    #[test]
    fn answers_are_compared_row_by_row() {
        let api = answer_rows(&serde_json::json!([
            {"dimensions": ["/a"], "metrics": [2, 2]},
            {"dimensions": ["/b"], "metrics": [1, 1]}
        ]))
        .unwrap();
        assert_eq!(
            agreement(&api, &answer("pages"), PAGE_METRICS),
            Agreement::Match { rows: 2 }
        );
        let Agreement::Mismatch { differences } = agreement(&api[..1], &api[1..], PAGE_METRICS)
        else {
            panic!("different answers must not match");
        };
        assert_eq!(
            differences,
            [r#"row 0: API ["/a"] [2.0, 2.0], raw ["/b"] [1.0, 1.0]"#.to_string()]
        );
        assert!(matches!(
            agreement(&api, &api[..1], PAGE_METRICS),
            Agreement::Mismatch { .. }
        ));
    }

    const PAGE_METRICS: &[&str] = &["visitors", "pageviews"];

    #[test]
    fn visitors_may_differ_by_the_sketch_error_and_nothing_else() {
        let rows = |v: &[(&str, f64, f64)]| {
            v.iter()
                .map(|(d, visitors, views)| row(&[d], &[*visitors, *views]))
                .collect::<Vec<_>>()
        };
        let raw = rows(&[
            ("/a", 1000.0, 5000.0),
            ("/b", 990.0, 10.0),
            ("/c", 5.0, 5.0),
        ]);
        let api = rows(&[
            ("/b", 1010.0, 10.0),
            ("/a", 1001.0, 5000.0),
            ("/c", 5.0, 5.0),
        ]);
        let Agreement::Approximate {
            rows: 3,
            max_visitors_error_pct,
        } = agreement(&api, &raw, PAGE_METRICS)
        else {
            panic!("visitors within the sketch error agree approximately");
        };
        assert!((max_visitors_error_pct - 2.0202).abs() < 0.01);
        let off = rows(&[
            ("/a", 1000.0, 5001.0),
            ("/b", 990.0, 10.0),
            ("/c", 5.0, 5.0),
        ]);
        assert!(matches!(
            agreement(&off, &raw, PAGE_METRICS),
            Agreement::Mismatch { .. }
        ));
        let far = rows(&[
            ("/a", 1100.0, 5000.0),
            ("/b", 990.0, 10.0),
            ("/c", 5.0, 5.0),
        ]);
        assert!(matches!(
            agreement(&far, &raw, PAGE_METRICS),
            Agreement::Mismatch { .. }
        ));
    }

    /// The rows of product query `name` after running `extra` on the test database, sorted
    /// as they are compared.
    fn product_answer(extra: &str, name: &str) -> Vec<AnswerRow> {
        let connection = database();
        connection.execute_batch(extra).unwrap();
        let spec = PRODUCT_QUERIES.iter().find(|s| s.name == name).unwrap();
        let range: Vec<String> = RANGE.iter().map(|t| t.to_string()).collect();
        let params = parameters("s1", &range).unwrap();
        let (sql, dimensions, _) = product_sql(spec).unwrap();
        let mut rows = run_statement(&connection, &sql, &params, dimensions).unwrap();
        rows.sort_by(|a, b| a.dimensions.cmp(&b.dimensions));
        rows
    }

    /// Two visits through the funnel of [`FUNNEL_STEPS`]: visitor 20 all the way (pricing
    /// after 60 s, docs after 120 s, a signup after 60 s), visitor 21 to pricing (120 s), its
    /// second home page view a worse attempt; visitor 22 skips pricing, so its docs page and
    /// signup count for nothing. Visitor 7's visit starts on no home page.
    #[test]
    fn the_funnel_statement_answers_by_hand_and_as_the_api() {
        let extra = "INSERT INTO events (site_id, name, ts, visitor_id, session_id, pathname, event_id) VALUES
            ('s1', 'pageview', '2024-01-05 10:00:00', 20, 20, '/', 'f1'),
            ('s1', 'pageview', '2024-01-05 10:01:00', 20, 20, '/pricing', 'f2'),
            ('s1', 'pageview', '2024-01-05 10:03:00', 20, 20, '/docs/api/overview', 'f3'),
            ('s1', 'Signup', '2024-01-05 10:04:00', 20, 20, '/docs/api/overview', 'f4'),
            ('s1', 'pageview', '2024-01-05 11:00:00', 21, 21, '/', 'f5'),
            ('s1', 'pageview', '2024-01-05 11:02:00', 21, 21, '/pricing', 'f6'),
            ('s1', 'pageview', '2024-01-05 11:03:00', 21, 21, '/', 'f7'),
            ('s1', 'pageview', '2024-01-05 12:00:00', 22, 22, '/', 'f8'),
            ('s1', 'pageview', '2024-01-05 12:01:00', 22, 22, '/docs/install/docker', 'f9'),
            ('s1', 'Signup', '2024-01-05 12:02:00', 22, 22, '/docs/install/docker', 'f10');";
        let raw = product_answer(extra, "funnel_4_steps");
        // Pricing: 60 and 120 s (median 90, p90 at 0.9 is 114); docs: 120 s; signup: 60 s.
        let expected = vec![
            row(&["1"], &[3.0, 90.0, 114.0]),
            row(&["2"], &[2.0, 120.0, 120.0]),
            row(&["3"], &[1.0, 60.0, 60.0]),
            row(&["4"], &[1.0, -1.0, -1.0]),
        ];
        assert_eq!(raw, expected);
        let api = serde_json::json!({"results": [{"breakdown": null, "steps": [
            {"visitors": 3, "median_seconds_to_next": 90.0, "p90_seconds_to_next": 114.0},
            {"visitors": 2, "median_seconds_to_next": 120.0, "p90_seconds_to_next": 120.0},
            {"visitors": 1, "median_seconds_to_next": 60.0, "p90_seconds_to_next": 60.0},
            {"visitors": 1, "median_seconds_to_next": null, "p90_seconds_to_next": null}]}]});
        let spec = PRODUCT_QUERIES
            .iter()
            .find(|s| s.name == "funnel_4_steps")
            .unwrap();
        assert_eq!(product_rows(spec, &api).unwrap(), expected);
    }

    #[test]
    fn retention_counts_people_back_in_later_weeks() {
        // Visitors 7 (Jan 1) and 8 (Jan 2) enter in the week of Monday Jan 1; visitor 8 is
        // back on Feb 1, four weeks later (after the range, still counted).
        assert_eq!(
            product_answer("", "retention_8_weeks"),
            [row(
                &["2024-01-01"],
                &[2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
            )]
        );
    }

    #[test]
    fn paths_walk_from_the_home_page_and_agree_with_the_apis_answer() {
        // Visitor 11 views /, /a, /a again (a reload) and /b.
        let extra = "
            INSERT INTO events VALUES
                ('s1', 'pageview', '2024-01-03 10:00:00', 11, 6, '/', '', '', '', '', '', '', '', 'f1'),
                ('s1', 'pageview', '2024-01-03 10:01:00', 11, 6, '/a', '', '', '', '', '', '', '', 'f2'),
                ('s1', 'pageview', '2024-01-03 10:02:00', 11, 6, '/a', '', '', '', '', '', '', '', 'f3'),
                ('s1', 'pageview', '2024-01-03 10:03:00', 11, 6, '/b', '', '', '', '', '', '', '', 'f4');
        ";
        let raw = product_answer(extra, "paths_from_home");
        fn dims<'a>(d: &[&'a str]) -> Vec<&'a str> {
            let mut d = d.to_vec();
            d.resize(6, "");
            d
        }
        assert_eq!(
            raw,
            [
                row(&dims(&["edge", "1", "/", "/a"]), &[1.0, 0.0]),
                row(&dims(&["edge", "2", "/a", "/b"]), &[1.0, 0.0]),
                row(&dims(&["node", "0", "/"]), &[1.0, 0.0]),
                row(&dims(&["node", "1", "/a"]), &[1.0, 0.0]),
                row(&dims(&["node", "2", "/b"]), &[1.0, 1.0]),
            ]
        );
        let api = serde_json::json!({
            "nodes": [{"step": 0, "name": "/", "visitors": 1, "dropoffs": 0},
                      {"step": 1, "name": "/a", "visitors": 1, "dropoffs": 0},
                      {"step": 2, "name": "/b", "visitors": 1, "dropoffs": 1}],
            "edges": [{"step": 1, "from": "/", "to": "/a", "visitors": 1},
                      {"step": 2, "from": "/a", "to": "/b", "visitors": 1}],
            "paths": [],
        });
        let spec = PRODUCT_QUERIES
            .iter()
            .find(|s| s.name == "paths_from_home")
            .unwrap();
        let mut rows = product_rows(spec, &api).unwrap();
        rows.sort_by(|a, b| a.dimensions.cmp(&b.dimensions));
        assert_eq!(rows, raw);
    }

    #[test]
    fn range_parameters_are_utc_and_end_exclusive() {
        let range = vec![
            "2024-01-01T00:00:00+01:00".to_string(),
            "2024-01-30T23:59:59.999+01:00".to_string(),
        ];
        assert_eq!(
            parameters("s1", &range).unwrap(),
            [
                "s1".to_string(),
                "2023-12-31 23:00:00.000".to_string(),
                "2024-01-30 23:00:00.000".to_string()
            ]
        );
    }

    #[test]
    fn filter_values_are_quoted() {
        let filter = Filter {
            operator: "is",
            dimension: "visit:source",
            values: &["Google", "O'Reilly"],
        };
        assert_eq!(
            filter_sql(Some(filter)).unwrap(),
            " AND referrer_source IN ('Google', 'O''Reilly')"
        );
        assert!(filter_sql(Some(Filter {
            operator: "contains",
            ..filter
        }))
        .is_err());
    }
}
