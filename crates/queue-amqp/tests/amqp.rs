//! What the RabbitMQ stream queue does beyond the contract: faults, back-pressure, a restart's
//! backlog and cursors shared with another publisher. Against the broker at
//! `HEARTBEAT_TEST_AMQP_URL`.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use heartbeat_queue::{Cursor, Delivery, EventQueue, QueueError};
use heartbeat_queue_amqp::{AmqpOptions, AmqpQueue};

async fn open(name: &str, options: AmqpOptions) -> AmqpQueue {
    AmqpQueue::open(&common::broker_url(), name, options)
        .await
        .unwrap_or_else(|error| panic!("open {name}: {error}"))
}

/// Everything after `after`, in as many receives as it takes.
async fn receive_all(queue: &AmqpQueue, mut after: Cursor) -> Vec<Delivery> {
    let mut all = Vec::new();
    loop {
        let batch = queue.receive(after, 50, Duration::ZERO).await.unwrap();
        let Some(last) = batch.last() else {
            return all;
        };
        after = last.cursor;
        all.extend(batch);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_unavailable_within_seconds() {
    // Nothing listens on port 1: the connection is refused.
    let started = Instant::now();
    let options = AmqpOptions {
        connect_timeout: Duration::from_secs(3),
        ..AmqpOptions::default()
    };
    let opened = AmqpQueue::open("amqp://guest:guest@127.0.0.1:1/%2f", "nowhere", options).await;
    let Err(error) = opened else {
        panic!("a queue opened on a broker that is not there");
    };
    assert!(
        matches!(error, QueueError::Unavailable { .. }),
        "Unavailable, not {error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_beyond_max_pending_messages_are_refused_until_acknowledged() {
    let name = common::fresh_name("full");
    let options = AmqpOptions {
        max_pending_messages: Some(3),
        max_message_bytes: 1024,
        ..AmqpOptions::default()
    };
    let queue = open(&name, options).await;
    for n in 0..3 {
        queue
            .append(format!("message {n}").into_bytes())
            .await
            .unwrap();
    }
    assert!(
        matches!(
            queue.append(b"one too many".to_vec()).await,
            Err(QueueError::Full { .. })
        ),
        "the fourth pending message is refused"
    );
    assert!(matches!(
        queue.append(vec![b'x'; 1025]).await,
        Err(QueueError::RecordTooLarge {
            len: 1025,
            limit: 1024
        })
    ));
    let all = receive_all(&queue, Cursor::START).await;
    assert_eq!(all.len(), 3, "only the accepted messages are in the stream");
    queue.ack(all[0].cursor).await.unwrap();
    queue.append(b"room again".to_vec()).await.unwrap();
    assert!(matches!(
        queue.append(b"full again".to_vec()).await,
        Err(QueueError::Full { .. })
    ));
    drop(queue);
    common::delete_queues(&[name]).await;
}

/// The broker sends a consumer at most its prefetch of unacknowledged deliveries: a receive
/// of more must grant credit on the way. Before, it waited out `catch_up_wait` with the
/// prefetch in hand and returned that, so a processor behind by more than the prefetch read
/// 1,000 messages per 5 s (a backlog after a broker restart never drained).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_takes_more_than_the_prefetch_at_once() {
    let name = common::fresh_name("credit");
    let options = AmqpOptions {
        prefetch: 100,
        catch_up_wait: Duration::from_secs(30),
        ..AmqpOptions::default()
    };
    let queue = open(&name, options).await;
    for n in 0..500 {
        queue.append(format!("m{n}").into_bytes()).await.unwrap();
    }
    let started = Instant::now();
    let got = queue
        .receive(Cursor::START, 500, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        got.len(),
        500,
        "one receive of 500 with a prefetch of 100 (took {:?})",
        started.elapsed()
    );
    let payloads: Vec<String> = got
        .iter()
        .map(|d| String::from_utf8(d.payload.clone()).unwrap())
        .collect();
    let expected: Vec<String> = (0..500).map(|n| format!("m{n}")).collect();
    assert_eq!(payloads, expected);
}

/// A receive holds at most `max_receive_bytes` of payloads (plus the one that crossed it);
/// the rest comes with the next receive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_stops_at_its_byte_budget() {
    let name = common::fresh_name("bytes");
    let options = AmqpOptions {
        max_receive_bytes: 1000,
        ..AmqpOptions::default()
    };
    let queue = open(&name, options).await;
    for n in 0..10u8 {
        queue.append(vec![b'a' + n; 300]).await.unwrap();
    }
    let first = queue
        .receive(Cursor::START, 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first.len(), 4, "300-byte messages up to 1,000 bytes: 4");
    let rest = receive_all(&queue, first[3].cursor).await;
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[0].payload, vec![b'e'; 300]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_handle_resumes_the_backlog() {
    let name = common::fresh_name("restart");
    let acked = {
        let queue = open(&name, AmqpOptions::default()).await;
        for n in 0..5 {
            queue
                .append(format!("message {n}").into_bytes())
                .await
                .unwrap();
        }
        assert_eq!(queue.backlog().messages, Some(5));
        let all = receive_all(&queue, Cursor::START).await;
        queue.ack(all[1].cursor).await.unwrap();
        assert_eq!(queue.backlog().messages, Some(3));
        all[1].cursor
    };
    let queue = open(&name, AmqpOptions::default()).await;
    assert_eq!(queue.acked(), acked, "the acknowledged cursor survives");
    assert_eq!(
        queue.backlog().messages,
        Some(3),
        "the backlog is found again at open"
    );
    queue.append(b"message 5".to_vec()).await.unwrap();
    assert_eq!(queue.backlog().messages, Some(4));
    let rest = receive_all(&queue, queue.acked()).await;
    assert_eq!(rest.len(), 4);
    queue.ack(rest[3].cursor).await.unwrap();
    assert!(queue.backlog().is_empty());
    drop(queue);
    let queue = open(&name, AmqpOptions::default()).await;
    assert!(
        queue.backlog().is_empty(),
        "still empty after another restart"
    );
    drop(queue);
    common::delete_queues(&[name]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_cursors_stay_lower_bounds_with_another_publisher() {
    let name = common::fresh_name("publishers");
    let one = open(&name, AmqpOptions::default()).await;
    let other = open(&name, AmqpOptions::default()).await;
    let mut appended = HashMap::new();
    for n in 0..20 {
        let (queue, who) = if n % 3 == 0 {
            (&other, "other")
        } else {
            (&one, "one")
        };
        let payload = format!("{who} {n}").into_bytes();
        let cursor = queue.append(payload.clone()).await.unwrap();
        appended.insert(payload, cursor);
    }
    let all = receive_all(&one, Cursor::START).await;
    assert_eq!(all.len(), 20);
    for delivery in &all {
        let cursor = appended[&delivery.payload];
        assert!(
            cursor <= delivery.cursor,
            "{}: appended at {cursor:?}, delivered at {:?}",
            String::from_utf8_lossy(&delivery.payload),
            delivery.cursor
        );
    }
    drop((one, other));
    common::delete_queues(&[name]).await;
}

/// A handle opens while another publisher appends without pause (a worker starting under
/// load): the probe for the stream's end stops after a bounded time instead of waiting for a
/// quiet moment that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_opens_while_others_append_steadily() {
    let name = common::fresh_name("steady");
    let publisher = std::sync::Arc::new(open(&name, AmqpOptions::default()).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appender = {
        let (publisher, stop) = (publisher.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                publisher.append(format!("{n}").into_bytes()).await.unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let opened = tokio::time::timeout(
        Duration::from_secs(20),
        AmqpQueue::open(&common::broker_url(), &name, AmqpOptions::default()),
    )
    .await;
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let appended = appender.await.unwrap();
    let opened = opened
        .expect("the handle opened under steady appends")
        .unwrap();
    assert!(appended > 0);
    assert!(opened.backlog().messages.is_some());
    eprintln!("opened in {took:?} while {appended} messages were appended");
    drop((opened, publisher));
    common::delete_queues(&[name]).await;
}

/// A TCP relay to the broker that can cut every connection through it, as a broker restart
/// or a network fault would, without disturbing the broker the other tests share.
struct Relay {
    url: String,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start() -> Relay {
        let broker_url = common::broker_url();
        let (credentials, rest) = broker_url
            .rsplit_once('@')
            .expect("HEARTBEAT_TEST_AMQP_URL names user@host:port");
        let (broker, vhost) = rest.split_once('/').unwrap_or((rest, ""));
        let broker = broker.to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("{credentials}@{}/{vhost}", listener.local_addr().unwrap());
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let broker = broker.clone();
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&broker).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay { url, cut }
    }

    /// Drops every connection through the relay (new ones still go through).
    fn cut(&self) {
        self.cut.send_modify(|cuts| *cuts += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_unavailable_then_reconnected() {
    let relay = Relay::start().await;
    let name = common::fresh_name("reconnect");
    let options = AmqpOptions {
        connect_timeout: Duration::from_secs(3),
        reconnect_backoff: Duration::from_millis(100),
        ..AmqpOptions::default()
    };
    let queue = AmqpQueue::open(&relay.url, &name, options).await.unwrap();
    let mut appended = HashMap::new();
    let before = queue.append(b"before".to_vec()).await.unwrap();
    appended.insert(b"before".to_vec(), before);
    assert_eq!(
        queue
            .receive(Cursor::START, 10, Duration::from_secs(5))
            .await
            .unwrap()
            .len(),
        1
    );

    // A receive waiting when the connection drops answers at once, it does not wait on.
    let waiting = {
        let started = Instant::now();
        let received = queue.receive(before, 10, Duration::from_secs(30));
        let cut = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            relay.cut();
        };
        let (received, ()) = tokio::join!(received, cut);
        (received, started.elapsed())
    };
    assert!(
        matches!(waiting.0, Err(QueueError::Unavailable { .. })),
        "a lost connection gives Unavailable, not {:?}",
        waiting.0
    );
    assert!(
        waiting.1 < Duration::from_secs(5),
        "answered in {:?}",
        waiting.1
    );

    let mut failures = 0;
    let started = Instant::now();
    let mut after = None;
    while started.elapsed() < Duration::from_secs(20) {
        let payload = format!("after {failures}").into_bytes();
        match queue.append(payload.clone()).await {
            Ok(cursor) => {
                after = Some(cursor);
                appended.insert(payload, cursor);
                break;
            }
            Err(QueueError::Unavailable { .. }) => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("a lost connection gives Unavailable, not {error:?}"),
        }
    }
    let after = after.expect("appends succeed again once the broker is reachable");
    assert!(before < after, "cursors grow across a reconnection");

    let all = receive_all(&queue, Cursor::START).await;
    assert_eq!(
        all.first().map(|d| d.payload.clone()),
        Some(b"before".to_vec()),
        "what was appended before the cut is still there"
    );
    for delivery in &all {
        if let Some(cursor) = appended.get(&delivery.payload) {
            assert!(
                *cursor <= delivery.cursor,
                "an append's cursor stays a lower bound"
            );
        }
    }
    assert!(
        all.iter().any(|d| d.payload.starts_with(b"after")),
        "the append after the reconnection is delivered"
    );
    drop(queue);
    common::delete_queues(&[name]).await;
}
