//! Seed 002's event: `{"site_id", "event_type", "path", "user_id"?, "timestamp"?}`, sent
//! with an `x-api-key`.

use heartbeat_model::SiteId;
use serde_json::Value;

use super::fields::Fields;
use crate::raw::{canonical_name, FieldNames, SiteRef};
use crate::{FieldError, RawEvent};

pub fn decode(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    let mut f = Fields::of(value, prefix)?;
    let site_id = f.string(&["site_id"], true);
    let name = f.string(&["event_type"], true).unwrap_or_default();
    let path = f.string(&["path"], false);
    let user_id = f.string(&["user_id"], false);
    let timestamp_ms = f.timestamp_ms(&["timestamp"]);
    let event = RawEvent {
        site: site_id.map(|id| SiteRef::Id(SiteId(id))),
        name: canonical_name(&name),
        url: Some(path.unwrap_or_else(|| "/".to_owned())),
        user_id,
        timestamp_ms,
        interactive: true,
        names: FieldNames {
            name: "event_type",
            url: "path",
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
            &json!({"site_id": "my-website", "event_type": "pageview", "path": "/home", "user_id": "user-123", "timestamp": "2024-01-15T10:30:00Z"}),
            "",
        )
        .unwrap();
        assert_eq!(event.site, Some(SiteRef::Id(SiteId("my-website".into()))));
        assert_eq!(event.url.as_deref(), Some("/home"));
        assert_eq!(event.user_id.as_deref(), Some("user-123"));
        assert_eq!(event.timestamp_ms, Some(1_705_314_600_000));
    }

    #[test]
    fn requires_site_and_type() {
        let errors = decode(&json!({"path": "/"}), "").unwrap_err();
        assert_eq!(errors[0].field, "site_id");
        assert_eq!(errors[0].message, "site_id is required");
        assert_eq!(errors[1].field, "event_type");
    }
}
