//! Accounts: first-run setup, sign-in and sign-out of dashboard users (session cookie
//! `hb_session`: HttpOnly, SameSite=Strict, Secure unless configured off; the same token works
//! as `Authorization: Bearer`), users and their roles, organisations, and API keys (created
//! with a scope for one site, an organisation or everything, shown once, listed with their
//! last use, revoked).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_model::{ApiKey, ApiKeyScope, OrgId, Role, SiteId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::error::registry_error;
use crate::http::error::ApiError;
use crate::http::json::{json_object, optional_string};
use crate::http::state::{
    cookie, App, Client, MaybeCaller, Payload, QueryParams, RequiredCaller, SESSION_COOKIE,
};
use heartbeat_accounts::access::Principal;
use heartbeat_accounts::registry::{NewKey, UserView, SESSION_TTL_MS};
use utoipa_axum::{router::OpenApiRouter, routes};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "Forbidden").with_detail("x-api-key", message)
}

fn user_json(view: &UserView) -> Value {
    let roles: Vec<Value> = view
        .roles
        .iter()
        .map(|(org, role)| json!({"org_id": org, "role": role}))
        .collect();
    json!({"user_id": view.user.id, "email": view.user.email, "roles": roles,
           "created_at": crate::http::json::iso(view.user.created_at_ms)})
}

fn session_cookie(app: &App, token: &str, max_age_s: i64) -> HeaderValue {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .expect("tokens are hex")
}

/// A signed-in answer: the session cookie, and the token for `Authorization: Bearer`.
fn signed_in(app: &App, status: StatusCode, token: &str, view: &UserView) -> Response {
    let body = json!({"success": true, "token": token, "user": user_json(view)});
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::SET_COOKIE,
        session_cookie(app, token, SESSION_TTL_MS / 1000),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `email` and `password` of a body; both required.
fn credentials(body: &Value) -> Result<(String, String), ApiError> {
    let mut errors = Vec::new();
    let email = optional_string(body, "email", &mut errors);
    let password = optional_string(body, "password", &mut errors);
    if email.is_none() && errors.is_empty() {
        errors.push(FieldError::new("email", "email is required"));
    }
    if password.is_none() && !errors.iter().any(|e| e.field == "password") {
        errors.push(FieldError::new("password", "password is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok((email.unwrap_or_default(), password.unwrap_or_default()))
}

/// First run only: creates the owner (of the default organisation, so of the instance) and
/// signs it in. 409 once any user exists.
#[utoipa::path(operation_id = "auth_setup", post, path = "/api/auth/setup", tag = "accounts",
    request_body = crate::http::schema::CredentialsBody,
    security(()),
    responses(
        (status = 201, description = "`{success, token, user}` and the session cookie", body = Object),
        (status = 400, description = "Invalid email or password", body = crate::http::schema::ErrorBody),
        (status = 409, description = "Setup is done", body = crate::http::schema::ErrorBody),
        (status = 429, description = "Too many attempts", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn setup(
    State(app): State<App>,
    client: Client,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    app.limits.check_ip(client.0.ip).await?;
    let (email, password) = credentials(&json_object(&body)?)?;
    let (token, view) = app
        .registry
        .setup(&email, &password, now_ms())
        .await
        .map_err(registry_error)?;
    tracing::info!(user = %view.user.id, "first-run setup created the owner");
    Ok(signed_in(&app, StatusCode::CREATED, &token, &view))
}

/// Signs a user in: sets the session cookie and returns the same token for
/// `Authorization: Bearer`. A wrong email and a wrong password get the same 401.
#[utoipa::path(operation_id = "auth_login", post, path = "/api/auth/login", tag = "accounts",
    request_body = crate::http::schema::CredentialsBody,
    security(()),
    responses(
        (status = 200, description = "`{success, token, user}` and the session cookie", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::schema::ErrorBody),
        (status = 401, description = "Wrong email or password", body = crate::http::schema::ErrorBody),
        (status = 429, description = "Too many attempts", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn login(
    State(app): State<App>,
    client: Client,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    app.limits.check_ip(client.0.ip).await?;
    let (email, password) = credentials(&json_object(&body)?)?;
    match app
        .registry
        .login(&email, &password, now_ms())
        .await
        .map_err(registry_error)?
    {
        Some((token, view)) => Ok(signed_in(&app, StatusCode::OK, &token, &view)),
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized")
            .with_detail("password", "wrong email or password")),
    }
}

/// Ends the session (cookie or bearer token) and clears the cookie. Always 200.
#[utoipa::path(operation_id = "auth_logout", post, path = "/api/auth/logout", tag = "accounts",
    security((), ("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success}`; the cookie is cleared", body = Object),
    ))]
pub(crate) async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    for token in [bearer, cookie(&headers, SESSION_COOKIE)]
        .into_iter()
        .flatten()
    {
        if token.starts_with("hbs_") {
            app.registry.logout(token).await.map_err(registry_error)?;
        }
    }
    let mut response = Json(json!({"success": true})).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&app, "", 0));
    Ok(response)
}

/// Who is calling: the signed-in user with its roles, or what a key reaches. Also says
/// whether first-run setup is still open (without credentials).
#[utoipa::path(operation_id = "auth_me", get, path = "/api/auth/me", tag = "accounts",
    security((), ("session" = []), ("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "`{success, kind, user?, key_id?, admin, orgs}`", body = Object),
        (status = 401, description = "No credentials (`details` say whether setup is open), or bad ones", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn me(
    State(app): State<App>,
    caller: MaybeCaller,
) -> Result<Json<Value>, ApiError> {
    let Some(caller) = caller.0 else {
        let mut err = ApiError::unauthorized();
        if app.registry.needs_setup() {
            err = err.with_detail("setup", "no user exists yet: POST /api/auth/setup");
        }
        return Err(err);
    };
    let orgs: Vec<Value> = caller
        .orgs()
        .map(|(org, scope)| json!({"org_id": org, "scope": scope}))
        .collect();
    let mut body = json!({"success": true, "admin": caller.is_admin(), "orgs": orgs});
    match &caller.principal {
        Principal::User(id) => {
            body["kind"] = json!("user");
            if let Some(view) = app.registry.user(id) {
                body["user"] = user_json(&view);
            }
        }
        Principal::Key(id) => {
            body["kind"] = json!("key");
            body["key_id"] = json!(id);
        }
        Principal::AdminToken => body["kind"] = json!("admin_token"),
        Principal::Share(site) => {
            body["kind"] = json!("share");
            body["site_id"] = json!(site);
        }
    }
    Ok(Json(body))
}

fn key_json(key: &ApiKey) -> Value {
    json!({
        "key_id": key.id,
        "name": key.name,
        "scope": key.scope,
        "site_id": key.site_id,
        "org_id": key.org_id,
        "created_at": crate::http::json::iso(key.created_at_ms),
        "last_used_at": key.last_used_at_ms.map(crate::http::json::iso),
        "revoked": key.revoked,
    })
}

/// Whether `caller` may manage `key` (create, see, revoke): admin on its site, on its
/// organisation, or on everything.
fn may_manage(
    caller: &crate::http::state::Caller,
    key_site: Option<&SiteId>,
    key_org: Option<&OrgId>,
) -> bool {
    match (key_site, key_org) {
        (Some(site), _) => caller.may_admin(site),
        (None, Some(org)) => caller.may_admin_org(org),
        (None, None) => caller.is_admin(),
    }
}

/// Creates an API key with a scope (`ingest`, `read` or `admin`) for one site (`site_id`), a
/// whole organisation (`org_id`) or, with neither, every site. The secret is shown once.
#[utoipa::path(operation_id = "keys_create", post, path = "/api/keys", tag = "accounts",
    request_body = crate::http::schema::NewKeyBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "`{success, key_id, api_key, ...}`; `api_key` is shown only here", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn create_key(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let body = json_object(&body)?;
    let mut errors = Vec::new();
    let scope = match optional_string(&body, "scope", &mut errors) {
        Some(text) => ApiKeyScope::parse(&text).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "scope",
                "scope must be ingest, read or admin",
            ));
            ApiKeyScope::Read
        }),
        None => {
            if !errors.iter().any(|e| e.field == "scope") {
                errors.push(FieldError::new("scope", "scope is required"));
            }
            ApiKeyScope::Read
        }
    };
    let site_id = optional_string(&body, "site_id", &mut errors).map(SiteId);
    let org_id = optional_string(&body, "org_id", &mut errors).map(OrgId);
    let name = optional_string(&body, "name", &mut errors).unwrap_or_default();
    // Who may ask comes first: a caller without the right learns nothing from validation.
    if !may_manage(&caller.0, site_id.as_ref(), org_id.as_ref()) {
        return Err(forbidden(
            "creating this key needs admin on its site, its organisation or everything",
        ));
    }
    if site_id.is_some() && org_id.is_some() {
        errors.push(FieldError::new(
            "org_id",
            "give site_id or org_id, not both",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let (key, secret) = app
        .registry
        .create_key(
            NewKey {
                scope,
                site_id,
                org_id,
                name,
            },
            now_ms(),
        )
        .await
        .map_err(registry_error)?;
    let mut body = key_json(&key);
    body["success"] = json!(true);
    body["api_key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct KeyFilter {
    site_id: Option<String>,
}

/// The keys the caller may manage (never their secrets), with their last use; `site_id`
/// narrows to one site's keys.
#[utoipa::path(operation_id = "keys_list", get, path = "/api/keys", tag = "accounts",
    params(("site_id" = Option<String>, Query, description = "Only this site's keys")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, keys: [{key_id, name, scope, site_id, org_id, created_at, last_used_at, revoked}]}`", body = Object),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn list_keys(
    State(app): State<App>,
    caller: RequiredCaller,
    QueryParams(filter): QueryParams<KeyFilter>,
) -> Result<Json<Value>, ApiError> {
    let keys: Vec<Value> = app
        .registry
        .keys()
        .iter()
        .filter(|k| may_manage(&caller.0, k.site_id.as_ref(), k.org_id.as_ref()))
        .filter(|k| {
            filter
                .site_id
                .as_deref()
                .is_none_or(|s| k.site_id.as_ref().is_some_and(|own| own.as_str() == s))
        })
        .map(key_json)
        .collect();
    Ok(Json(json!({"success": true, "keys": keys})))
}

/// Revokes a key: refused from now on, still listed (revoked).
#[utoipa::path(operation_id = "keys_revoke", delete, path = "/api/keys/{key_id}", tag = "accounts",
    params(("key_id" = String, Path, description = "The key's id (not its secret)")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, key_id, revoked: true}`", body = Object),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 404, description = "No such key among those the caller manages", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn revoke_key(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::not_found("key_id", format!("no key {key_id}"));
    let key = app.registry.key(&key_id).ok_or_else(not_found)?;
    if !may_manage(&caller.0, key.site_id.as_ref(), key.org_id.as_ref()) {
        return Err(not_found());
    }
    let key = app
        .registry
        .revoke_key(&key_id)
        .await
        .map_err(registry_error)?;
    let mut body = key_json(&key);
    body["success"] = json!(true);
    Ok(Json(body))
}

/// Creates an organisation (instance admins only). Its sites are created with `org_id`.
#[utoipa::path(operation_id = "orgs_create", post, path = "/api/orgs", tag = "accounts",
    request_body = crate::http::schema::NewOrgBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "`{success, org_id, name}`", body = Object),
        (status = 400, description = "Invalid field", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 403, description = "Not an instance admin", body = crate::http::schema::ErrorBody),
        (status = 409, description = "The organisation exists", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn create_org(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    if !caller.0.is_admin() {
        return Err(forbidden(
            "creating an organisation needs an instance admin",
        ));
    }
    let body = json_object(&body)?;
    let mut errors = Vec::new();
    let id = optional_string(&body, "org_id", &mut errors);
    let name = optional_string(&body, "name", &mut errors);
    if name.is_none() && errors.is_empty() {
        errors.push(FieldError::new("name", "name is required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let org = app
        .registry
        .create_org(id, name.unwrap_or_default(), now_ms())
        .await
        .map_err(|err| match err {
            heartbeat_accounts::registry::RegistryError::Store(
                heartbeat_store::StoreError::Conflict { .. },
            ) => ApiError::new(StatusCode::CONFLICT, "Conflict")
                .with_detail("org_id", "the organisation exists"),
            other => registry_error(other),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "org_id": org.id, "name": org.name})),
    )
        .into_response())
}

/// The organisations the caller reaches (every one for instance admins), with their sites.
#[utoipa::path(operation_id = "orgs_list", get, path = "/api/orgs", tag = "accounts",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, orgs: [{org_id, name, sites}]}`", body = Object),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn list_orgs(
    State(app): State<App>,
    caller: RequiredCaller,
) -> Result<Json<Value>, ApiError> {
    let reached: Vec<OrgId> = caller.0.orgs().map(|(o, _)| o.clone()).collect();
    let sites = app.registry.sites();
    let orgs: Vec<Value> = app
        .registry
        .orgs()
        .into_iter()
        .filter(|org| caller.0.is_admin() || reached.contains(&org.id))
        .map(|org| {
            let own: Vec<&SiteId> = sites
                .iter()
                .filter(|s| app.registry.site_org(&s.id) == org.id && caller.0.may_read(&s.id))
                .map(|s| &s.id)
                .collect();
            json!({"org_id": org.id, "name": org.name, "sites": own})
        })
        .collect();
    Ok(Json(json!({"success": true, "orgs": orgs})))
}

/// Creates a dashboard user with a role (`owner`, `admin`, `viewer`) in an organisation, or
/// gives an existing user (same email) that role. Needs an owner of the organisation.
#[utoipa::path(operation_id = "users_create", post, path = "/api/users", tag = "accounts",
    request_body = crate::http::schema::NewUserBody,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "`{success, user}`", body = Object),
        crate::http::schema::AdminRefusals,
    ))]
pub(crate) async fn create_user(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let body = json_object(&body)?;
    let mut errors = Vec::new();
    let (email, password) = match credentials(&body) {
        Ok(pair) => pair,
        Err(err) => {
            errors.extend(err.details);
            Default::default()
        }
    };
    let org = optional_string(&body, "org_id", &mut errors)
        .map(OrgId)
        .unwrap_or_else(OrgId::default_org);
    let role = match optional_string(&body, "role", &mut errors) {
        Some(text) => Role::parse(&text).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "role",
                "role must be owner, admin or viewer",
            ));
            Role::Viewer
        }),
        None => Role::Viewer,
    };
    // Who may ask comes first: a caller without the right learns nothing from validation.
    if !caller.0.may_own_org(&org) {
        return Err(forbidden("adding users needs an owner of the organisation"));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let view = app
        .registry
        .create_user(&email, &password, &org, role, now_ms())
        .await
        .map_err(registry_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"success": true, "user": user_json(&view)})),
    )
        .into_response())
}

/// The users of the organisations the caller owns (every user for instance admins).
#[utoipa::path(operation_id = "users_list", get, path = "/api/users", tag = "accounts",
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, users: [{user_id, email, roles}]}`", body = Object),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn list_users(
    State(app): State<App>,
    caller: RequiredCaller,
) -> Result<Json<Value>, ApiError> {
    let users: Vec<Value> = app
        .registry
        .users()
        .iter()
        .filter(|view| {
            caller.0.is_admin() || view.roles.iter().any(|(org, _)| caller.0.may_own_org(org))
        })
        .map(user_json)
        .collect();
    Ok(Json(json!({"success": true, "users": users})))
}

/// Deletes a dashboard user with its roles and sessions. Needs an instance admin or an owner
/// of every organisation the user belongs to; nobody deletes themselves.
#[utoipa::path(operation_id = "users_delete", delete, path = "/api/users/{user_id}", tag = "accounts",
    params(("user_id" = String, Path, description = "The user's id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{success, user_id}`", body = Object),
        (status = 400, description = "Deleting oneself", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 404, description = "No such user among those the caller manages", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn delete_user(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::not_found("user_id", format!("no user {user_id}"));
    let view = app.registry.user(&user_id).ok_or_else(not_found)?;
    let manages = caller.0.is_admin()
        || (!view.roles.is_empty() && view.roles.iter().all(|(org, _)| caller.0.may_own_org(org)));
    if !manages {
        return Err(not_found());
    }
    if caller.0.principal == Principal::User(user_id.clone()) {
        return Err(ApiError::invalid(vec![FieldError::new(
            "user_id",
            "you cannot delete yourself",
        )]));
    }
    app.registry
        .delete_user(&user_id)
        .await
        .map_err(registry_error)?;
    Ok(Json(json!({"success": true, "user_id": user_id})))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(setup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(list_users, create_user))
        .routes(routes!(delete_user))
}
