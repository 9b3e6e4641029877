//! Plausible's Stats APIs on the wire: the v2 JSON request body parsed into the typed
//! [`crate::Query`] (`request.rs`) and a [`crate::QueryResult`] written as the JSON response
//! (`response.rs`); v1's query-string parameters translated into a v2 request and its answer
//! into v1's shapes (`v1.rs`). Everything else in this crate works on the typed query and
//! result and knows no JSON shape.

pub(crate) mod product;
mod request;
mod response;
mod v1;

pub use request::{parse_query, requested_site};
pub use v1::{v1_answer, v1_to_v2, V1Kind, V1Request};
