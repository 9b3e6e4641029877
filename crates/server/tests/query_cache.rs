//! The query cache answers a repeated query without the store, and never serves an answer
//! older than the site's data. One test per file: the metrics recorder is process-wide.

mod common;

use common::*;
use serde_json::json;

async fn cache_counter(server: &TestServer, name: &str) -> f64 {
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn send(server: &TestServer, key: &str, user: &str, page: &str) {
    let response = server
        .http
        .post(server.url("/api/v1/events"))
        .header("x-api-key", key)
        .json(&json!({"userId": user, "eventName": "pageview",
            "timestamp": "2026-03-10T10:00:00Z", "properties": {"pageUrl": page}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn repeated_queries_hit_until_the_data_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("cache.test", "UTC").await;
    send(&server, &key, "a", "/").await;
    server.wait_for_events(&key, "cache.test", 1).await;

    let pages = json!({"site_id": "cache.test", "date_range": ["2026-03-10", "2026-03-10"],
        "metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]});
    let first = server.query(&key, pages.clone()).await;
    let hits = cache_counter(&server, "heartbeat_query_cache_hits_total").await;
    let again = server.query(&key, pages.clone()).await;
    assert_eq!(again["results"], first["results"]);
    assert_eq!(
        cache_counter(&server, "heartbeat_query_cache_hits_total").await,
        hits + 1.0
    );

    // New data for the site: the next answer includes it.
    send(&server, &key, "b", "/pricing").await;
    server.wait_for_events(&key, "cache.test", 2).await;
    let after = server.query(&key, pages).await;
    assert_eq!(
        after["results"],
        json!([
            {"dimensions": ["/"], "metrics": [1, 1]},
            {"dimensions": ["/pricing"], "metrics": [1, 1]}
        ])
    );
    server.stop().await;
}
