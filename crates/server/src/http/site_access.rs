//! The site a route's path names, checked against its caller: to read (a caller that may
//! not learns nothing, not even that the site exists: 404) or to change (404 without such a
//! site, 403 for a caller who may not use it or only read it).

use axum::http::StatusCode;
use heartbeat_model::SiteId;

use crate::http::error::ApiError;
use crate::http::state::{App, Caller};

fn no_site(id: &str) -> ApiError {
    ApiError::not_found("site_id", format!("no site {id}"))
}

/// The 403 of a caller who may read a site but not change it.
pub fn admin_required() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "Forbidden")
        .with_detail("x-api-key", "an admin key or role is required")
}

/// The site `id` if the caller may read it.
pub fn site_to_read(app: &App, caller: &Caller, id: &str) -> Result<SiteId, ApiError> {
    let id = SiteId(id.to_owned());
    if app.registry.site(&id).is_none() || !caller.may_read(&id) {
        return Err(no_site(id.as_str()));
    }
    Ok(id)
}

/// The site `id` if the caller may change it.
pub fn site_to_admin(app: &App, caller: &Caller, id: &str) -> Result<SiteId, ApiError> {
    let id = SiteId(id.to_owned());
    if app.registry.site(&id).is_none() {
        return Err(no_site(id.as_str()));
    }
    if !caller.may_read(&id) {
        return Err(ApiError::forbidden(id.as_str()));
    }
    if !caller.may_admin(&id) {
        return Err(admin_required());
    }
    Ok(id)
}
