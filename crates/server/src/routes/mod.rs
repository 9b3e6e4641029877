//! HTTP routes, one module per area, each with `router()`. Handlers are thin: extract, call
//! one domain function, map to a response.

pub mod accounts;
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

use std::time::Duration;

use axum::Router;

use crate::app::App;
use crate::error::ApiError;

/// Any path no route matches: the one error shape, naming the path field.
async fn no_route() -> ApiError {
    ApiError::not_found("path", "no such endpoint; see /api-docs")
}

/// The whole API. Ingest routes answer any origin (the tracker runs on users' sites); the
/// private API answers only `cors_origins` (none: same origin only). Every response carries
/// the security headers; a handler slower than `request_timeout` is answered 408.
pub fn router(app: App, cors_origins: &[String], request_timeout: Duration) -> Router {
    let cors = crate::shield::Cors {
        origins: std::sync::Arc::new(cors_origins.to_vec()),
    };
    Router::new()
        .merge(accounts::router())
        .merge(analytics::router())
        .merge(events::router())
        .merge(health::router())
        .merge(sites::router())
        .merge(stats::router())
        .merge(metrics::router())
        .merge(docs::router())
        .merge(data::router())
        .merge(live::router())
        .merge(web::router())
        .merge(ingest::router())
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            crate::shield::time_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            cors,
            crate::shield::cors,
        ))
        .layer(axum::middleware::from_fn(crate::shield::security_headers))
        .layer(axum::middleware::from_fn(crate::telemetry::http::observe))
        .with_state(app)
}
