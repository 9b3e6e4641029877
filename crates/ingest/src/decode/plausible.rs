//! Plausible's Events API: `{"n"|"name", "u"|"url", "d"|"domain", "r"|"referrer",
//! "p"|"props", "revenue", "i"|"interactive", "h"|"hashMode"}`, sent as JSON or
//! `text/plain` by trackers. The site is found by its domain.
//!
//! An `engagement` event (Plausible's tracker sends one when a page is left or hidden) also
//! carries `"sd"`, the scroll depth in percent, and `"e"`, the engaged time in milliseconds,
//! read by Plausible's rules (`Plausible.Ingestion.Request`): integers or their decimal text;
//! a scroll depth over 100 is 100; a negative one, an engaged time below 0 or of 30 days or
//! more, or anything else is missing; an engagement event missing both is refused.

use serde_json::Value;

use super::fields::Fields;
use crate::raw::{canonical_name, FieldNames, SiteRef};
use crate::{FieldError, RawEvent};
use heartbeat_model::ENGAGEMENT;

pub fn decode(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    let mut f = Fields::of(value, prefix)?;
    let name = f.string(&["name", "n"], true).unwrap_or_default();
    let url = f.string(&["url", "u"], true);
    let domain = f.string(&["domain", "d"], true);
    let referrer = f.string(&["referrer", "r"], false);
    let props = f.props(&["props", "p"], false);
    f.check_props(f.sent_as(&["props", "p"]), &props);
    let revenue = f.revenue(&["revenue", "$"]);
    let interactive = f.flag(&["interactive", "i"]).unwrap_or(true);
    let hash_mode = f.flag(&["hashMode", "h"]).unwrap_or(false);
    let name = canonical_name(&name);
    let (scroll_depth, engagement_time_ms) = if name == ENGAGEMENT {
        let scroll_depth = f.raw(&["sd"]).and_then(|(_, v)| scroll_depth(v));
        let engagement_time_ms = f.raw(&["e"]).and_then(|(_, v)| engagement_time_ms(v));
        if scroll_depth.is_none() && engagement_time_ms.is_none() {
            let field = if f.has("n") { "n" } else { "name" };
            f.reject(
                field,
                "engagement event requires a valid integer value for at least one of 'sd' or 'e' fields",
            );
        }
        (scroll_depth, engagement_time_ms.unwrap_or(0))
    } else {
        (None, 0)
    };
    let event = RawEvent {
        // Plausible lets `d` list several domains separated by commas; the first one owns it.
        site: domain.map(|d| SiteRef::Domain(d.split(',').next().unwrap_or("").trim().to_owned())),
        name,
        url,
        referrer,
        props,
        revenue,
        interactive,
        hash_mode,
        scroll_depth,
        engagement_time_ms,
        names: FieldNames {
            site: f.sent_as(&["domain", "d"]),
            name: f.sent_as(&["name", "n"]),
            url: f.sent_as(&["url", "u"]),
            ..FieldNames::default()
        },
        ..RawEvent::default()
    };
    f.finish(event)
}

/// Engaged time from 30 days on is an old tracker's bug, not a measurement (Plausible's
/// `@too_large_engagement_time`).
const TOO_LARGE_ENGAGEMENT_TIME_MS: i64 = 30 * 24 * 3_600_000;

/// An integer, or its decimal text, as Elixir's `Integer.parse` reads it whole.
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `sd`: 0 to 100 as sent, more is 100, anything else is missing.
fn scroll_depth(value: &Value) -> Option<u8> {
    match integer(value)? {
        depth @ 0..=100 => Some(depth as u8),
        depth if depth > 100 => Some(100),
        _ => None,
    }
}

/// `e`: milliseconds from 0 up to (not including) 30 days, anything else is missing.
fn engagement_time_ms(value: &Value) -> Option<u32> {
    integer(value)
        .filter(|ms| (0..TOO_LARGE_ENGAGEMENT_TIME_MS).contains(ms))
        .and_then(|ms| u32::try_from(ms).ok())
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
    fn engagement_events_carry_scroll_depth_and_engaged_time() {
        let engagement = |extra: Value| {
            let mut body =
                json!({"n": "engagement", "u": "https://example.com/a", "d": "example.com"});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            decode(&body, "").map(|e| (e.scroll_depth, e.engagement_time_ms))
        };
        assert_eq!(
            engagement(json!({"sd": 40, "e": 1234})),
            Ok((Some(40), 1234))
        );
        // Decimal text counts; a depth over 100 is 100.
        assert_eq!(
            engagement(json!({"sd": "75", "e": "10"})),
            Ok((Some(75), 10))
        );
        assert_eq!(engagement(json!({"sd": 250, "e": 0})), Ok((Some(100), 0)));
        // Out of range or not an integer: missing, and one missing field is enough.
        assert_eq!(engagement(json!({"sd": -1, "e": 500})), Ok((None, 500)));
        assert_eq!(engagement(json!({"sd": 12.5, "e": 500})), Ok((None, 500)));
        assert_eq!(engagement(json!({"sd": 0, "e": -3})), Ok((Some(0), 0)));
        assert_eq!(
            engagement(json!({"sd": 5, "e": 30 * 24 * 3_600_000i64})),
            Ok((Some(5), 0))
        );
        assert_eq!(
            engagement(json!({"e": 30 * 24 * 3_600_000i64 - 1})),
            Ok((None, 2_591_999_999))
        );
        // Neither: refused, as Plausible refuses it.
        for bad in [
            json!({}),
            json!({"sd": "deep", "e": null}),
            json!({"sd": -5, "e": -5}),
        ] {
            let errors = engagement(bad.clone()).unwrap_err();
            assert_eq!(errors[0].field, "n", "{bad}");
            assert!(errors[0].message.contains("'sd' or 'e'"), "{bad}");
        }
    }

    #[test]
    fn other_events_ignore_engagement_fields() {
        let event = decode(
            &json!({"n": "pageview", "u": "https://example.com/", "d": "example.com", "sd": 50, "e": 900}),
            "",
        )
        .unwrap();
        assert_eq!((event.scroll_depth, event.engagement_time_ms), (None, 0));
    }

    #[test]
    fn names_every_bad_field() {
        let errors = decode(&json!({"n": [], "u": {}, "p": {"x": {"y": 1}}}), "").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["n", "u", "domain", "p.x"]);
    }
}
