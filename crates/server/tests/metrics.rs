//! `/metrics` after known traffic: counts by route template and status, accepted and
//! refused events, stored and duplicate events, the queue caught up, store timings; and the
//! request id on every response.
//!
//! The metrics recorder is process-wide, so this file holds one test: its process sees only
//! its own traffic.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// `name{labels}` -> value, from the Prometheus text format. Label sets are kept as written
/// by the exporter (sorted by the order the code gives them).
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(metrics: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .sum()
}

#[tokio::test]
async fn metrics_count_known_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;

    let tracker = |body: serde_json::Value| {
        server
            .http
            .post(server.url("/api/event"))
            .header("user-agent", UA)
            .header("x-forwarded-for", "203.0.113.9")
            .json(&body)
    };
    for page in ["/", "/a", "/b"] {
        let url = format!("https://example.com{page}");
        let response = tracker(json!({"n": "pageview", "u": url, "d": "example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    // Two invalid requests and one for a site nobody created.
    for body in [json!({"n": "pageview"}), json!([1, 2])] {
        assert_eq!(tracker(body).send().await.unwrap().status(), 400);
    }
    let unknown = json!({"n": "pageview", "u": "https://nobody.org/", "d": "nobody.org"});
    assert_eq!(tracker(unknown).send().await.unwrap().status(), 404);
    // Seed 001's event twice with the same id: stored once, one duplicate.
    let seed_001 = json!({"id": "evt-1", "type": "signup", "data": {}, "timestamp": "2026-01-15T13:00:00Z", "source": "web"});
    for _ in 0..2 {
        let response = server
            .http
            .post(server.url("/api/v1/events"))
            .header("x-api-key", key.clone())
            .json(&seed_001)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    // An unknown path: counted under one `unmatched` route, never its raw path.
    let missing = server
        .http
        .get(server.url("/no/such/page-123"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    server.wait_for_events(&key, "example.com", 4).await;
    // Duplicates are counted once the processor has seen both copies; poll for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let text = server
            .http
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let metrics = parse(&text);
        let caught_up = value(&metrics, "heartbeat_queue_pending_bytes", &[]) == 0.0
            && value(
                &metrics,
                "heartbeat_processor_events_dropped_total",
                &[("reason", "duplicate")],
            ) == 1.0;
        if caught_up {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "processor never caught up:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let requests = |route: &str, status: &str| {
        value(
            &metrics,
            "heartbeat_http_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("/api/event", "202"), 3.0);
    assert_eq!(requests("/api/event", "400"), 2.0);
    assert_eq!(requests("/api/event", "404"), 1.0);
    assert_eq!(requests("/api/v1/events", "202"), 2.0);
    assert_eq!(requests("/api/site/create", "201"), 1.0);
    assert_eq!(requests("unmatched", "404"), 1.0);
    assert!(
        !metrics.keys().any(|series| series.contains("page-123")),
        "a raw path became a label"
    );
    assert_eq!(
        value(
            &metrics,
            "heartbeat_http_request_duration_seconds_count",
            &[("route", "/api/event"), ("status", "202")],
        ),
        3.0
    );
    assert_eq!(
        value(&metrics, "heartbeat_ingest_events_accepted_total", &[]),
        5.0
    );
    let rejected = |reason: &str| {
        value(
            &metrics,
            "heartbeat_ingest_requests_rejected_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(rejected("invalid"), 2.0);
    assert_eq!(rejected("unknown_site"), 1.0);
    assert_eq!(
        value(&metrics, "heartbeat_processor_events_stored_total", &[]),
        4.0
    );
    assert_eq!(value(&metrics, "heartbeat_processor_lag_seconds", &[]), 0.0);
    assert!(
        value(
            &metrics,
            "heartbeat_store_insert_duration_seconds_count",
            &[]
        ) >= 1.0
    );
    assert!(
        value(
            &metrics,
            "heartbeat_store_query_duration_seconds_count",
            &[]
        ) >= 1.0
    );
    assert_eq!(
        value(
            &metrics,
            "heartbeat_queue_append_duration_seconds_count",
            &[]
        ),
        5.0
    );
    // Memory: the allocator's figures, and DuckDB's accounts by tag (the metadata tables'
    // keys are indexes it holds from the start).
    let allocated = value(&metrics, "heartbeat_memory_allocated_bytes", &[]);
    let resident = value(&metrics, "heartbeat_memory_resident_bytes", &[]);
    assert!(allocated > 1e6, "allocated {allocated}");
    let active = value(&metrics, "heartbeat_memory_active_bytes", &[]);
    assert!(
        allocated <= active && active <= resident,
        "allocated {allocated}, active {active}, resident {resident}"
    );
    assert!(value(&metrics, "heartbeat_memory_metadata_bytes", &[]) > 0.0);
    assert!(
        value(
            &metrics,
            "heartbeat_store_memory_bytes",
            &[("tag", "art_index")]
        ) > 0.0
    );
    assert!(
        value(&metrics, "heartbeat_store_memory_bytes", &[]) < allocated,
        "DuckDB's accounted memory is part of what the allocator handed out"
    );
    assert_eq!(value(&metrics, "heartbeat_store_spilled_bytes", &[]), 0.0);
    server.stop().await;
}
