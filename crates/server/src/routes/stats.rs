//! Statistics: `POST /api/v2/query` (Plausible Stats API v2) and seed 002's
//! `GET /api/stats`, both through the one query engine.

use std::time::Instant;

use axum::extract::{Query as UrlQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use heartbeat_ingest::FieldError;
use heartbeat_model::SiteId;
use heartbeat_query::{parse_query, requested_site, QueryResult};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::{App, Caller, Payload, RequiredCaller};
use crate::error::ApiError;

const ALL_TIME_MS: i64 = 5 * 365 * 86_400_000;

/// The site a read request is about: the one it names (`site_id`), else the caller's own
/// key's site; the caller must be allowed to read it.
pub(crate) fn read_site(
    app: &App,
    caller: &Caller,
    named: Option<&str>,
) -> Result<heartbeat_model::Site, ApiError> {
    let site_id = match named.filter(|s| !s.is_empty()) {
        Some(id) => SiteId(id.to_owned()),
        None => caller.grant.site_id.clone().ok_or_else(|| {
            ApiError::invalid(vec![FieldError::new(
                "site_id",
                "site_id is required with an admin key",
            )])
        })?,
    };
    let site = app
        .registry
        .site(&site_id)
        .ok_or_else(|| ApiError::not_found("site_id", format!("no site {site_id}")))?;
    if !caller.may_read(&site.id) {
        return Err(ApiError::forbidden(site.id.as_str()));
    }
    Ok(site)
}

/// Authorizes `caller` on the site `body` names, parses and runs the query.
pub(crate) async fn run_query(
    app: &App,
    caller: &Caller,
    body: &Value,
) -> Result<(heartbeat_query::Query, QueryResult), ApiError> {
    let site_id = requested_site(body)?;
    let site = app
        .registry
        .site(&site_id)
        .ok_or_else(|| ApiError::not_found("site_id", format!("no site {site_id}")))?;
    if !caller.may_read(&site.id) {
        return Err(ApiError::forbidden(site.id.as_str()));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let query = parse_query(
        body,
        &site,
        now,
        now - ALL_TIME_MS,
        &app.queries.settings.bounds,
    )?;
    let result = app.query_cache.execute(&query, app.store.as_ref()).await?;
    Ok((query, result))
}

/// Plausible's Stats API v2: metrics over a date range, broken down by dimensions,
/// filtered, ordered and paginated.
#[utoipa::path(post, path = "/api/v2/query", tag = "stats",
    request_body = crate::routes::docs::QueryRequest,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{results: [{metrics, dimensions}], meta, query}`", body = Object),
        (status = 400, description = "Invalid query; each bad part is named", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn v2_query(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/api/v2/query", async move {
            let body: Value = serde_json::from_slice(&body).map_err(|err| {
                ApiError::new(StatusCode::BAD_REQUEST, "Malformed JSON")
                    .with_detail("body", err.to_string())
            })?;
            let (query, result) = run_query(&app, &caller.0, &body).await?;
            Ok(Json(result.to_json(&query, &body)))
        })
        .await
}

#[derive(Deserialize)]
pub(crate) struct StatsParams {
    site_id: Option<String>,
    date: Option<String>,
}

/// Seed 002: views, unique users and the top 10 paths of one day (default: the last 24
/// hours).
#[utoipa::path(get, path = "/api/stats", tag = "stats",
    params(
        ("site_id" = String, Query, description = "The site"),
        ("date" = Option<String>, Query, description = "A day, YYYY-MM-DD; default: the last 24 hours"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, data: {total_views, unique_users_count, top_paths}, processing_time_ms}`", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn seed_stats(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let queries = app.queries.clone();
    queries
        .run(
            "/api/stats",
            seed_stats_answer(app, caller.0, params, started),
        )
        .await
}

async fn seed_stats_answer(
    app: App,
    caller: Caller,
    params: StatsParams,
    started: Instant,
) -> Result<Json<Value>, ApiError> {
    let site_id = params.site_id.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::invalid(vec![FieldError::new("site_id", "site_id is required")])
    })?;
    if let Some(date) = &params.date {
        if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
            return Err(ApiError::invalid(vec![FieldError::new(
                "date",
                "date must be YYYY-MM-DD",
            )]));
        }
    }
    let date_range = match &params.date {
        Some(date) => json!([date, date]),
        None => json!("24h"),
    };
    let totals =
        json!({"site_id": site_id, "metrics": ["pageviews", "visitors"], "date_range": date_range});
    let (_, totals) = run_query(&app, &caller, &totals).await?;
    let paths = json!({
        "site_id": site_id, "metrics": ["pageviews"], "date_range": date_range,
        "dimensions": ["event:page"], "filters": [["is", "event:name", ["pageview"]]],
        "order_by": [["pageviews", "desc"]], "pagination": {"limit": 10}
    });
    let (_, paths) = run_query(&app, &caller, &paths).await?;
    let metric = |row: &heartbeat_query::ResultRow, i: usize| row.metrics[i].as_u64().unwrap_or(0);
    let first = totals.results.first();
    let body = json!({
        "success": true,
        "data": {
            "site_id": SiteId(site_id),
            "date": params.date.unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string()),
            "total_views": first.map(|r| metric(r, 0)).unwrap_or(0),
            "unique_users_count": first.map(|r| metric(r, 1)).unwrap_or(0),
            "top_paths": paths.results.iter().map(|r| json!({"path": r.dimensions[0], "views": metric(r, 0)})).collect::<Vec<_>>(),
        },
        "processing_time_ms": started.elapsed().as_millis() as u64,
    });
    Ok(Json(body))
}

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v2/query", post(v2_query))
        .route("/api/stats", get(seed_stats))
}
