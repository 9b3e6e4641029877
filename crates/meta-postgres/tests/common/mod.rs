//! What the PostgreSQL tests share: the server's URL from the environment, and fresh schemas
//! (`hb_test_<random hex>`) that isolate each store and are dropped when the test is done.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::Duration;

use heartbeat_meta_postgres::{PostgresMetaStore, PostgresOptions};
use heartbeat_store::StoreError;

/// The test server's URL. The tests need a real PostgreSQL, so a missing one fails them
/// rather than skipping them unnoticed.
pub fn postgres_url() -> String {
    std::env::var("HEARTBEAT_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "HEARTBEAT_TEST_POSTGRES_URL is not set: these tests need a PostgreSQL server. \
             Run `scripts/services start` and `source \"$(scripts/services env)\"`, then \
             run the tests again"
        )
    })
}

/// A raw connection to the test server, for setting up and inspecting what a store cannot.
pub async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("test PostgreSQL connection: {err}");
        }
    });
    client
}

/// The schemas one test made; [`TestSchemas::drop_all`] removes them.
pub struct TestSchemas {
    made: Mutex<Vec<String>>,
}

impl TestSchemas {
    pub fn new() -> Self {
        TestSchemas {
            made: Mutex::new(Vec::new()),
        }
    }

    /// A new schema name no store uses yet, remembered for `drop_all`.
    pub fn fresh_name(&self) -> String {
        let name = format!("hb_test_{}", uuid::Uuid::new_v4().simple());
        self.made.lock().unwrap().push(name.clone());
        name
    }

    /// A store on the test server keeping its tables in `schema`.
    pub async fn connect(&self, schema: &str) -> Result<PostgresMetaStore, StoreError> {
        PostgresMetaStore::connect(
            &postgres_url(),
            PostgresOptions {
                pool_size: 2,
                connect_timeout: Duration::from_secs(10),
                schema: Some(schema.to_owned()),
            },
        )
        .await
    }

    /// A fresh, empty store in a schema of its own.
    pub async fn fresh_store(&self) -> PostgresMetaStore {
        let schema = self.fresh_name();
        self.connect(&schema)
            .await
            .unwrap_or_else(|err| panic!("connect to a fresh schema {schema}: {err}"))
    }

    /// Drops every schema this test made, with its tables.
    pub async fn drop_all(&self) {
        let names = std::mem::take(&mut *self.made.lock().unwrap());
        let client = raw_client().await;
        for name in names {
            // The name is ours (`hb_test_` and hex), not input.
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await
                .unwrap_or_else(|err| panic!("drop schema {name}: {err}"));
        }
    }
}
