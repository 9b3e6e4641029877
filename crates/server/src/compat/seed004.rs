//! Seed 004 (real-time analytics): `GET /analytics/summary`, `/analytics/top-pages`,
//! `/analytics/timeseries?range=` and `/analytics/recent`, on the one engine.

use axum::response::Response;
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_query::{current_visitors, list_events, EventListing};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::compat::params::{now_ms, page_limit, preset, Params};
use crate::event_json::seed004_recent;
use crate::http::error::ApiError;
use crate::http::reads::{read_site, run_query, Answer, PooledRead};
use crate::http::state::{App, Caller};

/// Seed 004: totals for the dashboard's summary cards.
#[utoipa::path(operation_id = "analytics_summary", get, path = "/analytics/summary", tag = "stats",
    params(Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 004: total_events, unique_users, page_views, sessions, active_users", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn summary(read: PooledRead<Params>) -> Result<Response, ApiError> {
    read.answer(summary_answer).await
}

async fn summary_answer(app: App, caller: Caller, params: Params) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let query = json!({"site_id": site.id, "date_range": preset(&params),
        "metrics": ["events", "visitors", "pageviews", "visits"]});
    let (_, result) = run_query(&app, &caller, &query)
        .await
        .map_err(|err| err.renamed("date_range", "range"))?;
    let m = &result.results[0].metrics;
    Ok(Json(json!({
        "total_events": m[0], "unique_users": m[1], "page_views": m[2], "sessions": m[3],
        "active_users": current_visitors(&site.id, now_ms(), app.reads.as_ref()).await?,
    })))
}

/// Seed 004: the most viewed pages.
#[utoipa::path(operation_id = "analytics_top_pages", get, path = "/analytics/top-pages", tag = "stats",
    params(Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 004: `[{page_url, views, unique_users}]`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn top_pages(read: PooledRead<Params>) -> Result<Response, ApiError> {
    read.answer(top_pages_answer).await
}

async fn top_pages_answer(app: App, caller: Caller, params: Params) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let limit = page_limit(params.limit, 10)?;
    let query = json!({"site_id": site.id, "date_range": preset(&params),
        "metrics": ["pageviews", "visitors"], "dimensions": ["event:page"],
        "order_by": [["pageviews", "desc"]], "pagination": {"limit": limit}});
    let (_, result) = run_query(&app, &caller, &query)
        .await
        .map_err(|err| err.renamed("date_range", "range"))?;
    let pages: Vec<Value> = result
        .results
        .iter()
        .map(|row| json!({"page_url": row.dimensions[0], "views": row.metrics[0], "unique_users": row.metrics[1]}))
        .collect();
    Ok(Json(json!(pages)))
}

/// Seed 004: events and unique users per hour (`range=24h`) or per day, every bucket.
#[utoipa::path(operation_id = "analytics_timeseries", get, path = "/analytics/timeseries", tag = "stats",
    params(Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 004: `[{time, events, unique_users, page_views}]`, every bucket", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn timeseries(read: PooledRead<Params>) -> Result<Response, ApiError> {
    read.answer(timeseries_answer).await
}

async fn timeseries_answer(app: App, caller: Caller, params: Params) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let range = params
        .range
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "24h".into());
    let dimension = match range.as_str() {
        "24h" | "day" => "time:hour",
        "7d" | "28d" | "30d" | "91d" | "month" => "time:day",
        "6mo" | "12mo" | "year" => "time:month",
        _ => {
            return Err(ApiError::invalid(vec![FieldError::new(
                "range",
                "range must be 24h, day, 7d, 28d, 30d, 91d, month, 6mo, 12mo or year",
            )]))
        }
    };
    let query = json!({"site_id": site.id, "date_range": range, "metrics": ["events", "visitors", "pageviews"],
        "dimensions": [dimension], "include": {"time_labels": true}, "pagination": {"limit": 10000}});
    let (_, result) = run_query(&app, &caller, &query)
        .await
        .map_err(|err| err.renamed("date_range", "range"))?;
    let points: Vec<Value> = result
        .series(3)
        .into_iter()
        .map(|(label, m)| {
            json!({"time": label, "events": m[0], "unique_users": m[1], "page_views": m[2]})
        })
        .collect();
    Ok(Json(json!(points)))
}

/// Seed 004: the latest events, newest first.
#[utoipa::path(operation_id = "analytics_recent", get, path = "/analytics/recent", tag = "stats",
    params(Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 004: the latest events, newest first", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn recent(read: PooledRead<Params>) -> Result<Response, ApiError> {
    read.answer(recent_answer).await
}

async fn recent_answer(app: App, caller: Caller, params: Params) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let listing = EventListing::new(site.id, page_limit(params.limit, 20)?);
    let page = list_events(&listing, app.reads.as_ref()).await?;
    let events: Vec<Value> = page.events.iter().map(seed004_recent).collect();
    Ok(Json(json!(events)))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(summary))
        .routes(routes!(top_pages))
        .routes(routes!(timeseries))
        .routes(routes!(recent))
}
