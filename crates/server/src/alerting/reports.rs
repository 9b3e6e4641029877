//! Scheduled reports: once a week (Monday to Sunday) or a month has ended in the site's time
//! zone, each recipient gets one email of it (its figures against the period before, the
//! visitors per day as a chart, top pages, sources and goals), queued in the outbox under an
//! id made of the recipient and the period, so a restart or a second server pass never sends
//! it twice. Recipients added after a period ended get their first report for the next one.

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use heartbeat_model::{DeliveryTarget, ReportPeriod, ReportSubscription, Site};
use heartbeat_query::{execute, parse_query, QueryResult};
use heartbeat_reports::{render, Comparison, GoalRow, ReportData, Stat, StatFormat};
use serde_json::{json, Value};

use super::directory::new_id;
use super::email::{EmailPayload, InlineImage};
use super::outbox::delivery_id;
use crate::http::error::ApiError;
use crate::http::state::App;
use crate::telemetry::ALERT_EVALUATION_ERRORS;

/// The site's time zone (UTC for a name it does not know).
fn zone(site: &Site) -> chrono_tz::Tz {
    site.timezone.parse().unwrap_or(chrono_tz::UTC)
}

/// The last complete period before `now_ms` in `tz`: its first and last day.
pub fn last_period(period: ReportPeriod, tz: chrono_tz::Tz, now_ms: i64) -> (NaiveDate, NaiveDate) {
    let today = tz
        .timestamp_millis_opt(now_ms)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default();
    match period {
        ReportPeriod::Weekly => {
            let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
            (monday - Duration::days(7), monday - Duration::days(1))
        }
        ReportPeriod::Monthly => {
            let first = today.with_day(1).unwrap_or(today);
            let last = first - Duration::days(1);
            (last.with_day(1).unwrap_or(last), last)
        }
    }
}

/// The period before the one from `first` to `last`.
fn previous(period: ReportPeriod, first: NaiveDate) -> (NaiveDate, NaiveDate) {
    match period {
        ReportPeriod::Weekly => (first - Duration::days(7), first - Duration::days(1)),
        ReportPeriod::Monthly => {
            let last = first - Duration::days(1);
            (last.with_day(1).unwrap_or(last), last)
        }
    }
}

/// When `day` starts in `tz`, in UTC milliseconds.
fn day_start_ms(tz: chrono_tz::Tz, day: NaiveDate) -> i64 {
    tz.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or(0, |t| t.timestamp_millis())
}

/// Sends every report whose period has ended and that its recipient has not had.
pub async fn send_due(app: &App, now_ms: i64) {
    for subscription in app.alerting.directory.all_reports() {
        let Some(site) = app.registry.site(&subscription.site_id) else {
            continue;
        };
        let (first, last) = last_period(subscription.period, zone(&site), now_ms);
        let ended_ms = day_start_ms(zone(&site), last + Duration::days(1));
        let key = first.to_string();
        if subscription.created_at_ms >= ended_ms
            || subscription.last_sent_period.as_deref() == Some(key.as_str())
        {
            continue;
        }
        let id = delivery_id(&[&subscription.id, &key, "report"]);
        match send(app, &site, &subscription, first, last, id, now_ms).await {
            Ok(_) => {
                let mut sent = subscription;
                sent.last_sent_period = Some(key);
                if let Err(err) = app.alerting.directory.put_report(sent).await {
                    tracing::warn!(error = %err, "report sent but not marked");
                }
            }
            Err(err) => {
                metrics::counter!(ALERT_EVALUATION_ERRORS).increment(1);
                tracing::warn!(report = %subscription.id, error = ?err, "report not made; trying again next time");
            }
        }
    }
}

/// Sends the last complete period's report to `subscription` now (a new delivery each
/// time), without changing its schedule. Returns the delivery's id.
pub async fn send_now(
    app: &App,
    site: &Site,
    subscription: &ReportSubscription,
    now_ms: i64,
) -> Result<String, ApiError> {
    let (first, last) = last_period(subscription.period, zone(site), now_ms);
    let id = delivery_id(&[&subscription.id, &first.to_string(), &new_id("now_")]);
    send(app, site, subscription, first, last, id, now_ms).await
}

/// Makes the report of `first..=last` and queues it under `id`.
async fn send(
    app: &App,
    site: &Site,
    subscription: &ReportSubscription,
    first: NaiveDate,
    last: NaiveDate,
    id: String,
    now_ms: i64,
) -> Result<String, ApiError> {
    let work = {
        let (app, site, subscription) = (app.clone(), site.clone(), subscription.clone());
        async move { figures(&app, &site, &subscription, first, last, now_ms).await }
    };
    let data = app.queries.compute("reports", work).await?;
    let rendered = render(&data);
    let payload = EmailPayload {
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        images: vec![InlineImage {
            cid: rendered.chart_cid,
            content_type: "image/png".into(),
            base64: base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &rendered.chart_png,
            ),
        }],
        unsubscribe_url: Some(data.unsubscribe_url.clone()),
    };
    let payload = serde_json::to_string(&payload).map_err(|_| ApiError::internal())?;
    app.alerting
        .outbox
        .enqueue(
            id.clone(),
            &site.id,
            DeliveryTarget::Email {
                to: subscription.email.clone(),
            },
            "report",
            payload,
            now_ms,
        )
        .await?;
    Ok(id)
}

/// Runs one v2 query of `body` (without `site_id` and `date_range`) over the days.
async fn run(
    app: &App,
    site: &Site,
    mut body: Value,
    first: NaiveDate,
    last: NaiveDate,
    now_ms: i64,
) -> Result<QueryResult, ApiError> {
    body["site_id"] = json!(site.id);
    body["date_range"] = json!([first.to_string(), last.to_string()]);
    let query = parse_query(
        &body,
        site,
        &app.goals.of_site(&site.id),
        now_ms,
        now_ms,
        &app.queries.settings.bounds(),
    )?;
    Ok(execute(&query, app.reads.as_ref()).await?)
}

fn number(value: Option<&Value>) -> f64 {
    value.and_then(Value::as_f64).unwrap_or(0.0)
}

/// Rows of a breakdown as (value, visitors).
fn top(result: &QueryResult) -> Vec<(String, u64)> {
    result
        .results
        .iter()
        .map(|row| {
            (
                row.dimensions.first().cloned().unwrap_or_default(),
                number(row.metrics.first()) as u64,
            )
        })
        .collect()
}

/// The period's figures as the report shows them.
async fn figures(
    app: &App,
    site: &Site,
    subscription: &ReportSubscription,
    first: NaiveDate,
    last: NaiveDate,
    now_ms: i64,
) -> Result<ReportData, ApiError> {
    let totals =
        json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]});
    let (before_first, before_last) = previous(subscription.period, first);
    let current = run(app, site, totals.clone(), first, last, now_ms).await?;
    let before = run(app, site, totals, before_first, before_last, now_ms).await?;
    let names = [
        ("Visitors", StatFormat::Count),
        ("Visits", StatFormat::Count),
        ("Pageviews", StatFormat::Count),
        ("Bounce rate", StatFormat::Percent),
        ("Visit duration", StatFormat::Duration),
    ];
    let now_row = current
        .results
        .first()
        .map(|r| r.metrics.clone())
        .unwrap_or_default();
    let before_row = before
        .results
        .first()
        .map(|r| r.metrics.clone())
        .unwrap_or_default();
    let stats = names
        .iter()
        .enumerate()
        .map(|(i, (name, format))| Stat {
            name: (*name).to_owned(),
            value: number(now_row.get(i)),
            format: *format,
            comparison: Some(Comparison {
                previous: number(before_row.get(i)),
            }),
        })
        .collect();
    let daily = run(
        app,
        site,
        json!({"metrics": ["visitors"], "dimensions": ["time:day"]}),
        first,
        last,
        now_ms,
    )
    .await?;
    let by_day: std::collections::HashMap<String, f64> = daily
        .results
        .iter()
        .map(|row| {
            (
                row.dimensions.first().cloned().unwrap_or_default(),
                number(row.metrics.first()),
            )
        })
        .collect();
    let series = first
        .iter_days()
        .take_while(|day| *day <= last)
        .map(|day| (day, by_day.get(&day.to_string()).copied().unwrap_or(0.0)))
        .collect();
    let breakdown = |dimension: &str| json!({"metrics": ["visitors"], "dimensions": [dimension], "order_by": [["visitors", "desc"]], "pagination": {"limit": 10}});
    let pages = top(&run(app, site, breakdown("event:page"), first, last, now_ms).await?);
    let sources = top(&run(app, site, breakdown("visit:source"), first, last, now_ms).await?);
    let goals = if app.goals.of_site(&site.id).is_empty() {
        Vec::new()
    } else {
        let body = json!({"metrics": ["visitors", "conversion_rate"], "dimensions": ["event:goal"], "order_by": [["visitors", "desc"]], "pagination": {"limit": 10}});
        run(app, site, body, first, last, now_ms)
            .await?
            .results
            .iter()
            .map(|row| GoalRow {
                name: row.dimensions.first().cloned().unwrap_or_default(),
                visitors: number(row.metrics.first()) as u64,
                conversion_rate: number(row.metrics.get(1)),
            })
            .collect()
    };
    let public = &app.alerting.public_url;
    Ok(ReportData {
        site_name: site.name.clone(),
        site_id: site.id.to_string(),
        period: subscription.period,
        first_day: first,
        last_day: last,
        stats,
        series,
        pages,
        sources,
        goals,
        dashboard_url: app
            .alerting
            .dashboard_url(&site.id, &format!("period=custom&from={first}&to={last}")),
        unsubscribe_url: format!(
            "{public}/api/reports/unsubscribe?token={}",
            subscription.unsubscribe_token
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn periods_end_in_the_site_time_zone() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        // Thursday 3 December 2026.
        let now = at("2026-12-03T22:00:00Z");
        assert_eq!(
            last_period(ReportPeriod::Weekly, chrono_tz::UTC, now),
            (day("2026-11-23"), day("2026-11-29"))
        );
        assert_eq!(
            last_period(ReportPeriod::Monthly, chrono_tz::UTC, now),
            (day("2026-11-01"), day("2026-11-30"))
        );
        // Monday 00:30 in Tokyo is still Sunday in UTC.
        let monday_tokyo = at("2026-11-29T15:30:00Z");
        assert_eq!(
            last_period(ReportPeriod::Weekly, chrono_tz::Asia::Tokyo, monday_tokyo).1,
            day("2026-11-29")
        );
        assert_eq!(
            last_period(ReportPeriod::Weekly, chrono_tz::UTC, monday_tokyo).1,
            day("2026-11-22")
        );
        assert_eq!(
            previous(ReportPeriod::Monthly, day("2026-03-01")),
            (day("2026-02-01"), day("2026-02-28"))
        );
    }
}
