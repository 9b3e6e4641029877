//! `POST /api/backup` while events keep arriving: a server started on the backup answers
//! with exactly what was stored when the backup was taken, and goes on ingesting.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{json, Value};

async fn send(server: &TestServer, key: &str, pages: std::ops::Range<u32>) {
    let batch: Vec<Value> = pages
        .map(|i| json!({"userId": format!("u{i}"), "eventName": "pageview", "timestamp": "2026-03-10T10:00:00Z", "properties": {"pageUrl": format!("/p{i}")}}))
        .collect();
    let response = server
        .http
        .post(server.url("/api/v1/events"))
        .header("x-api-key", key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

async fn events(server: &TestServer, key: &str) -> u64 {
    let body = server
        .query(
            key,
            json!({"site_id": "example.com", "metrics": ["events"], "date_range": "all"}),
        )
        .await;
    body["results"][0]["metrics"][0].as_u64().unwrap()
}

#[tokio::test]
async fn online_backup_restores_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site("example.com", "UTC").await;
    send(&server, &key, 0..50).await;
    server.wait_for_events(&key, "example.com", 50).await;

    let site_key = server
        .http
        .post(server.url("/api/backup"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(site_key.status(), 403);
    let response = server
        .http
        .post(server.url("/api/backup"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    let backup = PathBuf::from(report["path"].as_str().unwrap());
    assert!(backup.starts_with(dir.path().join("backups")), "{report}");
    assert!(report["bytes"].as_u64().unwrap() > 0);

    // The server goes on after the backup.
    send(&server, &key, 50..80).await;
    server.wait_for_events(&key, "example.com", 80).await;
    server.stop().await;

    let restored_dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&backup).unwrap() {
        let entry = entry.unwrap();
        let target = restored_dir.path().join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            for file in std::fs::read_dir(entry.path()).unwrap() {
                let file = file.unwrap();
                std::fs::copy(file.path(), target.join(file.file_name())).unwrap();
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    let restored = serve(restored_dir.path()).await;
    assert_eq!(events(&restored, &key).await, 50);
    // The restored server ingests and processes as usual.
    send(&restored, &key, 100..110).await;
    restored.wait_for_events(&key, "example.com", 60).await;
    restored.stop().await;
}
