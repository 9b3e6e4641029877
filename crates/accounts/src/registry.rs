//! Sites, organisations, API keys, users, sessions, share links and saved funnels: the
//! in-memory directory
//! the request path reads (no store call per request), loaded from the metadata store at start
//! and written through it on change.
//!
//! Secrets are random and high-entropy, told apart by prefix: API keys `hb_`, dashboard
//! sessions `hbs_`, public dashboard links `hbp_`, unlocked password-protected links `hbq_`,
//! each followed by 40 hex characters. Only their SHA-256 is kept, and a presented secret is
//! found by its SHA-256. Passwords are argon2 hashes (`password.rs`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use heartbeat_ingest::{enrich::page::normalize_host, SiteDirectory};
use heartbeat_model::{
    ApiKey, ApiKeyScope, Funnel, FunnelDefinition, Membership, NamedShareLink, Org, OrgId, Role,
    ShareLink, Site, SiteId, SiteRules, User, UserSession,
};
use heartbeat_store::{MetaStore, StoreError};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::access::{role_scope, Caller, Principal};

#[derive(Default)]
struct Tables {
    sites: HashMap<SiteId, Site>,
    by_domain: HashMap<String, SiteId>,
    /// SHA-256 hex of the secret -> key.
    keys: HashMap<String, ApiKey>,
    /// Key id -> SHA-256 hex of its secret.
    key_ids: HashMap<String, String>,
    orgs: HashMap<OrgId, Org>,
    site_org: HashMap<SiteId, OrgId>,
    users: HashMap<String, User>,
    /// Lower-case email -> user id.
    user_by_email: HashMap<String, String>,
    /// User id -> its roles.
    memberships: HashMap<String, Vec<(OrgId, Role)>>,
    /// SHA-256 hex of the session token -> session.
    sessions: HashMap<String, UserSession>,
    /// SHA-256 hex of the link token -> link.
    shares: HashMap<String, ShareLink>,
    /// SHA-256 hex of an unlock token -> (site, expiry); kept in memory only.
    unlocked: HashMap<String, (SiteId, i64)>,
    /// The custom properties each site declared (Plausible's `allowed_event_props`).
    custom_props: HashMap<SiteId, Vec<String>>,
    /// SHA-256 hex of a named link's token -> the link.
    named_shares: HashMap<String, NamedShareLink>,
    /// Saved funnels by id.
    funnels: HashMap<String, Funnel>,
}

impl Tables {
    fn sites_of(&self, org: &OrgId) -> Vec<SiteId> {
        self.site_org
            .iter()
            .filter(|(_, o)| *o == org)
            .map(|(s, _)| s.clone())
            .collect()
    }

    fn caller_for_key(&self, key: &ApiKey) -> Caller {
        let principal = Principal::Key(key.id.clone());
        match (&key.site_id, &key.org_id) {
            (Some(site), _) => Caller::one_site(principal, site.clone(), key.scope),
            (None, Some(org)) => {
                Caller::in_orgs(principal, &[(org.clone(), key.scope, false)], |o| {
                    self.sites_of(o)
                })
            }
            (None, None) => Caller::everywhere(principal, key.scope),
        }
    }

    fn caller_for_user(&self, user_id: &str) -> Caller {
        let grants: Vec<(OrgId, ApiKeyScope, bool)> = self
            .memberships
            .get(user_id)
            .into_iter()
            .flatten()
            .map(|(org, role)| (org.clone(), role_scope(*role), *role == Role::Owner))
            .collect();
        Caller::in_orgs(Principal::User(user_id.to_owned()), &grants, |o| {
            self.sites_of(o)
        })
    }
}

/// How long a dashboard session lasts.
pub const SESSION_TTL_MS: i64 = 14 * 24 * 3600 * 1000;
/// How long an unlocked password-protected link lasts.
pub const UNLOCK_TTL_MS: i64 = 24 * 3600 * 1000;
/// Last-used times are written at most this often per key.
const TOUCH_EVERY_MS: i64 = 60_000;

pub struct Registry {
    meta: Arc<dyn MetaStore>,
    /// The password hash that unknown emails are checked against, so a login takes as long
    /// whether or not the email exists.
    decoy_hash: String,
    tables: RwLock<Tables>,
    admin_token_sha256: String,
    /// The key named share links' tokens are derived with (from the admin token).
    link_key: String,
    /// Serializes read-modify-write changes of a site's settings (custom properties, named
    /// links) so that concurrent requests do not lose each other's change.
    settings_writes: tokio::sync::Mutex<()>,
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
    /// The organisation that holds the site; `None`: the default one.
    pub org_id: Option<OrgId>,
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
    if timezone.parse::<chrono_tz::Tz>().is_err() {
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
    /// Something other than a site does not exist (`field` names it).
    #[error("{field}: {message}")]
    Missing {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `domain` (normalized) is a host name a site can have, and so a site id.
fn is_host(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
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

/// Every table read from the metadata store (the default organisation created when
/// missing).
async fn read_tables(meta: &dyn MetaStore) -> Result<Tables, StoreError> {
        let mut tables = Tables::default();
        for site in meta.sites().await? {
            tables
                .by_domain
                .insert(site.domain.clone(), site.id.clone());
            tables.sites.insert(site.id.clone(), site);
        }
        for key in meta.api_keys().await? {
            tables
                .key_ids
                .insert(key.id.clone(), key.secret_sha256.clone());
            tables.keys.insert(key.secret_sha256.clone(), key);
        }
        let mut orgs = meta.orgs().await?;
        if !orgs.iter().any(|o| o.id == OrgId::default_org()) {
            let org = Org {
                id: OrgId::default_org(),
                name: "Default".to_owned(),
                created_at_ms: chrono::Utc::now().timestamp_millis(),
            };
            meta.insert_org(&org).await?;
            orgs.push(org);
        }
        for org in orgs {
            tables.orgs.insert(org.id.clone(), org);
        }
        for (site, org) in meta.site_orgs().await? {
            tables.site_org.insert(site, org);
        }
        for user in meta.users().await? {
            tables
                .user_by_email
                .insert(user.email.clone(), user.id.clone());
            tables.users.insert(user.id.clone(), user);
        }
        for m in meta.memberships().await? {
            tables
                .memberships
                .entry(m.user_id)
                .or_default()
                .push((m.org_id, m.role));
        }
        let now = chrono::Utc::now().timestamp_millis();
        for session in meta.user_sessions().await? {
            if session.expires_at_ms > now {
                tables
                    .sessions
                    .insert(session.token_sha256.clone(), session);
            }
        }
        for link in meta.share_links().await? {
            tables.shares.insert(link.token_sha256.clone(), link);
        }
        for (site, props) in meta.custom_props().await? {
            tables.custom_props.insert(site, props);
        }
        for link in meta.named_share_links().await? {
            tables.named_shares.insert(link.token_sha256.clone(), link);
        }
        for funnel in meta.funnels().await? {
            tables.funnels.insert(funnel.id.clone(), funnel);
        }
        Ok(tables)
}

impl Registry {
    pub async fn load(meta: Arc<dyn MetaStore>, admin_token: &str) -> Result<Self, StoreError> {
        let tables = read_tables(meta.as_ref()).await?;
        Ok(Registry {
            decoy_hash: crate::password::hash(&new_secret("decoy_")),
            meta,
            tables: RwLock::new(tables),
            admin_token_sha256: sha256_hex(admin_token),
            link_key: sha256_hex(&format!("heartbeat named share links\0{admin_token}")),
            settings_writes: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads every table from the metadata store again, for a node whose metadata other
    /// nodes change too (a shared PostgreSQL): what they created, changed or deleted shows
    /// here. Unlocked share links, kept in memory only, stay.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut fresh = read_tables(self.meta.as_ref()).await?;
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        fresh.unlocked = std::mem::take(&mut tables.unlocked);
        *tables = fresh;
        Ok(())
    }

    /// The caller a presented secret stands for: the admin token, a live API key, a
    /// dashboard session, a share link (without password) or an unlocked share link.
    ///
    /// Secrets are compared as SHA-256 digests, the admin token's in constant time; the others
    /// are found by their digest, so lookup timing says nothing about the secret.
    pub fn authenticate(&self, secret: &str) -> Option<Caller> {
        let hash = sha256_hex(secret);
        if bool::from(hash.as_bytes().ct_eq(self.admin_token_sha256.as_bytes())) {
            return Some(Caller::everywhere(
                Principal::AdminToken,
                ApiKeyScope::Admin,
            ));
        }
        let now = chrono::Utc::now().timestamp_millis();
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = tables.keys.get(&hash) {
            if key.revoked {
                return None;
            }
            let caller = tables.caller_for_key(key);
            let stale = key
                .last_used_at_ms
                .is_none_or(|at| now - at >= TOUCH_EVERY_MS);
            let id = key.id.clone();
            drop(tables);
            if stale {
                self.touch_key(&hash, &id, now);
            }
            return Some(caller);
        }
        if let Some(session) = tables.sessions.get(&hash) {
            if session.expires_at_ms <= now || !tables.users.contains_key(&session.user_id) {
                return None;
            }
            return Some(tables.caller_for_user(&session.user_id));
        }
        if let Some(link) = tables.shares.get(&hash) {
            if link.password_hash.is_some() {
                return None;
            }
            return Some(share_caller(&link.site_id));
        }
        if let Some(link) = tables.named_shares.get(&hash) {
            return Some(share_caller(&link.site_id));
        }
        if let Some((site, expires)) = tables.unlocked.get(&hash) {
            if *expires > now && tables.sites.contains_key(site) {
                return Some(share_caller(site));
            }
        }
        None
    }

    /// Records a key's use in memory now and in the store in the background.
    fn touch_key(&self, hash: &str, id: &str, now: i64) {
        {
            let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
            if let Some(key) = tables.keys.get_mut(hash) {
                key.last_used_at_ms = Some(now);
            }
        }
        let meta = self.meta.clone();
        let id = id.to_owned();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = meta.touch_api_key(&id, now).await {
                    tracing::warn!(key = %id, error = %err, "cannot record a key's last use");
                }
            });
        }
    }

    pub fn site(&self, id: &SiteId) -> Option<Site> {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .sites
            .get(id)
            .cloned()
    }

    /// Whether the site exists (without copying it).
    pub fn has_site(&self, id: &SiteId) -> bool {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .sites
            .contains_key(id)
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
        let org_id = request.org_id.clone().unwrap_or_else(OrgId::default_org);
        if self.org(&org_id).is_none() {
            return Err(RegistryError::Missing {
                field: "org_id",
                message: format!("no organisation {org_id}"),
            });
        }
        let name = request.name.trim().to_owned();
        check_name(&name)?;
        check_retention(request.retention_days)?;
        let domain = normalize_host(request.domain.as_deref().unwrap_or(&name));
        let domain = if is_host(&domain) {
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
        self.meta.set_site_org(&site.id, &org_id).await?;
        let secret = new_secret("hb_");
        let key = ApiKey {
            id: new_secret("key_"),
            site_id: Some(site.id.clone()),
            org_id: None,
            name: "first key".to_owned(),
            last_used_at_ms: None,
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
        tables.site_org.insert(site.id.clone(), org_id);
        tables
            .key_ids
            .insert(key.id.clone(), key.secret_sha256.clone());
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

fn share_caller(site: &SiteId) -> Caller {
    Caller::one_site(
        Principal::Share(site.clone()),
        site.clone(),
        ApiKeyScope::Read,
    )
}

/// What a key creation asks for.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub scope: ApiKeyScope,
    /// One site; or, without it, one organisation; or, without either, every site.
    pub site_id: Option<SiteId>,
    pub org_id: Option<OrgId>,
    pub name: String,
}

/// A dashboard user as the API shows it.
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: User,
    pub roles: Vec<(OrgId, Role)>,
}

fn check_email(email: &str) -> Result<String, RegistryError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, host)| {
            !local.is_empty() && host.contains('.') && !host.starts_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(RegistryError::Invalid {
            field: "email",
            message: "email must be an address like you@example.com".into(),
        });
    }
    Ok(email)
}

fn check_password(password: &str) -> Result<(), RegistryError> {
    match crate::password::check(password) {
        Some(message) => Err(RegistryError::Invalid {
            field: "password",
            message,
        }),
        None => Ok(()),
    }
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn org(&self, id: &OrgId) -> Option<Org> {
        self.read().orgs.get(id).cloned()
    }

    pub fn orgs(&self) -> Vec<Org> {
        let mut orgs: Vec<Org> = self.read().orgs.values().cloned().collect();
        orgs.sort_by(|a, b| a.id.cmp(&b.id));
        orgs
    }

    /// The organisation holding `site`.
    pub fn site_org(&self, site: &SiteId) -> OrgId {
        self.read()
            .site_org
            .get(site)
            .cloned()
            .unwrap_or_else(OrgId::default_org)
    }

    pub async fn create_org(
        &self,
        id: Option<String>,
        name: String,
        now_ms: i64,
    ) -> Result<Org, RegistryError> {
        let name = name.trim().to_owned();
        check_name(&name)?;
        let id = slug(id.as_deref().unwrap_or(&name)).replace('.', "-");
        if id.is_empty() || id.len() > 64 {
            return Err(RegistryError::Invalid {
                field: "org_id",
                message: "org_id must have 1 to 64 letters, digits or dashes".into(),
            });
        }
        let org = Org {
            id: OrgId(id),
            name,
            created_at_ms: now_ms,
        };
        self.meta.insert_org(&org).await?;
        self.write().orgs.insert(org.id.clone(), org.clone());
        Ok(org)
    }

    /// Deletes a site's metadata (the site, its keys, its share links, its funnels). Its events are the
    /// event store's to delete.
    pub async fn delete_site(&self, id: &SiteId) -> Result<Site, RegistryError> {
        let site = self
            .site(id)
            .ok_or_else(|| RegistryError::NotFound(id.clone()))?;
        self.meta.delete_site(id).await?;
        let mut tables = self.write();
        tables.sites.remove(id);
        tables.by_domain.remove(&site.domain);
        tables.site_org.remove(id);
        let gone: Vec<String> = tables
            .keys
            .iter()
            .filter(|(_, k)| k.site_id.as_ref() == Some(id))
            .map(|(hash, _)| hash.clone())
            .collect();
        for hash in gone {
            if let Some(key) = tables.keys.remove(&hash) {
                tables.key_ids.remove(&key.id);
            }
        }
        tables.shares.retain(|_, link| link.site_id != *id);
        tables.unlocked.retain(|_, (site, _)| site != id);
        tables.custom_props.remove(id);
        tables.named_shares.retain(|_, link| link.site_id != *id);
        tables.funnels.retain(|_, funnel| funnel.site_id != *id);
        Ok(site)
    }

    /// Every key (revoked ones too), oldest first.
    pub fn keys(&self) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = self.read().keys.values().cloned().collect();
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        keys
    }

    pub fn key(&self, id: &str) -> Option<ApiKey> {
        let tables = self.read();
        let hash = tables.key_ids.get(id)?;
        tables.keys.get(hash).cloned()
    }

    /// Creates a key; returns it with its secret (shown once).
    pub async fn create_key(
        &self,
        request: NewKey,
        now_ms: i64,
    ) -> Result<(ApiKey, String), RegistryError> {
        if let Some(site) = &request.site_id {
            if self.site(site).is_none() {
                return Err(RegistryError::NotFound(site.clone()));
            }
        } else if let Some(org) = &request.org_id {
            if self.org(org).is_none() {
                return Err(RegistryError::Missing {
                    field: "org_id",
                    message: format!("no organisation {org}"),
                });
            }
        }
        let name = request.name.trim().to_owned();
        if name.chars().count() > 200 {
            return Err(RegistryError::Invalid {
                field: "name",
                message: "name must have at most 200 characters".into(),
            });
        }
        let secret = new_secret("hb_");
        let key = ApiKey {
            id: new_secret("key_"),
            org_id: if request.site_id.is_some() {
                None
            } else {
                request.org_id
            },
            site_id: request.site_id,
            scope: request.scope,
            name,
            last_used_at_ms: None,
            secret_sha256: sha256_hex(&secret),
            created_at_ms: now_ms,
            revoked: false,
        };
        self.meta.insert_api_key(&key).await?;
        let mut tables = self.write();
        tables
            .key_ids
            .insert(key.id.clone(), key.secret_sha256.clone());
        tables.keys.insert(key.secret_sha256.clone(), key.clone());
        Ok((key, secret))
    }

    /// Revokes a key: it is refused from now on and stays listed as revoked.
    pub async fn revoke_key(&self, id: &str) -> Result<ApiKey, RegistryError> {
        let mut key = self.key(id).ok_or_else(|| RegistryError::Missing {
            field: "key_id",
            message: format!("no key {id}"),
        })?;
        self.meta.revoke_api_key(id).await?;
        key.revoked = true;
        if let Some(stored) = self.write().keys.get_mut(&key.secret_sha256) {
            stored.revoked = true;
        }
        Ok(key)
    }

    /// Whether no user exists yet (first-run setup is open).
    pub fn needs_setup(&self) -> bool {
        self.read().users.is_empty()
    }

    pub fn user(&self, id: &str) -> Option<UserView> {
        let tables = self.read();
        let user = tables.users.get(id)?.clone();
        let mut roles = tables.memberships.get(id).cloned().unwrap_or_default();
        roles.sort_by(|a, b| a.0.cmp(&b.0));
        Some(UserView { user, roles })
    }

    pub fn users(&self) -> Vec<UserView> {
        let ids: Vec<String> = self.read().users.keys().cloned().collect();
        let mut users: Vec<UserView> = ids.iter().filter_map(|id| self.user(id)).collect();
        users.sort_by(|a, b| a.user.email.cmp(&b.user.email));
        users
    }

    /// Creates a user with `role` in `org`, or, when the email exists, gives that user the
    /// role (its password unchanged).
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        org: &OrgId,
        role: Role,
        now_ms: i64,
    ) -> Result<UserView, RegistryError> {
        let email = check_email(email)?;
        if self.org(org).is_none() {
            return Err(RegistryError::Missing {
                field: "org_id",
                message: format!("no organisation {org}"),
            });
        }
        let existing = self.read().user_by_email.get(&email).cloned();
        let user_id = match existing {
            Some(id) => id,
            None => {
                check_password(password)?;
                let user = User {
                    id: new_secret("user_"),
                    email: email.clone(),
                    password_hash: crate::password::hash_async(password.to_owned()).await,
                    created_at_ms: now_ms,
                };
                self.meta.insert_user(&user).await?;
                let mut tables = self.write();
                tables.user_by_email.insert(email, user.id.clone());
                tables.users.insert(user.id.clone(), user.clone());
                user.id
            }
        };
        self.meta
            .put_membership(&Membership {
                user_id: user_id.clone(),
                org_id: org.clone(),
                role,
            })
            .await?;
        {
            let mut tables = self.write();
            let roles = tables.memberships.entry(user_id.clone()).or_default();
            roles.retain(|(o, _)| o != org);
            roles.push((org.clone(), role));
        }
        Ok(self.user(&user_id).expect("just stored"))
    }

    /// Deletes a user, its roles and its sessions.
    pub async fn delete_user(&self, user_id: &str) -> Result<UserView, RegistryError> {
        let view = self.user(user_id).ok_or_else(|| RegistryError::Missing {
            field: "user_id",
            message: format!("no user {user_id}"),
        })?;
        self.meta.delete_user(user_id).await?;
        let mut tables = self.write();
        tables.users.remove(user_id);
        tables.user_by_email.remove(&view.user.email);
        tables.memberships.remove(user_id);
        tables.sessions.retain(|_, s| s.user_id != user_id);
        Ok(view)
    }

    /// Sets a user's password and signs it out everywhere.
    pub async fn set_password(&self, email: &str, password: &str) -> Result<(), RegistryError> {
        let email = email.trim().to_lowercase();
        check_password(password)?;
        let user_id = self
            .read()
            .user_by_email
            .get(&email)
            .cloned()
            .ok_or_else(|| RegistryError::Missing {
                field: "email",
                message: format!("no user {email}"),
            })?;
        let hash = crate::password::hash_async(password.to_owned()).await;
        self.meta.set_password(&user_id, &hash).await?;
        self.meta.delete_user_sessions(None, Some(&user_id)).await?;
        let mut tables = self.write();
        if let Some(user) = tables.users.get_mut(&user_id) {
            user.password_hash = hash;
        }
        tables.sessions.retain(|_, s| s.user_id != user_id);
        Ok(())
    }

    /// Checks a user's password and opens a session: `Some((token, user))`, `None` for a
    /// wrong email or password (indistinguishable, in answer and in time).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        now_ms: i64,
    ) -> Result<Option<(String, UserView)>, RegistryError> {
        let email = email.trim().to_lowercase();
        let user = {
            let tables = self.read();
            tables
                .user_by_email
                .get(&email)
                .and_then(|id| tables.users.get(id))
                .cloned()
        };
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.decoy_hash.clone());
        let matches = crate::password::verify_async(password.to_owned(), hash).await;
        let Some(user) = user.filter(|_| matches) else {
            return Ok(None);
        };
        let token = new_secret("hbs_");
        let session = UserSession {
            token_sha256: sha256_hex(&token),
            user_id: user.id.clone(),
            created_at_ms: now_ms,
            expires_at_ms: now_ms + SESSION_TTL_MS,
        };
        self.meta.insert_user_session(&session).await?;
        self.write()
            .sessions
            .insert(session.token_sha256.clone(), session);
        Ok(Some((token, self.user(&user.id).expect("exists"))))
    }

    /// Ends the session whose token is `token` (nothing when there is none).
    pub async fn logout(&self, token: &str) -> Result<(), RegistryError> {
        let hash = sha256_hex(token);
        let known = self.write().sessions.remove(&hash).is_some();
        if known {
            self.meta.delete_user_sessions(Some(&hash), None).await?;
        }
        Ok(())
    }

    /// First run: creates the owner of the default organisation (who owns the instance)
    /// and signs it in. `Conflict` once any user exists.
    pub async fn setup(
        &self,
        email: &str,
        password: &str,
        now_ms: i64,
    ) -> Result<(String, UserView), RegistryError> {
        if !self.needs_setup() {
            return Err(RegistryError::Conflict(
                "setup is done: sign in instead".into(),
            ));
        }
        self.create_user(email, password, &OrgId::default_org(), Role::Owner, now_ms)
            .await?;
        self.login(email, password, now_ms)
            .await?
            .ok_or_else(|| RegistryError::Conflict("setup raced another setup".into()))
    }

    /// Gives `site` a public read-only dashboard link (replacing any earlier one), optionally
    /// password-protected; returns the link's token (shown once).
    pub async fn share_site(
        &self,
        site: &SiteId,
        password: Option<String>,
        now_ms: i64,
    ) -> Result<String, RegistryError> {
        if self.site(site).is_none() {
            return Err(RegistryError::NotFound(site.clone()));
        }
        if let Some(password) = &password {
            check_password(password)?;
        }
        let token = new_secret("hbp_");
        let password_hash = match password {
            Some(p) => Some(crate::password::hash_async(p).await),
            None => None,
        };
        let link = ShareLink {
            site_id: site.clone(),
            token_sha256: sha256_hex(&token),
            password_hash,
            created_at_ms: now_ms,
        };
        self.meta.put_share_link(&link).await?;
        let mut tables = self.write();
        tables.shares.retain(|_, l| l.site_id != *site);
        tables.unlocked.retain(|_, (s, _)| s != site);
        tables.shares.insert(link.token_sha256.clone(), link);
        Ok(token)
    }

    /// Removes `site`'s public link; `false` when it had none.
    pub async fn unshare_site(&self, site: &SiteId) -> Result<bool, RegistryError> {
        let had = self.read().shares.values().any(|l| l.site_id == *site);
        if had {
            self.meta.delete_share_link(site).await?;
            let mut tables = self.write();
            tables.shares.retain(|_, l| l.site_id != *site);
            tables.unlocked.retain(|_, (s, _)| s != site);
        }
        Ok(had)
    }

    /// Whether `site` has a public link, and whether it needs a password.
    pub fn share_state(&self, site: &SiteId) -> Option<bool> {
        self.read()
            .shares
            .values()
            .find(|l| l.site_id == *site)
            .map(|l| l.password_hash.is_some())
    }

    /// Exchanges a password-protected link's token and its password for an access token
    /// (`hbq_`, valid a day, kept in memory). `None`: no such link or a wrong password.
    pub async fn unlock_share(
        &self,
        token: &str,
        password: &str,
        now_ms: i64,
    ) -> Option<(SiteId, String)> {
        let link = self.read().shares.get(&sha256_hex(token)).cloned()?;
        let Some(hash) = link.password_hash else {
            // An open link needs no unlocking: it is its own access token.
            return Some((link.site_id, token.to_owned()));
        };
        if !crate::password::verify_async(password.to_owned(), hash).await {
            return None;
        }
        let access = new_secret("hbq_");
        let mut tables = self.write();
        tables.unlocked.retain(|_, (_, expires)| *expires > now_ms);
        tables.unlocked.insert(
            sha256_hex(&access),
            (link.site_id.clone(), now_ms + UNLOCK_TTL_MS),
        );
        Some((link.site_id, access))
    }
}

/// Most custom properties a site declares (Plausible's limit).
pub const MAX_CUSTOM_PROPS: usize = 300;
/// Longest custom property name, in characters (Plausible's limit).
pub const MAX_CUSTOM_PROP_CHARS: usize = 300;

/// What Plausible's Sites API keeps beside a site: the site found by either of its names, a
/// domain change, declared custom properties and named share links.
impl Registry {
    /// The site a Plausible `site_id` names: the site with that domain, else the site with
    /// that id. A site keeps its id (its first domain) when its domain changes, so its old
    /// name still finds it, as in Plausible.
    pub fn site_by_domain_or_id(&self, name: &str) -> Option<Site> {
        let tables = self.read();
        tables
            .by_domain
            .get(name)
            .and_then(|id| tables.sites.get(id))
            .or_else(|| tables.sites.get(&SiteId(name.to_owned())))
            .cloned()
    }

    /// Changes a site's domain: ingest finds the site under the new domain from now on; its
    /// id (and every key, query and link naming it) stays.
    pub async fn change_domain(&self, id: &SiteId, domain: &str) -> Result<Site, RegistryError> {
        let mut site = self
            .site(id)
            .ok_or_else(|| RegistryError::NotFound(id.clone()))?;
        let domain = normalize_host(domain);
        if !is_host(&domain) {
            return Err(RegistryError::Invalid {
                field: "domain",
                message: "domain must be a host name like example.com".into(),
            });
        }
        if domain == site.domain {
            return Err(RegistryError::Invalid {
                field: "domain",
                message: "the new domain must differ from the current one".into(),
            });
        }
        let taken = {
            let tables = self.read();
            tables
                .by_domain
                .get(&domain)
                .is_some_and(|other| other != id)
                || (domain != id.0 && tables.sites.contains_key(&SiteId(domain.clone())))
        };
        if taken {
            return Err(RegistryError::Conflict(format!(
                "the domain {domain} belongs to another site"
            )));
        }
        self.meta.set_site_domain(id, &domain).await?;
        let mut tables = self.write();
        tables.by_domain.remove(&site.domain);
        tables.by_domain.insert(domain.clone(), id.clone());
        site.domain = domain;
        tables.sites.insert(id.clone(), site.clone());
        Ok(site)
    }

    /// The custom properties `site` declared, the latest first (as Plausible keeps them).
    pub fn custom_props(&self, site: &SiteId) -> Vec<String> {
        self.read()
            .custom_props
            .get(site)
            .cloned()
            .unwrap_or_default()
    }

    /// Declares a custom property of `site` (trimmed; declaring one again changes nothing);
    /// returns the site's properties.
    pub async fn allow_custom_prop(
        &self,
        site: &SiteId,
        prop: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let _one_at_a_time = self.settings_writes.lock().await;
        if !self.has_site(site) {
            return Err(RegistryError::NotFound(site.clone()));
        }
        let prop = prop.trim();
        let chars = prop.chars().count();
        if chars == 0 || chars > MAX_CUSTOM_PROP_CHARS {
            return Err(RegistryError::Invalid {
                field: "property",
                message: format!("a property has 1 to {MAX_CUSTOM_PROP_CHARS} characters"),
            });
        }
        let mut props = self.custom_props(site);
        if props.iter().any(|p| p == prop) {
            return Ok(props);
        }
        if props.len() >= MAX_CUSTOM_PROPS {
            return Err(RegistryError::Invalid {
                field: "property",
                message: format!("a site declares at most {MAX_CUSTOM_PROPS} properties"),
            });
        }
        props.insert(0, prop.to_owned());
        self.meta.set_custom_props(site, &props).await?;
        self.write()
            .custom_props
            .insert(site.clone(), props.clone());
        Ok(props)
    }

    /// Withdraws a declared custom property of `site` (nothing when it was not declared);
    /// returns the site's properties.
    pub async fn disallow_custom_prop(
        &self,
        site: &SiteId,
        prop: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let _one_at_a_time = self.settings_writes.lock().await;
        if !self.has_site(site) {
            return Err(RegistryError::NotFound(site.clone()));
        }
        let mut props = self.custom_props(site);
        let before = props.len();
        props.retain(|p| p != prop);
        if props.len() != before {
            self.meta.set_custom_props(site, &props).await?;
            self.write()
                .custom_props
                .insert(site.clone(), props.clone());
        }
        Ok(props)
    }

    /// The token of a named link: a keyed SHA-256 of the instance's link key and the link, so
    /// the same link always shows the same token and only its digest is stored.
    fn named_link_token(&self, site: &SiteId, name: &str, created_at_ms: i64) -> String {
        let digest = sha256_hex(&format!(
            "{}\0{site}\0{name}\0{created_at_ms}",
            self.link_key
        ));
        format!("hbp_{}", &digest[..40])
    }

    /// Finds `site`'s public read-only link named `name`, or creates it; returns it with its
    /// token. The same name always answers the same token (unless the admin token, from
    /// which tokens are derived, changed: the link is then given a new token).
    pub async fn named_share_link(
        &self,
        site: &SiteId,
        name: &str,
        now_ms: i64,
    ) -> Result<(NamedShareLink, String), RegistryError> {
        let _one_at_a_time = self.settings_writes.lock().await;
        if !self.has_site(site) {
            return Err(RegistryError::NotFound(site.clone()));
        }
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(RegistryError::Invalid {
                field: "name",
                message: "name must have 1 to 200 characters".into(),
            });
        }
        let existing = self
            .read()
            .named_shares
            .values()
            .find(|l| l.site_id == *site && l.name == name)
            .cloned();
        if let Some(link) = existing {
            let token = self.named_link_token(site, name, link.created_at_ms);
            if sha256_hex(&token) == link.token_sha256 {
                return Ok((link, token));
            }
        }
        let token = self.named_link_token(site, name, now_ms);
        let link = NamedShareLink {
            site_id: site.clone(),
            name: name.to_owned(),
            token_sha256: sha256_hex(&token),
            created_at_ms: now_ms,
        };
        self.meta.put_named_share_link(&link).await?;
        let mut tables = self.write();
        tables
            .named_shares
            .retain(|_, l| !(l.site_id == *site && l.name == name));
        tables
            .named_shares
            .insert(link.token_sha256.clone(), link.clone());
        Ok((link, token))
    }
}

/// The most funnels a site keeps, and the longest funnel name.
pub const MAX_FUNNELS_PER_SITE: usize = 100;
pub const MAX_FUNNEL_NAME_CHARS: usize = 200;

impl Registry {
    /// `site`'s saved funnels, oldest first.
    pub fn funnels(&self, site: &SiteId) -> Vec<Funnel> {
        let mut funnels: Vec<Funnel> = self
            .read()
            .funnels
            .values()
            .filter(|f| f.site_id == *site)
            .cloned()
            .collect();
        funnels.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        funnels
    }

    /// `site`'s funnel `id`; `None` when there is none, or when it is another site's.
    pub fn funnel(&self, site: &SiteId, id: &str) -> Option<Funnel> {
        self.read()
            .funnels
            .get(id)
            .filter(|f| f.site_id == *site)
            .cloned()
    }

    /// Saves a funnel of `site` (a definition the caller has checked) under a new id.
    pub async fn create_funnel(
        &self,
        site: &SiteId,
        name: &str,
        definition: FunnelDefinition,
        now_ms: i64,
    ) -> Result<Funnel, RegistryError> {
        let _one_at_a_time = self.settings_writes.lock().await;
        if !self.has_site(site) {
            return Err(RegistryError::NotFound(site.clone()));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_FUNNEL_NAME_CHARS {
            return Err(RegistryError::Invalid {
                field: "name",
                message: format!("a funnel's name has 1 to {MAX_FUNNEL_NAME_CHARS} characters"),
            });
        }
        if self.funnels(site).len() >= MAX_FUNNELS_PER_SITE {
            return Err(RegistryError::Invalid {
                field: "name",
                message: format!("a site keeps at most {MAX_FUNNELS_PER_SITE} funnels"),
            });
        }
        let mut bytes = [0u8; 8];
        rand::rng().fill_bytes(&mut bytes);
        let funnel = Funnel {
            id: format!("fn_{}", hex::encode(bytes)),
            site_id: site.clone(),
            name: name.to_owned(),
            definition,
            created_at_ms: now_ms,
        };
        self.meta.insert_funnel(&funnel).await?;
        self.write()
            .funnels
            .insert(funnel.id.clone(), funnel.clone());
        Ok(funnel)
    }

    /// Deletes `site`'s funnel `id`; `Missing` (as `funnel_id`) when `site` has none such,
    /// whether or not another site has it.
    pub async fn delete_funnel(&self, site: &SiteId, id: &str) -> Result<Funnel, RegistryError> {
        let _one_at_a_time = self.settings_writes.lock().await;
        let funnel = self
            .funnel(site, id)
            .ok_or_else(|| RegistryError::Missing {
                field: "funnel_id",
                message: format!("no funnel {id}"),
            })?;
        self.meta.delete_funnel(id).await?;
        self.write().funnels.remove(id);
        Ok(funnel)
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
