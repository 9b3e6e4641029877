//! The connection to the broker, made again on use after it is lost.
//!
//! Reconnect-on-use: no background task watches the connection. Each call asks
//! [`Links::get`] for the current [`Link`]; a closed or failed connection is replaced by a
//! new one (declarations included), and a failed attempt makes the calls of the next pause
//! (doubling from `reconnect_backoff` up to `reconnect_backoff_max`) fail at once with
//! `QueueError::Unavailable` instead of waiting on a broker that is down.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use heartbeat_queue::QueueError;
use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::options::AmqpOptions;

/// `QueueError::Unavailable` with what was being done.
pub(crate) fn unavailable(doing: &str, error: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable {
        message: format!("{doing}: {error}"),
    }
}

/// Runs one call to the broker, at most `limit` long. A broker that does not answer in time
/// is taken as lost: the caller drops the link.
pub(crate) async fn bounded<T>(
    limit: Duration,
    doing: &str,
    call: impl Future<Output = lapin::Result<T>>,
) -> Result<T, QueueError> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(unavailable(doing, error)),
        Err(_) => Err(unavailable(doing, format!("no answer within {limit:?}"))),
    }
}

/// One connection to the broker, with the stream and its companion queue declared.
pub(crate) struct Link {
    /// Tells links apart: a consumer or publisher made on an older link is made anew.
    pub generation: u64,
    pub connection: Connection,
}

impl Link {
    pub fn is_open(&self) -> bool {
        self.connection.status().connected()
    }

    /// A new channel on this connection, in confirm mode when `confirms`.
    pub async fn channel(
        &self,
        options: &AmqpOptions,
        confirms: bool,
    ) -> Result<Channel, QueueError> {
        let channel = bounded(
            options.connect_timeout,
            "opening a channel",
            self.connection.create_channel(),
        )
        .await?;
        if confirms {
            bounded(
                options.connect_timeout,
                "enabling publisher confirms",
                channel.confirm_select(ConfirmSelectOptions::default()),
            )
            .await?;
        }
        Ok(channel)
    }
}

/// Where the current link is kept, and when the next attempt may be made.
pub(crate) struct Links {
    url: String,
    stream: String,
    acked_queue: String,
    options: AmqpOptions,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    current: Option<Arc<Link>>,
    generation: u64,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

impl Links {
    pub fn new(url: &str, stream: &str, acked_queue: &str, options: &AmqpOptions) -> Links {
        Links {
            url: url.to_owned(),
            stream: stream.to_owned(),
            acked_queue: acked_queue.to_owned(),
            options: options.clone(),
            state: Mutex::new(LinkState::default()),
        }
    }

    /// The open link, connecting first when there is none (or it was lost).
    pub async fn get(&self) -> Result<Arc<Link>, QueueError> {
        let mut state = self.state.lock().await;
        if let Some(link) = &state.current {
            if link.is_open() {
                return Ok(link.clone());
            }
            tracing::warn!(stream = %self.stream, "connection to the broker lost; reconnecting");
            state.current = None;
        }
        if let Some(retry_at) = state.retry_at {
            let now = Instant::now();
            if now < retry_at {
                return Err(QueueError::Unavailable {
                    message: format!(
                        "{} (next attempt in {} ms)",
                        state.last_error,
                        (retry_at - now).as_millis()
                    ),
                });
            }
        }
        state.generation += 1;
        match self.connect(state.generation).await {
            Ok(link) => {
                let link = Arc::new(link);
                state.current = Some(link.clone());
                state.failures = 0;
                state.retry_at = None;
                Ok(link)
            }
            Err(error) => {
                let pause = self
                    .options
                    .reconnect_backoff
                    .saturating_mul(1 << state.failures.min(16))
                    .min(self.options.reconnect_backoff_max);
                state.failures += 1;
                state.retry_at = Some(Instant::now() + pause);
                state.last_error = error.to_string();
                tracing::warn!(stream = %self.stream, %error, ?pause, "cannot reach the broker");
                Err(error)
            }
        }
    }

    /// Gives up the link of `generation` (a broker that stopped answering): the next call
    /// connects anew.
    pub async fn drop_link(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if let Some(link) = state.current.take_if(|link| link.generation == generation) {
            close_in_background(link);
        }
    }

    /// Closes the current link, if any (the queue is dropped).
    pub fn close(&self) {
        if let Ok(mut state) = self.state.try_lock() {
            if let Some(link) = state.current.take() {
                close_in_background(link);
            }
        }
    }

    async fn connect(&self, generation: u64) -> Result<Link, QueueError> {
        let limit = self.options.connect_timeout;
        let properties = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio);
        let connection = bounded(
            limit,
            "connecting to the broker",
            Connection::connect(&self.url, properties),
        )
        .await?;
        let link = Link {
            generation,
            connection,
        };
        let declared = self.declare(&link).await;
        if let Err(error) = declared {
            close_in_background(Arc::new(link));
            return Err(error);
        }
        Ok(link)
    }

    /// Declares the stream and the queue that keeps its acknowledged cursor (both durable;
    /// declaring what exists with the same arguments changes nothing).
    async fn declare(&self, link: &Link) -> Result<(), QueueError> {
        let limit = self.options.connect_timeout;
        let channel = link.channel(&self.options, false).await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let mut stream = FieldTable::default();
        stream.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("stream".into()),
        );
        stream.insert(
            "x-max-length-bytes".into(),
            AMQPValue::LongLongInt(
                i64::try_from(self.options.max_length_bytes).unwrap_or(i64::MAX),
            ),
        );
        stream.insert(
            "x-max-age".into(),
            AMQPValue::LongString(self.options.max_age.as_str().into()),
        );
        bounded(
            limit,
            "declaring the stream",
            channel.queue_declare(&self.stream, durable, stream),
        )
        .await?;
        let mut acked = FieldTable::default();
        acked.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("classic".into()),
        );
        acked.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
        acked.insert(
            "x-overflow".into(),
            AMQPValue::LongString("drop-head".into()),
        );
        bounded(
            limit,
            "declaring the acknowledged-cursor queue",
            channel.queue_declare(&self.acked_queue, durable, acked),
        )
        .await?;
        bounded(limit, "closing a channel", channel.close(200, "declared")).await?;
        Ok(())
    }
}

/// Closes a connection without waiting for the broker's answer.
fn close_in_background(link: Arc<Link>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                link.connection.close(200, "closed by heartbeat"),
            )
            .await;
        });
    }
}
