//! Each wire format lands the right canonical event.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wire_format_lands_a_canonical_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    let post = |path: &str, body: serde_json::Value, with_key: bool| {
        let mut request = server
            .http
            .post(server.url(path))
            .header("user-agent", UA)
            .header("x-forwarded-for", "203.0.113.5")
            .header("content-type", "application/json")
            .body(body.to_string());
        if with_key {
            request = request.header("x-api-key", key.clone());
        }
        request.send()
    };
    let sends = [
        // Plausible's Events API, as the tracker sends it (text/plain is covered below).
        (
            "/api/event",
            json!({"n": "pageview", "u": "https://example.com/plausible?utm_source=news", "d": "example.com", "r": "https://news.ycombinator.com/", "p": {"plan": "pro"}}),
            false,
        ),
        (
            "/api/event",
            json!({"name": "Purchase", "url": "https://example.com/checkout", "domain": "example.com", "revenue": {"amount": "19.99", "currency": "EUR"}}),
            false,
        ),
        // Seed 002.
        (
            "/api/event",
            json!({"site_id": "example.com", "event_type": "page_view", "path": "/seed-002", "user_id": "user-2", "timestamp": "2026-01-15T10:30:00Z"}),
            true,
        ),
        // Seed 000, public by domain.
        (
            "/events",
            json!({"event_type": "pageview", "visitor_id": "visitor-0", "session_id": "s-0", "timestamp": "2026-01-15T11:00:00.000Z", "domain": "example.com", "path": "/seed-000"}),
            false,
        ),
        // Seed 004.
        (
            "/api/events",
            json!({"event_type": "PAGE_VIEW", "user_id": "user_101", "session_id": "sess_1", "page_url": "/seed-004", "metadata": {"device": "mobile"}}),
            true,
        ),
        // Seed 003, an array.
        (
            "/api/v1/events",
            json!([{"userId": "user-3", "eventName": "button_click", "timestamp": "2026-01-15T12:00:00Z", "properties": {"pageUrl": "/seed-003", "button": "buy"}}]),
            true,
        ),
        // Seed 001, a batch of EventMessages.
        (
            "/api/v1/events/batch",
            json!({"events": [{"id": "evt-001", "type": "email.opened", "data": {"campaign": "c1"}, "timestamp": "2026-01-15T13:00:00Z", "source": "mailer", "correlationId": "corr-1"}]}),
            true,
        ),
    ];
    for (path, body, with_key) in sends {
        let response = post(path, body.clone(), with_key).await.unwrap();
        assert_eq!(
            response.status(),
            202,
            "{path} {body}: {}",
            response.text().await.unwrap()
        );
    }
    // Seed 002's response body.
    let response = post(
        "/api/event",
        json!({"site_id": "example.com", "event_type": "pageview", "path": "/again"}),
        true,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Event queued successfully");
    assert!(body["processing_time_ms"].is_u64());
    // The tracker's text/plain body.
    let response = server
        .http
        .post(server.url("/api/event"))
        .header("user-agent", UA)
        .header("content-type", "text/plain")
        .body(
            json!({"n": "pageview", "u": "https://example.com/plain", "d": "example.com"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.text().await.unwrap(), "ok");
    server.wait_for_events(&key, "example.com", 9).await;
    server.stop().await;

    let rows = sql(
        dir.path(),
        "SELECT pathname, name, coalesce(user_id, ''), coalesce(client_session_id, ''), props_json, \
         coalesce(revenue_micros, 0), coalesce(revenue_currency, ''), utm_source, referrer_source, client_event_id \
         FROM events ORDER BY pathname, name",
    )
    .await;
    let got: Vec<String> = rows
        .iter()
        .map(|r| r.iter().map(text).collect::<Vec<_>>().join(" | "))
        .collect();
    let expected = [
        "/ | email.opened |  |  | {\"campaign\":\"c1\",\"correlation_id\":\"corr-1\",\"source\":\"mailer\"} | 0 |  |  |  | 1",
        "/again | pageview |  |  |  | 0 |  | news | news | 0",
        "/checkout | Purchase |  |  |  | 19990000 | EUR | news | news | 0",
        "/plain | pageview |  |  |  | 0 |  |  |  | 0",
        "/plausible | pageview |  |  | {\"plan\":\"pro\"} | 0 |  | news | news | 0",
        "/seed-000 | pageview | visitor-0 | s-0 |  | 0 |  |  |  | 0",
        "/seed-002 | pageview | user-2 |  |  | 0 |  |  |  | 0",
        "/seed-003 | button_click | user-3 |  | {\"button\":\"buy\"} | 0 |  |  |  | 1",
        "/seed-004 | pageview | user_101 | sess_1 | {\"device\":\"mobile\"} | 0 |  |  |  | 0",
    ];
    // Events of one visit carry its first event's source: /checkout and /again came from the
    // visitor (same IP and user agent) who arrived on /plausible from a newsletter.
    assert_eq!(got, expected);
}
