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
        match decode_item(item, &format!("{prefix}[{index}].")) {
            Ok(event) => events.push(event),
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

/// Seed 003's items carry `eventName`; seed 001's `EventMessage` carries `type`.
fn v1_item(value: &Value, prefix: &str) -> Result<RawEvent, Vec<FieldError>> {
    if value.get("type").is_some() && value.get("eventName").is_none() {
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
