//! The ClickHouse store keeps the contract every event store keeps
//! (`heartbeat_store::contract`), on the two-shard cluster of `scripts/services`.

mod common;

use heartbeat_store::contract::check_event_store;

#[tokio::test]
async fn clickhouse_keeps_the_event_store_contract() {
    check_event_store(common::fresh_store).await;
}
