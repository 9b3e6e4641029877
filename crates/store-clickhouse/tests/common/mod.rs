//! The cluster the tests run on, from the variables `scripts/services env` exports.

#![allow(dead_code)]

use heartbeat_store_clickhouse::{ClickHouseOptions, ClickHouseStore};

/// The shards' HTTP URLs and the cluster's name; panics (never skips) when they are not set.
pub fn cluster() -> (Vec<String>, String) {
    let help = "the ClickHouse tests need the two-shard cluster: run `scripts/services start` \
                and `source \"$(scripts/services env)\"` first";
    let urls = std::env::var("HEARTBEAT_TEST_CLICKHOUSE_URLS")
        .unwrap_or_else(|_| panic!("HEARTBEAT_TEST_CLICKHOUSE_URLS is not set: {help}"));
    let cluster = std::env::var("HEARTBEAT_TEST_CLICKHOUSE_CLUSTER")
        .unwrap_or_else(|_| panic!("HEARTBEAT_TEST_CLICKHOUSE_CLUSTER is not set: {help}"));
    let urls: Vec<String> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(urls.len(), 2, "two shard URLs expected: {help}");
    (urls, cluster)
}

/// Options for a new, empty database on the test cluster.
pub fn fresh_options() -> ClickHouseOptions {
    let (urls, cluster) = cluster();
    let database = format!("heartbeat_test_{}", uuid::Uuid::new_v4().simple());
    ClickHouseOptions::new(urls, &cluster, &database)
}

pub async fn fresh_store() -> ClickHouseStore {
    ClickHouseStore::open(fresh_options())
        .await
        .expect("a store on the test cluster")
}

/// Runs `sql` on the server at `url`, returning its text answer.
pub async fn raw(url: &str, sql: &str) -> String {
    let response = reqwest::Client::new()
        .post(url)
        .body(sql.to_owned())
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    let text = response.text().await.expect("an answer");
    assert!(status.is_success(), "{sql}: {text}");
    text
}

/// Drops a test's database on every shard (left in place when the test panicked before, to
/// look at).
pub async fn drop_database(database: &str) {
    let (urls, _) = cluster();
    for url in urls {
        raw(&url, &format!("DROP DATABASE IF EXISTS {database}")).await;
    }
}
