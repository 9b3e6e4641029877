//! What every route shares: the state and the request extractors (`state.rs`), the one error
//! shape and the mapping of every error kind to a status (`error.rs`), the client behind a
//! request (`client.rs`), security headers, CORS and time limits (`shield.rs`), the body
//! shapes the OpenAPI document shows (`schema.rs`), JSON pieces (`json.rs`), query strings
//! (`query_string.rs`), the site a path names checked against the caller (`site_access.rs`)
//! and the first steps of every read (`reads.rs`). Nothing here knows a
//! route.

pub mod client;
pub mod error;
pub mod json;
pub mod query_string;
pub mod reads;
pub mod schema;
pub mod shield;
pub mod site_access;
pub mod state;
