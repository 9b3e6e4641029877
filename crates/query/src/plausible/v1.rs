//! Plausible's Stats API v1 (`GET /api/v1/stats/aggregate`, `/timeseries`, `/breakdown`),
//! which integrations still call (the WordPress plugin, Grafana data sources, scripts): its
//! query-string parameters become a v2 request for the one engine, and the v2 answer is
//! written back in v1's shapes.
//!
//! As Plausible's: `period` (`day`, `7d`, `28d`, `30d`, `90d`, `month`, `6mo`, `12mo`,
//! `year`, `all`, `custom` with `date=FROM,TO`; default `30d`) ends on `date` (default today;
//! the `Nd` periods end the day before it); `filters` is `key==value;key!=a|b`, with `*` and
//! `**` as wildcards; `compare=previous_period`.

use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{json, Map, Value};

use crate::error::QueryError;

/// Which v1 endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Kind {
    Aggregate,
    Timeseries,
    Breakdown,
}

/// A v1 request's parameters, as sent.
#[derive(Debug, Default, Clone)]
pub struct V1Request {
    pub site_id: String,
    pub period: Option<String>,
    pub date: Option<String>,
    pub metrics: Option<String>,
    pub filters: Option<String>,
    pub property: Option<String>,
    pub interval: Option<String>,
    pub compare: Option<String>,
    pub limit: Option<String>,
    pub page: Option<String>,
    /// `true` adds the site's imported statistics where they answer the query.
    pub with_imported: Option<String>,
}

fn bad(field: &str, message: impl Into<String>) -> QueryError {
    QueryError::rule(field, message)
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

const CUSTOM_DATES: &str = "Invalid format for `date` parameter. When using a custom period, \
    please include two ISO-8601 formatted dates joined by a comma. See \
    https://plausible.io/docs/stats-api#time-periods";

fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).expect("day 1")
}

fn month_end(date: NaiveDate) -> NaiveDate {
    let next = if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    };
    next.expect("a month follows") - Duration::days(1)
}

fn months_before(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_sub_months(chrono::Months::new(months))
        .unwrap_or(date)
}

/// The v2 `date_range` of a v1 `period` and `date`, and the default interval.
fn date_range(r: &V1Request, today: NaiveDate) -> Result<(Value, &'static str), QueryError> {
    let period = r.period.as_deref().unwrap_or("30d");
    if period == "custom" {
        let dates = r.date.as_deref().ok_or_else(|| {
            bad(
                "date",
                "The `date` parameter is required when using a custom period. See \
                 https://plausible.io/docs/stats-api#time-periods",
            )
        })?;
        let (from, to) = dates
            .split_once(',')
            .and_then(|(from, to)| Some((parse_date(from)?, parse_date(to)?)))
            .ok_or_else(|| bad("date", CUSTOM_DATES))?;
        return Ok((json!([from.to_string(), to.to_string()]), "date"));
    }
    if period == "all" {
        return Ok((json!("all"), "month"));
    }
    let date = match r.date.as_deref() {
        None | Some("today") => today,
        Some(text) => parse_date(text).ok_or_else(|| {
            bad(
                "date",
                "Error parsing `date` parameter: invalid_format. Please specify a valid date in \
                 ISO-8601 format.",
            )
        })?,
    };
    let (first, last, interval) = match period {
        "day" => (date, date, "hour"),
        "7d" | "28d" | "30d" | "90d" => {
            let days: i64 = period.trim_end_matches('d').parse().expect("a number");
            let last = date - Duration::days(1);
            (last - Duration::days(days - 1), last, "date")
        }
        "month" => (month_start(date), month_end(date), "date"),
        "6mo" => (
            months_before(month_start(date), 5),
            month_end(date),
            "month",
        ),
        "12mo" => (
            months_before(month_start(date), 11),
            month_end(date),
            "month",
        ),
        "year" => (
            NaiveDate::from_ymd_opt(date.year(), 1, 1).expect("jan 1"),
            NaiveDate::from_ymd_opt(date.year(), 12, 31).expect("dec 31"),
            "month",
        ),
        other => {
            return Err(bad(
                "period",
                format!(
                    "Error parsing `period` parameter: invalid period `{other}`. Please find \
                     accepted values in our docs: https://plausible.io/docs/stats-api#time-periods"
                ),
            ))
        }
    };
    Ok((json!([first.to_string(), last.to_string()]), interval))
}

/// A wildcard value as Plausible's `page_regex`: `*` and `**` match anything, `|`
/// separates alternatives.
fn wildcard_regex(value: &str) -> String {
    let escaped = regex::escape(value)
        .replace("\\|", "|")
        .replace("\\*\\*", ".*")
        .replace("\\*", ".*");
    format!("^{escaped}$")
}

/// v1's `filters` (`visit:browser==Chrome|Firefox;event:page!=/blog**`) as v2 filters.
fn filters(text: &str) -> Result<Vec<Value>, QueryError> {
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let negated = part.contains("!=");
        let Some((key, value)) = part.split_once(if negated { "!=" } else { "==" }) else {
            return Err(bad(
                "filters",
                format!(
                    "Invalid filter `{part}`: filters are key==value or key!=value, joined by ;"
                ),
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        let list = split_unescaped_pipes(value);
        // A goal is named, never matched: `Visit /blog**` is the page goal of that pattern.
        let filter = if value.contains('*') && key != "event:goal" {
            json!([
                if negated { "matches_not" } else { "matches" },
                key,
                [wildcard_regex(value)]
            ])
        } else {
            json!([if negated { "is_not" } else { "is" }, key, list])
        };
        out.push(filter);
    }
    Ok(out)
}

/// `a|b` as `[a, b]`; `\|` is a literal pipe.
fn split_unescaped_pipes(value: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                items.last_mut().expect("one item").push('|');
                chars.next();
            }
            '|' => items.push(String::new()),
            c => items.last_mut().expect("one item").push(c),
        }
    }
    items
}

/// v1's `filters` given as JSON (v2-style filters, as newer clients send them), with v1's
/// `matches_wildcard` and `matches_wildcard_not` as regular expressions.
fn json_filters(text: &str) -> Result<Vec<Value>, QueryError> {
    let parsed: Vec<Value> = serde_json::from_str(text)
        .map_err(|_| bad("filters", format!("Invalid filters: not JSON: {text}")))?;
    Ok(parsed
        .into_iter()
        .map(|mut filter| {
            let op = filter[0].as_str().unwrap_or("").to_owned();
            let negated = match op.as_str() {
                "matches_wildcard" => Some(false),
                "matches_wildcard_not" => Some(true),
                _ => None,
            };
            if let Some(negated) = negated {
                let patterns: Vec<Value> = filter[2]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| json!(wildcard_regex(v.as_str().unwrap_or(""))))
                    .collect();
                filter[0] = json!(if negated { "matches_not" } else { "matches" });
                filter[2] = Value::Array(patterns);
            }
            filter
        })
        .collect())
}

/// The keys of top-level filters.
fn filter_keys(filters: &[Value]) -> Vec<String> {
    filters
        .iter()
        .filter_map(|f| f.get(1).and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// What v1 refuses before any query, in v1's words.
fn validate(kind: V1Kind, r: &V1Request, filters: &[Value]) -> Result<(), QueryError> {
    use super::request::parse_dimension;
    use crate::model::{Dimension, Metric};
    let metrics = v1_metrics(r);
    for (i, name) in metrics.iter().enumerate() {
        // Scroll depth came after v1, which does not know it.
        if Metric::from_name(name).is_none_or(|m| m == Metric::ScrollDepth) {
            return Err(bad(
                "metrics",
                format!(
                    "The metric `{name}` is not recognized. Find valid metrics from the \
                     documentation: https://plausible.io/docs/stats-api#metrics"
                ),
            ));
        }
        if metrics[..i].contains(name) {
            return Err(bad("metrics", "Metrics cannot be queried multiple times."));
        }
    }
    let keys = filter_keys(filters);
    let property = r.property.as_deref().unwrap_or("");
    let goal_read = keys.iter().any(|k| k == "event:goal")
        || (kind == V1Kind::Breakdown && property == "event:goal");
    if metrics.iter().any(|m| m == "conversion_rate") && !goal_read {
        return Err(bad(
            "metrics",
            "Metric `conversion_rate` can only be queried in a goal breakdown or with a goal filter",
        ));
    }
    for key in &keys {
        if key != "event:goal" && parse_dimension(key).is_none() {
            return Err(bad(
                "filters",
                format!(
                    "Invalid filter property '{key}'. Please provide a valid filter property: \
                     https://plausible.io/docs/stats-api#properties"
                ),
            ));
        }
    }
    if kind == V1Kind::Breakdown && !property.is_empty() {
        match parse_dimension(property) {
            None | Some(Dimension::Time(_)) => {
                return Err(bad(
                    "property",
                    format!(
                        "Invalid property '{property}'. Please provide a valid property for the \
                         breakdown endpoint: https://plausible.io/docs/stats-api#properties"
                    ),
                ))
            }
            Some(Dimension::Hostname) => {
                return Err(bad(
                    "property",
                    "Property 'event:hostname' is currently not supported for breakdowns.",
                ))
            }
            _ => {}
        }
    }
    let session = |m: &&String| Metric::from_name(m).is_some_and(|m| m.is_visit_metric());
    if let Some(metric) = metrics.iter().find(session) {
        if kind == V1Kind::Breakdown
            && (property == "event:name" || property.starts_with("event:props:"))
        {
            return Err(bad(
                "metrics",
                format!(
                    "Session metric `{metric}` cannot be queried for breakdown by `{property}`."
                ),
            ));
        }
        if let Some(key) = keys
            .iter()
            .find(|k| *k == "event:name" || *k == "event:goal" || k.starts_with("event:props:"))
        {
            return Err(bad(
                "metrics",
                format!(
                    "Session metric `{metric}` cannot be queried when using a filter on `{key}`."
                ),
            ));
        }
    }
    if metrics.iter().any(|m| m == "time_on_page") {
        if kind == V1Kind::Breakdown && property != "event:page" {
            return Err(bad(
                "metrics",
                "Metric `time_on_page` is not supported in breakdown queries (except `event:page` breakdown)",
            ));
        }
        if let Some(key) = keys
            .iter()
            .find(|k| *k == "event:name" || *k == "event:goal")
        {
            return Err(bad(
                "metrics",
                format!("Metric `time_on_page` cannot be queried when filtering by `{key}`"),
            ));
        }
        if kind == V1Kind::Aggregate && !keys.iter().any(|k| k == "event:page") {
            return Err(bad(
                "metrics",
                "Metric `time_on_page` can only be queried in a page breakdown or with a page filter.",
            ));
        }
    }
    Ok(())
}

/// The metrics a v1 request asks for (default `visitors`).
fn v1_metrics(r: &V1Request) -> Vec<String> {
    r.metrics
        .as_deref()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or("visitors")
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect()
}

/// The v2 request body for v1 request `r` of `kind`, `today` being the site's local date.
pub fn v1_to_v2(kind: V1Kind, r: &V1Request, today: NaiveDate) -> Result<Value, QueryError> {
    let (range, default_interval) = date_range(r, today)?;
    let text = r.filters.as_deref().unwrap_or("").trim();
    let filters = if text.starts_with('[') {
        json_filters(text)?
    } else {
        filters(text)?
    };
    validate(kind, r, &filters)?;
    // v1's conversion rate of a row is over the row's own visitors (v2's
    // `group_conversion_rate`), except in the aggregate and by goal or custom property, where
    // it is over all visitors.
    let property = r.property.as_deref().unwrap_or("");
    let by_goal = kind == V1Kind::Breakdown
        && (property == "event:goal" || property.starts_with("event:props:"));
    let metrics: Vec<String> = v1_metrics(r)
        .into_iter()
        .map(|m| match m.as_str() {
            "conversion_rate" if kind != V1Kind::Aggregate && !by_goal => {
                "group_conversion_rate".to_owned()
            }
            _ => m,
        })
        .collect();
    let mut body = json!({
        "site_id": r.site_id,
        "metrics": metrics,
        "date_range": range,
        "filters": filters,
        "include": {},
    });
    match kind {
        V1Kind::Aggregate => {}
        V1Kind::Timeseries => {
            let interval = match r.interval.as_deref().unwrap_or(default_interval) {
                "hour" => "time:hour",
                "date" | "day" => "time:day",
                "week" => "time:week",
                "month" => "time:month",
                other => {
                    return Err(bad(
                        "interval",
                        format!(
                            "Error parsing `interval` parameter: invalid interval `{other}`. \
                             Valid intervals are `day`, `month`"
                        ),
                    ))
                }
            };
            body["dimensions"] = json!([interval]);
            body["include"]["time_labels"] = json!(true);
        }
        V1Kind::Breakdown => {
            let property = r
                .property
                .as_deref()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    bad(
                        "property",
                        "The `property` parameter is required. Please provide at least one \
                     property to show a breakdown by.",
                    )
                })?;
            let number = |text: Option<&str>, default: usize, max: usize| match text {
                None => Some(default),
                Some(t) => t.parse::<usize>().ok().filter(|n| (1..=max).contains(n)),
            };
            let limit = number(r.limit.as_deref(), 100, 1000).ok_or_else(|| {
                bad(
                    "limit",
                    "Please provide limit as a number between 1 and 1000.",
                )
            })?;
            let page = number(r.page.as_deref(), 1, usize::MAX)
                .ok_or_else(|| bad("page", "Please provide page as a number from 1."))?;
            // A version is broken down with what it is a version of, as v1 answers it.
            body["dimensions"] = match property {
                "visit:os_version" => json!(["visit:os", property]),
                "visit:browser_version" => json!(["visit:browser", property]),
                _ => json!([property]),
            };
            // v1 leaves visits without the UTM tag out of a UTM breakdown.
            if property.starts_with("visit:utm_") {
                body["filters"].as_array_mut().expect("a list").push(json!([
                    "is_not",
                    property,
                    ["(not set)"]
                ]));
            }
            body["pagination"] = json!({"limit": limit, "offset": (page - 1) * limit});
        }
    }
    if r.compare.as_deref() == Some("previous_period") && kind == V1Kind::Aggregate {
        body["include"]["comparisons"] = json!({"mode": "previous_period"});
    }
    if r.with_imported.as_deref() == Some("true") {
        body["include"]["imports"] = json!(true);
    }
    Ok(body)
}

/// The name a v1 breakdown gives a property's column: `visit:source` -> `source`,
/// `event:props:author` -> `author`.
fn column_name(property: &str) -> &str {
    property
        .strip_prefix("event:props:")
        .unwrap_or_else(|| property.rsplit(':').next().unwrap_or(property))
}

/// v1's body from the v2 answer `v2` (as [`crate::QueryResult::to_json`] writes it).
pub fn v1_answer(kind: V1Kind, r: &V1Request, v2: &Value) -> Value {
    let mut answer = v1_results(kind, r, v2);
    // Why imported statistics were left out, when asked for and a user can act on it.
    if let Some(warning) = v2["meta"].get("imports_warning") {
        answer["warning"] = warning.clone();
    }
    answer
}

fn v1_results(kind: V1Kind, r: &V1Request, v2: &Value) -> Value {
    let metrics = v1_metrics(r);
    let rows = v2["results"].as_array().cloned().unwrap_or_default();
    let named = |row: &Value| -> Map<String, Value> {
        metrics
            .iter()
            .zip(row["metrics"].as_array().into_iter().flatten())
            .map(|(m, v)| (m.clone(), v.clone()))
            .collect()
    };
    match kind {
        V1Kind::Aggregate => {
            let row = rows.first().cloned().unwrap_or(Value::Null);
            let results: Map<String, Value> = metrics
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let mut value = json!({"value": row["metrics"][i]});
                    if let Some(comparison) = row.get("comparison") {
                        value["comparison_value"] = comparison["metrics"][i].clone();
                        value["change"] = comparison["change"][i].clone();
                    }
                    (m.clone(), value)
                })
                .collect();
            json!({"results": results})
        }
        V1Kind::Timeseries => {
            // Every bucket, empty ones as zeros, as v1 answers.
            let by_label: std::collections::HashMap<String, &Value> = rows
                .iter()
                .map(|row| (row["dimensions"][0].as_str().unwrap_or("").to_owned(), row))
                .collect();
            let labels = v2["meta"]["time_labels"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let results: Vec<Value> = labels
                .iter()
                .map(|label| {
                    let label = label.as_str().unwrap_or("");
                    let mut entry = match by_label.get(label) {
                        Some(row) => named(row),
                        // An empty bucket: zeros, and no visit duration (no visits).
                        None => metrics
                            .iter()
                            .map(|m| {
                                let value = if m == "visit_duration" {
                                    Value::Null
                                } else {
                                    json!(0)
                                };
                                (m.clone(), value)
                            })
                            .collect(),
                    };
                    entry.insert("date".into(), json!(label));
                    Value::Object(entry)
                })
                .collect();
            json!({"results": results})
        }
        V1Kind::Breakdown => {
            let property = r.property.as_deref().unwrap_or("");
            let results: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let mut entry = Map::new();
                    for (dimension, value) in v2["query"]["dimensions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .zip(row["dimensions"].as_array().into_iter().flatten())
                    {
                        let name = dimension.as_str().unwrap_or(property);
                        entry.insert(column_name(name).to_owned(), value.clone());
                    }
                    entry.extend(named(row));
                    // A breakdown's conversion rates to one decimal, as v1 rounds them.
                    if let Some(rate) = entry.get_mut("conversion_rate") {
                        if let Some(number) = rate.as_f64() {
                            *rate = json!((number * 10.0).round() / 10.0);
                        }
                    }
                    Value::Object(entry)
                })
                .collect();
            json!({"results": results})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(period: &str, date: Option<&str>) -> V1Request {
        V1Request {
            site_id: "example.com".into(),
            period: Some(period.into()),
            date: date.map(str::to_owned),
            ..V1Request::default()
        }
    }

    #[test]
    fn periods_end_as_plausibles_do() {
        let today = NaiveDate::from_ymd_opt(2021, 3, 15).unwrap();
        let range =
            |period: &str, date: Option<&str>| date_range(&request(period, date), today).unwrap().0;
        assert_eq!(range("day", None), json!(["2021-03-15", "2021-03-15"]));
        // The last N days end the day before `date`.
        assert_eq!(
            range("7d", Some("2021-01-08")),
            json!(["2021-01-01", "2021-01-07"])
        );
        assert_eq!(
            range("month", Some("2021-02-10")),
            json!(["2021-02-01", "2021-02-28"])
        );
        assert_eq!(
            range("6mo", Some("2021-06-10")),
            json!(["2021-01-01", "2021-06-30"])
        );
        assert_eq!(
            range("12mo", Some("2021-12-31")),
            json!(["2021-01-01", "2021-12-31"])
        );
        assert_eq!(
            range("custom", Some("2021-01-01,2021-01-31")),
            json!(["2021-01-01", "2021-01-31"])
        );
        assert!(date_range(&request("forever", None), today).is_err());
    }

    #[test]
    fn filters_read_lists_negations_and_wildcards() {
        assert_eq!(
            filters("visit:browser==Chrome|Firefox;event:page!=/blog**;event:props:a==x\\|y")
                .unwrap(),
            vec![
                json!(["is", "visit:browser", ["Chrome", "Firefox"]]),
                json!(["matches_not", "event:page", ["^/blog.*$"]]),
                json!(["is", "event:props:a", ["x|y"]]),
            ]
        );
        assert!(filters("visit:browser").is_err());
    }

    #[test]
    fn breakdown_columns_are_named_as_v1_names_them() {
        assert_eq!(column_name("visit:source"), "source");
        assert_eq!(column_name("event:props:author"), "author");
        assert_eq!(column_name("event:page"), "page");
    }
}
