//! Memory bounded by configuration, answers unchanged: a sessionizer that may keep only a
//! few visits in memory (and loads a late event's visit back from the store) builds exactly
//! the visits of one that keeps them all, across restarts; the dedup filter drops retries
//! from before a restart and within a batch, and keeps within its bytes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use heartbeat_model::{encode_batch, Event, SiteId};
use heartbeat_processor::{Processor, ProcessorConfig, VISIT_TIMEOUT_MS};
use heartbeat_query::{Sql, SqlRunner};
use heartbeat_queue::{WalConfig, WalQueue};
use heartbeat_store::EventData;
use heartbeat_store_duckdb::DuckDbStore;

const T0: i64 = 1_770_000_000_000;
const MIN: i64 = 60_000;

/// A small deterministic generator (xorshift), so every run sends the same events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn event(id: usize, site: &str, visitor: u64, at_ms: i64, name: &str, path: &str) -> Event {
    Event {
        visitor_id: visitor,
        hostname: "example.com".into(),
        pathname: path.into(),
        interactive: name != "pageview" && name != "engagement",
        ..Event::new(&format!("e{id}"), SiteId::from(site), name, at_ms)
    }
}

/// Visits of 60 visitors on two sites over a day: page views minutes apart, gaps just under
/// and just over the timeout, custom and engagement events, visits across hour edges; sent
/// in batches of 20, out of order within a batch, and one event in 15 held back and sent
/// hours (in event time) later, when its visit has long left memory.
fn traffic() -> Vec<Vec<Event>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut events = Vec::new();
    for visitor in 0..60u64 {
        let site = if visitor % 5 == 0 {
            "b.example"
        } else {
            "a.example"
        };
        let mut at = T0 + rng.below(20 * 60) as i64 * MIN;
        for _ in 0..(1 + rng.below(4)) {
            for page in 0..(1 + rng.below(5)) {
                let id = events.len();
                let path = format!("/p{}", rng.below(6));
                events.push(event(id, site, visitor, at, "pageview", &path));
                if rng.below(4) == 0 {
                    let id = events.len();
                    let late = at + (1 + rng.below(40)) as i64 * MIN;
                    events.push(event(id, site, visitor, late, "engagement", &path));
                }
                if page == 1 && rng.below(3) == 0 {
                    let id = events.len();
                    events.push(event(id, site, visitor, at + 30_000, "Signup", &path));
                }
                at += (1 + rng.below(12)) as i64 * MIN;
            }
            // The next visit: within the timeout of the last event (the same visit) or not.
            at += match rng.below(3) {
                0 => VISIT_TIMEOUT_MS - MIN,
                1 => VISIT_TIMEOUT_MS + MIN,
                _ => (2 + rng.below(200)) as i64 * MIN,
            };
        }
    }
    events.sort_by_key(|e| e.timestamp_ms);
    let mut held_back = Vec::new();
    let mut sent = Vec::new();
    for (n, event) in events.into_iter().enumerate() {
        if n % 15 == 7 {
            held_back.push(event);
        } else {
            sent.push(event);
        }
    }
    let mut batches: Vec<Vec<Event>> = sent
        .chunks(20)
        .map(|chunk| chunk.iter().rev().cloned().collect())
        .collect();
    // Held-back events go out in the batch sent 60 batches after their own.
    for (n, event) in held_back.into_iter().enumerate() {
        let at = (n * 15 / 20 + 60).min(batches.len() - 1);
        batches[at].push(event);
    }
    batches
}

fn config(max_open_visits: usize) -> ProcessorConfig {
    ProcessorConfig {
        max_records_per_batch: 1,
        idle_wait: Duration::from_millis(10),
        max_open_visits,
        ..ProcessorConfig::default()
    }
}

async fn rows(store: &DuckDbStore, sql: &str) -> Vec<String> {
    store
        .run(Sql {
            text: sql.into(),
            params: Vec::new(),
        })
        .await
        .unwrap()
        .iter()
        .map(|row| format!("{row:?}"))
        .collect()
}

/// Every event with its visit, and every visit's final state.
async fn outcome(store: &DuckDbStore) -> (Vec<String>, Vec<String>) {
    let events = rows(
        store,
        "SELECT site_id, event_id, CAST(session_id AS VARCHAR) FROM events ORDER BY event_id",
    )
    .await;
    // Each visit's last state, and the collapsing log's sums (the same when it is whole).
    let mut visits = rows(
        store,
        "SELECT site_id, CAST(session_id AS VARCHAR), CAST(visitor_id AS VARCHAR), \
         CAST(start_ts AS VARCHAR), CAST(end_ts AS VARCHAR), pageviews, events, engagements, \
         entry_page, exit_page FROM sessions WHERE sign = 1 \
         QUALIFY row_number() OVER (PARTITION BY site_id, session_id ORDER BY version DESC) = 1 \
         ORDER BY ALL",
    )
    .await;
    visits.extend(
        rows(
            store,
            "SELECT site_id, CAST(session_id AS VARCHAR), sum(sign), sum(sign * pageviews), \
             sum(sign * events), sum(sign * engagements) FROM sessions \
             GROUP BY ALL ORDER BY ALL",
        )
        .await,
    );
    (events, visits)
}

/// Sends `batches` through the queue to a fresh store, restarting the processor every
/// `restart_every` batches (never when 0). Returns the store and the visits loaded back.
async fn run(
    batches: &[Vec<Event>],
    config: ProcessorConfig,
    restart_every: usize,
) -> (DuckDbStore, u64) {
    let (store, reopened, _) = run_counting(batches, config, restart_every).await;
    (store, reopened)
}

/// [`run`], also counting the processor's store lookups of visits.
async fn run_counting(
    batches: &[Vec<Event>],
    config: ProcessorConfig,
    restart_every: usize,
) -> (DuckDbStore, u64, u64) {
    let (dir, wal, store, writer) = setup();
    let mut processor = Processor::start(wal.clone(), writer.clone(), dir.path(), config.clone())
        .await
        .unwrap();
    let (mut reopened, mut lookups) = (0, 0);
    for (n, batch) in batches.iter().enumerate() {
        wal.append_record(encode_batch(batch).unwrap())
            .await
            .unwrap();
        assert_eq!(processor.step().await.unwrap(), 1);
        if restart_every > 0 && n % restart_every == restart_every - 1 {
            reopened += processor.stats().visits_reopened.load(Ordering::SeqCst);
            lookups += processor.stats().visit_lookups.load(Ordering::SeqCst);
            processor = Processor::start(wal.clone(), writer.clone(), dir.path(), config.clone())
                .await
                .unwrap();
        }
    }
    reopened += processor.stats().visits_reopened.load(Ordering::SeqCst);
    lookups += processor.stats().visit_lookups.load(Ordering::SeqCst);
    let open = processor.stats().open_visits.load(Ordering::SeqCst);
    assert!(
        open <= config.max_open_visits as u64,
        "{open} visits in memory, over the cap of {}",
        config.max_open_visits
    );
    (store, reopened, lookups)
}

/// A fresh write-ahead log in a temporary directory and an in-memory store, with the
/// store as the processor takes it.
fn setup() -> (
    tempfile::TempDir,
    Arc<WalQueue>,
    DuckDbStore,
    Arc<DuckDbStore>,
) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(WalQueue::open(WalConfig::new(dir.path().join("wal"))).unwrap());
    let store = DuckDbStore::open_in_memory().unwrap();
    let writer = Arc::new(store.clone());
    (dir, wal, store, writer)
}

#[tokio::test]
async fn a_sessionizer_capped_at_a_few_visits_builds_the_visits_of_one_that_keeps_them_all() {
    let batches = traffic();
    // Nothing leaves memory: no cap, and visits are late forever.
    let keep_all = ProcessorConfig {
        visit_lateness_ms: i64::MAX / 4,
        ..config(100_000)
    };
    let (all, _) = run(&batches, keep_all, 0).await;
    let expected = outcome(&all).await;
    assert!(
        expected.1.len() > 160,
        "the traffic makes many visits: {}",
        expected.1.len()
    );
    for (cap, restart_every) in [(100_000, 0), (3, 0), (1, 0), (4, 7)] {
        let (capped, reopened) = run(&batches, config(cap), restart_every).await;
        assert!(
            reopened > 20,
            "late events came back from the store: {reopened}"
        );
        let got = outcome(&capped).await;
        let differ = |got: &[String], expected: &[String]| -> Vec<String> {
            let missing = expected.iter().filter(|row| !got.contains(row));
            let extra = got.iter().filter(|row| !expected.contains(row));
            missing
                .map(|row| format!("missing {row}"))
                .chain(extra.map(|row| format!("extra {row}")))
                .take(12)
                .collect()
        };
        assert_eq!(
            differ(&got.0, &expected.0),
            Vec::<String>::new(),
            "every event in the same visit (cap {cap}, restart every {restart_every})"
        );
        assert_eq!(
            differ(&got.1, &expected.1),
            Vec::<String>::new(),
            "the same visits (cap {cap}, restart every {restart_every})"
        );
    }
}

#[tokio::test]
async fn a_late_event_continues_its_visit_from_the_store_once_memory_let_it_go() {
    let site = "a.example";
    let batches = vec![
        vec![event(1, site, 7, T0, "pageview", "/")],
        vec![event(2, site, 7, T0 + 10 * MIN, "pageview", "/pricing")],
        // Another visitor moves the site's time on by hours: visitor 7's visit is closed.
        vec![event(3, site, 8, T0 + 300 * MIN, "pageview", "/")],
        // A late event of visitor 7, 25 minutes after its visit's last page view.
        vec![event(4, site, 7, T0 + 35 * MIN, "pageview", "/docs")],
    ];
    let (store, reopened) = run(&batches, config(100_000), 0).await;
    assert_eq!(reopened, 1);
    let (events, visits) = outcome(&store).await;
    assert_eq!(events.len(), 4);
    assert_eq!(
        visits.len(),
        4,
        "two visits, each with its sums: {visits:?}"
    );
    let seven = visits.iter().find(|v| v.contains("\"7\"")).unwrap();
    assert!(
        seven.contains("UInt(3), UInt(3), UInt(3)") && seven.contains("\"/docs\""),
        "one visit of three page views, exiting on the late one: {seven}"
    );
}

#[tokio::test]
async fn retries_are_dropped_across_restarts_and_within_a_batch_and_the_filter_keeps_its_bytes() {
    let (dir, wal, store, writer) = setup();
    let given = |n: usize| Event {
        event_id_from_client: true,
        ..event(
            n,
            "a.example",
            n as u64 % 5,
            T0 + n as i64 * 1000,
            "pageview",
            "/",
        )
    };
    let first: Vec<Event> = (0..50).map(given).collect();
    wal.append_record(encode_batch(&first).unwrap())
        .await
        .unwrap();
    let mut processor = Processor::start(wal.clone(), writer.clone(), dir.path(), config(100))
        .await
        .unwrap();
    processor.step().await.unwrap();
    // After a restart: a client retries ten of them, twice within one batch, with two new.
    let mut processor = Processor::start(wal.clone(), writer.clone(), dir.path(), config(100))
        .await
        .unwrap();
    let mut again: Vec<Event> = (40..50).chain(45..50).map(given).collect();
    again.extend([given(50), given(51), given(51)]);
    wal.append_record(encode_batch(&again).unwrap())
        .await
        .unwrap();
    processor.step().await.unwrap();
    let stats = processor.stats();
    assert_eq!(stats.duplicates_dropped.load(Ordering::SeqCst), 16);
    assert_eq!(
        rows(&store, "SELECT count(*) FROM events").await,
        ["[Int(52)]"]
    );
    assert_eq!(stats.dedup_ids.load(Ordering::SeqCst), 52);

    // A filter of 256 bytes remembers 32 ids at most: older ones are forgotten early, and
    // counted.
    let small = ProcessorConfig {
        dedup_max_bytes: 256,
        ..config(100)
    };
    let mut processor = Processor::start(wal.clone(), writer.clone(), dir.path(), small)
        .await
        .unwrap();
    let stats = processor.stats();
    let more: Vec<Event> = (100..400).map(given).collect();
    for chunk in more.chunks(30) {
        wal.append_record(encode_batch(chunk).unwrap())
            .await
            .unwrap();
        processor.step().await.unwrap();
        assert!(stats.dedup_bytes.load(Ordering::SeqCst) <= 256);
    }
    assert!(stats.dedup_forgotten_early.load(Ordering::SeqCst) >= 300);
    assert_eq!(
        rows(&store, "SELECT count(*) FROM events").await,
        ["[Int(352)]"]
    );
}

/// A backfill as exports and batch senders make them: visits one after another, each
/// visit's events together, a visit starting every 3 minutes over 10 hours of event time.
fn visit_ordered_backfill() -> Vec<Event> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut events = Vec::new();
    for visit in 0..200u64 {
        let visitor = rng.below(120);
        let mut at = T0 + visit as i64 * 3 * MIN;
        for _ in 0..(1 + rng.below(5)) {
            let id = events.len();
            events.push(event(id, "a.example", visitor, at, "pageview", "/p"));
            at += (1 + rng.below(4)) as i64 * MIN;
        }
    }
    events
}

#[tokio::test]
async fn a_backfill_into_a_new_store_looks_nothing_up_and_one_into_stored_time_does() {
    let events = visit_ordered_backfill();
    let batches: Vec<Vec<Event>> = events.chunks(25).map(<[Event]>::to_vec).collect();
    let keep_all = ProcessorConfig {
        visit_lateness_ms: i64::MAX / 4,
        ..config(100_000)
    };
    let (all, _) = run(&batches, keep_all, 0).await;
    let (store, _, lookups) = run_counting(&batches, config(100_000), 0).await;
    assert_eq!(
        lookups, 0,
        "no visit of a new store can continue the backfill's events"
    );
    assert_eq!(outcome(&store).await, outcome(&all).await);
    // Restarted after the backfill (in wall-clock time, long after its events), the
    // processor looks up the store for events inside the stored hours: one of the first
    // visit's visitor, half a minute after that visit's first page view, joins it.
    let first = &events[0];
    let late = Event {
        event_id: "late".into(),
        ..event(
            0,
            "a.example",
            first.visitor_id,
            first.timestamp_ms + MIN / 2,
            "pageview",
            "/late",
        )
    };
    let mut again = batches.clone();
    again.push(vec![late]);
    let (store, _, lookups) = run_counting(&again, config(100_000), batches.len()).await;
    assert_eq!(lookups, 1, "the late event's visit was looked up");
    let sessions = rows(
        &store,
        "SELECT count(DISTINCT session_id) FROM events WHERE event_id IN ('e0', 'late')",
    )
    .await;
    assert_eq!(
        sessions,
        vec!["[Int(1)]".to_owned()],
        "one visit: {sessions:?}"
    );
}

#[tokio::test]
async fn an_event_continues_a_visit_imported_after_the_processor_started() {
    let (dir, wal, store, writer) = setup();
    let mut processor = Processor::start(wal.clone(), writer, dir.path(), config(100_000))
        .await
        .unwrap();
    let mut send = async |events: Vec<Event>| {
        wal.append_record(encode_batch(&events).unwrap())
            .await
            .unwrap();
        assert_eq!(processor.step().await.unwrap(), 1);
        processor.stats().visit_lookups.load(Ordering::SeqCst)
    };
    // Live traffic of another visitor, hours after the visit imported next.
    assert_eq!(
        send(vec![event(
            1,
            "a.example",
            8,
            T0 + 600 * MIN,
            "pageview",
            "/"
        )])
        .await,
        0
    );
    let imported: Vec<Event> = [0, 5]
        .into_iter()
        .enumerate()
        .map(|(n, minute)| Event {
            session_id: 4242,
            ..event(
                100 + n,
                "a.example",
                7,
                T0 + minute * MIN,
                "pageview",
                "/imported",
            )
        })
        .collect();
    assert_eq!(store.import_events(imported).await.unwrap(), 2);
    // Visitor 7 again, ten minutes after the import's first page view: its visit is only
    // in the store, and the processor knows to look.
    let lookups = send(vec![event(
        2,
        "a.example",
        7,
        T0 + 10 * MIN,
        "pageview",
        "/next",
    )])
    .await;
    assert_eq!(lookups, 1);
    let visit = rows(
        &store,
        "SELECT CAST(session_id AS VARCHAR), pageviews FROM sessions WHERE visitor_id = 7 \
         AND sign = 1 QUALIFY row_number() OVER (ORDER BY version DESC) = 1",
    )
    .await;
    assert_eq!(
        visit,
        vec!["[Text(\"4242\"), UInt(3)]".to_owned()],
        "{visit:?}"
    );
}
