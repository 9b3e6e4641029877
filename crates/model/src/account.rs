//! Organisations, dashboard users, their roles, sessions and public dashboard links.
//!
//! An organisation holds sites (seed 003's org/project model: a project is a site). A user has
//! a role on each organisation it belongs to; the owners of the `default` organisation own
//! the whole instance. Secrets (session tokens, share links) are kept as SHA-256 digests,
//! passwords as argon2 hashes (PHC strings).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::SiteId;

/// An organisation's id, a lower-case slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrgId(pub String);

impl OrgId {
    /// The organisation every site belongs to unless told otherwise; its owners own the
    /// instance.
    pub fn default_org() -> Self {
        OrgId("default".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub created_at_ms: i64,
}

/// What a user may do in an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything an admin may, and managing the organisation's users.
    Owner,
    /// Create, change and delete the organisation's sites and keys.
    Admin,
    /// Read the organisation's statistics.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A dashboard user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    /// Lower case; unique.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at_ms: i64,
}

/// A user's role in an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub user_id: String,
    pub org_id: OrgId,
    pub role: Role,
}

/// A signed-in dashboard session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// Lower-case hex SHA-256 of the session token.
    pub token_sha256: String,
    pub user_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A site's public read-only dashboard link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    pub site_id: SiteId,
    /// Lower-case hex SHA-256 of the link's token.
    pub token_sha256: String,
    /// Argon2id PHC string when the link is password-protected.
    pub password_hash: Option<String>,
    pub created_at_ms: i64,
}

/// A named public read-only dashboard link of a site (Plausible's shared links: a site has any
/// number, each found by its name). Its token is derived from the instance's secret and the
/// link itself, so it can be shown again; only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedShareLink {
    pub site_id: SiteId,
    pub name: String,
    /// Lower-case hex SHA-256 of the link's token.
    pub token_sha256: String,
    pub created_at_ms: i64,
}
