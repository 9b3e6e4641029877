//! The typed analytics query: parsed from Plausible's Stats API v2 shape (`plausible/`),
//! planned (`plan.rs`: rollups or which statements), compiled to SQL per dialect
//! (`compile/`, `dialect/`), run through a [`SqlRunner`] and assembled into the v2 response.
//!
//! Every read endpoint (native, seeds, dashboard) builds a [`Query`] and calls [`execute`],
//! so numbers are identical everywhere. Users never send SQL: identifiers come from `match`
//! arms in `compile`, values are bound parameters.

mod bounds;
mod compile;
mod dialect;
mod engine;
mod error;
pub mod funnel;
mod journey;
mod listing;
mod model;
mod money;
mod paths;
mod plan;
mod plausible;
mod product;
mod retention;
pub mod rollup;
mod sql;
mod time;

pub use bounds::QueryBounds;
pub use chrono_tz::Tz as TimeZone;
pub use dialect::{Dialect, Piece, SqlDialect, SqlType};
pub use engine::{execute, Comparison, QueryResult, ResultRow};
pub use error::QueryError;
pub use journey::{
    journey, parse_journey, Journey, JourneyEvent, JourneyQuery, JourneyVisit, Person,
    MAX_JOURNEY_EVENTS,
};
pub use listing::{
    current_visitors, first_event_ms, list_events, Cursor, EventListing, EventPage, ListedEvent,
    MAX_PAGE,
};
pub use model::{
    Condition, DateRange, Dimension, Filter, Metric, Operator, Order, Query, Revenue, TimeGrain,
    VisitColumn,
};
pub use paths::{
    parse_paths, Direction, FullPath, PathEdge, PathNode, PathsAnswer, PathsQuery, Start,
    MAX_DEPTH, MAX_PATHS_LIMIT, OTHER,
};
pub use plausible::{parse_query, requested_site, v1_answer, v1_to_v2, V1Kind, V1Request};
pub use product::{paths, retention};
pub use retention::{
    max_periods, parse_retention, Cohort, RetentionAnswer, RetentionQuery, MAX_COHORTS,
};
pub use sql::{Row, RunError, Sql, SqlRunner, SqlValue};
pub use time::{bucket_count, resolve_range};

/// The site the unit tests ask about: `example.com` in `timezone`.
#[cfg(test)]
pub(crate) fn test_site(timezone: &str) -> heartbeat_model::Site {
    heartbeat_model::Site {
        id: heartbeat_model::SiteId::from("example.com"),
        name: "Example".into(),
        domain: "example.com".into(),
        timezone: timezone.into(),
        created_at_ms: 0,
        rules: Default::default(),
        retention_days: None,
    }
}
