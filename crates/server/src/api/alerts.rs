//! A site's alert rules (`/api/sites/{site_id}/alerts`), the history of their firings, its
//! webhooks (`/api/sites/{site_id}/webhooks`) and the deliveries of what they said
//! (`/api/sites/{site_id}/deliveries`): read to list, admin to change. A rule is checked
//! whole when saved (every bad field named), its metric and filters by the v2 query parser
//! it is measured with. Evaluation and delivery are `crate::alerting`'s.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_model::{
    AlertCondition, AlertRule, AnomalyDirection, Delivery, DeliveryStatus, DeliveryTarget, SiteId,
    Webhook, WebhookFormat, MAX_ALERT_WINDOW_MINUTES, MAX_BASELINE_WEEKS, MIN_ALERT_WINDOW_MINUTES,
    MIN_NO_EVENTS_MINUTES,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::alerting::directory::new_id;
use crate::alerting::email::valid_address;
use crate::alerting::evaluator::rule_query;
use crate::alerting::target::check_url;
use crate::http::error::ApiError;
use crate::http::json::{iso, json_object};
use crate::http::query_string::LaterQuery;
use crate::http::site_access::{site_to_admin, site_to_read};
use crate::http::state::{App, Caller, Payload, RequiredCaller};

/// Metrics a rule may watch: those with one number per window.
pub const ALERT_METRICS: &[&str] = &[
    "visitors",
    "visits",
    "pageviews",
    "events",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "scroll_depth",
    "conversion_rate",
];
const MAX_NAME_CHARS: usize = 100;
const MAX_COOLDOWN_MINUTES: u64 = 7 * 1440;
const MAX_RECIPIENTS: usize = 20;
const MAX_RULES_PER_SITE: usize = 100;
const MAX_WEBHOOKS_PER_SITE: usize = 20;
/// Fields of a rule's answer a client may send back unchanged.
const READ_ONLY: &[&str] = &[
    "alert_id",
    "site_id",
    "created_at",
    "state",
    "last_value",
    "last_evaluated_at",
];

fn no_rule(id: &str) -> ApiError {
    ApiError::not_found("alert_id", format!("no alert {id}"))
}

/// A rule as answered; its email recipients only to a caller who may change the site (a
/// share link or a read key learns no address).
fn rule_json(app: &App, caller: &Caller, rule: &AlertRule) -> Value {
    let status = app.alerting.directory.status(&rule.id);
    let emails = caller.may_admin(&rule.site_id).then(|| rule.emails.clone());
    json!({
        "alert_id": rule.id,
        "site_id": rule.site_id,
        "name": rule.name,
        "metric": rule.metric,
        "filters": serde_json::from_str::<Value>(&rule.filters_json).unwrap_or(json!([])),
        "window_minutes": rule.window_minutes,
        "condition": rule.condition,
        "cooldown_minutes": rule.cooldown_minutes,
        "webhook_ids": rule.webhook_ids,
        "emails": emails,
        "enabled": rule.enabled,
        "created_at": iso(rule.created_at_ms),
        "state": if status.state.firing_since_ms.is_some() { "firing" } else { "ok" },
        "last_value": status.last_value,
        "last_evaluated_at": status.last_evaluated_ms.map(iso),
    })
}

/// A whole number in `min..=max` at `field`, or `default` when absent.
fn integer(
    body: &Map<String, Value>,
    field: &str,
    (min, max): (u64, u64),
    default: Option<u64>,
    errors: &mut Vec<FieldError>,
) -> Option<u64> {
    match body.get(field) {
        None | Some(Value::Null) if default.is_some() => default,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| (min..=max).contains(&n)) => {
            n.as_u64()
        }
        _ => {
            errors.push(FieldError::new(
                field,
                format!("must be a whole number from {min} to {max}"),
            ));
            None
        }
    }
}

/// The `condition` object of a rule.
fn parse_condition(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<AlertCondition> {
    let Some(Value::Object(condition)) = value else {
        errors.push(FieldError::new(
            "condition",
            "is required: {\"type\": \"above\"|\"below\", \"threshold\": n}, {\"type\": \"anomaly\"} or {\"type\": \"no_events\"}",
        ));
        return None;
    };
    let threshold = |errors: &mut Vec<FieldError>| match condition.get("threshold") {
        Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => n.as_f64(),
        _ => {
            errors.push(FieldError::new("condition.threshold", "must be a number"));
            None
        }
    };
    let known: &[&str] = match condition.get("type").and_then(Value::as_str) {
        Some("above" | "below") => &["type", "threshold"],
        Some("anomaly") => &["type", "direction", "sensitivity", "weeks"],
        Some("no_events") => &["type"],
        _ => {
            errors.push(FieldError::new(
                "condition.type",
                "must be above, below, anomaly or no_events",
            ));
            return None;
        }
    };
    for key in condition.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(FieldError::new(
            &format!("condition.{key}"),
            "is not a field of this condition",
        ));
    }
    match condition.get("type").and_then(Value::as_str) {
        Some("above") => threshold(errors).map(|threshold| AlertCondition::Above { threshold }),
        Some("below") => threshold(errors).map(|threshold| AlertCondition::Below { threshold }),
        Some("anomaly") => {
            let direction = match condition.get("direction") {
                None | Some(Value::Null) => Some(AnomalyDirection::Both),
                Some(Value::String(d)) if d == "up" => Some(AnomalyDirection::Up),
                Some(Value::String(d)) if d == "down" => Some(AnomalyDirection::Down),
                Some(Value::String(d)) if d == "both" => Some(AnomalyDirection::Both),
                Some(_) => {
                    errors.push(FieldError::new(
                        "condition.direction",
                        "must be up, down or both",
                    ));
                    None
                }
            };
            let sensitivity = match condition.get("sensitivity") {
                None | Some(Value::Null) => Some(3.0),
                Some(Value::Number(n)) if n.as_f64().is_some_and(|s| s > 0.0 && s <= 10.0) => {
                    n.as_f64()
                }
                Some(_) => {
                    errors.push(FieldError::new(
                        "condition.sensitivity",
                        "must be a number above 0, at most 10 (deviations from the usual)",
                    ));
                    None
                }
            };
            let weeks = integer(
                condition,
                "weeks",
                (2, u64::from(MAX_BASELINE_WEEKS)),
                Some(4),
                errors,
            )
            .map(|w| w as u32);
            if let Some(e) = errors.last_mut().filter(|e| e.field == "weeks") {
                e.field = "condition.weeks".into();
            }
            Some(AlertCondition::Anomaly {
                direction: direction?,
                sensitivity: sensitivity?,
                weeks: weeks?,
            })
        }
        _ => Some(AlertCondition::NoEvents),
    }
}

/// A string list at `field`, each item checked by `valid`.
fn string_list(
    body: &Map<String, Value>,
    field: &str,
    valid: impl Fn(&str) -> Result<(), String>,
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    match body.get(field) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_RECIPIENTS => {
            let mut out: Vec<String> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(|s| (s, valid(s))) {
                    Some((s, Ok(()))) => {
                        if !out.iter().any(|o| o == s) {
                            out.push(s.to_owned());
                        }
                    }
                    Some((_, Err(message))) => {
                        errors.push(FieldError::new(&format!("{field}[{i}]"), message))
                    }
                    None => errors.push(FieldError::new(
                        &format!("{field}[{i}]"),
                        "must be a string",
                    )),
                }
            }
            out
        }
        _ => {
            errors.push(FieldError::new(
                field,
                format!("must be a list of at most {MAX_RECIPIENTS} strings"),
            ));
            Vec::new()
        }
    }
}

/// A rule of `site` from a request body, every bad field named; `id` and `created_at_ms`
/// are the saved rule's when it is replaced.
fn parse_rule(
    app: &App,
    site: &SiteId,
    body: &Value,
    id: String,
    created_at_ms: i64,
) -> Result<AlertRule, ApiError> {
    let Some(body) = body.as_object() else {
        return Err(ApiError::invalid(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    };
    let mut errors = Vec::new();
    for key in body.keys() {
        let known = [
            "name",
            "metric",
            "filters",
            "window_minutes",
            "condition",
            "cooldown_minutes",
            "webhook_ids",
            "emails",
            "enabled",
        ];
        if !known.contains(&key.as_str()) && !READ_ONLY.contains(&key.as_str()) {
            errors.push(FieldError::new(key, "is not a field of an alert rule"));
        }
    }
    let name = match body.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= MAX_NAME_CHARS => {
            Some(n.trim().to_owned())
        }
        _ => {
            errors.push(FieldError::new(
                "name",
                format!("name is required, 1 to {MAX_NAME_CHARS} characters"),
            ));
            None
        }
    };
    let condition = parse_condition(body.get("condition"), &mut errors);
    let no_events = matches!(condition, Some(AlertCondition::NoEvents));
    let metric = match body.get("metric") {
        None | Some(Value::Null) if no_events => Some("events".to_owned()),
        Some(Value::String(m)) if ALERT_METRICS.contains(&m.as_str()) => Some(m.clone()),
        _ => {
            errors.push(FieldError::new(
                "metric",
                format!("must be one of {}", ALERT_METRICS.join(", ")),
            ));
            None
        }
    };
    let min_window = if no_events {
        MIN_NO_EVENTS_MINUTES
    } else {
        MIN_ALERT_WINDOW_MINUTES
    };
    let window = integer(
        body,
        "window_minutes",
        (u64::from(min_window), u64::from(MAX_ALERT_WINDOW_MINUTES)),
        None,
        &mut errors,
    );
    let cooldown = integer(
        body,
        "cooldown_minutes",
        (0, MAX_COOLDOWN_MINUTES),
        Some(60),
        &mut errors,
    );
    let filters = match body.get("filters") {
        None | Some(Value::Null) => json!([]),
        Some(Value::Array(filters)) => Value::Array(filters.clone()),
        Some(_) => {
            errors.push(FieldError::new("filters", "must be a list of v2 filters"));
            json!([])
        }
    };
    let hooks = app.alerting.directory.webhooks(site);
    let webhook_ids = string_list(
        body,
        "webhook_ids",
        |id| {
            if hooks.iter().any(|h| h.id == id) {
                Ok(())
            } else {
                Err(format!("no webhook {id} on this site"))
            }
        },
        &mut errors,
    );
    let email_on = app.alerting.outbox.email_enabled();
    let emails = string_list(
        body,
        "emails",
        |email| {
            if !valid_address(email) {
                Err(format!("{email:?} is not an email address"))
            } else if !email_on {
                Err("email is off on this server (setting smtp.host)".into())
            } else {
                Ok(())
            }
        },
        &mut errors,
    );
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new("enabled", "must be true or false"));
            true
        }
    };
    let (Some(name), Some(condition), Some(metric), Some(window), Some(cooldown)) =
        (name, condition, metric, window, cooldown)
    else {
        return Err(ApiError::invalid(errors));
    };
    let rule = AlertRule {
        id,
        site_id: site.clone(),
        name,
        metric,
        filters_json: filters.to_string(),
        window_minutes: window as u32,
        condition,
        cooldown_minutes: cooldown as u32,
        webhook_ids,
        emails,
        enabled,
        created_at_ms,
    };
    // The metric and filters are measured by the v2 parser: what it refuses is named here.
    let now = chrono::Utc::now().timestamp_millis();
    if let Some(site) = app.registry.site(site) {
        if let Err(err) = rule_query(app, &site, &rule, now) {
            errors.extend(err.details.into_iter().map(|mut e| {
                if e.field == "metrics" || e.field.starts_with("metrics[") {
                    e.field = "metric".to_owned();
                }
                e
            }));
        }
    }
    if errors.is_empty() {
        Ok(rule)
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// A site's alert rules with their state.
#[utoipa::path(operation_id = "alerts_list", get, path = "/api/sites/{site_id}/alerts", tag = "alerts",
    params(("site_id" = String, Path, description = "The site")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, alerts: [{alert_id, site_id, name, metric, filters, window_minutes, condition, cooldown_minutes, webhook_ids, emails (null unless the caller may change the site), enabled, created_at, state, last_value, last_evaluated_at}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn list(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_read(&app, &caller.0, &site_id)?;
    let alerts: Vec<Value> = app
        .alerting
        .directory
        .rules(&site)
        .iter()
        .map(|rule| rule_json(&app, &caller.0, rule))
        .collect();
    Ok(Json(json!({"success": true, "alerts": alerts})))
}

/// Creates an alert rule: `name`, `metric` (a v2 metric), `filters` (v2 filters), the
/// `window_minutes` it is measured over (5 to 1,440; 1 for `no_events`), `condition`
/// (`{"type": "above"|"below", "threshold": n}`, `{"type": "anomaly", "direction":
/// "up"|"down"|"both", "sensitivity": 3, "weeks": 4}`: outside the median ± sensitivity
/// robust deviations of the same window in the previous weeks, or `{"type":
/// "no_events"}`), `cooldown_minutes` (default 60), `webhook_ids`, `emails`, `enabled`.
#[utoipa::path(operation_id = "alerts_create", post, path = "/api/sites/{site_id}/alerts", tag = "alerts",
    params(("site_id" = String, Path, description = "The site")),
    request_body = crate::http::schema::AlertRuleBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "`{success, alert}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn create(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    let body = json_object(&body)?;
    if app.alerting.directory.rules(&site).len() >= MAX_RULES_PER_SITE {
        return Err(
            ApiError::new(StatusCode::CONFLICT, "Too many alert rules").with_detail(
                "site_id",
                format!("a site has at most {MAX_RULES_PER_SITE} alert rules"),
            ),
        );
    }
    let now = chrono::Utc::now().timestamp_millis();
    let rule = parse_rule(&app, &site, &body, new_id("al_"), now)?;
    app.alerting.directory.put_rule(rule.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "alert": rule_json(&app, &caller.0, &rule)})),
    )
        .into_response())
}

/// One alert rule of the site.
#[utoipa::path(operation_id = "alerts_show", get, path = "/api/sites/{site_id}/alerts/{alert_id}", tag = "alerts",
    params(("site_id" = String, Path, description = "The site"), ("alert_id" = String, Path, description = "The rule")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, alert}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn show(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, alert_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_read(&app, &caller.0, &site_id)?;
    let rule = app
        .alerting
        .directory
        .rule(&site, &alert_id)
        .ok_or_else(|| no_rule(&alert_id))?;
    Ok(Json(
        json!({"success": true, "alert": rule_json(&app, &caller.0, &rule)}),
    ))
}

/// Replaces an alert rule (the body as for creating one); its state and history stay.
#[utoipa::path(operation_id = "alerts_update", put, path = "/api/sites/{site_id}/alerts/{alert_id}", tag = "alerts",
    params(("site_id" = String, Path, description = "The site"), ("alert_id" = String, Path, description = "The rule")),
    request_body = crate::http::schema::AlertRuleBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, alert}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn update(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, alert_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    let saved = app
        .alerting
        .directory
        .rule(&site, &alert_id)
        .ok_or_else(|| no_rule(&alert_id))?;
    let body = json_object(&body)?;
    let rule = parse_rule(&app, &site, &body, saved.id, saved.created_at_ms)?;
    app.alerting.directory.put_rule(rule.clone()).await?;
    Ok(Json(
        json!({"success": true, "alert": rule_json(&app, &caller.0, &rule)}),
    ))
}

/// Deletes an alert rule (its history stays).
#[utoipa::path(operation_id = "alerts_delete", delete, path = "/api/sites/{site_id}/alerts/{alert_id}", tag = "alerts",
    params(("site_id" = String, Path, description = "The site"), ("alert_id" = String, Path, description = "The rule")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, deleted}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn delete(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, alert_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    if !app.alerting.directory.delete_rule(&site, &alert_id).await? {
        return Err(no_rule(&alert_id));
    }
    Ok(Json(json!({"success": true, "deleted": alert_id})))
}

/// The history's and the deliveries' parameters (read after the access check).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// How many, newest first (1 to 500; default 50).
    limit: Option<u16>,
    /// Deliveries only: `pending`, `delivered` or `failed`.
    status: Option<String>,
}

fn limit_of(params: &ListParams) -> Result<usize, ApiError> {
    match params.limit {
        None => Ok(50),
        Some(n @ 1..=500) => Ok(usize::from(n)),
        Some(_) => Err(ApiError::invalid(vec![FieldError::new(
            "limit",
            "must be from 1 to 500",
        )])),
    }
}

/// The site's alert firings, newest first, each with its resolution once the metric was
/// back.
#[utoipa::path(operation_id = "alerts_history", get, path = "/api/sites/{site_id}/alerts/history", tag = "alerts",
    params(("site_id" = String, Path, description = "The site"), ("limit" = Option<u16>, Query, description = "At most this many (1 to 500, default 50)")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, history: [{event_id, alert_id, alert_name, fired_at, resolved_at, value, expected, message}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn history(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
    query: LaterQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_read(&app, &caller.0, &site_id)?;
    let params = query.read()?;
    if params.status.is_some() {
        return Err(ApiError::invalid(vec![FieldError::new(
            "status",
            "is not a parameter of the history",
        )]));
    }
    let events = app
        .alerting
        .directory
        .store()
        .alert_events(&site, limit_of(&params)?)
        .await?;
    let history: Vec<Value> = events
        .iter()
        .map(|event| {
            let name = app
                .alerting
                .directory
                .rule(&site, &event.rule_id)
                .map(|rule| rule.name);
            json!({
                "event_id": event.id,
                "alert_id": event.rule_id,
                "alert_name": name,
                "fired_at": iso(event.fired_at_ms),
                "resolved_at": event.resolved_at_ms.map(iso),
                "value": event.value,
                "expected": event.expected,
                "message": event.message,
            })
        })
        .collect();
    Ok(Json(json!({"success": true, "history": history})))
}

fn webhook_json(hook: &Webhook, with_secret: bool) -> Value {
    let mut out = json!({
        "webhook_id": hook.id,
        "site_id": hook.site_id,
        "url": hook.url,
        "format": hook.format,
        "created_at": iso(hook.created_at_ms),
    });
    if with_secret {
        out["secret"] = json!(hook.secret);
    }
    out
}

/// The site's webhooks (their secrets are shown once, when created).
#[utoipa::path(operation_id = "webhooks_list", get, path = "/api/sites/{site_id}/webhooks", tag = "alerts",
    params(("site_id" = String, Path, description = "The site")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, webhooks: [{webhook_id, site_id, url, format, created_at}]}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn webhooks(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    let hooks: Vec<Value> = app
        .alerting
        .directory
        .webhooks(&site)
        .iter()
        .map(|hook| webhook_json(hook, false))
        .collect();
    Ok(Json(json!({"success": true, "webhooks": hooks})))
}

/// Adds a webhook: `url` (http or https; loopback and private addresses are refused unless
/// `alerts.allow_private_targets` is on) and `format` (`json`, the default: the
/// `AlertNotice` schema; or `slack`: an incoming-webhook message). The answer carries the
/// `secret` every post is signed with: `x-heartbeat-signature: sha256=<hex HMAC-SHA256 of
/// "{x-heartbeat-timestamp}.{body}">`.
#[utoipa::path(operation_id = "webhooks_create", post, path = "/api/sites/{site_id}/webhooks", tag = "alerts",
    params(("site_id" = String, Path, description = "The site")),
    request_body = crate::http::schema::WebhookBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "`{success, webhook: {webhook_id, site_id, url, format, created_at, secret}}`; posts carry the `AlertNotice` body", body = crate::http::schema::AlertNotice),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn create_webhook(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    let body = json_object(&body)?;
    let mut errors = Vec::new();
    for key in body.as_object().into_iter().flat_map(|b| b.keys()) {
        if key != "url" && key != "format" {
            errors.push(FieldError::new(key, "is not a field of a webhook"));
        }
    }
    let url = match body.get("url") {
        Some(Value::String(url)) => match check_url(url.trim(), app.alerting.allow_private_targets)
        {
            Ok(_) => Some(url.trim().to_owned()),
            Err(message) => {
                errors.push(FieldError::new("url", message));
                None
            }
        },
        _ => {
            errors.push(FieldError::new("url", "url is required"));
            None
        }
    };
    let format = match body
        .get("format")
        .and_then(|f| f.as_str().or(f.is_null().then_some("json")))
    {
        Some("json") => Some(WebhookFormat::Json),
        Some("slack") => Some(WebhookFormat::Slack),
        None if body.get("format").is_none() => Some(WebhookFormat::Json),
        _ => {
            errors.push(FieldError::new("format", "must be json or slack"));
            None
        }
    };
    if app.alerting.directory.webhooks(&site).len() >= MAX_WEBHOOKS_PER_SITE {
        errors.push(FieldError::new(
            "site_id",
            format!("a site has at most {MAX_WEBHOOKS_PER_SITE} webhooks"),
        ));
    }
    let (Some(url), Some(format), true) = (url, format, errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let hook = Webhook {
        id: new_id("wh_"),
        site_id: site,
        url,
        format,
        secret: heartbeat_accounts::registry::new_secret("whsec_"),
        created_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    app.alerting.directory.insert_webhook(hook.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "webhook": webhook_json(&hook, true)})),
    )
        .into_response())
}

/// Deletes a webhook; rules that used it no longer post to it, and its pending deliveries
/// fail.
#[utoipa::path(operation_id = "webhooks_delete", delete, path = "/api/sites/{site_id}/webhooks/{webhook_id}", tag = "alerts",
    params(("site_id" = String, Path, description = "The site"), ("webhook_id" = String, Path, description = "The webhook")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, deleted}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn delete_webhook(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, webhook_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    if !app
        .alerting
        .directory
        .delete_webhook(&site, &webhook_id)
        .await?
    {
        return Err(ApiError::not_found(
            "webhook_id",
            format!("no webhook {webhook_id}"),
        ));
    }
    Ok(Json(json!({"success": true, "deleted": webhook_id})))
}

fn delivery_json(delivery: &Delivery) -> Value {
    let target = match &delivery.target {
        DeliveryTarget::Webhook { webhook_id } => {
            json!({"type": "webhook", "webhook_id": webhook_id})
        }
        DeliveryTarget::Email { to } => json!({"type": "email", "to": to}),
    };
    json!({
        "delivery_id": delivery.id,
        "kind": delivery.kind,
        "target": target,
        "status": delivery.status.as_str(),
        "attempts": delivery.attempts,
        "next_attempt_at": (delivery.status == DeliveryStatus::Pending).then(|| iso(delivery.next_attempt_ms)),
        "last_error": delivery.last_error,
        "created_at": iso(delivery.created_at_ms),
        "delivered_at": delivery.delivered_at_ms.map(iso),
    })
}

/// What the site's alerts and reports sent, are sending and gave up on (with the reason),
/// newest first.
#[utoipa::path(operation_id = "deliveries_list", get, path = "/api/sites/{site_id}/deliveries", tag = "alerts",
    params(
        ("site_id" = String, Path, description = "The site"),
        ("status" = Option<String>, Query, description = "pending, delivered or failed"),
        ("limit" = Option<u16>, Query, description = "At most this many (1 to 500, default 50)"),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, deliveries: [{delivery_id, kind, target, status, attempts, next_attempt_at, last_error, created_at, delivered_at}]}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn deliveries(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
    query: LaterQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    let params = query.read()?;
    let status = match params.status.as_deref() {
        None => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            ApiError::invalid(vec![FieldError::new(
                "status",
                "must be pending, delivered or failed",
            )])
        })?),
    };
    let list = app
        .alerting
        .directory
        .store()
        .deliveries(&site, status, limit_of(&params)?)
        .await?;
    let list: Vec<Value> = list.iter().map(delivery_json).collect();
    Ok(Json(json!({"success": true, "deliveries": list})))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(history))
        .routes(routes!(show, update, delete))
        .routes(routes!(webhooks, create_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(deliveries))
}
