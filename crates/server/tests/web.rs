//! The embedded web build: the tracker's and the dashboard's headers (type, caching, ETag
//! revalidation) and the one error shape for a missing bundle. Works on the real build and on
//! the placeholder `build.rs` embeds when the web build has not run.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn tracker_is_served_with_cache_headers_and_revalidates() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    for path in ["/js/heartbeat.js", "/heartbeat.js"] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(
            headers["content-type"], "text/javascript; charset=utf-8",
            "{path}"
        );
        let cache = headers["cache-control"].to_str().unwrap();
        assert!(
            cache.starts_with("public, max-age=86400"),
            "{path}: {cache}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert_eq!(headers["vary"], "accept-encoding");
        assert!(headers.get("content-encoding").is_none());
        let body = response.text().await.unwrap();
        assert!(body.contains("heartbeat"), "{body}");

        // The gzip twin, when the web build made one (reqwest here does not decompress).
        let gzipped = server
            .http
            .get(server.url(path))
            .header("accept-encoding", "gzip, br")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.status(), 200);
        if gzipped.headers().get("content-encoding").is_some() {
            assert_eq!(gzipped.headers()["content-encoding"], "gzip");
            let bytes = gzipped.bytes().await.unwrap();
            assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip stream");
            assert!(bytes.len() < body.len());
        }

        let revalidated = server
            .http
            .get(server.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 304, "{path}");
        assert_eq!(revalidated.headers()["etag"], etag.as_str());
        assert!(revalidated.bytes().await.unwrap().is_empty());

        let stale = server
            .http
            .get(server.url(path))
            .header("if-none-match", "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn dashboard_page_is_revalidated_and_missing_bundles_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let response = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let html = response.text().await.unwrap();
    assert!(html.contains("Heartbeat"), "{html}");
    assert!(
        !html.contains("https://"),
        "the dashboard loads nothing remotely"
    );

    let response = server
        .http
        .get(server.url("/assets/no-such-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["details"][0]["field"], "path");
    server.stop().await;
}
