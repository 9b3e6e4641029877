//! Paths: where visits go after a page (or before it), the data of a Sankey chart
//! (`POST /api/v2/paths`). `product.rs` runs its one statement (`compile/paths.rs`);
//! [`assemble`] reads its rows.
//!
//! Semantics:
//! - A visit's walk is its page views in time order, consecutive views of the same page
//!   (reloads) counted once. With `event`, the events of that name are items of the walk
//!   too, named by the event's name.
//! - The walk starts the first time the visit reached the start (`page` or `event`; with
//!   neither, the visit's entry page, or its exit page backward) and goes `depth` steps
//!   (1 to [`MAX_DEPTH`]) forward (the next pages) or backward (the pages before it),
//!   within the visit and the date range.
//! - Nodes are (step, page); each step keeps its `limit` most visited pages by name and
//!   folds the others into one [`OTHER`] node, so the chart's flows still add up. An edge
//!   (step, from, to) counts the visitors who went from `from` at step - 1 to `to` at
//!   step (backward: `to` is the page viewed before `from`). A node's drop-offs are the
//!   visitors whose walk ended there (the visit ended, or began, backward) before the last
//!   step. Counts are distinct visitors.
//! - Full paths are the `limit` most common walks that went the whole depth, `depth + 1`
//!   pages each, by their real pages, in the order they were viewed (backward ones end at
//!   the start).
//! - `filters` (v2's) pick the visits: those with an event in the range that passes them.

use chrono_tz::Tz;
use heartbeat_model::{Site, SiteId};
use serde::Serialize;
use serde_json::Value;

use crate::bounds::QueryBounds;
use crate::error::QueryError;
use crate::model::{DateRange, Filter};
use crate::plausible::product::{timezone, Body};
use crate::sql::{Row, SqlValue};

/// The deepest walk: steps after (or before) the start.
pub const MAX_DEPTH: u32 = 5;
/// The most nodes per step, and full paths, an answer holds.
pub const MAX_PATHS_LIMIT: u32 = 50;
/// The node the pages past a step's limit are folded into.
pub const OTHER: &str = "(other)";

const FIELDS: &[&str] = &[
    "site_id",
    "date_range",
    "page",
    "event",
    "direction",
    "depth",
    "limit",
    "filters",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// Where walks start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The first view of this page in a visit.
    Page(String),
    /// The first event of this name in a visit.
    Event(String),
    /// The visit's entry page (forward) or exit page (backward).
    Visit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PathsQuery {
    pub site_id: SiteId,
    pub timezone: Tz,
    pub range: DateRange,
    pub start: Start,
    pub direction: Direction,
    pub depth: u32,
    /// Nodes per step (the rest folded into [`OTHER`]), and full paths.
    pub limit: u32,
    pub filters: Vec<Filter>,
}

/// Parses a `POST /api/v2/paths` body (`site_id`, `date_range`, `page` or `event`,
/// `direction`, `depth`, `limit`, `filters`), naming every bad field.
pub fn parse_paths(
    body: &Value,
    site: &Site,
    now_ms: i64,
    first_event_ms: i64,
    bounds: &QueryBounds,
) -> Result<PathsQuery, Vec<QueryError>> {
    let tz = timezone(site);
    let mut fields = Body::new(body, FIELDS);
    let range = fields.date_range(tz, now_ms, first_event_ms, bounds);
    let start = match (fields.text("page"), fields.text("event")) {
        (Some(_), Some(_)) => {
            fields.error("event", "give page or event, not both");
            None
        }
        (Some(page), None) => Some(Start::Page(page)),
        (None, Some(event)) => Some(Start::Event(event)),
        (None, None) => Some(Start::Visit),
    };
    let direction = match fields.get("direction") {
        None => Some(Direction::Forward),
        Some(value) => match value.as_str() {
            Some("forward") => Some(Direction::Forward),
            Some("backward") => Some(Direction::Backward),
            _ => {
                fields.error(
                    "direction",
                    format!("must be \"forward\" or \"backward\", got {value}"),
                );
                None
            }
        },
    };
    let depth = fields.whole("depth", 1, MAX_DEPTH, 3);
    let limit = fields.whole("limit", 1, MAX_PATHS_LIMIT, 10);
    let filters = fields.filters();
    fields.finish(|| {
        Some(PathsQuery {
            site_id: site.id.clone(),
            timezone: tz,
            range: range?,
            start: start?,
            direction: direction?,
            depth: depth?,
            limit: limit?,
            filters,
        })
    })
}

/// A page (or event) at a step of the walks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathNode {
    /// 0 is the start.
    pub step: u32,
    pub name: String,
    pub visitors: u64,
    /// Visitors whose walk ended here before the last step.
    pub dropoffs: u64,
}

/// Visitors moving from one node to the next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathEdge {
    /// The step of `to`; `from` is at `step - 1`.
    pub step: u32,
    pub from: String,
    pub to: String,
    pub visitors: u64,
}

/// A walk of the whole depth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FullPath {
    /// In the order they were viewed.
    pub pages: Vec<String>,
    pub visitors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathsAnswer {
    pub direction: &'static str,
    pub depth: u32,
    /// By step, then most visitors first.
    pub nodes: Vec<PathNode>,
    /// By step, then most visitors first.
    pub edges: Vec<PathEdge>,
    /// Most visitors first.
    pub paths: Vec<FullPath>,
}

fn text(value: &SqlValue) -> String {
    match value {
        SqlValue::Text(s) => s.clone(),
        _ => String::new(),
    }
}

/// The answer of `query` from its statement's rows (`compile/paths.rs`).
pub(crate) fn assemble(query: &PathsQuery, rows: Vec<Row>) -> PathsAnswer {
    let (mut nodes, mut edges, mut paths) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        let visitors = row[8].as_f64() as u64;
        match row[0].as_f64() as i64 {
            0 => nodes.push(PathNode {
                step: row[1].as_f64() as u32,
                name: text(&row[2]),
                visitors,
                dropoffs: row[9].as_f64() as u64,
            }),
            1 => edges.push(PathEdge {
                step: row[1].as_f64() as u32,
                from: text(&row[2]),
                to: text(&row[3]),
                visitors,
            }),
            _ => {
                let mut pages: Vec<String> =
                    row[2..=2 + query.depth as usize].iter().map(text).collect();
                if query.direction == Direction::Backward {
                    pages.reverse();
                }
                paths.push(FullPath { pages, visitors });
            }
        }
    }
    // The folded node last within its step, whatever its count.
    nodes.sort_by(|a, b| {
        (
            a.step,
            a.name == OTHER,
            std::cmp::Reverse(a.visitors),
            &a.name,
        )
            .cmp(&(
                b.step,
                b.name == OTHER,
                std::cmp::Reverse(b.visitors),
                &b.name,
            ))
    });
    edges.sort_by(|a, b| {
        (a.step, std::cmp::Reverse(a.visitors), &a.from, &a.to).cmp(&(
            b.step,
            std::cmp::Reverse(b.visitors),
            &b.from,
            &b.to,
        ))
    });
    paths.sort_by(|a, b| {
        (std::cmp::Reverse(a.visitors), &a.pages).cmp(&(std::cmp::Reverse(b.visitors), &b.pages))
    });
    PathsAnswer {
        direction: match query.direction {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        },
        depth: query.depth,
        nodes,
        edges,
        paths,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn site() -> Site {
        crate::test_site("UTC")
    }

    fn parse(body: Value) -> Result<PathsQuery, Vec<QueryError>> {
        parse_paths(
            &body,
            &site(),
            1_718_452_800_000,
            0,
            &QueryBounds::default(),
        )
    }

    fn fields(body: Value) -> Vec<String> {
        parse(body)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_full_request_is_read() {
        let q = parse(
            json!({"site_id": "example.com", "page": "/pricing", "direction": "backward",
            "depth": 2, "limit": 3, "filters": [["is", "visit:source", ["Google"]]]}),
        )
        .unwrap();
        assert_eq!(q.start, Start::Page("/pricing".into()));
        assert_eq!((q.direction, q.depth, q.limit), (Direction::Backward, 2, 3));
        assert_eq!(q.filters.len(), 1);
        let q = parse(json!({"event": "signup"})).unwrap();
        assert_eq!(
            (q.start, q.direction, q.depth, q.limit),
            (Start::Event("signup".into()), Direction::Forward, 3, 10)
        );
        assert_eq!(parse(json!({})).unwrap().start, Start::Visit);
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(fields(json!({"depth": 0})), ["depth"]);
        assert_eq!(fields(json!({"depth": 6})), ["depth"]);
        assert!(parse(json!({"depth": 5})).is_ok());
        assert_eq!(
            fields(
                json!({"direction": "sideways", "limit": 0, "page": "/a", "event": "e", "date_range": "decade"})
            ),
            ["date_range", "event", "direction", "limit"]
        );
    }
}
