//! Heartbeat's domain types: events, visits, sites and keys. Types only, no I/O.
//!
//! Invariant: this crate depends on no other crate of ours, so every layer can share these
//! types without pulling in HTTP, storage or queue code.

mod account;
mod alert;
mod batch;
mod event;
mod funnel;
mod goal;
mod imported;
mod site;

pub use account::{Membership, NamedShareLink, Org, OrgId, Role, ShareLink, User, UserSession};
pub use alert::{
    AlertCondition, AlertEvent, AlertRule, Annotation, AnnotationKind, AnomalyDirection, Delivery,
    DeliveryStatus, DeliveryTarget, ReportPeriod, ReportSubscription, Webhook, WebhookFormat,
    MAX_ALERT_WINDOW_MINUTES, MAX_BASELINE_WEEKS, MIN_ALERT_WINDOW_MINUTES, MIN_NO_EVENTS_MINUTES,
};
pub use batch::{
    decode_batch, decode_record, encode_batch, encode_site_deletion, BatchCodecError, QueueRecord,
};
pub use event::{
    partition_of, Event, Revenue, Session, VisitAttributes, ENGAGEMENT, PAGEVIEW, VISIT_TIMEOUT_MS,
};
pub use funnel::{
    Funnel, FunnelDefinition, FunnelOrder, FunnelStep, FunnelWindow, StepTarget, MAX_FUNNEL_STEPS,
    MAX_FUNNEL_WINDOW_S, MIN_FUNNEL_STEPS,
};
pub use goal::{Goal, GoalKind};
pub use imported::{CountColumn, ImportedRow, ImportedTable, SiteImport};
pub use site::{ApiKey, ApiKeyScope, Site, SiteId, SiteRules};
