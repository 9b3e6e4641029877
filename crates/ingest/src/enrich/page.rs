//! The page an event happened on: hostname, pathname and campaign tags from its URL.

use url::Url;

/// Longest pathname kept; longer URLs are rejected rather than cut silently.
pub const MAX_URL_CHARS: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub hostname: String,
    pub pathname: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    /// The name of the first ad click id in the query (`gclid`, `msclkid`, `fbclid`, ...).
    pub click_id: String,
}

/// Query parameters that ad platforms add to the links they send visitors through.
pub const CLICK_IDS: [&str; 8] = [
    "gclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "fbclid",
    "ttclid",
    "twclid",
    "li_fat_id",
];

/// Lower case, without a leading `www.`: how hostnames and domains are compared.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    host.strip_prefix("www.").map(str::to_owned).unwrap_or(host)
}

/// Parses an absolute http(s) URL, or a bare path on `site_domain`.
pub fn parse_page(raw: &str, site_domain: &str, hash_mode: bool) -> Result<Page, String> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("at most {MAX_URL_CHARS} characters"));
    }
    let url = if raw.starts_with('/') {
        Url::parse(&format!("https://{site_domain}{raw}"))
    } else {
        Url::parse(raw)
    }
    .map_err(|_| "must be an absolute http(s) URL or a path starting with /".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".to_owned());
    }
    let mut pathname = url.path().to_owned();
    if hash_mode {
        if let Some(fragment) = url.fragment() {
            pathname.push('#');
            pathname.push_str(fragment);
        }
    }
    let mut page = Page {
        hostname: normalize_host(url.host_str().unwrap_or(site_domain)),
        pathname,
        ..Page::default()
    };
    let mut fallback_source = String::new();
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "utm_source" => &mut page.utm_source,
            "utm_medium" => &mut page.utm_medium,
            "utm_campaign" => &mut page.utm_campaign,
            "utm_content" => &mut page.utm_content,
            "utm_term" => &mut page.utm_term,
            "ref" | "source" => &mut fallback_source,
            id if page.click_id.is_empty() && CLICK_IDS.contains(&id) => {
                page.click_id = id.to_owned();
                continue;
            }
            _ => continue,
        };
        if slot.is_empty() {
            *slot = value.chars().take(300).collect();
        }
    }
    if page.utm_source.is_empty() {
        page.utm_source = fallback_source;
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let page = parse_page(
            "https://WWW.Example.com/pricing?utm_source=news&utm_medium=email&x=1#top",
            "example.com",
            false,
        )
        .unwrap();
        assert_eq!(page.hostname, "example.com");
        assert_eq!(page.pathname, "/pricing");
        assert_eq!(page.utm_source, "news");
        assert_eq!(page.utm_medium, "email");
        let hashed = parse_page("https://example.com/app#/settings", "example.com", true).unwrap();
        assert_eq!(hashed.pathname, "/app#/settings");
        let bare = parse_page("/docs?ref=producthunt", "example.com", false).unwrap();
        assert_eq!(
            (bare.hostname.as_str(), bare.pathname.as_str()),
            ("example.com", "/docs")
        );
        assert_eq!(bare.utm_source, "producthunt");
        let ad = parse_page("/?gclid=abc&fbclid=def", "example.com", false).unwrap();
        assert_eq!(ad.click_id, "gclid");
    }

    #[test]
    fn rejects_non_web_urls() {
        assert!(parse_page("javascript:alert(1)", "example.com", false).is_err());
        assert!(parse_page("not a url", "example.com", false).is_err());
        assert!(parse_page(&format!("/{}", "a".repeat(3000)), "example.com", false).is_err());
    }
}
