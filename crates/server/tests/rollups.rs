//! Unfiltered queries over whole hours, and those filtered by one visit attribute, are
//! answered from the hourly rollups; the same queries with one more filter that keeps
//! everything go through SQL over the events. Both must agree exactly, for every count and
//! sum and for visitors (exact while every cell of a row keeps its visitors' ids, as every
//! cell here does; a sketch's estimate beyond). The site is in New York and the days cross
//! the switch to daylight saving time, so local days are 23, 24 and 25 hours of UTC.

mod common;

use common::*;
use serde_json::{json, Value};

const SITE: &str = "rollups.test";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";

/// A deterministic mix: 400 people, one to three visits each over six days, pages, sources,
/// campaigns, devices, countries and a custom event.
fn events() -> Vec<Value> {
    let pages = ["/", "/pricing", "/docs", "/blog/hello", "/signup", "/about"];
    let referrers = [
        None,
        Some("https://www.google.com/"),
        Some("https://news.ycombinator.com/item?id=1"),
        Some("https://t.co/abc"),
    ];
    let agents = [DESKTOP, IPHONE, ANDROID];
    let ips = [
        "81.2.69.142",
        "216.160.83.56",
        "89.160.20.112",
        "2.125.160.216",
    ];
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-05T05:00:00Z").unwrap();
    let mut seed: u64 = 7;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut out = Vec::new();
    for person in 0..400u64 {
        for _ in 0..=next(3) {
            let mut at = start + chrono::Duration::minutes(next(6 * 24 * 60) as i64);
            let referrer = referrers[next(4) as usize];
            let campaign = if next(5) == 0 {
                "?utm_source=newsletter&utm_campaign=march"
            } else {
                ""
            };
            let agent = agents[next(3) as usize];
            let ip = ips[next(4) as usize];
            for view in 0..=next(4) {
                let page = pages[next(6) as usize];
                let mut properties = json!({"pageUrl": format!("https://{SITE}{page}{}", if view == 0 { campaign } else { "" })});
                if view == 0 {
                    if let Some(referrer) = referrer {
                        properties["referrer"] = json!(referrer);
                    }
                }
                out.push(
                    json!({"userId": format!("p{person}"), "eventName": "pageview",
                    "timestamp": at.to_rfc3339(), "userAgent": agent, "ipAddress": ip,
                    "properties": properties}),
                );
                at += chrono::Duration::seconds(30 + next(300) as i64);
            }
            if next(4) == 0 {
                out.push(
                    json!({"userId": format!("p{person}"), "eventName": "signup",
                    "timestamp": at.to_rfc3339(), "userAgent": agent, "ipAddress": ip,
                    "properties": {"pageUrl": format!("https://{SITE}/signup"), "plan": "pro"}}),
                );
            }
        }
    }
    out
}

/// `(dimensions, metrics)` rows of a v2 answer, sorted by dimensions.
fn rows(body: &Value) -> Vec<(Vec<String>, Vec<f64>)> {
    let mut rows = result_rows(body);
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[tokio::test]
async fn rollups_answer_as_the_events_do() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), |c| c.geoip.database = geoip_test_db()).await;
    let key = server.create_site(SITE, "America/New_York").await;
    let events = events();
    for chunk in events.chunks(1000) {
        server.send_batch(&key, chunk).await;
    }
    // Then, for 40 people, a view a minute before their first one: it moves their first
    // visit's start (across an hour for some) and entry page, so the entry- and exit-page
    // cells they were in before must count them no more; for 40 others, a view a minute
    // after their last one, which moves their last visit's exit page.
    let late = late_views(&events, 40);
    server.send_batch(&key, &late).await;
    server
        .wait_for_events(&key, SITE, (events.len() + late.len()) as u64)
        .await;
    // Then the first 40 once more, 30 s after their late view (still before their first
    // one): their visits change again, so the cells of the periods the batch before rewrote
    // are read again. That batch touched more periods than the store keeps in memory (48),
    // so a period it had to read back from the table must not stay cached as it was before
    // that batch.
    let again: Vec<Value> = late[..40]
        .iter()
        .map(|view| {
            let mut view = view.clone();
            let at = chrono::DateTime::parse_from_rfc3339(view["timestamp"].as_str().unwrap())
                .unwrap()
                + chrono::Duration::seconds(30);
            view["timestamp"] = json!(at.to_rfc3339());
            view["properties"]["pageUrl"] = json!(format!("https://{SITE}/again"));
            view
        })
        .collect();
    server.send_batch(&key, &again).await;
    server
        .wait_for_events(&key, SITE, (events.len() + late.len() + again.len()) as u64)
        .await;

    // Views per visit only over time: by anything else Plausible's API refuses it.
    let visit = json!([
        "visitors",
        "visits",
        "pageviews",
        "bounce_rate",
        "visit_duration",
        "percentage"
    ]);
    let event = json!(["visitors", "pageviews", "events", "percentage"]);
    let top = json!([
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "bounce_rate",
        "visit_duration"
    ]);
    let cases: Vec<(Value, Value)> = vec![
        (json!([]), top.clone()),
        (json!(["time:day"]), top.clone()),
        (json!(["time:hour"]), top.clone()),
        (json!(["time:week"]), top.clone()),
        (
            json!(["event:page"]),
            json!(["visitors", "pageviews", "bounce_rate", "visit_duration"]),
        ),
        (json!(["event:name"]), event.clone()),
        (json!(["event:hostname"]), event),
        (json!(["visit:entry_page"]), visit.clone()),
        (json!(["visit:exit_page"]), visit.clone()),
        (json!(["visit:source"]), visit.clone()),
        (json!(["visit:channel"]), visit.clone()),
        (json!(["visit:referrer"]), visit.clone()),
        (json!(["visit:utm_source"]), visit.clone()),
        (json!(["visit:utm_campaign"]), visit.clone()),
        (json!(["visit:country"]), visit.clone()),
        (json!(["visit:city"]), visit.clone()),
        (json!(["visit:browser"]), visit.clone()),
        (json!(["visit:os"]), visit.clone()),
        (json!(["visit:device"]), visit.clone()),
    ];
    for (dimensions, metrics) in cases {
        let query = json!({"site_id": SITE, "date_range": ["2026-03-05", "2026-03-10"],
            "dimensions": dimensions, "metrics": metrics, "pagination": {"limit": 1000}});
        same_as_through_events(&server, &key, query).await;
    }
    // Filtered by one visit attribute, by nothing, by time or by that attribute: the cells of
    // the values the filter keeps.
    let filters = [
        json!(["is", "visit:source", ["Google", "Direct / None"]]),
        json!(["is_not", "visit:browser", ["Chrome"]]),
        json!(["contains", "visit:os", ["IO"], {"case_sensitive": false}]),
        json!(["matches", "visit:utm_campaign", ["^mar"]]),
        json!(["is", "visit:country", ["GB", "SE"]]),
    ];
    for filter in filters {
        let dimension = filter[1].clone();
        for (dimensions, metrics) in [
            (json!([]), &top),
            (json!(["time:day"]), &top),
            (json!(["time:hour"]), &top),
            (json!([dimension]), &visit),
        ] {
            let query = json!({"site_id": SITE, "date_range": ["2026-03-05", "2026-03-10"],
                "dimensions": dimensions, "metrics": metrics, "filters": [filter],
                "pagination": {"limit": 1000}});
            same_as_through_events(&server, &key, query).await;
        }
    }
    let top_pages = json!({"site_id": SITE, "date_range": ["2026-03-05", "2026-03-10"],
        "dimensions": ["event:page"], "metrics": ["visitors", "pageviews", "bounce_rate"]});
    let before = server.query(&key, top_pages.clone()).await;
    let visit_pages = |dimension: &str| {
        json!({"site_id": SITE, "date_range": ["2026-03-05", "2026-03-10"],
            "dimensions": [dimension], "metrics": ["visitors", "visits", "bounce_rate"]})
    };
    // The views before first visits became entry pages, those after last visits exit pages.
    let mut visit_pages_before = Vec::new();
    for (dimension, moved) in [("visit:entry_page", "/late"), ("visit:exit_page", "/more")] {
        let answer = server.query(&key, visit_pages(dimension)).await;
        assert!(
            result_rows(&answer)
                .iter()
                .any(|(page, _)| page[0] == moved),
            "{dimension}: no {moved}"
        );
        visit_pages_before.push((visit_pages(dimension), answer));
    }
    server.stop().await;

    // The answers above came from the rollups: the table holds every hour with events.
    let hours = sql(
        dir.path(),
        "SELECT count(DISTINCT start_ms) FROM rollups_hourly WHERE dim = ''",
    )
    .await;
    let stored = sql(
        dir.path(),
        "SELECT count(DISTINCT date_trunc('hour', ts)) FROM events",
    )
    .await;
    assert_eq!(text(&hours[0][0]), text(&stored[0][0]));

    // A store from before rollups gets them built from its events once it is opened, a day
    // at a time beside the processor; the events answer meanwhile.
    sql(dir.path(), "DELETE FROM rollups_hourly").await;
    sql(dir.path(), "DELETE FROM rollups_daily").await;
    let all_answers = [
        vec![(top_pages.clone(), before.clone())],
        visit_pages_before.clone(),
    ]
    .concat();
    let server = serve_with(dir.path(), |c| c.geoip.database = geoip_test_db()).await;
    same_answers(&server, &key, &all_answers).await;
    wait_for_rollups(&server).await;
    same_answers(&server, &key, &all_answers).await;
    server.stop().await;

    // A store whose cells an earlier version may have written wrong (migration 16, the
    // last one, not applied): every cell is built again from the events.
    let last = sql(dir.path(), "SELECT max(version) FROM schema_version").await;
    assert_eq!(
        text(&last[0][0]),
        "16",
        "a newer migration: undo it here as well"
    );
    let undo_rebuild = "DROP TABLE rollup_rebuild; DELETE FROM schema_version WHERE version = 16;";
    for table in ["rollups_hourly", "rollups_daily"] {
        sql(
            dir.path(),
            &format!("UPDATE {table} SET pageviews = pageviews + 1, visits = visits + 2"),
        )
        .await;
    }
    sql_batch(dir.path(), undo_rebuild);
    let server = serve_with(dir.path(), |c| c.geoip.database = geoip_test_db()).await;
    wait_for_rollups(&server).await;
    same_answers(&server, &key, &all_answers).await;
    server.stop().await;

    // A store from before entry- and exit-page cells counted visitors (their cells hold none,
    // and the migration that counts them is not applied) gets them counted from its visit
    // log when it is opened.
    for table in ["rollups_hourly", "rollups_daily"] {
        sql(
            dir.path(),
            &format!(
                "UPDATE {table} SET visitors = '\\xE1'::BLOB \
                 WHERE dim IN ('visit:entry_page', 'visit:exit_page')"
            ),
        )
        .await;
    }
    sql_batch(
        dir.path(),
        "DROP TABLE rollup_rebuild; DELETE FROM schema_version WHERE version >= 15;",
    );
    let server = serve_with(dir.path(), |c| c.geoip.database = geoip_test_db()).await;
    same_answers(&server, &key, &visit_pages_before).await;
    wait_for_rollups(&server).await;
    same_answers(&server, &key, &visit_pages_before).await;
    server.stop().await;
}

/// Waits until the server's store has built every rollup cell a rebuild asked for.
async fn wait_for_rollups(server: &TestServer) {
    let started = std::time::Instant::now();
    while metric(&server.url("/metrics"), "heartbeat_rollup_rebuild_days").await > 0.0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the rollups were not built"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asks `query` (answered from the rollups) and the same with one more filter, which keeps
/// every event but sends it through SQL over the events, and checks both give the same rows
/// with the same figures.
async fn same_as_through_events(server: &TestServer, key: &str, query: Value) {
    let mut through_events = query.clone();
    let mut filters = through_events["filters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    filters.push(json!(["is_not", "event:hostname", ["no.such.host"]]));
    through_events["filters"] = json!(filters);
    let what = json!([&query["dimensions"], &query["filters"]]);
    let fast = rows(&server.query(key, query.clone()).await);
    let slow = rows(&server.query(key, through_events).await);
    assert!(!slow.is_empty(), "{what}: no rows");
    assert_eq!(
        fast.iter().map(|r| &r.0).collect::<Vec<_>>(),
        slow.iter().map(|r| &r.0).collect::<Vec<_>>(),
        "{what}: the same rows"
    );
    let metrics = query["metrics"].as_array().unwrap();
    for ((dims, got), (_, want)) in fast.iter().zip(&slow) {
        for ((name, got), want) in metrics.iter().zip(got).zip(want) {
            // Visitors too: exact below 65,536 per row, as every row here is.
            assert_eq!(got, want, "{what} {dims:?} {name}");
        }
    }
}

/// Asks `server` each query again and checks it answers the same rows.
async fn same_answers(server: &TestServer, key: &str, answers: &[(Value, Value)]) {
    for (query, answer) in answers {
        assert_eq!(
            rows(&server.query(key, query.clone()).await),
            rows(answer),
            "{query}"
        );
    }
}

/// For the first `n` people of `events`, a view of `/late` one minute before their first
/// event; for the next `n`, a view of `/more` one minute after their last one; from the
/// same browser and address.
fn late_views(events: &[Value], n: usize) -> Vec<Value> {
    // Each person's first and last event.
    let mut people: Vec<(String, &Value, &Value)> = Vec::new();
    for event in events {
        let user = event["userId"].as_str().unwrap().to_owned();
        let at = event["timestamp"].as_str();
        match people.iter_mut().find(|(u, _, _)| *u == user) {
            Some((_, first, last)) => {
                if at < first["timestamp"].as_str() {
                    *first = event;
                }
                if at > last["timestamp"].as_str() {
                    *last = event;
                }
            }
            None => people.push((user, event, event)),
        }
    }
    let view = |user: &str, event: &Value, minutes: i64, page: &str| {
        let at = chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap())
            .unwrap()
            + chrono::Duration::minutes(minutes);
        json!({"userId": user, "eventName": "pageview", "timestamp": at.to_rfc3339(),
            "userAgent": event["userAgent"], "ipAddress": event["ipAddress"],
            "properties": {"pageUrl": format!("https://{SITE}{page}")}})
    };
    let earlier = people
        .iter()
        .take(n)
        .map(|(user, first, _)| view(user, first, -1, "/late"));
    let later = people
        .iter()
        .skip(n)
        .take(n)
        .map(|(user, _, last)| view(user, last, 1, "/more"));
    earlier.chain(later).collect()
}

/// `n` visitors (ids from `first`) viewing `page` once each within the hour from `hour`.
fn crowd(first: u64, n: u64, page: &str, hour: &str) -> Vec<Value> {
    let start = chrono::DateTime::parse_from_rfc3339(hour).unwrap();
    (first..first + n)
        .map(|person| {
            let at = start + chrono::Duration::milliseconds((person * 1_987 % 3_600_000) as i64);
            json!({"userId": format!("c{person}"), "eventName": "pageview",
                "timestamp": at.to_rfc3339(), "userAgent": DESKTOP, "ipAddress": "81.2.69.142",
                "properties": {"pageUrl": format!("https://{SITE}{page}")}})
        })
        .collect()
}

#[tokio::test]
async fn rows_are_exact_while_their_cells_keep_visitor_ids_and_estimated_beyond() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "UTC").await;
    // 1,500 people in one hour on the home page (more than a cell keeps ids of), 300 of
    // them again the next hour on the pricing page, and 250 others that day.
    let mut events = crowd(0, 1_500, "/", "2026-03-05T10:00:00Z");
    events.extend(crowd(1_200, 300, "/pricing", "2026-03-05T11:00:00Z"));
    events.extend(crowd(5_000, 250, "/docs", "2026-03-05T15:00:00Z"));
    for chunk in events.chunks(1000) {
        server.send_batch(&key, chunk).await;
    }
    server
        .wait_for_events(&key, SITE, events.len() as u64)
        .await;
    let query = |dimensions: Value| {
        json!({"site_id": SITE, "date_range": ["2026-03-05", "2026-03-05"],
            "dimensions": dimensions, "metrics": ["visitors", "pageviews"]})
    };
    let within = |got: f64, want: f64| {
        assert!(
            (got - want).abs() <= want * 0.05,
            "{got} is not within the sketch's error of {want}"
        )
    };
    // Rows made of cells that keep their visitors' ids are exact, hundreds of visitors or not.
    let pages = rows(&server.query(&key, query(json!(["event:page"]))).await);
    assert_eq!(pages[1], (vec!["/docs".to_owned()], vec![250.0, 250.0]));
    assert_eq!(pages[2], (vec!["/pricing".to_owned()], vec![300.0, 300.0]));
    let hours = rows(&server.query(&key, query(json!(["time:hour"]))).await);
    assert_eq!((hours[1].1[0], hours[2].1[0]), (300.0, 250.0));
    // A row with the busy hour's cell, which keeps a sketch, is an estimate: about 1.6 % off.
    within(pages[0].1[0], 1_500.0);
    within(hours[0].1[0], 1_500.0);
    let total = rows(&server.query(&key, query(json!([]))).await);
    within(total[0].1[0], 1_750.0);
    assert_eq!(total[0].1[1], 2_050.0, "page views are exact sums");
    server.stop().await;
    // The busy hour's cell holds a sketch (tag E2), the others their visitors' ids (E1).
    assert_eq!(
        stored_forms(dir.path(), "rollups_hourly").await,
        ["E2", "E1", "E1"]
    );
}

#[tokio::test]
async fn rows_over_days_of_more_visitors_than_a_cell_keeps_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "UTC").await;
    // Three days of 1,900 to 2,200 people each, no hour over the 1,024 ids a cell keeps, so
    // every daily cell keeps a sketch and every hourly one its visitors' ids: 1,500 on the
    // home page in two crowds that overlap, 400 on pricing, and the same 300 people back on
    // the docs every evening.
    let mut events = Vec::new();
    for (day, date) in ["2026-03-05", "2026-03-06", "2026-03-07"]
        .iter()
        .enumerate()
    {
        let first = 10_000 * (day as u64 + 1);
        events.extend(crowd(first, 900, "/", &format!("{date}T09:00:00Z")));
        events.extend(crowd(first + 600, 900, "/", &format!("{date}T14:00:00Z")));
        events.extend(crowd(
            first + 5_000,
            400,
            "/pricing",
            &format!("{date}T20:00:00Z"),
        ));
        events.extend(crowd(0, 300, "/docs", &format!("{date}T22:00:00Z")));
    }
    for chunk in events.chunks(1000) {
        server.send_batch(&key, chunk).await;
    }
    server
        .wait_for_events(&key, SITE, events.len() as u64)
        .await;
    let metrics = json!(["visitors", "visits", "pageviews", "bounce_rate"]);
    for dimensions in [
        json!([]),
        json!(["time:day"]),
        json!(["time:week"]),
        json!(["event:page"]),
        json!(["visit:source"]),
    ] {
        let query = json!({"site_id": SITE, "date_range": ["2026-03-05", "2026-03-07"],
            "dimensions": dimensions, "metrics": metrics});
        same_as_through_events(&server, &key, query).await;
    }
    // A page of rows by visitors, as the dashboard's panels ask: those on it are exact.
    for (limit, offset) in [(1, 0), (1, 1), (2, 1)] {
        let query = json!({"site_id": SITE, "date_range": ["2026-03-05", "2026-03-07"],
            "dimensions": ["event:page"], "metrics": metrics,
            "pagination": {"limit": limit, "offset": offset}});
        same_as_through_events(&server, &key, query).await;
    }
    let total = json!({"site_id": SITE, "date_range": ["2026-03-05", "2026-03-07"],
        "metrics": ["visitors"]});
    let total = rows(&server.query(&key, total).await);
    assert_eq!(total[0].1[0], (3 * 1_900 + 300) as f64);
    server.stop().await;
    // The sums above took the hours' ids: each daily cell keeps a sketch.
    assert_eq!(
        stored_forms(dir.path(), "rollups_daily").await,
        ["E2", "E2", "E2"]
    );
}

/// The stored form of each site-total cell of `table` in time order: E1 for visitor ids, E2
/// for a sketch.
async fn stored_forms(dir: &std::path::Path, table: &str) -> Vec<String> {
    let query =
        format!("SELECT left(hex(visitors), 2) FROM {table} WHERE dim = '' ORDER BY start_ms");
    sql(dir, &query)
        .await
        .iter()
        .map(|row| text(&row[0]))
        .collect()
}
