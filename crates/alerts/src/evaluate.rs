//! One evaluation of an alert rule, and what it does to the rule's state.
//!
//! The server measures the rule's metric over the window ending now (and, for an anomaly
//! rule, over the same window of each previous week), [`check`]s it, and drives the rule
//! with [`transition`]: a rule fires once when its condition starts to hold, stays firing
//! without repeating itself while it holds, resolves when it stops, and does not fire again
//! within its cool-down from the last firing, so a metric flapping around a threshold sends
//! one notice per cool-down rather than one per evaluation.

use heartbeat_model::{AlertCondition, AnomalyDirection};

use crate::anomaly::{self, Band, MIN_HISTORY_WEEKS};

/// What one evaluation of a rule found.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Whether the rule's condition holds.
    pub breached: bool,
    /// The metric over the window ending now.
    pub value: f64,
    /// What was expected: the threshold, 1 event for a no-events rule, the baseline's
    /// median for an anomaly rule (the value itself when there is too little history).
    pub expected: f64,
    /// The band of an anomaly rule with enough history.
    pub band: Option<Band>,
}

/// `value`: the metric over the window ending now; `history`: the same window in each
/// previous week, newest first (anomaly rules only, else empty). Above/Below compare with
/// the threshold (expected = threshold); NoEvents is breached when value == 0 (expected 1);
/// Anomaly uses [`anomaly::band`] with the rule's sensitivity over the first `weeks` entries
/// of history and is never breached without a band (expected = median, or value when no
/// band).
pub fn check(condition: &AlertCondition, value: f64, history: &[f64]) -> Check {
    let plain = |breached: bool, expected: f64| Check {
        breached,
        value,
        expected,
        band: None,
    };
    match *condition {
        AlertCondition::Above { threshold } => plain(value > threshold, threshold),
        AlertCondition::Below { threshold } => plain(value < threshold, threshold),
        AlertCondition::NoEvents => plain(value == 0.0, 1.0),
        AlertCondition::Anomaly {
            direction,
            sensitivity,
            weeks,
        } => {
            let weeks = history.len().min(weeks as usize);
            match anomaly::band(&history[..weeks], sensitivity) {
                Some(band) => Check {
                    breached: anomaly::outside(value, &band, direction),
                    value,
                    expected: band.median,
                    band: Some(band),
                },
                None => plain(false, value),
            }
        }
    }
}

/// A one-sentence message, e.g. "Visitors over the last 60 minutes is 12, below 50" /
/// "Pageviews over the last 60 minutes is 340, above the usual 120 (expected 80 to 160)" /
/// "No events for 10 minutes". It says what the check found whether breached or not, so it
/// serves a firing and a resolution alike.
pub fn describe(
    metric: &str,
    window_minutes: u32,
    condition: &AlertCondition,
    check: &Check,
) -> String {
    let minutes = if window_minutes == 1 {
        "1 minute".to_string()
    } else {
        format!("{window_minutes} minutes")
    };
    if matches!(condition, AlertCondition::NoEvents) && check.breached {
        return format!("No events for {minutes}");
    }
    let measured = format!(
        "{} over the last {minutes} is {}",
        metric_label(metric),
        number(check.value)
    );
    let found = match (condition, &check.band) {
        (AlertCondition::Above { threshold }, _) => {
            let not = if check.breached { "" } else { "not " };
            format!(", {not}above {}", number(*threshold))
        }
        (AlertCondition::Below { threshold }, _) => {
            let not = if check.breached { "" } else { "not " };
            format!(", {not}below {}", number(*threshold))
        }
        (AlertCondition::NoEvents, _) => String::new(),
        (AlertCondition::Anomaly { .. }, Some(band)) => {
            let side = if anomaly::outside(check.value, band, AnomalyDirection::Up) {
                "above"
            } else if anomaly::outside(check.value, band, AnomalyDirection::Down) {
                "below"
            } else {
                "in line with"
            };
            format!(
                ", {side} the usual {} (expected {} to {})",
                number(band.median),
                number(band.lower),
                number(band.upper)
            )
        }
        (AlertCondition::Anomaly { .. }, None) => {
            format!("; too little history to compare ({MIN_HISTORY_WEEKS} weeks needed)")
        }
    };
    measured + &found
}

/// The rule's state between evaluations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleState {
    /// When the current firing started; None while the rule is not firing.
    pub firing_since_ms: Option<i64>,
    /// When the rule last fired, resolved or not: the start of its cool-down.
    pub last_fired_ms: Option<i64>,
}

/// What an evaluation does to a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The condition started to hold: notify.
    Fire,
    /// The condition stopped holding while firing: notify the resolution.
    Resolve,
    /// Nothing to say: still firing, still fine, or breached within the cool-down.
    Stay,
}

/// Not firing and breached and outside the cool-down since the last firing -> Fire; firing
/// and not breached -> Resolve; else Stay. The cool-down is over once exactly
/// `cooldown_minutes` have passed since the last firing.
pub fn transition(
    state: &RuleState,
    breached: bool,
    now_ms: i64,
    cooldown_minutes: u32,
) -> Transition {
    let cooldown_ms = i64::from(cooldown_minutes) * 60_000;
    match (state.firing_since_ms, breached) {
        (None, true) => match state.last_fired_ms {
            Some(last) if now_ms.saturating_sub(last) < cooldown_ms => Transition::Stay,
            _ => Transition::Fire,
        },
        (Some(_), false) => Transition::Resolve,
        _ => Transition::Stay,
    }
}

impl RuleState {
    /// The state after `t` happened at `now_ms`.
    pub fn apply(&mut self, t: Transition, now_ms: i64) {
        match t {
            Transition::Fire => {
                self.firing_since_ms = Some(now_ms);
                self.last_fired_ms = Some(now_ms);
            }
            Transition::Resolve => self.firing_since_ms = None,
            Transition::Stay => {}
        }
    }
}

/// `conversion_rate` as "Conversion rate".
fn metric_label(metric: &str) -> String {
    let spaced = metric.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

/// A value as a message shows it: at most one decimal, none when whole.
fn number(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded == 0.0 {
        "0".to_string()
    } else if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: i64 = 60_000;

    fn anomaly(direction: AnomalyDirection, weeks: u32) -> AlertCondition {
        AlertCondition::Anomaly {
            direction,
            sensitivity: 3.0,
            weeks,
        }
    }

    #[test]
    fn thresholds() {
        let above = AlertCondition::Above { threshold: 50.0 };
        let below = AlertCondition::Below { threshold: 50.0 };
        let cases = [
            (&above, 51.0, true),
            (&above, 50.0, false),
            (&below, 49.0, true),
            (&below, 50.0, false),
        ];
        for (condition, value, breached) in cases {
            let found = check(condition, value, &[]);
            assert_eq!(
                found,
                Check {
                    breached,
                    value,
                    expected: 50.0,
                    band: None
                }
            );
        }
    }

    #[test]
    fn no_events() {
        assert!(check(&AlertCondition::NoEvents, 0.0, &[]).breached);
        let one = check(&AlertCondition::NoEvents, 1.0, &[]);
        assert!(!one.breached);
        assert_eq!(one.expected, 1.0);
    }

    #[test]
    fn anomaly_without_enough_history_never_breaches() {
        for history in [&[][..], &[100.0][..], &[100.0, 100.0][..]] {
            let found = check(&anomaly(AnomalyDirection::Both, 4), 10_000.0, history);
            assert!(!found.breached);
            assert_eq!(found.expected, 10_000.0);
            assert_eq!(found.band, None);
        }
        // Enough history, but the rule looks back fewer weeks than the detector needs.
        let found = check(&anomaly(AnomalyDirection::Both, 2), 10_000.0, &[100.0; 4]);
        assert_eq!(found.band, None);
    }

    #[test]
    fn anomaly_uses_the_first_weeks_of_history() {
        // Newest first: the rule's 3 weeks are around 100; older weeks around 1000 are ignored.
        let history = [100.0, 100.0, 100.0, 1000.0, 1000.0, 1000.0];
        let found = check(&anomaly(AnomalyDirection::Both, 3), 200.0, &history);
        assert!(found.breached);
        assert_eq!(found.expected, 100.0);
        let all = check(&anomaly(AnomalyDirection::Both, 6), 200.0, &history);
        assert_eq!(all.expected, 550.0);
    }

    #[test]
    fn anomaly_direction() {
        let history = [100.0; 4]; // band 42.7 to 157.3
        let cases = [
            (AnomalyDirection::Up, 200.0, true),
            (AnomalyDirection::Up, 20.0, false),
            (AnomalyDirection::Down, 200.0, false),
            (AnomalyDirection::Down, 20.0, true),
            (AnomalyDirection::Both, 200.0, true),
            (AnomalyDirection::Both, 20.0, true),
            (AnomalyDirection::Both, 100.0, false),
        ];
        for (direction, value, breached) in cases {
            assert_eq!(
                check(&anomaly(direction, 4), value, &history).breached,
                breached,
                "{direction:?} {value}"
            );
        }
    }

    #[test]
    fn messages() {
        let describe_now =
            |metric: &str, window: u32, condition: &AlertCondition, value: f64, history: &[f64]| {
                describe(metric, window, condition, &check(condition, value, history))
            };
        let below = AlertCondition::Below { threshold: 50.0 };
        let above = AlertCondition::Above { threshold: 50.0 };
        let cases = [
            (
                describe_now("visitors", 60, &below, 12.0, &[]),
                "Visitors over the last 60 minutes is 12, below 50",
            ),
            (
                describe_now("visitors", 60, &below, 60.0, &[]),
                "Visitors over the last 60 minutes is 60, not below 50",
            ),
            (
                describe_now("conversion_rate", 30, &above, 62.5, &[]),
                "Conversion rate over the last 30 minutes is 62.5, above 50",
            ),
            (
                describe_now("events", 10, &AlertCondition::NoEvents, 0.0, &[]),
                "No events for 10 minutes",
            ),
            (
                describe_now("events", 1, &AlertCondition::NoEvents, 0.0, &[]),
                "No events for 1 minute",
            ),
            (
                describe_now("events", 10, &AlertCondition::NoEvents, 7.0, &[]),
                "Events over the last 10 minutes is 7",
            ),
            (
                describe_now(
                    "pageviews",
                    60,
                    &anomaly(AnomalyDirection::Both, 4),
                    340.0,
                    &[100.0, 120.0, 140.0, 120.0],
                ),
                "Pageviews over the last 60 minutes is 340, above the usual 120 (expected 53.5 to 186.5)",
            ),
            (
                describe_now("pageviews", 60, &anomaly(AnomalyDirection::Both, 4), 20.0, &[100.0; 4]),
                "Pageviews over the last 60 minutes is 20, below the usual 100 (expected 42.7 to 157.3)",
            ),
            (
                describe_now("pageviews", 60, &anomaly(AnomalyDirection::Both, 4), 110.0, &[100.0; 4]),
                "Pageviews over the last 60 minutes is 110, in line with the usual 100 (expected 42.7 to 157.3)",
            ),
            (
                describe_now("pageviews", 60, &anomaly(AnomalyDirection::Both, 4), 110.0, &[100.0]),
                "Pageviews over the last 60 minutes is 110; too little history to compare (3 weeks needed)",
            ),
        ];
        for (found, expected) in cases {
            assert_eq!(found, expected);
        }
    }

    /// Drives a rule through (minute, breached) evaluations with a 60-minute cool-down and
    /// returns the transitions.
    fn run(steps: &[(i64, bool)]) -> Vec<Transition> {
        let mut state = RuleState::default();
        steps
            .iter()
            .map(|&(minute, breached)| {
                let now_ms = minute * MINUTE_MS;
                let t = transition(&state, breached, now_ms, 60);
                state.apply(t, now_ms);
                t
            })
            .collect()
    }

    #[test]
    fn fires_once_while_breached_and_resolves() {
        use Transition::*;
        assert_eq!(
            run(&[
                (0, false),
                (1, true),
                (2, true),
                (3, true),
                (4, false),
                (5, false)
            ]),
            [Stay, Fire, Stay, Stay, Resolve, Stay]
        );
    }

    #[test]
    fn cooldown_boundaries() {
        use Transition::*;
        // Fired at 0, resolved at 1: breached again one ms before the cool-down ends stays
        // quiet, exactly at its end fires.
        let mut state = RuleState::default();
        state.apply(transition(&state, true, 0, 60), 0);
        state.apply(transition(&state, false, MINUTE_MS, 60), MINUTE_MS);
        assert_eq!(
            state,
            RuleState {
                firing_since_ms: None,
                last_fired_ms: Some(0)
            }
        );
        assert_eq!(transition(&state, true, 60 * MINUTE_MS - 1, 60), Stay);
        assert_eq!(transition(&state, true, 60 * MINUTE_MS, 60), Fire);
        // No cool-down: fires again at once.
        assert_eq!(transition(&state, true, MINUTE_MS + 1, 0), Fire);
    }

    #[test]
    fn resolve_then_fire_again() {
        use Transition::*;
        assert_eq!(
            run(&[
                (0, true),
                (10, false),
                (20, true), // within the cool-down: quiet
                (59, true), // still within it
                (60, true), // cool-down over, still breached: fires
                (61, true),
                (70, false),
                (200, true), // long after: fires at once
            ]),
            [Fire, Resolve, Stay, Stay, Fire, Stay, Resolve, Fire]
        );
    }

    #[test]
    fn firing_and_fine_states_stay() {
        let firing = RuleState {
            firing_since_ms: Some(0),
            last_fired_ms: Some(0),
        };
        assert_eq!(
            transition(&firing, true, 10 * MINUTE_MS, 60),
            Transition::Stay
        );
        assert_eq!(
            transition(&RuleState::default(), false, 0, 60),
            Transition::Stay
        );
        let mut state = firing;
        state.apply(Transition::Stay, 5);
        assert_eq!(state, firing);
    }
}
