//! `load`: drives a running server with single events or batches and measures what it takes.
//!
//! Each of the `concurrency` workers owns one keep-alive connection, opened before the clock
//! starts. Two ways to pace them:
//! - closed loop (no `--rate`): a worker sends its next request as soon as the previous answer
//!   is in; latency runs from sending to the end of the answer;
//! - open loop (`--rate R`): request `i` is due at `start + i / R`; a free worker takes the
//!   next due request, waits for its time and sends it. Latency runs from the due time, so a
//!   server that stalls is charged for every request it held back (no coordinated omission);
//!   when all connections are busy, due requests queue and their wait counts.
//!
//! Requests are built from events read from `--input`, or from a pool of `--pool-events`
//! generated events (seeded, so the same for every run); either way they are encoded before
//! the clock starts and reused in a cycle. Batch items get fresh event ids on every send, so a
//! server that deduplicates by id still stores every accepted event.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use bytes::Bytes;
use chrono::Utc;
use hdrhistogram::Histogram;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{Request, StatusCode};
use tokio::time::Instant;

use crate::client::{Connection, Failure, Response, Target};
use crate::event::{read_ndjson, Event};
use crate::generator::{EventGenerator, GeneratorConfig};
use crate::report::{latency_histogram, write_json, ErrorCounts, LatencySummary, LoadReport};
use crate::server_memory::MemorySampler;
use crate::wire::{batch_body, event_id, plausible_event_body, EncodedBatchItem};

/// Path of the tracker's single-event endpoint.
pub const SINGLE_EVENT_PATH: &str = "/api/event";
/// Path of the server's liveness answer.
pub const HEALTH_PATH: &str = "/health";
/// Path of the batch endpoint.
pub const BATCH_PATH: &str = "/api/v1/events";
/// Header carrying the API key of the batch endpoint.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
const FORWARDED_FOR_HEADER: HeaderName = HeaderName::from_static("x-forwarded-for");
/// tokio's timer fires on millisecond ticks, at or after its deadline: an open-loop worker
/// wakes this much before a request is due so that it sends on time rather than late.
const TIMER_SLACK: Duration = Duration::from_millis(1);
/// Error messages kept for the report.
const MAX_ERROR_SAMPLES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One event per request to /api/event, as the tracker sends them.
    Single,
    /// Batches of events to /api/v1/events.
    Batch,
    /// `GET /health`: what the server's HTTP stack answers with no work behind it, the
    /// yardstick single-event ingest is compared with in the same run.
    Health,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    #[arg(long, value_enum, default_value_t = Mode::Single)]
    mode: Mode,
    /// Workers, each with its own keep-alive connection.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Open loop at this many requests per second; without it, a closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to send requests, in seconds.
    #[arg(long, default_value_t = 30.0)]
    duration_s: f64,
    /// Events per request in batch mode.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// API key for the batch endpoint (required with --mode batch).
    #[arg(long)]
    api_key: Option<String>,
    /// Site domain the events are sent for.
    #[arg(long)]
    domain: String,
    /// NDJSON events written by `generate`; without it, events are generated.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Seed of the generated events (without --input).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Days the generated events' timestamps span, ending now (without --input).
    #[arg(long, default_value_t = 1)]
    days: u32,
    /// Number of generated events to cycle through (without --input).
    #[arg(long, default_value_t = 100_000)]
    pool_events: u64,
    /// PID of the server, to report its peak RSS (Linux /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    ensure!(args.duration_s > 0.0, "--duration-s must be positive");
    ensure!(
        args.rate.is_none_or(|rate| rate > 0.0),
        "--rate must be positive"
    );
    let target = Target::parse(&args.url)?;
    let api_key = match args.mode {
        Mode::Single | Mode::Health => None,
        Mode::Batch => Some(
            args.api_key
                .as_deref()
                .context("--api-key is required with --mode batch")?,
        ),
    };
    let events = match &args.input {
        Some(path) => read_ndjson(path)?,
        None => EventGenerator::new(GeneratorConfig {
            seed: args.seed,
            events: args.pool_events,
            days: args.days,
            end: Utc::now(),
            domain: args.domain.clone(),
        })
        .collect(),
    };
    ensure!(!events.is_empty(), "no events to send");
    let payloads = match (args.mode, api_key) {
        (Mode::Health, _) => Payloads::Health,
        (_, None) => Payloads::single(&events, &args.domain)?,
        (_, Some(api_key)) => Payloads::batch(&events, args.batch_size, api_key)?,
    };
    drop(events);
    let plan = LoadPlan {
        target,
        payloads,
        concurrency: args.concurrency,
        rate_per_s: args.rate,
        duration: Duration::from_secs_f64(args.duration_s),
        id_namespace: rand::random(),
    };
    let mode = format!("{:?}", args.mode).to_lowercase();
    eprintln!(
        "sending {mode} requests to {} for {} s over {} connections",
        args.url, args.duration_s, args.concurrency
    );
    let sampler = args.server_pid.map(MemorySampler::start);
    let outcome = drive(plan).await?;
    let server_memory = match sampler {
        Some(sampler) => Some(sampler.finish().await),
        None => None,
    };
    let elapsed_s = outcome.elapsed.as_secs_f64();
    let report = LoadReport {
        mode,
        url: args.url.clone(),
        concurrency: args.concurrency,
        rate_per_s: args.rate,
        batch_size: (args.mode == Mode::Batch).then_some(args.batch_size),
        elapsed_s,
        requests_sent: outcome.stats.requests_sent,
        requests_accepted: outcome.stats.requests_accepted,
        events_accepted: outcome.stats.events_accepted,
        requests_per_s: outcome.stats.requests_sent as f64 / elapsed_s,
        accepted_events_per_s: outcome.stats.events_accepted as f64 / elapsed_s,
        latency: LatencySummary::from_histogram(&outcome.stats.latency_us),
        errors: outcome.stats.errors,
        error_samples: outcome.stats.error_samples,
        server_memory,
    };
    print!("{}", report.to_table());
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(())
}

/// Requests ready to send, encoded once.
pub enum Payloads {
    Single(Vec<SingleRequest>),
    Batch {
        items: Vec<BatchItem>,
        batch_size: usize,
        api_key: HeaderValue,
    },
    /// `GET /health`, which carries no event.
    Health,
}

pub struct SingleRequest {
    body: Bytes,
    user_agent: HeaderValue,
    forwarded_for: HeaderValue,
}

pub struct BatchItem {
    encoded: EncodedBatchItem,
    user_agent: HeaderValue,
}

impl Payloads {
    pub fn single(events: &[Event], domain: &str) -> anyhow::Result<Self> {
        let requests = events
            .iter()
            .map(|event| {
                Ok(SingleRequest {
                    body: Bytes::from(plausible_event_body(event, domain)),
                    user_agent: HeaderValue::from_str(&event.user_agent)
                        .with_context(|| format!("user agent {:?}", event.user_agent))?,
                    forwarded_for: HeaderValue::from_str(&event.ip)
                        .with_context(|| format!("ip {:?}", event.ip))?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self::Single(requests))
    }

    pub fn batch(events: &[Event], batch_size: usize, api_key: &str) -> anyhow::Result<Self> {
        ensure!(batch_size > 0, "--batch-size must be at least 1");
        let items = events
            .iter()
            .map(|event| {
                Ok(BatchItem {
                    encoded: EncodedBatchItem::new(event),
                    user_agent: HeaderValue::from_str(&event.user_agent)
                        .with_context(|| format!("user agent {:?}", event.user_agent))?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self::Batch {
            items,
            batch_size,
            api_key: HeaderValue::from_str(api_key).context("API key is not a header value")?,
        })
    }

    fn events_per_request(&self) -> u64 {
        match self {
            Self::Single(_) => 1,
            Self::Batch { batch_size, .. } => *batch_size as u64,
            Self::Health => 0,
        }
    }

    /// The status of a request that did what it was sent for.
    fn success(&self) -> StatusCode {
        match self {
            Self::Single(_) | Self::Batch { .. } => StatusCode::ACCEPTED,
            Self::Health => StatusCode::OK,
        }
    }

    /// The request with number `ticket`: payloads are taken in order and cycled.
    fn request(&self, target: &Target, ticket: u64, id_namespace: u64) -> Request<Full<Bytes>> {
        let request = match self {
            Self::Single(requests) => {
                let payload = &requests[(ticket % requests.len() as u64) as usize];
                target
                    .post(SINGLE_EVENT_PATH)
                    .header(CONTENT_TYPE, HeaderValue::from_static("text/plain"))
                    .header(USER_AGENT, payload.user_agent.clone())
                    .header(FORWARDED_FOR_HEADER, payload.forwarded_for.clone())
                    .body(Full::new(payload.body.clone()))
            }
            Self::Batch {
                items,
                batch_size,
                api_key,
            } => {
                let first_sequence = ticket * *batch_size as u64;
                let item_at =
                    |k: usize| &items[((first_sequence + k as u64) % items.len() as u64) as usize];
                let body = batch_body((0..*batch_size).map(|k| {
                    (
                        &item_at(k).encoded,
                        event_id(id_namespace, first_sequence + k as u64),
                    )
                }));
                target
                    .post(BATCH_PATH)
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .header(API_KEY_HEADER, api_key.clone())
                    .header(USER_AGENT, item_at(0).user_agent.clone())
                    .body(Full::new(Bytes::from(body)))
            }
            Self::Health => target.get(HEALTH_PATH).body(Full::new(Bytes::new())),
        };
        request.expect("request parts are valid")
    }
}

/// What to send, how fast and for how long.
pub struct LoadPlan {
    pub target: Target,
    pub payloads: Payloads,
    pub concurrency: usize,
    /// Requests per second of an open loop; `None` for a closed loop.
    pub rate_per_s: Option<f64>,
    pub duration: Duration,
    /// Namespace of the batch event ids of this run (see `wire::event_id`).
    pub id_namespace: u64,
}

/// What the workers measured together.
pub struct LoadOutcome {
    pub elapsed: Duration,
    pub stats: WorkerStats,
}

/// Counters of one worker, merged into one at the end.
pub struct WorkerStats {
    /// Latency of every answered request, in microseconds.
    pub latency_us: Histogram<u64>,
    pub requests_sent: u64,
    pub requests_accepted: u64,
    pub events_accepted: u64,
    pub errors: ErrorCounts,
    pub error_samples: Vec<String>,
}

impl WorkerStats {
    fn new() -> Self {
        Self {
            latency_us: latency_histogram(),
            requests_sent: 0,
            requests_accepted: 0,
            events_accepted: 0,
            errors: ErrorCounts::default(),
            error_samples: Vec::new(),
        }
    }

    fn record(
        &mut self,
        result: Result<Response, (Failure, anyhow::Error)>,
        latency: Duration,
        events: u64,
        success: StatusCode,
    ) {
        self.requests_sent += 1;
        match result {
            Ok(response) => {
                self.latency_us
                    .saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
                if response.status == success {
                    self.requests_accepted += 1;
                    self.events_accepted += events;
                } else {
                    *self
                        .errors
                        .by_status
                        .entry(response.status.as_u16())
                        .or_default() += 1;
                    let excerpt = &response.body[..response.body.len().min(200)];
                    self.sample_error(|| {
                        format!(
                            "HTTP {}: {}",
                            response.status,
                            String::from_utf8_lossy(excerpt)
                        )
                    });
                }
            }
            Err((failure, error)) => {
                match failure {
                    Failure::Connection => self.errors.connection += 1,
                    Failure::Timeout => self.errors.timeout += 1,
                }
                self.sample_error(|| format!("{error:#}"));
            }
        }
    }

    fn sample_error(&mut self, message: impl FnOnce() -> String) {
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(message());
        }
    }

    fn merge(&mut self, other: WorkerStats) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share their bounds");
        self.requests_sent += other.requests_sent;
        self.requests_accepted += other.requests_accepted;
        self.events_accepted += other.events_accepted;
        self.errors.merge(&other.errors);
        for sample in other.error_samples {
            self.sample_error(|| sample);
        }
    }
}

/// State shared by the workers of one run.
struct Shared {
    payloads: Payloads,
    rate_per_s: Option<f64>,
    start: Instant,
    deadline: Instant,
    /// Number of the next request to send, over all workers.
    next_ticket: AtomicU64,
    id_namespace: u64,
}

/// Opens the connections, runs the workers until the duration is over and every request
/// started has its answer, and merges what they measured.
pub async fn drive(plan: LoadPlan) -> anyhow::Result<LoadOutcome> {
    let mut connections = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency {
        let mut connection = Connection::new(plan.target.clone());
        connection
            .connect_now()
            .await
            .context("cannot open the benchmark connections")?;
        connections.push(connection);
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        payloads: plan.payloads,
        rate_per_s: plan.rate_per_s,
        start,
        deadline: start + plan.duration,
        next_ticket: AtomicU64::new(0),
        id_namespace: plan.id_namespace,
    });
    let workers: Vec<_> = connections
        .into_iter()
        .map(|connection| tokio::spawn(worker(Arc::clone(&shared), connection)))
        .collect();
    let mut stats = WorkerStats::new();
    for worker in workers {
        stats.merge(worker.await.context("a load worker panicked")?);
    }
    Ok(LoadOutcome {
        elapsed: start.elapsed(),
        stats,
    })
}

async fn worker(shared: Arc<Shared>, mut connection: Connection) -> WorkerStats {
    let mut stats = WorkerStats::new();
    let events_per_request = shared.payloads.events_per_request();
    let success = shared.payloads.success();
    loop {
        let ticket = shared.next_ticket.fetch_add(1, Ordering::Relaxed);
        let due = match shared.rate_per_s {
            Some(rate) => {
                let due = shared.start + Duration::from_secs_f64(ticket as f64 / rate);
                if due >= shared.deadline {
                    break;
                }
                Some(due)
            }
            None if Instant::now() >= shared.deadline => break,
            None => None,
        };
        let request = shared
            .payloads
            .request(connection.target(), ticket, shared.id_namespace);
        if let Some(due) = due {
            let wake = due.checked_sub(TIMER_SLACK).unwrap_or(due);
            if wake > Instant::now() {
                tokio::time::sleep_until(wake).await;
            }
        }
        let sent = Instant::now();
        // Late: measured from the due time. Early (by at most the timer slack): from sending.
        let measured_from = due.map_or(sent, |due| due.min(sent));
        let result = connection.send(request).await;
        stats.record(result, measured_from.elapsed(), events_per_request, success);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    use chrono::TimeZone;
    use tokio::net::TcpListener;

    use crate::test_server::serve_ingest;

    fn events(count: u64) -> Vec<Event> {
        EventGenerator::new(GeneratorConfig {
            seed: 11,
            events: count,
            days: 1,
            end: Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap(),
            domain: "example.com".into(),
        })
        .collect()
    }

    fn plan(address: SocketAddr, payloads: Payloads, concurrency: usize) -> LoadPlan {
        LoadPlan {
            target: Target::parse(&format!("http://{address}")).unwrap(),
            payloads,
            concurrency,
            rate_per_s: None,
            duration: Duration::from_millis(300),
            id_namespace: 99,
        }
    }

    fn assert_no_errors(stats: &WorkerStats) {
        assert_eq!(
            stats.errors,
            ErrorCounts::default(),
            "{:?}",
            stats.error_samples
        );
    }

    #[tokio::test]
    async fn closed_loop_single_events_use_one_connection_per_worker() {
        let (server, seen) = serve_ingest(0).await;
        let payloads = Payloads::single(&events(500), "example.com").unwrap();
        let outcome = drive(plan(server.address, payloads, 3)).await.unwrap();
        let stats = outcome.stats;
        assert!(stats.requests_sent > 10, "sent {}", stats.requests_sent);
        assert_no_errors(&stats);
        assert_eq!(stats.requests_accepted, stats.requests_sent);
        assert_eq!(stats.events_accepted, stats.requests_sent);
        assert_eq!(seen.events.load(Ordering::SeqCst), stats.requests_sent);
        assert_eq!(server.connections.load(Ordering::SeqCst), 3);
        assert_eq!(stats.latency_us.len(), stats.requests_sent);
        assert!(outcome.elapsed >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn open_loop_batches_send_every_due_request_with_unique_event_ids() {
        let (server, seen) = serve_ingest(0).await;
        // Fewer events than one batch: items repeat, ids must not.
        let payloads = Payloads::batch(&events(30), 40, "secret").unwrap();
        let mut plan = plan(server.address, payloads, 4);
        plan.rate_per_s = Some(100.0);
        plan.duration = Duration::from_millis(500);
        let stats = drive(plan).await.unwrap().stats;
        // Requests are due at 0, 10, ..., 490 ms: exactly 50, however slow the machine.
        assert_eq!(stats.requests_sent, 50);
        assert_no_errors(&stats);
        assert_eq!(stats.events_accepted, 50 * 40);
        assert_eq!(seen.events.load(Ordering::SeqCst), 50 * 40);
        assert_eq!(seen.event_ids.lock().unwrap().len(), 50 * 40);
    }

    #[tokio::test]
    async fn health_requests_are_answered_200_and_carry_no_event() {
        let (server, seen) = serve_ingest(0).await;
        let stats = drive(plan(server.address, Payloads::Health, 2))
            .await
            .unwrap()
            .stats;
        assert!(stats.requests_sent > 10, "sent {}", stats.requests_sent);
        assert_no_errors(&stats);
        assert_eq!(stats.requests_accepted, stats.requests_sent);
        assert_eq!(stats.events_accepted, 0);
        assert_eq!(seen.events.load(Ordering::SeqCst), 0);
        assert_eq!(seen.requests.load(Ordering::SeqCst), stats.requests_sent);
    }

    #[tokio::test]
    async fn rejected_requests_are_counted_by_status() {
        let (server, seen) = serve_ingest(3).await;
        let payloads = Payloads::single(&events(100), "example.com").unwrap();
        let stats = drive(plan(server.address, payloads, 2))
            .await
            .unwrap()
            .stats;
        let rejected = stats.errors.by_status.get(&503).copied().unwrap_or(0);
        assert_eq!(rejected, seen.requests.load(Ordering::SeqCst) / 3);
        assert!(rejected > 0);
        assert_eq!(stats.errors.total(), rejected, "{:?}", stats.error_samples);
        assert_eq!(stats.requests_accepted + rejected, stats.requests_sent);
        assert!(stats.error_samples[0].starts_with("HTTP 503"));
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_fails_the_run_up_front() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let payloads = Payloads::single(&events(10), "example.com").unwrap();
        let error = drive(plan(address, payloads, 1)).await.err().unwrap();
        assert!(format!("{error:#}").contains("cannot connect"), "{error:#}");
    }
}
