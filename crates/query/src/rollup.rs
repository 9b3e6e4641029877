//! Reading the rollup cells (`heartbeat-rollup`, which the store writes in the same
//! transaction as the events they summarise) that answer a query, once the plan (`plan.rs`)
//! has found they do: a query over whole hours, unfiltered or filtered by one visit
//! attribute (the cells of the values its condition keeps), is answered from them instead of
//! scanning every event. A site's time zone (whole-hour offsets) is applied here: a range
//! reads whole UTC days from the daily cells and its ragged ends from the hourly ones.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use heartbeat_rollup::{keeps_ids, Cell, RowVisitors, Sketch, Span, DAY_MS, EXACT_LIMIT};

use crate::compile::aggregate::column_condition_sql;
use crate::compile::Builder;
use crate::dialect::SqlDialect;
use crate::model::{Condition, Dimension, Metric, Order, Query, TimeGrain};
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

/// The cells of dimension `key` in `pieces`, those whose value passes `values` when given;
/// when `only` is not empty, those whose value is one of it, and their visitors alone.
fn statement(
    query: &Query,
    pieces: &[(Span, i64, i64)],
    key: &str,
    values: Option<&Condition>,
    only: &[&String],
    dialect: &dyn SqlDialect,
) -> Sql {
    let mut b = Builder::new(dialect);
    for (i, (span, from, to)) in pieces.iter().enumerate() {
        if i > 0 {
            b.push(" UNION ALL ");
        }
        let columns = match only.is_empty() {
            true => {
                "start_ms, value, visitors, pageviews, events, visits, bounces, duration_s, \
                     visit_pageviews, visit_events"
            }
            false => "start_ms, value, visitors",
        };
        b.push(&format!(
            "SELECT {columns} FROM {} WHERE site_id = ",
            span.table()
        ));
        b.bind(SqlValue::Text(query.site_id.0.clone()));
        b.push(" AND dim = ").bind(SqlValue::Text(key.into()));
        b.push(" AND start_ms >= ").bind(SqlValue::Int(*from));
        b.push(" AND start_ms < ").bind(SqlValue::Int(*to));
        if let Some(condition) = values {
            b.push(" AND ");
            column_condition_sql(&mut b, "value", condition);
        }
        for (i, value) in only.iter().enumerate() {
            b.push(if i == 0 { " AND value IN (" } else { ", " });
            b.bind(SqlValue::Text((*value).clone()));
        }
        if !only.is_empty() {
            b.push(")");
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

/// A row whose visitors, its daily cells' sketches included, may be fewer than this is
/// counted again without those sketches, from the hourly cells of their days, which keep
/// their ids while an hour has at most 1,024 visitors of a value. A sketch is about 1.6 %
/// off, so no row of at most [`EXACT_LIMIT`] visitors is estimated at this or more.
const RECOUNT_BELOW: usize = EXACT_LIMIT + EXACT_LIMIT / 4;

/// Most visitors a day, all rows together, of a query whose rows are counted again from
/// hourly cells. That reads every hourly cell of the range, which costs what scanning the
/// range of the hourly table does: on a site of 10 M events a month (about 110,000 visitors
/// a day), 60 to 130 ms a panel (docs/benchmarks.md, 2026-12-06), so a site that busy keeps
/// the estimate for rows whose daily cells keep sketches. At this rate an hour has about
/// 1,024 visitors, beyond which its own cells keep sketches too.
const RECOUNT_DAILY: usize = 24 * 1_024;

/// The cells of one result row, added up: their distinct visitors, and their counts (whose
/// own `visitors` stay empty).
#[derive(Debug, Default)]
pub struct RowSum {
    pub visitors: RowVisitors,
    pub counts: Cell,
}

/// Per result row, its daily cells that keep a sketch: (value, day, stored visitors), not
/// yet in the row's visitors.
type SketchedDays = HashMap<Vec<String>, Vec<(String, i64, Vec<u8>)>>;

/// Whether the query shows its rows by their visitors, most first (as the dashboard's panels
/// do), so that which rows are on its page depends on their visitors alone.
fn ranked_by_visitors(query: &Query) -> bool {
    let by_time = query
        .dimensions
        .iter()
        .any(|d| matches!(d, Dimension::Time(_)));
    !query.dimensions.is_empty()
        && !by_time
        && match query.order_by.as_slice() {
            [] => query.metrics.first() == Some(&Metric::Visitors),
            [Order::Metric(Metric::Visitors, true), ..] => true,
            _ => false,
        }
}

/// One stored cell as the statement reads it: its hour or day, value, stored visitors and
/// counts.
fn cell_of(row: Vec<SqlValue>) -> (i64, String, Option<Vec<u8>>, Cell) {
    let mut columns = row.into_iter();
    let start_ms = columns.next().map_or(0, |v| v.as_f64() as i64);
    let value = match columns.next() {
        Some(SqlValue::Text(text)) => text,
        _ => String::new(),
    };
    let visitors = match columns.next() {
        Some(SqlValue::Blob(bytes)) => Some(bytes),
        _ => None,
    };
    let mut int = || columns.next().map_or(0, |v| v.as_f64() as i64);
    let counts = Cell {
        visitors: Sketch::default(),
        pageviews: int(),
        events: int(),
        visits: int(),
        bounces: int(),
        duration_s: int(),
        visit_pageviews: int(),
        visit_events: int(),
    };
    (start_ms, value, visitors, counts)
}

/// Reads the cells of dimension `key` that answer `query` (as planned by `plan.rs`), those
/// whose value passes `values` when given, and adds them up per result row. A row is exact
/// up to [`EXACT_LIMIT`] visitors while the hourly cells of its days keep their visitors'
/// ids, even where its daily cells keep a sketch (see [`RECOUNT_BELOW`]); of a query that
/// shows its rows by visitors, the rows that can be on its page.
pub async fn read(
    query: &Query,
    key: &str,
    values: Option<&Condition>,
    runner: &dyn SqlRunner,
) -> Result<HashMap<Vec<String>, RowSum>, RunError> {
    let pieces = pieces(query);
    let days = pieces
        .iter()
        .find(|(span, _, _)| *span == Span::Day)
        .map_or(0..0, |(_, from, to)| *from..*to);
    let mut sums: HashMap<Vec<String>, RowSum> = HashMap::new();
    let mut sketched = SketchedDays::new();
    let dialect = runner.dialect().sql();
    for row in runner
        .run(statement(query, &pieces, key, values, &[], dialect))
        .await?
    {
        let (start_ms, value, visitors, counts) = cell_of(row);
        let row = row_key(query, start_ms, value.clone());
        let sum = match visitors {
            // Only daily cells are in the days' range: the hourly ones are its ragged ends.
            Some(bytes) if days.contains(&start_ms) && !keeps_ids(&bytes) => {
                let day = (value, start_ms, bytes);
                sketched.entry(row.clone()).or_default().push(day);
                sums.entry(row).or_default()
            }
            Some(bytes) => {
                let sum = sums.entry(row).or_default();
                sum.visitors.add_stored(&bytes);
                sum
            }
            None => sums.entry(row).or_default(),
        };
        sum.counts.add_counts(&counts);
    }
    let recount = settle_sketched_days(query, &days, sketched, &mut sums);
    if !recount.is_empty() {
        add_hours(query, key, values, &recount, runner, &mut sums).await?;
    }
    Ok(sums)
}

/// Settles the rows' daily sketches: adds them to the row's visitors, or, for a row to count
/// again (under [`RECOUNT_BELOW`], on the page when ranked by visitors, and of a query within
/// [`RECOUNT_DAILY`]), returns their (value, day) pairs, whose hours are read instead.
fn settle_sketched_days(
    query: &Query,
    days: &Range<i64>,
    mut sketched: SketchedDays,
    sums: &mut HashMap<Vec<String>, RowSum>,
) -> HashSet<(String, i64)> {
    // Every row's visitors, with its days' sketches where it has some (kept for the rows not
    // counted again).
    let mut estimates = Vec::with_capacity(sums.len());
    let mut settled = Vec::new();
    for (row, sum) in sums.iter_mut() {
        let Some(row_days) = sketched.remove(row) else {
            estimates.push(sum.visitors.count());
            continue;
        };
        let mut with_days = sum.visitors.clone();
        for (_, _, bytes) in &row_days {
            with_days.add_stored(bytes);
        }
        let estimate = with_days.count();
        estimates.push(estimate);
        settled.push((estimate, row.clone(), with_days, row_days));
    }
    // Counting again reads the hourly cells of the days: cheap on a site of up to
    // RECOUNT_DAILY visitors a day, not on a busier one.
    let days_read = ((days.end - days.start) / DAY_MS).max(1) as usize;
    let affordable = estimates.iter().sum::<usize>() <= RECOUNT_DAILY * days_read;
    // Rows shown by visitors, most first: only those that can be on the page. Counting again
    // moves an estimate by a few percent, so rows within a tenth of the page's last may join.
    let page_end = query.offset.saturating_add(query.limit);
    let bar = (ranked_by_visitors(query) && estimates.len() > page_end).then(|| {
        let last = page_end.saturating_sub(1);
        estimates.select_nth_unstable_by_key(last, |estimate| std::cmp::Reverse(*estimate));
        estimates[last] * 9 / 10
    });
    let mut recount = HashSet::new();
    for (estimate, row, with_days, row_days) in settled {
        if affordable && estimate < RECOUNT_BELOW && bar.is_none_or(|bar| estimate >= bar) {
            recount.extend(row_days.into_iter().map(|(value, day, _)| (value, day)));
        } else if let Some(sum) = sums.get_mut(&row) {
            sum.visitors = with_days;
        }
    }
    recount
}

/// Adds to their rows the visitors of the hourly cells of the (value, day) pairs in
/// `recount`, read in one statement.
async fn add_hours(
    query: &Query,
    key: &str,
    values: Option<&Condition>,
    recount: &HashSet<(String, i64)>,
    runner: &dyn SqlRunner,
    sums: &mut HashMap<Vec<String>, RowSum>,
) -> Result<(), RunError> {
    let only: Vec<&String> = recount
        .iter()
        .map(|(value, _)| value)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let first = recount.iter().map(|(_, day)| *day).min().unwrap_or(0);
    let last = recount.iter().map(|(_, day)| *day).max().unwrap_or(0);
    let hours = [(Span::Hour, first, last + DAY_MS)];
    let sql = statement(query, &hours, key, values, &only, runner.dialect().sql());
    for row in runner.run(sql).await? {
        let (start_ms, value, visitors, _) = cell_of(row);
        let day = (value, Span::Day.start_of(start_ms));
        if let (true, Some(bytes)) = (recount.contains(&day), visitors) {
            if let Some(sum) = sums.get_mut(&row_key(query, start_ms, day.0)) {
                sum.visitors.add_stored(&bytes);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plausible::parse_query;
    use serde_json::json;

    fn ranked(extra: serde_json::Value) -> bool {
        let mut body = json!({"metrics": ["visitors", "pageviews"],
            "date_range": ["2024-01-01", "2024-01-31"], "dimensions": ["event:page"]});
        for (field, value) in extra.as_object().unwrap() {
            body[field] = value.clone();
        }
        let site = crate::test_site("UTC");
        let query = parse_query(&body, &site, &[], 1_700_000_000_000, 0, &Default::default());
        ranked_by_visitors(&query.unwrap())
    }

    #[test]
    fn only_rows_shown_by_visitors_most_first_are_ranked() {
        assert!(ranked(json!({})));
        assert!(ranked(json!({"order_by": [["visitors", "desc"]]})));
        assert!(!ranked(json!({"order_by": [["visitors", "asc"]]})));
        assert!(!ranked(json!({"order_by": [["pageviews", "desc"]]})));
        assert!(!ranked(json!({"metrics": ["pageviews", "visitors"]})));
        assert!(!ranked(json!({"dimensions": ["time:day"]})));
        assert!(!ranked(json!({"dimensions": []})));
    }
}
