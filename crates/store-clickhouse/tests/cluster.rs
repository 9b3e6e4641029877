//! What the contract suite does not see: rows land on the shard their visitor's id says and
//! queries see all shards; a query's answer is bounded and a dropped query is killed; a
//! half-written insert is rolled back; and every dialect expression runs on the real server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use heartbeat_model::{Event, SiteId};
use heartbeat_query::{Dialect, RunError, Sql, SqlRunner, SqlValue, TimeGrain};
use heartbeat_store::{EventData, EventWriter, InsertBatch};
use heartbeat_store_clickhouse::{ClickHouseStore, Partition};

fn sql(text: &str, params: Vec<SqlValue>) -> Sql {
    Sql {
        text: text.to_owned(),
        params,
    }
}

fn event(id: &str, visitor_id: u64, at_ms: i64) -> Event {
    let mut event = Event::new(id, SiteId("a.example".into()), "pageview", at_ms);
    event.visitor_id = visitor_id;
    event.session_id = visitor_id;
    event.pathname = format!("/{id}");
    event
}

async fn count(url: &str, sql: &str) -> u64 {
    common::raw(url, sql).await.trim().parse().expect("a count")
}

#[tokio::test]
async fn visitors_land_on_their_shard_and_queries_see_every_shard() {
    let options = common::fresh_options();
    let db = options.database.clone();
    let urls = options.shard_urls.clone();
    let store = ClickHouseStore::open(options).await.unwrap();
    // `Distributed(..., visitor_id)` over two shards of weight 1: even ids on the first.
    let batch = InsertBatch {
        events: vec![
            event("even", 1000, 1_704_067_200_000),
            event("odd", 1001, 1_704_067_201_000),
        ],
        sessions: Vec::new(),
        queue_position: 1,
    };
    store.insert(Arc::new(batch)).await.unwrap();
    let on = |url: &str, id: &str| {
        let sql = format!("SELECT count() FROM {db}.events_local WHERE event_id = '{id}'");
        let url = url.to_owned();
        async move { count(&url, &sql).await }
    };
    assert_eq!(
        (on(&urls[0], "even").await, on(&urls[0], "odd").await),
        (1, 0)
    );
    assert_eq!(
        (on(&urls[1], "even").await, on(&urls[1], "odd").await),
        (0, 1)
    );
    let rows = store
        .run(sql(
            "SELECT count(), uniqExact(visitor_id) FROM events WHERE site_id = ?",
            vec![SqlValue::Text("a.example".into())],
        ))
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![SqlValue::UInt(2), SqlValue::UInt(2)]]);
    common::drop_database(&db).await;
}

#[tokio::test]
async fn values_are_bound_as_literals_that_cannot_escape() {
    let options = common::fresh_options();
    let db = options.database.clone();
    let store = ClickHouseStore::open(options).await.unwrap();
    let tricky = "it's a \\ test ? '; DROP TABLE events; --";
    let rows = store
        .run(sql(
            "SELECT ?, '?', ?, ?, ?, ?",
            vec![
                SqlValue::Text(tricky.into()),
                SqlValue::Int(-5),
                SqlValue::Float(0.5),
                SqlValue::Null,
                SqlValue::TimestampMs(1_704_067_200_000),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            SqlValue::Text(tricky.into()),
            SqlValue::Text("?".into()),
            SqlValue::Int(-5),
            SqlValue::Float(0.5),
            SqlValue::Null,
            SqlValue::TimestampMs(1_704_067_200_000),
        ]]
    );
    common::drop_database(&db).await;
}

#[tokio::test]
async fn an_answer_too_large_is_refused() {
    let mut options = common::fresh_options();
    options.max_result_bytes = 100_000;
    let db = options.database.clone();
    let store = ClickHouseStore::open(options).await.unwrap();
    let small = store
        .run(sql("SELECT number FROM system.numbers LIMIT 10", vec![]))
        .await
        .unwrap();
    assert_eq!(small.len(), 10);
    let large = store
        .run(sql(
            "SELECT number, toString(number) FROM system.numbers LIMIT 1000000",
            vec![],
        ))
        .await;
    assert!(
        matches!(
            large,
            Err(RunError::TooLarge {
                limit_bytes: 100_000
            })
        ),
        "{large:?}"
    );
    common::drop_database(&db).await;
}

#[tokio::test]
async fn a_dropped_query_is_killed() {
    let mut options = common::fresh_options();
    // Should the kill fail, the server still stops the query after this.
    options.query_timeout = Duration::from_secs(60);
    let db = options.database.clone();
    let url = options.shard_urls[0].clone();
    let store = ClickHouseStore::open(options).await.unwrap();
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let running = format!(
        "SELECT count() FROM system.processes WHERE query LIKE '%{marker}%' \
         AND query NOT LIKE '%system.processes%'"
    );
    let query = sql(
        &format!("SELECT count() FROM system.numbers WHERE toString(number) != '{marker}'"),
        vec![],
    );
    let task = tokio::spawn({
        let store = store.clone();
        async move { store.run(query).await }
    });
    let mut seen = false;
    for _ in 0..100 {
        if count(&url, &running).await > 0 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the query runs");
    task.abort();
    let _ = task.await;
    let mut gone = false;
    for _ in 0..100 {
        if count(&url, &running).await == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the query was killed when its future was dropped");
    common::drop_database(&db).await;
}

#[tokio::test]
async fn rows_of_an_insert_that_never_committed_are_rolled_back() {
    let options = common::fresh_options();
    let (db, urls) = (options.database.clone(), options.shard_urls.clone());
    let store = ClickHouseStore::open(options.clone()).await.unwrap();
    let committed = InsertBatch {
        events: vec![event("kept", 1000, 1_704_067_200_000)],
        sessions: Vec::new(),
        queue_position: 10,
    };
    store.insert(Arc::new(committed)).await.unwrap();
    // A crash between the rows and the position: rows of batch 20 without its position.
    common::raw(
        &urls[1],
        &format!(
            "INSERT INTO {db}.events_local (site_id, event_id, ts, ts_ms, visitor_id, \
             batch_position) VALUES ('a.example', 'half', toDateTime(1704067201), \
             1704067201000, 1001, 20)"
        ),
    )
    .await;
    let restarted = ClickHouseStore::open(options).await.unwrap();
    assert_eq!(restarted.queue_position().await.unwrap(), Some(10));
    let ids: Vec<String> = restarted
        .export_events(&SiteId("a.example".into()), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids, ["kept"], "the uncommitted row is gone");
    // The replay writes it once.
    let replay = InsertBatch {
        events: vec![event("half", 1001, 1_704_067_201_000)],
        sessions: Vec::new(),
        queue_position: 20,
    };
    restarted.insert(Arc::new(replay)).await.unwrap();
    assert_eq!(
        restarted
            .export_events(&SiteId("a.example".into()), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    common::drop_database(&db).await;
}

/// Two queue partitions, each with its own processor: their positions, rollbacks, open
/// visits and site deletions do not touch each other.
#[tokio::test]
async fn partitions_keep_their_own_positions_and_rollbacks() {
    let options = common::fresh_options();
    let (db, urls) = (options.database.clone(), options.shard_urls.clone());
    let store = ClickHouseStore::open(options.clone()).await.unwrap();
    let part = |index| Partition { index, count: 2 };
    let (even, odd) = (
        store.partition(part(0)).await.unwrap(),
        store.partition(part(1)).await.unwrap(),
    );
    assert!(store.partition(part(2)).await.is_err());
    let visit = |id: &str, visitor: u64, at_ms: i64| {
        let mut e = event(id, visitor, at_ms);
        e.session_id = visitor;
        let session = heartbeat_model::Session {
            site_id: e.site_id.clone(),
            session_id: visitor,
            visitor_id: visitor,
            user_id: None,
            version: 1,
            start_ms: at_ms,
            end_ms: at_ms,
            pageviews: 1,
            events: 1,
            engagements: 1,
            entry_page: e.pathname.clone(),
            exit_page: e.pathname.clone(),
            hostname: e.hostname.clone(),
            visit: e.visit.clone(),
        };
        (e, session)
    };
    let now = heartbeat_model_now_ms();
    let (e0, s0) = visit("even", 2000, now - 60_000);
    let (e1, s1) = visit("odd", 2001, now - 60_000);
    let batch = |e: Event, s: heartbeat_model::Session, position| InsertBatch {
        events: vec![e],
        sessions: vec![heartbeat_store::SessionRow {
            session: s,
            sign: 1,
        }],
        queue_position: position,
    };
    even.insert(Arc::new(batch(e0, s0, 7))).await.unwrap();
    odd.insert(Arc::new(batch(e1, s1, 3))).await.unwrap();
    assert_eq!(even.queue_position().await.unwrap(), Some(7));
    assert_eq!(odd.queue_position().await.unwrap(), Some(3));
    let open: Vec<u64> = odd
        .open_sessions(now - 3_600_000)
        .await
        .unwrap()
        .iter()
        .map(|v| v.session.visitor_id)
        .collect();
    assert_eq!(open, [2001], "a partition continues only its own visitors");
    // Partition 1 crashes after writing rows of its position 4 (above partition 0's 7 in
    // neither's numbers): its restart removes them and nothing of partition 0.
    common::raw(
        &urls[1],
        &format!(
            "INSERT INTO {db}.events_local (site_id, event_id, ts, ts_ms, visitor_id, \
             batch_position) VALUES ('a.example', 'half', toDateTime(1704067201), \
             1704067201000, 2003, {})",
            (1u64 << 40) | 4
        ),
    )
    .await;
    let restarted = ClickHouseStore::open(options.clone())
        .await
        .unwrap()
        .partition(part(1))
        .await
        .unwrap();
    assert_eq!(restarted.queue_position().await.unwrap(), Some(3));
    let site = SiteId("a.example".into());
    let mut ids: Vec<String> = restarted
        .export_events(&site, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["even", "odd"],
        "only partition 1's uncommitted row is gone"
    );
    // A site deletion reached by partition 1 deletes partition 1's visitors only.
    let deleted = restarted.delete_site_events(&site).await.unwrap();
    assert_eq!((deleted.events, deleted.visits), (1, 1));
    let left: Vec<String> = store
        .export_events(&site, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(left, ["even"]);
    common::drop_database(&db).await;
}

/// The processor's lookups read `visit_states` (the visit states sorted by their end): it
/// holds the states written before its migration (copied once) and after (its materialized
/// view), their newest version, and loses what `sessions` loses (rollback, site deletion).
#[tokio::test]
async fn visit_lookups_see_states_written_before_and_after_their_table() {
    let options = common::fresh_options();
    let (db, urls) = (options.database.clone(), options.shard_urls.clone());
    let store = ClickHouseStore::open(options.clone()).await.unwrap();
    let site = SiteId("a.example".into());
    let hour = 3_600_000;
    let start = 1_704_067_200_000;
    let state = |visitor: u64, version: u32, end_ms: i64| heartbeat_model::Session {
        site_id: site.clone(),
        session_id: visitor * 10,
        visitor_id: visitor,
        user_id: None,
        version,
        start_ms: start,
        end_ms,
        pageviews: version,
        events: version,
        engagements: 0,
        entry_page: "/".into(),
        exit_page: "/".into(),
        hostname: "a.example".into(),
        visit: Default::default(),
    };
    let rows = |states: Vec<(heartbeat_model::Session, i8)>| {
        states
            .into_iter()
            .map(|(session, sign)| heartbeat_store::SessionRow { session, sign })
            .collect()
    };
    let batch = |sessions, position| {
        Arc::new(InsertBatch {
            events: Vec::new(),
            sessions,
            queue_position: position,
        })
    };
    // Visitor 1's visit in its first version and visitor 4's, written before
    // `visit_states` existed: emptied on both shards, and the record of its migration removed.
    store
        .insert(batch(
            rows(vec![
                (state(1, 1, start + 60_000), 1),
                (state(4, 1, start + hour), 1),
            ]),
            1,
        ))
        .await
        .unwrap();
    for url in &urls {
        common::raw(url, &format!("TRUNCATE TABLE {db}.visit_states_local")).await;
        common::raw(url, &format!("DROP TABLE {db}.schema_migrations")).await;
        common::raw(
            url,
            &format!(
                "CREATE TABLE {db}.schema_migrations (version UInt32, applied_at DateTime) \
                 ENGINE = TinyLog"
            ),
        )
        .await;
        common::raw(
            url,
            &format!("INSERT INTO {db}.schema_migrations VALUES (1, now())"),
        )
        .await;
    }
    let store = ClickHouseStore::open(options.clone()).await.unwrap();
    // Written after: visitor 1's second version (its first cancelled), visitor 2's visit.
    store
        .insert(batch(
            rows(vec![
                (state(1, 1, start + 60_000), -1),
                (state(1, 2, start + 2 * hour), 1),
                (state(2, 1, start + hour), 1),
            ]),
            2,
        ))
        .await
        .unwrap();
    let found = |from_ms: i64, to_ms: i64| {
        let (store, site) = (store.clone(), site.clone());
        async move {
            let mut found: Vec<(u64, u32)> = store
                .visits_of(&site, vec![1, 2, 3, 4], from_ms, to_ms)
                .await
                .unwrap()
                .iter()
                .map(|v| (v.session.visitor_id, v.session.version))
                .collect();
            found.sort_unstable();
            found
        }
    };
    assert_eq!(
        found(start, start + 3 * hour).await,
        [(1, 2), (2, 1), (4, 1)]
    );
    // The newest state's end decides: visitor 1's visit ends after visitor 2's.
    assert_eq!(found(start + 90 * 60_000, start + 3 * hour).await, [(1, 2)]);
    assert_eq!(found(start + 3 * hour, start + 4 * hour).await, []);
    // A state of an insert that never committed (position 3) is rolled back from both.
    common::raw(
        &urls[1],
        &format!(
            "INSERT INTO {db}.sessions_local (site_id, session_id, visitor_id, sign, version, \
             start_ts, end_ts, start_ms, end_ms, batch_position) VALUES ('a.example', 30, 3, \
             1, 1, toDateTime(1704067200), toDateTime(1704067260), {start}, {}, 3)",
            start + 60_000
        ),
    )
    .await;
    let store = ClickHouseStore::open(options).await.unwrap();
    assert_eq!(store.queue_position().await.unwrap(), Some(2));
    let mut found: Vec<u64> = store
        .visits_of(&site, vec![1, 2, 3, 4], start, start + 3 * hour)
        .await
        .unwrap()
        .iter()
        .map(|v| v.session.visitor_id)
        .collect();
    found.sort_unstable();
    assert_eq!(found, [1, 2, 4]);
    // A site's deletion empties both.
    store.delete_site_events(&site).await.unwrap();
    for url in &urls {
        let left = count(
            url,
            &format!(
                "SELECT (SELECT count() FROM {db}.sessions_local) + \
                 (SELECT count() FROM {db}.visit_states_local)"
            ),
        )
        .await;
        assert_eq!(left, 0, "{url}");
    }
    common::drop_database(&db).await;
}

fn heartbeat_model_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A merge may collapse a committed visit state with the cancel an uncommitted insert wrote
/// for it, before the rollback deletes that insert's rows: the rollback writes the state
/// again, so the visit keeps its committed state (and the replay continues it).
#[tokio::test]
async fn a_rollback_keeps_the_states_a_merge_collapsed_with_its_cancels() {
    rollback_after_merges(&["sessions_local", "visit_states_local"]).await;
}

/// The same when only `visit_states` merged: it gets `sessions`' live state again.
#[tokio::test]
async fn a_rollback_keeps_the_lookup_states_a_merge_collapsed_with_their_cancels() {
    rollback_after_merges(&["visit_states_local"]).await;
}

async fn rollback_after_merges(merged: &[&str]) {
    let options = common::fresh_options();
    let (db, urls) = (options.database.clone(), options.shard_urls.clone());
    let store = ClickHouseStore::open(options.clone()).await.unwrap();
    let site = SiteId("a.example".into());
    let start = 1_704_067_200_000;
    let state = |version: u32| heartbeat_model::Session {
        site_id: site.clone(),
        session_id: 77,
        visitor_id: 7,
        user_id: None,
        version,
        start_ms: start,
        end_ms: start + i64::from(version) * 60_000,
        pageviews: version,
        events: version,
        engagements: 0,
        entry_page: "/".into(),
        exit_page: "/".into(),
        hostname: "a.example".into(),
        visit: Default::default(),
    };
    let batch = |rows: Vec<(heartbeat_model::Session, i8)>, position| {
        Arc::new(InsertBatch {
            events: vec![Event {
                session_id: 77,
                ..event(&format!("e{position}"), 7, start + position as i64 * 60_000)
            }],
            sessions: rows
                .into_iter()
                .map(|(session, sign)| heartbeat_store::SessionRow { session, sign })
                .collect(),
            queue_position: position,
        })
    };
    store.insert(batch(vec![(state(1), 1)], 1)).await.unwrap();
    store
        .insert(batch(vec![(state(1), -1), (state(2), 1)], 2))
        .await
        .unwrap();
    // Position 2 never committed, and the merges ran first.
    common::raw(
        &urls[0],
        &format!("ALTER TABLE {db}.queue_positions DELETE WHERE position = 2"),
    )
    .await;
    for _ in 0..100 {
        let pending = count(
            &urls[0],
            &format!(
                "SELECT count() FROM system.mutations WHERE database = '{db}' AND is_done = 0"
            ),
        )
        .await;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows_of_visit = |table: &str| {
        let sql = format!("SELECT count() FROM {db}.{table}_local WHERE session_id = 77");
        let urls = urls.clone();
        async move {
            let mut total = 0;
            for url in &urls {
                total += count(url, &sql).await;
            }
            total
        }
    };
    for url in &urls {
        for table in merged {
            common::raw(url, &format!("OPTIMIZE TABLE {db}.{table} FINAL")).await;
        }
    }
    // A merged table keeps only the uncommitted second state; the other all three rows.
    let left = |table: &str| {
        if merged.contains(&format!("{table}_local").as_str()) {
            1
        } else {
            3
        }
    };
    assert_eq!(
        (
            rows_of_visit("sessions").await,
            rows_of_visit("visit_states").await
        ),
        (left("sessions"), left("visit_states")),
    );
    let store = ClickHouseStore::open(options).await.unwrap();
    assert_eq!(store.queue_position().await.unwrap(), Some(1));
    let versions: Vec<u32> = store
        .visits_of(&site, vec![7], start, start + 3_600_000)
        .await
        .unwrap()
        .iter()
        .map(|v| v.session.version)
        .collect();
    assert_eq!(versions, [1], "the committed state is back");
    let live = count(
        &urls[0],
        &format!(
            "SELECT sum(sign * pageviews) FROM {db}.sessions WHERE session_id = 77 \
             HAVING sum(sign) = 1"
        ),
    )
    .await;
    assert_eq!(live, 1, "one live state, of one page view");
    common::drop_database(&db).await;
}

/// A query groups and sorts on disk past half the memory the server lets it use (the test
/// servers' profile: 2 GB), and merges the shards' groups a bucket at a time: so a funnel or
/// paths over millions of visits answers instead of failing for memory.
#[tokio::test]
async fn queries_spill_to_disk_past_half_their_memory() {
    let options = common::fresh_options();
    let db = options.database.clone();
    let store = ClickHouseStore::open(options).await.unwrap();
    let rows = store
        .run(sql(
            "SELECT name, value FROM system.settings WHERE name IN \
             ('max_bytes_before_external_group_by', 'max_bytes_before_external_sort', \
             'distributed_aggregation_memory_efficient') ORDER BY name",
            Vec::new(),
        ))
        .await
        .unwrap();
    let text = |v: &SqlValue| match v {
        SqlValue::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    let settings: Vec<(String, String)> = rows.iter().map(|r| (text(&r[0]), text(&r[1]))).collect();
    assert_eq!(
        settings,
        [
            (
                "distributed_aggregation_memory_efficient".into(),
                "1".into()
            ),
            (
                "max_bytes_before_external_group_by".into(),
                "1000000000".into()
            ),
            ("max_bytes_before_external_sort".into(), "1000000000".into()),
        ]
    );
    common::drop_database(&db).await;
}

/// Each expression of the ClickHouse dialect, run on the real server.
#[tokio::test]
async fn the_dialect_runs_on_clickhouse() {
    let options = common::fresh_options();
    let db = options.database.clone();
    let store = ClickHouseStore::open(options).await.unwrap();
    let d = Dialect::ClickHouse.sql();
    // 2024-01-03 10:20:30 UTC, a Wednesday.
    let at_ms: i64 = 1_704_277_230_000;
    let ts = d.timestamp_literal(at_ms);
    let day = 86_400_000;
    let one = |expression: String| {
        let store = &store;
        async move {
            let rows = store
                .run(sql(&format!("SELECT {expression}"), vec![]))
                .await
                .unwrap_or_else(|err| panic!("{expression}: {err}"));
            rows[0][0].clone()
        }
    };
    let time = |ms: i64| SqlValue::TimestampMs(ms);
    let jan_1 = 1_704_067_200_000;
    assert_eq!(one(ts.clone()).await, time(at_ms));
    assert_eq!(
        one(d.truncate(TimeGrain::Hour, &ts)).await,
        time(jan_1 + 2 * day + 36_000_000)
    );
    assert_eq!(
        one(d.truncate(TimeGrain::Day, &ts)).await,
        time(jan_1 + 2 * day)
    );
    assert_eq!(one(d.truncate(TimeGrain::Week, &ts)).await, time(jan_1));
    assert_eq!(one(d.truncate(TimeGrain::Month, &ts)).await, time(jan_1));
    assert_eq!(one(d.matches_regex("'abc'", "'^a.c$'")).await.as_f64(), 1.0);
    assert_eq!(one(d.matches_regex("'abc'", "'^b'")).await.as_f64(), 0.0);
    assert_eq!(one(d.contains_text("'abc'", "'bc'")).await.as_f64(), 1.0);
    assert_eq!(one(d.contains_text("'abc'", "'cb'")).await.as_f64(), 0.0);
    assert_eq!(
        one(d.epoch_seconds(&ts)).await,
        SqlValue::Int(1_704_277_230)
    );
    assert_eq!(one(d.epoch_millis(&ts)).await, SqlValue::Int(at_ms));
    let key = d.order_key(&ts, "'event-1'");
    assert_eq!(one(d.key_millis(&key)).await, SqlValue::Int(at_ms));
    assert!(one(key.clone()).await.as_f64() >= (at_ms as f64) * 1_048_576.0);
    assert_eq!(
        one(format!("{ts} + {}", d.seconds_interval("90"))).await,
        time(at_ms + 90_000)
    );
    let numbers = "FROM (SELECT number AS x, 10 - number AS y FROM system.numbers LIMIT 4)";
    assert_eq!(
        one(format!("{} {numbers}", d.arbitrary_value("1")))
            .await
            .as_f64(),
        1.0
    );
    assert_eq!(
        one(format!("{} {numbers}", d.quantile("x", 0.5))).await,
        SqlValue::Float(1.5)
    );
    assert_eq!(
        one(format!("{} {numbers} WHERE x > 10", d.quantile("x", 0.5))).await,
        SqlValue::Null,
        "NULL for a group without values"
    );
    // Exact and interpolated past ClickHouse's own `quantile`'s 8,192 samples, as DuckDB's
    // `quantile_cont`: 0 to 20,000 (odd squares apart, so no sample lands on the answer).
    let many = "FROM (SELECT number * number AS x FROM system.numbers LIMIT 20001)";
    assert_eq!(
        one(format!("{} {many}", d.quantile("x", 0.5))).await,
        SqlValue::Float(100_000_000.0)
    );
    assert_eq!(
        one(format!("{} {many}", d.quantile("x", 0.9))).await,
        SqlValue::Float(324_000_000.0)
    );
    assert_eq!(
        one(format!("{} {numbers}", d.first_by("x", "y")))
            .await
            .as_f64(),
        3.0
    );
    assert_eq!(
        one(format!("{} {numbers}", d.last_by("x", "y")))
            .await
            .as_f64(),
        0.0
    );
    let jan = d.timestamp_literal(jan_1);
    let between = |grain, to_ms: i64| {
        let to = d.timestamp_literal(to_ms);
        one(d.periods_between(grain, &jan, &to))
    };
    assert_eq!(
        between(TimeGrain::Hour, jan_1 + 2 * day + 36_000_000)
            .await
            .as_f64(),
        58.0
    );
    assert_eq!(between(TimeGrain::Day, jan_1 + 2 * day).await.as_f64(), 2.0);
    assert_eq!(
        between(TimeGrain::Week, jan_1 + 14 * day).await.as_f64(),
        2.0
    );
    assert_eq!(
        between(TimeGrain::Month, jan_1 + 60 * day).await.as_f64(),
        2.0
    );
    assert_eq!(between(TimeGrain::Day, jan_1 - day).await.as_f64(), -1.0);
    assert_eq!(d.materialized(), "", "18.16 has no materialized CTEs");
    // Conditional aggregates over x = 0..3, y = 10..7.
    let agg = |expression: String| one(format!("{expression} {numbers}"));
    assert_eq!(agg(d.count_if("x > 1")).await.as_f64(), 2.0);
    assert_eq!(agg(d.sum_if("y", "x > 1")).await.as_f64(), 15.0);
    assert_eq!(
        agg(d.count_values_if("if(x = 2, NULL, x)", "x > 1"))
            .await
            .as_f64(),
        1.0
    );
    assert_eq!(
        agg(d.count_distinct_if("intDiv(x, 2)", "x > 0"))
            .await
            .as_f64(),
        2.0
    );
    assert_eq!(
        agg(d.min_or_null("x")).await.as_f64(),
        0.0,
        "the smallest value"
    );
    assert_eq!(
        one(format!("{} {numbers} WHERE x > 10", d.min_or_null("x"))).await,
        SqlValue::Null,
        "NULL for a group without rows"
    );
    assert_eq!(agg(d.first_by_if("x", "y", "x < 2")).await.as_f64(), 1.0);
    assert_eq!(agg(d.last_by_if("x", "y", "x > 1")).await.as_f64(), 2.0);
    assert_eq!(agg(d.first_by_if("x", "y", "x > 9")).await, SqlValue::Null);
    assert_eq!(
        one(format!("{} = 0", d.false_literal())).await.as_f64(),
        1.0
    );
    assert_eq!(one(d.lower("'ÄbC'")).await, SqlValue::Text("äbc".into()));
    assert_eq!(
        one(d.cast("42", heartbeat_query::SqlType::Text)).await,
        SqlValue::Text("42".into())
    );
    assert_eq!(
        one(d.cast(
            &d.timestamp_literal(jan_1),
            heartbeat_query::SqlType::Timestamp
        ))
        .await,
        time(jan_1)
    );
    common::drop_database(&db).await;
}
