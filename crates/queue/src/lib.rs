//! The durable queue between ingest and the processor.
//!
//! `EventQueue` is the capability: append an opaque record and resolve only once it is
//! durable; read records in order from a position; checkpoint a position once everything
//! before it is stored so the queue may free it. Payloads are opaque bytes: the queue knows
//! nothing of events or wire formats.
//!
//! Implementations: [`WalQueue`] (embedded write-ahead log in the data dir, the default).
//! RabbitMQ comes later behind the same trait.

mod wal;

use std::time::Duration;

pub use wal::{RecoveryReport, WalConfig, WalQueue};

/// A place in the queue. Positions grow with every record; a record is identified by the
/// position just after it (`Record::next`), which is what a consumer checkpoints.
pub type Position = u64;

/// One record read back from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where this record starts.
    pub position: Position,
    /// The position just after this record: checkpoint this once the record is stored.
    pub next: Position,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Backpressure: more than the configured bytes are waiting to be processed.
    #[error("queue is full: {pending_bytes} bytes waiting, limit {limit_bytes}")]
    Full {
        pending_bytes: u64,
        limit_bytes: u64,
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
    /// Appends one record and resolves once it is durable (fsynced, or confirmed by a
    /// broker). Many concurrent appends share one sync (group commit).
    async fn append(&self, payload: Vec<u8>) -> Result<Position, QueueError>;

    /// Reads up to `max_records` records starting at `from` (a record's `position` or the
    /// `next` of the record before it). Waits up to `wait` for at least one record; returns
    /// an empty vector when none came.
    async fn read(
        &self,
        from: Position,
        max_records: usize,
        wait: Duration,
    ) -> Result<Vec<Record>, QueueError>;

    /// Everything before `upto` is stored for good: the queue may delete it, and a restart
    /// resumes reading from here.
    async fn checkpoint(&self, upto: Position) -> Result<(), QueueError>;

    /// The last checkpointed position: where a consumer resumes after a restart.
    fn checkpointed(&self) -> Position;

    /// Bytes appended but not yet checkpointed.
    fn pending_bytes(&self) -> u64;
}
