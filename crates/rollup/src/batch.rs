//! The rollup changes of one batch of events and visit-log rows, by the slice (site, span,
//! period) they touch: what the store merges into the stored cells.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use hashbrown::Equivalent;
use heartbeat_model::{Event, Session, SiteId};

use crate::cell::Cell;
use crate::keys::{event_keys, visit_keys};
use crate::span::Span;

/// (site, span, UTC start) — the unit the store reads and rewrites.
pub type SliceKey = (SiteId, Span, i64);
/// (dimension key, value) -> cell. A batch adds each event to some twenty cells of two
/// slices, so the map hashes fast (foldhash) and is searched by borrowed strings.
pub type Slice = hashbrown::HashMap<(String, String), Cell>;

/// A cell key by reference: hashes as `(String, String)` does (a tuple hashes its parts in
/// order and `String` hashes as `str`), so finding a cell copies no string.
struct CellKeyRef<'a>(&'a str, &'a str);

impl Hash for CellKeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.0, self.1).hash(state);
    }
}

impl Equivalent<(String, String)> for CellKeyRef<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// The cell of `(dim, value)` in `slice`, created empty if new; the strings are copied only
/// then.
fn cell_of<'s>(slice: &'s mut Slice, dim: &str, value: &str) -> &'s mut Cell {
    let key = CellKeyRef(dim, value);
    if !slice.contains_key(&key) {
        slice.insert((dim.to_owned(), value.to_owned()), Cell::default());
    }
    slice.get_mut(&key).expect("inserted above")
}

/// Rollup changes of one batch, by slice.
#[derive(Debug, Default)]
pub struct Rollups {
    pub slices: HashMap<SliceKey, Slice>,
}

impl Rollups {
    /// One stored event. An engagement event adds its visitor and is no event (Plausible's
    /// `events` leave engagement events out).
    pub fn add_event(&mut self, event: &Event) {
        let pageview = i64::from(event.name == "pageview");
        let counted = i64::from(!event.is_engagement());
        for span in [Span::Hour, Span::Day] {
            let start = span.start_of(event.timestamp_ms);
            let slice = self
                .slices
                .entry((event.site_id.clone(), span, start))
                .or_default();
            for (dim, value) in event_keys(event) {
                let cell = cell_of(slice, dim, value);
                cell.visitors.insert(&event.visitor_id);
                cell.pageviews += pageview;
                cell.events += counted;
            }
        }
    }

    /// One row of the visit log: `sign` 1 adds a visit's state, -1 takes one back.
    pub fn add_visit(&mut self, session: &Session, sign: i8) {
        let sign = i64::from(sign);
        for span in [Span::Hour, Span::Day] {
            let start = span.start_of(session.start_ms);
            let slice = self
                .slices
                .entry((session.site_id.clone(), span, start))
                .or_default();
            for (dim, value) in visit_keys(session) {
                let cell = cell_of(slice, dim, value);
                cell.visits += sign;
                cell.bounces += sign * i64::from(session.is_bounce());
                cell.duration_s += sign * session.duration_s();
                cell.visit_pageviews += sign * i64::from(session.pageviews);
                cell.visit_events += sign * i64::from(session.events);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ENTRY_PAGE, NAME, PAGE, TOTAL};
    use crate::span::HOUR_MS;

    const AT_MS: i64 = 1_700_000_000_000;

    fn slice(rollups: &Rollups, span: Span) -> &Slice {
        &rollups.slices[&(SiteId::from("a.com"), span, span.start_of(AT_MS))]
    }

    fn cell<'a>(slice: &'a Slice, dim: &str, value: &str) -> &'a Cell {
        &slice[&(dim.to_owned(), value.to_owned())]
    }

    #[test]
    fn an_event_counts_under_every_dimension_it_has() {
        let mut rollups = Rollups::default();
        let mut view = Event::new("1", SiteId::from("a.com"), "pageview", AT_MS);
        view.pathname = "/blog".into();
        view.visit.country = "DE".into();
        view.visitor_id = 7;
        let mut signup = Event::new("2", SiteId::from("a.com"), "Signup", AT_MS + 1);
        signup.visitor_id = 7;
        rollups.add_event(&view);
        rollups.add_event(&signup);
        for span in [Span::Hour, Span::Day] {
            let slice = slice(&rollups, span);
            // Totals, two names, one hostname, one page (page views only) and 16 visit
            // attributes, one of them (the country) with two values.
            assert_eq!(slice.len(), 1 + 2 + 1 + 1 + 16 + 1, "{span:?}");
            let total = cell(slice, TOTAL, "");
            assert_eq!((total.pageviews, total.events), (1, 2));
            assert_eq!(total.visitors.estimate(), 1);
            assert_eq!(cell(slice, PAGE, "/blog").pageviews, 1);
            assert_eq!(cell(slice, NAME, "Signup").events, 1);
            assert_eq!(cell(slice, "visit:country", "DE").events, 1);
            assert_eq!(cell(slice, "visit:country", "").events, 1);
        }
    }

    #[test]
    fn an_engagement_event_is_no_event() {
        let mut rollups = Rollups::default();
        let mut view = Event::new("1", SiteId::from("a.com"), "pageview", AT_MS);
        view.visitor_id = 7;
        let mut engagement = Event::new("2", SiteId::from("a.com"), "engagement", AT_MS + 1);
        engagement.visitor_id = 8;
        engagement.scroll_depth = Some(50);
        rollups.add_event(&view);
        rollups.add_event(&engagement);
        let slice = slice(&rollups, Span::Hour);
        let total = cell(slice, TOTAL, "");
        assert_eq!((total.pageviews, total.events), (1, 1));
        assert_eq!(total.visitors.estimate(), 2);
        assert!(!slice.contains_key(&(NAME.to_owned(), "engagement".to_owned())));
    }

    #[test]
    fn a_visit_taken_back_cancels_out() {
        let mut rollups = Rollups::default();
        let visit = Session {
            site_id: SiteId::from("a.com"),
            session_id: 1,
            visitor_id: 7,
            user_id: None,
            version: 1,
            start_ms: AT_MS,
            end_ms: AT_MS + HOUR_MS,
            pageviews: 2,
            events: 3,
            engagements: 2,
            entry_page: "/".into(),
            exit_page: "/bye".into(),
            hostname: "a.com".into(),
            visit: Default::default(),
        };
        let grown = Session {
            version: 2,
            pageviews: 3,
            ..visit.clone()
        };
        rollups.add_visit(&visit, 1);
        rollups.add_visit(&visit, -1);
        rollups.add_visit(&grown, 1);
        let entry = cell(slice(&rollups, Span::Hour), ENTRY_PAGE, "/");
        assert_eq!((entry.visits, entry.bounces), (1, 0));
        assert_eq!((entry.visit_pageviews, entry.duration_s), (3, 3600));
    }
}
