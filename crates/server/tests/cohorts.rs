//! Cohort retention (`POST /api/v2/retention`, seed 003's `GET /api/v1/retention`) against a
//! real server, on fixed events sent with their timestamps and user ids through seed 003's
//! batch endpoint; every expected matrix is worked out by hand in the comments.

mod common;

use common::*;
use serde_json::{json, Value};

/// Seed 003 events `(user, name, UTC time, page)`, in one batch.
async fn send(server: &TestServer, key: &str, events: &[(&str, &str, &str, &str)]) {
    let batch: Vec<Value> = events
        .iter()
        .map(|(user, name, at, page)| {
            json!({"userId": user, "eventName": name, "timestamp": at,
                   "properties": {"pageUrl": page}, "userAgent": UA})
        })
        .collect();
    server.send_batch(key, &batch).await;
}

async fn post(server: &TestServer, key: &str, path: &str, body: Value) -> (u16, Value) {
    server
        .call(reqwest::Method::POST, path, key, Some(&body))
        .await
}

async fn get(server: &TestServer, key: &str, path: &str) -> (u16, Value) {
    server.call(reqwest::Method::GET, path, key, None).await
}

/// `(cohort, size, returning)` of each cohort of an answer.
fn matrix(answer: &Value) -> Vec<(String, u64, Vec<Value>)> {
    answer["cohorts"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|c| {
            (
                c["cohort"].as_str().unwrap().to_owned(),
                c["size"].as_u64().unwrap(),
                c["returning"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

fn row(cohort: &str, size: u64, returning: Value) -> (String, u64, Vec<Value>) {
    (
        cohort.to_owned(),
        size,
        returning.as_array().unwrap().clone(),
    )
}

const PV: &str = "page_view";

/// Polls until `expected` events of December 2023 to April 2024 are stored (`all` would
/// span more days than a range may).
async fn wait_for(server: &TestServer, key: &str, site: &str, expected: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let body = server
            .query(key, json!({"site_id": site, "metrics": ["events"], "date_range": ["2023-12-01", "2024-04-30"]}))
            .await;
        if body["results"][0]["metrics"][0].as_u64() == Some(expected) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohorts_by_first_seen_and_by_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), |c| c.query.max_range_days = 200).await;
    let key = server.create_site("cohorts.example", "UTC").await;
    let events = [
        // Alice: first seen Jan 1; signs up Jan 2; back Jan 4 and 9; March 3.
        ("alice", PV, "2024-01-01T10:00:00Z", "/"),
        ("alice", "signup", "2024-01-02T09:00:00Z", "/signup"),
        ("alice", PV, "2024-01-04T12:00:00Z", "/"),
        ("alice", PV, "2024-01-09T12:00:00Z", "/"),
        ("alice", PV, "2024-03-03T12:00:00Z", "/"),
        // Bob: first seen Jan 1 late, in a visit that crosses midnight into Jan 2; Feb 5.
        ("bob", PV, "2024-01-01T23:50:00Z", "/"),
        ("bob", PV, "2024-01-02T00:10:00Z", "/docs"),
        ("bob", PV, "2024-02-05T08:00:00Z", "/"),
        // Carol: first seen and signs up Jan 2; comes back on Jan 5 (period 3, not 1) with
        // a purchase; Jan 16.
        ("carol", "signup", "2024-01-02T08:00:00Z", "/signup"),
        ("carol", "purchase", "2024-01-05T08:00:00Z", "/buy"),
        ("carol", PV, "2024-01-16T08:00:00Z", "/"),
        // Dave: first seen in December, before the range; signs up Jan 2, back Jan 3.
        ("dave", PV, "2023-12-20T08:00:00Z", "/"),
        ("dave", "signup", "2024-01-02T15:00:00Z", "/signup"),
        ("dave", PV, "2024-01-03T15:00:00Z", "/"),
        // Erin: first seen and signs up Jan 3, never back.
        ("erin", "signup", "2024-01-03T11:00:00Z", "/signup"),
        // Frank: first seen Jan 10 (week of Jan 8), back Jan 22 (two weeks later).
        ("frank", PV, "2024-01-10T11:00:00Z", "/"),
        ("frank", PV, "2024-01-22T11:00:00Z", "/"),
        // Gina: first seen Feb 10, back March 1.
        ("gina", PV, "2024-02-10T11:00:00Z", "/"),
        ("gina", PV, "2024-03-01T11:00:00Z", "/"),
    ];
    send(&server, &key, &events).await;
    // Within the 200 days this server allows (`all` would be wider).
    wait_for(&server, &key, "cohorts.example", events.len() as u64).await;
    let site = "cohorts.example";
    let days = json!(["2024-01-01", "2024-01-03"]);

    // Daily, first seen, any event, three periods.
    // Jan 1: alice, bob. Alice back Jan 2 (1) and Jan 4 (3); bob Jan 2 (1), by the visit
    // that crossed midnight. Jan 2: carol (dave was first seen in December), back Jan 5
    // (3). Jan 3: erin.
    let (status, answer) = post(
        &server,
        &key,
        "/api/v2/retention",
        json!({"site_id": site, "date_range": days, "period": "day", "periods": 3}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        matrix(&answer),
        [
            row("2024-01-01", 2, json!([2, 2, 0, 1])),
            row("2024-01-02", 1, json!([1, 0, 0, 1])),
            row("2024-01-03", 1, json!([1, 0, 0, 0])),
        ]
    );
    assert_eq!(
        answer["cohorts"][0]["percentages"],
        json!([100.0, 100.0, 0.0, 50.0])
    );
    assert_eq!(
        (answer["period"].as_str(), answer["periods"].as_u64()),
        (Some("day"), Some(3))
    );

    // By the first signup: Jan 2: alice, carol, dave (first seen before the range does
    // not matter); alice back Jan 4 (2), carol Jan 5 (3), dave Jan 3 (1). Jan 3: erin.
    let (_, answer) = post(
        &server,
        &key,
        "/api/v2/retention",
        json!({"site_id": site, "date_range": days, "periods": 3, "cohort_event": "signup"}),
    )
    .await;
    assert_eq!(
        matrix(&answer),
        [
            row("2024-01-01", 0, json!([0, 0, 0, 0])),
            row("2024-01-02", 3, json!([3, 1, 1, 1])),
            row("2024-01-03", 1, json!([1, 0, 0, 0])),
        ]
    );
    assert_eq!(
        answer["cohorts"][1]["percentages"],
        json!([100.0, 33.33, 33.33, 33.33])
    );
    assert_eq!(
        answer["cohorts"][0]["percentages"],
        json!([0.0, 0.0, 0.0, 0.0])
    );

    // Returning by a purchase: only carol, on Jan 5.
    let (_, answer) = post(
        &server,
        &key,
        "/api/v2/retention",
        json!({"site_id": site, "date_range": days, "periods": 3, "cohort_event": "signup",
               "return_event": "purchase"}),
    )
    .await;
    assert_eq!(
        matrix(&answer)[1],
        row("2024-01-02", 3, json!([3, 0, 0, 1]))
    );

    // Weekly over two weeks (Monday Jan 1 and Jan 8), two periods. Week of Jan 1: alice,
    // bob, carol, erin; alice back Jan 9 (1), carol Jan 16 (2). Week of Jan 8: frank, back
    // Jan 22 (2).
    let (_, answer) = post(&server, &key, "/api/v2/retention",
        json!({"site_id": site, "date_range": ["2024-01-01", "2024-01-14"], "period": "week", "periods": 2})).await;
    assert_eq!(
        matrix(&answer),
        [
            row("2024-01-01", 4, json!([4, 1, 1])),
            row("2024-01-08", 1, json!([1, 0, 1])),
        ]
    );
    assert_eq!(
        answer["cohorts"][0]["percentages"],
        json!([100.0, 25.0, 25.0])
    );

    // Monthly, January and February, two periods. January: alice, bob, carol, erin,
    // frank; bob back in February (1), alice in March (2). February: gina, back in March.
    let (_, answer) = post(&server, &key, "/api/v2/retention",
        json!({"site_id": site, "date_range": ["2024-01-01", "2024-02-29"], "period": "month", "periods": 2})).await;
    assert_eq!(
        matrix(&answer),
        [
            row("2024-01-01", 5, json!([5, 1, 1])),
            row("2024-02-01", 1, json!([1, 1, 0])),
        ]
    );

    // Daily over three months, 60 periods: more periods than one 64-bit set holds (91
    // cohorts + 60). The cohorts with people and their non-zero returns: Dec 20: dave, back
    // Jan 2 (13) and Jan 3 (14). Jan 1: alice and bob, both back Jan 2 (1), alice Jan 4 (3)
    // and Jan 9 (8) (March 3 is 62 days on, past 60), bob Feb 5 (35). Jan 2: carol, Jan 5
    // (3) and Jan 16 (14). Jan 3: erin. Jan 10: frank, Jan 22 (12). Feb 10: gina, March 1
    // (20, in a leap year).
    let (status, answer) = post(&server, &key, "/api/v2/retention",
        json!({"site_id": site, "date_range": ["2023-12-01", "2024-02-29"], "period": "day", "periods": 60})).await;
    assert_eq!(status, 200, "{answer}");
    let cohorts = matrix(&answer);
    assert_eq!(cohorts.len(), 91);
    let seen: Vec<_> = cohorts
        .into_iter()
        .filter(|(_, size, _)| *size > 0)
        .map(|(cohort, size, returning)| {
            assert_eq!(returning.len(), 61, "{cohort}");
            assert_eq!(returning[0].as_u64(), Some(size), "{cohort}");
            let back = returning
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, n)| n.as_u64() != Some(0))
                .map(|(k, n)| (k, n.as_u64().unwrap_or_else(|| panic!("{cohort}: {n}"))))
                .collect::<Vec<(usize, u64)>>();
            (cohort, size, back)
        })
        .collect();
    let expected = [
        ("2023-12-20", 1, vec![(13, 1), (14, 1)]),
        ("2024-01-01", 2, vec![(1, 2), (3, 1), (8, 1), (35, 1)]),
        ("2024-01-02", 1, vec![(3, 1), (14, 1)]),
        ("2024-01-03", 1, vec![]),
        ("2024-01-10", 1, vec![(12, 1)]),
        ("2024-02-10", 1, vec![(20, 1)]),
    ]
    .map(|(cohort, size, back)| (cohort.to_owned(), size, back));
    assert_eq!(seen, expected);

    // Filters pick the events read: only page views on `/`. First seen on `/`: alice
    // (Jan 1), bob (Jan 1); carol's first `/` is Jan 16, dave's in December. Alice back
    // Jan 4 on `/`; bob's Jan 2 view was of `/docs`.
    let (_, answer) = post(
        &server,
        &key,
        "/api/v2/retention",
        json!({"site_id": site, "date_range": days, "periods": 3,
               "filters": [["is", "event:page", ["/"]]]}),
    )
    .await;
    assert_eq!(
        matrix(&answer),
        [
            row("2024-01-01", 2, json!([2, 0, 0, 1])),
            row("2024-01-02", 0, json!([0, 0, 0, 0])),
            row("2024-01-03", 0, json!([0, 0, 0, 0])),
        ]
    );

    // Periods that have not started yet have no count.
    let today = chrono::Utc::now().date_naive();
    let yesterday = today - chrono::Duration::days(1);
    let (_, answer) = post(&server, &key, "/api/v2/retention",
        json!({"site_id": site, "date_range": [yesterday.to_string(), yesterday.to_string()], "periods": 2})).await;
    assert_eq!(
        matrix(&answer),
        [row(&yesterday.to_string(), 0, json!([0, 0, null]))]
    );

    // Seed 003's door: daily cohorts by `cohort=signup`, `days` periods.
    let (status, seed) = get(
        &server,
        &key,
        "/api/v1/retention?cohort=signup&days=3&startDate=2024-01-01&endDate=2024-01-03",
    )
    .await;
    assert_eq!(status, 200, "{seed}");
    assert_eq!(seed["success"], true);
    assert_eq!(seed["data"]["cohort"], "signup");
    assert_eq!(seed["data"]["days"], 3);
    assert_eq!(
        seed["data"]["cohorts"][1],
        json!({"cohortDate": "2024-01-02", "cohortSize": 3, "retention": [
            {"day": 0, "users": 3, "percentage": 100.0},
            {"day": 1, "users": 1, "percentage": 33.33},
            {"day": 2, "users": 1, "percentage": 33.33},
            {"day": 3, "users": 1, "percentage": 33.33},
        ]})
    );
    for path in [
        "/api/v1/retention?days=3&startDate=2024-01-01&endDate=2024-01-03",
        "/api/v1/retention?cohort=first_seen&days=3&startDate=2024-01-01&endDate=2024-01-03",
    ] {
        let (status, seed) = get(&server, &key, path).await;
        assert_eq!(status, 200, "{seed}");
        assert_eq!(seed["data"]["cohort"], "first_seen");
        assert_eq!(seed["data"]["cohorts"][0]["cohortSize"], 2);
        assert_eq!(seed["data"]["cohorts"][0]["retention"][3]["users"], 1);
    }

    // Bad input: 400, every bad field named as the client sent it.
    let cases = [
        (json!({"site_id": site, "period": "year"}), vec!["period"]),
        (json!({"site_id": site, "periods": 0}), vec!["periods"]),
        (json!({"site_id": site, "periods": 91}), vec!["periods"]),
        (
            json!({"site_id": site, "period": "week", "periods": 53}),
            vec!["periods"],
        ),
        (
            json!({"site_id": site, "date_range": ["2024-02-01", "2024-01-01"]}),
            vec!["date_range"],
        ),
        // Wider than query.max_range_days (200 here).
        (
            json!({"site_id": site, "date_range": ["2024-01-01", "2024-12-31"]}),
            vec!["date_range"],
        ),
        (
            json!({"site_id": site, "period": "hour", "periods": -1, "cohort_event": 5, "filters": [["is", "visit:nope", ["x"]]]}),
            vec!["period", "periods", "cohort_event", "filters[0]"],
        ),
    ];
    for (body, fields) in cases {
        let (status, answer) = post(&server, &key, "/api/v2/retention", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["success"], false);
        assert_eq!(error_fields(&answer), fields, "{body}");
    }
    let (status, answer) = post(&server, &key, "/api/v2/retention", json!({"periods": 3})).await;
    assert_eq!(
        (status, error_fields(&answer)),
        (400, vec!["site_id".to_owned()])
    );
    let (status, _) = post(
        &server,
        &key,
        "/api/v2/retention",
        json!({"site_id": "nope.example"}),
    )
    .await;
    assert_eq!(status, 404);
    for (path, fields) in [
        ("/api/v1/retention?days=0", vec!["days"]),
        ("/api/v1/retention?days=91", vec!["days"]),
        (
            "/api/v1/retention?days=week&startDate=2024-01-x",
            vec!["startDate", "days"],
        ),
        (
            "/api/v1/retention?startDate=2024-02-01&endDate=2024-01-01",
            vec!["startDate"],
        ),
    ] {
        let (status, answer) = get(&server, &key, path).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(error_fields(&answer), fields, "{path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_are_local_across_a_daylight_saving_switch() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    // Berlin moves from UTC+1 to UTC+2 at 02:00 on Sunday, March 31, 2024.
    let key = server.create_site("berlin.example", "Europe/Berlin").await;
    let events = [
        // Hank: first seen Saturday March 30, 12:00 local; back Monday April 1 at 00:30
        // local, which is still March 31 in UTC (and at UTC+1 would be too).
        ("hank", PV, "2024-03-30T11:00:00Z", "/"),
        ("hank", PV, "2024-03-31T22:30:00Z", "/"),
        // Ivan: first seen at 00:30 local on March 31 (March 30 in UTC); back April 1 at
        // noon local.
        ("ivan", PV, "2024-03-30T23:30:00Z", "/"),
        ("ivan", PV, "2024-04-01T10:00:00Z", "/"),
    ];
    send(&server, &key, &events).await;
    server.wait_for_events(&key, "berlin.example", 4).await;
    // March 30: hank, back on April 1 (2). March 31: ivan, back April 1 (1). April 1:
    // nobody enters.
    let (status, answer) = post(&server, &key, "/api/v2/retention",
        json!({"site_id": "berlin.example", "date_range": ["2024-03-30", "2024-04-01"], "periods": 2})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        matrix(&answer),
        [
            row("2024-03-30", 1, json!([1, 0, 1])),
            row("2024-03-31", 1, json!([1, 1, 0])),
            row("2024-04-01", 0, json!([0, 0, 0])),
        ]
    );
    // Weekly: both entered in the week of Monday March 25 and came back in the next.
    let (_, answer) = post(&server, &key, "/api/v2/retention",
        json!({"site_id": "berlin.example", "date_range": ["2024-03-25", "2024-03-31"], "period": "week", "periods": 1})).await;
    assert_eq!(matrix(&answer), [row("2024-03-25", 2, json!([2, 2]))]);
    server.stop().await;
}
