//! The query cache answers a repeated query without the store, and never serves an answer
//! older than the site's data, for the v2 query and the product analytics reads (funnel,
//! retention, paths) alike. One test per file: the metrics recorder is process-wide.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

async fn cache_counter(server: &TestServer, name: &str) -> f64 {
    metric(&server.url("/metrics"), name).await
}

/// A page view of `user` on 2026-03-10 at `time` (UTC).
async fn send(server: &TestServer, key: &str, user: &str, page: &str, time: &str) {
    let response = server
        .http
        .post(server.url("/api/v1/events"))
        .header("x-api-key", key)
        .json(&json!({"userId": user, "eventName": "pageview",
            "timestamp": format!("2026-03-10T{time}Z"), "properties": {"pageUrl": page}}))
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
    send(&server, &key, "a", "/", "10:00:00").await;
    server.wait_for_events(&key, "cache.test", 1).await;

    let range = json!(["2026-03-10", "2026-03-10"]);
    let pages = json!({"site_id": "cache.test", "date_range": range,
        "metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]});
    let funnel = json!({"site_id": "cache.test", "date_range": range,
        "steps": [{"page": "/"}, {"page": "/pricing"}], "window": {"seconds": 3600}});
    let retention = json!({"site_id": "cache.test", "date_range": range, "period": "day",
        "periods": 1});
    let paths = json!({"site_id": "cache.test", "date_range": range, "page": "/", "depth": 1});
    let reads = [
        ("/api/v2/query", &pages),
        ("/api/v2/funnel", &funnel),
        ("/api/v2/retention", &retention),
        ("/api/v2/paths", &paths),
    ];
    for (path, body) in reads {
        let (status, first) = server.call(Method::POST, path, &key, Some(body)).await;
        assert_eq!(status, 200, "{path}: {first}");
        // The store counts a write in the site's data version just after its commit, so a
        // first answer read in between is kept under the version before and missed once
        // (never stale); the next is a hit.
        let mut hit = false;
        for _ in 0..3 {
            let hits = cache_counter(&server, "heartbeat_query_cache_hits_total").await;
            let (_, again) = server.call(Method::POST, path, &key, Some(body)).await;
            assert_eq!(again, first, "{path}");
            if cache_counter(&server, "heartbeat_query_cache_hits_total").await == hits + 1.0 {
                hit = true;
                break;
            }
        }
        assert!(hit, "{path} was not answered from the cache");
    }

    // New data for the site: user a goes on to /pricing, b arrives; every next answer
    // includes it.
    send(&server, &key, "a", "/pricing", "10:05:00").await;
    send(&server, &key, "b", "/", "11:00:00").await;
    server.wait_for_events(&key, "cache.test", 3).await;
    let after = server.query(&key, pages).await;
    assert_eq!(
        after["results"],
        json!([
            {"dimensions": ["/"], "metrics": [2, 2]},
            {"dimensions": ["/pricing"], "metrics": [1, 1]}
        ])
    );
    let (_, after) = server
        .call(Method::POST, "/api/v2/funnel", &key, Some(&funnel))
        .await;
    let converted: Vec<&serde_json::Value> = after["results"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| &step["visitors"])
        .collect();
    assert_eq!(converted, [&json!(2), &json!(1)], "{after}");
    let (_, after) = server
        .call(Method::POST, "/api/v2/retention", &key, Some(&retention))
        .await;
    assert_eq!(after["cohorts"][0]["size"], 2, "{after}");
    let (_, after) = server
        .call(Method::POST, "/api/v2/paths", &key, Some(&paths))
        .await;
    assert_eq!(after["nodes"][0]["visitors"], 2, "{after}");
    server.stop().await;
}
