//! Importing Plausible's CSV export: an export of all ten files, made here with known
//! numbers, goes in through `POST /api/imports/plausible`; queries answer without the
//! imported statistics unless they ask (`"include": {"imports": true}`, v1's
//! `with_imported=true`), and with them as Plausible's documentation says (sums added to the
//! native ones, rates recomputed over both, a query no imported table answers left without
//! them and saying why). A malformed or partial export is refused with the file and line,
//! and nothing of it is stored.

mod common;

use std::io::Write;

use common::*;
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;

const SITE: &str = "imported.example";

/// The ten files of an export covering 2023, as `(name, CSV text)`.
fn export_files() -> Vec<(String, String)> {
    let files = [
        (
            "imported_visitors",
            "date,visitors,pageviews,bounces,visits,visit_duration\n\
             2023-06-01,10,30,4,12,600\n\
             2023-06-02,5,5,5,5,0\n",
        ),
        (
            "imported_sources",
            "date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,pageviews,visitors,visits,visit_duration,bounces\n\
             2023-06-01,Google,,,,,,,20,6,7,500,1\n\
             2023-06-01,,,,,,,,10,4,5,100,3\n\
             2023-06-02,,,,,,,,5,5,5,0,5\n",
        ),
        (
            "imported_pages",
            "date,hostname,page,visits,visitors,pageviews,scroll_depth,pageleave_visitors\n\
             2023-06-01,imported.example,/,10,8,20,,0\n\
             2023-06-01,imported.example,/pricing,4,4,10,,0\n\
             2023-06-02,imported.example,/,5,5,5,,0\n",
        ),
        (
            "imported_entry_pages",
            "date,entry_page,visitors,entrances,visit_duration,bounces,pageviews\n\
             2023-06-01,/,10,12,600,4,30\n\
             2023-06-02,/,5,5,0,5,5\n",
        ),
        (
            "imported_exit_pages",
            "date,exit_page,visitors,visit_duration,exits,bounces,pageviews\n\
             2023-06-01,/pricing,10,600,12,4,30\n\
             2023-06-02,/,5,0,5,5,5\n",
        ),
        (
            "imported_custom_events",
            "date,name,link_url,path,visitors,events\n\
             2023-06-01,Signup,,,3,4\n\
             2023-06-01,Outbound Link: Click,https://example.org,,2,2\n",
        ),
        (
            "imported_locations",
            "date,country,region,city,visitors,visits,visit_duration,bounces,pageviews\n\
             2023-06-01,EE,EE-37,588409,10,12,600,4,30\n\
             2023-06-02,DE,,0,5,5,0,5,5\n",
        ),
        (
            "imported_devices",
            "date,device,visitors,visits,visit_duration,bounces,pageviews\n\
             2023-06-01,Desktop,7,8,400,2,20\n\
             2023-06-01,Mobile,3,4,200,2,10\n\
             2023-06-02,Mobile,5,5,0,5,5\n",
        ),
        (
            "imported_browsers",
            "date,browser,browser_version,visitors,visits,visit_duration,bounces,pageviews\n\
             2023-06-01,Chrome,120.0,10,12,600,4,30\n\
             2023-06-02,Firefox,121.0,5,5,0,5,5\n",
        ),
        (
            "imported_operating_systems",
            "date,operating_system,operating_system_version,visitors,visits,visit_duration,bounces,pageviews\n\
             2023-06-01,GNU/Linux,,10,12,600,4,30\n\
             2023-06-02,Android,14,5,5,0,5,5\n",
        ),
    ];
    files
        .into_iter()
        .map(|(table, text)| (format!("{table}_20230101_20231231.csv"), text.to_owned()))
        .collect()
}

fn zip_of(files: &[(String, String)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in files {
        zip.start_file(format!("export/{name}"), SimpleFileOptions::default())
            .unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

async fn upload(server: &TestServer, key: &str, zip: Vec<u8>) -> (u16, Value) {
    let response = server
        .http
        .post(server.url(&format!("/api/imports/plausible?site_id={SITE}")))
        .bearer_auth(key)
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn imports(server: &TestServer, key: &str) -> Vec<Value> {
    let response = server
        .http
        .get(server.url(&format!("/api/imports?site_id={SITE}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["imports"].as_array().cloned().unwrap()
}

/// The `metrics` of each row as `(dimensions, metrics)`.
fn rows(body: &Value) -> Vec<(Vec<String>, Vec<Value>)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let dimensions = row["dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
            (dimensions, row["metrics"].as_array().unwrap().clone())
        })
        .collect()
}

#[tokio::test]
async fn a_plausible_export_is_added_to_answers_that_ask_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "Etc/UTC").await;
    // Two native visits today: one page view each, no referrer, a desktop Chrome on Linux.
    for (n, ip) in ["203.0.113.1", "203.0.113.2"].iter().enumerate() {
        let response = server
            .http
            .post(server.url("/api/event"))
            .header("user-agent", UA)
            .header("x-forwarded-for", *ip)
            .json(&json!({"name": "pageview", "url": format!("https://{SITE}/native-{n}"), "domain": SITE}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    server.wait_for_events(&key, SITE, 2).await;

    let (status, body) = upload(&server, &key, zip_of(&export_files())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["import"]["start_date"], "2023-01-01");
    assert_eq!(body["import"]["end_date"], "2023-12-31");
    assert_eq!(body["rows"]["imported_devices"], 3);
    assert_eq!(imports(&server, &key).await.len(), 1);

    let today = chrono::Utc::now().date_naive().to_string();
    let range = json!(["2023-01-01", today]);
    let top = json!([
        "visitors",
        "visits",
        "pageviews",
        "bounce_rate",
        "visit_duration",
        "views_per_visit"
    ]);
    // Without asking: the native visits only, and nothing said about imports.
    let native = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": top, "date_range": range}),
        )
        .await;
    assert_eq!(
        rows(&native)[0].1,
        [
            json!(2),
            json!(2),
            json!(2),
            json!(100),
            json!(0),
            json!(1.0)
        ]
    );
    assert!(native["meta"].get("imports_included").is_none());
    // Asking: sums added, rates over both (bounces 2 + 9 of 19 visits; 600 s over 19 visits;
    // 37 page views over 19 visits).
    let both = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": top, "date_range": range, "include": {"imports": true}}),
        )
        .await;
    assert_eq!(
        rows(&both)[0].1,
        [
            json!(17),
            json!(19),
            json!(37),
            json!(58),
            json!(32),
            json!(1.95)
        ]
    );
    assert_eq!(both["meta"]["imports_included"], true);
    // "all" reaches back to the import's first day, as Plausible's stats start date does.
    let all = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": ["visitors"], "date_range": "all", "include": {"imports": true}}),
        )
        .await;
    assert_eq!(rows(&all)[0].1, [json!(17)]);

    // A breakdown merges the imported table of its dimension with the native rows.
    let devices = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": ["visitors", "visits"], "date_range": range,
                   "dimensions": ["visit:device"], "include": {"imports": true}}),
        )
        .await;
    assert_eq!(
        rows(&devices),
        [
            (vec!["Desktop".to_owned()], vec![json!(9), json!(10)]),
            (vec!["Mobile".to_owned()], vec![json!(8), json!(9)]),
        ]
    );
    let sources = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": ["visitors"], "date_range": range,
                   "dimensions": ["visit:source"], "include": {"imports": true}}),
        )
        .await;
    assert_eq!(
        rows(&sources),
        [
            (vec!["Direct / None".to_owned()], vec![json!(11)]),
            (vec!["Google".to_owned()], vec![json!(6)]),
        ]
    );
    let events = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": ["visitors", "events"], "date_range": range,
                   "dimensions": ["event:name"], "include": {"imports": true}}),
        )
        .await;
    assert_eq!(
        rows(&events),
        [
            (vec!["Signup".to_owned()], vec![json!(3), json!(4)]),
            (
                vec!["Outbound Link: Click".to_owned()],
                vec![json!(2), json!(2)]
            ),
            (vec!["pageview".to_owned()], vec![json!(2), json!(2)]),
        ]
    );
    // By month: June 2023 from the import, this month from the native events.
    let months = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": ["visitors"], "date_range": ["2023-01-01", "2023-12-31"],
                   "dimensions": ["time:month"], "include": {"imports": true}}),
        )
        .await;
    assert_eq!(
        rows(&months),
        [(vec!["2023-06-01".to_owned()], vec![json!(15)])]
    );
    // A filter from another table than the dimension's: no imported table answers.
    let skipped = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": ["visitors"], "date_range": range,
                   "dimensions": ["visit:source"], "filters": [["is", "visit:device", ["Desktop"]]],
                   "include": {"imports": true}}),
        )
        .await;
    assert_eq!(
        rows(&skipped),
        [(vec!["Direct / None".to_owned()], vec![json!(2)])]
    );
    assert_eq!(skipped["meta"]["imports_included"], false);
    assert_eq!(skipped["meta"]["imports_skip_reason"], "unsupported_query");
    assert!(skipped["meta"]["imports_warning"]
        .as_str()
        .unwrap()
        .starts_with("Imported stats are not included"));
    let hourly = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": ["visitors"], "date_range": ["2023-06-01", "2023-06-02"],
                   "dimensions": ["time:hour"], "include": {"imports": true}}),
        )
        .await;
    assert_eq!(
        hourly["meta"]["imports_skip_reason"],
        "unsupported_interval"
    );
    // Stats API v1 with `with_imported=true`.
    let response = server
        .http
        .get(server.url("/api/v1/stats/aggregate"))
        .query(&[
            ("site_id", SITE),
            ("period", "custom"),
            ("date", &format!("2023-01-01,{today}")),
            ("metrics", "visitors,pageviews"),
            ("with_imported", "true"),
        ])
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let v1: Value = response.json().await.unwrap();
    assert_eq!(
        v1["results"],
        json!({"visitors": {"value": 17}, "pageviews": {"value": 37}})
    );

    // Deleting the import (an admin's to do) leaves the native data.
    let id = imports(&server, &key).await[0]["id"].as_u64().unwrap();
    let delete = |token: &'static str| {
        server
            .http
            .delete(server.url(&format!("/api/imports/{id}?site_id={SITE}")))
            .bearer_auth(token)
            .send()
    };
    let response = server
        .http
        .delete(server.url(&format!("/api/imports/{id}?site_id={SITE}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "the site's read key may not delete");
    assert_eq!(delete(ADMIN).await.unwrap().status(), 200);
    assert_eq!(delete(ADMIN).await.unwrap().status(), 404, "gone");
    let after = server
        .query(
            &key,
            json!({"site_id": SITE, "metrics": ["visitors"], "date_range": range, "include": {"imports": true}}),
        )
        .await;
    assert_eq!(rows(&after)[0].1, [json!(2)]);
    assert_eq!(after["meta"]["imports_skip_reason"], "no_imported_data");
    server.stop().await;
}

#[tokio::test]
async fn a_malformed_or_partial_export_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let key = server.create_site(SITE, "Etc/UTC").await;
    let refused = |status: u16, body: &Value, field: &str, message: &str| {
        assert_eq!(status, 400, "{body}");
        let details = body["details"].as_array().unwrap();
        assert!(
            details
                .iter()
                .any(|d| d["field"].as_str().unwrap().contains(field)
                    && d["message"].as_str().unwrap().contains(message)),
            "expected {field}: {message} in {body}"
        );
    };

    // A file missing.
    let mut files = export_files();
    files.retain(|(name, _)| !name.starts_with("imported_devices"));
    let (status, body) = upload(&server, &key, zip_of(&files)).await;
    refused(status, &body, "imported_devices", "missing");

    // A file cut short: its last line lacks fields.
    let mut files = export_files();
    let pages = files
        .iter_mut()
        .find(|(name, _)| name.starts_with("imported_pages"))
        .unwrap();
    pages.1.push_str("2023-06-03,imported.example,/cut");
    let (status, body) = upload(&server, &key, zip_of(&files)).await;
    refused(
        status,
        &body,
        "imported_pages_20230101_20231231.csv",
        "line 5:",
    );

    // A count that is not a number, a date that is not a date.
    let mut files = export_files();
    files[0].1 =
        "date,visitors,pageviews,bounces,visits,visit_duration\n2023-06-01,ten,1,0,1,1\n".into();
    let (status, body) = upload(&server, &key, zip_of(&files)).await;
    refused(status, &body, "imported_visitors", "line 2: visitors");
    files[0].1 =
        "date,visitors,pageviews,bounces,visits,visit_duration\n06/01/2023,1,1,0,1,1\n".into();
    let (status, body) = upload(&server, &key, zip_of(&files)).await;
    refused(status, &body, "imported_visitors", "line 2: date");

    // Not a zip at all; a file that is not the export's.
    let (status, body) = upload(&server, &key, b"date,visitors\n".to_vec()).await;
    refused(status, &body, "body", "zip");
    let mut files = export_files();
    files.push(("notes.txt".into(), "hello".into()));
    let (status, body) = upload(&server, &key, zip_of(&files)).await;
    refused(status, &body, "notes.txt", "Plausible's export");

    // Nothing of the refused exports was stored, and the server goes on.
    assert!(imports(&server, &key).await.is_empty());
    let (status, body) = upload(&server, &key, zip_of(&export_files())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(imports(&server, &key).await.len(), 1);
    server.stop().await;
}
