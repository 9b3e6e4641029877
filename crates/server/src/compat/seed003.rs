//! Seed 003 (event analytics): `GET /api/v1/events/summary` (totals and top events),
//! `GET /api/v1/metrics` (time-bucketed counts of one event), funnels
//! (`POST`/`GET /api/v1/funnels`, `GET`/`DELETE /api/v1/funnels/{funnelId}`,
//! `GET /api/v1/funnels/{funnelId}/analytics`), `GET /api/v1/retention` (daily cohorts) and
//! `GET /api/v1/users/{userId}/journey`, on the one engine and the one funnel store: the last
//! two build the native requests of `POST /api/v2/retention` and `/api/v2/journey` and name
//! errors by seed 003's parameters.
//!
//! A seed 003 funnel step is `{eventName, filters, timeWindow}`: `page_view` (any spelling
//! of a page view) is a page-view step whose page is `filters.pageUrl` (or `path`, `url`,
//! `page_url`, `pathname`; a full URL counts by its path, a glob as in native funnels; none:
//! any page); every other filter is a property the event must carry with that value. The
//! largest `timeWindow` (seconds) is the funnel's window; without any, one visit. Seed 003's
//! keys are per site: a funnel belongs to the key's site (or the one `site_id`/`projectId`
//! names).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use heartbeat_ingest::{canonical_name, FieldError};
use heartbeat_model::{
    Funnel, FunnelDefinition, FunnelOrder, FunnelStep, FunnelWindow, Site, StepTarget, PAGEVIEW,
};
use heartbeat_query::funnel::{check_definition, definition_json, FunnelResult};
use heartbeat_query::{journey, parse_journey, parse_retention, retention, QueryError};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::compat::params::{date_range, RangeParams};
use crate::http::error::{registry_error, ApiError};
use crate::http::json::{iso, json_object};
use crate::http::reads::{read_site, run_funnel_on, run_query, Answer, PooledRead};
use crate::http::state::{App, Caller, Payload, QueryParams, RequiredCaller};

/// Seed 003's summary: totals and the top events with their unique users.
#[utoipa::path(operation_id = "events_summary", get, path = "/api/v1/events/summary", tag = "stats",
    params(RangeParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: {totalEvents, uniqueUsers, sessions, topEvents}}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn summary(read: PooledRead<RangeParams>) -> Result<Response, ApiError> {
    read.answer(summary_answer).await
}

async fn summary_answer(app: App, caller: Caller, params: RangeParams) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let range = date_range(params.start_date.as_deref(), params.end_date.as_deref())?;
    let totals = json!({"site_id": site.id, "metrics": ["events", "visitors", "visits"], "date_range": range});
    let (query, totals) = run_query(&app, &caller, &totals)
        .await
        .map_err(|err| err.renamed("date_range", "startDate"))?;
    let top = json!({"site_id": site.id, "metrics": ["events", "visitors"], "date_range": range,
        "dimensions": ["event:name"], "order_by": [["events", "desc"]], "pagination": {"limit": 10}});
    let (_, top) = run_query(&app, &caller, &top).await?;
    let first = totals.results.first();
    let metric = |i: usize| first.map_or(json!(0), |row| row.metrics[i].clone());
    Ok(Json(json!({
        "success": true,
        "data": {
            "totalEvents": metric(0),
            "uniqueUsers": metric(1),
            "sessions": metric(2),
            "startDate": iso(query.range.start_ms),
            "endDate": iso(query.range.end_ms - 1),
            "topEvents": top.results.iter().map(|row| json!({
                "eventName": row.dimensions[0], "count": row.metrics[0], "uniqueUsers": row.metrics[1],
            })).collect::<Vec<_>>(),
        },
    })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetricsParams {
    /// The site (also `site_id`); default: the key's own site.
    #[serde(alias = "site_id")]
    site_id: Option<String>,
    /// Event name; default all.
    event: Option<String>,
    /// `hourly`, `daily` (default), `weekly` or `monthly`.
    interval: Option<String>,
    /// First day, YYYY-MM-DD.
    start_date: Option<String>,
    /// Last day, YYYY-MM-DD.
    end_date: Option<String>,
}

/// Seed 003's time-bucketed counts and unique users of one event (or all events).
#[utoipa::path(operation_id = "events_metrics", get, path = "/api/v1/metrics", tag = "stats",
    params(MetricsParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: {event, interval, metrics: [{timestamp, count, uniqueUsers}]}}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn metrics(read: PooledRead<MetricsParams>) -> Result<Response, ApiError> {
    read.answer(metrics_answer).await
}

async fn metrics_answer(app: App, caller: Caller, params: MetricsParams) -> Answer {
    let site: Site = read_site(&app, &caller, params.site_id.as_deref())?;
    let interval = params.interval.as_deref().unwrap_or("daily");
    let dimension = match interval {
        "hourly" | "hour" => Some("time:hour"),
        "daily" | "day" => Some("time:day"),
        "weekly" | "week" => Some("time:week"),
        "monthly" | "month" => Some("time:month"),
        _ => None,
    };
    let range = date_range(params.start_date.as_deref(), params.end_date.as_deref());
    // A bad interval and bad dates are named together.
    let (dimension, range) = match (dimension, range) {
        (Some(dimension), Ok(range)) => (dimension, range),
        (dimension, range) => {
            let mut errors = Vec::new();
            if dimension.is_none() {
                errors.push(FieldError::new(
                    "interval",
                    "interval must be hourly, daily, weekly or monthly",
                ));
            }
            if let Err(err) = range {
                errors.extend(err.details);
            }
            return Err(ApiError::invalid(errors));
        }
    };
    let mut query = json!({"site_id": site.id, "metrics": ["events", "visitors"], "date_range": range,
        "dimensions": [dimension], "include": {"time_labels": true}, "pagination": {"limit": 10000}});
    let event = params.event.filter(|e| !e.is_empty());
    if let Some(event) = &event {
        query["filters"] = json!([[
            "is",
            "event:name",
            [heartbeat_ingest::canonical_name(event)]
        ]]);
    }
    let (_, result) = run_query(&app, &caller, &query).await.map_err(|err| {
        err.renamed("date_range", "startDate")
            .renamed("dimensions[0]", "interval")
    })?;
    // Every bucket of the range, empty ones as zeros.
    let data: Vec<Value> = result
        .series(2)
        .into_iter()
        .map(|(label, m)| json!({"timestamp": label, "count": m[0], "uniqueUsers": m[1]}))
        .collect();
    Ok(Json(json!({
        "success": true,
        "data": {"event": event, "interval": interval, "metrics": data},
    })))
}

/// The properties that name a page-view step's page.
const PAGE_FILTERS: [&str; 5] = ["pageUrl", "path", "url", "page_url", "pathname"];

/// The path of a full URL (`https://example.com/pricing?x=1` -> `/pricing`); anything else
/// as it is.
fn url_path(text: &str) -> String {
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return text.to_owned();
    };
    let path = rest.find('/').map_or("/", |at| &rest[at..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    path[..end].to_owned()
}

/// A seed 003 funnel's steps read into a definition; every bad part named as seed 003
/// spells it (`steps[1].eventName`, `steps[0].filters.pageUrl`, `steps[2].timeWindow`).
fn seed_definition(body: &Value) -> Result<FunnelDefinition, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(items) = body.get("steps").and_then(Value::as_array) else {
        return Err(vec![FieldError::new(
            "steps",
            "steps is a list of 2 to 8 {eventName, filters, timeWindow}",
        )]);
    };
    let mut steps = Vec::new();
    // The largest window and the step that set it.
    let mut window: Option<(u64, usize)> = None;
    for (i, item) in items.iter().enumerate() {
        let field = format!("steps[{i}]");
        let name = match item.get("eventName") {
            Some(Value::String(name)) => name.clone(),
            _ => {
                errors.push(FieldError::new(
                    &format!("{field}.eventName"),
                    "eventName is required: an event name, or page_view for a page",
                ));
                String::new()
            }
        };
        let is_page = canonical_name(&name) == PAGEVIEW;
        let mut page = None;
        let mut props = BTreeMap::new();
        match item.get("filters") {
            None | Some(Value::Null) => {}
            Some(Value::Object(filters)) => {
                for (key, value) in filters {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            errors.push(FieldError::new(
                                &format!("{field}.filters.{key}"),
                                "a filter value is a string, number or boolean",
                            ));
                            continue;
                        }
                    };
                    if PAGE_FILTERS.contains(&key.as_str()) {
                        if !is_page {
                            errors.push(FieldError::new(
                                &format!("{field}.filters.{key}"),
                                "a page filter applies to page_view steps",
                            ));
                        }
                        // A full URL counts by its path.
                        page = Some((key.clone(), url_path(&text)));
                    } else {
                        props.insert(key.clone(), text);
                    }
                }
            }
            Some(_) => errors.push(FieldError::new(
                &format!("{field}.filters"),
                "filters is an object of properties (or pageUrl) and values",
            )),
        }
        match item.get("timeWindow") {
            None | Some(Value::Null) => {}
            Some(value) => match value.as_u64() {
                Some(seconds) if window.is_none_or(|(w, _)| seconds > w) => {
                    window = Some((seconds, i));
                }
                Some(_) => {}
                None => errors.push(FieldError::new(
                    &format!("{field}.timeWindow"),
                    "timeWindow is a whole number of seconds",
                )),
            },
        }
        let target = if is_page {
            StepTarget::Page(page.map_or_else(|| "/**".to_owned(), |(_, path)| path))
        } else {
            StepTarget::Event(name)
        };
        steps.push(FunnelStep {
            target,
            props,
            label: None,
        });
    }
    let definition = FunnelDefinition {
        steps,
        window: window.map_or(FunnelWindow::Visit, |(seconds, _)| {
            FunnelWindow::Seconds(seconds)
        }),
        order: FunnelOrder::Ordered,
    };
    // The typed checks, named as seed 003 spells the parts.
    for problem in check_definition(&definition) {
        let field = if problem.field == "window" {
            format!("steps[{}].timeWindow", window.map_or(0, |(_, i)| i))
        } else if let Some((step, part)) = problem.field.split_once('.') {
            let index: usize = step
                .trim_start_matches("steps[")
                .trim_end_matches(']')
                .parse()
                .unwrap_or(0);
            let page_filter = items
                .get(index)
                .and_then(|item| item.get("filters"))
                .and_then(Value::as_object)
                .and_then(|f| PAGE_FILTERS.iter().find(|k| f.contains_key(**k)));
            match (part, page_filter) {
                ("page", Some(key)) => format!("{step}.filters.{key}"),
                ("page" | "event", _) => format!("{step}.eventName"),
                (other, _) => format!("{step}.{}", other.replacen("props", "filters", 1)),
            }
        } else {
            problem.field.clone()
        };
        if !errors.iter().any(|e: &FieldError| e.field == field) {
            errors.push(FieldError::new(&field, problem.message));
        }
    }
    if errors.is_empty() {
        Ok(definition)
    } else {
        Err(errors)
    }
}

/// A saved funnel in seed 003's shape.
fn seed_funnel_json(funnel: &Funnel) -> Value {
    let window = match funnel.definition.window {
        FunnelWindow::Visit => None,
        FunnelWindow::Seconds(seconds) => Some(seconds),
    };
    let steps: Vec<Value> = funnel
        .definition
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let mut filters: serde_json::Map<String, Value> = step
                .props
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let event = match &step.target {
                StepTarget::Page(pattern) => {
                    if pattern != "/**" {
                        filters.insert("pageUrl".into(), json!(pattern));
                    }
                    "page_view".to_owned()
                }
                StepTarget::Event(name) => name.clone(),
            };
            let mut out = json!({"eventName": event, "filters": filters});
            if let (Some(seconds), true) = (window, i > 0) {
                out["timeWindow"] = json!(seconds);
            }
            out
        })
        .collect();
    json!({
        "id": funnel.id,
        "name": funnel.name,
        "projectId": funnel.site_id,
        "steps": steps,
        "window": definition_json(&funnel.definition)["window"],
        "createdAt": iso(funnel.created_at_ms),
        "updatedAt": iso(funnel.created_at_ms),
    })
}

/// The site a seed 003 funnel request is about (`site_id` or `projectId`, else the key's).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunnelParams {
    /// The site (also `site_id`, `projectId`); default: the key's own site.
    #[serde(alias = "site_id", alias = "projectId")]
    site_id: Option<String>,
    /// First day, YYYY-MM-DD (analytics only; also `startTime`).
    #[serde(alias = "startTime")]
    start_date: Option<String>,
    /// Last day, YYYY-MM-DD (analytics only; also `endTime`).
    #[serde(alias = "endTime")]
    end_date: Option<String>,
}

/// The site named (or the key's) if the caller may change it.
fn site_to_admin(app: &App, caller: &Caller, named: Option<&str>) -> Result<Site, ApiError> {
    let site = read_site(app, caller, named)?;
    if !caller.may_admin(&site.id) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "Forbidden")
            .with_detail("x-api-key", "an admin key is required"));
    }
    Ok(site)
}

fn no_funnel(id: &str) -> ApiError {
    ApiError::not_found("funnelId", format!("no funnel {id}"))
}

/// Seed 003: saves a funnel of the key's site.
#[utoipa::path(operation_id = "seed003_funnels_create", post, path = "/api/v1/funnels", tag = "stats",
    params(FunnelParams),
    request_body = crate::http::schema::SeedFunnelBody,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Seed 003: `{success, data: {id, name, steps, ...}}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn funnels_create(
    State(app): State<App>,
    caller: RequiredCaller,
    QueryParams(params): QueryParams<FunnelParams>,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let body = json_object(&body)?;
    let named = params
        .site_id
        .clone()
        .or_else(|| {
            body.get("projectId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| {
            body.get("site_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let site = site_to_admin(&app, &caller.0, named.as_deref())?;
    let mut errors = Vec::new();
    let name = match body.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => Some(name.clone()),
        _ => {
            errors.push(FieldError::new("name", "name is required"));
            None
        }
    };
    let definition = seed_definition(&body).map_err(|bad| errors.extend(bad));
    let (Some(name), Ok(definition)) = (name, definition) else {
        return Err(ApiError::invalid(errors));
    };
    let funnel = app
        .registry
        .create_funnel(
            &site.id,
            &name,
            definition,
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .map_err(registry_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "data": seed_funnel_json(&funnel)})),
    )
        .into_response())
}

/// Seed 003: the key's site's funnels, oldest first.
#[utoipa::path(operation_id = "seed003_funnels_list", get, path = "/api/v1/funnels", tag = "stats",
    params(FunnelParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: [funnel]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn funnels_list(read: PooledRead<FunnelParams>) -> Result<Response, ApiError> {
    read.answer(
        |app: App, caller: Caller, params: FunnelParams| async move {
            let site = read_site(&app, &caller, params.site_id.as_deref())?;
            let funnels: Vec<Value> = app
                .registry
                .funnels(&site.id)
                .iter()
                .map(seed_funnel_json)
                .collect();
            Ok(Json(json!({"success": true, "data": funnels})))
        },
    )
    .await
}

/// Seed 003: one funnel of the key's site (404 for another site's).
#[utoipa::path(operation_id = "seed003_funnels_show", get, path = "/api/v1/funnels/{funnelId}", tag = "stats",
    params(("funnelId" = String, Path, description = "The funnel"), FunnelParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: funnel}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn funnels_show(
    Path(funnel_id): Path<String>,
    read: PooledRead<FunnelParams>,
) -> Result<Response, ApiError> {
    read.answer(
        |app: App, caller: Caller, params: FunnelParams| async move {
            let site = read_site(&app, &caller, params.site_id.as_deref())?;
            let funnel = app
                .registry
                .funnel(&site.id, &funnel_id)
                .ok_or_else(|| no_funnel(&funnel_id))?;
            Ok(Json(
                json!({"success": true, "data": seed_funnel_json(&funnel)}),
            ))
        },
    )
    .await
}

/// Seed 003: deletes one funnel of the key's site.
#[utoipa::path(operation_id = "seed003_funnels_delete", delete, path = "/api/v1/funnels/{funnelId}", tag = "stats",
    params(("funnelId" = String, Path, description = "The funnel"), FunnelParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: {id, deleted: true}}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn funnels_delete(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(funnel_id): Path<String>,
    QueryParams(params): QueryParams<FunnelParams>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, params.site_id.as_deref())?;
    let funnel = app
        .registry
        .delete_funnel(&site.id, &funnel_id)
        .await
        .map_err(|err| registry_error(err).renamed("funnel_id", "funnelId"))?;
    Ok(Json(
        json!({"success": true, "data": {"id": funnel.id, "deleted": true}}),
    ))
}

/// Seed 003's answer for one funnel over a range.
fn seed_analytics_json(funnel: &Funnel, result: &FunnelResult, range: (i64, i64)) -> Value {
    let empty = Vec::new();
    let steps = result.series.first().map_or(&empty, |s| &s.steps);
    let saved = seed_funnel_json(funnel);
    let first = steps.first().map_or(0, |s| s.visitors);
    let last = steps.last().map_or(0, |s| s.visitors);
    let rows: Vec<Value> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            json!({
                "step": i + 1,
                "eventName": saved["steps"][i]["eventName"],
                "filters": saved["steps"][i]["filters"],
                "name": step.name,
                "users": step.visitors,
                "convertedUsers": step.converted,
                "conversionRate": step.conversion_rate,
                "stepConversionRate": step.conversion_rate_step,
                "dropoff": step.dropoff,
                "dropoffRate": step.dropoff_percentage,
                "medianTimeToNextSeconds": step.median_seconds_to_next,
                "p90TimeToNextSeconds": step.p90_seconds_to_next,
            })
        })
        .collect();
    let overall = if first == 0 {
        0.0
    } else {
        (last as f64 * 10_000.0 / first as f64).round() / 100.0
    };
    json!({
        "funnelId": funnel.id,
        "name": funnel.name,
        "startDate": iso(range.0),
        "endDate": iso(range.1 - 1),
        "window": saved["window"],
        "steps": rows,
        "totalUsers": first,
        "convertedUsers": last,
        "overallConversionRate": overall,
    })
}

/// Seed 003: a saved funnel followed through the site's events over a range (default: the
/// last 30 days).
#[utoipa::path(operation_id = "seed003_funnels_analytics", get, path = "/api/v1/funnels/{funnelId}/analytics", tag = "stats",
    params(("funnelId" = String, Path, description = "The funnel"), FunnelParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: {funnelId, name, startDate, endDate, steps: [{step, eventName, users, conversionRate, stepConversionRate, dropoff, dropoffRate, ...}], totalUsers, overallConversionRate}}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn funnels_analytics(
    Path(funnel_id): Path<String>,
    read: PooledRead<FunnelParams>,
) -> Result<Response, ApiError> {
    read.answer(|app: App, caller: Caller, params: FunnelParams| async move {
        let site = read_site(&app, &caller, params.site_id.as_deref())?;
        let range = date_range(params.start_date.as_deref(), params.end_date.as_deref())?;
        let funnel = app
            .registry
            .funnel(&site.id, &funnel_id)
            .ok_or_else(|| no_funnel(&funnel_id))?;
        let mut body = definition_json(&funnel.definition);
        body["date_range"] = range;
        let (query, result) = run_funnel_on(&app, &site, &body)
            .await
            .map_err(|err| err.renamed("date_range", "startDate"))?;
        Ok(Json(json!({
            "success": true,
            "data": seed_analytics_json(&funnel, &result, (query.range.start_ms, query.range.end_ms)),
        })))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RetentionParams {
    /// The site (also `site_id`); default: the key's own site.
    #[serde(alias = "site_id")]
    site_id: Option<String>,
    /// The event that makes people enter a cohort (its first time); absent or
    /// `first_seen`: their first event.
    cohort: Option<String>,
    /// Daily periods after the cohort's day, 1 to 90 (default 7).
    days: Option<String>,
    /// First cohort day, YYYY-MM-DD.
    start_date: Option<String>,
    /// Last cohort day, YYYY-MM-DD.
    end_date: Option<String>,
}

/// Seed 003's retention: daily cohorts of people entering in the range, by first seen or
/// by an event, and how many came back on each of the next `days` days.
#[utoipa::path(operation_id = "seed003_retention", get, path = "/api/v1/retention", tag = "stats",
    params(RetentionParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: {cohort, days, cohorts: [{cohortDate, cohortSize, retention: [{day, users, percentage}]}]}}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn retention_cohorts(
    read: PooledRead<RetentionParams>,
) -> Result<Response, ApiError> {
    read.answer(retention_answer).await
}

/// The native errors under seed 003's parameter names.
fn seed003_names(errors: Vec<QueryError>) -> ApiError {
    ApiError::from(errors)
        .renamed("date_range", "startDate")
        .renamed("periods", "days")
        .renamed("cohort_event", "cohort")
        .renamed("user_id", "userId")
}

async fn retention_answer(app: App, caller: Caller, params: RetentionParams) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let range = date_range(params.start_date.as_deref(), params.end_date.as_deref());
    let days = match params.days.as_deref() {
        None | Some("") => Ok(json!(7)),
        Some(text) => text
            .parse::<u64>()
            .map(|n| json!(n))
            .map_err(|_| FieldError::new("days", "days must be a whole number from 1 to 90")),
    };
    // A bad `days` and bad dates are named together.
    let (range, days) = match (range, days) {
        (Ok(range), Ok(days)) => (range, days),
        (range, days) => {
            let mut errors = Vec::new();
            if let Err(err) = range {
                errors.extend(err.details);
            }
            errors.extend(days.err());
            return Err(ApiError::invalid(errors));
        }
    };
    let cohort = params
        .cohort
        .filter(|c| !c.is_empty() && c != "first_seen")
        .map(|c| heartbeat_ingest::canonical_name(&c));
    let mut body =
        json!({"site_id": site.id, "date_range": range, "period": "day", "periods": days});
    if let Some(cohort) = &cohort {
        body["cohort_event"] = json!(cohort);
    }
    let now = crate::compat::params::now_ms();
    let bounds = app.queries.settings.bounds();
    let query = parse_retention(&body, &site, now, now, &bounds).map_err(seed003_names)?;
    let reads = app.reads.as_ref();
    let answer = app
        .query_cache
        .answer(&site.id, &query, reads, || retention(&query, reads))
        .await?;
    let cohorts: Vec<Value> = answer
        .cohorts
        .iter()
        .map(|c| {
            let retention: Vec<Value> = c
                .returning
                .iter()
                .zip(&c.percentages)
                .enumerate()
                .map(|(day, (users, percentage))| {
                    json!({"day": day, "users": users, "percentage": percentage})
                })
                .collect();
            json!({"cohortDate": c.cohort, "cohortSize": c.size, "retention": retention})
        })
        .collect();
    Ok(Json(json!({
        "success": true,
        "data": {
            "cohort": cohort.unwrap_or_else(|| "first_seen".to_owned()),
            "days": query.periods,
            "startDate": iso(query.range.start_ms),
            "endDate": iso(query.range.end_ms - 1),
            "cohorts": cohorts,
        },
    })))
}

/// Seed 003's journey: one user's events in time order, and their visits (sessions) with
/// each one's source, device and duration.
#[utoipa::path(operation_id = "seed003_user_journey", get, path = "/api/v1/users/{userId}/journey", tag = "stats",
    params(("userId" = String, Path, description = "The user id the events carried"), RangeParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: {userId, totalEvents, truncated, sessions: [...], events: [...]}}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn user_journey(
    Path(user_id): Path<String>,
    read: PooledRead<RangeParams>,
) -> Result<Response, ApiError> {
    read.answer(|app, caller, params| journey_answer(app, caller, user_id, params))
        .await
}

async fn journey_answer(app: App, caller: Caller, user_id: String, params: RangeParams) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let range = date_range(params.start_date.as_deref(), params.end_date.as_deref())?;
    let body = json!({"site_id": site.id, "user_id": user_id, "date_range": range});
    let now = crate::compat::params::now_ms();
    let bounds = app.queries.settings.bounds();
    let query = parse_journey(&body, &site, now, now, &bounds).map_err(seed003_names)?;
    let journey = journey(&query, app.reads.as_ref())
        .await?
        .ok_or_else(|| ApiError::not_found("userId", format!("no events of user {user_id:?}")))?;
    let mut events = Vec::new();
    let sessions: Vec<Value> = journey
        .visits
        .iter()
        .map(|visit| {
            for event in &visit.events {
                events.push(json!({
                    "eventId": event.event_id,
                    "eventName": event.name,
                    "timestamp": iso(event.timestamp_ms),
                    "pageUrl": event.pathname,
                    "properties": event.props,
                    "sessionId": visit.visit_id,
                }));
            }
            json!({
                "sessionId": visit.visit_id,
                "startTime": iso(visit.start_ms),
                "endTime": iso(visit.end_ms),
                "duration": visit.duration_s(),
                "eventCount": visit.event_count,
                "pageViews": visit.pageviews,
                "source": visit.source,
                "device": visit.device,
                "browser": visit.browser,
                "os": visit.os,
                "country": visit.country,
                "entryPage": visit.entry_page,
                "exitPage": visit.exit_page,
            })
        })
        .collect();
    Ok(Json(json!({
        "success": true,
        "data": {
            "userId": user_id,
            "totalEvents": journey.total_events,
            "truncated": journey.truncated,
            "sessions": sessions,
            "events": events,
        },
    })))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(summary))
        .routes(routes!(metrics))
        .routes(routes!(funnels_create, funnels_list))
        .routes(routes!(funnels_show, funnels_delete))
        .routes(routes!(funnels_analytics))
        .routes(routes!(retention_cohorts))
        .routes(routes!(user_journey))
}
