//! `GET /api/live`: who may open a site's stream (a key in a header or the `token`
//! parameter, allowed to read that site), and what flows on it (current visitors, then each
//! stored event of that site only, then a close when the server stops).

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(server: &TestServer, query: &str) -> String {
    format!("{}/api/live?{query}", server.base.replacen("http", "ws", 1))
}

/// Opens a stream; `Err(status)` when the handshake is refused.
async fn open(url: &str, bearer: Option<&str>) -> Result<Socket, u16> {
    let mut request = url.into_client_request().unwrap();
    if let Some(key) = bearer {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

/// The next JSON message, within a deadline.
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a message within 20 s")
            .expect("the stream is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next message of `kind`, skipping periodic visitor counts.
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let message = next_json(socket).await;
        if message["type"] == kind {
            return message;
        }
        assert_eq!(message["type"], "visitors", "{message}");
    }
}

async fn pageview(server: &TestServer, domain: &str, path: &str) {
    let response = server
        .http
        .post(server.url("/api/event"))
        .header("user-agent", UA)
        .header("content-type", "text/plain")
        .body(
            json!({"n": "pageview", "u": format!("https://{domain}{path}"), "d": domain})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("x-heartbeat-dropped").is_none());
}

#[tokio::test]
async fn live_stream_refuses_missing_wrong_and_other_sites_keys() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key_a = server.create_site("a.example", "UTC").await;
    let _key_b = server.create_site("b.example", "UTC").await;

    assert_eq!(
        open(&ws_url(&server, "site_id=a.example"), None)
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        open(&ws_url(&server, "site_id=a.example&token=hb_wrong"), None)
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        open(&ws_url(&server, "site_id=a.example"), Some("hb_wrong"))
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        open(
            &ws_url(&server, &format!("site_id=b.example&token={key_a}")),
            None
        )
        .await
        .err(),
        Some(403)
    );
    assert_eq!(
        open(&ws_url(&server, "site_id=b.example"), Some(&key_a))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        open(&ws_url(&server, "site_id=nope.example"), Some(ADMIN))
            .await
            .err(),
        Some(404)
    );

    // Refusals and a plain (non-WebSocket) request answer in the one error shape.
    let response = server
        .http
        .get(server.url("/api/live?site_id=b.example"))
        .bearer_auth(&key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["details"][0]["field"], "site_id");
    let response = server
        .http
        .get(server.url("/api/live?site_id=a.example"))
        .bearer_auth(&key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["details"][0]["field"], "upgrade");

    // The site's own key opens it, in the header or as the token; so does the admin key.
    assert!(open(
        &ws_url(&server, &format!("site_id=a.example&token={key_a}")),
        None
    )
    .await
    .is_ok());
    assert!(open(&ws_url(&server, ""), Some(&key_a)).await.is_ok());
    assert!(open(&ws_url(&server, "site_id=b.example"), Some(ADMIN))
        .await
        .is_ok());
    server.stop().await;
}

#[tokio::test]
async fn live_stream_sends_visitors_then_each_stored_event_of_its_site() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key_a = server.create_site("a.example", "UTC").await;
    server.create_site("b.example", "UTC").await;

    let mut socket = open(
        &ws_url(&server, &format!("site_id=a.example&token={key_a}")),
        None,
    )
    .await
    .unwrap();
    let hello = next_json(&mut socket).await;
    assert_eq!(hello, json!({"type": "visitors", "current_visitors": 0}));

    // Another site's event never shows; this site's arrives once stored, in order.
    pageview(&server, "b.example", "/other-site").await;
    pageview(&server, "a.example", "/first").await;
    pageview(&server, "a.example", "/second").await;
    let first = next_of(&mut socket, "event").await;
    assert_eq!(first["event"]["name"], "pageview");
    assert_eq!(first["event"]["pathname"], "/first");
    assert_eq!(first["event"]["hostname"], "a.example");
    assert_eq!(first["event"]["browser"], "Chrome");
    assert!(first["event"].get("visitor_id").is_none());
    let second = next_of(&mut socket, "event").await;
    assert_eq!(second["event"]["pathname"], "/second");
    // Stored means queryable: the API counts both.
    server.wait_for_events(&key_a, "a.example", 2).await;

    // The periodic count includes the new visitor.
    loop {
        let visitors = next_of(&mut socket, "visitors").await;
        if visitors["current_visitors"] == 1 {
            break;
        }
        assert_eq!(visitors["current_visitors"], 0, "{visitors}");
    }

    // Stopping the server closes the stream with 1001 (going away).
    let stop = tokio::spawn(server.stop());
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("closed within 20 s")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            Some(Err(err)) => panic!("stream failed instead of closing: {err}"),
            None => panic!("stream ended without a close frame"),
        }
    };
    assert_eq!(
        closed.map(|f| u16::from(f.code)),
        Some(1001),
        "closed as going away"
    );
    stop.await.unwrap();
}
