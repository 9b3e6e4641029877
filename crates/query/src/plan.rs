//! The plan of a query (Plausible's "table decider"): what answers it and where each
//! metric's numbers come from, decided from the typed query alone, before any SQL is written.
//!
//! A query over whole hours is answered from the rollup cells when the store keeps them
//! (`rollup.rs` reads them) and it is unfiltered, or filtered by one condition on a visit
//! attribute (the cells of the values it keeps); any other by statements over the `events` and
//! `sessions` tables, which the SQL builders in `compile/` write as [`Reads`] says. The
//! engine assembles rows by the plan either way.

use heartbeat_rollup::{ENTRY_PAGE, EXIT_PAGE, HOSTNAME, HOUR_MS, NAME, PAGE, TOTAL};

use crate::model::{Condition, Dimension, Filter, Metric, Query, Revenue};
use crate::time::every_offset;

/// What answers one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub source: Source,
    /// Whether visitors, page views and events come from `sessions` (a visit-only
    /// dimension) rather than `events`.
    pub counts_from_sessions: bool,
    /// Whether visits come from `events` (an event dimension: visits that include it).
    pub visits_from_events: bool,
}

/// Where a query's numbers are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The rollup cells of this dimension key, added up per result row: only those whose
    /// value passes `values` when there is one (a filter on a visit attribute, whose cells
    /// count each event and visit under its one value, so the values a filter keeps add up
    /// to what the filter keeps).
    Rollups {
        key: String,
        values: Option<Condition>,
    },
    /// Statements over the `events` and `sessions` tables.
    Tables(Reads),
}

/// Which statements over the tables a query needs, and which of their costly aggregates
/// they compute: the others are written as `0`, so the columns keep their places and an
/// unused `count(DISTINCT ..)` costs nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    /// Over `events`: visitors, page views, events, and visits when broken down by an event
    /// dimension.
    pub events: bool,
    /// Over `sessions`: visits, bounces, durations (and visitors, page views and events for
    /// a visit-only dimension).
    pub sessions: bool,
    /// Over `events`: seconds from each page view to the next one.
    pub time_on_page: bool,
    /// Over `events`: page views by page, for the exit rate.
    pub page_views: bool,
    /// Over `events`: each visit's deepest scroll, from its engagement events.
    pub scroll_depth: bool,
    /// Distinct visitors over `events`.
    pub event_visitors: bool,
    /// Distinct visits over `events`.
    pub event_visits: bool,
    /// Distinct visitors over `sessions` (which collapses each visit first).
    pub session_visitors: bool,
    /// Revenue summed and counted over `events`, in the currency the query decided.
    pub revenue: bool,
}

/// The plan of `query` on a store that keeps rollups (`has_rollups`) or not.
pub fn plan(query: &Query, has_rollups: bool) -> Plan {
    let counts_from_sessions = query.dimensions.iter().any(Dimension::is_visit_only);
    let visits_from_events = query.dimensions.iter().any(Dimension::is_event_only);
    let source = match rollup_key(query) {
        Some((key, values)) if has_rollups => Source::Rollups { key, values },
        _ => Source::Tables(reads(query, counts_from_sessions, visits_from_events)),
    };
    Plan {
        source,
        counts_from_sessions,
        visits_from_events,
    }
}

fn reads(query: &Query, visit_only_dim: bool, event_dim: bool) -> Reads {
    let wants = |m: Metric| query.metrics.contains(&m);
    let visitors = wants(Metric::Visitors)
        || wants(Metric::Percentage)
        || wants(Metric::ConversionRate)
        || wants(Metric::GroupConversionRate);
    let revenue = matches!(query.revenue, Revenue::Single(_) | Revenue::PerGoal)
        && query.metrics.iter().any(|m| m.is_revenue());
    Reads {
        // Scroll depth reads the events too, for the rows it is reported on (as Plausible
        // joins it onto them).
        events: !visit_only_dim
            && (visitors
                || wants(Metric::ScrollDepth)
                || wants(Metric::Pageviews)
                || wants(Metric::Events)
                || query.metrics.iter().any(|m| m.is_revenue())
                || (event_dim && wants(Metric::Visits))),
        sessions: visit_only_dim
            || query.metrics.iter().any(|m| m.is_visit_metric())
            || (!event_dim && wants(Metric::Visits)),
        time_on_page: wants(Metric::TimeOnPage),
        page_views: wants(Metric::ExitRate),
        scroll_depth: wants(Metric::ScrollDepth),
        event_visitors: visitors && !visit_only_dim,
        event_visits: event_dim && wants(Metric::Visits),
        session_visitors: visitors && visit_only_dim,
        revenue,
    }
}

/// The rollup key of a query dimension. Its cells hold what the SQL compiler's statements
/// would give for it: event sums where events know the dimension, visit sums where visits
/// do (a page's visit sums are those of visits entering on it), zeros elsewhere.
fn key_of(dimension: Option<&Dimension>) -> Option<String> {
    Some(match dimension {
        None | Some(Dimension::Time(_)) => TOTAL.into(),
        Some(Dimension::Page) => PAGE.into(),
        Some(Dimension::Name) => NAME.into(),
        Some(Dimension::Hostname) => HOSTNAME.into(),
        // The rollups name visit attributes as Plausible does (a test below checks).
        Some(d @ Dimension::Visit(_)) => d.name(),
        Some(Dimension::EntryPage) => ENTRY_PAGE.into(),
        Some(Dimension::ExitPage) => EXIT_PAGE.into(),
        Some(Dimension::Prop(_) | Dimension::Goal) => return None,
    })
}

/// The rollup key whose cells answer `query` exactly as the SQL compiler's statements
/// would (visitors up to the sketch's precision), and the condition its cells' values must
/// pass, if any: at most one dimension (not a custom property or a goal), metrics the cells
/// hold, a range of whole UTC hours in a time zone with whole-hour offsets, and no filter
/// but one condition on a visit attribute when the query is by nothing, by time or by that
/// attribute.
fn rollup_key(query: &Query) -> Option<(String, Option<Condition>)> {
    if query.dimensions.len() > 1 {
        return None;
    }
    let dimension = query.dimensions.first();
    let values = match query.filters.as_slice() {
        [] => None,
        [Filter::Condition(condition)]
            if matches!(condition.dimension, Dimension::Visit(_))
                && dimension.is_none_or(|d| {
                    matches!(d, Dimension::Time(_)) || *d == condition.dimension
                }) =>
        {
            Some(condition.clone())
        }
        _ => return None,
    };
    let key = match &values {
        Some(condition) => key_of(Some(&condition.dimension))?,
        None => key_of(dimension)?,
    };
    let metrics_fit = query.metrics.iter().all(|metric| match metric {
        // Page-level measures no cell holds (an exit page's exit rate is over its page
        // views as an `event:page`).
        Metric::TimeOnPage | Metric::ScrollDepth | Metric::ExitRate => false,
        // They need a goal, which no cell knows.
        Metric::ConversionRate
        | Metric::GroupConversionRate
        | Metric::TotalRevenue
        | Metric::AverageRevenue => false,
        // Visits of an event dimension are the distinct visits that include it.
        Metric::Visits => !dimension.is_some_and(Dimension::is_event_only),
        // Entry- and exit-page cells count the visitors of visits' current states.
        _ => true,
    });
    let fits = metrics_fit
        && query.range.start_ms % HOUR_MS == 0
        && query.range.end_ms % HOUR_MS == 0
        && every_offset(query.timezone, query.range, |offset| offset % 3600 == 0);
    fits.then_some((key, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VisitColumn;
    use crate::plausible::parse_query;
    use serde_json::json;

    fn check(body: serde_json::Value, timezone: &str, has_rollups: bool) -> Plan {
        let site = crate::test_site(timezone);
        let query = parse_query(&body, &site, &[], 1_700_000_000_000, 0, &Default::default());
        plan(&query.unwrap(), has_rollups)
    }

    fn rollups(key: &str) -> Source {
        Source::Rollups {
            key: key.into(),
            values: None,
        }
    }

    #[test]
    fn one_condition_on_a_visit_attribute_reads_the_cells_of_the_values_it_keeps() {
        let utc = json!(["2024-01-01T00:00:00Z", "2024-01-31T23:59:59.999Z"]);
        let from_google = json!([["is", "visit:source", ["Google"]]]);
        let query = |dimensions: serde_json::Value, filters: &serde_json::Value| {
            json!({"metrics": ["visitors", "visits", "bounce_rate"], "date_range": utc,
                "dimensions": dimensions, "filters": filters})
        };
        for dimensions in [json!([]), json!(["time:day"]), json!(["visit:source"])] {
            let Source::Rollups { key, values } =
                check(query(dimensions.clone(), &from_google), "UTC", true).source
            else {
                panic!("{dimensions}: not from the rollups");
            };
            assert_eq!(key, "visit:source", "{dimensions}");
            let values = values.expect("the filter's values");
            assert_eq!(values.dimension.name(), "visit:source");
            assert_eq!(values.values, ["Google"]);
        }
        // By another dimension, by two filters, on an event dimension or a visit-only one:
        // no cell holds it.
        let countries = query(json!(["visit:country"]), &from_google);
        let two = json!([
            ["is", "visit:source", ["Google"]],
            ["is", "visit:country", ["EE"]]
        ]);
        let page = json!([["is", "event:page", ["/"]]]);
        let entry = json!([["is", "visit:entry_page", ["/"]]]);
        for body in [
            countries,
            query(json!([]), &two),
            query(json!([]), &page),
            query(json!([]), &entry),
        ] {
            assert!(
                matches!(check(body.clone(), "UTC", true).source, Source::Tables(_)),
                "{body}"
            );
        }
    }

    #[test]
    fn rollups_answer_unfiltered_queries_over_whole_hours() {
        let utc = json!(["2024-01-01T00:00:00Z", "2024-01-31T23:59:59.999Z"]);
        let visitors = json!(["visitors", "pageviews", "bounce_rate"]);
        let by_source =
            json!({"metrics": visitors, "date_range": utc, "dimensions": ["visit:source"]});
        assert_eq!(
            check(by_source.clone(), "UTC", true).source,
            rollups("visit:source")
        );
        let top = json!({"metrics": visitors, "date_range": utc});
        assert_eq!(check(top, "UTC", true).source, rollups(""));
        // Not without rollups, nor filtered, nor over a custom property.
        assert!(matches!(
            check(by_source, "UTC", false).source,
            Source::Tables(_)
        ));
        let filtered = json!({"metrics": visitors, "date_range": utc, "filters": [["is", "event:page", ["/"]]]});
        assert!(matches!(
            check(filtered, "UTC", true).source,
            Source::Tables(_)
        ));
        let props =
            json!({"metrics": ["visitors"], "date_range": utc, "dimensions": ["event:props:plan"]});
        assert!(matches!(
            check(props, "UTC", true).source,
            Source::Tables(_)
        ));
        // Local days in UTC+5:30 start on the half hour; in UTC+1 on the hour.
        let local_days = json!({"metrics": visitors, "date_range": ["2024-01-01", "2024-01-31"]});
        let kolkata = check(local_days.clone(), "Asia/Kolkata", true);
        assert!(matches!(kolkata.source, Source::Tables(_)));
        assert_eq!(check(local_days, "Europe/Berlin", true).source, rollups(""));
    }

    #[test]
    fn every_visit_dimension_has_rollup_cells_under_its_name() {
        let dimensions: Vec<String> = VisitColumn::ALL
            .iter()
            .map(|(column, _, _)| Dimension::Visit(*column).name())
            .collect();
        let keys: Vec<&str> = heartbeat_rollup::VISIT_KEYS
            .iter()
            .map(|(key, _)| *key)
            .collect();
        assert_eq!(dimensions, keys);
        for dimension in [
            Dimension::Page,
            Dimension::Name,
            Dimension::Hostname,
            Dimension::EntryPage,
            Dimension::ExitPage,
        ] {
            assert_eq!(key_of(Some(&dimension)), Some(dimension.name()));
        }
    }

    #[test]
    fn entry_pages_come_from_their_cells_or_from_visits_only() {
        let utc = json!(["2024-01-01T00:00:00Z", "2024-01-31T23:59:59.999Z"]);
        let entry_pages = json!({"metrics": ["visitors", "visits", "percentage"],
            "date_range": utc, "dimensions": ["visit:entry_page"]});
        let plan = check(entry_pages.clone(), "UTC", true);
        assert!(plan.counts_from_sessions);
        assert_eq!(plan.source, rollups(ENTRY_PAGE));
        let mut filtered = entry_pages;
        filtered["filters"] = json!([["is", "visit:source", ["Google"]]]);
        let plan = check(filtered, "UTC", true);
        let Source::Tables(reads) = plan.source else {
            panic!("a filtered query reads the tables: {plan:?}");
        };
        assert!(!reads.events && reads.sessions && reads.session_visitors);
    }
}
