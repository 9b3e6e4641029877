//! Store and queue faults: an unavailable store is retried with backoff until it recovers
//! and nothing is lost; events the store rejects go to the dead-letter file with the reason
//! while the rest of their batch is stored; a queue that is unavailable for a while (a
//! broker restarting) is read again after a pause, and the processor keeps running.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use heartbeat_model::{encode_batch, encode_site_deletion, Event, SiteId};
use heartbeat_processor::{Processor, ProcessorConfig};
use heartbeat_query::{Sql, SqlRunner, SqlValue};
use heartbeat_queue::{Backlog, Cursor, Delivery, EventQueue, QueueError, WalConfig, WalQueue};
use heartbeat_store::{Deleted, EventWriter, InsertBatch, StoreError, StoredVisit};
use heartbeat_store_duckdb::DuckDbStore;

/// A real DuckDB store behind a fault injector: the first `unavailable_failures` inserts
/// fail as if the disk were gone, and any batch holding an event named `poison` is
/// rejected as the engine rejects bad data. An insert takes `insert_delay_ms` more (a slow
/// disk), and the store counts what it is asked while an insert is under way: the
/// preparation of a batch (`prepared_while_writing`, by the import check every batch
/// makes) and reads that need the data being written (`reads_while_writing`: dedup's exact
/// check, visit lookups).
struct FaultyStore {
    inner: DuckDbStore,
    unavailable_failures: AtomicU32,
    attempts: AtomicU32,
    insert_delay_ms: AtomicU64,
    writing: AtomicBool,
    prepared_while_writing: AtomicU32,
    reads_while_writing: AtomicU32,
}

impl FaultyStore {
    fn count_if_writing(&self, counter: &AtomicU32) {
        if self.writing.load(Ordering::SeqCst) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl EventWriter for FaultyStore {
    async fn insert(&self, batch: Arc<InsertBatch>) -> Result<(), StoreError> {
        assert!(
            !self.writing.swap(true, Ordering::SeqCst),
            "one write at a time"
        );
        let written = self.write(batch).await;
        self.writing.store(false, Ordering::SeqCst);
        written
    }
    async fn imported_visits_until_ms(&self) -> Result<Option<i64>, StoreError> {
        self.count_if_writing(&self.prepared_while_writing);
        self.inner.imported_visits_until_ms().await
    }
    async fn queue_position(&self) -> Result<Option<u64>, StoreError> {
        self.inner.queue_position().await
    }
    async fn open_sessions(&self, since_ms: i64) -> Result<Vec<StoredVisit>, StoreError> {
        self.inner.open_sessions(since_ms).await
    }
    async fn visits_of(
        &self,
        site: &SiteId,
        visitors: Vec<u64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredVisit>, StoreError> {
        self.count_if_writing(&self.reads_while_writing);
        self.inner.visits_of(site, visitors, from_ms, to_ms).await
    }
    async fn client_id_fingerprints(
        &self,
        since_ms: i64,
        newest: usize,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        self.inner.client_id_fingerprints(since_ms, newest).await
    }
    async fn stored_client_ids(
        &self,
        site: &SiteId,
        ids: Vec<String>,
        since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.count_if_writing(&self.reads_while_writing);
        self.inner.stored_client_ids(site, ids, since_ms).await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
    async fn delete_site_events(&self, site: &SiteId) -> Result<Deleted, StoreError> {
        self.inner.delete_site_events(site).await
    }
}

impl FaultyStore {
    async fn write(&self, batch: Arc<InsertBatch>) -> Result<(), StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let delay = self.insert_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if take_one(&self.unavailable_failures) {
            return Err(StoreError::Unavailable {
                message: "injected: disk unavailable".into(),
            });
        }
        if batch.events.iter().any(|e| e.name == "poison") {
            return Err(StoreError::Rejected {
                message: "injected: value out of range".into(),
            });
        }
        self.inner.insert(batch).await
    }
}

/// Takes one of the faults left to inject, if any.
fn take_one(faults_left: &AtomicU32) -> bool {
    faults_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn event(n: usize, name: &str) -> Event {
    Event {
        event_id_from_client: true,
        visitor_id: n as u64 % 7,
        hostname: "example.com".into(),
        pathname: format!("/p{n}"),
        ..Event::new(
            &format!("e{n}"),
            SiteId::from("example.com"),
            name,
            1_770_000_000_000 + n as i64 * 1000,
        )
    }
}

fn config() -> ProcessorConfig {
    ProcessorConfig {
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(40),
        idle_wait: Duration::from_millis(20),
        ..ProcessorConfig::default()
    }
}

async fn count(store: &DuckDbStore, sql: &str) -> i64 {
    let rows = store
        .run(Sql {
            text: sql.into(),
            params: Vec::new(),
        })
        .await
        .unwrap();
    match rows[0][0] {
        SqlValue::Int(n) => n,
        ref other => other.as_f64() as i64,
    }
}

async fn setup(
    unavailable_failures: u32,
) -> (
    tempfile::TempDir,
    Arc<WalQueue>,
    DuckDbStore,
    Arc<FaultyStore>,
) {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(WalQueue::open(WalConfig::new(dir.path().join("wal"))).unwrap());
    let inner = DuckDbStore::open_in_memory().unwrap();
    let faulty = Arc::new(FaultyStore {
        inner: inner.clone(),
        unavailable_failures: AtomicU32::new(unavailable_failures),
        attempts: AtomicU32::new(0),
        insert_delay_ms: AtomicU64::new(0),
        writing: AtomicBool::new(false),
        prepared_while_writing: AtomicU32::new(0),
        reads_while_writing: AtomicU32::new(0),
    });
    (dir, wal, inner, faulty)
}

#[tokio::test]
async fn an_unavailable_store_is_retried_until_it_recovers() {
    let (dir, wal, inner, faulty) = setup(4).await;
    let events: Vec<Event> = (0..50).map(|n| event(n, "pageview")).collect();
    wal.append_record(encode_batch(&events).unwrap())
        .await
        .unwrap();
    let mut processor = Processor::start(wal.clone(), faulty.clone(), dir.path(), config())
        .await
        .unwrap();
    let processed = processor.step().await.unwrap();
    assert_eq!(processed, 1);
    assert_eq!(
        faulty.attempts.load(Ordering::SeqCst),
        5,
        "four failures, then success"
    );
    assert_eq!(count(&inner, "SELECT count(*) FROM events").await, 50);
    assert_eq!(processor.stats().store_retries.load(Ordering::SeqCst), 4);
    // The queue position moved only after the insert committed.
    assert_eq!(
        wal.checkpointed(),
        inner.queue_position().await.unwrap().unwrap()
    );
    assert!(!dir.path().join("dead-letter.ndjson").exists());
}

#[tokio::test]
async fn rejected_events_go_to_the_dead_letter_file_and_the_rest_is_stored() {
    let (dir, wal, inner, faulty) = setup(0).await;
    let mut events: Vec<Event> = (0..40).map(|n| event(n, "pageview")).collect();
    events[13] = event(13, "poison");
    events[31] = event(31, "poison");
    wal.append_record(encode_batch(&events).unwrap())
        .await
        .unwrap();
    let mut processor = Processor::start(wal.clone(), faulty.clone(), dir.path(), config())
        .await
        .unwrap();
    processor.step().await.unwrap();
    assert_eq!(count(&inner, "SELECT count(*) FROM events").await, 38);
    assert_eq!(
        count(&inner, "SELECT count(*) FROM events WHERE name = 'poison'").await,
        0
    );
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["reason"], "injected: value out of range");
        assert_eq!(line["event"]["name"], "poison");
    }
    assert_eq!(processor.stats().dead_lettered.load(Ordering::SeqCst), 2);
    assert_eq!(
        wal.checkpointed(),
        inner.queue_position().await.unwrap().unwrap()
    );
    // The queue keeps flowing after a poison batch.
    wal.append_record(encode_batch(&[event(100, "pageview")]).unwrap())
        .await
        .unwrap();
    processor.step().await.unwrap();
    assert_eq!(count(&inner, "SELECT count(*) FROM events").await, 39);
}

#[tokio::test]
async fn undecodable_records_are_dead_lettered_and_duplicates_dropped() {
    let (dir, wal, inner, faulty) = setup(0).await;
    wal.append_record(vec![9, 9, 9]).await.unwrap();
    let first: Vec<Event> = (0..5).map(|n| event(n, "pageview")).collect();
    wal.append_record(encode_batch(&first).unwrap())
        .await
        .unwrap();
    // A client retry of the same five events, and one new.
    let mut again = first.clone();
    again.push(event(5, "pageview"));
    wal.append_record(encode_batch(&again).unwrap())
        .await
        .unwrap();
    let mut processor = Processor::start(wal.clone(), faulty, dir.path(), config())
        .await
        .unwrap();
    while processor.step().await.unwrap() > 0 {}
    assert_eq!(count(&inner, "SELECT count(*) FROM events").await, 6);
    assert_eq!(
        processor.stats().duplicates_dropped.load(Ordering::SeqCst),
        5
    );
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.ndjson")).unwrap();
    assert!(dead.contains("\"record_hex\":\"090909\""), "{dead}");
    assert!(dead.contains("unknown event record version 9"), "{dead}");
}

/// A site created through another node after this node last read the directory: its events
/// are stored once the directory is read again, not dropped as a deleted site's.
#[tokio::test]
async fn a_site_this_node_has_not_read_yet_is_looked_up_before_its_events_are_dropped() {
    let (dir, wal, inner, faulty) = setup(0).await;
    let fresh: Vec<Event> = (0..3)
        .map(|n| Event {
            site_id: SiteId::from("new.example"),
            ..event(n, "pageview")
        })
        .collect();
    let gone = Event {
        site_id: SiteId::from("gone.example"),
        ..event(9, "pageview")
    };
    wal.append_record(encode_batch(&fresh).unwrap())
        .await
        .unwrap();
    wal.append_record(encode_batch(&[gone]).unwrap())
        .await
        .unwrap();
    let read_again = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (check_flag, refresh_flag) = (read_again.clone(), read_again.clone());
    let mut processor = Processor::start(wal.clone(), faulty.clone(), dir.path(), config())
        .await
        .unwrap()
        .with_site_check(Arc::new(move |site: &SiteId| {
            site.as_str() == "new.example" && check_flag.load(Ordering::SeqCst)
        }))
        .with_site_refresh(Arc::new(move || {
            let flag = refresh_flag.clone();
            Box::pin(async move { flag.store(true, Ordering::SeqCst) })
        }));
    assert_eq!(processor.step().await.unwrap(), 2);
    assert!(
        read_again.load(Ordering::SeqCst),
        "the directory was read again"
    );
    let site_count = |site: &str| format!("SELECT count(*) FROM events WHERE site_id = '{site}'");
    assert_eq!(count(&inner, &site_count("new.example")).await, 3);
    assert_eq!(count(&inner, &site_count("gone.example")).await, 0);
    assert_eq!(
        processor
            .stats()
            .deleted_site_dropped
            .load(Ordering::SeqCst),
        1,
        "a site still unknown after the refresh is a deleted one"
    );
}

#[tokio::test]
async fn a_site_deletion_runs_in_its_place_in_the_queue() {
    let (dir, wal, inner, faulty) = setup(0).await;
    let before: Vec<Event> = (0..10).map(|n| event(n, "pageview")).collect();
    let other: Vec<Event> = (20..23)
        .map(|n| Event {
            site_id: SiteId::from("other.example"),
            ..event(n, "pageview")
        })
        .collect();
    // The same visitors come back to the site created again under the same id.
    let after: Vec<Event> = (0..5)
        .map(|n| Event {
            event_id: format!("again{n}"),
            timestamp_ms: 1_770_000_000_000 + 60_000 + n as i64 * 1000,
            ..event(n, "pageview")
        })
        .collect();
    let gone = Event {
        site_id: SiteId::from("gone.example"),
        ..event(30, "pageview")
    };
    wal.append_record(encode_batch(&before).unwrap())
        .await
        .unwrap();
    wal.append_record(encode_batch(&other).unwrap())
        .await
        .unwrap();
    wal.append_record(encode_site_deletion(&SiteId::from("example.com")).unwrap())
        .await
        .unwrap();
    wal.append_record(encode_batch(&after).unwrap())
        .await
        .unwrap();
    wal.append_record(encode_batch(&[gone]).unwrap())
        .await
        .unwrap();
    // Deleted from the directory before the processor came to its event: dropped, and
    // reported with the deletion.
    wal.append_record(encode_site_deletion(&SiteId::from("gone.example")).unwrap())
        .await
        .unwrap();
    let processor = Processor::start(wal.clone(), faulty.clone(), dir.path(), config())
        .await
        .unwrap()
        .with_site_check(Arc::new(|site: &SiteId| site.as_str() != "gone.example"));
    let mut done = processor.deletions().subscribe();
    let mut processor = processor;
    assert_eq!(
        processor.step().await.unwrap(),
        6,
        "one step takes all six records"
    );

    let report = done.try_recv().unwrap();
    assert_eq!(report.site.as_str(), "example.com");
    assert_eq!(report.deleted.events, 10, "what came before the deletion");
    let report = done.try_recv().unwrap();
    assert_eq!(report.site.as_str(), "gone.example");
    assert_eq!(
        report.deleted.events, 1,
        "dropped while queued counts as deleted"
    );
    let site_count = |site: &str| format!("SELECT count(*) FROM events WHERE site_id = '{site}'");
    assert_eq!(
        count(&inner, &site_count("example.com")).await,
        5,
        "only what came after"
    );
    assert_eq!(count(&inner, &site_count("other.example")).await, 3);
    assert_eq!(count(&inner, &site_count("gone.example")).await, 0);
    assert_eq!(
        processor
            .stats()
            .deleted_site_dropped
            .load(Ordering::SeqCst),
        1
    );
    // The visits of the deleted site were forgotten: the new events start new visits, so no
    // row retracts a state that was deleted.
    assert_eq!(
        count(
            &inner,
            "SELECT count(*) FROM sessions WHERE site_id = 'example.com' AND sign = -1"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &inner,
            "SELECT sum(sign) FROM sessions WHERE site_id = 'example.com'"
        )
        .await,
        5
    );
    assert_eq!(
        wal.checkpointed(),
        wal.durable_end(),
        "everything acknowledged"
    );
}

/// The write-ahead log behind a fault injector: the first `unavailable_receives` receives
/// and the first `unavailable_acks` acknowledgements fail as a broker that went away does.
struct FlakyQueue {
    inner: Arc<WalQueue>,
    unavailable_receives: AtomicU32,
    unavailable_acks: AtomicU32,
    receives: AtomicU32,
}

#[async_trait::async_trait]
impl EventQueue for FlakyQueue {
    async fn append(&self, payload: Vec<u8>) -> Result<Cursor, QueueError> {
        self.inner.append(payload).await
    }
    async fn receive(
        &self,
        after: Cursor,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        self.receives.fetch_add(1, Ordering::SeqCst);
        if take_one(&self.unavailable_receives) {
            return Err(QueueError::Unavailable {
                message: "injected: connection reset by peer".into(),
            });
        }
        self.inner.receive(after, max, wait).await
    }
    async fn ack(&self, upto: Cursor) -> Result<(), QueueError> {
        if take_one(&self.unavailable_acks) {
            return Err(QueueError::Unavailable {
                message: "injected: connection reset by peer".into(),
            });
        }
        self.inner.ack(upto).await
    }
    fn acked(&self) -> Cursor {
        self.inner.acked()
    }
    fn backlog(&self) -> Backlog {
        self.inner.backlog()
    }
}

#[tokio::test]
async fn an_unavailable_queue_is_read_again_until_it_recovers_and_nothing_is_stored_twice() {
    let (dir, wal, inner, _) = setup(0).await;
    let events: Vec<Event> = (0..20).map(|n| event(n, "pageview")).collect();
    wal.append_record(encode_batch(&events).unwrap())
        .await
        .unwrap();
    // Receives fail, then the first batch's acknowledgement: the batch is stored, and must
    // not be read and stored again for want of an acknowledgement.
    let flaky = Arc::new(FlakyQueue {
        inner: wal.clone(),
        unavailable_receives: AtomicU32::new(3),
        unavailable_acks: AtomicU32::new(1),
        receives: AtomicU32::new(0),
    });
    let processor = Processor::start(flaky.clone(), Arc::new(inner.clone()), dir.path(), config())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(processor.run(stopped));
    let stored = |n: i64| {
        let inner = inner.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while count(&inner, "SELECT count(*) FROM events").await < n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the processor gave up on the queue"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    stored(20).await;
    assert!(flaky.receives.load(Ordering::SeqCst) > 3);
    let more: Vec<Event> = (20..40).map(|n| event(n, "pageview")).collect();
    wal.append_record(encode_batch(&more).unwrap())
        .await
        .unwrap();
    stored(40).await;
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(count(&inner, "SELECT count(*) FROM events").await, 40);
    assert_eq!(
        count(&inner, "SELECT count(DISTINCT event_id) FROM events").await,
        40,
        "nothing stored twice"
    );
    assert_eq!(
        wal.acked(),
        Cursor::from_stored(inner.queue_position().await.unwrap().unwrap()),
        "the later acknowledgement covers the one that failed"
    );
}

/// A backlog is stored with the next batch prepared while the store writes one, and what
/// the next batch reads of the store waits for that write: a visit looked up is the one
/// just written, and a retry of events being written is dropped as a duplicate.
#[tokio::test]
async fn the_next_batch_is_prepared_during_a_write_and_reads_of_the_store_wait_for_it() {
    let (dir, wal, inner, faulty) = setup(0).await;
    faulty.insert_delay_ms.store(100, Ordering::SeqCst);
    let at = |n: usize, visitor: u64, seconds: i64| Event {
        visitor_id: visitor,
        timestamp_ms: 1_770_000_000_000 + seconds * 1000,
        ..event(n, "pageview")
    };
    let records = [
        vec![at(0, 1, 0), at(1, 2, 1)],
        // A client's retry of the first record, read while it is written, and one new
        // event. Visitor 1's visit leaves memory (one visit is kept) once the first write
        // ends.
        vec![at(0, 1, 0), at(1, 2, 1), at(2, 3, 2)],
        // Continues visitor 1's visit: looked up in the store.
        vec![at(3, 1, 60)],
    ];
    for record in &records {
        wal.append_record(encode_batch(record).unwrap())
            .await
            .unwrap();
    }
    let config = ProcessorConfig {
        max_records_per_batch: 1,
        max_open_visits: 1,
        ..config()
    };
    let processor = Processor::start(wal.clone(), faulty.clone(), dir.path(), config)
        .await
        .unwrap();
    let stats = processor.stats();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(processor.run(stopped));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal.checkpointed() < wal.durable_end() {
        assert!(std::time::Instant::now() < deadline, "not stored in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(count(&inner, "SELECT count(*) FROM events").await, 4);
    assert_eq!(stats.duplicates_dropped.load(Ordering::SeqCst), 2);
    assert!(stats.visit_lookups.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        count(
            &inner,
            "SELECT count(DISTINCT session_id) FROM events WHERE visitor_id = 1"
        )
        .await,
        1,
        "the late event continues the visit written just before"
    );
    assert!(
        faulty.prepared_while_writing.load(Ordering::SeqCst) >= 1,
        "no batch was prepared while another was written"
    );
    assert_eq!(faulty.reads_while_writing.load(Ordering::SeqCst), 0);
}

/// A stop while the store keeps failing ends once its grace has passed, storing nothing
/// twice and losing nothing: the next start stores every queued event once. (Before the
/// grace, a server with a store out of memory kept retrying at shutdown for as long as it
/// was let run.)
#[tokio::test]
async fn a_stop_ends_after_its_grace_while_the_store_fails_and_the_next_start_stores_the_rest() {
    let (dir, wal, inner, faulty) = setup(u32::MAX).await;
    let events: Vec<Event> = (0..50).map(|n| event(n, "pageview")).collect();
    for chunk in events.chunks(10) {
        wal.append_record(encode_batch(chunk).unwrap())
            .await
            .unwrap();
    }
    let config = ProcessorConfig {
        stop_grace: Duration::from_millis(300),
        ..config()
    };
    let processor = Processor::start(wal.clone(), faulty.clone(), dir.path(), config.clone())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(processor.run(stopped));
    while faulty.attempts.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the stop waited past its grace for a failing store")
        .unwrap()
        .unwrap();
    assert_eq!(count(&inner, "SELECT count(*) FROM events").await, 0);
    assert!(!dir.path().join("dead-letter.ndjson").exists());

    // The store recovers; the next start stores everything queued, once.
    faulty.unavailable_failures.store(0, Ordering::SeqCst);
    let mut processor = Processor::start(wal.clone(), faulty.clone(), dir.path(), config)
        .await
        .unwrap();
    while processor.step().await.unwrap() > 0 {}
    assert_eq!(count(&inner, "SELECT count(*) FROM events").await, 50);
    assert_eq!(
        count(&inner, "SELECT count(DISTINCT event_id) FROM events").await,
        50
    );
}
