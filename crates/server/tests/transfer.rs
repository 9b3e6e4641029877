//! Export -> import round trips: a fresh server (or a stopped one, through the
//! `heartbeat import` command) that imports a site's export answers every query as the
//! original does; importing twice stores nothing new.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

const SITE: &str = "example.com";

async fn load(server: &TestServer, key: &str) -> u64 {
    // Seed 003 timelines: visits, a bounce, custom events with properties.
    let timeline = [
        ("A", "2026-03-10T10:00:00Z", "pageview", "/"),
        ("A", "2026-03-10T10:05:00Z", "pageview", "/pricing"),
        ("A", "2026-03-10T10:20:00Z", "signup", "/pricing"),
        ("A", "2026-03-10T11:00:00Z", "pageview", "/blog"),
        ("B", "2026-03-10T12:00:00Z", "pageview", "/"),
        ("C", "2026-03-10T23:50:00Z", "pageview", "/pricing"),
        ("C", "2026-03-11T00:10:00Z", "pageview", "/"),
        ("D", "2026-03-11T09:00:00Z", "pageview", "/docs"),
    ];
    let batch: Vec<Value> = timeline
        .iter()
        .map(|(user, at, name, page)| json!({"userId": user, "eventName": name, "timestamp": at, "properties": {"pageUrl": page, "plan": "pro, \"yearly\""}}))
        .collect();
    let response = server
        .http
        .post(server.url("/api/v1/events"))
        .header("x-api-key", key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    // Tracker page views now, with a referrer and UTM tags, and a revenue event.
    for (ip, url, referrer) in [
        (
            "203.0.113.1",
            "https://example.com/?utm_source=news&utm_campaign=launch",
            "https://news.ycombinator.com/",
        ),
        ("203.0.113.1", "https://example.com/pricing", ""),
        (
            "203.0.113.2",
            "https://example.com/docs",
            "https://www.google.com/",
        ),
    ] {
        let response = server
            .http
            .post(server.url("/api/event"))
            .header("user-agent", UA)
            .header("x-forwarded-for", ip)
            .json(&json!({"n": "pageview", "u": url, "d": SITE, "r": referrer}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        // Event time is the arrival millisecond: keep a visit's page views apart, since
        // which of two page views in the same millisecond is the exit page is undefined.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let response = server
        .http
        .post(server.url("/api/event"))
        .header("user-agent", UA)
        .header("x-forwarded-for", "203.0.113.2")
        .json(&json!({"n": "Purchase", "u": "https://example.com/checkout", "d": SITE, "revenue": {"amount": "19.99", "currency": "EUR"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    12
}

/// The answers compared between servers.
async fn answers(server: &TestServer, key: &str) -> Vec<Value> {
    let totals = json!({"site_id": SITE, "date_range": "all", "metrics": ["visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration", "views_per_visit"]});
    let mut queries = vec![totals];
    for dimension in [
        "event:page",
        "event:name",
        "visit:source",
        "visit:utm_campaign",
        "visit:entry_page",
        "visit:exit_page",
        "visit:browser",
        "time:day",
    ] {
        // Visit metrics do not break down by event dimensions.
        let metrics = if dimension.starts_with("event:") {
            json!(["visitors", "pageviews", "events"])
        } else {
            json!([
                "visitors",
                "visits",
                "pageviews",
                "events",
                "bounce_rate",
                "visit_duration"
            ])
        };
        queries.push(json!({"site_id": SITE, "date_range": "all", "metrics": metrics, "dimensions": [dimension], "order_by": [["events", "desc"], [dimension, "asc"]]}));
    }
    let mut out = Vec::new();
    for query in queries {
        out.push(server.query(key, query).await["results"].clone());
    }
    out
}

async fn export(server: &TestServer, key: &str, format: &str) -> String {
    let response = server
        .http
        .get(server.url(&format!("/api/export?site_id={SITE}&format={format}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn import(server: &TestServer, key: &str, format: &str, body: &str) -> Value {
    let response = server
        .http
        .post(server.url(&format!("/api/import?site_id={SITE}&format={format}")))
        .bearer_auth(key)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn heartbeat(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env_remove("HEARTBEAT_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "heartbeat {args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn export_then_import_gives_the_same_answers() {
    let original_dir = tempfile::tempdir().unwrap();
    let original = serve(original_dir.path()).await;
    let key = original.create_site(SITE, "UTC").await;
    let sent = load(&original, &key).await;
    original.wait_for_events(&key, SITE, sent).await;
    let expected = answers(&original, &key).await;
    assert_eq!(expected[0][0]["metrics"][3], sent, "{:?}", expected[0]);
    let ndjson = export(&original, &key, "ndjson").await;
    let csv = export(&original, &key, "csv").await;
    assert_eq!(ndjson.lines().count() as u64, sent);
    assert_eq!(
        csv.lines().next().unwrap().split(',').next(),
        Some("event_id")
    );
    original.stop().await;

    // The command line reads the stopped server's data the same way.
    let cli_ndjson = heartbeat(
        original_dir.path(),
        &["export", "--site-id", SITE, "--format", "ndjson"],
    );
    assert_eq!(cli_ndjson, ndjson);

    // A fresh server imports the NDJSON export over HTTP, twice.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = serve(fresh_dir.path()).await;
    let fresh_key = fresh.create_site(SITE, "UTC").await;
    let first = import(&fresh, &fresh_key, "ndjson", &ndjson).await;
    assert_eq!(
        (first["imported"].as_u64(), first["skipped"].as_u64()),
        (Some(sent), Some(0))
    );
    let again = import(&fresh, ADMIN, "csv", &csv).await;
    assert_eq!(
        (again["imported"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(sent))
    );
    assert_eq!(answers(&fresh, &fresh_key).await, expected);
    // What was imported exports identically.
    assert_eq!(export(&fresh, &fresh_key, "ndjson").await, ndjson);

    // A bad line is refused, naming it, and nothing of it is stored.
    let response = fresh
        .http
        .post(fresh.url(&format!("/api/import?site_id={SITE}")))
        .bearer_auth(&fresh_key)
        .body(format!(
            "{}\n{{\"event_id\": \"z\"}}\n",
            ndjson.lines().next().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["details"][0]["field"], "line 2", "{body}");
    fresh.stop().await;

    // `heartbeat import` of the CSV export into a stopped server.
    let cli_dir = tempfile::tempdir().unwrap();
    let cli_server = serve(cli_dir.path()).await;
    let cli_key = cli_server.create_site(SITE, "UTC").await;
    cli_server.stop().await;
    let file = cli_dir.path().join("export.csv");
    std::fs::write(&file, &csv).unwrap();
    heartbeat(
        cli_dir.path(),
        &[
            "import",
            "--site-id",
            SITE,
            "--format",
            "csv",
            file.to_str().unwrap(),
        ],
    );
    let cli_server = serve(cli_dir.path()).await;
    assert_eq!(answers(&cli_server, &cli_key).await, expected);
    cli_server.stop().await;
}
