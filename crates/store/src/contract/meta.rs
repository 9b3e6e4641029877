//! The contract every [`MetaStore`] implementation must keep.
//!
//! What it pins down: every record comes back as it was written, field for field; ids,
//! domains and emails are unique (`Conflict`); updates change what they say and keep the
//! rest; a revoked key stays listed; deleting a site takes its keys and its share link and
//! nothing of other sites; deleting a user takes its memberships and sessions; a membership
//! is one per user and organisation; sessions are deleted one by one or per user; a site's
//! domain changes under its id, its declared custom properties keep their order, and its
//! named share links are one per name and go with the site; goals come back as written,
//! display names are unique within a site and goals go with their site; saved funnels come
//! back whole (every step, property, label, window and order), their ids are unique, and they
//! go one by one or with their site.

use std::future::Future;

use heartbeat_model::{
    ApiKey, ApiKeyScope, Funnel, FunnelDefinition, FunnelOrder, FunnelStep, FunnelWindow, Goal,
    GoalKind, Membership, NamedShareLink, Org, OrgId, Role, ShareLink, Site, SiteId, SiteRules,
    StepTarget, User, UserSession,
};

use crate::{MetaStore, StoreError};

/// Runs every check, each on a fresh store from `make`.
pub async fn check_meta_store<S, F, M>(make: M)
where
    S: MetaStore,
    F: Future<Output = S>,
    M: Fn() -> F,
{
    sites_come_back_and_are_unique(make().await).await;
    keys_come_back_revoked_and_touched(make().await).await;
    deleting_a_site_takes_its_keys_and_link_only(make().await).await;
    organisations_and_site_orgs(make().await).await;
    users_memberships_and_sessions(make().await).await;
    plausible_site_settings(make().await).await;
    goals_per_site(make().await).await;
    funnels_come_back_and_go_with_their_site(make().await).await;
    day_salts_are_agreed_once_and_forgotten(make().await).await;
}

async fn day_salts_are_agreed_once_and_forgotten(store: impl MetaStore) {
    let first = store.day_salt(20_000, [1; 16]).await.unwrap();
    assert_eq!(first, [1; 16], "the first proposal is stored");
    assert_eq!(
        store.day_salt(20_000, [2; 16]).await.unwrap(),
        [1; 16],
        "a later proposal for the same day gets the stored salt"
    );
    assert_eq!(store.day_salt(20_001, [3; 16]).await.unwrap(), [3; 16]);
    store.forget_salts_before(20_001).await.unwrap();
    assert_eq!(
        store.day_salt(20_000, [4; 16]).await.unwrap(),
        [4; 16],
        "a forgotten day's salt is gone"
    );
    assert_eq!(store.day_salt(20_001, [5; 16]).await.unwrap(), [3; 16]);
}

fn site(id: &str, domain: &str) -> Site {
    Site {
        id: SiteId::from(id),
        name: format!("Site {id}"),
        domain: domain.to_owned(),
        timezone: "Europe/Berlin".to_owned(),
        created_at_ms: 1_770_000_000_000,
        retention_days: None,
        rules: SiteRules::default(),
    }
}

fn key(id: &str, site: Option<&str>, org: Option<&str>, scope: ApiKeyScope) -> ApiKey {
    ApiKey {
        id: id.to_owned(),
        site_id: site.map(SiteId::from),
        org_id: org.map(|o| OrgId(o.to_owned())),
        name: format!("key {id}"),
        last_used_at_ms: None,
        scope,
        secret_sha256: format!("{id:0>64}"),
        created_at_ms: 1_770_000_000_001,
        revoked: false,
    }
}

fn sorted<T, K: Ord>(mut items: Vec<T>, by: impl Fn(&T) -> K) -> Vec<T> {
    items.sort_by_key(|item| by(item));
    items
}

fn is_conflict(result: Result<(), StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict { .. }))
}

async fn sites_come_back_and_are_unique(store: impl MetaStore) {
    assert!(
        store.sites().await.unwrap().is_empty(),
        "a new store has no sites"
    );
    let mut a = site("a.example", "a.example");
    a.retention_days = Some(30);
    a.rules = SiteRules {
        allowed_hostnames: vec!["a.example".into(), "*.a.example".into()],
        excluded_paths: vec!["/admin/**".into()],
        excluded_ips: vec!["10.0.0.0/8".into()],
        ..SiteRules::default()
    };
    let b = site("b.example", "b.example");
    store.insert_site(&a).await.unwrap();
    store.insert_site(&b).await.unwrap();
    assert_eq!(
        sorted(store.sites().await.unwrap(), |s| s.id.clone()),
        vec![a.clone(), b.clone()],
        "sites come back field for field"
    );
    assert!(
        is_conflict(store.insert_site(&site("a.example", "other.example")).await),
        "a taken id is a conflict"
    );
    assert!(
        is_conflict(store.insert_site(&site("c.example", "b.example")).await),
        "a taken domain is a conflict"
    );
    let mut changed = a.clone();
    changed.name = "Renamed".into();
    changed.timezone = "UTC".into();
    changed.retention_days = None;
    changed.rules = SiteRules::default();
    store.update_site(&changed).await.unwrap();
    let sites = sorted(store.sites().await.unwrap(), |s| s.id.clone());
    assert_eq!(sites, vec![changed, b], "an update changes that site only");
}

async fn keys_come_back_revoked_and_touched(store: impl MetaStore) {
    store
        .insert_site(&site("a.example", "a.example"))
        .await
        .unwrap();
    let keys = vec![
        key("k1", Some("a.example"), None, ApiKeyScope::Ingest),
        key("k2", Some("a.example"), None, ApiKeyScope::Read),
        key("k3", None, Some("acme"), ApiKeyScope::Admin),
        key("k4", None, None, ApiKeyScope::Admin),
    ];
    for k in &keys {
        store.insert_api_key(k).await.unwrap();
    }
    assert_eq!(
        sorted(store.api_keys().await.unwrap(), |k| k.id.clone()),
        keys,
        "keys come back field for field"
    );
    store.revoke_api_key("k2").await.unwrap();
    store.touch_api_key("k1", 1_770_000_060_000).await.unwrap();
    let after = sorted(store.api_keys().await.unwrap(), |k| k.id.clone());
    assert_eq!(after.len(), 4, "a revoked key stays listed");
    assert!(after[1].revoked && !after[0].revoked && !after[2].revoked);
    assert_eq!(after[0].last_used_at_ms, Some(1_770_000_060_000));
    assert_eq!(after[2].last_used_at_ms, None);
}

async fn deleting_a_site_takes_its_keys_and_link_only(store: impl MetaStore) {
    for id in ["a.example", "b.example"] {
        store.insert_site(&site(id, id)).await.unwrap();
        store
            .insert_api_key(&key(
                &format!("key-{id}"),
                Some(id),
                None,
                ApiKeyScope::Read,
            ))
            .await
            .unwrap();
        store
            .put_share_link(&ShareLink {
                site_id: SiteId::from(id),
                token_sha256: format!("{id:0>64}"),
                password_hash: None,
                created_at_ms: 1,
            })
            .await
            .unwrap();
    }
    store
        .insert_api_key(&key("admin", None, None, ApiKeyScope::Admin))
        .await
        .unwrap();
    let replaced = ShareLink {
        site_id: SiteId::from("b.example"),
        token_sha256: "f".repeat(64),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at_ms: 2,
    };
    store.put_share_link(&replaced).await.unwrap();
    store.delete_site(&SiteId::from("a.example")).await.unwrap();
    let sites: Vec<SiteId> = store
        .sites()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(sites, vec![SiteId::from("b.example")]);
    let keys: Vec<String> = sorted(store.api_keys().await.unwrap(), |k| k.id.clone())
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(
        keys,
        vec!["admin", "key-b.example"],
        "the site's keys go with it"
    );
    assert_eq!(
        store.share_links().await.unwrap(),
        vec![replaced],
        "its link goes with it; a site has one link, the last put"
    );
    store
        .delete_share_link(&SiteId::from("b.example"))
        .await
        .unwrap();
    assert!(store.share_links().await.unwrap().is_empty());
    store
        .insert_site(&site("a.example", "a.example"))
        .await
        .unwrap();
    assert_eq!(
        store.sites().await.unwrap().len(),
        2,
        "a deleted site's id and domain are free"
    );
}

async fn organisations_and_site_orgs(store: impl MetaStore) {
    let acme = Org {
        id: OrgId("acme".into()),
        name: "Acme".into(),
        created_at_ms: 5,
    };
    store.insert_org(&acme).await.unwrap();
    assert!(
        is_conflict(store.insert_org(&acme).await),
        "a taken org id is a conflict"
    );
    assert!(store.orgs().await.unwrap().contains(&acme));
    store
        .insert_site(&site("a.example", "a.example"))
        .await
        .unwrap();
    store
        .insert_site(&site("b.example", "b.example"))
        .await
        .unwrap();
    store
        .set_site_org(&SiteId::from("a.example"), &acme.id)
        .await
        .unwrap();
    let orgs = store.site_orgs().await.unwrap();
    assert!(orgs.contains(&(SiteId::from("a.example"), acme.id.clone())));
    assert!(
        !orgs.iter().any(|(s, _)| s.as_str() == "b.example")
            || orgs.contains(&(SiteId::from("b.example"), OrgId("default".into()))),
        "a site never moved is in no organisation or the default one"
    );
}

async fn users_memberships_and_sessions(store: impl MetaStore) {
    let ann = User {
        id: "u1".into(),
        email: "ann@example.com".into(),
        password_hash: "$argon2id$one".into(),
        created_at_ms: 1,
    };
    let bob = User {
        id: "u2".into(),
        email: "bob@example.com".into(),
        password_hash: "$argon2id$two".into(),
        created_at_ms: 2,
    };
    store.insert_user(&ann).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    let taken = User {
        id: "u3".into(),
        ..ann.clone()
    };
    assert!(
        is_conflict(store.insert_user(&taken).await),
        "a taken email is a conflict"
    );
    store.set_password("u1", "$argon2id$new").await.unwrap();
    let users = sorted(store.users().await.unwrap(), |u| u.id.clone());
    assert_eq!(users[0].password_hash, "$argon2id$new");
    assert_eq!(users[1], bob);

    let acme = OrgId("acme".into());
    let member = |user: &str, role| Membership {
        user_id: user.into(),
        org_id: acme.clone(),
        role,
    };
    store
        .put_membership(&member("u1", Role::Viewer))
        .await
        .unwrap();
    store
        .put_membership(&member("u1", Role::Owner))
        .await
        .unwrap();
    store
        .put_membership(&member("u2", Role::Admin))
        .await
        .unwrap();
    assert_eq!(
        sorted(store.memberships().await.unwrap(), |m| m.user_id.clone()),
        vec![member("u1", Role::Owner), member("u2", Role::Admin)],
        "one membership per user and organisation, the last role put"
    );

    let session = |token: &str, user: &str| UserSession {
        token_sha256: token.repeat(64),
        user_id: user.into(),
        created_at_ms: 10,
        expires_at_ms: 20,
    };
    for (token, user) in [("a", "u1"), ("b", "u1"), ("c", "u1"), ("d", "u2")] {
        store
            .insert_user_session(&session(token, user))
            .await
            .unwrap();
    }
    store
        .delete_user_sessions(Some(&"a".repeat(64)), None)
        .await
        .unwrap();
    assert_eq!(
        store.user_sessions().await.unwrap().len(),
        3,
        "one session deleted"
    );
    store.delete_user_sessions(None, Some("u1")).await.unwrap();
    assert_eq!(
        store.user_sessions().await.unwrap(),
        vec![session("d", "u2")],
        "a user's sessions deleted"
    );

    store.delete_user("u2").await.unwrap();
    assert_eq!(store.users().await.unwrap().len(), 1);
    assert_eq!(
        store.memberships().await.unwrap(),
        vec![member("u1", Role::Owner)],
        "a deleted user's memberships go"
    );
    assert!(
        store.user_sessions().await.unwrap().is_empty(),
        "and its sessions"
    );
}

async fn plausible_site_settings(store: impl MetaStore) {
    for id in ["a.example", "b.example"] {
        store.insert_site(&site(id, id)).await.unwrap();
    }
    let a = SiteId::from("a.example");
    let b = SiteId::from("b.example");

    store.set_site_domain(&a, "new.example").await.unwrap();
    let domains: Vec<(SiteId, String)> = sorted(store.sites().await.unwrap(), |s| s.id.clone())
        .into_iter()
        .map(|s| (s.id, s.domain))
        .collect();
    assert_eq!(
        domains,
        vec![
            (a.clone(), "new.example".to_owned()),
            (b.clone(), "b.example".to_owned())
        ],
        "a domain changes under the site's id"
    );
    assert!(
        is_conflict(store.set_site_domain(&b, "new.example").await),
        "another site's domain is a conflict"
    );

    assert!(store.custom_props().await.unwrap().is_empty());
    let props = vec!["logged_in".to_owned(), "author".to_owned()];
    store.set_custom_props(&a, &props).await.unwrap();
    store.set_custom_props(&b, &[]).await.unwrap();
    assert_eq!(
        sorted(store.custom_props().await.unwrap(), |(s, _)| s.clone()),
        vec![(a.clone(), props), (b.clone(), Vec::new())],
        "declared properties come back in their order, per site"
    );

    let link = |site: &SiteId, name: &str, at: i64| NamedShareLink {
        site_id: site.clone(),
        name: name.to_owned(),
        token_sha256: format!("{name}{at:0>60}"),
        created_at_ms: at,
    };
    for l in [
        link(&a, "WordPress", 1),
        link(&a, "Other", 2),
        link(&b, "WordPress", 3),
    ] {
        store.put_named_share_link(&l).await.unwrap();
    }
    let replaced = link(&a, "WordPress", 4);
    store.put_named_share_link(&replaced).await.unwrap();
    let links = |all: Vec<NamedShareLink>| sorted(all, |l| (l.site_id.clone(), l.name.clone()));
    assert_eq!(
        links(store.named_share_links().await.unwrap()),
        vec![link(&a, "Other", 2), replaced, link(&b, "WordPress", 3)],
        "one link per site and name, the last put"
    );

    store.delete_site(&a).await.unwrap();
    assert_eq!(
        store.named_share_links().await.unwrap(),
        vec![link(&b, "WordPress", 3)],
        "a deleted site's named links go with it"
    );
    assert_eq!(
        store.custom_props().await.unwrap(),
        vec![(b.clone(), Vec::new())],
        "and its properties"
    );
    store
        .insert_site(&site("a.example", "a.example"))
        .await
        .unwrap();
    assert!(
        store
            .custom_props()
            .await
            .unwrap()
            .iter()
            .all(|(s, _)| *s != a),
        "a site created again declares nothing"
    );
}

async fn goals_per_site(store: impl MetaStore) {
    for id in ["a.example", "b.example"] {
        store.insert_site(&site(id, id)).await.unwrap();
    }
    let a = SiteId::from("a.example");
    let b = SiteId::from("b.example");
    let goal = |id: u64, site: &SiteId, kind: GoalKind, currency: Option<&str>| Goal {
        id,
        site_id: site.clone(),
        display_name: kind.default_name(),
        kind,
        currency: currency.map(str::to_owned),
        created_at_ms: 1_770_000_000_000 + id as i64,
    };
    let page = |path: &str| GoalKind::Page {
        page_path: path.to_owned(),
    };
    let event = |name: &str, props: &[(&str, &str)]| GoalKind::Event {
        event_name: name.to_owned(),
        props: props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    let written = vec![
        goal(1, &a, page("/blog/**"), None),
        goal(2, &a, event("Purchase", &[("plan", "pro")]), Some("EUR")),
        goal(3, &b, event("Signup", &[]), None),
    ];
    for g in &written {
        store.insert_goal(g).await.unwrap();
    }
    assert_eq!(
        store.goals().await.unwrap(),
        written,
        "goals come back field for field"
    );
    assert!(
        is_conflict(
            store
                .insert_goal(&goal(4, &a, page("/blog/**"), None))
                .await
        ),
        "a display name is unique within a site"
    );
    assert!(
        is_conflict(store.insert_goal(&goal(3, &a, page("/x"), None)).await),
        "and an id across sites"
    );
    store
        .insert_goal(&goal(5, &b, page("/blog/**"), None))
        .await
        .unwrap();
    assert!(
        !store.delete_goal(&b, 1).await.unwrap(),
        "another site's goal stays"
    );
    assert!(store.delete_goal(&a, 1).await.unwrap());
    store.delete_site(&b).await.unwrap();
    assert_eq!(
        store.goals().await.unwrap(),
        vec![written[1].clone()],
        "a deleted site's goals go with it"
    );
}

async fn funnels_come_back_and_go_with_their_site(store: impl MetaStore) {
    for id in ["a.example", "b.example"] {
        store.insert_site(&site(id, id)).await.unwrap();
    }
    assert!(store.funnels().await.unwrap().is_empty());
    let funnel = |id: &str, site: &str, at: i64| Funnel {
        id: id.to_owned(),
        site_id: SiteId::from(site),
        name: format!("Funnel {id}"),
        definition: FunnelDefinition {
            steps: vec![
                FunnelStep {
                    target: StepTarget::Page("/blog/*".into()),
                    props: Default::default(),
                    label: Some("Blog".into()),
                },
                FunnelStep {
                    target: StepTarget::Event("signup".into()),
                    props: [("plan".to_owned(), "pro".to_owned())].into(),
                    label: None,
                },
            ],
            window: FunnelWindow::Seconds(3600),
            order: FunnelOrder::Strict,
        },
        created_at_ms: at,
    };
    let mut visit = funnel("fn_2", "a.example", 2);
    visit.definition.window = FunnelWindow::Visit;
    visit.definition.order = FunnelOrder::Any;
    let all = [
        funnel("fn_1", "a.example", 1),
        visit,
        funnel("fn_3", "b.example", 3),
    ];
    for f in &all {
        store.insert_funnel(f).await.unwrap();
    }
    assert_eq!(
        sorted(store.funnels().await.unwrap(), |f| f.id.clone()),
        all.to_vec(),
        "funnels come back field for field"
    );
    assert!(
        matches!(
            store.insert_funnel(&funnel("fn_1", "b.example", 4)).await,
            Err(StoreError::Conflict { .. })
        ),
        "a funnel id is unique"
    );
    store.delete_funnel("fn_2").await.unwrap();
    store.delete_funnel("fn_missing").await.unwrap();
    store.delete_site(&SiteId::from("b.example")).await.unwrap();
    assert_eq!(
        store.funnels().await.unwrap(),
        vec![all[0].clone()],
        "a funnel is deleted alone or with its site"
    );
}
