//! Seed 004's event: `{"event_type": "PAGE_VIEW" | "BUTTON_CLICK" | "SESSION_START" |
//! "PURCHASE" | ..., "user_id", "session_id", "page_url", "metadata"}`. A purchase's
//! `metadata.amount` and `metadata.currency` become its revenue.

use serde_json::Value;

use super::fields::Fields;
use crate::raw::{canonical_name, FieldNames};
use crate::{FieldError, RawEvent};

pub fn decode(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    let mut f = Fields::of(value, prefix)?;
    let (site, site_name) = f.keyed_site(&["site_id", "siteId"]);
    let name = f.string(&["event_type"], true).unwrap_or_default();
    let user_id = f.string(&["user_id"], false);
    let session_id = f.string(&["session_id"], false);
    let url = f.string(&["page_url"], false);
    let timestamp_ms = f.timestamp_ms(&["timestamp"]);
    let event_id_name = f.sent_as(&["event_id", "id"]);
    let event_id = f.string(&["event_id", "id"], false);
    let mut props = f.props(&["metadata"], true);
    let revenue = if name == "PURCHASE" && props.contains_key("amount") {
        let money = serde_json::json!({
            "amount": props.remove("amount"),
            "currency": props.remove("currency").unwrap_or_else(|| "USD".to_owned()),
        });
        let object = serde_json::json!({ "metadata": money });
        let mut money_fields = Fields::of(&object, prefix)?;
        let revenue = money_fields.revenue(&["metadata"]);
        f.errors.extend(money_fields.errors);
        revenue
    } else {
        None
    };
    f.check_props("metadata", &props);
    let event = RawEvent {
        site,
        event_id,
        name: canonical_name(&name),
        url: Some(url.unwrap_or_else(|| "/".to_owned())),
        props,
        revenue,
        user_id,
        session_id,
        timestamp_ms,
        interactive: true,
        names: FieldNames {
            site: site_name,
            name: "event_type",
            url: "page_url",
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
            &json!({"event_type": "PAGE_VIEW", "user_id": "user_101", "session_id": "sess_1", "page_url": "/pricing", "metadata": {"device": "mobile", "browser": "Chrome"}}),
            "",
        )
        .unwrap();
        assert_eq!(event.name, "pageview");
        assert_eq!(event.url.as_deref(), Some("/pricing"));
        assert_eq!(event.props["device"], "mobile");
        assert_eq!(event.session_id.as_deref(), Some("sess_1"));
    }

    #[test]
    fn purchase_amount_is_revenue() {
        let event = decode(
            &json!({"event_type": "PURCHASE", "user_id": "u", "metadata": {"amount": 12.5, "currency": "eur", "sku": "A1"}}),
            "",
        )
        .unwrap();
        let revenue = event.revenue.unwrap();
        assert_eq!(
            (revenue.amount_micros, revenue.currency.as_str()),
            (12_500_000, "EUR")
        );
        assert_eq!(event.props.keys().collect::<Vec<_>>(), ["sku"]);
    }
}
