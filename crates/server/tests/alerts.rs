//! Alerts end to end, through a real SMTP server (`scripts/smtp-sink`, aiosmtpd) and a real
//! webhook receiver on loopback: a threshold rule fires on injected traffic and resolves,
//! its notices signed and mailed; an anomaly rule fires on a spike against the same hour of
//! previous weeks; a no-events rule fires when tracking stops; a receiver and a mail server
//! that are down get the message later, once, across a restart too; a receiver that refuses
//! it fails the delivery with the reason; reports are mailed with their chart and
//! unsubscribe link; annotations; and every bad input, SSRF targets included, is a 400
//! naming its fields.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

const SITE: &str = "alerts.example";

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A post a receiver got.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    headers: HeaderMap,
    body: String,
}

/// A webhook receiver on loopback answering `status` to every post.
struct Receiver {
    addr: SocketAddr,
    posts: Arc<Mutex<Vec<Post>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(port: u16, status: StatusCode) -> Receiver {
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let seen = posts.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(Post {
                        path: uri.path().to_owned(),
                        headers,
                        body,
                    });
                    status
                }
            },
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, posts, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `scripts/smtp-sink`: a real SMTP server writing each message to a directory.
struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start(port: u16) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/smtp-sink");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs scripts/smtp-sink (aiosmtpd: scripts/test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("ready"),
            "smtp-sink did not start: {line:?}"
        );
        SmtpSink { child, dir }
    }

    /// The messages received so far, oldest first.
    fn messages(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alerts evaluated every 200 ms, retries after 200 ms, private targets allowed (the
/// receivers are on loopback), mail through `smtp_port` in plain text.
fn fast(config: &mut heartbeat_server::Settings, smtp_port: Option<u16>) {
    config.alerts.interval_ms = 200;
    config.alerts.retry_base_ms = 200;
    config.alerts.retry_max_ms = 1_000;
    config.alerts.breaker_open_ms = 500;
    config.alerts.allow_private_targets = true;
    config.alerts.public_url = "https://stats.example.com/".into();
    if let Some(port) = smtp_port {
        config.smtp.host = "127.0.0.1".into();
        config.smtp.port = port;
        config.smtp.tls = heartbeat_server::config::SmtpTls::None;
        config.smtp.from = "Heartbeat <alerts@stats.example.com>".into();
    }
}

/// Polls `check` until it gives a value, for at most 20 s.
async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server.call(method, path, ADMIN, body.as_ref()).await
}

async fn created(server: &TestServer, path: &str, body: Value) -> Value {
    let (status, answer) = call(server, Method::POST, path, Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    answer
}

/// `n` page views of `/` by different people at `at`, as seed 003 events.
fn pageviews(n: usize, at: chrono::DateTime<chrono::Utc>, tag: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"userId": format!("{tag}-{i}"), "eventName": "page_view",
                "timestamp": at.to_rfc3339(), "properties": {"pageUrl": "/"}})
        })
        .collect()
}

fn signature(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn header<'a>(post: &'a Post, name: &str) -> &'a str {
    post.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

async fn history(server: &TestServer) -> Vec<Value> {
    let (status, body) = call(
        server,
        Method::GET,
        &format!("/api/sites/{SITE}/alerts/history"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["history"].as_array().unwrap().clone()
}

async fn deliveries(server: &TestServer) -> Vec<Value> {
    let (status, body) = call(
        server,
        Method::GET,
        &format!("/api/sites/{SITE}/deliveries"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_rule_fires_and_resolves_through_signed_webhooks_and_email() {
    let dir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let smtp = SmtpSink::start(smtp_port);
    let receiver = Receiver::start(0, StatusCode::OK).await;
    let server = serve_with(dir.path(), |c| fast(c, Some(smtp_port))).await;
    let key = server.create_site(SITE, "UTC").await;

    let hook = created(
        &server,
        &format!("/api/sites/{SITE}/webhooks"),
        json!({"url": receiver.url("/json")}),
    )
    .await;
    let secret = hook["webhook"]["secret"].as_str().unwrap().to_owned();
    let hook_id = hook["webhook"]["webhook_id"].as_str().unwrap().to_owned();
    let slack = created(
        &server,
        &format!("/api/sites/{SITE}/webhooks"),
        json!({"url": receiver.url("/slack"), "format": "slack"}),
    )
    .await;
    let slack_id = slack["webhook"]["webhook_id"].as_str().unwrap().to_owned();
    // The secret is shown once.
    let (_, listed) = call(
        &server,
        Method::GET,
        &format!("/api/sites/{SITE}/webhooks"),
        None,
    )
    .await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2);
    assert!(listed["webhooks"][0].get("secret").is_none(), "{listed}");

    let rule = created(
        &server,
        &format!("/api/sites/{SITE}/alerts"),
        json!({"name": "Traffic spike", "metric": "pageviews", "window_minutes": 5,
            "condition": {"type": "above", "threshold": 2}, "cooldown_minutes": 0,
            "webhook_ids": [hook_id, slack_id], "emails": ["ops@example.com"]}),
    )
    .await;
    let rule_id = rule["alert"]["alert_id"].as_str().unwrap().to_owned();
    assert_eq!(rule["alert"]["state"], "ok");

    // Two page views: not above 2, nothing fires.
    let now = chrono::Utc::now();
    server
        .send_batch(
            &key,
            &pageviews(2, now - chrono::Duration::seconds(60), "a"),
        )
        .await;
    server.wait_for_events(&key, SITE, 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(receiver.posts().is_empty());
    assert!(history(&server).await.is_empty());

    // A third: it fires, once, to both webhooks and the address.
    server
        .send_batch(
            &key,
            &pageviews(1, now - chrono::Duration::seconds(30), "b"),
        )
        .await;
    let posts = until("both webhooks", || {
        let posts = receiver.posts();
        (posts.len() >= 2).then_some(posts)
    })
    .await;
    let json_post = posts.iter().find(|p| p.path == "/json").unwrap();
    let timestamp = header(json_post, "x-heartbeat-timestamp");
    assert_eq!(
        header(json_post, "x-heartbeat-signature"),
        signature(&secret, timestamp, &json_post.body),
        "the signature is HMAC-SHA256 of timestamp.body"
    );
    assert!(header(json_post, "x-heartbeat-delivery").starts_with("dl_"));
    let notice: Value = serde_json::from_str(&json_post.body).unwrap();
    assert_eq!(notice["type"], "alert.fired");
    assert_eq!(notice["site_id"], SITE);
    assert_eq!(notice["alert"]["alert_id"], rule_id.as_str());
    assert_eq!(notice["alert"]["name"], "Traffic spike");
    assert_eq!(notice["event"]["value"], 3.0);
    assert_eq!(notice["event"]["expected"], 2.0);
    assert!(notice["event"]["resolved_at"].is_null());
    assert!(notice["dashboard_url"]
        .as_str()
        .unwrap()
        .starts_with("https://stats.example.com/?site=alerts.example"));
    let slack_post = posts.iter().find(|p| p.path == "/slack").unwrap();
    let slack_body: Value = serde_json::from_str(&slack_post.body).unwrap();
    assert!(
        slack_body["text"]
            .as_str()
            .unwrap()
            .contains("Traffic spike"),
        "{slack_body}"
    );
    assert!(slack_body["blocks"].is_array());

    let mail = until("the alert email", || smtp.messages().into_iter().next()).await;
    assert!(mail.contains("X-Envelope-To: ops@example.com"), "{mail}");
    assert!(
        mail.contains("Subject: [Heartbeat] Alert on alerts.example: Traffic spike"),
        "{mail}"
    );
    assert!(
        mail.contains("text/plain") && mail.contains("text/html"),
        "{mail}"
    );

    let (_, shown) = call(
        &server,
        Method::GET,
        &format!("/api/sites/{SITE}/alerts/{rule_id}"),
        None,
    )
    .await;
    assert_eq!(shown["alert"]["state"], "firing", "{shown}");
    assert_eq!(shown["alert"]["last_value"], 3.0);
    assert_eq!(shown["alert"]["emails"], json!(["ops@example.com"]));
    // A read key sees the rule and its state, not who it mails, nor the report recipients.
    let (status, read_key) = call(
        &server,
        Method::POST,
        "/api/keys",
        Some(json!({"scope": "read", "site_id": SITE})),
    )
    .await;
    assert_eq!(status, 201, "{read_key}");
    let read_key = read_key["api_key"].as_str().unwrap().to_owned();
    let (status, seen) = server
        .call(
            Method::GET,
            &format!("/api/sites/{SITE}/alerts/{rule_id}"),
            &read_key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["alert"]["state"], "firing");
    assert!(seen["alert"]["emails"].is_null(), "{seen}");
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/sites/{SITE}/reports"),
            &read_key,
            None,
        )
        .await;
    assert_eq!(status, 403);
    let fired = history(&server).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["alert_name"], "Traffic spike");
    assert_eq!(fired[0]["value"], 3.0);
    assert!(fired[0]["resolved_at"].is_null());
    let (_, notes) = call(
        &server,
        Method::GET,
        &format!("/api/sites/{SITE}/annotations"),
        None,
    )
    .await;
    let notes = notes["annotations"].as_array().unwrap().clone();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["kind"], "alert");
    assert_eq!(notes[0]["alert_event_id"], fired[0]["event_id"]);

    // Still above the threshold: no second firing while it fires.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(history(&server).await.len(), 1);
    assert_eq!(receiver.posts().len(), 2);

    // The threshold moves above the value: it resolves, and says so.
    let mut body = shown["alert"].clone();
    body["condition"] = json!({"type": "above", "threshold": 10});
    let (status, answer) = call(
        &server,
        Method::PUT,
        &format!("/api/sites/{SITE}/alerts/{rule_id}"),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let posts = until("the resolution", || {
        let posts = receiver.posts();
        (posts.len() >= 4).then_some(posts)
    })
    .await;
    let resolved: Vec<Value> = posts
        .iter()
        .filter(|p| p.path == "/json")
        .map(|p| serde_json::from_str(&p.body).unwrap())
        .collect();
    assert_eq!(resolved.len(), 2);
    assert_eq!(resolved[1]["type"], "alert.resolved");
    assert!(resolved[1]["event"]["resolved_at"].is_string());
    until("the resolution email", || {
        (smtp.messages().len() >= 2).then_some(())
    })
    .await;
    let fired = history(&server).await;
    assert_eq!(fired.len(), 1);
    assert!(fired[0]["resolved_at"].is_string(), "{fired:?}");
    let sent = deliveries(&server).await;
    assert_eq!(sent.len(), 6, "{sent:?}");
    assert!(sent.iter().all(|d| d["status"] == "delivered"), "{sent:?}");
    // Every delivery reached its receiver exactly once.
    let mut ids: Vec<&str> = posts
        .iter()
        .map(|p| header(p, "x-heartbeat-delivery"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), posts.len());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anomaly_rule_fires_on_a_spike_against_the_same_hour_of_previous_weeks() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), |c| fast(c, None)).await;
    let key = server.create_site(SITE, "UTC").await;
    let now = chrono::Utc::now();
    let mut batch = Vec::new();
    // 8 to 11 page views in the same hour of each of the last four weeks; 40 now.
    for (week, n) in [(1, 10), (2, 8), (3, 11), (4, 9)] {
        let at = now - chrono::Duration::weeks(week) - chrono::Duration::minutes(20);
        batch.extend(pageviews(n, at, &format!("w{week}")));
    }
    batch.extend(pageviews(40, now - chrono::Duration::minutes(20), "now"));
    // The site's first event, before the oldest week's window: a window the site did not
    // exist through is left out of the baseline.
    batch.extend(pageviews(
        1,
        now - chrono::Duration::weeks(4) - chrono::Duration::hours(3),
        "first",
    ));
    server.send_batch(&key, &batch).await;
    server.wait_for_events(&key, SITE, batch.len() as u64).await;
    for (name, direction) in [("Spike", "up"), ("Drop", "down")] {
        created(
            &server,
            &format!("/api/sites/{SITE}/alerts"),
            json!({"name": name, "metric": "pageviews", "window_minutes": 60,
                "condition": {"type": "anomaly", "direction": direction, "sensitivity": 3, "weeks": 4}}),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let events = loop {
        let events = history(&server).await;
        if !events.is_empty() || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(events.len(), 1, "only the upward rule fires: {events:?}");
    assert_eq!(events[0]["alert_name"], "Spike");
    assert_eq!(events[0]["value"], 40.0);
    // The expected value is the median of the four weeks (8, 9, 10, 11).
    assert_eq!(events[0]["expected"], 9.5);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(history(&server).await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_and_a_mail_server_that_are_down_get_the_message_later_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let smtp_port = free_port();
    let server = serve_with(dir.path(), |c| fast(c, Some(smtp_port))).await;
    server.create_site(SITE, "UTC").await;
    let hook = created(
        &server,
        &format!("/api/sites/{SITE}/webhooks"),
        json!({"url": format!("http://127.0.0.1:{hook_port}/hook")}),
    )
    .await;
    let hook_id = hook["webhook"]["webhook_id"].as_str().unwrap().to_owned();
    // No events at all: tracking is broken, it fires at once.
    created(
        &server,
        &format!("/api/sites/{SITE}/alerts"),
        json!({"name": "Tracking broken", "window_minutes": 1, "condition": {"type": "no_events"},
            "webhook_ids": [hook_id], "emails": ["owner@example.com"]}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = deliveries(&server).await;
        let retried = list.len() == 2
            && list.iter().all(|d| {
                d["status"] == "pending"
                    && d["attempts"].as_u64().unwrap() >= 2
                    && d["last_error"].is_string()
            });
        if retried {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries not retried: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;

    // Both come back while the server is down; the restarted server delivers each once.
    let receiver = Receiver::start(hook_port, StatusCode::OK).await;
    let smtp = SmtpSink::start(smtp_port);
    let server = serve_with(dir.path(), |c| fast(c, Some(smtp_port))).await;
    until("the webhook post", || {
        (!receiver.posts().is_empty()).then_some(())
    })
    .await;
    until("the email", || (!smtp.messages().is_empty()).then_some(())).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let posts = receiver.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let notice: Value = serde_json::from_str(&posts[0].body).unwrap();
    assert_eq!(notice["type"], "alert.fired");
    assert!(
        notice["event"]["message"]
            .as_str()
            .unwrap()
            .contains("No events"),
        "{notice}"
    );
    assert_eq!(smtp.messages().len(), 1);
    // The rule still fires (no events), and fired once.
    assert_eq!(history(&server).await.len(), 1);
    let list = deliveries(&server).await;
    assert!(list.iter().all(|d| d["status"] == "delivered"), "{list:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_refuses_the_message_fails_the_delivery_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(0, StatusCode::GONE).await;
    let server = serve_with(dir.path(), |c| fast(c, None)).await;
    server.create_site(SITE, "UTC").await;
    let hook = created(
        &server,
        &format!("/api/sites/{SITE}/webhooks"),
        json!({"url": receiver.url("/gone")}),
    )
    .await;
    created(
        &server,
        &format!("/api/sites/{SITE}/alerts"),
        json!({"name": "Quiet", "window_minutes": 5, "condition": {"type": "no_events"},
            "webhook_ids": [hook["webhook"]["webhook_id"]]}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let (_, body) = call(
            &server,
            Method::GET,
            &format!("/api/sites/{SITE}/deliveries?status=failed"),
            None,
        )
        .await;
        let list = body["deliveries"].as_array().unwrap().clone();
        if !list.is_empty() {
            break list;
        }
        assert!(Instant::now() < deadline, "no failed delivery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed[0]["attempts"], 1);
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("410"),
        "{failed:?}"
    );
    assert_eq!(receiver.posts().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_mailed_with_their_chart_and_an_unsubscribe_link() {
    let dir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let smtp = SmtpSink::start(smtp_port);
    let server = serve_with(dir.path(), |c| fast(c, Some(smtp_port))).await;
    let key = server.create_site(SITE, "UTC").await;
    // Traffic in last week (Monday to Sunday).
    let today = chrono::Utc::now().date_naive();
    let monday = today
        - chrono::Duration::days(i64::from(
            chrono::Datelike::weekday(&today).num_days_from_monday(),
        ));
    let last_wednesday = (monday - chrono::Duration::days(5))
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    let mut batch = pageviews(7, last_wednesday, "w");
    batch.push(
        json!({"userId": "x", "eventName": "page_view", "timestamp": last_wednesday.to_rfc3339(),
        "properties": {"pageUrl": "/<script>alert(1)</script>"}}),
    );
    server.send_batch(&key, &batch).await;
    server.wait_for_events(&key, SITE, 8).await;

    let report = created(
        &server,
        &format!("/api/sites/{SITE}/reports"),
        json!({"email": "owner@example.com", "period": "weekly"}),
    )
    .await;
    let report_id = report["report"]["report_id"].as_str().unwrap().to_owned();
    // Created after last week ended: the schedule waits for this week's end.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(smtp.messages().is_empty());
    let (status, sent) = call(
        &server,
        Method::POST,
        &format!("/api/sites/{SITE}/reports/{report_id}/send"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let mail = until("the report", || smtp.messages().into_iter().next()).await;
    assert!(mail.contains("X-Envelope-To: owner@example.com"), "{mail}");
    assert!(
        mail.contains("Subject: Weekly report for alerts.example"),
        "{mail}"
    );
    for part in [
        "multipart/alternative",
        "multipart/related",
        "text/plain",
        "text/html",
        "image/png",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ] {
        assert!(mail.contains(part), "{part} missing");
    }
    assert!(
        !mail.contains("<script>alert(1)</script>"),
        "page paths are escaped in the HTML"
    );
    let token_at = mail
        .find("unsubscribe?token=")
        .expect("an unsubscribe link");
    let token: String = mail[token_at + "unsubscribe?token=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let page = server
        .http
        .get(server.url(&format!("/api/reports/unsubscribe?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("owner@example.com will no longer get the weekly report"));
    let (_, list) = call(
        &server,
        Method::GET,
        &format!("/api/sites/{SITE}/reports"),
        None,
    )
    .await;
    assert_eq!(list["reports"], json!([]));
    let again = server
        .http
        .post(server.url(&format!("/api/reports/unsubscribe?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotations_are_dated_notes_of_a_site() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    server.create_site(SITE, "Europe/Berlin").await;
    let path = format!("/api/sites/{SITE}/annotations");
    let deploy = created(
        &server,
        &path,
        json!({"at": "2026-11-30T09:30:00Z", "text": "Deployed pricing"}),
    )
    .await;
    // A date is its midnight in the site's time zone.
    let launch = created(
        &server,
        &path,
        json!({"at": "2026-12-01", "text": "Launch"}),
    )
    .await;
    assert_eq!(launch["annotation"]["at"], "2026-11-30T23:00:00.000Z");
    assert_eq!(deploy["annotation"]["kind"], "note");
    let (_, all) = call(&server, Method::GET, &path, None).await;
    let texts: Vec<&str> = all["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Deployed pricing", "Launch"]);
    let (_, first_day) = call(
        &server,
        Method::GET,
        &format!("{path}?from=2026-11-30&to=2026-11-30"),
        None,
    )
    .await;
    assert_eq!(first_day["annotations"].as_array().unwrap().len(), 1);
    let id = deploy["annotation"]["annotation_id"].as_str().unwrap();
    let (status, changed) = call(
        &server,
        Method::PUT,
        &format!("{path}/{id}"),
        Some(json!({"text": "Deployed the pricing page"})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["annotation"]["at"], "2026-11-30T09:30:00.000Z");
    assert_eq!(changed["annotation"]["text"], "Deployed the pricing page");
    let (status, _) = call(&server, Method::DELETE, &format!("{path}/{id}"), None).await;
    assert_eq!(status, 200);
    let (status, body) = call(&server, Method::DELETE, &format!("{path}/{id}"), None).await;
    assert_eq!(status, 404);
    assert_eq!(error_fields(&body), ["annotation_id"]);
    // Bad input names every field.
    let (status, body) = call(
        &server,
        Method::POST,
        &path,
        Some(json!({"at": "yesterday", "text": "", "colour": "red"})),
    )
    .await;
    assert_eq!(status, 400);
    let mut fields = error_fields(&body);
    fields.sort();
    assert_eq!(fields, ["at", "colour", "text"]);
    let (status, body) = call(&server, Method::GET, &format!("{path}?from=soon"), None).await;
    assert_eq!(status, 400);
    assert_eq!(error_fields(&body), ["from"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_webhooks_and_reports_are_400s_naming_every_field() {
    let dir = tempfile::tempdir().unwrap();
    // Defaults: private targets refused, no mail server.
    let server = serve(dir.path()).await;
    server.create_site(SITE, "UTC").await;
    let alerts = format!("/api/sites/{SITE}/alerts");
    let bad = |body: Value, expected: &[&str]| {
        let (server, alerts) = (&server, &alerts);
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        async move {
            let (status, answer) = call(server, Method::POST, alerts, Some(body.clone())).await;
            assert_eq!(status, 400, "{body} -> {answer}");
            let mut fields = error_fields(&answer);
            fields.sort();
            assert_eq!(fields, expected, "{body} -> {answer}");
        }
    };
    bad(
        json!({}),
        &["condition", "metric", "name", "window_minutes"],
    )
    .await;
    bad(
        json!({"name": "", "metric": "visitors", "window_minutes": 2, "condition": {"type": "above", "threshold": "10"},
            "cooldown_minutes": -1, "enabled": "yes", "colour": 1}),
        &["colour", "condition.threshold", "cooldown_minutes", "enabled", "name", "window_minutes"],
    )
    .await;
    bad(
        json!({"name": "x", "metric": "total_revenue", "window_minutes": 1441, "condition": {"type": "sometimes"}}),
        &["condition.type", "metric", "window_minutes"],
    )
    .await;
    bad(
        json!({"name": "x", "metric": "visitors", "window_minutes": 60,
            "condition": {"type": "anomaly", "direction": "sideways", "sensitivity": 0, "weeks": 40, "extra": 1}}),
        &["condition.direction", "condition.extra", "condition.sensitivity", "condition.weeks"],
    )
    .await;
    bad(
        json!({"name": "x", "metric": "visitors", "window_minutes": 60, "condition": {"type": "below", "threshold": 1},
            "webhook_ids": ["wh_nope"], "emails": ["not-an-address", "ok@example.com"]}),
        &["emails[0]", "emails[1]", "webhook_ids[0]"],
    )
    .await;
    bad(
        json!({"name": "x", "metric": "visitors", "window_minutes": 60, "condition": {"type": "below", "threshold": 1},
            "filters": [["is", "event:nothing", ["/"]]]}),
        &["filters[0]"],
    )
    .await;
    bad(
        json!({"name": "x", "metric": "conversion_rate", "window_minutes": 60, "condition": {"type": "below", "threshold": 1}}),
        &["metric"],
    )
    .await;
    let (status, body) = call(&server, Method::POST, &alerts, Some(json!([1]))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(&server, Method::GET, &format!("{alerts}/al_nope"), None).await;
    assert_eq!(status, 404);
    assert_eq!(error_fields(&body), ["alert_id"]);
    let (status, body) = call(
        &server,
        Method::GET,
        &format!("{alerts}/history?limit=0"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_fields(&body), ["limit"]);
    let (status, body) = call(
        &server,
        Method::GET,
        &format!("/api/sites/{SITE}/deliveries?status=lost"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_fields(&body), ["status"]);

    // Webhooks: no server-side request forgery.
    let hooks = format!("/api/sites/{SITE}/webhooks");
    for url in [
        "http://127.0.0.1:9/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hook",
        "http://[::1]/",
        "http://intranet/hook",
        "ftp://hooks.example.com/",
        "not a url",
    ] {
        let (status, body) = call(&server, Method::POST, &hooks, Some(json!({"url": url}))).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(error_fields(&body), ["url"], "{url}");
    }
    let (status, body) = call(
        &server,
        Method::POST,
        &hooks,
        Some(json!({"url": "https://hooks.example.com/x", "format": "xml"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_fields(&body), ["format"]);
    created(
        &server,
        &hooks,
        json!({"url": "https://hooks.example.com/x"}),
    )
    .await;

    // Reports: an address, a period, and a mail server to send through.
    let reports = format!("/api/sites/{SITE}/reports");
    let (status, body) = call(
        &server,
        Method::POST,
        &reports,
        Some(json!({"email": "nope", "period": "daily"})),
    )
    .await;
    assert_eq!(status, 400);
    let mut fields = error_fields(&body);
    fields.sort();
    assert_eq!(fields, ["email", "period"]);
    let (status, body) = call(
        &server,
        Method::POST,
        &reports,
        Some(json!({"email": "a@example.com", "period": "weekly"})),
    )
    .await;
    assert_eq!(status, 400, "email is off without a mail server: {body}");
    assert!(body["details"][0]["message"]
        .as_str()
        .unwrap()
        .contains("smtp.host"));
    let page = server
        .http
        .get(server.url("/api/reports/unsubscribe?token=unsub_unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let missing = server
        .http
        .get(server.url("/api/reports/unsubscribe"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    server.stop().await;
}
