//! A rollup rebuild builds every cell again from the events and visit log a day per
//! transaction, beside the writes, and resumes from its mark after a restart: a store from
//! before rollups, or whose cells a migration asks to build again, gets the cells the events
//! give, and answers from the events until then.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::sql;
use heartbeat_model::{Event, SiteId};
use heartbeat_query::SqlRunner;
use heartbeat_store::EventData;
use heartbeat_store_duckdb::DuckDbStore;

/// 2024-01-01T00:00:00Z.
const DAY0_MS: i64 = 1_704_067_200_000;
const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// Three days of visits (the first day's last one goes on past midnight), two days without
/// events between the second and the third.
fn events() -> Vec<Event> {
    let mut events = Vec::new();
    for (day, visits) in [(0, 30u64), (1, 20), (4, 25)] {
        for visit in 0..visits {
            let start = DAY0_MS + day * DAY_MS + (30 + visit as i64 * 48) * MINUTE_MS;
            for view in 0..(1 + visit % 3) {
                let id = format!("d{day}v{visit}p{view}");
                let mut event = Event::new(
                    &id,
                    SiteId::from("example.com"),
                    "pageview",
                    start + view as i64 * 10 * MINUTE_MS,
                );
                event.session_id = day as u64 * 1000 + visit;
                event.visitor_id = visit % 17;
                event.hostname = "example.com".into();
                event.pathname = format!("/page{}", (visit + view) % 4);
                event.visit.referrer_source = if visit % 2 == 0 { "Google" } else { "" }.into();
                events.push(event);
            }
        }
    }
    events
}

/// Every cell, hourly and daily, in one order.
async fn cells(store: &DuckDbStore) -> Vec<String> {
    cells_but(store, "false").await
}

/// Every cell but those `except` (a condition on `span`, `start_ms`, `dim`) names.
async fn cells_but(store: &DuckDbStore, except: &str) -> Vec<String> {
    let rows = store
        .run(sql(&format!(
            "SELECT span, start_ms, dim, value, visitors, pageviews, events, visits, bounces, \
             duration_s, visit_pageviews, visit_events FROM (\
             SELECT 'hour' AS span, * FROM rollups_hourly \
             UNION ALL SELECT 'day' AS span, * FROM rollups_daily) \
             WHERE NOT ({except}) ORDER BY span, start_ms, dim, value"
        )))
        .await
        .unwrap();
    rows.iter().map(|row| format!("{row:?}")).collect()
}

/// The first day's daily total cell.
const FIRST_DAY_TOTAL: &str = "span = 'day' AND dim = '' AND start_ms = 1704067200000";

/// Runs `statements` on the stopped store's file.
fn maintain(path: &Path, statements: &str) {
    let conn = duckdb::Connection::open(path).unwrap();
    conn.execute_batch(statements).unwrap();
}

/// Starts the store's rollup rebuild and waits until none is left, then answers whether it
/// offers rollups.
fn wait_for_rebuild(store: &DuckDbStore) -> bool {
    store.start_rollup_rebuild(|| {}).unwrap();
    let started = Instant::now();
    while store.rollup_rebuild_days_left() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the rebuild did not finish: {} days left",
            store.rollup_rebuild_days_left()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    store.has_rollups()
}

#[tokio::test]
async fn a_rebuild_resumes_at_its_mark_and_gives_the_cells_the_events_give() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rebuild.duckdb");
    let store = DuckDbStore::open(&path).unwrap();
    assert_eq!(store.import_events(events()).await.unwrap(), 148);
    assert!(store.has_rollups());
    let written = cells(&store).await;
    assert!(written.len() > 100, "{} cells", written.len());
    let written_but_first_day_total = cells_but(&store, FIRST_DAY_TOTAL).await;
    assert_eq!(written_but_first_day_total.len() + 1, written.len());
    drop(store);

    // A rebuild stopped after its first day: the later days' cells are gone, the mark is on
    // the second day. The first day's totals are changed, so a rebuild that started over
    // would show.
    let day1 = DAY0_MS + DAY_MS;
    maintain(
        &path,
        &format!(
            "UPDATE rollups_daily SET pageviews = 999 WHERE dim = '' AND start_ms = {DAY0_MS};
             DELETE FROM rollups_hourly WHERE start_ms >= {day1};
             DELETE FROM rollups_daily WHERE start_ms >= {day1};
             INSERT INTO rollup_rebuild VALUES ({day1}, {}, false);",
            DAY0_MS + 5 * DAY_MS
        ),
    );
    let store = DuckDbStore::open(&path).unwrap();
    assert!(wait_for_rebuild(&store), "no rollups once rebuilt");
    let total = store
        .run(sql(&format!(
            "SELECT pageviews FROM (SELECT 'day' AS span, * FROM rollups_daily) \
             WHERE {FIRST_DAY_TOTAL}"
        )))
        .await
        .unwrap();
    assert_eq!(total[0][0].as_f64(), 999.0, "the first day was built again");
    assert_eq!(
        cells_but(&store, FIRST_DAY_TOTAL).await,
        written_but_first_day_total
    );
    drop(store);

    // A store whose cells are all gone (from before rollups) schedules the whole range when
    // opened, and gets every cell back.
    maintain(
        &path,
        "DELETE FROM rollups_hourly; DELETE FROM rollups_daily;",
    );
    let store = DuckDbStore::open(&path).unwrap();
    assert!(wait_for_rebuild(&store), "no rollups once rebuilt");
    assert_eq!(cells(&store).await, written);
    let pending = store
        .run(sql("SELECT count(*) FROM rollup_rebuild"))
        .await
        .unwrap();
    assert_eq!(pending[0][0].as_f64(), 0.0, "the mark is gone");
    drop(store);

    // A rebuild of cells that may answer meanwhile (as the upgrade that asks for one
    // schedules): the store offers them at once, and they are right once it is done.
    maintain(
        &path,
        &format!(
            "UPDATE rollups_hourly SET visits = visits + 5;
             INSERT INTO rollup_rebuild VALUES ({DAY0_MS}, {}, true);",
            DAY0_MS + 5 * DAY_MS
        ),
    );
    let store = DuckDbStore::open(&path).unwrap();
    assert!(store.has_rollups(), "the cells there are answer meanwhile");
    let site = SiteId::from("example.com");
    let version = store.data_version(&site);
    assert!(wait_for_rebuild(&store));
    assert_eq!(cells(&store).await, written);
    assert!(
        store.data_version(&site) > version,
        "answers cached from the cells before are not served after"
    );
}

#[tokio::test]
async fn while_cells_are_rebuilt_the_store_offers_no_rollups_and_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rebuild.duckdb");
    let store = DuckDbStore::open(&path).unwrap();
    let all = events();
    let (early, late): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|e| e.timestamp_ms < DAY0_MS + 2 * DAY_MS);
    store.import_events(early).await.unwrap();
    drop(store);
    maintain(
        &path,
        "DELETE FROM rollups_hourly; DELETE FROM rollups_daily;",
    );
    // Opened, the rebuild is scheduled but waits to be started; the events answer.
    let store = DuckDbStore::open(&path).unwrap();
    assert!(store.rollup_rebuild_days_left() >= 2);
    assert!(!store.has_rollups());
    std::thread::sleep(Duration::from_millis(200));
    assert!(store.rollup_rebuild_days_left() >= 2, "a rebuild ran");
    // Started, it rebuilds while more events come in.
    store.start_rollup_rebuild(|| {}).unwrap();
    store.import_events(late).await.unwrap();
    assert!(wait_for_rebuild(&store));
    let rebuilt = cells(&store).await;
    drop(store);

    // The same events written into a store that always had its rollups.
    let fresh = DuckDbStore::open_in_memory().unwrap();
    fresh.import_events(events()).await.unwrap();
    assert_eq!(rebuilt, cells(&fresh).await);
}
