//! Where a visit came from: the referrer's host as its source, and the channel.
//!
//! A referral from the site itself is direct traffic. Naming sources ("Google") and the
//! full channel rules (search, social, paid, email) belong to the referrer list.

use super::page::{normalize_host, Page};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Referral {
    /// The referrer URL as sent, empty for direct traffic.
    pub referrer: String,
    /// The referrer's host, or `utm_source` when tagged; empty for direct traffic.
    pub source: String,
    pub channel: String,
}

pub fn classify(referrer: Option<&str>, page: &Page) -> Referral {
    let referrer = referrer.map(str::trim).filter(|r| !r.is_empty());
    let host = referrer.and_then(|raw| {
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("https://{raw}")
        };
        url::Url::parse(&with_scheme)
            .ok()?
            .host_str()
            .map(normalize_host)
    });
    let external =
        host.filter(|h| *h != page.hostname && !h.ends_with(&format!(".{}", page.hostname)));
    let source = if !page.utm_source.is_empty() {
        page.utm_source.clone()
    } else {
        external.clone().unwrap_or_default()
    };
    let channel = if source.is_empty() {
        "Direct"
    } else {
        "Referral"
    };
    Referral {
        referrer: if external.is_some() {
            referrer.unwrap_or("").chars().take(2048).collect()
        } else {
            String::new()
        },
        source,
        channel: channel.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Page {
        Page {
            hostname: "example.com".into(),
            pathname: "/".into(),
            ..Page::default()
        }
    }

    #[test]
    fn own_site_is_direct() {
        let r = classify(Some("https://www.example.com/blog"), &page());
        assert_eq!(
            (r.source.as_str(), r.channel.as_str(), r.referrer.as_str()),
            ("", "Direct", "")
        );
        assert_eq!(
            classify(Some("https://docs.example.com/"), &page()).channel,
            "Direct"
        );
        assert_eq!(classify(None, &page()).channel, "Direct");
    }

    #[test]
    fn external_host_is_the_source() {
        let r = classify(Some("https://news.ycombinator.com/item?id=1"), &page());
        assert_eq!(
            (r.source.as_str(), r.channel.as_str()),
            ("news.ycombinator.com", "Referral")
        );
        assert_eq!(classify(Some("google.com"), &page()).source, "google.com");
    }
}
