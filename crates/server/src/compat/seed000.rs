//! Seed 000 (the original Heartbeat): `GET /analytics/metrics?siteId=&startDate=&endDate=
//! &dimensions=`, in the original's shape: `timeRange`, a daily series of `metrics` (each
//! day's `segments` for the requested dimensions: `device`, `location`, `page`) and the
//! period's `aggregated` figures, computed by the one engine. Heartbeat's own summary of the
//! range (`visitors`, `visits`, `currentVisitors`, ...) stays beside them.

use std::collections::BTreeMap;

use axum::response::Response;
use axum::Json;
use heartbeat_ingest::FieldError;
use heartbeat_query::{current_visitors, QueryResult};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::compat::params::{date_range, now_ms};
use crate::http::error::ApiError;
use crate::http::json::iso;
use crate::http::reads::{read_site, run_query, Answer, PooledRead};
use crate::http::state::{App, Caller};

/// The original's parameters, and Heartbeat's `range` preset.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MetricsParams {
    /// The site (also `site_id`); default: the key's own site.
    #[serde(rename = "siteId", alias = "site_id")]
    pub site_id: Option<String>,
    /// First day, ISO 8601 (the original's `startDate`); with `endDate`.
    #[serde(rename = "startDate")]
    pub start_date: Option<String>,
    /// Last day, ISO 8601.
    #[serde(rename = "endDate")]
    pub end_date: Option<String>,
    /// Without dates: a v2 preset (`day`, `7d`, `30d`, ...; default `30d`); also `period`.
    #[serde(alias = "period")]
    pub range: Option<String>,
    /// Segments to add to each day: `device`, `location`, `page`, comma-separated or the key
    /// repeated (`dimensions=device&dimensions=page`), as the original takes them.
    pub dimensions: Option<String>,
}

/// Seed 000: the site's metrics by day, with segments, and over the whole range.
#[utoipa::path(operation_id = "analytics_site_metrics", get, path = "/analytics/metrics", tag = "stats",
    params(MetricsParams),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Seed 000: `timeRange`, `metrics` (per day: `timestamp`, `metrics`, `segments`), `aggregated`; and Heartbeat's visitors, visits, pageviews, bounceRate, visitDuration, viewsPerVisit, currentVisitors", body = Object),
        crate::http::schema::ReadRefusals,
    ))]
pub(crate) async fn site_metrics(read: PooledRead<MetricsParams>) -> Result<Response, ApiError> {
    read.answer(site_metrics_answer).await
}

/// The original's five figures, from v2 metrics `pageviews, visitors, visits, bounce_rate,
/// visit_duration` in that order.
const FIGURES: [&str; 5] = [
    "pageviews",
    "uniqueVisitors",
    "totalSessions",
    "bounceRate",
    "avgSessionDuration",
];
const FIGURE_METRICS: [&str; 5] = [
    "pageviews",
    "visitors",
    "visits",
    "bounce_rate",
    "visit_duration",
];

fn named(names: &[&str], values: &[Value]) -> Value {
    Value::Object(
        names
            .iter()
            .zip(values)
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
    )
}

/// One segment dimension: its v2 dimension, metrics and the original's names for them.
struct Segment {
    name: &'static str,
    dimension: &'static str,
    metrics: &'static [&'static str],
    figures: &'static [&'static str],
}

static SEGMENTS: [Segment; 3] = [
    Segment {
        name: "device",
        dimension: "visit:device",
        metrics: &["visitors", "visits", "visit_duration"],
        figures: &["uniqueVisitors", "totalSessions", "avgSessionDuration"],
    },
    Segment {
        name: "location",
        dimension: "visit:country",
        metrics: &["visitors", "visits", "visit_duration"],
        figures: &["uniqueVisitors", "totalSessions", "avgSessionDuration"],
    },
    Segment {
        name: "page",
        dimension: "event:page",
        metrics: &["pageviews", "visitors", "visits", "time_on_page"],
        figures: &[
            "pageviews",
            "uniqueVisitors",
            "totalSessions",
            "avgTimeOnPage",
        ],
    },
];

/// Each day's segment values: day label -> value -> figures.
type DaySegments = BTreeMap<String, Map<String, Value>>;

fn segment_days(segment: &Segment, result: &QueryResult) -> DaySegments {
    let mut days = DaySegments::new();
    for row in &result.results {
        let value = match segment.name {
            // The original's device types.
            "device" => row.dimensions[1].to_lowercase(),
            _ => row.dimensions[1].clone(),
        };
        if value.is_empty() {
            continue;
        }
        days.entry(row.dimensions[0].clone())
            .or_default()
            .insert(value, named(segment.figures, &row.metrics));
    }
    days
}

/// The segments `list` names (repeated keys arrive joined by commas), each once, in the
/// original's order; every unknown name is an error.
fn segments(list: &str) -> Result<Vec<&'static Segment>, ApiError> {
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let errors: Vec<FieldError> = names
        .iter()
        .filter(|name| !SEGMENTS.iter().any(|s| s.name == **name))
        .map(|name| {
            FieldError::new(
                "dimensions",
                format!("unknown dimension {name:?}: device, location or page"),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok(SEGMENTS
        .iter()
        .filter(|s| names.contains(&s.name))
        .collect())
}

async fn site_metrics_answer(app: App, caller: Caller, params: MetricsParams) -> Answer {
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let range = match (&params.start_date, &params.end_date) {
        (None, None) => json!(params
            .range
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "30d".to_owned())),
        (start, end) => date_range(start.as_deref(), end.as_deref())?,
    };
    let segments = segments(params.dimensions.as_deref().unwrap_or(""))?;
    let query = |metrics: &[&str], dimensions: &[&str]| {
        json!({"site_id": site.id, "date_range": range, "metrics": metrics,
            "dimensions": dimensions, "include": {"time_labels": !dimensions.is_empty()},
            "pagination": {"limit": 10_000}})
    };
    let dated = params.start_date.is_some() || params.end_date.is_some();
    let renamed =
        |err: ApiError| err.renamed("date_range", if dated { "startDate" } else { "range" });
    let summary = json!({"site_id": site.id, "date_range": range,
        "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "views_per_visit"]});
    let (resolved, total) = run_query(&app, &caller, &summary).await.map_err(renamed)?;
    let (_, days) = run_query(&app, &caller, &query(&FIGURE_METRICS, &["time:day"]))
        .await
        .map_err(renamed)?;
    let mut by_segment = Vec::new();
    for segment in &segments {
        let (_, result) = run_query(
            &app,
            &caller,
            &query(segment.metrics, &["time:day", segment.dimension]),
        )
        .await
        .map_err(renamed)?;
        by_segment.push((segment, segment_days(segment, &result)));
    }
    let series: Vec<Value> = days
        .series(FIGURES.len())
        .into_iter()
        .map(|(day, values)| {
            let mut entry = json!({"timestamp": format!("{day}T00:00:00"), "metrics": named(&FIGURES, &values)});
            if !by_segment.is_empty() {
                let mut segments = Map::new();
                for (segment, days) in &by_segment {
                    let mut values = days.get(day).cloned().unwrap_or_default();
                    if segment.name == "device" {
                        for device in ["mobile", "tablet", "desktop"] {
                            values.entry(device).or_insert_with(|| {
                                named(segment.figures, &vec![json!(0); segment.figures.len()])
                            });
                        }
                    }
                    segments.insert(segment.name.to_owned(), Value::Object(values));
                }
                entry["segments"] = Value::Object(segments);
            }
            entry
        })
        .collect();
    let m = &total.results[0].metrics;
    let start = iso(resolved.range.start_ms);
    let end = iso(resolved.range.end_ms - 1);
    Ok(Json(json!({
        "timeRange": {"start": start, "end": end},
        "metrics": series,
        "aggregated": {"pageviews": m[2], "uniqueVisitors": m[0], "totalSessions": m[1],
            "bounceRate": m[3], "avgSessionDuration": m[4]},
        "siteId": site.id,
        "range": {"from": start, "to": end},
        "visitors": m[0], "visits": m[1], "pageviews": m[2], "bounceRate": m[3],
        "visitDuration": m[4], "viewsPerVisit": m[5],
        "currentVisitors": current_visitors(&site.id, now_ms(), app.reads.as_ref()).await?,
    })))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(site_metrics))
}
