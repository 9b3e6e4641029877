//! Answers of recent queries, reused until the site's data changes: a dashboard reloaded,
//! shared or opened by several people asks the same queries again.
//!
//! An entry remembers the store's data version of its site ([`SqlRunner::data_version`])
//! from before the query ran; a later write to that site makes it stale. Queries are keyed
//! by their parsed form, whose date range is already resolved to absolute times, so
//! "today" moves on by itself.

use std::sync::Arc;

use heartbeat_query::{execute, Query, QueryResult, RunError, SqlRunner};
use quick_cache::sync::Cache;

use crate::telemetry::{QUERY_CACHE_HITS, QUERY_CACHE_MISSES};

pub struct QueryCache {
    /// `None` when caching is off (0 entries).
    entries: Option<Cache<String, (u64, Arc<QueryResult>)>>,
}

impl QueryCache {
    pub fn new(capacity: usize) -> Self {
        QueryCache {
            entries: (capacity > 0).then(|| Cache::new(capacity)),
        }
    }

    pub async fn execute(
        &self,
        query: &Query,
        store: &dyn SqlRunner,
    ) -> Result<QueryResult, RunError> {
        let Some(entries) = &self.entries else {
            return execute(query, store).await;
        };
        let version = store.data_version(&query.site_id);
        let key = format!("{query:?}");
        if let Some((cached_version, result)) = entries.get(&key) {
            if cached_version == version {
                metrics::counter!(QUERY_CACHE_HITS).increment(1);
                return Ok(QueryResult::clone(&result));
            }
        }
        metrics::counter!(QUERY_CACHE_MISSES).increment(1);
        let result = execute(query, store).await?;
        entries.insert(key, (version, Arc::new(result.clone())));
        Ok(result)
    }
}
