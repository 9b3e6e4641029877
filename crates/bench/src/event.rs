//! The benchmark's event record and its NDJSON file format.
//!
//! One JSON object per line, fields in this order, optional fields omitted when absent:
//!
//! ```text
//! {"timestamp":"2024-05-01T12:34:56.789Z","visitor":"v123","ip":"10.1.2.3",
//!  "user_agent":"Mozilla/5.0 ...","url":"https://example.com/pricing?utm_source=x",
//!  "referrer":"https://www.google.com/","name":"pageview","props":{"plan":"pro"},
//!  "revenue":{"amount":"19.99","currency":"EUR"}}
//! ```
//!
//! `timestamp` is RFC 3339 in UTC with exactly three fractional digits. `name` is `pageview`
//! or a custom event name. This file format is what `generate` writes and what `load --input`
//! reads; the HTTP bodies sent to the server are built from it in `wire.rs`.
//!
//! Lines are read with serde and written by [`Event::write_ndjson_line`], a hand-written
//! encoder (the generator must write more than a million events per second) that produces the
//! same bytes as serde, which the tests check.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Name of the event every page load sends.
pub const PAGEVIEW: &str = "pageview";

/// One analytics event as a browser (or a backend) would report it.
///
/// Text fields are `Cow` so that the generator can point at its static tables without
/// allocating, while events read back from a file own their strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When the event happened, millisecond precision.
    #[serde(
        serialize_with = "serialize_timestamp",
        deserialize_with = "deserialize_timestamp"
    )]
    pub timestamp: DateTime<Utc>,
    /// Stable visitor id (`v<number>` from the generator), sent as `userId` in batches.
    pub visitor: String,
    /// Client IP address, sent as `X-Forwarded-For`.
    pub ip: String,
    /// Browser user agent, sent as `User-Agent`.
    pub user_agent: Cow<'static, str>,
    /// Full page URL including the query string (UTM tags live there).
    pub url: String,
    /// Referring URL; absent for direct visits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<Cow<'static, str>>,
    /// `pageview` or a custom event name such as `Signup`.
    pub name: Cow<'static, str>,
    /// Custom properties; empty for most events.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<Cow<'static, str>, Cow<'static, str>>,
    /// Revenue attached to a purchase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Revenue>,
}

/// A monetary amount in the shape of Plausible's Events API: a decimal string and an ISO 4217
/// currency code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revenue {
    pub amount: Cow<'static, str>,
    pub currency: Cow<'static, str>,
}

impl Event {
    /// Appends this event's NDJSON line, newline included, to `out`: the same bytes as
    /// `serde_json::to_writer` followed by a newline.
    pub fn write_ndjson_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"timestamp":""#);
        push_timestamp(out, &self.timestamp);
        out.extend_from_slice(br#"","visitor":"#);
        push_json_string(out, &self.visitor);
        out.extend_from_slice(br#","ip":"#);
        push_json_string(out, &self.ip);
        out.extend_from_slice(br#","user_agent":"#);
        push_json_string(out, &self.user_agent);
        out.extend_from_slice(br#","url":"#);
        push_json_string(out, &self.url);
        if let Some(referrer) = &self.referrer {
            out.extend_from_slice(br#","referrer":"#);
            push_json_string(out, referrer);
        }
        out.extend_from_slice(br#","name":"#);
        push_json_string(out, &self.name);
        if !self.props.is_empty() {
            out.extend_from_slice(br#","props":{"#);
            for (index, (key, value)) in self.props.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                push_json_string(out, key);
                out.push(b':');
                push_json_string(out, value);
            }
            out.push(b'}');
        }
        if let Some(revenue) = &self.revenue {
            out.extend_from_slice(br#","revenue":{"amount":"#);
            push_json_string(out, &revenue.amount);
            out.extend_from_slice(br#","currency":"#);
            push_json_string(out, &revenue.currency);
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
    }
}

/// Formats a timestamp the one way the benchmark writes them: `2024-05-01T12:34:56.789Z`.
pub fn format_timestamp(timestamp: &DateTime<Utc>) -> String {
    let mut text = Vec::with_capacity(24);
    push_timestamp(&mut text, timestamp);
    String::from_utf8(text).expect("timestamps are ASCII")
}

/// Appends `timestamp` formatted as by [`format_timestamp`], without going through `fmt`.
fn push_timestamp(out: &mut Vec<u8>, timestamp: &DateTime<Utc>) {
    // The naive UTC value's accessors skip the offset arithmetic of `DateTime`'s.
    let naive = timestamp.naive_utc();
    let year = naive.year();
    let nanosecond = naive.nanosecond();
    if !(0..=9999).contains(&year) || nanosecond >= 1_000_000_000 {
        // Years of other widths and leap seconds: rare enough for the slow path.
        let text = timestamp.to_rfc3339_opts(SecondsFormat::Millis, true);
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let digits = |value: u32, width: usize, out: &mut Vec<u8>| {
        let mut divisor = 10u32.pow(width as u32 - 1);
        for _ in 0..width {
            out.push(b'0' + (value / divisor % 10) as u8);
            divisor /= 10;
        }
    };
    digits(year as u32, 4, out);
    out.push(b'-');
    digits(naive.month(), 2, out);
    out.push(b'-');
    digits(naive.day(), 2, out);
    out.push(b'T');
    digits(naive.hour(), 2, out);
    out.push(b':');
    digits(naive.minute(), 2, out);
    out.push(b':');
    digits(naive.second(), 2, out);
    out.push(b'.');
    digits(nanosecond / 1_000_000, 3, out);
    out.push(b'Z');
}

/// Appends `text` as a JSON string, escaped as serde_json escapes it.
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    // A fold without early exit, so that the compiler vectorizes the scan.
    let needs_escape = text.bytes().fold(false, |found, byte| {
        found | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
    });
    if !needs_escape {
        out.extend_from_slice(text.as_bytes());
    } else {
        for byte in text.bytes() {
            match byte {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                control if control < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(control >> 4)]);
                    out.push(HEX[usize::from(control & 0xf)]);
                }
                other => out.push(other),
            }
        }
    }
    out.push(b'"');
}

/// Reads an NDJSON file of events; blank lines are skipped.
pub fn read_ndjson(path: &Path) -> anyhow::Result<Vec<Event>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut events = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not an event", path.display(), index + 1))?;
        events.push(event);
    }
    Ok(events)
}

fn serialize_timestamp<S: Serializer>(
    timestamp: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_timestamp(timestamp))
}

fn deserialize_timestamp<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<Utc>, D::Error> {
    let text = Cow::<str>::deserialize(deserializer)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|timestamp| timestamp.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ndjson_line_has_documented_shape_and_round_trips() {
        let event = Event {
            timestamp: Utc.timestamp_millis_opt(1_714_566_896_789).unwrap(),
            visitor: "v7".into(),
            ip: "10.1.2.3".into(),
            user_agent: "UA".into(),
            url: "https://example.com/pricing".into(),
            referrer: None,
            name: "Signup".into(),
            props: BTreeMap::from([("plan".into(), "pro".into())]),
            revenue: None,
        };
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(
            line,
            r#"{"timestamp":"2024-05-01T12:34:56.789Z","visitor":"v7","ip":"10.1.2.3","user_agent":"UA","url":"https://example.com/pricing","name":"Signup","props":{"plan":"pro"}}"#
        );
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn hand_written_line_matches_serde_for_awkward_text() {
        let awkward = "quote \" backslash \\ newline \n tab \t cr \r bell \u{7} bs \u{8} ff \u{c} \u{1f} é 🚀";
        let event = Event {
            timestamp: Utc.timestamp_millis_opt(-62_135_596_800_000 + 5).unwrap(),
            visitor: awkward.into(),
            ip: "::1".into(),
            user_agent: Cow::Owned(awkward.into()),
            url: awkward.into(),
            referrer: Some(awkward.to_string().into()),
            name: "Purchase".into(),
            props: BTreeMap::from([
                ("plan".into(), "pro".into()),
                (Cow::Owned(awkward.into()), Cow::Owned(awkward.into())),
            ]),
            revenue: Some(Revenue {
                amount: "19.99".into(),
                currency: "EUR".into(),
            }),
        };
        let mut line = Vec::new();
        event.write_ndjson_line(&mut line);
        let expected = serde_json::to_string(&event).unwrap() + "\n";
        assert_eq!(String::from_utf8(line).unwrap(), expected);
    }

    #[test]
    fn timestamps_outside_four_digit_years_still_format() {
        let far = Utc.with_ymd_and_hms(12_345, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_timestamp(&far), "+12345-01-02T03:04:05.000Z");
    }

    #[test]
    fn whole_seconds_keep_three_fractional_digits() {
        let timestamp = Utc.timestamp_millis_opt(1_714_566_896_000).unwrap();
        assert_eq!(format_timestamp(&timestamp), "2024-05-01T12:34:56.000Z");
    }
}
