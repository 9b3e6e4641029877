//! Accounts end to end: first-run setup, sessions in a cookie (attributes, CSRF) and as a
//! bearer token, roles, keys (last use, revocation), public dashboard links, site deletion,
//! and the `heartbeat user` commands.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn session_cookie(response: &reqwest::Response) -> (String, String) {
    let header = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let token = header
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("hb_session=")
        .unwrap()
        .to_owned();
    (header, token)
}

#[tokio::test]
async fn setup_login_roles_and_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let http = &server.http;

    // Before setup, `me` says setup is open.
    let (status, body) = send(http.get(server.url("/api/auth/me"))).await;
    assert_eq!(status, 401);
    assert!(body.to_string().contains("/api/auth/setup"), "{body}");

    let bad = http
        .post(server.url("/api/auth/setup"))
        .json(&json!({"email": "owner@example.com", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let setup = http
        .post(server.url("/api/auth/setup"))
        .json(&json!({"email": "Owner@Example.com", "password": "owner-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 201);
    let (cookie, token) = session_cookie(&setup);
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(token.starts_with("hbs_"));
    let (status, _) = send(
        http.post(server.url("/api/auth/setup"))
            .json(&json!({"email": "second@example.com", "password": "second-password"})),
    )
    .await;
    assert_eq!(status, 409, "setup happens once");

    // The cookie and the bearer token are the same session.
    let with_cookie =
        |r: reqwest::RequestBuilder| r.header("cookie", format!("hb_session={token}"));
    let (status, me) = send(with_cookie(http.get(server.url("/api/auth/me")))).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["kind"], "user");
    assert_eq!(me["user"]["email"], "owner@example.com");
    assert_eq!(me["admin"], true);
    let (status, _) = send(http.get(server.url("/api/auth/me")).bearer_auth(&token)).await;
    assert_eq!(status, 200);

    // The owner creates a site from the dashboard (same origin), not from another origin.
    let create = |origin: Option<&str>| {
        let request = with_cookie(http.post(server.url("/api/site/create")))
            .json(&json!({"domain": "owned.example"}));
        match origin {
            Some(origin) => request.header("origin", origin),
            None => request,
        }
    };
    let (status, body) = send(create(Some("https://evil.example.net"))).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["details"][0]["field"], "origin");
    let (status, body) =
        send(create(Some("https://evil.example.net")).header("sec-fetch-site", "cross-site")).await;
    assert_eq!(status, 403, "{body}");
    let own_origin = server.base.clone();
    let (status, body) = send(create(Some(&own_origin))).await;
    assert_eq!(status, 201, "{body}");
    // The owner's browser sends the cookie along with tracker events from the owner's own
    // pages: ingest ignores it.
    let tracked = with_cookie(http.post(server.url("/api/event")))
        .header("origin", "https://owned.example")
        .header("sec-fetch-site", "same-site")
        .header("user-agent", UA)
        .header("content-type", "text/plain")
        .body(r#"{"n":"pageview","u":"https://owned.example/","d":"owned.example"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(tracked.status(), 202);
    // A bearer token is never sent by a browser on its own: no origin check.
    let (status, _) = send(
        http.post(server.url("/api/site/create"))
            .bearer_auth(&token)
            .header("origin", "https://elsewhere.example")
            .json(&json!({"domain": "second.example"})),
    )
    .await;
    assert_eq!(status, 201);

    // A viewer reads but changes nothing.
    let (status, body) = send(with_cookie(http.post(server.url("/api/users"))).json(
        &json!({"email": "viewer@example.com", "password": "viewer-password", "role": "viewer"}),
    ))
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        http.post(server.url("/api/auth/login"))
            .json(&json!({"email": "viewer@example.com", "password": "wrong-password"})),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = send(
        http.post(server.url("/api/auth/login"))
            .json(&json!({"email": "nobody@example.com", "password": "viewer-password"})),
    )
    .await;
    assert_eq!(status, 401);
    let login = http
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": "viewer@example.com", "password": "viewer-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let (_, viewer) = session_cookie(&login);
    let query = json!({"site_id": "owned.example", "metrics": ["visitors"], "date_range": "all"});
    let (status, body) = send(
        http.post(server.url("/api/v2/query"))
            .header("cookie", format!("hb_session={viewer}"))
            .json(&query),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for request in [
        http.put(server.url("/api/sites/owned.example"))
            .json(&json!({"name": "renamed"})),
        http.delete(server.url("/api/sites/owned.example")),
        http.post(server.url("/api/keys"))
            .json(&json!({"scope": "read", "site_id": "owned.example"})),
        http.post(server.url("/api/site/create"))
            .json(&json!({"domain": "viewer.example"})),
        http.post(server.url("/api/users"))
            .json(&json!({"email": "x@example.com", "password": "x-password", "role": "owner"})),
    ] {
        let (status, body) = send(request.bearer_auth(&viewer)).await;
        assert_eq!(status, 403, "{body}");
    }

    // Signing out ends the session and clears the cookie.
    let logout = http
        .post(server.url("/api/auth/logout"))
        .header("cookie", format!("hb_session={viewer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    assert!(logout.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, _) = send(http.get(server.url("/api/auth/me")).bearer_auth(&viewer)).await;
    assert_eq!(status, 401);

    // The owner removes the viewer (not itself).
    let (_, users) = send(http.get(server.url("/api/users")).bearer_auth(&token)).await;
    let id_of = |email: &str| {
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .map(|u| u["user_id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (viewer_id, owner_id) = (id_of("viewer@example.com"), id_of("owner@example.com"));
    let (status, _) = send(
        http.delete(server.url(&format!("/api/users/{owner_id}")))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(
        http.delete(server.url(&format!("/api/users/{viewer_id}")))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        http.post(server.url("/api/auth/login"))
            .json(&json!({"email": "viewer@example.com", "password": "viewer-password"})),
    )
    .await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test]
async fn keys_share_links_and_site_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let http = &server.http;
    let first = server.create_site("keys.example", "UTC").await;

    // A key is shown once, used, listed with its last use, then revoked.
    let (status, created) = send(
        http.post(server.url("/api/keys"))
            .bearer_auth(ADMIN)
            .json(&json!({"scope": "read", "site_id": "keys.example", "name": "reports"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["api_key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("hb_") && key.len() == 43, "{key}");
    let query = json!({"site_id": "keys.example", "metrics": ["events"], "date_range": "all"});
    server.query(&key, query.clone()).await;
    let (_, listed) = send(http.get(server.url("/api/keys")).bearer_auth(&first)).await;
    assert_eq!(
        listed["keys"].as_array().map(Vec::len),
        Some(0),
        "a read key manages no keys"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, listed) = send(
            http.get(server.url("/api/keys?site_id=keys.example"))
                .bearer_auth(ADMIN),
        )
        .await;
        let mine = listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == key_id.as_str())
            .cloned()
            .unwrap();
        assert!(
            !listed.to_string().contains(&key),
            "a secret is never listed again"
        );
        if mine["last_used_at"].is_string() {
            assert_eq!(mine["name"], "reports");
            break;
        }
        assert!(Instant::now() < deadline, "last use never recorded: {mine}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = send(
        http.delete(server.url(&format!("/api/keys/{key_id}")))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        http.post(server.url("/api/v2/query"))
            .bearer_auth(&key)
            .json(&query),
    )
    .await;
    assert_eq!(status, 401, "a revoked key is refused");

    // An organisation-wide key reaches the organisation's sites only.
    send(
        http.post(server.url("/api/orgs"))
            .bearer_auth(ADMIN)
            .json(&json!({"org_id": "acme", "name": "Acme"})),
    )
    .await;
    let (status, _) = send(
        http.post(server.url("/api/site/create"))
            .bearer_auth(ADMIN)
            .json(&json!({"domain": "shop.acme.example", "org_id": "acme"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, org_key) = send(
        http.post(server.url("/api/keys"))
            .bearer_auth(ADMIN)
            .json(&json!({"scope": "read", "org_id": "acme"})),
    )
    .await;
    let org_key = org_key["api_key"].as_str().unwrap().to_owned();
    server
        .query(
            &org_key,
            json!({"site_id": "shop.acme.example", "metrics": ["events"], "date_range": "all"}),
        )
        .await;
    let (status, _) = send(
        http.post(server.url("/api/v2/query"))
            .bearer_auth(&org_key)
            .json(&query),
    )
    .await;
    assert_eq!(status, 403);

    // A public link reads, and only reads.
    let (status, shared) = send(
        http.put(server.url("/api/sites/keys.example/share"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{shared}");
    let link = shared["share_token"].as_str().unwrap().to_owned();
    server.query(&link, query.clone()).await;
    let (status, _) = send(
        http.post(server.url("/api/import?site_id=keys.example"))
            .bearer_auth(&link)
            .body("{}"),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        http.post(server.url("/api/v1/events"))
            .bearer_auth(&link)
            .json(&json!({"userId": "u", "eventName": "e"})),
    )
    .await;
    assert_eq!(status, 403);
    // With a password: the old link is gone, the new one needs unlocking.
    let (_, shared) = send(
        http.put(server.url("/api/sites/keys.example/share"))
            .bearer_auth(ADMIN)
            .json(&json!({"password": "board-password"})),
    )
    .await;
    let locked = shared["share_token"].as_str().unwrap().to_owned();
    for token in [&link, &locked] {
        let (status, _) = send(
            http.post(server.url("/api/v2/query"))
                .bearer_auth(token)
                .json(&query),
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, _) = send(
        http.post(server.url("/api/share/unlock"))
            .json(&json!({"token": locked, "password": "wrong-password"})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, unlocked) = send(
        http.post(server.url("/api/share/unlock"))
            .json(&json!({"token": locked, "password": "board-password"})),
    )
    .await;
    assert_eq!(status, 200, "{unlocked}");
    let access = unlocked["token"].as_str().unwrap().to_owned();
    server.query(&access, query.clone()).await;
    send(
        http.delete(server.url("/api/sites/keys.example/share"))
            .bearer_auth(ADMIN),
    )
    .await;
    let (status, _) = send(
        http.post(server.url("/api/v2/query"))
            .bearer_auth(&access)
            .json(&query),
    )
    .await;
    assert_eq!(status, 401, "removing the link ends its access");

    // Deleting a site deletes its events and keys; its domain is free again.
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({"userId": format!("u{i}"), "eventName": "signup"}))
        .collect();
    let (status, _) = send(
        http.post(server.url("/api/v1/events"))
            .header("x-api-key", &first)
            .json(&batch),
    )
    .await;
    assert_eq!(status, 202);
    // At once: the events may still be in the queue; the delete waits for them.
    let (status, deleted) = send(
        http.delete(server.url("/api/sites/keys.example"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted_events"], 5);
    let (status, _) = send(
        http.post(server.url("/api/v2/query"))
            .bearer_auth(&first)
            .json(&query),
    )
    .await;
    assert_eq!(status, 401, "the site's keys are gone");
    let (status, _) = send(
        http.get(server.url("/api/sites/keys.example"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(status, 404);
    let again = server.create_site("keys.example", "UTC").await;
    let body = server.query(&again, query).await;
    assert_eq!(body["results"][0]["metrics"][0], 0, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn user_commands_work_on_a_stopped_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    server.stop().await;
    let heartbeat = |args: &[&str], password: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("HEARTBEAT_USER_PASSWORD", password)
            .env_remove("HEARTBEAT_CONFIG")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    heartbeat(
        &["user", "create", "--email", "cli@example.com"],
        "first-password",
    );
    heartbeat(
        &["user", "reset-password", "--email", "cli@example.com"],
        "second-password",
    );
    let server = serve(dir.path()).await;
    let login = |password: &str| {
        server
            .http
            .post(server.url("/api/auth/login"))
            .json(&json!({"email": "cli@example.com", "password": password}))
            .send()
    };
    assert_eq!(login("first-password").await.unwrap().status(), 401);
    let response = login("second-password").await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["roles"][0]["role"], "owner");
    server.stop().await;
}
