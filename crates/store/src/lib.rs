//! What Heartbeat needs from a database: the `EventStore` (the processor's `EventWriter`:
//! events, visits and the queue checkpoint, written together; `EventData`: exports, imports
//! and deletes; and queries through `SqlRunner`) and the `MetaStore` (sites, keys, accounts).
//!
//! Engines implement these traits in their own crates (`heartbeat-store-duckdb`), so the
//! processor and the server never name an engine. Queries arrive as SQL compiled by
//! `heartbeat-query` and run through [`heartbeat_query::SqlRunner`].
//!
//! Visits are stored as a collapsing log, as ClickHouse's CollapsingMergeTree does: when a
//! visit grows, the processor writes its previous state again with `sign = -1` and the new
//! state with `sign = 1`. Sums weighted by `sign` give exact visit metrics without updates.

mod alerts;
#[cfg(feature = "contract")]
pub mod contract;

pub use alerts::AlertStore;

use std::sync::Arc;

use heartbeat_model::{
    ApiKey, Event, Funnel, Goal, ImportedRow, ImportedTable, Membership, NamedShareLink, Org,
    OrgId, Session, ShareLink, Site, SiteId, SiteImport, User, UserSession,
};
use heartbeat_query::SqlRunner;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine cannot be reached or failed to do I/O; worth retrying.
    #[error("event store unavailable: {message}")]
    Unavailable { message: String },
    /// The engine rejected the data itself; retrying the same data will not help.
    #[error("event store rejected the data: {message}")]
    Rejected { message: String },
    /// A unique thing (a site id, a key) exists already.
    #[error("{what} already exists")]
    Conflict { what: String },
}

/// A visit state to append: `sign = 1` adds it, `sign = -1` cancels an earlier state.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub session: Session,
    pub sign: i8,
}

/// Everything one processor step writes, atomically.
#[derive(Debug, Clone, Default)]
pub struct InsertBatch {
    pub events: Vec<Event>,
    pub sessions: Vec<SessionRow>,
    /// The queue position after the last record these events came from.
    pub queue_position: u64,
}

/// A visit as the store holds it, with what the sessionizer needs to continue it exactly:
/// when its first and last page views and its latest event (engagement events included)
/// happened, read from its events.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVisit {
    pub session: Session,
    pub first_pageview_ms: Option<i64>,
    pub last_pageview_ms: Option<i64>,
    /// At least the visit's end.
    pub last_event_ms: i64,
}

/// How far after the latest end of the visits looked up together their events are read
/// first; a visit whose events may go on past a read is read again [`EXTENT_WIDENING`] times
/// as far, up to [`EXTENT_MAX_SLACK_MS`].
const EXTENT_FIRST_SLACK_MS: i64 = 2 * heartbeat_model::VISIT_TIMEOUT_MS;
const EXTENT_WIDENING: i64 = 8;
const EXTENT_MAX_SLACK_MS: i64 = 366 * 86_400_000;

/// What a visit's events tell of it beyond its stored state: [`StoredVisit`]'s times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extent {
    pub first_pageview_ms: Option<i64>,
    pub last_pageview_ms: Option<i64>,
    pub last_event_ms: i64,
}

/// The reads of a store's events that find the [`Extent`]s of visits looked up together
/// (one chunk of a site's visits, best in time order so each range is narrow), for any
/// engine: each read is over the visits still pending, from their earliest start to a
/// little after their latest end ([`ExtentReads::next_range`]); a visit whose latest event
/// found then lies within the visit timeout of the read's end is read again farther, since
/// a visit's events in time order are never further apart than the timeout (an event joins
/// a visit only within it of the visit's span). Engagement events keep a visit open past
/// its last page view, so this is how far its latest event can be.
pub struct ExtentReads<'a> {
    visits: &'a [Session],
    pending: Vec<&'a Session>,
    found: std::collections::HashMap<u64, Extent>,
    slack_ms: i64,
    to_ms: i64,
}

impl<'a> ExtentReads<'a> {
    pub fn new(visits: &'a [Session]) -> Self {
        ExtentReads {
            visits,
            pending: visits.iter().collect(),
            found: std::collections::HashMap::new(),
            slack_ms: EXTENT_FIRST_SLACK_MS,
            to_ms: i64::MIN,
        }
    }

    /// The range `[from, to]` of event times the next read covers, for the visits of
    /// [`ExtentReads::pending_ids`]; `None` once every extent is known.
    pub fn next_range(&mut self) -> Option<(i64, i64)> {
        let from = self.pending.iter().map(|s| s.start_ms).min()?;
        let end = self.pending.iter().map(|s| s.end_ms).max()?;
        self.to_ms = end.saturating_add(self.slack_ms);
        Some((from, self.to_ms))
    }

    /// The ids of the visits the next read is for.
    pub fn pending_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.pending.iter().map(|s| s.session_id)
    }

    /// What the read of the last [`ExtentReads::next_range`] found, by visit id (visits
    /// without events there are left out).
    pub fn record(&mut self, extents: std::collections::HashMap<u64, Extent>) {
        let widest = self.slack_ms >= EXTENT_MAX_SLACK_MS;
        let (found, to_ms) = (&mut self.found, self.to_ms);
        self.pending
            .retain(|session| match extents.get(&session.session_id) {
                Some(&extent) => {
                    found.insert(session.session_id, extent);
                    !widest
                        && extent
                            .last_event_ms
                            .saturating_add(heartbeat_model::VISIT_TIMEOUT_MS)
                            >= to_ms
                }
                None => false,
            });
        self.slack_ms = self.slack_ms.saturating_mul(EXTENT_WIDENING);
    }

    /// The visits with their extents (a visit without events ends at its end).
    pub fn into_visits(mut self) -> Vec<StoredVisit> {
        self.visits
            .iter()
            .map(|session| {
                let extent = self.found.remove(&session.session_id);
                StoredVisit {
                    first_pageview_ms: extent.and_then(|e| e.first_pageview_ms),
                    last_pageview_ms: extent.and_then(|e| e.last_pageview_ms),
                    last_event_ms: extent
                        .map_or(session.end_ms, |e| e.last_event_ms)
                        .max(session.end_ms),
                    session: session.clone(),
                }
            })
            .collect()
    }
}

/// A 64-bit fingerprint of a client-given event id within its site: what the processor's
/// dedup filter keeps instead of the id (two ids share one with odds of about n / 2^64).
pub fn client_id_fingerprint(site: &SiteId, event_id: &str) -> u64 {
    use std::hash::Hasher;
    let mut hasher = siphasher::sip::SipHasher13::new_with_keys(0x6465_6475, 0x7000_0001);
    hasher.write(site.as_str().as_bytes());
    hasher.write_u8(0xff);
    hasher.write(event_id.as_bytes());
    hasher.finish()
}

/// What the processor writes: events, visit rows and the queue position, together, and what
/// it reads back to resume (the position, open visits, client-given ids).
#[async_trait::async_trait]
pub trait EventWriter: Send + Sync + 'static {
    /// Writes events, visit rows and the queue position in one transaction: all or nothing.
    /// The batch is shared so a retry does not copy it.
    async fn insert(&self, batch: Arc<InsertBatch>) -> Result<(), StoreError>;

    /// The queue position of the last committed insert; `None` on a new store.
    async fn queue_position(&self) -> Result<Option<u64>, StoreError>;

    /// The current state of every visit whose last event is at or after `since_ms`, so a
    /// restarted processor continues open visits instead of starting new ones.
    async fn open_sessions(&self, since_ms: i64) -> Result<Vec<StoredVisit>, StoreError>;

    /// The latest end of any visit the store holds (`None`: it holds none), read when a
    /// processor starts: an event up to the timeout (and the engagement slack) after it may
    /// continue a visit only the store holds, a later one needs no lookup. So a backfill into
    /// a new store or past its data looks nothing up. An engine that does not know answers
    /// `Some(i64::MAX)`: every event older than the processor's start is looked up.
    async fn newest_visit_end_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(Some(i64::MAX))
    }

    /// The latest end of the visits imported ([`EventData::import_events`]) since the store
    /// was opened, which reach it beside the queue; `None` when none were. A processor
    /// checks it before each batch and looks up events up to it as it does stored visits
    /// older than its start. The default, for an engine whose imports run on other nodes:
    /// `None`.
    async fn imported_visits_until_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    /// The current state of `site`'s visits by any of `visitors` whose span meets
    /// `[from_ms, to_ms]`, so the processor can continue a visit it no longer keeps in memory
    /// when a late event of it arrives.
    async fn visits_of(
        &self,
        site: &SiteId,
        visitors: Vec<u64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredVisit>, StoreError>;

    /// [`client_id_fingerprint`]s of the client-given ids of events stored at or after
    /// `received_since_ms` (wall clock), each with the time it was received, to rebuild the
    /// dedup window without holding the ids themselves: the `newest` most recently received
    /// (a few more when some were received at the same time), so what a restart reads is
    /// bounded by the dedup window's size, not by what was stored.
    async fn client_id_fingerprints(
        &self,
        received_since_ms: i64,
        newest: usize,
    ) -> Result<Vec<(i64, u64)>, StoreError>;

    /// Which of `ids`, client-given ids of `site`'s events, are stored with a receipt time
    /// at or after `received_since_ms`: the exact check behind a dedup filter's hit.
    async fn stored_client_ids(
        &self,
        site: &SiteId,
        ids: Vec<String>,
        received_since_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Makes everything committed durable on disk (a checkpoint of the engine's own log).
    async fn flush(&self) -> Result<(), StoreError>;

    /// Deletes every event, property and visit of `site`, in one transaction. The processor
    /// calls it when it reaches a site's deletion in the queue, so no insert of the site's
    /// events interleaves with it.
    async fn delete_site_events(&self, site: &SiteId) -> Result<Deleted, StoreError>;
}

/// Data in and out of the store, and deleting it by age: exports, imports and retention.
#[async_trait::async_trait]
pub trait EventData: Send + Sync + 'static {
    /// Deletes `site`'s events (and their properties) older than `before_ms`, and its visits
    /// that started before it (every state of such a visit, so the collapsing log stays
    /// whole). Works in bounded steps so the processor's inserts are never held up long.
    async fn delete_before(&self, site: &SiteId, before_ms: i64) -> Result<Deleted, StoreError>;

    /// Up to `limit` of `site`'s stored events in (timestamp, event id) order, starting after
    /// `after` (the last event of the previous page), as the processor stored them (visit id
    /// and visit attributes included).
    async fn export_events(
        &self,
        site: &SiteId,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// Stores exported events as they are, skipping any whose (site, event id) is stored
    /// already, and rebuilds the visits they belong to from all their stored events, in one
    /// transaction. Returns how many events were new.
    async fn import_events(&self, events: Vec<Event>) -> Result<u64, StoreError>;

    /// Stores one import of daily aggregates (Plausible's CSV export) for `site`, every
    /// table's rows in one transaction, apart from native events. Returns the import with the
    /// id the store gave it.
    async fn import_aggregates(
        &self,
        site: &SiteId,
        source: &str,
        range: (String, String),
        tables: Vec<(ImportedTable, Vec<ImportedRow>)>,
    ) -> Result<SiteImport, StoreError>;

    /// `site`'s imports, oldest first.
    async fn site_imports(&self, site: &SiteId) -> Result<Vec<SiteImport>, StoreError>;

    /// Deletes one import and its rows; false when `site` has no import `id`.
    async fn delete_import(&self, site: &SiteId, id: u64) -> Result<bool, StoreError>;

    /// Up to `limit` events of every site stored at or after `stored_since_ms` (the time the
    /// processor stored them; whole seconds where the engine keeps seconds) whose own time is
    /// at or after `events_since_ms`, in the order stored, each with its stored time: what a
    /// node whose own processors do not store every event (an API node of a cluster) reads
    /// back for its live stream.
    async fn stored_since(
        &self,
        stored_since_ms: i64,
        events_since_ms: i64,
        limit: usize,
    ) -> Result<Vec<(Event, i64)>, StoreError>;
}

/// Everything an engine's event store is: the processor's writes ([`EventWriter`]), the
/// queries' reads ([`SqlRunner`]) and data in, out and deleted ([`EventData`]). Each user
/// takes only the part it needs, so a decorator wraps one part, not all of them.
pub trait EventStore: EventWriter + EventData + SqlRunner {}

impl<T: EventWriter + EventData + SqlRunner> EventStore for T {}

/// What [`EventStore::delete_before`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub events: u64,
    /// Visits, not visit rows.
    pub visits: u64,
}

#[async_trait::async_trait]
pub trait MetaStore: Send + Sync + 'static {
    async fn sites(&self) -> Result<Vec<Site>, StoreError>;
    /// Fails with `Conflict` when the id or the domain is taken.
    async fn insert_site(&self, site: &Site) -> Result<(), StoreError>;
    /// Replaces a site's name, time zone, rules and retention (its id and domain stay).
    async fn update_site(&self, site: &Site) -> Result<(), StoreError>;
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// Marks a key revoked; it stays listed.
    async fn revoke_api_key(&self, id: &str) -> Result<(), StoreError>;
    /// Records when a key was last presented.
    async fn touch_api_key(&self, id: &str, at_ms: i64) -> Result<(), StoreError>;

    /// Deletes a site's metadata: the site, its keys, its share links, custom properties and
    /// saved funnels.
    async fn delete_site(&self, site: &SiteId) -> Result<(), StoreError>;

    async fn orgs(&self) -> Result<Vec<Org>, StoreError>;
    /// Fails with `Conflict` when the id is taken.
    async fn insert_org(&self, org: &Org) -> Result<(), StoreError>;
    /// Each site's organisation (sites without one are in the default organisation).
    async fn site_orgs(&self) -> Result<Vec<(SiteId, OrgId)>, StoreError>;
    async fn set_site_org(&self, site: &SiteId, org: &OrgId) -> Result<(), StoreError>;

    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Fails with `Conflict` when the email is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<(), StoreError>;
    /// Deletes a user with its memberships and sessions.
    async fn delete_user(&self, user_id: &str) -> Result<(), StoreError>;
    async fn memberships(&self) -> Result<Vec<Membership>, StoreError>;
    /// Adds a membership or changes its role.
    async fn put_membership(&self, membership: &Membership) -> Result<(), StoreError>;

    async fn user_sessions(&self) -> Result<Vec<UserSession>, StoreError>;
    async fn insert_user_session(&self, session: &UserSession) -> Result<(), StoreError>;
    /// Deletes one session, or with `user_id` every session of that user.
    async fn delete_user_sessions(
        &self,
        token_sha256: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<(), StoreError>;

    async fn share_links(&self) -> Result<Vec<ShareLink>, StoreError>;
    /// Sets (replacing) a site's share link.
    async fn put_share_link(&self, link: &ShareLink) -> Result<(), StoreError>;
    async fn delete_share_link(&self, site: &SiteId) -> Result<(), StoreError>;

    /// Changes a site's domain (its id stays). Fails with `Conflict` when another site has
    /// that domain.
    async fn set_site_domain(&self, site: &SiteId, domain: &str) -> Result<(), StoreError>;
    /// The custom properties each site declared (Plausible's `allowed_event_props`), in
    /// their order; sites that never declared any are left out.
    async fn custom_props(&self) -> Result<Vec<(SiteId, Vec<String>)>, StoreError>;
    /// Replaces a site's declared custom properties.
    async fn set_custom_props(&self, site: &SiteId, props: &[String]) -> Result<(), StoreError>;
    /// Every named share link. Deleting a site deletes its named links.
    async fn named_share_links(&self) -> Result<Vec<NamedShareLink>, StoreError>;
    /// Sets a named share link, replacing the site's link of the same name.
    async fn put_named_share_link(&self, link: &NamedShareLink) -> Result<(), StoreError>;

    /// Every site's goals, by id. Deleting a site deletes its goals.
    async fn goals(&self) -> Result<Vec<Goal>, StoreError>;
    /// Stores a new goal. Fails with `Conflict` when the id is taken or its site has a goal
    /// of the same display name.
    async fn insert_goal(&self, goal: &Goal) -> Result<(), StoreError>;
    /// Deletes one goal of `site`; false when the site has no goal `id`.
    async fn delete_goal(&self, site: &SiteId, id: u64) -> Result<bool, StoreError>;
    /// Every saved funnel, of every site. Deleting a site deletes its funnels.
    async fn funnels(&self) -> Result<Vec<Funnel>, StoreError>;
    /// Saves a funnel. Fails with `Conflict` when its id is taken.
    async fn insert_funnel(&self, funnel: &Funnel) -> Result<(), StoreError>;
    /// Deletes a funnel (nothing when there is none with this id).
    async fn delete_funnel(&self, id: &str) -> Result<(), StoreError>;

    /// The visitor-id salt of UTC day `day` (days since the Unix epoch): the one stored,
    /// else `proposed`, stored. Every node that asks for the same day gets the same salt, so
    /// ingest nodes give a visitor the same id.
    async fn day_salt(&self, day: i64, proposed: [u8; 16]) -> Result<[u8; 16], StoreError>;
    /// Forgets the salts of days before `day`, so old visitor ids can never be recomputed.
    async fn forget_salts_before(&self, day: i64) -> Result<(), StoreError>;
}
