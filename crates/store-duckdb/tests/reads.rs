//! Reads that must not outlive their caller or outgrow their budget: a statement whose
//! future is dropped is interrupted in DuckDB, and a statement whose rows need more memory
//! than allowed fails by kind.

mod common;

use std::time::{Duration, Instant};

use common::sql;
use heartbeat_query::{RunError, SqlRunner};
use heartbeat_store_duckdb::DuckDbStore;

/// Minutes of work for DuckDB on any machine of ours.
const ENDLESS: &str = "SELECT sum(hash(i)) FROM range(1000000000000) t(i)";

#[test]
fn a_dropped_statement_is_interrupted_and_the_store_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let store = DuckDbStore::open(&dir.path().join("reads.duckdb")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let gave_up =
            tokio::time::timeout(Duration::from_millis(300), store.run(sql(ENDLESS))).await;
        assert!(gave_up.is_err(), "the endless statement finished");
        // The store answers the next statement (on another connection or the same pool).
        let rows = store.run(sql("SELECT 42")).await.unwrap();
        assert_eq!(rows[0][0].as_f64(), 42.0);
    });
    // Shutting down waits (up to the limit) for blocking work still running: an
    // uninterrupted statement would hold it for the whole limit.
    let started = Instant::now();
    runtime.shutdown_timeout(Duration::from_secs(30));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the dropped statement went on for {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn rows_beyond_the_budget_fail_as_too_large() {
    let store = DuckDbStore::open_in_memory()
        .unwrap()
        .with_max_result_bytes(64 * 1024);
    let small = store
        .run(sql("SELECT i, repeat('x', 10) FROM range(100) t(i)"))
        .await
        .unwrap();
    assert_eq!(small.len(), 100);
    let large = store
        .run(sql("SELECT i, repeat('x', 100) FROM range(10000) t(i)"))
        .await;
    assert!(
        matches!(large, Err(RunError::TooLarge { limit_bytes: 65536 })),
        "{large:?}"
    );
    // The connection is fine afterwards.
    assert_eq!(store.run(sql("SELECT 1")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn work_beyond_the_engines_memory_fails_as_out_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = DuckDbStore::open_with_memory_limit(&dir.path().join("reads.duckdb"), Some("16MB"))
        .unwrap();
    // One list of 20 M numbers (160 MB) in one aggregate state: nothing to spill.
    let wide = store
        .run(sql(
            "SELECT len(l) FROM (SELECT list(i) AS l FROM range(20000000) t(i))",
        ))
        .await;
    assert!(
        matches!(wide, Err(RunError::OutOfMemory { .. })),
        "{wide:?}"
    );
    // The store answers the next statement.
    assert_eq!(store.run(sql("SELECT 1")).await.unwrap().len(), 1);
}

/// DuckDB's own accounts, by tag: a table held in memory shows as such, and goes when it is
/// dropped.
#[tokio::test]
async fn memory_is_reported_by_what_holds_it() {
    let store = DuckDbStore::open_in_memory().unwrap();
    let held = |store: &DuckDbStore| -> u64 {
        let memory = store.memory().unwrap();
        assert!(
            memory.len() > 5
                && memory
                    .iter()
                    .all(|m| !m.tag.is_empty() && m.tag == m.tag.to_ascii_lowercase()),
            "{memory:?}"
        );
        memory
            .iter()
            .filter(|m| m.tag == "in_memory_table")
            .map(|m| m.bytes)
            .sum()
    };
    let before = held(&store);
    store
        .run(sql(
            "CREATE TABLE big AS SELECT i, hash(i) AS h FROM range(2000000) t(i)",
        ))
        .await
        .unwrap();
    let with_table = held(&store);
    assert!(
        with_table >= before + 16 * 1024 * 1024,
        "2 M rows of two 8-byte columns: {before} then {with_table} bytes"
    );
    store.run(sql("DROP TABLE big")).await.unwrap();
    assert!(
        held(&store) < with_table,
        "the dropped table's memory stayed"
    );
}
