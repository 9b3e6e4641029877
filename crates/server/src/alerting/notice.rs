//! What an alert says when it fires or resolves: Heartbeat's JSON notice (documented in the
//! OpenAPI document as `AlertNotice`), a Slack incoming-webhook message, and an email.

use heartbeat_model::{AlertEvent, AlertRule, WebhookFormat};
use serde_json::{json, Value};

use super::email::EmailPayload;
use crate::http::json::iso;

/// Whether a notice tells of a firing or of its resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Fired,
    Resolved,
}

impl Change {
    pub fn kind(self) -> &'static str {
        match self {
            Change::Fired => "alert.fired",
            Change::Resolved => "alert.resolved",
        }
    }
}

/// Everything a notice is made from.
pub struct Notice<'a> {
    pub change: Change,
    pub rule: &'a AlertRule,
    pub event: &'a AlertEvent,
    pub site_name: &'a str,
    pub dashboard_url: String,
}

impl Notice<'_> {
    /// Heartbeat's JSON notice.
    pub fn json(&self) -> Value {
        let (rule, event) = (self.rule, self.event);
        json!({
            "type": self.change.kind(),
            "site_id": rule.site_id,
            "site_name": self.site_name,
            "alert": {
                "alert_id": rule.id,
                "name": rule.name,
                "metric": rule.metric,
                "filters": serde_json::from_str::<Value>(&rule.filters_json).unwrap_or(json!([])),
                "window_minutes": rule.window_minutes,
                "condition": rule.condition,
            },
            "event": {
                "event_id": event.id,
                "fired_at": iso(event.fired_at_ms),
                "resolved_at": event.resolved_at_ms.map(iso),
                "value": event.value,
                "expected": event.expected,
                "message": event.message,
            },
            "dashboard_url": self.dashboard_url,
        })
    }

    fn headline(&self) -> String {
        match self.change {
            Change::Fired => format!("Alert on {}: {}", self.site_name, self.rule.name),
            Change::Resolved => format!("Resolved on {}: {}", self.site_name, self.rule.name),
        }
    }

    fn sentence(&self) -> String {
        match self.change {
            Change::Fired => self.event.message.clone(),
            Change::Resolved => format!(
                "Back to normal. It fired at {}: {}",
                iso(self.event.fired_at_ms),
                self.event.message
            ),
        }
    }

    /// The body a webhook of `format` receives.
    pub fn webhook_body(&self, format: WebhookFormat) -> String {
        match format {
            WebhookFormat::Json => self.json().to_string(),
            WebhookFormat::Slack => {
                let text = format!("*{}*\n{}", self.headline(), self.sentence());
                json!({
                    "text": format!("{}: {}", self.headline(), self.sentence()),
                    "blocks": [
                        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                        {"type": "context", "elements": [
                            {"type": "mrkdwn", "text": format!("<{}|Open the dashboard>", self.dashboard_url)}
                        ]}
                    ]
                })
                .to_string()
            }
        }
    }

    /// The email to a rule's recipients.
    pub fn email(&self) -> EmailPayload {
        let headline = self.headline();
        let sentence = self.sentence();
        let text = format!(
            "{headline}\n\n{sentence}\n\nDashboard: {}\n\nYou get this email because you are a \
             recipient of the alert \"{}\"; an admin of the site can change its recipients.\n",
            self.dashboard_url, self.rule.name
        );
        let html = format!(
            "<!doctype html><html><body style=\"font-family:Arial,sans-serif;color:#1f2937\">\
             <h2 style=\"font-size:18px\">{}</h2><p>{}</p>\
             <p><a href=\"{}\">Open the dashboard</a></p>\
             <p style=\"color:#6b7280;font-size:12px\">You get this email because you are a \
             recipient of the alert &quot;{}&quot;; an admin of the site can change its \
             recipients.</p></body></html>",
            escape(&headline),
            escape(&sentence),
            escape(&self.dashboard_url),
            escape(&self.rule.name)
        );
        EmailPayload {
            subject: format!("[Heartbeat] {headline}"),
            text,
            html,
            images: Vec::new(),
            unsubscribe_url: None,
        }
    }
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
