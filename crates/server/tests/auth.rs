//! Access control over the whole router, table-driven. The route list comes from the served
//! OpenAPI document (`tests/openapi.rs` checks that it lists exactly the routes the code
//! serves), and every documented route must have a row in [`TABLE`]: a new route fails this
//! test until someone decides who may call it. Every private route then rejects a missing,
//! wrong, revoked or expired credential (401), a key or a dashboard session of another site or
//! organisation (403/404, or a list without the site), and a key whose scope is too small.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Access {
    /// No credential needed.
    Public,
    /// Ingest by key: the key decides the site.
    Ingest,
    /// A site's statistics: needs `read` on the named site.
    Read,
    /// Changes a site (or its keys): needs `admin` on the site.
    SiteAdmin,
    /// Instance-wide (or organisation-wide) administration.
    Instance,
    /// About the caller itself: answers every valid credential, showing only what it reaches.
    Own,
}

use Access::*;

const TABLE: &[(&str, &str, Access)] = &[
    ("get", "/health", Public),
    ("get", "/metrics", Public),
    ("post", "/api/event", Public),
    ("post", "/events", Public),
    ("post", "/v1/intake", Public),
    ("post", "/api/auth/setup", Public),
    ("post", "/api/auth/login", Public),
    ("post", "/api/auth/logout", Public),
    ("post", "/api/share/unlock", Public),
    ("get", "/", Public),
    ("get", "/assets/{file}", Public),
    ("get", "/js/heartbeat.js", Public),
    ("get", "/heartbeat.js", Public),
    ("post", "/api/events", Ingest),
    ("post", "/api/v1/events", Ingest),
    ("post", "/api/v1/events/batch", Ingest),
    ("post", "/api/v2/query", Read),
    ("post", "/api/v2/funnel", Read),
    ("get", "/api/sites/{site_id}/alerts", Read),
    ("post", "/api/sites/{site_id}/alerts", SiteAdmin),
    ("get", "/api/sites/{site_id}/alerts/history", Read),
    ("get", "/api/sites/{site_id}/alerts/{alert_id}", Read),
    ("put", "/api/sites/{site_id}/alerts/{alert_id}", SiteAdmin),
    (
        "delete",
        "/api/sites/{site_id}/alerts/{alert_id}",
        SiteAdmin,
    ),
    ("get", "/api/sites/{site_id}/webhooks", SiteAdmin),
    ("post", "/api/sites/{site_id}/webhooks", SiteAdmin),
    (
        "delete",
        "/api/sites/{site_id}/webhooks/{webhook_id}",
        SiteAdmin,
    ),
    ("get", "/api/sites/{site_id}/deliveries", SiteAdmin),
    ("get", "/api/sites/{site_id}/reports", SiteAdmin),
    ("post", "/api/sites/{site_id}/reports", SiteAdmin),
    (
        "delete",
        "/api/sites/{site_id}/reports/{report_id}",
        SiteAdmin,
    ),
    (
        "post",
        "/api/sites/{site_id}/reports/{report_id}/send",
        SiteAdmin,
    ),
    ("get", "/api/reports/unsubscribe", Public),
    ("post", "/api/reports/unsubscribe", Public),
    ("get", "/api/sites/{site_id}/annotations", Read),
    ("post", "/api/sites/{site_id}/annotations", SiteAdmin),
    (
        "put",
        "/api/sites/{site_id}/annotations/{annotation_id}",
        SiteAdmin,
    ),
    (
        "delete",
        "/api/sites/{site_id}/annotations/{annotation_id}",
        SiteAdmin,
    ),
    ("get", "/api/sites/{site_id}/funnels", Read),
    ("post", "/api/sites/{site_id}/funnels", SiteAdmin),
    ("get", "/api/sites/{site_id}/funnels/{funnel_id}", Read),
    (
        "delete",
        "/api/sites/{site_id}/funnels/{funnel_id}",
        SiteAdmin,
    ),
    ("post", "/api/v1/funnels", SiteAdmin),
    ("get", "/api/v1/funnels", Read),
    ("get", "/api/v1/funnels/{funnelId}", Read),
    ("delete", "/api/v1/funnels/{funnelId}", SiteAdmin),
    ("get", "/api/v1/funnels/{funnelId}/analytics", Read),
    ("get", "/api/stats", Read),
    ("get", "/api/v1/events", Read),
    ("get", "/api/v1/events/{id}", Read),
    ("get", "/api/v1/events/counts", Read),
    ("get", "/api/v1/events/summary", Read),
    ("get", "/api/v1/metrics", Read),
    ("post", "/api/v2/retention", Read),
    ("post", "/api/v2/paths", Read),
    ("post", "/api/v2/journey", Read),
    ("get", "/api/v1/retention", Read),
    ("get", "/api/v1/users/{userId}/journey", Read),
    ("get", "/analytics/metrics", Read),
    ("get", "/analytics/summary", Read),
    ("get", "/analytics/top-pages", Read),
    ("get", "/analytics/timeseries", Read),
    ("get", "/analytics/recent", Read),
    ("get", "/api/v1/realtime/visitors", Read),
    ("get", "/api/v1/stats/realtime/visitors", Read),
    ("get", "/api/v1/stats/aggregate", Read),
    ("get", "/api/v1/stats/timeseries", Read),
    ("get", "/api/v1/stats/breakdown", Read),
    ("get", "/api/v1/sites/{site_id}", Read),
    ("get", "/api/v1/sites/custom-props", Read),
    ("get", "/api/v1/sites/goals", Read),
    ("get", "/api/sites/{site_id}/goals", Read),
    ("get", "/api/live", Read),
    ("get", "/api/export", Read),
    ("post", "/api/import", Read),
    ("post", "/api/imports/plausible", Read),
    ("post", "/api/imports/umami", Read),
    ("get", "/api/imports", Read),
    ("delete", "/api/imports/{import_id}", SiteAdmin),
    ("get", "/api/sites/{site_id}", Read),
    ("put", "/api/sites/{site_id}", SiteAdmin),
    ("delete", "/api/sites/{site_id}", SiteAdmin),
    ("put", "/api/sites/{site_id}/rules", SiteAdmin),
    ("put", "/api/sites/{site_id}/share", SiteAdmin),
    ("delete", "/api/sites/{site_id}/share", SiteAdmin),
    ("post", "/api/sites/{site_id}/goals", SiteAdmin),
    ("delete", "/api/sites/{site_id}/goals/{goal_id}", SiteAdmin),
    ("put", "/api/v1/sites/goals", SiteAdmin),
    ("delete", "/api/v1/sites/goals/{goal_id}", SiteAdmin),
    ("post", "/api/keys", SiteAdmin),
    ("delete", "/api/keys/{key_id}", SiteAdmin),
    ("put", "/api/v1/sites/{site_id}", SiteAdmin),
    ("delete", "/api/v1/sites/{site_id}", SiteAdmin),
    ("put", "/api/v1/sites/shared-links", SiteAdmin),
    ("put", "/api/v1/sites/custom-props", SiteAdmin),
    ("delete", "/api/v1/sites/custom-props/{property}", SiteAdmin),
    ("post", "/api/site/create", Instance),
    ("post", "/api/v1/sites", Instance),
    ("post", "/api/orgs", Instance),
    ("post", "/api/users", Instance),
    ("delete", "/api/users/{user_id}", Instance),
    ("post", "/api/backup", Instance),
    ("get", "/api/sites", Own),
    ("get", "/api/v1/sites", Own),
    ("get", "/api/keys", Own),
    ("get", "/api/orgs", Own),
    ("get", "/api/users", Own),
    ("get", "/api/auth/me", Own),
];

const SITE: &str = "a.example";

/// A credential to present.
#[derive(Clone, Debug)]
enum Credential {
    Key(String),
    Bearer(String),
    Cookie(String),
}

struct Probe<'a> {
    server: &'a TestServer,
    /// Replaces `{key_id}`.
    key_id: String,
    /// Replaces `{user_id}`.
    user_id: String,
}

impl Probe<'_> {
    async fn send(
        &self,
        method: &str,
        path: &str,
        credential: Option<&Credential>,
    ) -> (u16, String) {
        let path = path
            .replace("{site_id}", SITE)
            .replace("{id}", "some-event")
            .replace("{key_id}", &self.key_id)
            .replace("{import_id}", "1")
            .replace("{goal_id}", "1")
            .replace("{user_id}", &self.user_id);
        // Seed 000's read names the site `siteId`; every other route `site_id`.
        let site_param = if path == "/analytics/metrics" {
            "siteId"
        } else {
            "site_id"
        };
        let url = self.server.url(&format!("{path}?{site_param}={SITE}"));
        let http = &self.server.http;
        let request = match method {
            "get" => http.get(url),
            "post" => http.post(url),
            "put" => http.put(url),
            "delete" => http.delete(url),
            other => panic!("method {other}"),
        };
        let request = match credential {
            None => request,
            Some(Credential::Key(key)) => request.header("x-api-key", key),
            Some(Credential::Bearer(token)) => request.bearer_auth(token),
            Some(Credential::Cookie(token)) => {
                request.header("cookie", format!("hb_session={token}"))
            }
        };
        let body = json!({"site_id": SITE, "scope": "admin", "name": "probe",
            "email": "probe@example.com", "password": "probe-password", "org_id": "default",
            "role": "owner", "domain": "probe.example"});
        let response = request
            .header("content-type", "application/json")
            .header("user-agent", UA)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

async fn create_key(server: &TestServer, body: Value) -> (String, String) {
    let response = server
        .http
        .post(server.url("/api/keys"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    (
        body["key_id"].as_str().unwrap().to_owned(),
        body["api_key"].as_str().unwrap().to_owned(),
    )
}

async fn post_admin(server: &TestServer, path: &str, body: Value) -> Value {
    let response = server
        .http
        .post(server.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

#[tokio::test]
async fn every_private_route_checks_its_caller() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    server.create_site(SITE, "UTC").await;
    server.create_site("b.example", "UTC").await;
    let (_, ingest_a) = create_key(&server, json!({"scope": "ingest", "site_id": SITE})).await;
    let (read_a_id, read_a) = create_key(&server, json!({"scope": "read", "site_id": SITE})).await;
    let (_, admin_a) = create_key(&server, json!({"scope": "admin", "site_id": SITE})).await;
    let (_, admin_b) = create_key(&server, json!({"scope": "admin", "site_id": "b.example"})).await;
    let (revoked_id, revoked) =
        create_key(&server, json!({"scope": "admin", "site_id": SITE})).await;
    let response = server
        .http
        .delete(server.url(&format!("/api/keys/{revoked_id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A viewer of another organisation, signed in.
    post_admin(
        &server,
        "/api/orgs",
        json!({"org_id": "acme", "name": "Acme"}),
    )
    .await;
    post_admin(
        &server,
        "/api/site/create",
        json!({"domain": "c.example", "org_id": "acme"}),
    )
    .await;
    let owner = post_admin(
        &server,
        "/api/users",
        json!({"email": "owner@default.example", "password": "owner-password", "role": "owner"}),
    )
    .await;
    let owner_id = owner["user"]["user_id"].as_str().unwrap().to_owned();
    post_admin(
        &server,
        "/api/users",
        json!({"email": "viewer@acme.example", "password": "viewer-password", "org_id": "acme", "role": "admin"}),
    )
    .await;
    let login = server
        .http
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": "viewer@acme.example", "password": "viewer-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let session: Value = login.json().await.unwrap();
    let session = session["token"].as_str().unwrap().to_owned();

    // The documented routes and the table agree.
    let document: Value = server
        .http
        .get(server.url("/api-docs/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let tabled: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let unclassified: Vec<_> = documented.difference(&tabled).collect();
    assert!(
        unclassified.is_empty(),
        "routes without a row in tests/auth.rs TABLE (decide who may call them): {unclassified:?}"
    );
    let stale: Vec<_> = tabled.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "rows for routes that do not exist: {stale:?}"
    );

    let probe = Probe {
        server: &server,
        key_id: read_a_id.clone(),
        user_id: owner_id.clone(),
    };
    let wrong = "hb_0000000000000000000000000000000000000000".to_owned();
    let bad_credentials = [
        Credential::Key(wrong.clone()),
        Credential::Bearer(wrong),
        Credential::Key(revoked.clone()),
        Credential::Bearer(revoked),
        Credential::Cookie("hbs_0000000000000000000000000000000000000000".into()),
        Credential::Bearer("hbp_0000000000000000000000000000000000000000".into()),
    ];
    let others = [
        Credential::Key(admin_b.clone()),
        Credential::Cookie(session.clone()),
        Credential::Bearer(session.clone()),
    ];
    let mut checked = 0;
    for (method, path, access) in TABLE {
        if *access == Public {
            continue;
        }
        let (status, body) = probe.send(method, path, None).await;
        assert_eq!(status, 401, "{method} {path} without a credential: {body}");
        assert!(
            body.contains("\"success\":false"),
            "{method} {path}: {body}"
        );
        for credential in &bad_credentials {
            let (status, body) = probe.send(method, path, Some(credential)).await;
            assert_eq!(status, 401, "{method} {path} with {credential:?}: {body}");
        }
        for credential in &others {
            let (status, body) = probe.send(method, path, Some(credential)).await;
            match access {
                Read | SiteAdmin | Instance => assert!(
                    status == 403 || status == 404,
                    "{method} {path} with another site's {credential:?}: {status} {body}"
                ),
                Own => {
                    assert_eq!(status, 200, "{method} {path} with {credential:?}: {body}");
                    assert!(
                        !body.contains(SITE),
                        "{method} {path} shows {SITE} to {credential:?}: {body}"
                    );
                }
                // The key decides the site; this body names none of the formats' fields.
                // Ingest ignores session cookies (401: no key).
                Ingest => assert!(
                    status == 400
                        || status == 403
                        || (status == 401 && matches!(credential, Credential::Cookie(_))),
                    "{method} {path} with {credential:?}: {status} {body}"
                ),
                Public => unreachable!(),
            }
        }
        let too_small = match access {
            Read => Some(&ingest_a),
            SiteAdmin => Some(&read_a),
            Instance => Some(&admin_a),
            _ => None,
        };
        if let Some(key) = too_small {
            let (status, body) = probe
                .send(method, path, Some(&Credential::Key(key.clone())))
                .await;
            assert!(
                status == 403 || status == 404,
                "{method} {path} with a key of too small a scope: {status} {body}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} private routes checked");

    // Seed 002's keyed event names its site: another site's key may not use it.
    let response = server
        .http
        .post(server.url("/api/event"))
        .header("x-api-key", &admin_b)
        .json(&json!({"site_id": SITE, "event_type": "pageview", "path": "/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Nothing was changed: the site and its keys are there, no event reached it.
    let sites: Value = server
        .http
        .get(server.url(&format!("/api/sites/{SITE}")))
        .bearer_auth(&read_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sites["site"]["site_id"], SITE, "{sites}");
    let stored = server
        .query(
            &read_a,
            json!({"site_id": SITE, "metrics": ["events"], "date_range": "all"}),
        )
        .await;
    assert_eq!(stored["results"][0]["metrics"][0], 0, "{stored}");
    let login = server
        .http
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": "owner@default.example", "password": "owner-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the probed user still exists");
    server.stop().await;
}
