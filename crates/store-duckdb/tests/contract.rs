//! The DuckDB store keeps the contracts every event store, metadata store and alert store keep
//! (`heartbeat_store::contract`).

use heartbeat_store::contract::{check_alert_store, check_event_store, check_meta_store};
use heartbeat_store_duckdb::DuckDbStore;

#[tokio::test]
async fn duckdb_keeps_the_event_store_contract() {
    check_event_store(|| async { DuckDbStore::open_in_memory().unwrap() }).await;
}

#[tokio::test]
async fn duckdb_keeps_the_metadata_store_contract() {
    check_meta_store(|| async { DuckDbStore::open_in_memory().unwrap() }).await;
}

#[tokio::test]
async fn duckdb_keeps_the_alert_store_contract() {
    check_alert_store(|| async { DuckDbStore::open_in_memory().unwrap() }).await;
}
