//! The contract every [`EventStore`] implementation must keep.
//!
//! What it pins down, in engine-neutral terms (no SQL of one engine): a batch is written
//! with its queue position or not at all; the position survives and is the last one
//! committed; open visits come back in their newest state, and any visit by visitor and
//! span; client-given ids are remembered for deduplication (as fingerprints, and checked
//! exactly); exports are ordered and pageable; imports skip known ids; deleting by
//! age or by site removes exactly what it says.

use std::future::Future;
use std::sync::Arc;

use heartbeat_model::{Event, ImportedRow, ImportedTable, Session, SiteId, VisitAttributes};

use crate::{client_id_fingerprint, EventStore, InsertBatch, SessionRow, StoredVisit};

const HOUR_MS: i64 = 3_600_000;

fn site(id: &str) -> SiteId {
    SiteId(id.to_owned())
}

fn event(id: &str, site_id: &str, at_ms: i64, session_id: u64) -> Event {
    let mut event = Event::new(id, site(site_id), "pageview", at_ms);
    event.session_id = session_id;
    event.visitor_id = session_id + 1000;
    event.hostname = "example.com".into();
    event.pathname = format!("/{id}");
    event
}

fn session(site_id: &str, session_id: u64, version: u32, start_ms: i64, end_ms: i64) -> Session {
    Session {
        site_id: site(site_id),
        session_id,
        visitor_id: session_id + 1000,
        user_id: None,
        version,
        start_ms,
        end_ms,
        pageviews: version,
        events: version,
        engagements: version,
        entry_page: "/a".into(),
        exit_page: "/b".into(),
        hostname: "example.com".into(),
        visit: VisitAttributes::default(),
    }
}

fn batch(events: Vec<Event>, sessions: Vec<SessionRow>, queue_position: u64) -> Arc<InsertBatch> {
    Arc::new(InsertBatch {
        events,
        sessions,
        queue_position,
    })
}

/// Runs every check, each on a fresh store from `make`.
pub async fn check_event_store<S, F, M>(make: M)
where
    S: EventStore,
    F: Future<Output = S>,
    M: Fn() -> F,
{
    batches_commit_with_their_queue_position(make().await).await;
    open_visits_come_back_in_their_newest_state(make().await).await;
    client_ids_are_remembered(make().await).await;
    exports_are_ordered_and_pageable_and_imports_skip_known_ids(make().await, make().await).await;
    deletes_remove_exactly_what_they_say(make().await).await;
    imports_are_kept_per_site_and_deleted_whole(make().await).await;
    stored_events_are_read_back_in_the_order_stored(make().await).await;
}

/// `stored_since`: every site's events stored since a time, whose own time is recent
/// enough, in the order stored, with their stored time (whole seconds at least).
async fn stored_events_are_read_back_in_the_order_stored(store: impl EventStore) {
    let before = chrono_now_ms();
    let now = before;
    store
        .insert(batch(
            vec![
                event("late", "a.example", now - 3 * HOUR_MS, 1),
                event("first", "a.example", now - 2000, 1),
            ],
            Vec::new(),
            1,
        ))
        .await
        .unwrap();
    // The next insert a second later, so its stored time is later in whole seconds too.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    store
        .insert(batch(
            vec![event("second", "b.example", now - 1000, 2)],
            Vec::new(),
            2,
        ))
        .await
        .unwrap();
    let after = chrono_now_ms();
    store.flush().await.unwrap();
    let read = store
        .stored_since(before - 1000, now - HOUR_MS, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = read.iter().map(|(e, _)| e.event_id.as_str()).collect();
    assert_eq!(
        ids,
        ["first", "second"],
        "both sites, in the order stored; the 3-hour-old event left out"
    );
    assert_eq!(read[1].0.site_id, site("b.example"));
    assert_eq!(read[1].0.pathname, "/second");
    for (event, stored_ms) in &read {
        assert!(
            (before - 1000..=after).contains(stored_ms),
            "{} stored at {stored_ms}, between {before} and {after}",
            event.event_id
        );
    }
    assert!(read[0].1 < read[1].1, "stored a second apart");
    let later = store
        .stored_since(read[1].1, now - HOUR_MS, 10)
        .await
        .unwrap();
    assert_eq!(
        later
            .iter()
            .map(|(e, _)| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["second"],
        "since the second insert's time"
    );
    assert_eq!(
        store
            .stored_since(before - 1000, now - HOUR_MS, 1)
            .await
            .unwrap()
            .len(),
        1,
        "at most the limit"
    );
}

async fn batches_commit_with_their_queue_position(store: impl EventStore) {
    assert_eq!(
        store.queue_position().await.unwrap(),
        None,
        "a new store has no position"
    );
    let now = chrono_now_ms();
    let first = vec![
        event("e1", "a.example", now - 2000, 1),
        event("e2", "a.example", now - 1000, 1),
    ];
    let rows = vec![SessionRow {
        session: session("a.example", 1, 1, now - 2000, now - 1000),
        sign: 1,
    }];
    store.insert(batch(first, rows, 10)).await.unwrap();
    assert_eq!(store.queue_position().await.unwrap(), Some(10));
    store
        .insert(batch(
            vec![event("e3", "a.example", now, 2)],
            Vec::new(),
            25,
        ))
        .await
        .unwrap();
    assert_eq!(
        store.queue_position().await.unwrap(),
        Some(25),
        "the last committed position"
    );
    store.flush().await.unwrap();
    let stored = store
        .export_events(&site("a.example"), None, 100)
        .await
        .unwrap();
    let ids: Vec<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        ids,
        ["e1", "e2", "e3"],
        "every event of both batches, in time order"
    );
    assert_eq!(stored[0].pathname, "/e1");
    assert_eq!(stored[0].session_id, 1);
}

async fn open_visits_come_back_in_their_newest_state(store: impl EventStore) {
    let now = chrono_now_ms();
    let first = session("a.example", 7, 1, now - 10_000, now - 9_000);
    let second = session("a.example", 7, 2, now - 10_000, now - 1_000);
    let old = session("a.example", 8, 1, now - 5 * HOUR_MS, now - 4 * HOUR_MS);
    store
        .insert(batch(
            Vec::new(),
            vec![
                SessionRow {
                    session: first.clone(),
                    sign: 1,
                },
                SessionRow {
                    session: old,
                    sign: 1,
                },
            ],
            1,
        ))
        .await
        .unwrap();
    store
        .insert(batch(
            Vec::new(),
            vec![
                SessionRow {
                    session: first,
                    sign: -1,
                },
                SessionRow {
                    session: second.clone(),
                    sign: 1,
                },
            ],
            2,
        ))
        .await
        .unwrap();
    // The old visit's events: a page view, a custom event and later engagement events, each
    // within the visit timeout of the one before (as the sessionizer joins them), the last
    // 100 minutes past the visit's end: farther than a lookup reads first.
    let mut custom = event("o2", "a.example", now - 5 * HOUR_MS + 60_000, 8);
    custom.name = "Signup".into();
    let mut events = vec![
        event("o1", "a.example", now - 5 * HOUR_MS + 1000, 8),
        custom,
    ];
    for (i, minutes) in [2, 25, 50, 75, 100].into_iter().enumerate() {
        let at = now - 4 * HOUR_MS + minutes * 60_000;
        let mut engagement = event(&format!("o{}", i + 3), "a.example", at, 8);
        engagement.name = "engagement".into();
        events.push(engagement);
    }
    store.insert(batch(events, Vec::new(), 3)).await.unwrap();
    let sessions = |visits: Vec<StoredVisit>| -> Vec<Session> {
        visits.into_iter().map(|visit| visit.session).collect()
    };
    let open = store.open_sessions(now - HOUR_MS).await.unwrap();
    assert_eq!(
        open[0].last_event_ms, second.end_ms,
        "a visit without events ends at its end"
    );
    assert_eq!(
        sessions(open),
        vec![second.clone()],
        "one visit, in its newest state; older visits stay closed"
    );
    // A late event's lookup: by visitor and span, newest state only, whatever its age.
    let a = site("a.example");
    let found = |visitors: Vec<u64>, from: i64, to: i64| {
        let (store, a) = (&store, a.clone());
        async move { sessions(store.visits_of(&a, visitors, from, to).await.unwrap()) }
    };
    assert_eq!(
        found(vec![1007, 1008], now - 20_000, now).await,
        vec![second]
    );
    let old_visit = found(vec![1008], now - 5 * HOUR_MS - 60_000, now - 5 * HOUR_MS).await;
    assert_eq!(
        old_visit.len(),
        1,
        "a span that meets the range at its start"
    );
    assert_eq!(old_visit[0].session_id, 8);
    let extent = store
        .visits_of(&a, vec![1008], now - 5 * HOUR_MS, now - 5 * HOUR_MS)
        .await
        .unwrap();
    assert_eq!(
        (
            extent[0].first_pageview_ms,
            extent[0].last_pageview_ms,
            extent[0].last_event_ms
        ),
        (
            Some(now - 5 * HOUR_MS + 1000),
            Some(now - 5 * HOUR_MS + 1000),
            now - 4 * HOUR_MS + 100 * 60_000
        ),
        "page views and the latest event, engagement included, from the visit's events"
    );
    assert!(found(vec![1008], now - 3 * HOUR_MS, now).await.is_empty());
    assert!(found(vec![1009], now - 6 * HOUR_MS, now).await.is_empty());
    assert!(store
        .visits_of(&site("b.example"), vec![1007], now - HOUR_MS, now)
        .await
        .unwrap()
        .is_empty());
}

async fn client_ids_are_remembered(store: impl EventStore) {
    let now = chrono_now_ms();
    let mut given = event("order-1", "a.example", now, 1);
    given.event_id_from_client = true;
    let generated = event("generated-1", "a.example", now, 1);
    store
        .insert(batch(vec![given, generated], Vec::new(), 1))
        .await
        .unwrap();
    let fingerprints = store
        .client_id_fingerprints(now - HOUR_MS, 10)
        .await
        .unwrap();
    assert_eq!(
        fingerprints
            .iter()
            .map(|(_, fingerprint)| *fingerprint)
            .collect::<Vec<_>>(),
        vec![client_id_fingerprint(&site("a.example"), "order-1")],
        "only client-given ids"
    );
    assert!(
        (fingerprints[0].0 - now).abs() < HOUR_MS,
        "with its receipt time"
    );
    assert!(store
        .client_id_fingerprints(now + HOUR_MS, 10)
        .await
        .unwrap()
        .is_empty());
    // Only the newest asked for: an id received a minute later, and one earlier.
    let mut later = event("order-2", "a.example", now, 1);
    later.event_id_from_client = true;
    let mut earlier = event("order-0", "a.example", now, 1);
    earlier.event_id_from_client = true;
    store
        .insert(batch(vec![earlier], Vec::new(), 2))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    store
        .insert(batch(vec![later], Vec::new(), 3))
        .await
        .unwrap();
    let newest = store
        .client_id_fingerprints(now - HOUR_MS, 1)
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|(_, f)| *f).collect::<Vec<_>>(),
        vec![client_id_fingerprint(&site("a.example"), "order-2")],
        "the newest id only"
    );
    assert_eq!(
        store
            .client_id_fingerprints(now - HOUR_MS, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(store
        .client_id_fingerprints(now - HOUR_MS, 0)
        .await
        .unwrap()
        .is_empty());
    let stored = |site_id: &str, since: i64| {
        let store = &store;
        let ids = vec![
            "order-1".to_owned(),
            "generated-1".to_owned(),
            "x".to_owned(),
        ];
        let site_id = site(site_id);
        async move { store.stored_client_ids(&site_id, ids, since).await.unwrap() }
    };
    assert_eq!(stored("a.example", now - HOUR_MS).await, ["order-1"]);
    assert!(stored("a.example", now + HOUR_MS).await.is_empty());
    assert!(stored("b.example", now - HOUR_MS).await.is_empty());
}

async fn exports_are_ordered_and_pageable_and_imports_skip_known_ids(
    source: impl EventStore,
    target: impl EventStore,
) {
    let now = chrono_now_ms();
    let events: Vec<Event> = (0..5)
        .map(|i| event(&format!("e{i}"), "a.example", now - (5 - i) * 1000, 3))
        .collect();
    source.insert(batch(events, Vec::new(), 1)).await.unwrap();
    let first = source
        .export_events(&site("a.example"), None, 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let after = first.last().map(|e| (e.timestamp_ms, e.event_id.clone()));
    let rest = source
        .export_events(&site("a.example"), after, 10)
        .await
        .unwrap();
    let ids: Vec<String> = first
        .iter()
        .chain(&rest)
        .map(|e| e.event_id.clone())
        .collect();
    assert_eq!(
        ids,
        ["e0", "e1", "e2", "e3", "e4"],
        "pages continue where the last ended"
    );
    assert!(source
        .export_events(&site("b.example"), None, 10)
        .await
        .unwrap()
        .is_empty());
    let all: Vec<Event> = first.into_iter().chain(rest).collect();
    assert_eq!(target.import_events(all.clone()).await.unwrap(), 5);
    assert_eq!(
        target.import_events(all).await.unwrap(),
        0,
        "known ids are skipped"
    );
    assert_eq!(
        target
            .export_events(&site("a.example"), None, 10)
            .await
            .unwrap()
            .len(),
        5
    );
}

async fn deletes_remove_exactly_what_they_say(store: impl EventStore) {
    let now = chrono_now_ms();
    let day = 24 * HOUR_MS;
    let events = vec![
        event("old", "a.example", now - 10 * day, 1),
        event("new", "a.example", now - 1000, 2),
        event("other", "b.example", now - 10 * day, 3),
    ];
    let rows = vec![
        SessionRow {
            session: session("a.example", 1, 1, now - 10 * day, now - 10 * day),
            sign: 1,
        },
        SessionRow {
            session: session("a.example", 2, 1, now - 1000, now - 1000),
            sign: 1,
        },
        SessionRow {
            session: session("b.example", 3, 1, now - 10 * day, now - 10 * day),
            sign: 1,
        },
    ];
    store.insert(batch(events, rows, 1)).await.unwrap();
    let deleted = store
        .delete_before(&site("a.example"), now - day)
        .await
        .unwrap();
    assert_eq!(
        (deleted.events, deleted.visits),
        (1, 1),
        "the old event and its visit"
    );
    let left: Vec<String> = store
        .export_events(&site("a.example"), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(left, ["new"]);
    assert_eq!(
        store
            .export_events(&site("b.example"), None, 10)
            .await
            .unwrap()
            .len(),
        1,
        "other sites keep theirs"
    );
    let gone = store.delete_site_events(&site("b.example")).await.unwrap();
    assert_eq!((gone.events, gone.visits), (1, 1));
    assert!(store
        .export_events(&site("b.example"), None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .export_events(&site("a.example"), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An import of daily aggregates is stored whole, listed per site, read by queries as
/// `imported_*` tables, and deleted with its import or with its site.
async fn imports_are_kept_per_site_and_deleted_whole(store: impl EventStore) {
    use heartbeat_query::{Row, Sql, SqlValue};
    let row = |date: &str, visitors: u64| ImportedRow {
        date: date.into(),
        texts: Vec::new(),
        counts: vec![
            Some(visitors),
            Some(visitors),
            Some(0),
            Some(visitors),
            Some(10),
        ],
    };
    let device = ImportedRow {
        date: "2024-01-01".into(),
        texts: vec!["Mobile".into()],
        counts: vec![Some(3), Some(4), Some(40), Some(1), Some(7)],
    };
    let range = ("2024-01-01".to_owned(), "2024-01-31".to_owned());
    let first = store
        .import_aggregates(
            &site("a.example"),
            "plausible_csv",
            range.clone(),
            vec![
                (
                    ImportedTable::Visitors,
                    vec![row("2024-01-01", 5), row("2024-01-02", 7)],
                ),
                (ImportedTable::Devices, vec![device]),
            ],
        )
        .await
        .unwrap();
    let second = store
        .import_aggregates(
            &site("a.example"),
            "plausible_csv",
            range.clone(),
            vec![(ImportedTable::Visitors, vec![row("2024-01-03", 1)])],
        )
        .await
        .unwrap();
    store
        .import_aggregates(
            &site("b.example"),
            "plausible_csv",
            range,
            vec![(ImportedTable::Visitors, vec![row("2024-01-01", 100)])],
        )
        .await
        .unwrap();
    assert!(second.id > first.id, "ids increase");
    assert_eq!(
        (first.start_date.as_str(), first.end_date.as_str()),
        ("2024-01-01", "2024-01-31")
    );
    let listed = store.site_imports(&site("a.example")).await.unwrap();
    assert_eq!(listed, vec![first.clone(), second.clone()]);
    let visitors = |site_id: &str| Sql {
        text: "SELECT sum(visitors) FROM imported_visitors WHERE site_id = ?".into(),
        params: vec![SqlValue::Text(site_id.into())],
    };
    let sum = |rows: Vec<Row>| rows[0][0].as_f64();
    assert_eq!(sum(store.run(visitors("a.example")).await.unwrap()), 13.0);
    let devices = store
        .run(Sql {
            text: "SELECT device, visits, pageviews FROM imported_devices WHERE site_id = ?".into(),
            params: vec![SqlValue::Text("a.example".into())],
        })
        .await
        .unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0][0], SqlValue::Text("Mobile".into()));
    assert_eq!((devices[0][1].as_f64(), devices[0][2].as_f64()), (4.0, 7.0));
    assert!(store
        .delete_import(&site("a.example"), first.id)
        .await
        .unwrap());
    assert!(
        !store
            .delete_import(&site("b.example"), second.id)
            .await
            .unwrap(),
        "another site's import is not found"
    );
    assert_eq!(sum(store.run(visitors("a.example")).await.unwrap()), 1.0);
    assert_eq!(
        store.site_imports(&site("a.example")).await.unwrap(),
        vec![second]
    );
    store.delete_site_events(&site("b.example")).await.unwrap();
    assert!(store
        .site_imports(&site("b.example"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(sum(store.run(visitors("b.example")).await.unwrap()), 0.0);
}
