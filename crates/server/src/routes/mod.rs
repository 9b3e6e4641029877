//! HTTP routes, one module per area, each with `router()`. Handlers are thin: extract, call
//! one domain function, map to a response.

pub mod analytics;
pub mod data;
pub mod docs;
pub mod events;
pub mod health;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod sites;
pub mod stats;
pub mod web;

use axum::Router;

use crate::app::App;
use crate::error::ApiError;

/// Any path no route matches: the one error shape, naming the path field.
async fn no_route() -> ApiError {
    ApiError::not_found("path", "no such endpoint; see /api-docs")
}

pub fn router(app: App) -> Router {
    Router::new()
        .merge(analytics::router())
        .merge(events::router())
        .merge(health::router())
        .merge(ingest::router())
        .merge(sites::router())
        .merge(stats::router())
        .merge(metrics::router())
        .merge(docs::router())
        .merge(data::router())
        .merge(live::router())
        .merge(web::router())
        .fallback(no_route)
        .layer(axum::middleware::from_fn(crate::telemetry::http::observe))
        .with_state(app)
}
