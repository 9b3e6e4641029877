//! Funnels on hand-made timelines, every answer computed by hand: strict, ordered and
//! any-order funnels; people who skip, repeat or go back a step; events sent out of order;
//! window edges to the millisecond; visits across midnight; a date range in a time zone
//! with a DST switch; filters, step properties and a breakdown; saved funnels (native and
//! seed 003's doors) and every bad input.
//!
//! Quantiles are interpolated (`percentile_cont`): of n sorted values, the q quantile sits
//! at position q * (n - 1).

mod common;

use common::*;
use serde_json::{json, Value};

/// (user, UTC time, event name, page, referrer, properties)
type Event<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, Value);

fn page<'a>(user: &'a str, at: &'a str, path: &'a str) -> Event<'a> {
    (user, at, "page_view", path, "", json!({}))
}

fn custom<'a>(user: &'a str, at: &'a str, name: &'a str) -> Event<'a> {
    (user, at, name, "", "", json!({}))
}

/// Sends `events` in the order given, with seed 003's client timestamps, and waits until
/// they are stored.
async fn load(server: &TestServer, key: &str, site: &str, events: &[Event<'_>]) {
    let batch: Vec<Value> = events
        .iter()
        .map(|(user, at, name, page, referrer, props)| {
            let mut properties = props.clone();
            if !page.is_empty() {
                properties["pageUrl"] = json!(page);
            }
            if !referrer.is_empty() {
                properties["referrer"] = json!(referrer);
            }
            json!({"userId": user, "eventName": name, "timestamp": at, "properties": properties})
        })
        .collect();
    server.send_batch(key, &batch).await;
    server.wait_for_events(key, site, events.len() as u64).await;
}

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = server.url(path);
    let request = match method {
        "get" => server.http.get(url),
        "post" => server.http.post(url),
        "delete" => server.http.delete(url),
        other => panic!("method {other}"),
    };
    let request = request.header("x-api-key", key);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A new admin key of `site` (a site's first key may only read).
async fn admin_key(server: &TestServer, site: &str) -> String {
    let (status, body) = send(
        server,
        "post",
        "/api/keys",
        ADMIN,
        Some(json!({"scope": "admin", "site_id": site})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["api_key"].as_str().unwrap().to_owned()
}

async fn funnel(server: &TestServer, key: &str, body: Value) -> Value {
    let (status, answer) = send(server, "post", "/api/v2/funnel", key, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// One series' steps as (visitors, median seconds, p90 seconds).
fn steps(series: &Value) -> Vec<(u64, Option<f64>, Option<f64>)> {
    series["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["visitors"].as_u64().unwrap(),
                s["median_seconds_to_next"].as_f64(),
                s["p90_seconds_to_next"].as_f64(),
            )
        })
        .collect()
}

/// The fields a 4xx answer names, after checking it is the one error shape.
fn bad_fields(status: u16, body: &Value) -> Vec<String> {
    assert!((400..500).contains(&status), "{status} {body}");
    error_fields(body)
}

const GOOGLE: &str = "https://www.google.com/";

/// Site `funnel.test` (UTC), 10 March 2026. Steps: `/`, then `/pricing`, then `signup`.
fn shop_timeline() -> Vec<Event<'static>> {
    let mut events = vec![
        // u1: straight through, from Google, a pro signup.
        (
            "u1",
            "2026-03-10T10:00:00Z",
            "page_view",
            "/",
            GOOGLE,
            json!({}),
        ),
        page("u1", "2026-03-10T10:01:00Z", "/pricing"),
        (
            "u1",
            "2026-03-10T10:02:00Z",
            "signup",
            "",
            "",
            json!({"plan": "pro"}),
        ),
        // u2: stops at pricing after 5 minutes.
        page("u2", "2026-03-10T10:00:00Z", "/"),
        page("u2", "2026-03-10T10:05:00Z", "/pricing"),
        // u3: the home page only.
        page("u3", "2026-03-10T11:00:00Z", "/"),
        // u4: skips pricing.
        page("u4", "2026-03-10T11:00:00Z", "/"),
        custom("u4", "2026-03-10T11:03:00Z", "signup"),
        // u5: repeats the home page, from Google.
        (
            "u5",
            "2026-03-10T12:00:00Z",
            "page_view",
            "/",
            GOOGLE,
            json!({}),
        ),
        page("u5", "2026-03-10T12:01:00Z", "/"),
        page("u5", "2026-03-10T12:02:00Z", "/pricing"),
        (
            "u5",
            "2026-03-10T12:04:00Z",
            "signup",
            "",
            "",
            json!({"plan": "free"}),
        ),
        // u6: goes back to the home page before signing up.
        page("u6", "2026-03-10T13:00:00Z", "/"),
        page("u6", "2026-03-10T13:02:00Z", "/pricing"),
        page("u6", "2026-03-10T13:03:00Z", "/"),
        custom("u6", "2026-03-10T13:05:00Z", "signup"),
        // u8: signs up first, then looks around.
        custom("u8", "2026-03-10T15:00:00Z", "signup"),
        page("u8", "2026-03-10T15:01:00Z", "/"),
        page("u8", "2026-03-10T15:02:00Z", "/pricing"),
    ];
    // u7: straight through, sent last step first.
    events.extend([
        custom("u7", "2026-03-10T14:02:00Z", "signup"),
        page("u7", "2026-03-10T14:01:00Z", "/pricing"),
        page("u7", "2026-03-10T14:00:00Z", "/"),
    ]);
    events
}

fn shop_steps() -> Value {
    json!([{"page": "/"}, {"page": "/pricing"}, {"event": "signup"}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnels_follow_people_through_their_steps() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("funnel.test", "UTC").await;
    load(&server, &key, "funnel.test", &shop_timeline()).await;
    let day = json!(["2026-03-10", "2026-03-10"]);
    let ask = |order: &str| json!({"site_id": "funnel.test", "date_range": day, "steps": shop_steps(), "order": order});

    // Ordered (other events between steps allowed), one visit. Home: everyone (8).
    // Pricing after home: u1 60 s, u2 300, u5 120 (from its first home view, the earliest
    // of two equal attempts), u6 120, u7 60, u8 60 -> 6; median of [60,60,60,120,120,300]
    // is 90, p90 at 4.5 is 210. Signup after pricing: u1 60, u5 120, u6 180, u7 60 -> 4;
    // median 90, p90 at 2.7 is 162.
    let ordered = funnel(&server, &key, ask("ordered")).await;
    assert_eq!(
        steps(&ordered["results"][0]),
        [
            (8, Some(90.0), Some(210.0)),
            (6, Some(90.0), Some(162.0)),
            (4, None, None)
        ],
        "{ordered}"
    );
    assert_eq!(ordered["results"][0]["breakdown"], Value::Null);
    assert_eq!(
        ordered["results"][0]["steps"][1],
        json!({"step": 2, "name": "Visit /pricing", "visitors": 6, "converted": 4, "dropoff": 2,
            "dropoff_percentage": 33.33, "conversion_rate": 75.0, "conversion_rate_step": 75.0,
            "median_seconds_to_next": 90.0, "p90_seconds_to_next": 162.0})
    );
    assert_eq!(
        ordered["results"][0]["steps"][2],
        json!({"step": 3, "name": "signup", "visitors": 4, "converted": null, "dropoff": null,
            "dropoff_percentage": null, "conversion_rate": 50.0, "conversion_rate_step": 66.67,
            "median_seconds_to_next": null, "p90_seconds_to_next": null})
    );
    assert_eq!(ordered["meta"]["order"], "ordered");
    assert_eq!(ordered["meta"]["window"], json!({"visit": true}));
    // The default order is `ordered`.
    let default = funnel(
        &server,
        &key,
        json!({"site_id": "funnel.test", "date_range": day, "steps": shop_steps()}),
    )
    .await;
    assert_eq!(default["results"], ordered["results"]);

    // Strict: each step the very next event. Pricing right after home: u1 60, u2 300, u5
    // 60 (from its second home view), u6 120, u7 60, u8 60 -> 6; median 60, p90 at 4.5 is
    // 210. Signup right after pricing: u1 60, u5 120, u7 60 (u6 went home first) -> 3;
    // median 60, p90 at 1.8 is 108.
    let strict = funnel(&server, &key, ask("strict")).await;
    assert_eq!(
        steps(&strict["results"][0]),
        [
            (8, Some(60.0), Some(210.0)),
            (6, Some(60.0), Some(108.0)),
            (3, None, None)
        ],
        "{strict}"
    );

    // Any order: step k counts people with k distinct steps. One step: 8. Two: all but u3
    // (u4 did home and signup) -> 7, gaps between the first two steps done: u1 60, u2 300,
    // u4 180, u5 120, u6 120, u7 60, u8 60 (signup then home) -> median 120, p90 at 5.4 is
    // 228. Three: u1, u5, u6, u7, u8 -> 5, gaps 60, 120, 180, 60, 60 -> median 60, p90 at
    // 3.6 is 156.
    let any = funnel(&server, &key, ask("any")).await;
    assert_eq!(
        steps(&any["results"][0]),
        [
            (8, Some(120.0), Some(228.0)),
            (7, Some(60.0), Some(156.0)),
            (5, None, None)
        ],
        "{any}"
    );
    assert_eq!(any["results"][0]["steps"][1]["name"], "2 of 3 steps");

    // A step's properties: only u1's signup was a pro one.
    let pro = funnel(&server, &key, json!({"site_id": "funnel.test", "date_range": day,
        "steps": [{"page": "/"}, {"page": "/pricing"}, {"event": "signup", "props": {"plan": "pro"}, "label": "Pro signup"}]})).await;
    assert_eq!(
        pro["results"][0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["visitors"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [8, 6, 1]
    );
    assert_eq!(pro["results"][0]["steps"][2]["name"], "Pro signup");

    // A page pattern: `/*` is every one-segment page, so `/pricing` follows `/`... as does
    // `/` itself: anyone with two page views in order.
    let glob = funnel(
        &server,
        &key,
        json!({"site_id": "funnel.test", "date_range": day,
        "steps": [{"page": "/"}, {"page": "/*"}]}),
    )
    .await;
    // Two page views in one visit, home first: u1, u2, u5, u6, u7, u8 (not u3 nor u4).
    assert_eq!(steps(&glob["results"][0])[1].0, 6, "{glob}");

    // Filters pick who enters: visits from Google are u1 and u5, both through: pricing
    // after 60 and 120 s (median 90, p90 at 0.9 is 114), signup after 60 and 120 s.
    let google = funnel(
        &server,
        &key,
        json!({"site_id": "funnel.test", "date_range": day,
        "steps": shop_steps(), "filters": [["is", "visit:source", ["Google"]]]}),
    )
    .await;
    assert_eq!(
        steps(&google["results"][0]),
        [
            (2, Some(90.0), Some(114.0)),
            (2, Some(90.0), Some(114.0)),
            (2, None, None)
        ],
        "{google}"
    );
    // A breakdown: one funnel per source of the attempt's first event, most people first.
    let by_source = funnel(
        &server,
        &key,
        json!({"site_id": "funnel.test", "date_range": day,
        "steps": shop_steps(), "breakdown": "visit:source"}),
    )
    .await;
    let series: Vec<(String, Vec<u64>)> = by_source["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["breakdown"].as_str().unwrap().to_owned(),
                steps(s).into_iter().map(|(v, _, _)| v).collect(),
            )
        })
        .collect();
    assert_eq!(
        series,
        [
            ("Direct / None".to_owned(), vec![6, 4, 2]),
            ("Google".to_owned(), vec![2, 2, 2]),
        ],
        "{by_source}"
    );
    assert_eq!(by_source["meta"]["breakdown"], "visit:source");

    // A duration window counts the same people here (all within minutes).
    let hour = funnel(
        &server,
        &key,
        json!({"site_id": "funnel.test", "date_range": day,
        "steps": shop_steps(), "window": {"seconds": 3600}}),
    )
    .await;
    assert_eq!(hour["results"], ordered["results"]);
    // A day that has none of the events: every step empty.
    let empty = funnel(&server, &key, json!({"site_id": "funnel.test", "date_range": ["2026-03-11", "2026-03-11"], "steps": shop_steps()})).await;
    assert_eq!(
        steps(&empty["results"][0]),
        [(0, None, None), (0, None, None), (0, None, None)]
    );
    assert_eq!(empty["results"][0]["steps"][0]["conversion_rate"], 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_to_the_millisecond_midnight_and_daylight_saving() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;

    // Window edges, 5 seconds, steps `a` then `b`.
    let key = server.create_site("window.test", "UTC").await;
    load(
        &server,
        &key,
        "window.test",
        &[
            // Exactly at the window: converts.
            custom("w1", "2026-03-10T10:00:00.000Z", "a"),
            custom("w1", "2026-03-10T10:00:05.000Z", "b"),
            // One millisecond past: does not.
            custom("w2", "2026-03-10T10:00:00.000Z", "a"),
            custom("w2", "2026-03-10T10:00:05.001Z", "b"),
            // Across midnight: 4 s.
            custom("w3", "2026-03-10T23:59:58Z", "a"),
            custom("w3", "2026-03-11T00:00:02Z", "b"),
            // A first attempt too slow (12 s), a second one in 2 s: the best counts.
            custom("w4", "2026-03-10T11:00:00Z", "a"),
            custom("w4", "2026-03-10T11:00:10Z", "a"),
            custom("w4", "2026-03-10T11:00:12Z", "b"),
        ],
    )
    .await;
    let two_days = json!(["2026-03-10", "2026-03-11"]);
    // Converted: w1 5 s, w3 4 s, w4 2 s -> median 4, p90 at 1.8 is 4.8. In any order the
    // same: w2's b alone is one step, and w4's second a starts the attempt that converts.
    for order in ["ordered", "strict", "any"] {
        let answer = funnel(
            &server,
            &key,
            json!({"site_id": "window.test", "date_range": two_days,
            "steps": [{"event": "a"}, {"event": "b"}], "window": {"seconds": 5}, "order": order}),
        )
        .await;
        assert_eq!(
            steps(&answer["results"][0]),
            [(4, Some(4.0), Some(4.8)), (3, None, None)],
            "{order}: {answer}"
        );
    }
    // In one visit instead, w2 converts too (5.001 s).
    let visit = funnel(
        &server,
        &key,
        json!({"site_id": "window.test", "date_range": two_days,
        "steps": [{"event": "a"}, {"event": "b"}], "window": {"visit": true}}),
    )
    .await;
    let people: Vec<u64> = steps(&visit["results"][0])
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(people, [4, 4], "{visit}");
    // w4 from its first `a` (12 s, the earliest of two equal attempts): [4, 5, 5.001, 12]
    // -> p90 at 2.7 is 5.001 + 0.7 * 6.999 = 9.9003.
    assert_eq!(visit["results"][0]["steps"][0]["p90_seconds_to_next"], 9.9);

    // Visits across midnight, steps `/`, `/pricing`, `signup`.
    let key = server.create_site("midnight.test", "UTC").await;
    load(
        &server,
        &key,
        "midnight.test",
        &[
            // m1: one visit from 23:50 to 00:10.
            page("m1", "2026-03-10T23:50:00Z", "/"),
            page("m1", "2026-03-11T00:05:00Z", "/pricing"),
            custom("m1", "2026-03-11T00:10:00Z", "signup"),
            // m2: pricing 40 minutes after home, in a new visit.
            page("m2", "2026-03-10T23:00:00Z", "/"),
            page("m2", "2026-03-10T23:40:00Z", "/pricing"),
        ],
    )
    .await;
    let ask = |range: Value, window: Value| json!({"site_id": "midnight.test", "date_range": range, "steps": shop_steps(), "window": window});
    // One visit: m1 through (900 s, 300 s); m2's pricing is in another visit.
    let visit = funnel(&server, &key, ask(two_days.clone(), json!({"visit": true}))).await;
    assert_eq!(
        steps(&visit["results"][0]),
        [
            (2, Some(900.0), Some(900.0)),
            (1, Some(300.0), Some(300.0)),
            (1, None, None)
        ],
        "{visit}"
    );
    // An hour across visits: m2 reaches pricing (2400 s): median 1650, p90 at 0.9 is 2250.
    let hour = funnel(&server, &key, ask(two_days, json!({"seconds": 3600}))).await;
    assert_eq!(
        steps(&hour["results"][0]),
        [
            (2, Some(1650.0), Some(2250.0)),
            (2, Some(300.0), Some(300.0)),
            (1, None, None)
        ],
        "{hour}"
    );
    // Steps never count after the range's end: on 10 March alone m1 only entered.
    let first_day = funnel(
        &server,
        &key,
        ask(json!(["2026-03-10", "2026-03-10"]), json!({"visit": true})),
    )
    .await;
    assert_eq!(
        steps(&first_day["results"][0]),
        [(2, None, None), (0, None, None), (0, None, None)],
        "{first_day}"
    );

    // A range in Europe/Berlin over the switch to summer time (29 March 2026, a 23-hour
    // day: 2026-03-28T23:00Z to 2026-03-29T22:00Z).
    let key = server.create_site("berlin.test", "Europe/Berlin").await;
    load(
        &server,
        &key,
        "berlin.test",
        &[
            // 00:30 local (CET) on the 29th: in.
            page("b1", "2026-03-28T23:30:00Z", "/"),
            page("b1", "2026-03-28T23:31:00Z", "/pricing"),
            // 00:30 local (CEST) on the 30th: out, though still the 29th in UTC.
            page("b2", "2026-03-29T22:30:00Z", "/"),
            page("b2", "2026-03-29T22:31:00Z", "/pricing"),
            // 23:30 local on the 28th: out.
            page("b3", "2026-03-28T22:30:00Z", "/"),
            // 03:30 local (CEST), just after the switch: in, pricing 5 minutes later.
            page("b4", "2026-03-29T01:30:00Z", "/"),
            page("b4", "2026-03-29T01:35:00Z", "/pricing"),
        ],
    )
    .await;
    let berlin = funnel(
        &server,
        &key,
        json!({"site_id": "berlin.test", "date_range": ["2026-03-29", "2026-03-29"],
        "steps": [{"page": "/"}, {"page": "/pricing"}]}),
    )
    .await;
    // b1 60 s, b4 300 s: median 180, p90 at 0.9 is 276.
    assert_eq!(
        steps(&berlin["results"][0]),
        [(2, Some(180.0), Some(276.0)), (2, None, None)],
        "{berlin}"
    );
    assert_eq!(
        berlin["meta"]["date_range"],
        json!(["2026-03-29T00:00:00+01:00", "2026-03-29T23:59:59.999+02:00"])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_funnels_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("funnel.test", "UTC").await;
    let other_key = server.create_site("other.test", "UTC").await;
    load(&server, &key, "funnel.test", &shop_timeline()).await;
    let day = json!(["2026-03-10", "2026-03-10"]);

    // Native: save, list, show, run by id, delete.
    let (status, created) = send(
        &server,
        "post",
        "/api/sites/funnel.test/funnels",
        ADMIN,
        Some(json!({"name": "Signup", "steps": shop_steps(), "window": {"seconds": 3600}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["funnel"]["funnel_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("fn_"), "{created}");
    assert_eq!(created["funnel"]["steps"], shop_steps());
    assert_eq!(created["funnel"]["window"], json!({"seconds": 3600}));
    assert_eq!(created["funnel"]["order"], "ordered");
    let (status, list) = send(&server, "get", "/api/sites/funnel.test/funnels", &key, None).await;
    assert_eq!(
        (status, list["funnels"].as_array().unwrap().len()),
        (200, 1),
        "{list}"
    );
    let (status, shown) = send(
        &server,
        "get",
        &format!("/api/sites/funnel.test/funnels/{id}"),
        &key,
        None,
    )
    .await;
    assert_eq!((status, &shown["funnel"]), (200, &created["funnel"]));
    let saved = funnel(
        &server,
        &key,
        json!({"site_id": "funnel.test", "funnel_id": id, "date_range": day}),
    )
    .await;
    assert_eq!(
        steps(&saved["results"][0])
            .into_iter()
            .map(|s| s.0)
            .collect::<Vec<_>>(),
        [8, 6, 4]
    );

    // Another site's funnel is not found, with nothing that tells it exists.
    let (status, other) = send(
        &server,
        "post",
        "/api/sites/other.test/funnels",
        ADMIN,
        Some(json!({"name": "Other", "steps": [{"event": "a"}, {"event": "b"}]})),
    )
    .await;
    assert_eq!(status, 201);
    let other_id = other["funnel"]["funnel_id"].as_str().unwrap().to_owned();
    let (status, missing) = send(
        &server,
        "get",
        "/api/sites/funnel.test/funnels/fn_0000000000000000",
        &key,
        None,
    )
    .await;
    assert_eq!(bad_fields(status, &missing), ["funnel_id"]);
    assert_eq!(status, 404);
    let (status, foreign) = send(
        &server,
        "get",
        &format!("/api/sites/funnel.test/funnels/{other_id}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        foreign["details"][0]["message"]
            .as_str()
            .unwrap()
            .replace(&other_id, "ID"),
        missing["details"][0]["message"]
            .as_str()
            .unwrap()
            .replace("fn_0000000000000000", "ID")
    );
    for (method, path, body) in [
        (
            "post",
            "/api/v2/funnel".to_owned(),
            Some(json!({"site_id": "funnel.test", "funnel_id": other_id})),
        ),
        (
            "delete",
            format!("/api/sites/funnel.test/funnels/{other_id}"),
            None,
        ),
    ] {
        let (status, answer) = send(&server, method, &path, ADMIN, body).await;
        assert_eq!(
            (status, bad_fields(status, &answer)),
            (404, vec!["funnel_id".to_owned()]),
            "{method} {path}"
        );
    }
    // Another site's key may not use this site's funnels.
    let (status, _) = send(
        &server,
        "get",
        "/api/sites/funnel.test/funnels",
        &other_key,
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Bad input: each named, and all named at once.
    let two = json!([{"page": "/"}, {"event": "signup"}]);
    let nine: Vec<Value> = (0..9).map(|i| json!({"page": format!("/{i}")})).collect();
    let cases = [
        (json!({"steps": [{"page": "/"}]}), vec!["steps"]),
        (json!({"steps": nine}), vec!["steps"]),
        (
            json!({"steps": [{"label": "neither"}, {"event": "signup"}]}),
            vec!["steps[0]"],
        ),
        (
            json!({"steps": [{"page": "pricing"}, {"page": "/a/***"}]}),
            vec!["steps[0].page", "steps[1].page"],
        ),
        (
            json!({"steps": two, "window": {"seconds": 90 * 86_400 + 1}}),
            vec!["window"],
        ),
        (
            json!({"steps": two, "window": {"seconds": 0}}),
            vec!["window"],
        ),
        (json!({"steps": two, "order": "sideways"}), vec!["order"]),
        (
            json!({"steps": two, "date_range": ["2026-03-10", "2026-03-01"]}),
            vec!["date_range"],
        ),
        (
            json!({"steps": two, "breakdown": "visit:shoe_size"}),
            vec!["breakdown"],
        ),
        (
            json!({"steps": [{"page": "x"}], "window": 0, "order": "x", "breakdown": "event:page", "date_range": ["2026-03-10", "2026-03-01"]}),
            vec![
                "steps",
                "steps[0].page",
                "window",
                "order",
                "date_range",
                "breakdown",
            ],
        ),
    ];
    for (mut body, fields) in cases {
        body["site_id"] = json!("funnel.test");
        let (status, answer) =
            send(&server, "post", "/api/v2/funnel", &key, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(bad_fields(status, &answer), fields, "{body}: {answer}");
        // Saving the same definition names the same parts (a saved funnel has no range).
        if body.get("date_range").is_none() && body.get("breakdown").is_none() {
            body["name"] = json!("Bad");
            let (status, answer) = send(
                &server,
                "post",
                "/api/sites/funnel.test/funnels",
                ADMIN,
                Some(body.clone()),
            )
            .await;
            assert_eq!(bad_fields(status, &answer), fields, "{body}: {answer}");
        }
    }
    let (status, answer) = send(
        &server,
        "post",
        "/api/sites/funnel.test/funnels",
        ADMIN,
        Some(json!({"steps": [{"page": "/"}]})),
    )
    .await;
    assert_eq!(bad_fields(status, &answer), ["name", "steps"]);
    // Reading needs `read`; saving needs `admin`.
    let (status, _) = send(
        &server,
        "post",
        "/api/sites/funnel.test/funnels",
        &other_key,
        Some(json!({"name": "x", "steps": two})),
    )
    .await;
    assert_eq!(status, 403);

    // Deleted alone, and with the site.
    let (status, _) = send(
        &server,
        "delete",
        &format!("/api/sites/funnel.test/funnels/{id}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &server,
        "get",
        &format!("/api/sites/funnel.test/funnels/{id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(&server, "delete", "/api/sites/other.test", ADMIN, None).await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &server,
        "post",
        "/api/site/create",
        ADMIN,
        Some(json!({"domain": "other.test"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, list) = send(&server, "get", "/api/sites/other.test/funnels", ADMIN, None).await;
    assert_eq!(
        (status, list["funnels"].clone()),
        (200, json!([])),
        "{list}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_funnels_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("funnel.test", "UTC").await;
    server.create_site("other.test", "UTC").await;
    let other_key = admin_key(&server, "other.test").await;
    load(&server, &key, "funnel.test", &shop_timeline()).await;
    // Saving and deleting need an admin key of the site; reading, a read key.
    let read_key = key.clone();
    let key = admin_key(&server, "funnel.test").await;
    let body = json!({"name": "x", "steps": [{"eventName": "a"}, {"eventName": "b"}]});
    let (status, _) = send(&server, "post", "/api/v1/funnels", &read_key, Some(body)).await;
    assert_eq!(status, 403);

    let (status, created) = send(
        &server,
        "post",
        "/api/v1/funnels",
        &key,
        Some(json!({
            "name": "Signup",
            "steps": [
                {"eventName": "page_view", "filters": {"pageUrl": "/"}},
                {"eventName": "pageview", "filters": {"pageUrl": "https://funnel.test/pricing"}},
                {"eventName": "signup", "timeWindow": 3600},
            ],
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["success"], true);
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["name"], "Signup");
    assert_eq!(
        created["data"]["steps"][1],
        json!({"eventName": "page_view", "filters": {"pageUrl": "/pricing"}, "timeWindow": 3600})
    );
    // The funnel is the key's site's.
    let (status, native) = send(
        &server,
        "get",
        &format!("/api/sites/funnel.test/funnels/{id}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{native}");
    assert_eq!(native["funnel"]["steps"], shop_steps());
    assert_eq!(native["funnel"]["window"], json!({"seconds": 3600}));

    let (status, list) = send(&server, "get", "/api/v1/funnels", &read_key, None).await;
    assert_eq!(
        (status, list["data"].as_array().unwrap().len()),
        (200, 1),
        "{list}"
    );
    let (status, shown) = send(&server, "get", &format!("/api/v1/funnels/{id}"), &key, None).await;
    assert_eq!((status, &shown["data"]), (200, &created["data"]));

    // The ordered funnel within an hour: 8, 6, 4 people (as in the native test).
    let (status, analytics) = send(
        &server,
        "get",
        &format!("/api/v1/funnels/{id}/analytics?startDate=2026-03-10&endDate=2026-03-10"),
        &read_key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{analytics}");
    let data = &analytics["data"];
    assert_eq!(analytics["success"], true);
    let users: Vec<u64> = data["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect();
    assert_eq!(users, [8, 6, 4], "{analytics}");
    assert_eq!(data["steps"][1]["eventName"], "page_view");
    assert_eq!(data["steps"][1]["conversionRate"], 75.0);
    assert_eq!(data["steps"][1]["dropoff"], 2);
    assert_eq!(data["steps"][0]["medianTimeToNextSeconds"], 90.0);
    assert_eq!(
        (
            data["totalUsers"].as_u64(),
            data["overallConversionRate"].as_f64()
        ),
        (Some(8), Some(50.0))
    );
    assert_eq!(data["startDate"], "2026-03-10T00:00:00.000Z");

    // Bad input, named as seed 003 spells it.
    for (body, fields) in [
        (
            json!({"name": "x", "steps": [{"eventName": "a"}]}),
            vec!["steps"],
        ),
        (
            json!({"steps": [{"eventName": "a"}, {"filters": {"plan": "pro"}}]}),
            vec!["name", "steps[1].eventName"],
        ),
        (
            json!({"name": "x", "steps": [{"eventName": "a"}, {"eventName": "b", "timeWindow": 90 * 86_400 + 1}]}),
            vec!["steps[1].timeWindow"],
        ),
        (
            json!({"name": "x", "steps": [{"eventName": "page_view", "filters": {"pageUrl": "/a/***"}}, {"eventName": "b"}]}),
            vec!["steps[0].filters.pageUrl"],
        ),
    ] {
        let (status, answer) =
            send(&server, "post", "/api/v1/funnels", &key, Some(body.clone())).await;
        assert_eq!(bad_fields(status, &answer), fields, "{body}: {answer}");
    }
    let (status, answer) = send(
        &server,
        "get",
        &format!("/api/v1/funnels/{id}/analytics?startDate=2026-03-10&endDate=2026-03-01"),
        &key,
        None,
    )
    .await;
    assert_eq!(bad_fields(status, &answer), ["startDate"]);
    // Another site's key finds no such funnel.
    for path in [
        format!("/api/v1/funnels/{id}"),
        format!("/api/v1/funnels/{id}/analytics"),
    ] {
        let (status, answer) = send(&server, "get", &path, &other_key, None).await;
        assert_eq!(
            (status, bad_fields(status, &answer)),
            (404, vec!["funnelId".to_owned()]),
            "{path}"
        );
    }
    let (status, answer) = send(
        &server,
        "delete",
        &format!("/api/v1/funnels/{id}"),
        &other_key,
        None,
    )
    .await;
    assert_eq!(
        (status, bad_fields(status, &answer)),
        (404, vec!["funnelId".to_owned()])
    );

    let (status, deleted) = send(
        &server,
        "delete",
        &format!("/api/v1/funnels/{id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(
        (status, &deleted["data"]["deleted"]),
        (200, &json!(true)),
        "{deleted}"
    );
    let (status, answer) = send(&server, "get", &format!("/api/v1/funnels/{id}"), &key, None).await;
    assert_eq!(
        (status, bad_fields(status, &answer)),
        (404, vec!["funnelId".to_owned()])
    );
    server.stop().await;
}
