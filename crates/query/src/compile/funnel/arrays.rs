//! The funnel statement of an engine without window functions or table CTEs (ClickHouse
//! 18.16: [`SqlDialect::arrays`]), with the same answer as the window statements of
//! `funnel.rs`. From the inside out:
//!
//! - `groups`: per group (the visit with a visit window, else the person) its events as
//!   arrays sorted in time by [`ArraySql::event_order_key`] (exact milliseconds, events of
//!   the same millisecond by a hash of their ids): the key (`e_key`), the milliseconds
//!   (`e_ms`), whether the event matches each step (`e_s1` ...) and passes the filters
//!   (`e_fl`), its person (`e_person`) and breakdown value (`e_bd`). A strict funnel keeps
//!   every event (engagement events are no events), since its next step must be the very
//!   next event; the others only the steps' events.
//! - `attempts`: one row per start (an event that is step 1, or any step in any order, and
//!   passes the filters; within one visit an ordered or any-order funnel's first start
//!   only, which reaches at least as far as any later one), with where each step was
//!   reached (`j1` ..., 0 when not) and its milliseconds (`r1` ..., NULL when not, or past
//!   the window: at most the window after the start, inclusive): strict, step k is the
//!   event k - 1 after the start, every step between matching too; ordered, the first event
//!   of step k after the previous step's (the earliest leaves the most room for the rest);
//!   any order, the first event of step k from the start on.
//! - `best`: each person's attempt with the most steps, then the earliest start (then the
//!   first event of that millisecond), as `funnel.rs` counts: its breakdown value and the
//!   milliseconds of its steps.
//! - the answer: the best attempt's steps in the order reached (`t`), and per breakdown
//!   value and step the people and the quantiles of the time to the next step.
//!
//! Each start walks its group's arrays, so a group of `e` events with `s` starts costs
//! about `e * s`: one start per visit for ordered and any-order funnels within a visit,
//! every start otherwise.
//!
//! ClickHouse's `windowFunnel` is not used: in 18.16 it counts an ordered funnel's furthest
//! step only, in whole seconds, with neither strict nor any-order funnels, nor the steps'
//! times or the attempt's breakdown value.

use super::{filters_sql, scope_where, step_names_sql, step_sql, window_ms};
use crate::compile::Builder;
use crate::dialect::{ArraySql, SqlDialect};
use crate::model::FunnelQuery;
use crate::sql::Sql;
use heartbeat_model::FunnelOrder;

/// The array of whether each event matches step `k` (1-based).
fn matches(k: usize) -> String {
    format!("e_s{k}")
}

/// The statement of `funnel` with `arrays` (module docs). Columns as `funnel_sql`'s:
/// breakdown value (NULL without a breakdown), step, people, median and 90th percentile of
/// seconds to the next step.
pub(super) fn arrays_sql(
    funnel: &FunnelQuery,
    dialect: &dyn SqlDialect,
    arrays: &dyn ArraySql,
) -> Sql {
    let mut b = Builder::new(dialect);
    let value = if funnel.breakdown.is_some() {
        "bd"
    } else {
        dialect.null_text()
    };
    let gap = format!(
        "CASE WHEN step < {} THEN t[step + 1] - t[step] END",
        arrays.length("t")
    );
    b.push(&format!(
        "SELECT {value} AS value, step, count(*) AS people, {} / 1000.0 AS median_s, \
         {} / 1000.0 AS p90_s FROM (SELECT bd, {} AS t FROM (",
        dialect.quantile(&gap, 0.5),
        dialect.quantile(&gap, 0.9),
        arrays.sorted_values("rs"),
    ));
    best_sql(&mut b, funnel, arrays);
    b.push(&format!(
        ") AS best) AS placed {} GROUP BY bd, step ORDER BY bd, step",
        arrays.array_join(&arrays.indexes("t"), "step")
    ));
    b.finish()
}

/// `best`: per person the breakdown value (`bd`) and the milliseconds of each step (`rs`,
/// NULL where not reached) of the best attempt.
fn best_sql(b: &mut Builder, funnel: &FunnelQuery, arrays: &dyn ArraySql) {
    let dialect = b.dialect();
    b.push(&format!(
        "SELECT person, {} AS bd, {} AS rs FROM (",
        dialect.first_by("start_bd", "score"),
        dialect.first_by("reached", "score")
    ));
    attempts_sql(b, funnel, arrays);
    b.push(") AS attempts GROUP BY person");
}

/// `attempts`: one row per start `i`, with its person, breakdown value (`start_bd`), the
/// milliseconds of each step (`reached`) and its `score` (steps missed, then the start's
/// milliseconds and key: the smallest is the best).
fn attempts_sql(b: &mut Builder, funnel: &FunnelQuery, arrays: &dyn ArraySql) {
    let n = funnel.definition.steps.len();
    let order = funnel.definition.order;
    let starts = match order {
        FunnelOrder::Any => arrays.indexes_where("x", &[("f", "e_fl")], "f"),
        _ => arrays.indexes_where("x", &[("s", &matches(1)), ("f", "e_fl")], "s AND f"),
    };
    let starts = if window_ms(funnel).is_none() && order != FunnelOrder::Strict {
        arrays.slice(&starts, "1", Some("1"))
    } else {
        starts
    };
    b.push("SELECT e_person[i] AS person, e_bd[i] AS start_bd");
    for k in 1..=n {
        let at = match order {
            _ if k == 1 && order != FunnelOrder::Any => "i".to_owned(),
            FunnelOrder::Strict => format!("i + {}", k - 1),
            FunnelOrder::Ordered => arrays.first_index_where(
                "x",
                &[("s", &matches(k))],
                &format!(
                    "s AND j{previous} > 0 AND x > j{previous}",
                    previous = k - 1
                ),
            ),
            FunnelOrder::Any => {
                arrays.first_index_where("x", &[("s", &matches(k))], "s AND x >= i")
            }
        };
        b.push(&format!(", {at} AS j{k}, "));
        reached_sql(b, funnel, k);
        b.push(&format!(" AS r{k}"));
    }
    let times: Vec<String> = (1..=n).map(|k| format!("r{k}")).collect();
    let missed: Vec<String> = (1..=n)
        .map(|k| format!("(CASE WHEN r{k} IS NULL THEN 1 ELSE 0 END)"))
        .collect();
    b.push(&format!(
        ", [{}] AS reached, ({}, e_ms[i], e_key[i]) AS score FROM (",
        times.join(", "),
        missed.join(" + ")
    ));
    groups_sql(b, funnel, arrays);
    b.push(&format!(") AS groups {}", arrays.array_join(&starts, "i")));
}

/// The milliseconds of step `k`'s event (`j<k>`) from start `i`, or NULL: where there is
/// one (strict: every step up to it matches the event after the previous step's), at most
/// the window after the start.
fn reached_sql(b: &mut Builder, funnel: &FunnelQuery, k: usize) {
    let order = funnel.definition.order;
    if k == 1 && order != FunnelOrder::Any {
        b.push("e_ms[i]");
        return;
    }
    let found = match order {
        FunnelOrder::Strict => (2..=k)
            .map(|step| format!("{}[i + {}]", matches(step), step - 1))
            .collect::<Vec<_>>()
            .join(" AND "),
        _ => format!("j{k} > 0"),
    };
    b.push(&format!("CASE WHEN {found}"));
    if let Some(ms) = window_ms(funnel) {
        b.push(&format!(" AND e_ms[j{k}] <= e_ms[i] + "));
        b.bind(ms);
    }
    b.push(&format!(" THEN e_ms[j{k}] END"));
}

/// `groups`: per group, its events as arrays sorted in time (module docs).
fn groups_sql(b: &mut Builder, funnel: &FunnelQuery, arrays: &dyn ArraySql) {
    let n = funnel.definition.steps.len();
    let dialect = b.dialect();
    let group = match window_ms(funnel) {
        None => "session_id",
        Some(_) => "visitor_id",
    };
    let breakdown = funnel.breakdown.map_or("''", |column| column.column());
    // Each event's tuple: key, milliseconds, steps, filters, person, breakdown value.
    let mut tuple = Builder::new(dialect);
    tuple.push(&format!(
        "({}, {}",
        arrays.event_order_key(),
        arrays.event_millis()
    ));
    for k in 0..n {
        let mut step = Builder::new(dialect);
        step_sql(&mut step, funnel, k);
        tuple.push(", ");
        tuple.append_wrapped(step, |sql| arrays.flag(sql));
    }
    tuple.push(", ");
    if funnel.filters.is_empty() {
        tuple.push(dialect.true_literal());
    } else {
        let mut filters = Builder::new(dialect);
        filters_sql(&mut filters, funnel);
        tuple.append_wrapped(filters, |sql| arrays.flag(sql));
    }
    tuple.push(&format!(", visitor_id, {breakdown})"));
    // Only the steps' events matter, but to a strict funnel.
    let any_step: Vec<String> = (1..=n).map(|k| arrays.tuple_item("e", k + 2)).collect();
    let strict = funnel.definition.order == FunnelOrder::Strict;
    b.push("SELECT ");
    b.append_wrapped(tuple, |tuple| {
        let sorted = arrays.sorted_tuples(tuple);
        if strict {
            sorted
        } else {
            arrays.filter_tuples(&sorted, "e", &any_step.join(" OR "))
        }
    });
    b.push(" AS evs");
    let mut columns = vec![("e_key".to_owned(), 1), ("e_ms".to_owned(), 2)];
    columns.extend((1..=n).map(|k| (matches(k), k + 2)));
    columns.push(("e_fl".to_owned(), n + 3));
    columns.push(("e_person".to_owned(), n + 4));
    columns.push(("e_bd".to_owned(), n + 5));
    for (name, index) in columns {
        b.push(&format!(", {} AS {name}", arrays.tuple_items("evs", index)));
    }
    b.push(" FROM events WHERE ");
    scope_where(b, funnel);
    if strict {
        b.push(" AND name <> 'engagement'");
    } else {
        step_names_sql(b, funnel);
    }
    b.push(&format!(" GROUP BY {group}"));
}

#[cfg(test)]
mod tests {
    use crate::bounds::QueryBounds;
    use crate::compile::funnel::funnel_sql;
    use crate::dialect::Dialect;
    use crate::funnel::parse_funnel;
    use crate::sql::SqlValue;

    use serde_json::{json, Value};

    fn clickhouse_sql_of(body: Value) -> crate::sql::Sql {
        let site = crate::test_site("UTC");
        let query =
            parse_funnel(&body, &site, 1_790_000_000_000, 0, &QueryBounds::default()).unwrap();
        funnel_sql(&query, Dialect::ClickHouse.sql())
    }

    /// The ClickHouse SQL of each order and window, snapshot-tested as DuckDB's is
    /// (`src/snapshots/`).
    #[test]
    fn clickhouse_funnel_sql_snapshots() {
        let steps = json!([{"page": "/blog/*"}, {"page": "/pricing"}, {"event": "signup", "props": {"plan": "pro"}}]);
        for (name, order, window) in [
            (
                "funnel_clickhouse_ordered_visit",
                "ordered",
                json!({"visit": true}),
            ),
            (
                "funnel_clickhouse_strict_hour",
                "strict",
                json!({"seconds": 3600}),
            ),
            (
                "funnel_clickhouse_any_day",
                "any",
                json!({"seconds": 86400}),
            ),
        ] {
            let sql = clickhouse_sql_of(
                json!({"date_range": ["2026-03-01", "2026-03-31"], "steps": steps,
                "order": order, "window": window, "breakdown": "visit:source",
                "filters": [["is", "visit:country", ["DE"]]]}),
            );
            assert_eq!(
                sql.text.matches('?').count(),
                sql.params.len(),
                "{}",
                sql.text
            );
            assert!(!sql.text.contains("WITH "), "{}", sql.text);
            assert!(!sql.text.contains(" OVER "), "{}", sql.text);
            let text = format!("-- {} parameters\n{}\n", sql.params.len(), sql.text);
            insta::with_settings!({ snapshot_path => "../../snapshots" }, {
                insta::assert_snapshot!(name, text);
            });
        }
    }

    #[test]
    fn hostile_values_stay_parameters() {
        let hostile = "x'); DROP TABLE events; --";
        for order in ["strict", "ordered", "any"] {
            let sql = clickhouse_sql_of(
                json!({"steps": [{"page": "/x');--"}, {"event": hostile, "props": {hostile: hostile}}],
                "order": order, "window": 60, "filters": [["is", "visit:source", [hostile]]]}),
            );
            assert!(!sql.text.contains("DROP"), "{}", sql.text);
            assert_eq!(sql.text.matches('?').count(), sql.params.len());
            assert!(sql
                .params
                .iter()
                .any(|p| matches!(p, SqlValue::Text(t) if t.contains("DROP TABLE events; --"))));
        }
    }
}
