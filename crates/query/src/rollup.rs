//! Reading the rollup cells (`heartbeat-rollup`, which the store writes in the same
//! transaction as the events they summarise) that answer a query, once the plan (`plan.rs`)
//! has found they do: a query over whole hours, unfiltered or filtered by one visit
//! attribute (the cells of the values its condition keeps), is answered from them instead of
//! scanning every event. A site's time zone (whole-hour offsets) is applied here: a range
//! reads whole UTC days from the daily cells and its ragged ends from the hourly ones.

use std::collections::HashMap;

use heartbeat_rollup::{Cell, RowVisitors, Sketch, Span, DAY_MS};

use crate::compile::aggregate::column_condition_sql;
use crate::compile::Builder;
use crate::dialect::SqlDialect;
use crate::model::{Condition, Dimension, Query, TimeGrain};
use crate::sql::{RunError, Sql, SqlRunner, SqlValue};
use crate::time::{bucket_label_within, every_offset, offset_at};

/// The cells that cover the query's range: whole UTC days from the daily cells and the
/// ragged ends from the hourly ones, or hours only when time buckets are local days that do
/// not line up with UTC days (or are hours).
fn pieces(query: &Query) -> Vec<(Span, i64, i64)> {
    let (start, end) = (query.range.start_ms, query.range.end_ms);
    let days_fit = match query.dimensions.first() {
        Some(Dimension::Time(TimeGrain::Hour)) => false,
        Some(Dimension::Time(_)) => every_offset(query.timezone, query.range, |offset| offset == 0),
        _ => true,
    };
    let first_day = Span::Day.start_of(start + DAY_MS - 1);
    let last_day = Span::Day.start_of(end);
    if !days_fit || first_day >= last_day {
        return vec![(Span::Hour, start, end)];
    }
    let mut pieces = vec![(Span::Day, first_day, last_day)];
    if start < first_day {
        pieces.push((Span::Hour, start, first_day));
    }
    if last_day < end {
        pieces.push((Span::Hour, last_day, end));
    }
    pieces
}

fn statement(
    query: &Query,
    key: &str,
    values: Option<&Condition>,
    dialect: &dyn SqlDialect,
) -> Sql {
    let mut b = Builder::new(dialect);
    for (i, (span, from, to)) in pieces(query).into_iter().enumerate() {
        if i > 0 {
            b.push(" UNION ALL ");
        }
        b.push(&format!(
            "SELECT start_ms, value, visitors, pageviews, events, visits, bounces, duration_s, \
             visit_pageviews, visit_events FROM {} WHERE site_id = ",
            span.table()
        ));
        b.bind(SqlValue::Text(query.site_id.0.clone()));
        b.push(" AND dim = ").bind(SqlValue::Text(key.into()));
        b.push(" AND start_ms >= ").bind(SqlValue::Int(from));
        b.push(" AND start_ms < ").bind(SqlValue::Int(to));
        if let Some(condition) = values {
            b.push(" AND ");
            column_condition_sql(&mut b, "value", condition);
        }
    }
    b.finish()
}

/// The label a cell's row gets: its value, or the local time bucket of its hour.
fn row_key(query: &Query, hour_ms: i64, value: String) -> Vec<String> {
    match query.dimensions.first() {
        None => Vec::new(),
        Some(Dimension::Time(grain)) => {
            let local_ms = hour_ms + i64::from(offset_at(query.timezone, hour_ms)) * 1000;
            vec![bucket_label_within(
                local_ms,
                *grain,
                query.range,
                query.timezone,
            )]
        }
        Some(_) => vec![value],
    }
}

/// The cells of one result row, added up: their distinct visitors, and their counts (whose
/// own `visitors` stay empty).
#[derive(Debug, Default)]
pub struct RowSum {
    pub visitors: RowVisitors,
    pub counts: Cell,
}

/// Reads the cells of dimension `key` that answer `query` (as planned by `plan.rs`), those
/// whose value passes `values` when given, and adds them up per result row.
pub async fn read(
    query: &Query,
    key: &str,
    values: Option<&Condition>,
    runner: &dyn SqlRunner,
) -> Result<HashMap<Vec<String>, RowSum>, RunError> {
    let mut sums: HashMap<Vec<String>, RowSum> = HashMap::new();
    let sql = statement(query, key, values, runner.dialect().sql());
    for row in runner.run(sql).await? {
        let mut columns = row.into_iter();
        let start_ms = columns.next().map_or(0, |v| v.as_f64() as i64);
        let value = match columns.next() {
            Some(SqlValue::Text(text)) => text,
            _ => String::new(),
        };
        let rest: Vec<SqlValue> = columns.collect();
        let int = |i: usize| rest.get(i).map_or(0, |v| v.as_f64() as i64);
        let sum = sums.entry(row_key(query, start_ms, value)).or_default();
        if let Some(SqlValue::Blob(bytes)) = rest.first() {
            sum.visitors.add_stored(bytes);
        }
        sum.counts.add_counts(&Cell {
            visitors: Sketch::default(),
            pageviews: int(1),
            events: int(2),
            visits: int(3),
            bounces: int(4),
            duration_s: int(5),
            visit_pageviews: int(6),
            visit_events: int(7),
        });
    }
    Ok(sums)
}
