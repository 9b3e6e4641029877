//! Goals in SQL: which events complete a goal (a page view of a path pattern, or a custom
//! event with its property values), which goals a filter on `event:goal` picks (by display
//! name, as Plausible's `Goals.add_filter`), and the rows of a breakdown by goal.

use heartbeat_model::{Goal, GoalKind};

use super::{glob_sql, Builder};
use crate::model::{Condition, Dimension, Filter, Operator, Query};
use crate::sql::SqlValue;

/// Whether `goal`'s display name passes `condition` (a condition on `event:goal`).
pub fn goal_matches(goal: &Goal, condition: &Condition) -> bool {
    let fold = |text: &str| {
        if condition.case_sensitive {
            text.to_owned()
        } else {
            text.to_lowercase()
        }
    };
    let name = fold(&goal.display_name);
    let (operator, negated) = condition.operator.positive();
    let hit = condition.values.iter().any(|value| match operator {
        Operator::Is => name == fold(value),
        Operator::Contains => name.contains(&fold(value)),
        _ => regex::RegexBuilder::new(value)
            .case_insensitive(!condition.case_sensitive)
            .build()
            .is_ok_and(|re| re.is_match(&goal.display_name)),
    });
    hit != negated
}

/// The goals a breakdown by `event:goal` has rows for: of `goals`, those every top-level
/// filter on `event:goal` among `filters` keeps, in their order.
pub fn breakdown_goals<'g>(goals: &'g [Goal], filters: &[Filter]) -> Vec<&'g Goal> {
    goals
        .iter()
        .filter(|goal| {
            filters.iter().all(|filter| match filter {
                Filter::Condition(c) if c.dimension == Dimension::Goal => goal_matches(goal, c),
                _ => true,
            })
        })
        .collect()
}

/// Whether one event completes `goal`, over the columns of `events`.
fn goal_sql(b: &mut Builder, goal: &Goal, query: &Query) {
    match &goal.kind {
        GoalKind::Page { page_path } => {
            b.push("(name = 'pageview' AND ");
            glob_sql(b, "pathname", page_path);
            b.push(")");
        }
        GoalKind::Event { event_name, props } => {
            b.push("(name = ");
            b.bind(SqlValue::Text(event_name.clone()));
            for (key, value) in props {
                b.push(" AND event_id IN (SELECT event_id FROM event_props WHERE site_id = ");
                b.bind(SqlValue::Text(query.site_id.0.clone()));
                b.push(" AND key = ");
                b.bind(SqlValue::Text(key.clone()));
                b.push(" AND value = ");
                b.bind(SqlValue::Text(value.clone()));
                b.push(")");
            }
            b.push(")");
        }
    }
}

/// A condition on `event:goal` over `events`: the events that complete one of the goals it
/// picks (none picked: no event).
pub(super) fn condition_sql(b: &mut Builder, condition: &Condition, query: &Query) {
    let positive = Condition {
        operator: condition.operator.positive().0,
        ..condition.clone()
    };
    let picked: Vec<&Goal> = query
        .goals
        .iter()
        .filter(|goal| goal_matches(goal, &positive))
        .collect();
    if condition.operator.positive().1 {
        b.push("NOT ");
    }
    let none = b.dialect().false_literal();
    b.push(&format!("({none}"));
    for goal in picked {
        b.push(" OR ");
        goal_sql(b, goal, query);
    }
    b.push(")");
}

/// The events of the range that complete each goal of a breakdown, as a table standing in
/// for `events`: every column of `events`, the goal's display name (`goal_name`) and its
/// currency (`goal_currency`). An event completing two goals is in it twice.
pub(super) fn goal_events_sql(b: &mut Builder, query: &Query, scope: &dyn Fn(&mut Builder)) {
    let goals = breakdown_goals(&query.goals, &query.filters);
    b.push("(");
    let null = b.dialect().null_text();
    if goals.is_empty() {
        let none = b.dialect().false_literal();
        b.push(&format!(
            "SELECT events.*, {null} AS goal_name, {null} AS goal_currency FROM events WHERE {none}"
        ));
    }
    for (i, goal) in goals.into_iter().enumerate() {
        if i > 0 {
            b.push(" UNION ALL ");
        }
        b.push("SELECT events.*, ");
        b.bind(SqlValue::Text(goal.display_name.clone()));
        b.push(" AS goal_name, ");
        match &goal.currency {
            Some(code) => {
                let text = b.dialect().nullable_text("?");
                b.bind_within(&text, SqlValue::Text(code.clone()))
            }
            None => b.push(null),
        };
        b.push(" AS goal_currency FROM events WHERE ");
        scope(b);
        b.push(" AND ");
        goal_sql(b, goal, query);
    }
    b.push(") AS events");
}

#[cfg(test)]
mod tests {
    use crate::compile::glob_regex;

    #[test]
    fn page_patterns() {
        let matches = |pattern: &str, path: &str| {
            regex::Regex::new(&glob_regex(pattern))
                .unwrap()
                .is_match(path)
        };
        assert!(matches("/register", "/register"));
        assert!(!matches("/register", "/register/x"));
        assert!(matches("/blog**", "/blog/post/1"));
        assert!(matches("/blog/*", "/blog/post"));
        assert!(!matches("/blog/*", "/blog/post/1"));
        assert!(matches("/**/post", "/a/b/post"));
        assert!(matches("/**register", "/en/register"));
        // Everything else is itself.
        assert!(matches("/a.b(c)?", "/a.b(c)?"));
        assert!(!matches("/a.b", "/axb"));
    }
}
