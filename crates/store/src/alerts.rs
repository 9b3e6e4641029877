//! What alerts, reports and annotations keep: the rules, webhooks, report recipients and
//! annotations of each site (small, read whole into memory by the server), the history of
//! firings, and the outbox of deliveries (durable until delivered or given up on).

use heartbeat_model::{
    AlertEvent, AlertRule, Annotation, Delivery, DeliveryStatus, ReportSubscription, SiteId,
    Webhook,
};

use crate::StoreError;

#[async_trait::async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// Every rule of every site.
    async fn alert_rules(&self) -> Result<Vec<AlertRule>, StoreError>;
    /// Stores a rule, replacing the one with its id.
    async fn put_alert_rule(&self, rule: &AlertRule) -> Result<(), StoreError>;
    /// Deletes one rule of `site` (its history stays); false when the site has no rule `id`.
    async fn delete_alert_rule(&self, site: &SiteId, id: &str) -> Result<bool, StoreError>;

    /// Every webhook of every site.
    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// Fails with `Conflict` when the id is taken.
    async fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError>;
    /// False when the site has no webhook `id`.
    async fn delete_webhook(&self, site: &SiteId, id: &str) -> Result<bool, StoreError>;

    /// Every report recipient of every site.
    async fn report_subscriptions(&self) -> Result<Vec<ReportSubscription>, StoreError>;
    /// Stores a recipient, replacing the one with its id.
    async fn put_report_subscription(
        &self,
        subscription: &ReportSubscription,
    ) -> Result<(), StoreError>;
    /// False when the site has no recipient `id`.
    async fn delete_report_subscription(&self, site: &SiteId, id: &str)
        -> Result<bool, StoreError>;

    /// A site's annotations with `from_ms <= at_ms < to_ms`, by time.
    async fn annotations(
        &self,
        site: &SiteId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Annotation>, StoreError>;
    /// Stores an annotation, replacing the one with its id.
    async fn put_annotation(&self, annotation: &Annotation) -> Result<(), StoreError>;
    /// False when the site has no annotation `id`.
    async fn delete_annotation(&self, site: &SiteId, id: &str) -> Result<bool, StoreError>;

    /// Stores a firing, replacing the one with its id (its resolution).
    async fn put_alert_event(&self, event: &AlertEvent) -> Result<(), StoreError>;
    /// A site's firings, newest first, at most `limit`.
    async fn alert_events(
        &self,
        site: &SiteId,
        limit: usize,
    ) -> Result<Vec<AlertEvent>, StoreError>;
    /// The newest firing of every rule that ever fired: whether it still fires, and since
    /// when its cool-down runs.
    async fn latest_alert_events(&self) -> Result<Vec<AlertEvent>, StoreError>;

    /// Queues a delivery; false (and nothing changes) when one with its id exists, so a
    /// message made twice is delivered once.
    async fn insert_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError>;
    /// Pending deliveries whose next attempt is at or before `now_ms`, oldest first, at most
    /// `limit`.
    async fn due_deliveries(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// Stores a delivery's new state (status, attempts, next attempt, error).
    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// A site's deliveries, newest first, of one status or all, at most `limit`.
    async fn deliveries(
        &self,
        site: &SiteId,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Deletes everything of a site here: rules, webhooks, recipients, annotations,
    /// firings and deliveries.
    async fn delete_site_alerts(&self, site: &SiteId) -> Result<(), StoreError>;
}
