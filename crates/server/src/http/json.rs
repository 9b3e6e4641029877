//! Small pieces of JSON that many endpoints read or write: timestamps as ISO 8601 text,
//! request bodies that must be objects, optional string fields.

use axum::http::StatusCode;
use heartbeat_ingest::FieldError;
use serde_json::Value;

use crate::http::error::ApiError;

/// UTC milliseconds as RFC 3339 text with milliseconds (`2026-01-15T12:00:00.000Z`).
pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn json_object(body: &[u8]) -> Result<Value, ApiError> {
    let body: Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::new(StatusCode::BAD_REQUEST, "Malformed JSON")
            .with_detail("body", err.to_string())
    })?;
    if !body.is_object() {
        return Err(ApiError::invalid(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    }
    Ok(body)
}

pub(crate) fn optional_string(
    body: &Value,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new(field, format!("{field} must be a string")));
            None
        }
    }
}
