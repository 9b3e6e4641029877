//! Fuzzing the query parser (Plausible's Stats API v2 JSON) with bounded property tests that
//! run with the normal test suite on stable Rust: whatever the body, `parse_query` answers a
//! query or an error naming the bad part, and never panics.

use heartbeat_model::{Site, SiteId};
use heartbeat_query::parse_query;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn site(timezone: &str) -> Site {
    Site {
        id: SiteId::from("example.com"),
        name: "Example".into(),
        domain: "example.com".into(),
        timezone: timezone.into(),
        created_at_ms: 0,
        rules: Default::default(),
        retention_days: None,
    }
}

const WORDS: &[&str] = &[
    "visitors",
    "visits",
    "pageviews",
    "events",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "time_on_page",
    "conversion_rate",
    "percentage",
    "group_conversion_rate",
    "event:page",
    "event:name",
    "event:hostname",
    "event:goal",
    "event:props:plan",
    "event:props:",
    "event:props:\u{0}'; DROP TABLE events; --",
    "visit:source",
    "visit:referrer",
    "visit:channel",
    "visit:utm_source",
    "visit:utm_campaign",
    "visit:entry_page",
    "visit:exit_page",
    "visit:country",
    "visit:region",
    "visit:city",
    "visit:browser",
    "visit:os",
    "visit:device",
    "time",
    "time:hour",
    "time:day",
    "time:week",
    "time:month",
    "is",
    "is_not",
    "contains",
    "contains_not",
    "matches",
    "matches_not",
    "and",
    "or",
    "not",
    "asc",
    "desc",
    "day",
    "24h",
    "7d",
    "28d",
    "30d",
    "month",
    "6mo",
    "12mo",
    "year",
    "all",
    "2026-01-01",
    "2026-02-30",
    "0000-00-00",
    "2026-01-01T00:00:00Z",
    "9999-12-31",
    "-1d",
    "(a|b",
    ".*",
    "",
    "total_rows",
    "time_labels",
    "comparisons",
    "previous_period",
    "year_over_year",
    "custom",
    "limit",
    "offset",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(|w| json!(w)),
        1 => ".{0,12}".prop_map(Value::String),
        1 => any::<i64>().prop_map(|n| json!(n)),
        1 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            1 => prop::collection::vec((prop::sample::select(WORDS).prop_map(str::to_owned), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A filter in v2's shape, with arbitrary parts: `[op, dimension, [values]]` or a boolean
/// combination of filters.
fn filter() -> impl Strategy<Value = Value> {
    let simple = (leaf(), leaf(), prop::collection::vec(leaf(), 0..4))
        .prop_map(|(op, dimension, values)| json!([op, dimension, values]));
    simple.prop_recursive(3, 16, 3, |inner| {
        (
            prop::sample::select(&["and", "or", "not"][..]),
            prop::collection::vec(inner, 0..3),
        )
            .prop_map(|(op, items)| {
                if op == "not" {
                    json!([op, items.into_iter().next().unwrap_or(Value::Null)])
                } else {
                    json!([op, items])
                }
            })
    })
}

fn body() -> impl Strategy<Value = Value> {
    let fields = (
        prop::option::of(prop_oneof![
            prop::collection::vec(leaf(), 0..4).prop_map(Value::Array),
            value()
        ]),
        prop::option::of(prop_oneof![
            leaf(),
            prop::collection::vec(leaf(), 0..3).prop_map(Value::Array)
        ]),
        prop::option::of(prop::collection::vec(leaf(), 0..4).prop_map(Value::Array)),
        prop::option::of(prop_oneof![
            prop::collection::vec(filter(), 0..3).prop_map(Value::Array),
            value()
        ]),
        prop::option::of(value()),
        prop::option::of(value()),
        prop::option::of(value()),
    );
    prop_oneof![
        6 => fields.prop_map(|(metrics, range, dimensions, filters, order, pagination, include)| {
            let mut body = Map::new();
            body.insert("site_id".into(), json!("example.com"));
            for (name, part) in [("metrics", metrics), ("date_range", range), ("dimensions", dimensions),
                ("filters", filters), ("order_by", order), ("pagination", pagination), ("include", include)] {
                if let Some(part) = part {
                    body.insert(name.into(), part);
                }
            }
            Value::Object(body)
        }),
        1 => value(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_takes_any_body(body in body(), tz in prop::sample::select(&["UTC", "Europe/Berlin", "Pacific/Chatham", "America/St_Johns", "Not/A_Zone"][..]),
        now in 0i64..4_102_444_800_000, first in prop::option::of(any::<i64>())) {
        let first = first.unwrap_or(now - 86_400_000);
        match parse_query(&body, &site(tz), &[], now, first, &Default::default()) {
            Ok(_) => {}
            Err(error) => prop_assert!(!error.field.is_empty() && !error.message.is_empty(), "{error}"),
        }
    }
}

/// A runner with no rows: product analytics' statements are compiled and their (empty)
/// answers assembled without an engine.
struct NoRows;

#[async_trait::async_trait]
impl heartbeat_query::SqlRunner for NoRows {
    fn dialect(&self) -> heartbeat_query::Dialect {
        heartbeat_query::Dialect::DuckDb
    }
    fn has_rollups(&self) -> bool {
        false
    }
    fn data_version(&self, _: &SiteId) -> u64 {
        0
    }
    async fn run(
        &self,
        _: heartbeat_query::Sql,
    ) -> Result<Vec<heartbeat_query::Row>, heartbeat_query::RunError> {
        Ok(Vec::new())
    }
}

const PRODUCT_FIELDS: &[&str] = &[
    "site_id",
    "date_range",
    "period",
    "periods",
    "cohort_event",
    "return_event",
    "filters",
    "page",
    "event",
    "direction",
    "depth",
    "limit",
    "user_id",
    "visitor_id",
];

const PRODUCT_WORDS: &[&str] = &[
    "day",
    "week",
    "month",
    "year",
    "forward",
    "backward",
    "/",
    "signup",
    "7d",
    "all",
    "2024-03-31",
    "0001-01-01",
    "9999-12-31",
    "18446744073709551615",
];

fn product_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(PRODUCT_WORDS).prop_map(|w| json!(w)),
        2 => leaf(),
        2 => (0u64..100).prop_map(|n| json!(n)),
        1 => (prop::sample::select(PRODUCT_WORDS), prop::sample::select(PRODUCT_WORDS))
            .prop_map(|(a, b)| json!([a, b])),
        1 => prop::collection::vec(filter(), 0..3).prop_map(Value::Array),
    ]
}

fn product_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => prop::collection::vec((prop::sample::select(PRODUCT_FIELDS), product_leaf()), 0..7)
            .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        1 => value(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn product_parsers_take_any_body(body in product_body(), tz in prop::sample::select(&["UTC", "Europe/Berlin", "Pacific/Chatham", "Pacific/Kiritimati"][..]),
        now in 0i64..4_102_444_800_000) {
        let site = site(tz);
        let named = |errors: Vec<heartbeat_query::QueryError>| {
            !errors.is_empty() && errors.iter().all(|e| !e.field.is_empty() && !e.message.is_empty())
        };
        match heartbeat_query::parse_retention(&body, &site, now, now, &Default::default()) {
            Ok(query) => {
                let answer = futures::executor::block_on(heartbeat_query::retention(&query, &NoRows)).unwrap();
                prop_assert!(answer.cohorts.len() as u64 <= heartbeat_query::MAX_COHORTS);
            }
            Err(errors) => prop_assert!(named(errors)),
        }
        match heartbeat_query::parse_paths(&body, &site, now, now, &Default::default()) {
            Ok(query) => {
                futures::executor::block_on(heartbeat_query::paths(&query, &NoRows)).unwrap();
            }
            Err(errors) => prop_assert!(named(errors)),
        }
        match heartbeat_query::parse_journey(&body, &site, now, now, &Default::default()) {
            Ok(query) => {
                futures::executor::block_on(heartbeat_query::journey(&query, &NoRows)).unwrap();
            }
            Err(errors) => prop_assert!(named(errors)),
        }
    }
}
