//! The files of the web build, embedded in the binary by `build.rs`: the dashboard at `/`
//! (its hashed bundles under `/assets/`) and the tracker at `/js/heartbeat.js` (and at
//! `/heartbeat.js`, where seed 000's snippet loads it).
//!
//! Caching: bundles carry a content hash in their names, so they are immutable for a year;
//! the dashboard page is revalidated on every load; the tracker, whose URL never changes, is
//! cached for a day and revalidated by its ETag. Every file answers `If-None-Match` with 304.
//! The web build writes a gzip twin of each text file (`name.gz`), sent with
//! `Content-Encoding: gzip` to clients that accept it: nothing is compressed per request.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::http::state::App;
use utoipa_axum::{router::OpenApiRouter, routes};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

const TRACKER_CACHE: &str = "public, max-age=86400, stale-while-revalidate=604800";
const PAGE_CACHE: &str = "no-cache";
const BUNDLE_CACHE: &str = "public, max-age=31536000, immutable";

/// An embedded file: its bytes and ETag.
fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    embedded::ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, bytes, etag)| (*bytes, *etag))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "map") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// The embedded file `name` (its gzip twin `name.gz` from the web build when the client
/// accepts gzip), or 304 when the client's copy is current.
fn serve(name: &str, cache_control: &'static str, request: &HeaderMap) -> Response {
    let gzipped = accepts_gzip(request)
        .then(|| asset(&format!("{name}.gz")))
        .flatten();
    let Some((bytes, etag)) = gzipped.or_else(|| asset(name)) else {
        return ApiError::not_found("path", format!("no file {name}")).into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    // Each encoding is its own representation, with its own ETag.
    headers.insert(header::ETAG, HeaderValue::from_static(etag));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzipped.is_some() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let current = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if current {
        headers.remove(header::CONTENT_ENCODING);
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, bytes).into_response()
}

/// The dashboard: sign in with an admin or read key, pick a site, read its statistics and
/// the live feed. All state is in the query string, so a view can be shared as a link.
#[utoipa::path(get, path = "/", tag = "web",
    responses(
        (status = 200, description = "The dashboard's page (HTML)", content_type = "text/html"),
        (status = 304, description = "The cached copy is current"),
    ))]
pub(crate) async fn dashboard(request: HeaderMap) -> Response {
    serve("index.html", PAGE_CACHE, &request)
}

/// The dashboard's bundles (JavaScript, CSS), named by their content hash.
#[utoipa::path(get, path = "/assets/{file}", tag = "web",
    params(("file" = String, Path, description = "A bundle's file name")),
    responses(
        (status = 200, description = "The file"),
        (status = 304, description = "The cached copy is current"),
        (status = 404, description = "No such file", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn bundle(Path(file): Path<String>, request: HeaderMap) -> Response {
    serve(&format!("assets/{file}"), BUNDLE_CACHE, &request)
}

/// The tracker. Embed it with
/// `<script defer data-domain="example.com" src="https://HOST/js/heartbeat.js"></script>`
/// or call `Heartbeat.init({domain, endpoint})`.
#[utoipa::path(get, path = "/js/heartbeat.js", tag = "web",
    responses(
        (status = 200, description = "heartbeat.js (JavaScript), cached for a day", content_type = "text/javascript"),
        (status = 304, description = "The cached copy is current"),
    ))]
pub(crate) async fn tracker(request: HeaderMap) -> Response {
    serve("js/heartbeat.js", TRACKER_CACHE, &request)
}

/// The tracker at the path seed 000's snippet uses.
#[utoipa::path(operation_id = "seed_tracker", get, path = "/heartbeat.js", tag = "web",
    responses(
        (status = 200, description = "heartbeat.js, as at `/js/heartbeat.js`", content_type = "text/javascript"),
        (status = 304, description = "The cached copy is current"),
    ))]
pub(crate) async fn seed_tracker(request: HeaderMap) -> Response {
    serve("js/heartbeat.js", TRACKER_CACHE, &request)
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(dashboard))
        .routes(routes!(bundle))
        .routes(routes!(tracker))
        .routes(routes!(seed_tracker))
}
