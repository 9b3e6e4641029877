//! Drops events whose client-given id was stored already (a client retrying a send).
//!
//! Ids are remembered, as 128-bit hashes of (site, id), for events within a window of event
//! time (24 hours by default), rebuilt from the store on start. Older events are checked
//! against the store itself. Generated ids are unique and skip all of this.

use std::collections::HashMap;
use std::hash::Hasher;

use heartbeat_model::{Event, SiteId};
use heartbeat_store::{EventStore, StoreError};
use siphasher::sip128::{Hasher128, SipHasher13};

pub struct Deduplicator {
    window_ms: i64,
    /// Hash of (site, event id) -> event time, for pruning.
    seen: HashMap<u128, i64>,
}

fn key(site: &SiteId, event_id: &str) -> u128 {
    let mut hasher = SipHasher13::new();
    hasher.write(site.as_str().as_bytes());
    hasher.write_u8(0xff);
    hasher.write(event_id.as_bytes());
    hasher.finish128().as_u128()
}

impl Deduplicator {
    pub fn new(window_ms: i64) -> Self {
        Deduplicator {
            window_ms,
            seen: HashMap::new(),
        }
    }

    /// Loads the ids stored within the window before `now_ms`.
    pub async fn restore(&mut self, store: &dyn EventStore, now_ms: i64) -> Result<(), StoreError> {
        for (site, id) in store.client_event_ids(now_ms - self.window_ms).await? {
            self.seen.insert(key(&site, &id), now_ms);
        }
        Ok(())
    }

    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Removes duplicates from `events`, returning how many were dropped.
    pub async fn filter(
        &mut self,
        events: &mut Vec<Event>,
        store: &dyn EventStore,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let horizon = now_ms - self.window_ms;
        // Old events are outside the window: ask the store, per site.
        let mut old_by_site: HashMap<SiteId, Vec<String>> = HashMap::new();
        for e in events
            .iter()
            .filter(|e| e.event_id_from_client && e.timestamp_ms < horizon)
        {
            old_by_site
                .entry(e.site_id.clone())
                .or_default()
                .push(e.event_id.clone());
        }
        for (site, ids) in old_by_site {
            for chunk in ids.chunks(500) {
                for id in store.existing_event_ids(&site, chunk).await? {
                    self.seen.insert(key(&site, &id), now_ms);
                }
            }
        }
        let before = events.len();
        let seen = &mut self.seen;
        events.retain(|e| {
            !e.event_id_from_client
                || seen
                    .insert(key(&e.site_id, &e.event_id), e.timestamp_ms.max(horizon))
                    .is_none()
        });
        Ok(before - events.len())
    }

    /// Forgets ids of events older than the window.
    pub fn prune(&mut self, now_ms: i64) {
        let horizon = now_ms - self.window_ms;
        self.seen.retain(|_, ts| *ts >= horizon);
    }
}
