//! Shared visitor-id salts: nodes whose metadata store is shared (PostgreSQL) agree on each
//! UTC day's salt through it (`MetaStore::day_salt`: the first node's proposal is kept), so
//! every ingest node gives a visitor the same id. Yesterday's, today's and tomorrow's salts
//! are agreed on at start and again every few minutes, so midnight never waits on the store;
//! older salts are deleted from the store, so old ids cannot be recomputed.

use std::sync::Arc;
use std::time::Duration;

use heartbeat_ingest::enrich::salt::{day_of, new_salt};
use heartbeat_ingest::Ingestor;
use heartbeat_store::{MetaStore, StoreError};
use tokio::sync::watch;

/// How often the salts are agreed on again.
const EVERY: Duration = Duration::from_secs(300);

/// Agrees on the salts of yesterday, today and tomorrow and hands them to ingest.
pub async fn agree(meta: &dyn MetaStore, ingestor: &Ingestor) -> Result<(), StoreError> {
    let today = day_of(chrono::Utc::now().timestamp_millis());
    for day in [today - 1, today, today + 1] {
        let salt = meta.day_salt(day, new_salt()).await?;
        ingestor.salts().remember(day, salt);
    }
    meta.forget_salts_before(today - 1).await
}

/// Agrees again every few minutes until `stop` turns true; a failure is logged and retried
/// at the next turn (tomorrow's salt is agreed on a day ahead).
pub async fn run(
    meta: Arc<dyn MetaStore>,
    ingestor: Arc<Ingestor>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if let Err(err) = agree(meta.as_ref(), &ingestor).await {
            tracing::warn!(error = %err, "agreeing on the visitor-id salts failed");
        }
    }
}
