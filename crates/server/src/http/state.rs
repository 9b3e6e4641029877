//! The state every handler shares, and the request pieces handlers extract from it: the
//! caller (key, session cookie or share link), the client, and a size-limited payload.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, Method, StatusCode};
use heartbeat_ingest::{ClientInfo, Ingestor};
use heartbeat_query::SqlRunner;
use heartbeat_store::EventData;
use ipnet::IpNet;

use crate::http::error::ApiError;
use crate::http::shield::INGEST_PATHS;
use crate::telemetry::Telemetry;
use heartbeat_accounts::registry::Registry;

/// The shared state: one pointer, so the several copies every request's layers and
/// extractors take cost one reference count each, not one per part.
#[derive(Clone)]
pub struct App(Arc<AppParts>);

impl App {
    pub fn new(parts: AppParts) -> Self {
        App(Arc::new(parts))
    }
}

impl std::ops::Deref for App {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

pub struct AppParts {
    pub backup: Arc<crate::jobs::backup::Backup>,
    pub registry: Arc<Registry>,
    /// Sites' goals, which queries read.
    pub goals: Arc<heartbeat_accounts::goals::Goals>,
    /// Alert rules, webhooks, report recipients and the outbox.
    pub alerting: Arc<crate::alerting::Alerting>,
    pub ingestor: Arc<Ingestor>,
    /// Queries (timed).
    pub reads: Arc<dyn SqlRunner>,
    /// Exports, imports and deletes.
    pub data: Arc<dyn EventData>,
    /// Deleting a site with everything of it.
    pub site_deletion: crate::site_deletion::SiteDeletion,
    pub telemetry: Telemetry,
    pub trusted_proxies: Arc<Vec<IpNet>>,
    pub max_body_bytes: usize,
    pub query_cache: Arc<crate::query_cache::QueryCache>,
    /// Where the work of every read runs, bounded in concurrency, time and width.
    pub queries: Arc<crate::query_pool::QueryPool>,
    /// Stored events for the live streams (`GET /api/live`).
    pub live: crate::live::hub::LiveHub,
    pub limits: Arc<crate::limits::Limits>,
    /// Session cookies carry `Secure`.
    pub secure_cookies: bool,
}

pub use heartbeat_accounts::access::Caller;

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "hb_session";

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

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A cookie-authenticated request that changes something must come from Heartbeat's own
/// pages: `Sec-Fetch-Site` (when sent) says same-origin, and `Origin` (when sent) names the
/// host the request went to. With `SameSite=Strict` cookies this stops cross-site request
/// forgery; API keys and bearer tokens are not sent by browsers on their own and need no check.
fn same_origin(parts: &Parts) -> bool {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let headers = &parts.headers;
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or("");
            !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
        }
    }
}

/// The caller of a request that may carry a key (`x-api-key`, `Authorization: Bearer`) or a
/// session cookie: `None` without one; a credential that is presented but unknown, expired or
/// revoked is a 401, never silently ignored. Every authenticated request counts against its
/// caller's rate limit.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<App> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        // Ingest never reads the session cookie: a signed-in user's browser may send it along
        // with tracker events from the user's own (same-site) pages, which are not the
        // user's requests.
        let ingest = parts.method == Method::POST && INGEST_PATHS.contains(&parts.uri.path());
        let (secret, via_cookie) = match presented_key(&parts.headers) {
            Some(key) if !key.is_empty() => (key, false),
            _ => match cookie(&parts.headers, SESSION_COOKIE) {
                Some(token) if !token.is_empty() && !ingest => (token, true),
                _ => return Ok(MaybeCaller(None)),
            },
        };
        let mut caller = app
            .registry
            .authenticate(secret)
            .ok_or_else(ApiError::unauthorized)?;
        caller.via_cookie = via_cookie;
        if via_cookie && !same_origin(parts) {
            return Err(
                ApiError::new(StatusCode::FORBIDDEN, "Forbidden").with_detail(
                    "origin",
                    "a signed-in request that changes something must come from this server's pages",
                ),
            );
        }
        app.limits
            .check_caller(&caller, client_of(parts, app).ip)
            .await?;
        Ok(MaybeCaller(Some(caller)))
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
        Ok(Client(client_of(parts, app)))
    }
}

fn client_of(parts: &Parts, app: &App) -> ClientInfo {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    crate::http::client::client_info(peer, &parts.headers, &app.trusted_proxies)
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

/// A query string read into `T`, bad ones answered in the one error shape.
pub use crate::http::query_string::QueryParams;
