//! How wide a query may be. A request beyond a bound is refused by name before any work is
//! done (a 400 that names the parameter and the limit, never a cut-short answer): a date
//! range of more than `max_range_days`, or a time dimension that would make more than
//! `max_time_buckets` buckets over the range. With pagination's `MAX_LIMIT` rows these keep
//! the work and the answer of every accepted query bounded, whatever the client asks.

use chrono_tz::Tz;

use crate::error::QueryError;
use crate::model::{DateRange, Dimension, Query};
use crate::time::bucket_count;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// The bounds every query is checked against (configurable: `[query]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryBounds {
    /// The longest date range, in days.
    pub max_range_days: u32,
    /// The most buckets a time dimension may make over the range (and so the most points
    /// of a time series).
    pub max_time_buckets: u32,
}

impl Default for QueryBounds {
    /// 100 years of range; 10,000 buckets, so hourly over about 13 months, daily over 27
    /// years.
    fn default() -> Self {
        QueryBounds {
            max_range_days: 36_525,
            max_time_buckets: 10_000,
        }
    }
}

impl QueryBounds {
    /// Checks a parsed query's range and time buckets (its comparison period is as long as
    /// its range).
    pub fn check(&self, query: &Query) -> Result<(), QueryError> {
        self.check_range("date_range", query.range)?;
        for (index, dimension) in query.dimensions.iter().enumerate() {
            if let Dimension::Time(grain) = dimension {
                self.check_buckets(
                    &format!("dimensions[{index}]"),
                    &dimension.name(),
                    query.range,
                    query.timezone,
                    *grain,
                )?;
            }
        }
        Ok(())
    }

    /// Checks that `range` spans at most `max_range_days` (local days: a range of whole
    /// days passes whatever daylight saving time did to it); `field` is the parameter the
    /// client set it with.
    pub fn check_range(&self, field: &str, range: DateRange) -> Result<(), QueryError> {
        // Local days are 23 to 25 hours long where daylight saving time changes.
        let span_ms = range
            .end_ms
            .saturating_sub(range.start_ms)
            .saturating_sub(HOUR_MS)
            .max(0);
        let days = span_ms / DAY_MS + i64::from(span_ms % DAY_MS > 0);
        if days > i64::from(self.max_range_days) {
            return Err(QueryError::rule(
                field,
                format!(
                    "the range spans {days} days; at most {} days are allowed (setting query.max_range_days)",
                    self.max_range_days
                ),
            ));
        }
        Ok(())
    }

    /// Checks that `grain` makes at most `max_time_buckets` buckets over `range`; `field`
    /// and `what` name the parameter and the value the client sent.
    pub fn check_buckets(
        &self,
        field: &str,
        what: &str,
        range: DateRange,
        tz: Tz,
        grain: crate::model::TimeGrain,
    ) -> Result<(), QueryError> {
        let buckets = bucket_count(range, tz, grain);
        if buckets > u64::from(self.max_time_buckets) {
            return Err(QueryError::rule(
                field,
                format!(
                    "{what} makes {buckets} time buckets over this range; at most {} are allowed \
                     (setting query.max_time_buckets): choose a coarser interval or a shorter range",
                    self.max_time_buckets
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TimeGrain;
    use crate::time::{bucket_labels, resolve_range};

    fn range(from: &str, to: &str) -> DateRange {
        resolve_range(None, Some((from, to)), Tz::UTC, 0, 0).unwrap()
    }

    #[test]
    fn ranges_up_to_the_bound_pass_and_beyond_it_are_named() {
        let bounds = QueryBounds {
            max_range_days: 10,
            max_time_buckets: 100,
        };
        assert!(bounds
            .check_range("date_range", range("2024-01-01", "2024-01-10"))
            .is_ok());
        let err = bounds
            .check_range("startDate", range("2024-01-01", "2024-01-11"))
            .unwrap_err();
        assert_eq!(err.field, "startDate");
        assert!(err.message.contains("11 days"), "{}", err.message);
        assert!(err.message.contains("at most 10 days"), "{}", err.message);
        let widest = QueryBounds::default();
        let err = widest
            .check_range("date_range", range("0001-01-01", "9999-12-31"))
            .unwrap_err();
        assert!(err.message.contains("3652059 days"), "{}", err.message);
    }

    #[test]
    fn bucket_counts_equal_the_labels_they_stand_for() {
        for tz in [Tz::UTC, Tz::America__New_York, Tz::Asia__Kolkata] {
            for (from, to) in [
                ("2024-01-01", "2024-01-01"),
                ("2023-12-30", "2024-03-12"),
                ("2024-03-09", "2024-11-04"),
                ("2020-02-29", "2024-02-29"),
            ] {
                let range = resolve_range(None, Some((from, to)), tz, 0, 0).unwrap();
                for grain in [
                    TimeGrain::Hour,
                    TimeGrain::Day,
                    TimeGrain::Week,
                    TimeGrain::Month,
                ] {
                    assert_eq!(
                        bucket_count(range, tz, grain),
                        bucket_labels(range, tz, grain).len() as u64,
                        "{tz} {from}..{to} {grain:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn too_many_buckets_name_the_dimension() {
        let bounds = QueryBounds::default();
        let year = range("2024-01-01", "2024-12-31");
        assert!(bounds
            .check_buckets("interval", "hourly", year, Tz::UTC, TimeGrain::Hour)
            .is_ok());
        let two_years = range("2023-01-01", "2024-12-31");
        let err = bounds
            .check_buckets("interval", "hourly", two_years, Tz::UTC, TimeGrain::Hour)
            .unwrap_err();
        assert_eq!(err.field, "interval");
        assert!(
            err.message.starts_with("hourly makes 17544 time buckets"),
            "{}",
            err.message
        );
        assert!(bounds
            .check_buckets("interval", "daily", two_years, Tz::UTC, TimeGrain::Day)
            .is_ok());
    }
}
