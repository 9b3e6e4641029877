//! The real binary's JSON logs: every log line of a request carries its request id, the same
//! id the response returns.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn request_logs_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("HEARTBEAT_ADMIN_TOKEN", ADMIN)
        .env("HEARTBEAT_LOG", "info,heartbeat_server=debug")
        .env_remove("HEARTBEAT_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel::<Value>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(log) = serde_json::from_str::<Value>(&line) {
                let _ = lines_tx.send(log);
            }
        }
    });
    let next = |what: &dyn Fn(&Value) -> bool| loop {
        let log = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the expected log line came");
        if what(&log) {
            return log;
        }
    };
    let ready = next(&|log| log["fields"]["message"] == "heartbeat is ready");
    let base = format!("http://{}", ready["fields"]["addr"].as_str().unwrap());
    let http = reqwest::Client::new();

    // A caller's id is kept; the handler's own error log and the request line both carry it.
    let response = http
        .post(format!("{base}/api/v2/query"))
        .header("x-request-id", "trace-42")
        .bearer_auth(ADMIN)
        .json(&json!({"site_id": "nowhere.example", "metrics": ["visitors"], "date_range": "day"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-request-id"], "trace-42");
    let answered = next(&|log| log["fields"]["message"] == "request answered");
    assert_eq!(answered["span"]["request_id"], "trace-42", "{answered}");
    assert_eq!(answered["span"]["route"], "/api/v2/query", "{answered}");
    assert_eq!(answered["fields"]["status"], 404, "{answered}");

    // A generated id is the one the response names.
    let response = http.get(format!("{base}/health")).send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let answered = next(&|log| log["fields"]["message"] == "request answered");
    assert_eq!(answered["span"]["request_id"], id.as_str(), "{answered}");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}
