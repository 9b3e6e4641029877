//! Enrichment end to end: user agents, bots, GeoIP, referrer sources and channels, per-site
//! rules and forwarded client data, each checked through the query API's dimensions.

mod common;

use common::*;
use serde_json::{json, Value};

const SITE: &str = "shop.example";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const HEADLESS: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.33 Safari/537.36";

/// One Plausible-format pageview; returns the status and the dropped header.
async fn send(
    server: &TestServer,
    user_agent: Option<&str>,
    forwarded_for: Option<&str>,
    url: &str,
    referrer: Option<&str>,
    extra_headers: &[(&str, &str)],
) -> (u16, Option<String>) {
    let mut body = json!({"n": "pageview", "u": url, "d": SITE});
    if let Some(referrer) = referrer {
        body["r"] = referrer.into();
    }
    let mut request = server
        .http
        .post(server.url("/api/event"))
        .header("content-type", "text/plain")
        .body(body.to_string());
    if let Some(ua) = user_agent {
        request = request.header("user-agent", ua);
    }
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let dropped = response
        .headers()
        .get("x-heartbeat-dropped")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), dropped)
}

async fn breakdown(server: &TestServer, key: &str, dimension: &str) -> Vec<(String, u64)> {
    let body = server
        .query(
            key,
            json!({"site_id": SITE, "metrics": ["pageviews"], "date_range": "all",
                   "dimensions": [dimension], "order_by": [[dimension, "asc"]]}),
        )
        .await;
    rows(&body)
}

fn rows(body: &Value) -> Vec<(String, u64)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["dimensions"][0].as_str().unwrap().to_owned(),
                r["metrics"][0].as_u64().unwrap(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn visits_are_enriched_and_every_field_is_a_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), |c| c.geoip.database = geoip_test_db()).await;
    let key = server.create_site(SITE, "UTC").await;
    let page = "https://shop.example/";
    // London on desktop Chrome from Google; Milton (US) on an iPhone from Facebook with a
    // paid campaign; Linköping from a newsletter.
    let sent = [
        send(
            &server,
            Some(UA),
            Some("81.2.69.142"),
            page,
            Some("https://www.google.com/"),
            &[],
        )
        .await,
        send(
            &server,
            Some(IPHONE),
            Some("216.160.83.56"),
            "https://shop.example/sale?utm_source=fb&utm_medium=paid_social",
            Some("https://l.facebook.com/"),
            &[],
        )
        .await,
        send(
            &server,
            Some(UA),
            Some("89.160.20.112"),
            "https://shop.example/?utm_source=newsletter&utm_medium=email",
            None,
            &[],
        )
        .await,
    ];
    assert!(sent.iter().all(|s| *s == (202, None)), "{sent:?}");
    server.wait_for_events(&key, SITE, 3).await;

    let expectations: [(&str, &[(&str, u64)]); 8] = [
        ("visit:country", &[("GB", 1), ("SE", 1), ("US", 1)]),
        ("visit:region", &[("GB-ENG", 1), ("SE-E", 1), ("US-WA", 1)]),
        (
            "visit:city",
            &[("Linköping", 1), ("London", 1), ("Milton", 1)],
        ),
        ("visit:browser", &[("Chrome", 2), ("Safari", 1)]),
        ("visit:os", &[("Linux", 2), ("iOS", 1)]),
        ("visit:device", &[("Desktop", 2), ("Mobile", 1)]),
        (
            "visit:source",
            &[("Facebook", 1), ("Google", 1), ("newsletter", 1)],
        ),
        (
            "visit:channel",
            &[("Email", 1), ("Organic Search", 1), ("Paid Social", 1)],
        ),
    ];
    for (dimension, expected) in expectations {
        assert_eq!(
            breakdown(&server, &key, dimension).await,
            pairs(expected),
            "{dimension}"
        );
    }
    // Enriched fields filter too.
    let filtered = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": ["visitors"], "date_range": "all",
                   "filters": [["is", "visit:device", ["Mobile"]], ["is", "visit:os_version", ["17.6"]]]}),
        )
        .await;
    assert_eq!(filtered["results"][0]["metrics"][0], 1);
    server.stop().await;
}

#[tokio::test]
async fn bots_are_answered_202_dropped_and_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "UTC").await;
    let page = "https://shop.example/";
    assert_eq!(
        send(&server, Some(GOOGLEBOT), None, page, None, &[]).await,
        (202, Some("bot".into()))
    );
    assert_eq!(
        send(&server, Some("curl/8.5.0"), None, page, None, &[]).await,
        (202, Some("bot".into()))
    );
    assert_eq!(
        send(&server, Some(HEADLESS), None, page, None, &[]).await,
        (202, Some("headless_browser".into()))
    );
    assert_eq!(
        send(&server, None, None, page, None, &[]).await,
        (202, Some("missing_user_agent".into()))
    );
    assert_eq!(
        send(
            &server,
            Some(UA),
            None,
            page,
            Some("http://semalt.com/"),
            &[]
        )
        .await,
        (202, Some("spam_referrer".into()))
    );
    // A backend's own HTTP client is not the visitor: keyed events sent with curl's user
    // agent are stored, and its user agent describes no device.
    let response = server
        .http
        .post(server.url("/api/v1/events"))
        .header("x-api-key", &key)
        .header("user-agent", "curl/8.5.0")
        .json(&json!({"userId": "u1", "eventName": "page_view", "properties": {"pageUrl": "/"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("x-heartbeat-dropped").is_none());
    // ...but a visitor's user agent forwarded in the payload is checked.
    let response = server
        .http
        .post(server.url("/api/v1/events"))
        .header("x-api-key", &key)
        .json(&json!([
            {"userId": "u2", "eventName": "page_view", "userAgent": GOOGLEBOT},
            {"userId": "u3", "eventName": "page_view", "userAgent": IPHONE, "ipAddress": "81.2.69.142"}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["accepted"].as_u64(), body["dropped"].as_u64()),
        (Some(1), Some(1))
    );
    server.wait_for_events(&key, SITE, 2).await;
    assert_eq!(
        breakdown(&server, &key, "visit:device").await,
        // An unknown device is named as Plausible names it.
        pairs(&[("(not set)", 1), ("Mobile", 1)])
    );
    server.stop().await;
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), |c| {
        c.geoip.database = geoip_test_db();
        c.server.trusted_proxies.clear();
    })
    .await;
    let key = server.create_site(SITE, "UTC").await;
    // The peer (127.0.0.1) is not a trusted proxy: X-Forwarded-For is ignored, so the
    // visit is located by the socket address (loopback: unknown), not in London.
    let sent = send(
        &server,
        Some(UA),
        Some("81.2.69.142"),
        "https://shop.example/",
        None,
        &[],
    )
    .await;
    assert_eq!(sent, (202, None));
    server.wait_for_events(&key, SITE, 1).await;
    assert_eq!(
        breakdown(&server, &key, "visit:country").await,
        pairs(&[("", 1)])
    );
    server.stop().await;
}

#[tokio::test]
async fn site_rules_drop_what_they_exclude() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "UTC").await;
    let put = |body: Value, auth: String| {
        let request = server
            .http
            .put(server.url(&format!("/api/sites/{SITE}/rules")))
            .bearer_auth(auth)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    // Invalid rules name the bad entry; a site key may not change rules.
    let (status, body) = put(
        json!({"excluded_ips": ["10.0.0.0/8", "nope"]}),
        ADMIN.into(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["details"][0]["field"], "body.excluded_ips[1]");
    let (status, _) = put(json!({"wat": true}), ADMIN.into()).await;
    assert_eq!(status, 400);
    let (status, _) = put(json!({}), key.clone()).await;
    assert_eq!(status, 403);
    let rules = json!({
        "allowed_hostnames": ["shop.example", "*.shop.example"],
        "excluded_paths": ["/admin/**"],
        "excluded_ips": ["203.0.113.0/24"],
        "respect_do_not_track": true
    });
    let (status, body) = put(rules.clone(), ADMIN.into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["site"]["rules"], rules);

    let dropped = |reason: &str| (202, Some(reason.to_owned()));
    assert_eq!(
        send(
            &server,
            Some(UA),
            None,
            "https://shop.example/admin/users",
            None,
            &[]
        )
        .await,
        dropped("excluded_path")
    );
    assert_eq!(
        send(
            &server,
            Some(UA),
            None,
            "https://shop.example.evil.com/",
            None,
            &[]
        )
        .await,
        dropped("hostname_not_allowed")
    );
    assert_eq!(
        send(
            &server,
            Some(UA),
            Some("203.0.113.9"),
            "https://shop.example/",
            None,
            &[]
        )
        .await,
        dropped("excluded_ip")
    );
    assert_eq!(
        send(
            &server,
            Some(UA),
            None,
            "https://shop.example/",
            None,
            &[("sec-gpc", "1")]
        )
        .await,
        dropped("do_not_track")
    );
    assert_eq!(
        send(
            &server,
            Some(UA),
            None,
            "https://docs.shop.example/admin",
            None,
            &[]
        )
        .await,
        (202, None)
    );
    server.wait_for_events(&key, SITE, 1).await;
    server.stop().await;

    // The rules survive a restart.
    let server = serve(dir.path()).await;
    let response = server
        .http
        .get(server.url(&format!("/api/sites/{SITE}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["site"]["rules"], rules);
    assert_eq!(
        send(
            &server,
            Some(UA),
            None,
            "https://shop.example/admin/x",
            None,
            &[]
        )
        .await,
        dropped("excluded_path")
    );
    server.stop().await;
}

/// Countries out of the box: without `--geoip-db`, the country database the web build
/// bundles (`scripts/web-build` before the cargo build, as `scripts/test` runs it) locates
/// visitors by country.
#[tokio::test]
async fn countries_come_out_of_the_box() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "UTC").await;
    // Google's public resolver is in the United States in every registry.
    let sent = send(
        &server,
        Some(UA),
        Some("8.8.8.8"),
        "https://shop.example/",
        None,
        &[],
    )
    .await;
    assert_eq!(sent, (202, None));
    server.wait_for_events(&key, SITE, 1).await;
    assert_eq!(
        breakdown(&server, &key, "visit:country").await,
        pairs(&[("US", 1)]),
        "no country: was the server built after scripts/web-build (which brings the database)?"
    );
    server.stop().await;
}
