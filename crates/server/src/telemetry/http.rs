//! The layer every request passes: a request id (the caller's `x-request-id` when it is
//! well formed, else a new UUID v7), a log span carrying it, the HTTP metrics, and the id
//! returned in the response's `x-request-id` header.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::{HTTP_REQUESTS, HTTP_REQUEST_DURATION, INGEST_REQUESTS_REJECTED};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being answered, for handlers that want to mention it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Whether a caller's request id can be kept: 1 to 128 characters of letters, digits and
/// `-_.:`, so it is safe in logs and headers.
pub fn well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Why an ingest request was refused, from its status (the error kinds map one to one).
pub fn rejection_reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "unknown_site",
        413 => "too_large",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        503 => "queue_full",
        _ => "internal",
    }
}

/// The outermost layer: id, span, metrics.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| well_formed(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    // The route template (`/api/v1/events/{id}`), never the raw path: one series per route.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_us = elapsed.as_micros() as u64,
            "request answered"
        )
    });
    let labels = [
        ("route", route),
        ("method", method.to_owned()),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, &labels).record(elapsed);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// Counts refused ingest requests by reason; layered on the ingest routes only.
pub async fn count_ingest_rejections(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        metrics::counter!(INGEST_REQUESTS_REJECTED, "reason" => rejection_reason(status))
            .increment(1);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn request_ids_kept_only_when_safe() {
        assert!(well_formed("0193f7a2-1c2b-7def-8000-1234567890ab"));
        assert!(well_formed("trace:abc_1.2"));
        assert!(!well_formed(""));
        assert!(!well_formed("has space"));
        assert!(!well_formed("new\nline"));
        assert!(!well_formed(&"a".repeat(129)));
    }
}
