//! Ingest routes: every wire format's door onto the one `Ingestor::accept`. Each answers 202
//! only once the events are durable in the queue.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use heartbeat_ingest::{decode, DecodeError, Decoded};
use serde_json::json;

use crate::app::{App, Client, MaybeCaller, Payload};
use crate::error::ApiError;

async fn accept(
    app: &App,
    decoded: Decoded,
    client: &Client,
    caller: &MaybeCaller,
) -> Result<usize, ApiError> {
    let grant = caller.0.as_ref().map(|c| &c.grant);
    Ok(app.ingestor.accept(decoded, &client.0, grant).await?)
}

fn accepted(count: usize) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({"success": true, "accepted": count})),
    )
        .into_response()
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
    accept(&app, decoded, &client, &caller).await?;
    if seed_002 {
        let body = json!({
            "success": true,
            "message": "Event queued successfully",
            "processing_time_ms": started.elapsed().as_millis() as u64,
        });
        Ok((StatusCode::ACCEPTED, Json(body)).into_response())
    } else {
        Ok((StatusCode::ACCEPTED, "ok").into_response())
    }
}

async fn with_decoder(
    app: App,
    client: Client,
    caller: MaybeCaller,
    body: &[u8],
    decoder: fn(&[u8]) -> Result<Decoded, DecodeError>,
) -> Result<Response, ApiError> {
    let decoded = decoder(body)?;
    let count = accept(&app, decoded, &client, &caller).await?;
    Ok(accepted(count))
}

/// `POST /events` (seed 000's tracker).
async fn tracker_events(
    State(app): State<App>,
    client: Client,
    caller: MaybeCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    with_decoder(app, client, caller, &body, decode::tracker_events).await
}

/// `POST /api/events` (seed 004).
async fn realtime_events(
    State(app): State<App>,
    client: Client,
    caller: MaybeCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    with_decoder(app, client, caller, &body, decode::realtime_events).await
}

/// `POST /api/v1/events` (seeds 003 and 001, one event or up to 1,000).
async fn v1_events(
    State(app): State<App>,
    client: Client,
    caller: MaybeCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    with_decoder(app, client, caller, &body, decode::v1_events).await
}

/// `POST /api/v1/events/batch` (seed 001).
async fn v1_batch(
    State(app): State<App>,
    client: Client,
    caller: MaybeCaller,
    Payload(body): Payload,
) -> Result<Response, ApiError> {
    with_decoder(app, client, caller, &body, decode::v1_batch).await
}

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/event", post(api_event))
        .route("/events", post(tracker_events))
        .route("/api/events", post(realtime_events))
        .route("/api/v1/events", post(v1_events))
        .route("/api/v1/events/batch", post(v1_batch))
}
