//! Seed 000 (the original Heartbeat): `GET /analytics/metrics?siteId=`, the site's visitor
//! metrics over a preset range, with the current visitors.

use axum::response::Response;
use axum::Json;
use heartbeat_query::current_visitors;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::compat::params::{now_ms, preset, Params};
use crate::http::error::ApiError;
use crate::http::json::iso;
use crate::http::reads::{read_site, run_query, Answer, PooledRead};
use crate::http::state::{App, Caller};

/// Seed 000: the site's visitor metrics.
#[utoipa::path(operation_id = "analytics_site_metrics", get, path = "/analytics/metrics", tag = "stats",
    params(Params),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 000: visitors, visits, pageviews, bounceRate, visitDuration, currentVisitors", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn site_metrics(read: PooledRead<Params>) -> Result<Response, ApiError> {
    read.answer(site_metrics_answer).await
}

async fn site_metrics_answer(app: App, caller: Caller, params: Params) -> Answer {
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
        "currentVisitors": current_visitors(&site.id, now_ms(), app.reads.as_ref()).await?,
    })))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(site_metrics))
}
