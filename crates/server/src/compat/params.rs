//! Query-string parameters the seeds' read endpoints share, and their translation into the
//! v2 query's terms (so every seed reads through the one engine).

use heartbeat_ingest::FieldError;
use heartbeat_query::MAX_PAGE;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

use crate::http::error::ApiError;

/// A site, a date range preset and a row limit: seeds 000 and 004 and Plausible's realtime.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Params {
    /// The site (also `siteId`); default: the key's own site.
    #[serde(alias = "siteId")]
    pub site_id: Option<String>,
    /// A v2 preset (`day`, `7d`, `30d`, `month`, ...; default `30d`), or `24h` (hourly);
    /// also `period`.
    #[serde(alias = "period")]
    pub range: Option<String>,
    /// Rows, 1 to 1,000 (default 10 for pages, 20 for recent events).
    pub limit: Option<usize>,
}

pub(crate) fn preset(params: &Params) -> String {
    params
        .range
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "30d".to_owned())
}

/// `limit`, 1 to [`MAX_PAGE`] rows (`default` without one).
pub(crate) fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match limit.unwrap_or(default) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(ApiError::invalid(vec![FieldError::new(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        )])),
    }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A site and optional first and last days: seeds 001 and 003.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RangeParams {
    /// The site (also `site_id`); default: the key's own site.
    #[serde(alias = "site_id")]
    pub site_id: Option<String>,
    /// First day, YYYY-MM-DD (also `startTime`).
    #[serde(alias = "startTime")]
    pub start_date: Option<String>,
    /// Last day, YYYY-MM-DD (also `endTime`).
    #[serde(alias = "endTime")]
    pub end_date: Option<String>,
}

/// The v2 `date_range` for optional start and end dates (default: the last 30 days); a bad
/// start and a bad end are both named.
pub(crate) fn date_range(start: Option<&str>, end: Option<&str>) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let mut day = |field: &str, text: &str| match chrono::NaiveDate::parse_from_str(
        text.get(..10).unwrap_or(text),
        "%Y-%m-%d",
    ) {
        Ok(day) => day.to_string(),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                format!("{field} must be YYYY-MM-DD"),
            ));
            String::new()
        }
    };
    let start_day = start.map(|text| day("startDate", text));
    let end_day = end.map(|text| day("endDate", text));
    if start.is_none() && end.is_some() {
        errors.push(FieldError::new(
            "startDate",
            "startDate is required with endDate",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok(match (start_day, end_day) {
        (Some(start), Some(end)) => json!([start, end]),
        (Some(start), None) => json!([start, chrono::Utc::now().format("%Y-%m-%d").to_string()]),
        _ => json!("30d"),
    })
}
