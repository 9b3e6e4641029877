//! Plausible's Events API: `{"n"|"name", "u"|"url", "d"|"domain", "r"|"referrer",
//! "p"|"props", "revenue", "i"|"interactive", "h"|"hashMode"}`, sent as JSON or
//! `text/plain` by trackers. The site is found by its domain.

use serde_json::Value;

use super::fields::Fields;
use crate::raw::{canonical_name, SiteRef};
use crate::{FieldError, RawEvent};

pub fn decode(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    let mut f = Fields::of(value, prefix)?;
    let name = f.string(&["name", "n"], true).unwrap_or_default();
    let url = f.string(&["url", "u"], true);
    let domain = f.string(&["domain", "d"], true);
    let referrer = f.string(&["referrer", "r"], false);
    let props = f.props(&["props", "p"], false);
    f.check_props("props", &props);
    let revenue = f.revenue(&["revenue", "$"]);
    let interactive = f.flag(&["interactive", "i"]).unwrap_or(true);
    let hash_mode = f.flag(&["hashMode", "h"]).unwrap_or(false);
    let event = RawEvent {
        // Plausible lets `d` list several domains separated by commas; the first one owns it.
        site: domain.map(|d| SiteRef::Domain(d.split(',').next().unwrap_or("").trim().to_owned())),
        name: canonical_name(&name),
        url,
        referrer,
        props,
        revenue,
        interactive,
        hash_mode,
        ..RawEvent::default()
    };
    f.finish(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_short_and_long_names() {
        let short = decode(
            &json!({"n": "pageview", "u": "https://example.com/a", "d": "example.com", "r": "https://t.co/", "p": "{\"plan\":\"pro\"}", "i": false, "h": true}),
            "",
        )
        .unwrap();
        assert_eq!(short.name, "pageview");
        assert_eq!(short.site, Some(SiteRef::Domain("example.com".into())));
        assert_eq!(short.props["plan"], "pro");
        assert!(!short.interactive);
        assert!(short.hash_mode);
        let long = decode(
            &json!({"name": "Signup", "url": "https://example.com/", "domain": "example.com", "props": {"n": 1, "ok": true}, "revenue": {"amount": "9.5", "currency": "usd"}}),
            "",
        )
        .unwrap();
        assert_eq!(long.props["n"], "1");
        assert_eq!(long.props["ok"], "true");
        assert_eq!(long.revenue.unwrap().amount_micros, 9_500_000);
        assert!(long.interactive);
    }

    #[test]
    fn flags_may_be_zero_or_one_as_plausibles_tracker_sends_them() {
        let event = decode(
            &json!({"n": "pageview", "u": "https://example.com/#/a", "d": "example.com", "h": 1, "i": 0}),
            "",
        )
        .unwrap();
        assert!(event.hash_mode);
        assert!(!event.interactive);
        let errors = decode(
            &json!({"n": "pageview", "u": "https://example.com/", "d": "example.com", "h": 2}),
            "",
        )
        .unwrap_err();
        assert_eq!(errors[0].field, "h");
    }

    #[test]
    fn names_every_bad_field() {
        let errors = decode(&json!({"n": [], "u": {}, "p": {"x": {"y": 1}}}), "").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["n", "u", "domain", "p.x"]);
    }
}
