//! Sites' goals: the in-memory directory queries read (`event:goal`, conversion rates,
//! revenue), loaded from the metadata store at start and written through it on change.
//!
//! A goal is found by what it matches: creating one that exists (the same page pattern, or
//! the same event and properties) answers the existing one, as Plausible's
//! `PUT /api/v1/sites/goals` does, so provisioning scripts can run again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use heartbeat_model::{Goal, GoalKind, SiteId};
use heartbeat_store::{MetaStore, StoreError};

/// The most goals one site keeps.
pub const MAX_GOALS_PER_SITE: usize = 500;
/// The longest event name, page pattern or display name, in characters.
pub const MAX_GOAL_TEXT_CHARS: usize = 200;
/// The most property matches of one event goal.
pub const MAX_GOAL_PROPS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum GoalError {
    /// One or more fields are wrong: `(field, message)` for each.
    #[error("invalid goal")]
    Invalid(Vec<(&'static str, String)>),
    #[error("goal not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A goal as a client asks for it, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGoal {
    pub kind: GoalKind,
    pub display_name: Option<String>,
    pub currency: Option<String>,
}

pub struct Goals {
    meta: Arc<dyn MetaStore>,
    by_site: RwLock<HashMap<SiteId, Vec<Goal>>>,
    /// Serializes changes, so ids and display names stay unique.
    writes: tokio::sync::Mutex<()>,
}

async fn read_goals(meta: &dyn MetaStore) -> Result<HashMap<SiteId, Vec<Goal>>, StoreError> {
    let mut by_site: HashMap<SiteId, Vec<Goal>> = HashMap::new();
    for goal in meta.goals().await? {
        by_site.entry(goal.site_id.clone()).or_default().push(goal);
    }
    Ok(by_site)
}

impl Goals {
    pub async fn load(meta: Arc<dyn MetaStore>) -> Result<Self, StoreError> {
        let by_site = read_goals(meta.as_ref()).await?;
        Ok(Goals {
            meta,
            by_site: RwLock::new(by_site),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads every goal from the metadata store again, for a node whose metadata other
    /// nodes change too (a shared PostgreSQL).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _changes = self.writes.lock().await;
        let fresh = read_goals(self.meta.as_ref()).await?;
        *self.by_site.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// `site`'s goals, oldest first.
    pub fn of_site(&self, site: &SiteId) -> Vec<Goal> {
        self.read().get(site).cloned().unwrap_or_default()
    }

    /// Finds `site`'s goal matching what `new` matches, or creates it. Returns the goal and
    /// whether it is new.
    pub async fn find_or_create(
        &self,
        site: &SiteId,
        new: NewGoal,
        now_ms: i64,
    ) -> Result<(Goal, bool), GoalError> {
        let new = check(new)?;
        let _one_at_a_time = self.writes.lock().await;
        let existing = self.of_site(site);
        if let Some(goal) = existing
            .iter()
            .find(|g| g.kind == new.kind && g.currency == new.currency)
        {
            return Ok((goal.clone(), false));
        }
        let display_name = new.display_name.unwrap_or_else(|| new.kind.default_name());
        if existing.iter().any(|g| g.display_name == display_name) {
            return Err(GoalError::Conflict(format!(
                "the site has another goal named {display_name:?}"
            )));
        }
        if existing.len() >= MAX_GOALS_PER_SITE {
            return Err(GoalError::Invalid(vec![(
                "goal",
                format!("a site has at most {MAX_GOALS_PER_SITE} goals"),
            )]));
        }
        let id = self
            .read()
            .values()
            .flatten()
            .map(|g| g.id)
            .max()
            .unwrap_or(0)
            + 1;
        let goal = Goal {
            id,
            site_id: site.clone(),
            kind: new.kind,
            display_name,
            currency: new.currency,
            created_at_ms: now_ms,
        };
        self.meta.insert_goal(&goal).await?;
        self.write()
            .entry(site.clone())
            .or_default()
            .push(goal.clone());
        Ok((goal, true))
    }

    /// Deletes `site`'s goal `id`.
    pub async fn delete(&self, site: &SiteId, id: u64) -> Result<Goal, GoalError> {
        let _one_at_a_time = self.writes.lock().await;
        let goal = self
            .of_site(site)
            .into_iter()
            .find(|g| g.id == id)
            .ok_or(GoalError::NotFound)?;
        self.meta.delete_goal(site, id).await?;
        if let Some(goals) = self.write().get_mut(site) {
            goals.retain(|g| g.id != id);
        }
        Ok(goal)
    }

    /// Forgets a deleted site's goals (the metadata store deleted them with the site).
    pub fn forget_site(&self, site: &SiteId) {
        self.write().remove(site);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<SiteId, Vec<Goal>>> {
        self.by_site.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<SiteId, Vec<Goal>>> {
        self.by_site.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Checks every field of `new`, naming each bad one; trims the texts.
fn check(new: NewGoal) -> Result<NewGoal, GoalError> {
    let mut bad: Vec<(&'static str, String)> = Vec::new();
    fn text(bad: &mut Vec<(&'static str, String)>, field: &'static str, value: &str) -> String {
        let value = value.trim();
        let chars = value.chars().count();
        if chars == 0 || chars > MAX_GOAL_TEXT_CHARS {
            bad.push((
                field,
                format!("must have 1 to {MAX_GOAL_TEXT_CHARS} characters"),
            ));
        } else if value.chars().any(char::is_control) {
            bad.push((field, "must not contain control characters".into()));
        }
        value.to_owned()
    }
    let kind = match new.kind {
        GoalKind::Page { page_path } => {
            let page_path = text(&mut bad, "page_path", &page_path);
            if !page_path.is_empty() && !page_path.starts_with('/') {
                bad.push(("page_path", "must start with /".into()));
            }
            GoalKind::Page { page_path }
        }
        GoalKind::Event { event_name, props } => {
            let event_name = text(&mut bad, "event_name", &event_name);
            if event_name == "pageview" || event_name == "engagement" {
                bad.push((
                    "event_name",
                    format!("{event_name} is not a custom event; use a page goal"),
                ));
            }
            if props.len() > MAX_GOAL_PROPS {
                bad.push((
                    "custom_props",
                    format!("at most {MAX_GOAL_PROPS} properties"),
                ));
            }
            let props: BTreeMap<String, String> = props
                .into_iter()
                .map(|(k, v)| (text(&mut bad, "custom_props", &k), v))
                .collect();
            GoalKind::Event { event_name, props }
        }
    };
    let display_name = new
        .display_name
        .map(|name| text(&mut bad, "display_name", &name));
    let currency = new.currency.map(|c| c.trim().to_ascii_uppercase());
    if let Some(code) = &currency {
        if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
            bad.push(("currency", "must be an ISO 4217 code like EUR".into()));
        }
        if matches!(kind, GoalKind::Page { .. }) {
            bad.push((
                "currency",
                "only a custom-event goal can be a revenue goal".into(),
            ));
        }
    }
    if bad.is_empty() {
        Ok(NewGoal {
            kind,
            display_name,
            currency,
        })
    } else {
        Err(GoalError::Invalid(bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named() {
        let err = check(NewGoal {
            kind: GoalKind::Page {
                page_path: "blog".into(),
            },
            display_name: Some(" ".into()),
            currency: Some("euro".into()),
        })
        .unwrap_err();
        let GoalError::Invalid(bad) = err else {
            panic!("{err:?}")
        };
        let fields: Vec<&str> = bad.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            ["page_path", "display_name", "currency", "currency"]
        );
    }

    #[test]
    fn texts_are_trimmed() {
        let ok = check(NewGoal {
            kind: GoalKind::Event {
                event_name: " Signup ".into(),
                props: BTreeMap::new(),
            },
            display_name: None,
            currency: Some("usd".into()),
        })
        .unwrap();
        assert_eq!(ok.kind.default_name(), "Signup");
        assert_eq!(ok.currency.as_deref(), Some("USD"));
    }
}
