//! Alerts, their deliveries, scheduled reports and annotations of a site.
//!
//! An alert rule watches one v2 metric (under v2 filters) over a sliding window and fires
//! when a condition holds: above or below a threshold, an anomaly against the same hours of
//! the previous weeks, or no events at all (tracking broken). A firing and its resolution are
//! [`AlertEvent`]s; every message to a webhook or a mailbox is a durable [`Delivery`] in the
//! outbox until it is delivered or given up on. Types only: the server evaluates and
//! delivers.

use serde::{Deserialize, Serialize};

use crate::SiteId;

/// The shortest and longest window of a rule, in minutes (5 minutes to a day; a
/// no-events rule may watch a single minute).
pub const MIN_ALERT_WINDOW_MINUTES: u32 = 5;
pub const MIN_NO_EVENTS_MINUTES: u32 = 1;
pub const MAX_ALERT_WINDOW_MINUTES: u32 = 1440;
/// The most weeks an anomaly rule's baseline reaches back.
pub const MAX_BASELINE_WEEKS: u32 = 12;

/// When a rule fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlertCondition {
    /// The metric over the window is above the threshold.
    Above { threshold: f64 },
    /// The metric over the window is below the threshold.
    Below { threshold: f64 },
    /// The metric is outside the band the same window of the previous `weeks` weeks draws
    /// (median ± `sensitivity` robust deviations: docs/decisions/0009).
    Anomaly {
        direction: AnomalyDirection,
        sensitivity: f64,
        weeks: u32,
    },
    /// Not one event for the window: tracking broke.
    NoEvents,
}

/// Which side of the band an anomaly rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyDirection {
    Up,
    Down,
    Both,
}

/// An alert rule of a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub id: String,
    pub site_id: SiteId,
    pub name: String,
    /// A v2 metric (`visitors`, `pageviews`, `events`, `conversion_rate`, ...); `events` for a
    /// no-events rule.
    pub metric: String,
    /// v2 filters as JSON text (`[]` for none).
    pub filters_json: String,
    pub window_minutes: u32,
    pub condition: AlertCondition,
    /// Minutes after a firing during which the rule does not fire again.
    pub cooldown_minutes: u32,
    /// Webhooks of the site told when it fires and resolves.
    pub webhook_ids: Vec<String>,
    /// Addresses mailed when it fires and resolves.
    pub emails: Vec<String>,
    pub enabled: bool,
    pub created_at_ms: i64,
}

/// One firing of a rule, resolved once the metric is back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub id: String,
    pub rule_id: String,
    pub site_id: SiteId,
    pub fired_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    /// The metric's value over the window when it fired.
    pub value: f64,
    /// What was expected: the threshold, or the baseline's median for an anomaly.
    pub expected: f64,
    /// A sentence saying what happened.
    pub message: String,
}

/// A webhook of a site: where alert notices are posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub site_id: SiteId,
    pub url: String,
    pub format: WebhookFormat,
    /// The key of the HMAC-SHA256 signature of every post (`x-heartbeat-signature`).
    pub secret: String,
    pub created_at_ms: i64,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Heartbeat's JSON notice.
    Json,
    /// A Slack incoming-webhook message (`{"text": ..., "blocks": [...]}`).
    Slack,
}

/// How often a report goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportPeriod {
    /// Monday to Sunday in the site's time zone, sent the Monday after.
    Weekly,
    /// A calendar month in the site's time zone, sent on the 1st after.
    Monthly,
}

/// A recipient of a site's scheduled report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSubscription {
    pub id: String,
    pub site_id: SiteId,
    pub email: String,
    pub period: ReportPeriod,
    /// The secret in the report's unsubscribe link.
    pub unsubscribe_token: String,
    /// The first day (`YYYY-MM-DD`, site time) of the last period sent.
    pub last_sent_period: Option<String>,
    pub created_at_ms: i64,
}

/// Where an annotation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationKind {
    /// Written by a user.
    Note,
    /// A fired alert.
    Alert,
}

/// A dated note on a site, drawn on the dashboard's chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub id: String,
    pub site_id: SiteId,
    /// The instant it marks, UTC milliseconds.
    pub at_ms: i64,
    pub text: String,
    pub kind: AnnotationKind,
    /// The alert event it stands for (kind `Alert`).
    pub alert_event_id: Option<String>,
    pub created_at_ms: i64,
}

/// Where a delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeliveryTarget {
    Webhook { webhook_id: String },
    Email { to: String },
}

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    Delivered,
    /// Given up on; `last_error` says why.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A message in the outbox: durable from the moment it is made until it is delivered or
/// given up on, so nothing is lost across a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Derived from what it delivers and where, so the same message is queued once.
    pub id: String,
    pub site_id: SiteId,
    pub target: DeliveryTarget,
    /// What it says: `alert` (fired or resolved) or `report`.
    pub kind: String,
    /// The message as JSON text: a webhook's body, or an email's parts.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
}
