//! The contracts every engine's stores keep, as suites an engine's crate runs against the
//! real engine (`cargo test` of `heartbeat-store-duckdb` runs them all on DuckDB; a ClickHouse
//! event store or a PostgreSQL metadata store runs them on the server `scripts/test` starts).
//! Each check gets a fresh, empty store from `make` and panics with what broke. Compiled with
//! the `contract` feature.

mod alerts;
mod events;
mod meta;

pub use alerts::check_alert_store;
pub use events::check_event_store;
pub use meta::check_meta_store;
