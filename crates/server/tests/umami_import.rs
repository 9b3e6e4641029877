//! Importing Umami's events: a CSV of Umami's `website_event` table (with its sessions'
//! device columns) goes in through `POST /api/imports/umami` and answers as the same traffic
//! sent live would: Umami's visits are the visits, a visit's first event names its source,
//! custom events are events. The same file again stores nothing twice; a bad line is refused
//! with its number and stores nothing.

mod common;

use common::*;
use serde_json::{json, Value};

const SITE: &str = "umami.example";

const HEADER: &str = "event_id,website_id,session_id,visit_id,created_at,url_path,url_query,utm_source,utm_medium,utm_campaign,utm_content,utm_term,referrer_path,referrer_query,referrer_domain,page_title,gclid,fbclid,msclkid,ttclid,li_fat_id,twclid,event_type,event_name,tag,hostname,browser,os,device,screen,country,region,city";

/// One row of the table.
#[allow(clippy::too_many_arguments)]
fn row(
    id: &str,
    session: &str,
    visit: &str,
    at: &str,
    path: &str,
    referrer: &str,
    kind: &str,
    name: &str,
    device: &str,
) -> String {
    format!("{id},w1,{session},{visit},{at},{path},,,,,,,,,{referrer},,,,,,,,{kind},{name},,{SITE},chrome,Mac OS,{device},1920x1080,EE,,\n")
}

/// Two visitors: one comes from Google, reads two pages and signs up; the other comes
/// directly on a phone, bounces, and comes back the next day. One link event (type 3).
fn export() -> String {
    let mut csv = format!("{HEADER}\n");
    csv += &row(
        "e1",
        "s1",
        "v1",
        "2024-03-01 10:00:00+00",
        "/",
        "www.google.com",
        "1",
        "",
        "desktop",
    );
    csv += &row(
        "e2",
        "s1",
        "v1",
        "2024-03-01 10:01:00+00",
        "/pricing",
        "",
        "1",
        "",
        "desktop",
    );
    csv += &row(
        "e3",
        "s1",
        "v1",
        "2024-03-01 10:02:00+00",
        "/pricing",
        "",
        "2",
        "signup",
        "desktop",
    );
    csv += &row(
        "e4",
        "s2",
        "v2",
        "2024-03-01 11:00:00+00",
        "/blog",
        "",
        "1",
        "",
        "mobile",
    );
    csv += &row(
        "e5",
        "s2",
        "v3",
        "2024-03-02 09:00:00+00",
        "/blog",
        "",
        "1",
        "",
        "mobile",
    );
    csv += &row(
        "e6",
        "s2",
        "v3",
        "2024-03-02 09:00:05+00",
        "/x",
        "",
        "3",
        "link",
        "mobile",
    );
    csv
}

async fn upload(server: &TestServer, csv: String) -> (u16, Value) {
    let response = server
        .http
        .post(server.url(&format!("/api/imports/umami?site_id={SITE}")))
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn umami_events_answer_as_live_traffic_would() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "Etc/UTC").await;

    // A bad line first: refused with its number, nothing stored.
    let mut bad = export();
    bad += &row("e7", "s3", "v4", "not-a-time", "/", "", "1", "", "desktop");
    let (status, body) = upload(&server, bad).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["details"][0]["field"], "website_event.csv", "{body}");
    assert!(
        body["details"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 8: created_at"),
        "{body}"
    );

    let (status, body) = upload(&server, export()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["events"].clone(), body["imported"].clone()),
        (json!(5), json!(5))
    );
    let range = json!(["2024-03-01", "2024-03-02"]);
    let totals = server
        .query(
            &key,
            json!({"site_id": SITE, "date_range": range,
                   "metrics": ["visitors", "visits", "pageviews", "events", "bounce_rate"]}),
        )
        .await;
    // Visits: v1 (3 events, not a bounce), v2 and v3 (one page view each, bounces).
    assert_eq!(
        totals["results"][0]["metrics"],
        json!([2, 3, 4, 5, 67]),
        "{totals}"
    );
    let sources = server
        .query(
            &key,
            json!({"site_id": SITE, "date_range": range, "metrics": ["visits", "events"],
                   "dimensions": ["visit:source"]}),
        )
        .await;
    assert_eq!(
        sources["results"],
        json!([
            {"dimensions": ["Direct / None"], "metrics": [2, 2]},
            {"dimensions": ["Google"], "metrics": [1, 3]},
        ]),
        "{sources}"
    );
    let devices = server
        .query(
            &key,
            json!({"site_id": SITE, "date_range": range, "metrics": ["visitors"],
                   "dimensions": ["visit:device"]}),
        )
        .await;
    assert_eq!(
        devices["results"],
        json!([
            {"dimensions": ["Desktop"], "metrics": [1]},
            {"dimensions": ["Mobile"], "metrics": [1]},
        ]),
        "{devices}"
    );

    // The same file again: every event is known.
    let (status, body) = upload(&server, export()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["imported"].clone(), body["skipped"].clone()),
        (json!(0), json!(5))
    );
    server.stop().await;
}
