//! Rollups: per site, UTC hour and UTC day, dimension and value, the additive sums of
//! events and visits and a mergeable sketch of the visitors. The store keeps them in the same
//! transaction as the events they summarise ([`Rollups::add_event`], [`Rollups::add_visit`]);
//! the engine answers an unfiltered query over whole hours from them (the plan, `plan.rs`,
//! decides; [`read`] reads them) instead of scanning every event.
//!
//! Visitors are a HyperLogLog++ sketch (Cloudflare's `cardinality-estimator`, precision 12):
//! exact up to 128 distinct visitors, then about 1.6 % standard error, as ClickHouse's
//! `uniq` that Plausible counts visitors with. Everything else is exact: page views and
//! events are counts, and visit sums are sign-weighted like the visit log they come from.
//! Only UTC hours and days are stored, so a site's time zone (whole-hour offsets) is applied
//! when reading, and changing it needs no rebuild: a range reads whole UTC days from the
//! daily cells and its ragged ends from the hourly ones.

use std::collections::HashMap;

use cardinality_estimator::CardinalityEstimator;
use heartbeat_model::{Event, Session, SiteId, VisitAttributes};

use crate::model::{Dimension, Query, TimeGrain, VisitColumn};
use crate::sql::{RunError, Sql, SqlRunner, SqlValue};
use crate::time::{bucket_label, every_offset, offset_at};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// How long a cell's period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    Hour,
    Day,
}

impl Span {
    /// The table holding cells of this span: daily cells in a table of their own, 24 times
    /// smaller, so reading a month scans little.
    pub fn table(self) -> &'static str {
        match self {
            Span::Hour => "rollups_hourly",
            Span::Day => "rollups_daily",
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            Span::Hour => HOUR_MS,
            Span::Day => DAY_MS,
        }
    }

    /// The start of the period of this span that `ms` falls in.
    pub fn start_of(self, ms: i64) -> i64 {
        ms.div_euclid(self.ms()) * self.ms()
    }
}

/// Distinct visitors: exact while small, HyperLogLog++ beyond.
pub type Sketch = CardinalityEstimator<u64>;

/// The dimension key of top-level totals (no dimension).
pub const TOTAL: &str = "";

/// One rollup cell: what one hour or day holds for one value of one dimension; also the
/// sum of cells for one result row.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub visitors: Sketch,
    pub pageviews: i64,
    pub events: i64,
    /// Sign-weighted sums over the visit log, by the visit's start hour.
    pub visits: i64,
    pub bounces: i64,
    pub duration_s: i64,
    pub visit_pageviews: i64,
    pub visit_events: i64,
}

impl Cell {
    pub fn merge(&mut self, other: &Cell) {
        self.visitors.merge(&other.visitors);
        self.pageviews += other.pageviews;
        self.events += other.events;
        self.visits += other.visits;
        self.bounces += other.bounces;
        self.duration_s += other.duration_s;
        self.visit_pageviews += other.visit_pageviews;
        self.visit_events += other.visit_events;
    }
}

pub fn encode_sketch(sketch: &Sketch) -> Vec<u8> {
    postcard::to_stdvec(sketch).expect("a sketch always serializes")
}

/// An unreadable sketch counts as empty rather than failing the query.
pub fn decode_sketch(bytes: &[u8]) -> Sketch {
    postcard::from_bytes(bytes).unwrap_or_default()
}

fn visit_value(visit: &VisitAttributes, column: VisitColumn) -> &str {
    match column {
        VisitColumn::Source => &visit.referrer_source,
        VisitColumn::Referrer => &visit.referrer,
        VisitColumn::Channel => &visit.channel,
        VisitColumn::UtmSource => &visit.utm_source,
        VisitColumn::UtmMedium => &visit.utm_medium,
        VisitColumn::UtmCampaign => &visit.utm_campaign,
        VisitColumn::UtmContent => &visit.utm_content,
        VisitColumn::UtmTerm => &visit.utm_term,
        VisitColumn::Country => &visit.country,
        VisitColumn::Region => &visit.region,
        VisitColumn::City => &visit.city,
        VisitColumn::Browser => &visit.browser,
        VisitColumn::BrowserVersion => &visit.browser_version,
        VisitColumn::Os => &visit.os,
        VisitColumn::OsVersion => &visit.os_version,
        VisitColumn::Device => &visit.device,
    }
}

/// (dimension key, value) pairs an event counts under.
fn event_keys(event: &Event) -> impl Iterator<Item = (&'static str, &str)> {
    let page = (event.name == "pageview").then_some(("event:page", event.pathname.as_str()));
    [
        (TOTAL, ""),
        ("event:name", event.name.as_str()),
        ("event:hostname", event.hostname.as_str()),
    ]
    .into_iter()
    .chain(page)
    .chain(
        VisitColumn::ALL
            .iter()
            .map(|(column, key, _)| (*key, visit_value(&event.visit, *column))),
    )
}

/// (dimension key, value) pairs a visit counts under. A page breakdown's visit metrics are
/// those of the visits that entered on the page, as in Plausible and the SQL compiler.
fn visit_keys(session: &Session) -> impl Iterator<Item = (&'static str, &str)> {
    [
        (TOTAL, ""),
        ("visit:entry_page", session.entry_page.as_str()),
        ("event:page", session.entry_page.as_str()),
        ("event:hostname", session.hostname.as_str()),
    ]
    .into_iter()
    .chain(
        VisitColumn::ALL
            .iter()
            .map(|(column, key, _)| (*key, visit_value(&session.visit, *column))),
    )
}

/// (site, span, UTC start) — the unit the store reads and rewrites.
pub type SliceKey = (SiteId, Span, i64);
/// (dimension key, value) -> cell.
pub type Slice = HashMap<(String, String), Cell>;

/// Rollup changes of one batch, by slice.
#[derive(Debug, Default)]
pub struct Rollups {
    pub slices: HashMap<SliceKey, Slice>,
}

impl Rollups {
    pub fn add_event(&mut self, event: &Event) {
        let pageview = i64::from(event.name == "pageview");
        for span in [Span::Hour, Span::Day] {
            let start = span.start_of(event.timestamp_ms);
            let slice = self
                .slices
                .entry((event.site_id.clone(), span, start))
                .or_default();
            for (dim, value) in event_keys(event) {
                let key = (dim.to_owned(), value.to_owned());
                let cell = slice.entry(key).or_default();
                cell.visitors.insert(&event.visitor_id);
                cell.pageviews += pageview;
                cell.events += 1;
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
                let cell = slice.entry((dim.to_owned(), value.to_owned())).or_default();
                cell.visits += sign;
                cell.bounces += sign * i64::from(session.is_bounce());
                cell.duration_s += sign * session.duration_s();
                cell.visit_pageviews += sign * i64::from(session.pageviews);
                cell.visit_events += sign * i64::from(session.events);
            }
        }
    }
}

/// The cells that cover the query's range: whole UTC days from the daily cells and the
/// ragged ends from the hourly ones, or hours only when time buckets are local days that do
/// not line up with UTC days (or are hours).
fn pieces(query: &Query) -> Vec<(Span, i64, i64)> {
    let (start, end) = (query.range.start_ms, query.range.end_ms);
    let days_fit = match query.dimensions.first() {
        Some(Dimension::Time(TimeGrain::Hour)) => false,
        Some(Dimension::Time(_)) => every_offset(query.timezone, query.range, |offset| offset == 0),
        _ => true,
    };
    let first_day = Span::Day.start_of(start + DAY_MS - 1);
    let last_day = Span::Day.start_of(end);
    if !days_fit || first_day >= last_day {
        return vec![(Span::Hour, start, end)];
    }
    let mut pieces = vec![(Span::Day, first_day, last_day)];
    if start < first_day {
        pieces.push((Span::Hour, start, first_day));
    }
    if last_day < end {
        pieces.push((Span::Hour, last_day, end));
    }
    pieces
}

fn statement(query: &Query, key: &str) -> Sql {
    let mut text = String::new();
    let mut params = Vec::new();
    for (i, (span, from, to)) in pieces(query).into_iter().enumerate() {
        if i > 0 {
            text.push_str(" UNION ALL ");
        }
        text.push_str(&format!(
            "SELECT start_ms, value, visitors, pageviews, events, visits, bounces, duration_s, \
             visit_pageviews, visit_events FROM {} WHERE site_id = ? AND dim = ? \
             AND start_ms >= ? AND start_ms < ?",
            span.table()
        ));
        params.extend([
            SqlValue::Text(query.site_id.0.clone()),
            SqlValue::Text(key.into()),
            SqlValue::Int(from),
            SqlValue::Int(to),
        ]);
    }
    Sql { text, params }
}

/// The label a cell's row gets: its value, or the local time bucket of its hour.
fn row_key(query: &Query, hour_ms: i64, value: String) -> Vec<String> {
    match query.dimensions.first() {
        None => Vec::new(),
        Some(Dimension::Time(grain)) => {
            let local_ms = hour_ms + i64::from(offset_at(query.timezone, hour_ms)) * 1000;
            vec![bucket_label(local_ms, *grain)]
        }
        Some(_) => vec![value],
    }
}

/// Reads the cells of dimension `key` that answer `query` (as planned by `plan.rs`) and
/// adds them up per result row.
pub async fn read(
    query: &Query,
    key: &str,
    runner: &dyn SqlRunner,
) -> Result<HashMap<Vec<String>, Cell>, RunError> {
    let mut sums: HashMap<Vec<String>, Cell> = HashMap::new();
    for row in runner.run(statement(query, key)).await? {
        let mut columns = row.into_iter();
        let start_ms = columns.next().map_or(0, |v| v.as_f64() as i64);
        let value = match columns.next() {
            Some(SqlValue::Text(text)) => text,
            _ => String::new(),
        };
        let rest: Vec<SqlValue> = columns.collect();
        let int = |i: usize| rest.get(i).map_or(0, |v| v.as_f64() as i64);
        let cell = Cell {
            visitors: match rest.first() {
                Some(SqlValue::Blob(bytes)) => decode_sketch(bytes),
                _ => Sketch::default(),
            },
            pageviews: int(1),
            events: int(2),
            visits: int(3),
            bounces: int(4),
            duration_s: int(5),
            visit_pageviews: int(6),
            visit_events: int(7),
        };
        sums.entry(row_key(query, start_ms, value))
            .or_default()
            .merge(&cell);
    }
    Ok(sums)
}
