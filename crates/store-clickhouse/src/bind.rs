//! Binding [`SqlValue`]s into SQL text: ClickHouse 18.16 has no query parameters, so each
//! `?` placeholder (outside string literals, quoted names and comments) is replaced by its
//! value as a literal. Text is quoted by [`quote`], so no value can end its literal early.

use chrono::{TimeZone, Utc};
use heartbeat_query::{RunError, Sql, SqlValue};

use crate::http::quote;

/// `value` as a ClickHouse literal.
pub(crate) fn literal(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => "NULL".to_owned(),
        SqlValue::Bool(v) => u8::from(*v).to_string(),
        SqlValue::Int(v) => v.to_string(),
        SqlValue::UInt(v) => v.to_string(),
        SqlValue::Float(v) if v.is_nan() => "nan".to_owned(),
        SqlValue::Float(v) if v.is_infinite() => if *v > 0.0 { "inf" } else { "-inf" }.to_owned(),
        // `{:?}` keeps a decimal point (`1.0`), so the literal stays a Float64.
        SqlValue::Float(v) => format!("{v:?}"),
        SqlValue::Text(v) => quote(v),
        SqlValue::TimestampMs(ms) => timestamp_literal(*ms),
        SqlValue::Blob(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
            format!("unhex('{hex}')")
        }
    }
}

/// A UTC time as a `DateTime` literal: whole seconds (18.16 has no `DateTime64`), rounded
/// down.
pub(crate) fn timestamp_literal(ms: i64) -> String {
    let at = Utc
        .timestamp_opt(ms.div_euclid(1000), 0)
        .single()
        .unwrap_or_default()
        .naive_utc();
    format!("toDateTime('{}', 'UTC')", at.format("%Y-%m-%d %H:%M:%S"))
}

/// `sql`'s text with its parameters written in; fails when the count of placeholders and
/// parameters differ.
pub(crate) fn bind(sql: &Sql) -> Result<String, RunError> {
    let mut out = String::with_capacity(sql.text.len() + 16 * sql.params.len());
    let mut params = sql.params.iter();
    let mut chars = sql.text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '?' => {
                let value = params.next().ok_or_else(|| {
                    RunError::failed("the statement has more placeholders than parameters")
                })?;
                out.push_str(&literal(value));
            }
            // A string literal or a quoted name: copied whole, escapes included.
            '\'' | '"' | '`' => {
                out.push(c);
                while let Some(inner) = chars.next() {
                    out.push(inner);
                    if inner == '\\' {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                        }
                    } else if inner == c {
                        // A doubled quote stays inside the literal.
                        if chars.peek() == Some(&c) {
                            out.extend(chars.next());
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut previous = ' ';
                for inner in chars.by_ref() {
                    out.push(inner);
                    if previous == '*' && inner == '/' {
                        break;
                    }
                    previous = inner;
                }
            }
            other => out.push(other),
        }
    }
    if params.next().is_some() {
        return Err(RunError::failed(
            "the statement has fewer placeholders than parameters",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str, params: Vec<SqlValue>) -> Sql {
        Sql {
            text: text.to_owned(),
            params,
        }
    }

    #[test]
    fn placeholders_outside_literals_are_replaced() {
        let bound = bind(&sql(
            "SELECT '?', \"a?\", ? -- ?\n, ? /* ? */, 'it''s ?', 'x\\'?'",
            vec![SqlValue::Text("o'k\\".into()), SqlValue::UInt(7)],
        ))
        .unwrap();
        assert_eq!(
            bound,
            "SELECT '?', \"a?\", 'o\\'k\\\\' -- ?\n, 7 /* ? */, 'it''s ?', 'x\\'?'"
        );
    }

    #[test]
    fn counts_must_match() {
        assert!(bind(&sql("SELECT ?", vec![])).is_err());
        assert!(bind(&sql("SELECT 1", vec![SqlValue::Null])).is_err());
    }

    #[test]
    fn literals() {
        assert_eq!(literal(&SqlValue::Float(1.0)), "1.0");
        assert_eq!(literal(&SqlValue::Bool(true)), "1");
        assert_eq!(literal(&SqlValue::Int(-3)), "-3");
        assert_eq!(
            literal(&SqlValue::TimestampMs(1_704_067_200_999)),
            "toDateTime('2024-01-01 00:00:00', 'UTC')"
        );
        assert_eq!(literal(&SqlValue::Blob(vec![0, 255])), "unhex('00FF')");
    }
}
