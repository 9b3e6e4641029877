//! The alert rules, webhooks and report recipients of every site, in memory over the
//! [`AlertStore`] (written through, read from memory), with each rule's state between
//! evaluations: firing or not since when, its last value.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use heartbeat_alerts::evaluate::RuleState;
use heartbeat_model::{AlertEvent, AlertRule, ReportSubscription, SiteId, Webhook};
use heartbeat_store::{AlertStore, StoreError};

/// What the server knows of a rule between evaluations.
#[derive(Debug, Clone, Default)]
pub struct RuleStatus {
    pub state: RuleState,
    /// The firing that has not resolved yet.
    pub open_event: Option<AlertEvent>,
    pub last_value: Option<f64>,
    pub last_evaluated_ms: Option<i64>,
}

#[derive(Default)]
struct Inner {
    rules: Vec<AlertRule>,
    webhooks: Vec<Webhook>,
    reports: Vec<ReportSubscription>,
    status: HashMap<String, RuleStatus>,
}

/// Rules, webhooks and recipients of every site.
pub struct Directory {
    store: Arc<dyn AlertStore>,
    inner: RwLock<Inner>,
}

/// A new id: `prefix` and 24 random hex digits.
pub fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    )
}

impl Directory {
    /// Everything from the store, each rule's state from its latest firing.
    pub async fn load(store: Arc<dyn AlertStore>) -> Result<Self, StoreError> {
        let mut status: HashMap<String, RuleStatus> = HashMap::new();
        for event in store.latest_alert_events().await? {
            let open = event.resolved_at_ms.is_none();
            status.insert(
                event.rule_id.clone(),
                RuleStatus {
                    state: RuleState {
                        firing_since_ms: open.then_some(event.fired_at_ms),
                        last_fired_ms: Some(event.fired_at_ms),
                    },
                    last_value: Some(event.value),
                    open_event: open.then_some(event),
                    last_evaluated_ms: None,
                },
            );
        }
        let inner = Inner {
            rules: store.alert_rules().await?,
            webhooks: store.webhooks().await?,
            reports: store.report_subscriptions().await?,
            status,
        };
        Ok(Directory {
            store,
            inner: RwLock::new(inner),
        })
    }

    /// Reads rules, webhooks and report subscriptions from the store again, for a node
    /// whose alerting data other nodes change too (a shared PostgreSQL). The rules' states
    /// stay as this node knows them.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let rules = self.store.alert_rules().await?;
        let webhooks = self.store.webhooks().await?;
        let reports = self.store.report_subscriptions().await?;
        let mut inner = self.write();
        inner.rules = rules;
        inner.webhooks = webhooks;
        inner.reports = reports;
        Ok(())
    }

    pub fn store(&self) -> &dyn AlertStore {
        self.store.as_ref()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Every rule of every site.
    pub fn all_rules(&self) -> Vec<AlertRule> {
        self.read().rules.clone()
    }

    /// A site's rules, oldest first.
    pub fn rules(&self, site: &SiteId) -> Vec<AlertRule> {
        let mut rules: Vec<AlertRule> = self
            .read()
            .rules
            .iter()
            .filter(|r| &r.site_id == site)
            .cloned()
            .collect();
        rules.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        rules
    }

    pub fn rule(&self, site: &SiteId, id: &str) -> Option<AlertRule> {
        self.read()
            .rules
            .iter()
            .find(|r| &r.site_id == site && r.id == id)
            .cloned()
    }

    /// Stores a new or changed rule.
    pub async fn put_rule(&self, rule: AlertRule) -> Result<(), StoreError> {
        self.store.put_alert_rule(&rule).await?;
        let mut inner = self.write();
        inner.rules.retain(|r| r.id != rule.id);
        inner.rules.push(rule);
        Ok(())
    }

    /// False when the site has no such rule.
    pub async fn delete_rule(&self, site: &SiteId, id: &str) -> Result<bool, StoreError> {
        let deleted = self.store.delete_alert_rule(site, id).await?;
        let mut inner = self.write();
        inner.rules.retain(|r| !(&r.site_id == site && r.id == id));
        inner.status.remove(id);
        Ok(deleted)
    }

    pub fn status(&self, rule_id: &str) -> RuleStatus {
        self.read().status.get(rule_id).cloned().unwrap_or_default()
    }

    pub fn set_status(&self, rule_id: &str, status: RuleStatus) {
        self.write().status.insert(rule_id.to_owned(), status);
    }

    /// A site's webhooks, oldest first.
    pub fn webhooks(&self, site: &SiteId) -> Vec<Webhook> {
        let mut hooks: Vec<Webhook> = self
            .read()
            .webhooks
            .iter()
            .filter(|w| &w.site_id == site)
            .cloned()
            .collect();
        hooks.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        hooks
    }

    pub fn webhook(&self, id: &str) -> Option<Webhook> {
        self.read().webhooks.iter().find(|w| w.id == id).cloned()
    }

    pub async fn insert_webhook(&self, webhook: Webhook) -> Result<(), StoreError> {
        self.store.insert_webhook(&webhook).await?;
        self.write().webhooks.push(webhook);
        Ok(())
    }

    /// Deletes a webhook and takes it out of the site's rules. False when the site has none
    /// of this id.
    pub async fn delete_webhook(&self, site: &SiteId, id: &str) -> Result<bool, StoreError> {
        if !self.store.delete_webhook(site, id).await? {
            return Ok(false);
        }
        self.write().webhooks.retain(|w| w.id != id);
        for mut rule in self.rules(site) {
            if rule.webhook_ids.iter().any(|w| w == id) {
                rule.webhook_ids.retain(|w| w != id);
                self.put_rule(rule).await?;
            }
        }
        Ok(true)
    }

    /// Every recipient of every site.
    pub fn all_reports(&self) -> Vec<ReportSubscription> {
        self.read().reports.clone()
    }

    /// A site's recipients, oldest first.
    pub fn reports(&self, site: &SiteId) -> Vec<ReportSubscription> {
        let mut reports: Vec<ReportSubscription> = self
            .read()
            .reports
            .iter()
            .filter(|r| &r.site_id == site)
            .cloned()
            .collect();
        reports.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        reports
    }

    pub fn report(&self, site: &SiteId, id: &str) -> Option<ReportSubscription> {
        self.read()
            .reports
            .iter()
            .find(|r| &r.site_id == site && r.id == id)
            .cloned()
    }

    /// The recipient an unsubscribe link names.
    pub fn report_by_token(&self, token: &str) -> Option<ReportSubscription> {
        self.read()
            .reports
            .iter()
            .find(|r| crate::alerting::constant_time_eq(&r.unsubscribe_token, token))
            .cloned()
    }

    pub async fn put_report(&self, report: ReportSubscription) -> Result<(), StoreError> {
        self.store.put_report_subscription(&report).await?;
        let mut inner = self.write();
        inner.reports.retain(|r| r.id != report.id);
        inner.reports.push(report);
        Ok(())
    }

    pub async fn delete_report(&self, site: &SiteId, id: &str) -> Result<bool, StoreError> {
        let deleted = self.store.delete_report_subscription(site, id).await?;
        self.write()
            .reports
            .retain(|r| !(&r.site_id == site && r.id == id));
        Ok(deleted)
    }

    /// Forgets everything of a deleted site, here and in the store.
    pub async fn forget_site(&self, site: &SiteId) -> Result<(), StoreError> {
        self.store.delete_site_alerts(site).await?;
        let mut inner = self.write();
        let rule_ids: Vec<String> = inner
            .rules
            .iter()
            .filter(|r| &r.site_id == site)
            .map(|r| r.id.clone())
            .collect();
        for id in rule_ids {
            inner.status.remove(&id);
        }
        inner.rules.retain(|r| &r.site_id != site);
        inner.webhooks.retain(|w| &w.site_id != site);
        inner.reports.retain(|r| &r.site_id != site);
        Ok(())
    }
}
