//! Fuzzing every payload decoder (one module per wire format, reached through the five
//! entry points of `decode`) with bounded property tests that run with the normal test suite
//! on stable Rust (cargo-fuzz needs nightly). Whatever the bytes, a decoder returns: never a
//! panic, an accepted payload holds 1 to 1,000 events, and a refusal names each bad field.

use heartbeat_ingest::{decode, DecodeError, Decoded};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

type Decoder = fn(&[u8]) -> Result<Decoded, DecodeError>;

const DECODERS: [(&str, Decoder); 5] = [
    ("api_event", decode::api_event),
    ("tracker_events", decode::tracker_events),
    ("realtime_events", decode::realtime_events),
    ("v1_events", decode::v1_events),
    ("v1_batch", decode::v1_batch),
];

/// Field names of every format, so generated objects reach deep into the decoders.
const FIELDS: &[&str] = &[
    "n",
    "name",
    "u",
    "url",
    "d",
    "domain",
    "r",
    "referrer",
    "p",
    "props",
    "revenue",
    "amount",
    "currency",
    "i",
    "interactive",
    "h",
    "hashMode",
    "site_id",
    "event_type",
    "path",
    "user_id",
    "timestamp",
    "visitor_id",
    "session_id",
    "page_url",
    "metadata",
    "userId",
    "eventName",
    "properties",
    "eventId",
    "id",
    "type",
    "data",
    "source",
    "correlationId",
    "events",
    "userAgent",
    "ipAddress",
    "sessionId",
    "pageUrl",
    "screen_width",
    "w",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        Just(String::new()),
        Just("pageview".to_owned()),
        Just("PAGE_VIEW".to_owned()),
        Just("2026-01-15T10:30:00Z".to_owned()),
        Just("2026-13-45T99:99:99+25:00".to_owned()),
        Just("-9999-01-01T00:00:00Z".to_owned()),
        Just("https://example.com/a/b?utm_source=x&gclid=1#frag".to_owned()),
        Just("example.com".to_owned()),
        Just("19.99".to_owned()),
        Just("1e308".to_owned()),
        Just("\u{0}\u{202e}\u{fffd}".to_owned()),
        Just("{\"k\": \"v\"}".to_owned()),
        Just("x".repeat(5000)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            object(inner),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => "[a-zA-Z_$.]{0,10}",
    ]
}

fn object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), inner), 0..10)
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<String, Value>>()))
}

/// A payload: an object of known fields, an array of them, or any JSON.
fn payload() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => object(json_value()),
        1 => prop::collection::vec(object(json_value()), 0..5).prop_map(Value::Array),
        1 => json_value(),
        1 => object(json_value()).prop_map(|events| json!({"events": [events]})),
    ]
}

fn check(name: &str, decoder: Decoder, body: &[u8]) {
    match decoder(body) {
        Ok(decoded) => assert!(
            (1..=1000).contains(&decoded.events.len()),
            "{name}: {} events",
            decoded.events.len()
        ),
        Err(DecodeError::Invalid(details)) => {
            assert!(!details.is_empty(), "{name}: a refusal names no field");
            for detail in details {
                assert!(
                    !detail.field.is_empty() && !detail.message.is_empty(),
                    "{name}"
                );
            }
        }
        Err(DecodeError::Json(message)) => assert!(!message.is_empty(), "{name}"),
        Err(DecodeError::Empty | DecodeError::TooMany { .. }) => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decoders_take_any_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        for (name, decoder) in DECODERS {
            check(name, decoder, &body);
        }
    }

    #[test]
    fn decoders_take_any_json(value in payload()) {
        let body = serde_json::to_vec(&value).unwrap();
        for (name, decoder) in DECODERS {
            check(name, decoder, &body);
        }
    }

    #[test]
    fn decoders_take_truncated_json(value in payload(), cut in any::<prop::sample::Index>()) {
        let body = serde_json::to_vec(&value).unwrap();
        let body = &body[..cut.index(body.len() + 1)];
        for (name, decoder) in DECODERS {
            check(name, decoder, body);
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let props = format!(
        "{{\"n\":\"x\",\"u\":\"https://e.com/\",\"d\":\"e.com\",\"p\":{}1{}}}",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    for (name, decoder) in DECODERS {
        check(name, decoder, deep.as_bytes());
        check(name, decoder, props.as_bytes());
    }
}
