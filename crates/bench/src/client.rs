//! The benchmark's HTTP client: one keep-alive HTTP/1.1 connection per worker, opened lazily
//! and reopened after any failure, so that a worker never shares a connection and a broken
//! connection costs one counted error rather than the run.
//!
//! Only `http://host:port[/base]` servers are supported: a benchmark talks to a local server.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request may take before it counts as timed out and its connection is dropped.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the server is: `host:port` to connect to and a path prefix for every route.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    host_header: HeaderValue,
    /// Path prefix without a trailing slash, usually empty.
    base_path: String,
}

impl Target {
    /// Parses `http://host:port[/base]`; the port defaults to 80.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("invalid URL {url}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported, got {url}");
        }
        let authority = uri.authority().context("URL has no host")?;
        let authority = match authority.port() {
            Some(_) => authority.to_string(),
            None => format!("{}:80", authority.host()),
        };
        Ok(Self {
            host_header: HeaderValue::from_str(&authority)?,
            authority,
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// A GET request builder for `path` (which starts with `/`) with the `Host` header set.
    pub fn get(&self, path: &str) -> hyper::http::request::Builder {
        Request::get(format!("{}{path}", self.base_path)).header(HOST, self.host_header.clone())
    }

    /// A POST request builder for `path` (which starts with `/`) with the `Host` header set.
    pub fn post(&self, path: &str) -> hyper::http::request::Builder {
        Request::post(format!("{}{path}", self.base_path)).header(HOST, self.host_header.clone())
    }
}

/// A server answer with its whole body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

/// What went wrong with a request that got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Connecting, writing or reading failed, or the server closed the connection.
    Connection,
    /// No answer within [`REQUEST_TIMEOUT`].
    Timeout,
}

/// One keep-alive connection to the target.
pub struct Connection {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection that will be opened on the first request.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    /// Opens the connection now rather than on the first request.
    pub async fn connect_now(&mut self) -> anyhow::Result<()> {
        if self.sender.is_none() {
            self.sender = Some(self.connect().await?);
        }
        Ok(())
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends `request` and reads the whole answer. After a failure the connection is dropped
    /// and the next request opens a new one.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response, (Failure, anyhow::Error)> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.send_without_timeout(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => {
                self.sender = None;
                Err((Failure::Connection, error))
            }
            Err(_) => {
                self.sender = None;
                Err((
                    Failure::Timeout,
                    anyhow::anyhow!("no answer within {REQUEST_TIMEOUT:?}"),
                ))
            }
        }
    }

    async fn send_without_timeout(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<Response> {
        if self.sender.as_ref().is_none_or(|sender| sender.is_closed()) {
            self.sender = Some(self.connect().await?);
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await.context("connection closed")?;
        let response = sender
            .send_request(request)
            .await
            .context("request failed")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the answer failed")?
            .to_bytes();
        Ok(Response { status, body })
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(&self.target.authority)
            .await
            .with_context(|| format!("cannot connect to {}", self.target.authority))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake failed")?;
        // The connection task ends when the sender is dropped or the server hangs up; its
        // errors surface on the next request.
        tokio::spawn(connection);
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_base_path() {
        let target = Target::parse("http://127.0.0.1:3000/").unwrap();
        assert_eq!(target.authority, "127.0.0.1:3000");
        assert_eq!(target.base_path, "");
        let target = Target::parse("http://localhost/heartbeat/").unwrap();
        assert_eq!(target.authority, "localhost:80");
        let request = target.post("/api/event").body(()).unwrap();
        assert_eq!(request.uri(), "/heartbeat/api/event");
        assert_eq!(request.headers()[HOST], "localhost:80");
    }

    #[test]
    fn rejects_https_and_garbage() {
        assert!(Target::parse("https://example.com").is_err());
        assert!(Target::parse("not a url").is_err());
    }
}
