//! The shapes of request and response bodies as the OpenAPI document shows them. The
//! decoders in `heartbeat-ingest` and the handlers remain the one source of truth of what is
//! accepted; these types only describe it for readers.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// The one error shape of every endpoint.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": false, "error": "Validation failed", "details": [{"field": "site_id", "message": "site_id is required"}]}))]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    /// What kind of failure: `Validation failed`, `Unauthorized`, `Forbidden`, `Not found`,
    /// `Payload too large`, `Queue full`, ...
    pub error: String,
    /// One entry per bad field.
    pub details: Vec<FieldErrorBody>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub message: String,
}

/// `{"success": true, "accepted": N}`: the events are durable in the queue.
#[derive(Serialize, ToSchema)]
pub struct AcceptedBody {
    pub success: bool,
    /// How many events the request carried.
    pub accepted: u64,
}

/// Plausible's Events API payload (short or long field names), or seed 002's keyed event
/// (`site_id`, `event_type`, `path`, `user_id`, `timestamp`, with `x-api-key`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"n": "pageview", "u": "https://example.com/pricing", "d": "example.com", "r": "https://news.ycombinator.com/"}))]
pub struct PlausibleEvent {
    /// Event name (`n`): `pageview` or a custom name.
    pub name: Option<String>,
    /// Page URL (`u`).
    pub url: Option<String>,
    /// The site's domain (`d`); comma-separated domains go to the first.
    pub domain: Option<String>,
    /// Referrer (`r`).
    pub referrer: Option<String>,
    /// Custom properties (`p`), an object or its JSON text.
    pub props: Option<BTreeMap<String, serde_json::Value>>,
    /// `{"amount": "19.99", "currency": "EUR"}`.
    pub revenue: Option<serde_json::Value>,
    /// Whether a custom event counts as an interaction (`i`, default true).
    pub interactive: Option<bool>,
    /// Hash-based routing (`h`).
    #[serde(rename = "hashMode")]
    pub hash_mode: Option<bool>,
}

/// Seed 000's tracker event, as the original Heartbeat's tracker sends it. A new
/// `session_id` starts a new visit; `metadata` becomes the event's properties.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"event_type": "pageview", "visitor_id": "v-1", "session_id": "s-1", "domain": "example.com", "page_url": "https://example.com/home", "referrer_url": "https://google.com", "browserLanguage": "en-US", "screen_size": "1920x1080", "metadata": {"theme": "dark"}}))]
pub struct TrackerEvent {
    pub event_type: String,
    pub visitor_id: Option<String>,
    pub session_id: Option<String>,
    /// Default: when received.
    pub timestamp: Option<String>,
    pub domain: String,
    /// The page (absolute URL or path); also read as `url` or `path`.
    pub page_url: Option<String>,
    /// Also read as `referrer`.
    pub referrer_url: Option<String>,
    /// Stored as the property `language`.
    #[serde(rename = "browserLanguage")]
    pub browser_language: Option<String>,
    pub screen_size: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

/// Seed 004's event.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"event_type": "PAGE_VIEW", "user_id": "user_101", "session_id": "sess_1", "page_url": "/pricing", "metadata": {"device": "mobile"}}))]
pub struct RealtimeEvent {
    /// `PAGE_VIEW`, `BUTTON_CLICK`, `SESSION_START`, `PURCHASE` or a custom name.
    pub event_type: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub page_url: Option<String>,
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
}

/// Seed 003's event (`userId`, `eventName`, ...) or seed 001's (`id`, `type`, `data`, ...),
/// alone or as an array of up to 1,000.
#[derive(Serialize, ToSchema)]
#[schema(example = json!([{"userId": "user-3", "eventName": "button_click", "timestamp": "2026-01-15T12:00:00Z", "properties": {"pageUrl": "/pricing"}}]))]
pub struct V1Event {
    #[serde(rename = "userId")]
    pub user_id: Option<String>,
    #[serde(rename = "eventName")]
    pub event_name: Option<String>,
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
    /// Seed 001: the client's event id (deduplicated).
    pub id: Option<String>,
    /// Seed 001: the event type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub data: Option<BTreeMap<String, serde_json::Value>>,
    pub timestamp: Option<String>,
    pub source: Option<String>,
    #[serde(rename = "correlationId")]
    pub correlation_id: Option<String>,
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
}

/// Seed 001's batch: `{"events": [...]}`.
#[derive(Serialize, ToSchema)]
pub struct V1Batch {
    pub events: Vec<V1Event>,
}

/// Plausible's Stats API v2 query.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"site_id": "example.com", "metrics": ["visitors", "pageviews"], "date_range": "7d", "dimensions": ["event:page"]}))]
pub struct QueryRequest {
    pub site_id: String,
    /// `visitors`, `visits`, `pageviews`, `events`, `views_per_visit`, `bounce_rate`,
    /// `visit_duration`, `time_on_page`, `percentage`, `exit_rate` (by `visit:exit_page`).
    pub metrics: Vec<String>,
    /// A period (`day`, `7d`, `30d`, `month`, `all`, ...) or two ISO dates.
    pub date_range: serde_json::Value,
    pub dimensions: Option<Vec<String>>,
    pub filters: Option<Vec<serde_json::Value>>,
    pub order_by: Option<Vec<serde_json::Value>>,
    pub pagination: Option<serde_json::Value>,
    pub include: Option<serde_json::Value>,
}

/// `POST /api/v2/funnel`: a funnel inline (or a saved one by `funnel_id`) over v2's site,
/// range and filters.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"site_id": "example.com", "date_range": "30d",
    "steps": [{"page": "/pricing"}, {"event": "signup", "props": {"plan": "pro"}}],
    "window": {"seconds": 3600}, "order": "ordered", "breakdown": "visit:source",
    "filters": [["is", "visit:country", ["DE"]]]}))]
pub struct FunnelRequest {
    pub site_id: String,
    /// A period (`day`, `7d`, `30d`, `month`, `all`, ...) or two ISO dates, in the site's
    /// time zone; every step falls inside it.
    pub date_range: Option<serde_json::Value>,
    /// v2 filters: the event that starts an attempt must pass them.
    pub filters: Option<Vec<serde_json::Value>>,
    /// 2 to 8: `{"page": "/blog/*"}` (`*` within a segment, `**` across) or
    /// `{"event": "signup"}`, each with optional `props` (`{"plan": "pro"}`) and `label`.
    pub steps: Option<Vec<serde_json::Value>>,
    /// A saved funnel of the site instead of `steps`, `window` and `order`.
    pub funnel_id: Option<String>,
    /// `{"visit": true}` (default: one visit) or `{"seconds": n}`, 1 s to 90 days.
    pub window: Option<serde_json::Value>,
    /// `strict`, `ordered` (default) or `any`.
    pub order: Option<String>,
    /// One visit dimension (`visit:source`, `visit:country`, `visit:device`, ...).
    pub breakdown: Option<String>,
}

/// A funnel to save: its name and definition, as in `POST /api/v2/funnel`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "Signup", "steps": [{"page": "/pricing"}, {"event": "signup"}],
    "window": {"seconds": 86400}, "order": "ordered"}))]
pub struct FunnelBody {
    pub name: String,
    pub steps: Vec<serde_json::Value>,
    pub window: Option<serde_json::Value>,
    pub order: Option<String>,
}

/// Seed 003's funnel: `eventName` (`page_view` for a page, `filters.pageUrl` its page),
/// `filters` (properties and their values), `timeWindow` (seconds; the largest is the
/// funnel's window, none: one visit).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "E-commerce Funnel", "steps": [{"eventName": "page_view", "filters": {"pageUrl": "/pricing"}},
    {"eventName": "add_to_cart"}, {"eventName": "purchase", "filters": {"plan": "pro"}, "timeWindow": 86400}]}))]
pub struct SeedFunnelBody {
    pub name: String,
    pub steps: Vec<serde_json::Value>,
}

/// A site as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct SiteBody {
    pub site_id: String,
    /// The organisation holding the site (`default` unless created with `org_id`).
    pub org_id: String,
    pub name: String,
    pub domain: String,
    pub timezone: String,
    /// Days events are kept; absent: forever.
    pub retention_days: Option<u32>,
}

/// `GET /api/sites`.
#[derive(Serialize, ToSchema)]
pub struct SitesBody {
    pub success: bool,
    pub sites: Vec<SiteBody>,
}

/// `PUT /api/sites/{site_id}`: only the fields given change.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"retention_days": 30}))]
pub struct SiteChangesBody {
    pub name: Option<String>,
    pub timezone: Option<String>,
    /// Days events are kept (1 to 36500); null: forever.
    pub retention_days: Option<u32>,
}

/// `POST /api/site/create`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "My site", "domain": "example.com", "timezone": "Europe/Berlin", "retention_days": 365}))]
pub struct NewSiteBody {
    /// Required unless `domain` is given.
    pub name: Option<String>,
    pub domain: Option<String>,
    /// IANA time zone, default `UTC`.
    pub timezone: Option<String>,
    /// Days events are kept (1 to 36500); absent or null: forever.
    pub retention_days: Option<u32>,
}

/// `POST /api/auth/setup`, `POST /api/auth/login`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"email": "owner@example.com", "password": "correct horse battery"}))]
pub struct CredentialsBody {
    pub email: String,
    /// 8 to 1024 characters.
    pub password: String,
}

/// `POST /api/keys`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"scope": "read", "site_id": "example.com", "name": "reporting job"}))]
pub struct NewKeyBody {
    /// `ingest`, `read` (includes ingest) or `admin`.
    pub scope: String,
    /// The key's one site.
    pub site_id: Option<String>,
    /// Or every site of this organisation.
    pub org_id: Option<String>,
    pub name: Option<String>,
}

/// `POST /api/orgs`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"org_id": "acme", "name": "Acme Inc."}))]
pub struct NewOrgBody {
    /// A slug; default: made from the name.
    pub org_id: Option<String>,
    pub name: String,
}

/// `POST /api/users`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"email": "viewer@example.com", "password": "correct horse battery", "org_id": "default", "role": "viewer"}))]
pub struct NewUserBody {
    pub email: String,
    /// Required for a new user; ignored when the email exists (its role changes).
    pub password: String,
    /// Default `default`.
    pub org_id: Option<String>,
    /// `owner`, `admin` or `viewer` (default).
    pub role: Option<String>,
}

/// `PUT /api/sites/{site_id}/share`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"password": "for the board"}))]
pub struct ShareBody {
    /// Without it the link alone opens the dashboard.
    pub password: Option<String>,
}

/// `POST /api/share/unlock`.
#[derive(Serialize, ToSchema)]
pub struct UnlockBody {
    /// The link's token (`hbp_...`).
    pub token: String,
    pub password: String,
}

/// The refusals every read endpoint may answer, each in the one error shape.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadRefusals {
    /// An invalid parameter, or one beyond a bound (the detail names it and the limit).
    #[response(
        status = 400,
        description = "Invalid parameter, or beyond a bound (named with its limit)"
    )]
    Invalid(ErrorBody),
    #[response(status = 401, description = "No or bad key")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "The key may not read this site")]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "No such site (or event)")]
    NotFound(ErrorBody),
    #[response(
        status = 503,
        description = "Too many reads at once, or over its time budget; retry after `Retry-After`"
    )]
    Unavailable(ErrorBody),
}

/// The refusals of a request about sites, keys, organisations or users (a change, or a
/// look at one), each in the one error shape.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AdminRefusals {
    #[response(status = 400, description = "Invalid field; each bad field is named")]
    Invalid(ErrorBody),
    #[response(status = 401, description = "No or bad credentials")]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "The caller may not change this site, organisation or user"
    )]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "No such site, key, organisation or user")]
    NotFound(ErrorBody),
}

/// The refusals of a change through Plausible's Sites API (`compat/plausible_sites.rs`),
/// with Plausible's texts, each in the one error shape.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum SitesApiRefusals {
    #[response(status = 401, description = "No or bad key")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "Not an admin-capable key")]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "`Site could not be found`")]
    NotFound(ErrorBody),
}

/// What a keyed ingest door answers, each refusal in the one error shape.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum KeyedIngestAnswers {
    #[response(status = 202, description = "Durable in the queue")]
    Accepted(AcceptedBody),
    #[response(
        status = 400,
        description = "Invalid event; the events of a batch are named `[i].field`"
    )]
    Invalid(ErrorBody),
    #[response(status = 401, description = "No or bad key")]
    Unauthorized(ErrorBody),
    #[response(status = 503, description = "Queue full; retry after `Retry-After`")]
    QueueFull(ErrorBody),
}

/// An alert rule to save (`POST` and `PUT /api/sites/{site_id}/alerts`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "Pricing traffic dropped", "metric": "visitors",
    "filters": [["is", "event:page", ["/pricing"]]], "window_minutes": 60,
    "condition": {"type": "anomaly", "direction": "down", "sensitivity": 3, "weeks": 4},
    "cooldown_minutes": 60, "webhook_ids": [], "emails": ["ops@example.com"], "enabled": true}))]
pub struct AlertRuleBody {
    pub name: String,
    /// visitors, visits, pageviews, events, views_per_visit, bounce_rate, visit_duration,
    /// scroll_depth or conversion_rate (with a goal filter); ignored by `no_events`.
    pub metric: Option<String>,
    /// v2 filters.
    pub filters: Option<Vec<serde_json::Value>>,
    /// 5 to 1,440 (1 to 1,440 for `no_events`).
    pub window_minutes: u32,
    /// `{"type": "above"|"below", "threshold": n}`, `{"type": "anomaly", "direction",
    /// "sensitivity", "weeks"}` or `{"type": "no_events"}`.
    pub condition: serde_json::Value,
    pub cooldown_minutes: Option<u32>,
    pub webhook_ids: Option<Vec<String>>,
    pub emails: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// A webhook to add.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"url": "https://hooks.example.com/heartbeat", "format": "json"}))]
pub struct WebhookBody {
    pub url: String,
    /// `json` (default: an `AlertNotice`) or `slack`.
    pub format: Option<String>,
}

/// What a `json` webhook receives when a rule fires (`alert.fired`) or is back to normal
/// (`alert.resolved`), signed: `x-heartbeat-signature: sha256=<hex HMAC-SHA256 of
/// "{x-heartbeat-timestamp}.{body}" with the webhook's secret>`; `x-heartbeat-delivery`
/// names the delivery (the same on a retry).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "alert.fired", "site_id": "example.com", "site_name": "example.com",
    "alert": {"alert_id": "al_1", "name": "No traffic", "metric": "events", "filters": [],
        "window_minutes": 10, "condition": {"type": "no_events"}},
    "event": {"event_id": "ae_1", "fired_at": "2026-12-03T10:00:00.000Z", "resolved_at": null,
        "value": 0.0, "expected": 1.0, "message": "No events for 10 minutes"},
    "dashboard_url": "https://stats.example.com/?site=example.com&period=day"}))]
pub struct AlertNotice {
    /// `alert.fired` or `alert.resolved`.
    #[serde(rename = "type")]
    pub kind: String,
    pub site_id: String,
    pub site_name: String,
    pub alert: serde_json::Value,
    pub event: serde_json::Value,
    pub dashboard_url: String,
}

/// A report recipient to add.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"email": "owner@example.com", "period": "weekly"}))]
pub struct ReportBody {
    pub email: String,
    /// `weekly` (Monday to Sunday) or `monthly`.
    pub period: String,
}

/// An annotation to add or change (`at`: an ISO 8601 date-time, or a date for its
/// midnight in the site's time zone).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"at": "2026-12-01T09:30:00Z", "text": "Deployed the new pricing page"}))]
pub struct AnnotationBody {
    pub at: Option<String>,
    pub text: Option<String>,
}
