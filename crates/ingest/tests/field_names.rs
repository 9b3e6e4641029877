//! Every error of a request names the field as the client sent it, whatever the wire format
//! and whichever step (decoding, or validation after it) finds it; a keyed request naming a
//! site its key may not use is refused, never stored in the key's own site.

use std::sync::Arc;

use heartbeat_ingest::{
    decode, ClientInfo, DecodeError, Decoded, IngestConfig, IngestError, Ingestor, KeyGrant,
    SiteDirectory,
};
use heartbeat_model::{Site, SiteId};
use heartbeat_queue::{WalConfig, WalQueue};

struct Sites(Vec<Site>);

impl SiteDirectory for Sites {
    fn by_domain(&self, domain: &str) -> Option<Site> {
        self.0.iter().find(|s| s.domain == domain).cloned()
    }
    fn by_id(&self, id: &SiteId) -> Option<Site> {
        self.0.iter().find(|s| s.id == *id).cloned()
    }
}

fn site(domain: &str) -> Site {
    Site {
        id: SiteId::from(domain),
        name: domain.into(),
        domain: domain.into(),
        timezone: "UTC".into(),
        created_at_ms: 0,
        rules: Default::default(),
        retention_days: None,
    }
}

fn ingestor(dir: &std::path::Path) -> Ingestor {
    let queue = Arc::new(WalQueue::open(WalConfig::new(dir.join("wal"))).unwrap());
    let sites = Sites(vec![site("example.com"), site("other.org")]);
    Ingestor::new(Arc::new(sites), queue, dir, IngestConfig::default()).unwrap()
}

fn client() -> ClientInfo {
    ClientInfo {
        ip: "203.0.113.5".parse().ok(),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0".into()),
        do_not_track: false,
    }
}

type Decoder = fn(&[u8]) -> Result<Decoded, DecodeError>;

/// What becomes of `body` through `decoder` and validation, sent with the key of
/// `example.com` when the format needs one: `Ok(events)`, or the error's kind and fields.
fn outcome(
    ingestor: &Ingestor,
    decoder: Decoder,
    body: &str,
) -> Result<usize, (String, Vec<String>)> {
    let fields = |errors: Vec<heartbeat_ingest::FieldError>| -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    };
    let decoded = match decoder(body.as_bytes()) {
        Ok(decoded) => decoded,
        Err(DecodeError::Invalid(errors)) => return Err(("invalid".into(), fields(errors))),
        Err(other) => return Err((format!("decode: {other}"), Vec::new())),
    };
    let key = KeyGrant {
        site_id: Some(SiteId::from("example.com")),
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    match ingestor.prepare(decoded, &client(), Some(&key), now_ms) {
        Ok(prepared) => Ok(prepared.events.len()),
        Err(IngestError::Invalid(errors)) => Err(("invalid".into(), fields(errors))),
        Err(IngestError::Forbidden { field, .. }) => Err(("forbidden".into(), vec![field])),
        Err(IngestError::UnknownSite { field, .. }) => Err(("unknown site".into(), vec![field])),
        Err(other) => Err((other.to_string(), Vec::new())),
    }
}

#[test]
fn errors_name_fields_as_the_client_sent_them() {
    let dir = tempfile::tempdir().unwrap();
    let ingestor = ingestor(dir.path());
    let long = "x".repeat(300);
    let cases: Vec<(&str, Decoder, String, &str, Vec<&str>)> = vec![
        // Seed 002: its URL is `path`.
        (
            "seed 002 path",
            decode::api_event,
            r#"{"site_id": "example.com", "event_type": "pageview", "path": "ftp://x/"}"#.into(),
            "invalid",
            vec!["path"],
        ),
        (
            "seed 002 several",
            decode::api_event,
            format!(
                r#"{{"site_id": "example.com", "event_type": "pageview", "path": "ftp://x/", "timestamp": "1990-01-01T00:00:00Z", "user_id": "{long}"}}"#
            ),
            "invalid",
            vec!["timestamp", "path", "user_id"],
        ),
        // Plausible's short names.
        (
            "plausible u",
            decode::api_event,
            r#"{"n": "pageview", "u": "ftp://example.com/", "d": "example.com"}"#.into(),
            "invalid",
            vec!["u"],
        ),
        (
            "plausible d unknown",
            decode::api_event,
            r#"{"n": "pageview", "u": "https://ghost.io/", "d": "ghost.io"}"#.into(),
            "unknown site",
            vec!["d"],
        ),
        // Seed 000.
        (
            "seed 000 page_url and event_type",
            decode::tracker_events,
            format!(
                r#"{{"event_type": "{}", "domain": "example.com", "page_url": "ftp://example.com/"}}"#,
                "e".repeat(121)
            ),
            "invalid",
            vec!["event_type", "page_url"],
        ),
        // Seed 004.
        (
            "seed 004 page_url and session_id",
            decode::realtime_events,
            format!(r#"{{"event_type": "PAGE_VIEW", "page_url": "ftp://x/", "session_id": "{long}"}}"#),
            "invalid",
            vec!["page_url", "session_id"],
        ),
        // Seed 003: a URL in its properties; items of a batch by their place.
        (
            "seed 003 properties.pageUrl",
            decode::v1_events,
            r#"[{"userId": "u", "eventName": "x"}, {"userId": "u", "eventName": "x", "properties": {"pageUrl": "ftp://x/"}, "timestamp": "2999-01-01T00:00:00Z"}]"#.into(),
            "invalid",
            vec!["[1].timestamp", "[1].properties.pageUrl"],
        ),
        (
            "seed 003 eventId",
            decode::v1_events,
            format!(r#"{{"userId": "u", "eventName": "x", "eventId": "{long}"}}"#),
            "invalid",
            vec!["eventId"],
        ),
        // Seed 001: an EventMessage without `type` is told of its own missing field.
        (
            "seed 001 without type",
            decode::v1_events,
            r#"{"id": "1", "data": {}, "timestamp": "2026-01-01T00:00:00Z", "source": "s"}"#.into(),
            "invalid",
            vec!["type"],
        ),
        (
            "seed 001 batch without type",
            decode::v1_batch,
            r#"{"events": [{"id": "1", "type": "t", "source": "s", "timestamp": "2026-01-01T00:00:00Z"}, {"id": "2", "data": {}, "source": "s"}]}"#.into(),
            "invalid",
            vec!["events[1].type", "events[1].timestamp"],
        ),
        (
            "seed 001 batch validation",
            decode::v1_batch,
            r#"{"events": [{"id": "1", "type": "t", "source": "s", "timestamp": "1990-01-01T00:00:00Z", "data": {"url": "ftp://x/"}}]}"#.into(),
            "invalid",
            vec!["events[0].timestamp", "events[0].data.url"],
        ),
        // Revenue: a bad amount and a bad currency together.
        (
            "revenue",
            decode::api_event,
            r#"{"n": "x", "u": "https://example.com/", "d": "example.com", "revenue": {"amount": "ten", "currency": "euro"}}"#.into(),
            "invalid",
            vec!["revenue.amount", "revenue.currency"],
        ),
        (
            "seed 004 purchase",
            decode::realtime_events,
            r#"{"event_type": "PURCHASE", "metadata": {"amount": "ten", "currency": "euro"}}"#.into(),
            "invalid",
            vec!["metadata.amount", "metadata.currency"],
        ),
        // Another site named in the body, under each format's own field.
        (
            "seed 002 other site",
            decode::api_event,
            r#"{"site_id": "other.org", "event_type": "pageview"}"#.into(),
            "forbidden",
            vec!["site_id"],
        ),
        (
            "seed 004 other site",
            decode::realtime_events,
            r#"{"site_id": "other.org", "event_type": "PAGE_VIEW"}"#.into(),
            "forbidden",
            vec!["site_id"],
        ),
        (
            "seed 003 other project",
            decode::v1_events,
            r#"[{"userId": "u", "eventName": "x"}, {"userId": "u", "eventName": "x", "projectId": "other.org"}]"#.into(),
            "forbidden",
            vec!["[1].projectId"],
        ),
        (
            "seed 001 other site",
            decode::v1_batch,
            r#"{"events": [{"id": "1", "type": "t", "source": "s", "timestamp": "2026-01-01T00:00:00Z", "siteId": "other.org"}]}"#.into(),
            "forbidden",
            vec!["events[0].siteId"],
        ),
        (
            "seed 004 unknown site",
            decode::realtime_events,
            r#"{"siteId": "ghost.io", "event_type": "PAGE_VIEW"}"#.into(),
            "unknown site",
            vec!["siteId"],
        ),
    ];
    for (name, decoder, body, kind, fields) in cases {
        let (got_kind, got_fields) = outcome(&ingestor, decoder, &body).unwrap_err();
        assert_eq!(
            (got_kind.as_str(), got_fields),
            (kind, fields.iter().map(|f| f.to_string()).collect()),
            "{name}"
        );
    }
}

#[test]
fn the_keys_own_site_named_in_the_body_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let ingestor = ingestor(dir.path());
    for (decoder, body) in [
        (
            decode::realtime_events as Decoder,
            r#"{"site_id": "example.com", "event_type": "PAGE_VIEW"}"#,
        ),
        (
            decode::v1_events,
            r#"{"userId": "u", "eventName": "x", "projectId": "example.com"}"#,
        ),
        (decode::v1_events, r#"{"userId": "u", "eventName": "x"}"#),
        (
            decode::v1_batch,
            r#"[{"id": "1", "type": "t", "source": "s", "timestamp": "2026-01-01T00:00:00Z", "site_id": "example.com"}]"#,
        ),
    ] {
        assert_eq!(outcome(&ingestor, decoder, body), Ok(1), "{body}");
    }
}
