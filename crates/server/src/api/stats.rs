//! Statistics: `POST /api/v2/query`, Plausible's Stats API v2 on the one query engine.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::error::ApiError;
use crate::http::reads::run_query;
use crate::http::state::{App, Payload, RequiredCaller};

/// Plausible's Stats API v2: metrics over a date range, broken down by dimensions,
/// filtered, ordered and paginated.
#[utoipa::path(post, path = "/api/v2/query", tag = "stats",
    request_body = crate::http::schema::QueryRequest,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{results: [{metrics, dimensions}], meta, query}`", body = Object),
        crate::http::schema::AdminRefusals,
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::http::schema::ErrorBody),
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

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(v2_query))
}
