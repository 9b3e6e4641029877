//! Assigns events to visits: a visit is one visitor's run of events on one site with no gap
//! over 30 minutes.
//!
//! The sessionizer keeps the current state of each open visit in memory. For each batch it
//! returns the visit rows to append to the store's collapsing log: the state a visit had
//! before the batch with `sign = -1` (when it existed), and its new state with `sign = 1`.
//! Events take their visit's id and the visit-level fields of its first event (referrer,
//! source, UTMs, location, device), so visit dimensions work on events as Plausible's do.

use std::collections::HashMap;
use std::hash::Hasher;

use heartbeat_model::{Event, Session, SiteId};
use heartbeat_store::SessionRow;
use siphasher::sip::SipHasher13;

/// Plausible's and Google Analytics' visit timeout.
pub const VISIT_TIMEOUT_MS: i64 = 30 * 60 * 1000;

type VisitorKey = (SiteId, u64);

#[derive(Debug, Clone)]
struct OpenVisit {
    session: Session,
    /// Times of the first and last page views, to keep entry and exit pages right when
    /// events arrive out of order.
    first_pageview_ms: Option<i64>,
    last_pageview_ms: Option<i64>,
    /// Wall-clock time of the last event, for eviction.
    touched_at_ms: i64,
}

#[derive(Debug, Default)]
pub struct Sessionizer {
    open: HashMap<VisitorKey, OpenVisit>,
}

fn session_id(site: &SiteId, visitor_id: u64, start_ms: i64) -> u64 {
    let mut hasher = SipHasher13::new_with_keys(0x6865_6172, 0x7462_6561);
    hasher.write(site.as_str().as_bytes());
    hasher.write_u64(visitor_id);
    hasher.write_i64(start_ms);
    hasher.finish()
}

fn start_visit(event: &Event) -> Session {
    Session {
        site_id: event.site_id.clone(),
        session_id: session_id(&event.site_id, event.visitor_id, event.timestamp_ms),
        visitor_id: event.visitor_id,
        user_id: event.user_id.clone(),
        version: 0,
        start_ms: event.timestamp_ms,
        end_ms: event.timestamp_ms,
        pageviews: 0,
        events: 0,
        engagements: 0,
        entry_page: event.pathname.clone(),
        exit_page: event.pathname.clone(),
        hostname: event.hostname.clone(),
        referrer: event.referrer.clone(),
        referrer_source: event.referrer_source.clone(),
        channel: event.channel.clone(),
        utm_source: event.utm_source.clone(),
        utm_medium: event.utm_medium.clone(),
        utm_campaign: event.utm_campaign.clone(),
        utm_content: event.utm_content.clone(),
        utm_term: event.utm_term.clone(),
        country: event.country.clone(),
        region: event.region.clone(),
        city: event.city.clone(),
        browser: event.browser.clone(),
        browser_version: event.browser_version.clone(),
        os: event.os.clone(),
        os_version: event.os_version.clone(),
        device: event.device.clone(),
        screen: event.screen.clone(),
    }
}

/// Gives an event its visit's id and visit-level fields.
fn stamp(event: &mut Event, s: &Session) {
    event.session_id = s.session_id;
    event.referrer.clone_from(&s.referrer);
    event.referrer_source.clone_from(&s.referrer_source);
    event.channel.clone_from(&s.channel);
    event.utm_source.clone_from(&s.utm_source);
    event.utm_medium.clone_from(&s.utm_medium);
    event.utm_campaign.clone_from(&s.utm_campaign);
    event.utm_content.clone_from(&s.utm_content);
    event.utm_term.clone_from(&s.utm_term);
    event.country.clone_from(&s.country);
    event.region.clone_from(&s.region);
    event.city.clone_from(&s.city);
    event.browser.clone_from(&s.browser);
    event.browser_version.clone_from(&s.browser_version);
    event.os.clone_from(&s.os);
    event.os_version.clone_from(&s.os_version);
    event.device.clone_from(&s.device);
    event.screen.clone_from(&s.screen);
}

impl OpenVisit {
    fn new(event: &Event, now_ms: i64) -> Self {
        OpenVisit {
            session: start_visit(event),
            first_pageview_ms: None,
            last_pageview_ms: None,
            touched_at_ms: now_ms,
        }
    }

    fn restored(session: Session, now_ms: i64) -> Self {
        let had_pageviews = session.pageviews > 0;
        OpenVisit {
            first_pageview_ms: had_pageviews.then_some(session.start_ms),
            last_pageview_ms: had_pageviews.then_some(session.end_ms),
            session,
            touched_at_ms: now_ms,
        }
    }

    /// Whether `ts` belongs to this visit: within the timeout of its span.
    fn covers(&self, ts: i64) -> bool {
        ts <= self.session.end_ms + VISIT_TIMEOUT_MS && ts >= self.session.start_ms - VISIT_TIMEOUT_MS
    }

    fn add(&mut self, event: &Event, now_ms: i64) {
        let s = &mut self.session;
        let ts = event.timestamp_ms;
        s.start_ms = s.start_ms.min(ts);
        s.end_ms = s.end_ms.max(ts);
        s.events += 1;
        s.engagements += u32::from(event.is_engagement());
        if s.user_id.is_none() {
            s.user_id.clone_from(&event.user_id);
        }
        if event.is_pageview() {
            s.pageviews += 1;
            if self.first_pageview_ms.is_none_or(|first| ts < first) {
                self.first_pageview_ms = Some(ts);
                s.entry_page.clone_from(&event.pathname);
            }
            if self.last_pageview_ms.is_none_or(|last| ts >= last) {
                self.last_pageview_ms = Some(ts);
                s.exit_page.clone_from(&event.pathname);
            }
        }
        self.touched_at_ms = now_ms;
    }
}

impl Sessionizer {
    /// Continues visits that were open when the processor last stopped.
    pub fn restore(&mut self, sessions: Vec<Session>, now_ms: i64) {
        for session in sessions {
            let key = (session.site_id.clone(), session.visitor_id);
            self.open.insert(key, OpenVisit::restored(session, now_ms));
        }
    }

    pub fn open_visits(&self) -> usize {
        self.open.len()
    }

    /// Assigns `events` (any order) to visits and returns the visit rows to append.
    pub fn assign(&mut self, events: &mut [Event], now_ms: i64) -> Vec<SessionRow> {
        events.sort_by_key(|e| e.timestamp_ms);
        // Each visit this batch touched, with the state it had before (None when new), in
        // the order visits were first touched.
        let mut touched: Vec<(VisitorKey, u64, Option<Session>)> = Vec::new();
        let mut seen: HashMap<u64, ()> = HashMap::new();
        // Visits that ended inside this batch because a later event opened a new one.
        let mut ended: HashMap<u64, Session> = HashMap::new();
        for event in events.iter_mut() {
            let key = (event.site_id.clone(), event.visitor_id);
            let visit = match self.open.get_mut(&key) {
                Some(visit) if visit.covers(event.timestamp_ms) => visit,
                _ => {
                    let fresh = OpenVisit::new(event, now_ms);
                    if let Some(old) = self.open.insert(key.clone(), fresh) {
                        ended.insert(old.session.session_id, old.session);
                    }
                    self.open.get_mut(&key).expect("just inserted")
                }
            };
            let id = visit.session.session_id;
            if seen.insert(id, ()).is_none() {
                let before = (visit.session.version > 0).then(|| visit.session.clone());
                touched.push((key, id, before));
            }
            visit.add(event, now_ms);
            stamp(event, &visit.session);
        }
        let mut rows = Vec::with_capacity(touched.len() * 2);
        for (key, id, before) in touched {
            let current = match self.open.get_mut(&key) {
                Some(visit) if visit.session.session_id == id => &mut visit.session,
                _ => match ended.get_mut(&id) {
                    Some(session) => session,
                    None => continue,
                },
            };
            if let Some(before) = before {
                rows.push(SessionRow { session: before, sign: -1 });
            }
            current.version += 1;
            rows.push(SessionRow {
                session: current.clone(),
                sign: 1,
            });
        }
        rows
    }

    /// Forgets visits untouched for longer than the timeout (wall clock), bounding memory.
    pub fn evict(&mut self, now_ms: i64) -> usize {
        let before = self.open.len();
        self.open.retain(|_, visit| now_ms - visit.touched_at_ms <= VISIT_TIMEOUT_MS);
        before - self.open.len()
    }
}
