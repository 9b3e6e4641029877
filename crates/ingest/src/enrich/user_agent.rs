//! User agent -> browser, OS, device type, and whether it is a bot.
//!
//! Parsing runs uap-core's `regexes.yaml` (`data/ua/`) through the `ua-parser` crate, and the
//! bot patterns of `isbot` (`data/bots/`). Both are slow next to the rest of ingest (tens of
//! microseconds a string), and real traffic repeats a few thousand user agents, so a bounded
//! cache keyed by the whole string sits in front.

use std::sync::{Arc, OnceLock};

use quick_cache::sync::Cache;

use super::bot::{self, BotPatterns};

/// How many distinct user agents the cache keeps.
const CACHE_ENTRIES: usize = 20_000;

const REGEXES_YAML: &str = include_str!("../../../../data/ua/regexes.yaml");

/// What a user agent says about its sender.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Agent {
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    /// `Desktop`, `Mobile` or `Tablet`; empty when unknown.
    pub device: String,
    /// Set when the user agent is a crawler, a headless browser or a script.
    pub bot: Option<bot::BotKind>,
}

/// The user-agent parser with its cache. One per process; cheap to share.
pub struct UserAgents {
    extractor: ua_parser::Extractor<'static>,
    bots: BotPatterns,
    cache: Cache<Box<str>, Arc<Agent>>,
}

impl UserAgents {
    /// The parser built from the shipped data, built once per process (about 0.3 s).
    pub fn shared() -> &'static UserAgents {
        static AGENTS: OnceLock<UserAgents> = OnceLock::new();
        AGENTS.get_or_init(|| {
            let regexes: ua_parser::Regexes<'static> =
                serde_yaml::from_str(REGEXES_YAML).expect("data/ua/regexes.yaml parses");
            UserAgents {
                extractor: ua_parser::Extractor::try_from(regexes)
                    .expect("data/ua/regexes.yaml compiles"),
                bots: BotPatterns::shipped(),
                cache: Cache::new(CACHE_ENTRIES),
            }
        })
    }

    /// Parses `user_agent`, from the cache when it was seen before.
    pub fn parse(&self, user_agent: &str) -> Arc<Agent> {
        if let Some(agent) = self.cache.get(user_agent) {
            return agent;
        }
        let agent = Arc::new(self.parse_uncached(user_agent));
        self.cache.insert(user_agent.into(), agent.clone());
        agent
    }

    fn parse_uncached(&self, user_agent: &str) -> Agent {
        let (browser, os, device) = self.extractor.extract(user_agent);
        let device_family = device.as_ref().map(|d| d.device.as_ref()).unwrap_or("");
        let os_name = os
            .as_ref()
            .map(|os| os_display_name(&os.os))
            .unwrap_or_default();
        let bot = if device_family == "Spider" {
            Some(bot::BotKind::Crawler)
        } else {
            self.bots.classify(user_agent)
        };
        Agent {
            browser: browser
                .as_ref()
                .map(|b| browser_display_name(&b.family))
                .unwrap_or_default(),
            browser_version: browser
                .as_ref()
                .map(|b| version(b.major, b.minor))
                .unwrap_or_default(),
            os_version: os
                .as_ref()
                .map(|os| version(os.major.as_deref(), os.minor.as_deref()))
                .unwrap_or_default(),
            device: device_type(user_agent, &os_name, device_family).to_owned(),
            os: os_name,
            bot,
        }
    }
}

/// `major.minor`, or `major`, as Plausible shows versions.
fn version(major: Option<&str>, minor: Option<&str>) -> String {
    match (major, minor) {
        (Some(major), Some(minor)) if !minor.is_empty() => format!("{major}.{minor}"),
        (Some(major), _) => major.to_owned(),
        _ => String::new(),
    }
}

/// uap names the mobile builds of a browser apart ("Chrome Mobile", "Mobile Safari"); the
/// device type already says that, so breakdowns group them under the browser's name.
fn browser_display_name(family: &str) -> String {
    let name = match family {
        "Other" => "",
        "Chrome Mobile" | "Chrome Mobile iOS" => "Chrome",
        "Chrome Mobile WebView" => "Chrome WebView",
        "Mobile Safari" | "Safari Mobile" => "Safari",
        "Mobile Safari UI/WKWebView" => "Safari WebView",
        "Firefox Mobile" | "Firefox iOS" => "Firefox",
        "Edge Mobile" => "Edge",
        "Opera Mobile" => "Opera",
        other => other,
    };
    name.to_owned()
}

fn os_display_name(family: &str) -> String {
    let name = match family {
        "Other" => "",
        "Mac OS X" => "macOS",
        other => other,
    };
    name.to_owned()
}

/// Desktop, mobile or tablet, from the OS and device uap found plus the tokens browsers
/// use to say so (Android tablets omit `Mobile`, by Google's convention).
fn device_type(user_agent: &str, os: &str, device_family: &str) -> &'static str {
    let contains = |token: &str| {
        user_agent
            .as_bytes()
            .windows(token.len())
            .any(|w| w.eq_ignore_ascii_case(token.as_bytes()))
    };
    if device_family == "Spider" {
        return "";
    }
    if device_family == "iPad"
        || contains("tablet")
        || contains("kindle")
        || contains("silk/")
        || (os == "Android" && !contains("mobile"))
    {
        return "Tablet";
    }
    if matches!(
        os,
        "iOS" | "Android" | "Windows Phone" | "BlackBerry OS" | "KaiOS" | "Symbian OS"
    ) || device_family == "iPhone"
        || contains("mobi")
    {
        return "Mobile";
    }
    "Desktop"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (user agent, browser, browser version, OS, OS version, device, bot)
    const CASES: &[(&str, &str, &str, &str, &str, &str, bool)] = &[
        // Desktop browsers.
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome", "131.0", "Windows", "10", "Desktop", false),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
            "Safari", "17.6", "macOS", "10.15", "Desktop", false),
        ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox", "133.0", "Ubuntu", "", "Desktop", false),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
            "Edge", "131.0", "Windows", "10", "Desktop", false),
        // Phones.
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
            "Safari", "17.6", "iOS", "17.6", "Mobile", false),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36",
            "Chrome", "131.0", "Android", "14", "Mobile", false),
        ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            "Samsung Internet", "23.0", "Android", "13", "Mobile", false),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
            "Chrome", "131.0", "iOS", "17.5", "Mobile", false),
        // Tablets.
        ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            "Safari", "16.6", "iOS", "16.6", "Tablet", false),
        ("Mozilla/5.0 (Linux; Android 12; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Chrome", "120.0", "Android", "12", "Tablet", false),
        // In-app browsers.
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/455.0.0.40.107;FBBV/581253914;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
            "Facebook", "455.0", "iOS", "17.4", "Mobile", false),
        ("Mozilla/5.0 (Linux; Android 14; SM-G991B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.107 Mobile Safari/537.36 Instagram 355.0.0.36.115 Android",
            "Instagram", "355.0", "Android", "14", "Mobile", false),
        // Crawlers, headless browsers and scripts.
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Googlebot", "2.1", "", "", "", true),
        ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            "bingbot", "2.0", "", "", "", true),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.33 Safari/537.36",
            "HeadlessChrome", "131.0", "Linux", "", "Desktop", true),
        ("curl/8.5.0", "curl", "8.5", "", "", "", true),
        ("python-requests/2.32.3", "Python Requests", "2.32", "", "", "", true),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "FacebookBot", "1.1", "", "", "", true),
    ];

    #[test]
    fn real_user_agents() {
        let agents = UserAgents::shared();
        for (ua, browser, browser_version, os, os_version, device, bot) in CASES {
            let agent = agents.parse(ua);
            if *bot {
                assert!(agent.bot.is_some(), "{ua} is a bot");
                continue;
            }
            assert_eq!(agent.bot, None, "{ua} is no bot");
            assert_eq!(
                (
                    agent.browser.as_str(),
                    agent.browser_version.as_str(),
                    agent.os.as_str(),
                    agent.os_version.as_str(),
                    agent.device.as_str()
                ),
                (*browser, *browser_version, *os, *os_version, *device),
                "{ua}"
            );
        }
    }

    #[test]
    fn cached_answer_is_the_same() {
        let agents = UserAgents::shared();
        let ua = CASES[0].0;
        assert_eq!(agents.parse(ua), agents.parse(ua));
    }
}
