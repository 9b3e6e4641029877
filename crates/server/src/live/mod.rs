//! `GET /api/live?site_id=` (WebSocket): a site's current visitors and each of its events
//! once the processor has stored it.
//!
//! Authentication happens before the upgrade, so a refusal is an ordinary HTTP error in the
//! one shape: the key comes from `x-api-key` / `Authorization: Bearer` or, since browsers
//! cannot set headers on a WebSocket, from the `token` query parameter; it must be allowed to
//! read the site (`Caller::may_read`), so one site's key never reads another.
//!
//! Messages (server to client, JSON text):
//! - `{"type": "visitors", "current_visitors": 3}` on connect and every 5 seconds;
//! - `{"type": "event", "event": {"name", "timestamp", "pathname", "hostname", "props",
//!   "revenue", "source", "channel", "country", "region", "city", "browser", "os", "device"}}`
//!   for each stored event of the site that happened in the last 30 minutes (event time), in
//!   event-time order within a stored batch: a backfilled or replayed batch of old events is
//!   not what "live" means, and would push what just happened out of view;
//! - `{"type": "resync", "missed_batches": N}` when the client fell so far behind that stored
//!   batches were skipped for it: reload what you show from the query API.
//!
//! The processor publishes into a bounded broadcast channel and never waits for a client
//! ([`hub::LiveHub`]); on a node whose processors do not store every event, [`follow`]
//! publishes what the store received instead. A client that does not take a message within 10 seconds is dropped; on
//! server shutdown every stream closes with code 1001 (going away).

pub mod follow;
pub mod hub;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use heartbeat_model::SiteId;
// Events older than this (event time) are not streamed; the processor publishes no older ones.
use heartbeat_processor::LIVE_WINDOW_MS;
use heartbeat_query::current_visitors;
use heartbeat_store::InsertBatch;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::event_json::live_event;
use crate::http::error::ApiError;
use crate::http::reads::read_site;
use crate::http::state::{App, Caller, Client, MaybeCaller, QueryParams};

/// How often a stream sends the current visitors.
const VISITORS_INTERVAL: Duration = Duration::from_secs(5);
/// How long a client may take to accept one message before it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
pub(crate) struct LiveParams {
    site_id: Option<String>,
    /// A read or admin key, for clients that cannot set headers (browsers).
    token: Option<String>,
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

/// Opens a site's live stream.
#[utoipa::path(get, path = "/api/live", tag = "stats",
    params(
        ("site_id" = Option<String>, Query, description = "The site; default: the key's own site"),
        ("token" = Option<String>, Query, description = "A read or admin key, instead of a header (browsers cannot set headers on a WebSocket)"),
    ),
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 101, description = "WebSocket of JSON messages: `{type: \"visitors\", current_visitors}` on connect and every 5 s, `{type: \"event\", event}` per stored event, `{type: \"resync\", missed_batches}` after a client fell behind"),
        (status = 400, description = "Not a WebSocket request, or an invalid parameter", body = crate::http::schema::ErrorBody),
        (status = 401, description = "No or bad key", body = crate::http::schema::ErrorBody),
        (status = 403, description = "The key may not read this site", body = crate::http::schema::ErrorBody),
        (status = 404, description = "No such site", body = crate::http::schema::ErrorBody),
    ))]
pub(crate) async fn live(
    State(app): State<App>,
    MaybeCaller(caller): MaybeCaller,
    Client(client): Client,
    params: Result<QueryParams<LiveParams>, ApiError>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let QueryParams(params) = params?;
    let caller: Caller = match (caller, params.token.as_deref().map(str::trim)) {
        (Some(caller), _) => caller,
        (None, Some(token)) if !token.is_empty() => {
            let caller = app
                .registry
                .authenticate(token)
                .ok_or_else(ApiError::unauthorized)?;
            // The same limits as a token in a header.
            app.limits.check_caller(&caller, client.ip).await?;
            caller
        }
        (None, _) => return Err(ApiError::unauthorized()),
    };
    let site = read_site(&app, &caller, params.site_id.as_deref())?;
    let upgrade = upgrade.map_err(|err| {
        ApiError::new(StatusCode::BAD_REQUEST, "Validation failed")
            .with_detail("upgrade", format!("a WebSocket request is required: {err}"))
    })?;
    // Subscribe before the upgrade completes, so no event stored after the answer is missed.
    let stored = app.live.stored.subscribe();
    Ok(upgrade.on_upgrade(move |socket| stream(socket, app, site.id, stored)))
}

/// What a stream sends for one receive from the processor's feed: the site's events of a
/// stored batch, or a resync when batches were skipped because the client fell behind;
/// `None` when the feed has ended.
fn messages_for(
    received: Result<Arc<InsertBatch>, broadcast::error::RecvError>,
    site: &SiteId,
    now_ms: i64,
) -> Option<Vec<Value>> {
    match received {
        Ok(batch) => {
            let mut events: Vec<_> = batch
                .events
                .iter()
                .filter(|e| &e.site_id == site && e.timestamp_ms >= now_ms - LIVE_WINDOW_MS)
                .collect();
            events.sort_by_key(|e| e.timestamp_ms);
            Some(
                events
                    .into_iter()
                    .map(|e| json!({"type": "event", "event": live_event(e)}))
                    .collect(),
            )
        }
        Err(broadcast::error::RecvError::Lagged(missed)) => {
            tracing::debug!(site = %site, missed, "live: client fell behind");
            Some(vec![json!({"type": "resync", "missed_batches": missed})])
        }
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

/// Sends `message`; false when the client is gone or too slow.
async fn send(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

async fn stream(
    mut socket: WebSocket,
    app: App,
    site: SiteId,
    mut stored: broadcast::Receiver<Arc<InsertBatch>>,
) {
    let mut shutdown = app.live.shutdown.clone();
    let mut visitors_tick = tokio::time::interval(VISITORS_INTERVAL);
    visitors_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = visitors_tick.tick() => {
                let now = chrono::Utc::now().timestamp_millis();
                let (store, counted_site) = (app.reads.clone(), site.clone());
                let counting = app.queries.compute("/api/live", async move {
                    Ok(current_visitors(&counted_site, now, store.as_ref()).await?)
                });
                let count = match counting.await {
                    Ok(count) => count,
                    Err(err) => {
                        // Busy or slow: the count comes with a later tick.
                        tracing::debug!(site = %site, error = ?err, "live: current visitors skipped");
                        continue;
                    }
                };
                if !send(&mut socket, text(json!({"type": "visitors", "current_visitors": count}))).await {
                    return;
                }
            }
            received = stored.recv() => {
                let now = chrono::Utc::now().timestamp_millis();
                let Some(messages) = messages_for(received, &site, now) else { break };
                let resync = messages.first().is_some_and(|m| m["type"] == "resync");
                for message in messages {
                    if !send(&mut socket, text(message)).await {
                        return;
                    }
                }
                if resync {
                    visitors_tick.reset_immediately();
                }
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the WebSocket layer; clients have nothing to say.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = async { shutdown.wait_for(|stop| *stop).await.map(|_| ()) } => break,
        }
    }
    let close = CloseFrame {
        code: close_code::AWAY,
        reason: "server stopping".into(),
    };
    let _ = send(&mut socket, Message::Close(Some(close))).await;
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(live))
}

#[cfg(test)]
mod tests {
    use heartbeat_model::Event;

    use super::*;

    fn batch(events: &[(&str, &str)]) -> Arc<InsertBatch> {
        Arc::new(InsertBatch {
            events: events
                .iter()
                .map(|(site, path)| {
                    let mut event = Event::new("id", SiteId((*site).into()), "pageview", 0);
                    event.pathname = (*path).into();
                    event
                })
                .collect(),
            ..InsertBatch::default()
        })
    }

    fn paths(messages: &[Value]) -> Vec<&str> {
        messages
            .iter()
            .map(|m| m["event"]["pathname"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_gets_a_resync_then_new_events() {
        let site = SiteId("a.example".into());
        let (feed, mut stream) = broadcast::channel(2);
        for i in 0..5 {
            feed.send(batch(&[("a.example", &format!("/{i}"))]))
                .unwrap();
        }
        // The publisher never waited; the stream lost the 3 oldest batches and says so.
        let resync = messages_for(stream.recv().await, &site, 0).unwrap();
        assert_eq!(resync, vec![json!({"type": "resync", "missed_batches": 3})]);
        let next = messages_for(stream.recv().await, &site, 0).unwrap();
        assert_eq!(paths(&next), ["/3"]);
        let next = messages_for(stream.recv().await, &site, 0).unwrap();
        assert_eq!(paths(&next), ["/4"]);
        drop(feed);
        assert_eq!(messages_for(stream.recv().await, &site, 0), None);
    }

    #[tokio::test]
    async fn only_the_streams_site_is_sent() {
        let site = SiteId("a.example".into());
        let (feed, mut stream) = broadcast::channel(8);
        feed.send(batch(&[
            ("b.example", "/b"),
            ("a.example", "/a"),
            ("b.example", "/c"),
        ]))
        .unwrap();
        let messages = messages_for(stream.recv().await, &site, 0).unwrap();
        assert_eq!(paths(&messages), ["/a"]);
        assert_eq!(messages[0]["type"], "event");
        assert!(messages[0]["event"].get("visitor_id").is_none());
    }

    #[tokio::test]
    async fn old_events_of_a_backfill_are_not_live_and_the_rest_come_in_event_time_order() {
        let site = SiteId("a.example".into());
        let now = 1_770_000_000_000;
        let (feed, mut stream) = broadcast::channel(8);
        let at = |path: &str, age_ms: i64| {
            let mut event = Event::new("id", site.clone(), "pageview", now - age_ms);
            event.pathname = path.into();
            event
        };
        feed.send(Arc::new(InsertBatch {
            events: vec![
                at("/two-days-ago", 2 * 86_400_000),
                at("/a-minute-ago", 60_000),
                at("/just-now", 0),
                at("/31-minutes-ago", 31 * 60_000),
                at("/29-minutes-ago", 29 * 60_000),
            ],
            ..InsertBatch::default()
        }))
        .unwrap();
        let messages = messages_for(stream.recv().await, &site, now).unwrap();
        assert_eq!(
            paths(&messages),
            ["/29-minutes-ago", "/a-minute-ago", "/just-now"]
        );
    }
}
