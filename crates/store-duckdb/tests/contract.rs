//! The DuckDB store keeps the contract every event store keeps (`heartbeat_store::contract`).

use heartbeat_store::contract::check_event_store;
use heartbeat_store_duckdb::DuckDbStore;

#[tokio::test]
async fn duckdb_keeps_the_event_store_contract() {
    check_event_store(|| async { DuckDbStore::open_in_memory().unwrap() }).await;
}
