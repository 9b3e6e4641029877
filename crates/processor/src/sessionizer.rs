//! Assigns events to visits: a visit is one visitor's run of events on one site with no gap
//! over 30 minutes.
//!
//! The sessionizer keeps the current state of each open visit in memory. For each batch it
//! returns the visit rows to append to the store's collapsing log: the state a visit had
//! before the batch with `sign = -1` (when it existed), and its new state with `sign = 1`.
//! Events take their visit's id and the visit-level fields of its first event (referrer,
//! source, UTMs, location, device), so visit dimensions work on events as Plausible's do.
//!
//! Engagement events (Plausible's `engagement`: scroll depth and engaged time of a page)
//! belong to the open visit they fall in without changing it, as Plausible's session cache
//! treats them: they start no visit, write no visit state, leave its end, exit page, counts
//! and bounce alone, and only keep it open for another 30 minutes. One with no open visit
//! to belong to is dropped (Plausible's `no_session_for_engagement`).

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;

use heartbeat_model::{Event, Session, SiteId};
use heartbeat_store::{SessionRow, StoredVisit};
use siphasher::sip::SipHasher13;

pub use heartbeat_model::VISIT_TIMEOUT_MS;

type VisitorKey = (SiteId, u64);

#[derive(Debug, Clone)]
struct OpenVisit {
    session: Session,
    /// Times of the first and last page views, to keep entry and exit pages right when
    /// events arrive out of order.
    first_pageview_ms: Option<i64>,
    last_pageview_ms: Option<i64>,
    /// Event time of the visit's latest activity, engagement events included: the visit
    /// stays open until 30 minutes after it (its `end_ms` counts only the events that shape
    /// it).
    active_ms: i64,
    /// Wall-clock time of the last event, for eviction.
    touched_at_ms: i64,
    /// The client's own session id (seed 000's `session_id`), when it sends one: an event
    /// with another one starts a new visit. Not kept across restarts (a restored visit
    /// takes the next one it sees).
    client_session: Option<String>,
}

/// How long, in event time, a visit stays in memory after it can no longer grow by default:
/// the lateness an event may have and still find its visit there instead of in the store.
pub const LATENESS_MS: i64 = 2 * 60 * 60 * 1000;

/// How long after its last page view or event engagement events are looked for to have
/// kept a visit open, when a late event's visit is looked up in the store.
pub const ENGAGED_AFTER_MS: i64 = 6 * 60 * 60 * 1000;

/// What the sessionizer knows of a site's time.
#[derive(Debug, Clone, Copy)]
struct SiteClock {
    /// The newest event time seen: visits that ended more than the timeout (and the
    /// lateness) before it are closed.
    watermark_ms: i64,
    /// The latest activity of any visit let go from memory: an event up to the timeout
    /// after it may continue a visit only the store holds.
    released_ms: i64,
}

/// Visits an event batch may continue that only the store holds: `site`'s visits by these
/// visitors whose span meets `[from_ms, to_ms]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub site: SiteId,
    pub visitors: Vec<u64>,
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Debug)]
pub struct Sessionizer {
    /// Open visits per visitor: usually one; more while a visitor's old events are being
    /// backfilled beside live ones, so neither ends the other.
    open: HashMap<VisitorKey, Vec<OpenVisit>>,
    sites: HashMap<SiteId, SiteClock>,
    /// Visits of the store that ended before this were never loaded (they were closed when
    /// the processor started).
    stored_before_ms: i64,
    /// Most visits kept in memory; beyond it the least recently active ones are let go.
    max_open: usize,
    /// How long after it can no longer grow (in its site's event time) a visit is let go.
    lateness_ms: i64,
    /// The newest event time of any site, and what it was at the last eviction.
    newest_ms: i64,
    newest_at_evict_ms: i64,
    /// Visits loaded back from the store for late events.
    reopened: u64,
    /// Visits in `open`, counted as they come and go.
    count: usize,
    /// When visits were last let go, and how many stayed.
    evicted_at_ms: i64,
    count_after_evict: usize,
}

impl Default for Sessionizer {
    fn default() -> Self {
        Sessionizer::new(usize::MAX, LATENESS_MS)
    }
}

fn session_id(site: &SiteId, visitor_id: u64, start_ms: i64) -> u64 {
    let mut hasher = SipHasher13::new_with_keys(0x6865_6172, 0x7462_6561);
    hasher.write(site.as_str().as_bytes());
    hasher.write_u64(visitor_id);
    hasher.write_i64(start_ms);
    hasher.finish()
}

fn start_visit(event: &Event) -> Session {
    let mut id = session_id(&event.site_id, event.visitor_id, event.timestamp_ms);
    if let Some(client) = &event.client_session_id {
        // Two client sessions of one visitor may start in the same millisecond.
        let mut hasher = SipHasher13::new_with_keys(id, 0x6865_6172);
        hasher.write(client.as_bytes());
        id = hasher.finish();
    }
    Session {
        site_id: event.site_id.clone(),
        session_id: id,
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
        visit: event.visit.clone(),
    }
}

/// Gives an event its visit's id and visit-level fields.
fn stamp(event: &mut Event, s: &Session) {
    event.session_id = s.session_id;
    if event.visit != s.visit {
        event.visit.clone_from(&s.visit);
    }
}

impl OpenVisit {
    fn new(event: &Event, now_ms: i64) -> Self {
        OpenVisit {
            session: start_visit(event),
            first_pageview_ms: None,
            last_pageview_ms: None,
            active_ms: event.timestamp_ms,
            touched_at_ms: now_ms,
            client_session: event.client_session_id.clone(),
        }
    }

    fn restored(visit: StoredVisit, now_ms: i64) -> Self {
        OpenVisit {
            first_pageview_ms: visit.first_pageview_ms,
            last_pageview_ms: visit.last_pageview_ms,
            active_ms: visit.last_event_ms.max(visit.session.end_ms),
            session: visit.session,
            touched_at_ms: now_ms,
            client_session: None,
        }
    }

    /// How far `ts` is outside this visit's span (0 inside it).
    fn distance(&self, ts: i64) -> i64 {
        let end = self.session.end_ms.max(self.active_ms);
        (self.session.start_ms - ts).max(ts - end).max(0)
    }

    /// Whether `ts` belongs to this visit: within the timeout of its span.
    fn covers(&self, ts: i64) -> bool {
        ts <= self.session.end_ms.max(self.active_ms) + VISIT_TIMEOUT_MS
            && ts >= self.session.start_ms - VISIT_TIMEOUT_MS
    }

    /// Whether `event` continues this visit: in time, and not in another client session.
    fn continues(&self, event: &Event) -> bool {
        self.covers(event.timestamp_ms)
            && match (&self.client_session, &event.client_session_id) {
                (Some(ours), Some(theirs)) => ours == theirs,
                _ => true,
            }
    }

    /// An engagement event of this visit: it keeps the visit open, nothing more.
    fn keep_open(&mut self, event: &Event, now_ms: i64) {
        self.active_ms = self.active_ms.max(event.timestamp_ms);
        self.touched_at_ms = now_ms;
    }

    fn add(&mut self, event: &Event, now_ms: i64) {
        self.active_ms = self.active_ms.max(event.timestamp_ms);
        let s = &mut self.session;
        let ts = event.timestamp_ms;
        s.start_ms = s.start_ms.min(ts);
        s.end_ms = s.end_ms.max(ts);
        s.events += 1;
        s.engagements += u32::from(event.is_interaction());
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
        if self.client_session.is_none() {
            self.client_session.clone_from(&event.client_session_id);
        }
    }
}

/// Adds `visit` to a visitor's open visits with room for it alone: a visitor has one open
/// visit almost always, and a `Vec` grown by `push` makes room for four (about 2.6 KB for
/// each visitor instead of 650 bytes, up to `processor.max_open_visits` of them).
fn keep(visits: &mut Vec<OpenVisit>, visit: OpenVisit) {
    visits.reserve_exact(1);
    visits.push(visit);
}

/// Which of a visitor's open visits `event` continues: of those it falls within the timeout
/// of, the nearest in time, then the earliest, so the answer does not depend on which visits
/// happen to be in memory or in what order they came back.
fn continued(visits: &[OpenVisit], event: &Event) -> Option<usize> {
    visits
        .iter()
        .enumerate()
        .filter(|(_, v)| v.continues(event))
        .min_by_key(|(_, v)| (v.distance(event.timestamp_ms), v.session.start_ms))
        .map(|(index, _)| index)
}

impl Sessionizer {
    /// Keeps at most `max_open` visits in memory, each until its site's events are
    /// `lateness_ms` past the time it could still grow.
    pub fn new(max_open: usize, lateness_ms: i64) -> Self {
        Sessionizer {
            open: HashMap::new(),
            sites: HashMap::new(),
            stored_before_ms: i64::MIN,
            max_open: max_open.max(1),
            lateness_ms,
            newest_ms: i64::MIN,
            newest_at_evict_ms: i64::MIN,
            reopened: 0,
            count: 0,
            evicted_at_ms: i64::MIN,
            count_after_evict: 0,
        }
    }

    /// Continues visits that were open when the processor last stopped (`sessions`); the
    /// store's other visits ended before `stored_before_ms` (their latest activity, or
    /// `i64::MIN` when it holds none), and only a late event brings one back
    /// ([`Sessionizer::lookups`]).
    pub fn restore(&mut self, sessions: Vec<StoredVisit>, stored_before_ms: i64, now_ms: i64) {
        self.stored_before_ms = stored_before_ms;
        self.take_back(sessions, now_ms);
    }

    /// The store also holds visits active up to `until_ms` that this sessionizer never had
    /// (imported beside the queue): events they may continue are looked up.
    pub fn cover_stored(&mut self, until_ms: i64) {
        self.stored_before_ms = self.stored_before_ms.max(until_ms);
    }

    /// Takes back visits the store holds (from [`Sessionizer::lookups`]), unless already
    /// open.
    pub fn reopen(&mut self, stored: Vec<StoredVisit>, now_ms: i64) {
        self.reopened += self.take_back(stored, now_ms);
    }

    /// Opens the `stored` visits not open yet; returns how many.
    fn take_back(&mut self, stored: Vec<StoredVisit>, now_ms: i64) -> u64 {
        let mut taken = 0;
        for visit in stored {
            let session = &visit.session;
            let key = (session.site_id.clone(), session.visitor_id);
            let visits = self.open.entry(key).or_default();
            if visits
                .iter()
                .all(|v| v.session.session_id != session.session_id)
            {
                keep(visits, OpenVisit::restored(visit, now_ms));
                taken += 1;
            }
        }
        self.count += taken as usize;
        taken
    }

    /// Visits loaded back from the store since the start.
    pub fn reopened(&self) -> u64 {
        self.reopened
    }

    /// Forgets the open visits of a deleted site, so a site created again under its id
    /// starts afresh.
    pub fn forget_site(&mut self, site: &SiteId) {
        self.open.retain(|(visit_site, _), _| visit_site != site);
        self.sites.remove(site);
        self.count = self.open.values().map(Vec::len).sum();
    }

    pub fn open_visits(&self) -> usize {
        self.count
    }

    /// The store lookups `events` need before [`Sessionizer::assign`]: the visits, let go
    /// from memory (or never loaded), that an event may continue; one lookup per site. Live
    /// events, newer than every visit let go by the timeout, need none.
    pub fn lookups(&self, events: &[Event]) -> Vec<Lookup> {
        let mut by_site: HashMap<&SiteId, Lookup> = HashMap::new();
        for event in events {
            let released = self
                .sites
                .get(&event.site_id)
                .map_or(i64::MIN, |clock| clock.released_ms)
                .max(self.stored_before_ms);
            let ts = event.timestamp_ms;
            if released == i64::MIN || ts > released.saturating_add(VISIT_TIMEOUT_MS) {
                continue;
            }
            let lookup = by_site.entry(&event.site_id).or_insert_with(|| Lookup {
                site: event.site_id.clone(),
                visitors: Vec::new(),
                from_ms: ts,
                to_ms: ts,
            });
            lookup.visitors.push(event.visitor_id);
            lookup.visitors.extend(event.previous_visitor_id);
            lookup.from_ms = lookup.from_ms.min(ts);
            lookup.to_ms = lookup.to_ms.max(ts);
        }
        let mut lookups: Vec<Lookup> = by_site.into_values().collect();
        for lookup in &mut lookups {
            lookup.visitors.sort_unstable();
            lookup.visitors.dedup();
            // A visit covers events up to the timeout beyond either end of its span, and
            // engagement events after its last page view keep it open longer.
            lookup.from_ms -= VISIT_TIMEOUT_MS + ENGAGED_AFTER_MS;
            lookup.to_ms += VISIT_TIMEOUT_MS;
        }
        lookups
    }

    /// Assigns `events` (any order) to visits and returns the visit rows to append. Removes
    /// the engagement events that have no open visit to belong to.
    pub fn assign(&mut self, events: &mut Vec<Event>, now_ms: i64) -> Vec<SessionRow> {
        events.sort_by_key(|e| e.timestamp_ms);
        // Each visit this batch touched, with the state it had before (None when new), in
        // the order visits were first touched. The state is boxed: a step touches tens of
        // thousands of visits, most of them new, and a state inline is some 600 bytes.
        let mut touched: Vec<(VisitorKey, u64, Option<Box<Session>>)> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut orphans: HashSet<usize> = HashSet::new();
        for (at, event) in events.iter_mut().enumerate() {
            let clock = self
                .sites
                .entry(event.site_id.clone())
                .or_insert(SiteClock {
                    watermark_ms: event.timestamp_ms,
                    released_ms: i64::MIN,
                });
            clock.watermark_ms = clock.watermark_ms.max(event.timestamp_ms);
            self.newest_ms = self.newest_ms.max(event.timestamp_ms);
            self.continue_across_midnight(event);
            let key = (event.site_id.clone(), event.visitor_id);
            if event.is_engagement() {
                let open = self.open.get_mut(&key).and_then(|visits| {
                    let index = continued(visits, event)?;
                    Some(&mut visits[index])
                });
                match open {
                    Some(visit) => {
                        visit.keep_open(event, now_ms);
                        stamp(event, &visit.session);
                    }
                    None => {
                        orphans.insert(at);
                    }
                }
                continue;
            }
            let visits = self.open.entry(key.clone()).or_default();
            let index = match continued(visits, event) {
                Some(index) => index,
                None => {
                    keep(visits, OpenVisit::new(event, now_ms));
                    self.count += 1;
                    visits.len() - 1
                }
            };
            let visit = &mut visits[index];
            let id = visit.session.session_id;
            if seen.insert(id) {
                let before = (visit.session.version > 0).then(|| Box::new(visit.session.clone()));
                touched.push((key, id, before));
            }
            visit.add(event, now_ms);
            stamp(event, &visit.session);
        }
        if !orphans.is_empty() {
            let mut at = 0;
            events.retain(|_| {
                at += 1;
                !orphans.contains(&(at - 1))
            });
        }
        // A row per visit, and one more cancelling the state before of each continued one.
        let cancelled = touched
            .iter()
            .filter(|(_, _, before)| before.is_some())
            .count();
        let mut rows = Vec::with_capacity(touched.len() + cancelled);
        for (key, id, before) in touched {
            let Some(visit) = self
                .open
                .get_mut(&key)
                .and_then(|visits| visits.iter_mut().find(|v| v.session.session_id == id))
            else {
                continue;
            };
            if let Some(before) = before {
                rows.push(SessionRow {
                    session: *before,
                    sign: -1,
                });
            }
            visit.session.version += 1;
            rows.push(SessionRow {
                session: visit.session.clone(),
                sign: 1,
            });
        }
        rows
    }

    /// An anonymous visitor's id changes when the salt rotates at midnight UTC. When the
    /// event has no open visit under today's id but has one under yesterday's, it continues
    /// that visit under yesterday's id.
    fn continue_across_midnight(&self, event: &mut Event) {
        let Some(previous) = event.previous_visitor_id else {
            return;
        };
        let covered = |visitor_id: u64| {
            self.open
                .get(&(event.site_id.clone(), visitor_id))
                .is_some_and(|visits| visits.iter().any(|v| v.covers(event.timestamp_ms)))
        };
        if !covered(event.visitor_id) && covered(previous) {
            event.visitor_id = previous;
        }
    }

    /// Lets go of the visits that can no longer grow (their site's events have moved on by
    /// the timeout and the lateness), of those untouched for the timeout in wall-clock time
    /// (a site gone quiet), and, over the cap, of the least recently active ones. The store
    /// holds them all; a late event brings one back. Returns how many were let go.
    pub fn evict(&mut self, now_ms: i64) -> usize {
        let before = self.open_visits();
        let sites = &mut self.sites;
        let after = VISIT_TIMEOUT_MS.saturating_add(self.lateness_ms);
        self.open.retain(|(site, _), visits| {
            let clock = sites.get_mut(site);
            let watermark = clock.as_ref().map_or(i64::MIN, |c| c.watermark_ms);
            let mut released = i64::MIN;
            visits.retain(|visit| {
                let closed = visit.active_ms.saturating_add(after) < watermark;
                let idle = now_ms - visit.touched_at_ms > VISIT_TIMEOUT_MS;
                if closed || idle {
                    released = released.max(visit.active_ms);
                }
                !(closed || idle)
            });
            if let Some(clock) = clock {
                clock.released_ms = clock.released_ms.max(released);
            }
            !visits.is_empty()
        });
        self.count = self.open.values().map(Vec::len).sum();
        let over = self.count.saturating_sub(self.max_open);
        if over > 0 {
            // Down to nine tenths of the cap, so the next batches do not each evict again.
            self.release_least_active(over + self.max_open / 10);
            self.count = self.open.values().map(Vec::len).sum();
        }
        self.evicted_at_ms = now_ms;
        self.count_after_evict = self.count;
        self.newest_at_evict_ms = self.newest_ms;
        before - self.count
    }

    fn release_least_active(&mut self, count: usize) {
        let mut actives: Vec<i64> = self
            .open
            .values()
            .flat_map(|visits| visits.iter().map(|v| v.active_ms))
            .collect();
        if count == 0 || actives.is_empty() {
            return;
        }
        let count = count.min(actives.len());
        let (_, cutoff, _) = actives.select_nth_unstable(count - 1);
        let cutoff = *cutoff;
        let mut left = count;
        let sites = &mut self.sites;
        self.open.retain(|(site, _), visits| {
            visits.retain(|visit| {
                if left == 0 || visit.active_ms > cutoff {
                    return true;
                }
                left -= 1;
                let clock = sites.entry(site.clone()).or_insert(SiteClock {
                    watermark_ms: visit.active_ms,
                    released_ms: i64::MIN,
                });
                clock.released_ms = clock.released_ms.max(visit.active_ms);
                false
            });
            !visits.is_empty()
        });
    }

    /// Evicts after a batch when it is due: over the cap, a tenth more visits than after the
    /// last eviction, event time moved on by the lateness, or a second later. So a fast
    /// backfill holds about the visits open at its frontier, and the cost stays a small share
    /// of the batches'.
    pub fn maintain(&mut self, now_ms: i64) {
        if self.count > self.max_open
            || self.count > self.count_after_evict + self.count_after_evict / 10 + 1000
            || self.newest_ms.saturating_sub(self.newest_at_evict_ms) > self.lateness_ms
            || now_ms.saturating_sub(self.evicted_at_ms) >= 1000
        {
            self.evict(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn event(visitor: u64, minute: i64, name: &str, path: &str) -> Event {
        let mut event = Event {
            visitor_id: visitor,
            hostname: "example.com".into(),
            pathname: path.into(),
            interactive: name != "pageview",
            ..Event::new(
                &format!("{visitor}-{minute}-{path}"),
                SiteId::from("example.com"),
                name,
                minute * MIN,
            )
        };
        if minute == 0 {
            event.visit.referrer_source = "google.com".into();
        }
        event
    }

    #[test]
    fn a_visit_continues_across_the_salt_rotation() {
        let mut s = Sessionizer::default();
        let mut before = vec![event(1, 0, "pageview", "/")];
        s.assign(&mut before, 0);
        // After midnight the same visitor hashes to 2; yesterday's salt still gives 1.
        let mut after = vec![Event {
            previous_visitor_id: Some(1),
            ..event(2, 10, "pageview", "/pricing")
        }];
        s.assign(&mut after, 10 * MIN);
        assert_eq!(after[0].visitor_id, 1);
        assert_eq!(after[0].session_id, before[0].session_id);
        // A visitor new today keeps today's id.
        let mut new = vec![Event {
            previous_visitor_id: Some(7),
            ..event(3, 10, "pageview", "/")
        }];
        s.assign(&mut new, 10 * MIN);
        assert_eq!(new[0].visitor_id, 3);
    }

    #[test]
    fn a_new_client_session_id_starts_a_new_visit() {
        let mut s = Sessionizer::default();
        let with = |minute, session: Option<&str>| Event {
            client_session_id: session.map(str::to_owned),
            ..event(1, minute, "pageview", "/")
        };
        // Seed 000's tracker: the same visitor, a minute apart, in two browser sessions;
        // an event without a session id continues the visit it falls in.
        let mut events = vec![
            with(0, Some("a")),
            with(1, Some("a")),
            with(2, Some("b")),
            with(3, None),
        ];
        let rows = s.assign(&mut events, 3 * MIN);
        let ids: Vec<u64> = events.iter().map(|e| e.session_id).collect();
        assert_eq!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert!(ids[3] == ids[1] || ids[3] == ids[2]);
        assert_eq!(rows.iter().filter(|r| r.sign == 1).count(), 2);
    }

    /// A visitor's open visits take the room of the visits they are: one visit, one slot
    /// (a `Vec` grown by `push` would hold four, about 2.6 KB a visitor).
    #[test]
    fn open_visits_hold_room_for_themselves_alone() {
        let mut s = Sessionizer::default();
        let mut events = vec![
            event(1, 0, "pageview", "/"),
            event(2, 0, "pageview", "/"),
            event(2, 5, "pageview", "/pricing"),
            event(3, 0, "pageview", "/"),
            event(3, 40, "pageview", "/docs"), // a second visit of visitor 3
        ];
        s.assign(&mut events, 0);
        let room = |visitor: u64| {
            let visits = &s.open[&(SiteId::from("example.com"), visitor)];
            (visits.len(), visits.capacity())
        };
        assert_eq!(room(1), (1, 1));
        assert_eq!(room(2), (1, 1));
        // The first visit stays open beside the second (a late event may still reach it).
        assert_eq!(room(3), (2, 2));
    }

    #[test]
    fn a_gap_over_30_minutes_starts_a_new_visit() {
        let mut s = Sessionizer::default();
        let mut events = vec![
            event(1, 0, "pageview", "/"),
            event(1, 10, "pageview", "/pricing"),
            event(1, 40, "pageview", "/docs"), // exactly 30 minutes later: same visit
            event(1, 71, "pageview", "/blog"), // 31 minutes later: a new visit
        ];
        let rows = s.assign(&mut events, 0);
        let ids: Vec<u64> = events.iter().map(|e| e.session_id).collect();
        assert_eq!(ids[0], ids[1]);
        assert_eq!(ids[1], ids[2]);
        assert_ne!(ids[2], ids[3]);
        assert_eq!(rows.len(), 2);
        let first = &rows[0].session;
        assert_eq!(
            (
                first.pageviews,
                first.entry_page.as_str(),
                first.exit_page.as_str()
            ),
            (3, "/", "/docs")
        );
        assert_eq!(first.duration_s(), 40 * 60);
        assert!(!first.is_bounce());
        assert!(rows[1].session.is_bounce());
        // Later events carry the visit's source.
        assert_eq!(events[1].visit.referrer_source, "google.com");
    }

    #[test]
    fn growing_a_visit_cancels_its_previous_state() {
        let mut s = Sessionizer::default();
        let first = s.assign(&mut vec![event(7, 0, "pageview", "/")], 0);
        assert_eq!(first.len(), 1);
        assert!(first[0].session.is_bounce());
        let mut later = vec![
            event(7, 5, "Signup", "/"),
            event(7, 3, "pageview", "/about"),
        ];
        let rows = s.assign(&mut later, 0);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].sign, rows[0].session.version), (-1, 1));
        assert_eq!(rows[0].session, first[0].session);
        let now = &rows[1].session;
        assert_eq!((rows[1].sign, now.version), (1, 2));
        assert_eq!((now.pageviews, now.events, now.engagements), (2, 3, 3));
        assert_eq!(now.exit_page, "/about");
        assert_eq!(now.duration_s(), 5 * 60);
    }

    fn engagement(visitor: u64, minute: i64, path: &str, scroll_depth: u8) -> Event {
        Event {
            scroll_depth: Some(scroll_depth),
            engagement_time_ms: 5_000,
            ..event(visitor, minute, "engagement", path)
        }
    }

    #[test]
    fn engagement_events_join_a_visit_without_changing_it() {
        let mut s = Sessionizer::default();
        let first = s.assign(&mut vec![event(4, 0, "pageview", "/")], 0);
        let visit = first[0].session.clone();
        assert!(visit.is_bounce());
        // An engagement 20 minutes on, in a batch of its own: stored with the visit's id
        // and attributes, and no visit row: the visit is still a bounce of one page view,
        // no longer, its exit page unchanged.
        let mut later = vec![engagement(4, 20, "/elsewhere", 80)];
        let rows = s.assign(&mut later, 20 * MIN);
        assert!(rows.is_empty(), "{rows:?}");
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].session_id, visit.session_id);
        assert_eq!(later[0].visit.referrer_source, "google.com");
        assert_eq!(later[0].scroll_depth, Some(80));
        // It kept the visit open: a page view 45 minutes after the visit began (25 after
        // the engagement) continues it, and the visit's counts leave the engagement out.
        let rows = s.assign(&mut vec![event(4, 45, "pageview", "/next")], 45 * MIN);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].session, visit);
        let grown = &rows[1].session;
        assert_eq!(grown.session_id, visit.session_id);
        assert_eq!(
            (grown.pageviews, grown.events, grown.engagements),
            (2, 2, 2)
        );
        assert_eq!(grown.exit_page, "/next");
        assert_eq!(grown.duration_s(), 45 * 60);
    }

    #[test]
    fn engagement_events_in_a_batch_neither_grow_nor_end_a_bounce() {
        let mut s = Sessionizer::default();
        let mut events = vec![
            engagement(6, 1, "/", 30),
            event(6, 0, "pageview", "/"),
            engagement(6, 2, "/", 60),
        ];
        let rows = s.assign(&mut events, 0);
        assert_eq!(rows.len(), 1);
        let visit = &rows[0].session;
        assert!(visit.is_bounce());
        assert_eq!(
            (visit.pageviews, visit.events, visit.duration_s()),
            (1, 1, 0)
        );
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| e.session_id == visit.session_id));
    }

    #[test]
    fn an_engagement_event_without_an_open_visit_is_dropped() {
        let mut s = Sessionizer::default();
        // No visit at all, and one that ended more than 30 minutes before.
        s.assign(&mut vec![event(8, 0, "pageview", "/")], 0);
        let mut events = vec![
            engagement(9, 5, "/", 50),
            engagement(8, 31, "/", 50),
            event(8, 40, "pageview", "/again"),
        ];
        let rows = s.assign(&mut events, 40 * MIN);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name, "pageview");
        // The page view starts a new visit: the late engagement did not keep the old open.
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].session.entry_page, "/again");
        assert_eq!(s.open_visits(), 2);
    }

    #[test]
    fn out_of_order_events_keep_entry_and_exit_pages() {
        let mut s = Sessionizer::default();
        s.assign(&mut vec![event(3, 10, "pageview", "/middle")], 0);
        let rows = s.assign(
            &mut vec![
                event(3, 2, "pageview", "/first"),
                event(3, 20, "pageview", "/last"),
            ],
            0,
        );
        let visit = &rows[1].session;
        assert_eq!(
            (visit.entry_page.as_str(), visit.exit_page.as_str()),
            ("/first", "/last")
        );
        assert_eq!(visit.start_ms, 2 * MIN);
    }

    #[test]
    fn a_backfilled_old_event_does_not_end_the_live_visit() {
        let mut s = Sessionizer::default();
        s.assign(&mut vec![event(5, 600, "pageview", "/now")], 0);
        s.assign(&mut vec![event(5, 0, "pageview", "/long-ago")], 0);
        let mut later = vec![event(5, 610, "pageview", "/next")];
        let rows = s.assign(&mut later, 0);
        assert_eq!(rows.len(), 2, "the live visit grows: cancel and new state");
        assert_eq!(rows[1].session.entry_page, "/now");
        assert_eq!(rows[1].session.pageviews, 2);
    }

    #[test]
    fn visitors_and_sites_are_separate_and_idle_visits_are_evicted() {
        let mut s = Sessionizer::default();
        let mut other_site = event(1, 0, "pageview", "/");
        other_site.site_id = SiteId::from("other.org");
        let rows = s.assign(
            &mut vec![
                event(1, 0, "pageview", "/"),
                event(2, 0, "pageview", "/"),
                other_site,
            ],
            0,
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(s.open_visits(), 3);
        assert_eq!(s.evict(VISIT_TIMEOUT_MS), 0);
        assert_eq!(s.evict(VISIT_TIMEOUT_MS + 1), 3);
    }
}
