//! The whole HTTP surface, assembled: the native API (`api/`), the doors of the products
//! Heartbeat stands in for (`compat/`), the live stream (`live/`) and the documentation,
//! whose OpenAPI document is gathered from the routes as they are registered. Ingest routes
//! answer any origin (the tracker runs on users' sites); the private API answers only
//! `cors_origins` (none: same origin only). Every response carries the security headers; a
//! handler slower than `request_timeout` is answered 408.

use std::time::Duration;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::http::error::ApiError;
use crate::http::state::App;

/// Any path no route matches: the one error shape, naming the path field.
async fn no_route() -> ApiError {
    ApiError::not_found("path", "no such endpoint; see /api-docs")
}

/// Every route with its documentation: the router and the OpenAPI document it serves.
pub fn routes() -> (Router<App>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(crate::api::docs::frame())
        .merge(crate::api::router())
        .merge(crate::compat::router())
        .merge(crate::live::router())
        .split_for_parts()
}

pub fn router(
    app: App,
    cors_origins: &[String],
    request_timeout: Duration,
    role: crate::config::Role,
) -> Router {
    let cors = crate::http::shield::Cors {
        origins: std::sync::Arc::new(cors_origins.to_vec()),
    };
    let (routes, document) = routes();
    routes
        .merge(crate::api::docs::router(document))
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            crate::http::shield::time_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            cors,
            crate::http::shield::cors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            role,
            crate::http::shield::role_gate,
        ))
        .layer(axum::middleware::from_fn(
            crate::http::shield::security_headers,
        ))
        .layer(axum::middleware::from_fn(crate::telemetry::http::observe))
        .with_state(app)
}
