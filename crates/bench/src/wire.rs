//! The two HTTP request bodies the benchmark sends, built from [`Event`]s.
//!
//! - Single events, `POST /api/event`: Plausible's Events API object, the tracker's format:
//!   `{"name":"pageview","url":"https://d/p","domain":"d","referrer":"...","props":{...},
//!   "revenue":{"amount":"19.99","currency":"EUR"}}` with `referrer`, `props` and `revenue`
//!   present only when the event has them. The client IP and user agent travel in headers.
//! - Batches, `POST /api/v1/events`: a JSON array of
//!   `{"eventId":"<uuid>","userId":"v1","eventName":"pageview","timestamp":"<RFC 3339>",
//!   "properties":{"url":"...","referrer":"...", <custom props>}}`.
//!
//! Batch items are encoded once without their `eventId` ([`EncodedBatchItem`]) so that a load
//! run can resend them under fresh ids at the cost of a copy; [`event_id`] makes those ids.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use crate::event::{format_timestamp, Event, Revenue};

#[derive(Serialize)]
struct PlausibleEvent<'a> {
    name: &'a str,
    url: &'a str,
    domain: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    props: &'a BTreeMap<Cow<'static, str>, Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revenue: Option<&'a Revenue>,
}

/// The body of a single-event request for the site `domain`.
pub fn plausible_event_body(event: &Event, domain: &str) -> Vec<u8> {
    let body = PlausibleEvent {
        name: &event.name,
        url: &event.url,
        domain,
        referrer: event.referrer.as_deref(),
        props: &event.props,
        revenue: event.revenue.as_ref(),
    };
    serde_json::to_vec(&body).expect("an event always serializes")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchItemWithoutId<'a> {
    user_id: &'a str,
    event_name: &'a str,
    timestamp: String,
    /// Each event's own browser and address (seed 003's `userAgent`, `ipAddress`), so the
    /// devices, browsers, systems and countries of a fill are as varied as its visitors.
    user_agent: &'a str,
    ip_address: &'a str,
    properties: BatchProperties<'a>,
}

#[derive(Serialize)]
struct BatchProperties<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
    #[serde(flatten)]
    props: &'a BTreeMap<Cow<'static, str>, Cow<'static, str>>,
}

/// One batch item serialized without its id: the JSON object minus its opening brace.
#[derive(Debug, Clone)]
pub struct EncodedBatchItem {
    /// `"userId":...}`: everything after `{"eventId":"<id>",`.
    rest: Vec<u8>,
}

impl EncodedBatchItem {
    pub fn new(event: &Event) -> Self {
        let item = BatchItemWithoutId {
            user_id: &event.visitor,
            event_name: &event.name,
            timestamp: format_timestamp(&event.timestamp),
            user_agent: &event.user_agent,
            ip_address: &event.ip,
            properties: BatchProperties {
                url: &event.url,
                referrer: event.referrer.as_deref(),
                props: &event.props,
            },
        };
        let json = serde_json::to_vec(&item).expect("an event always serializes");
        Self {
            rest: json[1..].to_vec(),
        }
    }

    fn encoded_len(&self) -> usize {
        self.rest.len() + r#"{"eventId":"00000000-0000-0000-0000-000000000000","#.len()
    }
}

/// The body of a batch request: each item under the id given with it.
pub fn batch_body<'a>(
    items: impl ExactSizeIterator<Item = (&'a EncodedBatchItem, Uuid)>,
) -> Vec<u8> {
    let mut body = Vec::new();
    body.push(b'[');
    let mut id_text = Uuid::encode_buffer();
    for (index, (item, id)) in items.enumerate() {
        if index == 0 {
            body.reserve(item.encoded_len() * 2);
        } else {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"eventId":""#);
        body.extend_from_slice(id.hyphenated().encode_lower(&mut id_text).as_bytes());
        body.extend_from_slice(br#"","#);
        body.extend_from_slice(&item.rest);
    }
    body.push(b']');
    body
}

/// A version 4 shaped UUID that is unique per `(namespace, sequence)`: a run picks a
/// namespace (random for load runs, from the seed for fills) and numbers its events.
pub fn event_id(namespace: u64, sequence: u64) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&namespace.to_be_bytes());
    bytes[8..].copy_from_slice(&sequence.to_be_bytes());
    // Sets the version nibble (in the namespace half) and the two variant bits, the top bits
    // of the sequence, which stay zero below 2^62 events.
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn event() -> Event {
        Event {
            timestamp: Utc.timestamp_millis_opt(1_714_566_896_789).unwrap(),
            visitor: "v7".into(),
            ip: "10.1.2.3".into(),
            user_agent: "UA".into(),
            url: "https://example.com/pricing?utm_source=x".into(),
            referrer: Some("https://www.google.com/".into()),
            name: "Purchase".into(),
            props: BTreeMap::from([("plan".into(), "pro".into())]),
            revenue: Some(Revenue {
                amount: "19.99".into(),
                currency: "EUR".into(),
            }),
        }
    }

    #[test]
    fn single_event_body_is_plausible_events_api() {
        let body = plausible_event_body(&event(), "example.com");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"name":"Purchase","url":"https://example.com/pricing?utm_source=x","domain":"example.com","referrer":"https://www.google.com/","props":{"plan":"pro"},"revenue":{"amount":"19.99","currency":"EUR"}}"#
        );
    }

    #[test]
    fn single_event_body_omits_absent_fields() {
        let mut plain = event();
        plain.referrer = None;
        plain.props.clear();
        plain.revenue = None;
        plain.name = "pageview".into();
        let body = plausible_event_body(&plain, "example.com");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"name":"pageview","url":"https://example.com/pricing?utm_source=x","domain":"example.com"}"#
        );
    }

    #[test]
    fn batch_body_is_an_array_of_items_with_their_ids() {
        let item = EncodedBatchItem::new(&event());
        let ids = [event_id(1, 0), event_id(1, 1)];
        let body = batch_body([(&item, ids[0]), (&item, ids[1])].into_iter());
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let expected_item = |id: Uuid| {
            serde_json::json!({
                "eventId": id.to_string(),
                "userId": "v7",
                "eventName": "Purchase",
                "timestamp": "2024-05-01T12:34:56.789Z",
                "userAgent": "UA",
                "ipAddress": "10.1.2.3",
                "properties": {
                    "url": "https://example.com/pricing?utm_source=x",
                    "referrer": "https://www.google.com/",
                    "plan": "pro"
                }
            })
        };
        assert_eq!(
            parsed,
            serde_json::json!([expected_item(ids[0]), expected_item(ids[1])])
        );
    }

    #[test]
    fn event_ids_differ_by_sequence_and_namespace_and_are_version_4() {
        let a = event_id(7, 1);
        assert_ne!(a, event_id(7, 2));
        assert_ne!(a, event_id(8, 1));
        assert_eq!(a, event_id(7, 1));
        assert_eq!(a.get_version_num(), 4);
    }
}
