//! Ingest routes: every wire format's door onto the one `Ingestor::accept`. Each answers 202
//! only once the events are durable in the queue.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::{Json, Router};
use heartbeat_ingest::{decode, DecodeError, Decoded};
use serde_json::json;

use crate::app::{App, Client, MaybeCaller, Payload};
use crate::error::ApiError;
use crate::telemetry;

async fn accept(
    app: &App,
    decoded: Decoded,
    client: &Client,
    caller: &MaybeCaller,
) -> Result<usize, ApiError> {
    let grant = caller.0.as_ref().map(|c| &c.grant);
    let count = app.ingestor.accept(decoded, &client.0, grant).await?;
    metrics::counter!(telemetry::INGEST_EVENTS_ACCEPTED).increment(count as u64);
    Ok(count)
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

/// A door for a format that answers `{"success": true, "accepted": N}`.
fn door(decoder: fn(&[u8]) -> Result<Decoded, DecodeError>) -> MethodRouter<App> {
    post(
        move |State(app): State<App>,
              client: Client,
              caller: MaybeCaller,
              Payload(body): Payload| async move {
            let count = accept(&app, decoder(&body)?, &client, &caller).await?;
            Ok::<_, ApiError>(accepted(count))
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
        .route_layer(axum::middleware::from_fn(
            telemetry::http::count_ingest_rejections,
        ))
}
