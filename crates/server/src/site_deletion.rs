//! Deleting a site: one operation over the directory, the processor and the event store.
//!
//! 1. The directory forgets the site, its keys and its public link: from here on ingest
//!    refuses its events, and the processor drops those still queued (its site check asks
//!    the directory).
//! 2. Between two of the processor's batches, so that no insert of the site's events is in
//!    flight, the store deletes its events, visits and rollups.
//!
//! Nothing waits on the queue, so this works the same on any queue engine, and a restart in
//! between loses nothing: the queued events of a site that is gone are dropped then too.

use std::sync::Arc;

use heartbeat_accounts::registry::{Registry, RegistryError};
use heartbeat_model::{Site, SiteId};
use heartbeat_processor::{BetweenBatches, ProcessorStopped};
use heartbeat_store::{Deleted, EventData, StoreError};

#[derive(Clone)]
pub struct SiteDeletion {
    pub registry: Arc<Registry>,
    pub data: Arc<dyn EventData>,
    pub writes: BetweenBatches,
}

/// A deleted site and what was deleted with it.
#[derive(Debug)]
pub struct SiteDeleted {
    pub site: Site,
    pub rows: Deleted,
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteSiteError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Stopped(#[from] ProcessorStopped),
}

impl SiteDeletion {
    pub async fn delete(&self, id: &SiteId) -> Result<SiteDeleted, DeleteSiteError> {
        let site = self.registry.delete_site(id).await?;
        let data = self.data.clone();
        let site_id = site.id.clone();
        let rows = self
            .writes
            .run(async move { data.delete_site_events(&site_id).await })
            .await??;
        tracing::info!(site = %site.id, events = rows.events, "site deleted");
        Ok(SiteDeleted { site, rows })
    }
}
