//! Where a visit came from: the source's name and the channel.
//!
//! Source names and the medium of known referrers come from Ghost's maintained referrer list
//! (`data/referrers/`, itself grown from Snowplow's referer-parser). Channels follow Google
//! Analytics 4's default channel groups, as Plausible does: campaign tags (`utm_medium`,
//! `utm_campaign`) and ad click ids (`gclid`, `msclkid`, ...) first, then what the referring
//! site is. A referral from the site itself is direct traffic.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::bot;
use super::page::{normalize_host, Page};

const REFERRERS_JSON: &str = include_str!("../../../../data/referrers/referrers.json");

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Referral {
    /// The referrer URL as sent, empty for direct traffic.
    pub referrer: String,
    /// The source's name (`Google`), else `utm_source` as sent, else the referrer's host;
    /// empty for direct traffic.
    pub source: String,
    pub channel: String,
    /// The referrer is a known spam domain: the event is dropped.
    pub spam: bool,
}

/// What kind of site a source is, as the channel rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Search,
    Social,
    Video,
    Shopping,
    Email,
    /// Ad networks.
    Ads,
    Other,
}

impl Category {
    /// How much a category says about a source: what names it when lists disagree.
    fn rank(self) -> u8 {
        match self {
            Category::Other => 0,
            Category::Ads => 1,
            _ => 2,
        }
    }
}

#[derive(Deserialize)]
struct ListEntry {
    source: String,
    medium: String,
}

struct KnownSource {
    name: String,
    category: Category,
}

/// Known sources by referrer domain and by lower-case name (for `utm_source=google`).
struct ReferrerList {
    by_domain: HashMap<String, KnownSource>,
    by_name: HashMap<String, KnownSource>,
}

/// GA4 lists these as video and shopping sites; the referrer list files them as social or
/// not at all.
const VIDEO_SOURCES: [&str; 8] = [
    "YouTube",
    "Vimeo",
    "Twitch",
    "Dailymotion",
    "TikTok",
    "Wistia",
    "Rumble",
    "Bilibili",
];
const SHOPPING_SOURCES: [(&str, &str); 6] = [
    ("amazon.com", "Amazon"),
    ("ebay.com", "eBay"),
    ("etsy.com", "Etsy"),
    ("shopify.com", "Shopify"),
    ("walmart.com", "Walmart"),
    ("aliexpress.com", "AliExpress"),
];
/// Short `utm_source` spellings that campaigns use for big platforms.
const SOURCE_ALIASES: [(&str, &str); 8] = [
    ("fb", "Facebook"),
    ("ig", "Instagram"),
    ("yt", "YouTube"),
    ("tw", "Twitter"),
    ("x", "Twitter"),
    ("li", "LinkedIn"),
    ("gmail", "Gmail"),
    ("hn", "Hacker News"),
];

fn category_of(name: &str, medium: &str) -> Category {
    if VIDEO_SOURCES.iter().any(|v| v.eq_ignore_ascii_case(name)) {
        return Category::Video;
    }
    match medium {
        "search" => Category::Search,
        "social" => Category::Social,
        "email" => Category::Email,
        "paid" => Category::Ads,
        _ => Category::Other,
    }
}

impl ReferrerList {
    fn shared() -> &'static ReferrerList {
        static LIST: OnceLock<ReferrerList> = OnceLock::new();
        LIST.get_or_init(|| {
            let entries: HashMap<String, ListEntry> =
                serde_json::from_str(REFERRERS_JSON).expect("data/referrers/referrers.json parses");
            let mut by_domain = HashMap::with_capacity(entries.len());
            let mut by_name: HashMap<String, KnownSource> = HashMap::new();
            // A few entries are a domain and a path (`google.ad/products`); hosts never match them.
            for (domain, entry) in entries.into_iter().filter(|(d, _)| !d.contains('/')) {
                let category = category_of(&entry.source, &entry.medium);
                let key = entry.source.to_lowercase();
                // A name's category is its most telling one: Google is a search engine even
                // though groups.google.com is filed as "unknown" and its ad servers as "paid".
                let better = by_name
                    .get(&key)
                    .is_none_or(|known| category.rank() > known.category.rank());
                if better {
                    by_name.insert(
                        key,
                        KnownSource {
                            name: entry.source.clone(),
                            category,
                        },
                    );
                }
                by_domain.insert(
                    normalize_host(&domain),
                    KnownSource {
                        name: entry.source,
                        category,
                    },
                );
            }
            for (domain, name) in SHOPPING_SOURCES {
                let source = || KnownSource {
                    name: name.to_owned(),
                    category: Category::Shopping,
                };
                by_domain.insert(domain.to_owned(), source());
                by_name.insert(name.to_lowercase(), source());
            }
            ReferrerList { by_domain, by_name }
        })
    }

    /// The known source at `host` or at one of its parent domains.
    fn by_host(&self, host: &str) -> Option<&KnownSource> {
        let mut rest = host;
        loop {
            if let Some(known) = self.by_domain.get(rest) {
                return Some(known);
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return None,
            }
        }
    }

    /// The known source a `utm_source` value names: a name, an alias or a domain.
    fn by_tag(&self, tag: &str) -> Option<&KnownSource> {
        let lower = tag.trim().to_lowercase();
        let aliased = SOURCE_ALIASES
            .iter()
            .find(|(alias, _)| *alias == lower)
            .map(|(_, name)| name.to_lowercase());
        self.by_name
            .get(aliased.as_deref().unwrap_or(&lower))
            .or_else(|| {
                lower
                    .contains('.')
                    .then(|| self.by_host(&normalize_host(&lower)))?
            })
    }
}

/// The source an ad click id belongs to, and whether it marks a paid click.
fn click_source(click_id: &str) -> Option<(&'static str, bool)> {
    Some(match click_id {
        "gclid" | "gbraid" | "wbraid" => ("Google", true),
        "msclkid" => ("Bing", true),
        "fbclid" => ("Facebook", false),
        "ttclid" => ("TikTok", true),
        "twclid" => ("Twitter", true),
        "li_fat_id" => ("LinkedIn", true),
        _ => return None,
    })
}

fn referrer_host(referrer: &str) -> Option<String> {
    let with_scheme = if referrer.contains("://") {
        referrer.to_owned()
    } else {
        format!("https://{referrer}")
    };
    url::Url::parse(&with_scheme)
        .ok()?
        .host_str()
        .map(normalize_host)
}

pub fn classify(referrer: Option<&str>, page: &Page) -> Referral {
    let list = ReferrerList::shared();
    let referrer = referrer.map(str::trim).filter(|r| !r.is_empty());
    let external = referrer
        .and_then(referrer_host)
        .filter(|host| *host != page.hostname && !host.ends_with(&format!(".{}", page.hostname)));
    let spam = external.as_deref().is_some_and(bot::is_spam_referrer);
    let from_host = external.as_deref().and_then(|host| list.by_host(host));
    let from_tag = (!page.utm_source.is_empty())
        .then(|| list.by_tag(&page.utm_source))
        .flatten();
    let click = click_source(&page.click_id);

    let (source, category) = if !page.utm_source.is_empty() {
        match from_tag {
            Some(known) => (known.name.clone(), known.category),
            None => (page.utm_source.clone(), Category::Other),
        }
    } else if let Some(known) = from_host {
        (known.name.clone(), known.category)
    } else if let Some(host) = &external {
        (host.clone(), Category::Other)
    } else if let Some((name, _)) = click {
        let category = list.by_tag(name).map_or(Category::Other, |k| k.category);
        (name.to_owned(), category)
    } else {
        (String::new(), Category::Other)
    };
    let paid_click = click.is_some_and(|(_, paid)| paid);
    let channel = channel(
        &source,
        category,
        &page.utm_medium.to_lowercase(),
        &page.utm_campaign.to_lowercase(),
        paid_click,
    );
    Referral {
        referrer: if external.is_some() {
            referrer.unwrap_or("").chars().take(2048).collect()
        } else {
            String::new()
        },
        source,
        channel: channel.to_owned(),
        spam,
    }
}

/// The channel of a visit whose source is already named (an import's `referrer_source`, as
/// Plausible's exports and its test data carry it): the same rules as [`classify`], with the
/// source's category looked up by its name.
pub fn channel_of_source(
    source: &str,
    utm_medium: &str,
    utm_campaign: &str,
    click_id: &str,
) -> &'static str {
    let category = (!source.is_empty())
        .then(|| ReferrerList::shared().by_tag(source))
        .flatten()
        .map_or(Category::Other, |known| known.category);
    let paid_click = click_source(click_id).is_some_and(|(_, paid)| paid);
    channel(
        source,
        category,
        &utm_medium.to_lowercase(),
        &utm_campaign.to_lowercase(),
        paid_click,
    )
}

/// GA4's default channel group for a visit; `medium` and `campaign` are lower case.
fn channel(
    source: &str,
    category: Category,
    medium: &str,
    campaign: &str,
    paid_click: bool,
) -> &'static str {
    use Category::*;
    let paid = paid_click
        || medium == "ppc"
        || medium == "retargeting"
        || medium.starts_with("paid")
        || medium.contains("cp");
    let shopping_campaign = campaign.contains("shop");
    let source_lower = source.to_lowercase();
    let is_email = |s: &str| {
        ["email", "e-mail", "e_mail", "e mail"]
            .iter()
            .any(|t| s.contains(t))
    };
    if source.is_empty() && medium.is_empty() {
        return "Direct";
    }
    if campaign.contains("cross-network") {
        return "Cross-network";
    }
    if paid {
        return match category {
            Shopping => "Paid Shopping",
            _ if shopping_campaign => "Paid Shopping",
            Search => "Paid Search",
            Social => "Paid Social",
            Video => "Paid Video",
            _ if matches!(
                medium,
                "display" | "banner" | "expandable" | "interstitial" | "cpm"
            ) =>
            {
                "Display"
            }
            _ => "Paid Other",
        };
    }
    if matches!(medium, "display" | "banner" | "expandable" | "interstitial") || category == Ads {
        return "Display";
    }
    if category == Shopping || shopping_campaign {
        return "Organic Shopping";
    }
    if category == Social
        || matches!(
            medium,
            "social" | "social-network" | "social-media" | "sm" | "social network" | "social media"
        )
    {
        return "Organic Social";
    }
    if category == Video || medium.contains("video") {
        return "Organic Video";
    }
    if category == Search || medium == "organic" {
        return "Organic Search";
    }
    if category == Email || is_email(&source_lower) || is_email(medium) {
        return "Email";
    }
    if medium == "affiliate" {
        return "Affiliates";
    }
    if medium == "audio" {
        return "Audio";
    }
    if source_lower == "sms" || medium == "sms" {
        return "SMS";
    }
    if medium.ends_with("push") || medium.contains("mobile") || medium.contains("notification") {
        return "Mobile Push Notifications";
    }
    "Referral"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::page::parse_page;

    fn on(url: &str) -> Page {
        parse_page(url, "example.com", false).unwrap()
    }

    /// (page URL, referrer, source, channel)
    const CASES: &[(&str, &str, &str, &str)] = &[
        ("/", "", "", "Direct"),
        ("/", "https://www.example.com/blog", "", "Direct"),
        ("/", "https://docs.example.com/", "", "Direct"),
        ("/", "https://www.google.com/", "Google", "Organic Search"),
        (
            "/",
            "https://www.google.co.uk/search?q=heartbeat",
            "Google",
            "Organic Search",
        ),
        (
            "/",
            "https://duckduckgo.com/",
            "DuckDuckGo",
            "Organic Search",
        ),
        (
            "/",
            "https://www.bing.com/search?q=x",
            "Bing",
            "Organic Search",
        ),
        (
            "/",
            "https://l.facebook.com/l.php?u=x",
            "Facebook",
            "Organic Social",
        ),
        ("/", "https://t.co/abc", "Twitter", "Organic Social"),
        (
            "/",
            "https://www.reddit.com/r/selfhosted/",
            "Reddit",
            "Organic Social",
        ),
        (
            "/",
            "https://www.linkedin.com/feed/",
            "LinkedIn",
            "Organic Social",
        ),
        (
            "/",
            "https://www.youtube.com/watch?v=1",
            "Youtube",
            "Organic Video",
        ),
        ("/", "https://mail.google.com/", "Gmail", "Email"),
        (
            "/",
            "https://news.ycombinator.com/item?id=1",
            "Hacker News",
            "Organic Social",
        ),
        (
            "/",
            "https://en.wikipedia.org/wiki/Web_analytics",
            "Wikipedia",
            "Referral",
        ),
        (
            "/",
            "https://some-blog.dev/post",
            "some-blog.dev",
            "Referral",
        ),
        ("/", "android-app://com.slack", "com.slack", "Referral"),
        (
            "/?utm_source=google&utm_medium=cpc",
            "https://www.google.com/",
            "Google",
            "Paid Search",
        ),
        ("/?gclid=abc", "", "Google", "Paid Search"),
        (
            "/?msclkid=abc",
            "https://www.bing.com/",
            "Bing",
            "Paid Search",
        ),
        (
            "/?utm_source=fb&utm_medium=paid_social",
            "",
            "Facebook",
            "Paid Social",
        ),
        (
            "/?utm_source=newsletter&utm_medium=email",
            "",
            "newsletter",
            "Email",
        ),
        (
            "/?utm_source=partner&utm_medium=affiliate",
            "",
            "partner",
            "Affiliates",
        ),
        ("/?utm_source=ads&utm_medium=banner", "", "ads", "Display"),
        (
            "/?utm_source=x&utm_campaign=cross-network-q4&utm_medium=cpc",
            "",
            "Twitter",
            "Cross-network",
        ),
        (
            "/?utm_source=shop&utm_medium=cpc&utm_campaign=shopping",
            "",
            "shop",
            "Paid Shopping",
        ),
        ("/?utm_source=amazon.com", "", "Amazon", "Organic Shopping"),
        ("/?utm_source=sms", "", "sms", "SMS"),
        (
            "/?utm_source=app&utm_medium=web_push",
            "",
            "app",
            "Mobile Push Notifications",
        ),
        ("/?ref=producthunt", "", "producthunt", "Referral"),
        ("/?utm_medium=organic", "", "", "Organic Search"),
    ];

    #[test]
    fn real_referrers_and_campaigns() {
        for (url, referrer, source, channel) in CASES {
            let referral = classify(Some(referrer), &on(url));
            assert_eq!(
                (referral.source.as_str(), referral.channel.as_str()),
                (*source, *channel),
                "{url} from {referrer:?}"
            );
        }
    }

    #[test]
    fn own_site_keeps_no_referrer_and_spam_is_flagged() {
        let own = classify(Some("https://www.example.com/blog"), &on("/"));
        assert_eq!(own.referrer, "");
        let spam = classify(Some("http://semalt.com/"), &on("/"));
        assert!(spam.spam);
        assert!(!classify(Some("https://www.google.com/"), &on("/")).spam);
    }
}
