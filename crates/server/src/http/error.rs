//! The one error shape of every endpoint, and the mapping from each layer's error kinds to
//! HTTP status codes. Internal details are logged, never returned.
//!
//! `{"success": false, "error": "Validation failed", "details": [{"field": "site_id",
//! "message": "site_id is required"}]}`

use crate::site_deletion::DeleteSiteError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use heartbeat_ingest::{DecodeError, FieldError, IngestError};
use heartbeat_query::{QueryError, RunError};
use heartbeat_queue::QueueError;
use heartbeat_store::StoreError;
use serde_json::json;

use heartbeat_accounts::registry::RegistryError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub details: Vec<FieldError>,
    /// Seconds, for 429 and 503.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            details: Vec::new(),
            retry_after_s: None,
        }
    }

    pub fn with_detail(mut self, field: &str, message: impl Into<String>) -> Self {
        self.details.push(FieldError::new(field, message));
        self
    }

    pub fn invalid(details: Vec<FieldError>) -> Self {
        ApiError {
            details,
            ..ApiError::new(StatusCode::BAD_REQUEST, "Validation failed")
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized").with_detail(
            "x-api-key",
            "a valid API key is required (x-api-key or Authorization: Bearer)",
        )
    }

    pub fn forbidden(site: &str) -> Self {
        ApiError::forbidden_as("site_id", site)
    }

    /// The 403 for a site named under the client's own `field` (`projectId`, `[2].site_id`).
    pub fn forbidden_as(field: &str, site: &str) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "Forbidden")
            .with_detail(field, format!("this key may not use site {site}"))
    }

    pub fn not_found(field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "Not found").with_detail(field, message)
    }

    /// The same error naming `to` where it named `from`: for endpoints whose parameters
    /// are translated into a v2 query, so the client hears of the parameter it sent.
    pub fn renamed(mut self, from: &str, to: &str) -> Self {
        for detail in &mut self.details {
            if detail.field == from {
                detail.field = to.to_owned();
            }
        }
        self
    }

    pub fn internal() -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"success": false, "error": self.error, "details": self.details});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<DecodeError> for ApiError {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::Json(message) => ApiError::new(StatusCode::BAD_REQUEST, "Malformed JSON")
                .with_detail("body", message),
            DecodeError::TooMany { len, limit } => ApiError::invalid(vec![FieldError::new(
                "body",
                format!("a batch holds at most {limit} events, got {len}"),
            )]),
            DecodeError::Empty => {
                ApiError::invalid(vec![FieldError::new("body", "the batch is empty")])
            }
            DecodeError::Invalid(details) => ApiError::invalid(details),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        match err {
            QueueError::Full { .. } => ApiError {
                retry_after_s: Some(1),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Queue full")
                    .with_detail("body", "the server is catching up; retry shortly")
            },
            QueueError::RecordTooLarge { limit, .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large")
                    .with_detail("body", format!("at most {limit} bytes"))
            }
            QueueError::EmptyRecord => {
                ApiError::invalid(vec![FieldError::new("body", "no events")])
            }
            QueueError::Closed => ApiError {
                retry_after_s: Some(5),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Shutting down")
            },
            QueueError::Io { .. } | QueueError::Unavailable { .. } => {
                tracing::error!(error = %err, "enqueue failed");
                ApiError {
                    retry_after_s: Some(5),
                    ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Queue unavailable")
                }
            }
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::Decode(err) => err.into(),
            IngestError::Invalid(details) => ApiError::invalid(details),
            IngestError::UnknownSite { field, value } => {
                ApiError::not_found(&field, format!("no site matches {value:?}"))
            }
            IngestError::MissingKey => ApiError::unauthorized(),
            IngestError::Forbidden { site, field } => ApiError::forbidden_as(&field, site.as_str()),
            IngestError::Queue(err) => err.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, err.summary()).with_detail(&err.field, err.message)
    }
}

/// Every bad field of a request at once (product analytics' requests name them all).
impl From<Vec<QueryError>> for ApiError {
    fn from(errors: Vec<QueryError>) -> Self {
        ApiError::invalid(
            errors
                .into_iter()
                .map(|err| FieldError::new(&err.field, err.message))
                .collect(),
        )
    }
}

/// The `error` of a read whose rows are over the memory budget.
pub const QUERY_TOO_LARGE: &str = "Query too large";

impl From<RunError> for ApiError {
    fn from(err: RunError) -> Self {
        match err {
            RunError::TooLarge { limit_bytes } => {
                ApiError::new(StatusCode::BAD_REQUEST, QUERY_TOO_LARGE).with_detail(
                    "dimensions",
                    format!(
                    "the answer's rows need more than {} MiB (setting query.max_memory_bytes); \
                     add filters, a shorter date range or fewer dimensions",
                    limit_bytes / (1024 * 1024)
                ),
                )
            }
            // The work, not the answer, needs more than the store's memory (a funnel, path or
            // breakdown over millions of people): the same 400, naming that setting.
            // The engine's own words go to the log, for an operator sizing the setting.
            RunError::OutOfMemory { message } => {
                tracing::info!(error = %message, "a query needed more memory than the store may use");
                ApiError::new(StatusCode::BAD_REQUEST, QUERY_TOO_LARGE).with_detail(
                    "date_range",
                    "the query needs more memory than the store may use (setting \
                     store.memory_limit); add filters or a shorter date range",
                )
            }
            RunError::Interrupted => ApiError {
                retry_after_s: Some(5),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Query interrupted")
                    .with_detail("query", "the store stopped the query; retry shortly")
            },
            RunError::Failed { .. } => {
                tracing::error!(error = %err, "query failed");
                ApiError::internal()
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { what } => ApiError::new(StatusCode::CONFLICT, "Conflict")
                .with_detail("site_id", format!("{what} already exists")),
            other => {
                tracing::error!(error = %other, "store call failed");
                ApiError {
                    retry_after_s: Some(5),
                    ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable")
                }
            }
        }
    }
}

pub fn registry_error(err: RegistryError) -> ApiError {
    match err {
        RegistryError::Invalid { field, message } => {
            ApiError::invalid(vec![FieldError::new(field, message)])
        }
        RegistryError::NotFound(id) => ApiError::not_found("site_id", format!("no site {id}")),
        RegistryError::Missing { field, message } => ApiError::not_found(field, message),
        RegistryError::Conflict(message) => {
            ApiError::new(StatusCode::CONFLICT, "Conflict").with_detail("body", message)
        }
        RegistryError::Store(err) => err.into(),
    }
}

impl From<DeleteSiteError> for ApiError {
    fn from(err: DeleteSiteError) -> Self {
        match err {
            DeleteSiteError::Registry(err) => registry_error(err),
            DeleteSiteError::Queue(err) => err.into(),
            DeleteSiteError::Store(err) => err.into(),
            DeleteSiteError::Encode(err) => {
                tracing::error!(error = %err, "cannot encode a site deletion");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
        }
    }
}
