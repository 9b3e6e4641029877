//! A period's figures rendered as the report's subject, plain-text part and HTML part.
//!
//! Both parts show the same things in the same order: the key figures with their change
//! against the previous period, the chart (HTML only, as an inline image), top pages, top
//! sources, goals (only when the site has any), a link to the dashboard, and why the
//! recipient gets the email with the unsubscribe link. The HTML part is written for mail
//! clients rather than browsers: tables for layout, inline styles only, at most 600 pixels
//! wide, and every string that comes from a user or a URL escaped by [`escape`].

use std::fmt::Write;

use chrono::{Datelike, NaiveDate};
use heartbeat_model::ReportPeriod;

use crate::chart;

/// How a figure is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatFormat {
    /// A number of things, written whole with thousands separators: `1,234`.
    Count,
    /// A rate in percent (0 to 100): `41%`; its change is in percentage points.
    Percent,
    /// A length of time in seconds: `2m 5s`.
    Duration,
}

/// The same figure over the previous period, for the change shown next to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub previous: f64,
}

/// One key figure of the period.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    /// What it counts, as a heading: `Visitors`, `Bounce rate`.
    pub name: String,
    pub value: f64,
    pub format: StatFormat,
    /// `None` when there is nothing to compare with: then no change is shown.
    pub comparison: Option<Comparison>,
}

/// A goal of the site with its conversions over the period.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalRow {
    pub name: String,
    /// Unique visitors who completed the goal.
    pub visitors: u64,
    /// Those visitors as a percentage of all visitors.
    pub conversion_rate: f64,
}

/// What a report shows: a site's figures for one finished week or month.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportData {
    pub site_name: String,
    pub site_id: String,
    pub period: ReportPeriod,
    /// The period's first day, in the site's time zone.
    pub first_day: NaiveDate,
    /// The period's last day, inclusive.
    pub last_day: NaiveDate,
    /// Visitors, visits, pageviews, bounce rate and visit duration, in that order.
    pub stats: Vec<Stat>,
    /// Visitors on each day of the period, zeros included, in order.
    pub series: Vec<(NaiveDate, f64)>,
    /// Up to 10 pages with their visitors, most visited first.
    pub pages: Vec<(String, u64)>,
    /// Up to 10 sources with their visitors, most visitors first.
    pub sources: Vec<(String, u64)>,
    /// The site's goals; empty leaves the goals section out.
    pub goals: Vec<GoalRow>,
    /// The site's dashboard showing the period.
    pub dashboard_url: String,
    pub unsubscribe_url: String,
}

/// A report ready to mail as multipart/alternative, with the chart attached inline.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedReport {
    /// One line, without control characters.
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The chart the HTML shows, as a PNG.
    pub chart_png: Vec<u8>,
    /// The Content-ID to attach the chart under, without angle brackets: the HTML refers to
    /// it as `cid:<chart_cid>`.
    pub chart_cid: String,
}

/// The chart's size in the HTML, in CSS pixels: the content width less the card's padding.
const CHART_WIDTH_PX: u32 = 560;
const CHART_HEIGHT_PX: u32 = 160;
/// The PNG has this many pixels per CSS pixel, so that it stays sharp on dense screens.
const CHART_DENSITY: u32 = 2;
/// Longer names of pages and sources are cut in the plain-text part to keep its columns
/// readable; the HTML part shows them whole.
const MAX_TEXT_LABEL_CHARS: usize = 48;

/// Renders the report: subject, plain text, HTML and the chart.
pub fn render(data: &ReportData) -> RenderedReport {
    let chart_cid = chart_cid(data);
    let visitors: Vec<f64> = data.series.iter().map(|&(_, visitors)| visitors).collect();
    RenderedReport {
        subject: subject(data),
        text: text(data),
        html: html(data, &chart_cid),
        chart_png: chart::chart_png(
            &visitors,
            CHART_WIDTH_PX * CHART_DENSITY,
            CHART_HEIGHT_PX * CHART_DENSITY,
        ),
        chart_cid,
    }
}

/// "Weekly report for example.com: 23–29 Nov 2026". The site name's control characters
/// become spaces so that it cannot break the header.
fn subject(data: &ReportData) -> String {
    let site: String = data
        .site_name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "{} report for {}: {}",
        period_adjective(data.period),
        site,
        period_label(data)
    )
}

fn period_adjective(period: ReportPeriod) -> &'static str {
    match period {
        ReportPeriod::Weekly => "Weekly",
        ReportPeriod::Monthly => "Monthly",
    }
}

fn period_noun(period: ReportPeriod) -> &'static str {
    match period {
        ReportPeriod::Weekly => "week",
        ReportPeriod::Monthly => "month",
    }
}

/// The period as people name it: "November 2026" for a month, "23–29 Nov 2026" otherwise.
fn period_label(data: &ReportData) -> String {
    let (first, last) = (data.first_day, data.last_day);
    let one_month = (first.year(), first.month()) == (last.year(), last.month());
    if data.period == ReportPeriod::Monthly && one_month {
        return first.format("%B %Y").to_string();
    }
    let month = |day: NaiveDate| day.format("%b").to_string();
    if first == last {
        format!("{} {} {}", first.day(), month(first), first.year())
    } else if one_month {
        format!(
            "{}–{} {} {}",
            first.day(),
            last.day(),
            month(first),
            first.year()
        )
    } else if first.year() == last.year() {
        format!(
            "{} {} – {} {} {}",
            first.day(),
            month(first),
            last.day(),
            month(last),
            last.year()
        )
    } else {
        format!(
            "{} {} {} – {} {} {}",
            first.day(),
            month(first),
            first.year(),
            last.day(),
            month(last),
            last.year()
        )
    }
}

/// A Content-ID unique to the site and period, from characters any mail parser accepts.
fn chart_cid(data: &ReportData) -> String {
    let site: String = data
        .site_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("chart-{site}-{}@heartbeat", data.first_day.format("%Y%m%d"))
}

/// A figure as people read it: `1,234`, `41%`, `2m 5s`.
fn format_value(value: f64, format: StatFormat) -> String {
    match format {
        StatFormat::Count => format_count(value),
        StatFormat::Percent => format!("{}%", format_count(value)),
        StatFormat::Duration => format_duration(value),
    }
}

/// A whole number with thousands separators: `1,234,567`.
fn format_count(value: f64) -> String {
    let rounded = value.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if rounded < 0.0 {
        grouped.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Seconds as `45s`, `2m 5s` or `1h 2m`.
fn format_duration(seconds: f64) -> String {
    let total = if seconds.is_finite() {
        seconds.max(0.0).round() as u64
    } else {
        0
    };
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m {seconds}s"),
        _ => format!("{hours}h {minutes}m"),
    }
}

/// A conversion rate with one decimal where it matters: `2.5%`, `25%`.
fn format_rate(percent: f64) -> String {
    let tenths = (percent * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{}%", format_count(tenths))
    } else {
        format!("{tenths:.1}%")
    }
}

/// The change against the previous period: relative for counts and durations (`+12%`), in
/// percentage points for rates (`+3 pp`), and `-` when the previous figure was 0, which
/// leaves nothing to compare with (a rate of 0 means no visits to compute it from). `None`
/// without a comparison.
fn format_change(stat: &Stat) -> Option<String> {
    let previous = stat.comparison.as_ref()?.previous;
    if previous == 0.0 || !previous.is_finite() || !stat.value.is_finite() {
        return Some("-".to_owned());
    }
    let (change, unit) = match stat.format {
        StatFormat::Count | StatFormat::Duration => {
            ((stat.value - previous) / previous * 100.0, "%")
        }
        StatFormat::Percent => (stat.value - previous, " pp"),
    };
    let rounded = change.round();
    let sign = if rounded > 0.0 {
        "+"
    } else if rounded < 0.0 {
        "-"
    } else {
        ""
    };
    Some(format!("{sign}{}{unit}", format_count(rounded.abs())))
}

/// "You get this email because ..." under both parts.
fn why_you_get_this(data: &ReportData) -> String {
    format!(
        "You get this email because {} reports for {} are sent to this address.",
        period_adjective(data.period).to_lowercase(),
        data.site_name
    )
}

/// The plain-text part: the same sections as the HTML in aligned columns.
fn text(data: &ReportData) -> String {
    let noun = period_noun(data.period);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} report for {}",
        period_adjective(data.period),
        data.site_name
    );
    let _ = writeln!(out, "{}\n", period_label(data));

    let compared = data.stats.iter().any(|stat| stat.comparison.is_some());
    let previous = format!("vs previous {noun}");
    let this = format!("This {noun}");
    let mut header = vec!["", this.as_str()];
    if compared {
        header.push(&previous);
    }
    let rows: Vec<Vec<String>> = data
        .stats
        .iter()
        .map(|stat| {
            let mut row = vec![stat.name.clone(), format_value(stat.value, stat.format)];
            if compared {
                row.push(format_change(stat).unwrap_or_default());
            }
            row
        })
        .collect();
    text_table(&mut out, &header, &rows);

    let counted = |rows: &[(String, u64)]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|(name, visitors)| vec![name.clone(), format_count(*visitors as f64)])
            .collect()
    };
    text_table(&mut out, &["Top pages", "Visitors"], &counted(&data.pages));
    text_table(
        &mut out,
        &["Top sources", "Visitors"],
        &counted(&data.sources),
    );
    if !data.goals.is_empty() {
        let goals: Vec<Vec<String>> = data
            .goals
            .iter()
            .map(|goal| {
                vec![
                    goal.name.clone(),
                    format_count(goal.visitors as f64),
                    format_rate(goal.conversion_rate),
                ]
            })
            .collect();
        text_table(&mut out, &["Goals", "Visitors", "Conversion"], &goals);
    }

    let _ = writeln!(out, "Dashboard: {}\n", data.dashboard_url);
    let _ = writeln!(out, "{}", why_you_get_this(data));
    let _ = writeln!(out, "Unsubscribe: {}", data.unsubscribe_url);
    out
}

/// Appends `rows` under `header` and a rule as columns: the first left-aligned and cut at
/// [`MAX_TEXT_LABEL_CHARS`], the others right-aligned. A table without rows says so.
fn text_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut row = row.clone();
            if let Some(label) = row.first_mut() {
                *label = shorten(label, MAX_TEXT_LABEL_CHARS);
            }
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            let cells = rows.iter().filter_map(|row| row.get(column));
            cells
                .map(|cell| cell.chars().count())
                .chain([header[column].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut line = String::new();
        for (column, cell) in cells.enumerate() {
            let width = widths[column];
            if column == 0 {
                let _ = write!(line, "{cell:<width$}");
            } else {
                let _ = write!(line, "  {cell:>width$}");
            }
        }
        line.trim_end().to_owned()
    };
    let header_line = line(&mut header.iter().copied());
    let rule_width = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
    let _ = writeln!(out, "{header_line}\n{}", "-".repeat(rule_width));
    if rows.is_empty() {
        let _ = writeln!(out, "None in this period.");
    }
    for row in &rows {
        let _ = writeln!(out, "{}", line(&mut row.iter().map(String::as_str)));
    }
    out.push('\n');
}

/// `text` cut to `max_chars` characters, the last one an ellipsis when cut.
fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Escapes text for HTML content and for attribute values in either kind of quotes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

const FONT: &str =
    "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;";
const MUTED: &str = "color:#6b7280;";
/// A table used for layout only, which screen readers should not announce.
const LAYOUT_TABLE: &str =
    r#"role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0""#;

/// The HTML part: one 600-pixel card of tables with inline styles, and a footer.
fn html(data: &ReportData, chart_cid: &str) -> String {
    let site = escape(&data.site_name);
    let label = escape(&period_label(data));
    let noun = period_noun(data.period);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>{title}</title>
</head>
<body style="margin:0;padding:0;background-color:#f3f4f6;">
<div style="display:none;max-height:0;overflow:hidden;mso-hide:all;">{preview}</div>
<table {LAYOUT_TABLE} style="background-color:#f3f4f6;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;background-color:#ffffff;border-radius:8px;{FONT}color:#111827;">
<tr><td style="padding:24px 20px 8px 20px;">
<div style="font-size:13px;{MUTED}">{adjective} report</div>
<div style="font-size:22px;font-weight:bold;line-height:1.3;word-break:break-word;">{site}</div>
<div style="font-size:14px;{MUTED}">{label}</div>
</td></tr>
"#,
        title = escape(&subject(data)),
        preview = escape(&preview(data)),
        adjective = period_adjective(data.period),
    );

    html_stats(&mut out, data);
    let _ = write!(
        out,
        r#"<tr><td style="padding:8px 20px 16px 20px;">
<img src="cid:{cid}" alt="Visitors per day, {label}" width="{CHART_WIDTH_PX}" height="{CHART_HEIGHT_PX}" style="display:block;width:100%;max-width:{CHART_WIDTH_PX}px;height:auto;border:0;">
</td></tr>
"#,
        cid = escape(chart_cid),
    );

    let counted = |rows: &[(String, u64)]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|(name, visitors)| vec![escape(name), format_count(*visitors as f64)])
            .collect()
    };
    html_table(&mut out, &["Top pages", "Visitors"], &counted(&data.pages));
    html_table(
        &mut out,
        &["Top sources", "Visitors"],
        &counted(&data.sources),
    );
    if !data.goals.is_empty() {
        let goals: Vec<Vec<String>> = data
            .goals
            .iter()
            .map(|goal| {
                vec![
                    escape(&goal.name),
                    format_count(goal.visitors as f64),
                    format_rate(goal.conversion_rate),
                ]
            })
            .collect();
        html_table(&mut out, &["Goals", "Visitors", "Conversion"], &goals);
    }

    let _ = write!(
        out,
        r#"<tr><td align="center" style="padding:16px 20px 28px 20px;">
<a href="{dashboard}" style="display:inline-block;padding:10px 20px;background-color:#4f46e5;color:#ffffff;font-size:14px;font-weight:bold;text-decoration:none;border-radius:6px;">Open the dashboard for this {noun}</a>
</td></tr>
</table>
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;{FONT}">
<tr><td align="center" style="padding:16px 20px;font-size:12px;line-height:1.5;{MUTED}">
{why}<br>
<a href="{unsubscribe}" style="color:#6b7280;text-decoration:underline;">Unsubscribe</a>
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"#,
        dashboard = escape(&data.dashboard_url),
        why = escape(&why_you_get_this(data)),
        unsubscribe = escape(&data.unsubscribe_url),
    );
    out
}

/// The text mail clients show after the subject in the inbox: the key figures in a line,
/// "1,234 visitors (+12%) · ...".
fn preview(data: &ReportData) -> String {
    let figures: Vec<String> = data
        .stats
        .iter()
        .map(|stat| {
            let value = format_value(stat.value, stat.format);
            let name = stat.name.to_lowercase();
            match format_change(stat) {
                Some(change) => format!("{value} {name} ({change})"),
                None => format!("{value} {name}"),
            }
        })
        .collect();
    figures.join(" · ")
}

/// The key figures side by side, each with its change below it.
fn html_stats(out: &mut String, data: &ReportData) {
    if data.stats.is_empty() {
        return;
    }
    let width = 100 / data.stats.len();
    let _ = write!(
        out,
        "<tr><td style=\"padding:16px 20px 8px 20px;\">\n<table {LAYOUT_TABLE}>\n<tr>\n"
    );
    for stat in &data.stats {
        let change = format_change(stat).unwrap_or_default();
        let _ = writeln!(
            out,
            r#"<td valign="top" width="{width}%" style="padding:0 4px 8px 0;">
<div style="font-size:12px;{MUTED}">{name}</div>
<div style="font-size:20px;font-weight:bold;line-height:1.4;">{value}</div>
<div style="font-size:12px;{MUTED}">{change}</div>
</td>"#,
            name = escape(&stat.name),
            value = format_value(stat.value, stat.format),
        );
    }
    let _ = writeln!(out, "</tr>\n</table>");
    if data.stats.iter().any(|stat| stat.comparison.is_some()) {
        let _ = writeln!(
            out,
            r#"<div style="font-size:12px;{MUTED}">Changes are against the previous {noun}.</div>"#,
            noun = period_noun(data.period)
        );
    }
    let _ = writeln!(out, "</td></tr>");
}

/// A section as a data table: the first column names, the others right-aligned figures.
/// The cells must be escaped already. A table without rows says so.
fn html_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let cell = "padding:6px 0 6px 12px;border-top:1px solid #e5e7eb;";
    let _ = write!(
        out,
        "<tr><td style=\"padding:12px 20px;\">\n<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"border-collapse:collapse;font-size:14px;{FONT}\">\n<tr>"
    );
    for (column, heading) in header.iter().enumerate() {
        if column == 0 {
            let _ = write!(
                out,
                r#"<th align="left" style="padding:0 0 6px 0;font-size:15px;">{heading}</th>"#
            );
        } else {
            let _ = write!(
                out,
                r#"<th align="right" style="padding:0 0 6px 12px;font-size:12px;font-weight:normal;{MUTED}">{heading}</th>"#
            );
        }
    }
    out.push_str("</tr>\n");
    if rows.is_empty() {
        let _ = writeln!(
            out,
            r#"<tr><td colspan="{}" style="{cell}padding-left:0;{MUTED}">None in this period.</td></tr>"#,
            header.len()
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for (column, value) in row.iter().enumerate() {
            if column == 0 {
                let _ = write!(
                    out,
                    r#"<td style="{cell}padding-left:0;word-break:break-all;">{value}</td>"#
                );
            } else {
                let _ = write!(
                    out,
                    r#"<td align="right" style="{cell}white-space:nowrap;">{value}</td>"#
                );
            }
        }
        out.push_str("</tr>\n");
    }
    let _ = writeln!(out, "</table>\n</td></tr>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    fn stat(name: &str, value: f64, format: StatFormat, previous: Option<f64>) -> Stat {
        Stat {
            name: name.to_owned(),
            value,
            format,
            comparison: previous.map(|previous| Comparison { previous }),
        }
    }

    /// A week of example.com with every section filled.
    fn week() -> ReportData {
        let first_day = day("2026-11-23");
        ReportData {
            site_name: "example.com".to_owned(),
            site_id: "site_1".to_owned(),
            period: ReportPeriod::Weekly,
            first_day,
            last_day: day("2026-11-29"),
            stats: vec![
                stat("Visitors", 1234.0, StatFormat::Count, Some(1100.0)),
                stat("Visits", 1500.0, StatFormat::Count, Some(1600.0)),
                stat("Pageviews", 5678.0, StatFormat::Count, Some(0.0)),
                stat("Bounce rate", 43.0, StatFormat::Percent, Some(40.2)),
                stat("Visit duration", 125.0, StatFormat::Duration, Some(100.0)),
            ],
            series: (0..7)
                .map(|i| {
                    (
                        first_day + chrono::Days::new(i),
                        [120.0, 180.0, 240.0, 150.0, 90.0, 60.0, 394.0][i as usize],
                    )
                })
                .collect(),
            pages: vec![("/".to_owned(), 1000), ("/blog/hello".to_owned(), 234)],
            sources: vec![
                ("Google".to_owned(), 500),
                ("Direct / None".to_owned(), 321),
            ],
            goals: vec![GoalRow {
                name: "Signup".to_owned(),
                visitors: 31,
                conversion_rate: 2.512,
            }],
            dashboard_url:
                "https://stats.example.org/example.com?period=custom&from=2026-11-23&to=2026-11-29"
                    .to_owned(),
            unsubscribe_url: "https://stats.example.org/reports/unsubscribe?token=a&b=\"c\""
                .to_owned(),
        }
    }

    #[test]
    fn subjects_name_the_period() {
        let check = |period, first: &str, last: &str, expected: &str| {
            let data = ReportData {
                period,
                first_day: day(first),
                last_day: day(last),
                ..week()
            };
            assert_eq!(subject(&data), expected);
        };
        check(
            ReportPeriod::Weekly,
            "2026-11-23",
            "2026-11-29",
            "Weekly report for example.com: 23–29 Nov 2026",
        );
        check(
            ReportPeriod::Weekly,
            "2026-11-30",
            "2026-12-06",
            "Weekly report for example.com: 30 Nov – 6 Dec 2026",
        );
        check(
            ReportPeriod::Weekly,
            "2026-12-28",
            "2027-01-03",
            "Weekly report for example.com: 28 Dec 2026 – 3 Jan 2027",
        );
        check(
            ReportPeriod::Monthly,
            "2026-11-01",
            "2026-11-30",
            "Monthly report for example.com: November 2026",
        );
        check(
            ReportPeriod::Monthly,
            "2027-02-01",
            "2027-02-28",
            "Monthly report for example.com: February 2027",
        );
    }

    #[test]
    fn subjects_keep_to_one_line() {
        let data = ReportData {
            site_name: "evil\r\nBcc: someone@example.org".to_owned(),
            ..week()
        };
        assert!(!subject(&data).chars().any(char::is_control));
    }

    #[test]
    fn values_are_formatted_for_people() {
        let check = |value, format, expected: &str| {
            assert_eq!(
                format_value(value, format),
                expected,
                "{value} as {format:?}"
            );
        };
        check(0.0, StatFormat::Count, "0");
        check(999.0, StatFormat::Count, "999");
        check(1234.0, StatFormat::Count, "1,234");
        check(1234567.4, StatFormat::Count, "1,234,567");
        check(100000.0, StatFormat::Count, "100,000");
        check(41.4, StatFormat::Percent, "41%");
        check(0.0, StatFormat::Duration, "0s");
        check(45.2, StatFormat::Duration, "45s");
        check(125.0, StatFormat::Duration, "2m 5s");
        check(3725.0, StatFormat::Duration, "1h 2m");
    }

    #[test]
    fn conversion_rates_keep_a_decimal_where_it_matters() {
        assert_eq!(format_rate(2.512), "2.5%");
        assert_eq!(format_rate(25.0), "25%");
        assert_eq!(format_rate(0.04), "0%");
    }

    #[test]
    fn changes_are_against_the_previous_period() {
        let check = |value, format, previous, expected: Option<&str>| {
            let stat = stat("x", value, format, previous);
            assert_eq!(format_change(&stat).as_deref(), expected, "{stat:?}");
        };
        check(1234.0, StatFormat::Count, Some(1100.0), Some("+12%"));
        check(900.0, StatFormat::Count, Some(1000.0), Some("-10%"));
        check(1000.0, StatFormat::Count, Some(1001.0), Some("0%"));
        check(30000.0, StatFormat::Count, Some(1.0), Some("+2,999,900%"));
        check(5.0, StatFormat::Count, Some(0.0), Some("-"));
        check(0.0, StatFormat::Count, Some(0.0), Some("-"));
        check(43.0, StatFormat::Percent, Some(40.2), Some("+3 pp"));
        check(38.0, StatFormat::Percent, Some(40.0), Some("-2 pp"));
        check(125.0, StatFormat::Duration, Some(100.0), Some("+25%"));
        check(125.0, StatFormat::Duration, Some(0.0), Some("-"));
        check(125.0, StatFormat::Duration, None, None);
    }

    #[test]
    fn both_parts_show_the_figures_and_their_changes() {
        let report = render(&week());
        for part in [&report.text, &report.html] {
            for expected in [
                "1,234",
                "+12%",
                "5,678",
                "43%",
                "+3 pp",
                "2m 5s",
                "+25%",
                "/blog/hello",
                "Google",
                "2.5%",
            ] {
                assert!(part.contains(expected), "{expected} missing from {part}");
            }
        }
        assert!(report
            .html
            .contains("1,234 visitors (+12%) · 1,500 visits (-6%) · 5,678 pageviews (-)"));
    }

    #[test]
    fn text_columns_line_up() {
        let text = render(&week()).text;
        let stat_lines: Vec<&str> = text
            .lines()
            .skip(3)
            .take_while(|line| !line.is_empty())
            .collect();
        assert_eq!(
            stat_lines.len(),
            7,
            "header, rule and five figures in {text}"
        );
        assert!(
            stat_lines
                .iter()
                .all(|line| line.chars().count() == stat_lines[0].chars().count()),
            "{text}"
        );
        assert!(
            text.contains("Bounce rate           43%             +3 pp\n"),
            "{text}"
        );
    }

    #[test]
    fn long_names_are_cut_in_text_only() {
        let long = format!("/{}", "a".repeat(100));
        let data = ReportData {
            pages: vec![(long.clone(), 1)],
            ..week()
        };
        let report = render(&data);
        assert!(!report.text.contains(&long));
        assert!(report
            .text
            .contains(&format!("/{}…", "a".repeat(MAX_TEXT_LABEL_CHARS - 2))));
        assert!(report.html.contains(&long));
    }

    #[test]
    fn user_strings_are_escaped_in_html() {
        let data = ReportData {
            site_name: "Tom & Jerry's <b>".to_owned(),
            pages: vec![("/<script>alert(1)</script>".to_owned(), 3)],
            sources: vec![("\"><img src=x onerror=alert(1)>".to_owned(), 2)],
            goals: vec![GoalRow {
                name: "<i>Signup</i>".to_owned(),
                visitors: 1,
                conversion_rate: 1.0,
            }],
            dashboard_url: "https://x.example/\"onmouseover=\"alert(1)".to_owned(),
            ..week()
        };
        let html = render(&data).html;
        for expected in [
            "Tom &amp; Jerry&#39;s &lt;b&gt;",
            "/&lt;script&gt;alert(1)&lt;/script&gt;",
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;",
            "&lt;i&gt;Signup&lt;/i&gt;",
            "href=\"https://x.example/&quot;onmouseover=&quot;alert(1)\"",
        ] {
            assert!(html.contains(expected), "{expected} missing from {html}");
        }
        for raw in ["<script>", "<b>", "<i>", "<img src=x", "\"onmouseover"] {
            assert!(!html.contains(raw), "{raw} unescaped in {html}");
        }
        let text = render(&data).text;
        assert!(
            text.contains("/<script>alert(1)</script>"),
            "plain text shows names as they are"
        );
    }

    #[test]
    fn both_parts_can_unsubscribe_and_say_why() {
        let data = week();
        let report = render(&data);
        assert!(report
            .text
            .contains(&format!("Unsubscribe: {}\n", data.unsubscribe_url)));
        assert!(report.html.contains(
            "href=\"https://stats.example.org/reports/unsubscribe?token=a&amp;b=&quot;c&quot;\""
        ));
        let why =
            "You get this email because weekly reports for example.com are sent to this address.";
        assert!(report.text.contains(why));
        assert!(report.html.contains(why));
        assert!(report
            .text
            .contains(&format!("Dashboard: {}", data.dashboard_url)));
        assert!(report
            .html
            .contains(&format!("href=\"{}\"", escape(&data.dashboard_url))));
    }

    #[test]
    fn html_shows_the_chart_inline() {
        let report = render(&week());
        assert_eq!(report.chart_cid, "chart-site-1-20261123@heartbeat");
        assert!(report.html.contains(
            "<img src=\"cid:chart-site-1-20261123@heartbeat\" alt=\"Visitors per day, 23–29 Nov 2026\" width=\"560\" height=\"160\""
        ));
        assert!(report.chart_png.starts_with(b"\x89PNG\r\n\x1a\n"));
    }

    #[test]
    fn goals_section_only_with_goals() {
        let with_goals = render(&week());
        assert!(with_goals.text.contains("Goals"));
        assert!(with_goals.html.contains("Goals"));
        let without = render(&ReportData {
            goals: Vec::new(),
            ..week()
        });
        assert!(!without.text.contains("Goals"));
        assert!(!without.html.contains("Goals"));
        assert!(!without.html.contains("Conversion"));
    }

    #[test]
    fn empty_sections_say_so() {
        let report = render(&ReportData {
            pages: Vec::new(),
            sources: Vec::new(),
            ..week()
        });
        assert_eq!(report.text.matches("None in this period.").count(), 2);
        assert_eq!(report.html.matches("None in this period.").count(), 2);
    }

    #[test]
    fn without_comparisons_no_change_is_shown() {
        let mut data = week();
        for stat in &mut data.stats {
            stat.comparison = None;
        }
        let report = render(&data);
        assert!(!report.text.contains("vs previous"));
        assert!(!report.html.contains("Changes are against"));
        assert!(!report.text.contains("+12%"));
    }
}
