//! The funnel query: one statement that follows each person through a funnel's steps and
//! answers one row per (breakdown value, step): the people who reached the step, and the
//! median and 90th percentile of their seconds to the next step. Never the events.
//!
//! Every funnel counts each person's best attempt, the start that reached the most steps
//! (the earliest among equals), as ClickHouse's `windowFunnel` and PostHog count, and
//! answers its reached steps in the order they were reached (`step` 1, 2, ...), so an
//! any-order funnel's step k counts people with k distinct steps, with the time from each to
//! the next. A start is an event of step 1 (any step in any order) that passes the query's
//! filters; a person is `visitor_id` (the client's user id hashed when the event carries
//! one, else the anonymous id); a group is the visit with a visit window, else the person,
//! and with a duration window a step counts only at or before the start's time plus the
//! window. Engagement events are no events. Events of the same millisecond are in the order
//! of a hash of their ids (`ok`, [`SqlDialect::order_key`]).
//!
//! Ordered funnels and any-order funnels within a visit ([`joined_sql`]) need no window
//! over the events: from an attempt's start, an ordered funnel's each step is the earliest
//! event of that step after the previous one (the earliest leaves the most room for the
//! rest), an any-order funnel's each step the earliest from the start on, found by joins and
//! `min`, one scan of the events per step, only the attempts still going. Within one visit
//! the earliest start reaches at least as far as any later one (every event after a later
//! start is also after the earlier one), so a visit has one attempt; with a duration window
//! every start is one. At 10 M events this is the difference between about a second and
//! running out of memory (docs/benchmarks.md).
//!
//! An any-order funnel with a duration window ([`any_within_sql`]) has an attempt at every
//! start, and a join per step from every start ran the bench's at 10 M events out of 256 MB
//! (5.5 s at 512 MB). Its steps need no chain: each is the earliest event of that step from
//! the start on, a running minimum over the person's step events in time order, so one
//! window over the step events answers it (1.9 s at 256 MB, the same answer).
//!
//! Strict funnels ([`strict_sql`]), whose next step must be the very next event, read every
//! event, but only each group's from its first start on (`firsts`; nothing earlier is in
//! any attempt): `ev` flags each event's steps (`s1` ...; step 1 only where the event passes
//! the filters), `anchors` takes each start's next events by `lead` over one window ordered
//! by the order key (step k is k - 1 events later; times come from the key), `best` each
//! person's best attempt. At 10 M events numbering every event of the range needed more than
//! DuckDB's 512 MB (400); from the first starts on, with the window holding only the group,
//! person, key and step flags of each event (the person once with a duration window, where
//! it is the group; a breakdown as a number, its value's rank, when there is one), the
//! bench's strict funnels at 10 M events fit in 256 MB, with a breakdown too.
//!
//! An engine without window functions or table CTEs (ClickHouse 18.16, whose dialect has
//! [`SqlDialect::arrays`]) gets a statement of its own with the same answer, every order
//! and window: each group's events as arrays sorted in time, walked by index
//! (`funnel/arrays.rs`).

mod arrays;

use super::aggregate::event_filter_sql;
use super::{glob_sql, Builder};
use crate::dialect::{SqlDialect, ORDER_KEY_SCALE};
use crate::model::{Filter, FunnelQuery, Query};
use crate::sql::{Sql, SqlValue};
use heartbeat_model::{FunnelOrder, FunnelWindow, StepTarget};

/// `site_id = ? AND ts >= ? AND ts < ?`.
fn scope_where(b: &mut Builder, funnel: &FunnelQuery) {
    b.push("site_id = ");
    b.bind(SqlValue::Text(funnel.site_id.0.clone()));
    b.push(" AND ts >= ");
    b.bind(SqlValue::TimestampMs(funnel.range.start_ms));
    b.push(" AND ts < ");
    b.bind(SqlValue::TimestampMs(funnel.range.end_ms));
}

/// Whether an `events` row matches step `index`.
fn step_sql(b: &mut Builder, funnel: &FunnelQuery, index: usize) {
    let step = &funnel.definition.steps[index];
    b.push("(");
    match &step.target {
        StepTarget::Page(pattern) => {
            b.push("name = 'pageview' AND ");
            glob_sql(b, "pathname", pattern);
        }
        StepTarget::Event(name) => {
            b.push("name = ");
            b.bind(SqlValue::Text(name.clone()));
        }
    }
    for (key, value) in &step.props {
        b.push(" AND event_id IN (SELECT event_id FROM event_props WHERE ");
        scope_where(b, funnel);
        b.push(" AND key = ");
        b.bind(SqlValue::Text(key.clone()));
        b.push(" AND value = ");
        b.bind(SqlValue::Text(value.clone()));
        b.push(")");
    }
    b.push(")");
}

/// ` AND name IN (...)`: the steps' event names, a cheap test by name before the steps'
/// own (for a funnel that reads only the steps' events).
fn step_names_sql(b: &mut Builder, funnel: &FunnelQuery) {
    b.push(" AND name IN (");
    for (k, step) in funnel.definition.steps.iter().enumerate() {
        if k > 0 {
            b.push(", ");
        }
        match &step.target {
            StepTarget::Page(_) => b.push("'pageview'"),
            StepTarget::Event(name) => b.bind(SqlValue::Text(name.clone())),
        };
    }
    b.push(")");
}

/// Whether an `events` row starts an attempt: step 1, passing the query's filters.
fn start_sql(b: &mut Builder, funnel: &FunnelQuery) {
    step_sql(b, funnel, 0);
    if !funnel.filters.is_empty() {
        b.push(" AND ");
        filters_sql(b, funnel);
    }
}

/// The window's length in milliseconds, as a bound parameter (none for a visit window).
fn window_ms(funnel: &FunnelQuery) -> Option<SqlValue> {
    match funnel.definition.window {
        FunnelWindow::Visit => None,
        FunnelWindow::Seconds(s) => Some(SqlValue::Int(
            i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX),
        )),
    }
}

/// `CASE WHEN <time> <= <anchor> + window THEN <time> END`, or `<time>` with a visit
/// window (the group is the visit).
fn within_window(b: &mut Builder, funnel: &FunnelQuery, time: &str, anchor: &str) {
    match window_ms(funnel) {
        None => {
            b.push(time);
        }
        Some(ms) => {
            b.push(&format!("CASE WHEN {time} <= {anchor} + "));
            b.bind(ms);
            b.push(&format!(" THEN {time} END"));
        }
    }
}

/// `(filter AND filter ...)`: the query's filters on an `events` row.
fn filters_sql(b: &mut Builder, funnel: &FunnelQuery) {
    let scope = Query::filter_scope(
        funnel.site_id.clone(),
        funnel.timezone,
        funnel.range,
        funnel.filters.clone(),
    );
    b.push("(");
    for (i, filter) in funnel.filters.iter().enumerate() {
        if i > 0 {
            b.push(" AND ");
        }
        event_filter_sql(b, filter, &scope);
    }
    b.push(")");
}

/// The breakdown's column, or a NULL text.
fn breakdown_column(funnel: &FunnelQuery) -> String {
    funnel.breakdown.map_or_else(
        || "CAST(NULL AS VARCHAR)".to_owned(),
        |c| c.column().to_owned(),
    )
}

/// The statement of `funnel`. Columns: breakdown value (NULL without a breakdown), step
/// (1-based, in the order reached), people, median and 90th percentile of seconds to the
/// next step (NULL when nobody went on).
pub fn funnel_sql(funnel: &FunnelQuery, dialect: &dyn SqlDialect) -> Sql {
    if let Some(arrays) = dialect.arrays() {
        return arrays::arrays_sql(funnel, dialect, arrays);
    }
    match (funnel.definition.order, funnel.definition.window) {
        (FunnelOrder::Strict, _) => strict_sql(funnel, dialect),
        (FunnelOrder::Any, FunnelWindow::Seconds(_)) => any_within_sql(funnel, dialect),
        _ => joined_sql(funnel, dialect),
    }
}

/// An any-order funnel with a duration window (module docs): `ev` each step event of the
/// range with its person, order key, step flags and whether it starts an attempt (it passes
/// the filters); `nx` for each the earliest event of every step from it on (`n1` ...), by
/// running minima over one window per person ordered by the order key; `attempts` each
/// start with the steps reached within the window and its score (as [`joined_sql`]'s).
fn any_within_sql(funnel: &FunnelQuery, dialect: &dyn SqlDialect) -> Sql {
    let n = funnel.definition.steps.len();
    let key = dialect.order_key("ts", "event_id");
    let mut b = Builder::new(dialect);
    // Only the window's own columns go through it: the breakdown only when there is one
    // (a NULL blank for `first_by`, which skips NULLs), the start flag only with filters.
    let (ev_bd, carried, attempt_bd) = match funnel.breakdown {
        Some(column) => (
            format!("coalesce({}, '') AS bd, ", column.column()),
            "bd, ",
            "bd".to_owned(),
        ),
        None => (
            String::new(),
            "",
            format!("{} AS bd", breakdown_column(funnel)),
        ),
    };
    // `scope AND name IN (...) AND (step 1 OR step 2 ...)`: an event of any step.
    let step_event = |b: &mut Builder| {
        scope_where(b, funnel);
        step_names_sql(b, funnel);
        b.push(" AND ");
        any_step_sql(b, funnel, n);
    };
    let filtered = !funnel.filters.is_empty();
    b.push("WITH ");
    if filtered {
        // Filtered, only the step events of people who start an attempt, from their first
        // start on (at 10 M events with the source filtered to one of three: 1.10 s instead of
        // 1.43 s over every person's step events).
        b.push(&format!(
            "firsts AS {} (SELECT visitor_id AS g, min({key}) AS a FROM events WHERE ",
            dialect.materialized()
        ));
        step_event(&mut b);
        b.push(" AND ");
        filters_sql(&mut b, funnel);
        b.push(" GROUP BY visitor_id), ");
    }
    b.push(&format!(
        "ev AS (SELECT visitor_id AS person, {key} AS ok, {ev_bd}"
    ));
    if filtered {
        filters_sql(&mut b, funnel);
        b.push(" AS st, ");
    }
    for k in 0..n {
        if k > 0 {
            b.push(", ");
        }
        step_sql(&mut b, funnel, k);
        b.push(&format!(" AS s{}", k + 1));
    }
    b.push(" FROM events ");
    if filtered {
        b.push(&format!(
            "JOIN firsts ON firsts.g = events.visitor_id AND {key} >= firsts.a "
        ));
    }
    b.push("WHERE ");
    step_event(&mut b);
    let start = if filtered { "st, " } else { "" };
    b.push(&format!("), nx AS (SELECT person, {carried}{start}ok"));
    for k in 1..=n {
        b.push(&format!(", min(CASE WHEN s{k} THEN ok END) OVER w AS n{k}"));
    }
    // RANGE: an event of the same order key as the start counts from it, as the joins' `>=`.
    b.push(
        " FROM ev WINDOW w AS (PARTITION BY person ORDER BY ok \
         RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)), ",
    );
    let millis = |column: &str| dialect.key_millis(column);
    b.push(&format!(
        "attempts AS (SELECT person, bd{}, {} AS score FROM (SELECT person, {attempt_bd}, ok",
        (1..=n).map(|k| format!(", r{k}")).collect::<String>(),
        score_sql(
            n,
            &reached_sql((1..=n).map(|k| format!("r{k}"))),
            &millis("ok")
        ),
    ));
    for k in 1..=n {
        b.push(", ");
        within_window(&mut b, funnel, &millis(&format!("n{k}")), &millis("ok"));
        b.push(&format!(" AS r{k}"));
    }
    b.push(if filtered {
        " FROM nx WHERE st) AS reach)"
    } else {
        " FROM nx) AS reach)"
    });
    best_attempts_sql(&mut b, funnel, dialect);
    b.finish()
}

/// What a missed step weighs in an attempt's score, above any milliseconds since 1970
/// until the year 2527 (2^44 ms).
const REACHED_WEIGHT: i64 = 1 << 44;

/// `(CASE WHEN <c> IS NULL THEN 0 ELSE 1 END) + ...`: how many of `columns` are set.
fn reached_sql(columns: impl IntoIterator<Item = String>) -> String {
    columns
        .into_iter()
        .map(|c| format!("(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)"))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// An attempt's score, lowest best: more steps first (`n + 1 - reached` above the
/// milliseconds), then the earlier start (`start_ms`).
fn score_sql(n: usize, reached: &str, start_ms: &str) -> String {
    format!(
        "CAST({} - ({reached}) AS BIGINT) * {REACHED_WEIGHT} + {start_ms}",
        n + 1
    )
}

/// `(step 1 OR step 2 ...)` over the first `steps` steps.
fn any_step_sql(b: &mut Builder, funnel: &FunnelQuery, steps: usize) {
    b.push("(");
    for k in 0..steps {
        if k > 0 {
            b.push(" OR ");
        }
        step_sql(b, funnel, k);
    }
    b.push(")");
}

/// An ordered or any-order funnel (module docs): `c0` the attempts, each visit's first
/// start (with a duration window: each start of a person), a start being step 1 (any step
/// in any order) that passes the filters, with its person and breakdown value; `c1` ...
/// each attempt's earliest event of each step, after the previous step (ordered) or from
/// the start on (any order), by [`SqlDialect::order_key`], within the window; `attempts` one
/// row per attempt with the milliseconds each step was reached at and a score that ranks
/// more steps first, then the earlier start; `best` each person's best attempt; `placed`
/// its steps in the order reached; then per breakdown value the people at each step and the
/// quantiles of the gaps, one row per step.
fn joined_sql(funnel: &FunnelQuery, dialect: &dyn SqlDialect) -> Sql {
    let n = funnel.definition.steps.len();
    let any = funnel.definition.order == FunnelOrder::Any;
    let key = dialect.order_key("ts", "event_id");
    let materialized = dialect.materialized();
    let mut b = Builder::new(dialect);
    // A NULL breakdown value would be skipped by `first_by`: blanks are ''.
    let breakdown = match funnel.breakdown {
        Some(column) => format!("coalesce({}, '')", column.column()),
        None => "CAST(NULL AS VARCHAR)".to_owned(),
    };
    let window = window_ms(funnel);
    // An any-order funnel within a visit whose filters answer the same for every event of
    // the visit starts at the visit's first step event, and every other step event is from
    // there on: each step's time is the earliest of its events in the visit, all in the
    // one grouping that finds the start (at 10 M events 2.3 to 2.5 s where a join per step
    // took 4.4 to 4.9, docs/benchmarks.md).
    let one_pass = any && window.is_none() && funnel.filters.iter().all(Filter::is_per_visit);
    match window {
        // One attempt per visit, from its first start.
        None => {
            // Without a breakdown the value is NULL for all: no `first_by` to compute per
            // visit (about a tenth of the bench's funnel at 10 M events).
            let bd = match funnel.breakdown {
                Some(_) => dialect.first_by(&breakdown, &key),
                None => breakdown.clone(),
            };
            b.push(&format!(
                "WITH c0 AS {materialized} (SELECT session_id AS g, min({key}) AS k0, {} AS person, \
                 {bd} AS bd",
                dialect.first_by("visitor_id", &key),
            ));
            if one_pass {
                for k in 1..=n {
                    b.push(", min(CASE WHEN ");
                    step_sql(&mut b, funnel, k - 1);
                    b.push(&format!(" THEN {key} END) AS k{k}"));
                }
            }
            b.push(" FROM events WHERE ");
        }
        // Every start of a person is an attempt.
        Some(_) => {
            b.push(&format!(
                "WITH c0 AS {materialized} (SELECT visitor_id AS g, {key} AS k0, visitor_id AS person, \
                 {breakdown} AS bd FROM events WHERE "
            ));
        }
    }
    scope_where(&mut b, funnel);
    // A start: step 1 (ordered) or any step (any order), passing the filters.
    b.push(" AND ");
    any_step_sql(&mut b, funnel, if any { n } else { 1 });
    if !funnel.filters.is_empty() {
        b.push(" AND ");
        filters_sql(&mut b, funnel);
    }
    b.push(if window.is_none() {
        " GROUP BY session_id)"
    } else {
        ")"
    });
    let group = if window.is_none() {
        "session_id"
    } else {
        "visitor_id"
    };
    // Ordered: each step the earliest after the previous one (step 1 is the start). Any
    // order: each step the earliest from the start on.
    let first = if any { 1 } else { 2 };
    // The steps found by a join of their own (`c<k>`); in one pass `c0` holds every step.
    let joined: Vec<usize> = if one_pass {
        Vec::new()
    } else {
        (first..=n).collect()
    };
    let step_table = |k: usize| {
        if one_pass {
            "c0".to_owned()
        } else {
            format!("c{k}")
        }
    };
    for &k in &joined {
        let (from, after) = match (any, k) {
            (true, _) => ("c0".to_owned(), "e.k >= c.k0".to_owned()),
            (false, 2) => ("c0".to_owned(), "e.k > c.k0".to_owned()),
            (false, _) => (format!("c{}", k - 1), format!("e.k > c.k{}", k - 1)),
        };
        b.push(&format!(
            ", c{k} AS {materialized} (SELECT c.g, c.k0, min(e.k) AS k{k} FROM {from} AS c JOIN \
             (SELECT {group} AS g, {key} AS k FROM events WHERE "
        ));
        scope_where(&mut b, funnel);
        b.push(" AND ");
        step_sql(&mut b, funnel, k - 1);
        b.push(&format!(") AS e ON e.g = c.g AND {after}"));
        if let Some(SqlValue::Int(ms)) = &window {
            // At most the window after the start's millisecond, inclusive: below the first
            // key of the millisecond after.
            b.push(&format!(" AND e.k < ({} + ", dialect.key_millis("c.k0")));
            b.bind(SqlValue::Int(ms.saturating_add(1)));
            b.push(&format!(") * {ORDER_KEY_SCALE}"));
        }
        b.push(" GROUP BY c.g, c.k0)");
    }
    let time = |k: usize| {
        if k < first {
            dialect.key_millis("c0.k0")
        } else {
            dialect.key_millis(&format!("{}.k{k}", step_table(k)))
        }
    };
    let mut reached = reached_sql((first..=n).map(|k| format!("{}.k{k}", step_table(k))));
    if !any {
        // An ordered funnel's step 1 is the start itself.
        reached.push_str(" + 1");
    }
    let times: Vec<String> = (1..=n).map(|k| format!("{} AS r{k}", time(k))).collect();
    b.push(&format!(
        ", attempts AS (SELECT c0.person, c0.bd, {}, {} AS score FROM c0",
        times.join(", "),
        score_sql(n, &reached, &dialect.key_millis("c0.k0")),
    ));
    for &k in &joined {
        b.push(&format!(
            " LEFT JOIN c{k} ON c{k}.g = c0.g AND c{k}.k0 = c0.k0"
        ));
    }
    b.push(")");
    best_attempts_sql(&mut b, funnel, dialect);
    b.finish()
}

/// From `attempts` (one row per attempt: `person`, `bd`, the milliseconds `r1` ... each
/// step was reached at, NULL when missed, and a `score` that ranks the best attempt lowest):
/// `best` each person's best attempt; `placed` its steps in the order reached; then per
/// breakdown value the people at each step and the quantiles of the gaps, one row per step.
fn best_attempts_sql(b: &mut Builder, funnel: &FunnelQuery, dialect: &dyn SqlDialect) {
    let n = funnel.definition.steps.len();
    let any = funnel.definition.order == FunnelOrder::Any;
    // Each person's best attempt, whole (a missed step as -1 through `first_by`, which
    // skips NULLs).
    let best: Vec<String> = (1..=n)
        .map(|k| {
            format!(
                "nullif({}, -1) AS r{k}",
                dialect.first_by(&format!("coalesce(r{k}, -1)"), "score")
            )
        })
        .collect();
    let bd = match funnel.breakdown {
        Some(_) => dialect.first_by("bd", "score"),
        None => breakdown_column(funnel),
    };
    b.push(&format!(
        ", best AS (SELECT person, {bd} AS bd, {} FROM attempts GROUP BY person)",
        best.join(", ")
    ));
    // The steps in the order they were reached (`t1` the first, ...): an ordered funnel's
    // are its own; an any-order funnel's are placed by rank (ties by step number).
    if any {
        let rank = |j: usize| -> String {
            let before: Vec<String> = (1..=n)
                .filter(|&i| i != j)
                .map(|i| {
                    let tie = if i < j {
                        format!(" OR r{i} = r{j}")
                    } else {
                        String::new()
                    };
                    format!("(CASE WHEN r{i} < r{j}{tie} THEN 1 ELSE 0 END)")
                })
                .collect();
            format!("1 + {}", before.join(" + "))
        };
        let ranks: Vec<String> = (1..=n).map(|j| format!("{} AS q{j}", rank(j))).collect();
        let placed: Vec<String> = (1..=n)
            .map(|k| {
                let cases: String = (1..=n)
                    .map(|j| format!(" WHEN r{j} IS NOT NULL AND q{j} = {k} THEN r{j}"))
                    .collect();
                format!("CASE{cases} END AS t{k}")
            })
            .collect();
        b.push(&format!(
            ", placed AS (SELECT bd, {} FROM (SELECT *, {} FROM best) AS ranked)",
            placed.join(", "),
            ranks.join(", ")
        ));
    } else {
        let placed: Vec<String> = (1..=n).map(|k| format!("r{k} AS t{k}")).collect();
        b.push(&format!(
            ", placed AS (SELECT bd, {} FROM best)",
            placed.join(", ")
        ));
    }
    let mut totals = Vec::new();
    for k in 1..=n {
        totals.push(format!("count(t{k}) AS p{k}"));
        if k < n {
            let gap = format!("t{} - t{k}", k + 1);
            totals.push(format!(
                "{} AS m{k}, {} AS q{k}",
                dialect.quantile(&gap, 0.5),
                dialect.quantile(&gap, 0.9)
            ));
        } else {
            totals.push(format!(
                "CAST(NULL AS DOUBLE) AS m{k}, CAST(NULL AS DOUBLE) AS q{k}"
            ));
        }
    }
    b.push(&format!(
        ", totals AS (SELECT bd, {} FROM placed GROUP BY bd) ",
        totals.join(", ")
    ));
    // One row per step.
    let pick = |column: &str| -> String {
        let cases: String = (1..=n)
            .map(|k| format!(" WHEN {k} THEN {column}{k}"))
            .collect();
        format!("CASE ks.k{cases} END")
    };
    let values: Vec<String> = (1..=n).map(|k| format!("({k})")).collect();
    b.push(&format!(
        "SELECT bd, ks.k AS step, {} AS people, {} / 1000.0 AS median_s, {} / 1000.0 AS p90_s \
         FROM totals CROSS JOIN (VALUES {}) AS ks(k) ORDER BY bd, step",
        pick("p"),
        pick("m"),
        pick("q"),
        values.join(", ")
    ));
}

/// The statement of a strict funnel (module docs): each group's events from its first start
/// on, in time order, each start with the next events as its next steps.
fn strict_sql(funnel: &FunnelQuery, dialect: &dyn SqlDialect) -> Sql {
    let n = funnel.definition.steps.len();
    let mut b = Builder::new(dialect);
    // The group's column, and what `ev` names it: with a duration window the group is the
    // person, carried once.
    let (group, g) = match funnel.definition.window {
        FunnelWindow::Visit => ("session_id", "g"),
        FunnelWindow::Seconds(_) => ("visitor_id", "person"),
    };
    let key = dialect.order_key("ts", "event_id");
    // Every event counts in a strict funnel (the next step must be the very next event), but
    // only from each group's first start on: nothing before it is in any attempt. At 10 M
    // events numbering every event of the range ran DuckDB out of its 512 MB; the groups
    // that ever start are far fewer.
    let materialized = dialect.materialized();
    b.push("WITH ");
    // A breakdown goes through the window as a number, its value's rank among the range's
    // values (`bds`), and back to its text at the end: the text took the bench's strict
    // funnel with a breakdown at 10 M events over 256 MB.
    if let Some(column) = funnel.breakdown {
        b.push(&format!(
            "bds AS {materialized} (SELECT v, row_number() OVER (ORDER BY v) AS code FROM \
             (SELECT DISTINCT coalesce({}, '') AS v FROM events WHERE ",
            column.column()
        ));
        scope_where(&mut b, funnel);
        b.push(") AS d), ");
    }
    b.push(&format!(
        "firsts AS {materialized} (SELECT {group} AS g, min({key}) AS a FROM events WHERE "
    ));
    scope_where(&mut b, funnel);
    b.push(" AND ");
    start_sql(&mut b, funnel);
    // Each event's group, person, order key and which steps it is (step 1 only where it
    // passes the filters): the window below holds every one of these rows, so they carry
    // nothing else (times come from the order key; the breakdown's code only when there is
    // one: a text column, even all NULL, took the bench's strict funnel at 10 M events over
    // 256 MB). (In `ev`, the join that finds the code, in the window's rows, and what the
    // anchors name `bd`.)
    let (ev_bd, bd_join, carried, anchor_bd) = match funnel.breakdown {
        Some(column) => (
            "bds.code AS bd, ",
            format!(
                "JOIN bds ON bds.v = coalesce(events.{}, '') ",
                column.column()
            ),
            "bd, ",
            "bd".to_owned(),
        ),
        None => ("", String::new(), "", breakdown_column(funnel)),
    };
    let ev_group = if g == "g" {
        format!("{group} AS g, ")
    } else {
        String::new()
    };
    b.push(&format!(
        " GROUP BY {group}), ev AS (SELECT {ev_group}visitor_id AS person, {key} AS ok, {ev_bd}"
    ));
    start_sql(&mut b, funnel);
    b.push(" AS s1");
    for k in 1..n {
        b.push(", ");
        step_sql(&mut b, funnel, k);
        b.push(&format!(" AS s{}", k + 1));
    }
    b.push(&format!(
        " FROM events {bd_join}JOIN firsts ON firsts.g = events.{group} AND {key} >= firsts.a \
         WHERE "
    ));
    scope_where(&mut b, funnel);
    b.push(" AND name <> 'engagement'), ");

    // Each start with the time every step was reached from it: step k is the event k - 1
    // after the start in its group, by one window ordered by the order key.
    let millis = |column: &str| dialect.key_millis(column);
    b.push(&format!(
        "anchors AS (SELECT person, {anchor_bd} AS bd, ok, {} AS r1",
        millis("ok")
    ));
    for k in 2..=n {
        let chain: Vec<String> = (2..=k).map(|j| format!("coalesce(m{j}, FALSE)")).collect();
        b.push(&format!(", CASE WHEN {} THEN ", chain.join(" AND ")));
        within_window(&mut b, funnel, &millis(&format!("o{k}")), &millis("ok"));
        b.push(&format!(" END AS r{k}"));
    }
    b.push(&format!(" FROM (SELECT person, {carried}ok, s1"));
    for k in 2..=n {
        b.push(&format!(
            ", lead(s{k}, {lag}) OVER w AS m{k}, lead(ok, {lag}) OVER w AS o{k}",
            lag = k - 1
        ));
    }
    b.push(&format!(
        " FROM ev WINDOW w AS (PARTITION BY {g} ORDER BY ok)) AS nx WHERE s1), "
    ));

    // Each person's best attempt: the most steps, then the earliest.
    let columns: String = (1..=n).map(|k| format!(", r{k}")).collect();
    b.push(&format!(
        "best AS (SELECT * FROM (SELECT person, bd{columns}, row_number() OVER \
         (PARTITION BY person ORDER BY {} DESC, r1, ok) AS pick FROM anchors) AS ranked \
         WHERE pick = 1), ",
        reached_sql((1..=n).map(|k| format!("r{k}")))
    ));
    // One row per reached step, in the order reached.
    let values: Vec<String> = (1..=n).map(|k| format!("({k})")).collect();
    let cases: String = (1..=n).map(|k| format!(" WHEN {k} THEN r{k}")).collect();
    b.push(&format!(
        "done AS (SELECT person, bd, k, CASE k{cases} END AS reached_ms FROM best \
         CROSS JOIN (VALUES {}) AS ks(k)), ",
        values.join(", ")
    ));
    b.push(
        "steps AS (SELECT bd, row_number() OVER (PARTITION BY person ORDER BY reached_ms, k) AS step, \
         lead(reached_ms) OVER (PARTITION BY person ORDER BY reached_ms, k) - reached_ms AS next_ms \
         FROM done WHERE reached_ms IS NOT NULL) ",
    );
    let per_step = format!(
        "SELECT bd, step, count(*) AS people, {} / 1000.0 AS median_s, {} / 1000.0 AS p90_s \
         FROM steps GROUP BY bd, step",
        dialect.quantile("next_ms", 0.5),
        dialect.quantile("next_ms", 0.9)
    );
    if funnel.breakdown.is_some() {
        b.push(&format!(
            "SELECT bds.v AS bd, step, people, median_s, p90_s FROM ({per_step}) AS per \
             JOIN bds ON bds.code = per.bd ORDER BY bds.v, step"
        ));
    } else {
        b.push(&format!("{per_step} ORDER BY bd, step"));
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::funnel_sql;
    use crate::bounds::QueryBounds;
    use crate::compile::glob_regex;
    use crate::dialect::Dialect;
    use crate::funnel::parse_funnel;
    use crate::sql::SqlValue;

    use serde_json::{json, Value};

    fn sql_of(body: Value) -> crate::sql::Sql {
        let site = crate::test_site("UTC");
        let query =
            parse_funnel(&body, &site, 1_790_000_000_000, 0, &QueryBounds::default()).unwrap();
        funnel_sql(&query, Dialect::DuckDb.sql())
    }

    /// The SQL of each order and window, snapshot-tested (`src/snapshots/`), as the
    /// dashboard's queries are. Update with `INSTA_UPDATE=always`.
    #[test]
    fn funnel_sql_snapshots() {
        let steps = json!([{"page": "/blog/*"}, {"page": "/pricing"}, {"event": "signup", "props": {"plan": "pro"}}]);
        for (name, order, window) in [
            ("funnel_ordered_visit", "ordered", json!({"visit": true})),
            ("funnel_strict_hour", "strict", json!({"seconds": 3600})),
            ("funnel_any_day", "any", json!({"seconds": 86400})),
            ("funnel_any_visit", "any", json!({"visit": true})),
        ] {
            let sql = sql_of(
                json!({"date_range": ["2026-03-01", "2026-03-31"], "steps": steps,
                "order": order, "window": window, "breakdown": "visit:source",
                "filters": [["is", "visit:country", ["DE"]]]}),
            );
            let text = format!("-- {} parameters\n{}\n", sql.params.len(), sql.text);
            insta::with_settings!({ snapshot_path => "../snapshots" }, {
                insta::assert_snapshot!(name, text);
            });
        }
    }

    #[test]
    fn hostile_values_stay_parameters() {
        let hostile = "x'); DROP TABLE events; --";
        let sql = sql_of(
            json!({"steps": [{"page": "/x');--"}, {"event": hostile, "props": {hostile: hostile}}],
            "filters": [["is", "visit:source", [hostile]]]}),
        );
        assert!(!sql.text.contains("DROP"), "{}", sql.text);
        let bound = |wanted: &str| {
            sql.params
                .iter()
                .any(|p| matches!(p, SqlValue::Text(t) if t.contains(wanted)))
        };
        assert!(bound("DROP TABLE events; --"));
    }

    fn check(pattern: &str, path: &str, expected: bool) {
        let regex = regex::Regex::new(&glob_regex(pattern)).unwrap();
        assert_eq!(regex.is_match(path), expected, "{pattern} ~ {path}");
    }

    #[test]
    fn globs_compile_to_anchored_regexes() {
        assert_eq!(glob_regex("/blog/*"), "^/blog/[^/]*$");
        assert_eq!(glob_regex("/docs/**"), "^/docs/.*$");
        assert_eq!(glob_regex("/a.b?c"), "^/a\\.b\\?c$");
        // The same cases as the site rules' globs (`enrich/site_rules.rs`).
        for (pattern, path, expected) in [
            ("/admin", "/admin", true),
            ("/admin", "/admin/users", false),
            ("/admin/*", "/admin/users", true),
            ("/admin/*", "/admin/users/1", false),
            ("/admin/**", "/admin/users/1", true),
            ("/admin/**", "/administrator", false),
            ("/blog/*/edit", "/blog/hello/edit", true),
            ("/blog/*/edit", "/blog/a/b/edit", false),
            ("/**/preview", "/x/y/preview", true),
            ("/**", "/", true),
            ("/pricing", "/pricing/", false),
            ("/pricing", "/xpricing", false),
            ("/a+b", "/a+b", true),
            ("/a+b", "/aab", false),
            ("/(x)|y", "/(x)|y", true),
            ("/(x)|y", "y", false),
        ] {
            check(pattern, path, expected);
        }
    }
}
