//! Ingest routes: every wire format's door onto the one `Ingestor::accept`. Each answers 202
//! only once the events are durable in the queue.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use heartbeat_ingest::enrich::page::normalize_host;
use heartbeat_ingest::{decode, DecodeError, Decoded, Outcome, SiteDirectory, SiteRef};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::state::{App, Client, MaybeCaller, Payload};
use crate::telemetry;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Header on a 202 whose events were all dropped (a bot, an excluded path ...), naming the
/// reason, as Plausible's `x-plausible-dropped`. The body is the same as for a stored event.
pub const DROPPED_HEADER: &str = "x-heartbeat-dropped";

/// An ingest request: the app, the client, the caller (if any credential came) and the body.
pub(crate) struct IngestRequest {
    app: App,
    client: Client,
    caller: MaybeCaller,
    body: Bytes,
}

impl FromRequest<App> for IngestRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &App) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let client = Client::from_request_parts(&mut parts, app).await?;
        let caller = MaybeCaller::from_request_parts(&mut parts, app).await?;
        let Payload(body) = Payload::from_request(Request::from_parts(parts, body), app).await?;
        Ok(IngestRequest {
            app: app.clone(),
            client,
            caller,
            body,
        })
    }
}

type Decoder = fn(&[u8]) -> Result<Decoded, DecodeError>;

impl IngestRequest {
    /// A public door (the tracker's): limited per client IP; answers
    /// `{"success": true, "accepted": N}`.
    async fn public(self, decode: Decoder) -> Result<Response, ApiError> {
        self.app.limits.check_ip(self.client.0.ip).await?;
        let outcome = self.accept(decode(&self.body)?).await?;
        Ok(accepted(&outcome))
    }

    /// A keyed door: the key is checked before the body, so a caller without one learns
    /// nothing; answers `{"success": true, "accepted": N}`.
    async fn keyed(self, decode: Decoder) -> Result<Response, ApiError> {
        if self.caller.0.is_none() {
            return Err(ApiError::unauthorized());
        }
        let outcome = self.accept(decode(&self.body)?).await?;
        Ok(accepted(&outcome))
    }

    async fn accept(&self, decoded: Decoded) -> Result<Outcome, ApiError> {
        let app = &self.app;
        if let Some(caller) = &self.caller.0 {
            // A key of one site is checked by the ingestor; wider callers (organisation
            // keys, users) may only name sites they reach, and share links never send events.
            if caller.is_share() {
                return Err(ApiError::new(StatusCode::FORBIDDEN, "Forbidden")
                    .with_detail("x-api-key", "a public dashboard link cannot send events"));
            }
            if caller.grant.site_id.is_none() {
                for event in &decoded.events {
                    if let Some(SiteRef::Id(id)) = &event.site {
                        if !caller.may_write(id) {
                            let field = event.names.at(event.names.site);
                            return Err(ApiError::forbidden_as(&field, id.as_str()));
                        }
                    }
                }
            }
        }
        let grant = self.caller.0.as_ref().map(|c| c.grant.clone());
        check_site_quotas(app, &decoded, grant.as_ref()).await?;
        // On a task of its own: a client that goes away mid-append (a tab closed right after
        // `sendBeacon`) neither cancels the append nor leaves its events uncounted.
        let (ingestor, client) = (app.ingestor.clone(), self.client.0.clone());
        let accepted = tokio::spawn(async move {
            let outcome = ingestor.accept(decoded, &client, grant.as_ref()).await?;
            metrics::counter!(telemetry::INGEST_EVENTS_ACCEPTED).increment(outcome.accepted as u64);
            Ok::<_, heartbeat_ingest::IngestError>(outcome)
        });
        Ok(accepted.await.map_err(|_| ApiError::internal())??)
    }
}

/// Counts the request's events against each named site's ingest quota (sites nobody has are
/// left to the ingestor, which answers 404).
async fn check_site_quotas(
    app: &App,
    decoded: &Decoded,
    grant: Option<&heartbeat_ingest::KeyGrant>,
) -> Result<(), ApiError> {
    if !app.limits.settings().enabled {
        return Ok(());
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for event in &decoded.events {
        let site = match &event.site {
            Some(SiteRef::Domain(domain)) => app
                .registry
                .by_domain(&normalize_host(domain))
                .map(|site| site.id.0),
            Some(SiteRef::Id(id)) => Some(id.0.clone()),
            Some(SiteRef::Key) | None => grant.and_then(|g| g.site_id.clone()).map(|id| id.0),
        };
        let Some(site) = site else { continue };
        match counts.iter_mut().find(|(s, _)| *s == site) {
            Some((_, n)) => *n += 1,
            None => counts.push((site, 1)),
        }
    }
    for (site, n) in counts {
        app.limits.check_site(&site, n).await?;
    }
    Ok(())
}

/// A 202 with `body`, marked when nothing of the request was stored.
fn answer(outcome: &Outcome, body: impl IntoResponse) -> Response {
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    if outcome.accepted == 0 {
        if let Some(reason) = outcome.reason {
            response
                .headers_mut()
                .insert(DROPPED_HEADER, HeaderValue::from_static(reason.as_str()));
        }
    }
    response
}

fn accepted(outcome: &Outcome) -> Response {
    let mut body = json!({"success": true, "accepted": outcome.accepted});
    if outcome.dropped > 0 {
        body["dropped"] = outcome.dropped.into();
    }
    answer(outcome, Json(body))
}

/// Plausible's Events API (answers `ok` like Plausible) or seed 002's keyed event (answers
/// seed 002's body). Public for the tracker: the site is found by its domain.
#[utoipa::path(post, path = "/api/event", tag = "ingest",
    request_body(content = crate::http::schema::PlausibleEvent, content_type = "application/json",
        description = "JSON, or the same JSON sent as `text/plain` by trackers"),
    security((), ("api_key" = [])),
    responses(
        (status = 202, description = "Durable in the queue: `ok`, or seed 002's `{success, message, processing_time_ms}`", body = String),
        (status = 400, description = "Invalid event; each bad field is named", body = crate::http::schema::ErrorBody),
        (status = 404, description = "No site has this domain", body = crate::http::schema::ErrorBody),
        (status = 413, description = "Body too large", body = crate::http::schema::ErrorBody),
        (status = 415, description = "Neither JSON nor text", body = crate::http::schema::ErrorBody),
        (status = 429, description = "Rate limited (per client IP, per key or the site's quota); retry after `Retry-After` seconds", body = crate::http::schema::ErrorBody),
        (status = 503, description = "Queue full; retry after `Retry-After` seconds", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn api_event(request: IngestRequest) -> Result<Response, ApiError> {
    let started = Instant::now();
    request.app.limits.check_ip(request.client.0.ip).await?;
    let decoded = decode::api_event(&request.body)?;
    let seed_002 = decoded.needs_key;
    let outcome = request.accept(decoded).await?;
    if seed_002 {
        let body = json!({
            "success": true,
            "message": "Event queued successfully",
            "processing_time_ms": started.elapsed().as_millis() as u64,
        });
        Ok(answer(&outcome, Json(body)))
    } else {
        Ok(answer(&outcome, "ok"))
    }
}

/// Seed 000's tracker event; public, the site is found by `domain`.
#[utoipa::path(post, path = "/events", tag = "ingest",
    request_body = crate::http::schema::TrackerEvent,
    security((), ("api_key" = [])),
    responses(
        (status = 202, description = "Durable in the queue", body = crate::http::schema::AcceptedBody),
        (status = 400, description = "Invalid event", body = crate::http::schema::ErrorBody),
        (status = 404, description = "No site has this domain", body = crate::http::schema::ErrorBody),
        (status = 503, description = "Queue full", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn tracker_events(request: IngestRequest) -> Result<Response, ApiError> {
    request.public(decode::tracker_events).await
}

/// Seed 000's tracker event where the original Heartbeat's tracker (`client/heartbeat.js`)
/// and its `api.http` send it; the same as `POST /events`.
#[utoipa::path(post, path = "/v1/intake", tag = "ingest",
    request_body = crate::http::schema::TrackerEvent,
    security((), ("api_key" = [])),
    responses(
        (status = 202, description = "Durable in the queue", body = crate::http::schema::AcceptedBody),
        (status = 400, description = "Invalid event", body = crate::http::schema::ErrorBody),
        (status = 404, description = "No site has this domain", body = crate::http::schema::ErrorBody),
        (status = 503, description = "Queue full", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn intake(request: IngestRequest) -> Result<Response, ApiError> {
    request.public(decode::tracker_events).await
}

/// Seed 004's event; needs a key.
#[utoipa::path(post, path = "/api/events", tag = "ingest",
    request_body = crate::http::schema::RealtimeEvent,
    security(("api_key" = []), ("bearer" = [])),
    responses(crate::http::schema::KeyedIngestAnswers))]
pub(crate) async fn realtime_events(request: IngestRequest) -> Result<Response, ApiError> {
    request.keyed(decode::realtime_events).await
}

/// Seeds 003 and 001: one event or an array of up to 1,000; needs a key. Events with a
/// client id (`id`, `eventId`) are stored once.
#[utoipa::path(post, path = "/api/v1/events", tag = "ingest",
    request_body = crate::http::schema::V1Event,
    security(("api_key" = []), ("bearer" = [])),
    responses(crate::http::schema::KeyedIngestAnswers))]
pub(crate) async fn v1_events(request: IngestRequest) -> Result<Response, ApiError> {
    request.keyed(decode::v1_events).await
}

/// Seed 001's batch; needs a key.
#[utoipa::path(post, path = "/api/v1/events/batch", tag = "ingest",
    request_body = crate::http::schema::V1Batch,
    security(("api_key" = []), ("bearer" = [])),
    responses(crate::http::schema::KeyedIngestAnswers))]
pub(crate) async fn v1_batch(request: IngestRequest) -> Result<Response, ApiError> {
    request.keyed(decode::v1_batch).await
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(api_event))
        .routes(routes!(tracker_events))
        .routes(routes!(intake))
        .routes(routes!(realtime_events))
        .routes(routes!(v1_events))
        .routes(routes!(v1_batch))
        .route_layer(axum::middleware::from_fn(
            telemetry::http::count_ingest_rejections,
        ))
}
