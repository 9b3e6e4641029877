//! Dashboard-style reads of seeds 000 and 004 and the realtime count, on the one engine:
//! seed 000's `GET /analytics/metrics?siteId=`; seed 004's `GET /analytics/summary`,
//! `/analytics/top-pages`, `/analytics/timeseries?range=` and `/analytics/recent`;
//! `GET /api/v1/realtime/visitors` (Plausible's current visitors, last 5 minutes).

use axum::extract::{Query as UrlQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use heartbeat_ingest::FieldError;
use heartbeat_query::{current_visitors, list_events, EventListing, MAX_PAGE};
use serde::Deserialize;
use serde_json::{json, Value};

use super::events::iso;
use super::stats::{read_site, run_query};
use crate::app::{App, Caller, RequiredCaller};
use crate::error::ApiError;

#[derive(Deserialize)]
pub(crate) struct Params {
    #[serde(alias = "siteId")]
    site_id: Option<String>,
    /// A v2 preset (`day`, `7d`, `30d`, `month`, ...; default `30d`), or `24h`.
    #[serde(alias = "period")]
    range: Option<String>,
    limit: Option<usize>,
}

fn preset(params: &Params) -> String {
    params
        .range
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "30d".to_owned())
}

/// `limit`, 1 to [`MAX_PAGE`] rows (`default` without one).
fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match limit.unwrap_or(default) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(ApiError::invalid(vec![FieldError::new(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        )])),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Seed 000: the site's visitor metrics.
#[utoipa::path(operation_id = "analytics_site_metrics", get, path = "/analytics/metrics", tag = "stats",
    params(
        ("siteId" = Option<String>, Query, description = "The site"),
        ("range" = Option<String>, Query, description = "A preset, default 30d"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 000: visitors, visits, pageviews, bounceRate, visitDuration, currentVisitors", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn site_metrics(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<Params>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run(
            "/analytics/metrics",
            site_metrics_answer(app, caller.0, params),
        )
        .await
}

async fn site_metrics_answer(
    app: App,
    caller: Caller,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let query = json!({"site_id": site.id, "date_range": preset(&params),
        "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "views_per_visit"]});
    let (query, result) = run_query(&app, &caller, &query)
        .await
        .map_err(|err| err.renamed("date_range", "range"))?;
    let m = &result.results[0].metrics;
    Ok(Json(json!({
        "siteId": site.id,
        "range": {"from": iso(query.range.start_ms), "to": iso(query.range.end_ms - 1)},
        "visitors": m[0], "visits": m[1], "pageviews": m[2], "bounceRate": m[3],
        "visitDuration": m[4], "viewsPerVisit": m[5],
        "currentVisitors": current_visitors(&site.id, now_ms(), app.store.as_ref()).await?,
    })))
}

/// Seed 004: totals for the dashboard's summary cards.
#[utoipa::path(operation_id = "analytics_summary", get, path = "/analytics/summary", tag = "stats",
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
        ("range" = Option<String>, Query, description = "A preset, default 30d"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 004: total_events, unique_users, page_views, sessions, active_users", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn summary(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<Params>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/analytics/summary", summary_answer(app, caller.0, params))
        .await
}

async fn summary_answer(app: App, caller: Caller, params: Params) -> Result<Json<Value>, ApiError> {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let query = json!({"site_id": site.id, "date_range": preset(&params),
        "metrics": ["events", "visitors", "pageviews", "visits"]});
    let (_, result) = run_query(&app, &caller, &query)
        .await
        .map_err(|err| err.renamed("date_range", "range"))?;
    let m = &result.results[0].metrics;
    Ok(Json(json!({
        "total_events": m[0], "unique_users": m[1], "page_views": m[2], "sessions": m[3],
        "active_users": current_visitors(&site.id, now_ms(), app.store.as_ref()).await?,
    })))
}

/// Seed 004: the most viewed pages.
#[utoipa::path(operation_id = "analytics_top_pages", get, path = "/analytics/top-pages", tag = "stats",
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
        ("range" = Option<String>, Query, description = "A preset, default 30d"),
        ("limit" = Option<usize>, Query, description = "Default 10"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 004: `[{page_url, views, unique_users}]`", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn top_pages(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<Params>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run(
            "/analytics/top-pages",
            top_pages_answer(app, caller.0, params),
        )
        .await
}

async fn top_pages_answer(
    app: App,
    caller: Caller,
    params: Params,
) -> Result<Json<Value>, ApiError> {
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
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
        ("range" = Option<String>, Query, description = "24h (hourly) or a preset (daily or monthly)"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 004: `[{time, events, unique_users, page_views}]`, every bucket", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn timeseries(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<Params>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run(
            "/analytics/timeseries",
            timeseries_answer(app, caller.0, params),
        )
        .await
}

async fn timeseries_answer(
    app: App,
    caller: Caller,
    params: Params,
) -> Result<Json<Value>, ApiError> {
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
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
        ("limit" = Option<usize>, Query, description = "Default 20"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 004: the latest events, newest first", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn recent(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<Params>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/analytics/recent", recent_answer(app, caller.0, params))
        .await
}

async fn recent_answer(app: App, caller: Caller, params: Params) -> Result<Json<Value>, ApiError> {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let listing = EventListing::new(site.id, page_limit(params.limit, 20)?);
    let page = list_events(&listing, app.store.as_ref()).await?;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|e| {
            json!({
                "event_id": e.event_id, "event_type": e.name, "user_id": e.user_id,
                "session_id": e.session_id, "page_url": e.pathname, "timestamp": iso(e.timestamp_ms),
                "metadata": e.props, "country": e.country, "browser": e.browser, "device": e.device,
            })
        })
        .collect();
    Ok(Json(json!(events)))
}

/// Plausible's realtime visitors: a bare number.
#[utoipa::path(operation_id = "analytics_realtime_visitors", get, path = "/api/v1/realtime/visitors", tag = "stats",
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Visitors with an event in the last 5 minutes, a number", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn realtime_visitors(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<Params>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run(
            "/api/v1/realtime/visitors",
            realtime_visitors_answer(app, caller.0, params),
        )
        .await
}

async fn realtime_visitors_answer(
    app: App,
    caller: Caller,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    Ok(Json(json!(
        current_visitors(&site.id, now_ms(), app.store.as_ref()).await?
    )))
}

pub fn router() -> Router<App> {
    Router::new()
        .route("/analytics/metrics", get(site_metrics))
        .route("/analytics/summary", get(summary))
        .route("/analytics/top-pages", get(top_pages))
        .route("/analytics/timeseries", get(timeseries))
        .route("/analytics/recent", get(recent))
        .route("/api/v1/realtime/visitors", get(realtime_visitors))
}
