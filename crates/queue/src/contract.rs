//! The contract every [`EventQueue`] implementation must keep, as a suite an engine's crate
//! runs against the real engine (`cargo test` of `heartbeat-queue` runs it on the
//! write-ahead log; a broker's queue runs it on the broker `scripts/test` starts). It panics
//! with what broke. Compiled with the `contract` feature.
//!
//! `open(n)` opens queue number `n`: a new number is a new, empty queue; the same number
//! again is that queue as a restarted process sees it (after the previous handle was
//! dropped).
//!
//! What it pins down: an append resolves only once durable, and what is appended is handed
//! out in order, whole and once per receive from a cursor; cursors grow; `receive(after)`
//! starts just after `after`; `max` and `wait` are honoured and a waiting receive wakes on
//! an append; an acknowledged cursor survives a restart and what follows it is handed out
//! again; the backlog is empty exactly when everything is acknowledged; empty payloads are
//! refused; concurrent appends all arrive.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Cursor, Delivery, EventQueue, QueueError};

/// Runs every check, each on a queue of its own.
pub async fn check_event_queue<Q, F, Fut>(open: F)
where
    Q: EventQueue,
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Q>,
{
    delivers_in_order_from_any_cursor(open(1).await).await;
    honours_max_and_wait(open(2).await).await;
    a_waiting_receive_wakes_on_append(Arc::new(open(3).await)).await;
    acknowledged_cursors_survive_a_restart(&open, 4).await;
    unacknowledged_messages_survive_a_restart(&open, 5).await;
    backlog_is_empty_once_everything_is_acknowledged(open(6).await).await;
    refuses_empty_payloads(open(7).await).await;
    concurrent_appends_all_arrive(Arc::new(open(8).await)).await;
}

fn payload(n: usize) -> Vec<u8> {
    format!("message {n} {}", "x".repeat(n % 97)).into_bytes()
}

/// Everything after `after`, in as many receives as it takes.
async fn receive_all(queue: &dyn EventQueue, mut after: Cursor) -> Vec<Delivery> {
    let mut all = Vec::new();
    loop {
        let batch = queue.receive(after, 7, Duration::ZERO).await.unwrap();
        let Some(last) = batch.last() else {
            return all;
        };
        after = last.cursor;
        all.extend(batch);
    }
}

async fn append_all(queue: &dyn EventQueue, range: std::ops::Range<usize>) -> Vec<Cursor> {
    let mut cursors = Vec::new();
    for n in range {
        cursors.push(queue.append(payload(n)).await.unwrap());
    }
    cursors
}

fn payloads(deliveries: &[Delivery]) -> Vec<Vec<u8>> {
    deliveries.iter().map(|d| d.payload.clone()).collect()
}

async fn delivers_in_order_from_any_cursor(queue: impl EventQueue) {
    assert!(
        receive_all(&queue, Cursor::START).await.is_empty(),
        "a new queue is empty"
    );
    let appended = append_all(&queue, 0..40).await;
    assert!(
        appended.windows(2).all(|w| w[0] < w[1]),
        "append cursors grow"
    );
    let all = receive_all(&queue, Cursor::START).await;
    assert_eq!(
        payloads(&all),
        (0..40).map(payload).collect::<Vec<_>>(),
        "every message, whole, in order, once"
    );
    assert!(
        all.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "delivery cursors grow"
    );
    for (k, delivery) in all.iter().enumerate() {
        assert!(
            appended[k] <= delivery.cursor,
            "an append's cursor is reached once its delivery is"
        );
    }
    for k in [0, 1, 17, 38, 39] {
        let rest = receive_all(&queue, all[k].cursor).await;
        assert_eq!(
            payloads(&rest),
            (k + 1..40).map(payload).collect::<Vec<_>>(),
            "receive after the cursor of message {k}"
        );
    }
}

async fn honours_max_and_wait(queue: impl EventQueue) {
    append_all(&queue, 0..10).await;
    assert!(queue
        .receive(Cursor::START, 0, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
    let three = queue
        .receive(Cursor::START, 3, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(payloads(&three), (0..3).map(payload).collect::<Vec<_>>());
    let end = receive_all(&queue, Cursor::START)
        .await
        .last()
        .unwrap()
        .cursor;
    let started = Instant::now();
    let none = queue
        .receive(end, 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(none.is_empty(), "nothing after the last message");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "an empty receive waits about `wait`"
    );
}

async fn a_waiting_receive_wakes_on_append(queue: Arc<impl EventQueue>) {
    let waiting = {
        let queue = queue.clone();
        tokio::spawn(async move {
            queue
                .receive(Cursor::START, 10, Duration::from_secs(60))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    queue.append(b"wake up".to_vec()).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("a waiting receive returns soon after an append")
        .unwrap()
        .unwrap();
    assert_eq!(payloads(&received), vec![b"wake up".to_vec()]);
}

async fn acknowledged_cursors_survive_a_restart<Q, F, Fut>(open: &F, n: u32)
where
    Q: EventQueue,
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Q>,
{
    let acked = {
        let queue = open(n).await;
        assert_eq!(queue.acked(), Cursor::START, "nothing acknowledged yet");
        append_all(&queue, 0..30).await;
        let all = receive_all(&queue, Cursor::START).await;
        queue.ack(all[11].cursor).await.unwrap();
        assert_eq!(queue.acked(), all[11].cursor);
        all[11].cursor
    };
    let queue = open(n).await;
    assert_eq!(queue.acked(), acked, "the acknowledged cursor survives");
    assert_eq!(
        payloads(&receive_all(&queue, queue.acked()).await),
        (12..30).map(payload).collect::<Vec<_>>(),
        "what follows it is handed out again"
    );
    append_all(&queue, 30..35).await;
    assert_eq!(
        payloads(&receive_all(&queue, acked).await),
        (12..35).map(payload).collect::<Vec<_>>(),
        "appends after a restart follow"
    );
}

async fn unacknowledged_messages_survive_a_restart<Q, F, Fut>(open: &F, n: u32)
where
    Q: EventQueue,
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Q>,
{
    {
        let queue = open(n).await;
        append_all(&queue, 0..5).await;
    }
    let queue = open(n).await;
    assert_eq!(
        payloads(&receive_all(&queue, queue.acked()).await),
        (0..5).map(payload).collect::<Vec<_>>(),
        "every acknowledged append is durable"
    );
}

async fn backlog_is_empty_once_everything_is_acknowledged(queue: impl EventQueue) {
    assert!(queue.backlog().is_empty(), "a new queue has no backlog");
    let backlog = queue.backlog();
    assert!(
        backlog.messages.is_some() || backlog.bytes.is_some(),
        "the queue reports its backlog in messages or bytes"
    );
    append_all(&queue, 0..8).await;
    assert!(!queue.backlog().is_empty(), "appends are waiting");
    let all = receive_all(&queue, Cursor::START).await;
    queue.ack(all[3].cursor).await.unwrap();
    assert!(!queue.backlog().is_empty(), "four are still waiting");
    queue.ack(all[7].cursor).await.unwrap();
    assert!(
        queue.backlog().is_empty(),
        "nothing waits once the last is acknowledged"
    );
}

async fn refuses_empty_payloads(queue: impl EventQueue) {
    assert!(matches!(
        queue.append(Vec::new()).await,
        Err(QueueError::EmptyRecord)
    ));
    assert!(receive_all(&queue, Cursor::START).await.is_empty());
}

async fn concurrent_appends_all_arrive(queue: Arc<impl EventQueue>) {
    const TASKS: usize = 16;
    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..EACH {
                queue.append(payload(task * EACH + k)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = receive_all(queue.as_ref(), Cursor::START).await;
    let got: HashSet<Vec<u8>> = all.iter().map(|d| d.payload.clone()).collect();
    assert_eq!(all.len(), TASKS * EACH, "each message once");
    assert_eq!(
        got,
        (0..TASKS * EACH).map(payload).collect::<HashSet<_>>(),
        "every message arrives"
    );
}
