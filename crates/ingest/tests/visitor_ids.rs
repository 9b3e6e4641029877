//! Cookieless visitor ids under a controlled clock: the daily salt rotates at midnight UTC,
//! and each event carries yesterday's id so the processor can continue a visit across it.

use std::sync::Arc;

use heartbeat_ingest::{decode, ClientInfo, IngestConfig, Ingestor, SiteDirectory};
use heartbeat_model::{Site, SiteId};
use heartbeat_queue::{WalConfig, WalQueue};

const DAY_MS: i64 = 86_400_000;
/// A midnight UTC after the real clock's today: the salt file is created at real time, and
/// the controlled clock moves forward from there.
fn midnight() -> i64 {
    let today = chrono::Utc::now().timestamp_millis().div_euclid(DAY_MS);
    (today + 10) * DAY_MS
}

struct OneSite(Site);

impl SiteDirectory for OneSite {
    fn by_domain(&self, domain: &str) -> Option<Site> {
        (domain == self.0.domain).then(|| self.0.clone())
    }
    fn by_id(&self, id: &SiteId) -> Option<Site> {
        (*id == self.0.id).then(|| self.0.clone())
    }
}

fn ingestor(dir: &std::path::Path) -> Ingestor {
    let site = Site {
        id: SiteId::from("example.com"),
        name: "Example".into(),
        domain: "example.com".into(),
        timezone: "UTC".into(),
        created_at_ms: 0,
        rules: Default::default(),
        retention_days: None,
    };
    let queue = Arc::new(WalQueue::open(WalConfig::new(dir.join("wal"))).unwrap());
    let config = IngestConfig {
        max_event_age_ms: 10 * 365 * DAY_MS,
        ..IngestConfig::default()
    };
    Ingestor::new(Arc::new(OneSite(site)), queue, dir, config).unwrap()
}

fn client(ip: &str) -> ClientInfo {
    ClientInfo {
        ip: ip.parse().ok(),
        user_agent: Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
                .into(),
        ),
        do_not_track: false,
    }
}

/// (visitor id, yesterday's id) of a pageview from `ip` at `now_ms`.
fn ids(ingestor: &Ingestor, ip: &str, now_ms: i64) -> (u64, Option<u64>) {
    let body = br#"{"n":"pageview","u":"https://example.com/","d":"example.com"}"#;
    let decoded = decode::api_event(body).unwrap();
    let prepared = ingestor
        .prepare(decoded, &client(ip), None, now_ms)
        .unwrap();
    let event = &prepared.events[0];
    (event.visitor_id, event.previous_visitor_id)
}

#[test]
fn ids_rotate_at_midnight_and_carry_yesterdays() {
    let dir = tempfile::tempdir().unwrap();
    let ingestor = ingestor(dir.path());
    let midnight = midnight();
    let evening = midnight + DAY_MS - 60_000;
    let (monday, _) = ids(&ingestor, "203.0.113.5", evening - 3_600_000);
    assert_eq!(
        ids(&ingestor, "203.0.113.5", evening).0,
        monday,
        "stable within a day"
    );
    assert_ne!(
        ids(&ingestor, "203.0.113.6", evening).0,
        monday,
        "another address"
    );

    let (tuesday, yesterday) = ids(&ingestor, "203.0.113.5", midnight + DAY_MS + 60_000);
    assert_ne!(tuesday, monday, "a new id after midnight UTC");
    assert_eq!(yesterday, Some(monday), "yesterday's id comes along");

    // Two days on, Monday's salt is gone: nothing links the visitor back.
    let (thursday, wednesday) = ids(&ingestor, "203.0.113.5", midnight + 3 * DAY_MS + 60_000);
    assert!(![monday, tuesday].contains(&thursday));
    assert!(!wednesday.is_some_and(|id| [monday, tuesday].contains(&id)));
}

#[test]
fn user_ids_are_used_as_is_and_never_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let ingestor = ingestor(dir.path());
    let body = br#"{"userId":"u-42","eventName":"signup"}"#;
    let key = heartbeat_ingest::KeyGrant {
        site_id: Some(SiteId::from("example.com")),
    };
    let at = |now_ms| {
        let decoded = decode::v1_events(body).unwrap();
        let prepared = ingestor
            .prepare(decoded, &client("203.0.113.5"), Some(&key), now_ms)
            .unwrap();
        let event = &prepared.events[0];
        (event.visitor_id, event.previous_visitor_id)
    };
    let (first, previous) = at(midnight() + 1000);
    assert_eq!(previous, None);
    assert_eq!(at(midnight() + 5 * DAY_MS).0, first);
}
