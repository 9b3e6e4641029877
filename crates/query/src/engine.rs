//! Runs a query and assembles its result: joins the rows of the events and sessions
//! statements (or reads the rollups) by dimension values, derives ratio metrics, orders,
//! paginates and compares with the previous period. The result is typed ([`QueryResult`]);
//! `plausible/response.rs` writes it as Plausible's v2 response.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::compile::aggregate::{self, Statements};
use crate::compile::imported::{self, SkipReason};
use crate::model::{Condition, Dimension, Metric, Order, Query, Revenue, TimeGrain};
use crate::plan::{plan, Plan, Source};
use crate::sql::{Row, RunError, Sql, SqlRunner, SqlValue};
use crate::time::{bucket_label_within, bucket_labels};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResultRow {
    pub metrics: Vec<Value>,
    pub dimensions: Vec<String>,
    /// The same row in the comparison period, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// Plausible's `comparison` of a row: the matching row of the previous period and the
/// change of each metric (percent; points for `bounce_rate`, null when the other period had no
/// visits).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    pub dimensions: Vec<String>,
    pub metrics: Vec<Value>,
    pub change: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub results: Vec<ResultRow>,
    /// Rows before pagination.
    pub total_rows: usize,
    /// Every time bucket of the range, when `include.time_labels` asked for them.
    pub time_labels: Option<Vec<String>>,
    /// Whether imported statistics are in the answer, when `include.imports` asked for them.
    pub imports: Option<Imports>,
}

/// Plausible's `imports_included` and `imports_skip_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imports {
    pub included: bool,
    pub skip_reason: Option<SkipReason>,
}

/// Sums from both statements for one combination of dimension values.
#[derive(Debug, Default, Clone)]
struct Totals {
    event_visitors: f64,
    event_pageviews: f64,
    event_events: f64,
    event_visits: f64,
    session_visitors: f64,
    session_visits: f64,
    bounces: f64,
    /// The visits the bounce rate is over (see `compile::aggregate`'s `bounce_weight`).
    bounce_visits: f64,
    duration_s: f64,
    /// The visits `duration_s` is over (imported pages count visits without durations).
    duration_visits: f64,
    session_pageviews: f64,
    session_events: f64,
    page_seconds: f64,
    page_views_timed: f64,
    /// The row's page's page views (exit pages' rows only).
    page_views: f64,
    /// The deepest scroll of each visit with a scroll depth, summed, and those visits.
    scroll_total: f64,
    scroll_visits: f64,
    /// Revenue in micro-units of the row's currency, and the events that carried it.
    revenue_micros: f64,
    revenue_events: f64,
}

/// What a row's ratios are over, beyond its own totals.
struct Denominators<'q> {
    /// All visitors of the same filters (`percentage`).
    all_visitors: f64,
    /// All visitors without goal and property filters (`conversion_rate`).
    converting_from: f64,
    /// Each row's visitors without goal and property filters (`group_conversion_rate`).
    groups: HashMap<Vec<String>, f64>,
    query: &'q Query,
}

fn cell_text(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => String::new(),
        SqlValue::Text(s) => s.clone(),
        SqlValue::Bool(b) => b.to_string(),
        SqlValue::Int(v) => v.to_string(),
        SqlValue::UInt(v) => v.to_string(),
        SqlValue::Float(v) => v.to_string(),
        SqlValue::TimestampMs(v) => v.to_string(),
        SqlValue::Blob(_) => String::new(),
    }
}

/// The text of a dimension's cell: time buckets arrive as timestamps and become labels.
fn dimension_text(dimension: &Dimension, value: &SqlValue, query: &Query) -> String {
    match (dimension, value) {
        (Dimension::Time(grain), SqlValue::TimestampMs(ms)) => {
            bucket_label_within(*ms, *grain, query.range, query.timezone)
        }
        _ => cell_text(value),
    }
}

/// A statement row's dimension values (its first columns) as the row's key.
fn row_key(query: &Query, row: &[SqlValue]) -> Vec<String> {
    query
        .dimensions
        .iter()
        .zip(row)
        .map(|(dimension, value)| dimension_text(dimension, value, query))
        .collect()
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

fn metric_value(
    metric: Metric,
    t: &Totals,
    plan: &Plan,
    row: &[String],
    over: &Denominators,
) -> Value {
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    let counts = |event: f64, session: f64| {
        if plan.counts_from_sessions {
            session
        } else {
            event
        }
    };
    let visitors = counts(t.event_visitors, t.session_visitors);
    match metric {
        Metric::Visitors => json!(counts(t.event_visitors, t.session_visitors) as u64),
        Metric::Pageviews => json!(counts(t.event_pageviews, t.session_pageviews) as u64),
        Metric::Events => json!(counts(t.event_events, t.session_events) as u64),
        Metric::Visits => json!(if plan.visits_from_events {
            t.event_visits
        } else {
            t.session_visits
        } as u64),
        Metric::BounceRate => json!(ratio(100.0 * t.bounces, t.bounce_visits).round() as u64),
        Metric::VisitDuration => json!(ratio(t.duration_s, t.duration_visits).round() as u64),
        Metric::ViewsPerVisit => json!(round_to(ratio(t.session_pageviews, t.session_visits), 2)),
        // None when no view of the page was followed by another (only exits), as Plausible.
        Metric::TimeOnPage if t.page_views_timed > 0.0 => {
            json!((t.page_seconds / t.page_views_timed).round() as u64)
        }
        Metric::TimeOnPage => Value::Null,
        Metric::ExitRate if t.page_views > 0.0 => {
            json!(round_to(100.0 * t.session_visits / t.page_views, 1))
        }
        Metric::ExitRate => Value::Null,
        // None without a visit reporting one. Halves round to even, as ClickHouse's `round`
        // of Plausible's average does.
        Metric::ScrollDepth if t.scroll_visits > 0.0 => {
            json!((t.scroll_total / t.scroll_visits).round_ties_even() as u64)
        }
        Metric::ScrollDepth => Value::Null,
        Metric::Percentage => json!(round_to(ratio(100.0 * visitors, over.all_visitors), 1)),
        Metric::ConversionRate => json!(round_to(ratio(100.0 * visitors, over.converting_from), 2)),
        Metric::GroupConversionRate => {
            let group = over.groups.get(row).copied().unwrap_or(0.0);
            json!(round_to(ratio(100.0 * visitors, group), 2))
        }
        Metric::TotalRevenue | Metric::AverageRevenue => {
            let Some(currency) = revenue_currency(over.query, row) else {
                return Value::Null;
            };
            let micros = match metric {
                Metric::TotalRevenue => t.revenue_micros,
                _ => ratio(t.revenue_micros, t.revenue_events),
            };
            // Thousandths, cut as ClickHouse's Decimal64(3) of Plausible's columns is.
            crate::money::money((micros / 1000.0).trunc() as i128, currency)
        }
    }
}

/// The currency of a row's revenue: the query's one currency, or by goal the row's goal's
/// (none for a goal without revenue).
fn revenue_currency<'q>(query: &'q Query, row: &[String]) -> Option<&'q str> {
    match &query.revenue {
        Revenue::Single(code) => Some(code),
        Revenue::PerGoal => {
            let index = query
                .dimensions
                .iter()
                .position(|d| *d == Dimension::Goal)?;
            query
                .goals
                .iter()
                .find(|g| g.display_name == row[index])?
                .currency
                .as_deref()
        }
        _ => None,
    }
}

/// A metric's number: revenue's is its `value`.
fn numeric(value: &Value) -> f64 {
    value
        .as_f64()
        .or_else(|| value.get("value").and_then(Value::as_f64))
        .unwrap_or(0.0)
}

/// Compiles `query`, runs it on `runner` and assembles the result: rows ordered and
/// paginated, each with its comparison row when asked for.
pub async fn execute(query: &Query, runner: &dyn SqlRunner) -> Result<QueryResult, RunError> {
    // Read once: every period and total of the query decides on imports from it.
    let imports_end = match query.include_imports {
        true => latest_import_end(query, runner).await?,
        false => None,
    };
    let mut rows = all_rows(query, runner, imports_end).await?;
    // A time series compared with another period has every bucket, empty ones included (the
    // other period's may not be), as Plausible's.
    if let ([Dimension::Time(grain)], Some(_)) = (query.dimensions.as_slice(), query.comparison) {
        let present: std::collections::HashSet<String> =
            rows.iter().map(|row| row.dimensions[0].clone()).collect();
        for label in bucket_labels(query.range, query.timezone, *grain) {
            if !present.contains(&label) {
                rows.push(ResultRow {
                    metrics: query.metrics.iter().map(|_| json!(0)).collect(),
                    dimensions: vec![label],
                    comparison: None,
                });
            }
        }
    }
    sort(&mut rows, query);
    let total_rows = rows.len();
    let mut results: Vec<ResultRow> = rows
        .into_iter()
        .skip(query.offset)
        .take(query.limit)
        .collect();
    let mut imports = query
        .include_imports
        .then(|| Imports::of(imported::decide(query, imports_end)));
    if let Some(range) = query.comparison {
        let previous = Query {
            range,
            comparison: None,
            ..query.clone()
        };
        compare(
            &mut results,
            query,
            &all_rows(&previous, runner, imports_end).await?,
        );
        // Included when either period includes them, as Plausible's meta says.
        if let Some(main) = imports.as_mut() {
            let other = Imports::of(imported::decide(&previous, imports_end));
            main.included |= other.included;
            if other.skip_reason.is_none() {
                main.skip_reason = None;
            }
        }
    }
    let time_labels = query.include_time_labels.then(|| {
        time_grain(query)
            .map(|grain| bucket_labels(query.range, query.timezone, grain))
            .unwrap_or_default()
    });
    Ok(QueryResult {
        results,
        total_rows,
        time_labels,
        imports,
    })
}

impl Imports {
    fn of(decision: Result<heartbeat_model::ImportedTable, SkipReason>) -> Imports {
        Imports {
            included: decision.is_ok(),
            skip_reason: decision.err(),
        }
    }
}

/// The last day any import of the query's site covers; `None` without imports.
async fn latest_import_end(
    query: &Query,
    runner: &dyn SqlRunner,
) -> Result<Option<chrono::NaiveDate>, RunError> {
    let rows = runner
        .run(imported::latest_end_statement(
            query,
            runner.dialect().sql(),
        ))
        .await?;
    Ok(match rows.first().and_then(|row| row.first()) {
        Some(SqlValue::Text(day)) => day.parse().ok(),
        _ => None,
    })
}

/// Adds the imported table's sums to `totals`, when the query asks for imports and one
/// table answers it.
async fn add_imported(
    query: &Query,
    runner: &dyn SqlRunner,
    imports_end: Option<chrono::NaiveDate>,
    totals: &mut HashMap<Vec<String>, Totals>,
) -> Result<(), RunError> {
    let Ok(table) = imported::decide(query, imports_end) else {
        return Ok(());
    };
    let width = query.dimensions.len();
    let mut rows = Vec::new();
    for sql in imported::statements(query, table, runner.dialect().sql()) {
        rows.extend(runner.run(sql).await?);
    }
    for row in rows {
        let c: Vec<f64> = row[width..].iter().map(SqlValue::as_f64).collect();
        let t = totals.entry(row_key(query, &row)).or_default();
        t.event_visitors += c[0];
        t.session_visitors += c[0];
        t.event_pageviews += c[1];
        t.session_pageviews += c[1];
        t.event_events += c[2];
        t.session_events += c[2];
        t.event_visits += c[3];
        t.session_visits += c[3];
        t.bounces += c[4];
        t.bounce_visits += c[5];
        t.duration_s += c[6];
        t.duration_visits += c[7];
    }
    // An exit page's exit rate is over its page views, imported ones included.
    if table == heartbeat_model::ImportedTable::ExitPages
        && query.metrics.contains(&Metric::ExitRate)
    {
        let sql = imported::page_views_statement(query, runner.dialect().sql());
        for row in runner.run(sql).await? {
            if let Some(t) = totals.get_mut(&vec![cell_text(&row[0])]) {
                t.page_views += row[1].as_f64();
            }
        }
    }
    Ok(())
}

fn time_grain(query: &Query) -> Option<TimeGrain> {
    query.dimensions.iter().find_map(|d| match d {
        Dimension::Time(grain) => Some(*grain),
        _ => None,
    })
}

/// Attaches to each row the previous period's row with the same dimensions; a time bucket
/// matches the bucket at the same position of the previous period.
fn compare(results: &mut [ResultRow], query: &Query, previous: &[ResultRow]) {
    let shift: HashMap<String, String> = match (time_grain(query), query.comparison) {
        (Some(grain), Some(range)) => bucket_labels(query.range, query.timezone, grain)
            .into_iter()
            .zip(bucket_labels(range, query.timezone, grain))
            .collect(),
        _ => HashMap::new(),
    };
    let time_index = query
        .dimensions
        .iter()
        .position(|d| matches!(d, Dimension::Time(_)));
    let by_dimensions: HashMap<&[String], &ResultRow> = previous
        .iter()
        .map(|row| (row.dimensions.as_slice(), row))
        .collect();
    for row in results {
        let mut dimensions = row.dimensions.clone();
        if let Some(index) = time_index {
            dimensions[index] = shift.get(&dimensions[index]).cloned().unwrap_or_default();
        }
        let metrics = match by_dimensions.get(dimensions.as_slice()) {
            Some(found) => found.metrics.clone(),
            // No such row then: no visits, and no exit rate (no page views to divide by).
            None => query
                .metrics
                .iter()
                .map(|m| match m {
                    Metric::ExitRate | Metric::ScrollDepth => Value::Null,
                    _ => json!(0),
                })
                .collect(),
        };
        let change = query
            .metrics
            .iter()
            .zip(row.metrics.iter().zip(&metrics))
            .map(|(metric, (now, before))| match metric {
                // Points, as a rate; none without a rate to compare with.
                Metric::ExitRate if before.is_null() || now.is_null() => Value::Null,
                Metric::ExitRate => json!(round_to(numeric(now) - numeric(before), 1)),
                Metric::ScrollDepth | Metric::TimeOnPage if before.is_null() || now.is_null() => {
                    Value::Null
                }
                _ => change(*metric, numeric(before), numeric(now)),
            })
            .collect();
        row.comparison = Some(Comparison {
            dimensions,
            metrics,
            change,
        });
    }
}

/// Plausible's change: points for rates, else percent (100 from nothing, 0 from 0 to 0).
fn change(metric: Metric, before: f64, now: f64) -> Value {
    match metric {
        // Points for a rate, as Plausible's (nothing to compare with a period without visits).
        Metric::BounceRate if before > 0.0 => json!(now - before),
        Metric::BounceRate => Value::Null,
        Metric::ConversionRate | Metric::GroupConversionRate => json!(round_to(now - before, 1)),
        _ if before == 0.0 => json!(if now > 0.0 { 100 } else { 0 }),
        _ => json!(((now - before) / before * 100.0).round() as i64),
    }
}

/// Every row of `query`, unordered and unpaginated; `imports_end` is the last day the site's
/// imports cover, when the query asks for them.
async fn all_rows(
    query: &Query,
    runner: &dyn SqlRunner,
    imports_end: Option<chrono::NaiveDate>,
) -> Result<Vec<ResultRow>, RunError> {
    let plan = plan(query, runner.has_rollups());
    let width = query.dimensions.len();
    let mut totals: HashMap<Vec<String>, Totals> = HashMap::new();
    match &plan.source {
        Source::Rollups { key, values } => {
            add_rollups(query, key, values.as_ref(), runner, &mut totals).await?
        }
        Source::Tables(reads) => {
            if !add_sampled_prop_breakdown(query, reads, runner, &mut totals).await? {
                let statements = aggregate::statements(query, reads, runner.dialect().sql());
                run_statements(&statements, query, runner, &mut totals).await?;
            }
        }
    }
    if query.include_imports {
        add_imported(query, runner, imports_end, &mut totals).await?;
    }
    if width == 0 && totals.is_empty() {
        totals.insert(Vec::new(), Totals::default());
    }
    let over = denominators(query, runner, imports_end).await?;
    Ok(totals
        .into_iter()
        .map(|(dimensions, t)| ResultRow {
            metrics: query
                .metrics
                .iter()
                .map(|m| metric_value(*m, &t, &plan, &dimensions, &over))
                .collect(),
            dimensions,
            comparison: None,
        })
        .collect())
}

/// Visitors of the rows the query's ratios are over, read when a metric needs them.
async fn denominators<'q>(
    query: &'q Query,
    runner: &dyn SqlRunner,
    imports_end: Option<chrono::NaiveDate>,
) -> Result<Denominators<'q>, RunError> {
    // Imported visitors count in a denominator only where they count in the rows (as
    // Plausible's `total_visitors_subquery` keeps the query's `include_imported`).
    let imports = query.include_imports && imported::decide(query, imports_end).is_ok();
    let visitors_of = |dimensions: Vec<Dimension>, filters: Vec<crate::model::Filter>| Query {
        metrics: vec![Metric::Visitors],
        dimensions,
        filters,
        order_by: Vec::new(),
        comparison: None,
        revenue: Revenue::NotAsked,
        include_imports: imports,
        ..query.clone()
    };
    // Conversions are over the visitors without the goal and property filters.
    let unconverted: Vec<crate::model::Filter> = query
        .filters
        .iter()
        .filter(|f| {
            !matches!(f, crate::model::Filter::Condition(c)
                if matches!(c.dimension, Dimension::Goal | Dimension::Prop(_)))
        })
        .cloned()
        .collect();
    let wants = |m: Metric| query.metrics.contains(&m);
    let total = |q: Query| async move {
        let rows = Box::pin(all_rows(&q, runner, imports_end)).await?;
        Ok::<f64, RunError>(rows.first().map_or(0.0, |row| numeric(&row.metrics[0])))
    };
    let all_visitors = match wants(Metric::Percentage) {
        true => total(visitors_of(Vec::new(), query.filters.clone())).await?,
        false => 0.0,
    };
    let converting_from = match wants(Metric::ConversionRate) {
        true => total(visitors_of(Vec::new(), unconverted.clone())).await?,
        false => 0.0,
    };
    let groups = match wants(Metric::GroupConversionRate) {
        true => {
            // By page, a row's visitors are those of any event on the page (page views count
            // only page views unless events are picked by name, as a goal filter did).
            let mut unconverted = unconverted;
            if query.dimensions.contains(&Dimension::Page) {
                unconverted.push(crate::model::Filter::Condition(crate::model::Condition {
                    operator: crate::model::Operator::IsNot,
                    dimension: Dimension::Name,
                    values: vec![heartbeat_model::ENGAGEMENT.to_owned()],
                    case_sensitive: true,
                }));
            }
            let q = visitors_of(query.dimensions.clone(), unconverted);
            Box::pin(all_rows(&q, runner, imports_end))
                .await?
                .into_iter()
                .map(|row| (row.dimensions, numeric(&row.metrics[0])))
                .collect()
        }
        false => HashMap::new(),
    };
    Ok(Denominators {
        all_visitors,
        converting_from,
        groups,
        query,
    })
}

/// Reads the rollup cells of dimension `key` (whose value passes `values`, when given) that
/// answer `query` into `totals`.
async fn add_rollups(
    query: &Query,
    key: &str,
    values: Option<&Condition>,
    runner: &dyn SqlRunner,
    totals: &mut HashMap<Vec<String>, Totals>,
) -> Result<(), RunError> {
    for (row, mut sum) in crate::rollup::read(query, key, values, runner).await? {
        let (visitors, sums) = (sum.visitors.count(), sum.counts);
        // An entry or exit page no visit is on any more (its visits moved on) is no row, as
        // in the visit log.
        if visitors == 0 && sums.visits == 0 && sums.pageviews == 0 && sums.events == 0 {
            continue;
        }
        let t = totals.entry(row).or_default();
        t.event_visitors = visitors as f64;
        // Visitors of a visit-only dimension (entry and exit pages) are its cells' visitors.
        t.session_visitors = visitors as f64;
        t.event_pageviews = sums.pageviews as f64;
        t.event_events = sums.events as f64;
        t.session_visits = sums.visits as f64;
        t.bounces = sums.bounces as f64;
        t.bounce_visits = sums.visits as f64;
        t.duration_s = sums.duration_s as f64;
        t.duration_visits = sums.visits as f64;
        t.session_pageviews = sums.visit_pageviews as f64;
        t.session_events = sums.visit_events as f64;
    }
    Ok(())
}

/// The fewest visitors of a sample whose count, scaled up, may stand for a row's visitors:
/// its relative error is then about `1 / sqrt(65,536)`, 0.4 % (one standard deviation), and
/// the rows it stands for have millions of visitors, far above the 65,536 under which every
/// count is exact.
const SAMPLED_VISITORS_AT_LEAST: u64 = 65_536;

/// One visitor in `2^bits` is sampled in a range of `visitors` so that the sample holds
/// about twice [`SAMPLED_VISITORS_AT_LEAST`] of them; `None` below 4 times that (no
/// sample: every visitor is counted).
fn sample_bits(visitors: u64) -> Option<u32> {
    let ratio = visitors / (2 * SAMPLED_VISITORS_AT_LEAST);
    (ratio >= 2).then(|| ratio.ilog2())
}

/// An unfiltered breakdown by a custom property over a range of millions of visitors, on
/// an engine that samples visitors: its `(none)` row (the events without the property,
/// nearly all of them on most sites) is the one statement that would count millions of
/// distinct visitors over the events; its visitors are counted over a sample of one visitor
/// in `2^bits` instead and scaled up, its page views and events are the range's (from the
/// rollup cells, exact) less the values', and the values' rows are counted exactly. False,
/// and nothing added, when the query is no such breakdown, the range's total is not in the
/// cells, it has too few visitors, or the sample holds fewer than
/// [`SAMPLED_VISITORS_AT_LEAST`] of `(none)`'s: the exact statements answer then.
async fn add_sampled_prop_breakdown(
    query: &Query,
    reads: &crate::plan::Reads,
    runner: &dyn SqlRunner,
    totals: &mut HashMap<Vec<String>, Totals>,
) -> Result<bool, RunError> {
    let dialect = runner.dialect().sql();
    if !aggregate::samples_prop_breakdown(query, reads, dialect) {
        return Ok(false);
    }
    let range = Query {
        metrics: vec![Metric::Visitors, Metric::Pageviews, Metric::Events],
        dimensions: Vec::new(),
        order_by: Vec::new(),
        comparison: None,
        include_imports: false,
        ..query.clone()
    };
    let Source::Rollups { key, values: None } = plan(&range, runner.has_rollups()).source else {
        return Ok(false);
    };
    let Some(mut all) = crate::rollup::read(&range, &key, None, runner)
        .await?
        .into_values()
        .next()
    else {
        return Ok(false);
    };
    let Some(bits) = sample_bits(all.visitors.count() as u64) else {
        return Ok(false);
    };
    let Some(statements) = aggregate::sampled_prop_breakdown(query, reads, bits, dialect) else {
        return Ok(false);
    };
    let (values, none) = futures::try_join!(
        runner.run(statements.values),
        runner.run(statements.none_visitors)
    )?;
    let sampled = none
        .first()
        .and_then(|row| row.first())
        .map_or(0.0, SqlValue::as_f64);
    if sampled < SAMPLED_VISITORS_AT_LEAST as f64 {
        return Ok(false);
    }
    let (mut pageviews, mut events) = (all.counts.pageviews as f64, all.counts.events as f64);
    for row in values {
        let t = totals.entry(row_key(query, &row)).or_default();
        add_event_counts(t, &row[1..]);
        pageviews -= t.event_pageviews;
        events -= t.event_events;
    }
    let none = totals.entry(vec![aggregate::NONE.to_owned()]).or_default();
    none.event_visitors = sampled * 2f64.powi(bits as i32);
    // Never below zero, should events be stored between the cells' read and the values'.
    none.event_pageviews = pageviews.max(0.0);
    none.event_events = events.max(0.0);
    Ok(true)
}

/// A row of the events statement after its dimensions (`Statements::events`' columns).
fn add_event_counts(t: &mut Totals, c: &[SqlValue]) {
    t.event_visitors = c[0].as_f64();
    t.event_pageviews = c[1].as_f64();
    t.event_events = c[2].as_f64();
    t.event_visits = c[3].as_f64();
    if let [revenue, revenue_events] = &c[4..] {
        t.revenue_micros = revenue.as_f64();
        t.revenue_events = revenue_events.as_f64();
    }
}

/// Runs the compiled statements (at once: they read different tables, and the store's pool
/// has connections to spare) and adds their rows to `totals`.
async fn run_statements(
    statements: &Statements,
    query: &Query,
    runner: &dyn SqlRunner,
    totals: &mut HashMap<Vec<String>, Totals>,
) -> Result<(), RunError> {
    let width = query.dimensions.len();
    let mut merge = |rows: Vec<Row>, apply: &dyn Fn(&mut Totals, &[SqlValue])| {
        for row in rows {
            apply(
                totals.entry(row_key(query, &row)).or_default(),
                &row[width..],
            );
        }
    };
    let run = |sql: Option<Sql>| async move {
        match sql {
            Some(sql) => runner.run(sql).await.map(Some),
            None => Ok(None),
        }
    };
    let (events, sessions, time_on_page, page_views, scroll_depth) = futures::try_join!(
        run(statements.events.clone()),
        run(statements.sessions.clone()),
        run(statements.time_on_page.clone()),
        run(statements.page_views.clone()),
        run(statements.scroll_depth.clone())
    )?;
    if let Some(rows) = events {
        merge(rows, &add_event_counts);
    }
    if let Some(rows) = sessions {
        merge(rows, &|t, c| {
            t.session_visitors = c[0].as_f64();
            t.session_visits = c[1].as_f64();
            t.bounces = c[2].as_f64();
            t.duration_s = c[3].as_f64();
            t.duration_visits = c[1].as_f64();
            t.session_pageviews = c[4].as_f64();
            t.session_events = c[5].as_f64();
            t.bounce_visits = c[6].as_f64();
        });
    }
    if let Some(rows) = time_on_page {
        merge(rows, &|t, c| {
            t.page_seconds = c[0].as_f64();
            t.page_views_timed = c[1].as_f64();
        });
    }
    if let Some(rows) = scroll_depth {
        merge(rows, &|t, c| {
            t.scroll_total = c[0].as_f64();
            t.scroll_visits = c[1].as_f64();
        });
    }
    if let Some(rows) = page_views {
        // Only the pages that are some visit's exit: the rows are exit pages.
        for row in rows {
            let page = vec![cell_text(&row[0])];
            if let Some(t) = totals.get_mut(&page) {
                t.page_views = row[1].as_f64();
            }
        }
    }
    Ok(())
}

fn sort(rows: &mut [ResultRow], query: &Query) {
    let mut order = query.order_by.clone();
    if order.is_empty() {
        // Time first, then the first metric, as Plausible's default order.
        if let Some(index) = query
            .dimensions
            .iter()
            .position(|d| matches!(d, Dimension::Time(_)))
        {
            order.push(Order::Dimension(index, false));
        }
        order.push(Order::Metric(query.metrics[0], true));
    }
    rows.sort_by(|a, b| {
        for item in &order {
            let (ordering, descending) = match item {
                Order::Metric(metric, descending) => {
                    let index = query.metrics.iter().position(|m| m == metric).unwrap_or(0);
                    (
                        numeric(&a.metrics[index]).total_cmp(&numeric(&b.metrics[index])),
                        *descending,
                    )
                }
                Order::Dimension(index, descending) => {
                    (a.dimensions[*index].cmp(&b.dimensions[*index]), *descending)
                }
            };
            let ordering = if descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering.is_ne() {
                return ordering;
            }
        }
        a.dimensions.cmp(&b.dimensions)
    });
}

impl QueryResult {
    /// A time series with every bucket of `time_labels` (a query over one time dimension
    /// with `include.time_labels`): each label with its metrics, zeros where no row has it.
    pub fn series(&self, metric_count: usize) -> Vec<(&str, Vec<Value>)> {
        let rows: HashMap<&str, &Vec<Value>> = self
            .results
            .iter()
            .map(|row| (row.dimensions[0].as_str(), &row.metrics))
            .collect();
        self.time_labels
            .iter()
            .flatten()
            .map(|label| {
                let metrics = match rows.get(label.as_str()) {
                    Some(metrics) => (*metrics).clone(),
                    None => vec![json!(0); metric_count],
                };
                (label.as_str(), metrics)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{sample_bits, SAMPLED_VISITORS_AT_LEAST};

    #[test]
    fn a_sample_is_taken_from_four_times_its_least_size_and_holds_about_twice_that() {
        assert_eq!(sample_bits(0), None);
        assert_eq!(sample_bits(4 * SAMPLED_VISITORS_AT_LEAST - 1), None);
        assert_eq!(sample_bits(4 * SAMPLED_VISITORS_AT_LEAST), Some(1));
        for visitors in [262_144, 330_000, 3_300_000, 33_000_000, u64::MAX] {
            let bits = sample_bits(visitors).unwrap();
            let expected = visitors >> bits;
            assert!(
                (2 * SAMPLED_VISITORS_AT_LEAST..4 * SAMPLED_VISITORS_AT_LEAST).contains(&expected),
                "{visitors}: {bits} bits, {expected} expected in the sample"
            );
        }
    }
}
