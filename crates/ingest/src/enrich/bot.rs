//! Bots: crawler and script user agents (the `isbot` pattern list, `data/bots/`), headless
//! browsers, and referrer spam (`data/bots/spam-referrers.txt`).

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::{RegexSet, RegexSetBuilder};

const ISBOT_PATTERNS: &str = include_str!("../../../../data/bots/isbot-patterns.json");
const SPAM_REFERRERS: &str = include_str!("../../../../data/bots/spam-referrers.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotKind {
    /// A crawler, monitor, preview fetcher or HTTP library.
    Crawler,
    /// A browser driven by a program (headless Chrome, PhantomJS, Selenium).
    Headless,
}

/// Lower-case tokens checked before the isbot list: program-driven browsers, and page-speed
/// and screenshot services isbot lets through (found with the crawler-user-agents corpus,
/// `tests/user_agents.rs`).
const EXTRA_TOKENS: [(&str, BotKind); 9] = [
    ("headless", BotKind::Headless),
    ("phantomjs", BotKind::Headless),
    ("selenium", BotKind::Headless),
    ("puppeteer", BotKind::Headless),
    ("playwright", BotKind::Headless),
    ("gtmetrix", BotKind::Crawler),
    ("miniature.io", BotKind::Crawler),
    (" ylt ", BotKind::Crawler),
    ("turingos", BotKind::Crawler),
];

/// `isbot`'s patterns, matched case-insensitively. Most run in one `RegexSet`; the few that
/// need look-around (unsupported by the `regex` crate) run one by one with `fancy-regex`.
pub struct BotPatterns {
    set: RegexSet,
    look_around: Vec<fancy_regex::Regex>,
}

impl BotPatterns {
    pub fn shipped() -> BotPatterns {
        let patterns: Vec<String> =
            serde_json::from_str(ISBOT_PATTERNS).expect("data/bots/isbot-patterns.json parses");
        // JavaScript reads `[\w\d-.]` as a literal hyphen; the regex crate wants it escaped.
        let patterns = patterns.into_iter().map(|p| {
            p.replace(r"\w-", r"\w\-")
                .replace(r"\d-", r"\d\-")
                .replace(r"\s-", r"\s\-")
        });
        let (plain, look_around): (Vec<_>, Vec<_>) =
            patterns.partition(|p| regex::Regex::new(p).is_ok());
        BotPatterns {
            set: RegexSetBuilder::new(plain)
                .case_insensitive(true)
                .build()
                .expect("isbot patterns compile"),
            look_around: look_around
                .iter()
                .map(|p| {
                    fancy_regex::Regex::new(&format!("(?i){p}"))
                        .expect("isbot look-around patterns compile")
                })
                .collect(),
        }
    }

    pub fn classify(&self, user_agent: &str) -> Option<BotKind> {
        let lower = user_agent.to_ascii_lowercase();
        if let Some((_, kind)) = EXTRA_TOKENS.iter().find(|(token, _)| lower.contains(token)) {
            return Some(*kind);
        }
        let matched = self.set.is_match(user_agent)
            || self
                .look_around
                .iter()
                .any(|re| re.is_match(user_agent).unwrap_or(false));
        matched.then_some(BotKind::Crawler)
    }
}

/// Whether `host` (normalized, no `www.`) or one of its parent domains spams referrers.
pub fn is_spam_referrer(host: &str) -> bool {
    static SPAM: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let spam = SPAM.get_or_init(|| {
        SPAM_REFERRERS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    });
    let mut rest = host;
    loop {
        if spam.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_around_patterns_are_used() {
        let bots = BotPatterns::shipped();
        assert!(!bots.look_around.is_empty());
        // `(?<! cu)bots?(?:\b|_)`: "bot" unless after " cu".
        assert_eq!(bots.classify("MyBot/1.0"), Some(BotKind::Crawler));
        assert_eq!(bots.classify("Wget/1.21"), Some(BotKind::Crawler));
        assert_eq!(
            bots.classify("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0"),
            Some(BotKind::Headless)
        );
        assert_eq!(
            bots.classify(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
            ),
            None
        );
    }

    #[test]
    fn spam_referrers_match_subdomains() {
        assert!(is_spam_referrer("semalt.com"));
        assert!(is_spam_referrer("forum.semalt.com"));
        assert!(!is_spam_referrer("news.ycombinator.com"));
        assert!(!is_spam_referrer("com"));
    }
}
