//! Every JSON shape a stored event is answered in, in one place: seed 001's event message
//! (`GET /api/v1/events`), seed 004's recent event (`GET /analytics/recent`) and the live
//! stream's event (`GET /api/live`). Export and import formats are in `transfer.rs`; the
//! formats events arrive in are decoded in `heartbeat-ingest`.

use heartbeat_model::Event;
use heartbeat_query::ListedEvent;
use serde_json::{json, Value};

use crate::http::json::iso;

/// Seed 001's event shape: `{id, type, data, timestamp, source, correlationId?, metadata}`.
pub fn seed001_message(event: &ListedEvent) -> Value {
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

/// Seed 004's recent event: `{event_id, event_type, user_id, session_id, page_url, timestamp,
/// metadata, country, browser, device}`.
pub fn seed004_recent(e: &ListedEvent) -> Value {
    json!({
        "event_id": e.event_id, "event_type": e.name, "user_id": e.user_id,
        "session_id": e.session_id, "page_url": e.pathname, "timestamp": iso(e.timestamp_ms),
        "metadata": e.props, "country": e.country, "browser": e.browser, "device": e.device,
    })
}

/// A stored event as the live stream shows it (no visitor or visit ids).
pub fn live_event(event: &Event) -> Value {
    let visit = &event.visit;
    json!({
        "name": event.name,
        "timestamp": iso(event.timestamp_ms),
        "hostname": event.hostname,
        "pathname": event.pathname,
        "props": event.props,
        "revenue": event.revenue.as_ref().map(|r| json!({
            "amount": r.amount_micros as f64 / 1_000_000.0, "currency": r.currency,
        })),
        "source": visit.referrer_source,
        "channel": visit.channel,
        "country": visit.country,
        "region": visit.region,
        "city": visit.city,
        "browser": visit.browser,
        "os": visit.os,
        "device": visit.device,
    })
}
