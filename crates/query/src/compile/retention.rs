//! The retention statement (`retention.rs` says what it means).
//!
//! Where the engine has compact sets of small numbers ([`SqlDialect::position_sets`],
//! DuckDB), one scan of `events` grouped by person once:
//!
//! - `people`: each person's first event ever (or first `cohort_event`) and the set of the
//!   local periods, numbered from the first cohort's, they had an event (any, or
//!   `return_event`) in, from the range's start through the last cohort's period N;
//! - `entries`: the people who entered inside the range, with their cohort's number;
//! - `alike`: the entries counted by (cohort, set): people alike in both are read once;
//! - `cohorts`: per cohort its size and, for k in 1..=N, the people whose set holds their
//!   cohort's number + k.
//!
//! Elsewhere (ClickHouse), and where a filter's SQL depends on how far a scan reads (a
//! filter through visits or a behavioural one), two scans of `events` joined by person:
//!
//! - `cohorts`: each person's entering time (their first event ever, or first
//!   `cohort_event`), kept when inside the range, with its local period;
//! - `returns`: each person's distinct local periods with an event (any, or
//!   `return_event`) from the range's start through the last cohort's period N.
//!
//! Both answer the same rows: `(cohort start, -1, people)` per cohort (its size) and
//! `(cohort start, k, people)` for k in 1..=N, the cohort start as local wall-clock time in
//! epoch milliseconds. Only those rows leave the engine. Grouping the events by person is
//! the cost: two scans paid it twice plus a join, about 1.5x the time of one at 10 M events
//! (docs/benchmarks.md, 2026-12-07).

use super::aggregate::event_filters_sql;
use super::{Builder, With};
use crate::dialect::{SqlDialect, SqlType};
use crate::model::DateRange;
use crate::retention::{cohort_starts, RetentionQuery};
use crate::sql::{Sql, SqlValue};
use crate::time::local_time_sql;

/// The events a scan reads: the site's, before `end_ms`, not engagement events, of `name`
/// when given, that pass the filters.
fn activity_where(b: &mut Builder, query: &RetentionQuery, name: Option<&str>, end_ms: i64) {
    b.push("site_id = ");
    b.bind(SqlValue::Text(query.site_id.0.clone()));
    b.push(" AND ts < ");
    b.bind(SqlValue::TimestampMs(end_ms));
    b.push(" AND name <> 'engagement'");
    if let Some(name) = name {
        b.push(" AND name = ");
        b.bind(SqlValue::Text(name.to_owned()));
    }
    let filters = filters_until(query, b.dialect(), end_ms);
    b.append(filters);
}

pub(crate) fn retention_sql(query: &RetentionQuery, dialect: &dyn SqlDialect) -> Sql {
    one_scan_sql(query, dialect).unwrap_or_else(|| two_scans_sql(query, dialect))
}

/// The query's filters on an `events` row (` AND ...` each) for a scan that reads up to
/// `end_ms`.
fn filters_until<'d>(
    query: &RetentionQuery,
    dialect: &'d dyn SqlDialect,
    end_ms: i64,
) -> Builder<'d> {
    let mut b = Builder::new(dialect);
    event_filters_sql(
        &mut b,
        &query.site_id,
        query.timezone,
        DateRange {
            start_ms: 0,
            end_ms,
        },
        &query.filters,
    );
    b
}

/// The one-scan statement (module docs); `None` where the dialect has no position sets or
/// the filters read differently up to the range's end and up to the returns' end.
fn one_scan_sql(query: &RetentionQuery, dialect: &dyn SqlDialect) -> Option<Sql> {
    let sets = dialect.position_sets()?;
    let read_end_ms = query.read_end_ms();
    let filters = filters_until(query, dialect, read_end_ms);
    if !filters.same_as(&filters_until(query, dialect, query.range.end_ms)) {
        return None;
    }
    let starts = cohort_starts(query.range, query.timezone, query.period);
    let first_ms = starts
        .first()?
        .and_hms_opt(0, 0, 0)?
        .and_utc()
        .timestamp_millis();
    // Every period a return can fall in: the cohorts' and N after the last.
    let positions = u32::try_from(starts.len())
        .ok()?
        .checked_add(query.periods)?;
    let local_range = DateRange {
        start_ms: query.range.start_ms,
        end_ms: read_end_ms,
    };
    let local = |column: &str| local_time_sql(column, query.timezone, local_range, dialect);
    // The local period of `column` numbered from the first cohort's (0).
    let number = |column: &str| {
        dialect.periods_between(
            query.period,
            &dialect.timestamp_literal(first_ms),
            &local(column),
        )
    };

    // The events read, each with whether it may enter a person and whether it counts as a
    // return (from the range's start on: earlier ones return to no cohort of the range).
    let mut events = Builder::new(dialect);
    events.push("SELECT visitor_id, ts, ");
    if let Some(name) = &query.cohort_event {
        events.push("name = ");
        events.bind(SqlValue::Text(name.clone()));
        events.push(" AS enters, ");
    }
    events.push("ts >= ");
    events.bind(SqlValue::TimestampMs(query.range.start_ms));
    if let Some(name) = &query.return_event {
        events.push(" AND name = ");
        events.bind(SqlValue::Text(name.clone()));
    }
    events.push(" AS comes_back FROM events WHERE site_id = ");
    events.bind(SqlValue::Text(query.site_id.0.clone()));
    events.push(" AND ts < ");
    events.bind(SqlValue::TimestampMs(read_end_ms));
    events.push(" AND name <> 'engagement'");
    if let (Some(cohort), Some(back)) = (&query.cohort_event, &query.return_event) {
        events.push(" AND name IN (");
        events.bind(SqlValue::Text(cohort.clone()));
        events.push(", ");
        events.bind(SqlValue::Text(back.clone()));
        events.push(")");
    }
    events.append(filters);

    let mut people = Builder::new(dialect);
    let entered = match query.cohort_event {
        Some(_) => "CASE WHEN enters THEN ts END",
        None => "ts",
    };
    people.push(&format!(
        "SELECT min({entered}) AS entered, {} AS returned FROM (",
        sets.collect(&number("ts"), positions, "comes_back")
    ));
    people.append(events);
    people.push(") AS e GROUP BY visitor_id");

    let mut entries = Builder::new(dialect);
    entries.push(&format!(
        "SELECT {} AS c, entered, returned FROM people WHERE entered >= ",
        number("entered")
    ));
    entries.bind(SqlValue::TimestampMs(query.range.start_ms));
    entries.push(" AND entered < ");
    entries.bind(SqlValue::TimestampMs(query.range.end_ms));

    // People who entered in the same period and came back in the same ones, counted once
    // as a group: the sets are read per group below, not per person (a few thousand groups
    // for millions of people; at 10 M events a tenth of the statement's time).
    let mut alike = Builder::new(dialect);
    alike.push(
        "SELECT c, returned, min(entered) AS first, count(*) AS n FROM entries \
         GROUP BY c, returned",
    );

    let mut cohorts = Builder::new(dialect);
    cohorts.push(&format!(
        "SELECT min(first) AS first, {} AS size",
        dialect.cast("sum(n)", SqlType::BigInt)
    ));
    for k in 1..=query.periods {
        cohorts.push(&format!(
            ", {} AS r{k}",
            dialect.cast(
                &format!(
                    "sum({} * n)",
                    sets.holds("returned", &format!("c + {k}"), positions)
                ),
                SqlType::BigInt
            )
        ));
    }
    cohorts.push(" FROM alike GROUP BY c");

    let mut with = With::new(dialect);
    with.define("people", people, false);
    with.define("entries", entries, false);
    with.define("alike", alike, false);
    with.define("cohorts", cohorts, true);
    let cohort_ms = dialect.epoch_millis(&dialect.truncate(query.period, &local("first")));
    let mut b = Builder::new(dialect);
    with.start(&mut b);
    for k in 0..=query.periods {
        if k > 0 {
            b.push(" UNION ALL ");
        }
        let (period, people) = match k {
            0 => ("-1".to_owned(), "size".to_owned()),
            k => (k.to_string(), format!("r{k}")),
        };
        b.push(&format!(
            "SELECT {cohort_ms} AS cohort_ms, {} AS period, {} AS people FROM ",
            dialect.union_int(&period),
            dialect.union_int(&people)
        ));
        with.table(&mut b, "cohorts");
    }
    Some(b.finish())
}

/// The two-scan statement (module docs).
fn two_scans_sql(query: &RetentionQuery, dialect: &dyn SqlDialect) -> Sql {
    let read_end_ms = query.read_end_ms();
    // Local times are exact over the cohorts' range and their returns.
    let local_range = DateRange {
        start_ms: query.range.start_ms,
        end_ms: read_end_ms,
    };
    let local = |column: &str| {
        dialect.truncate(
            query.period,
            &local_time_sql(column, query.timezone, local_range, dialect),
        )
    };
    let mut cohorts = Builder::new(dialect);
    cohorts.push(&format!(
        "SELECT person, {} AS cohort FROM \
         (SELECT visitor_id AS person, min(ts) AS entered FROM events WHERE ",
        dialect.cast(&local("entered"), SqlType::Timestamp)
    ));
    activity_where(
        &mut cohorts,
        query,
        query.cohort_event.as_deref(),
        query.range.end_ms,
    );
    cohorts.push(" GROUP BY visitor_id) AS entries WHERE entered >= ");
    cohorts.bind(SqlValue::TimestampMs(query.range.start_ms));
    let mut returns = Builder::new(dialect);
    returns.push(&format!(
        "SELECT DISTINCT visitor_id AS person, {} AS bucket \
         FROM events WHERE ",
        dialect.cast(&local("ts"), SqlType::Timestamp)
    ));
    activity_where(
        &mut returns,
        query,
        query.return_event.as_deref(),
        read_end_ms,
    );
    returns.push(" AND ts >= ");
    returns.bind(SqlValue::TimestampMs(query.range.start_ms));
    let mut with = With::new(dialect);
    with.define("cohorts", cohorts, false);
    with.define("returns", returns, false);
    let cohort = dialect.joined_column("cohorts", "cohort");
    let period = dialect.periods_between(
        query.period,
        &cohort,
        &dialect.joined_column("returns", "bucket"),
    );
    let cohort_ms = dialect.epoch_millis(&cohort);
    let mut b = Builder::new(dialect);
    with.start(&mut b);
    b.push(&format!(
        "SELECT {cohort_ms} AS cohort_ms, {} AS period, count(*) AS people FROM ",
        dialect.union_int("-1")
    ));
    with.table(&mut b, "cohorts");
    b.push(&format!(
        " GROUP BY {cohort} UNION ALL SELECT {cohort_ms} AS cohort_ms, {} AS period, \
         count(*) AS people FROM ",
        dialect.union_int(&period)
    ));
    with.table(&mut b, "cohorts");
    b.push(" JOIN ");
    with.table(&mut b, "returns");
    b.push(&format!(
        " {} WHERE {period} BETWEEN 1 AND ",
        dialect.join_on_equal("cohorts", "returns", "person")
    ));
    b.bind(SqlValue::Int(i64::from(query.periods)));
    b.push(&format!(" GROUP BY {cohort}, {period}"));
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;
    use crate::model::{Condition, Dimension, Filter, Operator, TimeGrain, VisitColumn};
    use chrono::NaiveDate;
    use heartbeat_model::SiteId;

    fn query() -> RetentionQuery {
        RetentionQuery {
            site_id: SiteId::from("example.com"),
            timezone: chrono_tz::Tz::Europe__Berlin,
            range: DateRange {
                start_ms: 1_704_063_600_000,
                end_ms: 1_706_742_000_000,
            },
            period: TimeGrain::Week,
            periods: 8,
            cohort_event: Some("signup'); DROP TABLE events; --".into()),
            return_event: None,
            filters: vec![Filter::Condition(Condition {
                operator: Operator::Is,
                dimension: Dimension::Visit(VisitColumn::Country),
                values: vec!["DE".into()],
                case_sensitive: true,
            })],
            today: NaiveDate::from_ymd_opt(2024, 6, 1).unwrap(),
        }
    }

    #[test]
    fn values_are_bound_and_periods_are_whole_weeks() {
        let sql = retention_sql(&query(), Dialect::DuckDb.sql());
        assert!(!sql.text.contains("DROP"), "{}", sql.text);
        assert!(sql.text.contains("// 7"), "{}", sql.text);
        assert!(sql.text.contains("country IN (?)"), "{}", sql.text);
        assert!(sql
            .params
            .contains(&SqlValue::Text("signup'); DROP TABLE events; --".into())));
        // One scan: each of the 8 periods read from the set of the person's periods.
        assert!(sql.text.contains("bit_or("), "{}", sql.text);
        assert!(sql.text.contains(" AS r8"), "{}", sql.text);
        assert!(!sql.text.contains(" AS r9"), "{}", sql.text);
        // ClickHouse joins two scans.
        let sql = retention_sql(&query(), Dialect::ClickHouse.sql());
        assert!(!sql.text.contains("DROP"), "{}", sql.text);
        assert_eq!(sql.params.last(), Some(&SqlValue::Int(8)));
    }

    #[test]
    fn filters_through_visits_take_the_two_scans() {
        let mut q = query();
        // A filter on a visit attribute events do not carry reads the visits of the scan's
        // range, which differs between entering and returning.
        q.filters = vec![Filter::Condition(Condition {
            operator: Operator::Is,
            dimension: Dimension::EntryPage,
            values: vec!["/".into()],
            case_sensitive: true,
        })];
        let sql = retention_sql(&q, Dialect::DuckDb.sql());
        assert!(!sql.text.contains("bit_or("), "{}", sql.text);
        assert_eq!(sql.params.last(), Some(&SqlValue::Int(8)));
    }
}
