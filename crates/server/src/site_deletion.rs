//! Deleting a site: one operation over the directory, the queue and the processor.
//!
//! 1. The directory forgets the site, its keys, its public link, its goals and its alert
//!    rules, webhooks, report recipients, annotations and deliveries: from here on ingest
//!    refuses its events.
//! 2. The site's deletion is appended to the queue, behind every event accepted before it.
//!    The processor, the only writer of events, deletes the site's events, visits and
//!    rollups when it reaches that record, after storing what came before and before
//!    anything appended later (a site created again under the same id keeps only its new
//!    events). It drops events of sites the directory no longer knows, which covers a
//!    request that found the site just before step 1 and appended after step 2.
//! 3. The answer waits (bounded) for the processor to report the deletion done.
//!
//! Nothing here polls the queue's positions, so it works the same on any queue engine, and
//! the deletion is as durable as an accepted event: a restart in between still carries it out.

use std::sync::Arc;
use std::time::Duration;

use heartbeat_accounts::goals::Goals;
use heartbeat_accounts::registry::{Registry, RegistryError};
use heartbeat_model::{encode_site_deletion, BatchCodecError, Site, SiteId};
use heartbeat_processor::SiteDeleted;
use heartbeat_queue::{EventQueue, QueueError};
use heartbeat_store::Deleted;
use tokio::sync::broadcast;

/// How long the answer waits for the processor to carry the deletion out.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SiteDeletion {
    pub registry: Arc<Registry>,
    pub goals: Arc<Goals>,
    pub alerts: Arc<crate::alerting::Directory>,
    /// The queue's partitions: the deletion goes into each, behind its events.
    pub queues: Vec<Arc<dyn EventQueue>>,
    /// The processor's reports of deletions done.
    pub done: broadcast::Sender<SiteDeleted>,
    /// How long the answer waits for the report: [`WAIT`] where one processor stores the
    /// whole queue, none where several workers each carry the deletion out in their
    /// partition.
    pub wait: Duration,
}

/// A deleted site and what was deleted with it: `None` while the processor has not reached
/// the deletion yet (it is durable in the queue and will be carried out).
#[derive(Debug)]
pub struct Outcome {
    pub site: Site,
    pub deleted: Option<Deleted>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteSiteError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Encode(#[from] BatchCodecError),
    #[error(transparent)]
    Store(#[from] heartbeat_store::StoreError),
}

impl SiteDeletion {
    pub async fn delete(&self, id: &SiteId) -> Result<Outcome, DeleteSiteError> {
        let record = encode_site_deletion(id)?;
        let site = self.registry.delete_site(id).await?;
        self.goals.forget_site(id);
        self.alerts.forget_site(id).await?;
        let mut done = self.done.subscribe();
        for queue in &self.queues {
            queue.append(record.clone()).await?;
        }
        let deleted = tokio::time::timeout(self.wait, async {
            loop {
                match done.recv().await {
                    Ok(report) if report.site == site.id => return Some(report.deleted),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        if deleted.is_none() {
            tracing::warn!(site = %site.id, "site deletion queued; the processor has not reached it yet");
        }
        Ok(Outcome { site, deleted })
    }
}
