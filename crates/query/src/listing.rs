//! Single events, newest first: the recent-events feed and the seeds' event lists (seed
//! 001's `GET /api/v1/events` with its filters, one event by id, seed 004's recent events).
//!
//! Pages are keyset-paginated on (time, event id), so a page never repeats or skips an event
//! when new ones arrive; the cursor is opaque to clients.

use std::collections::BTreeMap;

use heartbeat_model::SiteId;

use crate::dialect::{SqlDialect, SqlType};
use crate::sql::{RunError, Sql, SqlRunner, SqlValue};

/// Most events one page may hold.
pub const MAX_PAGE: usize = 1000;

/// Which events to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventListing {
    pub site_id: SiteId,
    /// Event names to keep; empty keeps all.
    pub names: Vec<String>,
    /// Keep events whose custom property `key` equals `value` (seed 001's `source`).
    pub prop: Option<(String, String)>,
    pub event_id: Option<String>,
    /// UTC milliseconds, start inclusive, end exclusive.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub limit: usize,
    /// Continue after this position (from a previous page's `next`).
    pub after: Option<Cursor>,
}

impl EventListing {
    /// The newest `limit` events of a site, unfiltered.
    pub fn new(site_id: SiteId, limit: usize) -> EventListing {
        EventListing {
            site_id,
            names: Vec::new(),
            prop: None,
            event_id: None,
            start_ms: None,
            end_ms: None,
            limit,
            after: None,
        }
    }
}

/// A position in the newest-first order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp_ms: i64,
    pub event_id: String,
}

impl Cursor {
    /// The opaque text form clients pass back: hex of `<ms>:<event id>`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.timestamp_ms, self.event_id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        if !text.len().is_multiple_of(2) || text.len() > 1200 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect();
        let text = String::from_utf8(bytes?).ok()?;
        let (ms, id) = text.split_once(':')?;
        Some(Cursor {
            timestamp_ms: ms.parse().ok()?,
            event_id: id.to_owned(),
        })
    }
}

/// One stored event as the listing endpoints show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ListedEvent {
    pub event_id: String,
    pub name: String,
    pub timestamp_ms: i64,
    pub hostname: String,
    pub pathname: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub props: BTreeMap<String, String>,
    pub source: String,
    pub country: String,
    pub browser: String,
    pub os: String,
    pub device: String,
}

/// A page of events and the cursor of the next page, if there may be one.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<ListedEvent>,
    pub next: Option<Cursor>,
}

fn listing_sql(listing: &EventListing, dialect: &dyn SqlDialect) -> Sql {
    let mut text = format!(
        "SELECT event_id, name, {} AS ms, hostname, pathname, user_id, client_session_id, \
         props_json, referrer_source, country, browser, os, device FROM events WHERE site_id = ?",
        dialect.epoch_millis("ts")
    );
    let mut params = vec![SqlValue::Text(listing.site_id.0.clone())];
    if !listing.names.is_empty() {
        text.push_str(" AND name IN (");
        for (i, name) in listing.names.iter().enumerate() {
            text.push_str(if i == 0 { "?" } else { ", ?" });
            params.push(SqlValue::Text(name.clone()));
        }
        text.push(')');
    }
    if let Some(id) = &listing.event_id {
        text.push_str(" AND event_id = ?");
        params.push(SqlValue::Text(id.clone()));
    }
    if let Some(start) = listing.start_ms {
        text.push_str(" AND ts >= ?");
        params.push(SqlValue::TimestampMs(start));
    }
    if let Some(end) = listing.end_ms {
        text.push_str(" AND ts < ?");
        params.push(SqlValue::TimestampMs(end));
    }
    if let Some((key, value)) = &listing.prop {
        text.push_str(
            " AND event_id IN (SELECT event_id FROM event_props WHERE site_id = ? AND key = ? AND value = ?)",
        );
        params.push(SqlValue::Text(listing.site_id.0.clone()));
        params.push(SqlValue::Text(key.clone()));
        params.push(SqlValue::Text(value.clone()));
    }
    if let Some(after) = &listing.after {
        text.push_str(" AND (ts < ? OR (ts = ? AND event_id < ?))");
        params.push(SqlValue::TimestampMs(after.timestamp_ms));
        params.push(SqlValue::TimestampMs(after.timestamp_ms));
        params.push(SqlValue::Text(after.event_id.clone()));
    }
    // One more than asked, to know whether a next page exists.
    text.push_str(" ORDER BY ts DESC, event_id DESC LIMIT ?");
    params.push(SqlValue::Int(listing.limit.clamp(1, MAX_PAGE) as i64 + 1));
    Sql { text, params }
}

fn text(value: &SqlValue) -> String {
    match value {
        SqlValue::Text(s) => s.clone(),
        _ => String::new(),
    }
}

fn optional_text(value: &SqlValue) -> Option<String> {
    match value {
        SqlValue::Text(s) => Some(s.clone()),
        _ => None,
    }
}

/// Runs `listing`: at most `limit` events, newest first.
pub async fn list_events(
    listing: &EventListing,
    runner: &dyn SqlRunner,
) -> Result<EventPage, RunError> {
    let limit = listing.limit.clamp(1, MAX_PAGE);
    let rows = runner
        .run(listing_sql(listing, runner.dialect().sql()))
        .await?;
    let more = rows.len() > limit;
    let events: Vec<ListedEvent> = rows
        .into_iter()
        .take(limit)
        .map(|row| ListedEvent {
            event_id: text(&row[0]),
            name: text(&row[1]),
            timestamp_ms: row[2].as_f64() as i64,
            hostname: text(&row[3]),
            pathname: text(&row[4]),
            user_id: optional_text(&row[5]),
            session_id: optional_text(&row[6]),
            props: serde_json::from_str(&text(&row[7])).unwrap_or_default(),
            source: text(&row[8]),
            country: text(&row[9]),
            browser: text(&row[10]),
            os: text(&row[11]),
            device: text(&row[12]),
        })
        .collect();
    let next = more.then(|| events.last()).flatten().map(|last| Cursor {
        timestamp_ms: last.timestamp_ms,
        event_id: last.event_id.clone(),
    });
    Ok(EventPage { events, next })
}

/// Distinct visitors with an event in the five minutes before `now_ms`: Plausible's
/// current visitors.
pub async fn current_visitors(
    site_id: &SiteId,
    now_ms: i64,
    runner: &dyn SqlRunner,
) -> Result<u64, RunError> {
    let rows = runner
        .run(Sql {
            text: "SELECT count(DISTINCT visitor_id) FROM events WHERE site_id = ? AND ts >= ? AND ts <= ?"
                .into(),
            params: vec![
                SqlValue::Text(site_id.0.clone()),
                SqlValue::TimestampMs(now_ms - 5 * 60_000),
                SqlValue::TimestampMs(now_ms),
            ],
        })
        .await?;
    Ok(rows.first().map_or(0, |row| row[0].as_f64() as u64))
}

/// Where Plausible's `"date_range": "all"` starts (its `stats_start_date`): the site's
/// first stored event, or the first day of its earliest import of statistics when that is
/// earlier. `None` for a site with neither.
pub async fn first_event_ms(
    site_id: &SiteId,
    runner: &dyn SqlRunner,
) -> Result<Option<i64>, RunError> {
    let dialect = runner.dialect().sql();
    let mut first: Option<i64> = None;
    for (expression, table) in [
        (dialect.min_or_null("ts"), "events"),
        (
            dialect.cast(&dialect.min_or_null("start_date"), SqlType::Timestamp),
            "site_imports",
        ),
    ] {
        let rows = runner
            .run(Sql {
                text: format!(
                    "SELECT {} FROM {table} WHERE site_id = ?",
                    dialect.epoch_millis(&expression)
                ),
                params: vec![SqlValue::Text(site_id.0.clone())],
            })
            .await?;
        let at = rows
            .first()
            .and_then(|row| row.first())
            .filter(|value| !matches!(value, SqlValue::Null))
            .map(|value| value.as_f64() as i64);
        first = match (first, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            timestamp_ms: 1_700_000_000_123,
            event_id: "ev:1/ä".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("zz"), None);
        assert_eq!(Cursor::decode("abc"), None);
        assert_eq!(Cursor::decode(""), None);
    }

    #[test]
    fn listing_binds_every_value() {
        let sql = listing_sql(
            &EventListing {
                names: vec!["x'); DROP TABLE events; --".into()],
                prop: Some(("source".into(), "web".into())),
                start_ms: Some(0),
                ..EventListing::new(SiteId::from("a.com"), 10)
            },
            Dialect::DuckDb.sql(),
        );
        assert!(!sql.text.contains("DROP"));
        assert_eq!(sql.params.len(), 7);
    }
}
