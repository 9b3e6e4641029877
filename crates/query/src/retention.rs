//! Retention: people grouped into cohorts by when they arrived, and how many of each cohort
//! came back in each following period. The request (`POST /api/v2/retention`, seed 003's
//! `GET /api/v1/retention`) is parsed into a [`RetentionQuery`]; `product.rs` runs its one
//! statement (`compile/retention.rs`) and [`assemble`] makes the matrix of its rows.
//!
//! Semantics:
//! - A person is a visitor id, which for events with a client-given user id is derived from
//!   that id alone (ingest's `visitor::from_user_id`), so a person is followed across days
//!   and visits as `user_id`, else as the (daily rotating) anonymous visitor.
//! - A person enters at their first event ever (`cohort_event` absent: first seen), or at
//!   the first time ever they did `cohort_event`; only people who entered inside the date
//!   range are counted. Their cohort is the period (day, ISO week from Monday, month, in
//!   the site's time zone) they entered in; a cohort's first or last period may be cut by
//!   the range and then holds only the people who entered inside it.
//! - Period 0 is the cohort's own period and holds the whole cohort (100 %). A person
//!   returns in period `k` (1..=N) when they have an event (any, or `return_event`) whose
//!   local period is `k` periods after their cohort's, whatever happened in between (a
//!   person seen in period 3 and not in 1 counts in 3 only). Returns are read past the end
//!   of the range, through each cohort's period N.
//! - `filters` (v2's) pick the events both entering and returning are read from.
//! - A period that has not started yet (after today in the site's time zone) has no count
//!   (`null`), so an incomplete matrix is not read as people leaving.

use chrono::{Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use heartbeat_model::{Site, SiteId};
use serde::Serialize;
use serde_json::Value;

use crate::bounds::QueryBounds;
use crate::error::QueryError;
use crate::model::{DateRange, Filter, TimeGrain};
use crate::plausible::product::{timezone, Body};
use crate::sql::Row;
use crate::time::local_midnight_ms;

/// The most cohorts one answer holds (periods of the range).
pub const MAX_COHORTS: u64 = 400;

/// The fields `POST /api/v2/retention` takes.
const FIELDS: &[&str] = &[
    "site_id",
    "date_range",
    "period",
    "periods",
    "cohort_event",
    "return_event",
    "filters",
];

/// A parsed retention request.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionQuery {
    pub site_id: SiteId,
    pub timezone: Tz,
    /// People who entered in this range make the cohorts.
    pub range: DateRange,
    /// Day, week or month.
    pub period: TimeGrain,
    /// Periods after the cohort's own: 1 to [`max_periods`].
    pub periods: u32,
    /// Enter at the first time of this event; `None`: at the first event (first seen).
    pub cohort_event: Option<String>,
    /// Return by this event; `None`: by any event.
    pub return_event: Option<String>,
    pub filters: Vec<Filter>,
    /// Today in the site's time zone: later periods have not started.
    pub today: NaiveDate,
}

/// The most periods after the cohort's own that a request may ask for: 90 days, 52 weeks
/// or 24 months.
pub fn max_periods(period: TimeGrain) -> u32 {
    match period {
        TimeGrain::Day | TimeGrain::Hour => 90,
        TimeGrain::Week => 52,
        TimeGrain::Month => 24,
    }
}

/// The name of `period` in requests and answers.
pub fn period_name(period: TimeGrain) -> &'static str {
    match period {
        TimeGrain::Hour => "hour",
        TimeGrain::Day => "day",
        TimeGrain::Week => "week",
        TimeGrain::Month => "month",
    }
}

/// Parses a `POST /api/v2/retention` body for `site` at `now_ms`, naming every bad field.
/// `first_event_ms` is where the `all` range starts.
pub fn parse_retention(
    body: &Value,
    site: &Site,
    now_ms: i64,
    first_event_ms: i64,
    bounds: &QueryBounds,
) -> Result<RetentionQuery, Vec<QueryError>> {
    let tz = timezone(site);
    let mut fields = Body::new(body, FIELDS);
    let range = fields.date_range(tz, now_ms, first_event_ms, bounds);
    let period = match fields.get("period") {
        None => Some(TimeGrain::Day),
        Some(value) => match value.as_str() {
            Some("day") => Some(TimeGrain::Day),
            Some("week") => Some(TimeGrain::Week),
            Some("month") => Some(TimeGrain::Month),
            _ => {
                fields.error(
                    "period",
                    format!("must be \"day\", \"week\" or \"month\", got {value}"),
                );
                None
            }
        },
    };
    let periods = fields.whole(
        "periods",
        1,
        max_periods(period.unwrap_or(TimeGrain::Day)),
        7,
    );
    let cohort_event = fields.text("cohort_event");
    let return_event = fields.text("return_event");
    let filters = fields.filters();
    if let (Some(range), Some(period)) = (range, period) {
        let cohorts = cohort_starts(range, tz, period).len() as u64;
        if cohorts > MAX_COHORTS {
            fields.push(QueryError::rule(
                "date_range",
                format!(
                    "the range makes {cohorts} cohorts of a {}; at most {MAX_COHORTS} are allowed: \
                     choose a longer period or a shorter range",
                    period_name(period)
                ),
            ));
        }
    }
    let today = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive();
    fields.finish(|| {
        Some(RetentionQuery {
            site_id: site.id.clone(),
            timezone: tz,
            range: range?,
            period: period?,
            periods: periods?,
            cohort_event,
            return_event,
            filters,
            today,
        })
    })
}

/// The first day of the `period` that `date` falls in (weeks start on Monday).
pub(crate) fn period_start(date: NaiveDate, period: TimeGrain) -> NaiveDate {
    match period {
        TimeGrain::Week => date
            .checked_sub_signed(Duration::days(i64::from(
                date.weekday().num_days_from_monday(),
            )))
            .unwrap_or(date),
        TimeGrain::Month => date.with_day(1).unwrap_or(date),
        TimeGrain::Day | TimeGrain::Hour => date,
    }
}

/// The start of the period `n` periods after the one starting on `start` (the last date
/// there is, past the calendar's end).
pub(crate) fn periods_after(start: NaiveDate, period: TimeGrain, n: u32) -> NaiveDate {
    match period {
        TimeGrain::Week => start.checked_add_signed(Duration::weeks(i64::from(n))),
        TimeGrain::Month => start.checked_add_months(Months::new(n)),
        TimeGrain::Day | TimeGrain::Hour => start.checked_add_signed(Duration::days(i64::from(n))),
    }
    .unwrap_or(NaiveDate::MAX)
}

fn local_date(ms: i64, tz: Tz) -> NaiveDate {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive()
}

/// The first day of every cohort of `range`, in order.
pub(crate) fn cohort_starts(range: DateRange, tz: Tz, period: TimeGrain) -> Vec<NaiveDate> {
    let first = period_start(local_date(range.start_ms, tz), period);
    let last = local_date(range.end_ms - 1, tz);
    let mut starts = Vec::new();
    let mut at = first;
    while at <= last && starts.len() as u64 <= MAX_COHORTS {
        starts.push(at);
        let next = periods_after(at, period, 1);
        if next == at {
            break;
        }
        at = next;
    }
    starts
}

impl RetentionQuery {
    /// Where reading returns ends (UTC, exclusive): the end of the last cohort's period N.
    pub(crate) fn read_end_ms(&self) -> i64 {
        let last = cohort_starts(self.range, self.timezone, self.period)
            .last()
            .copied()
            .unwrap_or_else(|| local_date(self.range.start_ms, self.timezone));
        // Within the years every time zone's arithmetic handles.
        let latest = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap_or(NaiveDate::MAX);
        let end = periods_after(last, self.period, self.periods + 1).min(latest);
        local_midnight_ms(self.timezone, end).max(self.range.end_ms)
    }
}

/// One cohort's row of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cohort {
    /// The first day of the cohort's period, `YYYY-MM-DD`, in the site's time zone.
    pub cohort: String,
    /// People who entered in it.
    pub size: u64,
    /// People returning in period 0 (the whole cohort) to N; `null` for a period that has
    /// not started.
    pub returning: Vec<Option<u64>>,
    /// The same as % of the cohort's size (two decimals; 0 for an empty cohort).
    pub percentages: Vec<Option<f64>>,
}

/// The retention matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionAnswer {
    pub period: &'static str,
    pub periods: u32,
    pub cohort_event: Option<String>,
    pub return_event: Option<String>,
    pub cohorts: Vec<Cohort>,
}

/// The matrix of `query` from its statement's rows (`compile/retention.rs`): each
/// cohort's size and its returning people per period.
pub(crate) fn assemble(query: &RetentionQuery, rows: Vec<Row>) -> RetentionAnswer {
    let starts = cohort_starts(query.range, query.timezone, query.period);
    let width = query.periods as usize + 1;
    let mut sizes = vec![0u64; starts.len()];
    let mut returning = vec![vec![0u64; width]; starts.len()];
    for row in rows {
        let local_ms = row[0].as_f64() as i64;
        let date = Utc
            .timestamp_millis_opt(local_ms)
            .single()
            .unwrap_or_default()
            .date_naive();
        let Ok(index) = starts.binary_search(&date) else {
            continue;
        };
        let (period, persons) = (row[1].as_f64() as i64, row[2].as_f64() as u64);
        match period {
            -1 => sizes[index] = persons,
            1.. if (period as usize) < width => returning[index][period as usize] = persons,
            _ => {}
        }
    }
    let cohorts = starts
        .iter()
        .zip(sizes)
        .zip(returning)
        .map(|((start, size), mut counts)| {
            counts[0] = size;
            let cells: Vec<Option<u64>> = counts
                .into_iter()
                .enumerate()
                .map(|(k, count)| {
                    (periods_after(*start, query.period, k as u32) <= query.today).then_some(count)
                })
                .collect();
            let percentages = cells
                .iter()
                .map(|cell| {
                    cell.map(|count| {
                        if size == 0 {
                            0.0
                        } else {
                            (count as f64 * 10_000.0 / size as f64).round() / 100.0
                        }
                    })
                })
                .collect();
            Cohort {
                cohort: start.format("%Y-%m-%d").to_string(),
                size,
                returning: cells,
                percentages,
            }
        })
        .collect();
    RetentionAnswer {
        period: period_name(query.period),
        periods: query.periods,
        cohort_event: query.cohort_event.clone(),
        return_event: query.return_event.clone(),
        cohorts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn site(tz: &str) -> Site {
        crate::test_site(tz)
    }

    /// 2024-06-15T12:00:00Z.
    const NOW: i64 = 1_718_452_800_000;

    fn parse(body: Value) -> Result<RetentionQuery, Vec<QueryError>> {
        parse_retention(&body, &site("UTC"), NOW, 0, &QueryBounds::default())
    }

    fn fields(body: Value) -> Vec<String> {
        parse(body)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_full_request_is_read() {
        let q = parse(
            json!({"site_id": "example.com", "date_range": ["2024-01-01", "2024-01-31"],
            "period": "week", "periods": 8, "cohort_event": "signup", "return_event": "login",
            "filters": [["is", "visit:country", ["DE"]]]}),
        )
        .unwrap();
        assert_eq!(q.period, TimeGrain::Week);
        assert_eq!(q.periods, 8);
        assert_eq!(q.cohort_event.as_deref(), Some("signup"));
        assert_eq!(q.return_event.as_deref(), Some("login"));
        assert_eq!(q.filters.len(), 1);
        assert_eq!(q.range.start_ms, 1_704_067_200_000);
        // 2024-01-01 is a Monday: five weeks start in January.
        assert_eq!(cohort_starts(q.range, q.timezone, q.period).len(), 5);
    }

    #[test]
    fn defaults_are_daily_for_a_week() {
        let q = parse(json!({"site_id": "example.com"})).unwrap();
        assert_eq!(
            (q.period, q.periods, q.cohort_event),
            (TimeGrain::Day, 7, None)
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(
            fields(
                json!({"site_id": "x", "period": "year", "periods": 0, "date_range": ["2024-02-01", "2024-01-01"], "cohort_event": 3, "colour": "red"})
            ),
            ["colour", "date_range", "period", "periods", "cohort_event"]
        );
        assert_eq!(fields(json!({"periods": 91})), ["periods"]);
        assert!(parse(json!({"periods": 90})).is_ok());
        assert_eq!(
            fields(json!({"period": "week", "periods": 53})),
            ["periods"]
        );
        assert_eq!(
            fields(json!({"period": "month", "periods": 25})),
            ["periods"]
        );
        assert_eq!(fields(json!({"periods": "7"})), ["periods"]);
        assert_eq!(
            fields(json!({"filters": [["is", "visit:nope", ["x"]]]})),
            ["filters[0]"]
        );
        assert_eq!(fields(json!([1])), ["body"]);
    }

    #[test]
    fn ranges_beyond_the_bounds_and_too_many_cohorts_are_refused() {
        let bounds = QueryBounds {
            max_range_days: 30,
            max_time_buckets: 100,
        };
        let err = parse_retention(
            &json!({"date_range": ["2024-01-01", "2024-03-01"]}),
            &site("UTC"),
            NOW,
            0,
            &bounds,
        )
        .unwrap_err();
        assert_eq!(err[0].field, "date_range");
        assert!(err[0].message.contains("at most 30 days"), "{:?}", err);
        assert_eq!(
            fields(json!({"date_range": ["2020-01-01", "2024-01-01"], "period": "day"})),
            ["date_range"]
        );
        assert!(
            parse(json!({"date_range": ["2020-01-01", "2024-01-01"], "period": "week"})).is_ok()
        );
    }

    #[test]
    fn periods_follow_the_calendar() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            period_start(d("2024-03-13"), TimeGrain::Week),
            d("2024-03-11")
        );
        assert_eq!(
            period_start(d("2024-03-13"), TimeGrain::Month),
            d("2024-03-01")
        );
        assert_eq!(
            periods_after(d("2024-01-31"), TimeGrain::Day, 1),
            d("2024-02-01")
        );
        assert_eq!(
            periods_after(d("2024-11-01"), TimeGrain::Month, 3),
            d("2025-02-01")
        );
    }

    #[test]
    fn reading_ends_after_the_last_cohorts_last_period_in_local_time() {
        // Berlin, March 2024: the clocks go forward on the 31st.
        let q = parse_retention(
            &json!({"date_range": ["2024-03-25", "2024-03-28"], "periods": 3}),
            &site("Europe/Berlin"),
            NOW,
            0,
            &QueryBounds::default(),
        )
        .unwrap();
        // The last cohort is the 28th; its period 3 is the 31st, which ends at local
        // midnight of April 1st, 22:00 UTC (summer time).
        assert_eq!(q.read_end_ms(), 1_711_922_400_000);
    }
}
