//! [`AlertStore`] on DuckDB: a site's alert rules, webhooks, report recipients and
//! annotations, the history of firings (`alert_events`) and the outbox of deliveries
//! (`deliveries`), in the tables of the schema's alerts migration.
//!
//! Enums are stored under their JSON names, nested parts (a rule's condition, webhook ids and
//! emails, a delivery's target) as JSON text. A row whose stored text no longer decodes is
//! logged and left out, so one damaged row never keeps the server from starting.

use duckdb::params;
use duckdb::types::Value;
use heartbeat_model::{
    AlertEvent, AlertRule, Annotation, AnnotationKind, Delivery, DeliveryStatus, ReportPeriod,
    ReportSubscription, SiteId, Webhook, WebhookFormat,
};
use heartbeat_store::{AlertStore, StoreError};

use crate::{conflict_or_unavailable, rejected, text, unavailable, DuckDbStore};

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

/// A value decoded from column text of a row of `table` (whose first column is its id): a
/// damaged one is logged and `None`, so the row is left out.
fn kept<T, E: std::fmt::Display>(
    row: &duckdb::Row<'_>,
    table: &str,
    decoded: Result<T, E>,
) -> duckdb::Result<Option<T>> {
    match decoded {
        Ok(value) => Ok(Some(value)),
        Err(err) => {
            let id: String = row.get(0)?;
            tracing::error!(table, id = %id, error = %err, "unreadable row; leaving it out");
            Ok(None)
        }
    }
}

/// The stored name `text` read back as one of an enum's, or why not.
fn named<T>(parse: fn(&str) -> Option<T>, text: String) -> Result<T, String> {
    parse(&text).ok_or_else(|| format!("unknown name {text:?}"))
}

/// A column of JSON text, from `serde_json::to_string`'s answer.
fn json(encoded: serde_json::Result<String>) -> Result<Value, StoreError> {
    encoded.map(Value::Text).map_err(rejected)
}

fn rule_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Option<AlertRule>> {
    let table = "alert_rules";
    let condition = kept(row, table, serde_json::from_str(&row.get::<_, String>(6)?))?;
    let webhook_ids = kept(row, table, serde_json::from_str(&row.get::<_, String>(8)?))?;
    let emails = kept(row, table, serde_json::from_str(&row.get::<_, String>(9)?))?;
    let (Some(condition), Some(webhook_ids), Some(emails)) = (condition, webhook_ids, emails)
    else {
        return Ok(None);
    };
    Ok(Some(AlertRule {
        id: row.get(0)?,
        site_id: SiteId(row.get(1)?),
        name: row.get(2)?,
        metric: row.get(3)?,
        filters_json: row.get(4)?,
        window_minutes: row.get(5)?,
        condition,
        cooldown_minutes: row.get(7)?,
        webhook_ids,
        emails,
        enabled: row.get(10)?,
        created_at_ms: row.get(11)?,
    }))
}

fn webhook_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Option<Webhook>> {
    let Some(format) = kept(row, "webhooks", named(parse_format, row.get(3)?))? else {
        return Ok(None);
    };
    Ok(Some(Webhook {
        id: row.get(0)?,
        site_id: SiteId(row.get(1)?),
        url: row.get(2)?,
        format,
        secret: row.get(4)?,
        created_at_ms: row.get(5)?,
    }))
}

fn subscription_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Option<ReportSubscription>> {
    let Some(period) = kept(
        row,
        "report_subscriptions",
        named(parse_period, row.get(3)?),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(ReportSubscription {
        id: row.get(0)?,
        site_id: SiteId(row.get(1)?),
        email: row.get(2)?,
        period,
        unsubscribe_token: row.get(4)?,
        last_sent_period: row.get(5)?,
        created_at_ms: row.get(6)?,
    }))
}

fn annotation_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Option<Annotation>> {
    let Some(kind) = kept(row, "annotations", named(parse_kind, row.get(4)?))? else {
        return Ok(None);
    };
    Ok(Some(Annotation {
        id: row.get(0)?,
        site_id: SiteId(row.get(1)?),
        at_ms: row.get(2)?,
        text: row.get(3)?,
        kind,
        alert_event_id: row.get(5)?,
        created_at_ms: row.get(6)?,
    }))
}

const ALERT_EVENT_COLUMNS: &str =
    "id, rule_id, site_id, fired_at_ms, resolved_at_ms, value, expected, message";

fn alert_event_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<AlertEvent> {
    Ok(AlertEvent {
        id: row.get(0)?,
        rule_id: row.get(1)?,
        site_id: SiteId(row.get(2)?),
        fired_at_ms: row.get(3)?,
        resolved_at_ms: row.get(4)?,
        value: row.get(5)?,
        expected: row.get(6)?,
        message: row.get(7)?,
    })
}

const DELIVERY_COLUMNS: &str = "id, site_id, target_json, kind, payload, status, attempts, \
     next_attempt_ms, last_error, created_at_ms, delivered_at_ms";

fn delivery_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Option<Delivery>> {
    let table = "deliveries";
    let target = kept(row, table, serde_json::from_str(&row.get::<_, String>(2)?))?;
    let status = kept(row, table, named(DeliveryStatus::parse, row.get(5)?))?;
    let (Some(target), Some(status)) = (target, status) else {
        return Ok(None);
    };
    Ok(Some(Delivery {
        id: row.get(0)?,
        site_id: SiteId(row.get(1)?),
        target,
        kind: row.get(3)?,
        payload: row.get(4)?,
        status,
        attempts: row.get(6)?,
        next_attempt_ms: row.get(7)?,
        last_error: row.get(8)?,
        created_at_ms: row.get(9)?,
        delivered_at_ms: row.get(10)?,
    }))
}

impl DuckDbStore {
    /// Every row of one statement with `values` bound to its parameters, read with `row`.
    async fn read_bound<T: Send + 'static>(
        &self,
        sql: String,
        values: Vec<Value>,
        row: fn(&duckdb::Row<'_>) -> duckdb::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare(&sql).map_err(unavailable)?;
            let rows = stmt
                .query_map(duckdb::params_from_iter(values), row)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok(rows)
        })
        .await
    }

    /// Deletes the row `id` of `site` from `table`; false when there is none.
    async fn delete_of_site(
        &self,
        table: &'static str,
        site: &SiteId,
        id: &str,
    ) -> Result<bool, StoreError> {
        let (site, id) = (site.as_str().to_owned(), id.to_owned());
        self.with_writer(move |conn| {
            // `table` is one of this file's names, never input.
            let sql = format!("DELETE FROM {table} WHERE site_id = ? AND id = ?");
            let deleted = conn.execute(&sql, params![site, id]).map_err(unavailable)?;
            Ok(deleted > 0)
        })
        .await
    }
}

/// A `LIMIT` parameter.
fn limit_value(limit: usize) -> Value {
    Value::BigInt(i64::try_from(limit).unwrap_or(i64::MAX))
}

#[async_trait::async_trait]
impl AlertStore for DuckDbStore {
    async fn alert_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        let rows = self
            .read_all(
                "SELECT id, site_id, name, metric, filters_json, window_minutes, condition_json, \
                 cooldown_minutes, webhook_ids_json, emails_json, enabled, created_at_ms \
                 FROM alert_rules ORDER BY site_id, created_at_ms, id",
                rule_from_row,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn put_alert_rule(&self, rule: &AlertRule) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO alert_rules VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                text(&rule.id),
                text(rule.site_id.as_str()),
                text(&rule.name),
                text(&rule.metric),
                text(&rule.filters_json),
                rule.window_minutes.into(),
                json(serde_json::to_string(&rule.condition))?,
                rule.cooldown_minutes.into(),
                json(serde_json::to_string(&rule.webhook_ids))?,
                json(serde_json::to_string(&rule.emails))?,
                rule.enabled.into(),
                rule.created_at_ms.into(),
            ],
        )
        .await
    }

    async fn delete_alert_rule(&self, site: &SiteId, id: &str) -> Result<bool, StoreError> {
        self.delete_of_site("alert_rules", site, id).await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let rows = self
            .read_all(
                "SELECT id, site_id, url, format, secret, created_at_ms FROM webhooks \
                 ORDER BY site_id, created_at_ms, id",
                webhook_from_row,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let webhook = webhook.clone();
        self.with_writer(move |conn| {
            conn.execute(
                "INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?)",
                params![
                    webhook.id,
                    webhook.site_id.as_str(),
                    webhook.url,
                    format_name(webhook.format),
                    webhook.secret,
                    webhook.created_at_ms
                ],
            )
            .map_err(|err| conflict_or_unavailable(err, "webhook"))?;
            Ok(())
        })
        .await
    }

    async fn delete_webhook(&self, site: &SiteId, id: &str) -> Result<bool, StoreError> {
        self.delete_of_site("webhooks", site, id).await
    }

    async fn report_subscriptions(&self) -> Result<Vec<ReportSubscription>, StoreError> {
        let rows = self
            .read_all(
                "SELECT id, site_id, email, period, unsubscribe_token, last_sent_period, \
                 created_at_ms FROM report_subscriptions ORDER BY site_id, created_at_ms, id",
                subscription_from_row,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn put_report_subscription(
        &self,
        subscription: &ReportSubscription,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO report_subscriptions VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                text(&subscription.id),
                text(subscription.site_id.as_str()),
                text(&subscription.email),
                text(period_name(subscription.period)),
                text(&subscription.unsubscribe_token),
                subscription.last_sent_period.clone().into(),
                subscription.created_at_ms.into(),
            ],
        )
        .await
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
            .read_bound(
                "SELECT id, site_id, at_ms, text, kind, alert_event_id, created_at_ms \
                 FROM annotations WHERE site_id = ? AND at_ms >= ? AND at_ms < ? \
                 ORDER BY at_ms, id"
                    .to_owned(),
                vec![text(site.as_str()), from_ms.into(), to_ms.into()],
                annotation_from_row,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn put_annotation(&self, annotation: &Annotation) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO annotations VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                text(&annotation.id),
                text(annotation.site_id.as_str()),
                annotation.at_ms.into(),
                text(&annotation.text),
                text(kind_name(annotation.kind)),
                annotation.alert_event_id.clone().into(),
                annotation.created_at_ms.into(),
            ],
        )
        .await
    }

    async fn delete_annotation(&self, site: &SiteId, id: &str) -> Result<bool, StoreError> {
        self.delete_of_site("annotations", site, id).await
    }

    async fn put_alert_event(&self, event: &AlertEvent) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO alert_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                text(&event.id),
                text(&event.rule_id),
                text(event.site_id.as_str()),
                event.fired_at_ms.into(),
                event.resolved_at_ms.into(),
                event.value.into(),
                event.expected.into(),
                text(&event.message),
            ],
        )
        .await
    }

    async fn alert_events(
        &self,
        site: &SiteId,
        limit: usize,
    ) -> Result<Vec<AlertEvent>, StoreError> {
        self.read_bound(
            format!(
                "SELECT {ALERT_EVENT_COLUMNS} FROM alert_events WHERE site_id = ? \
                 ORDER BY fired_at_ms DESC, id DESC LIMIT ?"
            ),
            vec![text(site.as_str()), limit_value(limit)],
            alert_event_from_row,
        )
        .await
    }

    async fn latest_alert_events(&self) -> Result<Vec<AlertEvent>, StoreError> {
        self.read_bound(
            format!(
                "SELECT {ALERT_EVENT_COLUMNS} FROM alert_events \
                 QUALIFY row_number() OVER (PARTITION BY rule_id ORDER BY fired_at_ms DESC, id DESC) = 1 \
                 ORDER BY rule_id"
            ),
            Vec::new(),
            alert_event_from_row,
        )
        .await
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        let values = vec![
            text(&delivery.id),
            text(delivery.site_id.as_str()),
            json(serde_json::to_string(&delivery.target))?,
            text(&delivery.kind),
            text(&delivery.payload),
            text(delivery.status.as_str()),
            delivery.attempts.into(),
            delivery.next_attempt_ms.into(),
            delivery.last_error.clone().into(),
            delivery.created_at_ms.into(),
            delivery.delivered_at_ms.into(),
        ];
        self.with_writer(move |conn| {
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    duckdb::params_from_iter(values),
                )
                .map_err(unavailable)?;
            Ok(inserted > 0)
        })
        .await
    }

    async fn due_deliveries(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let rows = self
            .read_bound(
                format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries \
                     WHERE status = ? AND next_attempt_ms <= ? \
                     ORDER BY next_attempt_ms, created_at_ms, id LIMIT ?"
                ),
                vec![
                    text(DeliveryStatus::Pending.as_str()),
                    now_ms.into(),
                    limit_value(limit),
                ],
                delivery_from_row,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.execute(
            "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_ms = ?, \
             last_error = ?, delivered_at_ms = ? WHERE id = ?",
            vec![
                text(delivery.status.as_str()),
                delivery.attempts.into(),
                delivery.next_attempt_ms.into(),
                delivery.last_error.clone().into(),
                delivery.delivered_at_ms.into(),
                text(&delivery.id),
            ],
        )
        .await
    }

    async fn deliveries(
        &self,
        site: &SiteId,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let status = status.map(|s| s.as_str().to_owned());
        let rows = self
            .read_bound(
                format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries \
                     WHERE site_id = ? AND (? IS NULL OR status = ?) \
                     ORDER BY created_at_ms DESC, id DESC LIMIT ?"
                ),
                vec![
                    text(site.as_str()),
                    status.clone().into(),
                    status.into(),
                    limit_value(limit),
                ],
                delivery_from_row,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn delete_site_alerts(&self, site: &SiteId) -> Result<(), StoreError> {
        self.execute_each(
            &[
                "DELETE FROM alert_rules WHERE site_id = ?",
                "DELETE FROM webhooks WHERE site_id = ?",
                "DELETE FROM report_subscriptions WHERE site_id = ?",
                "DELETE FROM annotations WHERE site_id = ?",
                "DELETE FROM alert_events WHERE site_id = ?",
                "DELETE FROM deliveries WHERE site_id = ?",
            ],
            site.as_str().to_owned(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_damaged_row_is_left_out() {
        let store = DuckDbStore::open_in_memory().unwrap();
        store
            .with_writer(|conn| {
                conn.execute_batch(
                    "INSERT INTO alert_rules VALUES ('r', 'a.example', 'R', 'visitors', '[]', 60,
                         '{\"type\":', 0, '[]', '[]', true, 1);
                     INSERT INTO webhooks VALUES ('w', 'a.example', 'https://x', 'teams', 's', 1);
                     INSERT INTO deliveries VALUES ('d', 'a.example', '{}', 'alert', '{}',
                         'pending', 0, 0, NULL, 0, NULL);",
                )
                .map_err(unavailable)
            })
            .await
            .unwrap();
        assert!(store.alert_rules().await.unwrap().is_empty());
        assert!(store.webhooks().await.unwrap().is_empty());
        assert!(store.due_deliveries(0, 10).await.unwrap().is_empty());
    }
}
