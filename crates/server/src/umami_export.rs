//! Umami's events read for an import: a CSV of Umami's `website_event` table (as
//! `COPY website_event TO ... CSV HEADER` or Umami's data export writes it), optionally with
//! its visitors' `session` columns joined in (`browser`, `os`, `device`, `screen`,
//! `country`, `region`, `city`). Columns are found by their header name.
//!
//! Each page view (`event_type` 1) and custom event (2) becomes a stored event of the site:
//! Umami's `session_id` is the visitor, its `visit_id` the visit, and the visit's first event
//! gives every event of the visit its source, UTM tags, place and device, as Heartbeat's
//! sessionizer does. Referrers are named and channelled by the same rules as live traffic.
//! Umami's link and pixel events (types 3 and 4) are not a site's traffic and are skipped;
//! event properties live in Umami's `event_data` table and are not in this file.
//!
//! Event ids are Umami's, so importing the same file again stores nothing twice. The whole
//! file is checked first: a bad line refuses the import, naming the line.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime};
use heartbeat_ingest::enrich::page::{Page, CLICK_IDS};
use heartbeat_ingest::enrich::referrer::classify;
use heartbeat_model::{Event, SiteId, VisitAttributes, PAGEVIEW};
use sha2::{Digest, Sha256};

use crate::csv_file::{self, CsvFile, ExportError};

/// The file's name in errors.
const FILE: &str = "website_event.csv";

fn error(line: Option<u64>, message: impl Into<String>) -> ExportError {
    csv_file::error(FILE, line, message)
}

/// A stable 64-bit id for Umami's UUID `text` of kind `kind` on `site`.
fn id_of(kind: &str, site: &SiteId, text: &str) -> u64 {
    let digest = Sha256::digest(format!("umami:{kind}:{site}:{text}"));
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

/// Umami's `created_at`: ISO 8601 with a zone (`2024-01-01T10:00:00.000Z`), PostgreSQL's
/// text (`2024-01-01 10:00:00.123+00`), or without a zone (UTC).
fn timestamp_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z"] {
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            return Some(at.timestamp_millis());
        }
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|at| at.and_utc().timestamp_millis())
}

/// Umami's browser names (detect-browser's) as Heartbeat names them.
fn browser_name(umami: &str) -> String {
    match umami {
        "chrome" | "crios" | "chromium-webview" => "Chrome",
        "firefox" | "fxios" => "Firefox",
        "safari" | "ios" | "ios-webview" => "Safari",
        "edge" | "edge-chromium" | "edge-ios" => "Microsoft Edge",
        "opera" | "opera-mini" => "Opera",
        "samsung" => "Samsung Browser",
        "yandexbrowser" => "Yandex Browser",
        "facebook" => "Facebook",
        "instagram" => "Instagram",
        "" => "",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// Umami's OS names as Heartbeat's name and version (`Windows 10` -> `Windows`, `10`).
fn os_name(umami: &str) -> (String, String) {
    let (name, version) = match umami {
        "Mac OS" => ("Mac", ""),
        "Android OS" => ("Android", ""),
        "Linux" => ("GNU/Linux", ""),
        other => match other.strip_prefix("Windows ") {
            Some(version) => ("Windows", version),
            None => (other, ""),
        },
    };
    (name.to_owned(), version.to_owned())
}

fn device_name(umami: &str) -> &'static str {
    match umami {
        "desktop" | "laptop" => "Desktop",
        "mobile" => "Mobile",
        "tablet" => "Tablet",
        _ => "",
    }
}

/// Reads the CSV `text` into `site`'s events, each visit's attributes its first event's.
pub fn read_events(text: &[u8], site: &SiteId, domain: &str) -> Result<Vec<Event>, ExportError> {
    let required = [
        "event_id",
        "session_id",
        "visit_id",
        "created_at",
        "url_path",
        "event_type",
    ];
    let mut csv = CsvFile::open(FILE, text, &required)?;
    let columns = csv.columns().clone();
    // Each event with its visit's key, and the attributes its own row says.
    let mut rows: Vec<(String, Event)> = Vec::new();
    for row in csv.rows() {
        let (line, record) = row?;
        let cell = |name: &str| {
            columns
                .get(name)
                .and_then(|&i| record.get(i))
                .unwrap_or_default()
                .trim()
        };
        let name = match cell("event_type") {
            "1" => PAGEVIEW.to_owned(),
            "2" if !cell("event_name").is_empty() => cell("event_name").to_owned(),
            "2" => {
                return Err(error(
                    line,
                    "event_name is empty on a custom event (event_type 2)",
                ))
            }
            "3" | "4" => continue,
            other => return Err(error(line, format!("event_type {other:?} is not 1 to 4"))),
        };
        let at = timestamp_ms(cell("created_at")).ok_or_else(|| {
            error(
                line,
                format!("created_at {:?} is not a time", cell("created_at")),
            )
        })?;
        for id in ["event_id", "session_id", "visit_id"] {
            if cell(id).is_empty() {
                return Err(error(line, format!("{id} is empty")));
            }
        }
        let pathname = cell("url_path");
        if !pathname.starts_with('/') {
            return Err(error(
                line,
                format!("url_path {pathname:?} does not start with /"),
            ));
        }
        let hostname = match cell("hostname") {
            "" => domain.to_owned(),
            host => host.to_ascii_lowercase(),
        };
        let page = Page {
            hostname: hostname.clone(),
            pathname: pathname.to_owned(),
            utm_source: cell("utm_source").to_owned(),
            utm_medium: cell("utm_medium").to_owned(),
            utm_campaign: cell("utm_campaign").to_owned(),
            utm_content: cell("utm_content").to_owned(),
            utm_term: cell("utm_term").to_owned(),
            click_id: CLICK_IDS
                .iter()
                .find(|id| !cell(id).is_empty())
                .map_or_else(String::new, |id| (*id).to_owned()),
        };
        let referrer = match cell("referrer_domain") {
            "" => None,
            domain => Some(format!("https://{domain}{}", cell("referrer_path"))),
        };
        let referral = classify(referrer.as_deref(), &page);
        let (os, os_version) = os_name(cell("os"));
        let mut event = Event::new(
            &format!("umami:{}", cell("event_id")),
            site.clone(),
            &name,
            at,
        );
        event.event_id_from_client = true;
        event.visitor_id = id_of("session", site, cell("session_id"));
        event.session_id = id_of("visit", site, cell("visit_id"));
        event.hostname = hostname;
        event.pathname = pathname.to_owned();
        event.visit = VisitAttributes {
            referrer: referral.referrer,
            referrer_source: referral.source,
            channel: referral.channel,
            utm_source: page.utm_source,
            utm_medium: page.utm_medium,
            utm_campaign: page.utm_campaign,
            utm_content: page.utm_content,
            utm_term: page.utm_term,
            country: cell("country").to_ascii_uppercase(),
            region: cell("region").to_owned(),
            city: cell("city").to_owned(),
            browser: browser_name(cell("browser")),
            browser_version: String::new(),
            os,
            os_version,
            device: device_name(cell("device")).to_owned(),
            screen: cell("screen").to_owned(),
        };
        rows.push((cell("visit_id").to_owned(), event));
    }
    // Every event of a visit carries the attributes of the visit's first event.
    rows.sort_by_key(|(_, event)| event.timestamp_ms);
    let mut first: HashMap<String, VisitAttributes> = HashMap::new();
    Ok(rows
        .into_iter()
        .map(|(visit, mut event)| {
            let attributes = first.entry(visit).or_insert_with(|| event.visit.clone());
            event.visit = attributes.clone();
            event
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "event_id,website_id,session_id,visit_id,created_at,url_path,url_query,utm_source,utm_medium,utm_campaign,utm_content,utm_term,referrer_path,referrer_query,referrer_domain,page_title,gclid,fbclid,msclkid,ttclid,li_fat_id,twclid,event_type,event_name,tag,hostname,browser,os,device,country";

    #[test]
    fn a_visit_takes_its_first_events_attributes() {
        let site = SiteId::from("example.com");
        let csv = format!(
            "{HEADER}\n\
             e2,w,s1,v1,2024-01-01 10:05:00+00,/pricing,,,,,,,,,,Pricing,,,,,,,1,,,example.com,chrome,Windows 10,laptop,EE\n\
             e1,w,s1,v1,2024-01-01T10:00:00.000Z,/,,,,,,,/search,,www.google.com,Home,,,,,,,1,,,example.com,chrome,Windows 10,laptop,EE\n\
             e3,w,s1,v1,2024-01-01 10:06:00,/pricing,,,,,,,,,,Pricing,,,,,,,2,signup,,example.com,chrome,Windows 10,laptop,EE\n\
             e4,w,s1,v1,2024-01-01 10:07:00,/go,,,,,,,,,,,,,,,,,3,link,,example.com,chrome,Windows 10,laptop,EE\n"
        );
        let events = read_events(csv.as_bytes(), &site, "example.com").unwrap();
        assert_eq!(events.len(), 3, "the link event is skipped");
        assert_eq!(events[0].event_id, "umami:e1");
        assert!(events.iter().all(|e| e.visit.referrer_source == "Google"));
        assert!(events.iter().all(|e| e.visit.channel == "Organic Search"));
        assert_eq!(events[2].name, "signup");
        assert_eq!(events[0].visit.device, "Desktop");
        assert_eq!(
            (
                events[0].visit.os.as_str(),
                events[0].visit.os_version.as_str()
            ),
            ("Windows", "10")
        );
        assert_eq!(events[0].session_id, events[2].session_id);
        assert_eq!(events[0].timestamp_ms, 1_704_103_200_000);
    }

    #[test]
    fn bad_lines_are_named() {
        let site = SiteId::from("example.com");
        let bad_time = format!("{HEADER}\ne1,w,s1,v1,yesterday,/,,,,,,,,,,,,,,,,,1,,,,,,,\n");
        let err = read_events(bad_time.as_bytes(), &site, "example.com").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("created_at"), "{}", err.message);
        let short = format!("{HEADER}\ne1,w,s1\n");
        let err = read_events(short.as_bytes(), &site, "example.com").unwrap_err();
        assert_eq!(err.line, Some(2));
        let headless = "event_id,created_at\ne1,2024-01-01 10:00:00\n";
        let err = read_events(headless.as_bytes(), &site, "example.com").unwrap_err();
        assert!(err.message.contains("visit_id"), "{}", err.message);
    }
}
