//! The write-ahead log keeps the contract every queue keeps (`heartbeat_queue::contract`).

use heartbeat_queue::contract::check_event_queue;
use heartbeat_queue::{WalConfig, WalQueue};

#[tokio::test]
async fn the_wal_keeps_the_event_queue_contract() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    check_event_queue(|n| {
        let root = root.clone();
        async move { WalQueue::open(WalConfig::new(root.join(n.to_string()))).unwrap() }
    })
    .await;
}
