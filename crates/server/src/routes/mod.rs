//! HTTP routes, one module per area, each with `router()`. Handlers are thin: extract, call
//! one domain function, map to a response.

pub mod health;
pub mod ingest;
pub mod metrics;
pub mod sites;
pub mod stats;

use axum::Router;

use crate::app::App;

pub fn router(app: App) -> Router {
    Router::new()
        .merge(health::router())
        .merge(ingest::router())
        .merge(sites::router())
        .merge(stats::router())
        .merge(metrics::router())
        .layer(axum::middleware::from_fn(crate::telemetry::http::observe))
        .with_state(app)
}
