//! The rollup changes of one batch of events and visit-log rows, by the slice (site, span,
//! period) they touch: what the store merges into the stored cells.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use hashbrown::Equivalent;
use heartbeat_model::{Event, Session, SiteId};

use crate::cell::Cell;
use crate::keys::{event_keys, visit_keys, VISIT_ONLY_KEYS};
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

/// The owned key of a new cell.
impl From<&CellKeyRef<'_>> for (String, String) {
    fn from(key: &CellKeyRef<'_>) -> Self {
        (key.0.to_owned(), key.1.to_owned())
    }
}

/// The cell of `(dim, value)` in `slice`, created empty if new (the strings are copied only
/// then), with one hash and one probe.
fn cell_of<'s>(slice: &'s mut Slice, dim: &str, value: &str) -> &'s mut Cell {
    slice.entry_ref(&CellKeyRef(dim, value)).or_default()
}

/// What a visit-log row tells of its visit's cells of visit-only dimensions.
#[derive(Debug)]
struct VisitState {
    sign: i8,
    version: u32,
    start_ms: i64,
    /// Its values of the visit-only dimensions, in the order of [`VISIT_ONLY_KEYS`].
    values: [String; 2],
}

/// Cells of one visit-only dimension in one slice whose visitors must be counted again:
/// (slice, dimension key, values).
pub type StaleCells = (SliceKey, &'static str, Vec<String>);

/// Rollup changes of one batch, by slice.
#[derive(Debug, Default)]
pub struct Rollups {
    pub slices: HashMap<SliceKey, Slice>,
    /// The visit-log rows added, by visit (see [`Rollups::stale_visit_cells`]).
    visit_states: HashMap<(SiteId, u64), Vec<VisitState>>,
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

    /// One row of the visit log: `sign` 1 adds a visit's state, -1 takes one back. An added
    /// state adds its visitor to its cells of the visit-only dimensions (entry and exit
    /// page, whose visitors are those of the visits' current states; a sketch cannot take
    /// one back: see [`Rollups::stale_visit_cells`]).
    pub fn add_visit(&mut self, session: &Session, sign: i8) {
        self.visit_states
            .entry((session.site_id.clone(), session.session_id))
            .or_default()
            .push(VisitState {
                sign,
                version: session.version,
                start_ms: session.start_ms,
                values: VISIT_ONLY_KEYS.map(|(_, read)| read(session).to_owned()),
            });
        self.add_visit_sums(session, sign);
        if sign > 0 {
            self.add_current_visit(session);
        }
    }

    /// One row of the visit log, for its sign-weighted sums only. With
    /// [`Rollups::add_current_visit`] for each visit's current state, this is how a rebuild
    /// reads a period's whole log: nothing is kept per visit, so no stale cell is left to
    /// count again.
    pub fn add_visit_sums(&mut self, session: &Session, sign: i8) {
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

    /// A visit's current state (added and not taken back): its visitor in its cells of the
    /// visit-only dimensions.
    pub fn add_current_visit(&mut self, session: &Session) {
        for span in [Span::Hour, Span::Day] {
            let slice = self
                .slices
                .entry((
                    session.site_id.clone(),
                    span,
                    span.start_of(session.start_ms),
                ))
                .or_default();
            for (dim, read) in VISIT_ONLY_KEYS {
                cell_of(slice, dim, read(session))
                    .visitors
                    .insert(&session.visitor_id);
            }
        }
    }

    /// Turns every cell's visitors into their stored form (see `Sketch::compact_stored`).
    /// A rebuild that adds a whole day of events calls it as it goes, so a cell holds at most
    /// about a thousand ids, not every visitor of the day.
    pub fn compact_visitors(&mut self) {
        for cell in self
            .slices
            .values_mut()
            .flat_map(|slice| slice.values_mut())
        {
            cell.visitors.compact_stored();
        }
    }

    /// The cells of visit-only dimensions whose visitors may count one that is no longer
    /// there: a visit state was taken back (its exit page changed as the visit grew, or a
    /// late event moved its start or entry page) and the visit's current state among these
    /// rows, if any, is not in the same cell. The store counts
    /// their visitors again from its visit log; every other cell's visitors only grow.
    pub fn stale_visit_cells(&self) -> Vec<StaleCells> {
        let mut stale: HashMap<(SliceKey, &'static str), HashSet<&str>> = HashMap::new();
        for ((site, _), states) in &self.visit_states {
            let taken_back: HashSet<u32> = states
                .iter()
                .filter(|state| state.sign < 0)
                .map(|state| state.version)
                .collect();
            if taken_back.is_empty() {
                continue;
            }
            let current = states
                .iter()
                .find(|state| state.sign > 0 && !taken_back.contains(&state.version));
            for state in states.iter().filter(|s| taken_back.contains(&s.version)) {
                for span in [Span::Hour, Span::Day] {
                    let start = span.start_of(state.start_ms);
                    for (i, (dim, _)) in VISIT_ONLY_KEYS.iter().enumerate() {
                        let value = &state.values[i];
                        let still_there = current.is_some_and(|now| {
                            span.start_of(now.start_ms) == start && now.values[i] == *value
                        });
                        if !still_there {
                            stale
                                .entry(((site.clone(), span, start), *dim))
                                .or_default()
                                .insert(value.as_str());
                        }
                    }
                }
            }
        }
        stale
            .into_iter()
            .map(|((slice, dim), values)| {
                let mut values: Vec<String> = values.into_iter().map(str::to_owned).collect();
                values.sort();
                (slice, dim, values)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ENTRY_PAGE, EXIT_PAGE, NAME, PAGE, TOTAL};
    use crate::span::HOUR_MS;

    const AT_MS: i64 = 1_700_000_000_000;

    fn slice(rollups: &Rollups, span: Span) -> &Slice {
        &rollups.slices[&(SiteId::from("a.com"), span, span.start_of(AT_MS))]
    }

    fn slice_at(rollups: &Rollups, span: Span, at_ms: i64) -> &Slice {
        &rollups.slices[&(SiteId::from("a.com"), span, span.start_of(at_ms))]
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
            end_ms: AT_MS + HOUR_MS,
            events: 3,
            engagements: 2,
            ..visit("/", AT_MS, 1)
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
        // Entry and exit pages count the visitors of the visits there.
        for span in [Span::Hour, Span::Day] {
            for (dim, value) in [(ENTRY_PAGE, "/"), (EXIT_PAGE, "/bye")] {
                let cell = cell(slice(&rollups, span), dim, value);
                assert_eq!((cell.visits, cell.visitors.estimate()), (1, 1));
            }
        }
        // The visit grew where it was: no cell needs counting again.
        assert!(rollups.stale_visit_cells().is_empty());
    }

    fn visit(entry_page: &str, start_ms: i64, version: u32) -> Session {
        Session {
            site_id: SiteId::from("a.com"),
            session_id: 1,
            visitor_id: 7,
            user_id: None,
            version,
            start_ms,
            end_ms: start_ms + 60_000,
            pageviews: 2,
            events: 2,
            engagements: 0,
            entry_page: entry_page.into(),
            exit_page: "/bye".into(),
            hostname: "a.com".into(),
            visit: Default::default(),
        }
    }

    fn sorted(stale: Vec<StaleCells>) -> Vec<(Span, i64, &'static str, Vec<String>)> {
        let mut out: Vec<_> = stale
            .into_iter()
            .map(|((_, span, start), dim, values)| (span, start, dim, values))
            .collect();
        out.sort_by_key(|(span, start, dim, _)| (*span == Span::Day, *start, *dim));
        out
    }

    #[test]
    fn a_visit_leaving_a_cell_leaves_it_to_be_counted_again() {
        let (hour, day) = (Span::Hour.start_of(AT_MS), Span::Day.start_of(AT_MS));
        let pages = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        // Stored before: the visit entered on `/` and left from `/bye`. It grows to `/next`:
        // only its old exit page's cells count it no more.
        let stored = visit("/", AT_MS, 1);
        let grown = Session {
            version: 2,
            exit_page: "/next".into(),
            ..stored.clone()
        };
        let mut rollups = Rollups::default();
        rollups.add_visit(&stored, -1);
        rollups.add_visit(&grown, 1);
        assert_eq!(
            sorted(rollups.stale_visit_cells()),
            vec![
                (Span::Hour, hour, EXIT_PAGE, pages(&["/bye"])),
                (Span::Day, day, EXIT_PAGE, pages(&["/bye"])),
            ]
        );
        // A late event an hour earlier on `/ad` moves its start and entry page: the old
        // hour's cells of both pages and the old day's entry-page cell go stale.
        let moved = visit("/ad", AT_MS - HOUR_MS, 2);
        let mut want = vec![
            (Span::Hour, hour, ENTRY_PAGE, pages(&["/"])),
            (Span::Hour, hour, EXIT_PAGE, pages(&["/bye"])),
            (Span::Day, day, ENTRY_PAGE, pages(&["/"])),
        ];
        if Span::Day.start_of(AT_MS - HOUR_MS) != day {
            // Moved to the day before: the old day's exit page too.
            want.push((Span::Day, day, EXIT_PAGE, pages(&["/bye"])));
        }
        let mut later = Rollups::default();
        later.add_visit(&stored, -1);
        later.add_visit(&moved, 1);
        assert_eq!(sorted(later.stale_visit_cells()), want);
        // The same within one batch: added, taken back and moved (a rebuild reads them so).
        let mut one = Rollups::default();
        one.add_visit(&moved, 1);
        one.add_visit(&stored, -1);
        one.add_visit(&stored, 1);
        assert_eq!(sorted(one.stale_visit_cells()), want);
        let new = cell(
            slice_at(&one, Span::Hour, AT_MS - HOUR_MS),
            ENTRY_PAGE,
            "/ad",
        );
        assert_eq!((new.visits, new.visitors.estimate()), (1, 1));
    }
}
