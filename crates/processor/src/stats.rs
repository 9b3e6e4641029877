//! The processor's counters, which the server exports as metrics.

use std::sync::atomic::AtomicU64;

/// Counters the server exports as metrics.
#[derive(Debug, Default)]
pub struct ProcessorStats {
    pub events_stored: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub batches_committed: AtomicU64,
    pub store_retries: AtomicU64,
    /// Event time of the newest stored event, for processing lag.
    pub last_event_ms: AtomicU64,
    /// Events of sites deleted while they waited in the queue.
    pub deleted_site_dropped: AtomicU64,
    /// Engagement events with no open visit to belong to (Plausible's
    /// `no_session_for_engagement`).
    pub engagements_dropped: AtomicU64,
    /// Visits in memory, the store lookups for events that may continue a visit memory let
    /// go (one per site and batch), and the visits those loaded back.
    pub open_visits: AtomicU64,
    pub visit_lookups: AtomicU64,
    pub visits_reopened: AtomicU64,
    /// Client-given ids the dedup filter remembers, the bytes it takes, and ids it forgot
    /// before the window ended to stay within them.
    pub dedup_ids: AtomicU64,
    pub dedup_bytes: AtomicU64,
    pub dedup_forgotten_early: AtomicU64,
}
