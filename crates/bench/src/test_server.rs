//! Tiny in-process HTTP servers for this crate's tests: a generic one that answers with a
//! handler, and an ingest stand-in that checks the benchmark's requests the way Heartbeat
//! would (paths, headers, body shapes) and answers 202 when they are well formed.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::load::{BATCH_PATH, HEALTH_PATH, SINGLE_EVENT_PATH};

/// A server running on a free local port until the test's runtime ends.
pub struct TestServer {
    pub address: SocketAddr,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicU64>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Serves every request with `handler(request head, whole body) -> (status, body)`.
pub async fn serve<H>(handler: H) -> TestServer
where
    H: Fn(&Parts, &[u8]) -> (StatusCode, Vec<u8>) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let accepted = Arc::clone(&connections);
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let handler = Arc::clone(&handler);
            let service = service_fn(move |request: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let (status, answer) = handler(&parts, &body);
                    let response = hyper::Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::from(answer)))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    TestServer {
        address,
        connections,
    }
}

/// What the ingest stand-in saw.
#[derive(Default)]
pub struct Seen {
    pub requests: AtomicU64,
    /// Events in well-formed, accepted requests.
    pub events: AtomicU64,
    pub event_ids: Mutex<HashSet<String>>,
    /// Timestamps of accepted batch items, in arrival order.
    pub timestamps: Mutex<Vec<String>>,
}

/// An ingest stand-in: 202 for well-formed requests, 200 for `GET /health`, 400 otherwise, and 503 for every
/// `reject_every`-th request when that is above 0.
pub async fn serve_ingest(reject_every: u64) -> (TestServer, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let judged = Arc::clone(&seen);
    let server = serve(move |parts, body| {
        let status = judge(&judged, reject_every, parts, body);
        (status, b"{}".to_vec())
    })
    .await;
    (server, seen)
}

fn judge(seen: &Seen, reject_every: u64, parts: &Parts, body: &[u8]) -> StatusCode {
    let number = seen.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if reject_every > 0 && number % reject_every == 0 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if parts.uri.path() == HEALTH_PATH {
        return if parts.method == hyper::Method::GET && body.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let user_agent_ok = header("user-agent").starts_with("Mozilla/5.0");
    let well_formed = match parts.uri.path() {
        SINGLE_EVENT_PATH => {
            let ok = user_agent_ok
                && header("content-type") == "text/plain"
                && header("x-forwarded-for")
                    .parse::<std::net::IpAddr>()
                    .is_ok()
                && json["domain"] == "example.com"
                && json["url"]
                    .as_str()
                    .is_some_and(|url| url.starts_with("https://example.com/"))
                && json["name"].is_string();
            if ok {
                seen.events.fetch_add(1, Ordering::SeqCst);
            }
            ok
        }
        BATCH_PATH => {
            let items = json.as_array().cloned().unwrap_or_default();
            let mut ids = seen.event_ids.lock().unwrap();
            let ok = user_agent_ok
                && header("content-type") == "application/json"
                && header("x-api-key") == "secret"
                && !items.is_empty()
                && items.iter().all(|item| {
                    item["properties"]["url"].is_string()
                        && item["userId"].is_string()
                        && item["eventName"].is_string()
                        && item["timestamp"].is_string()
                        && ids.insert(item["eventId"].as_str().unwrap_or("").to_string())
                });
            if ok {
                seen.events.fetch_add(items.len() as u64, Ordering::SeqCst);
                let mut timestamps = seen.timestamps.lock().unwrap();
                for item in &items {
                    timestamps.push(item["timestamp"].as_str().unwrap_or("").to_string());
                }
            }
            ok
        }
        _ => false,
    };
    if well_formed {
        StatusCode::ACCEPTED
    } else {
        StatusCode::BAD_REQUEST
    }
}
