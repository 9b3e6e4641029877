//! What is wrong with a query, by the part of the request that is wrong.

/// An invalid (or too wide) query: `field` names the part of the request (`metrics[1]`,
/// `date_range`, `filters[0][2]`), `message` says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QueryError {
    pub field: String,
    pub message: String,
}
