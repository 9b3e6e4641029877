//! The DuckDB schema, applied in order by version on open.
//!
//! Tables:
//! - `events`: one row per stored event; visit-level columns (source, UTMs, geo, device) carry
//!   the values of the visit's first event, so visit dimensions work on events too.
//! - `event_props`: one row per custom property of an event, for `event:props:*` breakdowns.
//! - `sessions`: the collapsing log of visit states (`sign` = 1 adds a state, -1 cancels one).
//! - `queue_checkpoint`: the queue position of the last committed insert (one row).
//! - `sites` (with `retention_days`, NULL: forever; `org_id`, NULL: the default organisation),
//!   `api_keys` (of a site, an organisation or everything): metadata.
//! - `orgs`, `users`, `memberships` (a user's role per organisation), `user_sessions`,
//!   `share_links` (public dashboard links): accounts.
//! - `funnels`: saved funnels of a site, each definition as JSON.
//! - `alert_rules`, `webhooks`, `report_subscriptions`, `annotations`: what a site's alerts,
//!   reports and chart notes are; `alert_events`: the history of firings; `deliveries`: the
//!   outbox of alert notices and reports, kept until delivered or given up on.

/// The visit attributes (source, UTMs, location, device) as columns: events carry their
/// visit's, and each state of a visit in `sessions` has them.
macro_rules! visit_columns {
    () => {
        "
    referrer VARCHAR NOT NULL,
    referrer_source VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    utm_source VARCHAR NOT NULL,
    utm_medium VARCHAR NOT NULL,
    utm_campaign VARCHAR NOT NULL,
    utm_content VARCHAR NOT NULL,
    utm_term VARCHAR NOT NULL,
    country VARCHAR NOT NULL,
    region VARCHAR NOT NULL,
    city VARCHAR NOT NULL,
    browser VARCHAR NOT NULL,
    browser_version VARCHAR NOT NULL,
    os VARCHAR NOT NULL,
    os_version VARCHAR NOT NULL,
    device VARCHAR NOT NULL,
    screen VARCHAR NOT NULL,
"
    };
}

/// A rollup cell as columns: hourly and daily cells have the same.
macro_rules! rollup_columns {
    () => {
        "
    site_id VARCHAR NOT NULL,
    start_ms BIGINT NOT NULL,
    dim VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    visitors BLOB NOT NULL,
    pageviews BIGINT NOT NULL,
    events BIGINT NOT NULL,
    visits BIGINT NOT NULL,
    bounces BIGINT NOT NULL,
    duration_s BIGINT NOT NULL,
    visit_pageviews BIGINT NOT NULL,
    visit_events BIGINT NOT NULL
"
    };
}

/// Each migration runs once, in order; the applied count is kept in `schema_version`.
pub const MIGRATIONS: &[&str] = &[
    concat!(
        r#"
CREATE TABLE events (
    site_id VARCHAR NOT NULL,
    event_id VARCHAR NOT NULL,
    client_event_id BOOLEAN NOT NULL,
    name VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    visitor_id UBIGINT NOT NULL,
    session_id UBIGINT NOT NULL,
    user_id VARCHAR,
    client_session_id VARCHAR,
    hostname VARCHAR NOT NULL,
    pathname VARCHAR NOT NULL,
"#,
        visit_columns!(),
        r#"    props_json VARCHAR NOT NULL,
    revenue_micros BIGINT,
    revenue_currency VARCHAR,
    interactive BOOLEAN NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE TABLE event_props (
    site_id VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    name VARCHAR NOT NULL,
    visitor_id UBIGINT NOT NULL,
    session_id UBIGINT NOT NULL,
    pathname VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    value VARCHAR NOT NULL
);
CREATE TABLE sessions (
    site_id VARCHAR NOT NULL,
    session_id UBIGINT NOT NULL,
    visitor_id UBIGINT NOT NULL,
    sign TINYINT NOT NULL,
    version UINTEGER NOT NULL,
    start_ts TIMESTAMP NOT NULL,
    end_ts TIMESTAMP NOT NULL,
    duration_s BIGINT NOT NULL,
    pageviews UINTEGER NOT NULL,
    events UINTEGER NOT NULL,
    engagements UINTEGER NOT NULL,
    bounce TINYINT NOT NULL,
    entry_page VARCHAR NOT NULL,
    exit_page VARCHAR NOT NULL,
    hostname VARCHAR NOT NULL,
"#,
        visit_columns!(),
        r#"    user_id VARCHAR
);
CREATE TABLE queue_checkpoint (id INTEGER PRIMARY KEY, position UBIGINT NOT NULL);
CREATE TABLE sites (
    id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    domain VARCHAR NOT NULL UNIQUE,
    timezone VARCHAR NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE api_keys (
    id VARCHAR PRIMARY KEY,
    site_id VARCHAR,
    scope VARCHAR NOT NULL,
    secret_sha256 VARCHAR NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL
);
"#
    ),
    // Per-site ingest rules (allowed hostnames, excluded paths and IPs, Do Not Track), as
    // the JSON of `SiteRules`: read and written whole, never queried by field. (DuckDB
    // cannot add a column with a NOT NULL constraint; NULL reads as no rules.)
    r#"
ALTER TABLE sites ADD COLUMN rules_json VARCHAR DEFAULT '{}';
"#,
    // Which event a property belongs to, for `event:props:*` filters on events. Rows
    // written before this migration have none and match no such filter.
    r#"
ALTER TABLE event_props ADD COLUMN event_id VARCHAR;
"#,
    // Per-site retention in days; NULL keeps events forever.
    "ALTER TABLE sites ADD COLUMN retention_days INTEGER",
    // Rollups (`heartbeat_rollup`): per site, UTC hour or day, dimension and value,
    // a sketch of the visitors and the sums of events and visits. Built from the events
    // on opening a store that has events and no rollups.
    concat!(
        "CREATE TABLE rollups_hourly (",
        rollup_columns!(),
        ");\nCREATE TABLE rollups_daily (",
        rollup_columns!(),
        ");"
    ),
    // Accounts: organisations holding sites (NULL org: the default one), keys of a site, an
    // organisation or everything with a label and a last-used time, dashboard users with a
    // role per organisation, their sessions, and public dashboard links. Secrets are SHA-256
    // digests, passwords argon2 PHC strings.
    r#"
CREATE TABLE orgs (id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, created_at_ms BIGINT NOT NULL);
ALTER TABLE sites ADD COLUMN org_id VARCHAR;
ALTER TABLE api_keys ADD COLUMN org_id VARCHAR;
ALTER TABLE api_keys ADD COLUMN name VARCHAR;
ALTER TABLE api_keys ADD COLUMN last_used_at_ms BIGINT;
CREATE TABLE users (
    id VARCHAR PRIMARY KEY,
    email VARCHAR NOT NULL UNIQUE,
    password_hash VARCHAR NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE memberships (
    user_id VARCHAR NOT NULL,
    org_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    PRIMARY KEY (user_id, org_id)
);
CREATE TABLE user_sessions (
    token_sha256 VARCHAR PRIMARY KEY,
    user_id VARCHAR NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE TABLE share_links (
    site_id VARCHAR PRIMARY KEY,
    token_sha256 VARCHAR NOT NULL,
    password_hash VARCHAR,
    created_at_ms BIGINT NOT NULL
);
"#,
    // Imported statistics (Plausible's CSV export): each import of a site, and its daily
    // aggregates per table, with the columns of `heartbeat_model::ImportedTable`. Kept apart
    // from native events; queries add them only when asked (`include.imports`).
    r#"
CREATE TABLE site_imports (
    id UBIGINT PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    start_date DATE NOT NULL,
    end_date DATE NOT NULL,
    imported_at_ms BIGINT NOT NULL
);
CREATE TABLE imported_visitors (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    visitors UBIGINT NOT NULL, pageviews UBIGINT NOT NULL, bounces UBIGINT NOT NULL, visits UBIGINT NOT NULL,
    visit_duration UBIGINT NOT NULL);
CREATE TABLE imported_sources (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    source VARCHAR NOT NULL, referrer VARCHAR NOT NULL, utm_source VARCHAR NOT NULL, utm_medium VARCHAR NOT NULL,
    utm_campaign VARCHAR NOT NULL, utm_content VARCHAR NOT NULL, utm_term VARCHAR NOT NULL, channel VARCHAR NOT NULL,
    visitors UBIGINT NOT NULL, visits UBIGINT NOT NULL, visit_duration UBIGINT NOT NULL, bounces UBIGINT NOT NULL,
    pageviews UBIGINT NOT NULL);
CREATE TABLE imported_pages (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    hostname VARCHAR NOT NULL, page VARCHAR NOT NULL, visits UBIGINT NOT NULL, visitors UBIGINT NOT NULL,
    pageviews UBIGINT NOT NULL, scroll_depth UBIGINT, pageleave_visitors UBIGINT NOT NULL);
CREATE TABLE imported_entry_pages (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    entry_page VARCHAR NOT NULL, visitors UBIGINT NOT NULL, entrances UBIGINT NOT NULL,
    visit_duration UBIGINT NOT NULL, bounces UBIGINT NOT NULL, pageviews UBIGINT NOT NULL);
CREATE TABLE imported_exit_pages (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    exit_page VARCHAR NOT NULL, visitors UBIGINT NOT NULL, visit_duration UBIGINT NOT NULL, exits UBIGINT NOT NULL,
    bounces UBIGINT NOT NULL, pageviews UBIGINT NOT NULL);
CREATE TABLE imported_custom_events (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    name VARCHAR NOT NULL, link_url VARCHAR NOT NULL, path VARCHAR NOT NULL, visitors UBIGINT NOT NULL,
    events UBIGINT NOT NULL);
CREATE TABLE imported_locations (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    country VARCHAR NOT NULL, region VARCHAR NOT NULL, city VARCHAR NOT NULL, visitors UBIGINT NOT NULL,
    visits UBIGINT NOT NULL, visit_duration UBIGINT NOT NULL, bounces UBIGINT NOT NULL, pageviews UBIGINT NOT NULL);
CREATE TABLE imported_devices (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    device VARCHAR NOT NULL, visitors UBIGINT NOT NULL, visits UBIGINT NOT NULL, visit_duration UBIGINT NOT NULL,
    bounces UBIGINT NOT NULL, pageviews UBIGINT NOT NULL);
CREATE TABLE imported_browsers (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    browser VARCHAR NOT NULL, browser_version VARCHAR NOT NULL, visitors UBIGINT NOT NULL, visits UBIGINT NOT NULL,
    visit_duration UBIGINT NOT NULL, bounces UBIGINT NOT NULL, pageviews UBIGINT NOT NULL);
CREATE TABLE imported_operating_systems (site_id VARCHAR NOT NULL, import_id UBIGINT NOT NULL, date DATE NOT NULL,
    operating_system VARCHAR NOT NULL, operating_system_version VARCHAR NOT NULL, visitors UBIGINT NOT NULL,
    visits UBIGINT NOT NULL, visit_duration UBIGINT NOT NULL, bounces UBIGINT NOT NULL, pageviews UBIGINT NOT NULL);
"#,
    // Plausible's Sites API: the custom properties a site declared (Plausible's
    // `allowed_event_props`, a JSON array in their order; NULL: none declared), and named
    // public dashboard links (any number per site, found by name; the token's SHA-256 only).
    r#"
ALTER TABLE sites ADD COLUMN custom_props_json VARCHAR;
CREATE TABLE named_share_links (
    site_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    token_sha256 VARCHAR NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (site_id, name)
);
"#,
    // Plausible's engagement events: the scroll depth (percent; NULL: none reported) and the
    // engaged time (milliseconds) they report. Other events have NULL and 0.
    r#"
ALTER TABLE events ADD COLUMN scroll_depth UTINYINT;
ALTER TABLE events ADD COLUMN engagement_time_ms UINTEGER DEFAULT 0;
"#,
    // Goals: a page-view goal (path pattern) or a custom-event goal (name, property values),
    // as the JSON of `GoalKind`, under a display name unique within the site.
    r#"
CREATE TABLE goals (
    id UBIGINT PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    display_name VARCHAR NOT NULL,
    kind_json VARCHAR NOT NULL,
    currency VARCHAR,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (site_id, display_name)
);
"#,
    // Saved funnels of a site: the definition (steps, window, order) as the JSON of
    // `heartbeat_model::FunnelDefinition`, read and written whole.
    r#"
CREATE TABLE funnels (
    id VARCHAR PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    definition_json VARCHAR NOT NULL,
    created_at_ms BIGINT NOT NULL
);
"#,
    // Rollup cells keep their visitors' ids while few (exact counts); the cells of the old
    // form are rebuilt from the events on open.
    r#"
DELETE FROM rollups_hourly;
DELETE FROM rollups_daily;
"#,
    // Alerts, reports and annotations (`heartbeat_model::alert`): typed columns for what is
    // filtered or sorted, JSON for the nested parts read and written whole (a rule's
    // condition, webhook ids and emails; a delivery's target). Only the tables that grow
    // with time are indexed, for the queries that filter them: a site's firings by time, and
    // the outbox's pending deliveries by their next attempt.
    r#"
CREATE TABLE alert_rules (
    id VARCHAR PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    filters_json VARCHAR NOT NULL,
    window_minutes UINTEGER NOT NULL,
    condition_json VARCHAR NOT NULL,
    cooldown_minutes UINTEGER NOT NULL,
    webhook_ids_json VARCHAR NOT NULL,
    emails_json VARCHAR NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE webhooks (
    id VARCHAR PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    secret VARCHAR NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE report_subscriptions (
    id VARCHAR PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    email VARCHAR NOT NULL,
    period VARCHAR NOT NULL,
    unsubscribe_token VARCHAR NOT NULL,
    last_sent_period VARCHAR,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE annotations (
    id VARCHAR PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    at_ms BIGINT NOT NULL,
    text VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    alert_event_id VARCHAR,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE alert_events (
    id VARCHAR PRIMARY KEY,
    rule_id VARCHAR NOT NULL,
    site_id VARCHAR NOT NULL,
    fired_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    value DOUBLE NOT NULL,
    expected DOUBLE NOT NULL,
    message VARCHAR NOT NULL
);
CREATE INDEX alert_events_by_site_time ON alert_events (site_id, fired_at_ms);
CREATE TABLE deliveries (
    id VARCHAR PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    target_json VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    payload VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    attempts UINTEGER NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    last_error VARCHAR,
    created_at_ms BIGINT NOT NULL,
    delivered_at_ms BIGINT
);
CREATE INDEX deliveries_by_status_next_attempt ON deliveries (status, next_attempt_ms);
"#,
    // Visitor-id salts by UTC day, when the metadata store is the one ingest nodes share
    // (`MetaStore::day_salt`); a single node keeps its salts in `salts.json`.
    r#"
CREATE TABLE day_salts (day BIGINT PRIMARY KEY, salt BLOB NOT NULL);
"#,
    // Entry- and exit-page cells count their visits' visitors (before: entry pages had visit
    // sums only, exit pages no cells). Cleared here, then built again from the visit log in
    // the same transaction (`VISIT_PAGE_VISITORS`).
    r#"
DELETE FROM rollups_hourly WHERE dim IN ('visit:entry_page', 'visit:exit_page');
DELETE FROM rollups_daily WHERE dim IN ('visit:entry_page', 'visit:exit_page');
"#,
    // A rollup rebuild under way: the next UTC day whose cells are built again from the
    // events, where it ends, and whether the cells there are may answer meanwhile
    // (`rollups::rebuild_next_day`). The migration schedules one for every store
    // (`REBUILD_CELLS`), its cells answering meanwhile: a batch over more periods than the
    // rollup cache kept (an import, a backfill) could write cells without an earlier
    // batch's changes.
    r#"
CREATE TABLE rollup_rebuild (
    next_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    cells_usable BOOLEAN NOT NULL
);
"#,
];

/// The version whose migration is followed, in its transaction, by counting the entry- and
/// exit-page cells again from the visit log (`rollups::rebuild_visit_pages`).
pub const VISIT_PAGE_VISITORS: usize = 15;

/// The version whose migration is followed, in its transaction, by scheduling every cell to
/// be built again (`rollups::schedule_rebuild`).
pub const REBUILD_CELLS: usize = 16;
