//! `fill`: loads a data set for query benchmarks through the batch endpoint.
//!
//! One producer thread generates the events, timestamps spread over the `--days` days before
//! now and sent as generated, and encodes them into batches of `--batch-size` (1,000); the
//! `--concurrency` workers send the batches, each on its own keep-alive connection. Event ids
//! come from the seed and the event's position, so the same fill sends the same ids again.
//! A batch answered 429 or 5xx, or not at all, is retried with exponential backoff; a batch
//! that still fails, or that is refused outright, is counted and makes the command fail.
//!
//! With `--wait-stored`, it then waits until the processor has stored every accepted event:
//! it polls the event count of the site (`POST /api/v2/query`, `events` over `all`) until it
//! reaches the count before the fill plus the events accepted, and reports how long that took
//! after the last batch. With `--server-pid` it samples the server's RSS over both steps.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use hyper::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

use crate::client::{Connection, Target};
use crate::event::Event;
use crate::generator::{EventGenerator, GeneratorConfig};
use crate::load::{API_KEY_HEADER, BATCH_PATH};
use crate::query::QUERY_PATH;
use crate::report::{write_json, ServerMemory};
use crate::server_memory::MemorySampler;
use crate::wire::{batch_body, event_id, EncodedBatchItem};

/// Attempts per batch before it counts as failed.
const MAX_ATTEMPTS: u32 = 5;
/// Wait before the first retry; doubled for each later one.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// How often `--wait-stored` asks for the stored event count.
const STORE_POLL_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct FillArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// API key for the batch endpoint.
    #[arg(long)]
    api_key: String,
    /// Site domain used in the events' URLs.
    #[arg(long)]
    domain: String,
    /// Number of events to send.
    #[arg(long)]
    events: u64,
    /// Days before now (or --end) over which the events are spread.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Seed of the random stream: the same seed gives the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Batches in flight, each on its own connection.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Events per batch request.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Send at most this many events per second (batch `i` is due when the events before it
    /// are due); without it, as fast as the server takes them.
    #[arg(long)]
    rate: Option<f64>,
    /// End of the time window (RFC 3339); defaults to now.
    #[arg(long)]
    end: Option<DateTime<Utc>>,
    /// Then wait until the processor has stored every accepted event (the API key must also
    /// read stats).
    #[arg(long)]
    wait_stored: bool,
    /// Give up waiting for the store after this many seconds.
    #[arg(long, default_value_t = 1800)]
    wait_timeout_s: u64,
    /// PID of the server, to report its peak RSS during the fill and processing (Linux /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// What a `fill` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FillReport {
    pub events_requested: u64,
    pub events_accepted: u64,
    pub failed_batches: u64,
    pub fill_elapsed_s: f64,
    pub accepted_events_per_s: f64,
    /// Events of the site stored before the fill and after the wait (with --wait-stored).
    pub stored_before: Option<u64>,
    pub stored_after: Option<u64>,
    /// Seconds from the last accepted batch until every accepted event was stored.
    pub store_lag_s: Option<f64>,
    /// Accepted events / (fill time + store lag): the processor's rate over the whole run.
    pub stored_events_per_s: Option<f64>,
    pub server_memory: Option<ServerMemory>,
}

pub async fn run(args: FillArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.url)?;
    let mut stats = Connection::new(target.clone());
    let stored_before = match args.wait_stored {
        true => Some(stored_events(&mut stats, &args.api_key, &args.domain).await?),
        false => None,
    };
    let sampler = args.server_pid.map(MemorySampler::start);
    let events_requested = args.events;
    let plan = FillPlan {
        target,
        api_key: HeaderValue::from_str(&args.api_key).context("API key is not a header value")?,
        generator: GeneratorConfig {
            seed: args.seed,
            events: args.events,
            days: args.days,
            end: args.end.unwrap_or_else(Utc::now),
            domain: args.domain.clone(),
        },
        batch_size: args.batch_size,
        concurrency: args.concurrency,
        events_per_s: args.rate,
    };
    let outcome = fill(plan).await?;
    let elapsed_s = outcome.elapsed.as_secs_f64();
    println!(
        "filled {} events in {elapsed_s:.1} s: {:.0} events/s, {} batches failed",
        outcome.events_accepted,
        outcome.events_accepted as f64 / elapsed_s,
        outcome.failed_batches
    );
    ensure!(
        outcome.failed_batches == 0,
        "{} batches were not accepted",
        outcome.failed_batches
    );
    let mut report = FillReport {
        events_requested,
        events_accepted: outcome.events_accepted,
        failed_batches: outcome.failed_batches,
        fill_elapsed_s: elapsed_s,
        accepted_events_per_s: outcome.events_accepted as f64 / elapsed_s,
        stored_before,
        stored_after: None,
        store_lag_s: None,
        stored_events_per_s: None,
        server_memory: None,
    };
    if let Some(before) = stored_before {
        let expected = before + outcome.events_accepted;
        let waiting = Instant::now();
        let deadline = waiting + Duration::from_secs(args.wait_timeout_s);
        let mut last_progress = waiting;
        let stored = loop {
            // A count that fails while the server is busy (no answer within the client's
            // timeout, a dropped connection) is asked again, until the deadline; the first
            // count, before the fill, already showed the key and site are right.
            let stored = match stored_events(&mut stats, &args.api_key, &args.domain).await {
                Ok(stored) => stored,
                Err(error) => {
                    ensure!(
                        Instant::now() < deadline,
                        "the processor did not catch up within {} s: {error:#}",
                        args.wait_timeout_s
                    );
                    eprintln!("counting stored events failed, asking again: {error:#}");
                    tokio::time::sleep(STORE_POLL_INTERVAL).await;
                    continue;
                }
            };
            if stored >= expected {
                break stored;
            }
            ensure!(
                Instant::now() < deadline,
                "the processor did not catch up within {} s: {stored} of {expected} stored",
                args.wait_timeout_s
            );
            if last_progress.elapsed() >= PROGRESS_INTERVAL * 10 {
                eprintln!("stored {stored} of {expected} events");
                last_progress = Instant::now();
            }
            tokio::time::sleep(STORE_POLL_INTERVAL).await;
        };
        let lag_s = waiting.elapsed().as_secs_f64();
        println!(
            "processor stored all {expected} events {lag_s:.1} s after the fill ({:.0} events/s over fill and wait)",
            outcome.events_accepted as f64 / (elapsed_s + lag_s)
        );
        report.stored_after = Some(stored);
        report.store_lag_s = Some(lag_s);
        report.stored_events_per_s = Some(outcome.events_accepted as f64 / (elapsed_s + lag_s));
    }
    if let Some(sampler) = sampler {
        let memory = sampler.finish().await;
        println!(
            "server peak RSS during fill and processing: {:.1} MiB",
            memory.peak_rss_kib as f64 / 1024.0
        );
        report.server_memory = Some(memory);
    }
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(())
}

/// Events of `site` stored so far, from the Stats API.
async fn stored_events(
    connection: &mut Connection,
    api_key: &str,
    site: &str,
) -> anyhow::Result<u64> {
    let body = json!({"site_id": site, "metrics": ["events"], "date_range": "all"});
    let request = connection
        .target()
        .post(QUERY_PATH)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {api_key}"))?,
        )
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request parts are valid");
    let response = connection
        .send(request)
        .await
        .map_err(|(_, error)| error)
        .context("counting stored events")?;
    ensure!(
        response.status == StatusCode::OK,
        "counting stored events: HTTP {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    let answer: Value = serde_json::from_slice(&response.body)?;
    answer["results"][0]["metrics"][0]
        .as_u64()
        .context("the event count is not a number")
}

/// What to send where.
pub struct FillPlan {
    pub target: Target,
    pub api_key: HeaderValue,
    pub generator: GeneratorConfig,
    pub batch_size: usize,
    pub concurrency: usize,
    /// Pace: at most this many events per second.
    pub events_per_s: Option<f64>,
}

pub struct FillOutcome {
    pub events_accepted: u64,
    pub failed_batches: u64,
    pub elapsed: Duration,
}

/// One encoded batch.
struct Batch {
    body: Bytes,
    user_agent: HeaderValue,
    events: u64,
}

/// Counters the workers update and the progress line reads.
#[derive(Default)]
struct Progress {
    /// Events handed to workers so far, to pace them.
    events_scheduled: AtomicU64,
    events_accepted: AtomicU64,
    failed_batches: AtomicU64,
}

/// Generates and sends every event of the plan; returns once all batches are answered.
pub async fn fill(plan: FillPlan) -> anyhow::Result<FillOutcome> {
    ensure!(plan.batch_size > 0, "--batch-size must be at least 1");
    ensure!(plan.concurrency > 0, "--concurrency must be at least 1");
    ensure!(
        plan.events_per_s.is_none_or(|rate| rate > 0.0),
        "--rate must be positive"
    );
    let total_events = plan.generator.events;
    let (sender, receiver) = mpsc::channel(plan.concurrency * 2);
    let receiver = Arc::new(Mutex::new(receiver));
    let progress = Arc::new(Progress::default());
    let start = Instant::now();

    let (generator, batch_size) = (plan.generator, plan.batch_size);
    let producer = tokio::task::spawn_blocking(move || produce(generator, batch_size, sender));
    let workers: Vec<_> = (0..plan.concurrency)
        .map(|_| {
            tokio::spawn(send_batches(
                Connection::new(plan.target.clone()),
                plan.api_key.clone(),
                Arc::clone(&receiver),
                Arc::clone(&progress),
                plan.events_per_s.map(|rate| (start, rate)),
            ))
        })
        .collect();
    let reporter = tokio::spawn(report_progress(Arc::clone(&progress), total_events, start));

    let produced = producer.await.context("the event producer panicked");
    for worker in workers {
        worker.await.context("a fill worker panicked")?;
    }
    reporter.abort();
    produced??;
    Ok(FillOutcome {
        events_accepted: progress.events_accepted.load(Ordering::Relaxed),
        failed_batches: progress.failed_batches.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    })
}

/// Generates the events and hands them to the workers in encoded batches, in order.
fn produce(
    config: GeneratorConfig,
    batch_size: usize,
    sender: mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    let id_namespace = config.seed ^ 0x6669_6c6c_6669_6c6c; // "fillfill"
    let mut generator = EventGenerator::new(config);
    let mut sequence = 0u64;
    loop {
        let events: Vec<Event> = generator.by_ref().take(batch_size).collect();
        let Some(first) = events.first() else {
            return Ok(());
        };
        let user_agent = HeaderValue::from_str(&first.user_agent)?;
        let items: Vec<EncodedBatchItem> = events.iter().map(EncodedBatchItem::new).collect();
        let body = batch_body(
            items
                .iter()
                .enumerate()
                .map(|(k, item)| (item, event_id(id_namespace, sequence + k as u64))),
        );
        sequence += events.len() as u64;
        let batch = Batch {
            body: Bytes::from(body),
            user_agent,
            events: events.len() as u64,
        };
        if sender.blocking_send(batch).is_err() {
            // Every worker is gone; they report why.
            return Ok(());
        }
    }
}

async fn send_batches(
    mut connection: Connection,
    api_key: HeaderValue,
    receiver: Arc<Mutex<mpsc::Receiver<Batch>>>,
    progress: Arc<Progress>,
    pace: Option<(Instant, f64)>,
) {
    loop {
        let Some(batch) = receiver.lock().await.recv().await else {
            return;
        };
        if let Some((start, events_per_s)) = pace {
            let before = progress
                .events_scheduled
                .fetch_add(batch.events, Ordering::Relaxed);
            tokio::time::sleep_until(start + Duration::from_secs_f64(before as f64 / events_per_s))
                .await;
        }
        match send_with_retries(&mut connection, &api_key, &batch).await {
            Ok(()) => {
                progress
                    .events_accepted
                    .fetch_add(batch.events, Ordering::Relaxed);
            }
            Err(error) => {
                progress.failed_batches.fetch_add(1, Ordering::Relaxed);
                eprintln!("batch of {} events not accepted: {error}", batch.events);
            }
        }
    }
}

async fn send_with_retries(
    connection: &mut Connection,
    api_key: &HeaderValue,
    batch: &Batch,
) -> Result<(), String> {
    let mut delay = FIRST_RETRY_DELAY;
    for attempt in 1..=MAX_ATTEMPTS {
        let request = connection
            .target()
            .post(BATCH_PATH)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(API_KEY_HEADER, api_key.clone())
            .header(USER_AGENT, batch.user_agent.clone())
            .body(Full::new(batch.body.clone()))
            .expect("request parts are valid");
        let (retryable, error) = match connection.send(request).await {
            Ok(response) if response.status == StatusCode::ACCEPTED => return Ok(()),
            Ok(response) => (
                response.status == StatusCode::TOO_MANY_REQUESTS
                    || response.status.is_server_error(),
                format!(
                    "HTTP {}: {}",
                    response.status,
                    String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
                ),
            ),
            Err((_, error)) => (true, format!("{error:#}")),
        };
        if !retryable || attempt == MAX_ATTEMPTS {
            return Err(format!("{error} (attempt {attempt})"));
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    unreachable!("the last attempt returns")
}

async fn report_progress(progress: Arc<Progress>, total_events: u64, start: Instant) {
    let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
    interval.tick().await;
    loop {
        interval.tick().await;
        let accepted = progress.events_accepted.load(Ordering::Relaxed);
        let failed = progress.failed_batches.load(Ordering::Relaxed);
        eprintln!(
            "{accepted}/{total_events} events, {:.0} events/s, {failed} batches failed",
            accepted as f64 / start.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use crate::event::format_timestamp;
    use crate::test_server::serve_ingest;

    fn plan(url: &str, events: u64) -> FillPlan {
        FillPlan {
            target: Target::parse(url).unwrap(),
            api_key: HeaderValue::from_static("secret"),
            generator: GeneratorConfig {
                seed: 4,
                events,
                days: 30,
                end: Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap(),
                domain: "example.com".into(),
            },
            batch_size: 1000,
            concurrency: 2,
            events_per_s: None,
        }
    }

    #[tokio::test]
    async fn sends_every_event_once_with_its_generated_timestamp() {
        let (server, seen) = serve_ingest(0).await;
        let plan = plan(&server.url(), 2_500);
        let mut expected: Vec<String> = EventGenerator::new(plan.generator.clone())
            .map(|event| format_timestamp(&event.timestamp))
            .collect();
        let outcome = fill(plan).await.unwrap();
        assert_eq!(outcome.events_accepted, 2_500);
        assert_eq!(outcome.failed_batches, 0);
        // 1,000 + 1,000 + 500.
        assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
        assert_eq!(seen.event_ids.lock().unwrap().len(), 2_500);
        let mut timestamps = seen.timestamps.lock().unwrap().clone();
        timestamps.sort();
        expected.sort();
        assert_eq!(timestamps, expected);
        assert!(timestamps[0].starts_with("2024-04-01"), "{}", timestamps[0]);
    }

    #[tokio::test]
    async fn retries_batches_the_server_could_not_take() {
        // Every second request is answered 503; with one worker, every batch after the first
        // fails once and goes through on its retry.
        let (server, seen) = serve_ingest(2).await;
        let mut plan = plan(&server.url(), 3_000);
        plan.concurrency = 1;
        let outcome = fill(plan).await.unwrap();
        assert_eq!(outcome.events_accepted, 3_000);
        assert_eq!(outcome.failed_batches, 0);
        assert_eq!(seen.event_ids.lock().unwrap().len(), 3_000);
        assert_eq!(seen.requests.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_rate_spreads_the_batches_over_time() {
        let (server, seen) = serve_ingest(0).await;
        let mut plan = plan(&server.url(), 3_000);
        // Batches are due at 0, 100 and 200 ms.
        plan.events_per_s = Some(10_000.0);
        let outcome = fill(plan).await.unwrap();
        assert_eq!(outcome.events_accepted, 3_000);
        assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
        assert!(
            outcome.elapsed >= Duration::from_millis(200),
            "{:?}",
            outcome.elapsed
        );
    }

    #[tokio::test]
    async fn a_refused_batch_is_counted_not_retried() {
        let server =
            crate::test_server::serve(|_, _| (StatusCode::UNAUTHORIZED, b"no".to_vec())).await;
        let outcome = fill(plan(&server.url(), 1_500)).await.unwrap();
        assert_eq!(outcome.events_accepted, 0);
        assert_eq!(outcome.failed_batches, 2);
    }
}
