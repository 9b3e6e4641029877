//! Compiles a [`Query`] into at most two statements: one over `events` (visitors, page
//! views, events, and visits when broken down by an event dimension) and one over `sessions`
//! (visits, bounces, durations). The engine joins their rows by dimension values.
//!
//! `sessions` is a collapsing log (see `heartbeat-store`): the inner query sums `sign` per
//! visit and keeps visits whose sum is positive, so filters on attributes that change as a
//! visit grows (exit page) see only each visit's current state.

use crate::model::{Dimension, Filter, Metric, Query, TimeGrain};
use crate::sql::{Sql, SqlValue};
use crate::time::local_time_sql;

/// Which table a statement reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Events,
    Sessions,
}

/// The statements for one query, and what each row holds after the dimension columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Columns: dimensions..., visitors, pageviews, events, visits.
    pub events: Option<Sql>,
    /// Columns: dimensions..., visitors, visits, bounces, duration_s, pageviews, events.
    pub sessions: Option<Sql>,
    /// Whether visitors, page views and events come from `sessions` (a visit-only
    /// dimension) rather than `events`.
    pub counts_from_sessions: bool,
    /// Whether visits come from `events` (an event dimension: visits that include it).
    pub visits_from_events: bool,
}

struct Builder {
    text: String,
    params: Vec<SqlValue>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            text: String::new(),
            params: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: SqlValue) -> &mut Self {
        self.text.push('?');
        self.params.push(value);
        self
    }

    fn finish(self) -> Sql {
        Sql {
            text: self.text,
            params: self.params,
        }
    }
}

/// The SQL expression of `dimension` on `table`; `None` when the table lacks it.
fn dimension_sql(dimension: &Dimension, table: Table, query: &Query) -> Option<String> {
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
        (Dimension::Time(grain), _) => {
            let local = local_time_sql(time_column, query.timezone, query.range);
            let (unit, format) = match grain {
                TimeGrain::Hour => ("hour", "%Y-%m-%d %H:00:00"),
                TimeGrain::Day => ("day", "%Y-%m-%d"),
                TimeGrain::Week => ("week", "%Y-%m-%d"),
                TimeGrain::Month => ("month", "%Y-%m-%d"),
            };
            format!("strftime(date_trunc('{unit}', {local}), '{format}')")
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

fn leaf_sql(b: &mut Builder, column: &str, filter: &Filter) {
    let (values, negate, op) = match filter {
        Filter::Is(_, v) => (v, false, "in"),
        Filter::IsNot(_, v) => (v, true, "in"),
        Filter::Contains(_, v) => (v, false, "contains"),
        Filter::ContainsNot(_, v) => (v, true, "contains"),
        Filter::Matches(_, v) => (v, false, "regexp_matches"),
        _ => unreachable!("leaf_sql takes leaf filters"),
    };
    if negate {
        b.push("NOT ");
    }
    if op == "in" {
        b.push(&format!("({column} IN ("));
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.bind(SqlValue::Text(value.clone()));
        }
        b.push("))");
    } else {
        b.push("(");
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                b.push(" OR ");
            }
            b.push(&format!("{op}({column}, "));
            b.bind(SqlValue::Text(value.clone()));
            b.push(")");
        }
        b.push(")");
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
            match filter_column(dimension, table) {
                Some(column) => leaf_sql(b, column, leaf),
                None => {
                    // Through the other table: the visits that match.
                    let other = match table {
                        Table::Events => Table::Sessions,
                        Table::Sessions => Table::Events,
                    };
                    b.push("session_id IN (SELECT session_id FROM ");
                    scope_sql(b, other, query);
                    b.push(" AND ");
                    leaf_sql(b, filter_column(dimension, other).unwrap_or("NULL"), leaf);
                    if other == Table::Sessions {
                        b.push(" GROUP BY session_id HAVING sum(sign) > 0");
                    }
                    b.push(")");
                }
            }
        }
    }
}

/// `<table> WHERE site_id = ? AND <time> in range`.
fn scope_sql(b: &mut Builder, table: Table, query: &Query) {
    let (name, time) = match table {
        Table::Events => ("events", "ts"),
        Table::Sessions => ("sessions", "start_ts"),
    };
    b.push(name).push(" WHERE site_id = ");
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

fn dims_select(table: Table, query: &Query) -> Option<String> {
    let mut parts = Vec::new();
    for (i, d) in query.dimensions.iter().enumerate() {
        parts.push(format!("{} AS d{i}", dimension_sql(d, table, query)?));
    }
    Some(parts.iter().map(|p| format!("{p}, ")).collect())
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

fn events_sql(query: &Query) -> Option<Sql> {
    let mut b = Builder::new();
    b.push("SELECT ").push(&dims_select(Table::Events, query)?);
    b.push(
        "count(DISTINCT visitor_id) AS visitors, count(*) FILTER (WHERE name = 'pageview') AS pageviews, \
         count(*) AS events, count(DISTINCT session_id) AS visits FROM ",
    );
    scope_sql(&mut b, Table::Events, query);
    // A page breakdown counts page views, as Plausible's does: a custom event fired on a
    // page is not a visit to it.
    if query.dimensions.contains(&Dimension::Page) {
        b.push(" AND name = 'pageview'");
    }
    where_filters(&mut b, Table::Events, query);
    b.push(&group_by(query));
    Some(b.finish())
}

fn sessions_sql(query: &Query) -> Option<Sql> {
    let mut b = Builder::new();
    let dims = dims_select(Table::Sessions, query)?;
    let outer_dims: String = (0..query.dimensions.len())
        .map(|i| format!("d{i}, "))
        .collect();
    b.push("SELECT ").push(&outer_dims);
    b.push(
        "count(DISTINCT visitor_id) AS visitors, sum(visits) AS visits, sum(bounces) AS bounces, \
         sum(duration_s) AS duration_s, sum(pageviews) AS pageviews, sum(events) AS events FROM (SELECT ",
    );
    b.push(&dims);
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

pub fn compile(query: &Query) -> Plan {
    let visit_only_dim = query.dimensions.iter().any(Dimension::is_visit_only);
    let event_dim = query.dimensions.iter().any(Dimension::is_event_only);
    let wants = |m: Metric| query.metrics.contains(&m);
    let needs_events = !visit_only_dim
        && (wants(Metric::Visitors)
            || wants(Metric::Pageviews)
            || wants(Metric::Events)
            || (event_dim && wants(Metric::Visits)));
    let needs_sessions = visit_only_dim
        || query.metrics.iter().any(|m| m.is_visit_metric())
        || (!event_dim && wants(Metric::Visits));
    Plan {
        events: if needs_events {
            events_sql(query)
        } else {
            None
        },
        sessions: if needs_sessions {
            sessions_sql(query)
        } else {
            None
        },
        counts_from_sessions: visit_only_dim,
        visits_from_events: event_dim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_query;
    use heartbeat_model::{Site, SiteId};
    use serde_json::json;

    fn plan(body: serde_json::Value) -> Plan {
        let site = Site {
            id: SiteId::from("example.com"),
            name: "Example".into(),
            domain: "example.com".into(),
            timezone: "UTC".into(),
            created_at_ms: 0,
            retention_days: None,
        };
        compile(&parse_query(&body, &site, 1_700_000_000_000, 0).unwrap())
    }

    #[test]
    fn top_stats_read_both_tables() {
        let p = plan(
            json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"], "date_range": ["2024-01-01", "2024-01-01"]}),
        );
        let events = p.events.unwrap();
        assert_eq!(
            events.text,
            "SELECT count(DISTINCT visitor_id) AS visitors, count(*) FILTER (WHERE name = 'pageview') AS pageviews, \
             count(*) AS events, count(DISTINCT session_id) AS visits FROM events WHERE site_id = ? AND ts >= ? AND ts < ?"
        );
        assert_eq!(events.params[0], SqlValue::Text("example.com".into()));
        let sessions = p.sessions.unwrap();
        assert!(sessions.text.contains("FROM sessions WHERE site_id = ? AND start_ts >= ? AND start_ts < ? GROUP BY session_id, visitor_id HAVING sum(sign) > 0)"), "{}", sessions.text);
    }

    #[test]
    fn hostile_values_stay_parameters() {
        let hostile = "x') OR 1=1; DROP TABLE events; --";
        let p = plan(
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
        let p = plan(
            json!({"metrics": ["visitors", "bounce_rate"], "filters": [["is", "visit:exit_page", ["/bye"]], ["is", "event:page", ["/a"]]]}),
        );
        let events = p.events.unwrap().text;
        assert!(events.contains("session_id IN (SELECT session_id FROM sessions WHERE site_id = ? AND start_ts >= ? AND start_ts < ? AND (exit_page IN (?)) GROUP BY session_id HAVING sum(sign) > 0)"), "{events}");
        let sessions = p.sessions.unwrap().text;
        assert!(sessions.contains("session_id IN (SELECT session_id FROM events WHERE site_id = ? AND ts >= ? AND ts < ? AND (pathname IN (?)))"), "{sessions}");
    }

    #[test]
    fn entry_pages_come_from_visits_only() {
        let p =
            plan(json!({"metrics": ["visitors", "visits"], "dimensions": ["visit:entry_page"]}));
        assert!(p.events.is_none());
        assert!(p.counts_from_sessions);
        assert!(p
            .sessions
            .unwrap()
            .text
            .starts_with("SELECT d0, count(DISTINCT visitor_id)"));
    }
}
