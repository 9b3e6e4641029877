//! A site's data out and in: `GET /api/export` streams its stored events, `POST /api/import`
//! takes them back (idempotent by event id), `POST /api/imports/plausible` takes Plausible's
//! CSV export as imported statistics (listed by `GET /api/imports`, removed by
//! `DELETE /api/imports/{import_id}`), `POST /api/imports/umami` takes Umami's events,
//! `POST /api/backup` copies the data dir consistently (`crate::backup`). Formats in
//! `crate::transfer`, `crate::plausible_export` and `crate::umami_export`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_model::{Site, SiteId};
use serde::Deserialize;
use serde_json::json;

use crate::csv_file::ExportError;
use crate::http::error::ApiError;
use crate::http::state::{App, Caller, QueryParams, RequiredCaller};
use crate::plausible_export;
use crate::transfer::{self, Format, TransferError};
use crate::umami_export;
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Deserialize)]
pub(crate) struct TransferParams {
    site_id: Option<String>,
    format: Option<String>,
}

fn format(value: Option<&str>, default: Format) -> Result<Format, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some("ndjson") => Ok(Format::Ndjson),
        Some("csv") => Ok(Format::Csv),
        Some(other) => Err(ApiError::invalid(vec![FieldError::new(
            "format",
            format!("format must be csv or ndjson, not {other:?}"),
        )])),
    }
}

/// The site named by `site_id`, which the caller may use.
fn site(app: &App, caller: &Caller, site_id: Option<&str>) -> Result<Site, ApiError> {
    let site_id = site_id.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::invalid(vec![FieldError::new("site_id", "site_id is required")])
    })?;
    let site = app
        .registry
        .site(&SiteId(site_id.to_owned()))
        .ok_or_else(|| ApiError::not_found("site_id", format!("no site {site_id}")))?;
    if !caller.may_read(&site.id) {
        return Err(ApiError::forbidden(site.id.as_str()));
    }
    Ok(site)
}

impl From<TransferError> for ApiError {
    fn from(err: TransferError) -> Self {
        match err {
            TransferError::Line { line, message } => {
                ApiError::invalid(vec![FieldError::new(&format!("line {line}"), message)])
            }
            TransferError::Store(err) => err.into(),
            TransferError::Write(err) => {
                tracing::error!(error = %err, "export failed");
                ApiError::internal()
            }
        }
    }
}

/// Streams every stored event of a site, oldest first.
#[utoipa::path(get, path = "/api/export", tag = "operations",
    params(
        ("site_id" = String, Query, description = "The site"),
        ("format" = Option<String>, Query, description = "`ndjson` (default) or `csv`"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "One event per line (columns in the export format docs)", body = String, content_type = "application/x-ndjson"),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn export(
    State(app): State<App>,
    caller: RequiredCaller,
    QueryParams(params): QueryParams<TransferParams>,
) -> Result<Response, ApiError> {
    let format = format(params.format.as_deref(), Format::Ndjson)?;
    let site = site(&app, &caller.0, params.site_id.as_deref())?;
    if caller.0.is_share() {
        return Err(
            ApiError::new(StatusCode::FORBIDDEN, "Forbidden").with_detail(
                "share_token",
                "a public dashboard link shows statistics; exporting raw events needs a key",
            ),
        );
    }
    let filename = format!("{}.{}", site.id, format.extension());
    // Pages are read one at a time as the client takes them: memory stays flat whatever the
    // site's size. A store failure mid-stream ends the body early (the status is sent).
    struct Cursor {
        after: Option<(i64, String)>,
        first: bool,
        done: bool,
    }
    let start = Cursor {
        after: None,
        first: true,
        done: false,
    };
    let (store, queries) = (app.data.clone(), app.queries.clone());
    let stream = futures_util::stream::unfold(start, move |cursor| {
        let (store, queries) = (store.clone(), queries.clone());
        let site_id = site.id.clone();
        async move {
            if cursor.done {
                return None;
            }
            // Each page is read and encoded on the query threads, in its own turn.
            let (after, first) = (cursor.after.clone(), cursor.first);
            let page = queries
                .compute("/api/export", async move {
                    let page = store
                        .export_events(&site_id, after, transfer::PAGE_EVENTS)
                        .await?;
                    let done = page.len() < transfer::PAGE_EVENTS;
                    let after = page.last().map(|e| (e.timestamp_ms, e.event_id.clone()));
                    let bytes = Bytes::from(transfer::encode_page(page, format, first));
                    Ok((bytes, after, done))
                })
                .await;
            let (bytes, after, done) = match page {
                Ok(page) => page,
                Err(err) => {
                    tracing::error!(error = ?err, "export failed");
                    let failure = std::io::Error::other(err.error);
                    let stop = Cursor {
                        done: true,
                        ..cursor
                    };
                    return Some((Err(failure), stop));
                }
            };
            let next = Cursor {
                after,
                first: false,
                done,
            };
            Some((Ok::<_, std::io::Error>(bytes), next))
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Stores events exported by a Heartbeat server into this site, skipping event ids it has.
#[utoipa::path(post, path = "/api/import", tag = "operations",
    params(
        ("site_id" = String, Query, description = "The site the events go to"),
        ("format" = Option<String>, Query, description = "`ndjson` or `csv`; default from the content type (`text/csv` is CSV)"),
    ),
    request_body(content = String, description = "An export, up to 512 MiB", content_type = "application/x-ndjson"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, events, imported, skipped}`", body = Object),
        crate::http::schema::AdminRefusals,
        (status = 413, description = "Body too large", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn import(
    State(app): State<App>,
    caller: RequiredCaller,
    QueryParams(params): QueryParams<TransferParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    let default = if is_csv { Format::Csv } else { Format::Ndjson };
    let format = format(params.format.as_deref(), default)?;
    let site = writable_site(&app, &caller.0, params.site_id.as_deref())?;
    let bytes = body_bytes(body).await?;
    let site_id = site.id.clone();
    let events = tokio::task::spawn_blocking(move || transfer::decode(&bytes, format, &site_id))
        .await
        .map_err(|_| ApiError::internal())??;
    store_events(&app, &site, events, "export").await
}

/// Stores `events` into `site` (event ids it has are skipped) and answers
/// `{success, events, imported, skipped}`.
async fn store_events(
    app: &App,
    site: &Site,
    events: Vec<heartbeat_model::Event>,
    from: &str,
) -> Result<Response, ApiError> {
    let total = events.len() as u64;
    let imported = transfer::import(app.data.as_ref(), events).await?;
    tracing::info!(site = %site.id, from, events = total, imported, "events imported");
    let body = json!({
        "success": true,
        "events": total,
        "imported": imported,
        "skipped": total - imported,
    });
    Ok((StatusCode::OK, Json(body)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct SiteParam {
    site_id: Option<String>,
}

impl From<ExportError> for ApiError {
    fn from(err: ExportError) -> Self {
        let message = match err.line {
            Some(line) => format!("line {line}: {}", err.message),
            None => err.message,
        };
        ApiError::invalid(vec![FieldError::new(&err.file, message)])
    }
}

async fn body_bytes(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, transfer::MAX_IMPORT_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large").with_detail(
                "body",
                format!("at most {} bytes", transfer::MAX_IMPORT_BYTES),
            )
        })
}

/// The site named by `site_id`, which the caller may change.
fn writable_site(app: &App, caller: &Caller, site_id: Option<&str>) -> Result<Site, ApiError> {
    let site = site(app, caller, site_id)?;
    if !caller.may_write(&site.id) {
        return Err(ApiError::forbidden(site.id.as_str()));
    }
    Ok(site)
}

/// Imports Plausible's CSV export (the zip of its ten `imported_*.csv` files) into a site as
/// imported statistics: kept apart from the site's events and added to answers that ask for
/// them (`"include": {"imports": true}`, v1's `with_imported=true`), as Plausible does. The
/// whole export is checked first: a file missing or a bad line is a 400 naming the file and
/// line, and nothing is stored.
#[utoipa::path(post, path = "/api/imports/plausible", tag = "operations",
    params(("site_id" = String, Query, description = "The site the statistics go to")),
    request_body(content = Vec<u8>, description = "Plausible's export zip, up to 512 MiB", content_type = "application/zip"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, import: {id, source, start_date, end_date}, rows: {table: count}}`", body = Object),
        crate::http::schema::AdminRefusals,
        (status = 413, description = "Body too large", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn import_plausible(
    State(app): State<App>,
    caller: RequiredCaller,
    QueryParams(params): QueryParams<SiteParam>,
    body: Body,
) -> Result<Response, ApiError> {
    let site = writable_site(&app, &caller.0, params.site_id.as_deref())?;
    let bytes = body_bytes(body).await?;
    let export = tokio::task::spawn_blocking(move || plausible_export::read_zip(&bytes))
        .await
        .map_err(|_| ApiError::internal())??;
    let rows = serde_json::to_value(export.rows()).unwrap_or_default();
    let import = app
        .data
        .import_aggregates(&site.id, "plausible_csv", export.range, export.tables)
        .await?;
    tracing::info!(site = %site.id, import = import.id, "plausible export imported");
    let body = json!({"success": true, "import": import_json(&import), "rows": rows});
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// Imports Umami's events (a CSV of its `website_event` table, optionally with its
/// `session` columns joined in) into a site as events: page views and custom events with
/// their visits as Umami recorded them, sources and channels named as for live traffic.
/// Umami's event ids make a second import of the same file store nothing twice. A bad line
/// is a 400 naming it, and nothing is stored.
#[utoipa::path(post, path = "/api/imports/umami", tag = "operations",
    params(("site_id" = String, Query, description = "The site the events go to")),
    request_body(content = String, description = "Umami's website_event rows as CSV with a header, up to 512 MiB", content_type = "text/csv"),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, events, imported, skipped}`", body = Object),
        crate::http::schema::AdminRefusals,
        (status = 413, description = "Body too large", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn import_umami(
    State(app): State<App>,
    caller: RequiredCaller,
    QueryParams(params): QueryParams<SiteParam>,
    body: Body,
) -> Result<Response, ApiError> {
    let site = writable_site(&app, &caller.0, params.site_id.as_deref())?;
    let bytes = body_bytes(body).await?;
    let (site_id, domain) = (site.id.clone(), site.domain.clone());
    let events =
        tokio::task::spawn_blocking(move || umami_export::read_events(&bytes, &site_id, &domain))
            .await
            .map_err(|_| ApiError::internal())??;
    store_events(&app, &site, events, "umami").await
}

fn import_json(import: &heartbeat_model::SiteImport) -> serde_json::Value {
    json!({
        "id": import.id,
        "source": import.source,
        "start_date": import.start_date,
        "end_date": import.end_date,
        "imported_at_ms": import.imported_at_ms,
    })
}

/// A site's imports of statistics from other products, oldest first.
#[utoipa::path(get, path = "/api/imports", tag = "operations",
    params(("site_id" = String, Query, description = "The site")),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{imports: [{id, source, start_date, end_date, imported_at_ms}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn list_imports(
    State(app): State<App>,
    caller: RequiredCaller,
    QueryParams(params): QueryParams<SiteParam>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let site = site(&app, &caller.0, params.site_id.as_deref())?;
    let imports = app.data.site_imports(&site.id).await?;
    let imports: Vec<serde_json::Value> = imports.iter().map(import_json).collect();
    Ok(Json(json!({ "imports": imports })))
}

/// Deletes one import of statistics and all its rows; the site's events stay.
#[utoipa::path(delete, path = "/api/imports/{import_id}", tag = "operations",
    params(
        ("import_id" = u64, Path, description = "The import"),
        ("site_id" = String, Query, description = "The site"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, deleted: true}`; admin on the site", body = Object),
        crate::http::schema::AdminRefusals,
        (status = 404, description = "The site has no such import", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn delete_import(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(import_id): Path<String>,
    QueryParams(params): QueryParams<SiteParam>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let site = site(&app, &caller.0, params.site_id.as_deref())?;
    if !caller.0.may_admin(&site.id) {
        return Err(ApiError::forbidden(site.id.as_str()));
    }
    let id: u64 = import_id.parse().map_err(|_| {
        ApiError::invalid(vec![FieldError::new(
            "import_id",
            format!("import_id must be a whole number, not {import_id:?}"),
        )])
    })?;
    if !app.data.delete_import(&site.id, id).await? {
        return Err(ApiError::not_found(
            "import_id",
            format!("site {} has no import {id}", site.id),
        ));
    }
    Ok(Json(json!({"success": true, "deleted": true})))
}

/// Writes a consistent copy of the data dir (store, write-ahead log, salts, admin token)
/// into `<data_dir>/backups/<UTC time>/` while the server keeps running. Admin key required.
/// To restore, start a stopped server with that directory as its data dir.
#[utoipa::path(post, path = "/api/backup", tag = "operations",
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{success, path, bytes}`", body = Object),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 403, description = "Not an admin key", body = crate::http::schema::ErrorBody),
        (status = 409, description = "The events are in ClickHouse: back up with its own tools", body = crate::http::schema::ErrorBody),
        (status = 503, description = "The copy failed (disk full?); details are logged", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn backup(
    State(app): State<App>,
    caller: RequiredCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !caller.0.is_admin() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "Forbidden")
            .with_detail("x-api-key", "an admin key is required"));
    }
    if app.backup.store.is_none() {
        return Err(
            ApiError::new(StatusCode::CONFLICT, "Backups are the engines' own").with_detail(
                "store",
                "the events are in ClickHouse and the metadata in PostgreSQL: back them up \
                 with their own tools (clickhouse-backup or ALTER TABLE ... FREEZE, pg_dump)",
            ),
        );
    }
    let report = app.backup.run().await?;
    Ok(Json(json!({
        "success": true,
        "path": report.path.display().to_string(),
        "bytes": report.bytes,
    })))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(import))
        .routes(routes!(import_plausible))
        .routes(routes!(import_umami))
        .routes(routes!(list_imports))
        .routes(routes!(delete_import))
        .routes(routes!(backup))
}
