//! Plausible's read endpoints beside the Stats API v2 (which is native, `api/stats.rs`):
//! the visitors of the last 5 minutes as a bare number (`GET /api/v1/realtime/visitors`,
//! and Stats API v1's `GET /api/v1/stats/realtime/visitors`), and Stats API v1's
//! `aggregate`, `timeseries` and `breakdown`, translated by the query crate into v2 requests
//! for the one engine.

use axum::response::Response;
use axum::Json;
use heartbeat_query::{current_visitors, v1_answer, v1_to_v2, TimeZone, V1Kind, V1Request};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::compat::params::{now_ms, Params};
use crate::http::error::ApiError;
use crate::http::reads::{read_site, run_query, Answer, PooledRead};
use crate::http::state::{App, Caller};

/// Plausible's realtime visitors: a bare number.
#[utoipa::path(operation_id = "analytics_realtime_visitors", get, path = "/api/v1/realtime/visitors", tag = "stats",
    params(Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Visitors with an event in the last 5 minutes, a number", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn realtime_visitors(read: PooledRead<Params>) -> Result<Response, ApiError> {
    read.answer(realtime_visitors_answer).await
}

async fn realtime_visitors_answer(app: App, caller: Caller, params: Params) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    Ok(Json(json!(
        current_visitors(&site.id, now_ms(), app.reads.as_ref()).await?
    )))
}

/// Plausible Stats API v1's parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct V1Params {
    /// The site's domain; default: the key's own site.
    pub site_id: Option<String>,
    /// `day`, `7d`, `28d`, `30d` (default), `90d`, `month`, `6mo`, `12mo`, `year`, `all`,
    /// `custom` (with `date=FROM,TO`).
    pub period: Option<String>,
    /// The day the period ends on (YYYY-MM-DD, default today; the `Nd` periods end the day
    /// before it), or `FROM,TO` with `period=custom`.
    pub date: Option<String>,
    /// Comma-separated metrics (default `visitors`).
    pub metrics: Option<String>,
    /// `key==value;key!=a|b`, `*` and `**` as wildcards.
    pub filters: Option<String>,
    /// Breakdown: the property (`event:page`, `visit:source`, `event:props:<key>`, ...).
    pub property: Option<String>,
    /// Time series: `hour`, `date`, `week` or `month` (default by period).
    pub interval: Option<String>,
    /// Aggregate: `previous_period` adds each metric's `change`.
    pub compare: Option<String>,
    /// Breakdown: rows per page, default 100.
    pub limit: Option<String>,
    /// Breakdown: the page, from 1.
    pub page: Option<String>,
    /// `true` adds the site's imported statistics where they answer the query.
    pub with_imported: Option<String>,
}

async fn v1(app: App, caller: Caller, params: V1Params, kind: V1Kind) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let tz: TimeZone = site.timezone.parse().unwrap_or_default();
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let request = V1Request {
        site_id: site.id.0.clone(),
        period: params.period,
        date: params.date,
        metrics: params.metrics,
        filters: params.filters,
        property: params.property,
        interval: params.interval,
        compare: params.compare,
        limit: params.limit,
        page: params.page,
        with_imported: params.with_imported,
    };
    let body = v1_to_v2(kind, &request, today)?;
    let (query, result) = run_query(&app, &caller, &body).await?;
    Ok(Json(v1_answer(
        kind,
        &request,
        &result.to_json(&query, &body),
    )))
}

/// Plausible Stats API v1: metrics over the period, `{"results": {"visitors": {"value": 3}}}`
/// (with `change` when `compare=previous_period`).
#[utoipa::path(operation_id = "plausible_v1_aggregate", get, path = "/api/v1/stats/aggregate", tag = "stats",
    params(V1Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{\"results\": {metric: {\"value\", \"change\"?}}}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn v1_aggregate(read: PooledRead<V1Params>) -> Result<Response, ApiError> {
    read.answer(|app, caller, params| v1(app, caller, params, V1Kind::Aggregate))
        .await
}

/// Plausible Stats API v1: metrics by time bucket, every bucket of the period,
/// `{"results": [{"date": "2021-01-01", "visitors": 3}]}`.
#[utoipa::path(operation_id = "plausible_v1_timeseries", get, path = "/api/v1/stats/timeseries", tag = "stats",
    params(V1Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{\"results\": [{\"date\", metric...}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn v1_timeseries(read: PooledRead<V1Params>) -> Result<Response, ApiError> {
    read.answer(|app, caller, params| v1(app, caller, params, V1Kind::Timeseries))
        .await
}

/// Plausible Stats API v1: metrics by one property,
/// `{"results": [{"source": "Google", "visitors": 3}]}`.
#[utoipa::path(operation_id = "plausible_v1_breakdown", get, path = "/api/v1/stats/breakdown", tag = "stats",
    params(V1Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{\"results\": [{property, metric...}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn v1_breakdown(read: PooledRead<V1Params>) -> Result<Response, ApiError> {
    read.answer(|app, caller, params| v1(app, caller, params, V1Kind::Breakdown))
        .await
}

/// Plausible Stats API v1's realtime visitors: a bare number.
#[utoipa::path(operation_id = "plausible_v1_realtime_visitors", get, path = "/api/v1/stats/realtime/visitors", tag = "stats",
    params(Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Visitors with an event in the last 5 minutes, a number", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn v1_realtime_visitors(read: PooledRead<Params>) -> Result<Response, ApiError> {
    read.answer(realtime_visitors_answer).await
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(realtime_visitors))
        .routes(routes!(v1_realtime_visitors))
        .routes(routes!(v1_aggregate))
        .routes(routes!(v1_timeseries))
        .routes(routes!(v1_breakdown))
}
