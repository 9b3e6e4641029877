//! Seed 001 (the analytics service): `GET /api/v1/events` (filter by type, source and time;
//! cursor pages), `GET /api/v1/events/{id}` and `GET /api/v1/events/counts`, on the same
//! engine as `/api/v2/query`.

use axum::extract::Path;
use axum::response::Response;
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_model::Site;
use heartbeat_query::{list_events, Cursor, EventListing, MAX_PAGE};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::compat::params::{date_range, RangeParams};
use crate::event_json::seed001_message;
use crate::http::error::ApiError;
use crate::http::reads::{read_site, run_query, Answer, PooledRead};
use crate::http::state::{App, Caller};

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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListParams {
    /// The site (also `site_id`); default: the key's own site.
    #[serde(alias = "site_id")]
    site_id: Option<String>,
    /// Event name.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// The `source` property.
    source: Option<String>,
    /// From, ISO 8601 (also `startDate`, `from`).
    #[serde(alias = "startDate", alias = "from")]
    start_time: Option<String>,
    /// To, ISO 8601 (also `endDate`, `to`).
    #[serde(alias = "endDate", alias = "to")]
    end_time: Option<String>,
    /// Events per page, 1 to 1,000 (default 100).
    limit: Option<usize>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(operation_id = "events_list", get, path = "/api/v1/events", tag = "stats",
    params(ListParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 001: `{success, data: [event], pagination: {limit, hasMore, nextCursor}}`, newest first", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn list(read: PooledRead<ListParams>) -> Result<Response, ApiError> {
    read.answer(list_answer).await
}

async fn list_answer(app: App, caller: Caller, params: ListParams) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    // Every bad parameter is named at once.
    let mut errors = Vec::new();
    let limit = params.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        errors.push(FieldError::new(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let after = params
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .and_then(|text| {
            let cursor = Cursor::decode(text);
            if cursor.is_none() {
                errors.push(FieldError::new("cursor", "not a cursor this API returned"));
            }
            cursor
        });
    let mut bound = |field: &str, text: Option<&str>, end: bool| {
        time_bound(&site, field, text, end).unwrap_or_else(|err| {
            errors.extend(err.details);
            None
        })
    };
    let start_ms = bound("startTime", params.start_time.as_deref(), false);
    let end_ms = bound("endTime", params.end_time.as_deref(), true);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
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
        start_ms,
        end_ms,
        limit,
        after,
    };
    if let Some(start_ms) = listing.start_ms {
        let end_ms = listing
            .end_ms
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        app.queries
            .settings
            .bounds()
            .check_range("startTime", heartbeat_query::DateRange { start_ms, end_ms })?;
    }
    let page = list_events(&listing, app.reads.as_ref()).await?;
    Ok(Json(json!({
        "success": true,
        "data": page.events.iter().map(seed001_message).collect::<Vec<_>>(),
        "pagination": {
            "limit": limit,
            "hasMore": page.next.is_some(),
            "nextCursor": page.next.map(|c| c.encode()),
        },
    })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SiteParam {
    /// The site; default: the key's own site.
    site_id: Option<String>,
}

#[utoipa::path(operation_id = "events_one", get, path = "/api/v1/events/{id}", tag = "stats",
    params(("id" = String, Path, description = "The event id"), SiteParam),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 001: `{success, data: event}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn one(
    Path(id): Path<String>,
    read: PooledRead<SiteParam>,
) -> Result<Response, ApiError> {
    read.answer(|app, caller, params| one_answer(app, caller, id, params))
        .await
}

async fn one_answer(app: App, caller: Caller, id: String, params: SiteParam) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let listing = EventListing {
        event_id: Some(id.clone()),
        ..EventListing::new(site.id, 1)
    };
    let page = list_events(&listing, app.reads.as_ref()).await?;
    let event = page
        .events
        .first()
        .ok_or_else(|| ApiError::not_found("id", format!("no event {id}")))?;
    Ok(Json(
        json!({"success": true, "data": seed001_message(event)}),
    ))
}

/// Event counts by name (seed 001's counts by type), over all time unless a range is given.
#[utoipa::path(operation_id = "events_counts", get, path = "/api/v1/events/counts", tag = "stats",
    params(RangeParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 001: `{success, data: {type: count}}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn counts(read: PooledRead<RangeParams>) -> Result<Response, ApiError> {
    read.answer(counts_answer).await
}

async fn counts_answer(app: App, caller: Caller, params: RangeParams) -> Answer {
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

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(counts))
        .routes(routes!(one))
}
