//! The served OpenAPI document is valid (checked by Python's `openapi-spec-validator`, which
//! `scripts/test` installs), lists exactly the routes
//! the routers define, and every documented operation reaches a handler; the Swagger UI is
//! served from the binary.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The text of the call starting at `start` (just after its opening parenthesis) up to its
/// closing one.
fn call_text(source: &str, start: usize) -> &str {
    let mut depth = 1;
    for (offset, c) in source[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &source[start..start + offset];
                }
            }
            _ => {}
        }
    }
    &source[start..]
}

/// Every `(method, path)` registered with `.route("path", method(...).method(...))` in the
/// route modules: what the router serves, read from the code that builds it.
fn routes_in_code() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (at, _) in source.match_indices(".route(") {
            let call = call_text(&source, at + ".route(".len());
            let path = call.split('"').nth(1).expect("a literal path").to_owned();
            let handlers = &call[call.find(',').expect("a handler")..];
            let mut found = false;
            for method in METHODS {
                let mut rest = handlers;
                while let Some(i) = rest.find(&format!("{method}(")) {
                    let boundary = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
                    if boundary && !rest[..i].ends_with('_') {
                        routes.insert((method.to_owned(), path.clone()));
                        found = true;
                    }
                    rest = &rest[i + 1..];
                }
            }
            assert!(found, "no method found for route {path}");
        }
    }
    routes
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

    // The document lists exactly the routes in the code (the docs' own pages aside).
    let in_code: BTreeSet<_> = routes_in_code()
        .into_iter()
        .filter(|(_, path)| !path.starts_with("/api-docs"))
        .collect();
    assert!(in_code.contains(&("post".into(), "/api/v2/query".into())));
    let documented = routes_in_document(&document);
    let undocumented: Vec<_> = in_code.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    let unknown: Vec<_> = documented.difference(&in_code).collect();
    assert!(
        unknown.is_empty(),
        "documented routes that the code lacks: {unknown:?}"
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
