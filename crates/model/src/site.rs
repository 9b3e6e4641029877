//! Sites and API key scopes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A site's id as users see it in the API (`site_id`): the domain by default, as in
/// Plausible, or a slug of the name when a site has no domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SiteId(pub String);

impl SiteId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SiteId {
    fn from(value: &str) -> Self {
        SiteId(value.to_owned())
    }
}

/// A tracked website or app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    /// The hostname the tracker reports (`d` in Plausible's payload), lower case, no `www.`.
    pub domain: String,
    /// IANA time zone name used for calendar ranges and time buckets.
    pub timezone: String,
    pub created_at_ms: i64,
    /// Days events are kept; `None` keeps them forever.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// What to keep out of this site's statistics.
    #[serde(default)]
    pub rules: SiteRules,
}

/// Per-site ingest rules: events they exclude are dropped before the queue and counted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteRules {
    /// Hostnames whose events are kept; empty keeps every hostname. `*.example.com` matches
    /// the subdomains of example.com.
    pub allowed_hostnames: Vec<String>,
    /// Paths whose events are dropped: exact paths, or patterns where `*` matches within one
    /// path segment and `**` matches across segments (`/admin/**`).
    pub excluded_paths: Vec<String>,
    /// Client addresses whose events are dropped: single IPs or CIDR ranges.
    pub excluded_ips: Vec<String>,
    /// Drop events from browsers that send `DNT: 1` or `Sec-GPC: 1` (off by default, as in
    /// Plausible: no personal data is collected either way).
    pub respect_do_not_track: bool,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyScope {
    /// Send events for its site.
    Ingest,
    /// Send events and read its site's statistics.
    Read,
    /// Everything, on every site the key reaches.
    Admin,
}

impl ApiKeyScope {
    /// `Ingest` < `Read` < `Admin`: each includes what the one before may do.
    pub fn rank(self) -> u8 {
        match self {
            ApiKeyScope::Ingest => 0,
            ApiKeyScope::Read => 1,
            ApiKeyScope::Admin => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyScope::Ingest => "ingest",
            ApiKeyScope::Read => "read",
            ApiKeyScope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<ApiKeyScope> {
        match text {
            "ingest" => Some(ApiKeyScope::Ingest),
            "read" => Some(ApiKeyScope::Read),
            "admin" => Some(ApiKeyScope::Admin),
            _ => None,
        }
    }
}

/// An API key as stored: only the SHA-256 of the secret is kept; the secret is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    /// The site the key belongs to; `None` for a key of a whole organisation or, without
    /// `org_id` either, of every site.
    pub site_id: Option<SiteId>,
    /// The organisation whose every site the key reaches (when `site_id` is `None`).
    #[serde(default)]
    pub org_id: Option<crate::OrgId>,
    /// A label for people.
    #[serde(default)]
    pub name: String,
    /// When the key was last presented (to the minute).
    #[serde(default)]
    pub last_used_at_ms: Option<i64>,
    pub scope: ApiKeyScope,
    /// Lower-case hex SHA-256 of the secret.
    pub secret_sha256: String,
    pub created_at_ms: i64,
    pub revoked: bool,
}
