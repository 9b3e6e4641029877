//! `RawEvent`: what every wire format decodes into, before validation and enrichment.
//!
//! Decoders fill it from their payload and nothing else; only they know wire formats.

use std::collections::BTreeMap;

use heartbeat_model::{Revenue, SiteId};

/// How a payload names its site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteRef {
    /// The site whose domain the payload names (public formats: the tracker, seed 000).
    Domain(String),
    /// An explicit site id, which the request's key must be allowed to use.
    Id(SiteId),
    /// The site of the request's API key (server-side formats without a site field).
    Key,
}

/// One event as a client sent it, in canonical fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawEvent {
    pub site: Option<SiteRef>,
    pub event_id: Option<String>,
    /// Already canonical: every spelling of a page view is `pageview`.
    pub name: String,
    pub timestamp_ms: Option<i64>,
    /// An absolute URL, or only a path (then the site's domain is the host).
    pub url: Option<String>,
    pub referrer: Option<String>,
    pub props: BTreeMap<String, String>,
    pub revenue: Option<Revenue>,
    pub interactive: bool,
    /// Keep the URL fragment as part of the path (hash-based routing).
    pub hash_mode: bool,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    /// The screen's size as the client reports it (`1920x1080`).
    pub screen: Option<String>,
    /// The visitor's user agent and address as a backend forwards them (seed 003); they
    /// take the place of the request's own for enrichment and visitor ids.
    pub user_agent: Option<String>,
    pub client_ip: Option<std::net::IpAddr>,
    /// An engagement event's scroll depth, percent (0 to 100), when it reports one.
    pub scroll_depth: Option<u8>,
    /// An engagement event's engaged time in milliseconds (0 when it reports none).
    pub engagement_time_ms: u32,
    /// How the client spelt the fields checked after decoding, for their errors.
    pub names: FieldNames,
}

/// The client's own names of the fields validation checks after decoding (`path` for seed
/// 002's URL, `properties.pageUrl` for seed 003's, `u` for Plausible's short form), with the
/// item's place in its batch (`[3].`, `events[3].`): an error names the field as the client
/// sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNames {
    /// The item's place in its request, empty for a single event.
    pub prefix: String,
    pub site: &'static str,
    pub name: &'static str,
    pub url: &'static str,
    pub timestamp: &'static str,
    pub user_id: &'static str,
    pub session_id: &'static str,
    pub event_id: &'static str,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames {
            prefix: String::new(),
            site: "site_id",
            name: "name",
            url: "url",
            timestamp: "timestamp",
            user_id: "user_id",
            session_id: "session_id",
            event_id: "event_id",
        }
    }
}

impl FieldNames {
    /// The error field for `name` of this item: `[3].path`.
    pub fn at(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl SiteRef {
    pub fn key() -> Option<SiteRef> {
        Some(SiteRef::Key)
    }
}

/// Maps every seed's spelling of a page view (`pageview`, `page_view`, `PAGE_VIEW`,
/// `page-view`) to the canonical name; other names are kept as sent.
pub fn canonical_name(name: &str) -> String {
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    if folded == heartbeat_model::PAGEVIEW {
        heartbeat_model::PAGEVIEW.to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_name;

    #[test]
    fn page_view_spellings_are_canonical() {
        for name in [
            "pageview",
            "page_view",
            "PAGE_VIEW",
            "Page-View",
            "pageView",
        ] {
            assert_eq!(canonical_name(name), "pageview", "{name}");
        }
        assert_eq!(canonical_name("Signup"), "Signup");
        assert_eq!(canonical_name("BUTTON_CLICK"), "BUTTON_CLICK");
    }
}
