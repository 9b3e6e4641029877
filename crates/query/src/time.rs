//! Calendar ranges and time buckets in a site's time zone.
//!
//! Presets resolve to UTC boundaries of local midnights. Buckets are computed in SQL by
//! shifting UTC timestamps by the zone's offset; when the offset changes inside the range
//! (daylight saving time), the shift is a `CASE` over the transitions, so no engine needs a
//! time-zone database of its own.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::dialect::SqlDialect;
use crate::model::{DateRange, TimeGrain};

const HOUR_MS: i64 = 3_600_000;

/// UTC milliseconds of local midnight starting `date` in `tz`.
pub(crate) fn local_midnight_ms(tz: Tz, date: NaiveDate) -> i64 {
    let midnight = date.and_hms_opt(0, 0, 0).expect("valid time");
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) => t.timestamp_millis(),
        // Midnight twice (clocks set back at 01:00): the day starts at the second one, as
        // Plausible resolves it.
        chrono::LocalResult::Ambiguous(_, later) => later.timestamp_millis(),
        // Midnight skipped by a DST jump: the day starts an hour later.
        chrono::LocalResult::None => tz
            .from_local_datetime(&(midnight + Duration::hours(1)))
            .earliest()
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|| midnight.and_utc().timestamp_millis()),
    }
}

/// Where local day `date` ends (exclusive): just after its first 23:59:59, as Plausible
/// resolves the end of a range; where clocks are set back over midnight that is the first
/// pass of the repeated hour.
fn local_day_end_ms(tz: Tz, date: NaiveDate) -> i64 {
    let last_second = date.and_hms_opt(23, 59, 59).expect("valid time");
    match tz.from_local_datetime(&last_second) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.timestamp_millis() + 1000
        }
        chrono::LocalResult::None => local_midnight_ms(tz, date + Duration::days(1)),
    }
}

fn days_range(tz: Tz, first: NaiveDate, last: NaiveDate) -> DateRange {
    DateRange {
        start_ms: local_midnight_ms(tz, first),
        end_ms: local_day_end_ms(tz, last),
    }
}

/// Resolves a preset (`day`, `24h`, `7d`, `28d`, `30d`, `91d`, `month`, `6mo`, `12mo`,
/// `year`, `all`) or two ISO dates (inclusive) into a UTC range, at `now_ms`. `all` starts
/// on the local day of `all_start_ms` (the site's first event).
pub fn resolve_range(
    preset: Option<&str>,
    dates: Option<(&str, &str)>,
    tz: Tz,
    now_ms: i64,
    all_start_ms: i64,
) -> Result<DateRange, String> {
    let now: DateTime<Tz> = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .ok_or("clock out of range")?
        .with_timezone(&tz);
    let today = now.date_naive();
    if let Some((from, to)) = dates {
        let parse = |text: &str| -> Result<DateRange, String> {
            if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                return Ok(days_range(tz, date, date));
            }
            DateTime::parse_from_rfc3339(text)
                .map(|t| DateRange {
                    start_ms: t.timestamp_millis(),
                    end_ms: t.timestamp_millis(),
                })
                .map_err(|_| format!("{text:?} is not an ISO 8601 date or date-time"))
        };
        let (from, to) = (parse(from)?, parse(to)?);
        // A date-time end is inclusive to the millisecond, a date to the end of its day.
        let end_ms = if to.end_ms == to.start_ms {
            to.end_ms + 1
        } else {
            to.end_ms
        };
        if end_ms <= from.start_ms {
            return Err("the range ends before it starts".into());
        }
        return Ok(DateRange {
            start_ms: from.start_ms,
            end_ms,
        });
    }
    let last_days = |n: i64| days_range(tz, today - Duration::days(n - 1), today);
    Ok(match preset.unwrap_or("30d") {
        "day" => days_range(tz, today, today),
        "24h" => DateRange {
            start_ms: now_ms - 24 * HOUR_MS,
            end_ms: now_ms + 1,
        },
        "7d" => last_days(7),
        "28d" => last_days(28),
        "30d" => last_days(30),
        "91d" => last_days(91),
        "month" => days_range(tz, today.with_day(1).expect("day 1"), today),
        "6mo" => days_range(tz, months_back(today, 5), today),
        "12mo" => days_range(tz, months_back(today, 11), today),
        "year" => days_range(
            tz,
            NaiveDate::from_ymd_opt(today.year(), 1, 1).expect("jan 1"),
            today,
        ),
        // From the start of the local day of the first event, as Plausible's
        // `stats_start_date`, through today.
        "all" => {
            let first_day = Utc
                .timestamp_millis_opt(all_start_ms.min(now_ms))
                .single()
                .map_or(today, |t| t.with_timezone(&tz).date_naive());
            DateRange {
                start_ms: local_midnight_ms(tz, first_day),
                end_ms: local_day_end_ms(tz, today),
            }
        }
        other => return Err(format!("unknown date range {other:?}")),
    })
}

/// The label of the `grain` bucket that local wall-clock time `local_ms` (written as UTC
/// milliseconds, as a dialect's `truncate` over [`local_time_sql`] returns it) falls in, as
/// [`bucket_labels`] writes it.
pub fn bucket_label(local_ms: i64, grain: TimeGrain) -> String {
    let at = Utc
        .timestamp_millis_opt(local_ms)
        .single()
        .unwrap_or_default()
        .naive_utc();
    let date = at.date();
    match grain {
        TimeGrain::Hour => at.format("%Y-%m-%d %H:00:00").to_string(),
        TimeGrain::Day => date.format("%Y-%m-%d").to_string(),
        TimeGrain::Week => (date - Duration::days(date.weekday().num_days_from_monday() as i64))
            .format("%Y-%m-%d")
            .to_string(),
        TimeGrain::Month => date
            .with_day(1)
            .expect("day 1")
            .format("%Y-%m-%d")
            .to_string(),
    }
}

/// Every time bucket's label in `range` for `grain`, in `tz`, in order, as the SQL
/// labels them (`YYYY-MM-DD HH:00:00` for hours, the first day otherwise; weeks start on
/// Monday, the first one no earlier than the range). Buckets without data are included: Plausible's `time_labels`.
pub fn bucket_labels(range: DateRange, tz: Tz, grain: TimeGrain) -> Vec<String> {
    let local = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .with_timezone(&tz)
            .naive_local()
    };
    let (first, last) = (local(range.start_ms), local(range.end_ms - 1));
    let mut labels = Vec::new();
    match grain {
        TimeGrain::Hour => {
            let mut at = first
                .date()
                .and_hms_opt(first.time().hour(), 0, 0)
                .expect("valid");
            while at <= last && labels.len() < 100_000 {
                labels.push(at.format("%Y-%m-%d %H:00:00").to_string());
                at += Duration::hours(1);
            }
        }
        TimeGrain::Day | TimeGrain::Week | TimeGrain::Month => {
            let start = |date: NaiveDate| match grain {
                TimeGrain::Week => {
                    date - Duration::days(date.weekday().num_days_from_monday() as i64)
                }
                TimeGrain::Month => date.with_day(1).expect("day 1"),
                _ => date,
            };
            let mut at = start(first.date());
            while at <= last.date() && labels.len() < 100_000 {
                labels.push(at.format("%Y-%m-%d").to_string());
                at = match grain {
                    TimeGrain::Week => at + Duration::days(7),
                    TimeGrain::Month => months_back(at, -1),
                    _ => at + Duration::days(1),
                };
            }
            // A week that began before the range is labelled by the range's first day, as
            // Plausible labels it.
            if let (TimeGrain::Week, Some(label)) = (grain, labels.first_mut()) {
                *label = first.date().format("%Y-%m-%d").to_string();
            }
        }
    }
    labels
}

/// The label of the `grain` bucket at local time `local_ms` within `range`: as
/// [`bucket_label`], except that a week that began before the range is labelled by the
/// range's first day, as [`bucket_labels`] labels it.
pub fn bucket_label_within(local_ms: i64, grain: TimeGrain, range: DateRange, tz: Tz) -> String {
    let label = bucket_label(local_ms, grain);
    if grain != TimeGrain::Week {
        return label;
    }
    let first = Utc
        .timestamp_millis_opt(range.start_ms)
        .single()
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    label.max(first)
}

/// How many buckets [`bucket_labels`] makes for `range`, `tz` and `grain`, counted without
/// making them (so a range far too wide is refused in constant time).
pub fn bucket_count(range: DateRange, tz: Tz, grain: TimeGrain) -> u64 {
    let local = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .with_timezone(&tz)
            .naive_local()
    };
    let (first, last) = (local(range.start_ms), local(range.end_ms - 1));
    if last < first {
        return 0;
    }
    let monday =
        |date: NaiveDate| date - Duration::days(date.weekday().num_days_from_monday() as i64);
    let month_index = |date: NaiveDate| i64::from(date.year()) * 12 + i64::from(date.month0());
    let count = match grain {
        TimeGrain::Hour => {
            let hour = |t: chrono::NaiveDateTime| {
                t.date().and_hms_opt(t.time().hour(), 0, 0).expect("valid")
            };
            (hour(last) - hour(first)).num_hours() + 1
        }
        TimeGrain::Day => (last.date() - first.date()).num_days() + 1,
        TimeGrain::Week => (monday(last.date()) - monday(first.date())).num_days() / 7 + 1,
        TimeGrain::Month => month_index(last.date()) - month_index(first.date()) + 1,
    };
    count.max(0) as u64
}

/// The period just before `range`, as long: what `previous_period` comparisons compare
/// with. Whole local days when the range is whole days, so a 7-day range compares with the
/// 7 days before it even across a DST change.
pub fn previous_period(range: DateRange, tz: Tz) -> DateRange {
    let local_date = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .with_timezone(&tz)
            .date_naive()
    };
    let first = local_date(range.start_ms);
    let last = local_date(range.end_ms - 1);
    let whole_days = local_midnight_ms(tz, first) == range.start_ms
        && local_day_end_ms(tz, last) == range.end_ms;
    if whole_days {
        let days = (last - first).num_days() + 1;
        days_range(tz, first - Duration::days(days), first - Duration::days(1))
    } else {
        let length = range.end_ms - range.start_ms;
        DateRange {
            start_ms: range.start_ms - length,
            end_ms: range.start_ms,
        }
    }
}

/// `range` a year earlier: what `year_over_year` comparisons compare with. Whole local days
/// stay whole days (29 February becomes the 28th).
pub fn year_before(range: DateRange, tz: Tz) -> DateRange {
    let local = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .with_timezone(&tz)
            .naive_local()
    };
    let year = chrono::Months::new(12);
    let (first, last) = (local(range.start_ms), local(range.end_ms - 1));
    let whole_days = local_midnight_ms(tz, first.date()) == range.start_ms
        && local_day_end_ms(tz, last.date()) == range.end_ms;
    if whole_days {
        let back = |day: NaiveDate| day.checked_sub_months(year).unwrap_or(day);
        days_range(tz, back(first.date()), back(last.date()))
    } else {
        let shift = |at: chrono::NaiveDateTime, ms: i64| {
            at.checked_sub_months(year)
                .map_or(ms, |earlier| ms - (at - earlier).num_milliseconds())
        };
        DateRange {
            start_ms: shift(first, range.start_ms),
            end_ms: shift(last, range.end_ms - 1) + 1,
        }
    }
}

/// The first day of the month `months` before `date`'s month.
fn months_back(date: NaiveDate, months: i32) -> NaiveDate {
    let index = date.year() * 12 + date.month0() as i32 - months;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
        .expect("valid month")
}

/// `tz`'s UTC offset at `utc_ms`, in seconds.
pub(crate) fn offset_at(tz: Tz, utc_ms: i64) -> i32 {
    use chrono::Offset;
    let utc = Utc
        .timestamp_millis_opt(utc_ms)
        .single()
        .unwrap_or_default();
    tz.offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The zone's UTC offsets over `range` (padded a day each side): the first offset and each
/// change as (UTC ms it takes effect, offset seconds).
///
/// Zones change offset on the hour or the half hour, so changes are found on a grid of
/// quarter hours: the scan probes every six hours (no zone changes its offset twice within
/// six hours) and bisects the grid where the offset differs, so a century costs about
/// 150,000 look-ups instead of 3.5 million.
pub(crate) fn offsets(tz: Tz, range: DateRange) -> Vec<(i64, i32)> {
    const QUARTER_MS: i64 = HOUR_MS / 4;
    const PROBE_MS: i64 = 6 * HOUR_MS;
    let offset_at = |ms: i64| offset_at(tz, ms);
    let start = range.start_ms - 24 * HOUR_MS;
    let end = range.end_ms + 24 * HOUR_MS;
    let mut current = offset_at(start);
    let mut changes = vec![(i64::MIN, current)];
    let first = start - start.rem_euclid(HOUR_MS);
    if end < first {
        return changes;
    }
    let last = first + (end - first).div_euclid(QUARTER_MS) * QUARTER_MS;
    // A grid point known to have the `current` offset (the one before `first` stands for
    // the range's start).
    let mut known = first - QUARTER_MS;
    while known < last {
        let probe = (known + PROBE_MS).min(last);
        if offset_at(probe) == current {
            known = probe;
            continue;
        }
        let (mut same, mut changed) = (known, probe);
        while changed - same > QUARTER_MS {
            let middle = same + (changed - same) / QUARTER_MS / 2 * QUARTER_MS;
            if offset_at(middle) == current {
                same = middle;
            } else {
                changed = middle;
            }
        }
        current = offset_at(changed);
        changes.push((changed, current));
        known = changed;
    }
    changes
}

/// Whether every UTC offset `tz` has over `range` (padded as [`offsets`] pads it) `fits`.
pub(crate) fn every_offset(tz: Tz, range: DateRange, fits: impl Fn(i32) -> bool) -> bool {
    offsets(tz, range).iter().all(|&(_, offset)| fits(offset))
}

/// `column` (a UTC TIMESTAMP) shifted to local time in `tz` for timestamps in `range`, in
/// `dialect`.
pub fn local_time_sql(column: &str, tz: Tz, range: DateRange, dialect: &dyn SqlDialect) -> String {
    let changes = offsets(tz, range);
    if changes.len() == 1 {
        let offset = changes[0].1;
        return if offset == 0 {
            column.to_owned()
        } else {
            format!(
                "({column} + {})",
                dialect.seconds_interval(&offset.to_string())
            )
        };
    }
    let mut case = String::from("CASE");
    for window in changes.windows(2) {
        let (until, offset) = (window[1].0, window[0].1);
        case.push_str(&format!(
            " WHEN {column} < {} THEN {offset}",
            dialect.timestamp_literal(until)
        ));
    }
    case.push_str(&format!(
        " ELSE {} END",
        changes.last().expect("non-empty").1
    ));
    format!("({column} + {})", dialect.seconds_interval(&case))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;

    /// The scan `offsets` replaces: every quarter hour.
    fn offsets_by_quarter_hour(tz: Tz, range: DateRange) -> Vec<(i64, i32)> {
        let start = range.start_ms - 24 * HOUR_MS;
        let end = range.end_ms + 24 * HOUR_MS;
        let mut changes = vec![(i64::MIN, offset_at(tz, start))];
        let mut at = start - start.rem_euclid(HOUR_MS);
        while at <= end {
            let offset = offset_at(tz, at);
            if offset != changes.last().unwrap().1 {
                changes.push((at, offset));
            }
            at += HOUR_MS / 4;
        }
        changes
    }

    #[test]
    fn offsets_equal_a_scan_of_every_quarter_hour() {
        let zones = [
            Tz::UTC,
            Tz::America__New_York,
            Tz::Europe__Berlin,
            Tz::Australia__Lord_Howe,
            Tz::Asia__Kolkata,
            Tz::America__St_Johns,
            Tz::Pacific__Apia,
        ];
        for tz in zones {
            for (from, to) in [
                ("2011-12-01", "2012-01-10"),
                ("2024-03-09", "2024-11-04"),
                ("1995-01-01", "2004-12-31"),
                ("2024-03-10", "2024-03-10"),
            ] {
                let range = resolve_range(None, Some((from, to)), tz, 0, 0).unwrap();
                assert_eq!(
                    offsets(tz, range),
                    offsets_by_quarter_hour(tz, range),
                    "{tz} {from}..{to}"
                );
            }
            let odd = DateRange {
                start_ms: 1_710_054_123_456,
                end_ms: 1_710_054_123_457,
            };
            assert_eq!(offsets(tz, odd), offsets_by_quarter_hour(tz, odd), "{tz}");
        }
    }

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn presets_follow_the_site_time_zone() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let now = ms("2024-03-15T03:00:00Z"); // 23:00 on the 14th in New York
        let day = resolve_range(Some("day"), None, tz, now, 0).unwrap();
        assert_eq!(day.start_ms, ms("2024-03-14T04:00:00Z"));
        assert_eq!(day.end_ms, ms("2024-03-15T04:00:00Z"));
        let week = resolve_range(Some("7d"), None, tz, now, 0).unwrap();
        // 2024-03-08 is before the DST change of 2024-03-10: UTC-5.
        assert_eq!(week.start_ms, ms("2024-03-08T05:00:00Z"));
        let month = resolve_range(Some("month"), None, tz, now, 0).unwrap();
        assert_eq!(month.start_ms, ms("2024-03-01T05:00:00Z"));
        let six = resolve_range(Some("6mo"), None, tz, now, 0).unwrap();
        assert_eq!(six.start_ms, ms("2023-10-01T04:00:00Z"));
    }

    #[test]
    fn custom_dates_are_inclusive() {
        let range = resolve_range(None, Some(("2024-01-01", "2024-01-02")), Tz::UTC, 0, 0).unwrap();
        assert_eq!(
            (range.start_ms, range.end_ms),
            (ms("2024-01-01T00:00:00Z"), ms("2024-01-03T00:00:00Z"))
        );
        assert!(resolve_range(None, Some(("2024-01-02", "2024-01-01")), Tz::UTC, 0, 0).is_err());
        assert!(resolve_range(None, Some(("yesterday", "2024-01-01")), Tz::UTC, 0, 0).is_err());
        assert!(resolve_range(Some("5y"), None, Tz::UTC, 0, 0).is_err());
    }

    #[test]
    fn local_time_has_a_case_per_dst_change() {
        let duckdb = Dialect::DuckDb.sql();
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let winter = DateRange {
            start_ms: ms("2024-01-01T00:00:00Z"),
            end_ms: ms("2024-01-31T00:00:00Z"),
        };
        assert_eq!(
            local_time_sql("ts", tz, winter, duckdb),
            "(ts + to_seconds(3600))"
        );
        let spring = DateRange {
            start_ms: ms("2024-03-20T00:00:00Z"),
            end_ms: ms("2024-04-10T00:00:00Z"),
        };
        assert_eq!(
            local_time_sql("ts", tz, spring, duckdb),
            "(ts + to_seconds(CASE WHEN ts < TIMESTAMP '2024-03-31 01:00:00' THEN 3600 ELSE 7200 END))"
        );
        assert_eq!(local_time_sql("ts", Tz::UTC, spring, duckdb), "ts");
    }

    #[test]
    fn a_year_before_keeps_whole_days_and_clamps_leap_days() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        let range = days_range(tz, day("2024-02-26"), day("2024-02-29"));
        assert_eq!(
            year_before(range, tz),
            days_range(tz, day("2023-02-26"), day("2023-02-28"))
        );
        let hours = DateRange {
            start_ms: range.start_ms + 3_600_000,
            end_ms: range.start_ms + 7_200_000,
        };
        let earlier = year_before(hours, tz);
        assert_eq!(earlier.end_ms - earlier.start_ms, 3_600_000);
        assert_eq!(
            earlier.start_ms,
            days_range(tz, day("2023-02-26"), day("2023-02-26")).start_ms + 3_600_000
        );
    }
}
