//! Visits, bounce rate and duration follow product.md's definitions on hand-made visitor
//! timelines, in UTC and in a site time zone.

mod common;

use common::*;
use serde_json::{json, Value};

/// (user, UTC time, event name, page)
const TIMELINE: [(&str, &str, &str, &str); 9] = [
    // A: a three-page visit, then 40 minutes later a one-page visit (a bounce).
    ("A", "2026-03-10T10:00:00Z", "pageview", "/"),
    ("A", "2026-03-10T10:05:00Z", "pageview", "/pricing"),
    ("A", "2026-03-10T10:20:00Z", "pageview", "/docs"),
    ("A", "2026-03-10T11:00:00Z", "pageview", "/blog"),
    // B: one page and an interactive custom event: not a bounce.
    ("B", "2026-03-10T12:00:00Z", "pageview", "/"),
    ("B", "2026-03-10T12:01:00Z", "signup", "/"),
    // C: a visit crossing midnight UTC.
    ("C", "2026-03-10T23:50:00Z", "pageview", "/pricing"),
    ("C", "2026-03-11T00:10:00Z", "pageview", "/"),
    // D: a bounce on the next day.
    ("D", "2026-03-11T09:00:00Z", "pageview", "/"),
];

async fn load_timeline(server: &TestServer, key: &str) {
    let batch: Vec<Value> = TIMELINE
        .iter()
        .map(|(user, at, name, page)| json!({"userId": user, "eventName": name, "timestamp": at, "properties": {"pageUrl": page}}))
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
}

fn check(body: &Value, expected: &[(&[&str], &[f64])]) {
    let got = result_rows(body);
    let expected: Vec<(Vec<String>, Vec<f64>)> = expected
        .iter()
        .map(|(d, m)| (d.iter().map(|s| s.to_string()).collect(), m.to_vec()))
        .collect();
    assert_eq!(got, expected, "{body}");
}

const ALL: [&str; 7] = ALL_METRICS;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visit_metrics_follow_the_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    let ny_key = server
        .create_site("ny.example.com", "America/New_York")
        .await;
    load_timeline(&server, &key).await;
    load_timeline(&server, &ny_key).await;
    server.wait_for_events(&key, "example.com", 9).await;
    server.wait_for_events(&ny_key, "ny.example.com", 9).await;
    let range = json!(["2026-03-10", "2026-03-11"]);

    let top = server
        .query(
            &key,
            json!({"site_id": "example.com", "metrics": ALL, "date_range": range}),
        )
        .await;
    // 4 visitors, 5 visits (A twice), 8 page views, 9 events, 2 bounces of 5 visits,
    // durations 1200 + 0 + 60 + 1200 + 0 over 5 visits, 8 / 5 views per visit.
    check(&top, &[(&[], &[4.0, 5.0, 8.0, 9.0, 40.0, 492.0, 1.6])]);

    let by_day = server
        .query(&key, json!({"site_id": "example.com", "metrics": ALL, "date_range": range, "dimensions": ["time:day"]}))
        .await;
    // Visits count on the day they start: C's midnight-crossing visit belongs to the 10th.
    check(
        &by_day,
        &[
            (&["2026-03-10"], &[3.0, 4.0, 6.0, 7.0, 25.0, 615.0, 1.75]),
            (&["2026-03-11"], &[2.0, 1.0, 2.0, 2.0, 100.0, 0.0, 1.0]),
        ],
    );

    let ny_by_day = server
        .query(&ny_key, json!({"site_id": "ny.example.com", "metrics": ["visitors", "pageviews", "visits"], "date_range": range, "dimensions": ["time:day"]}))
        .await;
    // New York is UTC-4 in March 2026: C's visit is all on the evening of the 10th there.
    check(
        &ny_by_day,
        &[
            (&["2026-03-10"], &[3.0, 7.0, 4.0]),
            (&["2026-03-11"], &[1.0, 1.0, 1.0]),
        ],
    );

    let pages = server
        .query(&key, json!({"site_id": "example.com", "metrics": ["visitors", "pageviews", "bounce_rate"], "date_range": range, "dimensions": ["event:page"]}))
        .await;
    // Bounce rate by page is that of visits entering on it: "/" entered by A1, B, D (D bounced).
    check(
        &pages,
        &[
            (&["/"], &[4.0, 4.0, 33.0]),
            (&["/pricing"], &[2.0, 2.0, 0.0]),
            (&["/blog"], &[1.0, 1.0, 100.0]),
            (&["/docs"], &[1.0, 1.0, 0.0]),
        ],
    );

    let entry = server
        .query(&key, json!({"site_id": "example.com", "metrics": ["visits", "bounce_rate"], "date_range": range, "dimensions": ["visit:entry_page"], "order_by": [["visits", "desc"]]}))
        .await;
    check(
        &entry,
        &[
            (&["/"], &[3.0, 33.0]),
            (&["/blog"], &[1.0, 100.0]),
            (&["/pricing"], &[1.0, 0.0]),
        ],
    );

    // A page filter keeps the visits that viewed the page; an entry-page filter those that
    // started there.
    let viewed_pricing = server
        .query(&key, json!({"site_id": "example.com", "metrics": ["visitors", "visits"], "date_range": range, "filters": [["is", "event:page", ["/pricing"]]]}))
        .await;
    check(&viewed_pricing, &[(&[], &[2.0, 2.0])]);
    let exits = server
        .query(&key, json!({"site_id": "example.com", "metrics": ["visits"], "date_range": range, "dimensions": ["visit:exit_page"]}))
        .await;
    check(
        &exits,
        &[(&["/"], &[3.0]), (&["/blog"], &[1.0]), (&["/docs"], &[1.0])],
    );

    // Time on page: A spends 300 s on "/" and 900 s on /pricing, C 1200 s on /pricing
    // (its next page view is after midnight, same visit); exits are not timed.
    let time_on_page = server
        .query(
            &key,
            json!({"site_id": "example.com", "metrics": ["time_on_page"], "date_range": range}),
        )
        .await;
    check(&time_on_page, &[(&[], &[800.0])]);
    let time_by_page = server
        .query(&key, json!({"site_id": "example.com", "metrics": ["time_on_page", "percentage"], "date_range": range,
            "dimensions": ["event:page"], "order_by": [["event:page", "asc"]]}))
        .await;
    // Percentage: each page's visitors of the 4 visitors. Pages only ever exited from have
    // no time on page (null, as Plausible answers).
    assert_eq!(
        time_by_page["results"],
        json!([
            {"dimensions": ["/"], "metrics": [300, 100.0]},
            {"dimensions": ["/blog"], "metrics": [null, 25.0]},
            {"dimensions": ["/docs"], "metrics": [null, 25.0]},
            {"dimensions": ["/pricing"], "metrics": [1050, 50.0]},
        ]),
        "{time_by_page}"
    );

    // The same in New York (UTC-4): every event of the timeline falls within the 10th and
    // 11th there too, so time on page and percentages are the same; an entry-page filter
    // keeps only C's visit (it entered on /pricing), a page filter also A's.
    let ny_time = server
        .query(
            &ny_key,
            json!({"site_id": "ny.example.com", "metrics": ["time_on_page"], "date_range": range}),
        )
        .await;
    check(&ny_time, &[(&[], &[800.0])]);
    let ny_pages = server
        .query(&ny_key, json!({"site_id": "ny.example.com", "metrics": ["visitors", "percentage"], "date_range": range,
            "dimensions": ["event:page"], "order_by": [["event:page", "asc"]]}))
        .await;
    check(
        &ny_pages,
        &[
            (&["/"], &[4.0, 100.0]),
            (&["/blog"], &[1.0, 25.0]),
            (&["/docs"], &[1.0, 25.0]),
            (&["/pricing"], &[2.0, 50.0]),
        ],
    );
    let ny_entered_pricing = server
        .query(&ny_key, json!({"site_id": "ny.example.com", "metrics": ["visitors", "visits", "bounce_rate"], "date_range": range,
            "filters": [["is", "visit:entry_page", ["/pricing"]]]}))
        .await;
    check(&ny_entered_pricing, &[(&[], &[1.0, 1.0, 0.0])]);
    let ny_viewed_pricing = server
        .query(&ny_key, json!({"site_id": "ny.example.com", "metrics": ["visitors", "visits"], "date_range": range,
            "filters": [["is", "event:page", ["/pricing"]]]}))
        .await;
    check(&ny_viewed_pricing, &[(&[], &[2.0, 2.0])]);

    // The 11th compared with the 10th: 2 visitors after 3, 2 page views after 6.
    let compared = server
        .query(&key, json!({"site_id": "example.com", "metrics": ["visitors", "pageviews", "bounce_rate"],
            "date_range": ["2026-03-11", "2026-03-11"], "include": {"comparisons": {"mode": "previous_period"}}}))
        .await;
    let comparison = &compared["results"][0]["comparison"];
    assert_eq!(comparison["metrics"], json!([3, 6, 25]), "{compared}");
    assert_eq!(comparison["change"], json!([-33, -67, 75.0]), "{compared}");
    assert_eq!(
        compared["meta"]["comparison_date_range"],
        json!(["2026-03-10T00:00:00+00:00", "2026-03-10T23:59:59.999+00:00"])
    );
    // A time series with every bucket labelled and each day compared with the same
    // position of the previous period (the 8th and 9th: nothing, so +100 %).
    let series = server
        .query(&key, json!({"site_id": "example.com", "metrics": ["visitors"], "date_range": ["2026-03-10", "2026-03-12"],
            "dimensions": ["time:day"], "include": {"time_labels": true, "comparisons": {"mode": "previous_period"}}}))
        .await;
    assert_eq!(
        series["meta"]["time_labels"],
        json!(["2026-03-10", "2026-03-11", "2026-03-12"])
    );
    assert_eq!(
        series["results"][0]["comparison"]["dimensions"],
        json!(["2026-03-07"])
    );
    assert_eq!(
        series["results"][1]["comparison"]["dimensions"],
        json!(["2026-03-08"])
    );
    assert_eq!(series["results"][0]["comparison"]["change"], json!([100]));

    // Seed 002's daily stats on the same engine.
    let stats: Value = server
        .http
        .get(server.url("/api/stats?site_id=example.com&date=2026-03-10"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["success"], true);
    assert_eq!(stats["data"]["total_views"], 6);
    assert_eq!(stats["data"]["unique_users_count"], 3);
    assert_eq!(
        stats["data"]["top_paths"],
        json!([{"path": "/", "views": 2}, {"path": "/pricing", "views": 2}, {"path": "/blog", "views": 1}, {"path": "/docs", "views": 1}])
    );
    server.stop().await;
}
