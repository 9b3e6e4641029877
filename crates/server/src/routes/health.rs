//! `GET /health`: 200 once the server accepts events (it binds only after the queue, the
//! store and the processor are up).

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::app::App;

/// Liveness and readiness: 200 once the server accepts events.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Ready", body = Object, example = json!({"status": "ok"}))))]
pub(crate) async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub fn router() -> Router<App> {
    Router::new().route("/health", get(health))
}
