//! An event answered 202 survives `kill -9` of the real server at a random moment under load
//! and is counted exactly once after restart; SIGTERM drains and exits 0.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn pseudo_random_ms(low: u64, high: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    low + nanos % (high - low)
}

/// Sends events with a unique `seq` prop from 8 tasks until told to stop; returns the seqs
/// answered 202.
async fn load(base: String, round: usize, stop: Arc<Mutex<bool>>) -> HashSet<String> {
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (base, acked, stop) = (base.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0.. {
                if *stop.lock().unwrap() {
                    break;
                }
                let seq = format!("{round}-{worker}-{n}");
                let body = json!({"n": "pageview", "u": format!("https://example.com/p{}", n % 10), "d": "example.com", "p": {"seq": seq}});
                let sent = http
                    .post(format!("{base}/api/event"))
                    .header("user-agent", format!("{UA} worker{worker}"))
                    .body(body.to_string())
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 202 => {
                        acked.lock().unwrap().insert(seq);
                    }
                    Ok(_) => {}
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked_all = HashSet::new();
    let mut server = launch(dir.path(), &[("HEARTBEAT_RATE_LIMITS", "off")]);
    create_site(&server.base).await;
    for round in 0..3 {
        let stop = Arc::new(Mutex::new(false));
        let sender = tokio::spawn(load(server.base.clone(), round, stop.clone()));
        let delay = pseudo_random_ms(300, 1500);
        eprintln!("round {round}: kill -9 after {delay} ms");
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        *stop.lock().unwrap() = true;
        let acked = sender.await.unwrap();
        assert!(!acked.is_empty(), "round {round} acknowledged nothing");
        eprintln!("round {round}: {} events acknowledged", acked.len());
        acked_all.extend(acked);
        server = launch(dir.path(), &[("HEARTBEAT_RATE_LIMITS", "off")]);
    }
    // Everything acknowledged is processed after the last restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_events(&server.base).await < acked_all.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "acknowledged events were not all stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM: drain, flush, exit 0.
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "SIGTERM exit: {exit:?}");

    let rows = sql(
        dir.path(),
        "SELECT value, count(*) FROM event_props WHERE key = 'seq' GROUP BY value",
    )
    .await;
    let counts: HashMap<String, String> = rows.iter().map(|r| (text(&r[0]), text(&r[1]))).collect();
    for seq in &acked_all {
        assert_eq!(
            counts.get(seq).map(String::as_str),
            Some("1"),
            "acknowledged event {seq}"
        );
    }
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| n.as_str() != "1").collect();
    assert!(
        duplicated.is_empty(),
        "stored more than once: {duplicated:?}"
    );
    let totals = sql(
        dir.path(),
        "SELECT count(*), count(DISTINCT event_id) FROM events",
    )
    .await;
    assert_eq!(text(&totals[0][0]), text(&totals[0][1]));
}
