//! Seed 003 (event analytics): `GET /api/v1/events/summary` (totals and top events) and
//! `GET /api/v1/metrics` (time-bucketed counts of one event), on the one engine.

use axum::response::Response;
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_model::Site;
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

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(summary))
        .routes(routes!(metrics))
}
