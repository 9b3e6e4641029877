//! `GET /health`: 200 once the server accepts events (it binds only after the queue, the
//! store and the processor are up).

use axum::Json;
use serde_json::{json, Value};

use crate::http::state::App;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Liveness and readiness: 200 once the server accepts events.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Ready", body = Object, example = json!({"status": "ok"}))))]
pub(crate) async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(health))
}
