//! Every metric of the dashboard, checked exactly against answers known by construction:
//! hundreds of visitors per row, visits crossing hour and day edges, each request's events
//! out of order, late page views that extend visits already stored, and an import after the
//! live traffic. The expected figures come from the visits as they were made (never from
//! sessionizing the events again), summed in plain Rust below.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use heartbeat_model::VisitAttributes;
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// 2026-03-09T00:00:00Z: the first of the three days.
const DAY0: i64 = 1_773_014_400_000;
const PAGES: [&str; 4] = ["/", "/pricing", "/docs", "/blog"];
const LIVE_VISITORS: usize = 480;
const IMPORTED_VISITORS: usize = 150;

/// One visit as made: who, its page views and sign-up in time order, and whether it came
/// from Google.
struct Visit {
    visitor: String,
    views: Vec<(i64, &'static str)>,
    signup: Option<i64>,
    google: bool,
    /// A page view sent after everything else (already in `views`).
    late: Option<usize>,
    imported: bool,
}

impl Visit {
    fn start(&self) -> i64 {
        self.views[0].0
    }

    fn end(&self) -> i64 {
        self.views
            .last()
            .unwrap()
            .0
            .max(self.signup.unwrap_or(i64::MIN))
    }

    fn bounce(&self) -> bool {
        self.views.len() == 1 && self.signup.is_none()
    }

    fn source(&self) -> &'static str {
        if self.google {
            "Google"
        } else {
            "Direct / None"
        }
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The live visitors: one or two visits each, the first from 22:00 on the first day (most
/// cross an hour, many midnight), the second 26 hours later; one to four page views ten
/// minutes apart; a sign-up a minute after the last view for one in five; Google as the
/// referrer of one in three; a late view 20 minutes after the end of one first visit in seven.
/// Then the imported ones: one visit each on the second day, one to three views five minutes
/// apart.
fn visits() -> Vec<Visit> {
    let mut visits = Vec::new();
    for v in 0..LIVE_VISITORS {
        for j in 0..1 + usize::from(v % 2 == 0) {
            let start = DAY0 + 22 * HOUR + (v % 120) as i64 * MINUTE + j as i64 * 26 * HOUR;
            let mut views: Vec<(i64, &str)> = (0..1 + (v + j) % 4)
                .map(|i| (start + i as i64 * 10 * MINUTE, PAGES[(v + i) % 4]))
                .collect();
            let last = views.last().unwrap().0;
            let signup = (v % 5 == 0).then_some(last + MINUTE);
            let late = (v % 7 == 0 && j == 0).then(|| {
                let at = signup.unwrap_or(last) + 20 * MINUTE;
                views.push((at, "/late"));
                views.len() - 1
            });
            visits.push(Visit {
                visitor: format!("u{v}"),
                views,
                signup,
                google: v % 3 == 0,
                late,
                imported: false,
            });
        }
    }
    for i in 0..IMPORTED_VISITORS {
        let start = DAY0 + 36 * HOUR + i as i64 * MINUTE;
        visits.push(Visit {
            visitor: format!("imported{i}"),
            views: (0..1 + i % 3)
                .map(|n| (start + n as i64 * 5 * MINUTE, PAGES[(i + n) % 4]))
                .collect(),
            signup: None,
            google: false,
            late: None,
            imported: true,
        });
    }
    visits
}

/// The live events as seed 003 requests: in time order, 400 a request, each request's events
/// shuffled; then the late views.
fn live_requests(visits: &[Visit]) -> Vec<Value> {
    let mut timed = Vec::new();
    let mut late = Vec::new();
    for (n, visit) in visits.iter().enumerate().filter(|(_, v)| !v.imported) {
        for (i, (at, page)) in visit.views.iter().enumerate() {
            let mut properties = json!({"pageUrl": page});
            if i == 0 && visit.google {
                properties["referrer"] = json!("https://www.google.com/");
            }
            let event = json!({"eventId": format!("{n}-{i}"), "userId": visit.visitor,
                "eventName": "page_view", "timestamp": iso(*at), "properties": properties});
            if visit.late == Some(i) {
                late.push(event);
            } else {
                timed.push((*at, event));
            }
        }
        if let Some(at) = visit.signup {
            let event = json!({"eventId": format!("{n}-s"), "userId": visit.visitor,
                "eventName": "signup", "timestamp": iso(at), "properties": {}});
            timed.push((at, event));
        }
    }
    timed.sort_by_key(|(at, _)| *at);
    let mut requests: Vec<Value> = timed
        .chunks(400)
        .map(|chunk| {
            // A fixed shuffle: odd positions reversed behind the even ones.
            let (even, odd): (Vec<_>, Vec<_>) =
                chunk.iter().enumerate().partition(|(i, _)| i % 2 == 0);
            let events = even
                .into_iter()
                .chain(odd.into_iter().rev())
                .map(|(_, (_, e))| e.clone());
            Value::Array(events.collect())
        })
        .collect();
    requests.push(Value::Array(late));
    requests
}

/// The imported visits as an NDJSON export.
fn import_body(visits: &[Visit]) -> String {
    let mut lines = String::new();
    for (n, visit) in visits.iter().filter(|v| v.imported).enumerate() {
        for (i, (at, page)) in visit.views.iter().enumerate() {
            let mut record = json!({"event_id": format!("imported-{n}-{i}"), "name": "pageview",
                "timestamp": iso(*at), "visitor_id": 1_000_000 + n, "session_id": 2_000_000 + n,
                "hostname": "exact.test", "pathname": page});
            // The export format names every visit attribute, empty when unknown.
            let unknown = serde_json::to_value(VisitAttributes::default()).unwrap();
            for (field, value) in unknown.as_object().unwrap() {
                record[field] = value.clone();
            }
            lines.push_str(&record.to_string());
            lines.push('\n');
        }
    }
    lines
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// The metrics product.md defines over `visits`, as the answers round them: visitors,
/// visits, pageviews, events, bounce_rate, visit_duration, views_per_visit.
fn all_metrics(visits: &[&Visit]) -> Vec<f64> {
    let visitors = visits
        .iter()
        .map(|v| &v.visitor)
        .collect::<BTreeSet<_>>()
        .len() as f64;
    let count = visits.len() as f64;
    let pageviews = visits.iter().map(|v| v.views.len()).sum::<usize>() as f64;
    let signups = visits.iter().filter(|v| v.signup.is_some()).count() as f64;
    let bounces = visits.iter().filter(|v| v.bounce()).count() as f64;
    let duration_ms = visits.iter().map(|v| v.end() - v.start()).sum::<i64>() as f64;
    vec![
        visitors,
        count,
        pageviews,
        pageviews + signups,
        round(100.0 * bounces / count, 0),
        round(duration_ms / 1000.0 / count, 0),
        round(pageviews / count, 2),
    ]
}

/// With dimensions, all but `views_per_visit` (Plausible refuses it there).
const BREAKDOWN: &[&str] = ALL_METRICS.split_last().unwrap().1;

/// An answer's rows by their dimensions.
fn by_dimensions(body: &Value) -> BTreeMap<Vec<String>, Vec<f64>> {
    result_rows(body).into_iter().collect()
}

fn hour_label(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms / HOUR * HOUR)
        .unwrap()
        .format("%Y-%m-%d %H:00:00")
        .to_string()
}

fn day_label(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_is_exact_on_data_with_known_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("exact.test", "UTC").await;
    let visits = visits();
    let requests = live_requests(&visits);
    let live_events: u64 = requests
        .iter()
        .map(|r| r.as_array().unwrap().len() as u64)
        .sum();
    for request in &requests[..requests.len() - 1] {
        server.send_batch(&key, request.as_array().unwrap()).await;
    }
    let late = requests.last().unwrap().as_array().unwrap();
    // The late views arrive once the rest is stored, their visits closed long since in
    // event time.
    server
        .wait_for_events(&key, "exact.test", live_events - late.len() as u64)
        .await;
    server.send_batch(&key, late).await;
    server
        .wait_for_events(&key, "exact.test", live_events)
        .await;
    // The processor publishes its counters after the write the query above saw, so the
    // count may trail the store for a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reopened = metric(
            &server.url("/metrics"),
            "heartbeat_processor_visits_reopened_total",
        )
        .await;
        if reopened > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no visit came back from the store for the late views"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let imported = server
        .http
        .post(server.url("/api/import?site_id=exact.test"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/x-ndjson")
        .body(import_body(&visits))
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 200, "{}", imported.text().await.unwrap());

    let range = json!([day_label(DAY0), day_label(DAY0 + 2 * 24 * HOUR)]);
    let query = |metrics: &[&str], dimensions: Value, filters: Value| {
        json!({"site_id": "exact.test", "metrics": metrics, "date_range": range,
            "dimensions": dimensions, "filters": filters, "pagination": {"limit": 1000}})
    };
    let all: Vec<&Visit> = visits.iter().collect();

    // Totals.
    let answer = server
        .query(&key, query(&ALL_METRICS, json!([]), json!([])))
        .await;
    let expected = BTreeMap::from([(vec![], all_metrics(&all))]);
    assert_eq!(by_dimensions(&answer), expected, "totals");

    // By day (a visit counts on the day it starts; visitors and page views where they are)
    // and by hour of the first day.
    let answer = server
        .query(
            &key,
            query(
                &["visitors", "visits", "pageviews"],
                json!(["time:day"]),
                json!([]),
            ),
        )
        .await;
    let mut expected: BTreeMap<Vec<String>, (BTreeSet<&str>, f64, f64)> = BTreeMap::new();
    for visit in &all {
        expected
            .entry(vec![day_label(visit.start())])
            .or_default()
            .1 += 1.0;
        for (at, _) in &visit.views {
            let row = expected.entry(vec![day_label(*at)]).or_default();
            row.0.insert(&visit.visitor);
            row.2 += 1.0;
        }
        if let Some(at) = visit.signup {
            expected
                .entry(vec![day_label(at)])
                .or_default()
                .0
                .insert(&visit.visitor);
        }
    }
    let expected: BTreeMap<_, _> = expected
        .into_iter()
        .map(|(k, (visitors, visits, views))| (k, vec![visitors.len() as f64, visits, views]))
        .collect();
    assert_eq!(by_dimensions(&answer), expected, "by day");

    let first_day = json!([day_label(DAY0), day_label(DAY0)]);
    let mut hourly = query(&["visitors", "pageviews"], json!(["time:hour"]), json!([]));
    hourly["date_range"] = first_day;
    let answer = server.query(&key, hourly).await;
    let mut expected: BTreeMap<Vec<String>, (BTreeSet<&str>, f64)> = BTreeMap::new();
    for visit in &all {
        let events = visit.views.iter().map(|(at, _)| (*at, true));
        for (at, view) in events.chain(visit.signup.map(|at| (at, false))) {
            if at < DAY0 + 24 * HOUR {
                let row = expected.entry(vec![hour_label(at)]).or_default();
                row.0.insert(&visit.visitor);
                row.1 += f64::from(u8::from(view));
            }
        }
    }
    let expected: BTreeMap<_, _> = expected
        .into_iter()
        .map(|(k, (visitors, views))| (k, vec![visitors.len() as f64, views]))
        .collect();
    assert_eq!(by_dimensions(&answer), expected, "by hour");

    // Pages: visitors with a view of the page and its views; entry and exit pages: the
    // visits entering (leaving) there, their visitors and bounce rate; sources.
    let pages = |visits: &[&Visit]| {
        let mut rows: BTreeMap<Vec<String>, (BTreeSet<&str>, f64)> = BTreeMap::new();
        for visit in visits {
            for (_, page) in &visit.views {
                let row = rows.entry(vec![page.to_string()]).or_default();
                row.0.insert(visit.visitor.as_str());
                row.1 += 1.0;
            }
        }
        rows.into_iter()
            .map(|(k, (visitors, views))| (k, vec![visitors.len() as f64, views]))
            .collect::<BTreeMap<_, _>>()
    };
    let answer = server
        .query(
            &key,
            query(&["visitors", "pageviews"], json!(["event:page"]), json!([])),
        )
        .await;
    assert_eq!(by_dimensions(&answer), pages(&all), "pages");
    // Hundreds of visitors a row, as the test means to check.
    assert!(pages(&all)[&vec!["/".to_owned()]][0] >= 200.0);

    let grouped = |key: &dyn Fn(&Visit) -> String| {
        let mut groups: BTreeMap<Vec<String>, Vec<&Visit>> = BTreeMap::new();
        for visit in &all {
            groups.entry(vec![key(visit)]).or_default().push(visit);
        }
        groups
    };
    let answer = server
        .query(
            &key,
            query(BREAKDOWN, json!(["visit:entry_page"]), json!([])),
        )
        .await;
    let expected: BTreeMap<_, _> = grouped(&|v| v.views[0].1.to_owned())
        .into_iter()
        .map(|(k, visits)| (k, all_metrics(&visits)[..6].to_vec()))
        .collect();
    assert_eq!(by_dimensions(&answer), expected, "entry pages");

    let answer = server
        .query(
            &key,
            query(
                &["visitors", "visits"],
                json!(["visit:exit_page"]),
                json!([]),
            ),
        )
        .await;
    let expected: BTreeMap<_, _> = grouped(&|v| v.views.last().unwrap().1.to_owned())
        .into_iter()
        .map(|(k, visits)| (k, all_metrics(&visits)[..2].to_vec()))
        .collect();
    assert_eq!(by_dimensions(&answer), expected, "exit pages");

    let answer = server
        .query(&key, query(BREAKDOWN, json!(["visit:source"]), json!([])))
        .await;
    let expected: BTreeMap<_, _> = grouped(&|v| v.source().to_owned())
        .into_iter()
        .map(|(k, visits)| (k, all_metrics(&visits)[..6].to_vec()))
        .collect();
    assert_eq!(by_dimensions(&answer), expected, "sources");

    // Filtered by a source (pages of Google's visits) and by a page (the visits that saw it).
    let google: Vec<&Visit> = all.iter().copied().filter(|v| v.google).collect();
    let answer = server
        .query(
            &key,
            query(
                &["visitors", "pageviews"],
                json!(["event:page"]),
                json!([["is", "visit:source", ["Google"]]]),
            ),
        )
        .await;
    assert_eq!(
        by_dimensions(&answer),
        pages(&google),
        "pages of Google's visits"
    );

    let pricing: Vec<&Visit> = all
        .iter()
        .copied()
        .filter(|v| v.views.iter().any(|(_, p)| *p == "/pricing"))
        .collect();
    let answer = server
        .query(
            &key,
            query(
                &["visitors", "visits"],
                json!([]),
                json!([["is", "event:page", ["/pricing"]]]),
            ),
        )
        .await;
    let expected = BTreeMap::from([(vec![], all_metrics(&pricing)[..2].to_vec())]);
    assert_eq!(by_dimensions(&answer), expected, "visits that saw /pricing");
    server.stop().await;
}
