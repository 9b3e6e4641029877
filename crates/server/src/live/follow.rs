//! The live feed of a node whose own processors do not store every event: an API node of
//! a cluster, or a node holding some of the queue's partitions. While a stream is open, the
//! events any node stored are read back from the store every second and published to the
//! hub, as a local processor publishes its batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use heartbeat_processor::LIVE_WINDOW_MS;
use heartbeat_store::{EventData, InsertBatch};
use tokio::sync::{broadcast, watch};

/// How often the store is read while a stream is open.
const EVERY: Duration = Duration::from_secs(1);
/// How far back in stored time each read looks: an event another node stored becomes
/// visible here up to this late (an insert in progress, clocks a little apart, stored times
/// in whole seconds). Events read again are not published again.
const LOOK_BACK_MS: i64 = 5_000;
/// Most events one read takes (the busiest second of a large cluster shows a part of its
/// events live).
const MOST_EVENTS: usize = 5_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs until `stop` turns true.
pub async fn run(
    store: Arc<dyn EventData>,
    stored: broadcast::Sender<Arc<InsertBatch>>,
    mut stop: watch::Receiver<bool>,
) {
    // Published event ids and their stored times, kept for the look-back.
    let mut published: HashMap<(String, String), i64> = HashMap::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if stored.receiver_count() == 0 {
            published.clear();
            continue;
        }
        let now = now_ms();
        let since = now - LOOK_BACK_MS;
        let read = match store
            .stored_since(since, now - LIVE_WINDOW_MS, MOST_EVENTS)
            .await
        {
            Ok(read) => read,
            Err(err) => {
                tracing::debug!(error = %err, "live: stored events not read");
                continue;
            }
        };
        published.retain(|_, stored_ms| *stored_ms >= since - 1000);
        let events: Vec<_> = read
            .into_iter()
            .filter_map(|(event, stored_ms)| {
                let key = (event.site_id.as_str().to_owned(), event.event_id.clone());
                published.insert(key, stored_ms).is_none().then_some(event)
            })
            .collect();
        if !events.is_empty() {
            // No stream open any more is no error.
            let _ = stored.send(Arc::new(InsertBatch {
                events,
                sessions: Vec::new(),
                queue_position: 0,
            }));
        }
    }
}
