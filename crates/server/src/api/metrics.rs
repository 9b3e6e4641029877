//! `GET /metrics`: every metric in Prometheus' text format (names and meanings in
//! `crate::telemetry`). Open like `/health`: it holds counts and timings, no site's data.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::http::state::App;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Prometheus text exposition of every metric.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(app): State<App>) -> impl IntoResponse {
    // Drops are counted by the ingestor itself, per reason; published as they stand.
    for (reason, count) in app.ingestor.dropped_counts() {
        metrics::counter!(crate::telemetry::INGEST_EVENTS_DROPPED, "reason" => reason.as_str())
            .absolute(count);
    }
    // The memory figures are read now, on the blocking pool (DuckDB's is a statement).
    let telemetry = app.telemetry.clone();
    let body = tokio::task::spawn_blocking(move || {
        telemetry.sample_memory();
        telemetry.render()
    })
    .await;
    let body = match body {
        Ok(body) => body,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Cancelled: the runtime is shutting down.
        Err(_) => String::new(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(metrics))
}
