//! Heartbeat's metadata and alerting data in PostgreSQL: [`PostgresMetaStore`] implements
//! [`heartbeat_store::MetaStore`] (sites, API keys, organisations, users and their sessions,
//! share links, goals, funnels) and [`heartbeat_store::AlertStore`] (alert rules, webhooks,
//! report recipients, annotations, firings and the delivery outbox), so several Heartbeat
//! nodes can share one metadata database while events live elsewhere.
//!
//! # Connections
//! [`PostgresMetaStore::connect`] takes a libpq-style URL
//! (`postgres://user:password@host:port/database`) and [`PostgresOptions`]: the pool's size,
//! a connect timeout (an unreachable server fails fast with `StoreError::Unavailable`), and
//! optionally a schema to keep every table in (set as each connection's `search_path`, and
//! created when missing), so one database can hold several independent stores.
//!
//! # Schema and migrations
//! The schema is a list of numbered migrations (`schema.rs`), applied at connect: in one
//! transaction holding a PostgreSQL advisory lock, the store creates the schema if asked,
//! reads `heartbeat_migrations (version, applied_at)` and runs the migrations not yet
//! recorded. Nodes that start together wait on the lock and then find nothing left to do;
//! a node older than the schema refuses to start instead of misreading it.
//!
//! # Errors
//! A unique violation (SQLSTATE 23505) is `StoreError::Conflict` naming what was taken (a
//! site, a site domain, a user email, ...); a lost or refused connection, an exhausted pool,
//! a timeout or a transient server condition (serialization failure, deadlock, shutdown) is
//! `Unavailable`, worth retrying; any other error of the server is `Rejected`. Operations
//! that touch several tables (deleting a site or a user) run in one transaction, and every
//! value travels as a bound parameter.
//!
//! # Tests
//! `tests/contract.rs` runs the store contracts every engine keeps
//! (`heartbeat_store::contract`) against a real server, each check in a fresh schema named
//! `hb_test_<random hex>` that the test drops afterwards; `tests/postgres.rs` covers
//! migrations, concurrent starts and error mapping. They read the server's URL from
//! `HEARTBEAT_TEST_POSTGRES_URL` and fail without it:
//!
//! ```text
//! scripts/services start
//! source "$(scripts/services env)"
//! cargo test -p heartbeat-meta-postgres
//! ```

mod alerts;
mod leases;
mod meta;
mod schema;

pub use leases::Leases;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use heartbeat_store::StoreError;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// How [`PostgresMetaStore::connect`] connects.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The most connections the pool opens at once.
    pub pool_size: usize,
    /// How long opening one connection may take before the store gives up with
    /// `Unavailable`; also how long an operation waits for a free pooled connection.
    pub connect_timeout: Duration,
    /// The schema holding the tables (`[a-z_][a-z0-9_]*`), created when missing; `None`
    /// uses the connection's default `search_path` (usually `public`).
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            schema: None,
        }
    }
}

/// The metadata and alert stores on PostgreSQL, over a pool of connections. Cloning it
/// shares the pool.
#[derive(Clone)]
pub struct PostgresMetaStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresMetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresMetaStore")
            .field("pool_size", &status.max_size)
            .field("open_connections", &status.size)
            .finish()
    }
}

impl PostgresMetaStore {
    /// Connects to the server at `url`, then brings the schema up to date (see the crate's
    /// documentation). Fails with `Unavailable` when the server cannot be reached within
    /// the connect timeout, and with `Rejected` for a malformed URL or schema name.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|err| StoreError::Rejected {
                message: format!("invalid PostgreSQL URL: {err}"),
            })?;
        config.connect_timeout(options.connect_timeout);
        if let Some(schema) = &options.schema {
            if !schema::valid_schema_name(schema) {
                return Err(StoreError::Rejected {
                    message: format!(
                        "invalid schema name {schema:?}: use lower-case letters, digits and _"
                    ),
                });
            }
            // Every pooled connection starts with the schema as its search path. The name
            // is a plain identifier (checked above), so it needs no escaping here.
            config.options(format!("-c search_path={schema}"));
        }
        if options.pool_size == 0 {
            return Err(StoreError::Rejected {
                message: "the pool size must be at least 1".into(),
            });
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(options.connect_timeout))
            .wait_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|err| StoreError::Rejected {
                message: format!("cannot build the connection pool: {err}"),
            })?;
        let store = PostgresMetaStore { pool };
        let mut client = store.client().await?;
        let applied = schema::migrate(&mut client, options.schema.as_deref()).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, schema = ?options.schema, "applied PostgreSQL migrations");
        }
        Ok(store)
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|err| match err {
            deadpool_postgres::PoolError::Backend(err) => classify(err, "connection"),
            other => StoreError::Unavailable {
                message: format!("PostgreSQL connection pool: {other}"),
            },
        })
    }

    /// Every row `sql` returns with `params` bound.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|err| classify(err, "row"))?;
        client
            .query(&statement, params)
            .await
            .map_err(|err| classify(err, "row"))
    }

    /// Runs `sql` with `params` bound and returns how many rows it changed; a unique
    /// violation of a constraint the schema does not name is a conflict of `what`.
    async fn execute(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|err| classify(err, what))?;
        client
            .execute(&statement, params)
            .await
            .map_err(|err| classify(err, what))
    }

    /// Runs each of `statements` with the one parameter `id`, in one transaction: all or
    /// nothing.
    async fn execute_each(&self, statements: &[&str], id: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|err| classify(err, "row"))?;
        for sql in statements {
            let statement = tx
                .prepare_cached(sql)
                .await
                .map_err(|err| classify(err, "row"))?;
            tx.execute(&statement, &[&id])
                .await
                .map_err(|err| classify(err, "row"))?;
        }
        tx.commit().await.map_err(|err| classify(err, "row"))
    }
}

/// What a PostgreSQL error means to Heartbeat. `what` names the thing a unique violation
/// took when its constraint is not one the schema knows.
fn classify(err: tokio_postgres::Error, what: &str) -> StoreError {
    let Some(db) = err.as_db_error() else {
        // No answer from the server: I/O, a closed connection, a timeout.
        return StoreError::Unavailable {
            message: err.to_string(),
        };
    };
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        let subject = db
            .constraint()
            .and_then(schema::conflict_subject)
            .unwrap_or(what);
        return StoreError::Conflict {
            what: subject.to_owned(),
        };
    }
    let message = format!(
        "{}: {} (SQLSTATE {})",
        db.severity(),
        db.message(),
        code.code()
    );
    // Class 08: connection exceptions; 53: insufficient resources; 57P0x: the server is
    // shutting down or cannot connect yet; 40001/40P01: a transaction lost a race, retry it.
    let transient = code.code().starts_with("08")
        || code.code().starts_with("53")
        || code.code().starts_with("57P")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED;
    if transient {
        StoreError::Unavailable { message }
    } else {
        StoreError::Rejected { message }
    }
}

/// A model value the store cannot hold (a number out of a column's range, a value that does
/// not encode).
fn rejected(err: impl std::fmt::Display) -> StoreError {
    StoreError::Rejected {
        message: err.to_string(),
    }
}

/// A column that failed to read: the schema and the code disagree.
fn unreadable(err: tokio_postgres::Error) -> StoreError {
    StoreError::Rejected {
        message: format!("unreadable row: {err}"),
    }
}

/// A `LIMIT` parameter.
fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A decoded value of the column `column` of a row of `table` identified by `id`: one that
/// does not decode is logged and `None`, so the row is left out rather than one damaged row
/// keeping the server from starting.
fn kept<T, E: std::fmt::Display>(
    table: &str,
    id: &str,
    column: &str,
    decoded: Result<T, E>,
) -> Option<T> {
    match decoded {
        Ok(value) => Some(value),
        Err(err) => {
            tracing::error!(table, id, column, error = %err, "unreadable row; leaving it out");
            None
        }
    }
}
