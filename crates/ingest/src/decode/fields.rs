//! Typed reads of JSON payload fields that collect one error per bad field, so a client
//! learns about every problem of a request at once.

use std::collections::BTreeMap;

use chrono::DateTime;
use heartbeat_model::{Revenue, SiteId};
use serde_json::{Map, Value};

use crate::raw::SiteRef;
use crate::FieldError;

/// Limits on custom properties, the same as Plausible's.
pub const MAX_PROPS: usize = 30;
pub const MAX_PROP_KEY_CHARS: usize = 300;
pub const MAX_PROP_VALUE_CHARS: usize = 2000;

/// One JSON object being read, with the path prefix used in error fields (`[3].`).
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Reads `value` as an object; anything else is one error on the whole item.
    pub fn of(value: &'a Value, prefix: &str) -> Result<Self, Vec<FieldError>> {
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                prefix: prefix.to_owned(),
                errors: Vec::new(),
            }),
            _ => Err(vec![FieldError::new(
                if prefix.is_empty() {
                    "body"
                } else {
                    prefix.trim_end_matches('.')
                },
                "must be a JSON object",
            )]),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The first of `names` present and not null, as sent, with the name it was found
    /// under: for a decoder with its own rules for a field.
    pub fn raw(&self, names: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        self.find(names)
    }

    /// The name the client sent the field under: the first of `names` present and not null,
    /// else the first of `names` (a missing field is named by its main name).
    pub fn sent_as(&self, names: &[&'static str]) -> &'static str {
        self.find(names).map_or(names[0], |(name, _)| name)
    }

    /// The site a keyed item names under one of `names` (its id), else the key's own site,
    /// with the field's name as sent: a key of one site naming another is refused, never
    /// stored in the key's site.
    pub fn keyed_site(&mut self, names: &[&'static str]) -> (Option<SiteRef>, &'static str) {
        let name = self.sent_as(names);
        let site = match self.string(names, false) {
            Some(id) => Some(SiteRef::Id(SiteId(id))),
            None if self.find(names).is_some() => None,
            None => SiteRef::key(),
        };
        (site, name)
    }

    /// Fails the item with `message` about field `name`.
    pub fn reject(&mut self, name: &str, message: impl Into<String>) {
        self.error(name, message);
    }

    fn error(&mut self, name: &str, message: impl Into<String>) {
        let field = format!("{}{name}", self.prefix);
        self.errors.push(FieldError::new(&field, message));
    }

    /// The first of `names` present and not null, with the name it was found under.
    fn find(&self, names: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        names.iter().find_map(|name| {
            self.map
                .get(*name)
                .filter(|v| !v.is_null())
                .map(|v| (*name, v))
        })
    }

    pub fn string(&mut self, names: &[&'static str], required: bool) -> Option<String> {
        match self.find(names) {
            Some((_, Value::String(s))) if !s.trim().is_empty() => Some(s.clone()),
            Some((name, Value::String(_))) => {
                if required {
                    self.error(name, format!("{name} must not be empty"));
                }
                None
            }
            // Ids are often numbers in clients' code; accept them as their decimal text.
            Some((_, Value::Number(n))) => Some(n.to_string()),
            Some((name, _)) => {
                self.error(name, format!("{name} must be a string"));
                None
            }
            None => {
                if required {
                    self.error(names[0], format!("{} is required", names[0]));
                }
                None
            }
        }
    }

    pub fn boolean(&mut self, names: &[&'static str]) -> Option<bool> {
        match self.find(names) {
            Some((_, Value::Bool(b))) => Some(*b),
            Some((name, _)) => {
                self.error(name, format!("{name} must be true or false"));
                None
            }
            None => None,
        }
    }

    /// A boolean, or 0 / 1 as Plausible's own tracker sends its flags (`"h": 1`).
    pub fn flag(&mut self, names: &[&'static str]) -> Option<bool> {
        match self.find(names) {
            Some((_, Value::Number(n))) if n.as_u64() == Some(0) => Some(false),
            Some((_, Value::Number(n))) if n.as_u64() == Some(1) => Some(true),
            _ => self.boolean(names),
        }
    }

    /// An RFC 3339 date-time string or a number of milliseconds since the epoch.
    pub fn timestamp_ms(&mut self, names: &[&'static str]) -> Option<i64> {
        match self.find(names) {
            Some((name, Value::String(s))) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.timestamp_millis()),
                Err(_) => {
                    self.error(name, format!("{name} must be an RFC 3339 date-time"));
                    None
                }
            },
            Some((name, Value::Number(n))) => match n.as_i64() {
                Some(ms) => Some(ms),
                None => {
                    self.error(name, format!("{name} must be whole milliseconds"));
                    None
                }
            },
            Some((name, _)) => {
                self.error(name, format!("{name} must be a date-time string"));
                None
            }
            None => None,
        }
    }

    /// An object of scalar values, stringified as Plausible does (or a string holding such
    /// an object, as Plausible's tracker may send `p`). Nested values are kept as their JSON
    /// text when `nested_as_json`, else rejected.
    pub fn props(
        &mut self,
        names: &[&'static str],
        nested_as_json: bool,
    ) -> BTreeMap<String, String> {
        let mut props = BTreeMap::new();
        let Some((name, value)) = self.find(names) else {
            return props;
        };
        let parsed;
        let map = match value {
            Value::Object(map) => map,
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => {
                    parsed = map;
                    &parsed
                }
                _ => {
                    self.error(name, format!("{name} must be an object"));
                    return props;
                }
            },
            _ => {
                self.error(name, format!("{name} must be an object"));
                return props;
            }
        };
        for (key, value) in map {
            let text = match value {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                nested if nested_as_json => nested.to_string(),
                _ => {
                    self.error(
                        &format!("{name}.{key}"),
                        "custom property values must be strings, numbers or booleans",
                    );
                    continue;
                }
            };
            props.insert(key.clone(), text);
        }
        props
    }

    /// Checks the limits on the properties an item ends up with.
    pub fn check_props(&mut self, field: &str, props: &BTreeMap<String, String>) {
        if props.len() > MAX_PROPS {
            self.error(
                field,
                format!("at most {MAX_PROPS} custom properties are allowed"),
            );
        }
        for (key, value) in props {
            if key.is_empty() || key.chars().count() > MAX_PROP_KEY_CHARS {
                self.error(
                    field,
                    format!("property names must have 1 to {MAX_PROP_KEY_CHARS} characters"),
                );
                break;
            }
            if value.chars().count() > MAX_PROP_VALUE_CHARS {
                self.error(
                    &format!("{field}.{key}"),
                    format!("at most {MAX_PROP_VALUE_CHARS} characters"),
                );
            }
        }
    }

    /// `{"amount": 19.99 | "19.99", "currency": "EUR"}`.
    pub fn revenue(&mut self, names: &[&'static str]) -> Option<Revenue> {
        let (name, value) = self.find(names)?;
        let Value::Object(map) = value else {
            self.error(
                name,
                format!("{name} must be an object with amount and currency"),
            );
            return None;
        };
        // Both parts are checked, so a client learns of both at once.
        let amount_micros = match map.get("amount") {
            Some(Value::Number(n)) => parse_micros(&n.to_string()),
            Some(Value::String(s)) => parse_micros(s),
            _ => {
                self.error(&format!("{name}.amount"), "amount must be a number");
                return self.revenue_currency(name, map).and(None);
            }
        };
        if amount_micros.is_none() {
            self.error(&format!("{name}.amount"), "amount must be a decimal number");
        }
        let currency = self.revenue_currency(name, map)?;
        Some(Revenue {
            amount_micros: amount_micros?,
            currency,
        })
    }

    /// A revenue's `currency`, upper case.
    fn revenue_currency(&mut self, name: &str, map: &Map<String, Value>) -> Option<String> {
        match map.get("currency") {
            Some(Value::String(c))
                if c.len() == 3 && c.chars().all(|c| c.is_ascii_alphabetic()) =>
            {
                Some(c.to_ascii_uppercase())
            }
            _ => {
                self.error(
                    &format!("{name}.currency"),
                    "currency must be a 3-letter ISO 4217 code",
                );
                None
            }
        }
    }

    /// An IP address given as a string (a backend forwarding its visitor's address).
    pub fn ip(&mut self, names: &[&'static str]) -> Option<std::net::IpAddr> {
        let (name, _) = self.find(names)?;
        let text = self.string(names, false)?;
        match text.trim().parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.error(name, format!("{name} must be an IPv4 or IPv6 address"));
                None
            }
        }
    }

    /// Fails the item if any field was bad.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors)
        }
    }
}

/// Parses a decimal amount exactly into millionths ("19.99" -> 19_990_000).
fn parse_micros(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || fraction.len() > 6
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: i64 = format!("{fraction:0<6}").parse().ok()?;
    let micros = whole.checked_mul(1_000_000)?.checked_add(fraction)?;
    Some(if negative { -micros } else { micros })
}

#[cfg(test)]
mod tests {
    use super::parse_micros;

    #[test]
    fn amounts_are_exact() {
        let check =
            |text: &str, expected: Option<i64>| assert_eq!(parse_micros(text), expected, "{text}");
        check("19.99", Some(19_990_000));
        check("0.000001", Some(1));
        check("-5", Some(-5_000_000));
        check("12", Some(12_000_000));
        check("1.1234567", None);
        check("abc", None);
        check("", None);
        check("99999999999999999999", None);
    }
}
