//! Seed 002 (website analytics): `GET /api/stats?site_id=&date=`, views, unique users and
//! the top paths of one day, on the one engine.

use std::time::Instant;

use axum::response::Response;
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_model::SiteId;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::error::ApiError;
use crate::http::reads::{run_query, Answer, PooledRead};
use crate::http::state::{App, Caller};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsParams {
    /// The site.
    site_id: Option<String>,
    /// A day, YYYY-MM-DD; default: the last 24 hours.
    date: Option<String>,
}

/// Seed 002: views, unique users and the top 10 paths of one day (default: the last 24
/// hours).
#[utoipa::path(get, path = "/api/stats", tag = "stats",
    params(StatsParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, data: {total_views, unique_users_count, top_paths}, processing_time_ms}`", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn seed_stats(read: PooledRead<StatsParams>) -> Result<Response, ApiError> {
    let started = Instant::now();
    read.answer(move |app, caller, params| seed_stats_answer(app, caller, params, started))
        .await
}

async fn seed_stats_answer(
    app: App,
    caller: Caller,
    params: StatsParams,
    started: Instant,
) -> Answer {
    let mut errors = Vec::new();
    let site_id = params.site_id.filter(|s| !s.is_empty());
    if site_id.is_none() {
        errors.push(FieldError::new("site_id", "site_id is required"));
    }
    if let Some(date) = &params.date {
        if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
            errors.push(FieldError::new("date", "date must be YYYY-MM-DD"));
        }
    }
    let Some(site_id) = site_id.filter(|_| errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
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

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(seed_stats))
}
