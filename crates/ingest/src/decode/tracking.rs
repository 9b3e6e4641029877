//! Seed 003's event: `{"userId", "eventName", "properties"?, "timestamp"?, "eventId"?,
//! "sessionId"?, "userAgent"?, "ipAddress"?}`. Well-known properties (`pageUrl`/`url`/
//! `page_url`/`path`, `referrer`) fill the canonical fields; the rest stay custom properties.
//!
//! Seed 003 deduplicates retries. Without an `eventId`, an event that carries its own
//! timestamp gets a deterministic id from its content, so the same event sent twice is
//! stored once; without a timestamp two identical sends are two events.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::fields::Fields;
use crate::raw::{canonical_name, FieldNames};
use crate::{FieldError, RawEvent};

/// The properties that may hold the page's URL, and their names in errors.
const URL_PROPS: [(&str, &str); 5] = [
    ("pageUrl", "properties.pageUrl"),
    ("url", "properties.url"),
    ("page_url", "properties.page_url"),
    ("path", "properties.path"),
    ("pathname", "properties.pathname"),
];

pub fn decode(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    let mut f = Fields::of(value, prefix)?;
    // `projectId` is seed 003's own name for what Heartbeat calls a site.
    let (site, site_name) = f.keyed_site(&["site_id", "siteId", "projectId"]);
    let user_id = f.string(&["userId"], true);
    let name = f.string(&["eventName"], true).unwrap_or_default();
    let timestamp_ms = f.timestamp_ms(&["timestamp"]);
    let event_id_name = f.sent_as(&["eventId", "id"]);
    let event_id = f.string(&["eventId", "id"], false);
    let session_id = f.string(&["sessionId"], false);
    let user_agent = f.string(&["userAgent"], false);
    let client_ip = f.ip(&["ipAddress"]);
    let mut props = f.props(&["properties"], true);
    let (url_name, url) = URL_PROPS
        .iter()
        .find_map(|(key, name)| props.remove(*key).map(|url| (*name, Some(url))))
        .unwrap_or(("properties.pageUrl", None));
    let referrer = props.remove("referrer");
    f.check_props("properties", &props);
    let event_id = event_id.or_else(|| {
        timestamp_ms.map(|ts| {
            let mut hash = Sha256::new();
            for part in [user_id.as_deref().unwrap_or(""), &name, &ts.to_string()] {
                hash.update(part.as_bytes());
                hash.update([0]);
            }
            hash.update(serde_json::to_string(&props).unwrap_or_default());
            hash.update(url.as_deref().unwrap_or(""));
            hex::encode(&hash.finalize()[..16])
        })
    });
    let event = RawEvent {
        site,
        event_id,
        name: canonical_name(&name),
        timestamp_ms,
        url: Some(url.unwrap_or_else(|| "/".to_owned())),
        referrer,
        props,
        user_id,
        session_id,
        user_agent: user_agent.map(|ua| ua.chars().take(1000).collect()),
        client_ip,
        interactive: true,
        names: FieldNames {
            site: site_name,
            name: "eventName",
            url: url_name,
            user_id: "userId",
            session_id: "sessionId",
            event_id: event_id_name,
            ..FieldNames::default()
        },
        ..RawEvent::default()
    };
    f.finish(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_seed_example() {
        let event = decode(
            &json!({"userId": "user123", "eventName": "page_view", "properties": {"pageUrl": "/home", "referrer": "google.com", "plan": "pro"}}),
            "",
        )
        .unwrap();
        assert_eq!(event.name, "pageview");
        assert_eq!(event.url.as_deref(), Some("/home"));
        assert_eq!(event.referrer.as_deref(), Some("google.com"));
        assert_eq!(event.props.len(), 1);
        assert_eq!(event.event_id, None);
    }

    #[test]
    fn same_timestamped_event_gets_the_same_id() {
        let body = json!({"userId": "u", "eventName": "button_click", "timestamp": "2024-01-01T10:01:00Z"});
        let first = decode(&body, "").unwrap().event_id.unwrap();
        assert_eq!(decode(&body, "").unwrap().event_id.unwrap(), first);
        let other = json!({"userId": "u", "eventName": "button_click", "timestamp": "2024-01-01T10:02:00Z"});
        assert_ne!(decode(&other, "").unwrap().event_id.unwrap(), first);
    }

    #[test]
    fn requires_user_and_name() {
        let errors = decode(&json!({"properties": 3}), "[2].").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["[2].userId", "[2].eventName", "[2].properties"]);
    }
}
