//! The job that evaluates every enabled alert rule each `alerts.interval_ms`: the rule's
//! metric over the window ending now (and, for an anomaly rule, over the same window in each
//! of the previous weeks the site has data for), through the same query engine as the Stats
//! API, on the query pool (so evaluations never hold up ingest). What fires is stored (the
//! firing, an annotation on the site) and its notices queued in the outbox; what is back to
//! normal is resolved and told the same way. The job then sends the reports that are due.

use std::time::Duration;

use heartbeat_alerts::evaluate::{check, describe, transition, Check, Transition};
use heartbeat_model::{
    AlertCondition, AlertEvent, AlertRule, Annotation, AnnotationKind, DeliveryTarget, Site,
};
use heartbeat_query::{execute, first_event_ms, parse_query, DateRange, Query};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::directory::new_id;
use super::notice::{Change, Notice};
use super::outbox::delivery_id;
use super::reports;
use crate::http::error::ApiError;
use crate::http::json::iso;
use crate::http::state::App;
use crate::telemetry::{ALERTS_FIRED, ALERT_EVALUATION_ERRORS};

const MINUTE_MS: i64 = 60_000;
const WEEK_MS: i64 = 7 * 86_400_000;

/// Evaluates the rules and sends due reports now and every `interval` until `stop`.
pub async fn run(app: App, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis();
        evaluate_all(&app, now).await;
        reports::send_due(&app, now).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// One evaluation of every enabled rule at `now_ms`; a rule that cannot be evaluated is
/// logged and tried again next time.
pub async fn evaluate_all(app: &App, now_ms: i64) {
    for rule in app.alerting.directory.all_rules() {
        if !rule.enabled {
            continue;
        }
        if let Err(err) = evaluate(app, &rule, now_ms).await {
            metrics::counter!(ALERT_EVALUATION_ERRORS).increment(1);
            tracing::warn!(rule = %rule.id, site = %rule.site_id, error = ?err, "alert rule not evaluated");
        }
    }
}

/// The metric a rule measures.
pub fn measured_metric(rule: &AlertRule) -> &str {
    match rule.condition {
        AlertCondition::NoEvents => "events",
        _ => &rule.metric,
    }
}

/// The rule's metric and filters as a v2 query over the window ending at `now_ms`: what a
/// new rule is checked with, so a rule that cannot be measured is refused when saved.
pub fn rule_query(
    app: &App,
    site: &Site,
    rule: &AlertRule,
    now_ms: i64,
) -> Result<Query, ApiError> {
    let filters: Value = serde_json::from_str(&rule.filters_json).unwrap_or_else(|_| json!([]));
    let window_ms = i64::from(rule.window_minutes) * MINUTE_MS;
    let body = json!({
        "site_id": site.id,
        "metrics": [measured_metric(rule)],
        "date_range": [iso(now_ms - window_ms), iso(now_ms - 1)],
        "filters": filters,
    });
    Ok(parse_query(
        &body,
        site,
        &app.goals.of_site(&site.id),
        now_ms,
        now_ms,
        &app.queries.settings.bounds(),
    )?)
}

/// The metric's value over `[start_ms, end_ms)`; `None` when it has none (a rate without
/// visits).
async fn value_over(
    app: &App,
    query: &Query,
    start_ms: i64,
    end_ms: i64,
) -> Result<Option<f64>, ApiError> {
    let mut query = query.clone();
    query.range = DateRange { start_ms, end_ms };
    let result = execute(&query, app.reads.as_ref()).await?;
    Ok(
        match result.results.first().and_then(|row| row.metrics.first()) {
            Some(value) => value.as_f64(),
            // No row: nothing happened, which counts are zero of.
            None => matches!(
                query.metrics.first().map(|m| m.name()),
                Some("visitors" | "visits" | "pageviews" | "events")
            )
            .then_some(0.0),
        },
    )
}

/// The value over the window ending now and, for an anomaly rule, over the same window of
/// each previous week (newest first) since the site's first event.
async fn measure(
    app: &App,
    site: &Site,
    rule: &AlertRule,
    now_ms: i64,
) -> Result<(Option<f64>, Vec<f64>), ApiError> {
    let query = rule_query(app, site, rule, now_ms)?;
    let window_ms = i64::from(rule.window_minutes) * MINUTE_MS;
    let value = value_over(app, &query, now_ms - window_ms, now_ms).await?;
    let mut history = Vec::new();
    if let AlertCondition::Anomaly { weeks, .. } = rule.condition {
        let first = first_event_ms(&site.id, app.reads.as_ref())
            .await?
            .unwrap_or(now_ms);
        for week in 1..=i64::from(weeks) {
            let end = now_ms - week * WEEK_MS;
            if end - window_ms < first {
                break;
            }
            if let Some(past) = value_over(app, &query, end - window_ms, end).await? {
                history.push(past);
            }
        }
    }
    Ok((value, history))
}

/// One evaluation of `rule` at `now_ms`, on the query pool.
pub async fn evaluate(app: &App, rule: &AlertRule, now_ms: i64) -> Result<(), ApiError> {
    let Some(site) = app.registry.site(&rule.site_id) else {
        return Ok(());
    };
    let work = {
        let (app, site, rule) = (app.clone(), site.clone(), rule.clone());
        async move { measure(&app, &site, &rule, now_ms).await }
    };
    let (value, history) = app.queries.compute("alerts", work).await?;
    let directory = &app.alerting.directory;
    let mut status = directory.status(&rule.id);
    status.last_evaluated_ms = Some(now_ms);
    status.last_value = value;
    if let Some(value) = value {
        let found = check(&rule.condition, value, &history);
        let step = transition(&status.state, found.breached, now_ms, rule.cooldown_minutes);
        match step {
            Transition::Fire => {
                status.open_event = Some(fire(app, &site, rule, &found, now_ms).await?);
            }
            Transition::Resolve => {
                if let Some(mut event) = status.open_event.take() {
                    event.resolved_at_ms = Some(now_ms);
                    directory.store().put_alert_event(&event).await?;
                    notify(app, &site, rule, &event, Change::Resolved, now_ms).await?;
                }
            }
            Transition::Stay => {}
        }
        status.state.apply(step, now_ms);
    }
    directory.set_status(&rule.id, status);
    Ok(())
}

/// Stores a firing and its annotation and queues its notices.
async fn fire(
    app: &App,
    site: &Site,
    rule: &AlertRule,
    found: &Check,
    now_ms: i64,
) -> Result<AlertEvent, ApiError> {
    let message = describe(
        measured_metric(rule),
        rule.window_minutes,
        &rule.condition,
        found,
    );
    let event = AlertEvent {
        id: new_id("ae_"),
        rule_id: rule.id.clone(),
        site_id: rule.site_id.clone(),
        fired_at_ms: now_ms,
        resolved_at_ms: None,
        value: found.value,
        expected: found.expected,
        message: message.clone(),
    };
    let store = app.alerting.directory.store();
    store.put_alert_event(&event).await?;
    store
        .put_annotation(&Annotation {
            id: new_id("an_"),
            site_id: rule.site_id.clone(),
            at_ms: now_ms,
            text: format!("{}: {message}", rule.name),
            kind: AnnotationKind::Alert,
            alert_event_id: Some(event.id.clone()),
            created_at_ms: now_ms,
        })
        .await?;
    metrics::counter!(ALERTS_FIRED).increment(1);
    tracing::info!(rule = %rule.id, site = %rule.site_id, %message, "alert fired");
    notify(app, site, rule, &event, Change::Fired, now_ms).await?;
    Ok(event)
}

/// Queues the notice of `change` to every webhook and address of the rule.
async fn notify(
    app: &App,
    site: &Site,
    rule: &AlertRule,
    event: &AlertEvent,
    change: Change,
    now_ms: i64,
) -> Result<(), ApiError> {
    let alerting = &app.alerting;
    let notice = Notice {
        change,
        rule,
        event,
        site_name: &site.name,
        dashboard_url: alerting.dashboard_url(&site.id, "period=day"),
    };
    for webhook_id in &rule.webhook_ids {
        let Some(hook) = alerting.directory.webhook(webhook_id) else {
            continue;
        };
        alerting
            .outbox
            .enqueue(
                delivery_id(&[&event.id, change.kind(), "webhook", webhook_id]),
                &site.id,
                DeliveryTarget::Webhook {
                    webhook_id: webhook_id.clone(),
                },
                "alert",
                notice.webhook_body(hook.format),
                now_ms,
            )
            .await?;
    }
    if !rule.emails.is_empty() {
        let email = serde_json::to_string(&notice.email()).map_err(|_| ApiError::internal())?;
        for to in &rule.emails {
            alerting
                .outbox
                .enqueue(
                    delivery_id(&[&event.id, change.kind(), "email", to]),
                    &site.id,
                    DeliveryTarget::Email { to: to.clone() },
                    "alert",
                    email.clone(),
                    now_ms,
                )
                .await?;
        }
    }
    Ok(())
}
