//! Settings of an [`AmqpQueue`](crate::AmqpQueue).

use std::time::Duration;

/// How an [`AmqpQueue`](crate::AmqpQueue) declares its stream and talks to the broker.
/// `AmqpOptions::default()` suits a broker on the same network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpOptions {
    /// Back-pressure: an append fails with `QueueError::Full` while this many messages are
    /// appended and not acknowledged (plus appends awaiting their confirm). `None`: no limit.
    pub max_pending_messages: Option<u64>,
    /// The largest payload an append takes (`QueueError::RecordTooLarge` beyond). Must stay
    /// under the broker's `max_message_size` (128 MiB by default in RabbitMQ 3.10).
    pub max_message_bytes: usize,
    /// Retention of the stream by size (`x-max-length-bytes`): acknowledgements do not free
    /// stream data, the broker drops whole segments, oldest first, once the stream is larger.
    pub max_length_bytes: u64,
    /// Retention of the stream by age (`x-max-age`, e.g. `"7D"`, `"12h"`): segments whose
    /// messages are all older are dropped.
    pub max_age: String,
    /// Deliveries the broker may send ahead of a receive (`basic.qos`; streams require one).
    /// They wait in memory: a consumer holds at most this many messages beyond its receive.
    pub prefetch: u16,
    /// A receive stops taking deliveries once their payloads reach this many bytes (as the
    /// write-ahead log's `max_read_bytes`), so one processor step holds a bounded amount
    /// whatever the size of the messages. The server leaves it at this default.
    pub max_receive_bytes: usize,
    /// How long to try to reach the broker (TCP and AMQP handshake, declarations) before
    /// answering `QueueError::Unavailable`; also bounds each other call to the broker.
    pub connect_timeout: Duration,
    /// How long an append waits for the broker's publisher confirm before answering
    /// `QueueError::Unavailable` (the message may still have been stored: at least once).
    pub confirm_timeout: Duration,
    /// First pause after a failed connection attempt; it doubles with each failure up to
    /// [`AmqpOptions::reconnect_backoff_max`]. Calls during the pause fail at once with
    /// `QueueError::Unavailable`.
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    /// At open, how long to wait for the first message of the stream's last chunk (the
    /// stream's tail, for the backlog) before taking the stream as empty. Every open of an
    /// empty stream waits this long.
    pub tail_probe_wait: Duration,
    /// A receive from a cursor behind the last message this handle knows of waits up to
    /// this long for the broker to deliver the messages up to that one, even when asked not
    /// to wait (a stream consumer is fed asynchronously).
    pub catch_up_wait: Duration,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            max_pending_messages: None,
            max_message_bytes: 8 * 1024 * 1024,
            max_length_bytes: 20_000_000_000,
            max_age: "7D".to_owned(),
            prefetch: 256,
            max_receive_bytes: 8 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            confirm_timeout: Duration::from_secs(30),
            reconnect_backoff: Duration::from_millis(250),
            reconnect_backoff_max: Duration::from_secs(10),
            tail_probe_wait: Duration::from_secs(1),
            catch_up_wait: Duration::from_secs(5),
        }
    }
}
