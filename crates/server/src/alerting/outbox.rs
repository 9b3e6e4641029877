//! The outbox: every alert notice and report is a [`Delivery`] stored before anything is
//! sent, then attempted until it is delivered or given up on, so nothing is lost across a
//! restart and a message made twice (same id) goes out once.
//!
//! A failed attempt is retried after `alerts.retry_base_ms`, doubling up to
//! `alerts.retry_max_ms` (with a tenth of jitter), at most `alerts.max_attempts` times; a
//! receiver that refuses the message itself (a 4xx other than 408 and 429, a deleted
//! webhook, a URL no longer allowed, no mail server) fails it at once. Each endpoint (a
//! webhook, the mail server) has a circuit breaker: after `alerts.breaker_failures` failures
//! in a row it rests for `alerts.breaker_open_ms`, its deliveries waiting without using up
//! attempts. A delivery given up on stays listed with its reason
//! (`GET /api/sites/{site_id}/deliveries`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heartbeat_model::{Delivery, DeliveryStatus, DeliveryTarget};
use heartbeat_store::{AlertStore, StoreError};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};

use super::email::{EmailPayload, Mailer};
use super::webhook::{PostError, WebhookSender};
use super::Directory;
use crate::config::AlertSettings;
use crate::telemetry::{ALERT_DELIVERIES, ALERT_DELIVERY_FAILURES};

/// Deliveries taken per pass.
const BATCH: usize = 100;
/// The endpoint key of the mail server's breaker.
const SMTP: &str = "smtp";

/// A delivery's id: the same message to the same target always gets the same one.
pub fn delivery_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("dl_{}", &hex::encode(hash.finalize())[..32])
}

/// One endpoint's breaker.
#[derive(Debug, Default, Clone, Copy)]
struct Breaker {
    failures: u32,
    open_until_ms: i64,
}

/// How an attempt ended.
enum Outcome {
    Delivered,
    Retry(String),
    Fail(String),
}

pub struct Outbox {
    store: Arc<dyn AlertStore>,
    directory: Arc<Directory>,
    webhooks: WebhookSender,
    mailer: Option<Mailer>,
    settings: AlertSettings,
    wake: Notify,
    breakers: Mutex<HashMap<String, Breaker>>,
}

impl Outbox {
    pub fn new(
        directory: Arc<Directory>,
        store: Arc<dyn AlertStore>,
        mailer: Option<Mailer>,
        settings: AlertSettings,
    ) -> anyhow::Result<Self> {
        Ok(Outbox {
            store,
            directory,
            webhooks: WebhookSender::new(settings.allow_private_targets)?,
            mailer,
            settings,
            wake: Notify::new(),
            breakers: Mutex::new(HashMap::new()),
        })
    }

    /// Whether email can be sent (a mail server is configured).
    pub fn email_enabled(&self) -> bool {
        self.mailer.is_some()
    }

    /// Stores a new pending delivery (nothing when its id is queued already) and wakes the
    /// sender.
    pub async fn enqueue(
        &self,
        id: String,
        site_id: &heartbeat_model::SiteId,
        target: DeliveryTarget,
        kind: &str,
        payload: String,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let queued = self
            .store
            .insert_delivery(&Delivery {
                id,
                site_id: site_id.clone(),
                target,
                kind: kind.to_owned(),
                payload,
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_ms: now_ms,
                last_error: None,
                created_at_ms: now_ms,
                delivered_at_ms: None,
            })
            .await?;
        self.wake.notify_one();
        Ok(queued)
    }

    /// Sends what is due until `stop` turns true: after every enqueue, and at least every
    /// second for retries.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.settings.retry_base_ms.clamp(50, 1000));
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(err) = self.send_due(now).await {
                tracing::warn!(error = %err, "the outbox cannot read its deliveries");
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.wake.notified() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// One pass: every delivery due at `now_ms` attempted once.
    pub async fn send_due(&self, now_ms: i64) -> Result<(), StoreError> {
        for mut delivery in self.store.due_deliveries(now_ms, BATCH).await? {
            let endpoint = match &delivery.target {
                DeliveryTarget::Webhook { webhook_id } => webhook_id.clone(),
                DeliveryTarget::Email { .. } => SMTP.to_owned(),
            };
            let open_until = self.breaker(&endpoint).open_until_ms;
            if open_until > now_ms {
                delivery.next_attempt_ms = open_until;
                self.store.update_delivery(&delivery).await?;
                continue;
            }
            let outcome = self.attempt(&delivery, now_ms).await;
            delivery.attempts += 1;
            let kind = delivery.kind.clone();
            match outcome {
                Outcome::Delivered => {
                    delivery.status = DeliveryStatus::Delivered;
                    delivery.delivered_at_ms = Some(now_ms);
                    delivery.last_error = None;
                    self.record(&endpoint, true, now_ms);
                    metrics::counter!(ALERT_DELIVERIES, "kind" => kind).increment(1);
                }
                Outcome::Retry(reason) if delivery.attempts < self.settings.max_attempts => {
                    delivery.next_attempt_ms = now_ms + self.backoff_ms(delivery.attempts);
                    tracing::info!(delivery = %delivery.id, attempts = delivery.attempts, reason = %reason, "delivery failed; retrying later");
                    delivery.last_error = Some(reason);
                    self.record(&endpoint, false, now_ms);
                }
                Outcome::Retry(reason) | Outcome::Fail(reason) => {
                    tracing::warn!(delivery = %delivery.id, attempts = delivery.attempts, reason = %reason, "delivery given up");
                    delivery.status = DeliveryStatus::Failed;
                    delivery.last_error = Some(reason);
                    self.record(&endpoint, false, now_ms);
                    metrics::counter!(ALERT_DELIVERY_FAILURES, "kind" => kind).increment(1);
                }
            }
            self.store.update_delivery(&delivery).await?;
        }
        Ok(())
    }

    async fn attempt(&self, delivery: &Delivery, now_ms: i64) -> Outcome {
        match &delivery.target {
            DeliveryTarget::Webhook { webhook_id } => {
                let Some(hook) = self.directory.webhook(webhook_id) else {
                    return Outcome::Fail("the webhook was deleted".into());
                };
                match self
                    .webhooks
                    .post(&hook, &delivery.id, &delivery.payload, now_ms)
                    .await
                {
                    Ok(()) => Outcome::Delivered,
                    Err(PostError::Retry(reason)) => Outcome::Retry(reason),
                    Err(PostError::Permanent(reason)) => Outcome::Fail(reason),
                }
            }
            DeliveryTarget::Email { to } => {
                let Some(mailer) = &self.mailer else {
                    return Outcome::Fail("email is off: no mail server (smtp.host)".into());
                };
                let email: EmailPayload = match serde_json::from_str(&delivery.payload) {
                    Ok(email) => email,
                    Err(err) => return Outcome::Fail(format!("unreadable message: {err}")),
                };
                match mailer.send(to, &email, &delivery.id).await {
                    Ok(()) => Outcome::Delivered,
                    Err(reason) => Outcome::Retry(reason),
                }
            }
        }
    }

    /// The wait after the `attempts`-th failure: the base doubled per attempt, capped, give
    /// or take a tenth.
    fn backoff_ms(&self, attempts: u32) -> i64 {
        let doubled = self
            .settings
            .retry_base_ms
            .saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
        let capped = doubled.min(self.settings.retry_max_ms) as f64;
        let jitter = 0.9 + 0.2 * rand::random::<f64>();
        (capped * jitter) as i64
    }

    fn breaker(&self, endpoint: &str) -> Breaker {
        self.breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(endpoint)
            .copied()
            .unwrap_or_default()
    }

    fn record(&self, endpoint: &str, ok: bool, now_ms: i64) {
        let mut breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let breaker = breakers.entry(endpoint.to_owned()).or_default();
        if ok {
            *breaker = Breaker::default();
            return;
        }
        breaker.failures += 1;
        if breaker.failures >= self.settings.breaker_failures {
            breaker.open_until_ms = now_ms + self.settings.breaker_open_ms as i64;
            breaker.failures = 0;
            tracing::warn!(
                endpoint,
                open_ms = self.settings.breaker_open_ms,
                "endpoint failing; resting it"
            );
        }
    }
}
