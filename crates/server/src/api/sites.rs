//! Site management: `POST /api/site/create` (seed 002), `GET /api/sites`,
//! `GET /api/sites/{site_id}`, `PUT /api/sites/{site_id}` (name, time zone, retention),
//! `DELETE /api/sites/{site_id}` (the site, its keys and its events),
//! `PUT /api/sites/{site_id}/rules` (ingest rules) and the public dashboard link
//! (`PUT`/`DELETE /api/sites/{site_id}/share`, `POST /api/share/unlock`), and its goals
//! (`GET`/`POST /api/sites/{site_id}/goals`, `DELETE /api/sites/{site_id}/goals/{goal_id}`).
//! Creating a site needs admin on its organisation; changing one (or its goals) needs admin
//! on the site, listing its goals read.

use crate::site_deletion::Outcome;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use heartbeat_ingest::{enrich::site_rules, FieldError};
use heartbeat_model::{OrgId, SiteId, SiteRules};
use serde_json::{json, Value};

use crate::goal_json::goal_json;
use crate::http::error::registry_error;
use crate::http::error::ApiError;
use crate::http::json::{json_object, optional_string};
use crate::http::site_access::{admin_required, site_to_admin};
use crate::http::state::{App, Client, Payload, RequiredCaller};
use heartbeat_accounts::registry::{NewSite, SiteChanges};
use utoipa_axum::{router::OpenApiRouter, routes};

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

/// `retention_days`: absent -> `None`; `null` -> `Some(None)` (forever); a whole number ->
/// `Some(Some(days))`.
fn optional_retention(body: &Value, errors: &mut Vec<FieldError>) -> Option<Option<u32>> {
    match body.get("retention_days") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(value) => match value.as_u64().and_then(|d| u32::try_from(d).ok()) {
            Some(days) => Some(Some(days)),
            None => {
                errors.push(FieldError::new(
                    "retention_days",
                    "retention_days must be a whole number of days, or null",
                ));
                None
            }
        },
    }
}

fn site_json(app: &App, site: &heartbeat_model::Site) -> Value {
    json!({"site_id": site.id, "org_id": app.registry.site_org(&site.id), "name": site.name,
           "domain": site.domain, "timezone": site.timezone,
           "retention_days": site.retention_days, "rules": site.rules,
           "public_link": app.registry.share_state(&site.id)
               .map(|protected| json!({"password_protected": protected}))})
}

/// Creates a site (seed 002) and its first key (scope `read`, which includes ingest), shown
/// once. Admin key required.
#[utoipa::path(post, path = "/api/site/create", tag = "sites",
    request_body = crate::http::schema::NewSiteBody,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Created; `api_key` is shown only here", body = Object,
            example = json!({"success": true, "site_id": "example.com", "name": "example.com", "domain": "example.com", "timezone": "UTC", "retention_days": null, "api_key": "hb_..."})),
        (status = 400, description = "Invalid field", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::http::schema::ErrorBody),
        (status = 409, description = "The site exists", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn create(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let body = json_object(&body)?;
    let mut errors = Vec::new();
    let org_id = optional_string(&body, "org_id", &mut errors).map(OrgId);
    if !caller
        .0
        .may_admin_org(org_id.as_ref().unwrap_or(&OrgId::default_org()))
    {
        return Err(admin_required());
    }
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
    let retention_days = optional_retention(&body, &mut errors).flatten();
    if name.is_none() && domain.is_none() && errors.is_empty() {
        errors.push(FieldError::new("name", "name is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let request = NewSite {
        org_id,
        name: name.or_else(|| domain.clone()).unwrap_or_default(),
        domain,
        timezone,
        rules,
        retention_days,
    };
    let created = app
        .registry
        .create_site(request, chrono::Utc::now().timestamp_millis())
        .await
        .map_err(registry_error)?;
    let body = json!({
        "success": true,
        "site_id": created.site.id,
        "org_id": app.registry.site_org(&created.site.id),
        "name": created.site.name,
        "domain": created.site.domain,
        "timezone": created.site.timezone,
        "rules": created.site.rules,
        "retention_days": created.site.retention_days,
        "api_key": created.api_key,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The sites the key may read.
#[utoipa::path(get, path = "/api/sites", tag = "sites",
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The sites", body = crate::http::schema::SitesBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
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
        .map(|site| site_json(&app, &site))
        .collect();
    Ok(Json(json!({"success": true, "sites": sites})))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found")
        .with_detail("site_id", format!("no site {id}"))
}

#[utoipa::path(operation_id = "sites_show", get, path = "/api/sites/{site_id}", tag = "sites",
    params(
        ("site_id" = String, Path, description = "The site"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, site}` with its rules", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn show(
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
    Ok(Json(
        json!({"success": true, "site": site_json(&app, &site)}),
    ))
}

/// Replaces a site's ingest rules. They apply to events accepted from then on.
#[utoipa::path(operation_id = "sites_put_rules", put, path = "/api/sites/{site_id}/rules", tag = "sites",
    params(
        ("site_id" = String, Path, description = "The site"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, site}`; body: allowed_hostnames, excluded_paths, excluded_ips, respect_do_not_track", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn put_rules(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(id): Path<String>,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    site_to_admin(&app, &caller.0, &id)?;
    let body = json_object(&body)?;
    let rules = parse_rules(&body, "body").map_err(ApiError::invalid)?;
    let site = app
        .registry
        .update_rules(&SiteId(id.clone()), rules)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(
        json!({"success": true, "site": site_json(&app, &site)}),
    ))
}

/// Changes a site's name, time zone or retention (`retention_days`: days, or `null` to keep
/// events forever). Admin key required.
#[utoipa::path(put, path = "/api/sites/{site_id}", tag = "sites",
    params(("site_id" = String, Path, description = "The site")),
    request_body = crate::http::schema::SiteChangesBody,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The site as changed", body = crate::http::schema::SiteBody),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn update(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    site_to_admin(&app, &caller.0, &site_id)?;
    let body = json_object(&body)?;
    let mut errors = Vec::new();
    let changes = SiteChanges {
        name: optional_string(&body, "name", &mut errors),
        timezone: optional_string(&body, "timezone", &mut errors),
        retention_days: optional_retention(&body, &mut errors),
    };
    if let Some(key) = body
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .find(|k| !matches!(k.as_str(), "name" | "timezone" | "retention_days"))
    {
        errors.push(FieldError::new(
            key,
            "only name, timezone and retention_days can change",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let site = app
        .registry
        .update_site(&SiteId(site_id), changes)
        .await
        .map_err(registry_error)?;
    let mut body = site_json(&app, &site);
    body["success"] = json!(true);
    Ok(Json(body))
}

/// Deletes a site: its keys and its public link at once (new events for it are refused from
/// then on), and all its events and visits, including those still in the queue, when the
/// processor reaches the deletion behind them. The answer waits up to 10 s for that: 200 with
/// the counts, else 202 (`deleted_events` and `deleted_visits` null) and it is carried out later.
#[utoipa::path(operation_id = "sites_delete", delete, path = "/api/sites/{site_id}", tag = "sites",
    params(("site_id" = String, Path, description = "The site")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, site_id, deleted_events, deleted_visits}`", body = Object),
        (status = 202, description = "Deleted from the directory; the data goes when the processor reaches it", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn delete(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = site_to_admin(&app, &caller.0, &site_id)?;
    let Outcome { site, deleted } = app.site_deletion.delete(&id).await?;
    let status = match deleted {
        Some(_) => StatusCode::OK,
        None => StatusCode::ACCEPTED,
    };
    Ok((
        status,
        Json(json!({
            "success": true,
            "site_id": site.id,
            "deleted_events": deleted.map(|d| d.events),
            "deleted_visits": deleted.map(|d| d.visits),
        })),
    ))
}

/// Gives the site a public read-only dashboard link, replacing any earlier one; with
/// `password` the link needs it (`POST /api/share/unlock`). The token is shown once: use it
/// as `Authorization: Bearer` on the read routes of this site.
#[utoipa::path(operation_id = "sites_share", put, path = "/api/sites/{site_id}/share", tag = "sites",
    params(("site_id" = String, Path, description = "The site")),
    request_body = crate::http::schema::ShareBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, site_id, share_token, password_protected}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn share(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let id = site_to_admin(&app, &caller.0, &site_id)?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        json_object(&body)?
    };
    let mut errors = Vec::new();
    let password = optional_string(&body, "password", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let protected = password.is_some();
    let token = app
        .registry
        .share_site(&id, password, chrono::Utc::now().timestamp_millis())
        .await
        .map_err(registry_error)?;
    Ok(Json(json!({
        "success": true,
        "site_id": id,
        "share_token": token,
        "password_protected": protected,
    })))
}

/// Removes the site's public link.
#[utoipa::path(operation_id = "sites_unshare", delete, path = "/api/sites/{site_id}/share", tag = "sites",
    params(("site_id" = String, Path, description = "The site")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, removed}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn unshare(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(site_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = site_to_admin(&app, &caller.0, &site_id)?;
    let removed = app
        .registry
        .unshare_site(&id)
        .await
        .map_err(registry_error)?;
    Ok(Json(json!({"success": true, "removed": removed})))
}

/// Exchanges a password-protected public link's token and its password for an access token
/// valid for a day (read-only, that site only). Public; counted against the client's
/// address like public ingest.
#[utoipa::path(operation_id = "share_unlock", post, path = "/api/share/unlock", tag = "sites",
    request_body = crate::http::schema::UnlockBody,
    security(()),
    responses(
        (status = 200, description = "`{success, site_id, token}`", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No such link or a wrong password", body = crate::http::schema::ErrorBody),
        (status = 429, description = "Too many attempts", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn unlock(
    State(app): State<App>,
    client: Client,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    app.limits.check_ip(client.0.ip).await?;
    let body = json_object(&body)?;
    let mut errors = Vec::new();
    let token = optional_string(&body, "token", &mut errors);
    let password = optional_string(&body, "password", &mut errors);
    if token.is_none() && errors.is_empty() {
        errors.push(FieldError::new("token", "token is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let (site, access) = app
        .registry
        .unlock_share(
            &token.unwrap_or_default(),
            &password.unwrap_or_default(),
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized")
                .with_detail("password", "no such link, or a wrong password")
        })?;
    Ok(Json(
        json!({"success": true, "site_id": site, "token": access}),
    ))
}

/// The site's goals, oldest first.
#[utoipa::path(operation_id = "goals_list", get, path = "/api/sites/{site_id}/goals", tag = "sites",
    params(("site_id" = String, Path, description = "The site")),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, goals: [{id, goal_type, display_name, event_name, page_path, custom_props, currency}]}`", body = Object),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 404, description = "No such site (or not the caller's)", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn goals(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = SiteId(id);
    if app.registry.site(&id).is_none() || !caller.0.may_read(&id) {
        return Err(not_found(id.as_str()));
    }
    let goals: Vec<Value> = app.goals.of_site(&id).iter().map(goal_json).collect();
    Ok(Json(json!({"success": true, "goals": goals})))
}

/// Adds a goal: `{goal_type: "page", page_path}` (`*` matches within a path segment, `**`
/// across) or `{goal_type: "event", event_name, custom_props?, currency?}`, with an optional
/// `display_name` (default: the event's name, or `Visit <path>`). A goal that exists (the
/// same match) is answered as it is, with 200.
#[utoipa::path(operation_id = "goals_create", post, path = "/api/sites/{site_id}/goals", tag = "sites",
    params(("site_id" = String, Path, description = "The site")),
    request_body(content = Object, description = "`{goal_type, event_name | page_path, display_name?, custom_props?, currency?}`"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "`{success, goal}`: created", body = Object),
        (status = 200, description = "`{success, goal}`: the goal existed", body = Object),
        (status = 409, description = "Another goal has the display name", body = crate::http::schema::ErrorBody),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn create_goal(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(id): Path<String>,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let id = site_to_admin(&app, &caller.0, &id)?;
    let body = json_object(&body)?;
    let Value::Object(fields) = body else {
        return Err(ApiError::invalid(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    };
    let new = crate::goal_json::new_goal(&fields).map_err(crate::goal_json::invalid)?;
    let (goal, created) = app
        .goals
        .find_or_create(&id, new, chrono::Utc::now().timestamp_millis())
        .await
        .map_err(crate::goal_json::goal_error)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"success": true, "goal": goal_json(&goal)})),
    )
        .into_response())
}

/// Deletes a goal of the site. Stored events stay; answers no longer name the goal.
#[utoipa::path(operation_id = "goals_delete", delete, path = "/api/sites/{site_id}/goals/{goal_id}", tag = "sites",
    params(
        ("site_id" = String, Path, description = "The site"),
        ("goal_id" = u64, Path, description = "The goal"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, deleted: true, goal}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn delete_goal(
    State(app): State<App>,
    caller: RequiredCaller,
    Path((id, goal_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = site_to_admin(&app, &caller.0, &id)?;
    let goal_id: u64 = goal_id.parse().map_err(|_| {
        ApiError::invalid(vec![FieldError::new(
            "goal_id",
            "a goal id is a whole number",
        )])
    })?;
    let goal = app
        .goals
        .delete(&id, goal_id)
        .await
        .map_err(crate::goal_json::goal_error)?;
    Ok(Json(
        json!({"success": true, "deleted": true, "goal": goal_json(&goal)}),
    ))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(goals, create_goal))
        .routes(routes!(delete_goal))
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(show, update, delete))
        .routes(routes!(put_rules))
        .routes(routes!(share, unshare))
        .routes(routes!(unlock))
}
