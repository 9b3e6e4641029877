//! Who a request comes from and what it may do: one [`Caller`] whatever the credential (the
//! admin token, an API key of a site, an organisation or everything, a dashboard session or a
//! public dashboard link), so every route checks access the same way.
//!
//! Scopes are ordered `ingest` < `read` < `admin`; a caller's scope on a site is the highest
//! any of its grants gives there. Roles map onto scopes: owner and admin give `admin`, viewer
//! gives `read`. The owners of the `default` organisation own the instance (every site).

use std::collections::{HashMap, HashSet};

use heartbeat_ingest::KeyGrant;
use heartbeat_model::{ApiKeyScope, OrgId, Role, SiteId};

/// The credential a caller presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The instance's admin token.
    AdminToken,
    /// An API key, by id.
    Key(String),
    /// A signed-in dashboard user, by id.
    User(String),
    /// A public dashboard link of one site: read-only.
    Share(SiteId),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// What ingest needs: the key's own site, when it has exactly one.
    pub grant: KeyGrant,
    /// Authenticated by the session cookie (unsafe methods then need a same-origin request).
    pub via_cookie: bool,
    /// The scope on every site, current and future.
    everywhere: Option<ApiKeyScope>,
    /// The scope on each organisation's sites.
    orgs: HashMap<OrgId, ApiKeyScope>,
    /// Organisations whose users this caller manages (owners).
    owned_orgs: HashSet<OrgId>,
    /// The scope on each site reached (organisations' sites expanded when authenticated).
    sites: HashMap<SiteId, ApiKeyScope>,
}

fn higher(a: Option<ApiKeyScope>, b: Option<ApiKeyScope>) -> Option<ApiKeyScope> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.rank() >= b.rank() { a } else { b }),
        (a, None) => a,
        (None, b) => b,
    }
}

pub fn role_scope(role: Role) -> ApiKeyScope {
    match role {
        Role::Owner | Role::Admin => ApiKeyScope::Admin,
        Role::Viewer => ApiKeyScope::Read,
    }
}

impl Caller {
    /// A caller reaching every site with `scope`.
    pub fn everywhere(principal: Principal, scope: ApiKeyScope) -> Self {
        Caller {
            principal,
            grant: KeyGrant { site_id: None },
            via_cookie: false,
            everywhere: Some(scope),
            orgs: HashMap::new(),
            owned_orgs: HashSet::new(),
            sites: HashMap::new(),
        }
    }

    /// A caller reaching one site.
    pub fn one_site(principal: Principal, site: SiteId, scope: ApiKeyScope) -> Self {
        Caller {
            principal,
            grant: KeyGrant {
                site_id: Some(site.clone()),
            },
            via_cookie: false,
            everywhere: None,
            orgs: HashMap::new(),
            owned_orgs: HashSet::new(),
            sites: HashMap::from([(site, scope)]),
        }
    }

    /// A caller reaching whole organisations; `sites_of` lists an organisation's sites.
    pub fn in_orgs(
        principal: Principal,
        grants: &[(OrgId, ApiKeyScope, bool)],
        sites_of: impl Fn(&OrgId) -> Vec<SiteId>,
    ) -> Self {
        let mut caller = Caller {
            principal,
            grant: KeyGrant { site_id: None },
            via_cookie: false,
            everywhere: None,
            orgs: HashMap::new(),
            owned_orgs: HashSet::new(),
            sites: HashMap::new(),
        };
        for (org, scope, owner) in grants {
            if *owner {
                caller.owned_orgs.insert(org.clone());
                if *org == OrgId::default_org() {
                    caller.everywhere = Some(ApiKeyScope::Admin);
                }
            }
            let entry = caller.orgs.entry(org.clone()).or_insert(*scope);
            *entry = higher(Some(*entry), Some(*scope)).unwrap_or(*scope);
            for site in sites_of(org) {
                let now = caller.sites.get(&site).copied();
                if let Some(best) = higher(now, Some(*scope)) {
                    caller.sites.insert(site, best);
                }
            }
        }
        caller
    }

    /// What rate limits count this caller as.
    pub fn limit_key(&self) -> String {
        match &self.principal {
            Principal::AdminToken => "admin".to_owned(),
            Principal::Key(id) => format!("key:{id}"),
            Principal::User(id) => format!("user:{id}"),
            Principal::Share(site) => format!("share:{site}"),
        }
    }

    /// The highest scope this caller has on `site`.
    pub fn scope_on(&self, site: &SiteId) -> Option<ApiKeyScope> {
        higher(self.everywhere, self.sites.get(site).copied())
    }

    /// Whether this caller may read `site`'s statistics.
    pub fn may_read(&self, site: &SiteId) -> bool {
        self.scope_on(site)
            .is_some_and(|s| s.rank() >= ApiKeyScope::Read.rank())
    }

    /// Whether this caller may send or import events for `site` (never a share link).
    pub fn may_write(&self, site: &SiteId) -> bool {
        !self.is_share() && self.scope_on(site).is_some()
    }

    /// Whether this caller may change or delete `site` and manage its keys.
    pub fn may_admin(&self, site: &SiteId) -> bool {
        self.scope_on(site) == Some(ApiKeyScope::Admin)
    }

    /// Whether this caller may create sites and keys in `org`.
    pub fn may_admin_org(&self, org: &OrgId) -> bool {
        self.is_admin() || self.orgs.get(org) == Some(&ApiKeyScope::Admin)
    }

    /// Whether this caller may manage `org`'s users.
    pub fn may_own_org(&self, org: &OrgId) -> bool {
        self.is_admin() || self.owned_orgs.contains(org)
    }

    /// An instance-wide admin: the admin token, an admin key of every site, an owner of the
    /// default organisation.
    pub fn is_admin(&self) -> bool {
        self.everywhere == Some(ApiKeyScope::Admin)
    }

    /// Whether this caller may administer anything at all: the admin token, an admin key (of a
    /// site, an organisation or every site), an owner or admin of an organisation; never a
    /// share link. Plausible's Sites API asks this where Plausible asks for a
    /// `sites:provision:*` key; each site still needs [`Caller::may_admin`].
    pub fn may_provision(&self) -> bool {
        let admin = |scope: &ApiKeyScope| *scope == ApiKeyScope::Admin;
        !self.is_share()
            && (self.everywhere == Some(ApiKeyScope::Admin)
                || self.orgs.values().any(admin)
                || self.sites.values().any(admin))
    }

    pub fn is_share(&self) -> bool {
        matches!(self.principal, Principal::Share(_))
    }

    /// The organisations this caller has a grant on.
    pub fn orgs(&self) -> impl Iterator<Item = (&OrgId, &ApiKeyScope)> {
        self.orgs.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: &str) -> SiteId {
        SiteId(id.into())
    }

    #[test]
    fn scopes_by_grant() {
        let key = Caller::one_site(Principal::Key("k".into()), site("a"), ApiKeyScope::Ingest);
        assert!(key.may_write(&site("a")));
        assert!(!key.may_read(&site("a")));
        assert!(!key.may_write(&site("b")));

        let viewer = Caller::in_orgs(
            Principal::User("u".into()),
            &[(OrgId("acme".into()), ApiKeyScope::Read, false)],
            |_| vec![site("a"), site("b")],
        );
        assert!(viewer.may_read(&site("b")));
        assert!(!viewer.may_admin(&site("b")));
        assert!(!viewer.may_read(&site("c")));
        assert!(!viewer.is_admin());

        let owner = Caller::in_orgs(
            Principal::User("o".into()),
            &[(OrgId::default_org(), ApiKeyScope::Admin, true)],
            |_| Vec::new(),
        );
        assert!(owner.is_admin());
        assert!(owner.may_admin(&site("anything")));

        let share = Caller::one_site(Principal::Share(site("a")), site("a"), ApiKeyScope::Read);
        assert!(share.may_read(&site("a")));
        assert!(!share.may_write(&site("a")));

        assert!(owner.may_provision());
        assert!(!viewer.may_provision());
        assert!(!key.may_provision());
        assert!(!share.may_provision());
        let site_admin =
            Caller::one_site(Principal::Key("a".into()), site("a"), ApiKeyScope::Admin);
        assert!(site_admin.may_provision());
        assert!(!site_admin.may_admin(&site("b")));
    }
}
