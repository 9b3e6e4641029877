//! A site's annotations (`/api/sites/{site_id}/annotations`): dated notes (deploys,
//! campaigns) the dashboard draws on its main chart, beside the alerts that fired (which
//! the alert job writes as annotations of kind `alert`). Read to list, admin to change.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, TimeZone};
use heartbeat_ingest::FieldError;
use heartbeat_model::{Annotation, AnnotationKind, SiteId};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::alerting::directory::new_id;
use crate::http::error::ApiError;
use crate::http::json::{iso, json_object};
use crate::http::query_string::LaterQuery;
use crate::http::site_access::{site_to_admin, site_to_read};
use crate::http::state::{App, Payload, RequiredCaller};

const MAX_TEXT_CHARS: usize = 500;
const DAY_MS: i64 = 86_400_000;

fn annotation_json(annotation: &Annotation) -> Value {
    json!({
        "annotation_id": annotation.id,
        "site_id": annotation.site_id,
        "at": iso(annotation.at_ms),
        "text": annotation.text,
        "kind": annotation.kind,
        "alert_event_id": annotation.alert_event_id,
        "created_at": iso(annotation.created_at_ms),
    })
}

/// The site's time zone.
fn zone(app: &App, site: &SiteId) -> chrono_tz::Tz {
    app.registry
        .site(site)
        .and_then(|s| s.timezone.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// An instant: an ISO 8601 date-time, or a date's midnight in `tz`.
fn instant(text: &str, tz: chrono_tz::Tz) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    tz.from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.timestamp_millis())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RangeParams {
    /// First day (or instant) shown; default: forever.
    from: Option<String>,
    /// Last day shown, inclusive (or an instant, exclusive); default: forever.
    to: Option<String>,
}

/// The site's annotations in a range, by time.
#[utoipa::path(operation_id = "annotations_list", get, path = "/api/sites/{site_id}/annotations", tag = "alerts",
    params(
        ("site_id" = String, Path, description = "The site"),
        ("from" = Option<String>, Query, description = "A date (site time) or ISO 8601 date-time"),
        ("to" = Option<String>, Query, description = "A date, inclusive, or a date-time, exclusive"),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, annotations: [{annotation_id, site_id, at, text, kind, alert_event_id, created_at}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn list(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
    query: LaterQuery<RangeParams>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_read(&app, &caller.0, &site_id)?;
    let params = query.read()?;
    let tz = zone(&app, &site);
    let mut errors = Vec::new();
    let mut bound = |field: &str, text: Option<&String>, default: i64, day_end: bool| match text {
        None => default,
        Some(text) => match instant(text, tz) {
            // A date as `to` takes its whole day.
            Some(ms) if day_end && !text.contains('T') => ms + DAY_MS,
            Some(ms) => ms,
            None => {
                errors.push(FieldError::new(
                    field,
                    "must be a date (YYYY-MM-DD) or an ISO 8601 date-time",
                ));
                0
            }
        },
    };
    let from = bound("from", params.from.as_ref(), i64::MIN, false);
    let to = bound("to", params.to.as_ref(), i64::MAX, true);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    if to <= from {
        return Err(ApiError::invalid(vec![FieldError::new(
            "to",
            "must be after from",
        )]));
    }
    let annotations = app
        .alerting
        .directory
        .store()
        .annotations(&site, from, to)
        .await?;
    let list: Vec<Value> = annotations.iter().map(annotation_json).collect();
    Ok(Json(json!({"success": true, "annotations": list})))
}

/// Reads `at` and `text` of a body; absent ones keep `saved`'s.
fn parse_fields(
    body: &Map<String, Value>,
    tz: chrono_tz::Tz,
    saved: Option<&Annotation>,
) -> Result<(i64, String), ApiError> {
    let mut errors = Vec::new();
    for key in body.keys() {
        if key != "at" && key != "text" {
            errors.push(FieldError::new(key, "is not a field of an annotation"));
        }
    }
    let at = match body.get("at") {
        None if saved.is_some() => saved.map(|a| a.at_ms),
        Some(Value::String(text)) => instant(text, tz),
        _ => None,
    };
    if at.is_none() {
        errors.push(FieldError::new(
            "at",
            "must be a date (YYYY-MM-DD) or an ISO 8601 date-time",
        ));
    }
    let text = match body.get("text") {
        None if saved.is_some() => saved.map(|a| a.text.clone()),
        Some(Value::String(text))
            if !text.trim().is_empty() && text.chars().count() <= MAX_TEXT_CHARS =>
        {
            Some(text.trim().to_owned())
        }
        _ => None,
    };
    if text.is_none() {
        errors.push(FieldError::new(
            "text",
            format!("text is required, 1 to {MAX_TEXT_CHARS} characters"),
        ));
    }
    match (at, text, errors.is_empty()) {
        (Some(at), Some(text), true) => Ok((at, text)),
        _ => Err(ApiError::invalid(errors)),
    }
}

/// Adds an annotation: `at` (an ISO 8601 date-time, or a date for its midnight in the site's
/// time zone) and `text`.
#[utoipa::path(operation_id = "annotations_create", post, path = "/api/sites/{site_id}/annotations", tag = "alerts",
    params(("site_id" = String, Path, description = "The site")),
    request_body = crate::http::schema::AnnotationBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "`{success, annotation}`", body = Object),
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
    let fields = body.as_object().cloned().unwrap_or_default();
    let (at_ms, text) = parse_fields(&fields, zone(&app, &site), None)?;
    let now = chrono::Utc::now().timestamp_millis();
    let annotation = Annotation {
        id: new_id("an_"),
        site_id: site,
        at_ms,
        text,
        kind: AnnotationKind::Note,
        alert_event_id: None,
        created_at_ms: now,
    };
    app.alerting
        .directory
        .store()
        .put_annotation(&annotation)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "annotation": annotation_json(&annotation)})),
    )
        .into_response())
}

async fn saved(app: &App, site: &SiteId, id: &str) -> Result<Annotation, ApiError> {
    app.alerting
        .directory
        .store()
        .annotations(site, i64::MIN, i64::MAX)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiError::not_found("annotation_id", format!("no annotation {id}")))
}

/// Changes an annotation's `at` or `text`.
#[utoipa::path(operation_id = "annotations_update", put, path = "/api/sites/{site_id}/annotations/{annotation_id}", tag = "alerts",
    params(("site_id" = String, Path, description = "The site"), ("annotation_id" = String, Path, description = "The annotation")),
    request_body = crate::http::schema::AnnotationBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, annotation}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn update(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, annotation_id)): Path<(String, String)>,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    let mut annotation = saved(&app, &site, &annotation_id).await?;
    let body = json_object(&body)?;
    let fields = body.as_object().cloned().unwrap_or_default();
    let (at_ms, text) = parse_fields(&fields, zone(&app, &site), Some(&annotation))?;
    annotation.at_ms = at_ms;
    annotation.text = text;
    app.alerting
        .directory
        .store()
        .put_annotation(&annotation)
        .await?;
    Ok(Json(
        json!({"success": true, "annotation": annotation_json(&annotation)}),
    ))
}

/// Deletes an annotation.
#[utoipa::path(operation_id = "annotations_delete", delete, path = "/api/sites/{site_id}/annotations/{annotation_id}", tag = "alerts",
    params(("site_id" = String, Path, description = "The site"), ("annotation_id" = String, Path, description = "The annotation")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, deleted}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn delete(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, annotation_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    if !app
        .alerting
        .directory
        .store()
        .delete_annotation(&site, &annotation_id)
        .await?
    {
        return Err(ApiError::not_found(
            "annotation_id",
            format!("no annotation {annotation_id}"),
        ));
    }
    Ok(Json(json!({"success": true, "deleted": annotation_id})))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update, delete))
}
