//! The RabbitMQ stream queue keeps the contract every queue keeps
//! (`heartbeat_queue::contract`), against the broker at `HEARTBEAT_TEST_AMQP_URL`.

mod common;

use heartbeat_queue::contract::check_event_queue;
use heartbeat_queue_amqp::{AmqpOptions, AmqpQueue};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_amqp_stream_keeps_the_event_queue_contract() {
    let url = common::broker_url();
    let prefix = common::fresh_name("contract");
    check_event_queue(|n| {
        let url = url.clone();
        let name = format!("{prefix}-{n}");
        async move {
            AmqpQueue::open(&url, &name, AmqpOptions::default())
                .await
                .unwrap_or_else(|error| panic!("open {name}: {error}"))
        }
    })
    .await;
    let names: Vec<String> = (1..=8).map(|n| format!("{prefix}-{n}")).collect();
    common::delete_queues(&names).await;
}
