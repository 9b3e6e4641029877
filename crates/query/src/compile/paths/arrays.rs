//! The paths statement of an engine without window functions or table CTEs (ClickHouse
//! 18.16: [`SqlDialect::arrays`]), with the same rows as the window statement of
//! `paths.rs`. Its named subqueries are written again wherever they are read:
//!
//! - `walks`: per visit (that the filters pick and, with a start, that reached it) its
//!   items as one array sorted by [`ArraySql::event_order_key`], cut at the first item of
//!   the start (from it on forward, up to it backward), reloads collapsed, in the walk's
//!   direction: the labels (`walk`) and each item's visitor (`walkers`);
//! - `steps`: one row per step of a walk, `depth` steps deep (`at`, 0 the start), with its
//!   label, the next item's (`next_label`) and whether there is one (`has_next`);
//! - `ranked`: each step's labels by visitors, the `limit` most visited keeping their name
//!   (`node`), the others folded into `(other)`;
//! - then the three kinds of rows of `paths.rs`, the edges joining a step's node to the
//!   next step's through a second `ranked`.

use super::{filtered_visits, scope};
use crate::compile::Builder;
use crate::dialect::{ArraySql, SqlDialect};
use crate::paths::{Direction, PathsQuery, Start, MAX_DEPTH, OTHER};
use crate::sql::{Sql, SqlValue};

/// The statement of `query` with `arrays` (module docs). Columns as `paths_sql`'s: kind,
/// step, n0 ... n5, visitors, drop-offs.
pub(super) fn arrays_sql(
    query: &PathsQuery,
    dialect: &dyn SqlDialect,
    arrays: &dyn ArraySql,
) -> Sql {
    let mut b = Builder::new(dialect);
    let int = |sql: &str| dialect.union_int(sql);
    let text = |sql: &str| dialect.nullable_text(sql);
    let nulls = |from: usize| -> String {
        (from..=MAX_DEPTH as usize)
            .map(|i| format!("{} AS n{i}, ", dialect.null_text()))
            .collect()
    };
    let visitors = int("count(DISTINCT visitor)");
    // Nodes, with the visitors whose walk ended there before the last step.
    b.push(&format!(
        "SELECT {} AS kind, {} AS step, {} AS n0, {}{visitors} AS visitors, ",
        int("0"),
        int("at"),
        text("node"),
        nulls(1)
    ));
    b.bind_within(
        &int(&dialect.count_distinct_if("visitor", "has_next = 0 AND at < ?")),
        SqlValue::Int(i64::from(query.depth)),
    );
    b.push(" AS dropoffs FROM (");
    steps_sql(&mut b, query, arrays);
    b.push(") AS steps JOIN (");
    ranked_sql(&mut b, query, arrays);
    b.push(") AS ranked USING (at, label) GROUP BY at, node");
    // Edges, from each node to the next step's node of the next item.
    b.push(&format!(
        " UNION ALL SELECT {}, {}, {}, {}, {}{visitors}, {} FROM (SELECT visitor, at + 1 AS to_at, \
         next_label, node FROM (",
        int("1"),
        int("to_at"),
        text("node"),
        text("to_node"),
        nulls(2),
        int("0"),
    ));
    steps_sql(&mut b, query, arrays);
    b.push(") AS steps JOIN (");
    ranked_sql(&mut b, query, arrays);
    b.push(
        ") AS ranked USING (at, label) WHERE has_next = 1) AS edges JOIN (SELECT at AS to_at, \
         label AS next_label, node AS to_node FROM (",
    );
    ranked_sql(&mut b, query, arrays);
    b.push(") AS ranked) AS targets USING (to_at, next_label) GROUP BY to_at, node, to_node");
    // Full paths: walks that went the whole depth, by their real pages.
    let pages = query.depth as usize + 1;
    let columns: Vec<String> = (0..pages)
        .map(|i| format!("{} AS n{i}", text(&format!("path[{}]", i + 1))))
        .collect();
    let names: Vec<String> = (0..pages).map(|i| format!("n{i}")).collect();
    b.push(&format!(
        " UNION ALL SELECT * FROM (SELECT {} AS kind, {} AS step, {}, {}{visitors} AS visitors, \
         {} AS dropoffs FROM (SELECT walkers[1] AS visitor, ",
        int("2"),
        int("0"),
        columns.join(", "),
        nulls(pages),
        int("0"),
    ));
    b.bind_within(
        &arrays.slice("walk", "1", Some("?")),
        SqlValue::Int(pages as i64),
    );
    b.push(" AS path FROM (");
    walks_sql(&mut b, query, arrays);
    b.push(&format!(") AS walks WHERE {} > ", arrays.length("walk")));
    b.bind(SqlValue::Int(i64::from(query.depth)));
    b.push(&format!(
        ") AS whole GROUP BY path ORDER BY visitors DESC, {} LIMIT ",
        names.join(", ")
    ));
    b.bind(SqlValue::Int(i64::from(query.limit)));
    b.push(") AS top_paths");
    b.finish()
}

/// `ranked`: per step (`at`) and label, the node it is drawn as.
fn ranked_sql(b: &mut Builder, query: &PathsQuery, arrays: &dyn ArraySql) {
    b.push(&format!(
        "SELECT at, {} AS label, CASE WHEN rank <= ",
        arrays.tuple_item("by_visitors[rank]", 2)
    ));
    b.bind(SqlValue::Int(i64::from(query.limit)));
    b.push(" THEN label ELSE ");
    b.bind(SqlValue::Text(OTHER.into()));
    // Most visitors first, then by label.
    b.push(&format!(
        " END AS node FROM (SELECT at, {} AS by_visitors FROM (SELECT at, label, \
         count(DISTINCT visitor) AS visitors FROM (",
        arrays.sorted_tuples("(-visitors, label)")
    ));
    steps_sql(b, query, arrays);
    b.push(&format!(
        ") AS steps GROUP BY at, label) AS counted GROUP BY at) AS by_step {}",
        arrays.array_join(&arrays.indexes("by_visitors"), "rank")
    ));
}

/// `steps`: one row per step of a walk, up to `depth` (module docs).
fn steps_sql(b: &mut Builder, query: &PathsQuery, arrays: &dyn ArraySql) {
    b.push(&format!(
        "SELECT walkers[p] AS visitor, p - 1 AS at, walk[p] AS label, walk[p + 1] AS next_label, \
         p < {} AS has_next FROM (",
        arrays.length("walk")
    ));
    walks_sql(b, query, arrays);
    b.push(") AS walks ");
    let steps = arrays.slice(&arrays.indexes("walk"), "1", Some("?"));
    b.bind_within(
        &arrays.array_join(&steps, "p"),
        SqlValue::Int(i64::from(query.depth) + 1),
    );
}

/// `walks`: per visit its walk's labels (`walk`) and their visitors (`walkers`), from the
/// start in the walk's direction (module docs).
fn walks_sql(b: &mut Builder, query: &PathsQuery, arrays: &dyn ArraySql) {
    let forward = query.direction == Direction::Forward;
    // The items from the start on (forward) or up to it (backward), `a` the start's index.
    let cut = match (&query.start, forward) {
        (Start::Visit, _) => "evs".to_owned(),
        (_, true) => arrays.slice("evs", "a", None),
        (_, false) => arrays.slice("evs", "1", Some("a")),
    };
    let collapsed = arrays.without_repeats("cut", &arrays.tuple_items("cut", 2));
    let walked = if forward {
        collapsed
    } else {
        arrays.reversed(&collapsed)
    };
    b.push(&format!(
        "SELECT {cut} AS cut, {walked} AS walked, {} AS walk, {} AS walkers FROM (",
        arrays.tuple_items("walked", 2),
        arrays.tuple_items("walked", 3)
    ));
    visits_sql(b, query, arrays);
    b.push(") AS visits");
    if query.start != Start::Visit {
        b.push(" WHERE a > 0");
    }
}

/// Per visit its items, as one sorted array of (key, label, visitor, whether the item is
/// the start) (`evs`), and the index of the visit's first start (`a`, 0 for none).
fn visits_sql(b: &mut Builder, query: &PathsQuery, arrays: &dyn ArraySql) {
    let dialect = b.dialect();
    let label = match &query.start {
        Start::Event(_) => "CASE WHEN name = 'pageview' THEN pathname ELSE name END",
        _ => "pathname",
    };
    let mut start = Builder::new(dialect);
    match &query.start {
        Start::Page(page) => {
            start.push("name = 'pageview' AND pathname = ");
            start.bind(SqlValue::Text(page.clone()));
        }
        Start::Event(name) => {
            start.push("name = ");
            start.bind(SqlValue::Text(name.clone()));
        }
        Start::Visit => {
            start.push(dialect.false_literal());
        }
    }
    let mut tuple = Builder::new(dialect);
    tuple.push(&format!(
        "({}, {label}, visitor_id, ",
        arrays.event_order_key()
    ));
    tuple.append_wrapped(start, |sql| arrays.flag(sql));
    tuple.push(")");
    b.push("SELECT ");
    b.append_wrapped(tuple, |tuple| arrays.sorted_tuples(tuple));
    b.push(" AS evs");
    if query.start != Start::Visit {
        let starts = arrays.tuple_items("evs", 4);
        b.push(&format!(
            ", {} AS a",
            arrays.first_index_where("x", &[("s", &starts)], "s")
        ));
    }
    b.push(" FROM events WHERE ");
    scope(b, query);
    match &query.start {
        Start::Event(name) => {
            b.push(" AND (name = 'pageview' OR name = ");
            b.bind(SqlValue::Text(name.clone()));
            b.push(")");
        }
        Start::Page(_) | Start::Visit => {
            b.push(" AND name = 'pageview'");
        }
    }
    filtered_visits(b, query);
    b.push(" GROUP BY session_id");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;
    use crate::model::DateRange;
    use heartbeat_model::SiteId;

    fn query(start: Start, direction: Direction) -> PathsQuery {
        PathsQuery {
            site_id: SiteId::from("example.com"),
            timezone: chrono_tz::Tz::UTC,
            range: DateRange {
                start_ms: 0,
                end_ms: 1,
            },
            start,
            direction,
            depth: 3,
            limit: 5,
            filters: Vec::new(),
        }
    }

    #[test]
    fn clickhouse_values_are_bound_and_no_window_runs() {
        for direction in [Direction::Forward, Direction::Backward] {
            for start in [
                Start::Page("/x'; DROP TABLE events; --".into()),
                Start::Event("x'; DROP TABLE events; --".into()),
                Start::Visit,
            ] {
                let sql = crate::compile::paths::paths_sql(
                    &query(start, direction),
                    Dialect::ClickHouse.sql(),
                );
                assert!(!sql.text.contains("DROP"), "{}", sql.text);
                assert_eq!(sql.text.matches('?').count(), sql.params.len());
                assert!(!sql.text.contains("WITH "), "{}", sql.text);
                assert!(!sql.text.contains(" OVER "), "{}", sql.text);
            }
        }
    }
}
