//! Answers of recent queries, reused until the site's data changes: a dashboard reloaded,
//! shared or opened by several people asks the same queries again.
//!
//! An entry remembers the store's data version of its site ([`SqlRunner::data_version`])
//! from before the query ran; a later write to that site makes it stale. Queries are keyed
//! by their parsed form, whose date range is already resolved to absolute times, so
//! "today" moves on by itself.

use std::any::{type_name, Any};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use heartbeat_model::SiteId;
use heartbeat_query::{execute, Query, QueryResult, RunError, SqlRunner};
use quick_cache::sync::Cache;

use crate::telemetry::{QUERY_CACHE_HITS, QUERY_CACHE_MISSES};

/// A cached answer of any kind of query (v2, funnel, retention, paths), with the site's data
/// version it was computed at.
type Entry = (u64, Arc<dyn Any + Send + Sync>);

pub struct QueryCache {
    /// `None` when caching is off (0 entries).
    entries: Option<Cache<String, Entry>>,
}

impl QueryCache {
    pub fn new(capacity: usize) -> Self {
        QueryCache {
            entries: (capacity > 0).then(|| Cache::new(capacity)),
        }
    }

    /// The answer of a Stats API v2 query.
    pub async fn execute(
        &self,
        query: &Query,
        store: &dyn SqlRunner,
    ) -> Result<QueryResult, RunError> {
        self.answer(&query.site_id, query, store, || execute(query, store))
            .await
    }

    /// The answer of `query` on `site` while the site's data has not changed since it was
    /// computed, else `run`'s, remembered. Queries of different kinds never share an entry:
    /// the key is the query type's name and the parsed query.
    pub async fn answer<Q, T, F>(
        &self,
        site: &SiteId,
        query: &Q,
        store: &dyn SqlRunner,
        run: impl FnOnce() -> F,
    ) -> Result<T, RunError>
    where
        Q: Debug,
        T: Clone + Send + Sync + 'static,
        F: Future<Output = Result<T, RunError>>,
    {
        let Some(entries) = &self.entries else {
            return run().await;
        };
        let version = store.data_version(site);
        let key = format!("{}{query:?}", type_name::<Q>());
        if let Some((cached_version, answer)) = entries.get(&key) {
            if let (true, Some(answer)) = (cached_version == version, answer.downcast_ref::<T>()) {
                metrics::counter!(QUERY_CACHE_HITS).increment(1);
                return Ok(answer.clone());
            }
        }
        metrics::counter!(QUERY_CACHE_MISSES).increment(1);
        let answer = run().await?;
        entries.insert(key, (version, Arc::new(answer.clone())));
        Ok(answer)
    }
}
