//! Every kind of bad input gets the right 4xx in the one error shape, stores nothing, and
//! the server keeps serving.

mod common;

use common::*;
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    key: Option<&'static str>,
    user_agent: bool,
    status: u16,
    field: &'static str,
}

fn case(
    name: &'static str,
    path: &'static str,
    body: Value,
    key: Option<&'static str>,
    status: u16,
    field: &'static str,
) -> Case {
    Case {
        name,
        path,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        key,
        user_agent: true,
        status,
        field,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    let other_key = server.create_site("other.org", "UTC").await;
    let key: &'static str = Box::leak(key.into_boxed_str());
    let other_key: &'static str = Box::leak(other_key.into_boxed_str());
    let good = json!({"n": "pageview", "u": "https://example.com/", "d": "example.com"});
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"userId": format!("u{i}"), "eventName": "x"}))
        .collect();
    let mut cases = vec![
        case(
            "missing name",
            "/api/event",
            json!({"u": "https://example.com/", "d": "example.com"}),
            None,
            400,
            "name",
        ),
        case(
            "wrong type",
            "/api/event",
            json!({"n": "pageview", "u": [1], "d": "example.com", "i": "yes"}),
            None,
            400,
            "u",
        ),
        case(
            "not a web url",
            "/api/event",
            json!({"n": "pageview", "u": "ftp://example.com/", "d": "example.com"}),
            None,
            400,
            "url",
        ),
        case(
            "nested props",
            "/api/event",
            json!({"n": "x", "u": "https://example.com/", "d": "example.com", "p": {"a": {"b": 1}}}),
            None,
            400,
            "p.a",
        ),
        case(
            "bad revenue",
            "/api/event",
            json!({"n": "x", "u": "https://example.com/", "d": "example.com", "revenue": {"amount": "ten", "currency": "EUR"}}),
            None,
            400,
            "revenue.amount",
        ),
        case(
            "unknown domain",
            "/api/event",
            json!({"n": "pageview", "u": "https://nope.com/", "d": "nope.com"}),
            None,
            404,
            "domain",
        ),
        case(
            "seed 002 without key",
            "/api/event",
            json!({"site_id": "example.com", "event_type": "pageview", "path": "/"}),
            None,
            401,
            "x-api-key",
        ),
        case(
            "seed 002 wrong key",
            "/api/event",
            json!({"site_id": "example.com", "event_type": "pageview", "path": "/"}),
            Some("hb_wrong"),
            401,
            "x-api-key",
        ),
        case(
            "another site's id",
            "/api/event",
            json!({"site_id": "example.com", "event_type": "pageview", "path": "/"}),
            Some(other_key),
            403,
            "site_id",
        ),
        case(
            "unknown site id",
            "/api/event",
            json!({"site_id": "ghost.io", "event_type": "pageview"}),
            Some(key),
            404,
            "site_id",
        ),
        case(
            "seed 002 missing type",
            "/api/event",
            json!({"site_id": "example.com"}),
            Some(key),
            400,
            "event_type",
        ),
        case(
            "timestamp far past",
            "/api/v1/events",
            json!({"userId": "u", "eventName": "x", "timestamp": "1990-01-01T00:00:00Z"}),
            Some(key),
            400,
            "timestamp",
        ),
        case(
            "timestamp future",
            "/api/v1/events",
            json!({"userId": "u", "eventName": "x", "timestamp": "2999-01-01T00:00:00Z"}),
            Some(key),
            400,
            "timestamp",
        ),
        case(
            "timestamp garbage",
            "/api/v1/events",
            json!({"userId": "u", "eventName": "x", "timestamp": "yesterday"}),
            Some(key),
            400,
            "timestamp",
        ),
        case(
            "batch over 1000",
            "/api/v1/events",
            Value::Array(many),
            Some(key),
            400,
            "body",
        ),
        case(
            "one bad item fails the batch",
            "/api/v1/events",
            json!([{"userId": "u", "eventName": "ok"}, {"userId": "u"}]),
            Some(key),
            400,
            "[1].eventName",
        ),
        case(
            "empty batch",
            "/api/v1/events/batch",
            json!({"events": []}),
            Some(key),
            400,
            "body",
        ),
        case(
            "batch not a list",
            "/api/v1/events/batch",
            json!({"events": 3}),
            Some(key),
            400,
            "events",
        ),
        case(
            "seed 001 missing source",
            "/api/v1/events/batch",
            json!([{"id": "1", "type": "t", "timestamp": "2026-01-01T00:00:00Z"}]),
            Some(key),
            400,
            "[0].source",
        ),
        case(
            "seed 004 without key",
            "/api/events",
            json!({"event_type": "PAGE_VIEW"}),
            None,
            401,
            "x-api-key",
        ),
        case(
            "seed 000 unknown domain",
            "/events",
            json!({"event_type": "pageview", "domain": "ghost.io"}),
            None,
            404,
            "domain",
        ),
        case(
            "a JSON string",
            "/api/event",
            json!("pageview"),
            None,
            400,
            "body",
        ),
    ];
    cases.push(Case {
        name: "broken JSON",
        body: b"{\"n\": \"pageview\",".to_vec(),
        ..case("", "/api/event", Value::Null, None, 400, "body")
    });
    cases.push(Case {
        name: "invalid UTF-8",
        body: vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'],
        ..case("", "/api/event", Value::Null, None, 400, "body")
    });
    cases.push(Case {
        name: "wrong content type",
        content_type: "application/xml",
        body: b"<event/>".to_vec(),
        ..case("", "/api/event", Value::Null, None, 415, "content-type")
    });
    for case in &cases {
        let mut request = server
            .http
            .post(server.url(case.path))
            .header("content-type", case.content_type)
            .body(case.body.clone());
        if case.user_agent {
            request = request.header("user-agent", UA);
        }
        if let Some(key) = case.key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(body["success"], false, "{}: {body}", case.name);
        assert!(body["error"].is_string(), "{}: {body}", case.name);
        let fields: Vec<&str> = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&case.field),
            "{}: wanted field {} in {body}",
            case.name,
            case.field
        );
    }
    // A body over the limit is refused from its Content-Length, before it is read (a raw
    // socket, since a client still writing the body sees the connection close early).
    let status_line = oversized_request(&server.base, "/api/event").await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    // Still serving, and only the one good event is stored.
    let response = server
        .http
        .post(server.url("/api/event"))
        .header("user-agent", UA)
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    server.wait_for_events(key, "example.com", 1).await;
    server.stop().await;
    let rows = sql(dir.path(), "SELECT count(*) FROM events").await;
    assert_eq!(text(&rows[0][0]), "1");
}

/// Sends headers announcing a 2 MiB body and a little of it; returns the response's status
/// line and body.
async fn oversized_request(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {UA}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"n\": \"",
        2 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        socket.read_to_end(&mut response),
    )
    .await;
    let text = String::from_utf8_lossy(&response).into_owned();
    assert!(text.contains("\"success\":false"), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_name_the_bad_part() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    let other = server.create_site("other.org", "UTC").await;
    let cases = [
        (json!({"metrics": ["visitors"]}), &key, 400, "site_id"),
        (
            json!({"site_id": "example.com", "metrics": ["nope"]}),
            &key,
            400,
            "metrics[0]",
        ),
        (
            json!({"site_id": "example.com", "metrics": ["visitors"], "date_range": "1000y"}),
            &key,
            400,
            "date_range",
        ),
        (
            json!({"site_id": "example.com", "metrics": ["visitors"], "filters": [["is", "event:page", "/' OR 1=1 --"]]}),
            &key,
            400,
            "filters[0][2]",
        ),
        (
            json!({"site_id": "example.com", "metrics": ["visitors"]}),
            &other,
            403,
            "site_id",
        ),
        (
            json!({"site_id": "ghost.io", "metrics": ["visitors"]}),
            &key,
            404,
            "site_id",
        ),
    ];
    for (body, key, status, field) in cases {
        let response = server
            .http
            .post(server.url("/api/v2/query"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["details"][0]["field"], field, "{answer}");
    }
    let response = server
        .http
        .post(server.url("/api/v2/query"))
        .json(&json!({"site_id": "example.com", "metrics": ["visitors"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Hostile filter values are data, never SQL: each is answered (a bad pattern with a 400
    // naming it), never a server error.
    let hostile = [
        "'; DROP TABLE events; --",
        "\" OR \"\"=\"",
        &"x".repeat(2000),
        "%",
        "\\",
        "(?:a+)+$",
        "(",
        "\u{0}",
    ];
    for value in hostile {
        for op in ["is", "contains", "matches", "is_not"] {
            let body = json!({"site_id": "example.com", "metrics": ["visitors", "bounce_rate"], "filters": [[op, "visit:exit_page", [value]], [op, "event:page", [value]]]});
            let (status, answer) = server.query_answer(&key, &body).await;
            if status == 400 {
                assert_eq!(op, "matches", "{value:?}: {answer}");
                assert_eq!(answer["details"][0]["field"], "filters[0][2][0]");
            } else {
                assert_eq!(status, 200, "{op} {value:?}: {answer}");
                assert_eq!(answer["results"][0]["metrics"], json!([0, 0]));
            }
        }
    }
    server.stop().await;
    let rows = sql(dir.path(), "SELECT count(*) FROM events").await;
    assert_eq!(text(&rows[0][0]), "0");
}

/// Malformed query strings of the read endpoints get a 400 in the one JSON error shape that
/// names the parameter, never a plain-text rejection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_query_strings_name_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    for (path, field) in [
        ("/api/v1/events?limit=abc", "limit"),
        ("/analytics/top-pages?limit=-1", "limit"),
        ("/analytics/recent?limit=2.5", "limit"),
        ("/api/v1/events?limit=5000", "limit"),
        (
            "/api/v1/metrics?interval=hourly&startDate=2020-01-01&endDate=2024-12-31",
            "interval",
        ),
        (
            "/api/v1/events/summary?startDate=0001-01-01&endDate=9999-12-31",
            "startDate",
        ),
        ("/api/v1/events?startTime=0001-01-01", "startTime"),
        ("/analytics/recent?limit=1000000000", "limit"),
    ] {
        let response = server
            .http
            .get(server.url(path))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["success"], false, "{path}: {body}");
        assert_eq!(body["details"][0]["field"], field, "{path}: {body}");
    }
    server.stop().await;
}
