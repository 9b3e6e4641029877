//! Funnels: the typed funnel query ([`FunnelQuery`]: a site, a date range and v2 filters
//! around a [`FunnelDefinition`], optionally broken down by one visit dimension), its JSON
//! request (`POST /api/v2/funnel`'s body, [`parse_funnel`]; a definition alone,
//! [`parse_definition`]), running it ([`run_funnel`], one statement from
//! `compile/funnel.rs`) and its answer ([`FunnelResult`]).
//!
//! Semantics, chosen once for every door:
//! - **Who**: a person is `visitor_id`, which is the client's user id (hashed) when the event
//!   carries one and otherwise the anonymous daily id; with a visit window the steps must
//!   fall in one visit.
//! - **When**: every step happens inside the date range (resolved in the site's time zone):
//!   step 1 starts in it, and later steps count within the window but never after the
//!   range's end, so an answer for a past range does not change as time goes on.
//! - **Window**: one visit (default, as Plausible) or 1 second to 90 days from the first
//!   step's time, inclusive (a step exactly at the window's end converts).
//! - **Order**: `strict` (each step is the person's very next event), `ordered` (default;
//!   other events may come between) or `any` (step k counts people who did at least k
//!   distinct steps within the window, as PostHog's unordered funnels).
//! - **Counting**: each person once, at their best attempt (the start that reached the most
//!   steps; among equals the earliest), as ClickHouse's `windowFunnel` and PostHog do. The
//!   breakdown value is that attempt's first event's.
//! - **Filters** (v2's) pick who may enter: the event that starts an attempt must pass them.

use std::collections::BTreeMap;

use heartbeat_model::{
    FunnelDefinition, FunnelOrder, FunnelStep, FunnelWindow, Site, StepTarget, MAX_FUNNEL_STEPS,
    MAX_FUNNEL_WINDOW_S, MIN_FUNNEL_STEPS,
};
use serde_json::{json, Map, Value};

use crate::bounds::QueryBounds;
use crate::compile::funnel::funnel_sql;
use crate::error::QueryError;
pub use crate::model::FunnelQuery;
use crate::model::{Dimension, VisitColumn};
use crate::plausible::parse_query;
use crate::sql::{RunError, SqlRunner, SqlValue};

/// The longest page pattern, event name, label, property key or value.
pub const MAX_STEP_TEXT_CHARS: usize = 500;
/// The most breakdown values an answer holds (those with the most people entering).
pub const MAX_BREAKDOWN_VALUES: usize = 100;

fn err(field: impl Into<String>, message: impl Into<String>) -> QueryError {
    QueryError::at(field, message)
}

/// Whether `text` is a usable step text: 1 to [`MAX_STEP_TEXT_CHARS`] characters, no
/// control characters.
fn plain_text(text: &str) -> bool {
    !text.trim().is_empty()
        && text.chars().count() <= MAX_STEP_TEXT_CHARS
        && !text.chars().any(char::is_control)
}

/// What is wrong with a page pattern, if anything.
fn pattern_problem(pattern: &str) -> Option<String> {
    if !plain_text(pattern) {
        return Some(format!(
            "a page pattern has 1 to {MAX_STEP_TEXT_CHARS} characters"
        ));
    }
    if !pattern.starts_with('/') {
        return Some("a page pattern starts with / (like /blog/*)".into());
    }
    if pattern.contains("***") {
        return Some("a page pattern has * (within a segment) or ** (across), never ***".into());
    }
    if pattern.chars().any(char::is_whitespace) {
        return Some("a page pattern has no spaces".into());
    }
    None
}

/// Every problem of step `i`, named as the native request spells it (`steps[1].page`,
/// `steps[0].props.plan`).
fn check_step(step: &FunnelStep, i: usize) -> Vec<QueryError> {
    let mut errors = Vec::new();
    match &step.target {
        StepTarget::Page(pattern) => {
            if let Some(problem) = pattern_problem(pattern) {
                errors.push(err(format!("steps[{i}].page"), problem));
            }
        }
        StepTarget::Event(name) => {
            if !plain_text(name) {
                errors.push(err(
                    format!("steps[{i}].event"),
                    format!("an event name has 1 to {MAX_STEP_TEXT_CHARS} characters"),
                ));
            }
        }
    }
    for (key, value) in &step.props {
        if !plain_text(key) || value.chars().count() > MAX_STEP_TEXT_CHARS {
            errors.push(err(
                format!("steps[{i}].props.{key}"),
                format!("property names and values have at most {MAX_STEP_TEXT_CHARS} characters"),
            ));
        }
    }
    if let Some(label) = &step.label {
        if !plain_text(label) {
            errors.push(err(
                format!("steps[{i}].label"),
                format!("a label has 1 to {MAX_STEP_TEXT_CHARS} characters"),
            ));
        }
    }
    errors
}

fn steps_error(count: usize) -> QueryError {
    err(
        "steps",
        format!("a funnel has {MIN_FUNNEL_STEPS} to {MAX_FUNNEL_STEPS} steps, got {count}"),
    )
}

fn window_error() -> QueryError {
    err(
        "window",
        format!(
            "a window is {{\"visit\": true}} or {{\"seconds\": n}} with n from 1 to \
             {MAX_FUNNEL_WINDOW_S} (90 days)"
        ),
    )
}

/// Every problem of a typed definition, each naming its part as the native request spells
/// it (`steps`, `steps[1].page`, `steps[0].props.plan`, `window`).
pub fn check_definition(definition: &FunnelDefinition) -> Vec<QueryError> {
    let mut errors = Vec::new();
    let count = definition.steps.len();
    if !(MIN_FUNNEL_STEPS..=MAX_FUNNEL_STEPS).contains(&count) {
        errors.push(steps_error(count));
    }
    for (i, step) in definition.steps.iter().enumerate() {
        errors.extend(check_step(step, i));
    }
    if let FunnelWindow::Seconds(seconds) = definition.window {
        if !(1..=MAX_FUNNEL_WINDOW_S).contains(&seconds) {
            errors.push(window_error());
        }
    }
    errors
}

/// One step of the native shape: `{"page": "/blog/*"}` or `{"event": "signup"}`, with
/// optional `props` (`{"plan": "pro"}`) and `label`.
fn parse_step(value: &Value, index: usize, errors: &mut Vec<QueryError>) -> Option<FunnelStep> {
    let field = format!("steps[{index}]");
    let field = field.as_str();
    let Some(object) = value.as_object() else {
        errors.push(err(
            field,
            "a step is an object like {\"page\": \"/blog/*\"} or {\"event\": \"signup\"}",
        ));
        return None;
    };
    let mut bad = false;
    for key in object.keys() {
        if !["page", "event", "props", "label"].contains(&key.as_str()) {
            errors.push(err(
                format!("{field}.{key}"),
                "unknown field; a step has page or event, props and label",
            ));
            bad = true;
        }
    }
    let target = match (object.get("page"), object.get("event")) {
        (Some(Value::String(page)), None) => Some(StepTarget::Page(page.clone())),
        (None, Some(Value::String(event))) => Some(StepTarget::Event(event.clone())),
        (Some(_), None) => {
            errors.push(err(format!("{field}.page"), "a page pattern is a string"));
            None
        }
        (None, Some(_)) => {
            errors.push(err(format!("{field}.event"), "an event name is a string"));
            None
        }
        _ => {
            errors.push(err(
                field,
                "a step is either a page pattern (\"page\") or an event name (\"event\")",
            ));
            None
        }
    };
    let mut props = BTreeMap::new();
    match object.get("props") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                match value.as_str() {
                    Some(text) => {
                        props.insert(key.clone(), text.to_owned());
                    }
                    None => {
                        errors.push(err(
                            format!("{field}.props.{key}"),
                            "a property value is a string",
                        ));
                        bad = true;
                    }
                }
            }
        }
        Some(_) => {
            errors.push(err(
                format!("{field}.props"),
                "props is an object of property names and values",
            ));
            bad = true;
        }
    }
    let label = match object.get("label") {
        None | Some(Value::Null) => None,
        Some(Value::String(label)) => Some(label.clone()),
        Some(_) => {
            errors.push(err(format!("{field}.label"), "a label is a string"));
            bad = true;
            None
        }
    };
    let step = FunnelStep {
        target: target?,
        props,
        label,
    };
    let problems = check_step(&step, index);
    let fine = problems.is_empty() && !bad;
    errors.extend(problems);
    fine.then_some(step)
}

/// A window: `{"visit": true}` (or absent), `{"seconds": n}` or a number of seconds.
fn parse_window(value: Option<&Value>, errors: &mut Vec<QueryError>) -> Option<FunnelWindow> {
    let seconds = |v: &Value| {
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f < 1.0).map(|_| 0))
    };
    let window = match value {
        None | Some(Value::Null) => Some(FunnelWindow::Visit),
        Some(Value::String(s)) if s == "visit" => Some(FunnelWindow::Visit),
        Some(Value::Object(map)) if map.len() == 1 => match map.iter().next() {
            Some((key, Value::Bool(true))) if key == "visit" => Some(FunnelWindow::Visit),
            Some((key, v)) if key == "seconds" => seconds(v).map(FunnelWindow::Seconds),
            _ => None,
        },
        Some(v) => seconds(v).map(FunnelWindow::Seconds),
    };
    let window = window.filter(|w| match w {
        FunnelWindow::Visit => true,
        FunnelWindow::Seconds(s) => (1..=MAX_FUNNEL_WINDOW_S).contains(s),
    });
    if window.is_none() {
        errors.push(window_error());
    }
    window
}

/// Reads a definition from the native request shape (`steps`, `window`, `order`) and checks
/// it, naming every bad part.
pub fn parse_definition(body: &Value) -> Result<FunnelDefinition, Vec<QueryError>> {
    let mut errors = Vec::new();
    let steps = match body.get("steps") {
        Some(Value::Array(items)) => {
            if !(MIN_FUNNEL_STEPS..=MAX_FUNNEL_STEPS).contains(&items.len()) {
                errors.push(steps_error(items.len()));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_step(item, i, &mut errors))
                .collect::<Vec<_>>()
        }
        Some(_) => {
            errors.push(err("steps", "steps is a list of 2 to 8 steps"));
            Vec::new()
        }
        None => {
            errors.push(err("steps", "steps is required"));
            Vec::new()
        }
    };
    let window = parse_window(body.get("window"), &mut errors);
    let order = match body.get("order") {
        None | Some(Value::Null) => Some(FunnelOrder::Ordered),
        Some(value) => {
            let order = value.as_str().and_then(FunnelOrder::from_name);
            if order.is_none() {
                errors.push(err("order", "order is strict, ordered or any"));
            }
            order
        }
    };
    let steps: Option<Vec<FunnelStep>> = steps.into_iter().collect();
    match (steps, window, order) {
        (Some(steps), Some(window), Some(order)) if errors.is_empty() => Ok(FunnelDefinition {
            steps,
            window,
            order,
        }),
        _ => Err(errors),
    }
}

/// `POST /api/v2/funnel`'s body for `site` at `now_ms`: the definition (`steps`, `window`,
/// `order`), v2's `date_range` and `filters` (parsed as `/api/v2/query` parses them;
/// `first_event_ms` starts the `all` range) and `breakdown`. Every bad part is named.
pub fn parse_funnel(
    body: &Value,
    site: &Site,
    now_ms: i64,
    first_event_ms: i64,
    bounds: &QueryBounds,
) -> Result<FunnelQuery, Vec<QueryError>> {
    if !body.is_object() {
        return Err(vec![err("body", "must be a JSON object")]);
    }
    let definition = parse_definition(body);
    let mut errors = definition.as_ref().err().cloned().unwrap_or_default();
    let mut v2 = Map::new();
    v2.insert("site_id".into(), json!(site.id));
    v2.insert("metrics".into(), json!(["visitors"]));
    for key in ["date_range", "filters"] {
        if let Some(value) = body.get(key) {
            v2.insert(key.into(), value.clone());
        }
    }
    // Funnel filters read no goals (a goal filter names none of the site's).
    let scope = parse_query(
        &Value::Object(v2),
        site,
        &[],
        now_ms,
        first_event_ms,
        bounds,
    );
    if let Err(e) = &scope {
        errors.push(e.clone());
    }
    let breakdown = match body.get("breakdown") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let column = value.as_str().and_then(|name| {
                VisitColumn::ALL
                    .iter()
                    .find(|(_, n, _)| *n == name)
                    .map(|(c, _, _)| *c)
            });
            if column.is_none() {
                errors.push(err(
                    "breakdown",
                    "breakdown is one visit dimension, like visit:source, visit:country or visit:device",
                ));
            }
            column
        }
    };
    match (definition, scope) {
        (Ok(definition), Ok(scope)) if errors.is_empty() => Ok(FunnelQuery {
            site_id: scope.site_id,
            timezone: scope.timezone,
            range: scope.range,
            filters: scope.filters,
            definition,
            breakdown,
        }),
        _ => Err(errors),
    }
}

/// The native JSON of a definition: the request shape it is read from.
pub fn definition_json(definition: &FunnelDefinition) -> Value {
    let steps: Vec<Value> = definition
        .steps
        .iter()
        .map(|step| {
            let mut object = Map::new();
            match &step.target {
                StepTarget::Page(pattern) => object.insert("page".into(), json!(pattern)),
                StepTarget::Event(name) => object.insert("event".into(), json!(name)),
            };
            if !step.props.is_empty() {
                object.insert("props".into(), json!(step.props));
            }
            if let Some(label) = &step.label {
                object.insert("label".into(), json!(label));
            }
            Value::Object(object)
        })
        .collect();
    json!({"steps": steps, "window": window_json(definition.window), "order": definition.order.name()})
}

pub fn window_json(window: FunnelWindow) -> Value {
    match window {
        FunnelWindow::Visit => json!({"visit": true}),
        FunnelWindow::Seconds(s) => json!({"seconds": s}),
    }
}

/// One step of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelStepResult {
    pub name: String,
    /// People who reached the step.
    pub visitors: u64,
    /// People who went on to the next step (`None` for the last step).
    pub converted: Option<u64>,
    /// People who reached the step and not the next one, and their share of the step's, %.
    pub dropoff: Option<u64>,
    pub dropoff_percentage: Option<f64>,
    /// The step's people as a share of the first step's, and of the previous step's, %.
    pub conversion_rate: f64,
    pub conversion_rate_step: f64,
    /// Seconds from this step to the next among those who went on; `None` when nobody did.
    pub median_seconds_to_next: Option<f64>,
    pub p90_seconds_to_next: Option<f64>,
}

/// The steps of one funnel of an answer: of everyone, or of one breakdown value.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelSeries {
    /// The breakdown value (its blank label for an empty one), `None` without a breakdown.
    pub value: Option<String>,
    pub steps: Vec<FunnelStepResult>,
}

/// A funnel's answer: one series, or one per breakdown value (most people entering
/// first, at most [`MAX_BREAKDOWN_VALUES`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelResult {
    pub series: Vec<FunnelSeries>,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10_000.0 / whole as f64).round() / 100.0
    }
}

fn seconds(value: &SqlValue) -> Option<f64> {
    match value {
        SqlValue::Null => None,
        other => Some((other.as_f64() * 1000.0).round() / 1000.0),
    }
}

/// The step names of `query`'s answer: the definition's, or `k of n steps` in any order.
fn step_names(query: &FunnelQuery) -> Vec<String> {
    let steps = &query.definition.steps;
    match query.definition.order {
        FunnelOrder::Any => (1..=steps.len())
            .map(|k| format!("{k} of {} steps", steps.len()))
            .collect(),
        _ => steps.iter().map(FunnelStep::name).collect(),
    }
}

/// One step's row: people, median and p90 seconds to the next step.
type StepRow = (u64, Option<f64>, Option<f64>);

fn series(query: &FunnelQuery, value: Option<String>, people: &[StepRow]) -> FunnelSeries {
    let names = step_names(query);
    let n = names.len();
    let first = people.first().map_or(0, |p| p.0);
    let steps = (0..n)
        .map(|k| {
            let (visitors, median, p90) = people[k];
            let next = (k + 1 < n).then(|| people[k + 1].0);
            let previous = if k == 0 { visitors } else { people[k - 1].0 };
            FunnelStepResult {
                name: names[k].clone(),
                visitors,
                converted: next,
                dropoff: next.map(|next| visitors - next.min(visitors)),
                dropoff_percentage: next
                    .map(|next| percent(visitors - next.min(visitors), visitors)),
                conversion_rate: if k == 0 && visitors > 0 {
                    100.0
                } else {
                    percent(visitors, first)
                },
                conversion_rate_step: if k == 0 && visitors > 0 {
                    100.0
                } else {
                    percent(visitors, previous)
                },
                median_seconds_to_next: next.and(median),
                p90_seconds_to_next: next.and(p90),
            }
        })
        .collect();
    FunnelSeries { value, steps }
}

/// Runs `query`: one statement, whose rows (per breakdown value and step) become the answer.
pub async fn run_funnel(
    query: &FunnelQuery,
    runner: &dyn SqlRunner,
) -> Result<FunnelResult, RunError> {
    let sql = funnel_sql(query, runner.dialect().sql());
    let rows = runner.run(sql).await?;
    let n = query.definition.steps.len();
    // Per breakdown value: (people, median, p90) of each step.
    let mut by_value: BTreeMap<Option<String>, Vec<StepRow>> = BTreeMap::new();
    for row in rows {
        let [value, step, people, median, p90] = row.as_slice() else {
            return Err(RunError::failed("a funnel row has five columns"));
        };
        let value = match value {
            SqlValue::Text(text) => Some(text.clone()),
            _ => None,
        };
        let step = step.as_f64() as usize;
        if step == 0 || step > n {
            continue;
        }
        let entry = by_value
            .entry(value)
            .or_insert_with(|| vec![(0, None, None); n]);
        entry[step - 1] = (people.as_f64() as u64, seconds(median), seconds(p90));
    }
    let Some(column) = query.breakdown else {
        let people = by_value
            .into_values()
            .next()
            .unwrap_or_else(|| vec![(0, None, None); n]);
        return Ok(FunnelResult {
            series: vec![series(query, None, &people)],
        });
    };
    let blank = Dimension::Visit(column).blank_label();
    let mut values: Vec<(Option<String>, Vec<StepRow>)> = by_value.into_iter().collect();
    values.sort_by(|a, b| b.1[0].0.cmp(&a.1[0].0).then_with(|| a.0.cmp(&b.0)));
    values.truncate(MAX_BREAKDOWN_VALUES);
    Ok(FunnelResult {
        series: values
            .into_iter()
            .map(|(value, people)| {
                let value = value.unwrap_or_default();
                let label = match blank {
                    Some(label) if value.is_empty() => label.to_owned(),
                    _ => value,
                };
                series(query, Some(label), &people)
            })
            .collect(),
    })
}

impl FunnelStepResult {
    pub fn to_json(&self, step: usize) -> Value {
        json!({
            "step": step,
            "name": self.name,
            "visitors": self.visitors,
            "converted": self.converted,
            "dropoff": self.dropoff,
            "dropoff_percentage": self.dropoff_percentage,
            "conversion_rate": self.conversion_rate,
            "conversion_rate_step": self.conversion_rate_step,
            "median_seconds_to_next": self.median_seconds_to_next,
            "p90_seconds_to_next": self.p90_seconds_to_next,
        })
    }
}

impl FunnelResult {
    /// `POST /api/v2/funnel`'s answer: `{results: [{breakdown, steps: [...]}], meta}`.
    pub fn to_json(&self, query: &FunnelQuery) -> Value {
        let results: Vec<Value> = self
            .series
            .iter()
            .map(|s| {
                let steps: Vec<Value> = s
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, st)| st.to_json(i + 1))
                    .collect();
                json!({"breakdown": s.value, "steps": steps})
            })
            .collect();
        let iso = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.with_timezone(&query.timezone).to_rfc3339())
                .unwrap_or_default()
        };
        let breakdown = query.breakdown.map(|c| Dimension::Visit(c).name());
        json!({
            "results": results,
            "meta": {
                "date_range": [iso(query.range.start_ms), iso(query.range.end_ms - 1)],
                "timezone": query.timezone.name(),
                "window": window_json(query.definition.window),
                "order": query.definition.order.name(),
                "breakdown": breakdown,
                "definition": definition_json(&query.definition),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heartbeat_model::SiteId;

    fn site() -> Site {
        Site {
            id: SiteId::from("example.com"),
            name: "Example".into(),
            domain: "example.com".into(),
            timezone: "Europe/Berlin".into(),
            created_at_ms: 0,
            rules: Default::default(),
            retention_days: None,
        }
    }

    fn parse(body: Value) -> Result<FunnelQuery, Vec<QueryError>> {
        parse_funnel(
            &body,
            &site(),
            1_790_000_000_000,
            0,
            &QueryBounds::default(),
        )
    }

    /// The fields named by the errors of `body`.
    fn bad_fields(body: Value) -> Vec<String> {
        parse(body)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn parses_a_full_request() {
        let query = parse(json!({
            "site_id": "example.com",
            "date_range": ["2026-03-01", "2026-03-31"],
            "filters": [["is", "visit:source", ["Google"]]],
            "steps": [{"page": "/blog/*", "label": "Blog"}, {"event": "signup", "props": {"plan": "pro"}}],
            "window": {"seconds": 3600},
            "order": "strict",
            "breakdown": "visit:device",
        }))
        .unwrap();
        assert_eq!(query.definition.steps.len(), 2);
        assert_eq!(
            query.definition.steps[0].target,
            StepTarget::Page("/blog/*".into())
        );
        assert_eq!(query.definition.steps[0].name(), "Blog");
        assert_eq!(query.definition.steps[1].props["plan"], "pro");
        assert_eq!(query.definition.window, FunnelWindow::Seconds(3600));
        assert_eq!(query.definition.order, FunnelOrder::Strict);
        assert_eq!(query.breakdown, Some(VisitColumn::Device));
        assert_eq!(query.filters.len(), 1);
        // March in Berlin: from midnight CET (UTC+1) to midnight CEST (UTC+2).
        assert_eq!(query.range.start_ms, 1_772_319_600_000);
        assert_eq!(query.range.end_ms, 1_774_994_400_000);
    }

    #[test]
    fn defaults_are_one_visit_in_order() {
        let query = parse(json!({"steps": [{"page": "/"}, {"event": "signup"}]})).unwrap();
        assert_eq!(query.definition.window, FunnelWindow::Visit);
        assert_eq!(query.definition.order, FunnelOrder::Ordered);
        assert_eq!(query.breakdown, None);
        assert_eq!(
            parse(json!({"steps": [{"page": "/"}, {"page": "/a"}], "window": 90}))
                .unwrap()
                .definition
                .window,
            FunnelWindow::Seconds(90)
        );
        assert_eq!(
            parse(json!({"steps": [{"page": "/"}, {"page": "/a"}], "window": {"visit": true}}))
                .unwrap()
                .definition
                .window,
            FunnelWindow::Visit
        );
    }

    #[test]
    fn names_every_bad_part() {
        let two = json!([{"page": "/"}, {"event": "signup"}]);
        assert_eq!(bad_fields(json!({"steps": [{"page": "/"}]})), ["steps"]);
        let nine: Vec<Value> = (0..9).map(|i| json!({"page": format!("/{i}")})).collect();
        assert_eq!(bad_fields(json!({"steps": nine})), ["steps"]);
        assert_eq!(bad_fields(json!({})), ["steps"]);
        assert_eq!(
            bad_fields(
                json!({"steps": [{"label": "x"}, {"page": "/a", "event": "b"}, {"page": "blog"}, {"page": "/a/***"}, {"event": ""}]})
            ),
            [
                "steps[0]",
                "steps[1]",
                "steps[2].page",
                "steps[3].page",
                "steps[4].event"
            ]
        );
        assert_eq!(
            bad_fields(
                json!({"steps": [{"page": "/", "props": {"plan": 3}}, {"event": "x", "nope": 1}]})
            ),
            ["steps[0].props.plan", "steps[1].nope"]
        );
        for window in [
            json!({"seconds": 90 * 86_400 + 1}),
            json!(0),
            json!(0.5),
            json!({"visit": false}),
            json!("week"),
            json!(-5),
        ] {
            assert_eq!(
                bad_fields(json!({"steps": two, "window": window})),
                ["window"],
                "{window}"
            );
        }
        assert!(parse(json!({"steps": two, "window": 90 * 86_400})).is_ok());
        assert!(parse(json!({"steps": two, "window": 1})).is_ok());
        assert_eq!(
            bad_fields(json!({"steps": two, "order": "sideways"})),
            ["order"]
        );
        assert_eq!(
            bad_fields(json!({"steps": two, "breakdown": "event:page"})),
            ["breakdown"]
        );
        assert_eq!(
            bad_fields(json!({"steps": two, "date_range": ["2026-03-10", "2026-03-01"]})),
            ["date_range"]
        );
        assert!(
            bad_fields(json!({"steps": two, "filters": [["is", "visit:nope", ["x"]]]}))[0]
                .starts_with("filters[0]")
        );
        // Every part at once.
        assert_eq!(
            bad_fields(
                json!({"steps": [{"page": "x"}], "window": 0, "order": "x", "breakdown": "x", "date_range": "never"})
            ),
            [
                "steps",
                "steps[0].page",
                "window",
                "order",
                "date_range",
                "breakdown"
            ]
        );
    }

    #[test]
    fn definitions_round_trip_through_their_json() {
        let definition = parse_definition(&json!({
            "steps": [{"page": "/blog/**", "label": "Blog"}, {"event": "signup", "props": {"plan": "pro"}}],
            "window": {"seconds": 60}, "order": "any"
        }))
        .unwrap();
        assert_eq!(
            parse_definition(&definition_json(&definition)).unwrap(),
            definition
        );
    }

    #[test]
    fn percentages_and_drop_offs() {
        let query =
            parse(json!({"steps": [{"page": "/"}, {"page": "/a"}, {"page": "/b"}]})).unwrap();
        let s = series(
            &query,
            None,
            &[
                (4, Some(2.0), Some(3.0)),
                (3, Some(1.0), None),
                (1, None, None),
            ],
        );
        let step = &s.steps[1];
        assert_eq!(step.visitors, 3);
        assert_eq!(step.converted, Some(1));
        assert_eq!(step.dropoff, Some(2));
        assert_eq!(step.dropoff_percentage, Some(66.67));
        assert_eq!(step.conversion_rate, 75.0);
        assert_eq!(step.conversion_rate_step, 75.0);
        assert_eq!(s.steps[2].conversion_rate, 25.0);
        assert_eq!(s.steps[2].conversion_rate_step, 33.33);
        assert_eq!(s.steps[2].converted, None);
        assert_eq!(s.steps[2].median_seconds_to_next, None);
        assert_eq!(s.steps[0].median_seconds_to_next, Some(2.0));
    }
}
