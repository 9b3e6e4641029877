//! The request: parses a Plausible Stats API v2 body into a [`Query`], naming the bad part of
//! an invalid one (`metrics[1]`, `filters[0][1]`, ...).

use chrono_tz::Tz;
use heartbeat_model::{Goal, Site, SiteId};
use serde_json::Value;

use crate::bounds::QueryBounds;
use crate::compile::goal::goal_matches;
use crate::error::QueryError;
use crate::model::{
    Condition, Dimension, Filter, Metric, Operator, Order, Query, Revenue, TimeGrain, VisitColumn,
};
use crate::time::resolve_range;

/// The most rows one response holds.
pub const MAX_LIMIT: usize = 10_000;

fn err(field: impl Into<String>, message: impl Into<String>) -> QueryError {
    QueryError::at(field, message)
}

fn rule(field: impl Into<String>, message: impl Into<String>) -> QueryError {
    QueryError::rule(field, message)
}

/// A JSON value as Plausible's errors quote it: `["is", "badproperty", ["bar"]]`.
fn quoted(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(quoted).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), quoted(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

/// The `site_id` a request names, to look up and authorize before parsing the rest.
pub fn requested_site(body: &Value) -> Result<SiteId, QueryError> {
    match body.get("site_id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(SiteId(id.clone())),
        Some(_) => Err(err("site_id", "site_id must be a string")),
        None => Err(err("site_id", "site_id is required")),
    }
}

pub fn parse_dimension(name: &str) -> Option<Dimension> {
    Some(match name {
        "event:page" => Dimension::Page,
        "event:name" => Dimension::Name,
        "event:hostname" => Dimension::Hostname,
        "event:goal" => Dimension::Goal,
        "visit:entry_page" => Dimension::EntryPage,
        "visit:exit_page" => Dimension::ExitPage,
        "time:hour" => Dimension::Time(TimeGrain::Hour),
        "time:day" | "time" => Dimension::Time(TimeGrain::Day),
        "time:week" => Dimension::Time(TimeGrain::Week),
        "time:month" => Dimension::Time(TimeGrain::Month),
        other if other.starts_with("event:props:") => {
            let key = &other["event:props:".len()..];
            // The same limit as property keys at ingest.
            if key.is_empty() || key.chars().count() > 300 {
                return None;
            }
            Dimension::Prop(key.to_owned())
        }
        other => {
            let (col, _, _) = VisitColumn::ALL.iter().find(|(_, n, _)| *n == other)?;
            Dimension::Visit(*col)
        }
    })
}

fn strings(value: &Value, field: &str) -> Result<Vec<String>, QueryError> {
    let Value::Array(items) = value else {
        return Err(err(field, "must be a list of strings"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if s.chars().count() <= 2000 => Ok(s.clone()),
            Value::String(_) => Err(err(format!("{field}[{i}]"), "at most 2000 characters")),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(err(format!("{field}[{i}]"), "must be a string")),
        })
        .collect()
}

/// Whether `filter` holds a `has_done` or `has_not_done`.
fn has_behavioral(filter: &Filter) -> bool {
    match filter {
        Filter::HasDone(..) => true,
        Filter::Condition(_) => false,
        Filter::And(all) | Filter::Or(all) => all.iter().any(has_behavioral),
        Filter::Not(inner) => has_behavioral(inner),
    }
}

pub(crate) fn parse_filter(value: &Value, field: &str, depth: usize) -> Result<Filter, QueryError> {
    if depth > 8 {
        return Err(err(field, "filters nest at most 8 levels"));
    }
    let Some(items) = value.as_array().filter(|items| !items.is_empty()) else {
        return Err(err(
            field,
            "a filter is a list like [\"is\", \"event:page\", [\"/\"]]",
        ));
    };
    let op = items[0]
        .as_str()
        .ok_or_else(|| err(format!("{field}[0]"), "must be an operator"))?;
    match op {
        "and" | "or" => {
            let list = items
                .get(1)
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| {
                    err(
                        format!("{field}[1]"),
                        format!("{op} takes a non-empty list of filters"),
                    )
                })?;
            let inner = list
                .iter()
                .enumerate()
                .map(|(i, f)| parse_filter(f, &format!("{field}[1][{i}]"), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "and" {
                Filter::And(inner)
            } else {
                Filter::Or(inner)
            })
        }
        "not" => {
            let inner = items
                .get(1)
                .ok_or_else(|| err(format!("{field}[1]"), "not takes a filter"))?;
            Ok(Filter::Not(Box::new(parse_filter(
                inner,
                &format!("{field}[1]"),
                depth + 1,
            )?)))
        }
        "has_done" | "has_not_done" => {
            let inner = items
                .get(1)
                .ok_or_else(|| err(format!("{field}[1]"), format!("{op} takes a filter")))?;
            let inner = parse_filter(inner, &format!("{field}[1]"), depth + 1)?;
            if inner.dimensions().iter().any(|d| !d.is_event_only()) {
                return Err(rule(
                    field,
                    "Invalid filters. Behavioral filters (has_done, has_not_done) can only be \
                     used with event dimension filters.",
                ));
            }
            if has_behavioral(&inner) {
                return Err(err(
                    format!("{field}[1]"),
                    format!("{op} cannot hold another has_done or has_not_done"),
                ));
            }
            Ok(Filter::HasDone(op == "has_done", Box::new(inner)))
        }
        op if Operator::from_name(op).is_some() => {
            let operator = Operator::from_name(op).expect("checked above");
            let name = items.get(1).and_then(Value::as_str).unwrap_or("");
            let dimension = parse_dimension(name)
                .filter(|d| !matches!(d, Dimension::Time(_)))
                .ok_or_else(|| err(field, format!("Invalid filter {}", quoted(value))))?;
            let values = strings(items.get(2).unwrap_or(&Value::Null), &format!("{field}[2]"))?;
            if values.is_empty() {
                return Err(err(format!("{field}[2]"), "needs at least one value"));
            }
            let case_sensitive = match items.get(3) {
                None | Some(Value::Null) => true,
                Some(Value::Object(modifiers)) => {
                    if let Some(key) = modifiers.keys().find(|k| *k != "case_sensitive") {
                        return Err(err(
                            format!("{field}[3].{key}"),
                            "unknown modifier (only case_sensitive)",
                        ));
                    }
                    match modifiers.get("case_sensitive") {
                        None => true,
                        Some(Value::Bool(b)) => *b,
                        Some(_) => {
                            return Err(err(
                                format!("{field}[3].case_sensitive"),
                                "must be true or false",
                            ))
                        }
                    }
                }
                Some(_) => {
                    return Err(err(
                        format!("{field}[3]"),
                        "must be an object like {\"case_sensitive\": false}",
                    ))
                }
            };
            if items.len() > 4 {
                return Err(err(format!("{field}[4]"), "a filter has at most 4 parts"));
            }
            if operator.positive().0 == Operator::Matches {
                for (i, pattern) in values.iter().enumerate() {
                    if pattern.len() > 500 {
                        return Err(err(
                            format!("{field}[2][{i}]"),
                            "patterns have at most 500 characters",
                        ));
                    }
                    if let Err(error) = regex::Regex::new(pattern) {
                        return Err(err(
                            format!("{field}[2][{i}]"),
                            format!("not a valid pattern: {error}"),
                        ));
                    }
                }
            }
            let is_code = |v: &String| {
                v.is_empty() || (v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()))
            };
            if dimension == Dimension::Visit(VisitColumn::Country)
                && operator.positive().0 == Operator::Is
                && !values.iter().all(is_code)
            {
                return Err(rule(
                    format!("{field}[2]"),
                    "Invalid visit:country filter, visit:country needs to be a valid 2-letter \
                     country code.",
                ));
            }
            // Plausible's name of the empty value (`Direct / None`, `(not set)`) matches it.
            let values = match (operator.positive().0, dimension.blank_label()) {
                (Operator::Is, Some(label)) => values
                    .into_iter()
                    .map(|v| if v == label { String::new() } else { v })
                    .collect(),
                _ => values,
            };
            Ok(Filter::Condition(Condition {
                operator,
                dimension,
                values,
                case_sensitive,
            }))
        }
        _ => Err(err(field, format!("Invalid filter {}", quoted(value)))),
    }
}

/// How revenue metrics are answered: in the one currency of the revenue goals the query's
/// top-level goal filters keep, or per goal when broken down by goal (Plausible's
/// `Revenue.preload`); null with a warning otherwise.
fn revenue_of(
    metrics: &[Metric],
    dimensions: &[Dimension],
    filters: &[Filter],
    goals: &[Goal],
) -> Revenue {
    if !metrics.iter().any(|m| m.is_revenue()) {
        return Revenue::NotAsked;
    }
    let mut currencies: Vec<&String> = crate::compile::goal::breakdown_goals(goals, filters)
        .into_iter()
        .filter_map(|g| g.currency.as_ref())
        .collect();
    currencies.sort();
    currencies.dedup();
    match (currencies.as_slice(), dimensions.contains(&Dimension::Goal)) {
        ([], _) => Revenue::NoGoalsMatching,
        ([one], false) => Revenue::Single((*one).clone()),
        (_, true) => Revenue::PerGoal,
        _ => Revenue::NoSingleCurrency,
    }
}

/// Parses `body` for `site`, whose goals are `goals`, at `now_ms`. `first_event_ms` bounds
/// the `all` range; a query wider than `bounds` is refused, naming the parameter and the
/// limit.
pub fn parse_query(
    body: &Value,
    site: &Site,
    goals: &[Goal],
    now_ms: i64,
    first_event_ms: i64,
    bounds: &QueryBounds,
) -> Result<Query, QueryError> {
    if !body.is_object() {
        return Err(err("body", "must be a JSON object"));
    }
    let timezone: Tz = site.timezone.parse().unwrap_or(Tz::UTC);
    let metrics = match body.get("metrics") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.as_str().and_then(Metric::from_name).ok_or_else(|| {
                    err(
                        format!("metrics[{i}]"),
                        format!("Invalid metric {}", quoted(m)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(err("metrics", "must be a non-empty list of metrics")),
        None => return Err(err("metrics", "metrics is required")),
    };
    if metrics
        .iter()
        .enumerate()
        .any(|(i, m)| metrics[..i].contains(m))
    {
        return Err(err(
            "metrics",
            "Expected items to be unique but they were not.",
        ));
    }
    let range = match body.get("date_range") {
        None => resolve_range(Some("30d"), None, timezone, now_ms, first_event_ms),
        Some(Value::String(preset)) => {
            resolve_range(Some(preset), None, timezone, now_ms, first_event_ms).map_err(|_| {
                format!(
                    "Invalid date range {}",
                    quoted(&Value::from(preset.as_str()))
                )
            })
        }
        Some(Value::Array(pair)) if pair.len() == 2 => match (pair[0].as_str(), pair[1].as_str()) {
            (Some(from), Some(to)) => {
                resolve_range(None, Some((from, to)), timezone, now_ms, first_event_ms)
            }
            _ => Err("must hold two ISO 8601 dates".into()),
        },
        Some(_) => Err("must be a preset like \"30d\" or two ISO 8601 dates".into()),
    }
    .map_err(|message| err("date_range", message))?;
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.as_str().and_then(parse_dimension).ok_or_else(|| {
                    err(
                        format!("dimensions[{i}]"),
                        format!("Invalid dimension {}", quoted(d)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(err("dimensions", "must be a list of dimensions")),
    };
    let metric_index = |wanted: Metric| metrics.iter().position(|m| *m == wanted).unwrap_or(0);
    for (i, metric) in metrics.iter().enumerate() {
        if let Some(d) = dimensions.iter().find(|d| d.is_visit_only()) {
            if *metric == Metric::TimeOnPage {
                return Err(rule(
                    format!("metrics[{i}]"),
                    format!("time_on_page cannot be broken down by {}", d.name()),
                ));
            }
        }
    }
    // Views per visit over time is a chart; by anything else Plausible refuses it.
    if metrics.contains(&Metric::ViewsPerVisit)
        && dimensions.iter().any(|d| !matches!(d, Dimension::Time(_)))
    {
        return Err(rule(
            format!("metrics[{}]", metric_index(Metric::ViewsPerVisit)),
            "Metric `views_per_visit` cannot be queried with `dimensions`.",
        ));
    }
    if metrics.contains(&Metric::ExitRate) && dimensions != [Dimension::ExitPage] {
        return Err(rule(
            format!("metrics[{}]", metric_index(Metric::ExitRate)),
            "Metric `exit_rate` requires a `\"visit:exit_page\"` dimension. No other dimensions are allowed.",
        ));
    }
    // Visit metrics by an event dimension: a visit has many names and properties. By page,
    // bounce rate and duration are those of the visits that entered on it, as in Plausible.
    let session_metrics: Vec<Metric> = metrics
        .iter()
        .copied()
        .filter(|m| m.is_visit_metric())
        .collect();
    let event_dimensions: Vec<String> = dimensions
        .iter()
        .filter(|d| {
            matches!(
                d,
                Dimension::Name | Dimension::Hostname | Dimension::Prop(_)
            )
        })
        .map(|d| format!("`{}`", d.name()))
        .collect();
    if let (Some(first), false) = (session_metrics.first(), event_dimensions.is_empty()) {
        let names: Vec<String> = session_metrics
            .iter()
            .map(|m| format!("`{}`", m.name()))
            .collect();
        return Err(rule(
            format!("metrics[{}]", metric_index(*first)),
            format!(
                "Session metric(s) {} cannot be queried along with event dimension(s) {}",
                names.join(", "),
                event_dimensions.join(", ")
            ),
        ));
    }
    let filters = match body.get("filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, f)| parse_filter(f, &format!("filters[{i}]"), 0))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(err("filters", "must be a list of filters")),
    };
    // Scroll depth is a page's: by page, or of the pages a top-level filter picks.
    if metrics.contains(&Metric::ScrollDepth) {
        let field = format!("metrics[{}]", metric_index(Metric::ScrollDepth));
        let page_filter = filters
            .iter()
            .any(|f| matches!(f, Filter::Condition(c) if c.dimension == Dimension::Page));
        if !dimensions.contains(&Dimension::Page) && !page_filter {
            return Err(rule(
                field,
                "Metric `scroll_depth` can only be queried with event:page filters or dimensions.",
            ));
        }
        if let Some(d) = dimensions.iter().find(|d| d.is_visit_only()) {
            return Err(rule(
                field,
                format!(
                    "Event metric(s) `scroll_depth` cannot be queried along with session dimension(s) `{}`",
                    d.name()
                ),
            ));
        }
    }
    if metrics.contains(&Metric::ViewsPerVisit)
        && filters
            .iter()
            .any(|f| f.dimensions().contains(&&Dimension::Page))
    {
        return Err(rule(
            format!("metrics[{}]", metric_index(Metric::ViewsPerVisit)),
            "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
        ));
    }
    let mut order_by = Vec::new();
    if let Some(value) = body.get("order_by").filter(|v| !v.is_null()) {
        let items = value
            .as_array()
            .ok_or_else(|| err("order_by", "must be a list of [item, direction]"))?;
        for (i, item) in items.iter().enumerate() {
            let field = format!("order_by[{i}]");
            let pair = item
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| err(&field, "must be [item, \"asc\" | \"desc\"]"))?;
            let descending = match pair[1].as_str() {
                Some("desc") => true,
                Some("asc") => false,
                _ => return Err(err(format!("{field}[1]"), "must be \"asc\" or \"desc\"")),
            };
            let name = pair[0].as_str().unwrap_or("");
            if let Some(metric) = Metric::from_name(name).filter(|m| metrics.contains(m)) {
                order_by.push(Order::Metric(metric, descending));
            } else if let Some(index) =
                parse_dimension(name).and_then(|d| dimensions.iter().position(|x| *x == d))
            {
                order_by.push(Order::Dimension(index, descending));
            } else {
                return Err(err(
                    format!("{field}[0]"),
                    format!("{name:?} is not one of the query's metrics or dimensions"),
                ));
            }
        }
    }
    let (mut limit, mut offset) = (MAX_LIMIT, 0);
    if let Some(pagination) = body.get("pagination").filter(|v| !v.is_null()) {
        let read = |name: &str| -> Result<Option<usize>, QueryError> {
            match pagination.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| err(format!("pagination.{name}"), "must be a whole number")),
            }
        };
        if let Some(l) = read("limit")? {
            if l == 0 || l > MAX_LIMIT {
                return Err(err(
                    "pagination.limit",
                    format!("must be between 1 and {MAX_LIMIT}"),
                ));
            }
            limit = l;
        }
        offset = read("offset")?.unwrap_or(0);
    }
    let include = body.get("include").cloned().unwrap_or(Value::Null);
    if !matches!(include, Value::Null | Value::Object(_)) {
        return Err(err("include", "must be an object"));
    }
    let flag = |name: &str| match include.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(format!("include.{name}"), "must be true or false")),
    };
    let include_total_rows = flag("total_rows")?;
    let include_time_labels = flag("time_labels")?;
    let include_imports = flag("imports")?;
    if include_time_labels && !dimensions.iter().any(|d| matches!(d, Dimension::Time(_))) {
        return Err(err(
            "include.time_labels",
            "needs a time dimension (time:hour, time:day, time:week or time:month)",
        ));
    }
    let comparison = match include.get("comparisons") {
        None | Some(Value::Null) => None,
        Some(c) => match c.get("mode").and_then(Value::as_str) {
            Some("previous_period") => Some(crate::time::previous_period(range, timezone)),
            Some("year_over_year") => Some(crate::time::year_before(range, timezone)),
            Some("custom") => {
                let dates = c
                    .get("date_range")
                    .and_then(Value::as_array)
                    .filter(|pair| pair.len() == 2)
                    .and_then(|pair| Some((pair[0].as_str()?, pair[1].as_str()?)));
                let Some(dates) = dates else {
                    return Err(err(
                        "include.comparisons.date_range",
                        "a custom comparison needs two ISO 8601 dates",
                    ));
                };
                Some(
                    resolve_range(None, Some(dates), timezone, now_ms, first_event_ms)
                        .map_err(|message| err("include.comparisons.date_range", message))?,
                )
            }
            _ => {
                return Err(err(
                    "include.comparisons.mode",
                    "must be \"previous_period\", \"year_over_year\" or \"custom\"",
                ))
            }
        },
    };
    if metrics.contains(&Metric::Percentage) && dimensions.is_empty() {
        return Err(err("metrics", "percentage needs a dimension"));
    }
    let goal_filters: Vec<(usize, &Condition)> = filters
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f {
            Filter::Condition(c) if c.dimension == Dimension::Goal => Some((i, c)),
            _ => None,
        })
        .collect();
    // Every goal an `is` filter names must be one of the site's, as Plausible checks.
    for (i, condition) in &goal_filters {
        if condition.operator != Operator::Is {
            continue;
        }
        for (j, value) in condition.values.iter().enumerate() {
            let one = Condition {
                values: vec![value.clone()],
                ..(*condition).clone()
            };
            if !goals.iter().any(|g| goal_matches(g, &one)) {
                return Err(rule(
                    format!("filters[{i}][2][{j}]"),
                    format!(
                        "The goal `{value}` is not configured for this site. Find out how to \
                         configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals"
                    ),
                ));
            }
        }
    }
    let reads_goals = dimensions.contains(&Dimension::Goal)
        || filters
            .iter()
            .any(|f| f.dimensions().contains(&&Dimension::Goal));
    for metric in [Metric::ConversionRate, Metric::GroupConversionRate] {
        if metrics.contains(&metric) && !reads_goals {
            return Err(rule(
                format!("metrics[{}]", metric_index(metric)),
                format!(
                    "Metric `{}` can only be queried with event:goal filters or dimensions.",
                    metric.name()
                ),
            ));
        }
    }
    let goals = if reads_goals {
        goals.to_vec()
    } else {
        Vec::new()
    };
    let revenue = revenue_of(&metrics, &dimensions, &filters, &goals);
    let query = Query {
        site_id: site.id.clone(),
        timezone,
        metrics,
        range,
        dimensions,
        filters,
        order_by,
        limit,
        offset,
        include_total_rows,
        include_time_labels,
        comparison,
        include_imports,
        goals,
        revenue,
    };
    bounds.check(&query)?;
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn site() -> Site {
        crate::test_site("UTC")
    }

    fn check_err(body: Value, field: &str) {
        let error = parse_query(
            &body,
            &site(),
            &[],
            1_700_000_000_000,
            0,
            &QueryBounds::default(),
        )
        .unwrap_err();
        assert_eq!(error.field, field, "{error}");
    }

    #[test]
    fn names_the_bad_part() {
        check_err(json!({}), "metrics");
        check_err(json!({"metrics": ["visitors", "nope"]}), "metrics[1]");
        check_err(
            json!({"metrics": ["visitors"], "date_range": "forever"}),
            "date_range",
        );
        check_err(
            json!({"metrics": ["visitors"], "dimensions": ["event:nope"]}),
            "dimensions[0]",
        );
        check_err(
            json!({"metrics": ["views_per_visit"], "dimensions": ["event:page"]}),
            "metrics[0]",
        );
        check_err(
            json!({"metrics": ["visitors"], "filters": [["is", "event:page", "/"]]}),
            "filters[0][2]",
        );
        check_err(
            json!({"metrics": ["visitors"], "filters": [["and", [["like", "event:page", ["/"]]]]]}),
            "filters[0][1][0]",
        );
        check_err(
            json!({"metrics": ["visitors"], "order_by": [["pageviews", "desc"]]}),
            "order_by[0][0]",
        );
        check_err(
            json!({"metrics": ["visitors"], "pagination": {"limit": 0}}),
            "pagination.limit",
        );
        check_err(
            json!({"metrics": ["visitors"], "filters": [["matches", "event:page", ["(unclosed"]]]}),
            "filters[0][2][0]",
        );
        check_err(
            json!({"metrics": ["visitors"], "date_range": ["0001-01-01", "9999-12-31"], "dimensions": ["time:hour"]}),
            "date_range",
        );
        check_err(
            json!({"metrics": ["visitors"], "date_range": ["2020-01-01", "2024-12-31"], "dimensions": ["event:page", "time:hour"]}),
            "dimensions[1]",
        );
    }

    #[test]
    fn parses_a_full_query() {
        let query = parse_query(
            &json!({
                "site_id": "example.com",
                "metrics": ["visitors", "bounce_rate"],
                "date_range": ["2024-01-01", "2024-01-31"],
                "dimensions": ["event:page", "time:day"],
                "filters": [["is_not", "visit:country", ["DE"]], ["or", [["contains", "event:page", ["/blog"]], ["not", ["is", "event:name", ["Signup"]]]]]],
                "order_by": [["time:day", "asc"]],
                "pagination": {"limit": 5, "offset": 10},
                "include": {"total_rows": true}
            }),
            &site(),
            &[],
            1_700_000_000_000,
            0,
            &QueryBounds::default(),
        )
        .unwrap();
        assert_eq!(query.metrics, [Metric::Visitors, Metric::BounceRate]);
        assert_eq!(
            query.dimensions,
            [Dimension::Page, Dimension::Time(TimeGrain::Day)]
        );
        assert_eq!(query.filters.len(), 2);
        assert_eq!(query.order_by, [Order::Dimension(1, false)]);
        assert_eq!(
            (query.limit, query.offset, query.include_total_rows),
            (5, 10, true)
        );
    }
}
