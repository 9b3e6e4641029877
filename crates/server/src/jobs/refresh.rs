//! The refresh job: a node whose metadata lives in a store other nodes write too (PostgreSQL)
//! reads its in-memory directories (sites, keys, accounts, share links, funnels; goals;
//! alert rules, webhooks and report recipients) again every interval, so a site created, a
//! key revoked or a rule changed through one node reaches the others within the interval.
//! A node that keeps its metadata to itself (DuckDB) has nothing to refresh and runs no job.

use std::sync::Arc;
use std::time::Duration;

use heartbeat_accounts::goals::Goals;
use heartbeat_accounts::registry::Registry;
use tokio::sync::watch;

use crate::alerting::Directory;

/// What is refreshed.
pub struct Directories {
    pub registry: Arc<Registry>,
    pub goals: Arc<Goals>,
    pub alerts: Arc<Directory>,
}

impl Directories {
    /// Reads all of them again; a failure is logged and the next pass tries again.
    pub async fn refresh(&self) {
        let results = [
            ("directory", self.registry.reload().await),
            ("goals", self.goals.reload().await),
            ("alerts", self.alerts.reload().await),
        ];
        for (what, result) in results {
            if let Err(err) = result {
                tracing::warn!(what, error = %err, "refreshing from the metadata store failed");
            }
        }
    }
}

/// Refreshes every `interval` until `stop` turns true.
pub async fn run(directories: Directories, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        directories.refresh().await;
    }
}
