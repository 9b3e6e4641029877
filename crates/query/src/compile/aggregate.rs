//! The aggregate query: compiles a [`Query`] (metrics, optionally by dimensions) into at
//! most three statements, as its plan's [`Reads`] asks: one over `events` (visitors, page
//! views, events, and visits when broken down by an event dimension), one over `sessions`
//! (visits, bounces, durations) and one for time on page. The engine joins their rows by
//! dimension values.
//!
//! `sessions` is a collapsing log (see `heartbeat-store`): visit sums are weighted by `sign`,
//! which is right under any filter, since a visit's superseded states cancel out. Only
//! distinct visitors over visits, and events filtered by a visit attribute, first collapse
//! each visit to its current state (`HAVING sum(sign) > 0`; for distinct visitors over
//! visits, where the engine's `LEFT JOIN` gives NULL to rows without a match, the states
//! added and not taken back, by a join on the rows taken back: [`current_visitors_sql`]).

use super::{goal, Builder};
use crate::dialect::{Piece, SqlDialect};
use crate::model::{Condition, Dimension, Filter, Operator, Query, Revenue};
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
    /// Columns: dimensions..., visitors, visits, bounces, duration_s, pageviews, events,
    /// bounce_visits (the visits the bounce rate is over).
    pub sessions: Option<Sql>,
    /// Columns: dimensions..., seconds to the next page view summed, page views counted.
    pub time_on_page: Option<Sql>,
    /// Columns: the page (the query's one dimension, an exit page), its page views.
    pub page_views: Option<Sql>,
    /// Columns: dimensions..., the visits' deepest scrolls summed, the visits counted.
    pub scroll_depth: Option<Sql>,
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
        // From the goals' events that stand in for `events` (`goal::goal_events_sql`).
        (Dimension::Goal, Table::Events) => "goal_name".into(),
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

/// `column` compared as `condition` says, its negation included: how a condition reads a
/// column that holds the dimension's value (events', visits', imported tables' and rollup
/// cells').
pub(crate) fn column_condition_sql(b: &mut Builder, column: &str, condition: &Condition) {
    if condition.operator.positive().1 {
        b.push("NOT ");
    }
    match_sql(b, column, condition, &condition.values);
}

/// `column` compared with the condition's values (its operator taken positively):
/// equal to one of them, containing one, or matching one of them as a regular expression;
/// ignoring case when the condition says so.
pub(super) fn match_sql(b: &mut Builder, column: &str, condition: &Condition, values: &[String]) {
    let (operator, _) = condition.operator.positive();
    let folded;
    let (column, values): (&str, Vec<String>) = if condition.case_sensitive {
        (column, values.to_vec())
    } else if operator == Operator::Matches {
        (column, values.iter().map(|v| format!("(?i){v}")).collect())
    } else {
        folded = b.dialect().lower(column);
        (&folded, values.iter().map(|v| v.to_lowercase()).collect())
    };
    if operator == Operator::Is {
        b.push(&format!("({column} IN ("));
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.bind(SqlValue::Text(value));
        }
        b.push("))");
    } else {
        let test = match operator {
            Operator::Contains => b.dialect().contains_text(column, "?"),
            _ => b.dialect().matches_regex(column, "?"),
        };
        b.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                b.push(" OR ");
            }
            b.bind_within(&test, SqlValue::Text(value));
        }
        b.push(")");
    }
}

/// `event_id IN` the events whose property `key` is set, and whose value passes `test` when
/// one is given.
fn prop_events_sql(
    b: &mut Builder,
    key: &str,
    query: &Query,
    test: Option<(&Condition, &[String], bool)>,
) {
    b.push("event_id IN (SELECT event_id FROM event_props WHERE site_id = ");
    b.bind(SqlValue::Text(query.site_id.0.clone()));
    b.push(" AND key = ");
    b.bind(SqlValue::Text(key.to_owned()));
    if let Some((condition, values, negate)) = test {
        b.push(if negate { " AND NOT " } else { " AND " });
        match_sql(b, "value", condition, values);
    }
    b.push(")");
}

/// A condition on custom property `key`, as Plausible reads one: `(none)` among `is` values
/// matches events without the property, `is_not` without `(none)` keeps them, and
/// `contains`, `matches` and their negations only match events that have it.
fn prop_condition_sql(b: &mut Builder, key: &str, condition: &Condition, query: &Query) {
    let (operator, negate) = condition.operator.positive();
    if operator != Operator::Is {
        prop_events_sql(b, key, query, Some((condition, &condition.values, negate)));
        return;
    }
    let none = condition.values.iter().any(|v| v == "(none)");
    let values: Vec<String> = condition
        .values
        .iter()
        .filter(|v| *v != "(none)")
        .cloned()
        .collect();
    match (negate, none, values.is_empty()) {
        // One of the values.
        (false, false, _) => prop_events_sql(b, key, query, Some((condition, &values, false))),
        // None of the values, or without the property.
        (true, false, _) => {
            b.push("NOT ");
            prop_events_sql(b, key, query, Some((condition, &values, false)));
        }
        // Without the property (or one of the values).
        (false, true, true) => {
            b.push("NOT ");
            prop_events_sql(b, key, query, None);
        }
        (false, true, false) => {
            b.push("(");
            prop_events_sql(b, key, query, Some((condition, &values, false)));
            b.push(" OR NOT ");
            prop_events_sql(b, key, query, None);
            b.push(")");
        }
        // With the property (and none of the values).
        (true, true, true) => prop_events_sql(b, key, query, None),
        (true, true, false) => prop_events_sql(b, key, query, Some((condition, &values, true))),
    }
}

/// The SQL of `condition` over `table`; false (nothing written) when the table does not
/// know its dimension.
fn condition_sql(b: &mut Builder, condition: &Condition, table: Table, query: &Query) -> bool {
    if let (Dimension::Prop(key), Table::Events) = (&condition.dimension, table) {
        prop_condition_sql(b, key, condition, query);
        return true;
    }
    if let (Dimension::Goal, Table::Events) = (&condition.dimension, table) {
        goal::condition_sql(b, condition, query);
        return true;
    }
    // Broken down by a visit attribute, a hostname filter picks the visits that entered on
    // that hostname (the visit log's `hostname`), as Plausible's does.
    let by_visit = query.dimensions.iter().any(|d| {
        matches!(
            d,
            Dimension::Visit(_) | Dimension::EntryPage | Dimension::ExitPage
        )
    });
    if condition.dimension == Dimension::Hostname && table == Table::Events && by_visit {
        return false;
    }
    match filter_column(&condition.dimension, table) {
        Some(column) => {
            column_condition_sql(b, column, condition);
            true
        }
        None => false,
    }
}

fn filter_sql(b: &mut Builder, filter: &Filter, table: Table, query: &Query) {
    super::boolean_sql(b, filter, &mut |b, leaf| leaf_sql(b, leaf, table, query));
}

/// `filter` as a condition on a row of `events` of `query`'s site and range (the
/// behavioural and visit-only parts through their subqueries), for other builders that
/// pick events as the v2 query does (funnels' first step).
pub(super) fn event_filter_sql(b: &mut Builder, filter: &Filter, query: &Query) {
    filter_sql(b, filter, Table::Events, query);
}

/// A condition or a behavioural filter, on `table`.
fn leaf_sql(b: &mut Builder, filter: &Filter, table: Table, query: &Query) {
    match filter {
        Filter::HasDone(done, inner) => {
            // The visits with an event of the range that matches.
            b.push(if *done {
                "session_id IN (SELECT session_id FROM "
            } else {
                "session_id NOT IN (SELECT session_id FROM "
            });
            scope_sql(b, Table::Events, query);
            b.push(" AND ");
            filter_sql(b, inner, Table::Events, query);
            b.push(")");
        }
        Filter::Condition(condition) => {
            let mut direct = Builder::new(b.dialect());
            if condition_sql(&mut direct, condition, table, query) {
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
                if !condition_sql(b, condition, other, query) {
                    let none = b.dialect().false_literal();
                    b.push(none);
                }
                if other == Table::Sessions {
                    b.push(" GROUP BY session_id HAVING sum(sign) > 0");
                }
                b.push(")");
            }
        }
        // `boolean_sql` writes these.
        Filter::And(_) | Filter::Or(_) | Filter::Not(_) => {}
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

/// ` AND <filter>` for each of `filters` over `events`, as the aggregate query writes them:
/// product analytics (retention, paths) pick their events or visits this way. `range`
/// scopes the subqueries a filter needs (a visit attribute read from `sessions`,
/// `has_done`).
pub(crate) fn event_filters_sql(
    b: &mut Builder,
    site_id: &heartbeat_model::SiteId,
    timezone: chrono_tz::Tz,
    range: crate::model::DateRange,
    filters: &[Filter],
) {
    let query = Query::filter_scope(site_id.clone(), timezone, range, filters.to_vec());
    where_filters(b, Table::Events, &query);
}

/// Writes `<dimension> AS d<i>, ` for each dimension; `None` (and nothing written) when
/// `table` lacks one of them.
fn dims_select(b: &mut Builder, table: Table, query: &Query) -> Option<()> {
    let mut out = Builder::new(b.dialect());
    for (i, d) in query.dimensions.iter().enumerate() {
        if let (Dimension::Prop(_), Table::Events) = (d, table) {
            // The value joined in by `prop_joins`.
            out.push(&format!("coalesce(p{i}.value, '{NONE}') AS d{i}, "));
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
            let left = b.dialect().joined_column("events", "event_id");
            b.push(&format!(
                " GROUP BY event_id) AS p{i} ON p{i}.prop_event_id = {left}"
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

/// `visitors, pageviews, events, visits` over rows with `visitor_id`, `session_id` and
/// `name`.
fn event_metrics(b: &mut Builder, reads: &Reads) {
    let dialect = b.dialect();
    b.push(if reads.event_visitors {
        "count(DISTINCT visitor_id) AS visitors, "
    } else {
        "0 AS visitors, "
    });
    // Engagement events are no events (Plausible's `countIf(name != 'engagement')`); their
    // visitors and visits count, as in Plausible's `uniq`s over all events.
    b.push(&format!(
        "{} AS pageviews, {} AS events, ",
        dialect.count_if("name = 'pageview'"),
        dialect.count_if("name <> 'engagement'")
    ));
    b.push(if reads.event_visits {
        "count(DISTINCT session_id) AS visits"
    } else {
        "0 AS visits"
    });
}

/// The label of events without a custom property, in a breakdown by it.
pub(crate) const NONE: &str = "(none)";

/// An unfiltered breakdown by one custom property, in two parts: the events that have it,
/// by value, from `event_props` alone (a few rows of the range's events), and `(none)`, the
/// events without it, as one group: those with no property at all (`props_json` empty)
/// and those with others only. The same rows as the general statement's join of every event
/// with its value, at about two thirds of its time at 10 M events (docs/benchmarks.md):
/// distinct visitors counted by value over all events cost more than over one group.
/// `None` for any other query.
fn prop_breakdown_sql(query: &Query, reads: &Reads, dialect: &dyn SqlDialect) -> Option<Sql> {
    let key = unfiltered_prop(query, reads)?;
    let mut b = Builder::new(dialect);
    prop_values_select(&mut b, key, query, reads, true);
    b.push(&format!(" UNION ALL SELECT '{NONE}' AS d0, "));
    event_metrics(&mut b, reads);
    b.push(" FROM (SELECT visitor_id, session_id, name FROM ");
    scope_sql(&mut b, Table::Events, query);
    b.push(" AND props_json = '' UNION ALL SELECT visitor_id, session_id, name FROM ");
    scope_sql(&mut b, Table::Events, query);
    b.push(" AND props_json <> '' AND NOT ");
    keyed_events(&mut b, key, query);
    b.push(") AS e GROUP BY d0");
    Some(b.finish())
}

/// The key of `query` when it is an unfiltered breakdown by one custom property without
/// revenue, which [`prop_breakdown_sql`] and [`sampled_prop_breakdown`] answer in parts.
fn unfiltered_prop<'q>(query: &'q Query, reads: &Reads) -> Option<&'q str> {
    match query.dimensions.as_slice() {
        [Dimension::Prop(key)] if query.filters.is_empty() && !reads.revenue => Some(key),
        _ => None,
    }
}

/// `SELECT <value> AS d0, <metrics> ... GROUP BY d0`: the events with property `key`, by
/// its value, from `event_props` alone. `once_per_event`: each event's row taken once, for
/// engines whose retried inserts may have stored it twice (ClickHouse); where a transaction
/// writes an event's properties with it (DuckDB), their rows are grouped as they are, in
/// half the time at 100 M events.
fn prop_values_select(
    b: &mut Builder,
    key: &str,
    query: &Query,
    reads: &Reads,
    once_per_event: bool,
) {
    let dialect = b.dialect();
    let any = |column: &str| dialect.arbitrary_value(column);
    b.push("SELECT prop_value AS d0, ");
    event_metrics(b, reads);
    // `prop_value`, not `value`: ClickHouse reads an alias wherever its name is used, the
    // `WHERE` below included.
    if once_per_event {
        b.push(&format!(
            " FROM (SELECT {} AS visitor_id, {} AS session_id, {} AS name, {} AS prop_value \
             FROM event_props WHERE key = ",
            any("visitor_id"),
            any("session_id"),
            any("name"),
            any("value")
        ));
    } else {
        b.push(
            " FROM (SELECT visitor_id, session_id, name, value AS prop_value \
             FROM event_props WHERE event_id IS NOT NULL AND key = ",
        );
    }
    b.bind(SqlValue::Text(key.to_owned()));
    // A value sent as `(none)` is counted with the events without the key, as the join's
    // `coalesce` does.
    b.push(&format!(" AND value <> '{NONE}' AND "));
    scope_where(b, Table::Events, query);
    b.push(if once_per_event {
        " GROUP BY event_id) AS p GROUP BY d0"
    } else {
        ") AS p GROUP BY d0"
    });
}

/// `event_id IN (<the site's events with property key>)`, a value sent as `(none)` not
/// counting as one.
fn keyed_events(b: &mut Builder, key: &str, query: &Query) {
    b.push("event_id IN (SELECT event_id FROM event_props WHERE site_id = ");
    b.bind(SqlValue::Text(query.site_id.0.clone()));
    b.push(" AND key = ");
    b.bind(SqlValue::Text(key.to_owned()));
    b.push(&format!(" AND value <> '{NONE}')"));
}

/// An unfiltered breakdown by a custom property whose `(none)` row's visitors are counted
/// over a sample of the visitors (the engine's `add_sampled_prop_breakdown` decides when,
/// and how large).
pub struct SampledPropBreakdown {
    /// The values' rows, exact: columns as [`Statements::events`]'.
    pub values: Sql,
    /// One row: the distinct visitors of the events without the property among those whose
    /// visitor id's hash has its `bits` highest bits zero (one visitor in `2^bits`).
    pub none_visitors: Sql,
}

/// The property `query` breaks down by, when [`sampled_prop_breakdown`] can answer it: an
/// unfiltered breakdown by a property that asks for visitors, page views or events only
/// (the sample counts no distinct visits), on an engine that samples visitors.
fn sampled_prop<'q>(query: &'q Query, reads: &Reads, dialect: &dyn SqlDialect) -> Option<&'q str> {
    let only_events = Reads {
        events: true,
        event_visitors: true,
        ..Reads::default()
    };
    let key = unfiltered_prop(query, reads)?;
    (*reads == only_events && dialect.visitor_sample("visitor_id", 1).is_some()).then_some(key)
}

/// Whether [`sampled_prop_breakdown`] answers `query` in `dialect`.
pub fn samples_prop_breakdown(query: &Query, reads: &Reads, dialect: &dyn SqlDialect) -> bool {
    sampled_prop(query, reads, dialect).is_some()
}

/// The statements of [`SampledPropBreakdown`] for `query`, one visitor in `2^bits` counted
/// in `(none)`; `None` unless [`samples_prop_breakdown`].
pub fn sampled_prop_breakdown(
    query: &Query,
    reads: &Reads,
    bits: u32,
    dialect: &dyn SqlDialect,
) -> Option<SampledPropBreakdown> {
    let key = sampled_prop(query, reads, dialect)?;
    let sample = dialect.visitor_sample("visitor_id", bits)?;
    let mut values = Builder::new(dialect);
    // Only DuckDB samples (`visitor_sample`): its rows are each event's once.
    prop_values_select(&mut values, key, query, reads, false);
    let mut none = Builder::new(dialect);
    // The sample's events without any property (from `events`, reading no event id), and
    // those with others only (from `event_props`: each event's rows there are its
    // properties, one per key).
    none.push("SELECT count(DISTINCT visitor_id) FROM (SELECT visitor_id FROM ");
    scope_sql(&mut none, Table::Events, query);
    none.push(&format!(
        " AND props_json = '' AND {sample} UNION ALL SELECT {} FROM event_props WHERE ",
        dialect.arbitrary_value("visitor_id")
    ));
    scope_where(&mut none, Table::Events, query);
    none.push(&format!(
        " AND {sample} AND event_id IS NOT NULL GROUP BY event_id \
         HAVING NOT bool_or(key = "
    ));
    none.bind(SqlValue::Text(key.to_owned()));
    none.push(&format!(" AND value <> '{NONE}')) AS e"));
    Some(SampledPropBreakdown {
        values: values.finish(),
        none_visitors: none.finish(),
    })
}

fn events_sql(query: &Query, reads: &Reads, dialect: &dyn SqlDialect) -> Option<Sql> {
    if let Some(sql) = prop_breakdown_sql(query, reads, dialect) {
        return Some(sql);
    }
    let mut b = Builder::new(dialect);
    b.push("SELECT ");
    dims_select(&mut b, Table::Events, query)?;
    event_metrics(&mut b, reads);
    if reads.revenue {
        // The revenue in the goals' currency (one for all, or each goal's own by goal).
        let (condition, code) = match &query.revenue {
            Revenue::Single(code) => ("revenue_currency = ?", Some(code)),
            _ => ("revenue_currency = goal_currency", None),
        };
        for (aggregate, alias) in [
            (dialect.sum_if("revenue_micros", condition), "revenue"),
            (
                dialect.count_values_if("revenue_micros", condition),
                "revenue_events",
            ),
        ] {
            b.push(", ");
            match code {
                Some(code) => b.bind_within(&aggregate, SqlValue::Text(code.clone())),
                None => b.push(&aggregate),
            };
            b.push(&format!(" AS {alias}"));
        }
    }
    b.push(" FROM ");
    if query.dimensions.contains(&Dimension::Goal) {
        goal::goal_events_sql(&mut b, query, &|b| scope_where(b, Table::Events, query));
    } else {
        b.push("events");
    }
    prop_joins(&mut b, query);
    b.push(" WHERE ");
    scope_where(&mut b, Table::Events, query);
    // A page breakdown counts page views, as Plausible's does: a custom event fired on a
    // page is not a visit to it. Unless the filters pick events by name: then it is where
    // those events happened.
    let names_filtered = query.filters.iter().any(|f| {
        f.dimensions()
            .iter()
            .any(|d| matches!(d, Dimension::Name | Dimension::Goal))
    });
    if query.dimensions.contains(&Dimension::Page) && !names_filtered {
        b.push(" AND name = 'pageview'");
    }
    // Events by name are the custom events and page views: an engagement event is neither.
    if query.dimensions.contains(&Dimension::Name) {
        b.push(" AND name <> 'engagement'");
    }
    where_filters(&mut b, Table::Events, query);
    b.push(&group_by(query));
    Some(b.finish())
}

/// Time on page: each page view's seconds until the visitor's next page view in the same
/// visit, over all page views of the range (so a filter on one page still measures until
/// whatever page came next); page views without a next one (exits) do not count.
fn time_on_page_sql(query: &Query, dialect: &dyn SqlDialect) -> Option<Sql> {
    if query.dimensions.contains(&Dimension::Goal) {
        return None;
    }
    let mut b = Builder::new(dialect);
    b.push("SELECT ");
    dims_select(&mut b, Table::Events, query)?;
    b.push(&format!(
        "sum({} - {}) AS seconds, count(*) AS views FROM ",
        dialect.epoch_seconds("next_ts"),
        dialect.epoch_seconds("ts")
    ));
    for piece in dialect.with_next_value("session_id", "ts", "ts", "event_id", "next_ts") {
        match piece {
            Piece::Sql(text) => {
                b.push(&text);
            }
            Piece::Rows => {
                scope_sql(&mut b, Table::Events, query);
                b.push(" AND name = 'pageview'");
            }
        }
    }
    b.push(" AS events");
    prop_joins(&mut b, query);
    b.push(" WHERE next_ts IS NOT NULL");
    where_filters(&mut b, Table::Events, query);
    b.push(&group_by(query));
    Some(b.finish())
}

/// Scroll depth: each visit's deepest scroll among its engagement events that report one,
/// per row; the engine averages them over the visits (Plausible's `maybe_add_scroll_depth`).
/// The query's filters apply to the engagement events themselves.
fn scroll_depth_sql(query: &Query, dialect: &dyn SqlDialect) -> Option<Sql> {
    if query.dimensions.contains(&Dimension::Goal) {
        return None;
    }
    let mut b = Builder::new(dialect);
    let dims: String = (0..query.dimensions.len())
        .map(|i| format!("d{i}, "))
        .collect();
    b.push("SELECT ").push(&dims);
    b.push("sum(depth) AS scroll_total, count(*) AS scroll_visits FROM (SELECT ");
    dims_select(&mut b, Table::Events, query)?;
    b.push("session_id, max(scroll_depth) AS depth FROM events");
    prop_joins(&mut b, query);
    b.push(" WHERE ");
    scope_where(&mut b, Table::Events, query);
    b.push(" AND name = 'engagement' AND scroll_depth IS NOT NULL");
    where_filters(&mut b, Table::Events, query);
    b.push(&format!(" GROUP BY {dims}session_id)"));
    b.push(&group_by(query));
    Some(b.finish())
}

/// The exit rate's denominator: page views by page, under the query's filters except those
/// on the exit page itself (they pick the row, not the page views counted), as Plausible's.
fn page_views_sql(query: &Query, dialect: &dyn SqlDialect) -> Sql {
    let scoped = Query {
        filters: query
            .filters
            .iter()
            .filter(|f| !matches!(f, Filter::Condition(c) if c.dimension == Dimension::ExitPage))
            .cloned()
            .collect(),
        ..query.clone()
    };
    let mut b = Builder::new(dialect);
    b.push("SELECT pathname AS d0, count(*) AS pageviews FROM ");
    scope_sql(&mut b, Table::Events, &scoped);
    b.push(" AND name = 'pageview'");
    where_filters(&mut b, Table::Events, &scoped);
    b.push(" GROUP BY d0");
    b.finish()
}

/// A visit log row's weight in the bounce rate: its sign, or, under a top-level filter on
/// `event:page`, its sign only when the visit entered on a page the filter matches (0
/// otherwise): Plausible's bounce rate of a page is that of the visits that landed on it.
fn bounce_weight(b: &mut Builder, query: &Query) {
    let page = query.filters.iter().find_map(|f| match f {
        Filter::Condition(c) if c.dimension == Dimension::Page => Some(c),
        _ => None,
    });
    match page {
        None => {
            b.push("sign");
        }
        Some(condition) => {
            let on_entry = Condition {
                dimension: Dimension::EntryPage,
                ..condition.clone()
            };
            b.push("CASE WHEN ");
            condition_sql(b, &on_entry, Table::Sessions, query);
            b.push(" THEN sign ELSE 0 END");
        }
    }
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
        b.push("0 AS visitors, sum(sign) AS visits, sum(");
        bounce_weight(&mut b, query);
        b.push(
            " * bounce) AS bounces, sum(sign * duration_s) AS duration_s, \
             sum(sign * pageviews) AS pageviews, sum(sign * events) AS events, sum(",
        );
        bounce_weight(&mut b, query);
        b.push(") AS bounce_visits FROM ");
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
    if dialect.left_join_nulls() {
        return Some(current_visitors_sql(query, dims, &outer_dims));
    }
    b.push("SELECT ").push(&outer_dims);
    b.push(
        "count(DISTINCT visitor_id) AS visitors, sum(visits) AS visits, sum(bounces) AS bounces, \
         sum(duration_s) AS duration_s, sum(pageviews) AS pageviews, sum(events) AS events, \
         sum(bounce_visits) AS bounce_visits FROM (SELECT ",
    );
    b.append(dims);
    b.push("session_id, visitor_id, sum(sign) AS visits, sum(");
    bounce_weight(&mut b, query);
    b.push(
        " * bounce) AS bounces, sum(sign * duration_s) AS duration_s, \
         sum(sign * pageviews) AS pageviews, sum(sign * events) AS events, sum(",
    );
    bounce_weight(&mut b, query);
    b.push(") AS bounce_visits FROM ");
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

/// [`sessions_sql`] with distinct visitors where a `LEFT JOIN` gives NULL to rows without a
/// match: every row of the visit log weighted by its sign for the sums, and the visitors of
/// the states added and not taken back, found by a join on the rows taken back (whose
/// `(session_id, version)` repeat the state they cancel, as do their columns, so a filter
/// keeps both or neither). DuckDB then hashes the rows taken back only, where a grouping per
/// visit hashed every row (1.9 s against 0.8 s for entry pages over 10 M events).
fn current_visitors_sql(query: &Query, dims: Builder, outer_dims: &str) -> Sql {
    let mut b = Builder::new(dims.dialect());
    b.push("SELECT ").push(outer_dims);
    let visitors = b
        .dialect()
        .count_distinct_if("visitor_id", "sign > 0 AND taken_session IS NULL");
    b.push(&format!(
        "{visitors} AS visitors, sum(sign) AS visits, sum(weight * bounce) AS bounces, \
         sum(sign * duration_s) AS duration_s, sum(sign * pageviews) AS pageviews, \
         sum(sign * events) AS events, sum(weight) AS bounce_visits FROM (SELECT "
    ));
    b.append(dims);
    b.push("session_id, version, visitor_id, sign, bounce, duration_s, pageviews, events, ");
    bounce_weight(&mut b, query);
    b.push(" AS weight FROM ");
    scope_sql(&mut b, Table::Sessions, query);
    where_filters(&mut b, Table::Sessions, query);
    b.push(
        ") AS s LEFT JOIN (SELECT DISTINCT session_id AS taken_session, version AS taken_version \
         FROM ",
    );
    scope_sql(&mut b, Table::Sessions, query);
    b.push(" AND sign < 0");
    where_filters(&mut b, Table::Sessions, query);
    b.push(") AS taken ON s.session_id = taken_session AND s.version = taken_version");
    b.push(&group_by(query));
    b.finish()
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
        page_views: reads.page_views.then(|| page_views_sql(query, dialect)),
        scroll_depth: reads
            .scroll_depth
            .then(|| scroll_depth_sql(query, dialect))
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::tests::{query_of, statements_of};
    use crate::dialect::Dialect;
    use crate::plan::{plan, Source};
    use crate::sql::SqlValue;
    use serde_json::json;

    #[test]
    fn a_sampled_none_row_keeps_one_visitor_in_two_to_the_bits_in_both_its_reads() {
        let breakdown = |metrics: serde_json::Value, filters: serde_json::Value| {
            let query = query_of(
                json!({"metrics": metrics, "date_range": ["2024-01-01", "2024-01-31"],
                "dimensions": ["event:props:plan"], "filters": filters}),
            );
            let Source::Tables(reads) = plan(&query, false).source else {
                unreachable!("without rollups, the tables answer");
            };
            (query, reads)
        };
        let (query, reads) = breakdown(json!(["visitors", "pageviews", "events"]), json!([]));
        let sampled =
            super::sampled_prop_breakdown(&query, &reads, 4, Dialect::DuckDb.sql()).unwrap();
        // The sample in the events' scan and in the lookup of those with the key.
        assert_eq!(
            sampled
                .none_visitors
                .text
                .matches("hash(visitor_id) < 1152921504606846976::UBIGINT")
                .count(),
            2,
            "{}",
            sampled.none_visitors.text
        );
        assert!(
            !sampled.values.text.contains("hash("),
            "{}",
            sampled.values.text
        );
        // The values' rows read each event's row of the key as stored, skipping rows of
        // events from before `event_props` knew their event (as the join's lookup does).
        assert!(
            sampled.values.text.contains("event_id IS NOT NULL")
                && !sampled.values.text.contains("GROUP BY event_id"),
            "{}",
            sampled.values.text
        );
        // No sample for ClickHouse, for distinct visits, or for a filtered breakdown.
        assert!(
            super::sampled_prop_breakdown(&query, &reads, 4, Dialect::ClickHouse.sql()).is_none()
        );
        let (query, reads) = breakdown(json!(["visitors", "visits"]), json!([]));
        assert!(super::sampled_prop_breakdown(&query, &reads, 4, Dialect::DuckDb.sql()).is_none());
        let (query, reads) = breakdown(
            json!(["visitors"]),
            json!([["is", "event:name", ["Signup"]]]),
        );
        assert!(super::sampled_prop_breakdown(&query, &reads, 4, Dialect::DuckDb.sql()).is_none());
    }

    #[test]
    fn top_stats_read_both_tables() {
        let p = statements_of(
            json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"], "date_range": ["2024-01-01", "2024-01-01"]}),
        );
        let events = p.events.unwrap();
        assert_eq!(
            events.text,
            "SELECT count(DISTINCT visitor_id) AS visitors, count(*) FILTER (WHERE name = 'pageview') AS pageviews, \
             count(*) FILTER (WHERE name <> 'engagement') AS events, 0 AS visits FROM events \
             WHERE site_id = ? AND ts >= ? AND ts < ?"
        );
        assert_eq!(events.params[0], SqlValue::Text("example.com".into()));
        let sessions = p.sessions.unwrap();
        // Sign-weighted sums, no per-visit collapse: nothing reads visitors from visits.
        assert_eq!(
            sessions.text,
            "SELECT 0 AS visitors, sum(sign) AS visits, sum(sign * bounce) AS bounces, \
             sum(sign * duration_s) AS duration_s, sum(sign * pageviews) AS pageviews, \
             sum(sign * events) AS events, sum(sign) AS bounce_visits FROM sessions \
             WHERE site_id = ? AND start_ts >= ? AND start_ts < ?"
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
    fn scroll_depth_is_each_visits_deepest_scroll_by_row() {
        let p = statements_of(
            json!({"metrics": ["scroll_depth"], "dimensions": ["time:day"], "filters": [["is", "event:page", ["/"]]]}),
        );
        let sql = p.scroll_depth.unwrap().text;
        assert!(
            sql.starts_with(
                "SELECT d0, sum(depth) AS scroll_total, count(*) AS scroll_visits FROM (SELECT "
            ),
            "{sql}"
        );
        assert!(
            sql.contains(
                "session_id, max(scroll_depth) AS depth FROM events WHERE site_id = ? AND ts >= ? \
                 AND ts < ? AND name = 'engagement' AND scroll_depth IS NOT NULL AND (pathname IN (?)) \
                 GROUP BY d0, session_id) GROUP BY d0"
            ),
            "{sql}"
        );
        // The rows it is reported on come from the events statement.
        assert!(p.events.is_some());
    }

    #[test]
    fn engagement_events_are_no_events_and_no_names() {
        let p =
            statements_of(json!({"metrics": ["visitors", "events"], "dimensions": ["event:name"]}));
        let sql = p.events.unwrap().text;
        assert!(
            sql.contains("count(*) FILTER (WHERE name <> 'engagement') AS events"),
            "{sql}"
        );
        assert!(
            sql.ends_with("AND name <> 'engagement' GROUP BY d0"),
            "{sql}"
        );
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
