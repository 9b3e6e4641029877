//! Plausible's read endpoints beside the Stats API v2 (which is native, `api/stats.rs`):
//! `GET /api/v1/realtime/visitors`, the visitors of the last 5 minutes as a bare number.

use axum::response::Response;
use axum::Json;
use heartbeat_query::current_visitors;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::compat::params::{now_ms, Params};
use crate::http::error::ApiError;
use crate::http::reads::{read_site, Answer, PooledRead};
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

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(realtime_visitors))
}
