//! The paths statement (`paths.rs` says what it means). One pass over the range's page
//! views (and events of the starting event's name) builds each visit's walk, materialized:
//! its items with reloads collapsed (`lag`), numbered (`row_number`), anchored at the first
//! time the start is reached and stepped from there, `depth` steps deep. The walks are small
//! (at most `depth + 1` rows per visit that reached the start); from them come three kinds
//! of rows, in one result:
//!
//! - kind 0, nodes: `(step, node, visitors, drop-offs)`, nodes past the `limit` most
//!   visited of their step folded into `(other)`;
//! - kind 1, edges: `(step of the target, from, to, visitors)` over the folded nodes;
//! - kind 2, full paths: `(s0 ... s<depth>, visitors)`, the `limit` most common walks
//!   that went the whole depth, by their real pages.
//!
//! Columns: kind, step, n0 ... n5, visitors, drop-offs.

use super::aggregate::event_filters_sql;
use super::Builder;
use crate::dialect::SqlDialect;
use crate::paths::{Direction, PathsQuery, Start, MAX_DEPTH, OTHER};
use crate::sql::{Sql, SqlValue};

/// `site_id = ? AND ts in range`.
fn scope(b: &mut Builder, query: &PathsQuery) {
    b.push("site_id = ");
    b.bind(SqlValue::Text(query.site_id.0.clone()));
    b.push(" AND ts >= ");
    b.bind(SqlValue::TimestampMs(query.range.start_ms));
    b.push(" AND ts < ");
    b.bind(SqlValue::TimestampMs(query.range.end_ms));
}

/// The visits' items: page views (their page), and events of the start's name (their name).
fn items(b: &mut Builder, query: &PathsQuery) {
    let label = match &query.start {
        Start::Event(_) => "CASE WHEN name = 'pageview' THEN pathname ELSE name END",
        _ => "pathname",
    };
    b.push(&format!(
        "SELECT session_id, visitor_id, ts, event_id, {label} AS label FROM events WHERE "
    ));
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
    // Only visits that reached the start (a semi-join: the windows below then see only
    // those), and that the filters pick.
    match &query.start {
        Start::Page(page) => {
            b.push(" AND session_id IN (SELECT session_id FROM events WHERE ");
            scope(b, query);
            b.push(" AND name = 'pageview' AND pathname = ");
            b.bind(SqlValue::Text(page.clone()));
            b.push(")");
        }
        Start::Event(name) => {
            b.push(" AND session_id IN (SELECT session_id FROM events WHERE ");
            scope(b, query);
            b.push(" AND name = ");
            b.bind(SqlValue::Text(name.clone()));
            b.push(")");
        }
        Start::Visit => {}
    }
    if !query.filters.is_empty() {
        b.push(" AND session_id IN (SELECT session_id FROM events WHERE ");
        scope(b, query);
        event_filters_sql(
            b,
            &query.site_id,
            query.timezone,
            query.range,
            &query.filters,
        );
        b.push(")");
    }
}

pub(crate) fn paths_sql(query: &PathsQuery, dialect: &dyn SqlDialect) -> Sql {
    let mut b = Builder::new(dialect);
    let order = "PARTITION BY session_id ORDER BY ts, event_id";
    b.push(&format!(
        "WITH walks AS {} (SELECT session_id, visitor_id, step, label FROM (SELECT session_id, \
         visitor_id, label, ",
        dialect.materialized()
    ));
    b.push(match query.direction {
        Direction::Forward => "position - anchor AS step",
        Direction::Backward => "anchor - position AS step",
    });
    b.push(" FROM (SELECT session_id, visitor_id, label, position, ");
    match (&query.start, query.direction) {
        (Start::Page(node) | Start::Event(node), _) => {
            b.push("min(CASE WHEN label = ");
            b.bind(SqlValue::Text(node.clone()));
            b.push(" THEN position END) OVER (PARTITION BY session_id) AS anchor");
        }
        // From each visit's entry page forward, or its exit page backward.
        (Start::Visit, Direction::Forward) => {
            b.push("1 AS anchor");
        }
        (Start::Visit, Direction::Backward) => {
            b.push("max(position) OVER (PARTITION BY session_id) AS anchor");
        }
    }
    b.push(&format!(
        " FROM (SELECT session_id, visitor_id, label, row_number() OVER ({order}) AS position \
         FROM (SELECT session_id, visitor_id, ts, event_id, label, lag(label) OVER ({order}) \
         AS previous FROM ("
    ));
    items(&mut b, query);
    b.push(
        ") AS items) AS changes WHERE previous IS NULL OR previous <> label) AS sequence) \
         AS anchored WHERE anchor IS NOT NULL) AS stepped WHERE step BETWEEN 0 AND ",
    );
    b.bind(SqlValue::Int(i64::from(query.depth)));
    // Each step's `limit` most visited nodes keep their name.
    b.push(
        "), ranked AS (SELECT step, label, row_number() OVER (PARTITION BY step ORDER BY \
         count(DISTINCT visitor_id) DESC, label) AS rank FROM walks GROUP BY step, label), \
         nodes AS ",
    );
    b.push(dialect.materialized());
    b.push(" (SELECT walks.session_id, walks.visitor_id, walks.step, CASE WHEN ranked.rank <= ");
    b.bind(SqlValue::Int(i64::from(query.limit)));
    b.push(" THEN walks.label ELSE ");
    b.bind(SqlValue::Text(OTHER.into()));
    b.push(
        " END AS node, walks.step = max(walks.step) OVER (PARTITION BY walks.session_id) AS last \
         FROM walks JOIN ranked ON ranked.step = walks.step AND ranked.label = walks.label) ",
    );
    let nulls = |from: usize| -> String {
        (from..=MAX_DEPTH as usize)
            .map(|i| format!("NULL AS n{i}, "))
            .collect()
    };
    // Nodes, with the visitors whose walk ended there before the last step.
    b.push(&format!(
        "SELECT 0 AS kind, step, node AS n0, {}count(DISTINCT visitor_id) AS visitors, \
         count(DISTINCT visitor_id) FILTER (WHERE last AND step < ",
        nulls(1)
    ));
    b.bind(SqlValue::Int(i64::from(query.depth)));
    b.push(") AS dropoffs FROM nodes GROUP BY step, node");
    // Edges.
    b.push(&format!(
        " UNION ALL SELECT 1 AS kind, target.step, source.node, target.node, {}\
         count(DISTINCT source.visitor_id), 0 FROM nodes AS source JOIN nodes AS target \
         ON target.session_id = source.session_id AND target.step = source.step + 1 \
         GROUP BY target.step, source.node, target.node",
        nulls(2)
    ));
    // Full paths: walks that went the whole depth, by their real pages.
    let columns: Vec<String> = (0..=query.depth).map(|i| format!("s{i}")).collect();
    let pivot: String = (0..=query.depth)
        .map(|i| format!(", max(label) FILTER (WHERE step = {i}) AS s{i}"))
        .collect();
    let padding: String = (query.depth as usize + 1..=MAX_DEPTH as usize)
        .map(|_| "NULL, ".to_owned())
        .collect();
    b.push(&format!(
        " UNION ALL SELECT * FROM (SELECT 2 AS kind, NULL AS step, {}, {padding}\
         count(DISTINCT visitor_id) AS visitors, 0 FROM (SELECT session_id, \
         min(visitor_id) AS visitor_id{pivot} FROM walks GROUP BY session_id HAVING max(step) = ",
        columns.join(", ")
    ));
    b.bind(SqlValue::Int(i64::from(query.depth)));
    b.push(&format!(
        ") AS whole GROUP BY {cols} ORDER BY count(DISTINCT visitor_id) DESC, {cols} LIMIT ",
        cols = columns.join(", ")
    ));
    b.bind(SqlValue::Int(i64::from(query.limit)));
    b.push(") AS top_paths");
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;
    use crate::model::DateRange;
    use heartbeat_model::SiteId;

    fn query(start: Start) -> PathsQuery {
        PathsQuery {
            site_id: SiteId::from("example.com"),
            timezone: chrono_tz::Tz::UTC,
            range: DateRange {
                start_ms: 0,
                end_ms: 1,
            },
            start,
            direction: Direction::Backward,
            depth: 3,
            limit: 5,
            filters: Vec::new(),
        }
    }

    #[test]
    fn values_are_bound() {
        for start in [
            Start::Page("/x'; DROP TABLE events; --".into()),
            Start::Event("x'; DROP TABLE events; --".into()),
            Start::Visit,
        ] {
            let sql = paths_sql(&query(start), Dialect::DuckDb.sql());
            assert!(!sql.text.contains("DROP"), "{}", sql.text);
            assert_eq!(sql.text.matches('?').count(), sql.params.len());
            assert!(sql.text.contains("anchor - position"), "{}", sql.text);
        }
    }
}
