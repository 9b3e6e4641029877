//! Who may do what: the directory of sites, organisations, API keys, dashboard users,
//! sessions and share links (`registry.rs`, kept in memory over a [`heartbeat_store::MetaStore`]),
//! the one [`access::Caller`] every credential resolves to and what it may do (`access.rs`),
//! argon2id passwords (`password.rs`) and sites' goals (`goals.rs`, the same kind of directory). A domain crate: it knows no HTTP; the server maps
//! its errors to statuses.

pub mod access;
pub mod goals;
pub mod password;
pub mod registry;
