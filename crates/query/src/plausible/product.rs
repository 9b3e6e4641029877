//! The JSON of product analytics requests (`POST /api/v2/retention`, `/api/v2/paths`,
//! `/api/v2/journey`) in the v2 query's terms: `site_id`, a `date_range` read as v2 reads
//! it, `filters` parsed by v2's own filter parser. Each request's own fields are read by its
//! module (`retention.rs`, `paths.rs`, `journey.rs`) through [`Body`], which collects every
//! bad field rather than stopping at the first.

use chrono_tz::Tz;
use heartbeat_model::Site;
use serde_json::Value;

use super::request::parse_filter;
use crate::bounds::QueryBounds;
use crate::error::QueryError;
use crate::model::{DateRange, Filter};
use crate::time::resolve_range;

/// A request body being read, and what is wrong with it so far.
pub(crate) struct Body<'a> {
    body: &'a Value,
    errors: Vec<QueryError>,
}

impl<'a> Body<'a> {
    /// Starts reading `body`, which may hold only the fields named in `known` (a misspelt
    /// field is named, never silently ignored).
    pub(crate) fn new(body: &'a Value, known: &[&str]) -> Body<'a> {
        let mut errors = Vec::new();
        match body.as_object() {
            Some(fields) => {
                for name in fields.keys() {
                    if name.is_empty() {
                        errors.push(QueryError::at("body", "a field has an empty name"));
                    } else if !known.contains(&name.as_str()) {
                        errors.push(QueryError::at(
                            name.as_str(),
                            format!("unknown field; expected one of {}", known.join(", ")),
                        ));
                    }
                }
            }
            None => errors.push(QueryError::at("body", "must be a JSON object")),
        }
        Body { body, errors }
    }

    /// The field `name`, unless absent or null.
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.body.get(name).filter(|v| !v.is_null())
    }

    pub(crate) fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(QueryError::at(field, message));
    }

    /// An error found elsewhere (a bound the request breaks).
    pub(crate) fn push(&mut self, error: QueryError) {
        self.errors.push(error);
    }

    /// A non-empty string field, or `None` (absent, or named as wrong).
    pub(crate) fn text(&mut self, name: &str) -> Option<String> {
        match self.get(name) {
            None => None,
            Some(Value::String(text)) if !text.is_empty() && text.chars().count() <= 1000 => {
                Some(text.clone())
            }
            Some(_) => {
                self.error(
                    name,
                    "must be a non-empty string of at most 1000 characters",
                );
                None
            }
        }
    }

    /// A whole number field within `min..=max`, `default` when absent; `None` when wrong.
    pub(crate) fn whole(&mut self, name: &str, min: u32, max: u32, default: u32) -> Option<u32> {
        let Some(value) = self.get(name) else {
            return Some(default);
        };
        match value.as_u64() {
            Some(n) if (u64::from(min)..=u64::from(max)).contains(&n) => Some(n as u32),
            _ => {
                self.error(
                    name,
                    format!("must be a whole number from {min} to {max}, got {value}"),
                );
                None
            }
        }
    }

    /// `date_range` as the v2 query reads it (a preset or two ISO dates; default `30d`), in
    /// the site's time zone, within `bounds`. `first_event_ms` is where `all` starts.
    pub(crate) fn date_range(
        &mut self,
        tz: Tz,
        now_ms: i64,
        first_event_ms: i64,
        bounds: &QueryBounds,
    ) -> Option<DateRange> {
        let range = match self.get("date_range") {
            None => resolve_range(Some("30d"), None, tz, now_ms, first_event_ms),
            Some(Value::String(preset)) => {
                resolve_range(Some(preset), None, tz, now_ms, first_event_ms)
                    .map_err(|_| format!("Invalid date range {preset:?}"))
            }
            Some(Value::Array(pair)) if pair.len() == 2 => {
                match (pair[0].as_str(), pair[1].as_str()) {
                    (Some(from), Some(to)) => {
                        resolve_range(None, Some((from, to)), tz, now_ms, first_event_ms)
                    }
                    _ => Err("must hold two ISO 8601 dates".into()),
                }
            }
            Some(_) => Err("must be a preset like \"30d\" or two ISO 8601 dates".into()),
        };
        match range {
            Ok(range) => match bounds.check_range("date_range", range) {
                Ok(()) => Some(range),
                Err(err) => {
                    self.push(err);
                    None
                }
            },
            Err(message) => {
                self.error("date_range", message);
                None
            }
        }
    }

    /// `filters` as v2's (`[["is", "visit:country", ["DE"]], ...]`), none when absent.
    pub(crate) fn filters(&mut self) -> Vec<Filter> {
        match self.get("filters") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut filters = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match parse_filter(item, &format!("filters[{i}]"), 0) {
                        Ok(filter) => filters.push(filter),
                        Err(err) => self.push(err),
                    }
                }
                filters
            }
            Some(_) => {
                self.error("filters", "must be a list of filters");
                Vec::new()
            }
        }
    }

    /// The request built by `build` when nothing was wrong, else every bad field.
    pub(crate) fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Vec<QueryError>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        build().ok_or_else(|| vec![QueryError::at("body", "is incomplete")])
    }
}

/// The site's time zone (UTC when its name is unknown, as the v2 query reads it).
pub(crate) fn timezone(site: &Site) -> Tz {
    site.timezone.parse().unwrap_or(Tz::UTC)
}
