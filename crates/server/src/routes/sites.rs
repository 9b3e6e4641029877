//! Site management: `POST /api/site/create` (seed 002; admin key), `GET /api/sites`,
//! `GET /api/sites/{site_id}` and `PUT /api/sites/{site_id}/rules` (admin key).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use heartbeat_ingest::{enrich::site_rules, FieldError};
use heartbeat_model::{Site, SiteId, SiteRules};
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

fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    let body: Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::new(StatusCode::BAD_REQUEST, "Malformed JSON")
            .with_detail("body", err.to_string())
    })?;
    if !body.is_object() {
        return Err(ApiError::invalid(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    }
    Ok(body)
}

/// Reads and checks a `SiteRules` object; `field` prefixes the names in its errors.
fn parse_rules(value: &Value, field: &str) -> Result<SiteRules, Vec<FieldError>> {
    let rules: SiteRules = serde_json::from_value(value.clone())
        .map_err(|err| vec![FieldError::new(field, err.to_string())])?;
    let errors = site_rules::validate(&rules);
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors
            .into_iter()
            .map(|e| FieldError::new(&format!("{field}.{}", e.field), e.message))
            .collect())
    }
}

fn site_json(site: &Site) -> Value {
    json!({
        "site_id": site.id,
        "name": site.name,
        "domain": site.domain,
        "timezone": site.timezone,
        "rules": site.rules,
    })
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

async fn create(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let body = parse_object(&body)?;
    let mut errors = Vec::new();
    let name = optional_string(&body, "name", &mut errors);
    let domain = optional_string(&body, "domain", &mut errors);
    let timezone = optional_string(&body, "timezone", &mut errors);
    let rules = match body.get("rules") {
        None | Some(Value::Null) => SiteRules::default(),
        Some(value) => parse_rules(value, "rules").unwrap_or_else(|rule_errors| {
            errors.extend(rule_errors);
            SiteRules::default()
        }),
    };
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
        rules,
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
        "rules": created.site.rules,
        "api_key": created.api_key,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(State(app): State<App>, caller: RequiredCaller) -> Result<Json<Value>, ApiError> {
    let sites: Vec<Value> = app
        .registry
        .sites()
        .into_iter()
        .filter(|site| caller.0.may_read(&site.id))
        .map(|site| json!({"site_id": site.id, "name": site.name, "domain": site.domain, "timezone": site.timezone}))
        .collect();
    Ok(Json(json!({"success": true, "sites": sites})))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found")
        .with_detail("site_id", format!("no site {id}"))
}

async fn show(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = SiteId(id);
    // A key of another site learns nothing, not even that the site exists.
    let site = app
        .registry
        .site(&id)
        .filter(|_| caller.0.may_read(&id))
        .ok_or_else(|| not_found(id.as_str()))?;
    Ok(Json(json!({"success": true, "site": site_json(&site)})))
}

/// Replaces a site's ingest rules. They apply to events accepted from then on.
async fn put_rules(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(id): Path<String>,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let body = parse_object(&body)?;
    let rules = parse_rules(&body, "body").map_err(ApiError::invalid)?;
    let site = app
        .registry
        .update_rules(&SiteId(id.clone()), rules)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({"success": true, "site": site_json(&site)})))
}

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/site/create", post(create))
        .route("/api/sites", get(list))
        .route("/api/sites/{site_id}", get(show))
        .route("/api/sites/{site_id}/rules", put(put_rules))
}
