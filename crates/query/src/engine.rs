//! Runs a compiled query and assembles the Plausible v2 response: joins the rows of the
//! events and sessions statements by dimension values, derives ratio metrics, orders and
//! paginates.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::compile::{compile, Plan};
use crate::model::{Dimension, Metric, Order, Query};
use crate::sql::{Row, RunError, SqlRunner, SqlValue};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResultRow {
    pub metrics: Vec<Value>,
    pub dimensions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub results: Vec<ResultRow>,
    /// Rows before pagination.
    pub total_rows: usize,
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
    duration_s: f64,
    session_pageviews: f64,
    session_events: f64,
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
    }
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

fn metric_value(metric: Metric, t: &Totals, plan: &Plan) -> Value {
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    let counts = |event: f64, session: f64| {
        if plan.counts_from_sessions {
            session
        } else {
            event
        }
    };
    match metric {
        Metric::Visitors => json!(counts(t.event_visitors, t.session_visitors) as u64),
        Metric::Pageviews => json!(counts(t.event_pageviews, t.session_pageviews) as u64),
        Metric::Events => json!(counts(t.event_events, t.session_events) as u64),
        Metric::Visits => json!(if plan.visits_from_events {
            t.event_visits
        } else {
            t.session_visits
        } as u64),
        Metric::BounceRate => json!(ratio(100.0 * t.bounces, t.session_visits).round() as u64),
        Metric::VisitDuration => json!(ratio(t.duration_s, t.session_visits).round() as u64),
        Metric::ViewsPerVisit => json!(round_to(ratio(t.session_pageviews, t.session_visits), 2)),
    }
}

fn numeric(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// Compiles `query`, runs it on `runner` and assembles the result.
pub async fn execute(query: &Query, runner: &dyn SqlRunner) -> Result<QueryResult, RunError> {
    let plan = compile(query);
    let width = query.dimensions.len();
    let mut totals: HashMap<Vec<String>, Totals> = HashMap::new();
    let mut merge = |rows: Vec<Row>, apply: &dyn Fn(&mut Totals, &[SqlValue])| {
        for row in rows {
            let key: Vec<String> = row[..width].iter().map(cell_text).collect();
            apply(totals.entry(key).or_default(), &row[width..]);
        }
    };
    if let Some(sql) = plan.events.clone() {
        merge(runner.run(sql).await?, &|t, c| {
            t.event_visitors = c[0].as_f64();
            t.event_pageviews = c[1].as_f64();
            t.event_events = c[2].as_f64();
            t.event_visits = c[3].as_f64();
        });
    }
    if let Some(sql) = plan.sessions.clone() {
        merge(runner.run(sql).await?, &|t, c| {
            t.session_visitors = c[0].as_f64();
            t.session_visits = c[1].as_f64();
            t.bounces = c[2].as_f64();
            t.duration_s = c[3].as_f64();
            t.session_pageviews = c[4].as_f64();
            t.session_events = c[5].as_f64();
        });
    }
    if width == 0 && totals.is_empty() {
        totals.insert(Vec::new(), Totals::default());
    }
    let mut rows: Vec<ResultRow> = totals
        .into_iter()
        .map(|(dimensions, t)| ResultRow {
            metrics: query
                .metrics
                .iter()
                .map(|m| metric_value(*m, &t, &plan))
                .collect(),
            dimensions,
        })
        .collect();
    sort(&mut rows, query);
    let total_rows = rows.len();
    let results = rows
        .into_iter()
        .skip(query.offset)
        .take(query.limit)
        .collect();
    Ok(QueryResult {
        results,
        total_rows,
    })
}

fn sort(rows: &mut [ResultRow], query: &Query) {
    let mut order = query.order_by.clone();
    if order.is_empty() {
        match query
            .dimensions
            .iter()
            .position(|d| matches!(d, Dimension::Time(_)))
        {
            Some(index) => order.push(Order::Dimension(index, false)),
            None => order.push(Order::Metric(query.metrics[0], true)),
        }
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
    /// The Plausible v2 response body.
    pub fn to_json(&self, query: &Query, request: &Value) -> Value {
        let start =
            chrono::DateTime::from_timestamp_millis(query.range.start_ms).unwrap_or_default();
        let end =
            chrono::DateTime::from_timestamp_millis(query.range.end_ms - 1).unwrap_or_default();
        let mut echoed = request.clone();
        if let Value::Object(map) = &mut echoed {
            map.insert(
                "date_range".into(),
                json!([
                    start.with_timezone(&query.timezone).to_rfc3339(),
                    end.with_timezone(&query.timezone).to_rfc3339()
                ]),
            );
        }
        let mut meta = serde_json::Map::new();
        if query.include_total_rows {
            meta.insert("total_rows".into(), json!(self.total_rows));
        }
        json!({ "results": self.results, "meta": meta, "query": echoed })
    }
}
