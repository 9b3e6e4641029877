//! The served OpenAPI document is valid (checked by Python's `openapi-spec-validator`, which
//! `scripts/test` installs) and gathered from the routers (no route is registered past it),
//! every documented operation reaches a handler, and the Swagger UI is served from the
//! binary.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every `.route(`, `.route_service(` or `.nest(` call in the server's code: a route
/// registered that way bypasses the document. Routes are registered with
/// `utoipa_axum::routes!`, which documents them as it routes them.
fn undocumented_registrations() -> Vec<String> {
    fn walk(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).unwrap();
                for call in [".route(", ".route_service(", ".nest("] {
                    for (at, _) in source.match_indices(call) {
                        let line = source[..at].lines().count();
                        found.push(format!("{}:{line}: {call}", path.display()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found
}

fn routes_in_document(document: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn openapi_document_is_valid_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let response = server
        .http
        .get(server.url("/api-docs/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();

    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    // The reference validator of the OpenAPI specification (utoipa writes OpenAPI 3.1, which
    // Rust parsers such as `openapiv3` do not read).
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let output = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs (scripts/test installs openapi-spec-validator)");
    assert!(
        output.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The document is gathered from the routers: no route is registered past it.
    let bypassing = undocumented_registrations();
    assert!(
        bypassing.is_empty(),
        "routes registered without their OpenAPI operation: {bypassing:?}"
    );
    let documented = routes_in_document(&document);
    assert!(documented.contains(&("post".into(), "/api/v2/query".into())));
    assert!(documented.contains(&("get".into(), "/api/v1/events".into())));
    assert!(documented.contains(&("post".into(), "/api/v1/events".into())));
    assert!(
        documented.len() >= 49,
        "only {} operations documented",
        documented.len()
    );

    // Every documented operation reaches a handler: never the fallback's "no such endpoint".
    for (method, path) in &documented {
        let url = server.url(&path.replace(['{', '}'], ""));
        let request = match method.as_str() {
            "get" => server.http.get(url),
            "post" => server.http.post(url),
            "put" => server.http.put(url),
            "patch" => server.http.patch(url),
            _ => server.http.delete(url),
        };
        let response = request
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(
            !(status == 404 && body.contains("no such endpoint")),
            "{method} {path} is documented but not routed"
        );
    }

    // The interactive UI, served from the binary.
    let page = server
        .http
        .get(server.url("/api-docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the UI page loads something remotely"
    );
    let config = server
        .http
        .get(server.url("/api-docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    assert!(config
        .text()
        .await
        .unwrap()
        .contains("/api-docs/openapi.json"));
    let bundle = server
        .http
        .get(server.url("/api-docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    server.stop().await;
}
