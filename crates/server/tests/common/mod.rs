//! What the end-to-end tests share: a server on a temp data dir (in-process or the real
//! binary), a site with its key, polling with a deadline, and reading the stored events back.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use heartbeat_query::{Row, Sql, SqlRunner, SqlValue};
use heartbeat_server::{start, Running, Settings};
use heartbeat_store_duckdb::DuckDbStore;
use serde_json::{json, Value};

pub const ADMIN: &str = "test-admin-token";
pub const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

pub struct TestServer {
    pub running: Running,
    pub base: String,
    pub http: reqwest::Client,
}

pub async fn serve(dir: &Path) -> TestServer {
    serve_with(dir, |_| {}).await
}

/// MaxMind's test City database, shipped in `data/geoip/`.
pub fn geoip_test_db() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/geoip/GeoIP2-City-Test.mmdb")
}

/// A server whose config (loopback trusted as a proxy by default) `adjust` may change.
pub async fn serve_with(dir: &Path, adjust: impl FnOnce(&mut Settings)) -> TestServer {
    let mut config = Settings::new("127.0.0.1:0".parse().unwrap(), dir.to_path_buf());
    config.server.admin_token = ADMIN.into();
    config.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    // Tests send many events from one address; the tests of limits turn them on.
    config.limits = heartbeat_server::limits::LimitSettings::off();
    adjust(&mut config);
    let running = start(config).await.expect("server starts");
    let base = format!("http://{}", running.local_addr);
    TestServer {
        running,
        base,
        http: reqwest::Client::new(),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a site and returns its API key.
    pub async fn create_site(&self, domain: &str, timezone: &str) -> String {
        let response = self
            .http
            .post(self.url("/api/site/create"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": domain, "domain": domain, "timezone": timezone}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["api_key"].as_str().unwrap().to_owned()
    }

    pub async fn query(&self, key: &str, body: Value) -> Value {
        let (status, body) = self.query_answer(key, &body).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `POST /api/v2/query`'s status and JSON body (null when the body is not JSON).
    pub async fn query_answer(&self, key: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, "/api/v2/query", key, Some(body))
            .await
    }

    /// A request to `path` with `key` as the bearer and `body` as JSON: the answer's status
    /// and JSON body (null when the body is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends seed 003 events (`POST /api/v1/events` with `key`) as one batch; the batch
    /// must be accepted (202).
    #[allow(dead_code)]
    pub async fn send_batch(&self, key: &str, batch: &[Value]) {
        let response = self
            .http
            .post(self.url("/api/v1/events"))
            .header("x-api-key", key)
            .json(batch)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert_eq!(status, 202, "{}", response.text().await.unwrap());
    }

    /// Polls the `events` metric of all time until it reaches `expected`.
    pub async fn wait_for_events(&self, key: &str, site: &str, expected: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let body = self
                .query(
                    key,
                    json!({"site_id": site, "metrics": ["events"], "date_range": "all"}),
                )
                .await;
            let count = body["results"][0]["metrics"][0].as_u64().unwrap_or(0);
            if count >= expected {
                assert_eq!(count, expected, "more events stored than sent");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {count} of {expected} events were stored"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }
}

/// Runs SQL against a stopped server's DuckDB file.
pub async fn sql(dir: &Path, text: &str) -> Vec<Row> {
    let store = DuckDbStore::open(&dir.join("heartbeat.duckdb")).unwrap();
    store
        .run(Sql {
            text: text.into(),
            params: Vec::new(),
        })
        .await
        .unwrap()
}

/// Runs `statements` straight on a stopped server's DuckDB file, applying no migration: to
/// undo one.
#[allow(dead_code)]
pub fn sql_batch(dir: &Path, statements: &str) {
    let conn = duckdb::Connection::open(dir.join("heartbeat.duckdb")).unwrap();
    conn.execute_batch(statements).unwrap();
}

/// `(dimensions, metrics)` of each row of a v2 query answer, in the answer's order.
pub fn result_rows(body: &Value) -> Vec<(Vec<String>, Vec<f64>)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let dims = r["dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
            let metrics = r["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_f64().unwrap())
                .collect();
            (dims, metrics)
        })
        .collect()
}

pub fn text(value: &SqlValue) -> String {
    match value {
        SqlValue::Text(s) => s.clone(),
        SqlValue::Null => "NULL".into(),
        other => format!("{}", other.as_f64()),
    }
}

/// The real binary, running.
pub struct Process {
    pub child: Child,
    pub base: String,
}

impl Process {
    /// SIGTERM: the binary drains, flushes and exits 0.
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "SIGTERM exit: {exit:?}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real binary on `dir` with the admin token and `env`, and waits for its "ready"
/// log line.
pub fn launch(dir: &Path, env: &[(&str, &str)]) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .env("HEARTBEAT_ADMIN_TOKEN", ADMIN)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().unwrap();
    // `HEARTBEAT_TEST_SERVER_LOGS=DIR` keeps each server's log in DIR/<pid>.log.
    let mut keep = std::env::var_os("HEARTBEAT_TEST_SERVER_LOGS").map(|dir| {
        std::fs::create_dir_all(&dir).expect("log directory");
        std::fs::File::create(Path::new(&dir).join(format!("{}.log", child.id())))
            .expect("log file")
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(file) = keep.as_mut() {
                let _ = writeln!(file, "{line}");
            }
            if !sent {
                if let Ok(log) = serde_json::from_str::<Value>(&line) {
                    if log["fields"]["message"] == "heartbeat is ready" {
                        let _ = tx.send(log["fields"]["addr"].as_str().unwrap_or("").to_owned());
                        sent = true;
                    }
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server became ready");
    Process {
        child,
        base: format!("http://{addr}"),
    }
}

/// The fields an error answer names, after checking it is the one error shape.
#[allow(dead_code)]
pub fn error_fields(body: &Value) -> Vec<String> {
    assert_eq!(body["success"], false, "{body}");
    assert!(body["error"].is_string(), "{body}");
    body["details"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates the site `example.com` through the running binary at `base` (the admin token).
pub async fn create_site(base: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/site/create"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Example", "domain": "example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["api_key"].as_str().unwrap().to_owned()
}

/// `body` posted as JSON to `path` of the binary at `base` with the admin token; the answer's
/// JSON.
pub async fn admin_post(base: &str, path: &str, body: &Value) -> Value {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every metric of a site's headline, as product.md defines them.
pub const ALL_METRICS: [&str; 7] = [
    "visitors",
    "visits",
    "pageviews",
    "events",
    "bounce_rate",
    "visit_duration",
    "views_per_visit",
];

/// How many events of `example.com` the running binary at `base` has stored.
pub async fn stored_events(base: &str) -> u64 {
    let query = json!({"site_id": "example.com", "metrics": ["events"], "date_range": "all"});
    let body = admin_post(base, "/api/v2/query", &query).await;
    body["results"][0]["metrics"][0].as_u64().unwrap_or(0)
}

/// The variable `name` of the engines `scripts/services` starts; panics (never skips) when it
/// is not set.
pub fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run `scripts/services start` and \
             `source \"$(scripts/services env)\"` first (scripts/test does)"
        )
    })
}

/// A name no other run uses (letters, digits and `_`).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// A new, empty PostgreSQL database on the test server; its URL.
pub fn new_database(prefix: &str) -> String {
    let url = required("HEARTBEAT_TEST_POSTGRES_URL");
    let name = unique(prefix);
    let status = Command::new("psql")
        .arg(&url)
        .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql runs");
    assert!(status.success(), "CREATE DATABASE {name}");
    let (server, _) = url.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

/// The value of the unlabelled metric `name` at `metrics_url` (a node's `/metrics`), 0 when
/// absent.
#[allow(dead_code)]
pub async fn metric(metrics_url: &str, name: &str) -> f64 {
    let text = reqwest::Client::new()
        .get(metrics_url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Runs `rabbitmqctl` on the test broker (`scripts/services`' node).
pub fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/services"
        ))
        .arg("rabbitmqctl")
        .args(args)
        .status()
        .expect("scripts/services runs");
    assert!(status.success(), "rabbitmqctl {args:?}");
}
