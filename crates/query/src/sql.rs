//! SQL text with bound parameters, the cells it returns, and the runner that executes it.
//!
//! Invariant: every value a client sends reaches the engine as a bound parameter
//! ([`SqlValue`]); SQL text is built only from this crate's `match` arms.

use crate::dialect::Dialect;

/// A bound parameter or a returned cell.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    /// UTC milliseconds since the Unix epoch.
    TimestampMs(i64),
    Blob(Vec<u8>),
}

impl SqlValue {
    pub fn as_f64(&self) -> f64 {
        match self {
            SqlValue::Int(v) => *v as f64,
            SqlValue::UInt(v) => *v as f64,
            SqlValue::Float(v) => *v,
            SqlValue::TimestampMs(v) => *v as f64,
            SqlValue::Bool(v) => f64::from(u8::from(*v)),
            SqlValue::Null | SqlValue::Text(_) | SqlValue::Blob(_) => 0.0,
        }
    }
}

/// One statement and its parameters, in the dialect it was compiled for.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<SqlValue>,
}

pub type Row = Vec<SqlValue>;

/// Why a statement gave no rows.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The engine failed (I/O, a lost connection, a bug in the SQL).
    #[error("{message}")]
    Failed { message: String },
    /// The statement was stopped before it finished: its caller gave up (the query's time
    /// budget ran out, or the client went away) and the engine was interrupted.
    #[error("the query was interrupted")]
    Interrupted,
    /// The statement's rows would take more memory than one query may hold.
    #[error("the query's rows need more than {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    /// The engine ran out of the memory it may use (its own limit) while working.
    #[error("the engine ran out of memory: {message}")]
    OutOfMemory { message: String },
}

impl RunError {
    pub fn failed(message: impl std::fmt::Display) -> Self {
        RunError::Failed {
            message: message.to_string(),
        }
    }
}

/// Executes compiled SQL: implemented by each event store.
#[async_trait::async_trait]
pub trait SqlRunner: Send + Sync {
    fn dialect(&self) -> Dialect;
    /// Whether the store keeps the hourly `rollups` table ([`crate::rollup`]) in step with
    /// its events, so the engine may answer from it. No default: a decorator must pass it on.
    fn has_rollups(&self) -> bool;
    /// A number that changes whenever stored data of `site` changes (new events, imports,
    /// deletions), so a cached answer can tell it is stale.
    fn data_version(&self, site: &heartbeat_model::SiteId) -> u64;
    /// Runs one statement. Dropping the returned future before it completes stops the
    /// statement in the engine (no work goes on for a caller that gave up).
    async fn run(&self, sql: Sql) -> Result<Vec<Row>, RunError>;
}
