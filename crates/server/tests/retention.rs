//! Retention: a site's events older than its `retention_days` (and visits that started
//! before) are deleted by the background job; younger events, and sites without retention,
//! are untouched. Retention is set at creation or changed with `PUT /api/sites/{id}`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const DAY_MS: i64 = 86_400_000;

/// Events of distinct users (one visit each) `ages_days` days old, plus a second event in the
/// oldest visit.
async fn load(server: &TestServer, key: &str, ages_days: &[i64]) {
    let now = chrono::Utc::now().timestamp_millis();
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut batch: Vec<Value> = ages_days
        .iter()
        .enumerate()
        .map(|(i, days)| json!({"userId": format!("u{i}"), "eventName": "pageview", "timestamp": iso(now - days * DAY_MS), "properties": {"pageUrl": format!("/d{days}"), "plan": "pro"}}))
        .collect();
    batch.push(json!({"userId": "u0", "eventName": "signup", "timestamp": iso(now - ages_days[0] * DAY_MS + 60_000), "properties": {"pageUrl": "/signup"}}));
    let response = server
        .http
        .post(server.url("/api/v1/events"))
        .header("x-api-key", key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

async fn totals(server: &TestServer, key: &str, site: &str) -> (u64, u64, u64) {
    let body = server
        .query(
            key,
            json!({"site_id": site, "metrics": ["events", "visits", "visitors"], "date_range": "all"}),
        )
        .await;
    let m = &body["results"][0]["metrics"];
    (
        m[0].as_u64().unwrap(),
        m[1].as_u64().unwrap(),
        m[2].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn retention_deletes_exactly_the_expired_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), |config| {
        config.retention.interval_s = 1;
    })
    .await;
    // Created with a retention of 30 days.
    let response = server
        .http
        .post(server.url("/api/site/create"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "short.example", "domain": "short.example", "retention_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["retention_days"], 30);
    let short = created["api_key"].as_str().unwrap().to_owned();
    let forever = server.create_site("forever.example", "UTC").await;
    let later = server.create_site("later.example", "UTC").await;

    // 40 and 31 days old expire; 29 and 1 stay. The 40-day visit has two events.
    let ages = [40, 31, 29, 1];
    load(&server, &short, &ages).await;
    load(&server, &forever, &ages).await;
    load(&server, &later, &ages).await;

    // Records are stored in order: once the later sites' events are in, short.example's are.
    server.wait_for_events(&later, "later.example", 5).await;
    // The job deletes from short.example only: poll until it has, then check the exact rest.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (events, ..) = totals(&server, &short, "short.example").await;
        if events == 2 {
            break;
        }
        assert!(events > 2, "deleted too much: {events} events left");
        assert!(
            Instant::now() < deadline,
            "retention never ran: {events} events"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(totals(&server, &short, "short.example").await, (2, 2, 2));
    let pages = server
        .query(
            &short,
            json!({"site_id": "short.example", "metrics": ["visitors"], "date_range": "all", "dimensions": ["event:page"], "order_by": [["visitors", "desc"], ["event:page", "asc"]]}),
        )
        .await;
    let pages: Vec<&str> = pages["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dimensions"][0].as_str().unwrap())
        .collect();
    assert_eq!(pages, ["/d1", "/d29"]);
    assert_eq!(
        totals(&server, &forever, "forever.example").await,
        (5, 4, 4)
    );

    // Retention set later through the update API: 10 days.
    let response = server
        .http
        .put(server.url("/api/sites/later.example"))
        .bearer_auth(ADMIN)
        .json(&json!({"retention_days": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while totals(&server, &later, "later.example").await.0 != 1 {
        assert!(
            Instant::now() < deadline,
            "retention never ran on later.example"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(totals(&server, &later, "later.example").await, (1, 1, 1));
    assert_eq!(totals(&server, &forever, "forever.example").await.0, 5);

    // Invalid retentions are refused, naming the field; only admins may change a site.
    for bad in [
        json!({"retention_days": 0}),
        json!({"retention_days": "week"}),
    ] {
        let response = server
            .http
            .put(server.url("/api/sites/later.example"))
            .bearer_auth(ADMIN)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["details"][0]["field"], "retention_days", "{body}");
    }
    let response = server
        .http
        .put(server.url("/api/sites/later.example"))
        .bearer_auth(&later)
        .json(&json!({"retention_days": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    server.stop().await;

    // Custom properties of expired events are gone as well.
    let plans = sql(
        dir.path(),
        "SELECT site_id, count(*) FROM event_props WHERE key = 'plan' GROUP BY site_id ORDER BY site_id",
    )
    .await;
    let plans: Vec<(String, String)> = plans.iter().map(|r| (text(&r[0]), text(&r[1]))).collect();
    let expected = [
        ("forever.example", "4"),
        ("later.example", "1"),
        ("short.example", "2"),
    ];
    assert_eq!(
        plans,
        expected.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
    );
}
