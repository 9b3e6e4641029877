//! One person's journey: their events of a range in time order, grouped into visits, each
//! visit with its start, end, duration, source, device, browser, OS, country, entry and
//! exit page (`POST /api/v2/journey`, seed 003's `GET /api/v1/users/{userId}/journey`).
//!
//! The person is a client-given user id (every event that carried it) or a visitor id.
//! At most `limit` events (1 to [`MAX_JOURNEY_EVENTS`]) are returned, the earliest first;
//! `truncated` says there were more (`total_events` how many), so a client narrows the
//! range. A visit's figures are over all its events in the range, also those past the
//! limit. Engagement events are not events here, as everywhere.

use std::collections::BTreeMap;

use heartbeat_model::{Site, SiteId};
use serde_json::Value;

use crate::bounds::QueryBounds;
use crate::dialect::{SqlDialect, SqlType};
use crate::error::QueryError;
use crate::model::DateRange;
use crate::plausible::product::{timezone, Body};
use crate::sql::{RunError, Sql, SqlRunner, SqlValue};

/// Most events one journey answer holds.
pub const MAX_JOURNEY_EVENTS: usize = 1000;

const FIELDS: &[&str] = &["site_id", "user_id", "visitor_id", "date_range", "limit"];

/// Whose journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    /// A client-given user id.
    User(String),
    /// A visitor id (anonymous visitors' rotate daily).
    Visitor(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JourneyQuery {
    pub site_id: SiteId,
    pub range: DateRange,
    pub person: Person,
    pub limit: usize,
}

/// Parses a `POST /api/v2/journey` body (`site_id`, `user_id` or `visitor_id`,
/// `date_range`, `limit`), naming every bad field.
pub fn parse_journey(
    body: &Value,
    site: &Site,
    now_ms: i64,
    first_event_ms: i64,
    bounds: &QueryBounds,
) -> Result<JourneyQuery, Vec<QueryError>> {
    let mut fields = Body::new(body, FIELDS);
    let range = fields.date_range(timezone(site), now_ms, first_event_ms, bounds);
    let user = fields.text("user_id");
    let visitor = match fields.get("visitor_id") {
        None => None,
        Some(value) => {
            let id = value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()));
            if id.is_none() {
                fields.error("visitor_id", "must be a visitor id (a whole number)");
            }
            id
        }
    };
    let person = match (user, visitor) {
        (Some(user), None) => Some(Person::User(user)),
        (None, Some(visitor)) => Some(Person::Visitor(visitor)),
        (Some(_), Some(_)) => {
            fields.error("visitor_id", "give user_id or visitor_id, not both");
            None
        }
        (None, None) => {
            if fields.get("user_id").is_none() && fields.get("visitor_id").is_none() {
                fields.error("user_id", "user_id or visitor_id is required");
            }
            None
        }
    };
    let limit = fields.whole(
        "limit",
        1,
        MAX_JOURNEY_EVENTS as u32,
        MAX_JOURNEY_EVENTS as u32,
    );
    fields.finish(|| {
        Some(JourneyQuery {
            site_id: site.id.clone(),
            range: range?,
            person: person?,
            limit: limit? as usize,
        })
    })
}

/// One event of a journey.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyEvent {
    pub event_id: String,
    pub name: String,
    pub timestamp_ms: i64,
    pub pathname: String,
    pub props: BTreeMap<String, String>,
}

/// One visit of a journey, with its events (those within the limit).
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyVisit {
    pub visit_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Events of the visit in the range (also those past the limit).
    pub event_count: u64,
    pub pageviews: u64,
    pub source: String,
    pub channel: String,
    pub device: String,
    pub browser: String,
    pub os: String,
    pub country: String,
    /// The first and last page viewed (the first and last event's page in a visit
    /// without page views).
    pub entry_page: String,
    pub exit_page: String,
    pub events: Vec<JourneyEvent>,
}

impl JourneyVisit {
    pub fn duration_s(&self) -> i64 {
        (self.end_ms - self.start_ms) / 1000
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    pub visits: Vec<JourneyVisit>,
    /// Events of the person in the range.
    pub total_events: u64,
    /// More events than the limit: only the first `limit` are listed.
    pub truncated: bool,
}

/// `site_id = ? AND <the person> AND ts in range AND not an engagement event`.
fn person_where(b: &mut crate::compile::Builder, query: &JourneyQuery) {
    b.push("site_id = ");
    b.bind(SqlValue::Text(query.site_id.0.clone()));
    match &query.person {
        Person::User(user) => {
            b.push(" AND user_id = ");
            b.bind(SqlValue::Text(user.clone()));
        }
        Person::Visitor(visitor) => {
            b.push(" AND visitor_id = ");
            b.bind(SqlValue::UInt(*visitor));
        }
    }
    b.push(" AND ts >= ");
    b.bind(SqlValue::TimestampMs(query.range.start_ms));
    b.push(" AND ts < ");
    b.bind(SqlValue::TimestampMs(query.range.end_ms));
    b.push(" AND name <> 'engagement'");
}

/// The first `limit` events, with the count of all.
fn events_sql(query: &JourneyQuery, dialect: &dyn SqlDialect) -> Sql {
    let mut b = crate::compile::Builder::new(dialect);
    b.push(&format!(
        "SELECT event_id, name, {} AS ms, pathname, props_json, {}, ",
        dialect.epoch_millis("ts"),
        dialect.cast("session_id", SqlType::Text)
    ));
    match dialect.total_over_all("count(*)") {
        Some(total) => {
            b.push(&total);
        }
        None => {
            b.push("(SELECT count(*) FROM events WHERE ");
            person_where(&mut b, query);
            b.push(")");
        }
    }
    b.push(" AS total FROM events WHERE ");
    person_where(&mut b, query);
    b.push(" ORDER BY ts, event_id LIMIT ");
    b.bind(SqlValue::Int(query.limit as i64));
    b.finish()
}

/// The visits of the first `limit` events, in order.
fn visits_sql(query: &JourneyQuery, dialect: &dyn SqlDialect) -> Sql {
    let mut b = crate::compile::Builder::new(dialect);
    let any = |column: &str| dialect.arbitrary_value(column);
    let page = |first: bool| {
        let (by, by_pageview) = if first {
            (
                dialect.first_by("pathname", "ts"),
                dialect.first_by_if("pathname", "ts", "name = 'pageview'"),
            )
        } else {
            (
                dialect.last_by("pathname", "ts"),
                dialect.last_by_if("pathname", "ts", "name = 'pageview'"),
            )
        };
        format!("coalesce({by_pageview}, {by})")
    };
    b.push(&format!(
        "SELECT {}, {} AS start_ms, {} AS end_ms, count(*), \
         {}, {}, {}, {}, {}, {}, {}, {}, {} FROM events WHERE ",
        dialect.cast("session_id", SqlType::Text),
        dialect.epoch_millis("min(ts)"),
        dialect.epoch_millis("max(ts)"),
        dialect.count_if("name = 'pageview'"),
        any("referrer_source"),
        any("channel"),
        any("device"),
        any("browser"),
        any("os"),
        any("country"),
        page(true),
        page(false),
    ));
    person_where(&mut b, query);
    // A user's events may be on several shards (one per visitor id).
    b.push(&format!(
        " AND session_id {} (SELECT session_id FROM events WHERE ",
        dialect.in_all_shards()
    ));
    person_where(&mut b, query);
    b.push(" ORDER BY ts, event_id LIMIT ");
    b.bind(SqlValue::Int(query.limit as i64));
    b.push(") GROUP BY session_id ORDER BY start_ms, 1");
    b.finish()
}

/// Whether the person has any event on the site at all.
fn known_sql(query: &JourneyQuery) -> Sql {
    let (column, value) = match &query.person {
        Person::User(user) => ("user_id", SqlValue::Text(user.clone())),
        Person::Visitor(visitor) => ("visitor_id", SqlValue::UInt(*visitor)),
    };
    Sql {
        text: format!(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE site_id = ? AND {column} = ? LIMIT 1) AS one"
        ),
        params: vec![SqlValue::Text(query.site_id.0.clone()), value],
    }
}

fn text(value: &SqlValue) -> String {
    match value {
        SqlValue::Text(s) => s.clone(),
        _ => String::new(),
    }
}

/// Runs `query`: `None` when the person has no event on the site at all (an unknown user),
/// else their journey (empty when the range holds none of their events).
pub async fn journey(
    query: &JourneyQuery,
    runner: &dyn SqlRunner,
) -> Result<Option<Journey>, RunError> {
    let dialect = runner.dialect().sql();
    let rows = runner.run(events_sql(query, dialect)).await?;
    if rows.is_empty() {
        let known = runner.run(known_sql(query)).await?;
        if known.first().map_or(0.0, |row| row[0].as_f64()) == 0.0 {
            return Ok(None);
        }
        return Ok(Some(Journey {
            visits: Vec::new(),
            total_events: 0,
            truncated: false,
        }));
    }
    let total_events = rows[0][6].as_f64() as u64;
    let mut visits: Vec<JourneyVisit> = runner
        .run(visits_sql(query, dialect))
        .await?
        .into_iter()
        .map(|row| JourneyVisit {
            visit_id: text(&row[0]),
            start_ms: row[1].as_f64() as i64,
            end_ms: row[2].as_f64() as i64,
            event_count: row[3].as_f64() as u64,
            pageviews: row[4].as_f64() as u64,
            source: text(&row[5]),
            channel: text(&row[6]),
            device: text(&row[7]),
            browser: text(&row[8]),
            os: text(&row[9]),
            country: text(&row[10]),
            entry_page: text(&row[11]),
            exit_page: text(&row[12]),
            events: Vec::new(),
        })
        .collect();
    let truncated = total_events > rows.len() as u64;
    for row in rows {
        let visit_id = text(&row[5]);
        let event = JourneyEvent {
            event_id: text(&row[0]),
            name: text(&row[1]),
            timestamp_ms: row[2].as_f64() as i64,
            pathname: text(&row[3]),
            props: serde_json::from_str(&text(&row[4])).unwrap_or_default(),
        };
        if let Some(visit) = visits.iter_mut().find(|v| v.visit_id == visit_id) {
            visit.events.push(event);
        }
    }
    Ok(Some(Journey {
        visits,
        total_events,
        truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;
    use serde_json::json;

    fn site() -> Site {
        crate::test_site("UTC")
    }

    fn parse(body: Value) -> Result<JourneyQuery, Vec<QueryError>> {
        parse_journey(
            &body,
            &site(),
            1_718_452_800_000,
            0,
            &QueryBounds::default(),
        )
    }

    fn fields(body: Value) -> Vec<String> {
        parse(body)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_user_or_a_visitor_is_read() {
        let q =
            parse(json!({"site_id": "example.com", "user_id": "u1", "date_range": "7d"})).unwrap();
        assert_eq!((q.person, q.limit), (Person::User("u1".into()), 1000));
        let q = parse(json!({"visitor_id": 18446744073709551615u64, "limit": 5})).unwrap();
        assert_eq!((q.person, q.limit), (Person::Visitor(u64::MAX), 5));
        let q = parse(json!({"visitor_id": "42"})).unwrap();
        assert_eq!(q.person, Person::Visitor(42));
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(fields(json!({})), ["user_id"]);
        assert_eq!(fields(json!({"user_id": ""})), ["user_id"]);
        assert_eq!(fields(json!({"visitor_id": "abc"})), ["visitor_id"]);
        assert_eq!(
            fields(json!({"user_id": "a", "visitor_id": 1})),
            ["visitor_id"]
        );
        assert_eq!(
            fields(
                json!({"user_id": "a", "limit": 1001, "date_range": ["2024-02-02", "2024-02-01"]})
            ),
            ["date_range", "limit"]
        );
    }

    #[test]
    fn the_person_is_bound() {
        let q = parse(json!({"user_id": "x' OR 1=1 --"})).unwrap();
        for sql in [
            events_sql(&q, Dialect::DuckDb.sql()),
            visits_sql(&q, Dialect::DuckDb.sql()),
            known_sql(&q),
        ] {
            assert!(!sql.text.contains("1=1"), "{}", sql.text);
            assert_eq!(sql.text.matches('?').count(), sql.params.len());
        }
    }
}
