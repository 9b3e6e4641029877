//! The PostgreSQL store keeps the contracts every metadata store and alert store keeps
//! (`heartbeat_store::contract`), on a real server: each check gets a fresh schema.
//! Needs `HEARTBEAT_TEST_POSTGRES_URL` (`scripts/services start`, then
//! `source "$(scripts/services env)"`).

mod common;

use common::TestSchemas;
use heartbeat_store::contract::{check_alert_store, check_meta_store};

#[tokio::test]
async fn postgres_keeps_the_metadata_store_contract() {
    let schemas = TestSchemas::new();
    let schemas = &schemas;
    check_meta_store(move || schemas.fresh_store()).await;
}

#[tokio::test]
async fn postgres_keeps_the_alert_store_contract() {
    let schemas = TestSchemas::new();
    let schemas = &schemas;
    check_alert_store(move || schemas.fresh_store()).await;
}
