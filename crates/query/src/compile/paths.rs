//! The paths statement (`paths.rs` says what it means). Each visit's walk, materialized:
//!
//! - `anchors` (from a page or an event): each visit's first view of the page (first event
//!   of the name), by [`SqlDialect::order_key`], in visits the filters pick;
//! - `items`: the visit's page views (and events of the start's name) from the anchor on
//!   (forward) or up to it (backward); without a start, all of them, from the entry page
//!   forward or from the exit page backward;
//! - `walks`: reloads collapsed (`lag`), then numbered from the anchor in the walk's
//!   direction (`step`), with the item after each one in that direction (`next`, NULL where
//!   the walk ended), `depth` steps deep. Labels travel as 64-bit hashes of their text
//!   ([`SqlDialect::text_hash`]): the two windows sort numbers instead of strings (at 10 M
//!   events 3.2 to 3.5 s p50 where the texts took 3.6 to 3.7, docs/benchmarks.md), and two
//!   texts sharing a hash (odds about n² / 2^65 for n distinct labels) would count as one;
//! - `labels`: the range's distinct labels with their hashes, which name the few that an
//!   answer shows;
//! - `ranked`: each step's `limit` most visited labels keep their own hash as their node,
//!   the others fold into one NULL node, named `(other)` with the result rows.
//!
//! The walks are small (at most `depth + 1` rows per visit that reached the start); from
//! them come three kinds of rows, in one result:
//!
//! - kind 0, nodes: `(step, node, visitors, drop-offs)`;
//! - kind 1, edges: `(step of the target, from, to, visitors)` over the folded nodes;
//! - kind 2, full paths: `(s0 ... s<depth>, visitors)`, the `limit` most common walks
//!   that went the whole depth, by their real pages.
//!
//! Each kind takes its distinct (group, visitor) rows first and counts them, where
//! `count(DISTINCT visitor_id)` per group in the three kinds at once did not fit in 256 MB
//! at 10 M events (a plain grouping can spill to disk).
//!
//! Columns: kind, step, n0 ... n5, visitors, drop-offs. Events of the same millisecond are
//! in the order of [`SqlDialect::order_key`]. No window runs over the events before the
//! anchor's join has dropped what the walks do not reach (at 10 M events, the difference
//! between a few seconds and running out of memory: docs/benchmarks.md).
//!
//! An engine without window functions or table CTEs (ClickHouse 18.16, whose dialect has
//! [`SqlDialect::arrays`]) gets a statement of its own with the same rows: each visit's
//! walk as one sorted array (`paths/arrays.rs`).

mod arrays;

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

/// ` AND session_id IN (visits with an event the filters pass)`, when there are filters.
fn filtered_visits(b: &mut Builder, query: &PathsQuery) {
    if query.filters.is_empty() {
        return;
    }
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

/// An item's label: a page view's page, an event of the start's name its name.
fn label_sql(query: &PathsQuery) -> &'static str {
    match &query.start {
        Start::Event(_) => "CASE WHEN name = 'pageview' THEN pathname ELSE name END",
        _ => "pathname",
    }
}

/// ` AND <the events that are items>`: page views, and events of the start's name.
fn item_names(b: &mut Builder, query: &PathsQuery) {
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
}

/// The visits' items (`session_id, visitor_id, k, h`): page views and events of the start's
/// name, each with its label as a 64-bit hash (`h`: the walks sort numbers, not texts;
/// `labels` gives the texts back).
fn items(b: &mut Builder, query: &PathsQuery, key: &str) {
    let hash = b.dialect().text_hash(label_sql(query));
    b.push(&format!(
        "SELECT session_id, visitor_id, {key} AS k, {hash} AS h FROM events WHERE "
    ));
    scope(b, query);
    item_names(b, query);
    // With a start, the join with `anchors` keeps only the visits that reached it (and that
    // the filters pick).
    if query.start == Start::Visit {
        filtered_visits(b, query);
    }
}

/// Every label of the range's items with its hash (`h, label`): the texts of the few
/// labels an answer names, read once over the distinct labels rather than carried through
/// the walks.
fn labels(b: &mut Builder, query: &PathsQuery) {
    let label = label_sql(query);
    let hash = b.dialect().text_hash("label");
    b.push(&format!(
        "SELECT {hash} AS h, label FROM (SELECT DISTINCT {label} AS label FROM events WHERE "
    ));
    scope(b, query);
    item_names(b, query);
    b.push(") AS distinct_labels");
}

pub(crate) fn paths_sql(query: &PathsQuery, dialect: &dyn SqlDialect) -> Sql {
    if let Some(arrays) = dialect.arrays() {
        return arrays::arrays_sql(query, dialect, arrays);
    }
    let mut b = Builder::new(dialect);
    let key = dialect.order_key("ts", "event_id");
    let materialized = dialect.materialized();
    b.push("WITH ");
    match &query.start {
        Start::Page(page) => {
            b.push(&format!(
                "anchors AS {materialized} (SELECT session_id, min({key}) AS a FROM events WHERE "
            ));
            scope(&mut b, query);
            b.push(" AND name = 'pageview' AND pathname = ");
            b.bind(SqlValue::Text(page.clone()));
            filtered_visits(&mut b, query);
            b.push(" GROUP BY session_id), ");
        }
        Start::Event(name) => {
            b.push(&format!(
                "anchors AS {materialized} (SELECT session_id, min({key}) AS a FROM events WHERE "
            ));
            scope(&mut b, query);
            b.push(" AND name = ");
            b.bind(SqlValue::Text(name.clone()));
            filtered_visits(&mut b, query);
            b.push(" GROUP BY session_id), ");
        }
        Start::Visit => {}
    }
    b.push("items AS (");
    let anchored = !matches!(query.start, Start::Visit);
    if anchored {
        b.push("SELECT e.session_id, e.visitor_id, e.k, e.h FROM (");
    }
    items(&mut b, query, &key);
    let (side, walk_order) = match query.direction {
        Direction::Forward => (">=", "k"),
        Direction::Backward => ("<=", "k DESC"),
    };
    if anchored {
        b.push(&format!(
            ") AS e JOIN anchors ON anchors.session_id = e.session_id AND e.k {side} anchors.a"
        ));
    }
    // Reloads collapsed, then numbered from the anchor in the walk's direction.
    // The anchor's row (step 0) also holds the whole walk (`f1` ... `f<depth>`), for the
    // full paths.
    let ahead: String = (2..=query.depth)
        .map(|i| format!(", CASE WHEN step = 0 THEN f{i} END AS f{i}"))
        .collect();
    let leads: String = (2..=query.depth)
        .map(|i| format!(", lead(h, {i}) OVER w AS f{i}"))
        .collect();
    b.push(&format!(
        "), collapsed AS (SELECT session_id, visitor_id, k, h FROM (SELECT session_id, \
         visitor_id, k, h, lag(h) OVER (PARTITION BY session_id ORDER BY k) AS previous \
         FROM items) AS i WHERE previous IS NULL OR previous <> h), \
         walks AS {materialized} (SELECT session_id, visitor_id, step, h, next{ahead} FROM \
         (SELECT session_id, visitor_id, h, row_number() OVER w - 1 AS step, \
         lead(h) OVER w AS next{leads} FROM collapsed \
         WINDOW w AS (PARTITION BY session_id ORDER BY {walk_order})) AS numbered WHERE step <= "
    ));
    b.bind(SqlValue::Int(i64::from(query.depth)));
    b.push(&format!("), labels AS {materialized} ("));
    labels(&mut b, query);
    // Each step's `limit` most visited labels keep their own hash as their node (ties by
    // the name), the others fold into one NULL node, `(other)`. Nodes stay numbers until
    // the few result rows are named: grouping the walks by the names ran out of 256 MB.
    b.push(&format!(
        "), ranked AS {materialized} (SELECT r.step, r.h, CASE WHEN row_number() OVER \
         (PARTITION BY r.step ORDER BY r.visitors DESC, l.label) <= "
    ));
    b.bind(SqlValue::Int(i64::from(query.limit)));
    b.push(
        " THEN r.h END AS node FROM (SELECT step, h, count(DISTINCT visitor_id) AS visitors \
         FROM walks GROUP BY step, h) AS r JOIN labels AS l ON l.h = r.h) ",
    );
    let nulls = |from: usize| -> String {
        (from..=MAX_DEPTH as usize)
            .map(|i| format!("NULL AS n{i}, "))
            .collect()
    };
    // A node's name: its label's, or `(other)`.
    let named = |b: &mut Builder, labels: &str| {
        b.push(&format!("coalesce({labels}.label, "));
        b.bind(SqlValue::Text(OTHER.into()));
        b.push(")");
    };
    // Nodes, with the visitors whose walk ended there before the last step.
    b.push("SELECT 0 AS kind, n.step, ");
    named(&mut b, "ln");
    b.push(&format!(
        " AS n0, {}n.visitors, n.dropoffs FROM (SELECT step, node, count(*) AS visitors, \
         count(*) FILTER (WHERE ended) AS dropoffs FROM (SELECT w.step, r.node, w.visitor_id, \
         bool_or(w.next IS NULL AND w.step < ",
        nulls(1)
    ));
    b.bind(SqlValue::Int(i64::from(query.depth)));
    b.push(
        ") AS ended FROM walks AS w JOIN ranked AS r ON r.step = w.step AND r.h = w.h \
         GROUP BY w.step, r.node, w.visitor_id) AS v GROUP BY step, node) AS n \
         LEFT JOIN labels AS ln ON ln.h = n.node",
    );
    // Edges, from each node to the next one's folded label.
    b.push(" UNION ALL SELECT 1 AS kind, e.step, ");
    named(&mut b, "lf");
    b.push(", ");
    named(&mut b, "lt");
    b.push(&format!(
        ", {}e.visitors, 0 FROM (SELECT step, f, t, count(*) AS visitors FROM \
         (SELECT DISTINCT w.step + 1 AS step, r.node AS f, t.node AS t, w.visitor_id \
         FROM walks AS w JOIN ranked AS r ON r.step = w.step AND r.h = w.h \
         JOIN ranked AS t ON t.step = w.step + 1 AND t.h = w.next) AS v GROUP BY step, f, t) AS e \
         LEFT JOIN labels AS lf ON lf.h = e.f LEFT JOIN labels AS lt ON lt.h = e.t",
        nulls(2)
    ));
    // Full paths: walks that went the whole depth, by their real pages, from the anchors'
    // rows; counted by hashes, then named.
    let columns: Vec<String> = (0..=query.depth)
        .map(|i| match i {
            0 => "h".to_owned(),
            1 => "next".to_owned(),
            i => format!("f{i}"),
        })
        .collect();
    let named: Vec<String> = (0..=query.depth).map(|i| format!("l{i}.label")).collect();
    let joins: String = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!(" JOIN labels AS l{i} ON l{i}.h = p.{c}"))
        .collect();
    let padding: String = (query.depth as usize + 1..=MAX_DEPTH as usize)
        .map(|_| "NULL, ".to_owned())
        .collect();
    let last = columns.last().cloned().unwrap_or_default();
    b.push(&format!(
        " UNION ALL SELECT * FROM (SELECT 2 AS kind, NULL AS step, {named}, {padding}\
         p.visitors, 0 FROM (SELECT {cols}, count(*) AS visitors FROM (SELECT DISTINCT {cols}, \
         visitor_id FROM walks WHERE step = 0 AND {last} IS NOT NULL) AS v GROUP BY {cols}) \
         AS p{joins} \
         ORDER BY p.visitors DESC, {named} LIMIT ",
        cols = columns.join(", "),
        named = named.join(", ")
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
            assert!(sql.text.contains("ORDER BY k DESC"), "{}", sql.text);
        }
    }
}
