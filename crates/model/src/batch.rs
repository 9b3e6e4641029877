//! The queue records from the server to the processor.
//!
//! Events: one version byte (`3`) followed by the postcard encoding of `Vec<Event>`. One
//! record holds all the events of one accepted request, so a batch is durable or not as a
//! whole.
//!
//! A site's deletion: the byte `0xD0` followed by the postcard encoding of its `SiteId`. It
//! goes through the queue so that the processor deletes the site's data in order: after
//! every event accepted before it, before any accepted after (a site created again under
//! the same id keeps only its new events).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Event, Revenue, SiteId, VisitAttributes};

/// Version 2 added `Event::previous_visitor_id`, version 3 `Event::scroll_depth` and
/// `Event::engagement_time_ms`; records of versions 1 and 2 still decode.
const VERSION: u8 = 3;
const VERSION_2: u8 = 2;
const VERSION_1: u8 = 1;
const SITE_DELETION: u8 = 0xD0;

/// What one queue record asks of the processor.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueRecord {
    /// Store these events (one accepted request).
    Events(Vec<Event>),
    /// Delete everything stored of this site.
    DeleteSite(SiteId),
}

#[derive(Debug, thiserror::Error)]
pub enum BatchCodecError {
    #[error("unknown event record version {0}")]
    Version(u8),
    #[error("empty event record")]
    Empty,
    #[error("event record does not decode")]
    Decode(#[source] postcard::Error),
    #[error("event record does not encode")]
    Encode(#[source] postcard::Error),
}

/// Encodes the events of one request into one queue record.
pub fn encode_batch(events: &[Event]) -> Result<Vec<u8>, BatchCodecError> {
    let mut out = vec![VERSION];
    postcard::to_io(events, &mut out).map_err(BatchCodecError::Encode)?;
    Ok(out)
}

/// Encodes a site's deletion into one queue record.
pub fn encode_site_deletion(site: &SiteId) -> Result<Vec<u8>, BatchCodecError> {
    let mut out = vec![SITE_DELETION];
    postcard::to_io(site, &mut out).map_err(BatchCodecError::Encode)?;
    Ok(out)
}

/// Decodes a queue record written by [`encode_batch`] or [`encode_site_deletion`].
pub fn decode_record(record: &[u8]) -> Result<QueueRecord, BatchCodecError> {
    match record.split_first() {
        Some((&SITE_DELETION, body)) => postcard::from_bytes(body)
            .map(QueueRecord::DeleteSite)
            .map_err(BatchCodecError::Decode),
        _ => decode_batch(record).map(QueueRecord::Events),
    }
}

/// Decodes a queue record written by [`encode_batch`].
pub fn decode_batch(record: &[u8]) -> Result<Vec<Event>, BatchCodecError> {
    match record.split_first() {
        None => Err(BatchCodecError::Empty),
        Some((&VERSION, body)) => postcard::from_bytes(body).map_err(BatchCodecError::Decode),
        Some((&VERSION_2, body)) => postcard::from_bytes::<Vec<EventV2>>(body)
            .map(|events| events.into_iter().map(Event::from).collect())
            .map_err(BatchCodecError::Decode),
        Some((&VERSION_1, body)) => postcard::from_bytes::<Vec<EventV1>>(body)
            .map(|events| events.into_iter().map(Event::from).collect())
            .map_err(BatchCodecError::Decode),
        Some((&other, _)) => Err(BatchCodecError::Version(other)),
    }
}

/// The event layout of version 1 records (before `previous_visitor_id`), field for field.
#[derive(Deserialize, Serialize)]
struct EventV1 {
    event_id: String,
    event_id_from_client: bool,
    site_id: SiteId,
    name: String,
    timestamp_ms: i64,
    visitor_id: u64,
    session_id: u64,
    user_id: Option<String>,
    client_session_id: Option<String>,
    hostname: String,
    pathname: String,
    visit: VisitAttributes,
    props: BTreeMap<String, String>,
    revenue: Option<Revenue>,
    interactive: bool,
}

impl From<EventV1> for Event {
    fn from(v1: EventV1) -> Event {
        Event::from(EventV2 {
            event_id: v1.event_id,
            event_id_from_client: v1.event_id_from_client,
            site_id: v1.site_id,
            name: v1.name,
            timestamp_ms: v1.timestamp_ms,
            visitor_id: v1.visitor_id,
            previous_visitor_id: None,
            session_id: v1.session_id,
            user_id: v1.user_id,
            client_session_id: v1.client_session_id,
            hostname: v1.hostname,
            pathname: v1.pathname,
            visit: v1.visit,
            props: v1.props,
            revenue: v1.revenue,
            interactive: v1.interactive,
        })
    }
}

/// The event layout of version 2 records (before the engagement fields), field for field.
#[derive(Deserialize, Serialize)]
struct EventV2 {
    event_id: String,
    event_id_from_client: bool,
    site_id: SiteId,
    name: String,
    timestamp_ms: i64,
    visitor_id: u64,
    previous_visitor_id: Option<u64>,
    session_id: u64,
    user_id: Option<String>,
    client_session_id: Option<String>,
    hostname: String,
    pathname: String,
    visit: VisitAttributes,
    props: BTreeMap<String, String>,
    revenue: Option<Revenue>,
    interactive: bool,
}

impl From<EventV2> for Event {
    fn from(v2: EventV2) -> Event {
        Event {
            event_id: v2.event_id,
            event_id_from_client: v2.event_id_from_client,
            site_id: v2.site_id,
            name: v2.name,
            timestamp_ms: v2.timestamp_ms,
            visitor_id: v2.visitor_id,
            previous_visitor_id: v2.previous_visitor_id,
            session_id: v2.session_id,
            user_id: v2.user_id,
            client_session_id: v2.client_session_id,
            hostname: v2.hostname,
            pathname: v2.pathname,
            visit: v2.visit,
            props: v2.props,
            revenue: v2.revenue,
            interactive: v2.interactive,
            scroll_depth: None,
            engagement_time_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> Event {
        Event {
            event_id_from_client: true,
            visitor_id: 42,
            user_id: Some("u".into()),
            pathname: "/".into(),
            props: [("plan".to_string(), "pro".to_string())].into(),
            revenue: Some(Revenue {
                amount_micros: 19_990_000,
                currency: "EUR".into(),
            }),
            ..Event::new("e1", SiteId::from("example.com"), name, 1_700_000_000_123)
        }
    }

    #[test]
    fn round_trips() {
        let engagement = Event {
            scroll_depth: Some(40),
            engagement_time_ms: 12_000,
            ..event("engagement")
        };
        let events = vec![event("pageview"), event("Signup"), engagement];
        let record = encode_batch(&events).unwrap();
        assert_eq!(decode_batch(&record).unwrap(), events);
    }

    #[test]
    fn reads_version_1_records() {
        let old = event("pageview");
        let v1 = EventV1 {
            event_id: old.event_id.clone(),
            event_id_from_client: old.event_id_from_client,
            site_id: old.site_id.clone(),
            name: old.name.clone(),
            timestamp_ms: old.timestamp_ms,
            visitor_id: old.visitor_id,
            session_id: old.session_id,
            user_id: old.user_id.clone(),
            client_session_id: old.client_session_id.clone(),
            hostname: old.hostname.clone(),
            pathname: old.pathname.clone(),
            visit: old.visit.clone(),
            props: old.props.clone(),
            revenue: old.revenue.clone(),
            interactive: old.interactive,
        };
        let mut record = vec![VERSION_1];
        postcard::to_io(&vec![v1], &mut record).unwrap();
        assert_eq!(decode_batch(&record).unwrap(), vec![old]);
    }

    #[test]
    fn reads_version_2_records() {
        let old = Event {
            previous_visitor_id: Some(41),
            ..event("pageview")
        };
        let v2 = EventV2 {
            event_id: old.event_id.clone(),
            event_id_from_client: old.event_id_from_client,
            site_id: old.site_id.clone(),
            name: old.name.clone(),
            timestamp_ms: old.timestamp_ms,
            visitor_id: old.visitor_id,
            previous_visitor_id: old.previous_visitor_id,
            session_id: old.session_id,
            user_id: old.user_id.clone(),
            client_session_id: old.client_session_id.clone(),
            hostname: old.hostname.clone(),
            pathname: old.pathname.clone(),
            visit: old.visit.clone(),
            props: old.props.clone(),
            revenue: old.revenue.clone(),
            interactive: old.interactive,
        };
        let mut record = vec![VERSION_2];
        postcard::to_io(&vec![v2], &mut record).unwrap();
        assert_eq!(decode_batch(&record).unwrap(), vec![old]);
    }

    #[test]
    fn rejects_unknown_version_and_garbage() {
        assert!(matches!(
            decode_batch(&[9, 1, 2]),
            Err(BatchCodecError::Version(9))
        ));
        assert!(matches!(decode_batch(&[]), Err(BatchCodecError::Empty)));
        assert!(matches!(
            decode_batch(&[VERSION, 0xff, 0xff, 0xff]),
            Err(BatchCodecError::Decode(_))
        ));
    }
}
