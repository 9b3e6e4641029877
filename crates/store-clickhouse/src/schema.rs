//! The schema, applied to each shard directly at open (18.16 has no `ON CLUSTER` without
//! ZooKeeper): on every shard a local table holds that shard's rows, and a `Distributed`
//! table of the same columns, named as the query crate names DuckDB's tables, reads (and
//! writes) all shards' rows. Migrations run in order by version, recorded per shard in
//! `schema_migrations`; every statement is `IF NOT EXISTS`, so a migration cut short is
//! simply applied again.

use heartbeat_model::ImportedTable;

/// The visit attributes (source, UTMs, location, device), in `VisitAttributes`' order:
/// events carry their visit's, and each state of a visit has them.
pub(crate) const VISIT_COLUMNS: [&str; 17] = [
    "referrer",
    "referrer_source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "country",
    "region",
    "city",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen",
];

fn visit_columns() -> String {
    VISIT_COLUMNS
        .iter()
        .map(|name| format!("    {name} String,\n"))
        .collect()
}

/// The columns of a visit state (`sessions` and `visit_states`).
fn session_columns() -> String {
    let visit = visit_columns();
    format!(
        "    site_id String,
    session_id UInt64,
    visitor_id UInt64,
    sign Int8,
    version UInt32,
    start_ts DateTime,
    end_ts DateTime,
    start_ms Int64,
    end_ms Int64,
    duration_s Int64,
    pageviews UInt32,
    events UInt32,
    engagements UInt32,
    bounce Int8,
    entry_page String,
    exit_page String,
    hostname String,
{visit}    user_id Nullable(String),
    batch_position UInt64"
    )
}

/// A local table and the `Distributed` table over it on every shard, sharded by `key`.
fn sharded(
    db: &str,
    cluster: &str,
    name: &str,
    columns: &str,
    engine: &str,
    key: &str,
) -> [String; 2] {
    [
        format!("CREATE TABLE IF NOT EXISTS {db}.{name}_local (\n{columns}\n) ENGINE = {engine}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{name} AS {db}.{name}_local \
             ENGINE = Distributed({cluster}, {db}, {name}_local, {key})"
        ),
    ]
}

/// The statements of each migration, in order, for database `db` in cluster `cluster` (both
/// checked to be plain names by the caller).
pub(crate) fn migrations(db: &str, cluster: &str) -> Vec<Vec<String>> {
    let visit = visit_columns();
    let mut first = Vec::new();
    // Events: exact milliseconds in `ts_ms` beside `ts` (whole seconds, what queries read);
    // `batch_position` is the queue position of the insert that wrote the row (0 for
    // imported events), so the rows of an insert that never committed can be rolled back.
    first.extend(sharded(
        db,
        cluster,
        "events",
        &format!(
            "    site_id String,
    event_id String,
    client_event_id UInt8,
    name String,
    ts DateTime,
    ts_ms Int64,
    visitor_id UInt64,
    session_id UInt64,
    user_id Nullable(String),
    client_session_id Nullable(String),
    hostname String,
    pathname String,
{visit}    props_json String,
    revenue_micros Nullable(Int64),
    revenue_currency Nullable(String),
    interactive UInt8,
    received_at DateTime,
    scroll_depth Nullable(UInt8),
    engagement_time_ms UInt32,
    batch_position UInt64"
        ),
        "MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (site_id, ts, event_id)",
        "visitor_id",
    ));
    first.extend(sharded(
        db,
        cluster,
        "event_props",
        "    site_id String,
    ts DateTime,
    ts_ms Int64,
    name String,
    visitor_id UInt64,
    session_id UInt64,
    pathname String,
    key String,
    value String,
    event_id String,
    batch_position UInt64",
        "MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (site_id, key, ts)",
        "visitor_id",
    ));
    // The collapsing log of visit states: a state and its cancelling row share the sorting
    // key (site, visit, version), so merges drop both.
    first.extend(sharded(
        db,
        cluster,
        "sessions",
        &session_columns(),
        "CollapsingMergeTree(sign) PARTITION BY toYYYYMM(start_ts) \
         ORDER BY (site_id, session_id, version)",
        "visitor_id",
    ));
    // The queue position of each committed insert, newest by `seq`; only the first shard's
    // table is used.
    first.push(format!(
        "CREATE TABLE IF NOT EXISTS {db}.queue_positions (partition UInt32, seq UInt64, \
         position UInt64, written_at DateTime) ENGINE = MergeTree ORDER BY (partition, seq)"
    ));
    first.extend(sharded(
        db,
        cluster,
        "site_imports",
        "    id UInt64,
    site_id String,
    source String,
    start_date Date,
    end_date Date,
    imported_at_ms Int64",
        "MergeTree ORDER BY (site_id, id)",
        "id",
    ));
    for table in ImportedTable::ALL {
        let mut columns = String::from("    site_id String,\n    import_id UInt64,\n    date Date");
        for text in table.text_columns() {
            columns.push_str(&format!(",\n    {text} String"));
        }
        for count in table.count_columns() {
            let ty = if count.nullable {
                "Nullable(UInt64)"
            } else {
                "UInt64"
            };
            columns.push_str(&format!(",\n    {} {ty}", count.name));
        }
        first.extend(sharded(
            db,
            cluster,
            table.name(),
            &columns,
            "MergeTree PARTITION BY toYYYYMM(date) ORDER BY (site_id, date)",
            "import_id",
        ));
    }
    // 2: the visit states again, sorted by their end: what the processor looks up (the
    // visits an event batch may continue, the visits still open) is a range of ends, which
    // `sessions`' order (by visit) can only scan. A materialized view copies every row
    // written to `sessions_local` (states and cancelling rows, so merges collapse them here
    // too); the rows written before it are copied once. That copy may repeat rows written
    // meanwhile, or all of them if the migration is cut short and applied again: harmless
    // to its readers, which take each visit's newest state and never add its signs.
    // Deletes and rollbacks go to both tables. (The view copies `*`: a migration that adds
    // a column to `sessions` adds it here and recreates the view.)
    let mut second = sharded(
        db,
        cluster,
        "visit_states",
        &session_columns(),
        "CollapsingMergeTree(sign) PARTITION BY toYYYYMM(end_ts) \
         ORDER BY (site_id, end_ms, session_id, version)",
        "visitor_id",
    )
    .to_vec();
    second.push(format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.visit_states_feed \
         TO {db}.visit_states_local AS SELECT * FROM {db}.sessions_local"
    ));
    second.push(format!(
        "INSERT INTO {db}.visit_states_local SELECT * FROM {db}.sessions_local"
    ));
    vec![first, second]
}
