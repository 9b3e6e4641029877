//! What every read endpoint does first: take its caller and parameters and hand its work to
//! the query pool ([`PooledRead`]); find the site a request is about and check that the
//! caller may read it; and parse and run a v2 query (through the query cache), or a funnel,
//! for it.

use heartbeat_ingest::FieldError;
use heartbeat_model::SiteId;
use heartbeat_query::funnel::{parse_funnel, run_funnel, FunnelQuery, FunnelResult};
use heartbeat_query::{first_event_ms, parse_query, requested_site, QueryResult};
use serde_json::Value;

use std::future::Future;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::http::query_string::{as_sent, pairs};
use crate::http::state::{App, Caller, QueryParams, RequiredCaller};

/// What a read's work answers: a JSON body or the error.
pub(crate) type Answer = Result<axum::Json<Value>, ApiError>;

/// A read request: its authenticated caller (checked first), its query-string parameters
/// `P` and the route it came by. [`PooledRead::answer`] runs the read's work on the query
/// pool, labelled with the route.
pub(crate) struct PooledRead<P> {
    app: App,
    caller: Caller,
    params: P,
    route: String,
    /// The query string's keys as the client spelt them, for naming them in errors.
    sent: Vec<String>,
}

impl<P: serde::de::DeserializeOwned + Send> FromRequestParts<App> for PooledRead<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let RequiredCaller(caller) = RequiredCaller::from_request_parts(parts, app).await?;
        let QueryParams(params) = QueryParams::<P>::from_request_parts(parts, app).await?;
        let sent = pairs(parts.uri.query().unwrap_or(""))
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        Ok(PooledRead {
            app: app.clone(),
            caller,
            params,
            route,
            sent,
        })
    }
}

impl<P> PooledRead<P> {
    /// Runs `work` on the query pool, within its budgets, and answers what it returns; its
    /// errors name each parameter as the client spelt it.
    pub(crate) async fn answer<T, W, F>(self, work: W) -> Result<Response, ApiError>
    where
        T: IntoResponse,
        W: FnOnce(App, Caller, P) -> F,
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let queries = self.app.queries.clone();
        let sent = self.sent;
        queries
            .run(&self.route, work(self.app, self.caller, self.params))
            .await
            .map_err(|err| as_sent(err, &sent))
    }
}

/// The site a read request is about: the one it names (`site_id`), else the caller's own
/// key's site; the caller must be allowed to read it.
pub(crate) fn read_site(
    app: &App,
    caller: &Caller,
    named: Option<&str>,
) -> Result<heartbeat_model::Site, ApiError> {
    let site_id = match named.filter(|s| !s.is_empty()) {
        Some(id) => SiteId(id.to_owned()),
        None => caller.grant.site_id.clone().ok_or_else(|| {
            ApiError::invalid(vec![FieldError::new(
                "site_id",
                "site_id is required with an admin key",
            )])
        })?,
    };
    let site = app
        .registry
        .site(&site_id)
        .ok_or_else(|| ApiError::not_found("site_id", format!("no site {site_id}")))?;
    if !caller.may_read(&site.id) {
        return Err(ApiError::forbidden(site.id.as_str()));
    }
    Ok(site)
}

/// Authorizes `caller` on the site `body` names, parses and runs the query.
pub(crate) async fn run_query(
    app: &App,
    caller: &Caller,
    body: &Value,
) -> Result<(heartbeat_query::Query, QueryResult), ApiError> {
    let site_id = requested_site(body)?;
    let site = read_site(app, caller, Some(site_id.as_str()))?;
    let (now, first_event) = read_times(app, &site, body).await?;
    let query = parse_query(
        body,
        &site,
        &app.goals.of_site(&site.id),
        now,
        first_event,
        &app.queries.settings.bounds(),
    )?;
    let result = app.query_cache.execute(&query, app.reads.as_ref()).await?;
    Ok((query, result))
}

/// Parses and runs the funnel `body` asks (`POST /api/v2/funnel`'s shape: steps, window,
/// order, v2's `date_range` and `filters`, breakdown) on `site`, which the caller has been
/// checked to read.
pub(crate) async fn run_funnel_on(
    app: &App,
    site: &heartbeat_model::Site,
    body: &Value,
) -> Result<(FunnelQuery, FunnelResult), ApiError> {
    let (now, first_event) = read_times(app, site, body).await?;
    let query = parse_funnel(body, site, now, first_event, &app.queries.settings.bounds())
        .map_err(ApiError::from)?;
    let reads = app.reads.as_ref();
    let result = app
        .query_cache
        .answer(&site.id, &query, reads, || run_funnel(&query, reads))
        .await?;
    Ok((query, result))
}

/// Now, and where `"date_range": "all"` of request `body` starts ([`all_starts_at`]), in
/// UTC milliseconds: the two instants every v2-shaped read resolves its range against.
pub(crate) async fn read_times(
    app: &App,
    site: &heartbeat_model::Site,
    body: &Value,
) -> Result<(i64, i64), ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    Ok((now, all_starts_at(app, site, body, now).await?))
}

/// Where `"date_range": "all"` of request `body` starts: on the day of the site's first
/// event (today for a site without any); `now_ms` when the body asks for another range.
async fn all_starts_at(
    app: &App,
    site: &heartbeat_model::Site,
    body: &Value,
    now_ms: i64,
) -> Result<i64, ApiError> {
    Ok(match body.get("date_range").and_then(Value::as_str) {
        Some("all") => first_event_ms(&site.id, app.reads.as_ref())
            .await?
            .unwrap_or(now_ms),
        _ => now_ms,
    })
}
