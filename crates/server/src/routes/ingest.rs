//! Ingest routes: every wire format's door onto the one `Ingestor::accept`. Each answers 202
//! only once the events are durable in the queue.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::{Json, Router};
use heartbeat_ingest::{decode, DecodeError, Decoded, Outcome};
use serde_json::json;

use crate::app::{App, Client, MaybeCaller, Payload};
use crate::error::ApiError;

/// Header on a 202 whose events were all dropped (a bot, an excluded path ...), naming the
/// reason, as Plausible's `x-plausible-dropped`. The body is the same as for a stored event.
pub const DROPPED_HEADER: &str = "x-heartbeat-dropped";

async fn accept(
    app: &App,
    decoded: Decoded,
    client: &Client,
    caller: &MaybeCaller,
) -> Result<Outcome, ApiError> {
    let grant = caller.0.as_ref().map(|c| &c.grant);
    Ok(app.ingestor.accept(decoded, &client.0, grant).await?)
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

/// `POST /api/event`: Plausible's Events API (answers `ok` like Plausible) or seed 002's
/// keyed event (answers seed 002's body).
async fn api_event(
    State(app): State<App>,
    client: Client,
    caller: MaybeCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let decoded = decode::api_event(&body)?;
    let seed_002 = decoded.needs_key;
    let outcome = accept(&app, decoded, &client, &caller).await?;
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

/// A door for a format that answers `{"success": true, "accepted": N}`.
fn door(decoder: fn(&[u8]) -> Result<Decoded, DecodeError>) -> MethodRouter<App> {
    post(
        move |State(app): State<App>,
              client: Client,
              caller: MaybeCaller,
              Payload(body): Payload| async move {
            let outcome = accept(&app, decoder(&body)?, &client, &caller).await?;
            Ok::<_, ApiError>(accepted(&outcome))
        },
    )
}

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/event", post(api_event))
        // Seed 000's tracker.
        .route("/events", door(decode::tracker_events))
        // Seed 004.
        .route("/api/events", door(decode::realtime_events))
        // Seeds 003 and 001: one event or up to 1,000.
        .route("/api/v1/events", door(decode::v1_events))
        // Seed 001's batch.
        .route("/api/v1/events/batch", door(decode::v1_batch))
}
