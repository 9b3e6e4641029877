//! Sites and API keys: the in-memory directory the request path reads (no store call per
//! request), loaded from the metadata store at start and written through it on change.
//!
//! Keys are `hb_` followed by 40 hex characters; only their SHA-256 is kept, and a request's
//! key is found by the SHA-256 of what it presents.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use heartbeat_ingest::{enrich::page::normalize_host, KeyGrant, SiteDirectory};
use heartbeat_model::{ApiKey, ApiKeyScope, Site, SiteId, SiteRules};
use heartbeat_store::{MetaStore, StoreError};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Default)]
struct Tables {
    sites: HashMap<SiteId, Site>,
    by_domain: HashMap<String, SiteId>,
    /// SHA-256 hex of the secret -> key.
    keys: HashMap<String, ApiKey>,
}

pub struct Registry {
    meta: Arc<dyn MetaStore>,
    tables: RwLock<Tables>,
    admin_token_sha256: String,
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A new random secret with `prefix`.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// What a site creation request asks for.
#[derive(Debug, Clone)]
pub struct NewSite {
    pub name: String,
    pub domain: Option<String>,
    pub timezone: Option<String>,
    pub rules: SiteRules,
    pub retention_days: Option<u32>,
}

/// What a site update changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct SiteChanges {
    pub name: Option<String>,
    pub timezone: Option<String>,
    /// `Some(None)` keeps events forever.
    pub retention_days: Option<Option<u32>>,
}

/// Longest retention accepted: a hundred years.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

fn check_retention(days: Option<u32>) -> Result<(), RegistryError> {
    match days {
        Some(days) if days == 0 || days > MAX_RETENTION_DAYS => Err(RegistryError::Invalid {
            field: "retention_days",
            message: format!(
                "retention_days must be 1 to {MAX_RETENTION_DAYS}, or null to keep events forever"
            ),
        }),
        _ => Ok(()),
    }
}

fn check_name(name: &str) -> Result<(), RegistryError> {
    if name.is_empty() || name.chars().count() > 200 {
        return Err(RegistryError::Invalid {
            field: "name",
            message: "name must have 1 to 200 characters".into(),
        });
    }
    Ok(())
}

fn check_timezone(timezone: &str) -> Result<(), RegistryError> {
    if timezone.parse::<heartbeat_query::TimeZone>().is_err() {
        return Err(RegistryError::Invalid {
            field: "timezone",
            message: format!("{timezone:?} is not an IANA time zone"),
        });
    }
    Ok(())
}

/// A created site and the secret of its first key, shown once.
pub struct CreatedSite {
    pub site: Site,
    pub api_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no site {0}")]
    NotFound(SiteId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A lower-case slug of `name` usable as a site id (`My Website` -> `my-website`).
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

impl Registry {
    pub async fn load(meta: Arc<dyn MetaStore>, admin_token: &str) -> Result<Self, StoreError> {
        let mut tables = Tables::default();
        for site in meta.sites().await? {
            tables
                .by_domain
                .insert(site.domain.clone(), site.id.clone());
            tables.sites.insert(site.id.clone(), site);
        }
        for key in meta.api_keys().await? {
            tables.keys.insert(key.secret_sha256.clone(), key);
        }
        Ok(Registry {
            meta,
            tables: RwLock::new(tables),
            admin_token_sha256: sha256_hex(admin_token),
        })
    }

    /// The grant of a presented key: `Some` for the admin token or a live site key, with the
    /// key's id (`admin` for the admin token).
    ///
    /// Secrets are compared as SHA-256 digests, the admin token's in constant time; a key is
    /// found by its digest, so lookup timing says nothing about the secret.
    pub fn authenticate(&self, secret: &str) -> Option<(KeyGrant, ApiKeyScope, String)> {
        let hash = sha256_hex(secret);
        if bool::from(hash.as_bytes().ct_eq(self.admin_token_sha256.as_bytes())) {
            return Some((
                KeyGrant { site_id: None },
                ApiKeyScope::Admin,
                "admin".to_owned(),
            ));
        }
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        let key = tables.keys.get(&hash).filter(|k| !k.revoked)?;
        Some((
            KeyGrant {
                site_id: key.site_id.clone(),
            },
            key.scope,
            key.id.clone(),
        ))
    }

    pub fn site(&self, id: &SiteId) -> Option<Site> {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .sites
            .get(id)
            .cloned()
    }

    pub fn sites(&self) -> Vec<Site> {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        let mut sites: Vec<Site> = tables.sites.values().cloned().collect();
        sites.sort_by(|a, b| a.id.cmp(&b.id));
        sites
    }

    /// Creates a site and its first key (scope read, which includes ingest).
    pub async fn create_site(
        &self,
        request: NewSite,
        now_ms: i64,
    ) -> Result<CreatedSite, RegistryError> {
        let name = request.name.trim().to_owned();
        check_name(&name)?;
        check_retention(request.retention_days)?;
        let domain = normalize_host(request.domain.as_deref().unwrap_or(&name));
        let valid_domain = !domain.is_empty()
            && domain.len() <= 253
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        let domain = if valid_domain {
            domain
        } else if request.domain.is_some() {
            return Err(RegistryError::Invalid {
                field: "domain",
                message: "domain must be a host name like example.com".into(),
            });
        } else {
            slug(&name)
        };
        if domain.is_empty() {
            return Err(RegistryError::Invalid {
                field: "name",
                message: "name must contain letters or digits".into(),
            });
        }
        let timezone = request.timezone.unwrap_or_else(|| "UTC".to_owned());
        check_timezone(&timezone)?;
        let site = Site {
            id: SiteId(domain.clone()),
            name,
            domain,
            timezone,
            created_at_ms: now_ms,
            rules: request.rules,
            retention_days: request.retention_days,
        };
        self.meta.insert_site(&site).await?;
        let secret = new_secret("hb_");
        let key = ApiKey {
            id: new_secret("key_"),
            site_id: Some(site.id.clone()),
            scope: ApiKeyScope::Read,
            secret_sha256: sha256_hex(&secret),
            created_at_ms: now_ms,
            revoked: false,
        };
        self.meta.insert_api_key(&key).await?;
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        tables
            .by_domain
            .insert(site.domain.clone(), site.id.clone());
        tables.sites.insert(site.id.clone(), site.clone());
        tables.keys.insert(key.secret_sha256.clone(), key);
        Ok(CreatedSite {
            site,
            api_key: secret,
        })
    }
}

impl Registry {
    /// Replaces the rules of site `id`; `None` when there is no such site.
    pub async fn update_rules(
        &self,
        id: &SiteId,
        rules: SiteRules,
    ) -> Result<Option<Site>, StoreError> {
        let Some(mut site) = self.site(id) else {
            return Ok(None);
        };
        site.rules = rules;
        self.meta.update_site(&site).await?;
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        tables.sites.insert(site.id.clone(), site.clone());
        Ok(Some(site))
    }

    /// Changes a site's name, time zone or retention.
    pub async fn update_site(
        &self,
        id: &SiteId,
        changes: SiteChanges,
    ) -> Result<Site, RegistryError> {
        let mut site = self
            .site(id)
            .ok_or_else(|| RegistryError::NotFound(id.clone()))?;
        if let Some(name) = changes.name {
            let name = name.trim().to_owned();
            check_name(&name)?;
            site.name = name;
        }
        if let Some(timezone) = changes.timezone {
            check_timezone(&timezone)?;
            site.timezone = timezone;
        }
        if let Some(days) = changes.retention_days {
            check_retention(days)?;
            site.retention_days = days;
        }
        self.meta.update_site(&site).await?;
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .sites
            .insert(site.id.clone(), site.clone());
        Ok(site)
    }
}

impl SiteDirectory for Registry {
    fn by_domain(&self, domain: &str) -> Option<Site> {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        tables
            .by_domain
            .get(domain)
            .and_then(|id| tables.sites.get(id))
            .cloned()
    }

    fn by_id(&self, id: &SiteId) -> Option<Site> {
        self.site(id)
    }
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs() {
        assert_eq!(slug("my-website"), "my-website");
        assert_eq!(slug("  My Web Site! "), "my-web-site");
        assert_eq!(slug("Blog.Example.com"), "blog.example.com");
    }
}
