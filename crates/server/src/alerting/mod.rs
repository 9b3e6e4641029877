//! Alerts, their deliveries and scheduled reports as the server runs them: the rules,
//! webhooks and recipients in memory over the `AlertStore` (`directory.rs`); the job that
//! evaluates rules and sends reports that are due (`evaluator.rs`, `reports.rs`, the
//! decisions themselves in `heartbeat-alerts` and the rendering in `heartbeat-reports`);
//! what a notice says (`notice.rs`); and the durable outbox that delivers it
//! (`outbox.rs`) by webhook (`webhook.rs`, whose targets `target.rs` checks) or email
//! (`email.rs`). The job runs in the `all` role on the one embedded node.

pub mod directory;
pub mod email;
pub mod evaluator;
pub mod notice;
pub mod outbox;
pub mod reports;
pub mod target;
pub mod webhook;

use std::sync::Arc;

use heartbeat_model::SiteId;

pub use directory::Directory;
pub use outbox::Outbox;

/// Everything alerting needs at run time.
pub struct Alerting {
    pub directory: Arc<Directory>,
    pub outbox: Arc<Outbox>,
    /// The base of links in notices and reports, without a trailing `/`.
    pub public_url: String,
    /// Whether webhooks may target private addresses.
    pub allow_private_targets: bool,
}

impl Alerting {
    /// The dashboard of `site` with `view` (more query parameters, like `period=day`).
    pub fn dashboard_url(&self, site: &SiteId, view: &str) -> String {
        let site: String = form_urlencoded::byte_serialize(site.as_str().as_bytes()).collect();
        format!("{}/?site={site}&{view}", self.public_url)
    }
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
