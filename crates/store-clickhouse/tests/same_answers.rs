//! The differential test: one fixed data set written through `EventWriter::insert` into an
//! in-memory DuckDB store and into a fresh database on the two-shard ClickHouse cluster,
//! then the same queries through the query crate's public entry points on both, whose
//! answers must be the same. DuckDB's answers are the reference.
//!
//! (This crate's time dimensions are hours, days, weeks and months: there is no
//! `time:minute` to compare.)
//!
//! Every timestamp of the data set is a whole second: ClickHouse 18.16 keeps `ts` and
//! `start_ts` in whole seconds (no `DateTime64`), so sub-second times would change answers
//! that depend on them (time on page, durations, ordering) for that reason alone. The one
//! exception is a site of its own for funnels' windows ([`window_edge_events`]): funnels
//! read the store's exact milliseconds.
//!
//! DuckDB is read through its tables, not its rollups (the wrapper `Tables` says it has
//! none), so both engines run the same compiled statements.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use heartbeat_model::{
    Event, Goal, GoalKind, ImportedRow, ImportedTable, Revenue, Session, Site, SiteId, SiteRules,
    VisitAttributes,
};
use heartbeat_query::{Row, RunError, Sql, SqlRunner};
use heartbeat_store::{EventData, EventWriter, InsertBatch, SessionRow};
use heartbeat_store_clickhouse::ClickHouseStore;
use heartbeat_store_duckdb::DuckDbStore;
use serde_json::{json, Value};

/// 2024-03-04 00:00:00 UTC, a Monday.
const DAY0_MS: i64 = 1_709_510_400_000;
const DAY_MS: i64 = 86_400_000;
/// When the queries are asked: 2024-03-20 12:00 UTC.
const NOW_MS: i64 = DAY0_MS + 16 * DAY_MS + 12 * 3_600_000;

/// DuckDB through its tables only: the same statements as ClickHouse runs.
struct Tables(DuckDbStore);

#[async_trait::async_trait]
impl SqlRunner for Tables {
    fn dialect(&self) -> heartbeat_query::Dialect {
        self.0.dialect()
    }
    fn has_rollups(&self) -> bool {
        false
    }
    fn data_version(&self, site: &SiteId) -> u64 {
        self.0.data_version(site)
    }
    async fn run(&self, sql: Sql) -> Result<Vec<Row>, RunError> {
        self.0.run(sql).await
    }
}

/// A small deterministic generator (no dependency, the same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn site(id: &str, timezone: &str) -> Site {
    Site {
        id: SiteId::from(id),
        name: id.into(),
        domain: id.into(),
        timezone: timezone.into(),
        created_at_ms: 0,
        rules: SiteRules::default(),
        retention_days: None,
    }
}

fn sites() -> Vec<Site> {
    vec![site("a.test", "UTC"), site("b.test", "America/New_York")]
}

fn goals(site_id: &str) -> Vec<Goal> {
    let goal = |id: u64, kind: GoalKind, name: &str, currency: Option<&str>| Goal {
        id,
        site_id: SiteId::from(site_id),
        kind,
        display_name: name.into(),
        currency: currency.map(str::to_owned),
        created_at_ms: 0,
    };
    vec![
        goal(
            1,
            GoalKind::Page {
                page_path: "/register".into(),
            },
            "Visit /register",
            None,
        ),
        goal(
            2,
            GoalKind::Page {
                page_path: "/blog/**".into(),
            },
            "Visit /blog/**",
            None,
        ),
        goal(
            3,
            GoalKind::Event {
                event_name: "Signup".into(),
                props: BTreeMap::new(),
            },
            "Signup",
            None,
        ),
        goal(
            4,
            GoalKind::Event {
                event_name: "Purchase".into(),
                props: BTreeMap::new(),
            },
            "Purchase",
            Some("USD"),
        ),
        goal(
            5,
            GoalKind::Event {
                event_name: "Download".into(),
                props: BTreeMap::from([("plan".to_owned(), "pro".to_owned())]),
            },
            "Download pro",
            None,
        ),
    ]
}

const PAGES: &[&str] = &[
    "/",
    "/blog",
    "/blog/post-1",
    "/blog/post-2",
    "/pricing",
    "/register",
    "/docs/a/b",
    "/Blog/Upper",
];

/// Visit attributes: (referrer, source, channel, utm_source, utm_medium, utm_campaign).
const SOURCES: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("", "", "Direct", "", "", ""),
    (
        "https://www.google.com/",
        "Google",
        "Organic Search",
        "",
        "",
        "",
    ),
    (
        "https://news.ycombinator.com/item",
        "Hacker News",
        "Organic Social",
        "",
        "",
        "",
    ),
    ("", "newsletter", "Email", "newsletter", "email", "spring"),
    (
        "https://t.co/x",
        "Twitter",
        "Paid Social",
        "twitter",
        "cpc",
        "launch",
    ),
];
/// (country, region, city).
const PLACES: &[(&str, &str, &str)] = &[
    ("US", "US-CA", "San Francisco"),
    ("US", "US-NY", "New York"),
    ("DE", "DE-BE", "Berlin"),
    ("FR", "FR-IDF", "Paris"),
    ("", "", ""),
];
/// (device, browser, browser_version, os, os_version).
const DEVICES: &[(&str, &str, &str, &str, &str)] = &[
    ("Desktop", "Chrome", "122.0", "Mac", "14.3"),
    ("Desktop", "Firefox", "123.0", "Windows", "11"),
    ("Mobile", "Safari", "17.3", "iOS", "17.3"),
    ("Mobile", "Chrome", "121.0", "Android", "14"),
    ("Tablet", "Safari", "16.6", "iOS", "16.6"),
];

/// The data set: both sites' events in time order, and the visit log rows in two
/// batches (each visit's first state in the first, its cancellation and grown state in the
/// second, as the processor writes a visit that grows).
fn data_set() -> Vec<Arc<InsertBatch>> {
    let mut rng = Lcg(42);
    let mut first = InsertBatch {
        queue_position: 1,
        ..Default::default()
    };
    let mut second = InsertBatch {
        queue_position: 2,
        ..Default::default()
    };
    let mut session_id = 1_000u64;
    let mut event_no = 0u64;
    for site in sites() {
        for visitor in 0..28u64 {
            let visitor_id = 10_000 + visitor * 7919 + u64::from(site.id.as_str() == "b.test");
            let user_id = (visitor % 4 == 0).then(|| format!("user-{visitor}"));
            let visits = 1 + rng.below(4);
            // Each visit on its own day (some on the same), at a whole second.
            let mut days: Vec<i64> = (0..visits).map(|_| rng.below(14) as i64).collect();
            days.sort();
            days.dedup();
            for (visit_no, day) in days.into_iter().enumerate() {
                session_id += 1;
                // Some visits start at 23:50 and cross midnight; otherwise any time.
                let start_s = if rng.below(6) == 0 {
                    23 * 3600 + 50 * 60 + rng.below(120) as i64
                } else {
                    rng.below(86_000) as i64
                };
                let mut at = DAY0_MS + day * DAY_MS + start_s * 1000;
                let source = *rng.pick(SOURCES);
                let place = *rng.pick(PLACES);
                let device = *rng.pick(DEVICES);
                let attributes = VisitAttributes {
                    referrer: source.0.into(),
                    referrer_source: source.1.into(),
                    channel: source.2.into(),
                    utm_source: source.3.into(),
                    utm_medium: source.4.into(),
                    utm_campaign: source.5.into(),
                    utm_content: if source.5.is_empty() {
                        String::new()
                    } else {
                        "banner".into()
                    },
                    utm_term: if source.4 == "cpc" {
                        "analytics".into()
                    } else {
                        String::new()
                    },
                    country: place.0.into(),
                    region: place.1.into(),
                    city: place.2.into(),
                    browser: device.1.into(),
                    browser_version: device.2.into(),
                    os: device.3.into(),
                    os_version: device.4.into(),
                    device: device.0.into(),
                    screen: device.0.into(),
                };
                let hostname = if visit_no % 3 == 2 {
                    format!("www.{}", site.domain)
                } else {
                    site.domain.clone()
                };
                let length = 1 + rng.below(6);
                let mut events = Vec::new();
                for step in 0..length {
                    event_no += 1;
                    let kind = if step == 0 { 0 } else { rng.below(10) };
                    let path = if step == 0 {
                        *rng.pick(&PAGES[..5])
                    } else {
                        *rng.pick(PAGES)
                    };
                    let name = match kind {
                        0..=5 => "pageview",
                        6 => "Signup",
                        7 => "Purchase",
                        8 => "Download",
                        _ => "engagement",
                    };
                    let mut event =
                        Event::new(&format!("e{event_no:05}"), site.id.clone(), name, at);
                    event.visitor_id = visitor_id;
                    event.session_id = session_id;
                    event.user_id = user_id.clone();
                    event.hostname = hostname.clone();
                    event.pathname = path.into();
                    event.visit = attributes.clone();
                    match name {
                        "Purchase" => {
                            let currency = if rng.below(3) == 0 { "EUR" } else { "USD" };
                            event.revenue = Some(Revenue {
                                amount_micros: (1 + rng.below(100) as i64) * 250_000,
                                currency: currency.into(),
                            });
                            event
                                .props
                                .insert("plan".into(), (*rng.pick(&["pro", "basic"])).into());
                        }
                        "Download" => {
                            event
                                .props
                                .insert("plan".into(), (*rng.pick(&["pro", "free"])).into());
                            event
                                .props
                                .insert("file".into(), (*rng.pick(&["a.pdf", "b.zip"])).into());
                            event.interactive = rng.below(2) == 0;
                        }
                        "Signup" => {
                            if rng.below(2) == 0 {
                                event.props.insert("tier".into(), "free".into());
                            }
                        }
                        "engagement" => {
                            event.scroll_depth = (rng.below(5) != 0).then(|| rng.below(101) as u8);
                            event.engagement_time_ms = 1000 * rng.below(60) as u32;
                        }
                        _ => {
                            if rng.below(4) == 0 {
                                event.props.insert("author".into(), "john".into());
                            }
                        }
                    }
                    events.push(event);
                    at += 1000 * (1 + rng.below(400) as i64);
                }
                // Visit states as the processor writes them: the first after the visit's
                // first events, the whole visit after the rest.
                let cut = 1 + rng.below(length) as usize;
                let state = |events: &[Event], version: u32| {
                    let mut s = Session {
                        site_id: site.id.clone(),
                        session_id,
                        visitor_id,
                        user_id: user_id.clone(),
                        version,
                        start_ms: events[0].timestamp_ms,
                        end_ms: events[0].timestamp_ms,
                        pageviews: 0,
                        events: 0,
                        engagements: 0,
                        entry_page: events[0].pathname.clone(),
                        exit_page: events[0].pathname.clone(),
                        hostname: events[0].hostname.clone(),
                        visit: attributes.clone(),
                    };
                    for e in events.iter().filter(|e| !e.is_engagement()) {
                        s.end_ms = s.end_ms.max(e.timestamp_ms);
                        s.events += 1;
                        s.engagements += u32::from(e.is_interaction());
                        if e.is_pageview() {
                            s.pageviews += 1;
                            s.exit_page.clone_from(&e.pathname);
                        }
                    }
                    s
                };
                let early = state(&events[..cut], 1);
                first.sessions.push(SessionRow {
                    session: early.clone(),
                    sign: 1,
                });
                if cut < events.len() {
                    second.sessions.push(SessionRow {
                        session: early,
                        sign: -1,
                    });
                    second.sessions.push(SessionRow {
                        session: state(&events, 2),
                        sign: 1,
                    });
                }
                let rest = events.split_off(cut);
                first.events.extend(events);
                second.events.extend(rest);
            }
        }
    }
    first.events.extend(window_edge_events());
    vec![Arc::new(first), Arc::new(second)]
}

/// The site of [`window_edge_events`] (its own, so no other case sees its sub-second
/// times).
const EDGE_SITE: &str = "c.test";

/// Events at exact milliseconds for funnels' edges, on [`EDGE_SITE`] (2024-03-05, UTC),
/// each visitor in visits of their own:
/// - visitor 1: `/` and, exactly one day later (the window, inclusive), `/blog`, then a
///   `Signup` one millisecond past the window;
/// - visitor 2: `/` and `/blog` one day and one millisecond later;
/// - visitor 3: `/`, `/blog` and `Signup` within one second (100, 900 and 950 ms), so
///   their order and the times between them are the milliseconds'.
fn window_edge_events() -> Vec<Event> {
    const EDGE_DAY_MS: i64 = DAY0_MS + DAY_MS;
    let at = EDGE_DAY_MS + 10 * 3_600_000 + 250;
    let events = [
        (1, 1, "pageview", "/", at),
        (1, 2, "pageview", "/blog", at + DAY_MS),
        (1, 2, "Signup", "/blog", at + DAY_MS + 1),
        (2, 3, "pageview", "/", at + 500),
        (2, 4, "pageview", "/blog", at + 500 + DAY_MS + 1),
        (
            3,
            5,
            "pageview",
            "/blog",
            EDGE_DAY_MS + 20 * 3_600_000 + 900,
        ),
        (3, 5, "pageview", "/", EDGE_DAY_MS + 20 * 3_600_000 + 100),
        (3, 5, "Signup", "/", EDGE_DAY_MS + 20 * 3_600_000 + 950),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, (visitor, visit, name, path, at))| {
            let mut event = Event::new(&format!("edge{i}"), SiteId::from(EDGE_SITE), name, at);
            event.visitor_id = 90_000 + visitor;
            event.session_id = 90_000 + visit;
            event.hostname = EDGE_SITE.into();
            event.pathname = path.into();
            event
        })
        .collect()
}

/// An import's days (first, last) and each table's rows.
type Import = ((String, String), Vec<(ImportedTable, Vec<ImportedRow>)>);

/// An import of daily aggregates for `a.test` (every table of Plausible's export), from
/// 2024-02-26 to 2024-03-05: before the native events and overlapping their first days.
fn imported_tables() -> Import {
    let mut rng = Lcg(7);
    let texts: &[&str] = &[
        "", "Google", "/", "/blog", "US", "Desktop", "Chrome", "Signup",
    ];
    let tables = ImportedTable::ALL
        .iter()
        .map(|&table| {
            let mut rows = Vec::new();
            for day in 26..=(29 + 5) {
                let date = if day <= 29 {
                    format!("2024-02-{day:02}")
                } else {
                    format!("2024-03-{:02}", day - 29)
                };
                for _ in 0..2 {
                    let row_texts: Vec<String> = table
                        .text_columns()
                        .iter()
                        .map(|column| match *column {
                            "name" => (*rng.pick(&["Signup", "Purchase"])).to_owned(),
                            "page" | "entry_page" | "exit_page" | "path" => {
                                (*rng.pick(&["/", "/blog", "/pricing"])).to_owned()
                            }
                            _ => (*rng.pick(texts)).to_owned(),
                        })
                        .collect();
                    let counts = table
                        .count_columns()
                        .iter()
                        .map(|c| {
                            if c.nullable && rng.below(3) == 0 {
                                None
                            } else {
                                Some(1 + rng.below(20))
                            }
                        })
                        .collect();
                    rows.push(ImportedRow {
                        date: date.clone(),
                        texts: row_texts,
                        counts,
                    });
                }
            }
            (table, rows)
        })
        .collect();
    (("2024-02-26".into(), "2024-03-05".into()), tables)
}

/// Both stores with the data set written into each.
struct Fixture {
    duckdb: Tables,
    clickhouse: ClickHouseStore,
    database: String,
}

async fn fixture() -> Fixture {
    let duckdb = DuckDbStore::open_in_memory().expect("an in-memory DuckDB store");
    let options = common::fresh_options();
    let database = options.database.clone();
    let clickhouse = ClickHouseStore::open(options)
        .await
        .expect("a store on the test cluster");
    for batch in data_set() {
        duckdb
            .insert(batch.clone())
            .await
            .expect("DuckDB stores it");
        clickhouse
            .insert(batch)
            .await
            .expect("ClickHouse stores it");
    }
    let (range, tables) = imported_tables();
    let site = SiteId::from("a.test");
    duckdb
        .import_aggregates(&site, "plausible", range.clone(), tables.clone())
        .await
        .expect("DuckDB stores the import");
    clickhouse
        .import_aggregates(&site, "plausible", range, tables)
        .await
        .expect("ClickHouse stores the import");
    Fixture {
        duckdb: Tables(duckdb),
        clickhouse,
        database,
    }
}

/// Whether two answers are the same, numbers within a small tolerance; the first
/// difference's path otherwise.
fn same(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            if (x - y).abs() <= 1e-6 + 1e-9 * x.abs().max(y.abs()) {
                Ok(())
            } else {
                Err(format!("{path}: {x} (DuckDB) vs {y} (ClickHouse)"))
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!(
                    "{path}: {} items (DuckDB) vs {} (ClickHouse)",
                    x.len(),
                    y.len()
                ));
            }
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                same(x, y, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Object(x), Value::Object(y)) => {
            for (key, value) in x {
                same(
                    value,
                    y.get(key).unwrap_or(&Value::Null),
                    &format!("{path}.{key}"),
                )?;
            }
            match y.keys().find(|k| !x.contains_key(*k)) {
                Some(key) => Err(format!("{path}.{key}: only in ClickHouse's answer")),
                None => Ok(()),
            }
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} (DuckDB) vs {b} (ClickHouse)")),
    }
}

/// The cases of one test: each case's name and both engines' answers (or errors).
#[derive(Default)]
struct Report {
    passed: Vec<String>,
    failed: Vec<String>,
}

impl Report {
    fn check(
        &mut self,
        name: &str,
        duckdb: Result<Value, String>,
        clickhouse: Result<Value, String>,
    ) {
        let outcome = match (&duckdb, &clickhouse) {
            (Ok(a), Ok(b)) => same(a, b, "answer").map_err(|diff| {
                format!(
                    "{diff}\n      DuckDB:     {}\n      ClickHouse: {}",
                    short(a),
                    short(b)
                )
            }),
            (Err(e), _) => Err(format!("DuckDB failed (the reference!): {e}")),
            (Ok(a), Err(e)) => Err(format!(
                "ClickHouse failed: {}\n      DuckDB: {}",
                short_text(e, 1500),
                short(a)
            )),
        };
        match outcome {
            Ok(()) => self.passed.push(name.to_owned()),
            Err(why) => self.failed.push(format!("{name}: {why}")),
        }
    }

    fn finish(self, what: &str) {
        let total = self.passed.len() + self.failed.len();
        println!("{what}: {} of {total} cases hold", self.passed.len());
        for failure in &self.failed {
            println!("  MISMATCH {failure}");
        }
        assert!(
            self.failed.is_empty(),
            "{what}: {} of {total} cases do not hold:\n{}",
            self.failed.len(),
            self.failed.join("\n")
        );
    }
}

fn short(value: &Value) -> String {
    short_text(&value.to_string(), 600)
}

fn short_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        text.to_owned()
    } else {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    }
}

fn site_of(body: &Value) -> Site {
    let id = body["site_id"].as_str().unwrap_or("a.test");
    sites()
        .into_iter()
        .chain([site(EDGE_SITE, "UTC")])
        .find(|s| s.id.as_str() == id)
        .expect("a known site")
}

async fn v2_answer(body: &Value, runner: &dyn SqlRunner) -> Result<Value, String> {
    let site = site_of(body);
    let goals = goals(site.id.as_str());
    let query =
        heartbeat_query::parse_query(body, &site, &goals, NOW_MS, DAY0_MS, &Default::default())
            .map_err(|e| format!("the query does not parse: {e:?}"))?;
    let result = heartbeat_query::execute(&query, runner)
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({
        "results": result.results,
        "total_rows": result.total_rows,
        "time_labels": result.time_labels,
        "imports": format!("{:?}", result.imports),
    }))
}

async fn drop_fixture(fixture: Fixture) {
    common::drop_database(&fixture.database).await;
}

/// `[start, end]` dates of the data set.
fn all_days() -> Value {
    json!(["2024-03-04", "2024-03-17"])
}

/// The v2 cases: every metric, dimension and filter operator, time buckets, comparisons,
/// pagination and ordering, on both sites (one in New York, whose clocks change on
/// 2024-03-10).
fn v2_cases() -> Vec<(String, Value)> {
    let mut cases: Vec<(String, Value)> = Vec::new();
    let mut add = |name: &str, site: &str, mut body: Value| {
        body["site_id"] = json!(site);
        if body.get("date_range").is_none() {
            body["date_range"] = all_days();
        }
        cases.push((format!("{site} {name}"), body));
    };
    for site in ["a.test", "b.test"] {
        add(
            "top stats",
            site,
            json!({"metrics": ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "events"]}),
        );
        add(
            "top stats of one day",
            site,
            json!({"metrics": ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "events"], "date_range": ["2024-03-10", "2024-03-10"]}),
        );
        for grain in ["hour", "day", "week", "month"] {
            add(
                &format!("time:{grain}"),
                site,
                json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "events"], "dimensions": [format!("time:{grain}")], "include": {"time_labels": true}}),
            );
        }
        add(
            "time:hour of one day",
            site,
            json!({"metrics": ["visitors", "pageviews"], "dimensions": ["time:hour"], "date_range": ["2024-03-10", "2024-03-10"]}),
        );
        add(
            "time:day compared with the previous period",
            site,
            json!({"metrics": ["visitors", "visits", "bounce_rate"], "dimensions": ["time:day"], "date_range": ["2024-03-11", "2024-03-17"], "include": {"comparisons": {"mode": "previous_period"}, "time_labels": true}}),
        );
        add(
            "top stats compared with the previous period",
            site,
            json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"], "date_range": ["2024-03-11", "2024-03-17"], "include": {"comparisons": {"mode": "previous_period"}}}),
        );
    }
    let site = "a.test";
    for dimension in [
        "event:page",
        "event:name",
        "event:hostname",
        "event:props:plan",
        "event:props:author",
    ] {
        add(
            dimension,
            site,
            json!({"metrics": ["visitors", "visits", "pageviews", "events"], "dimensions": [dimension]}),
        );
    }
    add(
        "event:page with page metrics",
        site,
        json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "time_on_page", "scroll_depth", "percentage"], "dimensions": ["event:page"]}),
    );
    add(
        "scroll depth of a page",
        site,
        json!({"metrics": ["visitors", "scroll_depth"], "filters": [["is", "event:page", ["/blog"]]]}),
    );
    add(
        "time on page of a page",
        site,
        json!({"metrics": ["visitors", "time_on_page"], "filters": [["is", "event:page", ["/"]]]}),
    );
    for column in [
        "source",
        "referrer",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "channel",
        "country",
        "region",
        "city",
        "device",
        "browser",
        "browser_version",
        "os",
        "os_version",
        "entry_page",
        "exit_page",
    ] {
        add(
            &format!("visit:{column}"),
            site,
            json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "percentage"], "dimensions": [format!("visit:{column}")]}),
        );
    }
    add(
        "visit:exit_page with exit rate",
        site,
        json!({"metrics": ["visitors", "visits", "exit_rate"], "dimensions": ["visit:exit_page"]}),
    );
    add(
        "two dimensions",
        site,
        json!({"metrics": ["visitors", "visits", "pageviews"], "dimensions": ["visit:country", "visit:device"]}),
    );
    add(
        "page by day",
        site,
        json!({"metrics": ["visitors", "pageviews"], "dimensions": ["time:day", "event:page"]}),
    );
    // Filters: every operator, on event, visit and property dimensions.
    let filters: Vec<(&str, Value)> = vec![
        ("is page", json!([["is", "event:page", ["/", "/pricing"]]])),
        ("is_not page", json!([["is_not", "event:page", ["/"]]])),
        (
            "contains page",
            json!([["contains", "event:page", ["blog"]]]),
        ),
        (
            "contains page, any case",
            json!([["contains", "event:page", ["BLOG"], {"case_sensitive": false}]]),
        ),
        (
            "contains_not page",
            json!([["contains_not", "event:page", ["blog"]]]),
        ),
        (
            "matches page",
            json!([["matches", "event:page", ["^/blog/post-[0-9]$"]]]),
        ),
        (
            "matches_not page",
            json!([["matches_not", "event:page", ["^/blog"]]]),
        ),
        (
            "is source",
            json!([["is", "visit:source", ["Google", "Hacker News"]]]),
        ),
        (
            "is_not country",
            json!([["is_not", "visit:country", ["US"]]]),
        ),
        ("is name", json!([["is", "event:name", ["Signup"]]])),
        ("is hostname", json!([["is", "event:hostname", ["a.test"]]])),
        ("is entry page", json!([["is", "visit:entry_page", ["/"]]])),
        (
            "is exit page",
            json!([["is", "visit:exit_page", ["/pricing", "/register"]]]),
        ),
        ("is prop", json!([["is", "event:props:plan", ["pro"]]])),
        (
            "is prop (none)",
            json!([["is", "event:props:author", ["(none)"]]]),
        ),
        (
            "is_not prop",
            json!([["is_not", "event:props:plan", ["free"]]]),
        ),
        (
            "contains prop",
            json!([["contains", "event:props:file", ["pdf"]]]),
        ),
        (
            "and",
            json!([[
                "and",
                [
                    ["is", "visit:device", ["Desktop"]],
                    ["contains", "event:page", ["/"]]
                ]
            ]]),
        ),
        (
            "or",
            json!([[
                "or",
                [
                    ["is", "visit:browser", ["Safari"]],
                    ["is", "visit:country", ["DE"]]
                ]
            ]]),
        ),
        ("not", json!([["not", ["is", "visit:os", ["iOS"]]]])),
        (
            "has_done",
            json!([["has_done", ["is", "event:name", ["Signup"]]]]),
        ),
        (
            "has_not_done",
            json!([["has_not_done", ["is", "event:name", ["Purchase"]]]]),
        ),
    ];
    for (name, filter) in filters {
        add(
            &format!("filter {name}: top stats"),
            site,
            json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "events"], "filters": filter}),
        );
        add(
            &format!("filter {name}: by source"),
            site,
            json!({"metrics": ["visitors", "visits", "bounce_rate"], "dimensions": ["visit:source"], "filters": filter}),
        );
        add(
            &format!("filter {name}: by page"),
            site,
            json!({"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"], "filters": filter}),
        );
    }
    add(
        "pagination and order",
        site,
        json!({"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"], "order_by": [["pageviews", "asc"], ["event:page", "desc"]], "pagination": {"limit": 3, "offset": 2}}),
    );
    add(
        "order by dimension",
        site,
        json!({"metrics": ["visitors"], "dimensions": ["visit:city"], "order_by": [["visit:city", "asc"]], "pagination": {"limit": 4}}),
    );
    cases
}

/// Goals and revenue.
fn goal_cases() -> Vec<(String, Value)> {
    let mut cases = Vec::new();
    let mut add = |name: &str, mut body: Value| {
        body["site_id"] = json!("a.test");
        if body.get("date_range").is_none() {
            body["date_range"] = all_days();
        }
        cases.push((name.to_owned(), body));
    };
    add(
        "goals",
        json!({"metrics": ["visitors", "events", "conversion_rate"], "dimensions": ["event:goal"]}),
    );
    add(
        "goals with revenue",
        json!({"metrics": ["visitors", "events", "total_revenue", "average_revenue"], "dimensions": ["event:goal"]}),
    );
    add(
        "revenue of one goal",
        json!({"metrics": ["visitors", "events", "conversion_rate", "total_revenue", "average_revenue"], "filters": [["is", "event:goal", ["Purchase"]]]}),
    );
    add(
        "goal filter by day",
        json!({"metrics": ["visitors", "events", "conversion_rate"], "dimensions": ["time:day"], "filters": [["is", "event:goal", ["Signup", "Visit /register"]]]}),
    );
    add(
        "goal filter by source",
        json!({"metrics": ["visitors", "conversion_rate", "group_conversion_rate"], "dimensions": ["visit:source"], "filters": [["is", "event:goal", ["Download pro"]]]}),
    );
    add(
        "group conversion by country",
        json!({"metrics": ["visitors", "group_conversion_rate"], "dimensions": ["visit:country"], "filters": [["is", "event:goal", ["Visit /blog/**"]]]}),
    );
    add(
        "goals matching",
        json!({"metrics": ["visitors", "events"], "dimensions": ["event:goal"], "filters": [["contains", "event:goal", ["Visit"]]]}),
    );
    add(
        "has_done goal",
        json!({"metrics": ["visitors", "visits"], "dimensions": ["visit:device"], "filters": [["has_done", ["is", "event:goal", ["Purchase"]]]]}),
    );
    cases
}

async fn run_v2_cases(what: &str, cases: Vec<(String, Value)>) {
    let fixture = fixture().await;
    let mut report = Report::default();
    for (name, body) in cases {
        let a = v2_answer(&body, &fixture.duckdb).await;
        let b = v2_answer(&body, &fixture.clickhouse).await;
        report.check(&name, a, b);
    }
    drop_fixture(fixture).await;
    report.finish(what);
}

#[tokio::test]
async fn v2_queries_answer_the_same() {
    run_v2_cases("v2 queries", v2_cases()).await;
}

/// Imported statistics added to native ones (`include.imports`).
fn import_cases() -> Vec<(String, Value)> {
    let range = json!(["2024-02-26", "2024-03-17"]);
    let include = json!({"imports": true});
    let mut cases = Vec::new();
    let mut add = |name: &str, mut body: Value| {
        body["site_id"] = json!("a.test");
        body["date_range"] = range.clone();
        body["include"] = include.clone();
        cases.push((format!("imports: {name}"), body));
    };
    add(
        "top stats",
        json!({"metrics": ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"]}),
    );
    add(
        "by day",
        json!({"metrics": ["visitors", "visits", "pageviews"], "dimensions": ["time:day"]}),
    );
    add(
        "by week",
        json!({"metrics": ["visitors", "pageviews"], "dimensions": ["time:week"]}),
    );
    add(
        "by source",
        json!({"metrics": ["visitors", "visits", "bounce_rate"], "dimensions": ["visit:source"]}),
    );
    add(
        "by page",
        json!({"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]}),
    );
    add(
        "by entry page",
        json!({"metrics": ["visitors", "visits", "bounce_rate"], "dimensions": ["visit:entry_page"]}),
    );
    add(
        "by exit page",
        json!({"metrics": ["visitors", "visits", "exit_rate"], "dimensions": ["visit:exit_page"]}),
    );
    add(
        "by country",
        json!({"metrics": ["visitors", "percentage"], "dimensions": ["visit:country"]}),
    );
    add(
        "by browser, filtered",
        json!({"metrics": ["visitors"], "dimensions": ["visit:browser"], "filters": [["is", "visit:browser", ["Chrome", "Safari"]]]}),
    );
    add(
        "by goal",
        json!({"metrics": ["visitors", "events", "conversion_rate"], "dimensions": ["event:goal"]}),
    );
    cases
}

#[tokio::test]
async fn imported_statistics_answer_the_same() {
    // The cases do read the import (on DuckDB, the reference).
    let fixture = fixture().await;
    for (name, body) in import_cases() {
        let answer = v2_answer(&body, &fixture.duckdb).await.unwrap();
        assert!(
            answer["imports"]
                .as_str()
                .unwrap()
                .contains("included: true"),
            "{name}: {answer}"
        );
    }
    drop_fixture(fixture).await;
    run_v2_cases("imported statistics", import_cases()).await;
}

#[tokio::test]
async fn goals_and_revenue_answer_the_same() {
    run_v2_cases("goals and revenue", goal_cases()).await;
}

fn event_json(event: &heartbeat_query::ListedEvent) -> Value {
    serde_json::to_value(event).expect("a listed event is JSON")
}

async fn listing_answer(
    listing: &heartbeat_query::EventListing,
    runner: &dyn SqlRunner,
) -> Result<Value, String> {
    let mut listing = listing.clone();
    let mut pages = Vec::new();
    // Every page, each after the previous page's cursor.
    for _ in 0..100 {
        let page = heartbeat_query::list_events(&listing, runner)
            .await
            .map_err(|e| e.to_string())?;
        pages.push(Value::Array(page.events.iter().map(event_json).collect()));
        match page.next {
            Some(cursor) => listing.after = Some(cursor),
            None => break,
        }
    }
    Ok(Value::Array(pages))
}

async fn journey_answer(body: &Value, runner: &dyn SqlRunner) -> Result<Value, String> {
    let site = site_of(body);
    let query = heartbeat_query::parse_journey(body, &site, NOW_MS, DAY0_MS, &Default::default())
        .map_err(|e| format!("the journey does not parse: {e:?}"))?;
    let journey = heartbeat_query::journey(&query, runner)
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!(format!("{journey:#?}")))
}

#[tokio::test]
async fn listing_and_journeys_answer_the_same() {
    let fixture = fixture().await;
    let mut report = Report::default();
    let site = SiteId::from("a.test");
    let mut listings = vec![(
        "all events, pages of 7",
        heartbeat_query::EventListing::new(site.clone(), 7),
    )];
    let mut named = heartbeat_query::EventListing::new(site.clone(), 5);
    named.names = vec!["Purchase".into(), "Signup".into()];
    listings.push(("by name", named));
    let mut prop = heartbeat_query::EventListing::new(site.clone(), 4);
    prop.prop = Some(("plan".into(), "pro".into()));
    listings.push(("by property", prop));
    let mut ranged = heartbeat_query::EventListing::new(site.clone(), 10);
    ranged.start_ms = Some(DAY0_MS + 3 * DAY_MS);
    ranged.end_ms = Some(DAY0_MS + 5 * DAY_MS);
    listings.push(("in a range", ranged));
    let mut one = heartbeat_query::EventListing::new(SiteId::from("b.test"), 10);
    one.event_id = Some("e00900".into());
    listings.push(("one event", one));
    for (name, listing) in &listings {
        let a = listing_answer(listing, &fixture.duckdb).await;
        let b = listing_answer(listing, &fixture.clickhouse).await;
        report.check(&format!("listing {name}"), a, b);
    }
    for (name, f) in [("current visitors", 0), ("first event", 1)] {
        let (a, b) = if f == 0 {
            let at = DAY0_MS + 3 * DAY_MS + 12 * 3_600_000;
            (
                heartbeat_query::current_visitors(&site, at, &fixture.duckdb)
                    .await
                    .map(|v| json!(v))
                    .map_err(|e| e.to_string()),
                heartbeat_query::current_visitors(&site, at, &fixture.clickhouse)
                    .await
                    .map(|v| json!(v))
                    .map_err(|e| e.to_string()),
            )
        } else {
            (
                heartbeat_query::first_event_ms(&site, &fixture.duckdb)
                    .await
                    .map(|v| json!(v))
                    .map_err(|e| e.to_string()),
                heartbeat_query::first_event_ms(&site, &fixture.clickhouse)
                    .await
                    .map(|v| json!(v))
                    .map_err(|e| e.to_string()),
            )
        };
        report.check(name, a, b);
    }
    let journeys = [
        (
            "a user",
            json!({"site_id": "a.test", "user_id": "user-4", "date_range": all_days()}),
        ),
        (
            "a user, limited",
            json!({"site_id": "a.test", "user_id": "user-8", "date_range": all_days(), "limit": 3}),
        ),
        (
            "a visitor",
            json!({"site_id": "a.test", "visitor_id": 10_000 + 5 * 7919, "date_range": all_days()}),
        ),
        (
            "a visitor in New York",
            json!({"site_id": "b.test", "visitor_id": 10_000 + 3 * 7919 + 1, "date_range": all_days()}),
        ),
        (
            "an unknown user",
            json!({"site_id": "a.test", "user_id": "nobody", "date_range": all_days()}),
        ),
    ];
    for (name, body) in journeys {
        let a = journey_answer(&body, &fixture.duckdb).await;
        let b = journey_answer(&body, &fixture.clickhouse).await;
        report.check(&format!("journey {name}"), a, b);
    }
    drop_fixture(fixture).await;
    report.finish("listing and journeys");
}

async fn funnel_answer(body: &Value, runner: &dyn SqlRunner) -> Result<Value, String> {
    let site = site_of(body);
    let query =
        heartbeat_query::funnel::parse_funnel(body, &site, NOW_MS, DAY0_MS, &Default::default())
            .map_err(|e| format!("the funnel does not parse: {e:?}"))?;
    let result = heartbeat_query::funnel::run_funnel(&query, runner)
        .await
        .map_err(|e| e.to_string())?;
    Ok(result.to_json(&query))
}

/// Funnels of every order, within one visit and with a duration window, broken down and
/// filtered: on ClickHouse 18.16 the statement of `compile/funnel/arrays.rs` (each group's
/// events as sorted arrays), on DuckDB the window statements of `compile/funnel.rs`.
#[tokio::test]
async fn funnels_answer_the_same() {
    let fixture = fixture().await;
    let mut report = Report::default();
    let steps = json!([{"page": "/"}, {"page": "/blog**"}, {"event": "Signup"}]);
    let mut cases = Vec::new();
    for order in ["strict", "ordered", "any"] {
        for (window, w) in [
            ("visit", json!({"visit": true})),
            ("1 day", json!({"seconds": 86_400})),
        ] {
            cases.push((
                format!("{order}, window {window}"),
                json!({"site_id": "a.test", "date_range": all_days(), "steps": steps, "order": order, "window": w}),
            ));
        }
        cases.push((
            format!("{order}, by source"),
            json!({"site_id": "a.test", "date_range": all_days(), "steps": [{"page": "/"}, {"event": "Purchase"}], "order": order, "breakdown": "visit:source"}),
        ));
        cases.push((
            format!("{order}, filtered, with props"),
            json!({"site_id": "b.test", "date_range": all_days(), "steps": [{"page": "/pricing"}, {"event": "Download", "props": {"plan": "pro"}}, {"page": "/register"}], "order": order, "filters": [["is", "visit:device", ["Desktop", "Mobile"]]]}),
        ));
        cases.push((
            format!("{order}, window 1 hour, by device, filtered"),
            json!({"site_id": "b.test", "date_range": all_days(), "steps": [{"page": "/blog/**"}, {"page": "/pricing"}, {"event": "Purchase", "props": {"plan": "pro"}}], "order": order, "window": {"seconds": 3600}, "breakdown": "visit:device", "filters": [["is_not", "visit:country", ["FR"]]]}),
        ));
    }
    // A filter on an event dimension: events of one visit pass it or not, so an any-order
    // funnel within a visit takes its joins rather than one grouping.
    cases.push((
        "any, filtered by an event's page".to_owned(),
        json!({"site_id": "a.test", "date_range": all_days(), "steps": steps, "order": "any", "filters": [["is_not", "event:page", ["/"]]]}),
    ));
    // The window's edges, to the millisecond.
    for order in ["strict", "ordered", "any"] {
        cases.push((
            format!("{order}, window 1 day, at its edges"),
            json!({"site_id": EDGE_SITE, "date_range": all_days(), "steps": steps, "order": order, "window": {"seconds": 86_400}}),
        ));
    }
    cases.push((
        "ordered, within a second".to_owned(),
        json!({"site_id": EDGE_SITE, "date_range": all_days(), "steps": steps, "order": "ordered"}),
    ));
    for (name, body) in cases {
        let a = funnel_answer(&body, &fixture.duckdb).await;
        let b = funnel_answer(&body, &fixture.clickhouse).await;
        report.check(&format!("funnel {name}"), a, b);
    }
    drop_fixture(fixture).await;
    report.finish("funnels");
}

async fn retention_answer(body: &Value, runner: &dyn SqlRunner) -> Result<Value, String> {
    let site = site_of(body);
    let query = heartbeat_query::parse_retention(body, &site, NOW_MS, DAY0_MS, &Default::default())
        .map_err(|e| format!("the retention does not parse: {e:?}"))?;
    let answer = heartbeat_query::retention(&query, runner)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_value(answer).map_err(|e| e.to_string())
}

#[tokio::test]
async fn retention_answers_the_same() {
    let fixture = fixture().await;
    let mut report = Report::default();
    let cases = [
        (
            "by day",
            json!({"site_id": "a.test", "date_range": all_days(), "period": "day", "periods": 7}),
        ),
        (
            "by week",
            json!({"site_id": "a.test", "date_range": all_days(), "period": "week", "periods": 2}),
        ),
        (
            "by day in New York",
            json!({"site_id": "b.test", "date_range": all_days(), "period": "day", "periods": 5}),
        ),
        (
            "by day, events",
            json!({"site_id": "a.test", "date_range": all_days(), "period": "day", "periods": 7, "cohort_event": "pageview", "return_event": "Signup"}),
        ),
        (
            "by week, filtered",
            json!({"site_id": "a.test", "date_range": all_days(), "period": "week", "periods": 2, "filters": [["is", "visit:device", ["Desktop"]]]}),
        ),
    ];
    for (name, body) in cases {
        let a = retention_answer(&body, &fixture.duckdb).await;
        let b = retention_answer(&body, &fixture.clickhouse).await;
        report.check(&format!("retention {name}"), a, b);
    }
    drop_fixture(fixture).await;
    report.finish("retention");
}

async fn paths_answer(body: &Value, runner: &dyn SqlRunner) -> Result<Value, String> {
    let site = site_of(body);
    let query = heartbeat_query::parse_paths(body, &site, NOW_MS, DAY0_MS, &Default::default())
        .map_err(|e| format!("the paths do not parse: {e:?}"))?;
    let answer = heartbeat_query::paths(&query, runner)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_value(answer).map_err(|e| e.to_string())
}

/// Paths from visits' start, a page and an event, forward and backward, filtered: on
/// ClickHouse 18.16 the statement of `compile/paths/arrays.rs` (each visit's walk as one
/// sorted array), on DuckDB the window statement of `compile/paths.rs`.
#[tokio::test]
async fn paths_answer_the_same() {
    let fixture = fixture().await;
    let mut report = Report::default();
    let cases = [
        (
            "from visits' start",
            json!({"site_id": "a.test", "date_range": all_days()}),
        ),
        (
            "next from a page",
            json!({"site_id": "a.test", "date_range": all_days(), "page": "/", "direction": "forward", "depth": 4, "limit": 20}),
        ),
        (
            "previous from a page",
            json!({"site_id": "a.test", "date_range": all_days(), "page": "/register", "direction": "backward", "depth": 3}),
        ),
        (
            "from an event",
            json!({"site_id": "b.test", "date_range": all_days(), "event": "Signup", "depth": 2}),
        ),
        (
            "filtered",
            json!({"site_id": "a.test", "date_range": all_days(), "page": "/blog", "filters": [["is", "visit:country", ["US", "DE"]]]}),
        ),
        (
            "folded into (other)",
            json!({"site_id": "a.test", "date_range": all_days(), "page": "/", "depth": 3, "limit": 2}),
        ),
        (
            "backward from visits' exit",
            json!({"site_id": "b.test", "date_range": all_days(), "direction": "backward", "depth": 5, "limit": 3}),
        ),
        (
            "previous from an event, filtered",
            json!({"site_id": "a.test", "date_range": all_days(), "event": "Purchase", "direction": "backward", "filters": [["is", "visit:device", ["Desktop"]]]}),
        ),
    ];
    for (name, body) in cases {
        let a = paths_answer(&body, &fixture.duckdb).await;
        let b = paths_answer(&body, &fixture.clickhouse).await;
        report.check(&format!("paths {name}"), a, b);
    }
    drop_fixture(fixture).await;
    report.finish("paths");
}
