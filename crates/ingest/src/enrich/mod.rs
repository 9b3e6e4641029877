//! Enrichment: what Heartbeat derives from a raw event and its request. Each concept has its
//! own module; they read the request, never store it (no IP leaves this crate).

pub mod bot;
pub mod geo;
pub mod page;
pub mod referrer;
pub mod salt;
pub mod site_rules;
pub mod user_agent;
pub mod visitor;
