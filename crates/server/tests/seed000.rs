//! The original Heartbeat (seed 000): the requests of its `api/api.http` and what its
//! tracker (`client/heartbeat.js`) sends, posted from a browser origin to `POST /v1/intake`,
//! land as the pages, referrers, properties and visits they describe.

mod common;

use common::*;
use serde_json::{json, Value};

const SITE: &str = "example.com";
const VISITOR: &str = "123e4567-e89b-12d3-a456-426614174000";
const SESSION: &str = "987fcdeb-51a2-43d7-9876-543210987000";

/// `api.http`'s four requests: a page view from Google, then a click, a form and a scroll,
/// all in one session.
fn api_http() -> Vec<Value> {
    vec![
        json!({"event_type": "pageview", "domain": SITE, "page_url": "https://example.com/home",
            "referrer_url": "https://google.com", "visitor_id": VISITOR, "session_id": SESSION,
            "screen_size": "1920x1080", "metadata": {"language": "pt-BR", "theme": "dark"}}),
        json!({"event_type": "click", "domain": SITE, "page_url": "https://example.com/products",
            "visitor_id": VISITOR, "session_id": SESSION,
            "metadata": {"element_id": "buy-button", "element_text": "Comprar agora"}}),
        json!({"event_type": "form_submit", "domain": SITE, "page_url": "https://example.com/contact",
            "visitor_id": VISITOR, "session_id": SESSION,
            "metadata": {"form_id": "contact-form", "form_fields": ["name", "email", "message"]}}),
        json!({"event_type": "scroll", "domain": SITE, "page_url": "https://example.com/blog/post-1",
            "visitor_id": VISITOR, "session_id": SESSION,
            "metadata": {"scroll_depth": 75, "scroll_direction": "down"}}),
    ]
}

async fn intake(server: &TestServer, body: &Value) {
    let response = server
        .http
        .post(server.url("/v1/intake"))
        .header("origin", "https://example.com")
        // A browser's, as the tracker's requests carry (a request without one is a bot's).
        .header("user-agent", UA)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{body}");
    // Callable from the site's pages, as the original tracker is.
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_trackers_requests_land_as_they_describe() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "UTC").await;

    // The browser's preflight for the tracker's JSON POST.
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/v1/intake"))
        .header("origin", "https://example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert!(preflight
        .headers()
        .get("access-control-allow-methods")
        .is_some_and(|v| v.to_str().unwrap().contains("POST")));

    for body in api_http() {
        intake(&server, &body).await;
    }
    // The tracker's own page view: no timestamp, the browser's language; then the same
    // visitor in a new browser session (a new `session_id`) a moment later.
    intake(
        &server,
        &json!({"event_type": "pageview", "visitor_id": VISITOR, "session_id": SESSION,
            "domain": SITE, "page_url": "https://example.com/home#pricing",
            "referrer_url": null, "browserLanguage": "en-US", "metadata": {"hash": "#pricing"}}),
    )
    .await;
    intake(
        &server,
        &json!({"event_type": "pageview", "visitor_id": VISITOR, "session_id": "another-session",
            "domain": SITE, "page_url": "https://example.com/home", "referrer_url": null,
            "browserLanguage": "en-US"}),
    )
    .await;
    server.wait_for_events(&key, SITE, 6).await;

    let rows = |body: &Value| -> Vec<(Vec<String>, Vec<f64>)> { result_rows(body) };
    let query = |extra: Value| {
        let mut body = json!({"site_id": SITE, "date_range": "day"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let top = server
        .query(
            &key,
            query(json!({"metrics": ["visitors", "visits", "pageviews", "events"]})),
        )
        .await;
    // One visitor, two visits (the second session), three page views of six events.
    assert_eq!(rows(&top)[0].1, vec![1.0, 2.0, 3.0, 6.0], "{top}");

    let sorted = |body: &Value| {
        let mut rows: Vec<(String, f64)> = rows(body)
            .into_iter()
            .map(|(d, m)| (d[0].clone(), m[0]))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    };
    let pair = |name: &str, n: f64| (name.to_owned(), n);
    let names = server
        .query(
            &key,
            query(json!({"metrics": ["events"], "dimensions": ["event:name"]})),
        )
        .await;
    assert_eq!(
        sorted(&names),
        vec![
            pair("click", 1.0),
            pair("form_submit", 1.0),
            pair("pageview", 3.0),
            pair("scroll", 1.0)
        ],
        "{names}"
    );
    // The pages the custom events happened on, and the page viewed.
    let pages = server
        .query(
            &key,
            query(json!({"metrics": ["events"], "dimensions": ["event:page"],
                "filters": [["is_not", "event:name", ["pageview"]]]})),
        )
        .await;
    assert_eq!(
        sorted(&pages),
        vec![
            pair("/blog/post-1", 1.0),
            pair("/contact", 1.0),
            pair("/products", 1.0)
        ],
        "{pages}"
    );
    let viewed = server
        .query(
            &key,
            query(json!({"metrics": ["pageviews"], "dimensions": ["event:page"]})),
        )
        .await;
    assert_eq!(sorted(&viewed), vec![pair("/home", 3.0)], "{viewed}");

    // The first visit came from Google; the second is direct.
    let sources = server
        .query(
            &key,
            query(json!({"metrics": ["visits"], "dimensions": ["visit:source"]})),
        )
        .await;
    let mut sources = rows(&sources);
    sources.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sources,
        vec![
            (vec!["Direct / None".to_owned()], vec![1.0]),
            (vec!["Google".to_owned()], vec![1.0])
        ]
    );

    // `metadata` and the browser's language are the events' properties.
    for (prop, value, events) in [
        ("element_id", "buy-button", 1.0),
        ("form_fields", r#"["name","email","message"]"#, 1.0),
        ("scroll_depth", "75", 1.0),
        ("language", "pt-BR", 1.0),
        ("language", "en-US", 2.0),
    ] {
        let body = server
            .query(
                &key,
                query(json!({"metrics": ["events"],
                    "filters": [["is", format!("event:props:{prop}"), [value]]]})),
            )
            .await;
        assert_eq!(rows(&body)[0].1, vec![events], "{prop}={value}: {body}");
    }

    // The original's metrics API: its parameters, its shape, Heartbeat's numbers.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let read = |path: String| {
        let (http, url, key) = (server.http.clone(), server.url(&path), key.clone());
        async move {
            let response = http.get(url).header("x-api-key", key).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, metrics) = read(format!(
        "/analytics/metrics?siteId={SITE}&startDate={today}&endDate={today}&dimensions=device,location,page"
    ))
    .await;
    assert_eq!(status, 200, "{metrics}");
    assert!(metrics["timeRange"]["start"]
        .as_str()
        .unwrap()
        .starts_with(&today));
    let day = &metrics["metrics"].as_array().unwrap()[..];
    assert_eq!(day.len(), 1, "{metrics}");
    assert!(day[0]["timestamp"].as_str().unwrap().starts_with(&today));
    assert_eq!(
        day[0]["metrics"],
        json!({"pageviews": 3, "uniqueVisitors": 1, "totalSessions": 2,
            "bounceRate": day[0]["metrics"]["bounceRate"],
            "avgSessionDuration": day[0]["metrics"]["avgSessionDuration"]})
    );
    let segments = &day[0]["segments"];
    assert_eq!(segments["page"]["/home"]["pageviews"], 3, "{segments}");
    assert_eq!(segments["page"]["/home"]["uniqueVisitors"], 1);
    for device in ["mobile", "tablet", "desktop"] {
        assert!(segments["device"][device].is_object(), "{segments}");
    }
    assert!(segments["location"].is_object());
    assert_eq!(metrics["aggregated"]["pageviews"], 3);
    assert_eq!(metrics["aggregated"]["totalSessions"], 2);
    // The original also takes the key repeated: the same answer.
    let (status, repeated) = read(format!(
        "/analytics/metrics?siteId={SITE}&startDate={today}&endDate={today}&dimensions=device&dimensions=location&dimensions=page"
    ))
    .await;
    assert_eq!(status, 200, "{repeated}");
    assert_eq!(repeated["metrics"], metrics["metrics"]);
    let (status, one) = read(format!(
        "/analytics/metrics?siteId={SITE}&startDate={today}&endDate={today}&dimensions=page"
    ))
    .await;
    assert_eq!(status, 200, "{one}");
    let segments = one["metrics"][0]["segments"].as_object().unwrap();
    assert_eq!(segments.keys().collect::<Vec<_>>(), ["page"], "{one}");
    let (status, refused) = read(format!(
        "/analytics/metrics?siteId={SITE}&dimensions=device&dimensions=mood&dimensions=weather"
    ))
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["details"].as_array().unwrap().len(), 2, "{refused}");
    let (status, refused) = read(format!("/analytics/metrics?siteId={SITE}&dimensions=mood")).await;
    assert_eq!(
        (status, refused["details"][0]["field"].as_str()),
        (400, Some("dimensions")),
        "{refused}"
    );
    server.stop().await;
}
