//! A site's scheduled email reports (`/api/sites/{site_id}/reports`: read to list, admin to
//! change and to send one now) and the unsubscribe link every report carries
//! (`/api/reports/unsubscribe?token=`, public: the token is the credential; `POST` is the
//! one-click unsubscribe of RFC 8058). Making and sending reports is
//! `crate::alerting::reports`'.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_model::{ReportPeriod, ReportSubscription};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::alerting::directory::new_id;
use crate::alerting::email::valid_address;
use crate::alerting::notice::escape;
use crate::alerting::reports::send_now;
use crate::http::error::ApiError;
use crate::http::json::{iso, json_object};
use crate::http::query_string::QueryParams;
use crate::http::site_access::site_to_admin;
use crate::http::state::{App, Payload, RequiredCaller};

const MAX_RECIPIENTS_PER_SITE: usize = 50;

fn report_json(report: &ReportSubscription) -> Value {
    json!({
        "report_id": report.id,
        "site_id": report.site_id,
        "email": report.email,
        "period": report.period,
        "created_at": iso(report.created_at_ms),
        "last_sent_period": report.last_sent_period,
    })
}

fn no_report(id: &str) -> ApiError {
    ApiError::not_found("report_id", format!("no report {id}"))
}

/// The site's report recipients.
#[utoipa::path(operation_id = "reports_list", get, path = "/api/sites/{site_id}/reports", tag = "alerts",
    params(("site_id" = String, Path, description = "The site")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, reports: [{report_id, site_id, email, period, created_at, last_sent_period}]}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn list(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    let reports: Vec<Value> = app
        .alerting
        .directory
        .reports(&site)
        .iter()
        .map(report_json)
        .collect();
    Ok(Json(json!({"success": true, "reports": reports})))
}

/// Adds a recipient of the site's `weekly` (Monday to Sunday, sent after it ends) or
/// `monthly` report: its figures against the period before, a chart, top pages, sources and
/// goals, with an unsubscribe link. The first report is of the first period that ends after
/// this.
#[utoipa::path(operation_id = "reports_create", post, path = "/api/sites/{site_id}/reports", tag = "alerts",
    params(("site_id" = String, Path, description = "The site")),
    request_body = crate::http::schema::ReportBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "`{success, report}`", body = Object),
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
    let mut errors = Vec::new();
    for key in body.as_object().into_iter().flat_map(|b| b.keys()) {
        if key != "email" && key != "period" {
            errors.push(FieldError::new(key, "is not a field of a report"));
        }
    }
    let email = match body.get("email").and_then(Value::as_str).map(str::trim) {
        Some(email) if valid_address(email) => {
            if !app.alerting.outbox.email_enabled() {
                errors.push(FieldError::new(
                    "email",
                    "email is off on this server (setting smtp.host)",
                ));
            }
            Some(email.to_owned())
        }
        _ => {
            errors.push(FieldError::new("email", "must be an email address"));
            None
        }
    };
    let period = match body.get("period").and_then(Value::as_str) {
        Some("weekly") => Some(ReportPeriod::Weekly),
        Some("monthly") => Some(ReportPeriod::Monthly),
        _ => {
            errors.push(FieldError::new("period", "must be weekly or monthly"));
            None
        }
    };
    let existing = app.alerting.directory.reports(&site);
    if let (Some(email), Some(period)) = (&email, period) {
        if existing
            .iter()
            .any(|r| r.email.eq_ignore_ascii_case(email) && r.period == period)
        {
            errors.push(FieldError::new(
                "email",
                "already gets this report of this site",
            ));
        }
    }
    if existing.len() >= MAX_RECIPIENTS_PER_SITE {
        errors.push(FieldError::new(
            "site_id",
            format!("a site has at most {MAX_RECIPIENTS_PER_SITE} report recipients"),
        ));
    }
    let (Some(email), Some(period), true) = (email, period, errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let report = ReportSubscription {
        id: new_id("rp_"),
        site_id: site,
        email,
        period,
        unsubscribe_token: heartbeat_accounts::registry::new_secret("unsub_"),
        last_sent_period: None,
        created_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    app.alerting.directory.put_report(report.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "report": report_json(&report)})),
    )
        .into_response())
}

/// Removes a recipient.
#[utoipa::path(operation_id = "reports_delete", delete, path = "/api/sites/{site_id}/reports/{report_id}", tag = "alerts",
    params(("site_id" = String, Path, description = "The site"), ("report_id" = String, Path, description = "The recipient")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, deleted}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn delete(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, report_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    if !app
        .alerting
        .directory
        .delete_report(&site, &report_id)
        .await?
    {
        return Err(no_report(&report_id));
    }
    Ok(Json(json!({"success": true, "deleted": report_id})))
}

/// Sends the recipient the report of the last complete period now (its schedule does not
/// change). The answer names the delivery (`GET /api/sites/{site_id}/deliveries`).
#[utoipa::path(operation_id = "reports_send", post, path = "/api/sites/{site_id}/reports/{report_id}/send", tag = "alerts",
    params(("site_id" = String, Path, description = "The site"), ("report_id" = String, Path, description = "The recipient")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 202, description = "`{success, delivery_id}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn send(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, report_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let site_id = site_to_admin(&app, &caller.0, &site_id)?;
    let report = app
        .alerting
        .directory
        .report(&site_id, &report_id)
        .ok_or_else(|| no_report(&report_id))?;
    let site = app
        .registry
        .site(&site_id)
        .ok_or_else(|| no_report(&report_id))?;
    let now = chrono::Utc::now().timestamp_millis();
    let id = send_now(&app, &site, &report, now).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"success": true, "delivery_id": id})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnsubscribeParams {
    token: String,
}

/// Stops the report the link's token belongs to; answers a short page either way (a link
/// followed twice says it is done).
fn unsubscribe_page(app: &App, token: &str) -> impl std::future::Future<Output = Response> {
    let app = app.clone();
    let token = token.to_owned();
    async move {
        let message = match app.alerting.directory.report_by_token(&token) {
            Some(report) => {
                match app
                    .alerting
                    .directory
                    .delete_report(&report.site_id, &report.id)
                    .await
                {
                    Ok(_) => format!(
                        "{} will no longer get the {} report of {}.",
                        report.email,
                        match report.period {
                            ReportPeriod::Weekly => "weekly",
                            ReportPeriod::Monthly => "monthly",
                        },
                        report.site_id
                    ),
                    Err(err) => return ApiError::from(err).into_response(),
                }
            }
            None => "This link is no longer subscribed to any report.".to_owned(),
        };
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!(
                "<!doctype html><meta charset=utf-8><title>Unsubscribed</title>\
                 <body style=\"font-family:Arial,sans-serif;margin:3em\"><h1>Unsubscribed</h1><p>{}</p></body>",
                escape(&message)
            ),
        )
            .into_response()
    }
}

/// The unsubscribe link of a report email: stops that recipient's report.
#[utoipa::path(operation_id = "reports_unsubscribe", get, path = "/api/reports/unsubscribe", tag = "alerts",
    params(("token" = String, Query, description = "The token of the report's link")),
    responses((status = 200, description = "A page saying the report is stopped", content_type = "text/html")))]
pub(crate) async fn unsubscribe(
    State(app): State<App>,
    QueryParams(params): QueryParams<UnsubscribeParams>,
) -> Response {
    unsubscribe_page(&app, &params.token).await
}

/// The one-click unsubscribe mail clients send (RFC 8058, `List-Unsubscribe-Post`).
#[utoipa::path(operation_id = "reports_unsubscribe_one_click", post, path = "/api/reports/unsubscribe", tag = "alerts",
    params(("token" = String, Query, description = "The token of the report's link")),
    responses((status = 200, description = "A page saying the report is stopped", content_type = "text/html")))]
pub(crate) async fn unsubscribe_one_click(
    State(app): State<App>,
    QueryParams(params): QueryParams<UnsubscribeParams>,
) -> Response {
    unsubscribe_page(&app, &params.token).await
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(delete))
        .routes(routes!(send))
        .routes(routes!(unsubscribe, unsubscribe_one_click))
}
