//! The query model: metrics, dimensions, filters, a resolved date range, order and paging.

use heartbeat_model::{Goal, SiteId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Visitors,
    Visits,
    Pageviews,
    Events,
    ViewsPerVisit,
    BounceRate,
    VisitDuration,
    /// Mean seconds from a page view to the visitor's next page view in the same visit.
    TimeOnPage,
    /// A row's visitors as a share of all visitors matching the filters, %.
    Percentage,
    /// By exit page: the visits that left from the page over its page views, %.
    ExitRate,
    /// How far down the page visitors scrolled, %: each visit's deepest scroll (of its
    /// engagement events) averaged over the visits that reported one, as Plausible's.
    ScrollDepth,
    /// A row's converted visitors over all visitors of the range without the goal and
    /// property filters (and without dimensions), %.
    ConversionRate,
    /// A row's converted visitors over the visitors of the same row without the goal and
    /// property filters, %.
    GroupConversionRate,
    /// The revenue of the row's revenue-goal events, in the goals' one currency.
    TotalRevenue,
    /// The mean revenue of the row's revenue-goal events that carry one.
    AverageRevenue,
}

impl Metric {
    pub const ALL: [Metric; 15] = [
        Metric::Visitors,
        Metric::Visits,
        Metric::Pageviews,
        Metric::Events,
        Metric::ViewsPerVisit,
        Metric::BounceRate,
        Metric::VisitDuration,
        Metric::TimeOnPage,
        Metric::Percentage,
        Metric::ExitRate,
        Metric::ScrollDepth,
        Metric::ConversionRate,
        Metric::GroupConversionRate,
        Metric::TotalRevenue,
        Metric::AverageRevenue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Visitors => "visitors",
            Metric::Visits => "visits",
            Metric::Pageviews => "pageviews",
            Metric::Events => "events",
            Metric::ViewsPerVisit => "views_per_visit",
            Metric::BounceRate => "bounce_rate",
            Metric::VisitDuration => "visit_duration",
            Metric::TimeOnPage => "time_on_page",
            Metric::Percentage => "percentage",
            Metric::ExitRate => "exit_rate",
            Metric::ScrollDepth => "scroll_depth",
            Metric::ConversionRate => "conversion_rate",
            Metric::GroupConversionRate => "group_conversion_rate",
            Metric::TotalRevenue => "total_revenue",
            Metric::AverageRevenue => "average_revenue",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Metrics that only visits (sessions) can answer.
    pub fn is_visit_metric(self) -> bool {
        matches!(
            self,
            Metric::BounceRate | Metric::VisitDuration | Metric::ViewsPerVisit
        )
    }

    pub fn is_revenue(self) -> bool {
        matches!(self, Metric::TotalRevenue | Metric::AverageRevenue)
    }

    pub fn is_conversion_rate(self) -> bool {
        matches!(self, Metric::ConversionRate | Metric::GroupConversionRate)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeGrain {
    Hour,
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// `event:page`
    Page,
    /// `event:name`
    Name,
    /// `event:hostname`
    Hostname,
    /// A visit attribute copied onto events: `visit:source`, `visit:country`, ...
    Visit(VisitColumn),
    /// `visit:entry_page`: only visits know it.
    EntryPage,
    /// `visit:exit_page`: only visits know it.
    ExitPage,
    Time(TimeGrain),
    /// `event:props:<key>`: a custom property of events; `(none)` for events without it.
    Prop(String),
    /// `event:goal`: the site's goals an event completes, by display name (an event may
    /// complete several; events completing none are in no row).
    Goal,
}

/// Visit attributes that events carry too (from their visit's first event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisitColumn {
    Source,
    Referrer,
    Channel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmContent,
    UtmTerm,
    Country,
    Region,
    City,
    Browser,
    BrowserVersion,
    Os,
    OsVersion,
    Device,
}

impl VisitColumn {
    pub const ALL: [(VisitColumn, &'static str, &'static str); 16] = [
        (VisitColumn::Source, "visit:source", "referrer_source"),
        (VisitColumn::Referrer, "visit:referrer", "referrer"),
        (VisitColumn::Channel, "visit:channel", "channel"),
        (VisitColumn::UtmSource, "visit:utm_source", "utm_source"),
        (VisitColumn::UtmMedium, "visit:utm_medium", "utm_medium"),
        (
            VisitColumn::UtmCampaign,
            "visit:utm_campaign",
            "utm_campaign",
        ),
        (VisitColumn::UtmContent, "visit:utm_content", "utm_content"),
        (VisitColumn::UtmTerm, "visit:utm_term", "utm_term"),
        (VisitColumn::Country, "visit:country", "country"),
        (VisitColumn::Region, "visit:region", "region"),
        (VisitColumn::City, "visit:city", "city"),
        (VisitColumn::Browser, "visit:browser", "browser"),
        (
            VisitColumn::BrowserVersion,
            "visit:browser_version",
            "browser_version",
        ),
        (VisitColumn::Os, "visit:os", "os"),
        (VisitColumn::OsVersion, "visit:os_version", "os_version"),
        (VisitColumn::Device, "visit:device", "device"),
    ];

    pub fn column(self) -> &'static str {
        VisitColumn::ALL
            .iter()
            .find(|(c, _, _)| *c == self)
            .map(|(_, _, col)| *col)
            .unwrap_or("")
    }
}

impl Dimension {
    pub fn name(&self) -> String {
        match self {
            Dimension::Page => "event:page".into(),
            Dimension::Name => "event:name".into(),
            Dimension::Hostname => "event:hostname".into(),
            Dimension::Visit(col) => VisitColumn::ALL
                .iter()
                .find(|(c, _, _)| c == col)
                .map(|(_, name, _)| (*name).to_owned())
                .unwrap_or_default(),
            Dimension::EntryPage => "visit:entry_page".into(),
            Dimension::ExitPage => "visit:exit_page".into(),
            Dimension::Time(TimeGrain::Hour) => "time:hour".into(),
            Dimension::Time(TimeGrain::Day) => "time:day".into(),
            Dimension::Time(TimeGrain::Week) => "time:week".into(),
            Dimension::Time(TimeGrain::Month) => "time:month".into(),
            Dimension::Prop(key) => format!("event:props:{key}"),
            Dimension::Goal => "event:goal".into(),
        }
    }

    /// Dimensions that exist only on events (a visit has many pages and names).
    pub fn is_event_only(&self) -> bool {
        matches!(
            self,
            Dimension::Page
                | Dimension::Name
                | Dimension::Hostname
                | Dimension::Prop(_)
                | Dimension::Goal
        )
    }

    /// How Plausible names this dimension's empty value, in answers and in filters:
    /// `Direct / None` for a visit without a source or referrer, `(not set)` for missing UTM
    /// tags and an unrecognised browser, OS or device. `None` where the value is shown as
    /// stored.
    pub fn blank_label(&self) -> Option<&'static str> {
        use VisitColumn::*;
        match self {
            Dimension::Visit(Source | Referrer) => Some("Direct / None"),
            Dimension::Visit(
                UtmSource | UtmMedium | UtmCampaign | UtmContent | UtmTerm | Browser
                | BrowserVersion | Os | OsVersion | Device,
            ) => Some("(not set)"),
            _ => None,
        }
    }

    /// Dimensions that exist only on visits.
    pub fn is_visit_only(&self) -> bool {
        matches!(self, Dimension::EntryPage | Dimension::ExitPage)
    }
}

/// How a condition compares a dimension's value with the condition's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Is,
    IsNot,
    Contains,
    ContainsNot,
    /// Regular expressions (RE2 syntax).
    Matches,
    MatchesNot,
}

impl Operator {
    pub const ALL: [(Operator, &'static str); 6] = [
        (Operator::Is, "is"),
        (Operator::IsNot, "is_not"),
        (Operator::Contains, "contains"),
        (Operator::ContainsNot, "contains_not"),
        (Operator::Matches, "matches"),
        (Operator::MatchesNot, "matches_not"),
    ];

    pub fn from_name(name: &str) -> Option<Operator> {
        Operator::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(op, _)| *op)
    }

    /// The operator without its negation, and whether it was negated.
    pub fn positive(self) -> (Operator, bool) {
        match self {
            Operator::IsNot => (Operator::Is, true),
            Operator::ContainsNot => (Operator::Contains, true),
            Operator::MatchesNot => (Operator::Matches, true),
            op => (op, false),
        }
    }
}

/// One comparison of a filter: `["contains", "event:page", ["/blog"], {"case_sensitive": false}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: Operator,
    pub dimension: Dimension,
    pub values: Vec<String>,
    /// False for `{"case_sensitive": false}`: values compare ignoring case.
    pub case_sensitive: bool,
}

/// A filter tree, as Plausible's v2 `filters`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Condition(Condition),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `has_done` (true) and `has_not_done` (false): visits with (without) an event of the
    /// range that matches the inner filter, which reads event dimensions only.
    HasDone(bool, Box<Filter>),
}

impl Filter {
    /// Whether the filter gives every event of a visit the same answer: it reads only visit
    /// attributes (which events carry from their visit's first event) or asks what the visit
    /// did (`has_done`).
    pub fn is_per_visit(&self) -> bool {
        match self {
            Filter::Condition(c) => matches!(
                c.dimension,
                Dimension::Visit(_) | Dimension::EntryPage | Dimension::ExitPage
            ),
            Filter::HasDone(..) => true,
            Filter::And(all) | Filter::Or(all) => all.iter().all(Filter::is_per_visit),
            Filter::Not(inner) => inner.is_per_visit(),
        }
    }

    /// Every dimension the filter reads.
    pub fn dimensions(&self) -> Vec<&Dimension> {
        match self {
            Filter::Condition(c) => vec![&c.dimension],
            Filter::And(all) | Filter::Or(all) => all.iter().flat_map(Filter::dimensions).collect(),
            Filter::Not(inner) | Filter::HasDone(_, inner) => inner.dimensions(),
        }
    }
}

/// A resolved range: UTC milliseconds, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    Metric(Metric, bool),
    Dimension(usize, bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub site_id: SiteId,
    pub timezone: chrono_tz::Tz,
    pub metrics: Vec<Metric>,
    pub range: DateRange,
    pub dimensions: Vec<Dimension>,
    pub filters: Vec<Filter>,
    /// `(item, descending)`; empty means the default order.
    pub order_by: Vec<Order>,
    pub limit: usize,
    pub offset: usize,
    pub include_total_rows: bool,
    /// `include.time_labels`: every time bucket of the range in `meta.time_labels`.
    pub include_time_labels: bool,
    /// `include.comparisons`: the range each row is compared with.
    pub comparison: Option<DateRange>,
    /// `include.imports`: add the site's imported statistics where one imported table
    /// answers the query (`compile/imported.rs`).
    pub include_imports: bool,
    /// The site's goals, oldest first, when the query reads `event:goal` (a filter names
    /// them by display name; a breakdown has a row per goal the top-level filters keep).
    pub goals: Vec<Goal>,
    /// How revenue metrics are answered, when asked for.
    pub revenue: Revenue,
}

impl Query {
    /// A query of nothing but its site, range and `filters`: what another builder (funnels,
    /// retention, paths) hands the aggregate query's filter SQL so that its filters read
    /// events exactly as the v2 query's do. It reads no goals.
    pub fn filter_scope(
        site_id: SiteId,
        timezone: chrono_tz::Tz,
        range: DateRange,
        filters: Vec<Filter>,
    ) -> Query {
        Query {
            site_id,
            timezone,
            metrics: Vec::new(),
            range,
            dimensions: Vec::new(),
            filters,
            order_by: Vec::new(),
            limit: 0,
            offset: 0,
            include_total_rows: false,
            include_time_labels: false,
            comparison: None,
            include_imports: false,
            goals: Vec::new(),
            revenue: Revenue::NotAsked,
        }
    }
}

/// The currency revenue metrics are summed in, decided from the goals a query reads (as
/// Plausible's `Revenue.preload`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Revenue {
    /// No revenue metric asked for.
    #[default]
    NotAsked,
    /// Every revenue goal of the query has this currency.
    Single(String),
    /// Broken down by goal: each revenue goal's row in its own currency.
    PerGoal,
    /// Revenue metrics are null: no revenue goal matches.
    NoGoalsMatching,
    /// Revenue metrics are null: the goals have several currencies and no breakdown by goal.
    NoSingleCurrency,
}

impl Revenue {
    /// Plausible's `meta.metric_warnings` code and text, when revenue metrics are null.
    pub fn warning(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Revenue::NoGoalsMatching => Some((
                "no_revenue_goals_matching",
                "Revenue metrics are null as there are no matching revenue goals.",
            )),
            Revenue::NoSingleCurrency => Some((
                "no_single_revenue_currency",
                "Revenue metrics are null as there are multiple currencies for the selected event:goals.",
            )),
            _ => None,
        }
    }
}

/// A funnel over a site's events.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelQuery {
    pub site_id: SiteId,
    pub timezone: chrono_tz::Tz,
    /// UTC milliseconds, start inclusive, end exclusive.
    pub range: DateRange,
    /// v2 filters: the event that starts an attempt must pass them.
    pub filters: Vec<Filter>,
    pub definition: heartbeat_model::FunnelDefinition,
    /// One funnel per value of this visit dimension.
    pub breakdown: Option<VisitColumn>,
}
