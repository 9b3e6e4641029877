//! Dimension keys: the dimension a cell's value belongs to, stored with each cell. They are
//! the names of Plausible's dimensions (`event:page`, `visit:source`, ...), as the query
//! crate names its dimensions; top-level totals have the empty key.

use heartbeat_model::{Event, Session, VisitAttributes};

/// The dimension key of top-level totals (no dimension).
pub const TOTAL: &str = "";
/// Page views by path; visit sums by the path visits entered on.
pub const PAGE: &str = "event:page";
pub const NAME: &str = "event:name";
pub const HOSTNAME: &str = "event:hostname";
/// Visit sums and visitors by the path visits entered on.
pub const ENTRY_PAGE: &str = "visit:entry_page";
/// Visit sums and visitors by the path visits left from.
pub const EXIT_PAGE: &str = "visit:exit_page";

/// How a visit's value of a visit-only dimension is read.
pub type VisitOnlyValue = for<'a> fn(&'a Session) -> &'a str;

/// The dimensions only visits know (no event has them), with their dimension keys: their
/// cells count the visitors of the visits' current states.
pub const VISIT_ONLY_KEYS: [(&str, VisitOnlyValue); 2] = [
    (ENTRY_PAGE, |session| &session.entry_page),
    (EXIT_PAGE, |session| &session.exit_page),
];

/// How a visit attribute is read from a visit's attributes.
pub type VisitAttribute = for<'a> fn(&'a VisitAttributes) -> &'a str;

/// The visit attributes cells are kept by (each event and visit counts under its value of
/// every one), with their dimension keys.
pub const VISIT_KEYS: [(&str, VisitAttribute); 16] = [
    ("visit:source", |visit| &visit.referrer_source),
    ("visit:referrer", |visit| &visit.referrer),
    ("visit:channel", |visit| &visit.channel),
    ("visit:utm_source", |visit| &visit.utm_source),
    ("visit:utm_medium", |visit| &visit.utm_medium),
    ("visit:utm_campaign", |visit| &visit.utm_campaign),
    ("visit:utm_content", |visit| &visit.utm_content),
    ("visit:utm_term", |visit| &visit.utm_term),
    ("visit:country", |visit| &visit.country),
    ("visit:region", |visit| &visit.region),
    ("visit:city", |visit| &visit.city),
    ("visit:browser", |visit| &visit.browser),
    ("visit:browser_version", |visit| &visit.browser_version),
    ("visit:os", |visit| &visit.os),
    ("visit:os_version", |visit| &visit.os_version),
    ("visit:device", |visit| &visit.device),
];

fn visit_pairs(visit: &VisitAttributes) -> impl Iterator<Item = (&'static str, &str)> {
    VISIT_KEYS
        .iter()
        .map(move |(key, read)| (*key, read(visit)))
}

/// (dimension key, value) pairs an event counts under. An engagement event counts under no
/// name: it is no custom event (its visitor still counts, as in Plausible's `visitors`).
pub(crate) fn event_keys(event: &Event) -> impl Iterator<Item = (&'static str, &str)> {
    let page = (event.name == "pageview").then_some((PAGE, event.pathname.as_str()));
    let name = (!event.is_engagement()).then_some((NAME, event.name.as_str()));
    [(TOTAL, ""), (HOSTNAME, event.hostname.as_str())]
        .into_iter()
        .chain(name)
        .chain(page)
        .chain(visit_pairs(&event.visit))
}

/// (dimension key, value) pairs a visit counts under. A page breakdown's visit metrics are
/// those of the visits that entered on the page, as in Plausible and the SQL compiler.
pub(crate) fn visit_keys(session: &Session) -> impl Iterator<Item = (&'static str, &str)> {
    [
        (TOTAL, ""),
        (ENTRY_PAGE, session.entry_page.as_str()),
        (EXIT_PAGE, session.exit_page.as_str()),
        (PAGE, session.entry_page.as_str()),
        (HOSTNAME, session.hostname.as_str()),
    ]
    .into_iter()
    .chain(visit_pairs(&session.visit))
}
