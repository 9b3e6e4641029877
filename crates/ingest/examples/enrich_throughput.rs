//! Enriched events per second on one core: `Ingestor::prepare` (decode excluded) over
//! browser pageviews with real user agents, referrers, campaign tags and a GeoIP lookup.
//!
//! `cargo run --release -p heartbeat-ingest --example enrich_throughput [EVENTS]`
//!
//! Two runs: user agents repeating as in real traffic (the parser's cache answers), and
//! every user agent new (each one parsed by uap-core's regexes and checked against isbot).

use std::sync::Arc;
use std::time::Instant;

use heartbeat_ingest::enrich::geo::GeoIp;
use heartbeat_ingest::{decode, ClientInfo, IngestConfig, Ingestor, SiteDirectory};
use heartbeat_model::{Site, SiteId};
use heartbeat_queue::{WalConfig, WalQueue};

const USER_AGENTS: [&str; 8] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
];
const REFERRERS: [&str; 5] = [
    "",
    "https://www.google.com/",
    "https://l.facebook.com/",
    "https://news.ycombinator.com/item?id=1",
    "https://some-blog.dev/post",
];
const IPS: [&str; 4] = [
    "81.2.69.142",
    "216.160.83.56",
    "89.160.20.112",
    "203.0.113.9",
];

struct OneSite(Site);

impl SiteDirectory for OneSite {
    fn by_domain(&self, domain: &str) -> Option<Site> {
        (domain == self.0.domain).then(|| self.0.clone())
    }
    fn by_id(&self, id: &SiteId) -> Option<Site> {
        (*id == self.0.id).then(|| self.0.clone())
    }
}

fn run(ingestor: &Ingestor, events: usize, unique_agents: bool) -> f64 {
    let bodies: Vec<Vec<u8>> = (0..64)
        .map(|i| {
            let referrer = REFERRERS[i % REFERRERS.len()];
            format!(
                r#"{{"n":"pageview","u":"https://example.com/page/{i}?utm_source=news{}","d":"example.com","r":"{referrer}"}}"#,
                i % 3
            )
            .into_bytes()
        })
        .collect();
    let started = Instant::now();
    let mut stored = 0;
    for i in 0..events {
        let agent = USER_AGENTS[i % USER_AGENTS.len()];
        let client = ClientInfo {
            ip: IPS[i % IPS.len()].parse().ok(),
            user_agent: Some(if unique_agents {
                format!("{agent} Build/{i}")
            } else {
                agent.to_owned()
            }),
            do_not_track: false,
        };
        let decoded = decode::api_event(&bodies[i % bodies.len()]).expect("valid body");
        let prepared = ingestor
            .prepare(
                decoded,
                &client,
                None,
                chrono::Utc::now().timestamp_millis(),
            )
            .expect("valid event");
        stored += prepared.events.len();
    }
    assert_eq!(stored, events, "no event may be dropped");
    events as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let site = Site {
        id: SiteId::from("example.com"),
        name: "Example".into(),
        domain: "example.com".into(),
        timezone: "UTC".into(),
        created_at_ms: 0,
        rules: Default::default(),
        retention_days: None,
    };
    let queue = Arc::new(WalQueue::open(WalConfig::new(dir.path().join("wal"))).expect("wal"));
    let geoip = GeoIp::open(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/geoip/GeoIP2-City-Test.mmdb"),
    )
    .expect("GeoIP test database");
    // Ingestor::new builds the parser (uap-core and isbot regexes) once per process.
    let started = Instant::now();
    let ingestor = Ingestor::new(
        Arc::new(OneSite(site)),
        queue,
        dir.path(),
        IngestConfig::default(),
    )
    .expect("ingestor")
    .with_geoip(geoip);
    println!(
        "parser and lists loaded in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let repeating = run(&ingestor, events, false);
    println!("repeating user agents: {repeating:>9.0} enriched events/s on one core");
    let unique = run(&ingestor, events / 20, true);
    println!("every user agent new:  {unique:>9.0} enriched events/s on one core");
}
