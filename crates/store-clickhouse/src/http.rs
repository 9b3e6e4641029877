//! ClickHouse's HTTP interface: one statement per POST, settings in the URL, rows back as
//! `JSONCompact`, rows in as `JSONEachRow`. ClickHouse 18.16 has no query parameters, so
//! values reach statements as literals written by [`quote`] and [`crate::bind`].

use std::time::Duration;

use heartbeat_query::RunError;
use heartbeat_store::StoreError;
use serde_json::Value;

/// Why a request gave no answer.
#[derive(Debug)]
pub(crate) enum ChError {
    /// The server could not be reached, or the connection broke or timed out.
    Io(String),
    /// The server answered with an exception (`Code: N, e.displayText() = ...`).
    Server { code: u32, message: String },
}

impl std::fmt::Display for ChError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChError::Io(message) => write!(f, "ClickHouse unreachable: {message}"),
            ChError::Server { message, .. } => write!(f, "ClickHouse: {message}"),
        }
    }
}

/// ClickHouse's error codes that mean the data itself was refused (a value that does not
/// parse as its column's type), so a retry of the same data cannot help.
const DATA_ERRORS: &[u32] = &[6, 26, 27, 38, 41, 53, 69, 70, 72, 117];
/// `MEMORY_LIMIT_EXCEEDED`.
const MEMORY_LIMIT_EXCEEDED: u32 = 241;
/// `QUERY_WAS_CANCELLED`.
const QUERY_WAS_CANCELLED: u32 = 394;

impl From<ChError> for StoreError {
    fn from(err: ChError) -> StoreError {
        match err {
            ChError::Server { code, message } if DATA_ERRORS.contains(&code) => {
                StoreError::Rejected { message }
            }
            other => StoreError::Unavailable {
                message: other.to_string(),
            },
        }
    }
}

impl From<ChError> for RunError {
    fn from(err: ChError) -> RunError {
        match err {
            ChError::Server { code, message } if code == MEMORY_LIMIT_EXCEEDED => {
                RunError::OutOfMemory { message }
            }
            ChError::Server { code, .. } if code == QUERY_WAS_CANCELLED => RunError::Interrupted,
            other => RunError::failed(other),
        }
    }
}

/// The exception's code in ClickHouse's error text (0 when there is none).
fn error_code(text: &str) -> u32 {
    text.split_once("Code: ")
        .map(|(_, rest)| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

/// `text` as a ClickHouse string literal: in single quotes, with `\` and `'` escaped by a
/// backslash (the only two characters a literal cannot hold as they are).
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A comma-separated list of string literals, for `IN (...)`.
pub(crate) fn quoted_list<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    texts.into_iter().map(quote).collect::<Vec<_>>().join(",")
}

/// One HTTP client for every shard (a connection pool per host).
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    /// How long one of the store's own statements may take.
    request_timeout: Duration,
}

/// Settings every request carries: 64-bit numbers as JSON numbers (not strings), and inserts
/// into a `Distributed` table that return only once every shard stored its rows.
const COMMON_SETTINGS: &[(&str, &str)] = &[
    ("output_format_json_quote_64bit_integers", "0"),
    ("insert_distributed_sync", "1"),
];

/// One request to one server.
pub(crate) struct Request<'a> {
    pub url: &'a str,
    /// The default database of the statement; `None` before it exists.
    pub database: Option<&'a str>,
    pub body: String,
    pub query_id: Option<&'a str>,
    /// More settings (`max_execution_time`, ...).
    pub settings: Vec<(&'static str, String)>,
    /// `None`: the client's request timeout.
    pub timeout: Option<Duration>,
}

impl<'a> Request<'a> {
    pub fn new(url: &'a str, database: Option<&'a str>, body: String) -> Self {
        Request {
            url,
            database,
            body,
            query_id: None,
            settings: Vec::new(),
            timeout: None,
        }
    }
}

impl Http {
    pub(crate) fn new(
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|err| StoreError::Unavailable {
                message: format!("cannot build an HTTP client: {err}"),
            })?;
        Ok(Http {
            client,
            request_timeout,
        })
    }

    /// Sends one request; an answer that is not 200 becomes [`ChError::Server`].
    pub(crate) async fn send(&self, request: Request<'_>) -> Result<reqwest::Response, ChError> {
        let mut params: Vec<(&str, String)> = COMMON_SETTINGS
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect();
        if let Some(database) = request.database {
            params.push(("database", database.to_owned()));
        }
        if let Some(id) = request.query_id {
            params.push(("query_id", id.to_owned()));
        }
        params.extend(request.settings);
        let response = self
            .client
            .post(request.url)
            .query(&params)
            .timeout(request.timeout.unwrap_or(self.request_timeout))
            .body(request.body)
            .send()
            .await
            .map_err(|err| ChError::Io(err.to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|err| ChError::Io(err.to_string()))?;
        Err(ChError::Server {
            code: error_code(&text),
            message: format!("{status}: {}", text.trim()),
        })
    }

    /// Runs a statement that returns nothing of interest.
    pub(crate) async fn execute(
        &self,
        url: &str,
        database: Option<&str>,
        sql: String,
    ) -> Result<(), ChError> {
        let response = self.send(Request::new(url, database, sql)).await?;
        response
            .bytes()
            .await
            .map_err(|err| ChError::Io(err.to_string()))?;
        Ok(())
    }

    /// Runs a `SELECT` and returns its rows as JSON cells (`JSONCompact`'s `data`).
    pub(crate) async fn rows(
        &self,
        url: &str,
        database: &str,
        sql: String,
    ) -> Result<Vec<Vec<Value>>, ChError> {
        let response = self
            .send(Request::new(
                url,
                Some(database),
                format!("{sql} FORMAT JSONCompact"),
            ))
            .await?;
        let text = response
            .text()
            .await
            .map_err(|err| ChError::Io(err.to_string()))?;
        let (_, rows) = parse_json_compact(&text)?;
        Ok(rows)
    }

    /// Inserts `rows` (JSON objects keyed by column) into `table`, one block.
    pub(crate) async fn insert(
        &self,
        url: &str,
        database: &str,
        table: &str,
        rows: &[serde_json::Map<String, Value>],
    ) -> Result<(), ChError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = format!("INSERT INTO {table} FORMAT JSONEachRow\n");
        for row in rows {
            body.push_str(&Value::Object(row.clone()).to_string());
            body.push('\n');
        }
        self.execute(url, Some(database), body).await
    }

    /// Stops the query `query_id` on `url` (`KILL QUERY ... ASYNC`: asks, does not wait).
    pub(crate) async fn kill(&self, url: &str, query_id: &str) -> Result<(), ChError> {
        self.execute(
            url,
            None,
            format!("KILL QUERY WHERE query_id = {} ASYNC", quote(query_id)),
        )
        .await
    }
}

/// Column types and rows of a `JSONCompact` answer.
pub(crate) type Columns = Vec<String>;

pub(crate) fn parse_json_compact(text: &str) -> Result<(Columns, Vec<Vec<Value>>), ChError> {
    let bad = |what: &str| ChError::Io(format!("unexpected answer ({what}): {:.200}", text));
    let mut value: Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let types = value["meta"]
        .as_array()
        .ok_or_else(|| bad("no meta"))?
        .iter()
        .map(|column| column["type"].as_str().unwrap_or("String").to_owned())
        .collect();
    let rows = match value["data"].take() {
        Value::Array(rows) => rows
            .into_iter()
            .map(|row| match row {
                Value::Array(cells) => Ok(cells),
                _ => Err(bad("a row is not an array")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("no data")),
    };
    Ok((types, rows))
}

/// Cells of the store's own statements, read by the column's known type.
pub(crate) mod cell {
    use super::ChError;
    use serde_json::Value;

    fn bad(value: &Value, what: &str) -> ChError {
        ChError::Io(format!("expected {what}, got {value}"))
    }

    pub(crate) fn u64(value: &Value) -> Result<u64, ChError> {
        match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| bad(value, "an unsigned integer"))
    }

    pub(crate) fn i64(value: &Value) -> Result<i64, ChError> {
        match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| bad(value, "an integer"))
    }

    pub(crate) fn u32(value: &Value) -> Result<u32, ChError> {
        u32::try_from(u64(value)?).map_err(|_| bad(value, "a 32-bit integer"))
    }

    pub(crate) fn string(value: &Value) -> Result<String, ChError> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad(value, "a string"))
    }

    pub(crate) fn opt_string(value: &Value) -> Result<Option<String>, ChError> {
        match value {
            Value::Null => Ok(None),
            other => string(other).map(Some),
        }
    }

    pub(crate) fn opt_i64(value: &Value) -> Result<Option<i64>, ChError> {
        match value {
            Value::Null => Ok(None),
            other => i64(other).map(Some),
        }
    }

    pub(crate) fn bool(value: &Value) -> Result<bool, ChError> {
        Ok(u64(value)? != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_escape_backslashes_and_quotes() {
        assert_eq!(quote(r"it's a \ test"), r"'it\'s a \\ test'");
    }

    #[test]
    fn reads_the_error_code() {
        assert_eq!(
            error_code("Code: 241, e.displayText() = DB::Exception: Memory limit"),
            241
        );
        assert_eq!(error_code("garbage"), 0);
    }
}
