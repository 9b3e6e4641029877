//! Drops events whose client-given id was stored already (a client retrying a send).
//!
//! The filter keeps 64-bit fingerprints of (site, id) ([`client_id_fingerprint`]), not the
//! ids, in partitions by arrival time: the newest in a hash set, older ones sealed into
//! sorted arrays of 8 bytes an id. Partitions older than the window (24 hours of arrival time
//! by default; retries come within minutes) are dropped, and so are the oldest ones when the
//! fingerprints outgrow their bytes, which shortens the window (counted in
//! [`Deduplicator::forgotten_early`]). A hit is checked exactly against the store (the ids
//! received since its partition began), so a fingerprint two ids share drops nothing; only
//! hits, which are retries, cost a lookup. Event time does not matter, so a backfill of old
//! events costs none. The filter is rebuilt on start from the fingerprints of the ids received
//! within the window. Generated ids are unique and skip all of this.

use std::collections::{HashMap, HashSet, VecDeque};

use heartbeat_model::{Event, SiteId};
use heartbeat_store::{client_id_fingerprint, EventWriter, StoreError};

/// A partition is sealed once it holds this many ids or is this old.
const SEAL_AT_IDS: usize = 1 << 18;
const SEAL_AFTER_MS: i64 = 3_600_000;
/// A store check looks this far before a partition's start, for clocks that disagree.
const CLOCK_SLACK_MS: i64 = 60_000;

struct Sealed {
    since_ms: i64,
    until_ms: i64,
    /// Sorted.
    fingerprints: Vec<u64>,
}

impl Sealed {
    fn contains(&self, fingerprint: u64) -> bool {
        self.fingerprints.binary_search(&fingerprint).is_ok()
    }
}

pub struct Deduplicator {
    window_ms: i64,
    max_bytes: usize,
    current: HashSet<u64>,
    current_since_ms: i64,
    /// Oldest first.
    sealed: VecDeque<Sealed>,
    forgotten_early: u64,
}

impl Deduplicator {
    /// Remembers ids for `window_ms` of arrival time in at most about `max_bytes`.
    pub fn new(window_ms: i64, max_bytes: usize) -> Self {
        Deduplicator {
            window_ms,
            max_bytes,
            current: HashSet::new(),
            current_since_ms: i64::MIN,
            sealed: VecDeque::new(),
            forgotten_early: 0,
        }
    }

    /// Loads the fingerprints of the ids stored within the window before `now_ms`.
    pub async fn restore(
        &mut self,
        store: &dyn EventWriter,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        // The newest that fit, as one sealed partition.
        let fit = self.max_bytes / std::mem::size_of::<u64>();
        let mut stored = store
            .client_id_fingerprints(now_ms - self.window_ms, fit)
            .await?;
        stored.sort_unstable();
        let forgotten = stored.len().saturating_sub(fit);
        self.forgotten_early += forgotten as u64;
        if let (Some(&(since_ms, _)), Some(&(last_ms, _))) = (stored.get(forgotten), stored.last())
        {
            // Collected into the read's own allocation (the fingerprints are half its
            // pairs), so the two are never in memory side by side.
            let mut fingerprints: Vec<u64> = stored
                .into_iter()
                .skip(forgotten)
                .map(|(_, fingerprint)| fingerprint)
                .collect();
            fingerprints.sort_unstable();
            fingerprints.dedup();
            fingerprints.shrink_to_fit();
            self.sealed.push_back(Sealed {
                since_ms,
                until_ms: last_ms.max(now_ms),
                fingerprints,
            });
        }
        self.current_since_ms = now_ms;
        Ok(())
    }

    /// Ids remembered.
    pub fn remembered(&self) -> usize {
        self.current.len()
            + self
                .sealed
                .iter()
                .map(|s| s.fingerprints.len())
                .sum::<usize>()
    }

    /// About how many bytes the fingerprints take.
    pub fn bytes(&self) -> usize {
        // A hash set slot is the value and a control byte.
        self.current.capacity() * (std::mem::size_of::<u64>() + 1)
            + self
                .sealed
                .iter()
                .map(|s| s.fingerprints.capacity() * std::mem::size_of::<u64>())
                .sum::<usize>()
    }

    /// Ids forgotten before the window ended, to keep within the bytes.
    pub fn forgotten_early(&self) -> u64 {
        self.forgotten_early
    }

    /// When the partition holding `fingerprint` began, if any does.
    fn seen_since(&self, fingerprint: u64) -> Option<i64> {
        if self.current.contains(&fingerprint) {
            return Some(self.current_since_ms);
        }
        self.sealed
            .iter()
            .find(|s| s.contains(fingerprint))
            .map(|s| s.since_ms)
    }

    /// Whether [`Deduplicator::filter`] will ask the store about any of `events` (one of
    /// their ids is in the filter already).
    pub fn has_suspects(&self, events: &[Event]) -> bool {
        events.iter().any(|event| {
            event.event_id_from_client
                && self
                    .seen_since(client_id_fingerprint(&event.site_id, &event.event_id))
                    .is_some()
        })
    }

    /// Removes duplicates from `events`, returning how many were dropped. Asks the store
    /// about the ids the filter has seen.
    pub async fn filter(
        &mut self,
        store: &dyn EventWriter,
        events: &mut Vec<Event>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        self.roll(now_ms);
        let before = events.len();
        // Within the batch, by fingerprint and then by id; before it, through the store.
        let mut in_batch: HashMap<u64, usize> = HashMap::new();
        let mut repeated = vec![false; events.len()];
        let mut suspects: HashMap<SiteId, (Vec<String>, i64)> = HashMap::new();
        for (at, event) in events.iter().enumerate() {
            if !event.event_id_from_client {
                continue;
            }
            let fingerprint = client_id_fingerprint(&event.site_id, &event.event_id);
            if let Some(&first) = in_batch.get(&fingerprint) {
                let earlier = &events[first];
                repeated[at] =
                    earlier.site_id == event.site_id && earlier.event_id == event.event_id;
                continue;
            }
            in_batch.insert(fingerprint, at);
            if let Some(since) = self.seen_since(fingerprint) {
                let (ids, earliest) = suspects
                    .entry(event.site_id.clone())
                    .or_insert_with(|| (Vec::new(), since));
                ids.push(event.event_id.clone());
                *earliest = (*earliest).min(since);
            }
        }
        let mut stored: HashSet<(SiteId, String)> = HashSet::new();
        for (site, (ids, since)) in suspects {
            let since = since.saturating_sub(CLOCK_SLACK_MS);
            for id in store.stored_client_ids(&site, ids, since).await? {
                stored.insert((site.clone(), id));
            }
        }
        // Ids the store has are dropped (and are in the filter already); the others are
        // remembered from now on.
        let mut dropped = repeated;
        for (fingerprint, at) in in_batch {
            let event = &events[at];
            if !stored.is_empty()
                && stored.contains(&(event.site_id.clone(), event.event_id.clone()))
            {
                dropped[at] = true;
            } else {
                self.current.insert(fingerprint);
            }
        }
        let mut at = 0;
        events.retain(|_| {
            at += 1;
            !dropped[at - 1]
        });
        self.keep_within_bytes();
        Ok(before - events.len())
    }

    /// Seals the newest partition when it is full or old, and drops partitions past the
    /// window.
    fn roll(&mut self, now_ms: i64) {
        if self.current_since_ms == i64::MIN {
            self.current_since_ms = now_ms;
        }
        if self.current.len() >= SEAL_AT_IDS || now_ms - self.current_since_ms >= SEAL_AFTER_MS {
            self.seal(now_ms);
        }
        let horizon = now_ms - self.window_ms;
        while self.sealed.front().is_some_and(|s| s.until_ms < horizon) {
            self.sealed.pop_front();
        }
    }

    fn seal(&mut self, now_ms: i64) {
        let mut fingerprints: Vec<u64> = self.current.drain().collect();
        self.current.shrink_to_fit();
        fingerprints.sort_unstable();
        let since_ms = self.current_since_ms;
        self.current_since_ms = now_ms;
        if fingerprints.is_empty() {
            return;
        }
        // A small partition joins the previous one while that one spans little of the window,
        // so a quiet site does not make one partition an hour.
        if let Some(last) = self.sealed.back_mut() {
            if last.fingerprints.len() < SEAL_AT_IDS && now_ms - last.since_ms < self.window_ms / 8
            {
                last.fingerprints.extend(fingerprints);
                last.fingerprints.sort_unstable();
                last.until_ms = now_ms;
                return;
            }
        }
        self.sealed.push_back(Sealed {
            since_ms,
            until_ms: now_ms,
            fingerprints,
        });
    }

    fn keep_within_bytes(&mut self) {
        while self.bytes() > self.max_bytes {
            match self.sealed.pop_front() {
                Some(oldest) => self.forgotten_early += oldest.fingerprints.len() as u64,
                None => {
                    // The newest partition alone is over: seal it and let it go next round.
                    let now = self.current_since_ms;
                    self.seal(now);
                    if self.sealed.is_empty() {
                        break;
                    }
                }
            }
        }
    }

    /// Drops partitions past the window (also done on every batch).
    pub fn prune(&mut self, now_ms: i64) {
        self.roll(now_ms);
    }
}
