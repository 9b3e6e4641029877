//! The seeds' read endpoints answer from the same engine as `/api/v2/query`, in their shapes.

mod common;

use common::*;
use serde_json::{json, Value};

async fn get(server: &TestServer, key: &str, path: &str) -> (u16, Value) {
    let response = server
        .http
        .get(server.url(path))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_reads_share_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    let other = server.create_site("other.example", "UTC").await;
    let now = chrono::Utc::now();
    let at = |minutes: i64| (now - chrono::Duration::minutes(minutes)).to_rfc3339();
    // Seed 001 events: three types from two sources.
    let batch: Vec<Value> = (0..5)
        .map(|i| {
            json!({"id": format!("ev-{i}"), "type": if i < 3 { "order.created" } else { "user.signup" },
                   "data": {"userId": format!("u{}", i % 2), "amount": i}, "timestamp": at(10 - i),
                   "source": if i % 2 == 0 { "web" } else { "mobile" }})
        })
        .collect();
    let response = server
        .http
        .post(server.url("/api/v1/events/batch"))
        .header("x-api-key", &key)
        .json(&json!({"events": batch}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    // Seed 004 page views.
    for (user, page) in [("a", "/"), ("b", "/pricing"), ("a", "/pricing")] {
        let response = server
            .http
            .post(server.url("/api/events"))
            .header("x-api-key", &key)
            .json(&json!({"event_type": "PAGE_VIEW", "user_id": user, "page_url": page}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    server.wait_for_events(&key, "example.com", 8).await;

    // Seed 001: a filtered list, paged by cursor without repeats.
    let (status, page1) = get(&server, &key, "/api/v1/events?type=order.created&limit=2").await;
    assert_eq!(status, 200, "{page1}");
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&page1), ["ev-2", "ev-1"]);
    assert_eq!(page1["data"][0]["type"], "order.created");
    assert_eq!(page1["data"][0]["source"], "web");
    assert_eq!(page1["pagination"]["hasMore"], true);
    let cursor = page1["pagination"]["nextCursor"].as_str().unwrap();
    let (_, page2) = get(
        &server,
        &key,
        &format!("/api/v1/events?type=order.created&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(ids(&page2), ["ev-0"]);
    assert_eq!(page2["pagination"]["hasMore"], false);
    let (_, web) = get(&server, &key, "/api/v1/events?source=web").await;
    assert_eq!(ids(&web), ["ev-4", "ev-2", "ev-0"]);
    let (status, bad) = get(&server, &key, "/api/v1/events?cursor=nonsense").await;
    assert_eq!(
        (status, bad["details"][0]["field"].as_str()),
        (400, Some("cursor"))
    );
    let (status, one) = get(&server, &key, "/api/v1/events/ev-3").await;
    assert_eq!(
        (status, one["data"]["type"].as_str()),
        (200, Some("user.signup"))
    );
    let (status, _) = get(&server, &key, "/api/v1/events/missing").await;
    assert_eq!(status, 404);
    let (_, counts) = get(&server, &key, "/api/v1/events/counts").await;
    assert_eq!(
        counts["data"],
        json!({"order.created": 3, "user.signup": 2, "pageview": 3})
    );

    // Seed 003: summary and the time series of one event.
    let (_, summary) = get(&server, &key, "/api/v1/events/summary").await;
    assert_eq!(summary["data"]["totalEvents"], 8, "{summary}");
    assert_eq!(
        summary["data"]["topEvents"][0],
        json!({"eventName": "order.created", "count": 3, "uniqueUsers": 2})
    );
    // The two sign-ups were 7 and 6 minutes ago, by two users: one day's point, or one on
    // each side of midnight when the test runs just after it.
    let day = |minutes: i64| {
        (now - chrono::Duration::minutes(minutes))
            .format("%Y-%m-%d")
            .to_string()
    };
    let (first, last) = (day(7), day(6));
    let (status, metrics) = get(
        &server,
        &key,
        &format!(
            "/api/v1/metrics?event=user.signup&interval=daily&startDate={first}&endDate={last}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{metrics}");
    let expected = if first == last {
        json!([{"timestamp": first, "count": 2, "uniqueUsers": 2}])
    } else {
        json!([{"timestamp": first, "count": 1, "uniqueUsers": 1},
               {"timestamp": last, "count": 1, "uniqueUsers": 1}])
    };
    assert_eq!(metrics["data"]["metrics"], expected);
    let (status, _) = get(&server, &key, "/api/v1/metrics?interval=fortnightly").await;
    assert_eq!(status, 400);

    // Seed 004 and seed 000.
    let (_, summary) = get(&server, &key, "/analytics/summary").await;
    assert_eq!(
        (
            summary["total_events"].as_u64(),
            summary["page_views"].as_u64()
        ),
        (Some(8), Some(3)),
        "{summary}"
    );
    assert!(summary["active_users"].as_u64().unwrap() >= 2);
    let (_, pages) = get(&server, &key, "/analytics/top-pages").await;
    assert_eq!(
        pages[0],
        json!({"page_url": "/pricing", "views": 2, "unique_users": 2})
    );
    let (_, series) = get(&server, &key, "/analytics/timeseries?range=24h").await;
    let points = series.as_array().unwrap();
    assert!(
        points.len() >= 24,
        "every hour of the last 24: {}",
        points.len()
    );
    assert_eq!(
        points
            .iter()
            .map(|p| p["events"].as_u64().unwrap())
            .sum::<u64>(),
        8
    );
    let (_, recent) = get(&server, &key, "/analytics/recent?limit=3").await;
    assert_eq!(recent.as_array().unwrap().len(), 3);
    assert_eq!(recent[0]["event_type"], "pageview");
    let (status, metrics) = get(&server, &key, "/analytics/metrics?siteId=example.com").await;
    assert_eq!(
        (status, metrics["pageviews"].as_u64()),
        (200, Some(3)),
        "{metrics}"
    );
    let (_, live) = get(&server, &key, "/api/v1/realtime/visitors").await;
    assert!(live.as_u64().unwrap() >= 2);

    // A key for one site never reads another; the admin key must name the site.
    let (status, _) = get(&server, &other, "/api/v1/events?site_id=example.com").await;
    assert_eq!(status, 403);
    let (status, _) = get(&server, &other, "/analytics/metrics?siteId=example.com").await;
    assert_eq!(status, 403);
    let (_, empty) = get(&server, &other, "/api/v1/events").await;
    assert_eq!(empty["data"], json!([]));
    let (status, _) = get(&server, ADMIN, "/analytics/summary").await;
    assert_eq!(status, 400);
    let (status, _) = get(&server, ADMIN, "/analytics/summary?site_id=example.com").await;
    assert_eq!(status, 200);
    server.stop().await;
}
