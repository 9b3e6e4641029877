//! Funnels: `POST /api/v2/funnel` (a funnel inline, or a saved one by `funnel_id`, over v2's
//! `site_id`, `date_range` and `filters`, optionally broken down by a visit dimension) and
//! a site's saved funnels (`GET`/`POST /api/sites/{site_id}/funnels`,
//! `GET`/`DELETE /api/sites/{site_id}/funnels/{funnel_id}`): read to list and run, admin to
//! change. The semantics (window, order, who counts) are `heartbeat_query::funnel`'s.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use heartbeat_accounts::registry::MAX_FUNNEL_NAME_CHARS;
use heartbeat_ingest::FieldError;
use heartbeat_model::Funnel;
use heartbeat_query::funnel::{definition_json, parse_definition};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::error::{registry_error, ApiError};
use crate::http::json::{iso, json_object};
use crate::http::reads::{read_site, run_funnel_on};
use crate::http::site_access::{site_to_admin, site_to_read};
use crate::http::state::{App, Payload, RequiredCaller};

fn no_funnel(id: &str) -> ApiError {
    ApiError::not_found("funnel_id", format!("no funnel {id}"))
}

fn funnel_json(funnel: &Funnel) -> Value {
    let mut out = definition_json(&funnel.definition);
    out["funnel_id"] = json!(funnel.id);
    out["site_id"] = json!(funnel.site_id);
    out["name"] = json!(funnel.name);
    out["created_at"] = json!(iso(funnel.created_at_ms));
    out
}

/// A funnel's steps followed through a site's events: per step the visitors who reached
/// it, converted to the next, dropped off, conversion from the first and the previous step,
/// and the median and 90th percentile of seconds to the next step.
#[utoipa::path(post, path = "/api/v2/funnel", tag = "stats",
    request_body = crate::http::schema::FunnelRequest,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{results: [{breakdown, steps: [{step, name, visitors, converted, dropoff, dropoff_percentage, conversion_rate, conversion_rate_step, median_seconds_to_next, p90_seconds_to_next}]}], meta}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn v2_funnel(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/api/v2/funnel", async move {
            let mut body = json_object(&body)?;
            let site = read_site(&app, &caller.0, body.get("site_id").and_then(Value::as_str))?;
            match body.get("funnel_id") {
                None | Some(Value::Null) => {}
                Some(Value::String(id)) => {
                    let saved = app
                        .registry
                        .funnel(&site.id, id)
                        .ok_or_else(|| no_funnel(id))?;
                    for (key, value) in definition_json(&saved.definition)
                        .as_object()
                        .into_iter()
                        .flatten()
                    {
                        body[key] = value.clone();
                    }
                }
                Some(_) => {
                    return Err(ApiError::invalid(vec![FieldError::new(
                        "funnel_id",
                        "funnel_id is a saved funnel's id",
                    )]))
                }
            }
            let (query, result) = run_funnel_on(&app, &site, &body).await?;
            Ok(Json(result.to_json(&query)))
        })
        .await
}

/// A site's saved funnels, oldest first.
#[utoipa::path(operation_id = "funnels_list", get, path = "/api/sites/{site_id}/funnels", tag = "sites",
    params(("site_id" = String, Path, description = "The site")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, funnels: [{funnel_id, site_id, name, steps, window, order, created_at}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn list(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_read(&app, &caller.0, &site_id)?;
    let funnels: Vec<Value> = app
        .registry
        .funnels(&site)
        .iter()
        .map(funnel_json)
        .collect();
    Ok(Json(json!({"success": true, "funnels": funnels})))
}

/// Saves a funnel of the site: `name`, `steps` (2 to 8: `{"page": "/blog/*"}` or
/// `{"event": "signup"}`, with optional `props` and `label`), `window` (`{"visit": true}`,
/// the default, or `{"seconds": n}` up to 90 days) and `order` (`strict`, `ordered`, the
/// default, or `any`).
#[utoipa::path(operation_id = "funnels_create", post, path = "/api/sites/{site_id}/funnels", tag = "sites",
    params(("site_id" = String, Path, description = "The site")),
    request_body = crate::http::schema::FunnelBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "`{success, funnel}`", body = Object),
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
    let name = match body.get("name") {
        Some(Value::String(name))
            if !name.trim().is_empty() && name.chars().count() <= MAX_FUNNEL_NAME_CHARS =>
        {
            Some(name.clone())
        }
        _ => {
            errors.push(FieldError::new(
                "name",
                format!("name is required, 1 to {MAX_FUNNEL_NAME_CHARS} characters"),
            ));
            None
        }
    };
    let definition = parse_definition(&body).map_err(|bad| {
        errors.extend(
            bad.into_iter()
                .map(|e| FieldError::new(&e.field, e.message)),
        );
    });
    let (Some(name), Ok(definition)) = (name, definition) else {
        return Err(ApiError::invalid(errors));
    };
    let now = chrono::Utc::now().timestamp_millis();
    let funnel = app
        .registry
        .create_funnel(&site, &name, definition, now)
        .await
        .map_err(registry_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "funnel": funnel_json(&funnel)})),
    )
        .into_response())
}

/// One saved funnel of the site (404 for an id the site does not have, another site's
/// included).
#[utoipa::path(operation_id = "funnels_show", get, path = "/api/sites/{site_id}/funnels/{funnel_id}", tag = "sites",
    params(
        ("site_id" = String, Path, description = "The site"),
        ("funnel_id" = String, Path, description = "The funnel"),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, funnel}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn show(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, funnel_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_read(&app, &caller.0, &site_id)?;
    let funnel = app
        .registry
        .funnel(&site, &funnel_id)
        .ok_or_else(|| no_funnel(&funnel_id))?;
    Ok(Json(
        json!({"success": true, "funnel": funnel_json(&funnel)}),
    ))
}

/// Deletes a saved funnel of the site.
#[utoipa::path(operation_id = "funnels_delete", delete, path = "/api/sites/{site_id}/funnels/{funnel_id}", tag = "sites",
    params(
        ("site_id" = String, Path, description = "The site"),
        ("funnel_id" = String, Path, description = "The funnel"),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, deleted}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn delete(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((site_id, funnel_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let site = site_to_admin(&app, &caller.0, &site_id)?;
    let funnel = app
        .registry
        .delete_funnel(&site, &funnel_id)
        .await
        .map_err(registry_error)?;
    Ok(Json(json!({"success": true, "deleted": funnel.id})))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(v2_funnel))
        .routes(routes!(list, create))
        .routes(routes!(show, delete))
}
