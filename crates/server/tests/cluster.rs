//! The real binary as a cluster on the engines `scripts/services` starts: events in the
//! two-shard ClickHouse, the queue on RabbitMQ streams (four partitions), the metadata in
//! PostgreSQL, data versions and limits in Redis; one API node, two ingest nodes and two
//! workers. Under load, one worker and one ingest node are killed (-9) and the worker comes
//! back: every event answered 202 is stored exactly once, each visitor has the one visit the
//! embedded engine builds from the same events, and the API node's answers follow what the
//! workers store (its cache is invalidated through Redis).
//!
//! Needs the `HEARTBEAT_TEST_*` variables of `scripts/services env` (`scripts/test` sets
//! them).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Runs `sql` on the first ClickHouse shard, returning its text answer.
async fn clickhouse(sql: &str) -> String {
    let urls = required("HEARTBEAT_TEST_CLICKHOUSE_URLS");
    let first = urls.split(',').next().unwrap().trim().to_owned();
    let response = reqwest::Client::new()
        .post(first)
        .body(sql.to_owned())
        .send()
        .await
        .expect("ClickHouse answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{sql}: {text}");
    text
}

struct Cluster {
    meta_url: String,
    stream: String,
    database: String,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            meta_url: new_database("hb_cluster"),
            stream: unique("hb.cluster.events"),
            database: unique("hb_cluster"),
        }
    }

    fn launch(&self, role: &str) -> (Process, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("HEARTBEAT_ROLE", role.to_owned()),
            ("HEARTBEAT_RATE_LIMITS", "off".to_owned()),
            ("HEARTBEAT_META", "postgres".to_owned()),
            ("HEARTBEAT_META_URL", self.meta_url.clone()),
            ("HEARTBEAT_META_REFRESH_MS", "200".to_owned()),
            ("HEARTBEAT_QUEUE", "amqp".to_owned()),
            ("HEARTBEAT_QUEUE_URL", required("HEARTBEAT_TEST_AMQP_URL")),
            ("HEARTBEAT_QUEUE_NAME", self.stream.clone()),
            ("HEARTBEAT_QUEUE_PARTITIONS", "4".to_owned()),
            ("HEARTBEAT_STORE", "clickhouse".to_owned()),
            (
                "HEARTBEAT_STORE_URLS",
                required("HEARTBEAT_TEST_CLICKHOUSE_URLS"),
            ),
            (
                "HEARTBEAT_STORE_CLUSTER",
                required("HEARTBEAT_TEST_CLICKHOUSE_CLUSTER"),
            ),
            ("HEARTBEAT_STORE_DATABASE", self.database.clone()),
            ("HEARTBEAT_CACHE", "redis".to_owned()),
            ("HEARTBEAT_CACHE_URL", required("HEARTBEAT_TEST_REDIS_URL")),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        (launch(dir.path(), &env), dir)
    }

    /// Drops the cluster's ClickHouse database on both shards.
    async fn drop_store(&self) {
        let db = &self.database;
        clickhouse(&format!("DROP DATABASE IF EXISTS {db}")).await;
        let urls = required("HEARTBEAT_TEST_CLICKHOUSE_URLS");
        if let Some(second) = urls.split(',').nth(1) {
            let _ = reqwest::Client::new()
                .post(second.trim())
                .body(format!("DROP DATABASE IF EXISTS {db}"))
                .send()
                .await;
        }
    }
}

/// Sends events with a unique `seq` prop from 4 tasks until told to stop or the node goes
/// away; the seqs answered 202. Each task is several visitors (user agents).
async fn load(base: String, label: &'static str, stop: Arc<Mutex<bool>>) -> HashSet<String> {
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (base, acked, stop) = (base.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0.. {
                if *stop.lock().unwrap() {
                    break;
                }
                let seq = format!("{label}-{worker}-{n}");
                let body = json!({"n": "pageview", "u": format!("https://example.com/p{}", n % 10), "d": "example.com", "p": {"seq": seq}});
                let sent = http
                    .post(format!("{base}/api/event"))
                    .header("user-agent", format!("{UA} {label}{worker}v{}", n % 16))
                    .body(body.to_string())
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 202 => {
                        acked.lock().unwrap().insert(seq);
                    }
                    Ok(response) if response.status() == 503 => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(response) => panic!("ingest answered {}", response.status()),
                    Err(_) => break,
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let acked = acked.lock().unwrap().clone();
    acked
}

/// Waits until the node at `base` accepts events of `example.com` (it has read the site).
async fn until_accepting(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = reqwest::Client::new()
            .post(format!("{base}/api/event"))
            .header("user-agent", UA)
            .body(r#"{"n":"pageview","u":"https://example.com/warm","d":"example.com"}"#)
            .send()
            .await
            .unwrap()
            .status();
        if status == 202 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the ingest node never took the site"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_stores_every_acknowledged_event_once_across_kill_9() {
    cluster_under_faults(false).await;
}

/// The same, with RabbitMQ stopped and started under load after the kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_stores_every_acknowledged_event_once_across_kill_9_and_a_broker_restart() {
    cluster_under_faults(true).await;
}

/// Two ingest nodes and two workers under load: kill -9 of a worker (which comes back) and
/// of an ingest node, then, with `broker_restart`, RabbitMQ stopped and started under load.
async fn cluster_under_faults(broker_restart: bool) {
    let cluster = Cluster::new();
    let (api, _api_dir) = cluster.launch("api");
    create_site(&api.base).await;
    let (ingest_a, _a_dir) = cluster.launch("ingest");
    let (ingest_b, _b_dir) = cluster.launch("ingest");
    let (mut worker_a, worker_a_dir) = cluster.launch("worker");
    let (worker_b, _worker_b_dir) = cluster.launch("worker");
    until_accepting(&ingest_a.base).await;
    until_accepting(&ingest_b.base).await;
    // The workers read the site within their refresh interval too.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Roles: an ingest node serves no queries, a worker no ingest, the API node no ingest.
    let misdirected = reqwest::Client::new()
        .post(format!("{}/api/v2/query", ingest_a.base))
        .bearer_auth(ADMIN)
        .json(&json!({"site_id": "example.com", "metrics": ["events"], "date_range": "all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(misdirected.status(), 421);
    let body: Value = misdirected.json().await.unwrap();
    assert_eq!(error_fields(&body), ["path"]);
    let refused = reqwest::Client::new()
        .post(format!("{}/api/event", api.base))
        .header("user-agent", UA)
        .body(r#"{"n":"pageview","u":"https://example.com/","d":"example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 421);
    let health = reqwest::get(format!("{}/health", worker_b.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // Load through both ingest nodes; kill -9 a worker, then an ingest node, mid-stream.
    let stop = Arc::new(Mutex::new(false));
    let load_a = tokio::spawn(load(ingest_a.base.clone(), "a", stop.clone()));
    let load_b = tokio::spawn(load(ingest_b.base.clone(), "b", stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    worker_a.child.kill().unwrap(); // SIGKILL
    worker_a.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut ingest_a = ingest_a;
    ingest_a.child.kill().unwrap();
    ingest_a.child.wait().unwrap();
    // The other worker takes the killed one's partitions over under load, and the killed one
    // comes back (on a new data dir: a worker keeps nothing of its own) and takes its share
    // again, still under load.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (worker_a_again, _worker_a_again_dir) = cluster.launch("worker");
    drop(worker_a_dir);
    tokio::time::sleep(Duration::from_millis(4000)).await;
    if broker_restart {
        // Ingest answers 503 while the broker is away; the workers wait and read on.
        rabbitmqctl(&["stop_app"]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
        tokio::time::sleep(Duration::from_millis(4000)).await;
    }
    *stop.lock().unwrap() = true;
    let mut acked = load_a.await.unwrap();
    let acked_b = load_b.await.unwrap();
    eprintln!(
        "acknowledged: {} through the killed ingest node, {} through the other",
        acked.len(),
        acked_b.len()
    );
    assert!(!acked.is_empty() && !acked_b.is_empty());
    acked.extend(acked_b);

    // Everything acknowledged is stored, exactly once, read from ClickHouse itself. The
    // store's total alone cannot tell: it also holds the warm-up events and those the killed
    // ingest node appended without answering, so it can reach the acknowledged count while
    // the last acknowledged events are still on their way.
    let db = &cluster.database;
    let deadline = Instant::now() + Duration::from_secs(90);
    let counts = loop {
        let counts = clickhouse(&format!(
            "SELECT value, count() FROM {db}.event_props WHERE key = 'seq' GROUP BY value \
             FORMAT TabSeparated"
        ))
        .await;
        let counts: HashMap<String, u64> = counts
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(seq, n)| (seq.to_owned(), n.parse().unwrap()))
            .collect();
        let missing = acked
            .iter()
            .filter(|seq| !counts.contains_key(*seq))
            .count();
        if missing == 0 || Instant::now() >= deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let missing: Vec<_> = acked
        .iter()
        .filter(|seq| !counts.contains_key(seq.as_str()))
        .collect();
    assert!(missing.is_empty(), "acknowledged, not stored: {missing:?}");

    // The API node's answers follow (through its cache, whose versions the workers bump in
    // Redis).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = stored_events(&api.base).await;
        // The warm-up events count too (one per ingest node at least).
        if stored >= acked.len() as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the API node answers {stored} events, of {} acknowledged and stored",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The visits the embedded engine builds: every visitor's events came within seconds, so
    // each visitor is one visit, holding all of its page views, whichever worker stored them.
    // Events appended but not answered 202 (the ingest node killed mid-append) may still
    // be on their way into the store: read both tables until they stop moving.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (visits, pageviews, visitors, stored) = loop {
        let visits = clickhouse(&format!(
            "SELECT count(), sum(pageviews) FROM (SELECT session_id, sum(sign) AS live, \
             sum(sign * pageviews) AS pageviews FROM {db}.sessions GROUP BY site_id, session_id \
             HAVING live > 0) FORMAT TabSeparated"
        ))
        .await;
        let events = clickhouse(&format!(
            "SELECT uniqExact(visitor_id), count() FROM {db}.events FORMAT TabSeparated"
        ))
        .await;
        let (visits, pageviews) = visits.trim().split_once('\t').unwrap();
        let (visitors, stored) = events.trim().split_once('\t').unwrap();
        let read = (
            visits.to_owned(),
            pageviews.to_owned(),
            visitors.to_owned(),
            stored.to_owned(),
        );
        if (read.0 == read.2 && read.1 == read.3) || Instant::now() >= deadline {
            break read;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(visits, visitors, "one visit per visitor");
    assert_eq!(pageviews, stored, "every page view in its visit, once");

    drop(worker_a_again);
    cluster.drop_store().await;
}

/// An API node's live stream shows the events the workers store (read back from ClickHouse,
/// since no processor of its own sees them), each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_nodes_live_stream_shows_what_the_workers_store() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let cluster = Cluster::new();
    let (api, _api_dir) = cluster.launch("api");
    create_site(&api.base).await;
    let (ingest, _ingest_dir) = cluster.launch("ingest");
    let (worker, _worker_dir) = cluster.launch("worker");
    until_accepting(&ingest.base).await;
    let mut request = format!(
        "{}/api/live?site_id=example.com",
        api.base.replacen("http", "ws", 1)
    )
    .into_client_request()
    .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let sent = reqwest::Client::new()
        .post(format!("{}/api/event", ingest.base))
        .header("user-agent", UA)
        .body(r#"{"n":"pageview","u":"https://example.com/live-probe","d":"example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    // The probe within 30 s, then no second copy of it for 3 s more.
    let mut seen = 0;
    let mut deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(message))) = tokio::time::timeout(left, socket.next()).await else {
            break;
        };
        let Message::Text(text) = message else {
            continue;
        };
        let message: Value = serde_json::from_str(&text).unwrap();
        if message["type"] == "event" && message["event"]["pathname"] == "/live-probe" {
            seen += 1;
            if seen == 1 {
                deadline = Instant::now() + Duration::from_secs(3);
            }
        }
    }
    assert_eq!(seen, 1, "the stored event, once, on the API node's stream");
    drop((api, ingest, worker));
    cluster.drop_store().await;
}
