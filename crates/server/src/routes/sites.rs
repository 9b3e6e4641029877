//! Site management: `POST /api/site/create` (seed 002; admin key) and `GET /api/sites`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use heartbeat_ingest::FieldError;
use serde_json::{json, Value};

use crate::app::{App, Payload, RequiredCaller};
use crate::error::ApiError;
use crate::registry::{NewSite, RegistryError};

fn require_admin(caller: &RequiredCaller) -> Result<(), ApiError> {
    if caller.0.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "Forbidden")
            .with_detail("x-api-key", "an admin key is required"))
    }
}

fn optional_string(body: &Value, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new(field, format!("{field} must be a string")));
            None
        }
    }
}

/// Creates a site (seed 002) and its first key (scope `read`, which includes ingest), shown
/// once. Admin key required.
#[utoipa::path(post, path = "/api/site/create", tag = "sites",
    request_body = crate::routes::docs::NewSiteBody,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Created; `api_key` is shown only here", body = Object,
            example = json!({"success": true, "site_id": "example.com", "name": "example.com", "domain": "example.com", "timezone": "UTC", "retention_days": null, "api_key": "hb_..."})),
        (status = 400, description = "Invalid field", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::routes::docs::ErrorBody),
        (status = 409, description = "The site exists", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn create(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let body: Value = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(StatusCode::BAD_REQUEST, "Malformed JSON")
            .with_detail("body", err.to_string())
    })?;
    if !body.is_object() {
        return Err(ApiError::invalid(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    }
    let mut errors = Vec::new();
    let name = optional_string(&body, "name", &mut errors);
    let domain = optional_string(&body, "domain", &mut errors);
    let timezone = optional_string(&body, "timezone", &mut errors);
    if name.is_none() && domain.is_none() && errors.is_empty() {
        errors.push(FieldError::new("name", "name is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let request = NewSite {
        name: name.or_else(|| domain.clone()).unwrap_or_default(),
        domain,
        timezone,
    };
    let created = app
        .registry
        .create_site(request, chrono::Utc::now().timestamp_millis())
        .await
        .map_err(|err| match err {
            RegistryError::Invalid { field, message } => {
                ApiError::invalid(vec![FieldError::new(field, message)])
            }
            RegistryError::Store(err) => err.into(),
        })?;
    let body = json!({
        "success": true,
        "site_id": created.site.id,
        "name": created.site.name,
        "domain": created.site.domain,
        "timezone": created.site.timezone,
        "api_key": created.api_key,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The sites the key may read.
#[utoipa::path(get, path = "/api/sites", tag = "sites",
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The sites", body = crate::routes::docs::SitesBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn list(
    State(app): State<App>,
    caller: RequiredCaller,
) -> Result<Json<Value>, ApiError> {
    let sites: Vec<Value> = app
        .registry
        .sites()
        .into_iter()
        .filter(|site| caller.0.may_read(&site.id))
        .map(|site| json!({"site_id": site.id, "name": site.name, "domain": site.domain, "timezone": site.timezone}))
        .collect();
    Ok(Json(json!({"success": true, "sites": sites})))
}

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/site/create", post(create))
        .route("/api/sites", get(list))
}
