//! `heartbeat-bench anomaly`: the precision and recall of the alert rules' detectors on
//! generated seasonal traffic with known incidents, through the decisions the server makes
//! (`heartbeat_alerts::evaluate::{check, transition}`). No server, no store: the metric is a
//! per-minute event count in memory.
//!
//! **Traffic.** One count per minute over `total_weeks` weeks, day 0 a Monday: a Poisson
//! count whose rate is `peak_per_minute` × a daily cycle (lowest at 04:00, highest at 16:00,
//! [`NIGHT_SHARE`] of the peak at night) × a weekly one (weekends at [`WEEKEND_SHARE`]) × a
//! trend ([`TREND_GROWTH`] over the whole run) × a random factor per day
//! (±[`DAY_VARIATION`]). [`HOLIDAYS_PER_12_WEEKS`] weekdays are holidays, at weekend level.
//!
//! **Incidents** (the ground truth), `incidents` of each kind, in the evaluated weeks (after
//! `weeks` weeks of history), apart from each other and from holidays: spikes (rate × 2 to 5
//! for 30 to 180 minutes), drops (× 0.2 to 0.5, 30 to 180 minutes) and outages (no events
//! for 30 to 240 minutes). An incident's week is in the baseline of the weeks after it, as a
//! real one would be.
//!
//! **Rules.** Each rule is evaluated every minute from the first minute with full history to
//! the end, with a 60-minute cool-down: anomaly rules (direction both, baseline `weeks`
//! weeks) for each window and sensitivity asked, and a no-events rule over
//! `no_events_minutes`. At minute `t` a rule's window is minutes `[t - window, t)`; an
//! anomaly rule's history is that window shifted back by k weeks, k = 1..=weeks.
//!
//! **Scoring.** A firing at minute `t` belongs to an incident `[start, end)` when its window
//! overlaps it (`start < t < end + window`). It is true when it is on the incident's side
//! (above the band for a spike; below it, or no events, for a drop or an outage), false
//! otherwise or when it belongs to no incident, except that a firing below the band on a
//! holiday that belongs to no incident is a holiday drop, counted apart: a real drop from
//! the usual weekday that the ground truth does not list. Precision is true firings over
//! true and false ones, by side and overall. An incident is detected (recalled) when at
//! least one true firing belongs to it; its delay is the first such firing's `t - start`.

use std::fmt::Write as _;

use heartbeat_alerts::evaluate::{check, transition, RuleState, Transition};
use heartbeat_model::{AlertCondition, AnomalyDirection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MINUTES_PER_DAY: usize = 1440;
const MINUTES_PER_WEEK: usize = 7 * MINUTES_PER_DAY;
/// The cool-down of every simulated rule: at most one notice an hour.
const COOLDOWN_MINUTES: u32 = 60;
/// The rate at 04:00 as a share of the rate at 16:00.
const NIGHT_SHARE: f64 = 0.12;
/// A weekend day's (and a holiday's) rate as a share of a weekday's.
const WEEKEND_SHARE: f64 = 0.55;
/// How much the rate grows from the first minute to the last.
const TREND_GROWTH: f64 = 0.25;
/// The largest deviation of a day's random factor from 1.
const DAY_VARIATION: f64 = 0.1;
/// Weekday holidays per 12 weeks of traffic.
const HOLIDAYS_PER_12_WEEKS: usize = 3;
/// The least time between two incidents, and between an incident and a holiday.
const INCIDENT_GAP_MINUTES: usize = 12 * 60;

#[derive(Debug, Clone, clap::Args)]
pub struct AnomalyArgs {
    /// Seed of the traffic, the holidays and the incidents.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Weeks of traffic generated.
    #[arg(long, default_value_t = 12)]
    total_weeks: usize,
    /// Weeks of history an anomaly rule's baseline reads.
    #[arg(long, default_value_t = 4)]
    weeks: u32,
    /// Sensitivities (robust deviations either side of the median) to compare,
    /// comma-separated; 3 is a rule's default.
    #[arg(long, value_delimiter = ',', default_value = "2,3,4")]
    sensitivity: Vec<f64>,
    /// Windows of the anomaly rules in minutes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "15,30,60")]
    windows: Vec<usize>,
    /// Window of the no-events rule in minutes.
    #[arg(long, default_value_t = 10)]
    no_events_minutes: usize,
    /// Events per minute at 16:00 on a weekday, before trend and daily variation.
    #[arg(long, default_value_t = 10.0)]
    peak_per_minute: f64,
    /// Incidents of each kind (fewer if they do not fit, 12 hours apart, in the evaluated
    /// weeks).
    #[arg(long, default_value_t = 12)]
    incidents: usize,
}

pub fn run(args: AnomalyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.weeks as usize + 1 < args.total_weeks,
        "--total-weeks must exceed --weeks by at least 2, to leave a week to evaluate"
    );
    anyhow::ensure!(
        !args.windows.is_empty()
            && args.windows.iter().all(|&w| w > 0)
            && args.no_events_minutes > 0,
        "windows must be at least a minute"
    );
    let traffic = Traffic::generate(&args);
    let scores: Vec<Score> = rules(&args)
        .iter()
        .map(|rule| traffic.score(rule, &args))
        .collect();
    print!("{}", report(&args, &traffic, &scores));
    Ok(())
}

/// What an incident does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IncidentKind {
    Spike,
    Drop,
    Outage,
}

const KINDS: [IncidentKind; 3] = [
    IncidentKind::Spike,
    IncidentKind::Drop,
    IncidentKind::Outage,
];

impl IncidentKind {
    fn index(self) -> usize {
        self as usize
    }

    /// Whether a firing on this side (above the band or not) is right about this kind.
    fn matches(self, side: Side) -> bool {
        match self {
            IncidentKind::Spike => side == Side::Above,
            IncidentKind::Drop | IncidentKind::Outage => side == Side::Below,
        }
    }
}

/// A known incident: minutes `[start, end)` with the rate multiplied by `factor`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Incident {
    kind: IncidentKind,
    start: usize,
    end: usize,
    factor: f64,
}

/// The generated traffic and its ground truth.
#[derive(Debug, Clone, PartialEq)]
struct Traffic {
    /// Events per minute.
    counts: Vec<u32>,
    /// `prefix[m]`: events before minute `m`.
    prefix: Vec<u64>,
    /// Days (from 0) at weekend level.
    holidays: Vec<usize>,
    /// In time order.
    incidents: Vec<Incident>,
    /// The first minute every rule has full history at.
    first_evaluated: usize,
}

impl Traffic {
    fn generate(args: &AnomalyArgs) -> Traffic {
        let mut rng = StdRng::seed_from_u64(args.seed);
        let days = args.total_weeks * 7;
        let minutes = days * MINUTES_PER_DAY;
        let longest_window = args
            .windows
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(args.no_events_minutes);
        let first_evaluated = args.weeks as usize * MINUTES_PER_WEEK + longest_window;

        let holiday_count = (HOLIDAYS_PER_12_WEEKS * args.total_weeks).div_ceil(12);
        let mut holidays = Vec::new();
        while holidays.len() < holiday_count {
            let day = rng.random_range(0..days);
            if day % 7 < 5 && !holidays.contains(&day) {
                holidays.push(day);
            }
        }
        holidays.sort_unstable();

        let incidents = place_incidents(
            &mut rng,
            args.incidents,
            first_evaluated,
            minutes,
            &holidays,
        );

        let day_factors: Vec<f64> = (0..days)
            .map(|_| 1.0 + rng.random_range(-DAY_VARIATION..=DAY_VARIATION))
            .collect();
        let mut counts = Vec::with_capacity(minutes);
        let mut next_incident = 0;
        for minute in 0..minutes {
            let day = minute / MINUTES_PER_DAY;
            let hour = (minute % MINUTES_PER_DAY) as f64 / 60.0;
            let daily = NIGHT_SHARE
                + (1.0 - NIGHT_SHARE)
                    * (1.0 - (2.0 * std::f64::consts::PI * (hour - 4.0) / 24.0).cos())
                    / 2.0;
            let weekly = if day % 7 >= 5 || holidays.contains(&day) {
                WEEKEND_SHARE
            } else {
                1.0
            };
            let trend = 1.0 + TREND_GROWTH * minute as f64 / minutes as f64;
            while next_incident < incidents.len() && incidents[next_incident].end <= minute {
                next_incident += 1;
            }
            let incident = incidents
                .get(next_incident)
                .filter(|i| i.start <= minute)
                .map_or(1.0, |i| i.factor);
            let rate = args.peak_per_minute * daily * weekly * trend * day_factors[day] * incident;
            counts.push(poisson(&mut rng, rate));
        }
        let mut prefix = Vec::with_capacity(minutes + 1);
        prefix.push(0);
        for &count in &counts {
            prefix.push(prefix.last().copied().unwrap_or(0) + u64::from(count));
        }
        Traffic {
            counts,
            prefix,
            holidays,
            incidents,
            first_evaluated,
        }
    }

    /// Events in minutes `[from, to)`.
    fn sum(&self, from: usize, to: usize) -> f64 {
        (self.prefix[to] - self.prefix[from]) as f64
    }

    /// Whether minutes `[from, to)` overlap a holiday.
    fn on_holiday(&self, from: usize, to: usize) -> bool {
        self.holidays
            .iter()
            .any(|&day| day * MINUTES_PER_DAY < to && from < (day + 1) * MINUTES_PER_DAY)
    }

    /// Incidents of `kind`.
    fn count(&self, kind: IncidentKind) -> usize {
        self.incidents.iter().filter(|i| i.kind == kind).count()
    }

    /// Weeks from the first evaluated minute to the end.
    fn evaluated_weeks(&self) -> f64 {
        (self.counts.len() + 1 - self.first_evaluated) as f64 / MINUTES_PER_WEEK as f64
    }

    /// Evaluates `rule` every minute and scores its firings against the incidents.
    fn score(&self, rule: &Rule, args: &AnomalyArgs) -> Score {
        let mut score = Score::new(rule.clone());
        let mut state = RuleState::default();
        let mut first_true_firing: Vec<Option<usize>> = vec![None; self.incidents.len()];
        for t in self.first_evaluated..=self.counts.len() {
            let window = rule.window;
            let value = self.sum(t - window, t);
            let history: Vec<f64> = match rule.condition {
                AlertCondition::Anomaly { .. } => (1..=args.weeks as usize)
                    .map(|k| self.sum(t - k * MINUTES_PER_WEEK - window, t - k * MINUTES_PER_WEEK))
                    .collect(),
                _ => Vec::new(),
            };
            let found = check(&rule.condition, value, &history);
            let now_ms = (t * 60_000) as i64;
            let step = transition(&state, found.breached, now_ms, COOLDOWN_MINUTES);
            state.apply(step, now_ms);
            if step != Transition::Fire {
                continue;
            }
            let side = match found.band {
                Some(band) if value > band.upper => Side::Above,
                _ => Side::Below,
            };
            let belongs = self
                .incidents
                .iter()
                .position(|i| i.start < t && t < i.end + window)
                .filter(|&i| self.incidents[i].kind.matches(side));
            match belongs {
                Some(i) => {
                    score.firings[side as usize] += 1;
                    score.true_firings[side as usize] += 1;
                    first_true_firing[i].get_or_insert(t);
                }
                None if side == Side::Below && self.on_holiday(t - window, t) => {
                    score.holiday_drops += 1
                }
                None => {
                    score.firings[side as usize] += 1;
                }
            }
        }
        for (incident, first) in self.incidents.iter().zip(first_true_firing) {
            let kind = incident.kind.index();
            score.incidents[kind] += 1;
            if let Some(t) = first {
                score.detected[kind] += 1;
                score.delays[kind].push(t - incident.start);
            }
        }
        score
    }
}

/// Places `per_kind` incidents of each kind at random in minutes `[from, to)`, at least
/// [`INCIDENT_GAP_MINUTES`] from each other and from holidays, in time order.
fn place_incidents(
    rng: &mut StdRng,
    per_kind: usize,
    from: usize,
    to: usize,
    holidays: &[usize],
) -> Vec<Incident> {
    let mut incidents: Vec<Incident> = Vec::new();
    for kind in KINDS {
        let mut placed = 0;
        let mut attempts = 0;
        while placed < per_kind && attempts < 100_000 {
            attempts += 1;
            let (length, factor) = match kind {
                IncidentKind::Spike => (rng.random_range(30..=180), rng.random_range(2.0..=5.0)),
                IncidentKind::Drop => (rng.random_range(30..=180), rng.random_range(0.2..=0.5)),
                IncidentKind::Outage => (rng.random_range(30..=240), 0.0),
            };
            let start =
                rng.random_range(from + INCIDENT_GAP_MINUTES..to - INCIDENT_GAP_MINUTES - length);
            let end = start + length;
            let clear = |a: usize, b: usize| {
                end + INCIDENT_GAP_MINUTES <= a || b + INCIDENT_GAP_MINUTES <= start
            };
            let free = incidents.iter().all(|i| clear(i.start, i.end))
                && holidays
                    .iter()
                    .all(|&day| clear(day * MINUTES_PER_DAY, (day + 1) * MINUTES_PER_DAY));
            if free {
                incidents.push(Incident {
                    kind,
                    start,
                    end,
                    factor,
                });
                placed += 1;
            }
        }
    }
    incidents.sort_by_key(|i| i.start);
    incidents
}

/// A Poisson count of mean `rate`: Knuth's product of uniforms while the mean is small, the
/// normal approximation (rounded, at least 0) beyond, where the two agree closely.
fn poisson(rng: &mut StdRng, rate: f64) -> u32 {
    if rate <= 0.0 {
        return 0;
    }
    if rate < 30.0 {
        let limit = (-rate).exp();
        let mut product: f64 = rng.random();
        let mut count = 0;
        while product > limit {
            product *= rng.random::<f64>();
            count += 1;
        }
        return count;
    }
    // Box-Muller.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (rate + rate.sqrt() * normal).round().max(0.0) as u32
}

/// Which side of normal a firing says the metric is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Above = 0,
    Below = 1,
}

/// One simulated rule.
#[derive(Debug, Clone, PartialEq)]
struct Rule {
    window: usize,
    condition: AlertCondition,
}

/// The anomaly rules for every window and sensitivity asked, then the no-events rule.
fn rules(args: &AnomalyArgs) -> Vec<Rule> {
    let mut rules = Vec::new();
    for &window in &args.windows {
        for &sensitivity in &args.sensitivity {
            rules.push(Rule {
                window,
                condition: AlertCondition::Anomaly {
                    direction: AnomalyDirection::Both,
                    sensitivity,
                    weeks: args.weeks,
                },
            });
        }
    }
    rules.push(Rule {
        window: args.no_events_minutes,
        condition: AlertCondition::NoEvents,
    });
    rules
}

/// How one rule did. Arrays by [`Side`] or by [`IncidentKind`].
#[derive(Debug, Clone)]
struct Score {
    rule: Rule,
    firings: [usize; 2],
    true_firings: [usize; 2],
    /// Firings below the band on a holiday: a real drop from the usual weekday that the
    /// ground truth does not list, counted neither true nor false.
    holiday_drops: usize,
    incidents: [usize; 3],
    detected: [usize; 3],
    /// Minutes from an incident's start to its first true firing.
    delays: [Vec<usize>; 3],
}

impl Score {
    fn new(rule: Rule) -> Score {
        Score {
            rule,
            firings: [0; 2],
            true_firings: [0; 2],
            holiday_drops: 0,
            incidents: [0; 3],
            detected: [0; 3],
            delays: Default::default(),
        }
    }

    fn recall(&self, kind: IncidentKind) -> Option<f64> {
        let k = kind.index();
        ratio(self.detected[k], self.incidents[k])
    }

    fn precision(&self, side: Side) -> Option<f64> {
        ratio(
            self.true_firings[side as usize],
            self.firings[side as usize],
        )
    }

    fn overall_precision(&self) -> Option<f64> {
        ratio(self.true_firings.iter().sum(), self.firings.iter().sum())
    }

    fn overall_recall(&self) -> Option<f64> {
        ratio(self.detected.iter().sum(), self.incidents.iter().sum())
    }

    fn false_firings(&self) -> usize {
        self.firings.iter().sum::<usize>() - self.true_firings.iter().sum::<usize>()
    }

    fn max_delay(&self, kind: IncidentKind) -> Option<usize> {
        self.delays[kind.index()].iter().copied().max()
    }

    fn median_delay(&self, kind: IncidentKind) -> Option<usize> {
        let mut delays = self.delays[kind.index()].clone();
        if delays.is_empty() {
            return None;
        }
        delays.sort_unstable();
        Some(delays[(delays.len() - 1) / 2])
    }
}

fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The markdown report: the set-up, then one row per rule.
fn report(args: &AnomalyArgs, traffic: &Traffic, scores: &[Score]) -> String {
    let mut out = String::new();
    let total: u64 = traffic.prefix.last().copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "{} weeks of traffic (seed {}, {:.1} M events, peak {} events/min), {} holiday(s); \
         {} incidents ({} spikes, {} drops, {} outages) over the last {:.1} weeks; baseline {} weeks, \
         cool-down {COOLDOWN_MINUTES} min, rules evaluated every minute.\n",
        args.total_weeks,
        args.seed,
        total as f64 / 1e6,
        args.peak_per_minute,
        traffic.holidays.len(),
        traffic.incidents.len(),
        traffic.count(IncidentKind::Spike),
        traffic.count(IncidentKind::Drop),
        traffic.count(IncidentKind::Outage),
        traffic.evaluated_weeks(),
        args.weeks,
    );
    let _ = writeln!(
        out,
        "| rule | window | firings | precision up | precision down | precision | recall spikes | recall drops | recall outages | recall | false / week | holiday drops | delay p50 / max, min: spikes · drops · outages |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for score in scores {
        let name = match score.rule.condition {
            AlertCondition::Anomaly { sensitivity, .. } => {
                format!("anomaly, sensitivity {sensitivity}")
            }
            _ => "no events".to_string(),
        };
        let is_anomaly = matches!(score.rule.condition, AlertCondition::Anomaly { .. });
        let delays: Vec<String> = KINDS
            .iter()
            .map(
                |&kind| match (score.median_delay(kind), score.max_delay(kind)) {
                    (Some(p50), Some(max)) => format!("{p50} / {max}"),
                    _ => "–".to_string(),
                },
            )
            .collect();
        // A no-events rule never fires on a spike: its spike columns would say nothing.
        let anomaly_only = |value: Option<f64>| {
            if is_anomaly {
                percent(value)
            } else {
                "–".to_string()
            }
        };
        let _ = writeln!(
            out,
            "| {name} | {} min | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {} |",
            score.rule.window,
            score.firings.iter().sum::<usize>(),
            anomaly_only(score.precision(Side::Above)),
            percent(score.precision(Side::Below)),
            percent(score.overall_precision()),
            anomaly_only(score.recall(IncidentKind::Spike)),
            percent(score.recall(IncidentKind::Drop)),
            percent(score.recall(IncidentKind::Outage)),
            anomaly_only(score.overall_recall()),
            score.false_firings() as f64 / traffic.evaluated_weeks(),
            score.holiday_drops,
            delays.join(" · "),
        );
    }
    if let Some(no_events) = scores.last() {
        let _ = writeln!(
            out,
            "\nNo-events rule: outage detection delay max {} min (bound: window {} + 1 min).",
            no_events
                .max_delay(IncidentKind::Outage)
                .map_or("–".to_string(), |d| d.to_string()),
            args.no_events_minutes
        );
    }
    out
}

fn percent(value: Option<f64>) -> String {
    value.map_or("–".to_string(), |v| format!("{:.0} %", v * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: AnomalyArgs,
    }

    /// The defaults, on 6 weeks of traffic with 4 incidents of each kind.
    fn small() -> AnomalyArgs {
        let mut args = Cli::parse_from(["anomaly"]).args;
        args.total_weeks = 6;
        args.incidents = 4;
        args
    }

    #[test]
    fn generation_is_deterministic() {
        let args = small();
        let traffic = Traffic::generate(&args);
        assert_eq!(traffic, Traffic::generate(&args));
        assert_eq!(traffic.counts.len(), 6 * MINUTES_PER_WEEK);
        assert_eq!(traffic.incidents.len(), 12);
        assert!(traffic
            .incidents
            .iter()
            .all(|i| i.start >= traffic.first_evaluated && i.end <= traffic.counts.len()));
        let other = Traffic::generate(&AnomalyArgs { seed: 2, ..args });
        assert_ne!(traffic.counts, other.counts);
    }

    #[test]
    fn outages_have_no_events() {
        let traffic = Traffic::generate(&small());
        for outage in traffic
            .incidents
            .iter()
            .filter(|i| i.kind == IncidentKind::Outage)
        {
            assert_eq!(traffic.sum(outage.start, outage.end), 0.0);
        }
    }

    #[test]
    fn no_events_rule_finds_every_outage_within_its_window() {
        let args = small();
        let traffic = Traffic::generate(&args);
        let rule = rules(&args).pop().unwrap();
        assert_eq!(rule.condition, AlertCondition::NoEvents);
        let score = traffic.score(&rule, &args);
        assert_eq!(score.recall(IncidentKind::Outage), Some(1.0));
        assert!(score.max_delay(IncidentKind::Outage).unwrap() <= args.no_events_minutes + 1);
        assert_eq!(score.false_firings(), 0);
    }

    #[test]
    fn poisson_mean() {
        let mut rng = StdRng::seed_from_u64(7);
        for rate in [0.5, 5.0, 50.0] {
            let n = 20_000;
            let mean = (0..n).map(|_| poisson(&mut rng, rate) as f64).sum::<f64>() / n as f64;
            assert!((mean - rate).abs() < 0.05 * rate, "{rate}: {mean}");
        }
    }
}
