//! The state every handler shares, and the request pieces handlers extract from it: the
//! caller's key, the client, and a size-limited payload.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use heartbeat_ingest::{ClientInfo, Ingestor, KeyGrant};
use heartbeat_model::{ApiKeyScope, SiteId};
use heartbeat_store::EventStore;
use ipnet::IpNet;

use crate::error::ApiError;
use crate::registry::Registry;
use crate::telemetry::Telemetry;

#[derive(Clone)]
pub struct App {
    pub backup: Arc<crate::backup::Backup>,
    pub registry: Arc<Registry>,
    pub ingestor: Arc<Ingestor>,
    pub store: Arc<dyn EventStore>,
    pub telemetry: Telemetry,
    pub trusted_proxies: Arc<Vec<IpNet>>,
    pub max_body_bytes: usize,
    pub limits: Arc<crate::limits::Limits>,
    /// Session cookies carry `Secure`.
    pub secure_cookies: bool,
}

/// An authenticated caller: which sites its key reaches and what it may do.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id (`admin` for the admin token): what per-key rate limits count.
    pub id: String,
    pub grant: KeyGrant,
    pub scope: ApiKeyScope,
}

impl Caller {
    /// Whether this caller may read `site`'s statistics.
    pub fn may_read(&self, site: &SiteId) -> bool {
        self.scope != ApiKeyScope::Ingest
            && self.grant.site_id.as_ref().is_none_or(|own| own == site)
    }

    pub fn is_admin(&self) -> bool {
        self.scope == ApiKeyScope::Admin
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The caller of a request that may carry a key: `None` without one; a key that is
/// presented but unknown or revoked is a 401, never silently ignored.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<App> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        match presented_key(&parts.headers) {
            None | Some("") => Ok(MaybeCaller(None)),
            Some(secret) => {
                let (grant, scope, id) = app
                    .registry
                    .authenticate(secret)
                    .ok_or_else(ApiError::unauthorized)?;
                app.limits.check_key(&id)?;
                Ok(MaybeCaller(Some(Caller { id, grant, scope })))
            }
        }
    }
}

/// A caller that must present a valid key.
pub struct RequiredCaller(pub Caller);

impl FromRequestParts<App> for RequiredCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let MaybeCaller(caller) = MaybeCaller::from_request_parts(parts, app).await?;
        caller
            .map(RequiredCaller)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The sender of a request.
pub struct Client(pub ClientInfo);

impl FromRequestParts<App> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        Ok(Client(crate::client::client_info(
            peer,
            &parts.headers,
            &app.trusted_proxies,
        )))
    }
}

/// A JSON (or `text/plain`, as trackers send to avoid CORS preflights) body of at most
/// `max_body_bytes`.
pub struct Payload(pub Bytes);

impl FromRequest<App> for Payload {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &App) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_ascii_lowercase();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        if !matches!(essence.as_str(), "application/json" | "text/plain" | "") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
            )
            .with_detail("content-type", "send application/json or text/plain"));
        }
        let limit = app.max_body_bytes;
        let too_large = || {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large")
                .with_detail("body", format!("at most {limit} bytes"))
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        axum::body::to_bytes(request.into_body(), limit)
            .await
            .map(Payload)
            .map_err(|_| too_large())
    }
}
