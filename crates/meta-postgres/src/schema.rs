//! The PostgreSQL schema and how it is brought up to date.
//!
//! Each [`Migration`] runs once, in version order, and is recorded in
//! `heartbeat_migrations (version, applied_at)`. [`migrate`] applies the missing ones in one
//! transaction that first takes a transaction-scoped advisory lock, so several Heartbeat
//! nodes starting at once against the same schema wait for each other instead of racing:
//! the first creates the tables, the others then find every version recorded and change
//! nothing. A failed migration rolls back whole, leaving the schema as it was.
//!
//! Column types: `BIGINT` for millisecond timestamps and for the model's unsigned counters
//! (a `u32` does not fit PostgreSQL's signed `INTEGER`), `TEXT` for names and ids, `BOOLEAN`,
//! `DOUBLE PRECISION` for metric values, `TEXT[]` for ordered lists of names and `JSONB` for
//! nested model parts read and written whole (a site's rules, a goal's kind, a funnel's
//! definition, a rule's condition, a delivery's target). Texts the model holds as JSON *text*
//! (a rule's filters, a delivery's payload) stay `TEXT`, so they come back byte for byte.
//! Ids sort by byte (`COLLATE "C"`), as on every other engine, whatever the database's
//! locale.
//!
//! Constraints carry explicit names: [`conflict_subject`] turns the one a unique violation
//! names into what [`heartbeat_store::StoreError::Conflict`] reports.

use deadpool_postgres::Object;

use crate::{classify, StoreError};

/// One step of the schema.
pub(crate) struct Migration {
    /// Applied in increasing order; never reused or renumbered once released.
    pub version: i32,
    /// SQL run with the simple query protocol (several statements, no parameters).
    pub sql: &'static str,
}

/// Every migration, oldest first. Add new ones at the end; never edit a released one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    // Sites and keys, organisations, dashboard users, their memberships and sessions, share
    // links, goals and funnels: the metadata of `heartbeat_store::MetaStore`.
    Migration {
        version: 1,
        sql: r#"
CREATE TABLE sites (
    id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    domain TEXT COLLATE "C" NOT NULL,
    timezone TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- NULL keeps events forever.
    retention_days BIGINT CHECK (retention_days >= 0),
    -- The JSON of `SiteRules`.
    rules JSONB NOT NULL DEFAULT '{}',
    -- NULL: the default organisation.
    org_id TEXT COLLATE "C",
    -- Plausible's `allowed_event_props` in their order; NULL: none ever declared.
    custom_props TEXT[],
    CONSTRAINT sites_pkey PRIMARY KEY (id),
    CONSTRAINT sites_domain_key UNIQUE (domain)
);
CREATE TABLE api_keys (
    id TEXT COLLATE "C" NOT NULL,
    -- NULL with `org_id` NULL too: a key of every site.
    site_id TEXT COLLATE "C",
    org_id TEXT COLLATE "C",
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT,
    revoked BOOLEAN NOT NULL,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_secret_key UNIQUE (secret_sha256)
);
CREATE INDEX api_keys_by_site ON api_keys (site_id);
CREATE TABLE orgs (
    id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT orgs_pkey PRIMARY KEY (id)
);
CREATE TABLE users (
    id TEXT COLLATE "C" NOT NULL,
    email TEXT COLLATE "C" NOT NULL,
    password_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE TABLE memberships (
    user_id TEXT COLLATE "C" NOT NULL,
    org_id TEXT COLLATE "C" NOT NULL,
    role TEXT NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (user_id, org_id)
);
CREATE TABLE user_sessions (
    token_sha256 TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    CONSTRAINT user_sessions_pkey PRIMARY KEY (token_sha256)
);
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);
CREATE TABLE share_links (
    site_id TEXT COLLATE "C" NOT NULL,
    token_sha256 TEXT NOT NULL,
    password_hash TEXT,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT share_links_pkey PRIMARY KEY (site_id)
);
CREATE TABLE named_share_links (
    site_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    token_sha256 TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT named_share_links_pkey PRIMARY KEY (site_id, name)
);
CREATE TABLE goals (
    id BIGINT NOT NULL CHECK (id >= 0),
    site_id TEXT COLLATE "C" NOT NULL,
    display_name TEXT NOT NULL,
    -- The JSON of `GoalKind`.
    kind JSONB NOT NULL,
    currency TEXT,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT goals_pkey PRIMARY KEY (id),
    CONSTRAINT goals_display_name_key UNIQUE (site_id, display_name)
);
CREATE TABLE funnels (
    id TEXT COLLATE "C" NOT NULL,
    site_id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    -- The JSON of `FunnelDefinition`.
    definition JSONB NOT NULL,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT funnels_pkey PRIMARY KEY (id)
);
CREATE INDEX funnels_by_site ON funnels (site_id);
"#,
    },
    // Alerts, reports and annotations: typed columns for what is filtered or sorted, JSONB
    // for the nested parts read and written whole. Only the tables that grow with time are
    // indexed for their queries: a site's firings by time, a rule's newest firing, the
    // outbox's pending deliveries by next attempt and a site's deliveries by creation.
    Migration {
        version: 2,
        sql: r#"
CREATE TABLE alert_rules (
    id TEXT COLLATE "C" NOT NULL,
    site_id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    metric TEXT NOT NULL,
    -- v2 filters as the JSON text the rule holds, kept byte for byte.
    filters_json TEXT NOT NULL,
    window_minutes BIGINT NOT NULL CHECK (window_minutes >= 0),
    -- The JSON of `AlertCondition`.
    condition JSONB NOT NULL,
    cooldown_minutes BIGINT NOT NULL CHECK (cooldown_minutes >= 0),
    webhook_ids TEXT[] NOT NULL,
    emails TEXT[] NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT alert_rules_pkey PRIMARY KEY (id)
);
CREATE TABLE webhooks (
    id TEXT COLLATE "C" NOT NULL,
    site_id TEXT COLLATE "C" NOT NULL,
    url TEXT NOT NULL,
    format TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT webhooks_pkey PRIMARY KEY (id)
);
CREATE TABLE report_subscriptions (
    id TEXT COLLATE "C" NOT NULL,
    site_id TEXT COLLATE "C" NOT NULL,
    email TEXT NOT NULL,
    period TEXT NOT NULL,
    unsubscribe_token TEXT NOT NULL,
    last_sent_period TEXT,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT report_subscriptions_pkey PRIMARY KEY (id)
);
CREATE TABLE annotations (
    id TEXT COLLATE "C" NOT NULL,
    site_id TEXT COLLATE "C" NOT NULL,
    at_ms BIGINT NOT NULL,
    text TEXT NOT NULL,
    kind TEXT NOT NULL,
    alert_event_id TEXT,
    created_at_ms BIGINT NOT NULL,
    CONSTRAINT annotations_pkey PRIMARY KEY (id)
);
CREATE INDEX annotations_by_site_time ON annotations (site_id, at_ms);
CREATE TABLE alert_events (
    id TEXT COLLATE "C" NOT NULL,
    rule_id TEXT COLLATE "C" NOT NULL,
    site_id TEXT COLLATE "C" NOT NULL,
    fired_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    value DOUBLE PRECISION NOT NULL,
    expected DOUBLE PRECISION NOT NULL,
    message TEXT NOT NULL,
    CONSTRAINT alert_events_pkey PRIMARY KEY (id)
);
CREATE INDEX alert_events_by_site_time ON alert_events (site_id, fired_at_ms DESC, id DESC);
CREATE INDEX alert_events_by_rule_time ON alert_events (rule_id, fired_at_ms DESC, id DESC);
CREATE TABLE deliveries (
    id TEXT COLLATE "C" NOT NULL,
    site_id TEXT COLLATE "C" NOT NULL,
    -- The JSON of `DeliveryTarget`.
    target JSONB NOT NULL,
    kind TEXT NOT NULL,
    -- The message as the JSON text it was queued with, kept byte for byte.
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL CHECK (attempts >= 0),
    next_attempt_ms BIGINT NOT NULL,
    last_error TEXT,
    created_at_ms BIGINT NOT NULL,
    delivered_at_ms BIGINT,
    CONSTRAINT deliveries_pkey PRIMARY KEY (id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_ms, created_at_ms, id)
    WHERE status = 'pending';
CREATE INDEX deliveries_by_site ON deliveries (site_id, created_at_ms DESC, id DESC);
"#,
    },
    // Visitor-id salts by UTC day, which ingest nodes agree on (`MetaStore::day_salt`).
    Migration {
        version: 3,
        sql: r#"
CREATE TABLE day_salts (day BIGINT PRIMARY KEY, salt BYTEA NOT NULL);
"#,
    },
];

/// What a unique violation of `constraint` means, as `Conflict { what }` names it; `None`
/// for a constraint this schema does not name.
pub(crate) fn conflict_subject(constraint: &str) -> Option<&'static str> {
    Some(match constraint {
        "sites_pkey" => "site",
        "sites_domain_key" => "site domain",
        "api_keys_pkey" => "api key",
        "api_keys_secret_key" => "api key secret",
        "orgs_pkey" => "organisation",
        "users_pkey" => "user",
        "users_email_key" => "user email",
        "user_sessions_pkey" => "user session",
        "goals_pkey" => "goal",
        "goals_display_name_key" => "goal display name",
        "funnels_pkey" => "funnel",
        "webhooks_pkey" => "webhook",
        _ => return None,
    })
}

/// The first key of the two-key advisory lock that guards migrations ("HB" in ASCII); the
/// second is the hash of the schema's name, so stores of different schemas do not wait for
/// each other.
const MIGRATION_LOCK_KEY: i32 = 0x4842;

/// Brings the schema of `client`'s `search_path` up to date: creates `schema` when one is
/// named and missing, then applies every migration not yet recorded, all in one transaction
/// under an advisory lock. Returns the versions it applied (none when up to date).
pub(crate) async fn migrate(
    client: &mut Object,
    schema: Option<&str>,
) -> Result<Vec<i32>, StoreError> {
    let migrating = |err| classify(err, "migration");
    let tx = client.transaction().await.map_err(migrating)?;
    // The lock is released with the transaction, on commit, rollback or a lost connection.
    let lock_name = match schema {
        Some(name) => name.to_owned(),
        None => {
            let row = tx
                .query_one("SELECT coalesce(current_schema(), '')", &[])
                .await
                .map_err(migrating)?;
            row.try_get(0).map_err(migrating)?
        }
    };
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&MIGRATION_LOCK_KEY, &lock_name],
    )
    .await
    .map_err(migrating)?;
    if let Some(name) = schema {
        // An identifier cannot be a bound parameter; `name` passed `valid_schema_name`, and
        // is quoted besides.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{name}\""))
            .await
            .map_err(migrating)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS heartbeat_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(migrating)?;
    // Read after the lock: a node that waited sees what the one before it committed.
    let applied: Vec<i32> = tx
        .query("SELECT version FROM heartbeat_migrations", &[])
        .await
        .map_err(migrating)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(migrating)?;
    let newest_known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(newer) = applied.iter().find(|v| **v > newest_known) {
        return Err(StoreError::Rejected {
            message: format!(
                "the database's schema is at migration {newer}, newer than this build knows \
                 ({newest_known}): run a newer Heartbeat"
            ),
        });
    }
    let mut done = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        tx.batch_execute(migration.sql).await.map_err(migrating)?;
        tx.execute(
            "INSERT INTO heartbeat_migrations (version) VALUES ($1)",
            &[&migration.version],
        )
        .await
        .map_err(migrating)?;
        done.push(migration.version);
    }
    tx.commit().await.map_err(migrating)?;
    Ok(done)
}

/// Whether `name` may be used as a schema: a plain lower-case PostgreSQL identifier
/// (`[a-z_][a-z0-9_]*`, at most 63 bytes), so it is safe in a connection's `options` and in
/// `CREATE SCHEMA` without escaping.
pub(crate) fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 63
        && (first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert!(MIGRATIONS.first().is_some_and(|m| m.version >= 1));
    }

    #[test]
    fn schema_names() {
        assert!(valid_schema_name("hb_test_0af3"));
        assert!(valid_schema_name("_heartbeat"));
        for bad in [
            "",
            "1abc",
            "Heartbeat",
            "a-b",
            "a\"b",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(!valid_schema_name(bad), "{bad:?}");
        }
    }
}
