//! Imports recount the rollups of every day they change: the days of their events and the
//! days the visits they rebuild start on.

mod common;

use common::sql;
use heartbeat_model::{Event, SiteId};
use heartbeat_query::SqlRunner;
use heartbeat_store::EventData;
use heartbeat_store_duckdb::DuckDbStore;

/// 2024-01-01T23:50:00Z.
const BEFORE_MIDNIGHT_MS: i64 = 1_704_153_000_000;
const MINUTE_MS: i64 = 60_000;

fn view(id: &str, visit: u64, at_ms: i64) -> Event {
    let mut event = Event::new(id, SiteId::from("example.com"), "pageview", at_ms);
    event.session_id = visit;
    event.visitor_id = visit + 1000;
    event.hostname = "example.com".into();
    event.pathname = format!("/{id}");
    event
}

/// Visit sums per UTC day from the daily total cells and from the visit log.
async fn visit_sums(store: &DuckDbStore) -> (String, String) {
    let cells = store
        .run(sql(
            "SELECT string_agg(start_ms || ':' || visits || '/' || visit_pageviews || '/' \
             || duration_s, ' ' ORDER BY start_ms) FROM rollups_daily WHERE dim = '' \
             AND visits <> 0",
        ))
        .await
        .unwrap();
    let log = store
        .run(sql(
            "SELECT string_agg(day || ':' || visits || '/' || pageviews || '/' || duration, ' ' \
             ORDER BY day) FROM (SELECT epoch_ms(date_trunc('day', start_ts)) AS day, \
             sum(sign) AS visits, sum(sign * pageviews) AS pageviews, \
             sum(sign * duration_s) AS duration FROM sessions GROUP BY day)",
        ))
        .await
        .unwrap();
    (format!("{:?}", cells[0][0]), format!("{:?}", log[0][0]))
}

#[tokio::test]
async fn an_import_page_with_the_end_of_yesterdays_visit_recounts_yesterday() {
    let store = DuckDbStore::open_in_memory().unwrap();
    // Page 1: a visit's first two views, before midnight; another visit after it.
    let first = vec![
        view("a1", 1, BEFORE_MIDNIGHT_MS),
        view("a2", 1, BEFORE_MIDNIGHT_MS + MINUTE_MS),
        view("b1", 2, BEFORE_MIDNIGHT_MS + 30 * MINUTE_MS),
    ];
    assert_eq!(store.import_events(first).await.unwrap(), 3);
    // Page 2: only the first visit's last views, after midnight: the visit (which started
    // yesterday) grows, and yesterday's cells must say so.
    let second = vec![
        view("a3", 1, BEFORE_MIDNIGHT_MS + 15 * MINUTE_MS),
        view("a4", 1, BEFORE_MIDNIGHT_MS + 20 * MINUTE_MS),
    ];
    assert_eq!(store.import_events(second).await.unwrap(), 2);
    let (cells, log) = visit_sums(&store).await;
    assert_eq!(cells, log, "the cells' visit sums against the visit log's");
    assert!(
        log.contains(":1/4/1200"),
        "visit 1: 4 views over 20 minutes: {log}"
    );
}
