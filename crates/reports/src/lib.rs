//! Scheduled email reports rendered from a period's figures: the subject, a plain-text part,
//! an HTML part and the period's chart as a PNG the HTML shows inline. No I/O: the server
//! queries the figures and mails the result.

pub mod chart;
pub mod render;

pub use render::{render, Comparison, GoalRow, RenderedReport, ReportData, Stat, StatFormat};
