//! Goals end to end: the goals API (native and Plausible's Sites API) with every bad input
//! refused, and goal metrics (`event:goal`, `conversion_rate`, `group_conversion_rate`,
//! `total_revenue`, `average_revenue`) on hand-made traffic with hand-computed answers.

mod common;

use common::*;
use serde_json::{json, Value};

const SITE: &str = "shop.example";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

/// One event in Plausible's format from the visitor at `ip`.
async fn send(server: &TestServer, ip: &str, event: Value) {
    let mut body = json!({"d": SITE});
    for (k, v) in event.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = server
        .http
        .post(server.url("/api/event"))
        .header("content-type", "text/plain")
        .header("user-agent", BROWSER)
        .header("x-forwarded-for", ip)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{body}");
}

async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server.call(method, path, key, body.as_ref()).await
}

fn fields(body: &Value) -> Vec<String> {
    error_fields(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goals_api_refuses_bad_input_and_finds_or_creates() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let read_key = server.create_site(SITE, "UTC").await;
    server.create_site("other.example", "UTC").await;
    let goals = format!("/api/sites/{SITE}/goals");
    let post = |body: Value| call(&server, reqwest::Method::POST, &goals, ADMIN, Some(body));

    // Every bad field named at once.
    let (status, body) = post(
        json!({"goal_type": "page", "page_path": "blog", "display_name": " ", "currency": "euro"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        fields(&body),
        ["page_path", "display_name", "currency", "currency"]
    );
    let (status, body) = post(json!({"event_name": "Signup"})).await;
    assert_eq!((status, fields(&body)), (400, vec!["goal_type".to_owned()]));
    assert_eq!(
        body["error"],
        "Parameter `goal_type` is required to create a goal"
    );
    let (status, body) =
        post(json!({"goal_type": "event", "event_name": 7, "custom_props": {"plan": 1}})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fields(&body), ["event_name", "custom_props.plan"]);
    let (status, body) = post(json!({"goal_type": "funnel"})).await;
    assert_eq!((status, fields(&body)), (400, vec!["goal_type".to_owned()]));
    let (status, body) = post(json!({"goal_type": "event", "event_name": "pageview"})).await;
    assert_eq!(
        (status, fields(&body)),
        (400, vec!["event_name".to_owned()])
    );
    let (status, body) = post(json!({"goal_type": "event", "event_name": "x".repeat(201)})).await;
    assert_eq!(
        (status, fields(&body)),
        (400, vec!["event_name".to_owned()])
    );
    let (status, _) = call(&server, reqwest::Method::POST, &goals, ADMIN, None).await;
    assert_eq!(status, 400);

    // Created once; the same goal again is the same goal.
    let signup = json!({"goal_type": "event", "event_name": "Signup", "currency": "eur"});
    let (status, created) = post(signup.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["goal"]["display_name"], "Signup");
    assert_eq!(created["goal"]["currency"], "EUR");
    let (status, again) = post(signup).await;
    assert_eq!((status, &again["goal"]), (200, &created["goal"]));
    // Another goal under a taken display name is a conflict.
    let (status, body) =
        post(json!({"goal_type": "page", "page_path": "/signup", "display_name": "Signup"})).await;
    assert_eq!(status, 409, "{body}");

    // Reading needs read; changing needs admin.
    let (status, listed) = call(&server, reqwest::Method::GET, &goals, &read_key, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["goals"], json!([created["goal"]]));
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        &goals,
        &read_key,
        Some(json!({"goal_type": "page", "page_path": "/x"})),
    )
    .await;
    assert_eq!(status, 403);

    // Deleting: unknown ids, another site's id, then the goal.
    let id = created["goal"]["id"].as_u64().unwrap();
    let delete = |path: String| {
        let server = &server;
        async move { call(server, reqwest::Method::DELETE, &path, ADMIN, None).await }
    };
    assert_eq!(delete(format!("{goals}/{}", id + 100)).await.0, 404);
    assert_eq!(delete(format!("{goals}/abc")).await.0, 400);
    assert_eq!(
        delete(format!("/api/sites/other.example/goals/{id}"))
            .await
            .0,
        404
    );
    let (status, body) = delete(format!("{goals}/{id}")).await;
    assert_eq!((status, &body["deleted"]), (200, &json!(true)));
    assert_eq!(delete(format!("{goals}/{id}")).await.0, 404);

    // Plausible's Sites API: find or create, list, delete.
    let put = |body: Value| {
        call(
            &server,
            reqwest::Method::PUT,
            "/api/v1/sites/goals",
            ADMIN,
            Some(body),
        )
    };
    let (status, body) = put(json!({"site_id": SITE, "goal_type": "page"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some("Parameter `page_path` is required to create a goal")
        )
    );
    let (status, body) = put(json!({"goal_type": "page", "page_path": "/x"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            400,
            Some("Parameter `site_id` is required to create a goal")
        )
    );
    let (status, page) =
        put(json!({"site_id": SITE, "goal_type": "page", "page_path": "/signup"})).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["display_name"], "Visit /signup");
    assert_eq!(page["domain"], SITE);
    let (_, same) =
        put(json!({"site_id": SITE, "goal_type": "page", "page_path": "/signup"})).await;
    assert_eq!(same["id"], page["id"]);
    let (status, list) = call(
        &server,
        reqwest::Method::GET,
        &format!("/api/v1/sites/goals?site_id={SITE}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["goals"].as_array().unwrap().len(), 1);
    assert_eq!(list["meta"]["limit"], 100);
    let path = format!("/api/v1/sites/goals/{}?site_id={SITE}", page["id"]);
    let (status, body) = call(&server, reqwest::Method::DELETE, &path, ADMIN, None).await;
    assert_eq!((status, body), (200, json!({"deleted": true})));
    let (status, body) = call(&server, reqwest::Method::DELETE, &path, ADMIN, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("Goal could not be found"))
    );

    // Goals go with their site.
    server.create_site("gone.example", "UTC").await;
    let gone = "/api/sites/gone.example/goals";
    let (status, _) = call(
        &server,
        reqwest::Method::POST,
        gone,
        ADMIN,
        Some(json!({"goal_type": "page", "page_path": "/"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &server,
        reqwest::Method::DELETE,
        "/api/sites/gone.example",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    server.create_site("gone.example", "UTC").await;
    let (_, listed) = call(&server, reqwest::Method::GET, gone, ADMIN, None).await;
    assert_eq!(listed["goals"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goal_metrics_match_hand_computed_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "UTC").await;
    let goals = format!("/api/sites/{SITE}/goals");
    for goal in [
        json!({"goal_type": "page", "page_path": "/blog/*"}),
        json!({"goal_type": "event", "event_name": "Signup", "custom_props": {"plan": "pro"}, "display_name": "Pro signup"}),
        json!({"goal_type": "event", "event_name": "Purchase", "currency": "EUR"}),
    ] {
        let (status, body) = call(&server, reqwest::Method::POST, &goals, ADMIN, Some(goal)).await;
        assert_eq!(status, 201, "{body}");
    }
    let url = |path: &str| format!("https://{SITE}{path}");
    // Four visitors. V1 reads a blog post and signs up for pro; V2 reads a page two levels
    // under /blog (no match for /blog/*) and buys for 10.50 EUR; V3 signs up for free and
    // buys for 20 EUR and 5 USD (another currency: not in the EUR sums); V4 comes from
    // Google to a blog post.
    send(
        &server,
        "10.0.0.1",
        json!({"n": "pageview", "u": url("/blog/a")}),
    )
    .await;
    send(
        &server,
        "10.0.0.1",
        json!({"n": "Signup", "u": url("/blog/a"), "p": {"plan": "pro"}}),
    )
    .await;
    send(
        &server,
        "10.0.0.2",
        json!({"n": "pageview", "u": url("/blog/a/b")}),
    )
    .await;
    send(&server, "10.0.0.2", json!({"n": "Purchase", "u": url("/cart"), "revenue": {"amount": "10.50", "currency": "EUR"}})).await;
    send(&server, "10.0.0.3", json!({"n": "pageview", "u": url("/")})).await;
    send(
        &server,
        "10.0.0.3",
        json!({"n": "Signup", "u": url("/"), "p": {"plan": "free"}}),
    )
    .await;
    send(
        &server,
        "10.0.0.3",
        json!({"n": "Purchase", "u": url("/cart"), "revenue": {"amount": 20, "currency": "EUR"}}),
    )
    .await;
    send(
        &server,
        "10.0.0.3",
        json!({"n": "Purchase", "u": url("/cart"), "revenue": {"amount": 5, "currency": "USD"}}),
    )
    .await;
    send(
        &server,
        "10.0.0.4",
        json!({"n": "pageview", "u": url("/blog/b"), "r": "https://www.google.com/"}),
    )
    .await;
    server.wait_for_events(&key, SITE, 9).await;

    let query = |body: Value| {
        let (server, key) = (&server, &key);
        async move {
            let mut body = body;
            body["site_id"] = json!(SITE);
            body["date_range"] = json!("day");
            server.query_answer(key, &body).await
        }
    };

    // By goal: each goal's converted visitors and events over all 4 visitors.
    let (status, by_goal) = query(json!({"metrics": ["visitors", "events", "conversion_rate"],
        "dimensions": ["event:goal"], "order_by": [["event:goal", "asc"]]}))
    .await;
    assert_eq!(status, 200, "{by_goal}");
    assert_eq!(
        by_goal["results"],
        json!([
            {"dimensions": ["Pro signup"], "metrics": [1, 1, 25.0]},
            {"dimensions": ["Purchase"], "metrics": [2, 3, 50.0]},
            {"dimensions": ["Visit /blog/*"], "metrics": [2, 2, 50.0]},
        ])
    );

    // Revenue by goal: Purchase's EUR events only (10.50 + 20), none for other goals.
    let (_, revenue) = query(json!({"metrics": ["total_revenue", "average_revenue"],
        "dimensions": ["event:goal"], "filters": [["is", "event:goal", ["Purchase", "Pro signup"]]]}))
    .await;
    assert_eq!(
        revenue["results"],
        json!([
            {"dimensions": ["Purchase"], "metrics": [
                {"short": "€30.5", "long": "€30.50", "value": 30.5, "currency": "EUR"},
                {"short": "€15.2", "long": "€15.25", "value": 15.25, "currency": "EUR"}]},
            {"dimensions": ["Pro signup"], "metrics": [null, null]},
        ])
    );
    assert!(
        revenue["meta"].get("metric_warnings").is_none(),
        "{revenue}"
    );

    // Without a goal, revenue is null and says why.
    let (_, none) = query(json!({"metrics": ["total_revenue"]})).await;
    assert_eq!(none["results"][0]["metrics"], json!([null]));
    assert_eq!(
        none["meta"]["metric_warnings"]["total_revenue"]["code"],
        "no_revenue_goals_matching"
    );

    // By source, of the visitors who purchased: 2 of the 3 direct visitors; Google's one
    // visitor did not purchase, so has no row.
    let (_, by_source) = query(
        json!({"metrics": ["visitors", "group_conversion_rate", "conversion_rate"],
        "dimensions": ["visit:source"], "filters": [["is", "event:goal", ["Purchase"]]]}),
    )
    .await;
    assert_eq!(
        by_source["results"],
        json!([{"dimensions": ["Direct / None"], "metrics": [2, 66.67, 50.0]}])
    );

    // A goal with another filter: blog readers from Google all converted (1 of 1).
    let (_, filtered) = query(json!({"metrics": ["visitors", "conversion_rate"],
        "filters": [["is", "event:goal", ["Visit /blog/*"]], ["is", "visit:source", ["Google"]]]}))
    .await;
    assert_eq!(filtered["results"][0]["metrics"], json!([1, 100.0]));

    // Goals picked by `contains`, ignoring case.
    let (_, contains) = query(
        json!({"metrics": ["visitors"], "dimensions": ["event:goal"],
        "filters": [["contains", "event:goal", ["SIGN"], {"case_sensitive": false}]]}),
    )
    .await;
    assert_eq!(
        contains["results"],
        json!([{"dimensions": ["Pro signup"], "metrics": [1]}])
    );

    // Refusals: an unknown goal, a conversion rate without goals.
    let (status, body) =
        query(json!({"metrics": ["visitors"], "filters": [["is", "event:goal", ["Nope"]]]})).await;
    assert_eq!(status, 400);
    assert_eq!(fields(&body), ["filters[0][2][0]"]);
    let (status, body) = query(json!({"metrics": ["conversion_rate"]})).await;
    assert_eq!(status, 400);
    assert_eq!(fields(&body), ["metrics[0]"]);
}
