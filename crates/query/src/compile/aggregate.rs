//! The aggregate query: compiles a [`Query`] (metrics, optionally by dimensions) into at
//! most three statements, as its plan's [`Reads`] asks: one over `events` (visitors, page
//! views, events, and visits when broken down by an event dimension), one over `sessions`
//! (visits, bounces, durations) and one for time on page. The engine joins their rows by
//! dimension values.
//!
//! `sessions` is a collapsing log (see `heartbeat-store`): visit sums are weighted by `sign`,
//! which is right under any filter, since a visit's superseded states cancel out. Only
//! distinct visitors over visits, and events filtered by a visit attribute, first collapse
//! each visit to its current state (`HAVING sum(sign) > 0`).

use super::Builder;
use crate::dialect::SqlDialect;
use crate::model::{Dimension, Filter, Query};
use crate::plan::Reads;
use crate::sql::{Sql, SqlValue};
use crate::time::local_time_sql;

/// Which table a statement reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Events,
    Sessions,
}

/// The statements of one query, and what each row holds after the dimension columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Statements {
    /// Columns: dimensions..., visitors, pageviews, events, visits.
    pub events: Option<Sql>,
    /// Columns: dimensions..., visitors, visits, bounces, duration_s, pageviews, events.
    pub sessions: Option<Sql>,
    /// Columns: dimensions..., seconds to the next page view summed, page views counted.
    pub time_on_page: Option<Sql>,
}

/// The SQL expression of `dimension` on `table`; `None` when the table lacks it.
fn dimension_sql(
    dimension: &Dimension,
    table: Table,
    query: &Query,
    dialect: &dyn SqlDialect,
) -> Option<String> {
    let time_column = match table {
        Table::Events => "ts",
        Table::Sessions => "start_ts",
    };
    Some(match (dimension, table) {
        (Dimension::Page, Table::Events) => "pathname".into(),
        // Visit metrics by page are those of visits that entered on it, as in Plausible.
        (Dimension::Page, Table::Sessions) => "entry_page".into(),
        (Dimension::Name, Table::Events) => "name".into(),
        (Dimension::Hostname, Table::Events) => "hostname".into(),
        (Dimension::Hostname, Table::Sessions) => "hostname".into(),
        (Dimension::Visit(column), _) => column.column().into(),
        (Dimension::EntryPage, Table::Sessions) => "entry_page".into(),
        (Dimension::ExitPage, Table::Sessions) => "exit_page".into(),
        // The bucket's local start as a timestamp: grouping by it is cheaper than by a
        // formatted string, and the engine formats the few labels (`TimeGrain::label`).
        (Dimension::Time(grain), _) => {
            let local = local_time_sql(time_column, query.timezone, query.range, dialect);
            dialect.truncate(*grain, &local)
        }
        _ => return None,
    })
}

/// The column a filter on `dimension` reads on `table`, or `None` when the filter must go
/// through the other table.
fn filter_column(dimension: &Dimension, table: Table) -> Option<&'static str> {
    match (dimension, table) {
        (Dimension::Page, Table::Events) => Some("pathname"),
        (Dimension::Name, Table::Events) => Some("name"),
        (Dimension::Hostname, _) => Some("hostname"),
        (Dimension::Visit(column), _) => Some(column.column()),
        (Dimension::EntryPage, Table::Sessions) => Some("entry_page"),
        (Dimension::ExitPage, Table::Sessions) => Some("exit_page"),
        _ => None,
    }
}

/// How a leaf filter compares a column with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// Equal to one of them.
    OneOf,
    /// Contains one of them.
    Contains,
    /// Matches one of them, regular expressions.
    Matches,
}

/// A leaf filter's values, comparison and whether it is negated.
fn leaf_parts(filter: &Filter) -> (&[String], Comparison, bool) {
    match filter {
        Filter::Is(_, v) => (v, Comparison::OneOf, false),
        Filter::IsNot(_, v) => (v, Comparison::OneOf, true),
        Filter::Contains(_, v) => (v, Comparison::Contains, false),
        Filter::ContainsNot(_, v) => (v, Comparison::Contains, true),
        Filter::Matches(_, v) => (v, Comparison::Matches, false),
        _ => unreachable!("leaf_parts takes leaf filters"),
    }
}

/// `column` compared with the filter's values, without its negation.
fn match_sql(b: &mut Builder, column: &str, values: &[String], comparison: Comparison) {
    if comparison == Comparison::OneOf {
        b.push(&format!("({column} IN ("));
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.bind(SqlValue::Text(value.clone()));
        }
        b.push("))");
    } else {
        let test = match comparison {
            Comparison::Contains => b.dialect().contains_text(column, "?"),
            _ => b.dialect().matches_regex(column, "?"),
        };
        b.push("(");
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                b.push(" OR ");
            }
            b.bind_within(&test, SqlValue::Text(value.clone()));
        }
        b.push(")");
    }
}

fn leaf_sql(b: &mut Builder, column: &str, filter: &Filter) {
    let (values, comparison, negate) = leaf_parts(filter);
    if negate {
        b.push("NOT ");
    }
    match_sql(b, column, values, comparison);
}

/// The condition of leaf `filter` on `dimension` over `table`; false (nothing written) when
/// the table does not know the dimension.
fn leaf_condition(
    b: &mut Builder,
    dimension: &Dimension,
    table: Table,
    filter: &Filter,
    query: &Query,
) -> bool {
    if let (Dimension::Prop(key), Table::Events) = (dimension, table) {
        // Events whose property `key` matches; `is_not` means "not one of these values",
        // which includes events without the property, as Plausible counts `(none)`.
        let (values, comparison, negate) = leaf_parts(filter);
        if negate {
            b.push("NOT ");
        }
        b.push("(event_id IN (SELECT event_id FROM event_props WHERE site_id = ");
        b.bind(SqlValue::Text(query.site_id.0.clone()));
        b.push(" AND key = ");
        b.bind(SqlValue::Text(key.clone()));
        b.push(" AND ");
        match_sql(b, "value", values, comparison);
        b.push("))");
        return true;
    }
    match filter_column(dimension, table) {
        Some(column) => {
            leaf_sql(b, column, filter);
            true
        }
        None => false,
    }
}

fn filter_sql(b: &mut Builder, filter: &Filter, table: Table, query: &Query) {
    match filter {
        Filter::And(all) | Filter::Or(all) => {
            let joiner = if matches!(filter, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            b.push("(");
            for (i, inner) in all.iter().enumerate() {
                if i > 0 {
                    b.push(joiner);
                }
                filter_sql(b, inner, table, query);
            }
            b.push(")");
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            filter_sql(b, inner, table, query);
            b.push(")");
        }
        leaf => {
            let dimension = leaf.dimensions()[0];
            let mut direct = Builder::new(b.dialect());
            if leaf_condition(&mut direct, dimension, table, leaf, query) {
                b.append(direct);
            } else {
                // Through the other table: the visits that match.
                let other = match table {
                    Table::Events => Table::Sessions,
                    Table::Sessions => Table::Events,
                };
                b.push("session_id IN (SELECT session_id FROM ");
                scope_sql(b, other, query);
                b.push(" AND ");
                if !leaf_condition(b, dimension, other, leaf, query) {
                    b.push("FALSE");
                }
                if other == Table::Sessions {
                    b.push(" GROUP BY session_id HAVING sum(sign) > 0");
                }
                b.push(")");
            }
        }
    }
}

/// `<table> WHERE site_id = ? AND <time> in range`.
fn scope_sql(b: &mut Builder, table: Table, query: &Query) {
    b.push(match table {
        Table::Events => "events",
        Table::Sessions => "sessions",
    });
    b.push(" WHERE ");
    scope_where(b, table, query);
}

/// `site_id = ? AND <time> in range`.
fn scope_where(b: &mut Builder, table: Table, query: &Query) {
    let time = match table {
        Table::Events => "ts",
        Table::Sessions => "start_ts",
    };
    b.push("site_id = ");
    b.bind(SqlValue::Text(query.site_id.0.clone()));
    b.push(&format!(" AND {time} >= "));
    b.bind(SqlValue::TimestampMs(query.range.start_ms));
    b.push(&format!(" AND {time} < "));
    b.bind(SqlValue::TimestampMs(query.range.end_ms));
}

fn where_filters(b: &mut Builder, table: Table, query: &Query) {
    for filter in &query.filters {
        b.push(" AND ");
        filter_sql(b, filter, table, query);
    }
}

/// Writes `<dimension> AS d<i>, ` for each dimension; `None` (and nothing written) when
/// `table` lacks one of them.
fn dims_select(b: &mut Builder, table: Table, query: &Query) -> Option<()> {
    let mut out = Builder::new(b.dialect());
    for (i, d) in query.dimensions.iter().enumerate() {
        if let (Dimension::Prop(_), Table::Events) = (d, table) {
            // The value joined in by `prop_joins`.
            out.push(&format!("coalesce(p{i}.value, '(none)') AS d{i}, "));
        } else {
            let sql = dimension_sql(d, table, query, b.dialect())?;
            out.push(&format!("{sql} AS d{i}, "));
        }
    }
    b.append(out);
    Some(())
}

/// For each `event:props:<key>` dimension `i`, the events' value of the property as
/// `p<i>.value` (one per event, NULL without it): a hash join over the range's properties,
/// where a lookup per event would cost a subquery per row.
fn prop_joins(b: &mut Builder, query: &Query) {
    for (i, d) in query.dimensions.iter().enumerate() {
        if let Dimension::Prop(key) = d {
            let value = b.dialect().arbitrary_value("value");
            b.push(&format!(
                " LEFT JOIN (SELECT event_id AS prop_event_id, {value} AS value \
                 FROM event_props WHERE key = "
            ));
            b.bind(SqlValue::Text(key.clone()));
            b.push(" AND ");
            scope_where(b, Table::Events, query);
            b.push(&format!(
                " GROUP BY event_id) AS p{i} ON p{i}.prop_event_id = events.event_id"
            ));
        }
    }
}

fn group_by(query: &Query) -> String {
    if query.dimensions.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = (0..query.dimensions.len())
            .map(|i| format!("d{i}"))
            .collect();
        format!(" GROUP BY {}", list.join(", "))
    }
}

fn events_sql(query: &Query, reads: &Reads, dialect: &dyn SqlDialect) -> Option<Sql> {
    let mut b = Builder::new(dialect);
    b.push("SELECT ");
    dims_select(&mut b, Table::Events, query)?;
    b.push(if reads.event_visitors {
        "count(DISTINCT visitor_id) AS visitors, "
    } else {
        "0 AS visitors, "
    });
    b.push("count(*) FILTER (WHERE name = 'pageview') AS pageviews, count(*) AS events, ");
    b.push(if reads.event_visits {
        "count(DISTINCT session_id) AS visits FROM events"
    } else {
        "0 AS visits FROM events"
    });
    prop_joins(&mut b, query);
    b.push(" WHERE ");
    scope_where(&mut b, Table::Events, query);
    // A page breakdown counts page views, as Plausible's does: a custom event fired on a
    // page is not a visit to it.
    if query.dimensions.contains(&Dimension::Page) {
        b.push(" AND name = 'pageview'");
    }
    where_filters(&mut b, Table::Events, query);
    b.push(&group_by(query));
    Some(b.finish())
}

/// Time on page: each page view's seconds until the visitor's next page view in the same
/// visit, over all page views of the range (so a filter on one page still measures until
/// whatever page came next); page views without a next one (exits) do not count.
fn time_on_page_sql(query: &Query, dialect: &dyn SqlDialect) -> Option<Sql> {
    let mut b = Builder::new(dialect);
    b.push("SELECT ");
    dims_select(&mut b, Table::Events, query)?;
    b.push(&format!(
        "sum({} - {}) AS seconds, count(*) AS views FROM (SELECT *, \
         lead(ts) OVER (PARTITION BY session_id ORDER BY ts) AS next_ts FROM ",
        dialect.epoch_seconds("next_ts"),
        dialect.epoch_seconds("ts")
    ));
    scope_sql(&mut b, Table::Events, query);
    b.push(" AND name = 'pageview') AS events");
    prop_joins(&mut b, query);
    b.push(" WHERE next_ts IS NOT NULL");
    where_filters(&mut b, Table::Events, query);
    b.push(&group_by(query));
    Some(b.finish())
}

/// Visit metrics are sign-weighted sums over the visit log, which are right without
/// collapsing each visit first: a visit's superseded states cancel out, whatever filter or
/// dimension reads them. Only a distinct count of visitors (entry and exit pages) needs each
/// visit's current state, so only then is the log collapsed per visit.
fn sessions_sql(query: &Query, reads: &Reads, dialect: &dyn SqlDialect) -> Option<Sql> {
    let mut b = Builder::new(dialect);
    if !reads.session_visitors {
        b.push("SELECT ");
        dims_select(&mut b, Table::Sessions, query)?;
        b.push(
            "0 AS visitors, sum(sign) AS visits, sum(sign * bounce) AS bounces, \
             sum(sign * duration_s) AS duration_s, sum(sign * pageviews) AS pageviews, \
             sum(sign * events) AS events FROM ",
        );
        scope_sql(&mut b, Table::Sessions, query);
        where_filters(&mut b, Table::Sessions, query);
        b.push(&group_by(query));
        return Some(b.finish());
    }
    let mut dims = Builder::new(dialect);
    dims_select(&mut dims, Table::Sessions, query)?;
    let outer_dims: String = (0..query.dimensions.len())
        .map(|i| format!("d{i}, "))
        .collect();
    b.push("SELECT ").push(&outer_dims);
    b.push(
        "count(DISTINCT visitor_id) AS visitors, sum(visits) AS visits, sum(bounces) AS bounces, \
         sum(duration_s) AS duration_s, sum(pageviews) AS pageviews, sum(events) AS events FROM (SELECT ",
    );
    b.append(dims);
    b.push(
        "session_id, visitor_id, sum(sign) AS visits, sum(sign * bounce) AS bounces, \
         sum(sign * duration_s) AS duration_s, sum(sign * pageviews) AS pageviews, \
         sum(sign * events) AS events FROM ",
    );
    scope_sql(&mut b, Table::Sessions, query);
    where_filters(&mut b, Table::Sessions, query);
    let inner_group: String = (0..query.dimensions.len())
        .map(|i| format!("d{i}, "))
        .collect();
    b.push(&format!(
        " GROUP BY {inner_group}session_id, visitor_id HAVING sum(sign) > 0)"
    ));
    b.push(&group_by(query));
    Some(b.finish())
}

/// The statements of `query` that `reads` asks for, in `dialect`.
pub fn statements(query: &Query, reads: &Reads, dialect: &dyn SqlDialect) -> Statements {
    Statements {
        events: reads
            .events
            .then(|| events_sql(query, reads, dialect))
            .flatten(),
        sessions: reads
            .sessions
            .then(|| sessions_sql(query, reads, dialect))
            .flatten(),
        time_on_page: reads
            .time_on_page
            .then(|| time_on_page_sql(query, dialect))
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::tests::statements_of;
    use crate::sql::SqlValue;
    use serde_json::json;

    #[test]
    fn top_stats_read_both_tables() {
        let p = statements_of(
            json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"], "date_range": ["2024-01-01", "2024-01-01"]}),
        );
        let events = p.events.unwrap();
        assert_eq!(
            events.text,
            "SELECT count(DISTINCT visitor_id) AS visitors, count(*) FILTER (WHERE name = 'pageview') AS pageviews, \
             count(*) AS events, 0 AS visits FROM events WHERE site_id = ? AND ts >= ? AND ts < ?"
        );
        assert_eq!(events.params[0], SqlValue::Text("example.com".into()));
        let sessions = p.sessions.unwrap();
        // Sign-weighted sums, no per-visit collapse: nothing reads visitors from visits.
        assert_eq!(
            sessions.text,
            "SELECT 0 AS visitors, sum(sign) AS visits, sum(sign * bounce) AS bounces, \
             sum(sign * duration_s) AS duration_s, sum(sign * pageviews) AS pageviews, \
             sum(sign * events) AS events FROM sessions WHERE site_id = ? AND start_ts >= ? AND start_ts < ?"
        );
    }

    #[test]
    fn hostile_values_stay_parameters() {
        let hostile = "x') OR 1=1; DROP TABLE events; --";
        let p = statements_of(
            json!({"metrics": ["visitors"], "filters": [["is", "event:page", [hostile]], ["contains", "visit:source", [hostile]]]}),
        );
        let sql = p.events.unwrap();
        assert!(!sql.text.contains("DROP"));
        assert!(
            sql.text
                .ends_with("AND (pathname IN (?)) AND (contains(referrer_source, ?))"),
            "{}",
            sql.text
        );
        assert_eq!(
            sql.params
                .iter()
                .filter(|v| **v == SqlValue::Text(hostile.into()))
                .count(),
            2
        );
    }

    #[test]
    fn filters_cross_tables_through_visits() {
        let p = statements_of(
            json!({"metrics": ["visitors", "bounce_rate"], "filters": [["is", "visit:exit_page", ["/bye"]], ["is", "event:page", ["/a"]]]}),
        );
        let events = p.events.unwrap().text;
        assert!(events.contains("session_id IN (SELECT session_id FROM sessions WHERE site_id = ? AND start_ts >= ? AND start_ts < ? AND (exit_page IN (?)) GROUP BY session_id HAVING sum(sign) > 0)"), "{events}");
        let sessions = p.sessions.unwrap().text;
        assert!(sessions.contains("session_id IN (SELECT session_id FROM events WHERE site_id = ? AND ts >= ? AND ts < ? AND (pathname IN (?)))"), "{sessions}");
    }

    #[test]
    fn entry_pages_come_from_visits_only() {
        let p = statements_of(
            json!({"metrics": ["visitors", "visits"], "dimensions": ["visit:entry_page"]}),
        );
        assert!(p.events.is_none());
        assert!(p
            .sessions
            .unwrap()
            .text
            .starts_with("SELECT d0, count(DISTINCT visitor_id)"));
    }
}
