//! What the tests against a real RabbitMQ share: the broker's address, names of their own,
//! and removing what they declared.

use std::time::{SystemTime, UNIX_EPOCH};

use lapin::options::QueueDeleteOptions;
use lapin::{Connection, ConnectionProperties};

/// The broker the tests run against; a test without one fails, it never skips.
pub fn broker_url() -> String {
    std::env::var("HEARTBEAT_TEST_AMQP_URL").unwrap_or_else(|_| {
        panic!(
            "HEARTBEAT_TEST_AMQP_URL is not set: these tests need a RabbitMQ (3.10 or later); \
             run `scripts/services start` and `source \"$(scripts/services env)\"`, then \
             `cargo test -p heartbeat-queue-amqp` again"
        )
    })
}

/// A stream name no earlier run used: `heartbeat-test-<what>-<pid>-<nanoseconds>`.
pub fn fresh_name(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("heartbeat-test-{what}-{}-{nanos}", std::process::id())
}

/// Deletes the streams `names` and their `.acked` queues, so test runs leave nothing behind.
pub async fn delete_queues(names: &[String]) {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    let connection = Connection::connect(&broker_url(), properties)
        .await
        .expect("connect to delete the test queues");
    let channel = connection.create_channel().await.expect("a channel");
    for name in names {
        for queue in [name.clone(), format!("{name}.acked")] {
            channel
                .queue_delete(&queue, QueueDeleteOptions::default())
                .await
                .expect("delete a test queue");
        }
    }
    let _ = connection.close(200, "test queues deleted").await;
}
