//! The canonical, enriched event and the visit (session) derived from events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::SiteId;

/// The canonical name of a page view. Every wire format's spelling (`pageview`,
/// `page_view`, `PAGE_VIEW`) is mapped onto it by the decoders.
pub const PAGEVIEW: &str = "pageview";

/// The name of Plausible's engagement events: what a page's visitor did there (how far they
/// scrolled, how long the page was engaged), sent when the page is left or hidden. They
/// belong to a visit without shaping it, and count in no metric but scroll depth and time
/// on page.
pub const ENGAGEMENT: &str = "engagement";

/// Money attached to an event, kept exact as millionths of the currency unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revenue {
    pub amount_micros: i64,
    /// ISO 4217 code, upper case.
    pub currency: String,
}

/// What a visit's first event says about where the visit came from and on what device.
/// Every event of a visit carries its visit's attributes, so visit dimensions work on events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitAttributes {
    pub referrer: String,
    pub referrer_source: String,
    pub channel: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    pub country: String,
    pub region: String,
    pub city: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device: String,
    pub screen: String,
}

/// One event after decoding, validation and enrichment: what the queue carries and the
/// store keeps. Empty strings mean "unknown" so that dimensions group cleanly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The deduplication key: given by the client, or generated (UUID v7) at ingest.
    pub event_id: String,
    /// True when the client chose `event_id`, so a retry may send it twice.
    pub event_id_from_client: bool,
    pub site_id: SiteId,
    /// `pageview` or a custom event name.
    pub name: String,
    /// Event time, UTC milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// A user id sent by the client, else a keyed hash of salt, site, IP and user agent.
    pub visitor_id: u64,
    /// An anonymous visitor's id under yesterday's salt. The salt rotates at midnight UTC;
    /// the processor continues a visit open under this id, so a visit spanning midnight
    /// stays one visit (as Plausible does). `None` for ids from a client's user id.
    pub previous_visitor_id: Option<u64>,
    /// The visit this event belongs to, assigned by the processor (0 before).
    pub session_id: u64,
    pub user_id: Option<String>,
    /// A session id sent by the client, kept as given; visits are still derived by the
    /// 30-minute rule.
    pub client_session_id: Option<String>,
    pub hostname: String,
    pub pathname: String,
    /// Where the visit came from and on what; the processor sets it to the visit's.
    pub visit: VisitAttributes,
    pub props: BTreeMap<String, String>,
    pub revenue: Option<Revenue>,
    /// Whether a custom event counts as an interaction (a visit with one is not a bounce).
    pub interactive: bool,
    /// How far down the page the visitor scrolled, in percent (0 to 100), as an engagement
    /// event reports it; `None` for other events and when the report has none.
    pub scroll_depth: Option<u8>,
    /// How long the page was engaged with (visible and focused), in milliseconds, as an
    /// engagement event reports it; 0 for other events and when the report has none.
    pub engagement_time_ms: u32,
}

impl Event {
    /// An event with only its identity, time and name; every other field empty.
    pub fn new(event_id: &str, site_id: SiteId, name: &str, timestamp_ms: i64) -> Event {
        Event {
            event_id: event_id.to_owned(),
            event_id_from_client: false,
            site_id,
            name: name.to_owned(),
            timestamp_ms,
            visitor_id: 0,
            previous_visitor_id: None,
            session_id: 0,
            user_id: None,
            client_session_id: None,
            hostname: String::new(),
            pathname: String::new(),
            visit: VisitAttributes::default(),
            props: BTreeMap::new(),
            revenue: None,
            interactive: true,
            scroll_depth: None,
            engagement_time_ms: 0,
        }
    }

    pub fn is_pageview(&self) -> bool {
        self.name == PAGEVIEW
    }

    /// Whether this is an engagement event ([`ENGAGEMENT`]).
    pub fn is_engagement(&self) -> bool {
        self.name == ENGAGEMENT
    }

    /// Whether this event keeps a visit from being a bounce on its own: a page view, or an
    /// interactive custom event (never an engagement event, which shapes no visit).
    pub fn is_interaction(&self) -> bool {
        self.is_pageview() || (self.interactive && !self.is_engagement())
    }
}

/// Plausible's and Google Analytics' visit timeout: an event joins a visit only within
/// this long of its span, so a visit's events, in time order, are never further apart.
pub const VISIT_TIMEOUT_MS: i64 = 30 * 60 * 1000;

/// A visit: one visitor's run of activity with no gap over 30 minutes. The processor keeps
/// the current state of each open visit and the store keeps its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub site_id: SiteId,
    pub session_id: u64,
    pub visitor_id: u64,
    pub user_id: Option<String>,
    /// Starts at 1 and grows each time the processor writes a new state of this visit.
    pub version: u32,
    pub start_ms: i64,
    pub end_ms: i64,
    pub pageviews: u32,
    pub events: u32,
    /// Page views plus interactive custom events; a visit with exactly one is a bounce.
    pub engagements: u32,
    pub entry_page: String,
    pub exit_page: String,
    pub hostname: String,
    /// The attributes of the visit's first event.
    pub visit: VisitAttributes,
}

impl Session {
    /// Bounce as Plausible defines it: exactly one page view and no interactive custom event.
    pub fn is_bounce(&self) -> bool {
        self.engagements <= 1
    }

    /// Visit duration in whole seconds: last event minus first.
    pub fn duration_s(&self) -> i64 {
        (self.end_ms - self.start_ms) / 1000
    }
}

/// Which of `partitions` queue partitions carries a visitor's events (and which processor
/// sessionizes them): every event of one visitor in one partition, in order. One partition:
/// always 0.
pub fn partition_of(visitor_id: u64, partitions: u32) -> u32 {
    (visitor_id % u64::from(partitions.max(1))) as u32
}
