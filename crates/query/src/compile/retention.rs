//! The retention statement (`retention.rs` says what it means). Two scans of `events`:
//!
//! - `cohorts`: each person's entering time (their first event ever, or first
//!   `cohort_event`), kept when inside the range, with its local period;
//! - `returns`: each person's distinct local periods with an event (any, or
//!   `return_event`) from the range's start through the last cohort's period N;
//!
//! joined by person. Rows: `(cohort start, -1, people)` per cohort (its size) and
//! `(cohort start, k, people)` for k in 1..=N, the cohort start as local wall-clock time in
//! epoch milliseconds. Only those rows leave the engine.

use super::aggregate::event_filters_sql;
use super::{Builder, With};
use crate::dialect::{SqlDialect, SqlType};
use crate::model::DateRange;
use crate::retention::RetentionQuery;
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
    event_filters_sql(
        b,
        &query.site_id,
        query.timezone,
        DateRange {
            start_ms: 0,
            end_ms,
        },
        &query.filters,
    );
}

pub(crate) fn retention_sql(query: &RetentionQuery, dialect: &dyn SqlDialect) -> Sql {
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
        assert_eq!(sql.params.last(), Some(&SqlValue::Int(8)));
    }
}
