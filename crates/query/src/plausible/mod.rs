//! Plausible's Stats API v2 on the wire: the JSON request body parsed into the typed
//! [`crate::Query`] (`request.rs`) and a [`crate::QueryResult`] written as the JSON response
//! (`response.rs`). Everything else in this crate works on the typed query and result and
//! knows no JSON shape, so another API (an older Plausible version, a native one) is a
//! sibling of this module.

mod request;
mod response;

pub use request::{parse_query, requested_site};
