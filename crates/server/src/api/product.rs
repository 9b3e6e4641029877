//! Product analytics in the v2 query's terms (`site_id`, `date_range`, `filters`):
//! `POST /api/v2/retention` (cohorts returning over time), `POST /api/v2/paths` (where
//! visits go from a page, or came from) and `POST /api/v2/journey` (one person's events by
//! visit). The semantics are the query crate's (`retention.rs`, `paths.rs`, `journey.rs`);
//! these handlers read the body, check the caller may read the site and write the answer.
//! Every bad field is named at once.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use heartbeat_model::Site;
use heartbeat_query::{
    journey, parse_journey, parse_paths, parse_retention, paths, requested_site, retention,
    DateRange, Journey, Person,
};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::error::ApiError;
use crate::http::json::{iso, json_object};
use crate::http::reads::{read_site, read_times};
use crate::http::state::{App, Caller, Payload, RequiredCaller};

/// A retention request.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"site_id": "example.com", "date_range": ["2024-01-01", "2024-02-29"], "period": "week", "periods": 8, "cohort_event": "signup"}))]
pub struct RetentionRequest {
    pub site_id: String,
    /// People entering in this range make the cohorts: a v2 preset or two ISO dates.
    pub date_range: Option<Value>,
    /// `day` (default), `week` (ISO, from Monday) or `month`, in the site's time zone.
    pub period: Option<String>,
    /// Periods after the cohort's own: 1 to 90 days, 52 weeks or 24 months (default 7).
    pub periods: Option<u32>,
    /// Enter at the first time of this event; default: at the first event (first seen).
    pub cohort_event: Option<String>,
    /// Return by this event; default: by any event.
    pub return_event: Option<String>,
    /// v2 filters on the events read.
    pub filters: Option<Vec<Value>>,
}

/// A paths request.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"site_id": "example.com", "date_range": "30d", "page": "/pricing", "direction": "forward", "depth": 3, "limit": 5}))]
pub struct PathsRequest {
    pub site_id: String,
    pub date_range: Option<Value>,
    /// Start at the first view of this page in each visit ...
    pub page: Option<String>,
    /// ... or at the first event of this name; with neither, at the entry (exit) page.
    pub event: Option<String>,
    /// `forward` (the next pages, default) or `backward` (the pages before).
    pub direction: Option<String>,
    /// Steps, 1 to 5 (default 3).
    pub depth: Option<u32>,
    /// Pages kept by name per step (the rest folded into `(other)`), and full paths: 1 to
    /// 50 (default 10).
    pub limit: Option<u32>,
    /// v2 filters: visits with an event that passes them.
    pub filters: Option<Vec<Value>>,
}

/// A journey request: `user_id` or `visitor_id`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"site_id": "example.com", "user_id": "user-42", "date_range": "30d"}))]
pub struct JourneyRequest {
    pub site_id: String,
    /// A client-given user id ...
    pub user_id: Option<String>,
    /// ... or a visitor id (a number, or its digits as a string).
    pub visitor_id: Option<Value>,
    pub date_range: Option<Value>,
    /// Events listed, 1 to 1000 (default 1000); `truncated` says there were more.
    pub limit: Option<u32>,
}

/// The site `body` names, which the caller must be allowed to read; now; and where the
/// `all` range starts.
async fn site_of(app: &App, caller: &Caller, body: &Value) -> Result<(Site, i64, i64), ApiError> {
    let site_id = requested_site(body)?;
    let site = read_site(app, caller, Some(site_id.as_str()))?;
    let (now, first_event) = read_times(app, &site, body).await?;
    Ok((site, now, first_event))
}

/// Cohort retention: for each cohort of people who entered in the range (first seen, or
/// first did `cohort_event`), how many came back in each of the next `periods` periods.
#[utoipa::path(post, path = "/api/v2/retention", tag = "stats",
    request_body = RetentionRequest,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{period, periods, cohort_event, return_event, date_range, cohorts: [{cohort, size, returning, percentages}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn v2_retention(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/api/v2/retention", async move {
            let body = json_object(&body)?;
            let (site, now, first_event) = site_of(&app, &caller.0, &body).await?;
            let bounds = app.queries.settings.bounds();
            let query = parse_retention(&body, &site, now, first_event, &bounds)?;
            let reads = app.reads.as_ref();
            let answer = app
                .query_cache
                .answer(&site.id, &query, reads, || retention(&query, reads))
                .await?;
            Ok(Json(with_range(json!(answer), query.range)))
        })
        .await
}

/// Paths: the most common next (or previous) pages from a page, step by step, with
/// drop-offs (a Sankey chart's nodes and edges), and the most common full paths.
#[utoipa::path(post, path = "/api/v2/paths", tag = "stats",
    request_body = PathsRequest,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{direction, depth, date_range, nodes: [{step, name, visitors, dropoffs}], edges: [{step, from, to, visitors}], paths: [{pages, visitors}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn v2_paths(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/api/v2/paths", async move {
            let body = json_object(&body)?;
            let (site, now, first_event) = site_of(&app, &caller.0, &body).await?;
            let bounds = app.queries.settings.bounds();
            let query = parse_paths(&body, &site, now, first_event, &bounds)?;
            let reads = app.reads.as_ref();
            let answer = app
                .query_cache
                .answer(&site.id, &query, reads, || paths(&query, reads))
                .await?;
            Ok(Json(with_range(json!(answer), query.range)))
        })
        .await
}

/// One person's journey: their events in time order, grouped into visits.
#[utoipa::path(post, path = "/api/v2/journey", tag = "stats",
    request_body = JourneyRequest,
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{user_id | visitor_id, total_events, truncated, visits: [{visit_id, start, end, duration_s, source, device, browser, country, entry_page, exit_page, events: [{event_id, name, timestamp, page, props}]}]}`", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn v2_journey(
    State(app): State<App>,
    caller: RequiredCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let queries = app.queries.clone();
    queries
        .run("/api/v2/journey", async move {
            let body = json_object(&body)?;
            let (site, now, first_event) = site_of(&app, &caller.0, &body).await?;
            let bounds = app.queries.settings.bounds();
            let query = parse_journey(&body, &site, now, first_event, &bounds)?;
            let (field, who) = match &query.person {
                Person::User(user) => ("user_id", json!(user)),
                Person::Visitor(visitor) => ("visitor_id", json!(visitor.to_string())),
            };
            let found = journey(&query, app.reads.as_ref()).await?;
            let journey = found.ok_or_else(|| {
                ApiError::not_found(field, format!("no events of {field} {who} on this site"))
            })?;
            let mut answer = journey_json(&journey);
            answer[field] = who;
            Ok(Json(with_range(answer, query.range)))
        })
        .await
}

/// `answer` with the range it covers: its first and last instant (UTC), as v2 echoes it.
fn with_range(mut answer: Value, range: DateRange) -> Value {
    answer["date_range"] = json!([iso(range.start_ms), iso(range.end_ms - 1)]);
    answer
}

fn journey_json(journey: &Journey) -> Value {
    let visits: Vec<Value> = journey
        .visits
        .iter()
        .map(|visit| {
            json!({
                "visit_id": visit.visit_id,
                "start": iso(visit.start_ms),
                "end": iso(visit.end_ms),
                "duration_s": visit.duration_s(),
                "events_count": visit.event_count,
                "pageviews": visit.pageviews,
                "source": visit.source,
                "channel": visit.channel,
                "device": visit.device,
                "browser": visit.browser,
                "os": visit.os,
                "country": visit.country,
                "entry_page": visit.entry_page,
                "exit_page": visit.exit_page,
                "events": visit.events.iter().map(|event| json!({
                    "event_id": event.event_id,
                    "name": event.name,
                    "timestamp": iso(event.timestamp_ms),
                    "page": event.pathname,
                    "props": event.props,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "total_events": journey.total_events,
        "truncated": journey.truncated,
        "visits": visits,
    })
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(v2_retention))
        .routes(routes!(v2_paths))
        .routes(routes!(v2_journey))
}
