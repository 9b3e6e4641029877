//! Funnels: ordered steps a person goes through (a page pattern or an event name, with
//! optional property matches), the window they must be completed in and how strictly the
//! steps follow each other. A saved funnel belongs to one site; the query crate validates a
//! definition and compiles it (`heartbeat_query::funnel`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::SiteId;

/// The fewest and most steps a funnel has.
pub const MIN_FUNNEL_STEPS: usize = 2;
pub const MAX_FUNNEL_STEPS: usize = 8;
/// The longest conversion window: 90 days, in seconds (as PostHog's).
pub const MAX_FUNNEL_WINDOW_S: u64 = 90 * 86_400;

/// What one step matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepTarget {
    /// A page view whose path matches the glob pattern: `*` is any run of characters but
    /// `/`, `**` any run at all (the same globs as a site's excluded paths).
    Page(String),
    /// A custom event (or `pageview`) of this name.
    Event(String),
}

/// One step of a funnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelStep {
    pub target: StepTarget,
    /// Custom properties the event must carry with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<String, String>,
    /// A display name; default: the pattern or the event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl FunnelStep {
    /// The step's display name.
    pub fn name(&self) -> String {
        match (&self.label, &self.target) {
            (Some(label), _) => label.clone(),
            (None, StepTarget::Page(pattern)) => format!("Visit {pattern}"),
            (None, StepTarget::Event(name)) => name.clone(),
        }
    }
}

/// How long a person has to go from the first step to the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelWindow {
    /// All steps in one visit (Plausible's funnels).
    Visit,
    /// All steps within this many seconds of the first one, across visits (PostHog's).
    Seconds(u64),
}

/// How the steps must follow each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelOrder {
    /// Each step is the person's very next event after the previous step.
    Strict,
    /// Steps in order, other events allowed between them.
    #[default]
    Ordered,
    /// Steps in any order: step k counts people who did at least k distinct steps.
    Any,
}

impl FunnelOrder {
    pub const ALL: [(FunnelOrder, &'static str); 3] = [
        (FunnelOrder::Strict, "strict"),
        (FunnelOrder::Ordered, "ordered"),
        (FunnelOrder::Any, "any"),
    ];

    pub fn name(self) -> &'static str {
        FunnelOrder::ALL
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("ordered", |(_, name)| name)
    }

    pub fn from_name(name: &str) -> Option<FunnelOrder> {
        FunnelOrder::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(o, _)| *o)
    }
}

/// What a funnel asks, apart from when and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelDefinition {
    pub steps: Vec<FunnelStep>,
    pub window: FunnelWindow,
    #[serde(default)]
    pub order: FunnelOrder,
}

/// A saved funnel of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    /// `fn_` and 16 hex characters, unique across sites.
    pub id: String,
    pub site_id: SiteId,
    pub name: String,
    pub definition: FunnelDefinition,
    pub created_at_ms: i64,
}
