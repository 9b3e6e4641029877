//! Data versions shared by the nodes through Redis: the writers (a worker's processor, an
//! API node's imports and deletions) bump a site's version once a change of its data is
//! committed, and every node's query cache compares the versions it follows in Redis, so an
//! answer cached on one node goes stale when another node writes.
//!
//! While a node's copy of the versions is not current (Redis unreachable, not read yet),
//! every query counts as changed data: answers are computed, never reused. A bump that
//! fails is retried in the background until Redis takes it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use heartbeat_model::{Event, ImportedRow, ImportedTable, SiteId, SiteImport};
use heartbeat_query::{Dialect, Row, RunError, Sql, SqlRunner};
use heartbeat_shared_redis::{RedisShared, SiteVersions};
use heartbeat_store::{Deleted, EventData, EventWriter, InsertBatch, StoreError, StoredVisit};

/// Reads whose data versions are the shared ones.
pub struct SharedVersionReads {
    inner: Arc<dyn SqlRunner>,
    versions: SiteVersions,
    /// Handed out while the versions are not current: never the same twice.
    unknown: AtomicU64,
}

impl SharedVersionReads {
    pub fn new(inner: Arc<dyn SqlRunner>, versions: SiteVersions) -> Self {
        SharedVersionReads {
            inner,
            versions,
            unknown: AtomicU64::new(0),
        }
    }
}

#[async_trait::async_trait]
impl SqlRunner for SharedVersionReads {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    fn has_rollups(&self) -> bool {
        self.inner.has_rollups()
    }

    fn data_version(&self, site: &SiteId) -> u64 {
        if self.versions.is_current() {
            self.versions.get(site.as_str())
        } else {
            // Redis's versions are Redis's clock in microseconds; these count down from the
            // top and never meet them.
            u64::MAX - self.unknown.fetch_add(1, Ordering::Relaxed)
        }
    }

    async fn run(&self, sql: Sql) -> Result<Vec<Row>, RunError> {
        self.inner.run(sql).await
    }
}

/// Bumps the shared versions of `sites`, retrying in the background until Redis takes each.
pub fn bump(shared: &RedisShared, sites: impl IntoIterator<Item = SiteId>) {
    let sites: HashSet<SiteId> = sites.into_iter().collect();
    if sites.is_empty() {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        for site in sites {
            let mut wait = Duration::from_millis(100);
            while let Err(err) = shared.bump_version(site.as_str()).await {
                tracing::warn!(%err, site = %site, "cannot bump the site's data version in Redis; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    });
}

/// Writes that bump the shared versions of the sites they change, once committed.
pub struct SharedVersionWrites<S: ?Sized> {
    pub inner: Arc<S>,
    pub shared: RedisShared,
}

#[async_trait::async_trait]
impl<S: EventWriter + ?Sized> EventWriter for SharedVersionWrites<S> {
    async fn insert(&self, batch: Arc<InsertBatch>) -> Result<(), StoreError> {
        self.inner.insert(batch.clone()).await?;
        bump(
            &self.shared,
            batch
                .events
                .iter()
                .map(|e| e.site_id.clone())
                .chain(batch.sessions.iter().map(|row| row.session.site_id.clone())),
        );
        Ok(())
    }

    async fn queue_position(&self) -> Result<Option<u64>, StoreError> {
        self.inner.queue_position().await
    }

    async fn open_sessions(&self, since_ms: i64) -> Result<Vec<StoredVisit>, StoreError> {
        self.inner.open_sessions(since_ms).await
    }

    async fn newest_visit_end_ms(&self) -> Result<Option<i64>, StoreError> {
        self.inner.newest_visit_end_ms().await
    }

    async fn imported_visits_until_ms(&self) -> Result<Option<i64>, StoreError> {
        self.inner.imported_visits_until_ms().await
    }

    async fn visits_of(
        &self,
        site: &SiteId,
        visitors: Vec<u64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredVisit>, StoreError> {
        self.inner.visits_of(site, visitors, from_ms, to_ms).await
    }

    async fn client_id_fingerprints(
        &self,
        received_since_ms: i64,
        newest: usize,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        self.inner
            .client_id_fingerprints(received_since_ms, newest)
            .await
    }

    async fn stored_client_ids(
        &self,
        site: &SiteId,
        ids: Vec<String>,
        received_since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.inner
            .stored_client_ids(site, ids, received_since_ms)
            .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }

    async fn delete_site_events(&self, site: &SiteId) -> Result<Deleted, StoreError> {
        let deleted = self.inner.delete_site_events(site).await?;
        bump(&self.shared, [site.clone()]);
        Ok(deleted)
    }
}

#[async_trait::async_trait]
impl<S: EventData + ?Sized> EventData for SharedVersionWrites<S> {
    async fn delete_before(&self, site: &SiteId, before_ms: i64) -> Result<Deleted, StoreError> {
        let deleted = self.inner.delete_before(site, before_ms).await?;
        if deleted != Deleted::default() {
            bump(&self.shared, [site.clone()]);
        }
        Ok(deleted)
    }

    async fn export_events(
        &self,
        site: &SiteId,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.inner.export_events(site, after, limit).await
    }

    async fn import_events(&self, events: Vec<Event>) -> Result<u64, StoreError> {
        let sites: HashSet<SiteId> = events.iter().map(|e| e.site_id.clone()).collect();
        let stored = self.inner.import_events(events).await;
        // Even a failed import may have stored part of its events.
        bump(&self.shared, sites);
        stored
    }

    async fn import_aggregates(
        &self,
        site: &SiteId,
        source: &str,
        range: (String, String),
        tables: Vec<(ImportedTable, Vec<ImportedRow>)>,
    ) -> Result<SiteImport, StoreError> {
        let stored = self
            .inner
            .import_aggregates(site, source, range, tables)
            .await;
        bump(&self.shared, [site.clone()]);
        stored
    }

    async fn site_imports(&self, site: &SiteId) -> Result<Vec<SiteImport>, StoreError> {
        self.inner.site_imports(site).await
    }

    async fn stored_since(
        &self,
        stored_since_ms: i64,
        events_since_ms: i64,
        limit: usize,
    ) -> Result<Vec<(Event, i64)>, StoreError> {
        self.inner
            .stored_since(stored_since_ms, events_since_ms, limit)
            .await
    }

    async fn delete_import(&self, site: &SiteId, id: u64) -> Result<bool, StoreError> {
        let deleted = self.inner.delete_import(site, id).await?;
        if deleted {
            bump(&self.shared, [site.clone()]);
        }
        Ok(deleted)
    }
}
