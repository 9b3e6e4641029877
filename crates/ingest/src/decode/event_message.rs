//! Seed 001's `EventMessage`: `{"id", "type", "data", "timestamp", "source",
//! "correlationId"?, "metadata"?}`. `data`'s fields become custom properties (nested values
//! as JSON text), as do `source`, `correlationId` (`correlation_id`) and `metadata.*`.
//! `data.userId` / `metadata.userId` identify the user when present.

use serde_json::Value;

use super::fields::Fields;
use crate::raw::{canonical_name, FieldNames};
use crate::{FieldError, RawEvent};

pub fn decode(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    let mut f = Fields::of(value, prefix)?;
    let (site, site_name) = f.keyed_site(&["site_id", "siteId"]);
    let id = f.string(&["id"], true);
    let name = f.string(&["type"], true).unwrap_or_default();
    let timestamp_ms = f.timestamp_ms(&["timestamp"]);
    if !f.has("timestamp") {
        f.string(&["timestamp"], true);
    }
    let source = f.string(&["source"], true);
    let correlation_id = f.string(&["correlationId"], false);
    let mut props = f.props(&["data"], true);
    let metadata = f.props(&["metadata"], true);
    let (user_id_name, user_id) = match (props.get("userId"), metadata.get("userId")) {
        (Some(user), _) => ("data.userId", Some(user.clone())),
        (None, Some(user)) => ("metadata.userId", Some(user.clone())),
        (None, None) => ("data.userId", None),
    };
    let (url_name, url) = [
        ("url", "data.url"),
        ("pageUrl", "data.pageUrl"),
        ("path", "data.path"),
    ]
    .iter()
    .find_map(|(key, name)| props.remove(*key).map(|url| (*name, Some(url))))
    .unwrap_or(("data.url", None));
    let referrer = props.remove("referrer");
    props.extend(
        metadata
            .into_iter()
            .map(|(k, v)| (format!("metadata.{k}"), v)),
    );
    if let Some(source) = source {
        props.insert("source".to_owned(), source);
    }
    if let Some(correlation_id) = correlation_id {
        props.insert("correlation_id".to_owned(), correlation_id);
    }
    f.check_props("data", &props);
    let event = RawEvent {
        site,
        event_id: id,
        name: canonical_name(&name),
        timestamp_ms,
        url: Some(url.unwrap_or_else(|| "/".to_owned())),
        referrer,
        props,
        user_id,
        interactive: true,
        names: FieldNames {
            site: site_name,
            name: "type",
            url: url_name,
            user_id: user_id_name,
            event_id: "id",
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
    fn decodes_an_event_message() {
        let event = decode(
            &json!({"id": "evt-1", "type": "email.opened", "data": {"campaign": "c1", "userId": "u9", "tags": ["a"]}, "timestamp": "2024-05-01T12:00:00Z", "source": "mailer", "correlationId": "corr-7", "metadata": {"region": "eu"}}),
            "",
        )
        .unwrap();
        assert_eq!(event.event_id.as_deref(), Some("evt-1"));
        assert_eq!(event.name, "email.opened");
        assert_eq!(event.user_id.as_deref(), Some("u9"));
        assert_eq!(event.props["source"], "mailer");
        assert_eq!(event.props["correlation_id"], "corr-7");
        assert_eq!(event.props["metadata.region"], "eu");
        assert_eq!(event.props["tags"], "[\"a\"]");
    }

    #[test]
    fn requires_id_type_timestamp_and_source() {
        let errors = decode(&json!({"data": {}}), "").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["id", "type", "timestamp", "source"]);
    }
}
