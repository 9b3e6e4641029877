//! Reading events the way seeds 001 and 003 do, on the same engine as `/api/v2/query`:
//! seed 001's `GET /api/v1/events` (filter by type, source and time; cursor pages),
//! `GET /api/v1/events/{id}` and `GET /api/v1/events/counts`; seed 003's
//! `GET /api/v1/events/summary` and `GET /api/v1/metrics`.

use axum::extract::{Path, Query as UrlQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use heartbeat_ingest::FieldError;
use heartbeat_model::Site;
use heartbeat_query::{list_events, Cursor, EventListing, ListedEvent, MAX_PAGE};
use serde::Deserialize;
use serde_json::{json, Value};

use super::stats::{read_site, run_query};
use crate::app::{App, Caller, RequiredCaller};
use crate::error::ApiError;

/// Seed 001's event shape: `{id, type, data, timestamp, source, correlationId?, metadata}`.
fn event_message(event: &ListedEvent) -> Value {
    let mut data = event.props.clone();
    let source = data
        .remove("source")
        .unwrap_or_else(|| event.source.clone());
    let correlation_id = data.remove("correlation_id");
    json!({
        "id": event.event_id,
        "type": event.name,
        "data": data,
        "timestamp": iso(event.timestamp_ms),
        "source": source,
        "correlationId": correlation_id,
        "metadata": {
            "userId": event.user_id,
            "sessionId": event.session_id,
            "hostname": event.hostname,
            "path": event.pathname,
            "country": event.country,
            "browser": event.browser,
            "os": event.os,
            "device": event.device,
        },
    })
}

pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time bound given as an RFC 3339 date-time or a date, read as the query engine reads
/// `date_range` (a date is the site's local day; an end date includes its whole day).
fn time_bound(
    site: &Site,
    field: &str,
    text: Option<&str>,
    end: bool,
) -> Result<Option<i64>, ApiError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let tz: heartbeat_query::TimeZone = site.timezone.parse().unwrap_or_default();
    let range =
        heartbeat_query::resolve_range(None, Some((text, text)), tz, 0, 0).map_err(|_| {
            ApiError::invalid(vec![FieldError::new(
                field,
                format!("{field} must be an ISO 8601 date or date-time"),
            )])
        })?;
    Ok(Some(if end { range.end_ms } else { range.start_ms }))
}

/// The v2 `date_range` for optional start and end dates (default: the last 30 days).
fn date_range(start: Option<&str>, end: Option<&str>) -> Result<Value, ApiError> {
    let day = |field: &str, text: &str| {
        chrono::NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d")
            .map(|d| d.to_string())
            .map_err(|_| {
                ApiError::invalid(vec![FieldError::new(
                    field,
                    format!("{field} must be YYYY-MM-DD"),
                )])
            })
    };
    Ok(match (start, end) {
        (None, None) => json!("30d"),
        (Some(start), Some(end)) => json!([day("startDate", start)?, day("endDate", end)?]),
        (Some(start), None) => json!([
            day("startDate", start)?,
            chrono::Utc::now().format("%Y-%m-%d").to_string()
        ]),
        (None, Some(_)) => {
            return Err(ApiError::invalid(vec![FieldError::new(
                "startDate",
                "startDate is required with endDate",
            )]))
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListParams {
    #[serde(alias = "site_id")]
    site_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    source: Option<String>,
    #[serde(alias = "startDate", alias = "from")]
    start_time: Option<String>,
    #[serde(alias = "endDate", alias = "to")]
    end_time: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[utoipa::path(operation_id = "events_list", get, path = "/api/v1/events", tag = "stats",
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
        ("type" = Option<String>, Query, description = "Event name"),
        ("source" = Option<String>, Query, description = "The `source` property"),
        ("startTime" = Option<String>, Query, description = "From, ISO 8601"),
        ("endTime" = Option<String>, Query, description = "To, ISO 8601"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 50"),
        ("cursor" = Option<String>, Query, description = "`pagination.nextCursor` of the previous page"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 001: `{success, data: [event], pagination: {limit, hasMore, nextCursor}}`, newest first", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn list(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<ListParams>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/api/v1/events", list_answer(app, caller.0, params))
        .await
}

async fn list_answer(
    app: App,
    caller: Caller,
    params: ListParams,
) -> Result<Json<Value>, ApiError> {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let limit = params.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid(vec![FieldError::new(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        )]));
    }
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
            ApiError::invalid(vec![FieldError::new(
                "cursor",
                "not a cursor this API returned",
            )])
        })?),
        None => None,
    };
    let listing = EventListing {
        site_id: site.id.clone(),
        names: params
            .kind
            .into_iter()
            .filter(|k| !k.is_empty())
            .map(|k| heartbeat_ingest::canonical_name(&k))
            .collect(),
        prop: params
            .source
            .filter(|s| !s.is_empty())
            .map(|s| ("source".to_owned(), s)),
        event_id: None,
        start_ms: time_bound(&site, "startTime", params.start_time.as_deref(), false)?,
        end_ms: time_bound(&site, "endTime", params.end_time.as_deref(), true)?,
        limit,
        after,
    };
    if let Some(start_ms) = listing.start_ms {
        let end_ms = listing
            .end_ms
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        app.queries
            .settings
            .bounds
            .check_range("startTime", heartbeat_query::DateRange { start_ms, end_ms })?;
    }
    let page = list_events(&listing, app.store.as_ref()).await?;
    Ok(Json(json!({
        "success": true,
        "data": page.events.iter().map(event_message).collect::<Vec<_>>(),
        "pagination": {
            "limit": limit,
            "hasMore": page.next.is_some(),
            "nextCursor": page.next.map(|c| c.encode()),
        },
    })))
}

#[derive(Deserialize)]
pub(crate) struct SiteParam {
    site_id: Option<String>,
}

#[utoipa::path(operation_id = "events_one", get, path = "/api/v1/events/{id}", tag = "stats",
    params(
        ("id" = String, Path, description = "The event id"),
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 001: `{success, data: event}`", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn one(
    State(app): State<App>,
    caller: RequiredCaller,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<SiteParam>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/api/v1/events/{id}", one_answer(app, caller.0, id, params))
        .await
}

async fn one_answer(
    app: App,
    caller: Caller,
    id: String,
    params: SiteParam,
) -> Result<Json<Value>, ApiError> {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let listing = EventListing {
        event_id: Some(id.clone()),
        ..EventListing::new(site.id, 1)
    };
    let page = list_events(&listing, app.store.as_ref()).await?;
    let event = page
        .events
        .first()
        .ok_or_else(|| ApiError::not_found("id", format!("no event {id}")))?;
    Ok(Json(json!({"success": true, "data": event_message(event)})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RangeParams {
    #[serde(alias = "site_id")]
    site_id: Option<String>,
    #[serde(alias = "startTime")]
    start_date: Option<String>,
    #[serde(alias = "endTime")]
    end_date: Option<String>,
}

/// Event counts by name (seed 001's counts by type), over all time unless a range is given.
#[utoipa::path(operation_id = "events_counts", get, path = "/api/v1/events/counts", tag = "stats",
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
        ("startDate" = Option<String>, Query, description = "First day, YYYY-MM-DD"),
        ("endDate" = Option<String>, Query, description = "Last day, YYYY-MM-DD"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 001: `{success, data: {type: count}}`", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn counts(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<RangeParams>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run(
            "/api/v1/events/counts",
            counts_answer(app, caller.0, params),
        )
        .await
}

async fn counts_answer(
    app: App,
    caller: Caller,
    params: RangeParams,
) -> Result<Json<Value>, ApiError> {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let range = match (params.start_date.as_deref(), params.end_date.as_deref()) {
        (None, None) => json!("all"),
        (start, end) => date_range(start, end)?,
    };
    let query = json!({"site_id": site.id, "metrics": ["events"], "date_range": range,
        "dimensions": ["event:name"], "pagination": {"limit": 10000}});
    let (_, result) = run_query(&app, &caller, &query)
        .await
        .map_err(|err| err.renamed("date_range", "startDate"))?;
    let counts: serde_json::Map<String, Value> = result
        .results
        .iter()
        .map(|row| (row.dimensions[0].clone(), row.metrics[0].clone()))
        .collect();
    Ok(Json(json!({"success": true, "data": counts})))
}

/// Seed 003's summary: totals and the top events with their unique users.
#[utoipa::path(operation_id = "events_summary", get, path = "/api/v1/events/summary", tag = "stats",
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
        ("startDate" = Option<String>, Query, description = "First day, YYYY-MM-DD"),
        ("endDate" = Option<String>, Query, description = "Last day, YYYY-MM-DD"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: {totalEvents, uniqueUsers, sessions, topEvents}}`", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn summary(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<RangeParams>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run(
            "/api/v1/events/summary",
            summary_answer(app, caller.0, params),
        )
        .await
}

async fn summary_answer(
    app: App,
    caller: Caller,
    params: RangeParams,
) -> Result<Json<Value>, ApiError> {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let range = date_range(params.start_date.as_deref(), params.end_date.as_deref())?;
    let totals = json!({"site_id": site.id, "metrics": ["events", "visitors", "visits"], "date_range": range});
    let (query, totals) = run_query(&app, &caller, &totals)
        .await
        .map_err(|err| err.renamed("date_range", "startDate"))?;
    let top = json!({"site_id": site.id, "metrics": ["events", "visitors"], "date_range": range,
        "dimensions": ["event:name"], "order_by": [["events", "desc"]], "pagination": {"limit": 10}});
    let (_, top) = run_query(&app, &caller, &top).await?;
    let first = totals.results.first();
    let metric = |i: usize| first.map_or(json!(0), |row| row.metrics[i].clone());
    Ok(Json(json!({
        "success": true,
        "data": {
            "totalEvents": metric(0),
            "uniqueUsers": metric(1),
            "sessions": metric(2),
            "startDate": iso(query.range.start_ms),
            "endDate": iso(query.range.end_ms - 1),
            "topEvents": top.results.iter().map(|row| json!({
                "eventName": row.dimensions[0], "count": row.metrics[0], "uniqueUsers": row.metrics[1],
            })).collect::<Vec<_>>(),
        },
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetricsParams {
    #[serde(alias = "site_id")]
    site_id: Option<String>,
    event: Option<String>,
    interval: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
}

/// Seed 003's time-bucketed counts and unique users of one event (or all events).
#[utoipa::path(operation_id = "events_metrics", get, path = "/api/v1/metrics", tag = "stats",
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
        ("event" = Option<String>, Query, description = "Event name; default all"),
        ("interval" = Option<String>, Query, description = "hourly, daily, weekly or monthly"),
        ("startDate" = Option<String>, Query, description = "First day, YYYY-MM-DD"),
        ("endDate" = Option<String>, Query, description = "Last day, YYYY-MM-DD"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 003: `{success, data: {event, interval, metrics: [{timestamp, count, uniqueUsers}]}}`", body = Object),
        (status = 400, description = "Invalid parameter", body = crate::routes::docs::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::routes::docs::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::routes::docs::ErrorBody),
        (status = 404, description = "No such site or event", body = crate::routes::docs::ErrorBody),
        (status = 503, description = "Too many reads at once, or over its time budget; retry after `Retry-After`", body = crate::routes::docs::ErrorBody),
    ))]
pub(crate) async fn metrics(
    State(app): State<App>,
    caller: RequiredCaller,
    UrlQuery(params): UrlQuery<MetricsParams>,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/api/v1/metrics", metrics_answer(app, caller.0, params))
        .await
}

async fn metrics_answer(
    app: App,
    caller: Caller,
    params: MetricsParams,
) -> Result<Json<Value>, ApiError> {
    let site: Site = read_site(&app, &caller, params.site_id.as_deref())?;
    let interval = params.interval.as_deref().unwrap_or("daily");
    let dimension = match interval {
        "hourly" | "hour" => "time:hour",
        "daily" | "day" => "time:day",
        "weekly" | "week" => "time:week",
        "monthly" | "month" => "time:month",
        _ => {
            return Err(ApiError::invalid(vec![FieldError::new(
                "interval",
                "interval must be hourly, daily, weekly or monthly",
            )]))
        }
    };
    let range = date_range(params.start_date.as_deref(), params.end_date.as_deref())?;
    let mut query = json!({"site_id": site.id, "metrics": ["events", "visitors"], "date_range": range,
        "dimensions": [dimension], "include": {"time_labels": true}, "pagination": {"limit": 10000}});
    let event = params.event.filter(|e| !e.is_empty());
    if let Some(event) = &event {
        query["filters"] = json!([[
            "is",
            "event:name",
            [heartbeat_ingest::canonical_name(event)]
        ]]);
    }
    let (_, result) = run_query(&app, &caller, &query).await.map_err(|err| {
        err.renamed("date_range", "startDate")
            .renamed("dimensions[0]", "interval")
    })?;
    // Every bucket of the range, empty ones as zeros.
    let data: Vec<Value> = result
        .series(2)
        .into_iter()
        .map(|(label, m)| json!({"timestamp": label, "count": m[0], "uniqueUsers": m[1]}))
        .collect();
    Ok(Json(json!({
        "success": true,
        "data": {"event": event, "interval": interval, "metrics": data},
    })))
}

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/events", get(list))
        .route("/api/v1/events/counts", get(counts))
        .route("/api/v1/events/summary", get(summary))
        .route("/api/v1/events/{id}", get(one))
        .route("/api/v1/metrics", get(metrics))
}
