//! Plausible's own Stats API test cases (v2, and v1 in the `v1_*` files), run as data
//! against a real server: the cases and their format are in `plausible/` (see its README),
//! the cases that do not pass yet with their reasons in `plausible/gaps.json`.
//!
//! `PLAUSIBLE_CASES=<text>` runs only the cases whose name contains the text and prints each
//! failure in full.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{Duration, NaiveDateTime, Utc};
use common::*;
use heartbeat_ingest::enrich::referrer::channel_of_source;
use serde_json::{json, Map, Value};

/// Plausible's session timeout: a user's event within 30 minutes of their previous one
/// continues the visit.
const SESSION_TIMEOUT_MS: i64 = 30 * 60 * 1000;

fn cases_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plausible")
}

/// Every case of every case file, in file order.
fn load_cases() -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "json")
                && path.file_name().is_some_and(|n| n != "gaps.json")
        })
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let cases: Vec<Value> =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            cases
        })
        .collect()
}

fn load_gaps() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(cases_dir().join("gaps.json")).unwrap();
    serde_json::from_str(&text).expect("gaps.json: {name: reason}")
}

/// `2021-01-01 00:00:00` (UTC) or `now` (also when absent), `now-5m`, `now-2h`, `now-3d`.
fn timestamp_ms(text: &str, now: chrono::DateTime<Utc>) -> Result<i64, String> {
    if text.is_empty() {
        return Ok(now.timestamp_millis());
    }
    if let Some(rest) = text.strip_prefix("now") {
        let ago = match rest.strip_prefix('-') {
            None if rest.is_empty() => Duration::zero(),
            Some(amount) => {
                let (number, unit) = amount.split_at(amount.len() - 1);
                let number: i64 = number.parse().map_err(|_| format!("bad time {text:?}"))?;
                match unit {
                    "s" => Duration::seconds(number),
                    "m" => Duration::minutes(number),
                    "h" => Duration::hours(number),
                    "d" => Duration::days(number),
                    _ => return Err(format!("bad time {text:?}")),
                }
            }
            None => return Err(format!("bad time {text:?}")),
        };
        return Ok((now - ago).timestamp_millis());
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc().timestamp_millis())
        .map_err(|_| format!("bad time {text:?}"))
}

fn field<'a>(event: &'a Value, name: &str) -> &'a str {
    event.get(name).and_then(Value::as_str).unwrap_or("")
}

/// The factory's user id (a number or a string) as a visitor id.
fn visitor_id(event: &Value, index: usize) -> u64 {
    match event.get("user_id") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(n.as_i64().unwrap_or(0) as u64),
        Some(Value::String(s)) => s.bytes().fold(1_469_598_103_934_665_603u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
        }),
        _ => 1_000_000_000_000 + index as u64,
    }
}

/// The case's events as `/api/import` NDJSON lines: visits made as Plausible's
/// `populate_stats` makes them, with the visit's attributes those of its first event.
fn import_lines(events: &[Value], now: chrono::DateTime<Utc>) -> Result<String, String> {
    let mut built = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let ts = timestamp_ms(field(event, "timestamp"), now)?;
        built.push((visitor_id(event, index), ts, index));
    }
    let mut order: Vec<usize> = (0..built.len()).collect();
    order.sort_by_key(|&i| (built[i].0, built[i].1, i));
    let mut session_of = vec![(0u64, 0usize); built.len()];
    let mut last: Option<(u64, i64, u64, usize)> = None;
    let mut next_session = 1u64;
    for &i in &order {
        let (visitor, ts, _) = built[i];
        let continues = last.filter(|&(v, t, _, _)| v == visitor && ts - t < SESSION_TIMEOUT_MS);
        let (session, first) = match continues {
            Some((_, _, session, first)) => (session, first),
            None => {
                next_session += 1;
                (next_session, i)
            }
        };
        session_of[i] = (session, first);
        last = Some((visitor, ts, session, first));
    }
    let mut lines = String::new();
    for (i, event) in events.iter().enumerate() {
        let (session, first) = session_of[i];
        let visit = &events[first];
        let keys = event.get("meta.key").and_then(Value::as_array);
        let values = event.get("meta.value").and_then(Value::as_array);
        let props: Map<String, Value> = keys
            .into_iter()
            .flatten()
            .zip(values.into_iter().flatten())
            .map(|(k, v)| (k.as_str().unwrap_or("").to_owned(), v.clone()))
            .collect();
        let revenue_micros = match event.get("revenue_reporting_amount") {
            Some(Value::String(amount)) => Some(
                (amount
                    .parse::<f64>()
                    .map_err(|_| format!("bad revenue {amount:?}"))?
                    * 1e6)
                    .round() as i64,
            ),
            Some(Value::Number(amount)) => Some((amount.as_f64().unwrap() * 1e6).round() as i64),
            _ => None,
        };
        let source = field(visit, "referrer_source");
        let channel = channel_of_source(
            source,
            field(visit, "utm_medium"),
            field(visit, "utm_campaign"),
            field(visit, "click_id_param"),
        );
        let city = match visit.get("city_geoname_id") {
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let line = json!({
            "event_id": format!("event-{i}"),
            "name": event.get("name").and_then(Value::as_str).unwrap_or("pageview"),
            "timestamp": chrono::DateTime::from_timestamp_millis(built[i].1)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            "visitor_id": built[i].0,
            "session_id": session,
            "hostname": event
                .get("hostname")
                .and_then(Value::as_str)
                .map_or_else(|| format!("example-{i}.com"), str::to_owned),
            "pathname": event.get("pathname").and_then(Value::as_str).unwrap_or("/"),
            "referrer": field(visit, "referrer"),
            "referrer_source": source,
            "channel": channel,
            "utm_source": field(visit, "utm_source"),
            "utm_medium": field(visit, "utm_medium"),
            "utm_campaign": field(visit, "utm_campaign"),
            "utm_content": field(visit, "utm_content"),
            "utm_term": field(visit, "utm_term"),
            "country": field(visit, "country_code"),
            "region": field(visit, "subdivision1_code"),
            "city": city,
            "browser": field(visit, "browser"),
            "browser_version": field(visit, "browser_version"),
            "os": field(visit, "operating_system"),
            "os_version": field(visit, "operating_system_version"),
            "device": field(visit, "screen_size"),
            "screen": "",
            "props": props,
            "revenue_micros": revenue_micros,
            "revenue_currency": event.get("revenue_reporting_currency"),
            "scroll_depth": event.get("scroll_depth"),
            "engagement_time_ms": event.get("engagement_time").and_then(Value::as_u64).unwrap_or(0),
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    Ok(lines)
}

/// `today` and `today-7d` in a query's strings, as the test's `Date.utc_today()`.
fn with_dates(value: &Value, today: chrono::NaiveDate) -> Value {
    match value {
        Value::String(s) if s.starts_with("today") => {
            let days = s
                .strip_prefix("today-")
                .and_then(|d| d.strip_suffix('d'))
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            Value::String((today - Duration::days(days)).to_string())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| with_dates(v, today)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), with_dates(v, today)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// JSON equality with numbers compared by value (`3` equals `3.0`).
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        (a, b) => a == b,
    }
}

/// The default fields of Plausible's test factories for imported rows (`test/support/
/// factory.ex`): what a case's row does not say.
fn imported_defaults(table: &str) -> Value {
    let visit = json!({"visitors": 1, "visits": 1, "bounces": 0, "visit_duration": 10});
    match table {
        "imported_visitors" => {
            json!({"visitors": 1, "pageviews": 1, "bounces": 0, "visits": 1, "visit_duration": 10})
        }
        "imported_pages" => json!({"visitors": 1, "pageviews": 1, "exits": 0, "time_on_page": 10}),
        "imported_entry_pages" => {
            json!({"visitors": 1, "entrances": 1, "bounces": 0, "visit_duration": 10})
        }
        "imported_exit_pages" => json!({"visitors": 1, "exits": 1}),
        "imported_custom_events" => json!({"visitors": 1, "events": 1}),
        _ => visit,
    }
}

/// A case's imported rows as Plausible's CSV export: a zip of its ten files, named for the
/// case's import (`import_range`, by default the setup's: 2005-01-01 to today), each with a
/// header of every column a row of the table has, the factory's defaults where the case says
/// nothing.
fn plausible_export_zip(
    rows: &[Value],
    today: chrono::NaiveDate,
    (start, end): (chrono::NaiveDate, chrono::NaiveDate),
) -> Vec<u8> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    const TABLES: [&str; 10] = [
        "imported_visitors",
        "imported_sources",
        "imported_pages",
        "imported_entry_pages",
        "imported_exit_pages",
        "imported_custom_events",
        "imported_locations",
        "imported_devices",
        "imported_browsers",
        "imported_operating_systems",
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for table in TABLES {
        let mut filled: Vec<Map<String, Value>> = Vec::new();
        for row in rows.iter().filter(|r| r["table"] == table) {
            let mut fields = imported_defaults(table).as_object().cloned().unwrap();
            for (k, v) in row.as_object().into_iter().flatten() {
                if k != "table" {
                    fields.insert(k.clone(), v.clone());
                }
            }
            fields
                .entry("date")
                .or_insert_with(|| json!(today.to_string()));
            filled.push(fields);
        }
        let mut columns: Vec<String> = vec!["date".into()];
        for fields in &filled {
            for k in fields.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
        // The dimension columns, empty when no row of the case names them.
        let dimensions: &[&str] = match table {
            "imported_sources" => &[
                "source",
                "referrer",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "utm_content",
                "utm_term",
            ],
            "imported_pages" => &["hostname", "page"],
            "imported_entry_pages" => &["entry_page"],
            "imported_exit_pages" => &["exit_page"],
            "imported_custom_events" => &["name", "link_url", "path"],
            "imported_locations" => &["country", "region", "city"],
            "imported_devices" => &["device"],
            "imported_browsers" => &["browser", "browser_version"],
            "imported_operating_systems" => &["operating_system", "operating_system_version"],
            _ => &[],
        };
        for d in dimensions {
            if !columns.iter().any(|c| c == d) {
                columns.push((*d).to_owned());
            }
        }
        if !columns.iter().any(|c| c == "visitors") {
            columns.push("visitors".into());
        }
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(&columns).unwrap();
        for fields in &filled {
            let record: Vec<String> = columns
                .iter()
                .map(|c| match fields.get(c) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None if c == "city" => "0".into(),
                    Some(Value::Null) | None => {
                        if dimensions.contains(&c.as_str()) {
                            String::new()
                        } else {
                            "0".into()
                        }
                    }
                    Some(other) => other.to_string(),
                })
                .collect();
            csv.write_record(&record).unwrap();
        }
        let name = format!(
            "{table}_{}_{}.csv",
            start.format("%Y%m%d"),
            end.format("%Y%m%d")
        );
        zip.start_file(name, SimpleFileOptions::default()).unwrap();
        zip.write_all(&csv.into_inner().unwrap()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Runs one case on its own site; `Err` says how it differed.
async fn run_case(server: &TestServer, case: &Value, index: usize) -> Result<(), String> {
    let domain = format!("case-{index}.plausible.test");
    let timezone = case["site"]["timezone"].as_str().unwrap_or("Etc/UTC");
    let key = server.create_site(&domain, timezone).await;
    // The goals the test inserts (`insert(:goal, ...)`), through the goals API.
    for goal in case["goals"].as_array().into_iter().flatten() {
        let mut body = goal.clone();
        body["goal_type"] = json!(if goal.get("page_path").is_some() {
            "page"
        } else {
            "event"
        });
        let response = server
            .http
            .post(server.url(&format!("/api/sites/{domain}/goals")))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status != 201 {
            let body = response.text().await.unwrap();
            return Err(format!("creating goal {goal} answered {status}: {body}"));
        }
    }
    let now = Utc::now();
    let imports = case["imports"].as_array().cloned().unwrap_or_default();
    if !imports.is_empty() {
        let today = now.date_naive();
        let imports = with_dates(&Value::Array(imports), today);
        let range = with_dates(&case["import_range"], today);
        let day = |field: &str, default: chrono::NaiveDate| {
            range[field]
                .as_str()
                .and_then(|d| d.parse().ok())
                .unwrap_or(default)
        };
        let start = day(
            "start_date",
            chrono::NaiveDate::from_ymd_opt(2005, 1, 1).unwrap(),
        );
        let end = day("end_date", today);
        let zip = plausible_export_zip(imports.as_array().unwrap(), today, (start, end));
        let response = server
            .http
            .post(server.url(&format!("/api/imports/plausible?site_id={domain}")))
            .bearer_auth(ADMIN)
            .header("content-type", "application/zip")
            .body(zip)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        if status != 200 {
            return Err(format!(
                "the Plausible export's import answered {status}: {body}"
            ));
        }
    }
    let events = case["events"].as_array().cloned().unwrap_or_default();
    if !events.is_empty() {
        let lines = import_lines(&events, now)?;
        let response = server
            .http
            .post(server.url(&format!("/api/import?site_id={domain}&format=ndjson")))
            .bearer_auth(ADMIN)
            .body(lines)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        if status != 200 {
            return Err(format!("import answered {status}: {body}"));
        }
    }
    let requests = case["requests"].as_array().cloned().unwrap_or_default();
    let mut answers = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        let (status, answer) = match request.get("get").and_then(Value::as_str) {
            // Stats API v1: a GET with query-string parameters.
            Some(path) => {
                let params = with_dates(&request["params"], now.date_naive());
                let mut pairs: Vec<(String, String)> = vec![("site_id".into(), domain.clone())];
                for (k, v) in params.as_object().into_iter().flatten() {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    pairs.push((k.clone(), v));
                }
                let response = server
                    .http
                    .get(server.url(path))
                    .query(&pairs)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            None => {
                let mut body = with_dates(&request["query"], now.date_naive());
                body["site_id"] = json!(domain);
                server.query_answer(&key, &body).await
            }
        };
        let differs = |what: &str, expected: &Value, actual: &Value| {
            format!("request {n}: {what}: expected {expected}, got {actual}")
        };
        let expected_status = request["status"].as_u64().unwrap_or(200) as u16;
        if status != expected_status {
            return Err(differs(
                "status",
                &json!(expected_status),
                &json!({"status": status, "body": answer}),
            ));
        }
        check_answer(request, &answer).map_err(|why| format!("request {n}: {why}"))?;
        answers.push(answer);
    }
    for (n, request) in requests.iter().enumerate() {
        for (key, reversed) in [("same_results_as", false), ("reverse_of", true)] {
            let Some(other) = request.get(key).and_then(Value::as_u64) else {
                continue;
            };
            let mut expected = answers[other as usize]["results"].clone();
            if let (true, Value::Array(rows)) = (reversed, &mut expected) {
                rows.reverse();
            }
            if !same(&expected, &answers[n]["results"]) {
                return Err(format!(
                    "request {n}: results: expected those of request {other}{}: {expected}, got {}",
                    if reversed { " reversed" } else { "" },
                    answers[n]["results"]
                ));
            }
        }
    }
    Ok(())
}

/// The value at a JSON pointer whose array indexes may count from the end (`/results/-1`).
fn at<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    pointer
        .split('/')
        .skip(1)
        .try_fold(value, |value, part| match value {
            Value::Array(items) => {
                let index: i64 = part.parse().ok()?;
                let index = if index < 0 {
                    items.len() as i64 + index
                } else {
                    index
                };
                items.get(usize::try_from(index).ok()?)
            }
            Value::Object(fields) => fields.get(part),
            _ => None,
        })
}

/// What one request of a case asserts about its answer (see `plausible/README.md`).
fn check_answer(request: &Value, answer: &Value) -> Result<(), String> {
    let differs = |what: &str, expected: &Value, actual: &Value| {
        Err(format!("{what}: expected {expected}, got {actual}"))
    };
    if let Some(error) = request.get("error") {
        if !same(error, &answer["error"]) {
            return differs("error", error, &answer["error"]);
        }
    }
    if let Some(text) = request.get("error_contains").and_then(Value::as_str) {
        let actual = answer["error"].as_str().unwrap_or("");
        if !actual.contains(text) {
            return differs("error containing", &json!(text), &answer["error"]);
        }
    }
    if let Some(Value::Array(expected)) = request.get("results_in_any_order") {
        let actual = answer["results"].as_array().cloned().unwrap_or_default();
        let all_found = expected.len() == actual.len()
            && expected.iter().all(|e| actual.iter().any(|a| same(e, a)));
        if !all_found {
            return differs("results in any order", &json!(expected), &answer["results"]);
        }
    }
    if let Some(body) = request.get("body") {
        if !same(body, answer) {
            return differs("body", body, answer);
        }
    }
    if let Some(results) = request.get("results") {
        if !same(results, &answer["results"]) {
            return differs("results", results, &answer["results"]);
        }
    }
    if let Some(Value::Object(expected)) = request.get("meta") {
        for (k, v) in expected {
            if !same(v, &answer["meta"][k]) {
                return differs(&format!("meta.{k}"), v, &answer["meta"][k]);
            }
        }
    }
    if let Some(Value::Object(expected)) = request.get("at") {
        for (pointer, v) in expected {
            let actual = at(answer, pointer).cloned().unwrap_or(Value::Null);
            if !same(v, &actual) {
                return differs(pointer, v, &actual);
            }
        }
    }
    if let Some(Value::Object(expected)) = request.get("length") {
        for (pointer, v) in expected {
            let actual = at(answer, pointer)
                .and_then(Value::as_array)
                .map(|items| json!(items.len()));
            let actual = actual.unwrap_or(Value::Null);
            if !same(v, &actual) {
                return differs(&format!("length of {pointer}"), v, &actual);
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn plausibles_own_stats_api_v2_cases() {
    let cases = load_cases();
    let gaps = load_gaps();
    let only = std::env::var("PLAUSIBLE_CASES").ok();
    let mut names = HashMap::new();
    for case in &cases {
        let name = case["name"].as_str().expect("every case has a name");
        assert!(
            names.insert(name.to_owned(), ()).is_none(),
            "two cases named {name:?}"
        );
    }
    for name in gaps.keys() {
        assert!(names.contains_key(name), "gaps.json names no case {name:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let mut passed = 0;
    let mut problems = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        if only.as_deref().is_some_and(|text| !name.contains(text)) {
            continue;
        }
        let outcome = run_case(&server, case, index).await;
        if only.is_some() {
            println!("{name}: {outcome:?}");
        }
        match (outcome, gaps.get(name)) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => {
                problems.push(format!("{name}: passes now; take it out of gaps.json"))
            }
            (Err(why), None) => problems.push(format!("{name}: {why}")),
            (Err(_), Some(_)) => {}
        }
    }
    server.stop().await;
    println!(
        "Plausible's cases: {} in all, {passed} pass, {} listed in gaps.json",
        cases.len(),
        gaps.len()
    );
    assert!(
        problems.is_empty(),
        "{} of Plausible's cases differ:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
