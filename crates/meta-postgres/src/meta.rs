//! [`MetaStore`] on PostgreSQL: sites and their settings, API keys, organisations, users,
//! memberships and sessions, share links, goals and funnels, in the tables of migration 1.
//!
//! Enums are stored under their model names (`ApiKeyScope::as_str`, `Role::as_str`), nested
//! parts as JSONB. A row whose stored value no longer decodes is logged and left out (a
//! site's damaged rules read as no rules), so one damaged row never keeps a server from
//! starting.

use heartbeat_model::{
    ApiKey, ApiKeyScope, Funnel, Goal, Membership, NamedShareLink, Org, OrgId, Role, ShareLink,
    Site, SiteId, User, UserSession,
};
use heartbeat_store::{MetaStore, StoreError};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::{kept, rejected, unreadable, PostgresMetaStore};

/// Column `index` of `row`.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(unreadable)
}

/// A model value as the JSONB it is stored as.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(rejected)
}

/// A model number as the signed `BIGINT` it is stored as.
fn to_bigint(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Rejected {
        message: format!("{what} {value} is out of range (at most {})", i64::MAX),
    })
}

fn site_from_row(row: &Row) -> Result<Site, StoreError> {
    let id: String = get(row, 0)?;
    let retention: Option<i64> = get(row, 5)?;
    let rules: serde_json::Value = get(row, 6)?;
    Ok(Site {
        name: get(row, 1)?,
        domain: get(row, 2)?,
        timezone: get(row, 3)?,
        created_at_ms: get(row, 4)?,
        // Written from a `u32`; a value out of range means no retention rather than a
        // server that cannot start.
        retention_days: retention
            .and_then(|days| kept("sites", &id, "retention_days", u32::try_from(days))),
        rules: kept("sites", &id, "rules", serde_json::from_value(rules)).unwrap_or_default(),
        id: SiteId(id),
    })
}

fn api_key_from_row(row: &Row) -> Result<Option<ApiKey>, StoreError> {
    let id: String = get(row, 0)?;
    let scope: String = get(row, 4)?;
    let Some(scope) = kept(
        "api_keys",
        &id,
        "scope",
        ApiKeyScope::parse(&scope).ok_or_else(|| format!("unknown scope {scope:?}")),
    ) else {
        return Ok(None);
    };
    Ok(Some(ApiKey {
        site_id: get::<Option<String>>(row, 1)?.map(SiteId),
        org_id: get::<Option<String>>(row, 2)?.map(OrgId),
        name: get(row, 3)?,
        scope,
        secret_sha256: get(row, 5)?,
        created_at_ms: get(row, 6)?,
        last_used_at_ms: get(row, 7)?,
        revoked: get(row, 8)?,
        id,
    }))
}

fn goal_from_row(row: &Row) -> Result<Option<Goal>, StoreError> {
    let id: i64 = get(row, 0)?;
    let kind: serde_json::Value = get(row, 3)?;
    let label = id.to_string();
    let (Some(id), Some(kind)) = (
        kept("goals", &label, "id", u64::try_from(id)),
        kept("goals", &label, "kind", serde_json::from_value(kind)),
    ) else {
        return Ok(None);
    };
    Ok(Some(Goal {
        id,
        site_id: SiteId(get(row, 1)?),
        display_name: get(row, 2)?,
        kind,
        currency: get(row, 4)?,
        created_at_ms: get(row, 5)?,
    }))
}

fn funnel_from_row(row: &Row) -> Result<Option<Funnel>, StoreError> {
    let id: String = get(row, 0)?;
    let definition: serde_json::Value = get(row, 3)?;
    let Some(definition) = kept(
        "funnels",
        &id,
        "definition",
        serde_json::from_value(definition),
    ) else {
        return Ok(None);
    };
    Ok(Some(Funnel {
        site_id: SiteId(get(row, 1)?),
        name: get(row, 2)?,
        definition,
        created_at_ms: get(row, 4)?,
        id,
    }))
}

/// Every row of `rows` read with `read`, leaving out those it leaves out (`None`).
pub(crate) fn read_rows<T>(
    rows: Vec<Row>,
    read: fn(&Row) -> Result<Option<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(item) = read(row)? {
            items.push(item);
        }
    }
    Ok(items)
}

#[async_trait::async_trait]
impl MetaStore for PostgresMetaStore {
    async fn sites(&self) -> Result<Vec<Site>, StoreError> {
        self.query(
            "SELECT id, name, domain, timezone, created_at_ms, retention_days, rules \
             FROM sites ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(site_from_row)
        .collect()
    }

    async fn insert_site(&self, site: &Site) -> Result<(), StoreError> {
        let retention = site.retention_days.map(i64::from);
        self.execute(
            "site",
            "INSERT INTO sites (id, name, domain, timezone, created_at_ms, retention_days, rules) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &site.id.as_str(),
                &site.name,
                &site.domain,
                &site.timezone,
                &site.created_at_ms,
                &retention,
                &to_json(&site.rules)?,
            ],
        )
        .await?;
        Ok(())
    }

    async fn update_site(&self, site: &Site) -> Result<(), StoreError> {
        let retention = site.retention_days.map(i64::from);
        let updated = self
            .execute(
                "site",
                "UPDATE sites SET name = $1, timezone = $2, retention_days = $3, rules = $4 \
                 WHERE id = $5",
                &[
                    &site.name,
                    &site.timezone,
                    &retention,
                    &to_json(&site.rules)?,
                    &site.id.as_str(),
                ],
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::Rejected {
                message: format!("no site {}", site.id),
            });
        }
        Ok(())
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = self
            .query(
                "SELECT id, site_id, org_id, name, scope, secret_sha256, created_at_ms, \
                 last_used_at_ms, revoked FROM api_keys ORDER BY created_at_ms, id",
                &[],
            )
            .await?;
        read_rows(rows, api_key_from_row)
    }

    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.execute(
            "api key",
            "INSERT INTO api_keys (id, site_id, org_id, name, scope, secret_sha256, \
             created_at_ms, last_used_at_ms, revoked) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &key.id,
                &key.site_id.as_ref().map(SiteId::as_str),
                &key.org_id.as_ref().map(OrgId::as_str),
                &key.name,
                &key.scope.as_str(),
                &key.secret_sha256,
                &key.created_at_ms,
                &key.last_used_at_ms,
                &key.revoked,
            ],
        )
        .await?;
        Ok(())
    }

    async fn revoke_api_key(&self, id: &str) -> Result<(), StoreError> {
        self.execute(
            "api key",
            "UPDATE api_keys SET revoked = true WHERE id = $1",
            &[&id],
        )
        .await?;
        Ok(())
    }

    async fn touch_api_key(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "api key",
            "UPDATE api_keys SET last_used_at_ms = $1 WHERE id = $2",
            &[&at_ms, &id],
        )
        .await?;
        Ok(())
    }

    async fn delete_site(&self, site: &SiteId) -> Result<(), StoreError> {
        self.execute_each(
            &[
                "DELETE FROM share_links WHERE site_id = $1",
                "DELETE FROM named_share_links WHERE site_id = $1",
                "DELETE FROM goals WHERE site_id = $1",
                "DELETE FROM funnels WHERE site_id = $1",
                "DELETE FROM api_keys WHERE site_id = $1",
                "DELETE FROM sites WHERE id = $1",
            ],
            site.as_str(),
        )
        .await
    }

    async fn orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.query("SELECT id, name, created_at_ms FROM orgs ORDER BY id", &[])
            .await?
            .iter()
            .map(|row| {
                Ok(Org {
                    id: OrgId(get(row, 0)?),
                    name: get(row, 1)?,
                    created_at_ms: get(row, 2)?,
                })
            })
            .collect()
    }

    async fn insert_org(&self, org: &Org) -> Result<(), StoreError> {
        self.execute(
            "organisation",
            "INSERT INTO orgs (id, name, created_at_ms) VALUES ($1, $2, $3)",
            &[&org.id.as_str(), &org.name, &org.created_at_ms],
        )
        .await?;
        Ok(())
    }

    async fn site_orgs(&self) -> Result<Vec<(SiteId, OrgId)>, StoreError> {
        self.query(
            "SELECT id, coalesce(org_id, $1) FROM sites ORDER BY id",
            &[&OrgId::default_org().as_str()],
        )
        .await?
        .iter()
        .map(|row| Ok((SiteId(get(row, 0)?), OrgId(get(row, 1)?))))
        .collect()
    }

    async fn set_site_org(&self, site: &SiteId, org: &OrgId) -> Result<(), StoreError> {
        self.execute(
            "site",
            "UPDATE sites SET org_id = $1 WHERE id = $2",
            &[&org.as_str(), &site.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.query(
            "SELECT id, email, password_hash, created_at_ms FROM users ORDER BY email",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(User {
                id: get(row, 0)?,
                email: get(row, 1)?,
                password_hash: get(row, 2)?,
                created_at_ms: get(row, 3)?,
            })
        })
        .collect()
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        self.execute(
            "user",
            "INSERT INTO users (id, email, password_hash, created_at_ms) VALUES ($1, $2, $3, $4)",
            &[
                &user.id,
                &user.email,
                &user.password_hash,
                &user.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<(), StoreError> {
        self.execute(
            "user",
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            &[&password_hash, &user_id],
        )
        .await?;
        Ok(())
    }

    async fn delete_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.execute_each(
            &[
                "DELETE FROM user_sessions WHERE user_id = $1",
                "DELETE FROM memberships WHERE user_id = $1",
                "DELETE FROM users WHERE id = $1",
            ],
            user_id,
        )
        .await
    }

    async fn memberships(&self) -> Result<Vec<Membership>, StoreError> {
        let rows = self
            .query(
                "SELECT user_id, org_id, role FROM memberships ORDER BY user_id, org_id",
                &[],
            )
            .await?;
        read_rows(rows, |row| {
            let user_id: String = get(row, 0)?;
            let role: String = get(row, 2)?;
            let Some(role) = kept(
                "memberships",
                &user_id,
                "role",
                Role::parse(&role).ok_or_else(|| format!("unknown role {role:?}")),
            ) else {
                return Ok(None);
            };
            Ok(Some(Membership {
                user_id,
                org_id: OrgId(get(row, 1)?),
                role,
            }))
        })
    }

    async fn put_membership(&self, membership: &Membership) -> Result<(), StoreError> {
        self.execute(
            "membership",
            "INSERT INTO memberships (user_id, org_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, org_id) DO UPDATE SET role = EXCLUDED.role",
            &[
                &membership.user_id,
                &membership.org_id.as_str(),
                &membership.role.as_str(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn user_sessions(&self) -> Result<Vec<UserSession>, StoreError> {
        self.query(
            "SELECT token_sha256, user_id, created_at_ms, expires_at_ms FROM user_sessions \
             ORDER BY created_at_ms, token_sha256",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(UserSession {
                token_sha256: get(row, 0)?,
                user_id: get(row, 1)?,
                created_at_ms: get(row, 2)?,
                expires_at_ms: get(row, 3)?,
            })
        })
        .collect()
    }

    async fn insert_user_session(&self, session: &UserSession) -> Result<(), StoreError> {
        self.execute(
            "user session",
            "INSERT INTO user_sessions (token_sha256, user_id, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4)",
            &[
                &session.token_sha256,
                &session.user_id,
                &session.created_at_ms,
                &session.expires_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_user_sessions(
        &self,
        token_sha256: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<(), StoreError> {
        // A NULL parameter matches nothing: with neither given, nothing is deleted.
        self.execute(
            "user session",
            "DELETE FROM user_sessions WHERE token_sha256 = $1 OR user_id = $2",
            &[&token_sha256, &user_id],
        )
        .await?;
        Ok(())
    }

    async fn share_links(&self) -> Result<Vec<ShareLink>, StoreError> {
        self.query(
            "SELECT site_id, token_sha256, password_hash, created_at_ms FROM share_links \
             ORDER BY site_id",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(ShareLink {
                site_id: SiteId(get(row, 0)?),
                token_sha256: get(row, 1)?,
                password_hash: get(row, 2)?,
                created_at_ms: get(row, 3)?,
            })
        })
        .collect()
    }

    async fn put_share_link(&self, link: &ShareLink) -> Result<(), StoreError> {
        self.execute(
            "share link",
            "INSERT INTO share_links (site_id, token_sha256, password_hash, created_at_ms) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (site_id) DO UPDATE SET token_sha256 = EXCLUDED.token_sha256, \
             password_hash = EXCLUDED.password_hash, created_at_ms = EXCLUDED.created_at_ms",
            &[
                &link.site_id.as_str(),
                &link.token_sha256,
                &link.password_hash,
                &link.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_share_link(&self, site: &SiteId) -> Result<(), StoreError> {
        self.execute(
            "share link",
            "DELETE FROM share_links WHERE site_id = $1",
            &[&site.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn set_site_domain(&self, site: &SiteId, domain: &str) -> Result<(), StoreError> {
        let updated = self
            .execute(
                "site domain",
                "UPDATE sites SET domain = $1 WHERE id = $2",
                &[&domain, &site.as_str()],
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::Rejected {
                message: format!("no site {site}"),
            });
        }
        Ok(())
    }

    async fn custom_props(&self) -> Result<Vec<(SiteId, Vec<String>)>, StoreError> {
        self.query(
            "SELECT id, custom_props FROM sites WHERE custom_props IS NOT NULL ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|row| Ok((SiteId(get(row, 0)?), get(row, 1)?)))
        .collect()
    }

    async fn set_custom_props(&self, site: &SiteId, props: &[String]) -> Result<(), StoreError> {
        // One statement replaces the whole ordered list, so readers never see half of it.
        self.execute(
            "site",
            "UPDATE sites SET custom_props = $1 WHERE id = $2",
            &[&props, &site.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn named_share_links(&self) -> Result<Vec<NamedShareLink>, StoreError> {
        self.query(
            "SELECT site_id, name, token_sha256, created_at_ms FROM named_share_links \
             ORDER BY site_id, name",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(NamedShareLink {
                site_id: SiteId(get(row, 0)?),
                name: get(row, 1)?,
                token_sha256: get(row, 2)?,
                created_at_ms: get(row, 3)?,
            })
        })
        .collect()
    }

    async fn put_named_share_link(&self, link: &NamedShareLink) -> Result<(), StoreError> {
        self.execute(
            "named share link",
            "INSERT INTO named_share_links (site_id, name, token_sha256, created_at_ms) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (site_id, name) DO UPDATE SET token_sha256 = EXCLUDED.token_sha256, \
             created_at_ms = EXCLUDED.created_at_ms",
            &[
                &link.site_id.as_str(),
                &link.name,
                &link.token_sha256,
                &link.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn goals(&self) -> Result<Vec<Goal>, StoreError> {
        let rows = self
            .query(
                "SELECT id, site_id, display_name, kind, currency, created_at_ms FROM goals \
                 ORDER BY id",
                &[],
            )
            .await?;
        read_rows(rows, goal_from_row)
    }

    async fn insert_goal(&self, goal: &Goal) -> Result<(), StoreError> {
        self.execute(
            "goal",
            "INSERT INTO goals (id, site_id, display_name, kind, currency, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &to_bigint(goal.id, "goal id")?,
                &goal.site_id.as_str(),
                &goal.display_name,
                &to_json(&goal.kind)?,
                &goal.currency,
                &goal.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_goal(&self, site: &SiteId, id: u64) -> Result<bool, StoreError> {
        // An id beyond the column's range names no stored goal.
        let Ok(id) = i64::try_from(id) else {
            return Ok(false);
        };
        let deleted = self
            .execute(
                "goal",
                "DELETE FROM goals WHERE site_id = $1 AND id = $2",
                &[&site.as_str(), &id],
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn funnels(&self) -> Result<Vec<Funnel>, StoreError> {
        let rows = self
            .query(
                "SELECT id, site_id, name, definition, created_at_ms FROM funnels \
                 ORDER BY site_id, created_at_ms, id",
                &[],
            )
            .await?;
        read_rows(rows, funnel_from_row)
    }

    async fn insert_funnel(&self, funnel: &Funnel) -> Result<(), StoreError> {
        self.execute(
            "funnel",
            "INSERT INTO funnels (id, site_id, name, definition, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &funnel.id,
                &funnel.site_id.as_str(),
                &funnel.name,
                &to_json(&funnel.definition)?,
                &funnel.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_funnel(&self, id: &str) -> Result<(), StoreError> {
        self.execute("funnel", "DELETE FROM funnels WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    async fn day_salt(&self, day: i64, proposed: [u8; 16]) -> Result<[u8; 16], StoreError> {
        // One statement: the proposal goes in unless the day has a salt, and the day's salt
        // comes back either way (the CTE sees the row only when it inserted it). When another
        // node's insert of the same day commits while this statement runs, neither part sees
        // a row (the statement's snapshot is older): the next attempt does.
        let proposed = proposed.to_vec();
        let mut attempts = 0;
        let row = loop {
            let rows = self
                .query(
                    "WITH inserted AS (INSERT INTO day_salts VALUES ($1, $2) \
                     ON CONFLICT (day) DO NOTHING RETURNING salt) \
                     SELECT salt FROM inserted UNION ALL \
                     SELECT salt FROM day_salts WHERE day = $1 LIMIT 1",
                    &[&day, &proposed],
                )
                .await?;
            attempts += 1;
            match rows.into_iter().next() {
                Some(row) => break row,
                None if attempts < 3 => continue,
                None => {
                    return Err(StoreError::Unavailable {
                        message: format!("no salt came back for day {day}"),
                    })
                }
            }
        };
        let salt: Vec<u8> = row.try_get(0).map_err(|err| StoreError::Rejected {
            message: format!("the salt of day {day}: {err}"),
        })?;
        salt.try_into().map_err(|_| StoreError::Rejected {
            message: format!("the stored salt of day {day} is not 16 bytes"),
        })
    }

    async fn forget_salts_before(&self, day: i64) -> Result<(), StoreError> {
        self.execute("salt", "DELETE FROM day_salts WHERE day < $1", &[&day])
            .await?;
        Ok(())
    }
}
