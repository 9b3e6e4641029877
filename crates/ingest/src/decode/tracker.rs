//! Seed 000's tracker event: `{"event_type", "visitor_id", "session_id", "timestamp",
//! "domain", "url"?, "path"?, "referrer"?}`. Public: the site is found by `domain`.

use serde_json::Value;

use super::fields::Fields;
use crate::raw::{canonical_name, SiteRef};
use crate::{FieldError, RawEvent};

pub fn decode(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    let mut f = Fields::of(value, prefix)?;
    let name = f.string(&["event_type"], true).unwrap_or_default();
    let visitor_id = f.string(&["visitor_id"], false);
    let session_id = f.string(&["session_id"], false);
    let timestamp_ms = f.timestamp_ms(&["timestamp"]);
    let domain = f.string(&["domain"], true);
    let url = f.string(&["url", "path"], false);
    let referrer = f.string(&["referrer"], false);
    let props = f.props(&["props", "properties"], false);
    f.check_props("props", &props);
    let event = RawEvent {
        site: domain.map(SiteRef::Domain),
        name: canonical_name(&name),
        url: Some(url.unwrap_or_else(|| "/".to_owned())),
        referrer,
        props,
        user_id: visitor_id,
        session_id,
        timestamp_ms,
        interactive: true,
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
            &json!({"event_type": "pageview", "visitor_id": "123", "session_id": "456", "timestamp": "2024-04-17T00:00:00.000Z", "domain": "example.com"}),
            "",
        )
        .unwrap();
        assert_eq!(event.site, Some(SiteRef::Domain("example.com".into())));
        assert_eq!(event.user_id.as_deref(), Some("123"));
        assert_eq!(event.session_id.as_deref(), Some("456"));
        assert_eq!(event.url.as_deref(), Some("/"));
    }
}
