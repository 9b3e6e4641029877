//! What every response gets whatever its route: security headers, a request time limit, the
//! two CORS policies (open on ingest, which trackers call cross-origin with `text/plain`;
//! strict on the private API: only the configured origins, with credentials), and the
//! node's role (`server.role`) deciding which routes it serves at all.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Role;
use crate::http::error::ApiError;

/// Headers set on every response unless the handler set them.
const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
    // No page of Heartbeat's is meant to be framed; scripts, styles and images come from the
    // server itself (the Swagger UI and the dashboard are embedded).
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
         connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    ),
];

/// Adds [`SECURITY_HEADERS`], and `Cache-Control: no-store` to API answers (statistics,
/// keys and tokens shown once are nobody's to cache) unless the handler chose otherwise.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Answers 408 in the one error shape when a handler has not answered within the limit.
/// Streaming bodies (export) and WebSocket sessions are not cut: the limit covers the time
/// until the response starts.
pub async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(StatusCode::REQUEST_TIMEOUT, "Request timeout")
            .with_detail(
                "request",
                format!("not answered within {} s", limit.as_secs_f64()),
            )
            .into_response(),
    }
}

/// The paths whose `POST` is ingest: callable from any origin without credentials.
pub const INGEST_PATHS: [&str; 6] = [
    "/api/event",
    "/events",
    "/v1/intake",
    "/api/events",
    "/api/v1/events",
    "/api/v1/events/batch",
];

/// Whether a node of `role` serves `method` on `path`: every node its `/health` and
/// `/metrics`; ingest nodes ingest and the tracker scripts; API nodes everything but ingest;
/// workers nothing else.
pub fn serves(role: Role, method: &Method, path: &str) -> bool {
    let ingest = INGEST_PATHS.contains(&path) && matches!(*method, Method::POST | Method::OPTIONS);
    match role {
        Role::All => true,
        _ if matches!(path, "/health" | "/metrics") => true,
        Role::Ingest => ingest || path == "/heartbeat.js" || path.starts_with("/js/"),
        Role::Api => !ingest,
        Role::Worker => false,
    }
}

/// Answers 421 (the one error shape) to what this node's role does not serve, so a load
/// balancer that sends a request to the wrong pool is told so, not given a half answer.
pub async fn role_gate(State(role): State<Role>, request: Request, next: Next) -> Response {
    if serves(role, request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let role_name = format!("{role:?}").to_lowercase();
    ApiError::new(StatusCode::MISDIRECTED_REQUEST, "Not served by this node")
        .with_detail(
            "path",
            format!(
                "this node's role is {role_name} (server.role); send it to a node that serves it"
            ),
        )
        .into_response()
}

const ALLOWED_HEADERS: &str = "content-type, authorization, x-api-key, x-request-id";

/// The CORS policy: open on ingest, the configured origins (with credentials) elsewhere.
#[derive(Clone)]
pub struct Cors {
    pub origins: Arc<Vec<String>>,
}

/// Answers preflights and adds CORS headers. Ingest (`POST` to [`INGEST_PATHS`]) allows
/// every origin without credentials; everything else allows only the configured origins.
pub async fn cors(State(policy): State<Cors>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    let requested_method = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let preflight = request.method() == Method::OPTIONS && requested_method.is_some();
    let method = match &requested_method {
        Some(m) if preflight => m.to_ascii_uppercase(),
        _ => request.method().as_str().to_owned(),
    };
    let open = method == "POST" && INGEST_PATHS.contains(&request.uri().path());
    let allowed = !open && policy.origins.iter().any(|o| o == &origin);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if open || allowed {
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(if open {
                    "POST, OPTIONS"
                } else {
                    "GET, POST, PUT, DELETE, OPTIONS"
                }),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("86400"),
            );
        }
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    if open {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else if allowed {
        if let Ok(value) = HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    response
}
