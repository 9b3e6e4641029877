//! Every response carries an `x-request-id`: the caller's when it is well formed, else a new
//! one.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let id = |response: &reqwest::Response| {
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let fresh = server.http.get(server.url("/health")).send().await.unwrap();
    let generated = id(&fresh);
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let again = server.http.get(server.url("/health")).send().await.unwrap();
    assert_ne!(id(&again), generated);

    let kept = server
        .http
        .get(server.url("/health"))
        .header("x-request-id", "lb-1234.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(id(&kept), "lb-1234.abc");
    let replaced = server
        .http
        .get(server.url("/nowhere"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 404);
    assert_ne!(id(&replaced), "bad id with spaces");
    let error = server
        .http
        .post(server.url("/api/v2/query"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), 401);
    assert!(!id(&error).is_empty());
    server.stop().await;
}
