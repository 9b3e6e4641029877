//! The retention job: every interval, deletes each site's events older than its
//! `retention_days` (and the visits that started before that), through
//! [`EventStore::delete_before`]. Sites without a retention keep everything.
//!
//! Ingest never waits for it (requests end at the queue); the store deletes a day of data per
//! transaction, so the processor's inserts wait at most for one such step.

use std::sync::Arc;
use std::time::Duration;

use heartbeat_store::{Deleted, EventData};
use tokio::sync::watch;

use crate::telemetry::RETENTION_EVENTS_DELETED;
use heartbeat_accounts::registry::Registry;

const DAY_MS: i64 = 86_400_000;

/// One pass over every site at time `now_ms`; a failing site is logged and skipped.
pub async fn run_once(registry: &Registry, store: &dyn EventData, now_ms: i64) -> Deleted {
    let mut total = Deleted::default();
    for site in registry.sites() {
        let Some(days) = site.retention_days else {
            continue;
        };
        let before_ms = now_ms - i64::from(days) * DAY_MS;
        match store.delete_before(&site.id, before_ms).await {
            Ok(deleted) => {
                metrics::counter!(RETENTION_EVENTS_DELETED).increment(deleted.events);
                if deleted.events > 0 || deleted.visits > 0 {
                    tracing::info!(
                        site = %site.id,
                        days,
                        events = deleted.events,
                        visits = deleted.visits,
                        "retention deleted expired data"
                    );
                }
                total.events += deleted.events;
                total.visits += deleted.visits;
            }
            Err(err) => tracing::warn!(site = %site.id, error = %err, "retention failed"),
        }
    }
    total
}

/// Runs a pass now and then every `interval` until `stop` turns true.
pub async fn run(
    registry: Arc<Registry>,
    store: Arc<dyn EventData>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        run_once(
            &registry,
            store.as_ref(),
            chrono::Utc::now().timestamp_millis(),
        )
        .await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}
