//! Goals: what counts as a conversion on a site, a page view of a path pattern or a custom
//! event (optionally with property values), under a display name that queries name it by.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::SiteId;

/// What an event must be to complete a goal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "goal_type", rename_all = "lowercase")]
pub enum GoalKind {
    /// A page view whose path matches `page_path`: an exact path, or a pattern where `*`
    /// and `**` match any run of characters (as Plausible's goals).
    Page { page_path: String },
    /// A custom event named `event_name`, with each of `props` set to its value when given.
    Event {
        event_name: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        props: BTreeMap<String, String>,
    },
}

/// A goal of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    pub id: u64,
    pub site_id: SiteId,
    #[serde(flatten)]
    pub kind: GoalKind,
    /// The name queries and answers use (`event:goal`); unique within the site.
    pub display_name: String,
    /// ISO 4217 code of a revenue goal: its events' revenue in this currency is summed.
    pub currency: Option<String>,
    pub created_at_ms: i64,
}

impl GoalKind {
    /// Plausible's default display name: the event's name, or `Visit <path>`.
    pub fn default_name(&self) -> String {
        match self {
            GoalKind::Page { page_path } => format!("Visit {page_path}"),
            GoalKind::Event { event_name, .. } => event_name.clone(),
        }
    }
}
