//! Payload decoders: one module per wire format, each turning its JSON into [`RawEvent`]s.
//! No other code knows a wire format.
//!
//! | module          | format                                   | routes                          |
//! |-----------------|------------------------------------------|---------------------------------|
//! | `plausible`     | Plausible Events API (`n`/`u`/`d`/...)   | `POST /api/event` (public)      |
//! | `site_event`    | seed 002 (`site_id`, `event_type`, ...)  | `POST /api/event` with a key    |
//! | `tracker`       | seed 000 (`event_type`, `visitor_id`...) | `POST /events` (public)         |
//! | `realtime`      | seed 004 (`PAGE_VIEW`, `page_url`, ...)  | `POST /api/events`              |
//! | `tracking`      | seed 003 (`userId`, `eventName`, ...)    | `POST /api/v1/events`           |
//! | `event_message` | seed 001 `EventMessage` (`id`, `type`...)| `POST /api/v1/events[/batch]`   |
//!
//! Every error names the field as the client sent it (`u` or `url`, `path`, `[3].eventName`,
//! `events[3].type`), during decoding and, through [`crate::FieldNames`], in the checks after
//! it. A keyed format's item may name its site (`site_id`/`siteId`, seed 003's `projectId`),
//! which the key must be allowed to use; without one it goes to the key's own site.

mod event_message;
mod fields;
mod plausible;
mod realtime;
mod site_event;
mod tracker;
mod tracking;

use serde_json::Value;

use crate::{FieldError, RawEvent};

/// The most events one request may carry.
pub const MAX_BATCH_EVENTS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("a batch holds at most {limit} events, got {len}")]
    TooMany { len: usize, limit: usize },
    #[error("an empty batch")]
    Empty,
    #[error("validation failed")]
    Invalid(Vec<FieldError>),
}

/// Decoded events and whether their format is a server-side one that needs an API key.
#[derive(Debug)]
pub struct Decoded {
    pub events: Vec<RawEvent>,
    pub needs_key: bool,
}

fn parse(body: &[u8]) -> Result<Value, DecodeError> {
    let text =
        std::str::from_utf8(body).map_err(|err| DecodeError::Json(format!("not UTF-8: {err}")))?;
    serde_json::from_str(text).map_err(|err| DecodeError::Json(err.to_string()))
}

/// Decodes every item of `items` with `decode_item`, collecting all items' errors.
fn decode_items(
    items: &[Value],
    prefix: &str,
    decode_item: fn(&Value, &str) -> Result<RawEvent, Vec<FieldError>>,
) -> Result<Vec<RawEvent>, DecodeError> {
    if items.is_empty() {
        return Err(DecodeError::Empty);
    }
    if items.len() > MAX_BATCH_EVENTS {
        return Err(DecodeError::TooMany {
            len: items.len(),
            limit: MAX_BATCH_EVENTS,
        });
    }
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_prefix = format!("{prefix}[{index}].");
        match decode_item(item, &item_prefix) {
            Ok(mut event) => {
                // Later checks name the item's fields as decoding does.
                event.names.prefix = item_prefix;
                events.push(event);
            }
            Err(item_errors) => errors.extend(item_errors),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(DecodeError::Invalid(errors))
    }
}

fn one(
    value: &Value,
    decode_item: fn(&Value, &str) -> Result<RawEvent, Vec<FieldError>>,
) -> Result<Vec<RawEvent>, DecodeError> {
    decode_item(value, "")
        .map(|event| vec![event])
        .map_err(DecodeError::Invalid)
}

fn one_or_many(
    value: &Value,
    decode_item: fn(&Value, &str) -> Result<RawEvent, Vec<FieldError>>,
) -> Result<Vec<RawEvent>, DecodeError> {
    match value {
        Value::Array(items) => decode_items(items, "", decode_item),
        single => one(single, decode_item),
    }
}

/// `POST /api/event`: seed 002's keyed format when the body names `site_id` or
/// `event_type`, else Plausible's Events API.
pub fn api_event(body: &[u8]) -> Result<Decoded, DecodeError> {
    let value = parse(body)?;
    let seed_002 = value.get("site_id").is_some() || value.get("event_type").is_some();
    if seed_002 {
        Ok(Decoded {
            events: one(&value, site_event::decode)?,
            needs_key: true,
        })
    } else {
        Ok(Decoded {
            events: one(&value, plausible::decode)?,
            needs_key: false,
        })
    }
}

/// `POST /events` (seed 000, public: the site is found by `domain`).
pub fn tracker_events(body: &[u8]) -> Result<Decoded, DecodeError> {
    let value = parse(body)?;
    Ok(Decoded {
        events: one_or_many(&value, tracker::decode)?,
        needs_key: false,
    })
}

/// `POST /api/events` (seed 004).
pub fn realtime_events(body: &[u8]) -> Result<Decoded, DecodeError> {
    let value = parse(body)?;
    Ok(Decoded {
        events: one_or_many(&value, realtime::decode)?,
        needs_key: true,
    })
}

/// Fields only seed 001's `EventMessage` has, and fields only seed 003's event has.
const SEED_001_FIELDS: [&str; 5] = ["type", "data", "source", "correlationId", "metadata"];
const SEED_003_FIELDS: [&str; 7] = [
    "eventName",
    "userId",
    "properties",
    "eventId",
    "sessionId",
    "userAgent",
    "ipAddress",
];

/// Seed 003's items carry `eventName`; seed 001's `EventMessage` carries `type`. An item is
/// told which of its own format's fields are missing or bad: one with only seed 001's fields
/// (`{"id", "data", "source"}` without its `type`) is an `EventMessage`, one with `type` and
/// without `eventName` too; anything else is read as seed 003's.
fn v1_item(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    let has = |fields: &[&str]| fields.iter().any(|field| value.get(field).is_some());
    let seed_001 = if has(&SEED_003_FIELDS) {
        value.get("type").is_some() && value.get("eventName").is_none()
    } else {
        has(&SEED_001_FIELDS)
    };
    if seed_001 {
        event_message::decode(value, prefix)
    } else {
        tracking::decode(value, prefix)
    }
}

/// `POST /api/v1/events`: one event or an array of up to 1,000, in seed 003's or seed 001's
/// shape.
pub fn v1_events(body: &[u8]) -> Result<Decoded, DecodeError> {
    let value = parse(body)?;
    Ok(Decoded {
        events: one_or_many(&value, v1_item)?,
        needs_key: true,
    })
}

/// `POST /api/v1/events/batch` (seed 001): `{"events": [...]}` or a bare array.
pub fn v1_batch(body: &[u8]) -> Result<Decoded, DecodeError> {
    let value = parse(body)?;
    let events = match &value {
        Value::Array(items) => decode_items(items, "", v1_item)?,
        Value::Object(map) => match map.get("events") {
            Some(Value::Array(items)) => decode_items(items, "events", v1_item)?,
            _ => {
                return Err(DecodeError::Invalid(vec![FieldError::new(
                    "events",
                    "events must be an array of events",
                )]))
            }
        },
        _ => {
            return Err(DecodeError::Invalid(vec![FieldError::new(
                "body",
                "must be an array of events or an object with an events array",
            )]))
        }
    };
    Ok(Decoded {
        events,
        needs_key: true,
    })
}
