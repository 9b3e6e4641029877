//! What the contract suites do not cover: migrations (once, idempotent, safe when several
//! nodes start together), how PostgreSQL's errors map to `StoreError`, and rows damaged
//! outside the store. Needs `HEARTBEAT_TEST_POSTGRES_URL` (`scripts/services start`, then
//! `source "$(scripts/services env)"`).

mod common;

use std::time::{Duration, Instant};

use common::{raw_client, TestSchemas};
use heartbeat_meta_postgres::{PostgresMetaStore, PostgresOptions};
use heartbeat_model::{Goal, GoalKind, Site, SiteId, SiteRules, User, Webhook, WebhookFormat};
use heartbeat_store::{AlertStore, MetaStore, StoreError};

fn site(id: &str, domain: &str) -> Site {
    Site {
        id: SiteId::from(id),
        name: format!("Site {id}"),
        domain: domain.to_owned(),
        timezone: "UTC".to_owned(),
        created_at_ms: 1_770_000_000_000,
        retention_days: Some(90),
        rules: SiteRules::default(),
    }
}

/// `heartbeat_migrations` of `schema`: each version with when it was applied (as text, to
/// compare exactly).
async fn migrations_of(schema: &str) -> Vec<(i32, String)> {
    let client = raw_client().await;
    let sql = format!(
        "SELECT version, applied_at::text FROM \"{schema}\".heartbeat_migrations ORDER BY version"
    );
    client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn conflict_subject(result: Result<(), StoreError>) -> String {
    match result {
        Err(StoreError::Conflict { what }) => what,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_connect_applies_nothing_and_keeps_the_data() {
    let schemas = TestSchemas::new();
    let schema = schemas.fresh_name();
    let first = schemas.connect(&schema).await.unwrap();
    first
        .insert_site(&site("a.example", "a.example"))
        .await
        .unwrap();
    let applied = migrations_of(&schema).await;
    assert_eq!(
        applied.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        [1, 2, 3],
        "every migration is recorded once"
    );
    drop(first);

    let second = schemas.connect(&schema).await.unwrap();
    assert_eq!(
        migrations_of(&schema).await,
        applied,
        "a second connect applies nothing again"
    );
    assert_eq!(
        second.sites().await.unwrap(),
        vec![site("a.example", "a.example")],
        "and the data survives"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_on_a_fresh_schema_all_connect() {
    let schemas = TestSchemas::new();
    let schema = schemas.fresh_name();
    let (a, b, c, d) = tokio::join!(
        schemas.connect(&schema),
        schemas.connect(&schema),
        schemas.connect(&schema),
        schemas.connect(&schema),
    );
    let stores = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    assert_eq!(
        migrations_of(&schema)
            .await
            .iter()
            .map(|(v, _)| *v)
            .collect::<Vec<_>>(),
        [1, 2, 3],
        "the migrations ran once between them"
    );
    stores[0]
        .insert_site(&site("a.example", "a.example"))
        .await
        .unwrap();
    assert_eq!(
        stores[3].sites().await.unwrap().len(),
        1,
        "they share one schema"
    );
}

#[tokio::test]
async fn unique_violations_are_conflicts_naming_what_was_taken() {
    let schemas = TestSchemas::new();
    let store = schemas.fresh_store().await;
    store
        .insert_site(&site("a.example", "a.example"))
        .await
        .unwrap();
    assert_eq!(
        conflict_subject(store.insert_site(&site("a.example", "b.example")).await),
        "site"
    );
    assert_eq!(
        conflict_subject(store.insert_site(&site("b.example", "a.example")).await),
        "site domain"
    );
    store
        .insert_site(&site("b.example", "b.example"))
        .await
        .unwrap();
    assert_eq!(
        conflict_subject(
            store
                .set_site_domain(&SiteId::from("b.example"), "a.example")
                .await
        ),
        "site domain"
    );

    let user = User {
        id: "u1".into(),
        email: "ann@example.com".into(),
        password_hash: "$argon2id$x".into(),
        created_at_ms: 1,
    };
    store.insert_user(&user).await.unwrap();
    let same_email = User {
        id: "u2".into(),
        ..user.clone()
    };
    assert_eq!(
        conflict_subject(store.insert_user(&same_email).await),
        "user email"
    );

    let goal = |id| Goal {
        id,
        site_id: SiteId::from("a.example"),
        kind: GoalKind::Page {
            page_path: "/x".into(),
        },
        display_name: "Visit /x".into(),
        currency: None,
        created_at_ms: 1,
    };
    store.insert_goal(&goal(1)).await.unwrap();
    assert_eq!(
        conflict_subject(store.insert_goal(&goal(2)).await),
        "goal display name"
    );

    let webhook = Webhook {
        id: "wh".into(),
        site_id: SiteId::from("a.example"),
        url: "https://hooks.example/x".into(),
        format: WebhookFormat::Json,
        secret: "s".into(),
        created_at_ms: 1,
    };
    store.insert_webhook(&webhook).await.unwrap();
    assert_eq!(
        conflict_subject(store.insert_webhook(&webhook).await),
        "webhook"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_promptly() {
    let started = Instant::now();
    let result = PostgresMetaStore::connect(
        "postgres://postgres@127.0.0.1:1/postgres",
        PostgresOptions {
            connect_timeout: Duration::from_secs(2),
            ..PostgresOptions::default()
        },
    )
    .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn other_errors_are_rejections() {
    let schemas = TestSchemas::new();
    let store = schemas.fresh_store().await;
    // PostgreSQL's text holds no NUL character: the server refuses the value itself.
    let result = store
        .insert_site(&site("nul.example", "nul\0.example"))
        .await;
    assert!(
        matches!(result, Err(StoreError::Rejected { .. })),
        "{result:?}"
    );
    let result = store
        .update_site(&site("missing.example", "missing.example"))
        .await;
    assert!(
        matches!(result, Err(StoreError::Rejected { .. })),
        "updating no site: {result:?}"
    );

    let bad_schema = PostgresMetaStore::connect(
        &common::postgres_url(),
        PostgresOptions {
            schema: Some("Robert'); DROP TABLE sites;--".into()),
            ..PostgresOptions::default()
        },
    )
    .await;
    assert!(
        matches!(bad_schema, Err(StoreError::Rejected { .. })),
        "a schema name that is no plain identifier: {bad_schema:?}"
    );
    let bad_url = PostgresMetaStore::connect("postgres://[nope", PostgresOptions::default()).await;
    assert!(
        matches!(bad_url, Err(StoreError::Rejected { .. })),
        "{bad_url:?}"
    );
}

#[tokio::test]
async fn a_damaged_row_is_left_out() {
    let schemas = TestSchemas::new();
    let schema = schemas.fresh_name();
    let store = schemas.connect(&schema).await.unwrap();
    store
        .insert_site(&site("a.example", "a.example"))
        .await
        .unwrap();
    let client = raw_client().await;
    client
        .batch_execute(&format!(
            "SET search_path = \"{schema}\";
             INSERT INTO goals VALUES (7, 'a.example', 'Broken', '{{\"goal_type\":\"nope\"}}', NULL, 1);
             INSERT INTO webhooks VALUES ('w', 'a.example', 'https://x', 'teams', 's', 1);
             INSERT INTO deliveries VALUES ('d', 'a.example', '{{}}', 'alert', '{{}}',
                 'pending', 0, 0, NULL, 0, NULL);
             UPDATE sites SET rules = '{{\"unknown\": 1}}';"
        ))
        .await
        .unwrap();
    assert!(store.goals().await.unwrap().is_empty());
    assert!(store.webhooks().await.unwrap().is_empty());
    assert!(store.due_deliveries(0, 10).await.unwrap().is_empty());
    assert_eq!(
        store.sites().await.unwrap()[0].rules,
        SiteRules::default(),
        "damaged rules read as none"
    );
}

/// Leases: members counted, one holder per lease, and a lease free the moment its holder's
/// connection ends (as when a worker is killed).
#[tokio::test]
async fn a_lease_has_one_holder_and_ends_with_its_connection() {
    use heartbeat_meta_postgres::Leases;
    let url = common::postgres_url();
    let space = format!("test-{}", uuid::Uuid::new_v4());
    let a = Leases::join(&url, &space).await.unwrap();
    assert_eq!(a.members().await.unwrap(), 1);
    let b = Leases::join(&url, &space).await.unwrap();
    assert_eq!(a.members().await.unwrap(), 2);
    assert!(a.try_take(3).await.unwrap());
    assert!(!b.try_take(3).await.unwrap(), "one holder at a time");
    assert!(a.holds(3).await.unwrap());
    assert!(!b.holds(3).await.unwrap());
    // Another space's lease 3 is another lease.
    let other = Leases::join(&url, &format!("{space}-other")).await.unwrap();
    assert!(other.try_take(3).await.unwrap());
    // A's connection ends: its lease is free at once, and it is one member less.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.try_take(3).await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "the lease stays held after its holder left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(b.holds(3).await.unwrap());
    assert_eq!(b.members().await.unwrap(), 1);
    b.release(3).await.unwrap();
    assert!(!b.holds(3).await.unwrap());
    assert!(!b.is_lost());
}
