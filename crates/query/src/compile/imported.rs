//! Imported statistics in an answer (`"include": {"imports": true}`), as Plausible adds
//! them: a query is answered from native events plus at most one imported table, the one
//! whose dimension values the query's dimensions and filters all use
//! (`Plausible.Stats.Imported.Base.decide_tables`); a query no single table answers, one
//! by hour, or one before any import, is answered without imports and says why
//! ([`SkipReason`]). Imported rows are whole days in the site's time zone.
//!
//! The statement's columns after the dimensions are the sums the engine adds to the native
//! ones: visitors, pageviews, events, visits, bounces, the visits the bounce rate is over,
//! the visit seconds and the visits they are over.

use chrono::{NaiveDate, TimeZone, Utc};
use heartbeat_model::{Goal, GoalKind, ImportedTable};

use super::{glob_sql, goal, Builder};
use crate::dialect::{SqlDialect, SqlType};
use crate::model::{Dimension, Filter, Metric, Operator, Query, TimeGrain, VisitColumn};
use crate::sql::{Sql, SqlValue};

/// Why imports were left out of an answer that asked for them (Plausible's
/// `imports_skip_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    NoImportedData,
    OutOfRange,
    UnsupportedQuery,
    UnsupportedInterval,
}

impl SkipReason {
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::NoImportedData => "no_imported_data",
            SkipReason::OutOfRange => "out_of_range",
            SkipReason::UnsupportedQuery => "unsupported_query",
            SkipReason::UnsupportedInterval => "unsupported_interval",
        }
    }

    /// Plausible's warning for the reasons a user can act on.
    pub fn warning(self) -> Option<&'static str> {
        match self {
            SkipReason::UnsupportedQuery => Some(
                "Imported stats are not included in the results because query parameters are \
                 not supported. For more information, see: \
                 https://plausible.io/docs/stats-api#filtering-imported-stats",
            ),
            SkipReason::UnsupportedInterval => Some(
                "Imported stats are not included because the time dimension (i.e. the \
                 interval) is too short.",
            ),
            _ => None,
        }
    }
}

/// Custom events whose `url` property Plausible's export keeps (as `link_url`).
const GOALS_WITH_URL: [&str; 3] = [
    "Outbound Link: Click",
    "Cloaked Link: Click",
    "File Download",
];
/// Custom events whose `path` property Plausible's export keeps.
const GOALS_WITH_PATH: [&str; 2] = ["404", "WP Form Completions"];

/// The first and last local day of the query's range.
pub fn local_days(query: &Query) -> (NaiveDate, NaiveDate) {
    let day = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .with_timezone(&query.timezone)
            .date_naive()
    };
    (day(query.range.start_ms), day(query.range.end_ms - 1))
}

/// Whether imports can be added to `query`, given the last day any import of the site
/// covers: the table that answers it, or why not.
pub fn decide(query: &Query, latest_end: Option<NaiveDate>) -> Result<ImportedTable, SkipReason> {
    let Some(latest_end) = latest_end else {
        return Err(SkipReason::NoImportedData);
    };
    if query.dimensions.contains(&Dimension::Time(TimeGrain::Hour)) {
        return Err(SkipReason::UnsupportedInterval);
    }
    if local_days(query).0 > latest_end {
        return Err(SkipReason::OutOfRange);
    }
    table_for(query).ok_or(SkipReason::UnsupportedQuery)
}

/// The dimensions a filter reads; `None` for a behavioural filter (`has_done`), which
/// daily aggregates cannot answer.
fn filter_dimensions<'q>(filter: &'q Filter, out: &mut Vec<&'q Dimension>) -> Option<()> {
    match filter {
        Filter::Condition(condition) => out.push(&condition.dimension),
        Filter::And(all) | Filter::Or(all) => {
            for inner in all {
                filter_dimensions(inner, out)?;
            }
        }
        Filter::Not(inner) => filter_dimensions(inner, out)?,
        Filter::HasDone(..) => return None,
    }
    Some(())
}

/// The imported table holding `dimension`'s values.
fn table_of(dimension: &Dimension) -> Option<ImportedTable> {
    use VisitColumn::*;
    Some(match dimension {
        Dimension::Visit(Source | Referrer | Channel)
        | Dimension::Visit(UtmSource | UtmMedium | UtmCampaign | UtmContent | UtmTerm) => {
            ImportedTable::Sources
        }
        Dimension::Visit(Country | Region | City) => ImportedTable::Locations,
        Dimension::Visit(Device) => ImportedTable::Devices,
        Dimension::Visit(Browser | BrowserVersion) => ImportedTable::Browsers,
        Dimension::Visit(Os | OsVersion) => ImportedTable::OperatingSystems,
        Dimension::EntryPage => ImportedTable::EntryPages,
        Dimension::ExitPage => ImportedTable::ExitPages,
        Dimension::Page | Dimension::Hostname => ImportedTable::Pages,
        Dimension::Name => ImportedTable::CustomEvents,
        Dimension::Time(_) | Dimension::Prop(_) | Dimension::Goal => return None,
    })
}

/// The one table that answers `query`, if any.
fn table_for(query: &Query) -> Option<ImportedTable> {
    let mut used = Vec::new();
    for filter in &query.filters {
        filter_dimensions(filter, &mut used)?;
    }
    if used.contains(&&Dimension::Goal) || query.dimensions.contains(&Dimension::Goal) {
        return goal_table(query, &used);
    }
    let props = used
        .iter()
        .copied()
        .chain(&query.dimensions)
        .any(|d| matches!(d, Dimension::Prop(_)));
    if props {
        return custom_prop_table(query, &used);
    }
    let mut tables: Vec<Option<ImportedTable>> = used
        .into_iter()
        .chain(&query.dimensions)
        .filter(|d| !matches!(d, Dimension::Time(_)))
        .map(table_of)
        .collect();
    tables.sort_by_key(|t| t.map(ImportedTable::name));
    tables.dedup();
    match tables.as_slice() {
        [] => Some(ImportedTable::Visitors),
        [one] => *one,
        _ => None,
    }
}

/// A query on goals (Plausible's `decide_tables` with `event:goal`): their conversions come
/// from the custom events of event goals (by name) and the pages of page goals (by pattern).
/// A breakdown by goal alone reads both, each goal from its own; otherwise the goals the
/// filters keep and every other dimension and filter must be one table's (a page breakdown
/// under page goals; the `url` or `path` property under the goals whose events the export
/// keeps it for). Goal filters must be top-level `is` or `contains` (no negation), which
/// pick goals by name. A goal with property values counts its imported events whole.
fn goal_table(query: &Query, used: &[&Dimension]) -> Option<ImportedTable> {
    let positive_goal_filters = query.filters.iter().all(|filter| match filter {
        Filter::Condition(c) if c.dimension == Dimension::Goal => !c.operator.positive().1,
        Filter::Condition(_) => true,
        other => {
            let mut inner = Vec::new();
            filter_dimensions(other, &mut inner).is_some() && !inner.contains(&&Dimension::Goal)
        }
    });
    if !positive_goal_filters {
        return None;
    }
    let goals = goal::breakdown_goals(&query.goals, &query.filters);
    let goal_filtered = used.contains(&&Dimension::Goal);
    if query.dimensions == [Dimension::Goal] && used.iter().all(|d| **d == Dimension::Goal) {
        if !goal_filtered {
            // Both tables, each goal from its own (the table named is nominal).
            return Some(ImportedTable::CustomEvents);
        }
    } else if query.dimensions.contains(&Dimension::Goal) {
        return None;
    }
    let mut tables: Vec<ImportedTable> = goals.iter().map(|g| goal_source(g)).collect();
    let others: Vec<&Dimension> = used
        .iter()
        .copied()
        .chain(&query.dimensions)
        .filter(|d| !matches!(d, Dimension::Time(_) | Dimension::Goal))
        .collect();
    for dimension in others {
        match dimension {
            Dimension::Prop(key) => {
                let names: &[&str] = match key.as_str() {
                    "url" => &GOALS_WITH_URL,
                    "path" => &GOALS_WITH_PATH,
                    _ => return None,
                };
                let kept = goals.iter().all(|goal| {
                    matches!(&goal.kind, GoalKind::Event { event_name, .. }
                        if names.contains(&event_name.as_str()))
                });
                if !kept || goals.is_empty() {
                    return None;
                }
                tables.push(ImportedTable::CustomEvents);
            }
            other => tables.push(table_of(other)?),
        }
    }
    tables.sort_by_key(|t| t.name());
    tables.dedup();
    match tables.as_slice() {
        [one @ (ImportedTable::CustomEvents | ImportedTable::Pages)] => Some(*one),
        // No goal kept: no conversion to add, from either table.
        [] => Some(ImportedTable::CustomEvents),
        _ => None,
    }
}

/// The imported table a goal's conversions are in.
fn goal_source(goal: &Goal) -> ImportedTable {
    match goal.kind {
        GoalKind::Page { .. } => ImportedTable::Pages,
        GoalKind::Event { .. } => ImportedTable::CustomEvents,
    }
}

/// A query on the `url` or `path` property: the custom events table keeps them for the
/// events that carry them (outbound links, downloads, 404s), when the query names one.
fn custom_prop_table(query: &Query, used: &[&Dimension]) -> Option<ImportedTable> {
    let key = match query.dimensions.as_slice() {
        [Dimension::Prop(key)] => key.clone(),
        [] | [Dimension::Name] | [Dimension::Time(_)] => {
            let mut keys: Vec<&String> = used
                .iter()
                .filter_map(|d| match d {
                    Dimension::Prop(key) => Some(key),
                    _ => None,
                })
                .collect();
            keys.dedup();
            match keys.as_slice() {
                [key] => (*key).clone(),
                _ => return None,
            }
        }
        _ => return None,
    };
    let names: &[&str] = match key.as_str() {
        "url" => &GOALS_WITH_URL,
        "path" => &GOALS_WITH_PATH,
        _ => return None,
    };
    let named = query.filters.iter().any(|f| match f {
        Filter::Condition(c) => {
            c.dimension == Dimension::Name
                && c.operator == Operator::Is
                && c.values.iter().any(|v| names.contains(&v.as_str()))
        }
        _ => false,
    });
    let others = used
        .iter()
        .any(|d| !matches!(d, Dimension::Name) && **d != Dimension::Prop(key.clone()));
    (named && !others).then_some(ImportedTable::CustomEvents)
}

/// The column of `table` holding `dimension`'s values.
fn column(dimension: &Dimension, table: ImportedTable) -> Option<&'static str> {
    use VisitColumn::*;
    Some(match dimension {
        Dimension::Visit(Source) => "source",
        Dimension::Visit(Referrer) => "referrer",
        Dimension::Visit(Channel) => "channel",
        Dimension::Visit(Country) => "country",
        Dimension::Visit(Region) => "region",
        Dimension::Visit(City) => "city",
        Dimension::Visit(Device) => "device",
        Dimension::Visit(Browser) => "browser",
        Dimension::Visit(BrowserVersion) => "browser_version",
        Dimension::Visit(Os) => "operating_system",
        Dimension::Visit(OsVersion) => "operating_system_version",
        Dimension::Visit(column) => column.column(),
        Dimension::EntryPage => "entry_page",
        Dimension::ExitPage => "exit_page",
        Dimension::Page => "page",
        Dimension::Hostname => "hostname",
        Dimension::Name => "name",
        Dimension::Prop(key) if table == ImportedTable::CustomEvents && key == "url" => "link_url",
        Dimension::Prop(key) if table == ImportedTable::CustomEvents && key == "path" => "path",
        Dimension::Prop(_) | Dimension::Time(_) | Dimension::Goal => return None,
    })
}

fn filter_sql(b: &mut Builder, filter: &Filter, table: ImportedTable) {
    super::boolean_sql(b, filter, &mut |b, leaf| match leaf {
        // The goals a statement reads are those the goal filters keep ([`goal_statement`]).
        Filter::Condition(condition) if condition.dimension == Dimension::Goal => {
            let all = b.dialect().true_literal();
            b.push(all);
        }
        Filter::Condition(condition) => match column(&condition.dimension, table) {
            Some(column) => super::aggregate::column_condition_sql(b, column, condition),
            // `decide` refuses columns the table lacks.
            None => {
                let none = b.dialect().false_literal();
                b.push(none);
            }
        },
        // `decide` refuses behavioural filters.
        _ => {
            let none = b.dialect().false_literal();
            b.push(none);
        }
    });
}

/// The sums of `table` that the engine adds to a row's native ones, per the table's own
/// counts (Plausible's `Imported.SQL.Expression.select_metric`).
fn sums(table: ImportedTable) -> [&'static str; 8] {
    use ImportedTable::*;
    let visits = match table {
        EntryPages => "sum(entrances)",
        ExitPages => "sum(exits)",
        CustomEvents => "0",
        _ => "sum(visits)",
    };
    let visit_based = !matches!(table, Pages | CustomEvents);
    let (pageviews, events) = match table {
        CustomEvents => ("0", "sum(events)"),
        _ => ("sum(pageviews)", "sum(pageviews)"),
    };
    [
        "sum(visitors)",
        pageviews,
        events,
        visits,
        if visit_based { "sum(bounces)" } else { "0" },
        if visit_based { visits } else { "0" },
        if visit_based {
            "sum(visit_duration)"
        } else {
            "0"
        },
        if visit_based { visits } else { "0" },
    ]
}

/// The statements reading `table` for `query` ([`decide`]'s): one, or for goals one per
/// table their conversions are in. Each gives one row per combination of dimension values,
/// each dimension as `d<i>`, then the sums of [`sums`]; the engine adds them all.
pub fn statements(query: &Query, table: ImportedTable, dialect: &dyn SqlDialect) -> Vec<Sql> {
    let goals = query.dimensions.contains(&Dimension::Goal)
        || query.filters.iter().any(|f| {
            let mut used = Vec::new();
            filter_dimensions(f, &mut used).is_some() && used.contains(&&Dimension::Goal)
        });
    if !goals {
        return vec![statement(query, table, None, dialect)];
    }
    let kept = goal::breakdown_goals(&query.goals, &query.filters);
    [ImportedTable::CustomEvents, ImportedTable::Pages]
        .into_iter()
        .filter_map(|source| {
            let of_source: Vec<&Goal> = kept
                .iter()
                .copied()
                .filter(|g| goal_source(g) == source)
                .collect();
            (!of_source.is_empty()).then(|| statement(query, source, Some(&of_source), dialect))
        })
        .collect()
}

/// The rows of `table` that complete each of `goals`, as a table standing in for it: its
/// columns and the goal's display name (`goal_name`); a row completing two goals is in it
/// twice.
fn goal_rows_sql(b: &mut Builder, query: &Query, table: ImportedTable, goals: &[&Goal]) {
    b.push("(");
    for (i, goal) in goals.iter().enumerate() {
        if i > 0 {
            b.push(" UNION ALL ");
        }
        b.push("SELECT ");
        b.bind(SqlValue::Text(goal.display_name.clone()));
        b.push(&format!(
            " AS goal_name, * FROM {} WHERE site_id = ",
            table.name()
        ));
        b.bind(SqlValue::Text(query.site_id.0.clone()));
        b.push(" AND ");
        match &goal.kind {
            GoalKind::Page { page_path } => glob_sql(b, "page", page_path),
            GoalKind::Event { event_name, .. } => {
                b.push("name = ");
                b.bind(SqlValue::Text(event_name.clone()));
            }
        }
    }
    b.push(&format!(") AS {}", table.name()));
}

/// The statement reading `table` for `query`, or with `goals` the rows of `table` that
/// complete them ([`goal_rows_sql`]).
fn statement(
    query: &Query,
    table: ImportedTable,
    goals: Option<&[&Goal]>,
    dialect: &dyn SqlDialect,
) -> Sql {
    let mut b = Builder::new(dialect);
    b.push("SELECT ");
    for (i, dimension) in query.dimensions.iter().enumerate() {
        let expression = match dimension {
            // A day is its own local start; weeks and months start on theirs (the engine
            // clamps a week's label to the range's first day, as for native rows).
            Dimension::Time(grain) => {
                dialect.truncate(*grain, &dialect.cast("date", SqlType::Timestamp))
            }
            Dimension::Goal => "goal_name".to_owned(),
            other => column(other, table).unwrap_or("''").to_owned(),
        };
        b.push(&format!("{expression} AS d{i}, "));
    }
    let sums = sums(table)
        .iter()
        .map(|s| format!("coalesce({s}, 0)"))
        .collect::<Vec<_>>()
        .join(", ");
    b.push(&sums);
    b.push(" FROM ");
    match goals {
        Some(goals) => goal_rows_sql(&mut b, query, table, goals),
        None => {
            b.push(table.name());
        }
    }
    b.push(" WHERE site_id = ");
    b.bind(SqlValue::Text(query.site_id.0.clone()));
    days_sql(&mut b, query);
    for filter in &query.filters {
        b.push(" AND ");
        filter_sql(&mut b, filter, table);
    }
    // Rows without a value of the dimension are left out of a breakdown by it, as
    // Plausible's (`filter_group_values`).
    for dimension in &query.dimensions {
        use VisitColumn::*;
        match dimension {
            Dimension::Visit(UtmSource | UtmMedium | UtmCampaign | UtmContent | UtmTerm)
            | Dimension::Visit(Region | City) => {
                let column = column(dimension, table).unwrap_or("''");
                b.push(&format!(" AND {column} <> ''"));
            }
            Dimension::Visit(Country) => {
                b.push(" AND country <> 'ZZ'");
            }
            _ => {}
        }
    }
    let counts_views = query
        .metrics
        .iter()
        .any(|m| matches!(m, Metric::Pageviews | Metric::ViewsPerVisit));
    if counts_views && table != ImportedTable::CustomEvents {
        b.push(" AND pageviews > 0");
    }
    if !query.dimensions.is_empty() {
        let group: Vec<String> = (0..query.dimensions.len())
            .map(|i| format!("d{i}"))
            .collect();
        b.push(&format!(" GROUP BY {}", group.join(", ")));
    }
    b.finish()
}

/// ` AND date` within the query's local days.
fn days_sql(b: &mut Builder, query: &Query) {
    let (first, last) = local_days(query);
    let day = b.dialect().cast("?", SqlType::Date);
    b.push(" AND date >= ");
    b.bind_within(&day, SqlValue::Text(first.to_string()));
    b.push(" AND date <= ");
    b.bind_within(&day, SqlValue::Text(last.to_string()));
}

/// The imported page views of each page in the query's days (`page`, `pageviews`): what an
/// exit page's exit rate is over, with its native page views.
pub fn page_views_statement(query: &Query, dialect: &dyn SqlDialect) -> Sql {
    let mut b = Builder::new(dialect);
    b.push("SELECT page, coalesce(sum(pageviews), 0) FROM imported_pages WHERE site_id = ");
    b.bind(SqlValue::Text(query.site_id.0.clone()));
    days_sql(&mut b, query);
    b.push(" GROUP BY page");
    b.finish()
}

/// The statement for the last day any import of the query's site covers (one row, NULL
/// without imports), as text `YYYY-MM-DD`.
pub fn latest_end_statement(query: &Query, dialect: &dyn SqlDialect) -> Sql {
    let mut b = Builder::new(dialect);
    b.push(&format!(
        "SELECT {} FROM site_imports WHERE site_id = ",
        dialect.cast(&dialect.max_or_null("end_date"), SqlType::Text)
    ));
    b.bind(SqlValue::Text(query.site_id.0.clone()));
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::tests::query_of;
    use serde_json::json;

    fn table(body: serde_json::Value) -> Option<ImportedTable> {
        table_for(&query_of(body))
    }

    #[test]
    fn one_table_answers_or_none_does() {
        let range = json!(["2024-01-01", "2024-01-31"]);
        assert_eq!(
            table(json!({"metrics": ["visitors"], "date_range": range})),
            Some(ImportedTable::Visitors)
        );
        assert_eq!(
            table(
                json!({"metrics": ["visitors"], "date_range": range, "dimensions": ["time:day"]})
            ),
            Some(ImportedTable::Visitors)
        );
        assert_eq!(
            table(
                json!({"metrics": ["visitors"], "date_range": range, "dimensions": ["visit:source"],
                "filters": [["is", "visit:utm_medium", ["organic"]]]})
            ),
            Some(ImportedTable::Sources)
        );
        assert_eq!(
            table(
                json!({"metrics": ["visitors"], "date_range": range, "dimensions": ["visit:source"],
                "filters": [["is", "visit:device", ["Desktop"]]]})
            ),
            None,
            "a filter from another table"
        );
        assert_eq!(
            table(json!({"metrics": ["visitors"], "date_range": range,
                "filters": [["is", "event:props:package", ["large"]]]})),
            None,
            "a property the export does not keep"
        );
        assert_eq!(
            table(
                json!({"metrics": ["visitors"], "date_range": range, "dimensions": ["event:props:url"],
                "filters": [["is", "event:name", ["Outbound Link: Click"]]]})
            ),
            Some(ImportedTable::CustomEvents)
        );
        assert_eq!(
            table(json!({"metrics": ["visitors"], "date_range": range,
                "filters": [["has_done", ["is", "event:name", ["Signup"]]]]})),
            None,
            "behavioural filters"
        );
    }

    #[test]
    fn goals_read_the_table_their_conversions_are_in() {
        use crate::dialect::Dialect;
        use heartbeat_model::SiteId;
        let goal = |id, kind: GoalKind, name: &str| Goal {
            id,
            site_id: SiteId::from("example.com"),
            kind,
            display_name: name.into(),
            currency: None,
            created_at_ms: 0,
        };
        let event = |name: &str| GoalKind::Event {
            event_name: name.into(),
            props: Default::default(),
        };
        let goals = vec![
            goal(1, event("Purchase"), "Purchase"),
            goal(
                2,
                GoalKind::Page {
                    page_path: "/test".into(),
                },
                "Visit /test",
            ),
            goal(3, event("404"), "404"),
        ];
        let site = crate::test_site("UTC");
        let query = |extra: serde_json::Value| {
            let mut body =
                json!({"metrics": ["visitors"], "date_range": ["2024-01-01", "2024-01-31"]});
            for (key, value) in extra.as_object().unwrap() {
                body[key] = value.clone();
            }
            crate::plausible::parse_query(
                &body,
                &site,
                &goals,
                1_700_000_000_000,
                0,
                &Default::default(),
            )
            .unwrap()
        };
        let table = |extra| table_for(&query(extra));
        use ImportedTable::*;
        // A breakdown by goal alone: each goal from its own table, one statement per table.
        let by_goal = query(json!({"dimensions": ["event:goal"]}));
        let decided = table_for(&by_goal).unwrap();
        let sql = statements(&by_goal, decided, Dialect::DuckDb.sql());
        assert_eq!(sql.len(), 2);
        assert!(
            sql[0].text.contains("imported_custom_events"),
            "{}",
            sql[0].text
        );
        assert!(sql[1].text.contains("imported_pages"), "{}", sql[1].text);
        // A goal filter reads its goals' table, with the dimensions of that table.
        let goal_is = |names: serde_json::Value| json!([["is", "event:goal", names]]);
        assert_eq!(
            table(json!({"dimensions": ["time:day"], "filters": goal_is(json!(["Visit /test"]))})),
            Some(Pages)
        );
        assert_eq!(
            table(
                json!({"dimensions": ["event:page"], "filters": goal_is(json!(["Visit /test"]))})
            ),
            Some(Pages)
        );
        assert_eq!(
            table(json!({"filters": goal_is(json!(["Purchase"]))})),
            Some(CustomEvents)
        );
        assert_eq!(
            table(json!({"filters": goal_is(json!(["Purchase", "Visit /test"]))})),
            None,
            "goals of both tables"
        );
        assert_eq!(
            table(json!({"dimensions": ["event:page"], "filters": goal_is(json!(["Purchase"]))})),
            None,
            "pages of custom events"
        );
        // The path property is kept for 404s, not for purchases.
        assert_eq!(
            table(json!({"dimensions": ["event:props:path"], "filters": goal_is(json!(["404"]))})),
            Some(CustomEvents)
        );
        assert_eq!(
            table(
                json!({"dimensions": ["event:props:path"], "filters": goal_is(json!(["Purchase"]))})
            ),
            None
        );
        assert_eq!(
            table(json!({"filters": [["is_not", "event:goal", ["Purchase"]]]})),
            None,
            "a negated goal filter"
        );
        assert_eq!(
            table(json!({"dimensions": ["event:goal", "time:day"]})),
            None,
            "goals by day"
        );
    }

    #[test]
    fn hours_and_days_before_any_import_are_skipped_with_their_reason() {
        let day = |text: &str| Some(text.parse::<NaiveDate>().unwrap());
        let by_hour = query_of(
            json!({"metrics": ["visitors"], "date_range": ["2024-01-01", "2024-01-02"], "dimensions": ["time:hour"]}),
        );
        assert_eq!(
            decide(&by_hour, day("2024-02-01")),
            Err(SkipReason::UnsupportedInterval)
        );
        assert_eq!(decide(&by_hour, None), Err(SkipReason::NoImportedData));
        let later =
            query_of(json!({"metrics": ["visitors"], "date_range": ["2024-03-01", "2024-03-02"]}));
        assert_eq!(
            decide(&later, day("2024-02-01")),
            Err(SkipReason::OutOfRange)
        );
        assert_eq!(
            decide(&later, day("2024-03-01")),
            Ok(ImportedTable::Visitors)
        );
    }
}
