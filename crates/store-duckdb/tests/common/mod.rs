//! What the store's integration tests share.

use heartbeat_query::Sql;

/// A statement without parameters.
pub fn sql(text: &str) -> Sql {
    Sql {
        text: text.into(),
        params: Vec::new(),
    }
}
