//! The response: a [`QueryResult`] written as Plausible's Stats API v2 body (`results`,
//! `meta` and the `query` echoed back with its resolved date range).

use serde_json::{json, Value};

use crate::engine::QueryResult;
use crate::model::Query;

impl QueryResult {
    /// The Plausible v2 response body.
    pub fn to_json(&self, query: &Query, request: &Value) -> Value {
        let start =
            chrono::DateTime::from_timestamp_millis(query.range.start_ms).unwrap_or_default();
        let end =
            chrono::DateTime::from_timestamp_millis(query.range.end_ms - 1).unwrap_or_default();
        let mut echoed = request.clone();
        if let Value::Object(map) = &mut echoed {
            map.insert(
                "date_range".into(),
                json!([
                    start.with_timezone(&query.timezone).to_rfc3339(),
                    end.with_timezone(&query.timezone).to_rfc3339()
                ]),
            );
        }
        let mut meta = serde_json::Map::new();
        if query.include_total_rows {
            meta.insert("total_rows".into(), json!(self.total_rows));
        }
        if let Some(labels) = &self.time_labels {
            meta.insert("time_labels".into(), json!(labels));
        }
        if let Some(range) = query.comparison {
            let local = |ms: i64| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .unwrap_or_default()
                    .with_timezone(&query.timezone)
                    .to_rfc3339()
            };
            meta.insert(
                "comparison_date_range".into(),
                json!([local(range.start_ms), local(range.end_ms - 1)]),
            );
        }
        if let Some(imports) = self.imports {
            meta.insert("imports_included".into(), json!(imports.included));
            if let Some(reason) = imports.skip_reason {
                meta.insert("imports_skip_reason".into(), json!(reason.code()));
                if let Some(warning) = reason.warning() {
                    meta.insert("imports_warning".into(), json!(warning));
                }
            }
        }
        if let Some((code, warning)) = query.revenue.warning() {
            let warnings: serde_json::Map<String, Value> = query
                .metrics
                .iter()
                .filter(|m| m.is_revenue())
                .map(|m| {
                    (
                        m.name().to_owned(),
                        json!({"code": code, "warning": warning}),
                    )
                })
                .collect();
            meta.insert("metric_warnings".into(), Value::Object(warnings));
        }
        let labels: Vec<Option<&str>> = query.dimensions.iter().map(|d| d.blank_label()).collect();
        let named = |dimensions: &[String]| -> Vec<String> {
            dimensions
                .iter()
                .zip(&labels)
                .map(|(value, label)| match label {
                    Some(label) if value.is_empty() => (*label).to_owned(),
                    _ => value.clone(),
                })
                .collect()
        };
        let mut results = self.results.clone();
        for row in &mut results {
            row.dimensions = named(&row.dimensions);
            if let Some(comparison) = &mut row.comparison {
                comparison.dimensions = named(&comparison.dimensions);
            }
        }
        json!({ "results": results, "meta": meta, "query": echoed })
    }
}
