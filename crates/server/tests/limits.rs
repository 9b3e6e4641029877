//! Abuse protection through the real router: rate limits trip at the configured rate and
//! recover, the per-site quota counts events, 429s carry `Retry-After` in the one error shape;
//! security headers, the two CORS policies and the request time limit.

mod common;

use std::time::{Duration, Instant};

use common::*;
use heartbeat_server::limits::LimitSettings;
use serde_json::{json, Value};

fn pageview(domain: &str) -> String {
    json!({"n": "pageview", "u": format!("https://{domain}/"), "d": domain}).to_string()
}

async fn assert_429(response: reqwest::Response, field: &str) {
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"], "Rate limit exceeded");
    assert_eq!(body["details"][0]["field"], field, "{body}");
}

#[tokio::test]
async fn per_ip_limit_trips_at_the_rate_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // 600 a minute: a burst of 600, then one more every 100 ms.
    let server = serve_with(dir.path(), |config| {
        config.limits = LimitSettings {
            ingest_per_ip_per_minute: 600,
            ..LimitSettings::default()
        };
    })
    .await;
    let key = server.create_site("limits.example", "UTC").await;
    let started = Instant::now();
    let mut accepted = 0u32;
    let refused = loop {
        let response = server
            .http
            .post(server.url("/api/event"))
            .header("user-agent", UA)
            .header("x-forwarded-for", "198.51.100.7")
            .header("content-type", "text/plain")
            .body(pageview("limits.example"))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            break response;
        }
        assert_eq!(response.status(), 202);
        accepted += 1;
        assert!(accepted < 5_000, "the limit never tripped");
    };
    let elapsed_tenths = (started.elapsed().as_millis() / 100) as u32;
    assert!(
        (600..=600 + elapsed_tenths + 2).contains(&accepted),
        "{accepted} accepted in {elapsed_tenths} tenths of a second"
    );
    assert_429(refused, "client").await;
    // Seed 002's keyed format on the same path counts against the same address.
    let keyed = server
        .http
        .post(server.url("/api/event"))
        .header("x-api-key", &key)
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"site_id": "limits.example", "event_type": "pageview", "path": "/"}))
        .send()
        .await
        .unwrap();
    assert_429(keyed, "client").await;
    // Another address is not affected.
    let other = server
        .http
        .post(server.url("/api/event"))
        .header("user-agent", UA)
        .header("x-forwarded-for", "198.51.100.8")
        .body(pageview("limits.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 202);
    // Recovers: a cell comes back every 100 ms.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = server
            .http
            .post(server.url("/api/event"))
            .header("user-agent", UA)
            .header("x-forwarded-for", "198.51.100.7")
            .body(pageview("limits.example"))
            .send()
            .await
            .unwrap();
        if response.status() == 202 {
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(Instant::now() < deadline, "the limit never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn per_key_limit_and_site_quota() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), |config| {
        config.limits = LimitSettings {
            per_key_per_minute: 3,
            site_events_per_minute: 5,
            ..LimitSettings::default()
        };
    })
    .await;
    let key = server.create_site("quota.example", "UTC").await;
    let batch = |n: usize| {
        Value::Array(
            (0..n)
                .map(|i| json!({"userId": format!("u{i}"), "eventName": "signup"}))
                .collect(),
        )
    };
    let send = |body: Value| {
        server
            .http
            .post(server.url("/api/v1/events"))
            .header("x-api-key", &key)
            .json(&body)
            .send()
    };
    // The site's quota counts events: 4 pass, 2 more do not.
    assert_eq!(send(batch(4)).await.unwrap().status(), 202);
    assert_429(send(batch(2)).await.unwrap(), "site_id").await;
    // The key's third request passes, its fourth does not, on any route.
    let third = server
        .http
        .get(server.url("/api/sites"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 200);
    let fourth = server
        .http
        .get(server.url("/api/sites"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_429(fourth, "x-api-key").await;
    // The admin token has its own budget.
    let admin = server
        .http
        .get(server.url("/api/sites"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    // Operators see refusals by limit.
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for limit in ["key", "site_quota"] {
        assert!(
            metrics.contains(&format!(
                "heartbeat_http_rate_limited_total{{limit=\"{limit}\"}}"
            )),
            "{limit}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn security_headers_cors_and_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), |config| {
        config.server.cors_origins = vec!["https://admin.example.com".into()];
        config.server.request_timeout_s = 0;
    })
    .await;
    let health = server.http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ] {
        assert_eq!(health.headers()[name], value, "{name}");
    }
    assert!(health.headers().get("cache-control").is_none());
    let sites = server
        .http
        .get(server.url("/api/sites"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(sites.headers()["cache-control"], "no-store");
    assert!(health.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));

    let preflight = |path: &str, origin: &str, method: &str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type")
            .send()
    };
    // Ingest: any origin.
    for path in ["/api/event", "/api/v1/events", "/events"] {
        let response = preflight(path, "https://blog.example.org", "POST")
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert!(response.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST"));
    }
    // The private API: only the configured origin, with credentials.
    let strange = preflight("/api/v2/query", "https://evil.example.net", "POST")
        .await
        .unwrap();
    assert!(strange
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let reading = preflight("/api/v1/events", "https://evil.example.net", "GET")
        .await
        .unwrap();
    assert!(reading
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let allowed = preflight("/api/v2/query", "https://admin.example.com", "POST")
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );

    // A handler that waits (on the store) is cut by the 1 ns limit, in the one error shape.
    let slow = server
        .http
        .post(server.url("/api/site/create"))
        .bearer_auth(ADMIN)
        .json(&json!({"domain": "slow.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 408);
    let body: Value = slow.json().await.unwrap();
    assert_eq!(body["error"], "Request timeout");
    server.stop().await;
}
