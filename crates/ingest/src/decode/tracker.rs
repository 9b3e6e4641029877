//! Seed 000's tracker event, as the original Heartbeat's tracker (`client/heartbeat.js`) and
//! its `api.http` send it to `POST /v1/intake` (and `POST /events`): `{"event_type",
//! "visitor_id", "session_id", "domain", "page_url", "referrer_url"?, "browserLanguage"?,
//! "screen_size"?, "metadata"?, "timestamp"?}`; `url`/`path` and `referrer` are read too.
//! Public: the site is found by `domain`. `metadata` becomes the event's properties (nested
//! values as JSON text), the browser's language the property `language`.

use serde_json::Value;

use super::fields::Fields;
use crate::raw::{canonical_name, FieldNames, SiteRef};
use crate::{FieldError, RawEvent};

pub fn decode(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    let mut f = Fields::of(value, prefix)?;
    let name = f.string(&["event_type"], true).unwrap_or_default();
    let visitor_id = f.string(&["visitor_id"], false);
    let session_id = f.string(&["session_id"], false);
    let timestamp_ms = f.timestamp_ms(&["timestamp"]);
    let domain = f.string(&["domain"], true);
    let url_name = f.sent_as(&["page_url", "url", "path"]);
    let url = f.string(&["page_url", "url", "path"], false);
    let referrer = f.string(&["referrer_url", "referrer"], false);
    let language = f.string(&["browserLanguage", "browser_language"], false);
    let screen = f.string(&["screen_size"], false);
    let mut props = f.props(&["metadata", "props", "properties"], true);
    if let Some(language) = language {
        props.entry("language".to_owned()).or_insert(language);
    }
    f.check_props("metadata", &props);
    let event = RawEvent {
        site: domain.map(SiteRef::Domain),
        name: canonical_name(&name),
        url: Some(url.unwrap_or_else(|| "/".to_owned())),
        referrer,
        props,
        user_id: visitor_id,
        session_id,
        screen,
        timestamp_ms,
        interactive: true,
        names: FieldNames {
            site: "domain",
            name: "event_type",
            url: url_name,
            user_id: "visitor_id",
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
            &json!({"event_type": "pageview", "visitor_id": "123", "session_id": "456", "timestamp": "2024-04-17T00:00:00.000Z", "domain": "example.com"}),
            "",
        )
        .unwrap();
        assert_eq!(event.site, Some(SiteRef::Domain("example.com".into())));
        assert_eq!(event.user_id.as_deref(), Some("123"));
        assert_eq!(event.session_id.as_deref(), Some("456"));
        assert_eq!(event.url.as_deref(), Some("/"));
    }

    #[test]
    fn decodes_what_the_original_tracker_and_api_http_send() {
        let event = decode(
            &json!({"event_type": "pageview", "domain": "example.com",
                "page_url": "https://example.com/home", "referrer_url": "https://google.com",
                "visitor_id": "v", "session_id": "s", "screen_size": "1920x1080",
                "browserLanguage": "pt-BR",
                "metadata": {"theme": "dark", "form_fields": ["name", "email"], "depth": 75}}),
            "",
        )
        .unwrap();
        assert_eq!(event.url.as_deref(), Some("https://example.com/home"));
        assert_eq!(event.referrer.as_deref(), Some("https://google.com"));
        assert_eq!(event.screen.as_deref(), Some("1920x1080"));
        assert_eq!(event.timestamp_ms, None);
        assert_eq!(event.props["theme"], "dark");
        assert_eq!(event.props["form_fields"], r#"["name","email"]"#);
        assert_eq!(event.props["depth"], "75");
        assert_eq!(event.props["language"], "pt-BR");
    }
}
