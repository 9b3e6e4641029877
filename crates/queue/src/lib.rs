//! The durable queue between ingest and the processor.
//!
//! [`EventQueue`] is the capability, in terms any broker can honour: append an opaque
//! message and resolve only once it is durable (fsynced, or confirmed by a broker); receive
//! deliveries in order, each with an opaque, ordered [`Cursor`]; acknowledge a cursor once
//! everything up to it is stored, so the queue may free it; report the backlog as numbers.
//! Payloads are opaque bytes: the queue knows nothing of events or wire formats.
//!
//! Exactly once: a consumer that keeps the cursor of its last stored delivery in the same
//! transaction as the data (the processor does) resumes with `receive(after: that cursor)`
//! and never stores a message twice on a queue that replays from a cursor (the WAL, a
//! stream). A broker that redelivers unacknowledged messages instead ignores `after` and the
//! processor's deduplication by event id drops what was stored twice.
//!
//! Implementations: [`WalQueue`] (embedded write-ahead log in the data dir, the default).
//! Every implementation passes the suite in `contract.rs` (feature `contract`).

#[cfg(feature = "contract")]
pub mod contract;
mod wal;

use std::time::Duration;

pub use wal::{RecoveryReport, WalConfig, WalQueue};

/// A byte offset in the write-ahead log (its own business: see `wal/mod.rs`).
pub type Position = u64;

/// One record read back from the write-ahead log by its byte positions
/// ([`WalQueue::read_records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where this record starts.
    pub position: Position,
    /// The position just after this record.
    pub next: Position,
    pub payload: Vec<u8>,
}

/// Where a consumer stands: opaque to it and ordered (a later delivery has a greater
/// cursor). The consumer compares, stores and hands cursors back; only the queue makes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(u64);

impl Cursor {
    /// Before the first message.
    pub const START: Cursor = Cursor(0);

    /// The cursor as a number, for a consumer that stores it with its data.
    pub fn to_stored(self) -> u64 {
        self.0
    }

    /// A cursor the consumer stored with [`Cursor::to_stored`].
    pub fn from_stored(stored: u64) -> Cursor {
        Cursor(stored)
    }
}

/// One message handed to the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Acknowledge this (or a later cursor) once the message is stored.
    pub cursor: Cursor,
    pub payload: Vec<u8>,
}

/// What is appended and not yet acknowledged, as far as the queue can tell: a broker
/// reports its message count, the write-ahead log its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub messages: Option<u64>,
    pub bytes: Option<u64>,
}

impl Backlog {
    /// Nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.messages.unwrap_or(0) == 0 && self.bytes.unwrap_or(0) == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Backpressure: more than the configured amount is waiting to be processed, counted
    /// in the queue's `unit` (bytes for the write-ahead log, messages for a broker).
    #[error("queue is full: {pending} {unit} waiting, limit {limit}")]
    Full {
        pending: u64,
        limit: u64,
        unit: &'static str,
    },
    #[error("record of {len} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge { len: usize, limit: usize },
    /// Empty payloads are refused: an empty frame cannot be told apart from zeroed disk.
    #[error("record is empty")]
    EmptyRecord,
    #[error("queue is shut down")]
    Closed,
    #[error("queue i/o failed: {context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The broker cannot be reached or refused the message; worth retrying.
    #[error("queue unavailable: {message}")]
    Unavailable { message: String },
}

impl QueueError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        QueueError::Io {
            context: context.into(),
            source,
        }
    }
}

#[async_trait::async_trait]
pub trait EventQueue: Send + Sync + 'static {
    /// Appends one message and resolves once it is durable (fsynced, or confirmed by a
    /// broker). Many concurrent appends share one sync (group commit). Answers the cursor its
    /// delivery will carry: once [`EventQueue::acked`] reaches it, the message is stored.
    async fn append(&self, payload: Vec<u8>) -> Result<Cursor, QueueError>;

    /// Up to `max` deliveries after `after` (the cursor of the last delivery the consumer
    /// stored, [`Cursor::START`] at first). Waits up to `wait` for at least one; returns an
    /// empty vector when none came.
    async fn receive(
        &self,
        after: Cursor,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError>;

    /// Every delivery up to and including `upto` is stored for good: the queue may free it,
    /// and a restarted consumer is not handed it again.
    async fn ack(&self, upto: Cursor) -> Result<(), QueueError>;

    /// The last acknowledged cursor: where a consumer resumes after a restart.
    fn acked(&self) -> Cursor;

    /// What waits to be acknowledged.
    fn backlog(&self) -> Backlog;
}
