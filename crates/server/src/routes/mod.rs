//! HTTP routes, one module per area, each with `router()`. Handlers are thin: extract, call
//! one domain function, map to a response.

pub mod analytics;
pub mod events;
pub mod health;
pub mod ingest;
pub mod sites;
pub mod stats;

use axum::Router;

use crate::app::App;

pub fn router(app: App) -> Router {
    Router::new()
        .merge(analytics::router())
        .merge(events::router())
        .merge(health::router())
        .merge(ingest::router())
        .merge(sites::router())
        .merge(stats::router())
        .with_state(app)
}
