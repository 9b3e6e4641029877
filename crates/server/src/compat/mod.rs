//! The doors of what users come from, one module per product: the seeds' read endpoints
//! (`seed000` the original Heartbeat ... `seed004`), Plausible's beside the Stats API v2 and
//! Plausible's Sites API (`plausible_sites`).
//! Each is a thin adapter onto the same domain calls as the native API; their shared
//! parameters are in `params.rs`, Plausible's list pages in `pages.rs`. (Their ingest
//! formats are decoded in `heartbeat-ingest` and received in `api/ingest.rs`.)

pub mod pages;
pub mod params;
pub mod plausible;
pub mod plausible_sites;
pub mod seed000;
pub mod seed001;
pub mod seed002;
pub mod seed003;
pub mod seed004;

use utoipa_axum::router::OpenApiRouter;

use crate::http::state::App;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .merge(plausible::router())
        .merge(plausible_sites::router())
        .merge(seed000::router())
        .merge(seed001::router())
        .merge(seed002::router())
        .merge(seed003::router())
        .merge(seed004::router())
}
