//! No read, however wide, slows ingest or `/health` (issue 13): the real binary is fed
//! while every read endpoint is asked its widest questions, several at once and over and
//! over, with an API key and through a public dashboard link. `/health` and ingest latency
//! are measured idle and under that load in the same run; every wide read must answer a 4xx,
//! a 503 or a whole 200 within its time budget, and every acknowledged event must be stored.
//!
//! The latency comparison is a ratio within one run on one machine; nextest runs this test
//! alone (`.config/nextest.toml`) so other tests do not share its cores.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

const SITE: &str = "wide.example";
/// The server's time budget per read in this test.
const BUDGET_MS: u64 = 3000;
/// Events stored before the measurements, spread over 400 days.
const BACKGROUND_EVENTS: usize = 20_000;

fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

/// One wide read: a method, a path with its query string, a body, and what a 200 must hold.
struct Read {
    name: &'static str,
    path: String,
    body: Option<Value>,
    /// For a 200: the answer is whole (the number of time buckets asked for, say).
    whole: fn(&Value) -> bool,
}

fn any(_: &Value) -> bool {
    true
}

fn day(days_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days_ago))
        .format("%Y-%m-%d")
        .to_string()
}

/// The widest question of every read endpoint: some beyond the bounds (each must be a 400
/// naming the parameter), some at the bounds (a whole 200 or a 503).
fn wide_reads() -> Vec<Read> {
    let century = json!([day(36_524), day(0)]);
    let all_metrics = json!([
        "visitors",
        "visits",
        "pageviews",
        "events",
        "views_per_visit",
        "bounce_rate",
        "visit_duration"
    ]);
    vec![
        Read {
            name: "v2 hourly over ten thousand years",
            path: "/api/v2/query".into(),
            body: Some(json!({"site_id": SITE, "metrics": ["visitors"],
                "date_range": ["0001-01-01", "9999-12-31"], "dimensions": ["time:hour"]})),
            whole: any,
        },
        Read {
            name: "v2 a century by week and source, every metric, compared",
            path: "/api/v2/query".into(),
            body: Some(json!({"site_id": SITE, "metrics": all_metrics, "date_range": century,
                "dimensions": ["time:week", "visit:source"], "pagination": {"limit": 10000},
                "include": {"total_rows": true, "comparisons": {"mode": "previous_period"}}})),
            whole: |body| body["results"].is_array(),
        },
        Read {
            name: "v2 ten thousand hours with labels",
            path: "/api/v2/query".into(),
            body: Some(json!({"site_id": SITE, "metrics": ["visitors", "pageviews"],
                "date_range": [day(415), day(0)], "dimensions": ["time:hour"],
                "include": {"time_labels": true}, "pagination": {"limit": 10000}})),
            whole: |body| body["meta"]["time_labels"].as_array().map(Vec::len) == Some(416 * 24),
        },
        Read {
            name: "v2 a century by page",
            path: "/api/v2/query".into(),
            body: Some(json!({"site_id": SITE, "metrics": ["visitors", "pageviews", "bounce_rate", "time_on_page"],
                "date_range": century, "dimensions": ["event:page"], "pagination": {"limit": 10000}})),
            whole: |body| body["results"].is_array(),
        },
        Read {
            name: "v2 retention of a year of days, 90 periods, by signup",
            path: "/api/v2/retention".into(),
            body: Some(json!({"site_id": SITE, "date_range": [day(364), day(0)], "period": "day",
                "periods": 90, "cohort_event": "signup"})),
            whole: |body| body["cohorts"].as_array().map(Vec::len) == Some(365),
        },
        Read {
            name: "v2 retention of a century of weeks",
            path: "/api/v2/retention".into(),
            body: Some(json!({"site_id": SITE, "date_range": century, "period": "week", "periods": 52})),
            whole: any,
        },
        Read {
            name: "v2 paths of a century, 5 steps, 50 pages each",
            path: "/api/v2/paths".into(),
            body: Some(json!({"site_id": SITE, "date_range": century, "depth": 5, "limit": 50})),
            whole: |body| body["nodes"].is_array() && body["edges"].is_array(),
        },
        Read {
            name: "v2 journey of a century",
            path: "/api/v2/journey".into(),
            body: Some(json!({"site_id": SITE, "date_range": century, "user_id": "user-7"})),
            whole: |body| body["visits"].is_array(),
        },
        Read {
            name: "seed 003 retention of a year, 90 days",
            path: format!("/api/v1/retention?site_id={SITE}&days=90&startDate={}&endDate={}", day(364), day(0)),
            body: None,
            whole: |body| body["data"]["cohorts"].as_array().map(Vec::len) == Some(365),
        },
        Read {
            name: "seed 003 journey of a century",
            path: format!("/api/v1/users/user-7/journey?site_id={SITE}&startDate={}&endDate={}", day(36_524), day(0)),
            body: None,
            whole: |body| body["data"]["events"].is_array(),
        },
        Read {
            name: "seed 002 stats",
            path: format!("/api/stats?site_id={SITE}&date={}", day(1)),
            body: None,
            whole: |body| body["data"]["total_views"].is_u64(),
        },
        Read {
            name: "seed 003 summary over ten thousand years",
            path: format!("/api/v1/events/summary?site_id={SITE}&startDate=0001-01-01&endDate=9993-12-31"),
            body: None,
            whole: any,
        },
        Read {
            name: "seed 003 summary over a century",
            path: format!("/api/v1/events/summary?site_id={SITE}&startDate={}&endDate={}", day(36_524), day(0)),
            body: None,
            whole: |body| body["data"]["totalEvents"].is_u64(),
        },
        Read {
            name: "seed 003 hourly metrics over ten thousand years",
            path: format!("/api/v1/metrics?site_id={SITE}&interval=hourly&startDate=0001-01-01&endDate=9999-12-31"),
            body: None,
            whole: any,
        },
        Read {
            name: "seed 003 hourly metrics over ten thousand hours",
            path: format!("/api/v1/metrics?site_id={SITE}&interval=hourly&startDate={}&endDate={}", day(415), day(0)),
            body: None,
            whole: |body| body["data"]["metrics"].as_array().map(Vec::len) == Some(416 * 24),
        },
        Read {
            name: "seed 003 daily metrics over 27 years",
            path: format!("/api/v1/metrics?site_id={SITE}&interval=daily&startDate={}&endDate={}", day(9_999), day(0)),
            body: None,
            whole: |body| body["data"]["metrics"].as_array().map(Vec::len) == Some(10_000),
        },
        Read {
            name: "seed 001 counts over ten thousand years",
            path: format!("/api/v1/events/counts?site_id={SITE}&startDate=0001-01-01&endDate=9999-12-31"),
            body: None,
            whole: any,
        },
        Read {
            name: "seed 001 counts of all time",
            path: format!("/api/v1/events/counts?site_id={SITE}"),
            body: None,
            whole: |body| body["data"].is_object(),
        },
        Read {
            name: "seed 001 list from year one",
            path: format!("/api/v1/events?site_id={SITE}&limit=1000&startTime=0001-01-01"),
            body: None,
            whole: any,
        },
        Read {
            name: "seed 001 list of a century",
            path: format!("/api/v1/events?site_id={SITE}&limit=1000&startTime={}", day(36_524)),
            body: None,
            whole: |body| body["data"].as_array().map(Vec::len) == Some(1000),
        },
        Read {
            name: "seed 000 metrics of all time",
            path: format!("/analytics/metrics?siteId={SITE}&range=all"),
            body: None,
            whole: |body| body["visitors"].is_u64(),
        },
        Read {
            name: "seed 004 summary of all time",
            path: format!("/analytics/summary?site_id={SITE}&range=all"),
            body: None,
            whole: |body| body["total_events"].is_u64(),
        },
        Read {
            name: "seed 004 top pages of all time",
            path: format!("/analytics/top-pages?site_id={SITE}&range=all&limit=1000"),
            body: None,
            whole: |body| body.is_array(),
        },
        Read {
            name: "seed 004 recent, far too many",
            path: format!("/analytics/recent?site_id={SITE}&limit=1000000000"),
            body: None,
            whole: any,
        },
        Read {
            name: "seed 004 recent, a full page",
            path: format!("/analytics/recent?site_id={SITE}&limit=1000"),
            body: None,
            whole: |body| body.as_array().map(Vec::len) == Some(1000),
        },
        Read {
            name: "seed 004 daily time series of a year",
            path: format!("/analytics/timeseries?site_id={SITE}&range=year"),
            body: None,
            whole: |body| body.is_array(),
        },
        Read {
            name: "realtime visitors",
            path: format!("/api/v1/realtime/visitors?site_id={SITE}"),
            body: None,
            whole: |body| body.is_u64(),
        },
        Read {
            name: "export",
            path: format!("/api/export?site_id={SITE}"),
            body: None,
            whole: any,
        },
    ]
}

/// Outcomes of wide reads: (name, status, time).
type Outcomes = Arc<std::sync::Mutex<Vec<(&'static str, u16, Duration)>>>;

/// Asks the wide reads over and over with `credential` until `stop`.
async fn ask_wide_reads(
    base: String,
    credential: String,
    stop: Arc<AtomicBool>,
    outcomes: Outcomes,
    offset: usize,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let reads = wide_reads();
    let mut index = offset;
    while !stop.load(Ordering::Acquire) {
        let read = &reads[index % reads.len()];
        index += 1;
        let request = match &read.body {
            Some(body) => http.post(format!("{base}{}", read.path)).json(body),
            None => http.get(format!("{base}{}", read.path)),
        };
        let started = Instant::now();
        let response = request.bearer_auth(&credential).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let elapsed = started.elapsed();
        if status == 200 && read.path.starts_with("/api/export") {
            // NDJSON: one whole event per line.
            assert!(
                text.lines()
                    .all(|line| serde_json::from_str::<Value>(line).is_ok()),
                "{}: a cut line",
                read.name
            );
        } else {
            let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                panic!("{}: {status} answered with no JSON: {text:.200}", read.name)
            });
            match status {
                200 => assert!(
                    (read.whole)(&body),
                    "{}: a 200 that is not whole: {text:.300}",
                    read.name
                ),
                400..=499 => assert_eq!(body["success"], false, "{}: {text:.300}", read.name),
                503 => assert_eq!(body["success"], false, "{}: {text:.300}", read.name),
                other => panic!("{}: answered {other}: {text:.300}", read.name),
            }
        }
        outcomes.lock().unwrap().push((read.name, status, elapsed));
    }
}

/// Polls `/health` every few milliseconds until `stop`, returning each answer's latency.
async fn poll_health(base: String, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let started = Instant::now();
        let response = http.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        samples.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    samples
}

/// Sends one event at a time (seed 003, keyed) until `stop`, returning each request's
/// latency; `acknowledged` counts the 202s.
async fn ingest(
    base: String,
    key: String,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let started = Instant::now();
        let response = http
            .post(format!("{base}/api/v1/events"))
            .header("x-api-key", &key)
            .json(
                &json!({"userId": format!("live-{}", n % 50), "eventName": "pageview",
                "properties": {"pageUrl": format!("/live/{}", n % 7)}}),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        samples.push(started.elapsed());
        assert_eq!(status, 202, "{}", response.text().await.unwrap_or_default());
        acknowledged.fetch_add(1, Ordering::AcqRel);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    samples
}

/// `/health` and ingest latencies over `duration`, with `wide_readers` asking wide reads with
/// each credential meanwhile.
async fn measure(
    base: &str,
    key: &str,
    credentials: &[String],
    wide_readers: usize,
    duration: Duration,
    acknowledged: Arc<AtomicU64>,
    outcomes: Outcomes,
) -> (Vec<Duration>, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    // The wide readers stand for clients elsewhere: their own work here (reading and
    // checking big answers) runs at a low priority, so it does not take the cores from the
    // server or from the measuring clients.
    let readers_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(|| {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: changes only the calling thread's scheduling policy; reads `param`.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        })
        .enable_all()
        .build()
        .unwrap();
    let mut readers = Vec::new();
    for credential in credentials {
        for offset in 0..wide_readers {
            readers.push(readers_runtime.spawn(ask_wide_reads(
                base.to_owned(),
                credential.clone(),
                stop.clone(),
                outcomes.clone(),
                offset * 5,
            )));
        }
    }
    // The measuring clients get a thread and runtime of their own, so reading the wide
    // answers in this process does not delay them.
    let measuring = {
        let (base, key, stop) = (base.to_owned(), key.to_owned(), stop.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let health = tokio::spawn(poll_health(base.clone(), stop.clone()));
                let ingest = tokio::spawn(ingest(base, key, stop, acknowledged));
                (health.await.unwrap(), ingest.await.unwrap())
            })
        })
    };
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Release);
    for reader in readers {
        reader.await.expect("a wide reader failed");
    }
    readers_runtime.shutdown_background();
    measuring.join().expect("the measuring clients failed")
}

/// Opens `n` live streams with `credential` (their visitor counts run on the query threads).
async fn open_live_streams(base: &str, credential: &str, n: usize) -> Vec<impl Sized> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let url = format!(
            "{}/api/live?site_id={SITE}&token={credential}",
            base.replace("http://", "ws://")
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("live stream opens");
        // The first message is the visitor count.
        let first = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
        assert!(matches!(first, Ok(Some(Ok(_)))), "no first live message");
        streams.push(socket);
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_reads_never_slow_ingest_or_health() {
    // On a memory file system where there is one: fsync is then free, and the latencies
    // measure what reads could take from ingest (threads, cores), not the disk's moods.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let budget = BUDGET_MS.to_string();
    let server = launch(
        dir.path(),
        &[
            ("HEARTBEAT_QUERY_TIMEOUT_MS", budget.as_str()),
            // The limits stay on, high enough that the reads reach the query threads.
            ("HEARTBEAT_PER_KEY_PER_MINUTE", "1000000"),
            ("HEARTBEAT_SHARE_PER_IP_PER_MINUTE", "1000000"),
        ],
    );
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/api/site/create"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": SITE, "domain": SITE, "timezone": "America/New_York"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let shared: Value = http
        .put(format!("{base}/api/sites/{SITE}/share"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = shared["share_token"].as_str().unwrap().to_owned();

    // Background data: 400 days of events, 40 pages, 3 sources.
    let now_ms = chrono::Utc::now().timestamp_millis();
    for batch in 0..BACKGROUND_EVENTS / 1000 {
        let events: Vec<Value> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                let at = now_ms - (n as i64 * 1_728_000) % (400 * 86_400_000);
                let plan = ["free", "pro", "team"][n % 3];
                json!({"userId": format!("user-{}", n % 900), "eventName": if n % 4 == 0 { "signup" } else { "pageview" },
                    "timestamp": chrono::DateTime::from_timestamp_millis(at).unwrap().to_rfc3339(),
                    "properties": {"pageUrl": format!("/page/{}", n % 40), "plan": plan}})
            })
            .collect();
        let response = http
            .post(format!("{base}/api/v1/events"))
            .header("x-api-key", &key)
            .json(&events)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let acknowledged = Arc::new(AtomicU64::new(BACKGROUND_EVENTS as u64));
    wait_for_stored(&http, &base, &key, BACKGROUND_EVENTS as u64).await;

    let outcomes: Outcomes = Arc::default();
    let window = Duration::from_secs(8);
    let (mut idle_health, mut idle_ingest) = measure(
        &base,
        &key,
        &[],
        0,
        window,
        acknowledged.clone(),
        outcomes.clone(),
    )
    .await;
    let streams = [
        open_live_streams(&base, &key, 3).await,
        open_live_streams(&base, &link, 3).await,
    ];
    let credentials = [key.clone(), link.clone()];
    let (mut loaded_health, mut loaded_ingest) = measure(
        &base,
        &key,
        &credentials,
        4,
        window,
        acknowledged.clone(),
        outcomes.clone(),
    )
    .await;
    drop(streams);

    let spread = |samples: &mut Vec<Duration>| {
        samples.sort();
        let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
        format!(
            "p50 {:?} p90 {:?} p99 {:?} max {:?}",
            at(50),
            at(90),
            at(99),
            samples[samples.len() - 1]
        )
    };
    eprintln!(
        "health idle {}; loaded {}",
        spread(&mut idle_health),
        spread(&mut loaded_health)
    );
    eprintln!(
        "ingest idle {}; loaded {}",
        spread(&mut idle_ingest),
        spread(&mut loaded_ingest)
    );
    let (idle_health_p99, loaded_health_p99) = (p99(&mut idle_health), p99(&mut loaded_health));
    let (idle_ingest_p99, loaded_ingest_p99) = (p99(&mut idle_ingest), p99(&mut loaded_ingest));
    let outcomes = outcomes.lock().unwrap().clone();
    let count = |low: u16, high: u16| {
        outcomes
            .iter()
            .filter(|(_, s, _)| (low..=high).contains(s))
            .count()
    };
    eprintln!(
        "health p99 idle {idle_health_p99:?} loaded {loaded_health_p99:?} ({} / {} samples); \
         ingest p99 idle {idle_ingest_p99:?} loaded {loaded_ingest_p99:?} ({} / {} samples); \
         wide reads: {} answered, {} 200, {} 4xx, {} 503",
        idle_health.len(),
        loaded_health.len(),
        idle_ingest.len(),
        loaded_ingest.len(),
        outcomes.len(),
        count(200, 200),
        count(400, 499),
        count(503, 503),
    );
    // Enough wide reads ran for the comparison to mean something, and the ones beyond the
    // bounds were refused by name.
    assert!(
        outcomes.len() >= 40,
        "only {} wide reads answered",
        outcomes.len()
    );
    for (name, status, elapsed) in &outcomes {
        assert!(
            *elapsed <= Duration::from_millis(BUDGET_MS + 1500),
            "{name}: answered {status} after {elapsed:?}, over its {BUDGET_MS} ms budget"
        );
        if name.contains("ten thousand years")
            || name.contains("far too many")
            || name.contains("year one")
        {
            assert_eq!(*status, 400, "{name}");
        }
    }
    // Inside the server (its own request-duration histogram), /health was answered within
    // 5 ms at the 99.5th percentile and within 100 ms always, wide reads or not.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let bucket = |le: &str| -> u64 {
        let prefix = format!(
            "heartbeat_http_request_duration_seconds_bucket{{route=\"/health\",method=\"GET\",status=\"200\",le=\"{le}\"}} "
        );
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&prefix))
            .expect("the /health histogram");
        line[prefix.len()..].trim().parse().unwrap()
    };
    let all = bucket("+Inf");
    assert!(
        bucket("0.005") as f64 >= all as f64 * 0.995,
        "{} of {all} /health took the server over 5 ms",
        all - bucket("0.005")
    );
    assert_eq!(bucket("0.1"), all, "a /health took the server over 100 ms");
    // As the client sees it, p99 under load within 2x of idle. On two cores shared with this
    // test's own clients the idle p99 is 1 to 5 ms and scheduling alone moves it by that
    // much, so the bound has a floor of 20 ms. Reads run on the request threads (the
    // mistake this guards against) gave 40 to 55 ms here; before the query pool the same
    // reads held /health for 25 s.
    let within =
        |idle: Duration, loaded: Duration| loaded <= (idle * 2).max(Duration::from_millis(20));
    assert!(
        within(idle_health_p99, loaded_health_p99),
        "/health p99 went from {idle_health_p99:?} to {loaded_health_p99:?} under wide reads"
    );
    assert!(
        within(idle_ingest_p99, loaded_ingest_p99),
        "ingest p99 went from {idle_ingest_p99:?} to {loaded_ingest_p99:?} under wide reads"
    );
    // Nothing acknowledged is lost.
    wait_for_stored(&http, &base, &key, acknowledged.load(Ordering::Acquire)).await;
}

/// Polls until the site holds `expected` events (and never more).
async fn wait_for_stored(http: &reqwest::Client, base: &str, key: &str, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body: Value = http
            .post(format!("{base}/api/v2/query"))
            .bearer_auth(key)
            .json(
                &json!({"site_id": SITE, "metrics": ["events"], "date_range": [day(500), day(-1)]}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stored = body["results"][0]["metrics"][0].as_u64().unwrap_or(0);
        if stored >= expected {
            assert_eq!(stored, expected, "more events stored than acknowledged");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {stored} of {expected} events were stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A thread of the server as Linux's `/proc/<pid>/task/<tid>/stat` shows it.
#[cfg(target_os = "linux")]
#[derive(Debug)]
struct ServerThread {
    name: String,
    nice: i32,
    policy: i32,
}

#[cfg(target_os = "linux")]
fn server_threads(pid: u32) -> Vec<ServerThread> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // "tid (name) state ...": the name may hold spaces and parentheses, the fields after
        // its last ")" do not; nice is field 19 and policy field 41 of the whole line.
        let (head, tail) = stat.rsplit_once(')').unwrap();
        let name = head.split_once('(').unwrap().1.to_owned();
        let fields: Vec<&str> = tail.split_whitespace().collect();
        threads.push(ServerThread {
            name,
            nice: fields[16].parse().unwrap(),
            policy: fields[38].parse().unwrap(),
        });
    }
    threads
}

/// The processor's writer never waits on a thread below its own priority: a checkpoint in its
/// commit busy-waits for the tasks DuckDB's worker threads took, and idle-priority workers
/// barely ran while other threads kept the cores busy (docs/benchmarks.md, 2026-12-07). Only
/// the query threads run at the idle priority; DuckDB's workers share the processors' nice 5.
#[cfg(target_os = "linux")]
#[test]
fn only_the_query_threads_run_at_the_idle_priority() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = launch(dir.path(), &[]);
    // A query thread takes its priority as it starts, which may be just after "ready".
    let deadline = Instant::now() + Duration::from_secs(10);
    let threads = loop {
        let threads = server_threads(server.child.id());
        let starting = threads
            .iter()
            .any(|thread| thread.name == "heartbeat-query" && thread.policy != libc::SCHED_IDLE);
        if !starting || Instant::now() > deadline {
            break threads;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let idle: Vec<&ServerThread> = threads
        .iter()
        .filter(|thread| thread.policy == libc::SCHED_IDLE)
        .collect();
    assert!(
        !idle.is_empty(),
        "no query thread at the idle priority: {threads:?}"
    );
    assert!(
        idle.iter().all(|thread| thread.name == "heartbeat-query"),
        "threads other than the query threads at the idle priority: {threads:?}"
    );
    // The processor, and DuckDB's workers (one per core beyond the first).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let at_processor_priority = threads
        .iter()
        .filter(|thread| thread.policy == libc::SCHED_OTHER && thread.nice == 5)
        .count();
    assert!(
        at_processor_priority >= cores.min(2),
        "{at_processor_priority} threads at nice 5 on {cores} cores: {threads:?}"
    );
    server.terminate();
}
