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
            "u",
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
            "d",
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

/// One request to a seed's (or Plausible's) endpoint and the refusal it must get: its status
/// and every field named in `details`, as the client spelt it.
struct Probe {
    name: &'static str,
    post: bool,
    path: String,
    body: String,
    key: Option<String>,
    status: u16,
    fields: Vec<&'static str>,
}

/// A POST of `body` with the key of `example.com`.
fn post(
    name: &'static str,
    path: &str,
    body: impl ToString,
    status: u16,
    fields: &[&'static str],
) -> Probe {
    Probe {
        name,
        post: true,
        path: path.to_owned(),
        body: body.to_string(),
        key: None,
        status,
        fields: fields.to_vec(),
    }
}

/// A GET of `path` with the key of `example.com`.
fn get(name: &'static str, path: &str, status: u16, fields: &[&'static str]) -> Probe {
    Probe {
        post: false,
        body: String::new(),
        ..post(name, path, "", status, fields)
    }
}

/// Every seed endpoint (ingest and reads) and Plausible's Events and Stats v1 endpoints,
/// against each kind of bad input: malformed JSON, wrong types (several at once), missing
/// fields, invalid values, bad query strings, unknown sites and a key naming another site.
/// Each is refused with its status in the one JSON error shape naming every bad field as the
/// client spelt it; nothing of them is stored and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_endpoint_refuses_bad_input_in_the_one_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    let other_key = server.create_site("other.org", "UTC").await;
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"userId": format!("u{i}"), "eventName": "x"}))
        .collect();
    let malformed = "{\"event_type\": \"pageview\",";
    let mut probes = vec![
        // Plausible's Events API (public, by domain).
        post(
            "plausible malformed",
            "/api/event",
            malformed,
            400,
            &["body"],
        ),
        post(
            "plausible wrong types",
            "/api/event",
            json!({"n": [], "u": {}, "d": "example.com", "i": "yes", "p": 3}),
            400,
            &["n", "u", "i", "p"],
        ),
        post(
            "plausible missing",
            "/api/event",
            json!({}),
            400,
            &["name", "url", "domain"],
        ),
        post(
            "plausible bad url",
            "/api/event",
            json!({"n": "pageview", "u": "ftp://example.com/", "d": "example.com"}),
            400,
            &["u"],
        ),
        post(
            "plausible bad revenue",
            "/api/event",
            json!({"n": "Buy", "u": "https://example.com/", "d": "example.com", "revenue": {"amount": "ten", "currency": "euro"}}),
            400,
            &["revenue.amount", "revenue.currency"],
        ),
        post(
            "plausible unknown domain",
            "/api/event",
            json!({"n": "pageview", "u": "https://ghost.io/", "d": "ghost.io"}),
            404,
            &["d"],
        ),
        // Seed 002 (keyed, same path).
        post(
            "seed 002 wrong types",
            "/api/event",
            json!({"site_id": "example.com", "event_type": [], "path": {}, "user_id": [], "timestamp": true}),
            400,
            &["event_type", "path", "user_id", "timestamp"],
        ),
        post(
            "seed 002 missing",
            "/api/event",
            json!({"site_id": "example.com"}),
            400,
            &["event_type"],
        ),
        post(
            "seed 002 invalid values",
            "/api/event",
            json!({"site_id": "example.com", "event_type": "pageview", "path": "ftp://x/", "timestamp": "1990-01-01T00:00:00Z"}),
            400,
            &["path", "timestamp"],
        ),
        post(
            "seed 002 unknown site",
            "/api/event",
            json!({"site_id": "ghost.io", "event_type": "pageview"}),
            404,
            &["site_id"],
        ),
        post(
            "seed 002 another site",
            "/api/event",
            json!({"site_id": "other.org", "event_type": "pageview", "path": "/"}),
            403,
            &["site_id"],
        ),
        // Seed 004.
        post(
            "seed 004 malformed",
            "/api/events",
            malformed,
            400,
            &["body"],
        ),
        post(
            "seed 004 wrong types",
            "/api/events",
            json!({"event_type": [], "page_url": {}, "metadata": 3, "timestamp": true}),
            400,
            &["event_type", "page_url", "metadata", "timestamp"],
        ),
        post(
            "seed 004 missing",
            "/api/events",
            json!({"page_url": "/"}),
            400,
            &["event_type"],
        ),
        post(
            "seed 004 bad url",
            "/api/events",
            json!({"event_type": "PAGE_VIEW", "page_url": "ftp://x/"}),
            400,
            &["page_url"],
        ),
        post(
            "seed 004 another site",
            "/api/events",
            json!({"site_id": "other.org", "event_type": "PAGE_VIEW"}),
            403,
            &["site_id"],
        ),
        post(
            "seed 004 unknown site",
            "/api/events",
            json!({"siteId": "ghost.io", "event_type": "PAGE_VIEW"}),
            404,
            &["siteId"],
        ),
        // Seed 003.
        post(
            "seed 003 malformed",
            "/api/v1/events",
            malformed,
            400,
            &["body"],
        ),
        post(
            "seed 003 wrong types",
            "/api/v1/events",
            json!({"userId": [], "eventName": {}, "properties": 3, "timestamp": true, "ipAddress": "nope"}),
            400,
            &[
                "userId",
                "eventName",
                "properties",
                "timestamp",
                "ipAddress",
            ],
        ),
        post(
            "seed 003 missing",
            "/api/v1/events",
            json!({"properties": {}}),
            400,
            &["userId", "eventName"],
        ),
        post(
            "seed 003 bad url",
            "/api/v1/events",
            json!({"userId": "u", "eventName": "x", "properties": {"pageUrl": "ftp://x/"}}),
            400,
            &["properties.pageUrl"],
        ),
        post(
            "seed 003 batch items",
            "/api/v1/events",
            json!([{"userId": "u", "eventName": "x"}, {"userId": "u"}, {"eventName": 3, "timestamp": "never"}]),
            400,
            &["[1].eventName", "[2].userId", "[2].timestamp"],
        ),
        post(
            "seed 003 over 1000",
            "/api/v1/events",
            Value::Array(many),
            400,
            &["body"],
        ),
        post(
            "seed 003 another project",
            "/api/v1/events",
            json!([{"userId": "u", "eventName": "x"}, {"userId": "u", "eventName": "x", "projectId": "other.org"}]),
            403,
            &["[1].projectId"],
        ),
        // Seed 001, on both of its paths.
        post(
            "seed 001 missing type",
            "/api/v1/events",
            json!({"id": "1", "data": {}, "timestamp": hour_ago, "source": "s"}),
            400,
            &["type"],
        ),
        post(
            "seed 001 batch malformed",
            "/api/v1/events/batch",
            malformed,
            400,
            &["body"],
        ),
        post(
            "seed 001 batch not a list",
            "/api/v1/events/batch",
            json!({"events": 3}),
            400,
            &["events"],
        ),
        post(
            "seed 001 batch empty",
            "/api/v1/events/batch",
            json!({"events": []}),
            400,
            &["body"],
        ),
        post(
            "seed 001 wrong types",
            "/api/v1/events/batch",
            json!({"events": [{"id": [], "type": {}, "data": 3, "timestamp": true, "source": []}]}),
            400,
            &[
                "events[0].id",
                "events[0].type",
                "events[0].data",
                "events[0].timestamp",
                "events[0].source",
            ],
        ),
        post(
            "seed 001 bad url",
            "/api/v1/events/batch",
            json!({"events": [{"id": "1", "type": "t", "source": "s", "timestamp": hour_ago, "data": {"url": "ftp://x/"}}]}),
            400,
            &["events[0].data.url"],
        ),
        post(
            "seed 001 another site",
            "/api/v1/events/batch",
            json!({"events": [{"id": "1", "type": "t", "source": "s", "timestamp": hour_ago, "site_id": "other.org"}]}),
            403,
            &["events[0].site_id"],
        ),
        // Seed 000 (public, by domain), on both of its paths.
        post("seed 000 malformed", "/events", malformed, 400, &["body"]),
        post(
            "seed 000 wrong types",
            "/v1/intake",
            json!({"event_type": [], "domain": "example.com", "page_url": {}, "metadata": 3, "timestamp": true}),
            400,
            &["event_type", "page_url", "metadata", "timestamp"],
        ),
        post(
            "seed 000 missing",
            "/events",
            json!({"page_url": "/"}),
            400,
            &["event_type", "domain"],
        ),
        post(
            "seed 000 bad url",
            "/v1/intake",
            json!({"event_type": "pageview", "domain": "example.com", "page_url": "ftp://x/"}),
            400,
            &["page_url"],
        ),
        post(
            "seed 000 unknown domain",
            "/events",
            json!({"event_type": "pageview", "domain": "ghost.io"}),
            404,
            &["domain"],
        ),
        // Reads of seed 000.
        get(
            "seed 000 unknown site",
            "/analytics/metrics?siteId=ghost.io",
            404,
            &["siteId"],
        ),
        get(
            "seed 000 another site",
            "/analytics/metrics?siteId=other.org",
            403,
            &["siteId"],
        ),
        get(
            "seed 000 bad dates",
            "/analytics/metrics?startDate=soon&endDate=later",
            400,
            &["startDate", "endDate"],
        ),
        get(
            "seed 000 bad dimensions",
            "/analytics/metrics?dimensions=mood&dimensions=page,weather",
            400,
            &["dimensions"],
        ),
        // Reads of seed 001.
        get(
            "seed 001 limit",
            "/api/v1/events?limit=abc",
            400,
            &["limit"],
        ),
        get(
            "seed 001 several",
            "/api/v1/events?limit=0&cursor=zz&startTime=never&endTime=nope",
            400,
            &["limit", "cursor", "startTime", "endTime"],
        ),
        get("seed 001 from", "/api/v1/events?from=never", 400, &["from"]),
        get(
            "seed 001 unknown site",
            "/api/v1/events?siteId=ghost.io",
            404,
            &["siteId"],
        ),
        get(
            "seed 001 another site",
            "/api/v1/events?site_id=other.org",
            403,
            &["site_id"],
        ),
        get("seed 001 no event", "/api/v1/events/nope", 404, &["id"]),
        get(
            "seed 001 event of another site",
            "/api/v1/events/nope?site_id=other.org",
            403,
            &["site_id"],
        ),
        get(
            "seed 001 counts dates",
            "/api/v1/events/counts?startTime=x&endDate=y",
            400,
            &["startTime", "endDate"],
        ),
        // Reads of seed 002.
        get(
            "seed 002 missing site, bad date",
            "/api/stats?date=yesterday",
            400,
            &["site_id", "date"],
        ),
        get(
            "seed 002 unknown site",
            "/api/stats?site_id=ghost.io",
            404,
            &["site_id"],
        ),
        get(
            "seed 002 another site",
            "/api/stats?site_id=other.org",
            403,
            &["site_id"],
        ),
        // Reads of seed 003.
        get(
            "seed 003 summary dates",
            "/api/v1/events/summary?startDate=x&endDate=y",
            400,
            &["startDate", "endDate"],
        ),
        get(
            "seed 003 summary end alone",
            "/api/v1/events/summary?endDate=2026-01-01",
            400,
            &["startDate"],
        ),
        get(
            "seed 003 metrics",
            "/api/v1/metrics?interval=yearly&startDate=x",
            400,
            &["interval", "startDate"],
        ),
        get(
            "seed 003 another site",
            "/api/v1/metrics?siteId=other.org",
            403,
            &["siteId"],
        ),
        // Reads of seed 004.
        get(
            "seed 004 range",
            "/analytics/summary?range=forever",
            400,
            &["range"],
        ),
        get(
            "seed 004 period",
            "/analytics/summary?period=forever",
            400,
            &["period"],
        ),
        get(
            "seed 004 limit",
            "/analytics/top-pages?limit=abc",
            400,
            &["limit"],
        ),
        get(
            "seed 004 limit range",
            "/analytics/top-pages?limit=0",
            400,
            &["limit"],
        ),
        get(
            "seed 004 timeseries",
            "/analytics/timeseries?range=1000y",
            400,
            &["range"],
        ),
        get(
            "seed 004 recent",
            "/analytics/recent?limit=-5",
            400,
            &["limit"],
        ),
        get(
            "seed 004 another site",
            "/analytics/recent?siteId=other.org",
            403,
            &["siteId"],
        ),
        // Plausible's Stats API v1 and realtime.
        get(
            "v1 period",
            "/api/v1/stats/aggregate?site_id=example.com&period=forever",
            400,
            &["period"],
        ),
        get(
            "v1 interval",
            "/api/v1/stats/timeseries?site_id=example.com&interval=century",
            400,
            &["interval"],
        ),
        get(
            "v1 property",
            "/api/v1/stats/breakdown?site_id=example.com",
            400,
            &["property"],
        ),
        get(
            "v1 another site",
            "/api/v1/stats/aggregate?site_id=other.org",
            403,
            &["site_id"],
        ),
        get(
            "v1 unknown site",
            "/api/v1/stats/breakdown?site_id=ghost.io&property=event:page",
            404,
            &["site_id"],
        ),
        get(
            "realtime limit",
            "/api/v1/realtime/visitors?limit=abc",
            400,
            &["limit"],
        ),
        get(
            "realtime unknown site",
            "/api/v1/stats/realtime/visitors?siteId=ghost.io",
            404,
            &["siteId"],
        ),
    ];
    // Without a key, the keyed formats and every read are refused first.
    for (path, post_it) in [
        ("/api/events", true),
        ("/api/v1/events", true),
        ("/api/v1/events/batch", true),
        ("/analytics/metrics", false),
        ("/api/v1/events/counts", false),
        ("/api/stats?site_id=example.com", false),
        ("/analytics/summary", false),
        ("/api/v1/stats/aggregate", false),
    ] {
        probes.push(Probe {
            name: "no key",
            post: post_it,
            path: path.to_owned(),
            body: json!({"event_type": "PAGE_VIEW"}).to_string(),
            key: Some(String::new()),
            status: 401,
            fields: vec!["x-api-key"],
        });
    }
    // A key of another site may not send events into this one, nor read it.
    probes.push(Probe {
        key: Some(other_key.clone()),
        ..post(
            "other key, seed 002",
            "/api/event",
            json!({"site_id": "example.com", "event_type": "pageview"}),
            403,
            &["site_id"],
        )
    });
    for probe in &probes {
        let url = server.url(&probe.path);
        let mut request = if probe.post {
            server
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(probe.body.clone())
        } else {
            server.http.get(url)
        };
        request = request.header("user-agent", UA);
        match probe.key.as_deref() {
            None => request = request.header("x-api-key", &key),
            Some("") => {}
            Some(other) => request = request.header("x-api-key", other),
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let what = format!(
            "{} ({} {}): {text}",
            probe.name,
            if probe.post { "POST" } else { "GET" },
            probe.path
        );
        assert_eq!(status, probe.status, "{what}");
        assert!(
            content_type.starts_with("application/json"),
            "{what}: {content_type}"
        );
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}"));
        assert_eq!(body["success"], false, "{what}");
        assert!(!body["error"].as_str().unwrap_or("").is_empty(), "{what}");
        let details = body["details"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}"));
        let mut fields: Vec<&str> = details
            .iter()
            .map(|d| {
                assert!(!d["message"].as_str().unwrap_or("").is_empty(), "{what}");
                d["field"].as_str().unwrap_or_else(|| panic!("{what}"))
            })
            .collect();
        fields.sort_unstable();
        fields.dedup();
        let mut expected = probe.fields.clone();
        expected.sort_unstable();
        assert_eq!(fields, expected, "{what}");
    }
    // A body over the limit, on every ingest path.
    for path in [
        "/api/event",
        "/events",
        "/v1/intake",
        "/api/events",
        "/api/v1/events",
        "/api/v1/events/batch",
    ] {
        let status_line = oversized_request(&server.base, path).await;
        assert!(
            status_line.starts_with("HTTP/1.1 413"),
            "{path}: {status_line}"
        );
    }
    // Still serving: one good event of each format is accepted and stored, and nothing else.
    let goods = [
        (
            "/api/event",
            json!({"n": "pageview", "u": "https://example.com/p", "d": "example.com"}),
            false,
        ),
        (
            "/api/event",
            json!({"site_id": "example.com", "event_type": "pageview", "path": "/s2"}),
            true,
        ),
        (
            "/events",
            json!({"event_type": "pageview", "domain": "example.com", "page_url": "/s0"}),
            false,
        ),
        (
            "/v1/intake",
            json!({"event_type": "pageview", "domain": "example.com", "page_url": "/s0b"}),
            false,
        ),
        (
            "/api/events",
            json!({"site_id": "example.com", "event_type": "PAGE_VIEW", "page_url": "/s4"}),
            true,
        ),
        (
            "/api/v1/events",
            json!({"userId": "u", "eventName": "x", "projectId": "example.com"}),
            true,
        ),
        (
            "/api/v1/events/batch",
            json!({"events": [{"id": "e1", "type": "t", "source": "s", "timestamp": hour_ago}]}),
            true,
        ),
    ];
    for (path, body, keyed) in &goods {
        let mut request = server
            .http
            .post(server.url(path))
            .header("user-agent", UA)
            .header("content-type", "application/json")
            .body(body.to_string());
        if *keyed {
            request = request.header("x-api-key", &key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 202, "{path} {body}");
    }
    server
        .wait_for_events(&key, "example.com", goods.len() as u64)
        .await;
    for path in [
        "/analytics/metrics?dimensions=device&dimensions=page",
        "/api/v1/events?limit=5",
        "/api/stats?site_id=example.com",
        "/api/v1/events/summary",
        "/analytics/top-pages?limit=5",
        "/api/v1/stats/aggregate?site_id=example.com",
    ] {
        let response = server
            .http
            .get(server.url(path))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    server.stop().await;
    let rows = sql(
        dir.path(),
        "SELECT count(*) FROM events WHERE site_id = 'other.org'",
    )
    .await;
    assert_eq!(text(&rows[0][0]), "0");
    let rows = sql(dir.path(), "SELECT count(*) FROM events").await;
    assert_eq!(text(&rows[0][0]), goods.len().to_string());
}
