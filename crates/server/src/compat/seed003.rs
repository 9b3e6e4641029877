//! Seed 003 (event analytics): `GET /api/v1/events/summary` (totals and top events),
//! `GET /api/v1/metrics` (time-bucketed counts of one event), `GET /api/v1/retention`
//! (daily cohorts) and `GET /api/v1/users/{userId}/journey`, on the one engine: the last
//! two build the native requests of `POST /api/v2/retention` and `/api/v2/journey` and name
//! errors by seed 003's parameters.

use axum::extract::Path;
use axum::response::Response;
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_model::Site;
use heartbeat_query::{journey, parse_journey, parse_retention, retention, QueryError};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::compat::params::{date_range, RangeParams};
use crate::http::error::ApiError;
use crate::http::json::iso;
use crate::http::reads::{read_site, run_query, Answer, PooledRead};
use crate::http::state::{App, Caller};

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
    let answer = retention(&query, app.reads.as_ref()).await?;
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
        .routes(routes!(retention_cohorts))
        .routes(routes!(user_journey))
}
