//! The ClickHouse store keeps the contract every event store keeps
//! (`heartbeat_store::contract`), on the two-shard cluster of `scripts/services`.

mod common;

use std::sync::{Arc, Mutex};

use heartbeat_store::contract::check_event_store;
use heartbeat_store_clickhouse::ClickHouseStore;

#[tokio::test]
async fn clickhouse_keeps_the_event_store_contract() {
    let databases = Arc::new(Mutex::new(Vec::new()));
    check_event_store(|| {
        let databases = databases.clone();
        async move {
            let options = common::fresh_options();
            databases.lock().unwrap().push(options.database.clone());
            ClickHouseStore::open(options)
                .await
                .expect("a store on the test cluster")
        }
    })
    .await;
    let databases = databases.lock().unwrap().clone();
    for database in databases {
        common::drop_database(&database).await;
    }
}
