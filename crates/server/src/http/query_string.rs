//! Query strings read into a route's parameters ([`QueryParams`], or [`LaterQuery`] after an
//! access check), always answering bad
//! input in the one error shape, never axum's plain-text rejection:
//!
//! - every bad parameter is named at once, as the client spelt it (`limit=abc&siteId=` names
//!   `limit`, and a later error about the site names `siteId`, not `site_id`);
//! - a repeated key is a list, read as its values joined by commas: the seeds' list
//!   parameters take both `dimensions=device,page` and `dimensions=device&dimensions=page`.
//!   A scalar parameter given twice then fails as one bad value.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use heartbeat_ingest::FieldError;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// A query string read into `T` (see the module's documentation).
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        read(parts.uri.query().unwrap_or("")).map(QueryParams)
    }
}

/// A query string read into `T` only when the handler calls [`LaterQuery::read`]: after its
/// access check, so a caller who may not see the resource gets its 403 or 404 and learns
/// nothing of the parameters (an extractor's 400 would come first).
pub struct LaterQuery<T> {
    query: String,
    into: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> LaterQuery<T> {
    pub fn read(&self) -> Result<T, ApiError> {
        read(&self.query)
    }
}

impl<T, S: Send + Sync> FromRequestParts<S> for LaterQuery<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(LaterQuery {
            query: parts.uri.query().unwrap_or("").to_owned(),
            into: PhantomData,
        })
    }
}

/// The query string's pairs in their first order, a repeated key's values joined by commas
/// (empty ones left out).
pub(crate) fn pairs(query: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, joined)) if joined.is_empty() => *joined = value.into_owned(),
            Some((_, _)) if value.is_empty() => {}
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => pairs.push((key.into_owned(), value.into_owned())),
        }
    }
    pairs
}

/// Reads `query` into `T`, or a 400 naming every parameter `T` cannot take: each bad one is
/// left out in turn and the rest read again, so one bad value never hides another.
pub(crate) fn read<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let mut pairs = pairs(query);
    let mut errors = Vec::new();
    loop {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(params) if errors.is_empty() => return Ok(params),
            Ok(_) => break,
            Err(err) => {
                let field = err.path().to_string();
                let message = message(&field, &err.inner().to_string());
                match pairs.iter().position(|(key, _)| *key == field) {
                    Some(index) => {
                        errors.push(FieldError::new(&field, message));
                        pairs.remove(index);
                    }
                    None => {
                        errors.push(FieldError::new("query", message));
                        break;
                    }
                }
            }
        }
    }
    Err(ApiError::invalid(errors))
}

/// What is wrong with parameter `field`, in words a client can act on.
fn message(field: &str, serde_message: &str) -> String {
    let number = [
        "digit",
        "parse integer",
        "too large",
        "too small",
        "parse float",
    ];
    if number.iter().any(|part| serde_message.contains(part)) {
        format!("{field} must be a whole number")
    } else if field == "." || field.is_empty() {
        serde_message.to_owned()
    } else {
        format!("{field}: {serde_message}")
    }
}

/// Spellings of one parameter that the seeds' read endpoints take interchangeably.
const SAME_PARAMETER: [&[&str]; 4] = [
    &["site_id", "siteId"],
    &["startDate", "start_date", "startTime", "from"],
    &["endDate", "end_date", "endTime", "to"],
    &["range", "period"],
];

/// `err` with each field named as the client spelt it in `sent` (its query string's keys):
/// a route reports `site_id` or `startDate` whichever spelling it was given.
pub(crate) fn as_sent(mut err: ApiError, sent: &[String]) -> ApiError {
    for detail in &mut err.details {
        let Some(group) = SAME_PARAMETER
            .iter()
            .find(|group| group.contains(&detail.field.as_str()))
        else {
            continue;
        };
        let mut given = sent.iter().filter(|key| group.contains(&key.as_str()));
        if let (Some(spelling), None) = (given.next(), given.next()) {
            detail.field = spelling.clone();
        }
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Params {
        #[serde(alias = "siteId")]
        site_id: Option<String>,
        limit: Option<usize>,
        page: Option<u32>,
        dimensions: Option<String>,
    }

    fn fields(query: &str) -> Vec<String> {
        read::<Params>(query)
            .unwrap_err()
            .details
            .into_iter()
            .map(|d| d.field)
            .collect()
    }

    #[test]
    fn reads_a_good_query_string() {
        let params: Params = read("siteId=a.com&limit=5").unwrap();
        assert_eq!(params.site_id.as_deref(), Some("a.com"));
        assert_eq!(params.limit, Some(5));
        let params: Params = read("").unwrap();
        assert_eq!(params.limit, None);
    }

    #[test]
    fn names_every_bad_parameter() {
        assert_eq!(fields("limit=abc&page=-1&siteId=x"), ["limit", "page"]);
        assert_eq!(fields("limit=2.5"), ["limit"]);
        let err = read::<Params>("limit=abc").unwrap_err();
        assert_eq!(err.details[0].message, "limit must be a whole number");
    }

    #[test]
    fn repeated_keys_are_lists() {
        let params: Params = read("dimensions=device&dimensions=page&dimensions=").unwrap();
        assert_eq!(params.dimensions.as_deref(), Some("device,page"));
        let params: Params = read("dimensions=device,location").unwrap();
        assert_eq!(params.dimensions.as_deref(), Some("device,location"));
        assert_eq!(fields("limit=1&limit=2"), ["limit"]);
    }

    #[test]
    fn errors_name_parameters_as_sent() {
        let err = ApiError::invalid(vec![
            FieldError::new("site_id", "no site"),
            FieldError::new("startDate", "bad"),
            FieldError::new("limit", "bad"),
        ]);
        let sent = ["siteId".to_owned(), "from".to_owned(), "limit".to_owned()];
        let fields: Vec<String> = as_sent(err, &sent)
            .details
            .into_iter()
            .map(|d| d.field)
            .collect();
        assert_eq!(fields, ["siteId", "from", "limit"]);
    }
}
