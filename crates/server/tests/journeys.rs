//! User journeys (`POST /api/v2/journey`, seed 003's `GET /api/v1/users/{userId}/journey`)
//! and paths (`POST /api/v2/paths`) against a real server, on fixed events sent with their
//! timestamps and user ids through seed 003's batch endpoint; every expected answer is
//! worked out by hand in the comments.

mod common;

use common::*;
use serde_json::{json, Value};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// Seed 003 events `(user, name, UTC time, page)`, in one batch, in the order given; every
/// event gets `extra` properties and the user agent `agent`.
async fn send(
    server: &TestServer,
    key: &str,
    events: &[(&str, &str, &str, &str)],
    props: impl Fn(&str, &str) -> Value,
) {
    let batch: Vec<Value> = events
        .iter()
        .map(|(user, name, at, page)| {
            let mut properties = props(user, name);
            properties["pageUrl"] = json!(page);
            let agent = if *user == "u4" { FIREFOX } else { UA };
            json!({"userId": user, "eventName": name, "timestamp": at,
                   "properties": properties, "userAgent": agent})
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

/// `(step, name, visitors, dropoffs)` of each node.
fn nodes(answer: &Value) -> Vec<(u64, String, u64, u64)> {
    answer["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|n| {
            (
                n["step"].as_u64().unwrap(),
                n["name"].as_str().unwrap().to_owned(),
                n["visitors"].as_u64().unwrap(),
                n["dropoffs"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn node(step: u64, name: &str, visitors: u64, dropoffs: u64) -> (u64, String, u64, u64) {
    (step, name.to_owned(), visitors, dropoffs)
}

/// `(step, from, to, visitors)` of each edge.
fn edges(answer: &Value) -> Vec<(u64, String, String, u64)> {
    answer["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["step"].as_u64().unwrap(),
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
                e["visitors"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn edge(step: u64, from: &str, to: &str, visitors: u64) -> (u64, String, String, u64) {
    (step, from.to_owned(), to.to_owned(), visitors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_group_a_users_events_into_visits() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("journey.example", "UTC").await;
    let site = "journey.example";
    // Jo's two visits, sent newest first: A crosses midnight (23:50 to 00:05, no gap of
    // 30 minutes), B the next morning. Kim is someone else.
    let events = [
        ("jo", "page_view", "2024-03-02T10:02:00Z", "/pricing"),
        ("jo", "page_view", "2024-03-02T10:00:00Z", "/home"),
        ("jo", "page_view", "2024-03-02T00:05:00Z", "/welcome"),
        ("jo", "signup", "2024-03-01T23:55:00Z", "/signup"),
        ("jo", "page_view", "2024-03-01T23:50:00Z", "/home"),
        ("kim", "page_view", "2024-03-01T23:51:00Z", "/home"),
    ];
    send(&server, &key, &events, |_, name| {
        let mut props = json!({"referrer": "https://www.google.com/"});
        if name == "signup" {
            props["plan"] = json!("pro");
        }
        props
    })
    .await;
    server.wait_for_events(&key, site, 6).await;
    let range = json!(["2024-03-01", "2024-03-02"]);

    let (status, answer) = post(
        &server,
        &key,
        "/api/v2/journey",
        json!({"site_id": site, "user_id": "jo", "date_range": range}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["user_id"], "jo");
    assert_eq!(answer["total_events"], 5);
    assert_eq!(answer["truncated"], false);
    let visits = answer["visits"].as_array().unwrap();
    assert_eq!(visits.len(), 2, "{answer}");
    let a = &visits[0];
    assert_eq!(
        (
            &a["start"],
            &a["end"],
            &a["duration_s"],
            &a["events_count"],
            &a["pageviews"]
        ),
        (
            &json!("2024-03-01T23:50:00.000Z"),
            &json!("2024-03-02T00:05:00.000Z"),
            &json!(900),
            &json!(3),
            &json!(2)
        ),
        "{a}"
    );
    assert_eq!(
        (&a["entry_page"], &a["exit_page"]),
        (&json!("/home"), &json!("/welcome"))
    );
    assert_eq!(
        (&a["source"], &a["browser"], &a["device"]),
        (&json!("Google"), &json!("Chrome"), &json!("Desktop")),
        "{a}"
    );
    let steps: Vec<(&str, &str, &str)> = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["page"].as_str().unwrap(),
                e["timestamp"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("pageview", "/home", "2024-03-01T23:50:00.000Z"),
            ("signup", "/signup", "2024-03-01T23:55:00.000Z"),
            ("pageview", "/welcome", "2024-03-02T00:05:00.000Z"),
        ]
    );
    assert_eq!(a["events"][1]["props"], json!({"plan": "pro"}));
    let b = &visits[1];
    assert_eq!(
        (
            &b["start"],
            &b["duration_s"],
            &b["entry_page"],
            &b["exit_page"],
            b["events"].as_array().unwrap().len()
        ),
        (
            &json!("2024-03-02T10:00:00.000Z"),
            &json!(120),
            &json!("/home"),
            &json!("/pricing"),
            2
        )
    );
    assert_ne!(a["visit_id"], b["visit_id"]);

    // At most `limit` events, the earliest: the first two of visit A, whose figures stay
    // those of all its events.
    let (_, limited) = post(
        &server,
        &key,
        "/api/v2/journey",
        json!({"site_id": site, "user_id": "jo", "date_range": range, "limit": 2}),
    )
    .await;
    assert_eq!(
        (&limited["total_events"], &limited["truncated"]),
        (&json!(5), &json!(true))
    );
    assert_eq!(limited["visits"].as_array().unwrap().len(), 1);
    assert_eq!(limited["visits"][0]["events"].as_array().unwrap().len(), 2);
    assert_eq!(limited["visits"][0]["events_count"], 3);

    // By visitor id, as the export shows it.
    let export = server
        .http
        .get(server.url(&format!("/api/export?site_id={site}&format=ndjson")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let visitor = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|event| event["user_id"] == "jo")
        .map(|event| event["visitor_id"].clone())
        .expect("jo's events are exported");
    let visitor = visitor
        .as_u64()
        .map_or_else(|| visitor.as_str().unwrap().to_owned(), |v| v.to_string());
    let (status, by_visitor) = post(
        &server,
        &key,
        "/api/v2/journey",
        json!({"site_id": site, "visitor_id": visitor, "date_range": range}),
    )
    .await;
    assert_eq!(status, 200, "{by_visitor}");
    assert_eq!(by_visitor["total_events"], 5);
    assert_eq!(by_visitor["visitor_id"], json!(visitor));

    // Seed 003's door: the events in order, and the visits as sessions.
    let (status, seed) = get(
        &server,
        &key,
        "/api/v1/users/jo/journey?startDate=2024-03-01&endDate=2024-03-02",
    )
    .await;
    assert_eq!(status, 200, "{seed}");
    assert_eq!(seed["success"], true);
    let data = &seed["data"];
    assert_eq!(
        (&data["userId"], &data["totalEvents"]),
        (&json!("jo"), &json!(5))
    );
    let names: Vec<&str> = data["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["pageview", "signup", "pageview", "pageview", "pageview"]
    );
    assert_eq!(data["events"][1]["properties"], json!({"plan": "pro"}));
    assert_eq!(
        data["events"][0]["sessionId"],
        data["sessions"][0]["sessionId"]
    );
    assert_eq!(
        data["events"][3]["sessionId"],
        data["sessions"][1]["sessionId"]
    );
    assert_eq!(
        (
            &data["sessions"][0]["duration"],
            &data["sessions"][0]["source"],
            &data["sessions"][0]["device"]
        ),
        (&json!(900), &json!("Google"), &json!("Desktop"))
    );

    // Bad input.
    for (body, status, fields) in [
        (json!({"site_id": site}), 400, vec!["user_id"]),
        (
            json!({"site_id": site, "user_id": "jo", "visitor_id": 1}),
            400,
            vec!["visitor_id"],
        ),
        (
            json!({"site_id": site, "user_id": "jo", "limit": 0, "date_range": ["2024-03-02", "2024-03-01"]}),
            400,
            vec!["date_range", "limit"],
        ),
        (
            json!({"site_id": site, "user_id": "nobody"}),
            404,
            vec!["user_id"],
        ),
    ] {
        let (got, answer) = post(&server, &key, "/api/v2/journey", body.clone()).await;
        assert_eq!(
            (got, error_fields(&answer)),
            (status, fields.iter().map(|f| f.to_string()).collect()),
            "{body}: {answer}"
        );
    }
    for (path, status, field) in [
        ("/api/v1/users/nobody/journey", 404, "userId"),
        (
            "/api/v1/users/jo/journey?startDate=2024-03-02&endDate=2024-03-01",
            400,
            "startDate",
        ),
    ] {
        let (got, answer) = get(&server, &key, path).await;
        assert_eq!(
            (got, error_fields(&answer)),
            (status, vec![field.to_owned()]),
            "{path}: {answer}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_forward_and_backward() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("paths.example", "UTC").await;
    let site = "paths.example";
    // One visit each, a minute between events (u4 browses with Firefox).
    let visits: [(&str, &[&str]); 6] = [
        // A reload of /pricing counts once.
        ("u1", &["/", "/pricing", "/pricing", "/signup", "/done"]),
        // `cta` is a custom event on /pricing.
        ("u2", &["/", "/pricing", "cta", "/docs"]),
        ("u3", &["/", "/docs", "/pricing", "/signup"]),
        ("u4", &["/blog", "/pricing", "/signup"]),
        ("u5", &["/"]),
        // Back on /pricing later: the walk starts at the first time.
        ("u6", &["/pricing", "/", "/pricing"]),
    ];
    let mut events = Vec::new();
    for (user, items) in visits {
        for (minute, item) in items.iter().enumerate() {
            let at = format!("2024-02-01T10:{minute:02}:00Z");
            let (name, page) = if item.starts_with('/') {
                ("page_view", *item)
            } else {
                (*item, "/pricing")
            };
            events.push((user, name, at, page));
        }
    }
    let events: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .map(|(u, n, at, p)| (*u, *n, at.as_str(), *p))
        .collect();
    send(&server, &key, &events, |_, _| json!({})).await;
    server
        .wait_for_events(&key, site, events.len() as u64)
        .await;
    let paths = |body: Value| {
        let server = &server;
        let key = &key;
        async move {
            let mut body = body;
            body["site_id"] = json!(site);
            body["date_range"] = json!(["2024-02-01", "2024-02-01"]);
            let (status, answer) = post(server, key, "/api/v2/paths", body).await;
            assert_eq!(status, 200, "{answer}");
            answer
        }
    };

    // Forward from /pricing, two steps. Walks: u1 /pricing /signup /done; u2 /pricing
    // /docs; u3 /pricing /signup; u4 /pricing /signup; u6 /pricing / /pricing.
    let answer = paths(json!({"page": "/pricing", "depth": 2})).await;
    assert_eq!(
        nodes(&answer),
        [
            node(0, "/pricing", 5, 0),
            node(1, "/signup", 3, 2),
            node(1, "/", 1, 0),
            node(1, "/docs", 1, 1),
            node(2, "/done", 1, 0),
            node(2, "/pricing", 1, 0),
        ]
    );
    assert_eq!(
        edges(&answer),
        [
            edge(1, "/pricing", "/signup", 3),
            edge(1, "/pricing", "/", 1),
            edge(1, "/pricing", "/docs", 1),
            edge(2, "/", "/pricing", 1),
            edge(2, "/signup", "/done", 1),
        ]
    );
    assert_eq!(
        answer["paths"],
        json!([
            {"pages": ["/pricing", "/", "/pricing"], "visitors": 1},
            {"pages": ["/pricing", "/signup", "/done"], "visitors": 1},
        ])
    );

    // The same with one page per step: the rest fold into `(other)` (u2 and u6 at step 1,
    // u2 dropping off there; /pricing loses the tie with /done at step 2).
    let answer = paths(json!({"page": "/pricing", "depth": 2, "limit": 1})).await;
    assert_eq!(
        nodes(&answer),
        [
            node(0, "/pricing", 5, 0),
            node(1, "/signup", 3, 2),
            node(1, "(other)", 2, 1),
            node(2, "/done", 1, 0),
            node(2, "(other)", 1, 0),
        ]
    );
    assert_eq!(
        edges(&answer),
        [
            edge(1, "/pricing", "/signup", 3),
            edge(1, "/pricing", "(other)", 2),
            edge(2, "(other)", "(other)", 1),
            edge(2, "/signup", "/done", 1),
        ]
    );
    assert_eq!(
        answer["paths"],
        json!([{"pages": ["/pricing", "/", "/pricing"], "visitors": 1}])
    );

    // Backward from /signup, three steps. Walks: u1 /signup /pricing / (its entry);
    // u3 /signup /pricing /docs /; u4 /signup /pricing /blog (its entry).
    let answer = paths(json!({"page": "/signup", "direction": "backward", "depth": 3})).await;
    assert_eq!(answer["direction"], "backward");
    assert_eq!(
        nodes(&answer),
        [
            node(0, "/signup", 3, 0),
            node(1, "/pricing", 3, 0),
            node(2, "/", 1, 1),
            node(2, "/blog", 1, 1),
            node(2, "/docs", 1, 0),
            node(3, "/", 1, 0),
        ]
    );
    assert_eq!(
        edges(&answer),
        [
            edge(1, "/signup", "/pricing", 3),
            edge(2, "/pricing", "/", 1),
            edge(2, "/pricing", "/blog", 1),
            edge(2, "/pricing", "/docs", 1),
            edge(3, "/docs", "/", 1),
        ]
    );
    // Full paths in the order the pages were viewed.
    assert_eq!(
        answer["paths"],
        json!([{"pages": ["/", "/docs", "/pricing", "/signup"], "visitors": 1}])
    );

    // From each visit's entry page, one step: u1, u2, u3 and u5 entered on / (u5 left
    // there), u4 on /blog, u6 on /pricing.
    let answer = paths(json!({"depth": 1})).await;
    assert_eq!(
        nodes(&answer),
        [
            node(0, "/", 4, 1),
            node(0, "/blog", 1, 0),
            node(0, "/pricing", 1, 0),
            node(1, "/pricing", 3, 0),
            node(1, "/", 1, 0),
            node(1, "/docs", 1, 0),
        ]
    );

    // From an event: u2's `cta`, then /docs.
    let answer = paths(json!({"event": "cta", "depth": 1})).await;
    assert_eq!(
        nodes(&answer),
        [node(0, "cta", 1, 0), node(1, "/docs", 1, 0)]
    );
    assert_eq!(
        answer["paths"],
        json!([{"pages": ["cta", "/docs"], "visitors": 1}])
    );

    // Filters pick visits: only u4's was in Firefox.
    let answer = paths(json!({"page": "/pricing", "depth": 1,
        "filters": [["is", "visit:browser", ["Firefox"]]]}))
    .await;
    assert_eq!(
        nodes(&answer),
        [node(0, "/pricing", 1, 0), node(1, "/signup", 1, 0)]
    );
    assert_eq!(edges(&answer), [edge(1, "/pricing", "/signup", 1)]);

    // Bad input: every bad field named.
    for (body, fields) in [
        (json!({"site_id": site, "depth": 0}), vec!["depth"]),
        (json!({"site_id": site, "depth": 6}), vec!["depth"]),
        (
            json!({"site_id": site, "direction": "sideways"}),
            vec!["direction"],
        ),
        (
            json!({"site_id": site, "date_range": ["2024-02-02", "2024-02-01"]}),
            vec!["date_range"],
        ),
        (
            json!({"site_id": site, "date_range": "decade", "page": "/a", "event": "e", "direction": 1, "depth": 9, "limit": 51, "colour": "red"}),
            vec![
                "colour",
                "date_range",
                "event",
                "direction",
                "depth",
                "limit",
            ],
        ),
    ] {
        let (status, answer) = post(&server, &key, "/api/v2/paths", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(error_fields(&answer), fields, "{body}");
    }
    server.stop().await;
}
