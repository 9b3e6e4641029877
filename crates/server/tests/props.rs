//! Custom properties as a dimension and a filter (`event:props:<key>`), on hand-made data.

mod common;

use common::*;
use serde_json::{json, Value};

/// (user, time, event, props)
const EVENTS: [(&str, &str, &str, &str); 6] = [
    (
        "A",
        "2026-03-10T10:00:00Z",
        "Signup",
        r#"{"plan": "pro", "source": "ad"}"#,
    ),
    ("A", "2026-03-10T10:01:00Z", "pageview", r#"{}"#),
    ("B", "2026-03-10T11:00:00Z", "Signup", r#"{"plan": "free"}"#),
    ("C", "2026-03-10T12:00:00Z", "Signup", r#"{"plan": "pro"}"#),
    ("C", "2026-03-10T12:05:00Z", "Upgrade", r#"{"plan": "pro"}"#),
    ("D", "2026-03-10T13:00:00Z", "Signup", r#"{}"#),
];

fn rows(body: &Value) -> Vec<(String, Vec<u64>)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["dimensions"][0].as_str().unwrap_or("").to_owned(),
                r["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_u64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

/// Sends `batch` as seed 003's events of example.com and waits until all are stored.
async fn send(server: &TestServer, key: &str, batch: &[Value]) {
    server.send_batch(key, batch).await;
    server
        .wait_for_events(key, "example.com", batch.len() as u64)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn props_break_down_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    let batch: Vec<Value> = EVENTS
        .iter()
        .map(|(user, at, name, props)| {
            let mut properties: Value = serde_json::from_str(props).unwrap();
            properties["pageUrl"] = "/".into();
            json!({"userId": user, "eventName": name, "timestamp": at, "properties": properties})
        })
        .collect();
    send(&server, &key, &batch).await;
    let range = json!(["2026-03-10", "2026-03-10"]);

    let by_plan = server
        .query(
            &key,
            json!({"site_id": "example.com", "metrics": ["visitors", "events"], "date_range": range,
            "dimensions": ["event:props:plan"], "order_by": [["event:props:plan", "asc"]]}),
        )
        .await;
    assert_eq!(
        rows(&by_plan),
        [
            ("(none)".to_owned(), vec![2, 2]),
            ("free".to_owned(), vec![1, 1]),
            ("pro".to_owned(), vec![2, 3]),
        ]
    );

    let signups_by_plan = server
        .query(
            &key,
            json!({"site_id": "example.com", "metrics": ["events"], "date_range": range,
            "dimensions": ["event:props:plan"], "filters": [["is", "event:name", ["Signup"]]],
            "order_by": [["event:props:plan", "asc"]]}),
        )
        .await;
    assert_eq!(
        rows(&signups_by_plan),
        [
            ("(none)".to_owned(), vec![1]),
            ("free".to_owned(), vec![1]),
            ("pro".to_owned(), vec![2]),
        ]
    );

    // Filters: events with plan pro; visitors whose visit had one; not pro (incl. none).
    let pro = server
        .query(&key, json!({"site_id": "example.com", "metrics": ["visitors", "events", "visits"], "date_range": range,
            "filters": [["is", "event:props:plan", ["pro"]]]}))
        .await;
    assert_eq!(rows(&pro)[0].1, vec![2, 3, 2]);
    let not_pro = server
        .query(
            &key,
            json!({"site_id": "example.com", "metrics": ["events"], "date_range": range,
            "filters": [["is_not", "event:props:plan", ["pro"]]]}),
        )
        .await;
    assert_eq!(rows(&not_pro)[0].1, vec![3]);
    let contains = server
        .query(
            &key,
            json!({"site_id": "example.com", "metrics": ["events"], "date_range": range,
            "filters": [["contains", "event:props:source", ["a"]]]}),
        )
        .await;
    assert_eq!(rows(&contains)[0].1, vec![1]);
    // Bounce rate by a property is not defined (a visit has many events): a 400 naming it.
    let response = server
        .http
        .post(server.url("/api/v2/query"))
        .bearer_auth(&key)
        .json(
            &json!({"site_id": "example.com", "metrics": ["bounce_rate"], "date_range": range,
            "dimensions": ["event:props:plan"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["details"][0]["field"], "metrics[0]", "{body}");
    // A hostile key is a bound value, not SQL.
    let hostile = server
        .query(
            &key,
            json!({"site_id": "example.com", "metrics": ["events"], "date_range": range,
            "dimensions": ["event:props:plan') OR 1=1 --"]}),
        )
        .await;
    assert_eq!(rows(&hostile), [("(none)".to_owned(), vec![6])]);
    server.stop().await;
}

/// An unfiltered breakdown by a property has a statement of its own (the values from the
/// properties alone, `(none)` as one group); a filter that keeps every event takes the
/// general one. Both give the same rows, a value sent as `(none)` counted with the events
/// without the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfiltered_breakdown_by_a_property_equals_the_filtered_statement() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    // (user, minute, event, plan)
    let events = [
        ("A", 0, "pageview", None),
        ("A", 1, "Signup", Some("pro")),
        ("B", 2, "Signup", Some("(none)")),
        ("C", 3, "pageview", None),
        ("C", 4, "Upgrade", Some("team")),
        ("D", 5, "Signup", Some("pro")),
    ];
    let batch: Vec<Value> = events
        .iter()
        .map(|(user, minute, name, plan)| {
            let mut properties = json!({"pageUrl": "/"});
            if let Some(plan) = plan {
                properties["plan"] = (*plan).into();
            }
            if *user == "C" {
                properties["tier"] = "gold".into();
            }
            json!({"userId": user, "eventName": name,
                "timestamp": format!("2026-03-10T10:{minute:02}:00Z"), "properties": properties})
        })
        .collect();
    send(&server, &key, &batch).await;
    let query = |filters: Value| {
        json!({"site_id": "example.com", "metrics": ["visitors", "visits", "pageviews", "events"],
            "date_range": ["2026-03-10", "2026-03-10"], "dimensions": ["event:props:plan"],
            "filters": filters, "order_by": [["event:props:plan", "asc"]]})
    };
    let unfiltered = rows(&server.query(&key, query(json!([]))).await);
    let filtered = rows(
        &server
            .query(
                &key,
                query(json!([["is_not", "event:name", ["never sent"]]])),
            )
            .await,
    );
    assert_eq!(
        unfiltered,
        [
            ("(none)".to_owned(), vec![3, 3, 2, 3]),
            ("pro".to_owned(), vec![2, 2, 0, 2]),
            ("team".to_owned(), vec![1, 1, 0, 1]),
        ]
    );
    assert_eq!(filtered, unfiltered);
    server.stop().await;
}
