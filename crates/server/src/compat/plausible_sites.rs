//! Plausible's Sites API (`/api/v1/sites`), which Plausible CE removed, answered by
//! Heartbeat's own directory: list, create, show, change the domain of and delete sites,
//! find or create named shared links, declare custom properties, and find or create, list and
//! delete goals (over the same goals directory the queries read).
//!
//! Who may do what, in Heartbeat's terms: Plausible asks for a `sites:provision:*` key; here
//! a caller that may administer anything ([`Caller::may_provision`]: the admin token, an admin
//! key of a site, an organisation or every site, a signed-in owner or admin) may provision,
//! and each site still needs admin on it. Reading (the list, a site, its properties) needs
//! read on the site, as Plausible lets a `stats:read:*` key read. Plausible's teams are
//! Heartbeat's organisations (`team_id` is an organisation's id); an organisation's key
//! works inside its organisation only, as Plausible's team-scoped keys do.
//!
//! Answers and error texts are Plausible's (`"error": "Site could not be found"`), in the one
//! error shape. Where Heartbeat's rules differ, the difference is Heartbeat's: a key of too
//! small a scope is 403 (Plausible: 401), a site Heartbeat will not name by a non-ASCII or
//! path-carrying domain is refused (Plausible accepts `müllers-café.test`).
//!
//! A site's `site_id` in a path or field is its domain, or its id: a site keeps its id (its
//! first domain) when its domain changes, so the old name still finds it, as in Plausible.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode, Uri};
use axum::Json;
use heartbeat_accounts::registry::{
    NewSite, RegistryError, MAX_CUSTOM_PROPS, MAX_CUSTOM_PROP_CHARS,
};
use heartbeat_model::{OrgId, Site, SiteRules};
use heartbeat_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::compat::pages::{paginate, PageParams};
use crate::goal_json::goal_json;
use crate::http::error::{registry_error, ApiError};
use crate::http::json::json_object;
use crate::http::state::{App, Caller, MaybeCaller, Payload, QueryParams};

const MISSING_KEY: &str =
    "Missing API key. Please use a valid Plausible API key as a Bearer Token.";
const INVALID_KEY: &str = "Invalid API key. Please make sure you're using a valid API key with access to the resource you've requested.";
const NO_SITE: &str = "Site could not be found";
const DOMAIN_TAKEN: &str =
    "domain: This domain cannot be registered. Perhaps one of your colleagues registered it?";
/// RFC 3986's reserved characters, which Plausible refuses in a domain (`/` aside).
const URI_RESERVED: &[char] = &[
    ':', '?', '#', '[', ']', '@', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=',
];

/// A Plausible error: its text as `error`, in the one error shape naming `field`.
fn refusal(status: StatusCode, field: &str, text: impl Into<String>) -> ApiError {
    let text = text.into();
    ApiError::new(status, text.clone()).with_detail(field, text)
}

fn bad_request(field: &str, text: impl Into<String>) -> ApiError {
    refusal(StatusCode::BAD_REQUEST, field, text)
}

fn no_site() -> ApiError {
    refusal(StatusCode::NOT_FOUND, "site_id", NO_SITE)
}

/// The caller of a Sites API request, refused as Plausible refuses: without a key (or
/// session), or with one that is unknown, revoked or expired, or a public dashboard link.
pub(crate) struct SitesCaller(Caller);

impl FromRequestParts<App> for SitesCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let unauthorized = |text| refusal(StatusCode::UNAUTHORIZED, "authorization", text);
        match MaybeCaller::from_request_parts(parts, app).await {
            Ok(MaybeCaller(Some(caller))) if !caller.is_share() => Ok(SitesCaller(caller)),
            Ok(MaybeCaller(Some(_))) => Err(unauthorized(INVALID_KEY)),
            Ok(MaybeCaller(None)) => Err(unauthorized(MISSING_KEY)),
            Err(err) if err.status == StatusCode::UNAUTHORIZED => Err(unauthorized(INVALID_KEY)),
            Err(err) => Err(err),
        }
    }
}

impl SitesCaller {
    /// Changing anything needs a caller that may administer something (Plausible: a
    /// `sites:provision:*` key); a read-only key is refused (403, Plausible 401).
    fn provisioning(&self) -> Result<&Caller, ApiError> {
        if self.0.may_provision() {
            Ok(&self.0)
        } else {
            Err(refusal(StatusCode::FORBIDDEN, "authorization", INVALID_KEY))
        }
    }
}

/// The site `name` names if `allowed` says the caller may use it; else Plausible's 404 (a
/// caller learns nothing of sites it may not use).
fn find_site(app: &App, name: &str, allowed: impl Fn(&Site) -> bool) -> Result<Site, ApiError> {
    app.registry
        .site_by_domain_or_id(name)
        .filter(|site| allowed(site))
        .ok_or_else(no_site)
}

/// A request's parameters as Plausible reads them: the query string's, overridden by the
/// JSON body's.
fn request_params(uri: &Uri, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut params = Map::new();
    if let Ok(axum::extract::Query(pairs)) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
    {
        for (key, value) in pairs {
            params.insert(key, Value::String(value));
        }
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        if let Value::Object(fields) = json_object(body)? {
            params.extend(fields);
        }
    }
    Ok(params)
}

/// A text parameter: `None` when absent or null; a value of another type is a 400.
fn text_param(params: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(bad_request(
            key,
            format!("Parameter `{key}` must be a string"),
        )),
    }
}

/// A required text parameter, `required` naming what for in Plausible's words.
fn required_param(
    params: &Map<String, Value>,
    key: &str,
    required: &str,
) -> Result<String, ApiError> {
    text_param(params, key)?
        .ok_or_else(|| bad_request(key, format!("Parameter `{key}` is required to {required}")))
}

/// A domain as Plausible cleans and checks it, with its error texts: lower case, trimmed,
/// without scheme, slashes around or `www.`. Of several problems Plausible names the last
/// check's.
fn plausible_domain(value: Option<&Value>) -> Result<String, ApiError> {
    let text = match value {
        None | Some(Value::Null) => "",
        Some(Value::String(text)) => text.as_str(),
        Some(_) => return Err(bad_request("domain", "domain: is invalid")),
    };
    let lower = text.to_lowercase();
    let mut domain = lower.trim();
    for scheme in ["http://", "https://"] {
        domain = domain.strip_prefix(scheme).unwrap_or(domain);
    }
    let domain = domain.trim_matches('/');
    let domain = domain.strip_prefix("www.").unwrap_or(domain);
    if domain.contains(URI_RESERVED) {
        return Err(bad_request(
            "domain",
            "domain: must not contain URI reserved characters :?#[]@!$&'()*+,;=",
        ));
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '-' | '.' | '\\' | '/' | ':');
    if !domain.chars().all(allowed) {
        return Err(bad_request(
            "domain",
            "domain: only letters, numbers, slashes and period allowed",
        ));
    }
    if domain.is_empty() {
        return Err(bad_request("domain", "domain: can't be blank"));
    }
    Ok(domain.to_owned())
}

/// A registry refusal of a domain in Plausible's `field: message` form.
fn domain_error(err: RegistryError) -> ApiError {
    match err {
        RegistryError::Invalid { field, message } => {
            bad_request(field, format!("{field}: {message}"))
        }
        RegistryError::Conflict(_) | RegistryError::Store(StoreError::Conflict { .. }) => {
            bad_request("domain", DOMAIN_TAKEN)
        }
        other => registry_error(other),
    }
}

fn site_json(site: &Site) -> Value {
    json!({"domain": site.domain, "timezone": site.timezone})
}

/// Plausible's `GET /api/v1/sites` parameters beside the page's.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only the sites of this organisation (Plausible's team).
    pub team_id: Option<String>,
}

/// The sites the caller may read, newest first, a page at a time:
/// `{"sites": [{"domain", "timezone"}], "meta": {"after", "before", "limit"}}`.
#[utoipa::path(operation_id = "plausible_sites_list", get, path = "/api/v1/sites", tag = "plausible-sites",
    params(ListParams, PageParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{sites: [{domain, timezone}], meta: {after, before, limit}}`", body = Object),
        (status = 400, description = "A malformed `limit` or cursor", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn list(
    State(app): State<App>,
    caller: SitesCaller,
    QueryParams(params): QueryParams<ListParams>,
    QueryParams(page): QueryParams<PageParams>,
) -> Result<Json<Value>, ApiError> {
    // An organisation's key sees its organisation only; its `team_id` is ignored.
    let team = match key_org(&app, &caller.0) {
        Some(_) => None,
        None => params.team_id.filter(|t| !t.is_empty()).map(OrgId),
    };
    let mut sites: Vec<Site> = app
        .registry
        .sites()
        .into_iter()
        .filter(|site| caller.0.may_read(&site.id))
        .filter(|site| {
            team.as_ref()
                .is_none_or(|team| app.registry.site_org(&site.id) == *team)
        })
        .collect();
    // Newest first, as Plausible lists; sites created in the same millisecond by id.
    let key = |site: &Site| (site.created_at_ms, site.id.0.clone());
    sites.sort_by_key(|site| std::cmp::Reverse(key(site)));
    let page = paginate(sites, key, &page)?;
    let sites: Vec<Value> = page.entries.iter().map(site_json).collect();
    Ok(Json(json!({"sites": sites, "meta": page.meta})))
}

/// The organisation of an organisation's key (Plausible's team-scoped key).
fn key_org(app: &App, caller: &Caller) -> Option<OrgId> {
    match &caller.principal {
        heartbeat_accounts::access::Principal::Key(id) => {
            app.registry.key(id).and_then(|key| key.org_id)
        }
        _ => None,
    }
}

/// The organisation a new site goes into: an organisation key's own (Plausible's
/// team-scoped key, whose `team_id` is ignored), else `team_id`, else the default one.
fn target_org(app: &App, caller: &Caller, team_id: Option<String>) -> OrgId {
    key_org(app, caller)
        .or_else(|| team_id.filter(|t| !t.is_empty()).map(OrgId))
        .unwrap_or_else(OrgId::default_org)
}

/// Creates a site: `domain` (required) and `timezone` (IANA, default `Etc/UTC`), in
/// `team_id`'s organisation (default: the default one). Answers `{"domain", "timezone"}`.
#[utoipa::path(operation_id = "plausible_sites_create", post, path = "/api/v1/sites", tag = "plausible-sites",
    request_body(content = Object, description = "`{domain, timezone?, team_id?}`"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{domain, timezone}`", body = Object),
        (status = 400, description = "`domain: can't be blank`, `timezone: is invalid`, a taken domain", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 403, description = "Not an admin-capable key, or not admin of the organisation", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn create(
    State(app): State<App>,
    caller: SitesCaller,
    uri: Uri,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.provisioning()?;
    let params = request_params(&uri, &body)?;
    let org = target_org(&app, caller, text_param(&params, "team_id")?);
    if app.registry.org(&org).is_none() || !caller.may_admin_org(&org) {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "team_id",
            "You can't add sites to the selected team.",
        ));
    }
    let timezone = match params.get("timezone") {
        None | Some(Value::Null) => "Etc/UTC".to_owned(),
        Some(Value::String(tz)) if tz.is_empty() => {
            return Err(bad_request("timezone", "timezone: can't be blank"))
        }
        Some(Value::String(tz)) if tz.parse::<heartbeat_query::TimeZone>().is_ok() => tz.clone(),
        Some(_) => return Err(bad_request("timezone", "timezone: is invalid")),
    };
    let domain = plausible_domain(params.get("domain"))?;
    let request = NewSite {
        org_id: Some(org),
        name: domain.clone(),
        domain: Some(domain),
        timezone: Some(timezone),
        rules: SiteRules::default(),
        retention_days: None,
    };
    let created = app
        .registry
        .create_site(request, chrono::Utc::now().timestamp_millis())
        .await
        .map_err(domain_error)?;
    Ok(Json(site_json(&created.site)))
}

/// A site the caller may read: `{"domain", "timezone", "custom_properties"}` (the custom
/// properties it declared, the latest first).
#[utoipa::path(operation_id = "plausible_sites_show", get, path = "/api/v1/sites/{site_id}", tag = "plausible-sites",
    params(("site_id" = String, Path, description = "The site's domain (or its former domain, its id)")),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{domain, timezone, custom_properties}`", body = Object),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 404, description = "`Site could not be found`", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn show(
    State(app): State<App>,
    caller: SitesCaller,
    Path(site_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let site = find_site(&app, &site_id, |site| caller.0.may_read(&site.id))?;
    let mut body = site_json(&site);
    body["custom_properties"] = json!(app.registry.custom_props(&site.id));
    Ok(Json(body))
}

/// Changes a site's `domain` (the only change Plausible's API makes). The old domain still
/// names the site here and in queries (it is the site's id); the tracker's events are found
/// under the new one.
#[utoipa::path(operation_id = "plausible_sites_update", put, path = "/api/v1/sites/{site_id}", tag = "plausible-sites",
    params(("site_id" = String, Path, description = "The site's domain (or its former domain, its id)")),
    request_body(content = Object, description = "`{domain}`"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{domain, timezone}`", body = Object),
        (status = 400, description = "`domain: can't be blank`, the same domain, a taken domain", body = crate::http::schema::ErrorBody),
        crate::http::schema::SitesApiRefusals,
    ))]
pub(crate) async fn update(
    State(app): State<App>,
    caller: SitesCaller,
    Path(site_id): Path<String>,
    uri: Uri,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.provisioning()?;
    let params = request_params(&uri, &body)?;
    let domain = plausible_domain(params.get("domain"))?;
    let site = find_site(&app, &site_id, |site| caller.may_admin(&site.id))?;
    if domain == site.domain {
        return Err(bad_request(
            "domain",
            "domain: New domain must be different than the current one",
        ));
    }
    let site = app
        .registry
        .change_domain(&site.id, &domain)
        .await
        .map_err(domain_error)?;
    Ok(Json(site_json(&site)))
}

/// Deletes a site with all its data, through the same deletion as `DELETE /api/sites/{id}`
/// (the data goes when the processor reaches the deletion, behind every event before it).
#[utoipa::path(operation_id = "plausible_sites_delete", delete, path = "/api/v1/sites/{site_id}", tag = "plausible-sites",
    params(("site_id" = String, Path, description = "The site's domain (or its former domain, its id)")),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{\"deleted\": true}`", body = Object),
        crate::http::schema::SitesApiRefusals,
    ))]
pub(crate) async fn delete(
    State(app): State<App>,
    caller: SitesCaller,
    Path(site_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.provisioning()?;
    let site = find_site(&app, &site_id, |site| caller.may_admin(&site.id))?;
    app.site_deletion.delete(&site.id).await?;
    Ok(Json(json!({"deleted": true})))
}

/// The address a named link opens: the dashboard of its site, read-only, at the address the
/// request came to (`https` when a proxy in front says so in `X-Forwarded-Proto`).
fn share_url(headers: &HeaderMap, token: &str) -> String {
    let header = |name| headers.get(name).and_then(|h| h.to_str().ok());
    let host = header(header::HOST.as_str()).unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}/?share={token}")
}

/// Finds the site's public read-only link named `name`, or creates it:
/// `{"name", "url"}`, the same url every time for the same name.
#[utoipa::path(operation_id = "plausible_sites_shared_link", put, path = "/api/v1/sites/shared-links", tag = "plausible-sites",
    request_body(content = Object, description = "`{site_id, name}`"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{name, url}`", body = Object),
        (status = 400, description = "`Parameter `site_id` is required to create a shared link`, ...", body = crate::http::schema::ErrorBody),
        crate::http::schema::SitesApiRefusals,
    ))]
pub(crate) async fn shared_link(
    State(app): State<App>,
    caller: SitesCaller,
    headers: HeaderMap,
    uri: Uri,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.provisioning()?;
    let params = request_params(&uri, &body)?;
    let what = "create a shared link";
    let site_id = required_param(&params, "site_id", what)?;
    let site = find_site(&app, &site_id, |site| caller.may_admin(&site.id))?;
    let name = required_param(&params, "name", what)?;
    if name.trim().is_empty() {
        return Err(bad_request("name", "can't be blank"));
    }
    let (link, token) = app
        .registry
        .named_share_link(&site.id, &name, chrono::Utc::now().timestamp_millis())
        .await
        .map_err(|err| match err {
            RegistryError::Invalid { field, message } => bad_request(field, message),
            other => registry_error(other),
        })?;
    Ok(Json(
        json!({"name": link.name, "url": share_url(&headers, &token)}),
    ))
}

/// `GET /api/v1/sites/custom-props` parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SiteParams {
    /// The site's domain (or its former domain, its id).
    pub site_id: Option<String>,
}

/// The custom properties the site declared: `{"custom_properties": [{"property"}]}`.
#[utoipa::path(operation_id = "plausible_sites_custom_props", get, path = "/api/v1/sites/custom-props", tag = "plausible-sites",
    params(SiteParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{custom_properties: [{property}]}`", body = Object),
        (status = 400, description = "`Parameter `site_id` is required to list custom properties`", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 404, description = "`Site could not be found`", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn custom_props(
    State(app): State<App>,
    caller: SitesCaller,
    QueryParams(params): QueryParams<SiteParams>,
) -> Result<Json<Value>, ApiError> {
    let site_id = params.site_id.ok_or_else(|| {
        bad_request(
            "site_id",
            "Parameter `site_id` is required to list custom properties",
        )
    })?;
    let site = find_site(&app, &site_id, |site| caller.0.may_read(&site.id))?;
    let mut props = app.registry.custom_props(&site.id);
    props.sort();
    let props: Vec<Value> = props.into_iter().map(|p| json!({"property": p})).collect();
    Ok(Json(json!({"custom_properties": props})))
}

/// Declares a custom property of the site (`{site_id, property}`; again: no change).
/// Heartbeat lets every property be queried whether declared or not; the list is what the
/// site's users declared, shown by `GET /api/v1/sites/{site_id}`.
#[utoipa::path(operation_id = "plausible_sites_put_custom_prop", put, path = "/api/v1/sites/custom-props", tag = "plausible-sites",
    request_body(content = Object, description = "`{site_id, property}`"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{\"created\": true}`", body = Object),
        (status = 400, description = "A missing parameter, a property over 300 characters, over 300 properties", body = crate::http::schema::ErrorBody),
        crate::http::schema::SitesApiRefusals,
    ))]
pub(crate) async fn put_custom_prop(
    State(app): State<App>,
    caller: SitesCaller,
    uri: Uri,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.provisioning()?;
    let params = request_params(&uri, &body)?;
    let what = "create a custom property";
    let site_id = required_param(&params, "site_id", what)?;
    let site = find_site(&app, &site_id, |site| caller.may_admin(&site.id))?;
    let property = required_param(&params, "property", what)?;
    let property = property.trim();
    if property.is_empty() {
        return Err(bad_request(
            "property",
            format!("Parameter `property` is required to {what}"),
        ));
    }
    if property.chars().count() > MAX_CUSTOM_PROP_CHARS {
        return Err(bad_request("property", "Parameter `property` is too long"));
    }
    let declared = app.registry.custom_props(&site.id);
    if declared.len() >= MAX_CUSTOM_PROPS && !declared.iter().any(|p| p == property) {
        return Err(bad_request(
            "property",
            "Can't add any more custom properties",
        ));
    }
    app.registry
        .allow_custom_prop(&site.id, property)
        .await
        .map_err(|err| match err {
            RegistryError::Invalid { field, message } => bad_request(field, message),
            other => registry_error(other),
        })?;
    Ok(Json(json!({"created": true})))
}

/// Withdraws a declared custom property (`site_id` in the body or the query string; the
/// property may contain slashes). Withdrawing an undeclared one is a success.
#[utoipa::path(operation_id = "plausible_sites_delete_custom_prop", delete, path = "/api/v1/sites/custom-props/{*property}", tag = "plausible-sites",
    params(("property" = String, Path, description = "The property (may contain `/`)")),
    request_body(content = Object, description = "`{site_id}` (or `?site_id=`)"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{\"deleted\": true}`", body = Object),
        (status = 400, description = "`Parameter `site_id` is required to delete a custom property`", body = crate::http::schema::ErrorBody),
        crate::http::schema::SitesApiRefusals,
    ))]
pub(crate) async fn delete_custom_prop(
    State(app): State<App>,
    caller: SitesCaller,
    Path(property): Path<String>,
    uri: Uri,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.provisioning()?;
    let params = request_params(&uri, &body)?;
    let site_id = required_param(&params, "site_id", "delete a custom property")?;
    let site = find_site(&app, &site_id, |site| caller.may_admin(&site.id))?;
    app.registry
        .disallow_custom_prop(&site.id, &property)
        .await
        .map_err(registry_error)?;
    Ok(Json(json!({"deleted": true})))
}

/// The site's goals, oldest first: `{"goals": [...], "meta": {after, before, limit}}`.
#[utoipa::path(operation_id = "plausible_sites_goals", get, path = "/api/v1/sites/goals", tag = "plausible-sites",
    params(SiteParams, PageParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{goals: [{id, goal_type, display_name, event_name, page_path}], meta}`", body = Object),
        (status = 400, description = "`Parameter `site_id` is required to list goals`", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 404, description = "`Site could not be found`", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn goals(
    State(app): State<App>,
    caller: SitesCaller,
    QueryParams(params): QueryParams<SiteParams>,
    QueryParams(page): QueryParams<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let site_id = params
        .site_id
        .ok_or_else(|| bad_request("site_id", "Parameter `site_id` is required to list goals"))?;
    let site = find_site(&app, &site_id, |site| caller.0.may_read(&site.id))?;
    // Oldest first: descending by the reversed id, as the pages run.
    let page = paginate(
        app.goals.of_site(&site.id),
        |goal| std::cmp::Reverse(goal.id),
        &page,
    )?;
    let goals: Vec<Value> = page.entries.iter().map(goal_json).collect();
    Ok(Json(json!({"goals": goals, "meta": page.meta})))
}

/// Finds the site's goal that matches the same events, or creates it:
/// `{site_id, goal_type: "event" | "page", event_name | page_path, display_name?}`.
#[utoipa::path(operation_id = "plausible_sites_put_goal", put, path = "/api/v1/sites/goals", tag = "plausible-sites",
    request_body(content = Object, description = "`{site_id, goal_type, event_name | page_path, display_name?, currency?}`"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The goal with the site's `domain`", body = Object),
        (status = 400, description = "`Parameter `goal_type` is required to create a goal`, ...", body = crate::http::schema::ErrorBody),
        (status = 409, description = "Another goal has the display name", body = crate::http::schema::ErrorBody),
        crate::http::schema::SitesApiRefusals,
    ))]
pub(crate) async fn put_goal(
    State(app): State<App>,
    caller: SitesCaller,
    uri: Uri,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.provisioning()?;
    let params = request_params(&uri, &body)?;
    let site_id = required_param(&params, "site_id", "create a goal")?;
    let site = find_site(&app, &site_id, |site| caller.may_admin(&site.id))?;
    let new = crate::goal_json::new_goal(&params).map_err(crate::goal_json::invalid)?;
    let (goal, _) = app
        .goals
        .find_or_create(&site.id, new, chrono::Utc::now().timestamp_millis())
        .await
        .map_err(crate::goal_json::goal_error)?;
    let mut body = goal_json(&goal);
    body["domain"] = json!(site.domain);
    Ok(Json(body))
}

/// Deletes a goal of the site (`site_id` in the body or the query string).
#[utoipa::path(operation_id = "plausible_sites_delete_goal", delete, path = "/api/v1/sites/goals/{goal_id}", tag = "plausible-sites",
    params(("goal_id" = String, Path, description = "The goal")),
    request_body(content = Object, description = "`{site_id}` (or `?site_id=`)"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{\"deleted\": true}`", body = Object),
        (status = 400, description = "`Parameter `site_id` is required to delete a goal`", body = crate::http::schema::ErrorBody),
        crate::http::schema::SitesApiRefusals,
    ))]
pub(crate) async fn delete_goal(
    State(app): State<App>,
    caller: SitesCaller,
    Path(goal_id): Path<String>,
    uri: Uri,
    Payload(body): Payload,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.provisioning()?;
    let params = request_params(&uri, &body)?;
    let site_id = required_param(&params, "site_id", "delete a goal")?;
    let site = find_site(&app, &site_id, |site| caller.may_admin(&site.id))?;
    let not_found = || refusal(StatusCode::NOT_FOUND, "goal_id", "Goal could not be found");
    let goal_id: u64 = goal_id.parse().map_err(|_| not_found())?;
    app.goals
        .delete(&site.id, goal_id)
        .await
        .map_err(|err| match err {
            heartbeat_accounts::goals::GoalError::NotFound => not_found(),
            other => crate::goal_json::goal_error(other),
        })?;
    Ok(Json(json!({"deleted": true})))
}

pub fn router() -> OpenApiRouter<App> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(goals, put_goal))
        .routes(routes!(delete_goal))
        .routes(routes!(list, create))
        .routes(routes!(show, update, delete))
        .routes(routes!(shared_link))
        .routes(routes!(custom_props, put_custom_prop))
        .routes(routes!(delete_custom_prop));
    // The route takes the rest of the path (`{*property}`: a property may contain slashes);
    // the document names the parameter as OpenAPI spells it.
    let paths = &mut router.get_openapi_mut().paths.paths;
    if let Some(item) = paths.remove("/api/v1/sites/custom-props/{*property}") {
        paths.insert("/api/v1/sites/custom-props/{property}".to_owned(), item);
    }
    router
}
