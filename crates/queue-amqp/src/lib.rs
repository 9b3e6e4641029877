//! Heartbeat's [`EventQueue`] on RabbitMQ: [`AmqpQueue`], a durable RabbitMQ **stream**
//! used over AMQP 0.9.1 (the `lapin` crate).
//!
//! # The mapping
//!
//! - **Messages** go to a durable stream (`x-queue-type: stream`) named by
//!   [`AmqpQueue::open`]'s `name` (one stream per queue, several per broker). A stream is an
//!   append-only log: a consumer subscribes at an offset (`x-stream-offset`) and the broker
//!   hands out everything from there, as often as asked. That is what the contract needs:
//!   replay from any cursor, and acknowledged messages handed out again after a restart.
//! - **Cursor = stream offset + 1.** A delivery's offset is its `x-stream-offset` header;
//!   [`Cursor::START`] (0) is before the first message, and `receive(after)` subscribes at
//!   offset `after` (the one just after the message whose cursor is `after`). One consumer
//!   is kept and reused while receives go on from where it stands; a receive from elsewhere
//!   subscribes anew. The broker feeds a consumer asynchronously, so a receive from before
//!   the last message this handle knows of waits up to `catch_up_wait` for the messages up
//!   to that one (at most `max`) even when asked not to wait, then takes what has already
//!   arrived after them; from the end, it waits up to `wait` for a new one. A receive ends
//!   once its payloads reach `max_receive_bytes`, and the consumer holds at most `prefetch`
//!   messages beyond it: what a reader holds is bounded by configuration.
//! - **Appends** are published persistent, `mandatory`, on a channel in confirm mode, and
//!   resolve only on the broker's confirm, sent once the stream committed the message (a
//!   quorum of its replicas wrote it; streams do not fsync each write, durability comes from
//!   replication, so on a single-node broker a message is as safe as the OS's page cache):
//!   a nack, a returned (unroutable) message or no confirm within `confirm_timeout` is an
//!   error. Concurrent appends share one channel, each awaiting its own confirm. Payloads of
//!   more than `max_message_bytes` are refused (`RecordTooLarge`), and so are appends past
//!   `max_pending_messages` (`Full`, counted in messages).
//! - **An append's cursor** is a lower bound of the offset the broker gives the message,
//!   plus one: AMQP does not tell the publisher the offset. A channel's messages reach the
//!   stream in the order they were published and each takes the next free offset, so the
//!   `i`-th message (from 0) published on a channel opened when the stream's tail was known
//!   to be at least `base` (the end of the last message seen, appended or delivered) gets an
//!   offset of at least `base + i`: the append answers `Cursor(base + i + 1)`, which its
//!   delivery's cursor reaches (`appended <= delivered`, as the contract asks) and which
//!   grows from one append to the next. It is exact when this handle is the stream's only
//!   publisher. A failed publish may have taken no offset, so the bound of the messages after
//!   it on that channel would be one too high: they fail too (the confirms are settled in
//!   publish order), and the next append opens a new channel from a new `base`.
//! - **The acknowledged cursor** lives in the broker, in a companion durable classic queue
//!   `<name>.acked` (`x-max-length: 1`, `x-overflow: drop-head`): each [`EventQueue::ack`]
//!   publishes the cursor there (persistent, confirmed), the queue keeps only the latest.
//!   [`AmqpQueue::open`] reads it (`basic.get` then `basic.nack` with requeue, so the
//!   message stays) and keeps it in memory for [`EventQueue::acked`]. Stream deliveries are
//!   acknowledged to the channel too (every half prefetch during a receive, so a receive may
//!   take more than the prefetch), but on a stream that only grants consumer credit.
//!   One consumer per stream is the design (the processor of that partition): a second
//!   handle opening while another holds the message for that instant reads no cursor.
//! - **Backlog**: messages between the acknowledged cursor and the end of the last message
//!   this handle knows of (found at open by consuming the stream's last chunk from
//!   `x-stream-offset: last`, taken as whole after a short quiet spell or 2 s of steady
//!   appends, or as empty when nothing comes within `tail_probe_wait`; then moved by its own confirmed appends and by
//!   deliveries). A process that only consumes learns of other processes' appends as they
//!   are delivered.
//! - **Retention**: acknowledgements free nothing in a stream. The stream is declared with
//!   `x-max-length-bytes` and `x-max-age` ([`AmqpOptions`]: 20 GB and 7 days by default) and
//!   the broker drops its oldest segments past them, acknowledged or not. A cursor older
//!   than the retained data resumes at the first retained message.
//!
//! # Guarantees
//!
//! At least once: an append that failed (broker lost, nack, timeout) may still have been
//! stored, and the caller retries it; the processor deduplicates by event id. A consumer that
//! stores its cursor with its data and resumes `receive(after: that cursor)` gets each
//! message once.
//!
//! # Faults
//!
//! A broker that cannot be reached gives `QueueError::Unavailable` after at most
//! `connect_timeout`; a lost connection gives it to the calls in flight. The queue reconnects
//! on the next call (see `link.rs`: reconnect on use, with a doubling pause between
//! attempts during which calls fail at once). The stream must be declared with the same
//! arguments each time: a stream declared by another version with other retention settings
//! makes the declaration fail (`PRECONDITION_FAILED`).
//!
//! # TLS
//!
//! Off by default (a broker on the private network, `amqp://`); the crate's `rustls`
//! feature adds `amqps://`.
//!
//! # Tests
//!
//! `tests/` runs the queue contract (`heartbeat_queue::contract`) and this crate's own
//! checks against a real RabbitMQ (3.10 or later) at `HEARTBEAT_TEST_AMQP_URL`:
//!
//! ```sh
//! scripts/services start
//! source "$(scripts/services env)"
//! cargo test -p heartbeat-queue-amqp
//! ```

mod link;
mod options;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{future, StreamExt};
use heartbeat_queue::{Backlog, Cursor, Delivery, EventQueue, QueueError};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions,
};
use lapin::publisher_confirm::{Confirmation, PublisherConfirm};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Consumer};
use tokio::sync::{oneshot, Mutex};
use tokio::time::Instant;

use link::{bounded, unavailable, Link, Links};
pub use options::AmqpOptions;

/// AMQP's delivery mode of a message written to disk.
const PERSISTENT: u8 = 2;

/// At open, once the stream's last chunk starts arriving, it is taken as whole after this
/// long without a delivery.
const TAIL_QUIET: Duration = Duration::from_millis(150);

/// At open, the longest the probe for the stream's end reads: under steady appends the
/// stream never goes quiet, and the end is only an estimate for the backlog (deliveries and
/// appends move it on), so the probe stops here with what it saw.
const TAIL_PROBE_LIMIT: Duration = Duration::from_secs(2);

/// The most messages [`AmqpQueue::open`] takes from `<name>.acked` (the queue keeps one; a
/// few more may sit there briefly around a requeue).
const MAX_ACKED_MESSAGES: usize = 100;

/// A [`EventQueue`] on a RabbitMQ stream; see the crate documentation for the mapping.
pub struct AmqpQueue {
    name: String,
    acked_queue: String,
    options: AmqpOptions,
    links: Links,
    /// The channel appends are published on (made on first use and after a failure).
    publisher: Mutex<Option<Publisher>>,
    /// The stream consumer receives read from (kept while receives continue where it is).
    reader: Mutex<Option<Reader>>,
    /// The channel acknowledgements are published on, in confirm mode.
    acker: Mutex<Option<(u64, Channel)>>,
    /// The acknowledged cursor, as stored in `<name>.acked`.
    acked: AtomicU64,
    /// What the appends' confirm tasks update.
    progress: Arc<Progress>,
}

/// Counters kept by [`AmqpQueue`] and by the tasks that await its appends' confirms.
#[derive(Default)]
struct Progress {
    /// The end of the last message this handle knows of: the greatest cursor delivered,
    /// answered by a confirmed append, or found at open (0 for an empty stream). Some message
    /// of the stream has a cursor at least this (an acknowledged cursor, which the consumer
    /// could make up, does not count).
    known_end: AtomicU64,
    /// Appends under way: published or about to be, not yet confirmed.
    in_flight: AtomicU64,
}

impl Progress {
    fn saw(&self, cursor: Cursor) {
        self.known_end
            .fetch_max(cursor.to_stored(), Ordering::SeqCst);
    }
}

/// Counts one append under way for as long as it lives.
struct InFlight(Arc<Progress>);

impl InFlight {
    fn start(progress: &Arc<Progress>) -> InFlight {
        progress.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(progress.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The publishing channel and what bounds the offsets of its messages.
struct Publisher {
    generation: u64,
    channel: Channel,
    /// The stream's tail was at least this when the channel was opened.
    base: u64,
    /// Messages published on the channel so far.
    published: u64,
    /// Settles once the previous publish on the channel is settled: `true` when it and all
    /// before it were confirmed.
    previous: Option<oneshot::Receiver<bool>>,
    /// Set when a publish failed: the next append opens a new channel.
    broken: Arc<AtomicBool>,
}

/// A consumer of the stream and where it stands.
struct Reader {
    generation: u64,
    channel: Channel,
    consumer: Consumer,
    /// The cursor of the last delivery handed out (or where it subscribed, minus one).
    position: Cursor,
}

impl AmqpQueue {
    /// Opens the stream `name` on the broker at `url` (`amqp://user:password@host:port/vhost`),
    /// declaring it and `<name>.acked` if they do not exist, and reads where the consumer
    /// stands (the acknowledged cursor) and where the stream ends (for the backlog).
    /// `QueueError::Unavailable` when the broker cannot be reached within
    /// `options.connect_timeout`.
    pub async fn open(url: &str, name: &str, options: AmqpOptions) -> Result<Self, QueueError> {
        let acked_queue = format!("{name}.acked");
        let queue = AmqpQueue {
            links: Links::new(url, name, &acked_queue, &options),
            name: name.to_owned(),
            acked_queue,
            options,
            publisher: Mutex::new(None),
            reader: Mutex::new(None),
            acker: Mutex::new(None),
            acked: AtomicU64::new(0),
            progress: Arc::new(Progress::default()),
        };
        let link = queue.links.get().await?;
        let acked = queue.load_acked(&link).await?;
        let tail = queue.find_tail(&link).await?;
        queue.acked.store(acked.to_stored(), Ordering::SeqCst);
        queue.progress.saw(tail);
        tracing::info!(
            stream = %queue.name,
            acked = acked.to_stored(),
            end = tail.to_stored(),
            "opened the AMQP stream queue"
        );
        Ok(queue)
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn known_end(&self) -> u64 {
        self.progress.known_end.load(Ordering::SeqCst)
    }

    fn pending(&self) -> u64 {
        self.known_end()
            .saturating_sub(self.acked.load(Ordering::SeqCst))
    }

    /// A call to the broker on `link`, bounded by `connect_timeout`; a broker that does not
    /// answer in time costs the link.
    async fn call<T>(
        &self,
        link: &Link,
        doing: &str,
        call: impl std::future::Future<Output = lapin::Result<T>>,
    ) -> Result<T, QueueError> {
        let limit = self.options.connect_timeout;
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(unavailable(doing, error)),
            Err(_) => {
                self.links.drop_link(link.generation).await;
                Err(unavailable(doing, format!("no answer within {limit:?}")))
            }
        }
    }

    /// The acknowledged cursor stored in `<name>.acked`: every message there is taken
    /// (unacknowledged, so none is handed out twice), the greatest cursor kept, and all are
    /// put back with one `basic.nack(multiple, requeue)`.
    async fn load_acked(&self, link: &Link) -> Result<Cursor, QueueError> {
        let channel = link.channel(&self.options, false).await?;
        let mut acked = Cursor::START;
        let mut last_tag = None;
        for _ in 0..MAX_ACKED_MESSAGES {
            let got = self
                .call(
                    link,
                    "reading the acknowledged cursor",
                    channel.basic_get(&self.acked_queue, BasicGetOptions { no_ack: false }),
                )
                .await?;
            let Some(message) = got else { break };
            last_tag = Some(message.delivery.delivery_tag);
            match parse_cursor(&message.delivery.data) {
                Some(cursor) => acked = acked.max(cursor),
                None => tracing::warn!(
                    queue = %self.acked_queue,
                    "ignoring a message that is not a cursor"
                ),
            }
        }
        if let Some(tag) = last_tag {
            self.call(
                link,
                "putting the acknowledged cursor back",
                channel.basic_nack(
                    tag,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                ),
            )
            .await?;
        }
        self.call(link, "closing a channel", channel.close(200, "read"))
            .await?;
        Ok(acked)
    }

    /// The end of the stream's last message (`Cursor::START` for an empty stream): consumes
    /// from `last` (the first message of the last chunk the broker wrote) until the chunk has
    /// arrived, or for at most [`TAIL_PROBE_LIMIT`] after the first delivery while others
    /// keep appending. A stream that delivers nothing within `tail_probe_wait` is taken as
    /// empty.
    async fn find_tail(&self, link: &Link) -> Result<Cursor, QueueError> {
        let (channel, mut consumer) = self
            .subscribe(link, AMQPValue::LongString("last".into()))
            .await?;
        let mut tail = Cursor::START;
        let mut wait = self.options.tail_probe_wait;
        let mut unacked = 0u32;
        let mut first_delivery: Option<tokio::time::Instant> = None;
        loop {
            if first_delivery.is_some_and(|at| at.elapsed() >= TAIL_PROBE_LIMIT) {
                break;
            }
            let next = match tokio::time::timeout(wait, consumer.next()).await {
                Err(_) => break,
                Ok(next) => next,
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => {
                    return Err(unavailable("finding the end of the stream", error))
                }
                None => {
                    return Err(unavailable(
                        "finding the end of the stream",
                        "consumer cancelled",
                    ))
                }
            };
            tail = tail.max(delivery_cursor(&delivery)?);
            first_delivery.get_or_insert_with(tokio::time::Instant::now);
            wait = TAIL_QUIET;
            unacked += 1;
            if unacked >= u32::from(self.options.prefetch / 2).max(1) {
                self.call(
                    link,
                    "acknowledging stream deliveries",
                    channel.basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: true }),
                )
                .await?;
                unacked = 0;
            }
        }
        self.call(
            link,
            "closing a channel",
            channel.close(200, "found the end"),
        )
        .await?;
        Ok(tail)
    }

    /// A new channel consuming the stream from `offset` (a number, or `first`, `last`,
    /// `next`), with the prefetch streams require and manual acknowledgement.
    async fn subscribe(
        &self,
        link: &Link,
        offset: AMQPValue,
    ) -> Result<(Channel, Consumer), QueueError> {
        let channel = link.channel(&self.options, false).await?;
        self.call(
            link,
            "setting the prefetch",
            channel.basic_qos(self.options.prefetch, BasicQosOptions::default()),
        )
        .await?;
        let mut arguments = FieldTable::default();
        arguments.insert("x-stream-offset".into(), offset);
        let consumer = self
            .call(
                link,
                "consuming the stream",
                channel.basic_consume(
                    &self.name,
                    "",
                    BasicConsumeOptions {
                        no_ack: false,
                        ..BasicConsumeOptions::default()
                    },
                    arguments,
                ),
            )
            .await?;
        Ok((channel, consumer))
    }

    /// Publishes `payload` on the publishing channel (opened anew when there is none, it
    /// broke, or the link changed) and answers its cursor bound, its confirm and the settling
    /// chain of the channel. The lock keeps the publish order and the numbering the same.
    async fn publish(
        &self,
        payload: &[u8],
    ) -> Result<(Cursor, PublisherConfirm, Settling), QueueError> {
        let link = self.links.get().await?;
        let mut slot = self.publisher.lock().await;
        let usable = slot.as_ref().is_some_and(|publisher| {
            publisher.generation == link.generation
                && publisher.channel.status().connected()
                && !publisher.broken.load(Ordering::SeqCst)
        });
        if !usable {
            let channel = link.channel(&self.options, true).await?;
            *slot = Some(Publisher {
                generation: link.generation,
                channel,
                base: self.known_end(),
                published: 0,
                previous: None,
                broken: Arc::new(AtomicBool::new(false)),
            });
        }
        let Some(publisher) = slot.as_mut() else {
            return Err(QueueError::Closed);
        };
        let cursor = Cursor::from_stored(publisher.base + publisher.published + 1);
        let properties = BasicProperties::default().with_delivery_mode(PERSISTENT);
        let published = self
            .call(
                &link,
                "publishing",
                publisher.channel.basic_publish(
                    "",
                    &self.name,
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    payload,
                    properties,
                ),
            )
            .await;
        let confirm = match published {
            Ok(confirm) => confirm,
            Err(error) => {
                publisher.broken.store(true, Ordering::SeqCst);
                return Err(error);
            }
        };
        publisher.published += 1;
        let (settled, next) = oneshot::channel();
        let settling = Settling {
            previous: publisher.previous.replace(next),
            settled,
            broken: publisher.broken.clone(),
        };
        Ok((cursor, confirm, settling))
    }

    /// The stream consumer positioned just after `after`: the one kept when it stands
    /// there, else a new subscription at offset `after`.
    async fn reader_at<'a>(
        &self,
        slot: &'a mut Option<Reader>,
        after: Cursor,
    ) -> Result<&'a mut Reader, QueueError> {
        let link = self.links.get().await?;
        let reusable = slot.as_ref().is_some_and(|reader| {
            reader.generation == link.generation
                && reader.position == after
                && reader.channel.status().connected()
        });
        if !reusable {
            if let Some(old) = slot.take() {
                // Best effort: the broker drops the consumer with the channel.
                let _ = tokio::time::timeout(
                    self.options.connect_timeout,
                    old.channel.close(200, "moving to another offset"),
                )
                .await;
            }
            let offset = i64::try_from(after.to_stored()).map_err(|_| QueueError::Unavailable {
                message: format!("cursor {} is beyond a stream offset", after.to_stored()),
            })?;
            let (channel, consumer) = self
                .subscribe(&link, AMQPValue::LongLongInt(offset))
                .await?;
            *slot = Some(Reader {
                generation: link.generation,
                channel,
                consumer,
                position: after,
            });
        }
        slot.as_mut().ok_or(QueueError::Closed)
    }

    /// The channel acknowledgements are published on.
    async fn acker(&self, link: &Link) -> Result<Channel, QueueError> {
        let mut slot = self.acker.lock().await;
        if let Some((generation, channel)) = slot.as_ref() {
            if *generation == link.generation && channel.status().connected() {
                return Ok(channel.clone());
            }
        }
        let channel = link.channel(&self.options, true).await?;
        *slot = Some((link.generation, channel.clone()));
        Ok(channel)
    }
}

/// Settles one append after its own confirm, in publish order: the append succeeds only when
/// every earlier publish on its channel did (else its cursor bound could be one too high).
struct Settling {
    previous: Option<oneshot::Receiver<bool>>,
    settled: oneshot::Sender<bool>,
    broken: Arc<AtomicBool>,
}

impl Settling {
    async fn settle(self, own: Result<(), QueueError>) -> Result<(), QueueError> {
        let earlier_ok = match self.previous {
            None => true,
            Some(previous) => previous.await.unwrap_or(false),
        };
        let result = match own {
            Ok(()) if !earlier_ok => Err(QueueError::Unavailable {
                message: "an earlier message on the publishing channel was not confirmed"
                    .to_owned(),
            }),
            other => other,
        };
        if result.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        let _ = self.settled.send(result.is_ok());
        result
    }
}

/// What the broker answered to one publish, as this queue sees it.
fn confirmed(
    answer: Result<lapin::Result<Confirmation>, tokio::time::error::Elapsed>,
    limit: Duration,
) -> Result<(), QueueError> {
    match answer {
        Err(_) => Err(unavailable(
            "awaiting the publisher confirm",
            format!("no confirm within {limit:?}"),
        )),
        Ok(Err(error)) => Err(unavailable("awaiting the publisher confirm", error)),
        Ok(Ok(Confirmation::Ack(None))) => Ok(()),
        Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(QueueError::Unavailable {
            message: format!(
                "the broker returned the message: {} {}",
                returned.reply_code, returned.reply_text
            ),
        }),
        Ok(Ok(Confirmation::Nack(_))) => Err(QueueError::Unavailable {
            message: "the broker refused the message (nack)".to_owned(),
        }),
        Ok(Ok(Confirmation::NotRequested)) => Err(QueueError::Unavailable {
            message: "the publishing channel is not in confirm mode".to_owned(),
        }),
    }
}

/// Acknowledges the deliveries up to `tag` on a stream consumer's channel. Streams keep the
/// messages: this only grants the consumer more credit (up to the prefetch).
async fn grant_credit(
    channel: &Channel,
    tag: u64,
    options: &AmqpOptions,
) -> Result<(), QueueError> {
    let acked = channel.basic_ack(tag, BasicAckOptions { multiple: true });
    bounded(options.connect_timeout, "acknowledging deliveries", acked).await
}

/// The cursor of a stream delivery: its `x-stream-offset` header plus one.
fn delivery_cursor(delivery: &lapin::message::Delivery) -> Result<Cursor, QueueError> {
    let offset = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(&ShortString::from("x-stream-offset")))
        .and_then(|value| match value {
            AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
            AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
            AMQPValue::LongUInt(n) => Some(u64::from(*n)),
            AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
            AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
            AMQPValue::Timestamp(n) => Some(*n),
            _ => None,
        })
        .ok_or_else(|| QueueError::Unavailable {
            message: "a stream delivery without an x-stream-offset header".to_owned(),
        })?;
    Ok(Cursor::from_stored(offset + 1))
}

/// A cursor as stored in `<name>.acked`: its decimal digits.
fn parse_cursor(data: &[u8]) -> Option<Cursor> {
    std::str::from_utf8(data)
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Cursor::from_stored)
}

#[async_trait::async_trait]
impl EventQueue for AmqpQueue {
    async fn append(&self, payload: Vec<u8>) -> Result<Cursor, QueueError> {
        if payload.is_empty() {
            return Err(QueueError::EmptyRecord);
        }
        if payload.len() > self.options.max_message_bytes {
            return Err(QueueError::RecordTooLarge {
                len: payload.len(),
                limit: self.options.max_message_bytes,
            });
        }
        if let Some(limit) = self.options.max_pending_messages {
            let pending = self.pending() + self.progress.in_flight.load(Ordering::SeqCst);
            if pending >= limit {
                return Err(QueueError::Full {
                    pending,
                    limit,
                    unit: "messages",
                });
            }
        }
        let in_flight = InFlight::start(&self.progress);
        let (cursor, confirm, settling) = self.publish(&payload).await?;
        // The confirm is awaited and settled in a task of its own, so an append given up by
        // its caller still settles its place in the channel's order.
        let limit = self.options.confirm_timeout;
        let progress = self.progress.clone();
        let settled = tokio::spawn(async move {
            let own = confirmed(tokio::time::timeout(limit, confirm).await, limit);
            let settled = settling.settle(own).await;
            if settled.is_ok() {
                progress.saw(cursor);
            }
            drop(in_flight);
            settled
        });
        match settled.await {
            Ok(settled) => settled.map(|()| cursor),
            Err(error) => Err(unavailable("awaiting the publisher confirm", error)),
        }
    }

    async fn receive(
        &self,
        after: Cursor,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut slot = self.reader.lock().await;
        let reader = self.reader_at(&mut slot, after).await?;
        // Behind what is known to exist: the broker will deliver, give it time to.
        let patience = if after.to_stored() < self.known_end() {
            wait.max(self.options.catch_up_wait)
        } else {
            wait
        };
        let deadline = Instant::now() + patience;
        let mut deliveries = Vec::new();
        let mut last_tag = None;
        // Deliveries taken since the last acknowledgement: the broker sends at most the
        // prefetch of them, so they are acknowledged on the way (on a stream that only grants
        // credit) or a receive of more than the prefetch would wait out its deadline.
        let mut unacked = 0u32;
        let credit_at = u32::from(self.options.prefetch / 2).max(1);
        let mut failure = None;
        let mut bytes = 0usize;
        while deliveries.len() < max && bytes < self.options.max_receive_bytes {
            if unacked >= credit_at {
                if let Some(tag) = last_tag.take() {
                    if let Err(error) = grant_credit(&reader.channel, tag, &self.options).await {
                        failure = Some(error);
                        break;
                    }
                }
                unacked = 0;
            }
            // Wait for the first delivery, and for those known to exist (the broker is
            // sending them); past those, take only what has already arrived.
            let known_more = reader.position.to_stored() < self.known_end();
            let next = if deliveries.is_empty() || known_more {
                match tokio::time::timeout_at(deadline, reader.consumer.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            } else {
                match future::poll_once(reader.consumer.next()).await {
                    Some(next) => next,
                    None => break,
                }
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => {
                    failure = Some(unavailable("receiving from the stream", error));
                    break;
                }
                None => {
                    failure = Some(unavailable(
                        "receiving from the stream",
                        "consumer cancelled",
                    ));
                    break;
                }
            };
            last_tag = Some(delivery.delivery_tag);
            unacked += 1;
            let cursor = match delivery_cursor(&delivery) {
                Ok(cursor) => cursor,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            };
            // A subscription starts at the chunk holding the offset: skip what precedes it.
            if cursor <= reader.position {
                continue;
            }
            reader.position = cursor;
            bytes += delivery.data.len();
            deliveries.push(Delivery {
                cursor,
                payload: delivery.data,
            });
        }
        let position = reader.position;
        if failure.is_none() {
            if let Some(tag) = last_tag {
                if let Err(error) = grant_credit(&reader.channel, tag, &self.options).await {
                    failure = Some(error);
                }
            }
        }
        self.progress.saw(position);
        match failure {
            None => Ok(deliveries),
            Some(error) => {
                *slot = None;
                if deliveries.is_empty() {
                    Err(error)
                } else {
                    // What arrived is good; the next receive subscribes anew.
                    tracing::warn!(stream = %self.name, %error, "stream consumer lost");
                    Ok(deliveries)
                }
            }
        }
    }

    async fn ack(&self, upto: Cursor) -> Result<(), QueueError> {
        if upto.to_stored() <= self.acked.load(Ordering::SeqCst) {
            return Ok(());
        }
        let link = self.links.get().await?;
        let channel = self.acker(&link).await?;
        // One acknowledgement at a time, so the last one stored is the greatest.
        let _order = self.acker.lock().await;
        if upto.to_stored() <= self.acked.load(Ordering::SeqCst) {
            return Ok(());
        }
        let properties = BasicProperties::default().with_delivery_mode(PERSISTENT);
        let digits = upto.to_stored().to_string();
        let confirm = self
            .call(
                &link,
                "storing the acknowledged cursor",
                channel.basic_publish(
                    "",
                    &self.acked_queue,
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    digits.as_bytes(),
                    properties,
                ),
            )
            .await?;
        let limit = self.options.confirm_timeout;
        confirmed(tokio::time::timeout(limit, confirm).await, limit)?;
        self.acked.fetch_max(upto.to_stored(), Ordering::SeqCst);
        Ok(())
    }

    fn acked(&self) -> Cursor {
        Cursor::from_stored(self.acked.load(Ordering::SeqCst))
    }

    fn backlog(&self) -> Backlog {
        Backlog {
            messages: Some(self.pending()),
            bytes: None,
        }
    }
}

impl Drop for AmqpQueue {
    fn drop(&mut self) {
        self.links.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_cursor_reads_back() {
        assert_eq!(parse_cursor(b"42"), Some(Cursor::from_stored(42)));
        assert_eq!(parse_cursor(b" 7\n"), Some(Cursor::from_stored(7)));
        assert_eq!(parse_cursor(b"-1"), None);
        assert_eq!(parse_cursor(b"not a cursor"), None);
        assert_eq!(parse_cursor(&[0xff, 0xfe]), None);
    }

    #[test]
    fn only_a_plain_ack_confirms_an_append() {
        let limit = Duration::from_secs(1);
        assert!(confirmed(Ok(Ok(Confirmation::Ack(None))), limit).is_ok());
        for refused in [Confirmation::Nack(None), Confirmation::NotRequested] {
            assert!(matches!(
                confirmed(Ok(Ok(refused)), limit),
                Err(QueueError::Unavailable { .. })
            ));
        }
    }
}
