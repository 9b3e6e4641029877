//! Deterministic synthetic traffic for one site: the shape of the data every benchmark uses.
//!
//! The same seed, event count, day count, end time and domain always give the same events in
//! the same order. The model, with its knobs as constants below:
//! - visits start in time order over the `days` days that end at `end`, denser in the
//!   afternoon (UTC) than at night ([`DayCycle`]);
//! - 30 % of visits come from a returning visitor (any visitor seen earlier), the rest from a
//!   new one; a visitor's user agent and IP are a function of its id, so they stay the same;
//! - a visit's page view count is geometric with P(1) = 50 %, so about half of the visits
//!   bounce; page views are 5 s to 5 min apart (log-uniform);
//! - pages are Zipf-distributed over [`PAGE_COUNT`] paths, the first ones most visited;
//! - the entry page carries the visit's external referrer (none for 40 % of visits) and, for
//!   10 % of visits, UTM tags; later pages carry the previous page as referrer;
//! - 10 % of visits also send one custom event: `Signup` (props `plan`), `Download` (props
//!   `file`) or `Purchase` (props `plan` and revenue).
//!
//! The run stops after exactly `events` events, possibly in the middle of a visit.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::event::{Event, Revenue, PAGEVIEW};

/// Number of distinct page paths of the synthetic site.
pub const PAGE_COUNT: usize = 200;
/// Probability that a visit goes on to one more page view; 0.5 gives a ~50 % bounce rate.
const NEXT_PAGEVIEW_PROBABILITY: f64 = 0.5;
/// Upper bound of page views in one visit.
const MAX_PAGEVIEWS_PER_VISIT: u32 = 40;
/// Share of visits made by a visitor seen before.
const RETURNING_VISIT_SHARE: f64 = 0.3;
/// Share of visits whose entry page URL carries UTM tags.
const UTM_VISIT_SHARE: f64 = 0.1;
/// Share of visits that send one custom event.
const CUSTOM_EVENT_VISIT_SHARE: f64 = 0.1;
/// Mean events per visit implied by the constants above, used to spread visits over the days.
const MEAN_EVENTS_PER_VISIT: f64 =
    1.0 / (1.0 - NEXT_PAGEVIEW_PROBABILITY) + CUSTOM_EVENT_VISIT_SHARE;
/// Exponent of the page popularity law.
const PAGE_ZIPF_EXPONENT: f64 = 1.0;
/// Shortest and longest gap between two page views of a visit.
const MIN_PAGEVIEW_GAP_MS: f64 = 5_000.0;
const MAX_PAGEVIEW_GAP_MS: f64 = 300_000.0;
/// How much busier the peak hour is than the average hour (0 = flat, 1 = empty at night).
const DAY_CYCLE_AMPLITUDE: f64 = 0.7;
/// Hour of the day (UTC) with the most traffic.
const PEAK_HOUR_UTC: f64 = 15.0;
const DAY_MS: i64 = 86_400_000;

/// Browser user agents with their share of traffic (weights need not sum to 100).
const USER_AGENTS: &[(&str, u32)] = &[
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 24),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36", 6),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0", 6),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", 5),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0", 1),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 10),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", 6),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0", 2),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0", 1),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 3),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 2),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0", 1),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", 12),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", 3),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", 2),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", 12),
    ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", 2),
    ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", 1),
    ("Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", 2),
    ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 1),
];

/// External referrers of a visit's entry page; `None` is a direct visit.
const REFERRERS: &[(Option<&str>, u32)] = &[
    (None, 40),
    (Some("https://www.google.com/"), 30),
    (Some("https://www.bing.com/"), 5),
    (Some("https://duckduckgo.com/"), 4),
    (Some("https://t.co/"), 3),
    (Some("https://x.com/"), 1),
    (Some("https://www.facebook.com/"), 4),
    (Some("https://news.ycombinator.com/"), 4),
    (Some("https://github.com/heartbeat-analytics/heartbeat"), 4),
    (Some("https://www.reddit.com/r/selfhosted/"), 5),
];

/// UTM campaigns: (utm_source, utm_medium, utm_campaign).
const UTM_CAMPAIGNS: &[(&str, &str, &str)] = &[
    ("newsletter", "email", "spring_launch"),
    ("twitter", "social", "launch_week"),
    ("google", "cpc", "brand"),
    ("producthunt", "referral", "launch_day"),
    ("reddit", "social", "selfhosted"),
];

/// Plans named by `Signup` and `Purchase` events, with the signup mix.
const SIGNUP_PLANS: &[(&str, u32)] = &[("free", 60), ("pro", 30), ("team", 10)];
/// Paid plans with their purchase mix and price.
const PURCHASES: &[(&str, &str, u32)] = &[("pro", "19.99", 70), ("team", "49.00", 30)];
const CURRENCIES: &[(&str, u32)] = &[("EUR", 70), ("USD", 30)];
const DOWNLOAD_FILES: &[(&str, u32)] = &[
    ("heartbeat-linux-x86_64.tar.gz", 50),
    ("heartbeat-linux-aarch64.tar.gz", 15),
    ("heartbeat-macos-aarch64.tar.gz", 20),
    ("heartbeat-windows-x86_64.zip", 10),
    ("whitepaper.pdf", 5),
];

/// Custom event kinds with their share among visits that send one.
#[derive(Debug, Clone, Copy)]
enum CustomEvent {
    Signup,
    Download,
    Purchase,
}
const CUSTOM_EVENTS: &[(CustomEvent, u32)] = &[
    (CustomEvent::Signup, 50),
    (CustomEvent::Download, 30),
    (CustomEvent::Purchase, 20),
];

/// Everything that determines a generated data set.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Seed of the random stream; same seed, same events.
    pub seed: u64,
    /// Exact number of events to produce.
    pub events: u64,
    /// Length of the time window, ending at `end`, over which visits start.
    pub days: u32,
    /// End of the time window; no event is later than this.
    pub end: DateTime<Utc>,
    /// Site domain used in page URLs and internal referrers.
    pub domain: String,
}

/// An iterator over the events of a [`GeneratorConfig`], in visit order.
pub struct EventGenerator {
    config: GeneratorConfig,
    rng: StdRng,
    pages: Vec<String>,
    page_popularity: Cumulative,
    user_agents: Cumulative,
    referrers: Cumulative,
    custom_events: Cumulative,
    signup_plans: Cumulative,
    purchases: Cumulative,
    currencies: Cumulative,
    download_files: Cumulative,
    day_cycle: DayCycle,
    window_start_ms: i64,
    end_ms: i64,
    /// Visits needed to produce `events` on average; spreads visit starts over the window.
    expected_visits: f64,
    visits_started: u64,
    /// Visitors created so far; visitor ids are `0..visitors_created`.
    visitors_created: u64,
    emitted: u64,
    /// The rest of the current visit, last event first so that `pop` yields time order.
    pending: Vec<Event>,
}

impl EventGenerator {
    pub fn new(config: GeneratorConfig) -> Self {
        let end_ms = config.end.timestamp_millis();
        let window_start_ms = end_ms - i64::from(config.days.max(1)) * DAY_MS;
        let expected_visits = (config.events as f64 / MEAN_EVENTS_PER_VISIT).max(1.0);
        Self {
            rng: StdRng::seed_from_u64(config.seed),
            pages: page_paths(),
            page_popularity: Cumulative::zipf(PAGE_COUNT, PAGE_ZIPF_EXPONENT),
            user_agents: Cumulative::from_weights(USER_AGENTS.iter().map(|(_, w)| *w)),
            referrers: Cumulative::from_weights(REFERRERS.iter().map(|(_, w)| *w)),
            custom_events: Cumulative::from_weights(CUSTOM_EVENTS.iter().map(|(_, w)| *w)),
            signup_plans: Cumulative::from_weights(SIGNUP_PLANS.iter().map(|(_, w)| *w)),
            purchases: Cumulative::from_weights(PURCHASES.iter().map(|(_, _, w)| *w)),
            currencies: Cumulative::from_weights(CURRENCIES.iter().map(|(_, w)| *w)),
            download_files: Cumulative::from_weights(DOWNLOAD_FILES.iter().map(|(_, w)| *w)),
            day_cycle: DayCycle::new(),
            window_start_ms,
            end_ms,
            expected_visits,
            visits_started: 0,
            visitors_created: 0,
            emitted: 0,
            pending: Vec::new(),
            config,
        }
    }

    /// Produces the events of the next visit, in time order.
    fn generate_visit(&mut self) -> Vec<Event> {
        let start_ms = self.next_visit_start_ms();
        let visitor = self.pick_visitor();
        let traits = VisitorTraits::of(self.config.seed, visitor, &self.user_agents);
        let external_referrer = REFERRERS[self.referrers.pick(self.rng.random())].0;
        let utm = self
            .rng
            .random_bool(UTM_VISIT_SHARE)
            .then(|| UTM_CAMPAIGNS[self.rng.random_range(0..UTM_CAMPAIGNS.len())]);

        let mut pageviews = 1;
        while pageviews < MAX_PAGEVIEWS_PER_VISIT && self.rng.random_bool(NEXT_PAGEVIEW_PROBABILITY)
        {
            pageviews += 1;
        }

        let visitor_id = format!("v{visitor}");
        let ip = traits.ip();
        let user_agent = Cow::Borrowed(USER_AGENTS[traits.user_agent].0);
        let mut events = Vec::with_capacity(pageviews as usize + 1);
        let mut time_ms = start_ms;
        let mut previous_url: Option<String> = None;
        for index in 0..pageviews {
            if index > 0 {
                time_ms += self.pageview_gap_ms();
            }
            let path = &self.pages[self.page_popularity.pick(self.rng.random())];
            let url = match (index, utm) {
                (0, Some((source, medium, campaign))) => format!(
                    "https://{}{path}?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}",
                    self.config.domain
                ),
                _ => format!("https://{}{path}", self.config.domain),
            };
            let referrer = match previous_url.take() {
                None => external_referrer.map(Cow::Borrowed),
                Some(previous) => Some(Cow::Owned(previous)),
            };
            previous_url = Some(url.clone());
            events.push(Event {
                timestamp: self.timestamp(time_ms),
                visitor: visitor_id.clone(),
                ip: ip.clone(),
                user_agent: user_agent.clone(),
                url,
                referrer,
                name: Cow::Borrowed(PAGEVIEW),
                props: BTreeMap::new(),
                revenue: None,
            });
        }

        if self.rng.random_bool(CUSTOM_EVENT_VISIT_SHARE) {
            let on_page = &events[self.rng.random_range(0..events.len())];
            let mut custom = on_page.clone();
            let delay_ms = self.rng.random_range(1_000..30_000);
            custom.timestamp = self.timestamp(on_page.timestamp.timestamp_millis() + delay_ms);
            self.fill_custom_event(&mut custom);
            events.push(custom);
            events.sort_by_key(|event| event.timestamp);
        }
        events
    }

    /// Turns a copy of a page view into one of the custom events.
    fn fill_custom_event(&mut self, event: &mut Event) {
        let kind = CUSTOM_EVENTS[self.custom_events.pick(self.rng.random())].0;
        match kind {
            CustomEvent::Signup => {
                let plan = SIGNUP_PLANS[self.signup_plans.pick(self.rng.random())].0;
                event.name = Cow::Borrowed("Signup");
                event
                    .props
                    .insert(Cow::Borrowed("plan"), Cow::Borrowed(plan));
            }
            CustomEvent::Download => {
                let file = DOWNLOAD_FILES[self.download_files.pick(self.rng.random())].0;
                event.name = Cow::Borrowed("Download");
                event
                    .props
                    .insert(Cow::Borrowed("file"), Cow::Borrowed(file));
            }
            CustomEvent::Purchase => {
                let (plan, amount, _) = PURCHASES[self.purchases.pick(self.rng.random())];
                let currency = CURRENCIES[self.currencies.pick(self.rng.random())].0;
                event.name = Cow::Borrowed("Purchase");
                event
                    .props
                    .insert(Cow::Borrowed("plan"), Cow::Borrowed(plan));
                event.revenue = Some(Revenue {
                    amount: Cow::Borrowed(amount),
                    currency: Cow::Borrowed(currency),
                });
            }
        }
    }

    /// Start of the next visit: visits are spread evenly over the days in order, and within
    /// a day along the daily cycle.
    fn next_visit_start_ms(&mut self) -> i64 {
        let mut position =
            (self.visits_started as f64 + self.rng.random::<f64>()) / self.expected_visits;
        self.visits_started += 1;
        if position >= 1.0 {
            // More visits than expected (short visits by chance): squeeze them into the last
            // moments of the window rather than into the future.
            position = 1.0 - self.rng.random::<f64>() * 1e-4;
        }
        let days = f64::from(self.config.days.max(1));
        let day_position = position * days;
        let day = day_position.floor();
        let window_time_of_day_ms = self.window_start_ms.rem_euclid(DAY_MS);
        let within_day_ms = self
            .day_cycle
            .offset_in_day_ms(window_time_of_day_ms, day_position - day);
        (self.window_start_ms + day as i64 * DAY_MS + within_day_ms).min(self.end_ms)
    }

    fn pick_visitor(&mut self) -> u64 {
        if self.visitors_created > 0 && self.rng.random_bool(RETURNING_VISIT_SHARE) {
            self.rng.random_range(0..self.visitors_created)
        } else {
            self.visitors_created += 1;
            self.visitors_created - 1
        }
    }

    fn pageview_gap_ms(&mut self) -> i64 {
        let (low, high) = (MIN_PAGEVIEW_GAP_MS.ln(), MAX_PAGEVIEW_GAP_MS.ln());
        (low + self.rng.random::<f64>() * (high - low)).exp() as i64
    }

    /// A timestamp no later than the end of the window.
    fn timestamp(&self, ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms.min(self.end_ms)).unwrap_or(self.config.end)
    }
}

impl Iterator for EventGenerator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.emitted >= self.config.events {
            return None;
        }
        if self.pending.is_empty() {
            let mut visit = self.generate_visit();
            visit.reverse();
            self.pending = visit;
        }
        self.emitted += 1;
        self.pending.pop()
    }
}

/// Writes the events of `config` as NDJSON (see `event.rs`) to `path`; returns the count.
pub fn write_ndjson(config: GeneratorConfig, path: &Path) -> anyhow::Result<u64> {
    let file = std::fs::File::create(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(1024);
    let mut written = 0;
    for event in EventGenerator::new(config) {
        line.clear();
        event.write_ndjson_line(&mut line);
        out.write_all(&line)?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

/// The site's page paths, most popular first: a few top-level pages, then docs and blog
/// posts interleaved.
fn page_paths() -> Vec<String> {
    const TOP: &[&str] = &[
        "/",
        "/pricing",
        "/features",
        "/blog",
        "/docs",
        "/signup",
        "/login",
        "/about",
        "/changelog",
        "/download",
        "/integrations",
        "/customers",
        "/contact",
        "/security",
        "/compare/google-analytics",
        "/compare/plausible",
        "/privacy",
        "/terms",
        "/careers",
        "/status",
    ];
    const DOC_SECTIONS: &[&str] = &[
        "getting-started",
        "install",
        "configuration",
        "tracking",
        "api",
        "self-hosting",
    ];
    const DOC_TOPICS: &[&str] = &[
        "overview",
        "quickstart",
        "docker",
        "systemd",
        "reverse-proxy",
        "goals",
        "custom-events",
        "revenue",
        "stats-api",
        "events-api",
    ];
    let docs = DOC_SECTIONS.iter().flat_map(|section| {
        DOC_TOPICS
            .iter()
            .map(move |topic| format!("/docs/{section}/{topic}"))
    });
    let mut blog = (1..).map(|n| format!("/blog/post-{n}"));
    let mut paths: Vec<String> = TOP.iter().map(|path| path.to_string()).collect();
    for doc in docs {
        paths.push(blog.next().unwrap_or_default());
        paths.push(doc);
    }
    paths.extend(blog.take(PAGE_COUNT - paths.len()));
    paths
}

/// First octets of address blocks the five regional registries hand out (APNIC, ARIN,
/// RIPE NCC, LACNIC, AFRINIC): visitors' addresses come from these.
const PUBLIC_BLOCKS: [u8; 16] = [
    1, 14, 24, 41, 49, 62, 77, 81, 92, 105, 109, 121, 177, 186, 200, 212,
];

/// Attributes that a visitor keeps across visits, derived from its id alone.
struct VisitorTraits {
    user_agent: usize,
    address: u64,
}

impl VisitorTraits {
    fn of(seed: u64, visitor: u64, user_agents: &Cumulative) -> Self {
        let hash = splitmix64(seed ^ splitmix64(visitor));
        let unit = (hash >> 11) as f64 / (1u64 << 53) as f64;
        Self {
            user_agent: user_agents.pick(unit),
            address: hash,
        }
    }

    /// A public address in one of [`PUBLIC_BLOCKS`], so the GeoIP database places visitors
    /// in countries all over the world, as a real site's are.
    fn ip(&self) -> String {
        let [a, b, c, d, ..] = self.address.to_le_bytes();
        let block = PUBLIC_BLOCKS[usize::from(a) % PUBLIC_BLOCKS.len()];
        format!("{block}.{b}.{c}.{}", d.max(1))
    }
}

/// SplitMix64's finaliser: a fast, well-mixed hash of a 64-bit value.
fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A discrete distribution over `0..n` stored as its cumulative distribution function.
pub struct Cumulative {
    /// `bounds[i]` is P(X <= i); the last bound is 1.
    bounds: Vec<f64>,
}

impl Cumulative {
    pub fn from_weights(weights: impl IntoIterator<Item = impl Into<f64>>) -> Self {
        let mut total = 0.0;
        let mut bounds: Vec<f64> = weights
            .into_iter()
            .map(|weight| {
                total += weight.into();
                total
            })
            .collect();
        for bound in &mut bounds {
            *bound /= total;
        }
        Self { bounds }
    }

    /// Zipf's law over `n` ranks: rank `k` (0-based) has weight `1 / (k + 1)^exponent`.
    pub fn zipf(n: usize, exponent: f64) -> Self {
        Self::from_weights((1..=n).map(|rank| 1.0 / (rank as f64).powf(exponent)))
    }

    /// The value whose cumulative range contains `unit`, a uniform sample from `[0, 1)`.
    pub fn pick(&self, unit: f64) -> usize {
        self.bounds
            .partition_point(|&bound| bound <= unit)
            .min(self.bounds.len() - 1)
    }
}

/// Traffic density over the hours of a UTC day, with one peak and one trough.
struct DayCycle {
    /// Cumulative traffic share at the end of each minute of the day.
    minutes: Cumulative,
}

impl DayCycle {
    fn new() -> Self {
        let weights = (0..1440).map(|minute| {
            let hour = f64::from(minute) / 60.0;
            1.0 + DAY_CYCLE_AMPLITUDE * (2.0 * PI * (hour - PEAK_HOUR_UTC) / 24.0).cos()
        });
        Self {
            minutes: Cumulative::from_weights(weights),
        }
    }

    /// Maps `unit`, uniform in `[0, 1)`, to an offset in a 24 h window that starts at
    /// `window_time_of_day_ms` (UTC), following the cycle. Monotonic in `unit`.
    fn offset_in_day_ms(&self, window_time_of_day_ms: i64, unit: f64) -> i64 {
        let start_minute = (window_time_of_day_ms / 60_000) as usize;
        let mass_before_window = match start_minute {
            0 => 0.0,
            minute => self.minutes.bounds[minute - 1],
        };
        let target = (mass_before_window + unit).fract();
        let minute = self.minutes.pick(target);
        let low = if minute == 0 {
            0.0
        } else {
            self.minutes.bounds[minute - 1]
        };
        let high = self.minutes.bounds[minute];
        let within_minute = ((target - low) / (high - low)).clamp(0.0, 1.0);
        let time_of_day_ms = minute as i64 * 60_000 + (within_minute * 60_000.0) as i64;
        (time_of_day_ms - start_minute as i64 * 60_000).rem_euclid(DAY_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};

    fn config(seed: u64, events: u64) -> GeneratorConfig {
        GeneratorConfig {
            seed,
            events,
            days: 30,
            end: Utc.with_ymd_and_hms(2024, 5, 1, 10, 30, 0).unwrap(),
            domain: "example.com".into(),
        }
    }

    /// The NDJSON lines of a data set, checking on the way that the fast encoder writes what
    /// serde writes.
    fn ndjson(config: GeneratorConfig) -> Vec<String> {
        EventGenerator::new(config)
            .map(|event| {
                let mut line = Vec::new();
                event.write_ndjson_line(&mut line);
                let line = String::from_utf8(line).unwrap();
                assert_eq!(line, serde_json::to_string(&event).unwrap() + "\n");
                line
            })
            .collect()
    }

    #[test]
    fn same_seed_gives_same_events_and_another_seed_does_not() {
        let first = ndjson(config(42, 5_000));
        assert_eq!(first.len(), 5_000);
        assert_eq!(first, ndjson(config(42, 5_000)));
        assert_ne!(first, ndjson(config(43, 5_000)));
    }

    #[test]
    fn bounce_share_of_visits_is_between_40_and_60_percent() {
        let mut generator = EventGenerator::new(config(7, 0));
        let visits = 20_000;
        let bounces = (0..visits)
            .map(|_| generator.generate_visit())
            .filter(|visit| visit.len() == 1 && visit[0].name == PAGEVIEW)
            .count();
        let share = bounces as f64 / visits as f64;
        assert!((0.40..=0.60).contains(&share), "bounce share {share}");
    }

    #[test]
    fn zipf_sampler_favours_the_first_pages() {
        let zipf = Cumulative::zipf(PAGE_COUNT, PAGE_ZIPF_EXPONENT);
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = vec![0u32; PAGE_COUNT];
        let samples = 200_000;
        for _ in 0..samples {
            counts[zipf.pick(rng.random())] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[9]);
        assert!(counts[9] > counts[99] && counts[99] > 0);
        // With exponent 1 over 200 ranks the first page takes 1 / H(200) = 17 % of views.
        let first_share = f64::from(counts[0]) / f64::from(samples);
        assert!(
            (0.16..0.18).contains(&first_share),
            "first share {first_share}"
        );
    }

    #[test]
    fn events_stay_inside_the_window_and_visits_start_in_order() {
        let config = config(3, 20_000);
        let end = config.end;
        let start = end - chrono::Duration::days(30);
        let events: Vec<Event> = EventGenerator::new(config).collect();
        assert!(events
            .iter()
            .all(|e| e.timestamp >= start && e.timestamp <= end));
        // Visits run in order: the first event of the second half is later than the first half's.
        let (first_half, second_half) = events.split_at(events.len() / 2);
        assert!(first_half[0].timestamp < second_half[0].timestamp);
        // The daily cycle: the peak hour has more traffic than the trough hour.
        let at = |hour| events.iter().filter(|e| e.timestamp.hour() == hour).count();
        assert!(at(15) > 2 * at(3), "peak {} trough {}", at(15), at(3));
    }

    #[test]
    fn some_visitors_return_and_keep_their_browser_and_address() {
        let events: Vec<Event> = EventGenerator::new(config(5, 20_000)).collect();
        let mut first_seen: std::collections::HashMap<&str, &Event> = Default::default();
        let mut returning = 0;
        for event in &events {
            let first = *first_seen.entry(event.visitor.as_str()).or_insert(event);
            if event.timestamp - first.timestamp > chrono::Duration::days(1) {
                returning += 1;
                assert_eq!(first.user_agent, event.user_agent);
                assert_eq!(first.ip, event.ip);
            }
        }
        assert!(returning > 1_000, "returning events {returning}");
    }

    #[test]
    fn custom_events_carry_props_and_purchases_carry_revenue() {
        let events: Vec<Event> = EventGenerator::new(config(9, 50_000)).collect();
        let custom: Vec<&Event> = events.iter().filter(|e| e.name != PAGEVIEW).collect();
        let custom_share = custom.len() as f64 / events.len() as f64;
        assert!(
            (0.03..0.07).contains(&custom_share),
            "custom share {custom_share}"
        );
        for event in custom {
            match event.name.as_ref() {
                "Signup" => assert!(["free", "pro", "team"].contains(&&*event.props["plan"])),
                "Download" => assert!(event.props.contains_key("file")),
                "Purchase" => assert!(event.revenue.is_some()),
                other => panic!("unexpected event name {other}"),
            }
        }
    }

    #[test]
    fn page_catalog_has_distinct_paths() {
        let paths = page_paths();
        assert_eq!(paths.len(), PAGE_COUNT);
        let distinct: std::collections::HashSet<&String> = paths.iter().collect();
        assert_eq!(distinct.len(), PAGE_COUNT);
        assert_eq!(paths[0], "/");
    }
}
