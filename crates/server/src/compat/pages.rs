//! Plausible's cursor pagination of its Sites API lists (sites; goals and guests page the
//! same way): `limit` (default 100, at most 1,000), and `after` or `before`, opaque cursors
//! from an earlier answer's `meta`. Shared by the routes that answer such lists.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

use crate::http::error::ApiError;

/// A list's page parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Rows per page, 1 to 1,000 (default 100); keep it the same while paging.
    pub limit: Option<String>,
    /// The page after this cursor (`meta.after` of the previous answer).
    pub after: Option<String>,
    /// The page before this cursor (`meta.before` of the previous answer).
    pub before: Option<String>,
}

/// One page of a list and its `meta`: `after` is null on the last page, `before` on the first.
pub(crate) struct Page<T> {
    pub entries: Vec<T>,
    pub meta: Value,
}

/// Rows per page when the request says nothing, and at most.
const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1_000;

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message.clone()).with_detail(field, message)
}

/// Cuts one page out of `items`, which are in list order and strictly descending by `key`
/// (unique). A cursor is the hex of the JSON of an entry's key, so a page boundary holds
/// even when entries around it are added or deleted meanwhile.
pub(crate) fn paginate<T, K>(
    items: Vec<T>,
    key: impl Fn(&T) -> K,
    params: &PageParams,
) -> Result<Page<T>, ApiError>
where
    K: Ord + serde::Serialize + serde::de::DeserializeOwned,
{
    let limit = match params.limit.as_deref().filter(|l| !l.is_empty()) {
        None => PAGE_DEFAULT,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| {
                invalid(
                    "limit",
                    format!("Parameter `limit` must be a number, got {text:?}"),
                )
            })?
            .clamp(1, PAGE_MAX),
    };
    let cursor = |field: &str, text: &str| -> Result<K, ApiError> {
        hex::decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                invalid(
                    field,
                    format!("Parameter `{field}` is not a cursor of this list"),
                )
            })
    };
    let encode = |item: &T| hex::encode(serde_json::to_vec(&key(item)).unwrap_or_default());
    let after = params.after.as_deref().filter(|c| !c.is_empty());
    let before = params.before.as_deref().filter(|c| !c.is_empty());
    let (entries, has_before, has_after) = match (after, before) {
        (Some(text), _) => {
            let from = cursor("after", text)?;
            let rest: Vec<T> = items.into_iter().filter(|i| key(i) < from).collect();
            let more = rest.len() > limit;
            (rest.into_iter().take(limit).collect::<Vec<T>>(), true, more)
        }
        (None, Some(text)) => {
            let to = cursor("before", text)?;
            let mut head: Vec<T> = items.into_iter().filter(|i| key(i) > to).collect();
            let skip = head.len().saturating_sub(limit);
            (head.split_off(skip), skip > 0, true)
        }
        (None, None) => {
            let more = items.len() > limit;
            (items.into_iter().take(limit).collect(), false, more)
        }
    };
    let meta = json!({
        "after": if has_after { entries.last().map(&encode) } else { None },
        "before": if has_before { entries.first().map(&encode) } else { None },
        "limit": limit,
    });
    Ok(Page { entries, meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(limit: &str, after: Option<&str>, before: Option<&str>) -> (Vec<i64>, Value) {
        let params = PageParams {
            limit: Some(limit.into()),
            after: after.map(Into::into),
            before: before.map(Into::into),
        };
        let page = paginate(vec![5, 4, 3, 2, 1], |n: &i64| *n, &params).unwrap();
        (page.entries, page.meta)
    }

    #[test]
    fn pages_forward_and_back() {
        let (first, meta) = page("2", None, None);
        assert_eq!(first, vec![5, 4]);
        assert_eq!(meta["before"], Value::Null);
        let (second, meta) = page("2", meta["after"].as_str(), None);
        assert_eq!(second, vec![3, 2]);
        let (third, last) = page("2", meta["after"].as_str(), None);
        assert_eq!(third, vec![1]);
        assert_eq!(last["after"], Value::Null);
        let (back, meta) = page("2", None, last["before"].as_str());
        assert_eq!(back, vec![3, 2]);
        let (start, meta) = page("2", None, meta["before"].as_str());
        assert_eq!(start, vec![5, 4]);
        assert_eq!(meta["before"], Value::Null);
        assert_eq!(meta["limit"], 2);
    }
}
