//! What the PostgreSQL tests share: the server's URL from the environment, and fresh schemas
//! (`hb_test_<random hex>`) that isolate each store and are dropped when the test ends, passed
//! or failed.

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

/// The schemas one test made, dropped with it.
pub struct TestSchemas {
    made: Mutex<Vec<String>>,
}

impl TestSchemas {
    pub fn new() -> Self {
        TestSchemas {
            made: Mutex::new(Vec::new()),
        }
    }

    /// A new schema name no store uses yet, dropped with `self`.
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
}

/// Dropping the schemas ends the test's traces on the server, whether it passed or panicked:
/// on a thread of its own with its own runtime, since a drop cannot await.
impl Drop for TestSchemas {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.made.lock().unwrap_or_else(|p| p.into_inner()));
        // Without a server there is nothing to drop (and the test said so already).
        if names.is_empty() || std::env::var_os("HEARTBEAT_TEST_POSTGRES_URL").is_none() {
            return;
        }
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test schemas");
            runtime.block_on(drop_schemas(names));
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop this test's schemas");
        }
    }
}

/// Drops each of `names`, with its tables.
async fn drop_schemas(names: Vec<String>) {
    let client = raw_client().await;
    for name in names {
        // The name is ours (`hb_test_` and hex), not input.
        if let Err(err) = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
            .await
        {
            eprintln!("drop schema {name}: {err}");
        }
    }
}
