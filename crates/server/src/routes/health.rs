//! `GET /health`: 200 once the server accepts events (it binds only after the queue, the
//! store and the processor are up).

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::app::App;

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub fn router() -> Router<App> {
    Router::new().route("/health", get(health))
}
