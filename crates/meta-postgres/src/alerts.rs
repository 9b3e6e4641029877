//! [`AlertStore`] on PostgreSQL: a site's alert rules, webhooks, report recipients and
//! annotations, the history of firings (`alert_events`) and the outbox of deliveries
//! (`deliveries`), in the tables of migration 2.
//!
//! Enums are stored under their JSON names, a rule's webhook ids and emails as `TEXT[]`, its
//! condition and a delivery's target as JSONB. A row whose stored value no longer decodes is
//! logged and left out, so one damaged row never keeps the server from starting.

use heartbeat_model::{
    AlertEvent, AlertRule, Annotation, AnnotationKind, Delivery, DeliveryStatus, ReportPeriod,
    ReportSubscription, SiteId, Webhook, WebhookFormat,
};
use heartbeat_store::{AlertStore, StoreError};
use tokio_postgres::Row;

use crate::meta::{get, read_rows, to_json};
use crate::{kept, limit_param, PostgresMetaStore};

/// The name a unit enum is stored under (its JSON name) and back: `$name` writes, `$parse`
/// reads (`None` for a name no variant has).
macro_rules! stored_names {
    ($name:ident, $parse:ident, $ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        fn $name(value: $ty) -> &'static str {
            match value {
                $($ty::$variant => $text,)+
            }
        }

        fn $parse(name: &str) -> Option<$ty> {
            match name {
                $($text => Some($ty::$variant),)+
                _ => None,
            }
        }
    };
}

stored_names!(format_name, parse_format, WebhookFormat { Json => "json", Slack => "slack" });
stored_names!(period_name, parse_period, ReportPeriod { Weekly => "weekly", Monthly => "monthly" });
stored_names!(kind_name, parse_kind, AnnotationKind { Note => "note", Alert => "alert" });

/// The stored name `text` read back as one of an enum's, or why not.
fn named<T>(parse: fn(&str) -> Option<T>, text: &str) -> Result<T, String> {
    parse(text).ok_or_else(|| format!("unknown name {text:?}"))
}

/// A stored `BIGINT` read back as the model's `u32`, or why not.
fn small(value: i64) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("{value} is out of range"))
}

const RULE_COLUMNS: &str = "id, site_id, name, metric, filters_json, window_minutes, condition, \
     cooldown_minutes, webhook_ids, emails, enabled, created_at_ms";

fn rule_from_row(row: &Row) -> Result<Option<AlertRule>, StoreError> {
    let id: String = get(row, 0)?;
    let table = "alert_rules";
    let condition: serde_json::Value = get(row, 6)?;
    let (Some(window_minutes), Some(condition), Some(cooldown_minutes)) = (
        kept(table, &id, "window_minutes", small(get(row, 5)?)),
        kept(table, &id, "condition", serde_json::from_value(condition)),
        kept(table, &id, "cooldown_minutes", small(get(row, 7)?)),
    ) else {
        return Ok(None);
    };
    Ok(Some(AlertRule {
        site_id: SiteId(get(row, 1)?),
        name: get(row, 2)?,
        metric: get(row, 3)?,
        filters_json: get(row, 4)?,
        window_minutes,
        condition,
        cooldown_minutes,
        webhook_ids: get(row, 8)?,
        emails: get(row, 9)?,
        enabled: get(row, 10)?,
        created_at_ms: get(row, 11)?,
        id,
    }))
}

fn webhook_from_row(row: &Row) -> Result<Option<Webhook>, StoreError> {
    let id: String = get(row, 0)?;
    let Some(format) = kept("webhooks", &id, "format", named(parse_format, get(row, 3)?)) else {
        return Ok(None);
    };
    Ok(Some(Webhook {
        site_id: SiteId(get(row, 1)?),
        url: get(row, 2)?,
        format,
        secret: get(row, 4)?,
        created_at_ms: get(row, 5)?,
        id,
    }))
}

fn subscription_from_row(row: &Row) -> Result<Option<ReportSubscription>, StoreError> {
    let id: String = get(row, 0)?;
    let period = named(parse_period, get(row, 3)?);
    let Some(period) = kept("report_subscriptions", &id, "period", period) else {
        return Ok(None);
    };
    Ok(Some(ReportSubscription {
        site_id: SiteId(get(row, 1)?),
        email: get(row, 2)?,
        period,
        unsubscribe_token: get(row, 4)?,
        last_sent_period: get(row, 5)?,
        created_at_ms: get(row, 6)?,
        id,
    }))
}

fn annotation_from_row(row: &Row) -> Result<Option<Annotation>, StoreError> {
    let id: String = get(row, 0)?;
    let Some(kind) = kept("annotations", &id, "kind", named(parse_kind, get(row, 4)?)) else {
        return Ok(None);
    };
    Ok(Some(Annotation {
        site_id: SiteId(get(row, 1)?),
        at_ms: get(row, 2)?,
        text: get(row, 3)?,
        kind,
        alert_event_id: get(row, 5)?,
        created_at_ms: get(row, 6)?,
        id,
    }))
}

const ALERT_EVENT_COLUMNS: &str =
    "id, rule_id, site_id, fired_at_ms, resolved_at_ms, value, expected, message";

fn alert_event_from_row(row: &Row) -> Result<Option<AlertEvent>, StoreError> {
    Ok(Some(AlertEvent {
        id: get(row, 0)?,
        rule_id: get(row, 1)?,
        site_id: SiteId(get(row, 2)?),
        fired_at_ms: get(row, 3)?,
        resolved_at_ms: get(row, 4)?,
        value: get(row, 5)?,
        expected: get(row, 6)?,
        message: get(row, 7)?,
    }))
}

const DELIVERY_COLUMNS: &str = "id, site_id, target, kind, payload, status, attempts, \
     next_attempt_ms, last_error, created_at_ms, delivered_at_ms";

fn delivery_from_row(row: &Row) -> Result<Option<Delivery>, StoreError> {
    let id: String = get(row, 0)?;
    let table = "deliveries";
    let target: serde_json::Value = get(row, 2)?;
    let (Some(target), Some(status), Some(attempts)) = (
        kept(table, &id, "target", serde_json::from_value(target)),
        kept(
            table,
            &id,
            "status",
            named(DeliveryStatus::parse, get(row, 5)?),
        ),
        kept(table, &id, "attempts", small(get(row, 6)?)),
    ) else {
        return Ok(None);
    };
    Ok(Some(Delivery {
        site_id: SiteId(get(row, 1)?),
        target,
        kind: get(row, 3)?,
        payload: get(row, 4)?,
        status,
        attempts,
        next_attempt_ms: get(row, 7)?,
        last_error: get(row, 8)?,
        created_at_ms: get(row, 9)?,
        delivered_at_ms: get(row, 10)?,
        id,
    }))
}

impl PostgresMetaStore {
    /// Deletes the row `id` of `site` from `table`; false when there is none.
    async fn delete_of_site(
        &self,
        table: &'static str,
        site: &SiteId,
        id: &str,
    ) -> Result<bool, StoreError> {
        // `table` is one of this file's names, never input; the values are bound.
        let sql = format!("DELETE FROM {table} WHERE site_id = $1 AND id = $2");
        let deleted = self.execute(table, &sql, &[&site.as_str(), &id]).await?;
        Ok(deleted > 0)
    }
}

#[async_trait::async_trait]
impl AlertStore for PostgresMetaStore {
    async fn alert_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        let sql =
            format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY site_id, created_at_ms, id");
        read_rows(self.query(&sql, &[]).await?, rule_from_row)
    }

    async fn put_alert_rule(&self, rule: &AlertRule) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO alert_rules ({RULE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (id) DO UPDATE SET site_id = EXCLUDED.site_id, name = EXCLUDED.name, \
             metric = EXCLUDED.metric, filters_json = EXCLUDED.filters_json, \
             window_minutes = EXCLUDED.window_minutes, condition = EXCLUDED.condition, \
             cooldown_minutes = EXCLUDED.cooldown_minutes, webhook_ids = EXCLUDED.webhook_ids, \
             emails = EXCLUDED.emails, enabled = EXCLUDED.enabled, \
             created_at_ms = EXCLUDED.created_at_ms"
        );
        self.execute(
            "alert rule",
            &sql,
            &[
                &rule.id,
                &rule.site_id.as_str(),
                &rule.name,
                &rule.metric,
                &rule.filters_json,
                &i64::from(rule.window_minutes),
                &to_json(&rule.condition)?,
                &i64::from(rule.cooldown_minutes),
                &rule.webhook_ids,
                &rule.emails,
                &rule.enabled,
                &rule.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_alert_rule(&self, site: &SiteId, id: &str) -> Result<bool, StoreError> {
        self.delete_of_site("alert_rules", site, id).await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let rows = self
            .query(
                "SELECT id, site_id, url, format, secret, created_at_ms FROM webhooks \
                 ORDER BY site_id, created_at_ms, id",
                &[],
            )
            .await?;
        read_rows(rows, webhook_from_row)
    }

    async fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        self.execute(
            "webhook",
            "INSERT INTO webhooks (id, site_id, url, format, secret, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &webhook.id,
                &webhook.site_id.as_str(),
                &webhook.url,
                &format_name(webhook.format),
                &webhook.secret,
                &webhook.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_webhook(&self, site: &SiteId, id: &str) -> Result<bool, StoreError> {
        self.delete_of_site("webhooks", site, id).await
    }

    async fn report_subscriptions(&self) -> Result<Vec<ReportSubscription>, StoreError> {
        let rows = self
            .query(
                "SELECT id, site_id, email, period, unsubscribe_token, last_sent_period, \
                 created_at_ms FROM report_subscriptions ORDER BY site_id, created_at_ms, id",
                &[],
            )
            .await?;
        read_rows(rows, subscription_from_row)
    }

    async fn put_report_subscription(
        &self,
        subscription: &ReportSubscription,
    ) -> Result<(), StoreError> {
        self.execute(
            "report subscription",
            "INSERT INTO report_subscriptions (id, site_id, email, period, unsubscribe_token, \
             last_sent_period, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET site_id = EXCLUDED.site_id, \
             email = EXCLUDED.email, period = EXCLUDED.period, \
             unsubscribe_token = EXCLUDED.unsubscribe_token, \
             last_sent_period = EXCLUDED.last_sent_period, \
             created_at_ms = EXCLUDED.created_at_ms",
            &[
                &subscription.id,
                &subscription.site_id.as_str(),
                &subscription.email,
                &period_name(subscription.period),
                &subscription.unsubscribe_token,
                &subscription.last_sent_period,
                &subscription.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_report_subscription(
        &self,
        site: &SiteId,
        id: &str,
    ) -> Result<bool, StoreError> {
        self.delete_of_site("report_subscriptions", site, id).await
    }

    async fn annotations(
        &self,
        site: &SiteId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Annotation>, StoreError> {
        let rows = self
            .query(
                "SELECT id, site_id, at_ms, text, kind, alert_event_id, created_at_ms \
                 FROM annotations WHERE site_id = $1 AND at_ms >= $2 AND at_ms < $3 \
                 ORDER BY at_ms, id",
                &[&site.as_str(), &from_ms, &to_ms],
            )
            .await?;
        read_rows(rows, annotation_from_row)
    }

    async fn put_annotation(&self, annotation: &Annotation) -> Result<(), StoreError> {
        self.execute(
            "annotation",
            "INSERT INTO annotations (id, site_id, at_ms, text, kind, alert_event_id, \
             created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET site_id = EXCLUDED.site_id, at_ms = EXCLUDED.at_ms, \
             text = EXCLUDED.text, kind = EXCLUDED.kind, \
             alert_event_id = EXCLUDED.alert_event_id, created_at_ms = EXCLUDED.created_at_ms",
            &[
                &annotation.id,
                &annotation.site_id.as_str(),
                &annotation.at_ms,
                &annotation.text,
                &kind_name(annotation.kind),
                &annotation.alert_event_id,
                &annotation.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_annotation(&self, site: &SiteId, id: &str) -> Result<bool, StoreError> {
        self.delete_of_site("annotations", site, id).await
    }

    async fn put_alert_event(&self, event: &AlertEvent) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO alert_events ({ALERT_EVENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET rule_id = EXCLUDED.rule_id, \
             site_id = EXCLUDED.site_id, fired_at_ms = EXCLUDED.fired_at_ms, \
             resolved_at_ms = EXCLUDED.resolved_at_ms, value = EXCLUDED.value, \
             expected = EXCLUDED.expected, message = EXCLUDED.message"
        );
        self.execute(
            "alert event",
            &sql,
            &[
                &event.id,
                &event.rule_id,
                &event.site_id.as_str(),
                &event.fired_at_ms,
                &event.resolved_at_ms,
                &event.value,
                &event.expected,
                &event.message,
            ],
        )
        .await?;
        Ok(())
    }

    async fn alert_events(
        &self,
        site: &SiteId,
        limit: usize,
    ) -> Result<Vec<AlertEvent>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_EVENT_COLUMNS} FROM alert_events WHERE site_id = $1 \
             ORDER BY fired_at_ms DESC, id DESC LIMIT $2"
        );
        let rows = self
            .query(&sql, &[&site.as_str(), &limit_param(limit)])
            .await?;
        read_rows(rows, alert_event_from_row)
    }

    async fn latest_alert_events(&self) -> Result<Vec<AlertEvent>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT ON (rule_id) {ALERT_EVENT_COLUMNS} FROM alert_events \
             ORDER BY rule_id, fired_at_ms DESC, id DESC"
        );
        read_rows(self.query(&sql, &[]).await?, alert_event_from_row)
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO deliveries ({DELIVERY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (id) DO NOTHING"
        );
        let inserted = self
            .execute(
                "delivery",
                &sql,
                &[
                    &delivery.id,
                    &delivery.site_id.as_str(),
                    &to_json(&delivery.target)?,
                    &delivery.kind,
                    &delivery.payload,
                    &delivery.status.as_str(),
                    &i64::from(delivery.attempts),
                    &delivery.next_attempt_ms,
                    &delivery.last_error,
                    &delivery.created_at_ms,
                    &delivery.delivered_at_ms,
                ],
            )
            .await?;
        Ok(inserted > 0)
    }

    async fn due_deliveries(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        // `status = 'pending'` as a literal, so the planner can use the partial index.
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE status = 'pending' AND next_attempt_ms <= $1 \
             ORDER BY next_attempt_ms, created_at_ms, id LIMIT $2"
        );
        let rows = self.query(&sql, &[&now_ms, &limit_param(limit)]).await?;
        read_rows(rows, delivery_from_row)
    }

    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.execute(
            "delivery",
            "UPDATE deliveries SET status = $1, attempts = $2, next_attempt_ms = $3, \
             last_error = $4, delivered_at_ms = $5 WHERE id = $6",
            &[
                &delivery.status.as_str(),
                &i64::from(delivery.attempts),
                &delivery.next_attempt_ms,
                &delivery.last_error,
                &delivery.delivered_at_ms,
                &delivery.id,
            ],
        )
        .await?;
        Ok(())
    }

    async fn deliveries(
        &self,
        site: &SiteId,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE site_id = $1 AND ($2::text IS NULL OR status = $2) \
             ORDER BY created_at_ms DESC, id DESC LIMIT $3"
        );
        let status = status.map(DeliveryStatus::as_str);
        let rows = self
            .query(&sql, &[&site.as_str(), &status, &limit_param(limit)])
            .await?;
        read_rows(rows, delivery_from_row)
    }

    async fn delete_site_alerts(&self, site: &SiteId) -> Result<(), StoreError> {
        self.execute_each(
            &[
                "DELETE FROM alert_rules WHERE site_id = $1",
                "DELETE FROM webhooks WHERE site_id = $1",
                "DELETE FROM report_subscriptions WHERE site_id = $1",
                "DELETE FROM annotations WHERE site_id = $1",
                "DELETE FROM alert_events WHERE site_id = $1",
                "DELETE FROM deliveries WHERE site_id = $1",
            ],
            site.as_str(),
        )
        .await
    }
}
