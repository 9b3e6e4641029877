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

/// A breakdown by a property over a range of hundreds of thousands of visitors: its
/// `(none)` row's visitors are counted over a sample of them (one in two at this size) and
/// scaled up, within 1 % of the exact count; its page views and events, and every value's
/// row, stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_none_row_counts_its_visitors_over_a_sample() {
    const WITHOUT: u64 = 300_001;
    const PRO: u64 = 20_000;
    const TEAM: u64 = 10_000;
    const BOTH: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    // Visitors 0..WITHOUT view `/` without properties; the next PRO and TEAM sign up with a
    // plan; the first BOTH of those with the plan `pro` also view `/` without one.
    let mut events = Vec::new();
    let at = |n: u64| {
        format!(
            "2026-03-10T{:02}:{:02}:{:02}Z",
            n / 3600 % 24,
            n / 60 % 60,
            n % 60
        )
    };
    for user in 0..WITHOUT {
        events.push(
            json!({"userId": format!("u{user}"), "eventName": "pageview",
            "timestamp": at(user), "properties": {"pageUrl": "/"}}),
        );
    }
    for n in 0..PRO + TEAM {
        let user = WITHOUT + n;
        let plan = if n < PRO { "pro" } else { "team" };
        events.push(json!({"userId": format!("u{user}"), "eventName": "Signup",
            "timestamp": at(user), "properties": {"pageUrl": "/", "plan": plan}}));
        if n < BOTH {
            events.push(
                json!({"userId": format!("u{user}"), "eventName": "pageview",
                "timestamp": at(user + 1), "properties": {"pageUrl": "/"}}),
            );
        }
    }
    for batch in events.chunks(1_000) {
        server.send_batch(&key, batch).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        let body = server
            .query(
                &key,
                json!({"site_id": "example.com", "metrics": ["events"], "date_range": "all"}),
            )
            .await;
        if body["results"][0]["metrics"][0].as_u64() == Some(events.len() as u64) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all stored: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let body = server
        .query(
            &key,
            json!({"site_id": "example.com", "metrics": ["visitors", "pageviews", "events"],
                "date_range": ["2026-03-10", "2026-03-10"], "dimensions": ["event:props:plan"],
                "order_by": [["event:props:plan", "asc"]]}),
        )
        .await;
    let answer = rows(&body);
    let none_visitors = WITHOUT + BOTH;
    assert_eq!(answer.len(), 3, "{body}");
    let (label, none) = &answer[0];
    assert_eq!(label, "(none)");
    // Two times the sampled visitors: even, where the exact count is odd.
    assert_eq!(
        none[0] % 2,
        0,
        "not from a sample of one visitor in two: {body}"
    );
    let error = (none[0] as f64 - none_visitors as f64).abs() / none_visitors as f64;
    assert!(
        error < 0.01,
        "{} visitors for {none_visitors}: {body}",
        none[0]
    );
    assert_eq!(none[1..], [none_visitors, none_visitors]);
    assert_eq!(answer[1], ("pro".to_owned(), vec![PRO, 0, PRO]));
    assert_eq!(answer[2], ("team".to_owned(), vec![TEAM, 0, TEAM]));
    server.stop().await;
}
