//! Goals in JSON, as both doors onto them (`/api/sites/{site_id}/goals` and Plausible's
//! `/api/v1/sites/goals`) read and answer them: Plausible's field names (`goal_type`,
//! `event_name`, `page_path`, `display_name`, `currency`) plus `custom_props`, the property
//! values an event goal requires.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use heartbeat_accounts::goals::{GoalError, NewGoal};
use heartbeat_ingest::FieldError;
use heartbeat_model::{Goal, GoalKind};
use serde_json::{json, Map, Value};

/// A goal as both APIs answer it.
pub fn goal_json(goal: &Goal) -> Value {
    let (goal_type, event_name, page_path, props) = match &goal.kind {
        GoalKind::Page { page_path } => ("page", None, Some(page_path), None),
        GoalKind::Event { event_name, props } => ("event", Some(event_name), None, Some(props)),
    };
    json!({
        "id": goal.id,
        "goal_type": goal_type,
        "display_name": goal.display_name,
        "event_name": event_name,
        "page_path": page_path,
        "custom_props": props.cloned().unwrap_or_default(),
        "currency": goal.currency,
    })
}

/// A text field: absent or null is `None`; another type is an error naming it.
fn text(fields: &Map<String, Value>, key: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match fields.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                key,
                format!("Parameter `{key}` must be a string"),
            ));
            None
        }
    }
}

/// The goal `fields` ask for, naming every missing or wrongly typed field in Plausible's
/// words (`Parameter `event_name` is required to create a goal`).
pub fn new_goal(fields: &Map<String, Value>) -> Result<NewGoal, Vec<FieldError>> {
    let mut errors = Vec::new();
    let required = |key: &str| format!("Parameter `{key}` is required to create a goal");
    let goal_type = text(fields, "goal_type", &mut errors);
    let event_name = text(fields, "event_name", &mut errors);
    let page_path = text(fields, "page_path", &mut errors);
    let display_name = text(fields, "display_name", &mut errors);
    let currency = text(fields, "currency", &mut errors);
    let mut props = BTreeMap::new();
    match fields.get("custom_props") {
        None | Some(Value::Null) => {}
        Some(Value::Object(pairs)) => {
            for (key, value) in pairs {
                match value {
                    Value::String(v) => {
                        props.insert(key.clone(), v.clone());
                    }
                    _ => errors.push(FieldError::new(
                        &format!("custom_props.{key}"),
                        "a property value is a string",
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new(
            "custom_props",
            "must be an object of property names and values",
        )),
    }
    // A field already named (of the wrong type) is not named again as missing.
    let missing = |key: &str, errors: &mut Vec<FieldError>| {
        if !errors.iter().any(|e| e.field == key) {
            errors.push(FieldError::new(key, required(key)));
        }
    };
    let kind = match goal_type.as_deref() {
        Some("event") => match event_name {
            Some(event_name) => Some(GoalKind::Event { event_name, props }),
            None => {
                missing("event_name", &mut errors);
                None
            }
        },
        Some("page") => match page_path {
            Some(page_path) => Some(GoalKind::Page { page_path }),
            None => {
                missing("page_path", &mut errors);
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                "goal_type",
                "Parameter `goal_type` must be `event` or `page`",
            ));
            None
        }
        None => {
            missing("goal_type", &mut errors);
            None
        }
    };
    match kind {
        Some(kind) if errors.is_empty() => Ok(NewGoal {
            kind,
            display_name,
            currency,
        }),
        _ => Err(errors),
    }
}

/// A 400 whose `error` is the first problem's text (Plausible's one message) and whose
/// details name every bad field.
pub fn invalid(errors: Vec<FieldError>) -> crate::http::error::ApiError {
    let first = errors
        .first()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    let mut err = crate::http::error::ApiError::new(StatusCode::BAD_REQUEST, first);
    err.details = errors;
    err
}

pub fn goal_error(err: GoalError) -> crate::http::error::ApiError {
    use crate::http::error::ApiError;
    match err {
        GoalError::Invalid(bad) => invalid(
            bad.into_iter()
                .map(|(field, message)| FieldError::new(field, message))
                .collect(),
        ),
        GoalError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "Goal could not be found")
            .with_detail("goal_id", "Goal could not be found"),
        GoalError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, message.clone())
            .with_detail("display_name", message),
        GoalError::Store(err) => err.into(),
    }
}
