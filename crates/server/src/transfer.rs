//! Moving a site's events between servers: the export formats and the import that reads them
//! back, shared by `GET /api/export`, `POST /api/import` and the `heartbeat export` /
//! `heartbeat import` commands.
//!
//! Both formats carry one stored event per line with the columns of [`COLUMNS`]: the event as
//! the processor stored it, visit id and visit attributes included, so an import needs no
//! enrichment and rebuilds the same visits.
//! - `ndjson`: one JSON object per line; `props` is an object, absent values are `null`.
//! - `csv`: RFC 4180 with a header line; `props` is JSON text, absent values are empty.
//!
//! `timestamp` is RFC 3339 UTC with milliseconds; `revenue_micros` is millionths of
//! `revenue_currency`; `scroll_depth` (percent, absent when none) and `engagement_time_ms`
//! are what an `engagement` event reports. An import is idempotent: events whose id the site has already are
//! skipped.

use std::collections::BTreeMap;
use std::io::Write;

use heartbeat_model::{Event, Revenue, SiteId, VisitAttributes};
use heartbeat_store::{EventData, StoreError};
use serde::{Deserialize, Serialize};

/// The columns of both formats, in order.
pub const COLUMNS: [&str; 33] = [
    "event_id",
    "client_event_id",
    "name",
    "timestamp",
    "visitor_id",
    "session_id",
    "user_id",
    "client_session_id",
    "hostname",
    "pathname",
    "referrer",
    "referrer_source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "country",
    "region",
    "city",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen",
    "props",
    "revenue_micros",
    "revenue_currency",
    "interactive",
    "scroll_depth",
    "engagement_time_ms",
];

/// Events per store read or write.
pub const PAGE_EVENTS: usize = 10_000;
/// The largest import body accepted over HTTP.
pub const MAX_IMPORT_BYTES: usize = 512 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A line of the input is not an event; `line` counts from 1 (the CSV header is line 1).
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

/// One event as the NDJSON format writes it.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    event_id: String,
    #[serde(default)]
    client_event_id: bool,
    name: String,
    timestamp: String,
    visitor_id: u64,
    session_id: u64,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    client_session_id: Option<String>,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    pathname: String,
    #[serde(flatten)]
    visit: VisitAttributes,
    #[serde(default)]
    props: BTreeMap<String, String>,
    #[serde(default)]
    revenue_micros: Option<i64>,
    #[serde(default)]
    revenue_currency: Option<String>,
    #[serde(default = "yes")]
    interactive: bool,
    #[serde(default)]
    scroll_depth: Option<u8>,
    #[serde(default)]
    engagement_time_ms: u32,
}

fn yes() -> bool {
    true
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn record(e: Event) -> Record {
    let (revenue_micros, revenue_currency) = match e.revenue {
        Some(r) => (Some(r.amount_micros), Some(r.currency)),
        None => (None, None),
    };
    Record {
        event_id: e.event_id,
        client_event_id: e.event_id_from_client,
        name: e.name,
        timestamp: iso(e.timestamp_ms),
        visitor_id: e.visitor_id,
        session_id: e.session_id,
        user_id: e.user_id,
        client_session_id: e.client_session_id,
        hostname: e.hostname,
        pathname: e.pathname,
        visit: e.visit,
        props: e.props,
        revenue_micros,
        revenue_currency,
        interactive: e.interactive,
        scroll_depth: e.scroll_depth,
        engagement_time_ms: e.engagement_time_ms,
    }
}

fn event(r: Record, site: &SiteId, line: u64) -> Result<Event, TransferError> {
    let bad = |message: String| TransferError::Line { line, message };
    if r.event_id.is_empty() {
        return Err(bad("event_id is required".into()));
    }
    if r.name.is_empty() {
        return Err(bad("name is required".into()));
    }
    let timestamp_ms = chrono::DateTime::parse_from_rfc3339(&r.timestamp)
        .map_err(|_| bad(format!("timestamp {:?} is not RFC 3339", r.timestamp)))?
        .timestamp_millis();
    let revenue = match (r.revenue_micros, r.revenue_currency) {
        (Some(amount_micros), Some(currency)) => Some(Revenue {
            amount_micros,
            currency,
        }),
        (None, None) => None,
        _ => return Err(bad("revenue_micros and revenue_currency go together".into())),
    };
    Ok(Event {
        event_id: r.event_id,
        event_id_from_client: r.client_event_id,
        site_id: site.clone(),
        name: r.name,
        timestamp_ms,
        visitor_id: r.visitor_id,
        previous_visitor_id: None,
        session_id: r.session_id,
        user_id: r.user_id,
        client_session_id: r.client_session_id,
        hostname: r.hostname,
        pathname: r.pathname,
        visit: r.visit,
        props: r.props,
        revenue,
        interactive: r.interactive,
        scroll_depth: r.scroll_depth,
        engagement_time_ms: r.engagement_time_ms,
    })
}

fn csv_fields(r: &Record) -> Vec<String> {
    let v = &r.visit;
    let optional = |s: &Option<String>| s.clone().unwrap_or_default();
    vec![
        r.event_id.clone(),
        r.client_event_id.to_string(),
        r.name.clone(),
        r.timestamp.clone(),
        r.visitor_id.to_string(),
        r.session_id.to_string(),
        optional(&r.user_id),
        optional(&r.client_session_id),
        r.hostname.clone(),
        r.pathname.clone(),
        v.referrer.clone(),
        v.referrer_source.clone(),
        v.channel.clone(),
        v.utm_source.clone(),
        v.utm_medium.clone(),
        v.utm_campaign.clone(),
        v.utm_content.clone(),
        v.utm_term.clone(),
        v.country.clone(),
        v.region.clone(),
        v.city.clone(),
        v.browser.clone(),
        v.browser_version.clone(),
        v.os.clone(),
        v.os_version.clone(),
        v.device.clone(),
        v.screen.clone(),
        if r.props.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&r.props).unwrap_or_default()
        },
        r.revenue_micros.map(|m| m.to_string()).unwrap_or_default(),
        optional(&r.revenue_currency),
        r.interactive.to_string(),
        r.scroll_depth.map(|d| d.to_string()).unwrap_or_default(),
        r.engagement_time_ms.to_string(),
    ]
}

/// Encodes one page of events; the CSV header goes before the first page.
pub fn encode_page(events: Vec<Event>, format: Format, first: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * 400);
    match format {
        Format::Ndjson => {
            for e in events {
                serde_json::to_writer(&mut out, &record(e)).expect("records serialize");
                out.push(b'\n');
            }
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut out);
            if first {
                writer.write_record(COLUMNS).expect("writes to memory");
            }
            for e in events {
                writer
                    .write_record(csv_fields(&record(e)))
                    .expect("writes to memory");
            }
            writer.flush().expect("writes to memory");
        }
    }
    out
}

/// Decodes a whole export into events of `site` (whatever site they came from).
pub fn decode(input: &[u8], format: Format, site: &SiteId) -> Result<Vec<Event>, TransferError> {
    let mut events = Vec::new();
    match format {
        Format::Ndjson => {
            for (index, line) in input.split(|b| *b == b'\n').enumerate() {
                let line_no = index as u64 + 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let r: Record =
                    serde_json::from_slice(line).map_err(|err| TransferError::Line {
                        line: line_no,
                        message: err.to_string(),
                    })?;
                events.push(event(r, site, line_no)?);
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().from_reader(input);
            let header = reader
                .headers()
                .map_err(|err| TransferError::Line {
                    line: 1,
                    message: err.to_string(),
                })?
                .clone();
            let position: BTreeMap<&str, usize> =
                header.iter().enumerate().map(|(i, h)| (h, i)).collect();
            if let Some(unknown) = header.iter().find(|h| !COLUMNS.contains(h)) {
                return Err(TransferError::Line {
                    line: 1,
                    message: format!("unknown column {unknown:?}"),
                });
            }
            for row in reader.records() {
                let row = row.map_err(|err| TransferError::Line {
                    line: err.position().map(|p| p.line()).unwrap_or(0),
                    message: err.to_string(),
                })?;
                let line = row.position().map(|p| p.line()).unwrap_or(0);
                let bad = |message: String| TransferError::Line { line, message };
                let get = |name: &str| -> &str {
                    position.get(name).and_then(|i| row.get(*i)).unwrap_or("")
                };
                let optional = |name: &str| Some(get(name).to_owned()).filter(|s| !s.is_empty());
                let number = |name: &str| -> Result<u64, TransferError> {
                    get(name)
                        .parse()
                        .map_err(|_| bad(format!("{name} must be a whole number")))
                };
                let flag = |name: &str, default: bool| -> Result<bool, TransferError> {
                    match get(name) {
                        "" => Ok(default),
                        "true" => Ok(true),
                        "false" => Ok(false),
                        other => Err(bad(format!("{name} must be true or false, not {other:?}"))),
                    }
                };
                let props = match get("props") {
                    "" => BTreeMap::new(),
                    json => serde_json::from_str(json)
                        .map_err(|_| bad("props must be a JSON object of strings".into()))?,
                };
                let revenue_micros = match get("revenue_micros") {
                    "" => None,
                    m => Some(
                        m.parse()
                            .map_err(|_| bad("revenue_micros must be a whole number".into()))?,
                    ),
                };
                let r = Record {
                    event_id: get("event_id").to_owned(),
                    client_event_id: flag("client_event_id", false)?,
                    name: get("name").to_owned(),
                    timestamp: get("timestamp").to_owned(),
                    visitor_id: number("visitor_id")?,
                    session_id: number("session_id")?,
                    user_id: optional("user_id"),
                    client_session_id: optional("client_session_id"),
                    hostname: get("hostname").to_owned(),
                    pathname: get("pathname").to_owned(),
                    visit: VisitAttributes {
                        referrer: get("referrer").to_owned(),
                        referrer_source: get("referrer_source").to_owned(),
                        channel: get("channel").to_owned(),
                        utm_source: get("utm_source").to_owned(),
                        utm_medium: get("utm_medium").to_owned(),
                        utm_campaign: get("utm_campaign").to_owned(),
                        utm_content: get("utm_content").to_owned(),
                        utm_term: get("utm_term").to_owned(),
                        country: get("country").to_owned(),
                        region: get("region").to_owned(),
                        city: get("city").to_owned(),
                        browser: get("browser").to_owned(),
                        browser_version: get("browser_version").to_owned(),
                        os: get("os").to_owned(),
                        os_version: get("os_version").to_owned(),
                        device: get("device").to_owned(),
                        screen: get("screen").to_owned(),
                    },
                    props,
                    revenue_micros,
                    revenue_currency: optional("revenue_currency"),
                    interactive: flag("interactive", true)?,
                    scroll_depth: match get("scroll_depth") {
                        "" => None,
                        d => Some(d.parse().map_err(|_| {
                            bad("scroll_depth must be a whole number from 0 to 255".into())
                        })?),
                    },
                    engagement_time_ms: match get("engagement_time_ms") {
                        "" => 0,
                        ms => ms
                            .parse()
                            .map_err(|_| bad("engagement_time_ms must be a whole number".into()))?,
                    },
                };
                events.push(event(r, site, line)?);
            }
        }
    }
    Ok(events)
}

/// Stores decoded events page by page; returns how many were new.
pub async fn import(store: &dyn EventData, events: Vec<Event>) -> Result<u64, TransferError> {
    let mut imported = 0;
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let page: Vec<Event> = events.by_ref().take(PAGE_EVENTS).collect();
        imported += store.import_events(page).await?;
    }
    Ok(imported)
}

/// Writes all of `site`'s events to `out`; returns how many.
pub async fn export_to(
    store: &dyn EventData,
    site: &SiteId,
    format: Format,
    out: &mut impl Write,
) -> Result<u64, TransferError> {
    let mut after = None;
    let mut count = 0;
    let mut first = true;
    loop {
        let page = store
            .export_events(site, after.clone(), PAGE_EVENTS)
            .await?;
        let last = page.last().map(|e| (e.timestamp_ms, e.event_id.clone()));
        let len = page.len();
        if len > 0 || first {
            out.write_all(&encode_page(page, format, first))?;
        }
        first = false;
        count += len as u64;
        match last {
            Some(last) if len == PAGE_EVENTS => after = Some(last),
            _ => break,
        }
    }
    out.flush()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut e = Event::new(
            "e-1",
            SiteId::from("a.example"),
            "Purchase",
            1_770_000_000_123,
        );
        e.visitor_id = u64::MAX;
        e.session_id = 42;
        e.user_id = Some("u \"1\", two".into());
        e.pathname = "/checkout".into();
        e.visit.country = "DE".into();
        e.props.insert("plan".into(), "pro, yearly\nline".into());
        e.revenue = Some(Revenue {
            amount_micros: 19_990_000,
            currency: "EUR".into(),
        });
        e.interactive = false;
        e
    }

    #[test]
    fn engagement_fields_round_trip() {
        let target = SiteId::from("a.example");
        let mut engagement = Event::new("e-2", target.clone(), "engagement", 1_770_000_000_000);
        engagement.scroll_depth = Some(73);
        engagement.engagement_time_ms = 41_250;
        for format in [Format::Ndjson, Format::Csv] {
            let bytes = encode_page(vec![engagement.clone(), sample()], format, true);
            let back = decode(&bytes, format, &target).unwrap();
            assert_eq!(back[0], engagement, "{format:?}");
            assert_eq!(
                (back[1].scroll_depth, back[1].engagement_time_ms),
                (None, 0)
            );
        }
    }

    #[test]
    fn both_formats_round_trip_into_the_target_site() {
        let target = SiteId::from("b.example");
        for format in [Format::Ndjson, Format::Csv] {
            let mut bytes = encode_page(vec![sample()], format, true);
            bytes.extend(encode_page(vec![sample()], format, false));
            let back = decode(&bytes, format, &target).unwrap();
            let expected = Event {
                site_id: target.clone(),
                ..sample()
            };
            assert_eq!(back, vec![expected.clone(), expected], "{format:?}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let site = SiteId::from("a.example");
        let good = encode_page(vec![sample()], Format::Ndjson, true);
        let mut input = good.clone();
        input.extend(b"{\"event_id\": \"x\"}\n");
        let err = decode(&input, Format::Ndjson, &site)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 2:"), "{err}");
        let unknown = decode(b"event_id,color\nx,red\n", Format::Csv, &site)
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("unknown column \"color\""), "{unknown}");
        let mut csv = encode_page(vec![sample()], Format::Csv, true);
        csv.extend(b"e-2,false,pageview,yesterday,1,2,,,,,,,,,,,,,,,,,,,,,,,,,true,,0\n");
        let err = decode(&csv, Format::Csv, &site).unwrap_err().to_string();
        assert!(err.contains("timestamp \"yesterday\""), "{err}");
    }
}
