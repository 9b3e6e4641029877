//! Drops events whose client-given id was stored already (a client retrying a send).
//!
//! Ids are remembered, as 128-bit hashes of (site, id), for a window of arrival time (24
//! hours by default: retries come within minutes), rebuilt from the store's `received_at` on
//! start. Event time does not matter, so a backfill of old events costs no store lookups.
//! Generated ids are unique and skip all of this.

use std::collections::HashMap;
use std::hash::Hasher;

use heartbeat_model::{Event, SiteId};
use heartbeat_store::{EventWriter, StoreError};
use siphasher::sip128::{Hasher128, SipHasher13};

pub struct Deduplicator {
    window_ms: i64,
    /// Hash of (site, event id) -> arrival time, for pruning.
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
    pub async fn restore(
        &mut self,
        store: &dyn EventWriter,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        for (site, id) in store.client_event_ids(now_ms - self.window_ms).await? {
            self.seen.insert(key(&site, &id), now_ms);
        }
        Ok(())
    }

    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Removes duplicates from `events`, returning how many were dropped.
    pub fn filter(&mut self, events: &mut Vec<Event>, now_ms: i64) -> usize {
        let before = events.len();
        let seen = &mut self.seen;
        events.retain(|e| {
            !e.event_id_from_client || seen.insert(key(&e.site_id, &e.event_id), now_ms).is_none()
        });
        before - events.len()
    }

    /// Forgets ids that arrived before the window.
    pub fn prune(&mut self, now_ms: i64) {
        let horizon = now_ms - self.window_ms;
        self.seen.retain(|_, ts| *ts >= horizon);
    }
}
