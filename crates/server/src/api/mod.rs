//! Heartbeat's own API, one module per area, each registering its routes with their OpenAPI
//! operations. Handlers are thin: extract, call one domain function, map to a response.

pub mod accounts;
pub mod alerts;
pub mod annotations;
pub mod data;
pub mod docs;
pub mod funnels;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod product;
pub mod reports;
pub mod sites;
pub mod stats;
pub mod web;

use utoipa_axum::router::OpenApiRouter;

use crate::http::state::App;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .merge(accounts::router())
        .merge(alerts::router())
        .merge(annotations::router())
        .merge(data::router())
        .merge(funnels::router())
        .merge(health::router())
        .merge(ingest::router())
        .merge(metrics::router())
        .merge(product::router())
        .merge(reports::router())
        .merge(sites::router())
        .merge(stats::router())
        .merge(web::router())
}
